"""Picture of an ablation margin: the tumour surface coloured by its margin.

Four panels: the tumour's sub-voxel surface seen from the front (patient's right on the
image left) and from the patient's left (anterior on the image left), each triangle
coloured by its margin; then axial and coronal slices through the point of minimal
margin, with the tumour filled, the ablation zone's outline and the surface points near
the slice coloured the same way. Colours: red below ``thresholds_mm[0]`` (non-ablated),
amber up to ``thresholds_mm[1]`` (insufficient), green beyond (complete); darker the
farther from the thresholds. Points left out by ``exclude`` are grey.

Rendering uses :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot), and the
PNG is written atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # type: ignore[import-untyped]
from scipy.spatial import cKDTree

from seldinger.errors import BadInputError
from seldinger.files import atomic_path, check_overwrite
from seldinger.imaging import Volume, reorient
from seldinger.planning.margin import MarginReport, tumour_surface_mesh

__all__ = ["EXCLUDED_COLOUR", "margin_colormap", "render_margin_map"]

logger = logging.getLogger(__name__)

#: Colour of tumour surface left out of the statistics (``exclude``).
EXCLUDED_COLOUR = "#8e8e93"

_BACKGROUND = "black"
_TEXT = "white"
_ZONE_COLOUR = "#0a84ff"
_MATCH_MM = 0.5  # a drawn vertex takes the margin of a report point this close


def margin_colormap(
    thresholds_mm: tuple[float, float], vmin_mm: float, vmax_mm: float
) -> LinearSegmentedColormap:
    """Red below the first threshold, amber between, green above (for ``[vmin, vmax]``)."""
    lo, hi = thresholds_mm
    span = vmax_mm - vmin_mm

    def at(mm: float) -> float:
        return float(np.clip((mm - vmin_mm) / span, 0.0, 1.0))

    eps = 1e-6
    stops = [
        (0.0, "#5c0a0a"),
        (max(at(lo) - eps, 0.0), "#ff3b30"),
        (at(lo), "#ffcc00"),
        (max(at(hi) - eps, at(lo)), "#ff9500"),
        (at(hi), "#a8e6a1"),
        (1.0, "#1e7b34"),
    ]
    return LinearSegmentedColormap.from_list("margin", stops)


def render_margin_map(
    tumour: Volume,
    report: MarginReport,
    out_png: str | os.PathLike[str],
    zone: Volume | None = None,
    force: bool = False,
) -> Path:
    """Draw the tumour surface coloured by ablative margin (3-D views and two slices).

    Parameters
    ----------
    tumour : Volume
        The tumour mask ``report`` was computed from (any axis order).
    report : MarginReport
        From :func:`seldinger.planning.assess_margin`.
    out_png : str or PathLike
        PNG to write (atomically).
    zone : Volume, optional
        The ablation zone mask (same grid), outlined on the slices.
    force : bool
        Replace an existing ``out_png``.

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    FileExistsError
        If ``out_png`` exists and ``force`` is False.
    ValueError
        If the tumour mask is empty or ``zone`` is on another grid.
    """
    out = Path(out_png)
    check_overwrite(out, force)
    if zone is not None and not tumour.geometry.same_as(zone.geometry):
        raise BadInputError(
            f"zone is on another grid than tumour: {zone.geometry!r} vs {tumour.geometry!r}. "
            "Resample it first with seldinger.imaging.resample(zone, tumour, 'nearest')."
        )
    verts_lps, faces = tumour_surface_mesh(tumour)
    margin = _vertex_margins(verts_lps, report)
    lo, hi = report.thresholds_mm
    known = margin[np.isfinite(margin)]
    vmin = float(min(lo - 5.0, known.min() if len(known) else lo - 5.0))
    vmax = float(max(hi + 5.0, min(known.max() if len(known) else hi + 5.0, hi + 15.0)))
    cmap = margin_colormap((lo, hi), vmin, vmax)
    norm = Normalize(vmin, vmax)

    figure = Figure(figsize=(13.0, 10.0), dpi=100, facecolor=_BACKGROUND)
    canvas = FigureCanvasAgg(figure)
    face_margin = margin[faces].mean(axis=1)  # NaN where any corner is excluded
    colours = cmap(norm(np.nan_to_num(face_margin, nan=vmin)))
    colours[~np.isfinite(face_margin)] = (0.557, 0.557, 0.576, 1.0)
    for n, (name, elev, azim) in enumerate(
        (("From the front", 5.0, -90.0), ("From the patient's left", 5.0, 0.0))
    ):
        axes: Any = figure.add_axes((0.02 + 0.45 * n, 0.50, 0.44, 0.40), projection="3d")
        _draw_mesh(axes, verts_lps, faces, colours, elev, azim)
        axes.set_title(name, color=_TEXT, fontsize=11)

    ct = reorient(tumour, "LPS")
    zone_lps = reorient(zone, "LPS") if zone is not None else None
    worst = report.surface_points_lps_mm[int(np.argmin(report.surface_margin_mm))]
    for n, (name, normal_axis) in enumerate((("Axial", 2), ("Coronal", 1))):
        axes = figure.add_axes((0.04 + 0.45 * n, 0.08, 0.40, 0.36))
        _draw_slice(axes, ct, zone_lps, report, worst, normal_axis, cmap, norm)
        axes.set_title(
            f"{name} through the minimal margin ({'xyz'[normal_axis]} = "
            f"{worst[normal_axis]:.1f} mm)",
            color=_TEXT,
            fontsize=11,
        )

    bar_axes = figure.add_axes((0.93, 0.12, 0.018, 0.74))
    bar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar_axes)
    ticks = sorted({round(vmin, 1), lo, hi, round(vmax, 1)})
    bar.set_ticks(ticks)
    bar.set_label("ablative margin (mm)", color=_TEXT)
    bar.ax.tick_params(colors=_TEXT)
    figure.text(
        0.5,
        0.965,
        f"Minimal ablative margin {report.min_margin_mm:+.1f} mm   ·   coverage "
        f"{report.coverage_percent:.1f} % of tumour volume",
        ha="center",
        color=_TEXT,
        fontsize=14,
    )
    excluded = (
        f"   ·   excluded {report.surface_excluded_percent:.1f} % (grey)"
        if report.surface_excluded_percent > 0
        else ""
    )
    figure.text(
        0.5,
        0.935,
        f"Tumour surface: < {lo:g} mm {report.surface_below_0_percent:.1f} %   ·   "
        f"{lo:g}–{hi:g} mm {report.surface_0_to_5_percent:.1f} %   ·   ≥ {hi:g} mm "
        f"{report.surface_at_least_5_percent:.1f} %{excluded}",
        ha="center",
        color=_TEXT,
        fontsize=11,
    )
    canvas.draw()
    with atomic_path(out, force=force) as tmp:
        figure.savefig(tmp, format="png", dpi=100, facecolor=figure.get_facecolor())
    logger.debug("wrote %s", out)
    return out


def _vertex_margins(
    verts_lps: npt.NDArray[np.float64], report: MarginReport
) -> npt.NDArray[np.float64]:
    """Margin of each drawn vertex: that of the nearest report point, NaN if none is near."""
    if len(report.surface_margin_mm) == 0:
        return np.full(len(verts_lps), np.nan)
    distance, nearest = cKDTree(report.surface_points_lps_mm).query(verts_lps)
    margin = np.asarray(report.surface_margin_mm, dtype=np.float64)[nearest]
    return np.where(distance <= _MATCH_MM, margin, np.nan)


def _draw_mesh(
    axes: Any,
    verts: npt.NDArray[np.float64],
    faces: npt.NDArray[np.int64],
    colours: npt.NDArray[np.float64],
    elev: float,
    azim: float,
) -> None:
    # simple Lambert shading from the camera direction keeps the shape readable
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    e, a = np.radians(elev), np.radians(azim)
    camera = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    shade = 0.45 + 0.55 * np.clip(normal @ camera, 0.0, 1.0)
    shaded = colours.copy()
    shaded[:, :3] *= shade[:, None]
    axes.add_collection3d(Poly3DCollection(tri, facecolors=shaded, edgecolors="none"))
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 + 1.0
    axes.set_xlim(centre[0] - half, centre[0] + half)
    axes.set_ylim(centre[1] - half, centre[1] + half)
    axes.set_zlim(centre[2] - half, centre[2] + half)
    axes.set_box_aspect((1, 1, 1))
    axes.view_init(elev=elev, azim=azim)
    axes.set_facecolor(_BACKGROUND)
    axes.set_axis_off()
    # orientation letters at the ends of the screen axes
    letters = {-90.0: ("R", "L"), 0.0: ("A", "P")}[azim]
    axes.text2D(0.02, 0.5, letters[0], transform=axes.transAxes, color=_TEXT, fontsize=12)
    axes.text2D(0.96, 0.5, letters[1], transform=axes.transAxes, color=_TEXT, fontsize=12)
    axes.text2D(0.5, 0.95, "S", transform=axes.transAxes, color=_TEXT, fontsize=12)
    axes.text2D(0.5, 0.02, "I", transform=axes.transAxes, color=_TEXT, fontsize=12)


def _draw_slice(
    axes: Any,
    tumour: Volume,
    zone: Volume | None,
    report: MarginReport,
    point_lps_mm: npt.NDArray[np.float64],
    normal_axis: int,
    cmap: LinearSegmentedColormap,
    norm: Normalize,
) -> None:
    """One LPS-ordered slice: tumour fill, zone outline, surface points near the plane."""
    index = np.clip(
        np.rint(tumour.lps_to_index(point_lps_mm)).astype(int), 0, np.array(tumour.shape) - 1
    )
    h_axis, v_axis = 0, (1 if normal_axis == 2 else 2)
    spacing, origin = np.asarray(tumour.spacing_mm), tumour.origin_lps_mm
    plane = np.take(tumour.array, index[normal_axis], axis=normal_axis).T != 0
    h = origin[h_axis] + np.arange(plane.shape[1]) * spacing[h_axis]
    v = origin[v_axis] + np.arange(plane.shape[0]) * spacing[v_axis]
    dh, dv = spacing[h_axis] / 2, spacing[v_axis] / 2
    extent = (h[0] - dh, h[-1] + dh, v[0] - dv, v[-1] + dv)
    axes.set_facecolor(_BACKGROUND)
    fill = np.zeros((*plane.shape, 4), dtype=np.float32)
    fill[plane] = (1.0, 1.0, 1.0, 0.22)
    axes.imshow(fill, origin="lower", extent=extent, interpolation="nearest", aspect="equal")
    boxes = [np.argwhere(tumour.array)]
    if zone is not None:
        zplane = np.take(zone.array, index[normal_axis], axis=normal_axis).T != 0
        if zplane.any() and not zplane.all():
            axes.contour(h, v, zplane.astype(np.float32), levels=[0.5], colors=[_ZONE_COLOUR])
        boxes.append(np.argwhere(zone.array))
    # surface points within half a slice of the plane, coloured by margin
    pts = report.surface_points_lps_mm
    offset = np.abs(pts[:, normal_axis] - point_lps_mm[normal_axis])
    near = offset <= spacing[normal_axis] / 2
    axes.scatter(
        pts[near, h_axis],
        pts[near, v_axis],
        c=report.surface_margin_mm[near],
        cmap=cmap,
        norm=norm,
        s=6,
        linewidths=0,
    )
    axes.plot(point_lps_mm[h_axis], point_lps_mm[v_axis], marker="+", color="white", ms=16, mew=2)
    # frame: tumour and zone with 10 mm around
    ijk = np.concatenate(boxes)
    lo_lps = tumour.index_to_lps(ijk.min(axis=0)) - 10.0
    hi_lps = tumour.index_to_lps(ijk.max(axis=0)) + 10.0
    axes.set_xlim(lo_lps[h_axis], hi_lps[h_axis])
    if normal_axis == 2:  # axial: anterior (low y) at the top
        axes.set_ylim(hi_lps[v_axis], lo_lps[v_axis])
        letters = ("R", "L", "A", "P")
    else:
        axes.set_ylim(lo_lps[v_axis], hi_lps[v_axis])
        letters = ("R", "L", "S", "I")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    for text, x, y in zip(letters, (0.01, 0.97, 0.5, 0.5), (0.5, 0.5, 0.95, 0.02), strict=True):
        axes.text(x, y, text, transform=axes.transAxes, color=_TEXT, fontsize=12)
    bar_mm = 10.0
    x0 = lo_lps[h_axis] + 2.0
    y0 = axes.get_ylim()[0] + 0.06 * (axes.get_ylim()[1] - axes.get_ylim()[0])
    axes.plot([x0, x0 + bar_mm], [y0, y0], color=_TEXT, lw=2)
    axes.text(
        x0 + bar_mm / 2, y0, f"{bar_mm:g} mm", color=_TEXT, fontsize=8, ha="center", va="bottom"
    )
