"""``seldinger margin``: the ablative margin of a zone around a tumour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seldinger.app.common import (
    ForceOption,
    JsonOption,
    out_console,
    print_json,
    print_written,
    progress,
)
from seldinger.app.plan_tables import margin_lines

__all__ = ["margin"]

TumourArgument = Annotated[
    Path,
    typer.Argument(
        help="Tumour mask (NIfTI, NRRD or MetaImage; non-zero = tumour).", show_default=False
    ),
]
ZoneArgument = Annotated[
    Path,
    typer.Argument(
        help="Ablation zone mask on the same grid (ablation_zone.nii.gz of `seldinger plan ablation`, or a zone segmented on the post-ablation CT).",
        show_default=False,
    ),
]
FigureOption = Annotated[
    Path | None,
    typer.Option(
        "--figure",
        help="Also draw the margin map (tumour surface coloured by margin, mm) into this PNG.",
        show_default=False,
    ),
]


def margin(
    tumour_mask: TumourArgument,
    zone_mask: ZoneArgument,
    figure: FigureOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Minimal ablative margin of a zone around a tumour, and how much of its surface is safe.

    Prints min_margin_mm (signed: negative where tumour lies outside the zone),
    coverage_percent (of the tumour volume inside the zone) and the surface distribution
    of the quantitative ablation margin (QAM): surface_below_0_percent (non-ablated),
    surface_0_to_5_percent (insufficient) and surface_at_least_5_percent (complete), with
    the mean and median margin in mm. Margins are measured between sub-voxel surfaces, so
    they are not limited to the voxel size.

    Example: `seldinger margin nodule.nii.gz ablation_zone.nii.gz --figure margin.png`.
    """
    from seldinger.export.margin_views import render_margin_map
    from seldinger.files import check_overwrite
    from seldinger.workflow.margin import margin_of_files

    if figure is not None:
        check_overwrite(figure, force)
    with progress("measuring the margin", not as_json):
        tumour, zone, report = margin_of_files(tumour_mask, zone_mask)
    written = None
    if figure is not None:
        written = render_margin_map(tumour, report, figure, zone=zone, force=force)
    if as_json:
        print_json(
            {
                "tumour": str(tumour_mask),
                "zone": str(zone_mask),
                **report.to_dict(),
                "figure": None if written is None else str(written),
            }
        )
        return
    for line in margin_lines(report):
        out_console.print(line, highlight=False)
    print_written([written])
