"""``seldinger simulate …``: ablation physics on the CT or a phantom — IRE electric field,
RF/MW bioheat with cell death, cryo isotherms (issue 19)."""

from __future__ import annotations

import typer

__all__ = ["simulate_app"]

simulate_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Ablation physics: the IRE electric field between electrodes, RF/MW heating with "
    "Arrhenius cell death and heat sinks, cryo iceballs.",
    no_args_is_help=True,
)
