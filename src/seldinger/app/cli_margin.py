"""``seldinger margin``: the ablative margin of a zone around a tumour.

Also holds the margin lines that ``plan ablation`` prints too (:func:`margin_lines`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seldinger.app._cli_common import ForceOption, JsonOption, _out, _print_json, _progress

if TYPE_CHECKING:
    from seldinger.planning.margin import MarginReport

__all__ = ["margin", "margin_lines"]


def margin(
    tumour_mask: Annotated[
        Path,
        typer.Argument(
            help="Tumour mask (NIfTI, NRRD or MetaImage; non-zero = tumour).", show_default=False
        ),
    ],
    zone_mask: Annotated[
        Path,
        typer.Argument(
            help="Ablation zone mask on the same grid (e.g. ablation_zone.nii.gz written by "
            "`seldinger plan ablation`, or a zone segmented on the post-ablation CT).",
            show_default=False,
        ),
    ],
    figure: Annotated[
        Path | None,
        typer.Option(
            "--figure",
            help="Also draw the margin map (tumour surface coloured by margin, mm) into this PNG.",
            show_default=False,
        ),
    ] = None,
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
    from seldinger._files import check_overwrite
    from seldinger.imaging import reorient
    from seldinger.io import read_volume
    from seldinger.planning.margin import assess_margin

    if figure is not None:
        check_overwrite(figure, force)
    tumour = read_volume(tumour_mask)
    zone = read_volume(zone_mask)
    if not tumour.geometry.same_as(zone.geometry):
        with contextlib.suppress(ValueError):  # an oblique grid is refused below
            zone = reorient(zone, tumour.orientation)  # the same grid in another axis order
    if not tumour.geometry.same_as(zone.geometry):
        raise ValueError(
            f"the zone mask {zone_mask} is not on the tumour mask's grid: zone "
            f"{zone.geometry!r}, tumour {tumour.geometry!r}. Write both masks on the CT they "
            "were drawn on (`seldinger plan ablation` writes ablation_zone.nii.gz on the CT's "
            "grid), or resample the zone onto the tumour's grid with nearest-neighbour "
            "interpolation (seldinger.imaging.resample(zone, tumour, interpolation='nearest'))."
        )
    tumour = tumour.with_array(tumour.array > 0)
    zone = zone.with_array(zone.array > 0)
    if not tumour.array.any():
        raise ValueError(
            f"the tumour mask {tumour_mask} is empty (no voxel > 0); pass the segmented "
            "tumour (e.g. from `seldinger lesion CT --seed-lps-mm X,Y,Z --out MASK`)."
        )
    with _progress("measuring the margin", not as_json):
        report = assess_margin(tumour, zone)
    written = None
    if figure is not None:
        from seldinger.export.margin_views import render_margin_map

        written = render_margin_map(tumour, report, figure, zone=zone, force=force)
    if as_json:
        _print_json(
            {
                "tumour": str(tumour_mask),
                "zone": str(zone_mask),
                **report.to_dict(),
                "figure": None if written is None else str(written),
            }
        )
        return
    for line in margin_lines(report):
        _out.print(line, highlight=False)
    if written is not None:
        _out.print(f"wrote {written}", highlight=False)


def margin_lines(report: MarginReport) -> list[str]:
    """The margin in a few lines of text (mm and percentages), for the terminal."""
    lo_mm, hi_mm = report.thresholds_mm
    lines = [
        f"min_margin_mm: {report.min_margin_mm:.2f}"
        + ("  (tumour outside the zone)" if report.min_margin_mm < lo_mm else ""),
        f"coverage_percent: {report.coverage_percent:.2f}  (of the tumour volume)",
        f"surface_below_{lo_mm:g}_percent: {report.surface_below_0_percent:.2f}  (non-ablated)",
        f"surface_{lo_mm:g}_to_{hi_mm:g}_percent: {report.surface_0_to_5_percent:.2f}"
        "  (insufficient)",
        f"surface_at_least_{hi_mm:g}_percent: {report.surface_at_least_5_percent:.2f}  (complete)",
        f"mean / median margin: {report.mean_margin_mm:.2f} / {report.median_margin_mm:.2f} mm",
    ]
    if report.surface_excluded_percent:
        lines.append(f"surface excluded: {report.surface_excluded_percent:.2f} %")
    return lines
