"""``seldinger stent …``: airway and oesophageal lumen measured along the centreline, stent
sizing and a CT-designed stent (issue 20)."""

from __future__ import annotations

import typer

__all__ = ["stent_app"]

stent_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Airway and oesophageal stents: stenosis measured along the centreline, sizing "
    "from a catalogue, a patient-specific stent and its mould.",
    no_args_is_help=True,
)
