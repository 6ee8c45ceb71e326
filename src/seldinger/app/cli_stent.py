"""``seldinger stent …``: airway and oesophageal lumen measured along the centreline, stent
sizing and a CT-designed stent (issue 20)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from seldinger.app.common import (
    CtArgument,
    ForceOption,
    JsonOption,
    out_console,
    print_json,
    print_notes,
    print_written,
)

__all__ = ["stent_app"]

stent_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Airway and oesophageal stents: stenosis measured along the centreline, sizing "
    "from a catalogue, a patient-specific stent and its mould.",
    no_args_is_help=True,
)


class OrganName(StrEnum):
    """Which lumen an anatomy folder provides."""

    airway = "airway"
    oesophagus = "oesophagus"


class StentKind(StrEnum):
    """Designed stent shapes."""

    tracheal = "tracheal"
    y = "y"


AnatomyOption = Annotated[
    Path | None,
    typer.Option("--anatomy", help="Anatomy folder from `seldinger segment`.", show_default=False),
]
OrganOption = Annotated[OrganName, typer.Option("--organ", help="Lumen to measure.")]
MaskOption = Annotated[
    Path | None,
    typer.Option(
        "--lumen-mask",
        help="A lumen mask on the CT's grid (instead of --anatomy).",
        show_default=False,
    ),
]
MinOption = Annotated[
    float,
    typer.Option("--min-stenosis-percent", help="Smallest stenosis reported, % of the area."),
]


def _source(anatomy: Path | None, organ: OrganName, mask: Path | None, minimum: float) -> Any:
    from seldinger.errors import BadInputError
    from seldinger.workflow.stents import LumenSource

    try:
        return LumenSource(anatomy, organ.value, mask, minimum)
    except BadInputError as err:  # an option combination: a usage error (status 2)
        raise typer.BadParameter(str(err)) from None


def _stenosis_table(stenoses: list[dict[str, Any]]) -> Table:
    table = Table(title="stenoses", title_justify="left")
    for name in ("where", "% area", "% diam.", "ref. Ø mm", "min area mm²", "length mm",
                 "to carina mm", "from top mm", "start LPS mm"):  # fmt: skip
        table.add_column(name, justify="right")
    for s in stenoses:
        table.add_row(
            s["label"] + (" (occluded)" if s["occluded"] else ""),
            f"{s['stenosis_area_percent']:.0f}",
            f"{s['stenosis_diameter_percent']:.0f}",
            f"{s['reference_diameter_mm']:.1f}",
            f"{s['min_area_mm2']:.0f}",
            f"{s['length_mm']:.1f}",
            "-" if s["distance_from_carina_mm"] is None else f"{s['distance_from_carina_mm']:.0f}",
            "-"
            if s["distance_from_trachea_top_mm"] is None
            else f"{s['distance_from_trachea_top_mm']:.0f}",
            ", ".join(f"{v:.1f}" for v in s["start_lps_mm"]),
        )
    return table


@stent_app.command("measure")
def measure(
    ct: CtArgument,
    anatomy: AnatomyOption = None,
    organ: OrganOption = OrganName.airway,
    lumen_mask: MaskOption = None,
    min_stenosis_percent: MinOption = 20.0,
    figure: Annotated[
        Path | None,
        typer.Option(
            "--figure", help="PNG of area vs distance, stenoses marked.", show_default=False
        ),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Measure the lumen every 1 mm along the centreline; report the stenoses.

    Example: `seldinger stent measure ct.nii.gz --anatomy anat/ --figure lumen.png`.
    """
    from seldinger.workflow.stents import measure_file

    source = _source(anatomy, organ, lumen_mask, min_stenosis_percent)
    survey, written = measure_file(ct, source, figure=figure, force=force)
    summary = survey.summary()
    if as_json:
        print_json({**summary, "written": [str(p) for p in written]})
        return
    if summary["stenoses"]:
        out_console.print(_stenosis_table(summary["stenoses"]))
    else:
        out_console.print(f"no stenosis of {min_stenosis_percent:g} % or more (by area)")
    branches = Table(title="lumen", title_justify="left")
    for name in ("branch", "length mm", "median Ø mm", "min Ø mm", "max Ø mm"):
        branches.add_column(name, justify="right")
    for b in summary["branches"]:
        cells = [b["median_diameter_mm"], b["min_diameter_mm"], b["max_diameter_mm"]]
        branches.add_row(
            b["label"], f"{b['length_mm']:.0f}", *("-" if c is None else f"{c:.1f}" for c in cells)
        )
    out_console.print(branches)
    print_notes(summary["notes"])
    print_written(written)


@stent_app.command("size")
def size(
    ct: CtArgument,
    anatomy: AnatomyOption = None,
    organ: OrganOption = OrganName.airway,
    lumen_mask: MaskOption = None,
    min_stenosis_percent: MinOption = 20.0,
    as_json: JsonOption = False,
) -> None:
    """Size catalogue stents for every stenosis (diameter +10-20 %, length + 5-10 mm a side;
    oesophagus + 20 mm a side), with warnings."""
    from seldinger.workflow.stents import size_file

    survey, sizing = size_file(ct, _source(anatomy, organ, lumen_mask, min_stenosis_percent))
    if as_json:
        print_json({"sizing": [z.to_dict() for z in sizing], "notes": list(survey.notes)})
        return
    if not sizing:
        out_console.print("no stenosis to size")
    for z in sizing:
        st = z.stenosis
        table = Table(
            title=f"{st.label}: {st.stenosis_area_percent:.0f} % over {st.length_mm:.0f} mm, "
            f"reference {st.reference_diameter_mm:.1f} mm",
            title_justify="left",
        )
        for name in ("stent", "Ø mm", "length mm", "oversize %", "warnings"):
            table.add_column(name)
        for c in z.choices:
            table.add_row(c.name, f"{c.diameter_mm:g}", f"{c.length_mm:g}",
                          f"{c.oversize_percent:+.0f}", "; ".join(c.warnings) or "-")  # fmt: skip
        out_console.print(table)
    print_notes(survey.notes)


@stent_app.command("design")
def design(
    ct: CtArgument,
    out: Annotated[
        Path, typer.Option("--out", help="STENT.stl (3MF and PNG beside it).", show_default=False)
    ],
    kind: Annotated[StentKind, typer.Option("--type", help="tracheal or y.")] = StentKind.tracheal,
    anatomy: AnatomyOption = None,
    lumen_mask: MaskOption = None,
    wall_mm: Annotated[float, typer.Option("--wall-mm", help="Wall thickness, mm.")] = 1.5,
    oversize_percent: Annotated[
        float, typer.Option("--oversize-percent", help="Over the reference lumen, %.")
    ] = 10.0,
    studs: Annotated[bool, typer.Option("--studs", help="Add anti-migration studs.")] = False,
    mould: Annotated[
        Path | None,
        typer.Option("--mould", help="Folder for the mould's parts.", show_default=False),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Design a patient-specific tracheal or Y stent; write STL, 3MF, a rendering (and the
    two-part mould with its core). Coordinates are LPS mm."""
    from seldinger.errors import BadInputError
    from seldinger.stents.design import StentOptions
    from seldinger.workflow.stents import design_file

    try:
        options = StentOptions(
            kind=kind.value, wall_mm=wall_mm, oversize_percent=oversize_percent, studs=studs
        )
    except BadInputError as err:
        raise typer.BadParameter(str(err)) from None
    source = _source(anatomy, OrganName.airway, lumen_mask, 20.0)
    outcome = design_file(ct, source, out, options, mould_dir=mould, force=force)
    if as_json:
        print_json(outcome.summary())
        return
    check = outcome.design.check.to_dict()
    out_console.print(
        f"{kind.value} stent: watertight {check['watertight']}, thinnest wall "
        f"{check['min_wall_mm']} mm, {check['volume_ml']} mL, at most "
        f"{check['max_outside_airway_mm']} mm outside the airway "
        f"({check['max_beyond_oversize_mm']} mm beyond the oversize): "
        + ("printable" if check["ok"] else "NOT printable as it is"),
        highlight=False,
    )
    print_notes(outcome.notes)
    print_written(outcome.written)
