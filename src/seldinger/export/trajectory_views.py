"""Pictures of needle trajectories: axial overview, needle-aligned views, skin risk map.

Every position is an LPS point in mm; CT and masks are sampled at LPS positions
through their own affines (:func:`oblique_plane`), so their array axis order
(LPS, RAS, PIR, oblique …) does not matter and masks may lie on other grids.

Display convention (as on a radiology workstation, see :mod:`seldinger.export.views`):
a plane is shown as the standard view its normal is closest to — axial seen from
the feet (patient right on the image left, anterior at the top), coronal seen from
the front (right on the left, superior at the top), sagittal seen from the
patient's left (anterior on the left, superior at the top). The needle's-eye view
is the exception: it looks along the needle, from the entry towards the tip, so it
is never mirrored but may be upside down compared with a standard view; its
orientation letters say how it lies. Rendering uses :class:`matplotlib.figure.Figure`
with the Agg canvas (no pyplot), and each PNG is written atomically.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch

from seldinger.errors import BadInputError
from seldinger.export.views import MASK_COLOURS, POINT_COLOURS, window_hu
from seldinger.files import atomic_path, check_overwrite
from seldinger.imaging import Volume
from seldinger.imaging.reslice import (
    LEFT_LPS,
    NEEDLE_VIEW_NAMES,
    POSTERIOR_LPS,
    ObliquePlane,
    as_point,
    as_points,
    needle_frame,
    needle_view_planes,
    oblique_plane,
    skin_azimuth_deg,
)

__all__ = [
    "BLOCKED_REASON_COLOURS",
    "PATH_COLOURS",
    "blocked_reason_colour",
    "render_needle_views",
    "render_paths_axial",
    "render_skin_risk_map",
]

logger = logging.getLogger(__name__)


_BACKGROUND = "black"
_TEXT = "white"
_LETTER_COLOUR = "#ffd60a"
#: Colours of paths (and needles), distinct for up to 12; path 1 is yellow.
PATH_COLOURS = (
    "#ffff00",
    "#ff2dff",
    "#00ffff",
    "#ffffff",
    "#ff8c00",
    "#7cfc00",
    "#ff6b6b",
    "#b39dff",
    "#c8a165",
    "#4d9fff",
    "#ffb3de",
    "#00c78c",
)
#: One fixed colour per refusal reason on the skin risk map, the same in every case: the
#: reasons of :data:`seldinger.planning.trajectory.REASONS` and the default hard structures.
#: Chosen apart from each other and from the risk colour map (viridis: yellow to purple).
BLOCKED_REASON_COLOURS: dict[str, str] = {
    "too_long": "#8e8e93",  # mid grey
    "outside_body": "#48484a",  # dark grey
    "vessel": "#ff3b30",  # red
    "table_side": "#a2845e",  # brown
    "axial_angle": "#ff9f0a",  # orange
    "unreachable": "#64d2ff",  # light blue
    "bones": "#f2f2f7",  # off-white
    "mediastinum": "#ff8fd0",  # pink
    "central_airways": "#00e0c0",  # turquoise
    "heart": "#c41e3a",  # crimson
    "aorta": "#ff6f00",  # dark orange
    "pulmonary_artery": "#2a5cff",  # blue
    "superior_vena_cava": "#9fa8ff",  # periwinkle
    "esophagus": "#e6c8a0",  # beige
    "spinal_cord": "#e0e000",  # olive yellow
    "blocked": "#aeaeb2",  # no reason given
}
#: For refusal reasons not in :data:`BLOCKED_REASON_COLOURS` (e.g. a user's forbidden
#: structure): picked by a stable hash of the name, so also fixed across cases.
_EXTRA_REASON_COLOURS = ("#d4a5ff", "#ffcc99", "#99ffcc", "#cc6699", "#6699cc", "#996633")
_OUTLINE: list[patheffects.AbstractPathEffect] = [
    patheffects.withStroke(linewidth=3, foreground="black")
]


def render_paths_axial(
    ct: Volume,
    entries_lps_mm: npt.ArrayLike,
    targets_lps_mm: npt.ArrayLike,
    out_png: str | os.PathLike[str],
    masks: Mapping[str, Volume] | None = None,
    labels: Sequence[str] | None = None,
    window: str | tuple[float, float] = "lung",
    force: bool = False,
    *,
    margin_mm: float = 40.0,
    pixel_mm: float = 0.5,
    title: str | None = None,
    legend_labels: Sequence[str] | None = None,
    emphasise_first: bool = True,
) -> Path:
    """Axial slice through the first target with every path on it, honest about depth.

    A path is drawn solid where it runs within the slice and dashed where it is projected
    from other levels (a projection does not show what the path crosses). An entry on the
    slice is a filled dot; one off it is a hollow circle at its projection, labelled with
    its height above (+) or below (-) the slice and drawn on a dotted outline of the skin
    at its own level, so that it is never read as lying in the chest wall of this slice.

    Parameters
    ----------
    ct : Volume
        CT in HU, any orientation.
    entries_lps_mm, targets_lps_mm : array_like, shape (n, 3)
        Skin entries and targets of ``n`` paths, LPS mm. Path 1 (the first row) is
        taken as the best: it is drawn thickest and the slice passes through its target.
    out_png : str or PathLike
        PNG to write (atomically).
    masks : mapping of str to Volume, optional
        Structures drawn as coloured contours with a legend (non-zero = inside);
        any grid. Colours from :data:`~seldinger.export.views.MASK_COLOURS`.
    labels : sequence of str, optional
        Text beside each path's entry; default ``"1"``, ``"2"`` …
    window : str or (float, float)
        A :data:`~seldinger.export.views.WINDOW_PRESETS_HU` name or
        ``(centre_hu, width_hu)``.
    force : bool
        Replace an existing ``out_png``.
    margin_mm : float
        Margin around the bounding box of all entries and targets, mm (the view is
        at least 100 mm wide).
    pixel_mm : float
        Pixel size of the reslice, mm.
    title : str, optional
        Heading; default names the slice position.
    legend_labels : sequence of str, optional
        Legend text per path; default its label, length and "(best)" for path 1.
    emphasise_first : bool
        Draw path 1 thicker (the best of ranked paths); False for peers such as the
        needles of an implant.

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    ValueError
        For badly shaped or non-finite points, ``n`` mismatch, a path whose entry
        equals its target, a label count that is not ``n``, or a bad window.
    TypeError
        If a mask is not a :class:`~seldinger.imaging.Volume`.
    FileExistsError
        If ``out_png`` exists and ``force`` is False.

    Notes
    -----
    Image columns run from patient right (left edge) to left, rows from anterior
    (top) to posterior: the radiological convention. Paths are orthogonal
    projections onto the slice (their S coordinates are dropped); the part within half
    a slice thickness (the CT's S spacing, at least 1 mm) is solid. Colours are distinct
    for up to :data:`PATH_COLOURS` paths.
    """
    out = Path(out_png)
    check_overwrite(out, force)
    entries = as_points(entries_lps_mm, "entries_lps_mm")
    targets = as_points(targets_lps_mm, "targets_lps_mm")
    if entries.shape != targets.shape:
        raise BadInputError(
            f"entries_lps_mm and targets_lps_mm must hold the same number of paths; got "
            f"{len(entries)} entries and {len(targets)} targets."
        )
    lengths_mm = np.linalg.norm(targets - entries, axis=1)
    if np.any(lengths_mm <= 1e-6):
        n = int(np.argmax(lengths_mm <= 1e-6))
        raise BadInputError(
            f"path {n + 1} has its entry equal to its target ({entries[n].round(2).tolist()} "
            "mm); give each path a skin entry distinct from its target."
        )
    names = [str(n + 1) for n in range(len(entries))] if labels is None else list(labels)
    if len(names) != len(entries):
        raise BadInputError(
            f"labels must have one entry per path ({len(entries)}); got {len(names)}."
        )
    legend = (
        [
            f"{names[n]}: {lengths_mm[n]:.0f} mm" + (" (best)" if n == 0 else "")
            for n in range(len(entries))
        ]
        if legend_labels is None
        else [str(t) for t in legend_labels]
    )
    if len(legend) != len(entries):
        raise BadInputError(
            f"legend_labels must have one entry per path ({len(entries)}); got {len(legend)}."
        )
    centre_hu, width_hu = window_hu(window)
    mask_items = _check_masks(masks)

    points = np.concatenate([entries, targets])
    lo = points.min(axis=0) - margin_mm
    hi = points.max(axis=0) + margin_mm
    half = np.maximum((hi - lo) / 2, 50.0)
    centre = (lo + hi) / 2
    centre[2] = targets[0, 2]
    plane = oblique_plane(ct, centre, LEFT_LPS, POSTERIOR_LPS, half[0], half[1], pixel_mm)

    slab_mm = max(_s_spacing_mm(ct) / 2, 1.0)  # half the slice thickness
    slice_s = float(targets[0, 2])

    figure, canvas = _figure(9.0, 9.6)
    axes = figure.add_axes((0.03, 0.14, 0.94, 0.78))
    handles = _draw_plane(axes, plane, centre_hu, width_hu, mask_items)
    any_projected = False
    ts = np.linspace(0.0, 1.0, 301)
    for n in range(len(entries)):
        colour = PATH_COLOURS[n % len(PATH_COLOURS)]
        best = n == 0 and emphasise_first
        width = 3.0 if best else 1.8
        along = entries[n][None, :] + ts[:, None] * (targets[n] - entries[n])[None, :]
        uv = plane.to_plane_mm(along)[:, :2]
        within = np.abs(along[:, 2] - slice_s) <= slab_mm
        if not within.all():
            any_projected = True
            axes.plot(
                uv[:, 0],
                uv[:, 1],
                color=colour,
                linewidth=width * 0.6,
                linestyle=(0, (4, 3)),
                alpha=0.9,
                zorder=5 if best else 4,
            )
        if within.any():
            axes.plot(
                np.where(within, uv[:, 0], np.nan),
                np.where(within, uv[:, 1], np.nan),
                color=colour,
                linewidth=width,
                solid_capstyle="round",
                zorder=5 if best else 4,
            )
        e_uv = uv[0]
        t_uv = uv[-1]
        rise_mm = float(entries[n, 2] - slice_s)
        on_slice = abs(rise_mm) <= slab_mm
        if on_slice:
            axes.plot(*e_uv, "o", color=colour, markersize=8 if best else 6, zorder=6)
            label = names[n]
        else:
            _skin_outline_at(axes, ct, plane, entries[n], colour)
            axes.plot(
                *e_uv,
                "o",
                color=colour,
                markerfacecolor="none",
                markeredgewidth=2.0,
                markersize=9 if best else 7,
                zorder=6,
            )
            label = names[n]
        axes.plot(*t_uv, "x", color=colour, markersize=8, mew=2, zorder=6)
        # label just outside the entry, continuing the path's projected direction
        d = e_uv - t_uv
        step = d / np.linalg.norm(d) if np.linalg.norm(d) > 1e-6 else np.array([0.0, -1.0])
        x, y = e_uv + 7.0 * step
        text = axes.text(
            x,
            y,
            label,
            color=colour,
            fontsize=12 if best else 10,
            fontweight="bold",
            ha="center",
            va="center",
            zorder=7,
        )
        text.set_path_effects(_OUTLINE)
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                linewidth=width,
                marker="o",
                markerfacecolor=colour if on_slice else "none",
                label=legend[n] + ("" if on_slice else f", entry {rise_mm:+.0f} mm"),
            )
        )
    _finish_axes(axes, plane)
    if any_projected:
        handles += [
            Line2D([], [], color=_TEXT, linewidth=2.0, label="within this slice"),
            Line2D(
                [],
                [],
                color=_TEXT,
                linewidth=1.2,
                linestyle=(0, (4, 3)),
                label="projected from other levels",
            ),
            Line2D(
                [],
                [],
                color=_TEXT,
                marker="o",
                markerfacecolor="none",
                linestyle=":",
                label="entry off the slice (S ± mm), its skin dotted",
            ),
        ]
    widest = max(len(h.get_label()) for h in handles) if handles else 0
    _legend(figure, handles, 0.01, ncol=2 if widest > 30 else 3, fontsize=9)
    heading = title or (
        f"Axial, S = {slice_s:.1f} mm (through target 1), {len(entries)} path(s); "
        f"window C {centre_hu:g} / W {width_hu:g} HU"
    )
    figure.text(0.5, 0.972, heading, ha="center", va="center", color=_TEXT, fontsize=12)
    if any_projected:
        figure.text(
            0.5,
            0.942,
            "Dashed: projected from other levels, not what this slice shows the path crossing "
            "(see the needle views).",
            ha="center",
            va="center",
            color="#ffd60a",
            fontsize=10,
        )
    return _save(figure, canvas, out, force)


def render_needle_views(
    ct: Volume,
    entry_lps_mm: npt.ArrayLike,
    target_lps_mm: npt.ArrayLike,
    out_png: str | os.PathLike[str],
    masks: Mapping[str, Volume] | None = None,
    window: str | tuple[float, float] = "lung",
    safety_radius_mm: float | None = 3.0,
    force: bool = False,
    *,
    pixel_mm: float = 0.5,
    title: str | None = None,
) -> Path:
    """Three reslices along one needle: in-plane, orthogonal and needle's-eye.

    Parameters
    ----------
    ct : Volume
        CT in HU, any orientation.
    entry_lps_mm, target_lps_mm : array_like, shape (3,)
        Skin entry and tip in LPS mm.
    out_png : str or PathLike
        PNG to write (atomically).
    masks : mapping of str to Volume, optional
        Structures drawn as contours in every panel (non-zero = inside), any grid.
    window : str or (float, float)
        A preset name or ``(centre_hu, width_hu)``.
    safety_radius_mm : float or None
        Radius of the circle around the target in the needle's-eye view; None: none.
    force : bool
        Replace an existing ``out_png``.
    pixel_mm : float
        Pixel size of the reslices, mm.
    title : str, optional
        Heading; default gives the needle length, entry and target.

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    ValueError
        For invalid points, entry equal to target, a bad window or a negative radius.
    TypeError
        If a mask is not a :class:`~seldinger.imaging.Volume`.
    FileExistsError
        If ``out_png`` exists and ``force`` is False.

    Notes
    -----
    Geometry of the planes: :func:`needle_view_planes`. The needle planes reach
    30 mm beyond entry and tip and 60 mm to each side; the needle's-eye view is
    80 mm wide and looks from the entry towards the tip.
    """
    out = Path(out_png)
    check_overwrite(out, force)
    entry = as_point(entry_lps_mm, "entry_lps_mm")
    target = as_point(target_lps_mm, "target_lps_mm")
    if safety_radius_mm is not None and not (
        np.isfinite(safety_radius_mm) and safety_radius_mm >= 0
    ):
        raise BadInputError(
            f"safety_radius_mm must be a non-negative number of mm or None; got "
            f"{safety_radius_mm!r}."
        )
    centre_hu, width_hu = window_hu(window)
    mask_items = _check_masks(masks)
    _, _, _, length_mm = needle_frame(entry, target)
    planes = needle_view_planes(ct, entry, target, pixel_mm=pixel_mm)

    figure, canvas = _figure(18.0, 7.4)
    drawn: dict[str, Any] = {}
    titles = {
        "in_plane": f"In-plane (needle + S×needle), length {length_mm:.1f} mm",
        "orthogonal": f"Orthogonal plane along needle, length {length_mm:.1f} mm",
        "needles_eye": "Needle's-eye at target (looking along needle)",
    }
    for n, name in enumerate(NEEDLE_VIEW_NAMES):
        plane = planes[name]
        axes = figure.add_axes((0.01 + n / 3.0, 0.1, 1 / 3.0 - 0.02, 0.78))
        for handle in _draw_plane(axes, plane, centre_hu, width_hu, mask_items):
            drawn.setdefault(handle.get_label(), handle)
        if name == "needles_eye":
            axes.plot(0.0, 0.0, "+", color=POINT_COLOURS[0], markersize=16, mew=2, zorder=6)
            if safety_radius_mm:
                axes.add_patch(
                    Circle(
                        (0.0, 0.0),
                        safety_radius_mm,
                        fill=False,
                        edgecolor=POINT_COLOURS[2],
                        linewidth=1.5,
                        zorder=6,
                    )
                )
                axes.text(
                    safety_radius_mm * 0.75,
                    -safety_radius_mm * 0.75,
                    f"  {safety_radius_mm:g} mm",
                    color=POINT_COLOURS[2],
                    fontsize=9,
                    ha="left",
                    va="bottom",
                    zorder=7,
                ).set_path_effects(_OUTLINE)
        else:
            _draw_needle(axes, plane, entry, target, length_mm)
        _finish_axes(axes, plane)
        axes.set_title(titles[name], color=_TEXT, fontsize=11)
    order = [item[0] for item in mask_items]
    handles: list[Any] = [drawn[name] for name in order if name in drawn]
    handles += [
        Line2D([], [], color=POINT_COLOURS[0], linewidth=2.5, label="needle"),
        Line2D([], [], color=POINT_COLOURS[0], marker="o", linestyle="none", label="entry"),
        Line2D([], [], color=POINT_COLOURS[1], marker="v", linestyle="none", label="tip"),
    ]
    if safety_radius_mm:
        handles.append(
            Line2D(
                [],
                [],
                color=POINT_COLOURS[2],
                marker="o",
                markerfacecolor="none",
                linestyle="none",
                label=f"safety radius {safety_radius_mm:g} mm",
            )
        )
    _legend(figure, handles, 0.005)
    heading = title or (
        f"Needle {length_mm:.1f} mm: entry LPS ({entry[0]:.1f}, {entry[1]:.1f}, {entry[2]:.1f}) "
        f"→ target ({target[0]:.1f}, {target[1]:.1f}, {target[2]:.1f}) mm; "
        f"window C {centre_hu:g} / W {width_hu:g} HU"
    )
    figure.text(0.5, 0.965, heading, ha="center", va="center", color=_TEXT, fontsize=12)
    return _save(figure, canvas, out, force)


def render_skin_risk_map(
    candidates_lps_mm: npt.ArrayLike,
    risk: npt.ArrayLike,
    out_png: str | os.PathLike[str],
    centre_lps_mm: npt.ArrayLike,
    best_entries_lps_mm: npt.ArrayLike | None = None,
    blocked_reason: Sequence[str] | npt.NDArray[np.str_] | None = None,
    force: bool = False,
    *,
    title: str | None = None,
) -> Path:
    """Cylindrical unwrap of skin entry candidates coloured by risk.

    Parameters
    ----------
    candidates_lps_mm : array_like, shape (N, 3)
        Skin entry candidates, LPS mm.
    risk : array_like, shape (N,)
        Risk score per candidate, lower is better; NaN marks a blocked candidate.
    out_png : str or PathLike
        PNG to write (atomically).
    centre_lps_mm : array_like, shape (3,)
        A point on the vertical unwrap axis (usually the target).
    best_entries_lps_mm : array_like, shape (k, 3), optional
        Entries to mark with numbered stars (1 = best).
    blocked_reason : sequence of str, shape (N,), optional
        Why each blocked candidate is blocked (e.g. "bone", "vessel"); read only
        where ``risk`` is NaN. Blocked candidates are then coloured by reason with
        a legend; otherwise all are grey.
    force : bool
        Replace an existing ``out_png``.
    title : str, optional
        Heading.

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    ValueError
        For badly shaped or non-finite candidates, ``risk`` of another length or
        holding ±inf, or ``blocked_reason`` of another length.
    FileExistsError
        If ``out_png`` exists and ``force`` is False.

    Notes
    -----
    x is :func:`skin_azimuth_deg` (-180 … 180: P, R, A at 0, L, P), so the
    front of the patient is in the middle with the patient's right on the left,
    as when facing the patient; y is the S coordinate (superior up).
    """
    out = Path(out_png)
    check_overwrite(out, force)
    points = as_points(candidates_lps_mm, "candidates_lps_mm")
    values = np.asarray(risk, dtype=np.float64).reshape(-1)
    if values.shape != (len(points),):
        raise BadInputError(
            f"risk must hold one score per candidate ({len(points)}); got shape {np.shape(risk)}."
        )
    if np.isinf(values).any():
        raise BadInputError("risk holds ±inf; use NaN for blocked candidates and finite scores.")
    centre = as_point(centre_lps_mm, "centre_lps_mm")
    best = (
        np.empty((0, 3))
        if best_entries_lps_mm is None
        else as_points(best_entries_lps_mm, "best_entries_lps_mm")
    )
    reasons = None
    if blocked_reason is not None:
        reasons = np.asarray(blocked_reason, dtype=str).reshape(-1)
        if reasons.shape != (len(points),):
            raise BadInputError(
                f"blocked_reason must hold one string per candidate ({len(points)}); got "
                f"shape {np.shape(blocked_reason)}."
            )

    azimuth_deg = skin_azimuth_deg(points, centre)
    s_mm = points[:, 2]
    blocked = np.isnan(values)
    figure, canvas = _figure(13.0, 6.5)
    axes = figure.add_axes((0.065, 0.14, 0.64, 0.76))
    axes.set_facecolor("#1c1c1e")
    handles: list[Any] = []
    # Each candidate fills its cell of a raster (azimuth x S) and the empty cells between
    # neighbouring candidates take the nearest one's value: no stripes of unsampled rows.
    grid = _SkinRaster(azimuth_deg, s_mm, np.hypot(*(points - centre)[:, :2].T))
    if blocked.any():
        labelled = (
            np.full(len(points), "blocked", dtype=object)
            if reasons is None
            else np.where(reasons == "", "blocked", reasons).astype(object)
        )
        names = sorted({str(r) for r in labelled[blocked]})
        codes = np.full(len(points), -1, dtype=np.int64)
        for n, name in enumerate(names):
            codes[blocked & (labelled == name)] = n
        category = grid.fill(np.where(blocked, codes, -1).astype(np.float64), blocked)
        rgba = np.zeros((*category.shape, 4), dtype=np.float32)
        for n, name in enumerate(names):
            rgba[category == n] = to_rgba(blocked_reason_colour(name))
        axes.imshow(
            rgba,
            origin="lower",
            extent=grid.extent,
            aspect="auto",
            interpolation="nearest",
            zorder=1,
        )
        for name in names:
            label = f"blocked: {name}" if reasons is not None else name
            handles.append(Patch(color=blocked_reason_colour(name), label=label))
    ok = ~blocked
    finite = values[ok]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    risk_image = grid.fill(np.where(ok, values, np.nan), ok)
    scatter = axes.imshow(
        np.ma.masked_invalid(risk_image),
        origin="lower",
        extent=grid.extent,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis_r",
        norm=Normalize(lo, hi),
        zorder=2,
    )
    colourbar = figure.colorbar(scatter, cax=figure.add_axes((0.72, 0.14, 0.015, 0.76)))
    colourbar.set_label("risk score (lower is better)", color=_TEXT)
    colourbar.ax.tick_params(colors=_TEXT)
    if len(best):
        best_azimuth = skin_azimuth_deg(best, centre)
        axes.scatter(
            best_azimuth,
            best[:, 2],
            s=260,
            marker="*",
            c="#ff2d55",
            edgecolors="white",
            linewidths=1.2,
            zorder=5,
        )
        for n, (x, y) in enumerate(zip(best_azimuth, best[:, 2], strict=True)):
            axes.annotate(
                str(n + 1),
                (x, y),
                xytext=(7, 7),
                textcoords="offset points",
                color="white",
                fontsize=12,
                fontweight="bold",
                zorder=6,
            ).set_path_effects(_OUTLINE)
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                color="#ff2d55",
                linestyle="none",
                markersize=12,
                label="best entries",
            )
        )
    axes.set_xlim(-180, 180)
    axes.set_xticks([-180, -90, 0, 90, 180])
    axes.set_xticklabels(["P\n-180°", "R\n-90°", "A\n0°", "L\n90°", "P\n180°"])
    axes.set_xlabel("azimuth around the S axis through the centre (0° anterior, +90° patient left)")
    axes.set_ylabel("S (mm, superior up)")
    for side in ("x", "y"):
        axes.tick_params(axis=side, colors=_TEXT)
    axes.xaxis.label.set_color(_TEXT)
    axes.yaxis.label.set_color(_TEXT)
    if handles:  # outside the map, right of the colour bar: it hides no entry
        figure.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(0.80, 0.52),
            fontsize=9,
            frameon=False,
            labelcolor=_TEXT,
        )
    heading = title or (
        f"Skin entry risk map: {int(ok.sum())} safe entries, {int(blocked.sum())} refused; unwrapped "
        f"around LPS x = {centre[0]:.1f}, y = {centre[1]:.1f} mm"
    )
    figure.text(0.5, 0.955, heading, ha="center", va="center", color=_TEXT, fontsize=12)
    return _save(figure, canvas, out, force)


def blocked_reason_colour(reason: str) -> str:
    """The fixed colour of a refusal reason on the skin risk map (the same in every case)."""
    if reason in BLOCKED_REASON_COLOURS:
        return BLOCKED_REASON_COLOURS[reason]
    return _EXTRA_REASON_COLOURS[zlib.crc32(reason.encode()) % len(_EXTRA_REASON_COLOURS)]


# --- helpers ---------------------------------------------------------------------------


class _SkinRaster:
    """A raster of the unwrapped skin: azimuth (deg) columns, S (mm) rows.

    Rows are the candidates' S step (they lie on an isotropic grid), columns about as many
    degrees as that step spans at the median distance from the axis. An empty cell takes
    the value of the nearest filled cell within two steps (in mm on the skin), so gaps
    between neighbouring samples close while the true edges of the map stay.
    """

    def __init__(
        self,
        azimuth_deg: npt.NDArray[np.float64],
        s_mm: npt.NDArray[np.float64],
        radius_mm: npt.NDArray[np.float64],
    ) -> None:
        levels = np.unique(np.round(s_mm, 2))
        steps = np.diff(levels)
        step = float(np.median(steps)) if steps.size else 1.0
        self.s_step = float(np.clip(step, 0.5, 10.0))
        radius = float(np.median(radius_mm)) if radius_mm.size else 100.0
        self.az_step = float(np.clip(np.degrees(self.s_step / max(radius, 1.0)), 0.2, 5.0))
        self.az_mm = np.radians(self.az_step) * max(radius, 1.0)
        self.s0 = float(s_mm.min()) - self.s_step / 2 if s_mm.size else 0.0
        top = float(s_mm.max()) + self.s_step / 2 if s_mm.size else 1.0
        self.rows = max(int(np.ceil((top - self.s0) / self.s_step)), 1)
        self.cols = int(np.ceil(360.0 / self.az_step))
        self.row = np.clip(((s_mm - self.s0) / self.s_step).astype(np.int64), 0, self.rows - 1)
        self.col = np.clip(
            ((azimuth_deg + 180.0) / self.az_step).astype(np.int64), 0, self.cols - 1
        )
        self.extent = (
            -180.0,
            -180.0 + self.cols * self.az_step,
            self.s0,
            self.s0 + self.rows * self.s_step,
        )

    def fill(
        self, values: npt.NDArray[np.float64], use: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float64]:
        """Raster of ``values`` of the ``use`` candidates (the smallest per cell), gaps closed;
        NaN where no such candidate is near."""
        from scipy import ndimage as ndi

        image = np.full((self.rows, self.cols), np.inf)
        np.minimum.at(image, (self.row[use], self.col[use]), values[use])
        empty = ~np.isfinite(image)
        if empty.all():
            return np.full(image.shape, np.nan)
        distance, (rr, cc) = ndi.distance_transform_edt(
            empty, sampling=(self.s_step, self.az_mm), return_indices=True
        )
        filled = image[rr, cc]
        filled[distance > 2.0 * max(self.s_step, self.az_mm)] = np.nan
        return filled


def _s_spacing_mm(ct: Volume) -> float:
    """Spacing (mm) of the CT's voxels along S: the axis whose direction is closest to S."""
    directions = np.asarray(ct.affine)[:3, :3]
    lengths = np.linalg.norm(directions, axis=0)
    axis = int(np.argmax(np.abs(directions[2]) / np.where(lengths > 0, lengths, 1.0)))
    return float(lengths[axis])


def _skin_outline_at(
    axes: Any,
    ct: Volume,
    plane: ObliquePlane,
    point_lps_mm: npt.NDArray[np.float64],
    colour: str,
    reach_mm: float = 20.0,
) -> None:
    """Dotted skin outline of the axial slice through ``point_lps_mm``, near the point.

    The body is what the air connected to the image border (below -400 HU) leaves; only
    the outline within ``reach_mm`` of the point is drawn, in ``colour``.
    """
    from scipy import ndimage as ndi

    shift = float(point_lps_mm[2] - plane.origin_lps_mm[2])
    level = ObliquePlane(
        plane.image,
        plane.origin_lps_mm + np.array([0.0, 0.0, shift]),
        plane.u,
        plane.v,
        plane.u_mm,
        plane.v_mm,
        plane.pixel_mm,
    ).resample(ct, order=1)
    air = level.image < -400.0
    labels, _ = ndi.label(air)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, edge[edge > 0])
    body = (~outside).astype(np.float32)
    p_uv = plane.to_plane_mm(point_lps_mm)[:2]
    far = (plane.u_mm[None, :] - p_uv[0]) ** 2 + (plane.v_mm[:, None] - p_uv[1]) ** 2 > reach_mm**2
    if body[~far].min(initial=1.0) == body[~far].max(initial=0.0):
        return  # no skin near the point on its slice
    axes.contour(
        plane.u_mm,
        plane.v_mm,
        np.ma.masked_where(far, body),
        levels=[0.5],
        colors=[colour],
        linewidths=1.3,
        linestyles=[(0, (1, 2))],
        zorder=4,
    )


def _direction_letters(direction: npt.NDArray[np.float64]) -> str:
    """Patient-direction letters of an LPS direction, strongest first (e.g. "LA")."""
    letters = []
    for axis in np.argsort(-np.abs(direction), kind="stable"):
        if abs(direction[axis]) >= 0.35:
            letters.append(("LR", "PA", "SI")[axis][0 if direction[axis] > 0 else 1])
    return "".join(letters)


def _check_masks(masks: Mapping[str, Volume] | None) -> list[tuple[str, Volume, str]]:
    items = []
    for n, (name, mask) in enumerate((masks or {}).items()):
        if not isinstance(mask, Volume):
            raise TypeError(
                f"masks[{name!r}] must be a seldinger.imaging.Volume; got {type(mask).__name__}."
            )
        # 0/1 once here, so that the mask is interpolated linearly (see _draw_plane)
        binary = mask if mask.array.dtype == np.bool_ else mask.with_array(mask.array != 0)
        items.append((str(name), binary, MASK_COLOURS[n % len(MASK_COLOURS)]))
    return items


def _draw_plane(
    axes: Any,
    plane: ObliquePlane,
    centre_hu: float,
    width_hu: float,
    mask_items: list[tuple[str, Volume, str]],
) -> list[Any]:
    """CT image with mask contours, in plane offsets (x right, y down); legend handles."""
    axes.set_facecolor(_BACKGROUND)
    axes.imshow(
        plane.image,
        cmap="gray",
        vmin=centre_hu - width_hu / 2,
        vmax=centre_hu + width_hu / 2,
        origin="lower",
        extent=plane.extent_mm,
        interpolation="bilinear",
        aspect="equal",
    )
    handles = []
    for name, mask, colour in mask_items:
        # Linear interpolation of the 0/1 mask, contoured at 0.5: a smooth outline on
        # anisotropic voxels (nearest reslicing breaks a sphere into jagged fragments).
        fraction = plane.resample(mask, order=1, fill_value=0).image
        inside = fraction >= 0.5
        if not inside.any():
            continue  # not on this plane: no legend entry either
        if not inside.all():
            axes.contour(
                plane.u_mm,
                plane.v_mm,
                fraction,
                levels=[0.5],
                colors=[colour],
                linewidths=1.3,
            )
        handles.append(Patch(facecolor="none", edgecolor=colour, linewidth=2, label=name))
    return handles


def _draw_needle(
    axes: Any,
    plane: ObliquePlane,
    entry: npt.NDArray[np.float64],
    target: npt.NDArray[np.float64],
    length_mm: float,
) -> None:
    """Needle from entry to tip with 10 mm depth ticks, on a plane containing it."""
    e = plane.to_plane_mm(entry)[:2]
    t = plane.to_plane_mm(target)[:2]
    axes.plot([e[0], t[0]], [e[1], t[1]], color=POINT_COLOURS[0], linewidth=2.5, zorder=5)
    direction = (t - e) / length_mm
    normal = np.array([-direction[1], direction[0]])
    for depth_mm in np.arange(10.0, length_mm, 10.0):
        p = e + depth_mm * direction
        a, b = p - 1.5 * normal, p + 1.5 * normal
        axes.plot([a[0], b[0]], [a[1], b[1]], color=POINT_COLOURS[0], linewidth=1.2, zorder=5)
    axes.plot(*e, "o", color=POINT_COLOURS[0], markersize=8, zorder=6)
    axes.plot(*t, "v", color=POINT_COLOURS[1], markersize=9, zorder=6)


def _finish_axes(axes: Any, plane: ObliquePlane) -> None:
    """Limits (y down), no ticks, orientation letters and a scale bar."""
    left, right, top, bottom = plane.extent_mm
    axes.set_xlim(left, right)
    axes.set_ylim(bottom, top)  # rows (v) run down the screen
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    style = {
        "color": _LETTER_COLOUR,
        "fontsize": 13,
        "fontweight": "bold",
        "transform": axes.transAxes,
    }
    for text, x, y, ha, va in (
        (_direction_letters(-plane.u), 0.015, 0.5, "left", "center"),
        (_direction_letters(plane.u), 0.985, 0.5, "right", "center"),
        (_direction_letters(-plane.v), 0.5, 0.985, "center", "top"),
        (_direction_letters(plane.v), 0.5, 0.015, "center", "bottom"),
    ):
        axes.text(x, y, text, ha=ha, va=va, **style).set_path_effects(_OUTLINE)
    width_mm = right - left
    bar_mm = next((b for b in (50.0, 20.0, 10.0, 5.0) if b <= width_mm / 4), 1.0)
    x0 = left + 0.05 * width_mm
    y = bottom - 0.06 * (bottom - top)
    axes.plot([x0, x0 + bar_mm], [y, y], color=_TEXT, linewidth=2, zorder=8)
    axes.text(
        x0 + bar_mm / 2,
        y - 0.015 * (bottom - top),
        f"{bar_mm:g} mm",
        ha="center",
        va="bottom",
        color=_TEXT,
        fontsize=8,
        zorder=8,
    ).set_path_effects(_OUTLINE)


def _figure(width_in: float, height_in: float) -> tuple[Figure, FigureCanvasAgg]:
    figure = Figure(figsize=(width_in, height_in), dpi=100, facecolor=_BACKGROUND)
    return figure, FigureCanvasAgg(figure)


def _legend(
    figure: Figure, handles: list[Any], y: float, ncol: int = 6, fontsize: float = 10
) -> None:
    if handles:
        figure.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, y),
            ncol=min(len(handles), ncol),
            frameon=False,
            labelcolor=_TEXT,
            fontsize=fontsize,
        )


def _save(figure: Figure, canvas: FigureCanvasAgg, out: Path, force: bool) -> Path:
    with atomic_path(out, force=force) as tmp:
        figure.savefig(tmp, format="png", dpi=100, facecolor=figure.get_facecolor())
    logger.debug("wrote %s", out)
    return out
