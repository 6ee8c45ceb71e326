"""The pictures of an ablation plan as files: zones over the CT, views along each probe, margin map."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seldinger.imaging import Volume
    from seldinger.plan import AblationSection
    from seldinger.planning import MarginReport

__all__ = [
    "ABLATION_FIGURES",
    "MAX_PROBE_VIEWS",
    "ablation_figure_names",
    "write_ablation_figures",
]

#: Pictures of an ablation plan: the zones over the CT through the lesion, and the
#: margin map; plus ``ablation_probe_<n>.png`` per applicator (:func:`ablation_figure_names`).
ABLATION_FIGURES = ("ablation_zones.png", "margin_map.png")
#: Most applicators ``place_applicators`` uses, hence most probe views.
MAX_PROBE_VIEWS = 4
#: The zones picture shows the zones, the lesion and the entries with this much around
#: them, and at least this wide (mm).
_VIEW_PAD_MM = 15.0
_VIEW_MIN_MM = 90.0


def ablation_figure_names(n_applicators: int = MAX_PROBE_VIEWS) -> list[str]:
    """File names :func:`write_ablation_figures` writes for ``n_applicators``."""
    probes = [f"ablation_probe_{n}.png" for n in range(1, n_applicators + 1)]
    return [ABLATION_FIGURES[0], *probes, ABLATION_FIGURES[1]]


def _view_box(
    ct: Volume, masks: list[Volume], points_lps_mm: list[tuple[float, float, float]]
) -> tuple[slice, ...]:
    """Index box of ``ct`` around the masks (on its grid) and points: 15 mm more, 80 mm at least."""
    import numpy as np

    corners = [np.asarray(ct.lps_to_index(np.asarray(points_lps_mm, dtype=float)))]
    for mask in masks:
        nz = np.argwhere(np.asarray(mask.array, dtype=bool))
        if len(nz):
            corners.append(np.stack([nz.min(axis=0), nz.max(axis=0)]).astype(float))
    found = np.concatenate(corners)
    spacing = np.asarray(ct.spacing_mm)
    centre = (found.min(axis=0) + found.max(axis=0)) / 2
    half = np.maximum(
        (found.max(axis=0) - found.min(axis=0)) / 2 + _VIEW_PAD_MM / spacing,
        _VIEW_MIN_MM / 2 / spacing,
    )
    return tuple(
        slice(max(int(np.floor(c - h)), 0), min(int(np.ceil(c + h)) + 1, n))
        for c, h, n in zip(centre, half, ct.shape, strict=True)
    )


def write_ablation_figures(
    ct: Volume,
    section: AblationSection,
    zone: Volume,
    margin: MarginReport,
    lesion: Volume,
    out_dir: Path,
    masks: Mapping[str, Volume] | None = None,
    window: str | None = None,
    attribution: str | None = None,
) -> list[Path]:
    """Draw an ablation plan into ``out_dir`` (:func:`ablation_figure_names`); return the files.

    ``ablation_zones.png``: axial, coronal and sagittal slices through the lesion with the
    lesion, the predicted zone and ``masks`` (critical structures), the applicator tips
    marked. ``ablation_probe_<n>.png``: the CT along applicator ``n`` (in-plane, orthogonal,
    needle's-eye) with the lesion and zone. ``margin_map.png``: the tumour surface coloured
    by margin.

    Parameters
    ----------
    ct : Volume
        The CT (HU).
    section : AblationSection
        The plan's ablation (applicators, device, settings).
    zone : Volume
        The predicted zone mask on the CT's grid.
    margin : MarginReport
        :func:`seldinger.planning.assess_margin` of the lesion and zone.
    lesion : Volume
        The target's lesion mask on the CT's grid.
    out_dir : Path
        Folder (created if needed); files are replaced.
    masks : mapping, optional
        Critical structures to outline.
    """
    import numpy as np

    from seldinger.export.margin_views import render_margin_map
    from seldinger.export.trajectory_views import render_needle_views
    from seldinger.export.views import picture_window, render_views

    window = window or picture_window(ct, lesion)
    applicators = section.applicators
    shown = {"lesion": lesion, "ablation zone": zone, **(masks or {})}
    centre = lesion.index_to_lps(np.argwhere(np.asarray(lesion.array, dtype=bool)).mean(axis=0))
    points = {f"tip {n}": np.asarray(a.tip_lps_mm) for n, a in enumerate(applicators, 1)}
    settings = ", ".join(section.settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    zones_png = out_dir / ABLATION_FIGURES[0]
    box = _view_box(ct, [zone, lesion], [a.entry_lps_mm for a in applicators])
    render_views(
        ct.crop_index(box),
        centre,
        masks={
            name: mask.crop_index(box) if mask.geometry.same_as(ct.geometry) else mask
            for name, mask in shown.items()
        },
        points=points,
        lines={
            f"probe {n}": (np.asarray(a.entry_lps_mm), np.asarray(a.tip_lps_mm))
            for n, a in enumerate(applicators, 1)
        },
        outlined=("lesion",),
        fill_alpha=0.15,
        window=window,
        out_png=zones_png,
        attribution=attribution,
        title=f"{section.device} {settings}: {len(applicators)} applicator(s), predicted zone "
        f"through the lesion ({window} window)",
        force=True,
    )
    written.append(zones_png)
    for n, applicator in enumerate(applicators, 1):
        path = out_dir / f"ablation_probe_{n}.png"
        n_probes = len(applicator.probes_tip_lps_mm)
        axis = f", the axis of a {n_probes}-probe cluster" if n_probes > 1 else ""
        depth_mm = applicator.insertion_depth_mm
        render_needle_views(
            ct,
            applicator.entry_lps_mm,
            applicator.tip_lps_mm,
            path,
            masks={"lesion": lesion, "ablation zone": zone},
            window=window,
            safety_radius_mm=None,
            force=True,
            title=f"Applicator {n} ({section.device} {applicator.setting}{axis}): "
            f"{depth_mm:.1f} mm from the skin, covers {applicator.coverage_percent_alone:.1f} % of "
            "the lesion + margin alone",
        )
        written.append(path)
    written.append(
        render_margin_map(lesion, margin, out_dir / ABLATION_FIGURES[1], zone=zone, force=True)
    )
    return written
