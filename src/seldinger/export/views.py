"""Axial, coronal and sagittal CT views through a point, in radiological convention.

Display convention (as on a radiology workstation, viewed from the patient's feet
and front):

- axial: patient's right on the image left, anterior at the top;
- coronal: patient's right on the image left, superior at the top;
- sagittal: anterior on the image left, superior at the top.

The CT is reoriented to LPS (exact: transposes and flips, no interpolation), so
the array order of the input does not matter. Pixels are drawn in millimetres, so
anisotropic voxels (e.g. 0.7 × 0.7 × 2.5 mm) keep their physical aspect ratio.
An obliquely acquired CT is shown in its acquisition planes, those closest to
the LPS axes. Rendering uses :class:`matplotlib.figure.Figure` with the Agg
canvas, leaving pyplot's global state alone.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from seldinger.errors import BadInputError
from seldinger.files import atomic_path
from seldinger.imaging import Volume, VolumeGeometry, reorient

__all__ = [
    "MASK_COLOURS",
    "POINT_COLOURS",
    "VIEW_NAMES",
    "WINDOW_PRESETS_HU",
    "RenderedViews",
    "picture_window",
    "render_views",
    "window_hu",
]

logger = logging.getLogger(__name__)

#: Display windows as (centre, width) in HU; common radiology presets.
WINDOW_PRESETS_HU: dict[str, tuple[float, float]] = {
    "lung": (-600, 1500),
    "mediastinum": (40, 400),
    "bone": (400, 1800),
    "soft_tissue": (50, 350),
    "liver": (60, 160),
}

#: Colours of mask overlays, in the order of the ``masks`` mapping.
MASK_COLOURS = ("#ff3b30", "#34c759", "#0a84ff", "#ff9f0a", "#bf5af2", "#00c7be", "#ffd60a")
#: Colours of point markers, in the order of the ``points`` mapping.
POINT_COLOURS = ("#ffff00", "#ff2dff", "#00ffff", "#ffffff", "#ff8c00")

#: Panel names, left to right.
VIEW_NAMES = ("axial", "coronal", "sagittal")

_MASK_FILL_ALPHA = 0.3
_BACKGROUND = "black"
_TEXT = "white"


@dataclass(frozen=True)
class RenderedViews:
    """A rendered three-view figure.

    Attributes
    ----------
    png : bytes
        The PNG file contents.
    size_px : tuple of int
        (width, height) of the PNG in pixels.
    panels_px : dict of str to tuple of int
        For each of ``"axial"``, ``"coronal"``, ``"sagittal"``: the image area
        as (left, top, right, bottom) pixel columns/rows of the PNG, top-left origin.
    slice_index : tuple of int
        (i, j, k) of the displayed slices in the LPS-reoriented CT
        (sagittal at i, coronal at j, axial at k).
    """

    png: bytes
    size_px: tuple[int, int]
    panels_px: dict[str, tuple[int, int, int, int]]
    slice_index: tuple[int, int, int]


#: Below this median HU around the target, the pictures use the lung window.
_LUNG_WINDOW_BELOW_HU = -400.0
#: Around a target point without a mask: the ball whose median HU decides.
_TARGET_BALL_MM = 10.0


def picture_window(
    ct: Volume,
    lesion: Volume | None = None,
    point_lps_mm: npt.ArrayLike | None = None,
) -> str:
    """``"lung"`` for a target in aerated lung, else ``"soft_tissue"``.

    Decided by the median HU of a 5 mm shell around ``lesion`` (a mask on ``ct``'s grid),
    else of a 10 mm ball around ``point_lps_mm``: a liver or mediastinal target is drawn in
    the soft-tissue window, where the lung window shows only white.
    """
    from scipy import ndimage as ndi

    if lesion is not None and np.asarray(lesion.array).any():
        mask = np.asarray(lesion.array, dtype=bool)
        nz = np.nonzero(mask)
        pad = [int(np.ceil(5.0 / s)) + 1 for s in lesion.spacing_mm]
        box = tuple(
            slice(max(int(i.min()) - p, 0), min(int(i.max()) + p + 1, n))
            for i, p, n in zip(nz, pad, mask.shape, strict=True)
        )
        inner = mask[box]
        around = ndi.binary_dilation(inner, iterations=max(pad) - 1) & ~inner
    elif point_lps_mm is not None:
        centre = np.asarray(ct.lps_to_index(np.asarray(point_lps_mm, dtype=float)))
        reach = [_TARGET_BALL_MM / s for s in ct.spacing_mm]
        box = tuple(
            slice(max(int(np.floor(c - r)), 0), max(min(int(np.ceil(c + r)) + 1, n), 0))
            for c, r, n in zip(centre, reach, ct.shape, strict=True)
        )
        grids = np.meshgrid(
            *[
                (np.arange(b.start, b.stop) - c) * s
                for b, c, s in zip(box, centre, ct.spacing_mm, strict=True)
            ],
            indexing="ij",
        )
        around = sum(g**2 for g in grids) <= _TARGET_BALL_MM**2
    else:
        return "soft_tissue"
    values = np.asarray(ct.array[box])[around]
    if values.size and float(np.median(values)) < _LUNG_WINDOW_BELOW_HU:
        return "lung"
    return "soft_tissue"


def window_hu(window: str | tuple[float, float]) -> tuple[float, float]:
    """(centre, width) in HU of a preset name or an explicit pair.

    Parameters
    ----------
    window : str or (float, float)
        A key of :data:`WINDOW_PRESETS_HU` or ``(centre_hu, width_hu)``.

    Returns
    -------
    tuple of float
        ``(centre_hu, width_hu)``.

    Raises
    ------
    ValueError
        For an unknown preset or a non-positive width.

    Examples
    --------
    >>> window_hu("lung")
    (-600.0, 1500.0)
    """
    if isinstance(window, str):
        if window not in WINDOW_PRESETS_HU:
            raise BadInputError(
                f"window must be one of {sorted(WINDOW_PRESETS_HU)} or a (centre_hu, width_hu) "
                f"pair; got {window!r}."
            )
        centre_hu, width_hu = WINDOW_PRESETS_HU[window]
    else:
        try:
            centre_hu, width_hu = (float(v) for v in window)
        except (TypeError, ValueError) as err:
            raise BadInputError(
                f"window must be a preset name or a (centre_hu, width_hu) pair; got {window!r}."
            ) from err
    if not width_hu > 0:
        raise BadInputError(f"window width must be positive (HU); got {width_hu!r}.")
    return float(centre_hu), float(width_hu)


@dataclass(frozen=True)
class _Panel:
    """One view: how LPS-array axes map onto the image's horizontal/vertical axes."""

    name: str
    normal_axis: int  # LPS-array axis fixed in this view
    h_axis: int  # array axis running left → right on screen
    v_axis: int  # array axis running bottom → top before any inversion
    v_down: bool  # True: increasing v_axis runs down the screen
    letters: tuple[str, str, str, str]  # left, right, top, bottom edge


# LPS array: i → patient left, j → posterior, k → superior.
_PANELS = (
    _Panel("axial", 2, 0, 1, True, ("R", "L", "A", "P")),
    _Panel("coronal", 1, 0, 2, False, ("R", "L", "S", "I")),
    _Panel("sagittal", 0, 1, 2, False, ("A", "P", "S", "I")),
)


def render_views(
    volume: Volume,
    point_lps_mm: npt.ArrayLike,
    masks: Mapping[str, Volume] | None = None,
    points: Mapping[str, npt.ArrayLike] | None = None,
    window: str | tuple[float, float] = "lung",
    out_png: str | os.PathLike[str] | None = None,
    *,
    attribution: str | None = None,
    title: str | None = None,
    size_px: tuple[int, int] = (1500, 620),
    force: bool = False,
    outlined: Collection[str] = (),
    fill_alpha: float = _MASK_FILL_ALPHA,
    lines: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
) -> RenderedViews:
    """Render axial, coronal and sagittal CT slices through a point.

    Parameters
    ----------
    volume : Volume
        The CT in HU, any orientation.
    point_lps_mm : array_like, shape (3,)
        LPS position (mm) the three slices pass through.
    masks : mapping of str to Volume, optional
        Structures to overlay, by name; non-zero voxels are inside. A mask on
        another grid is resampled (nearest) onto the displayed slices. Drawn as a
        semi-transparent fill with a contour, colours from :data:`MASK_COLOURS`.
    points : mapping of str to array_like, shape (3,), optional
        Points to mark, LPS mm. A cross marks a point within half a voxel of the
        slice; a hollow circle, one projected onto it from elsewhere. Colours from
        :data:`POINT_COLOURS`.
    window : str or (float, float)
        A :data:`WINDOW_PRESETS_HU` name or ``(centre_hu, width_hu)``.
    out_png : str or PathLike, optional
        Also write the PNG here (atomically).
    attribution : str, optional
        Caption under the views, e.g. the data licence
        ("LIDC-IDRI, The Cancer Imaging Archive, CC BY 3.0").
    title : str, optional
        Heading; default names the point and the window.
    size_px : (int, int)
        (width, height) of the PNG in pixels.
    force : bool
        Replace an existing ``out_png``.
    outlined : collection of str
        Masks drawn as a contour only (no fill), so the CT inside stays readable
        (e.g. a lesion under an ablation zone).
    fill_alpha : float
        Opacity of the mask fills (0 to 1).
    lines : mapping of str to (array_like, array_like), optional
        Segments to draw, by name (e.g. a probe shaft from its entry to its tip, LPS mm),
        projected onto each view; dashed where the segment leaves the slice by more than
        half a voxel. Colours follow the points'.

    Returns
    -------
    RenderedViews
        PNG bytes and where each panel lies in it.

    Raises
    ------
    ValueError
        If the point lies outside the CT, or ``window`` or ``size_px`` is invalid.
    TypeError
        If a mask is not a :class:`~seldinger.imaging.Volume`.
    FileExistsError
        If ``out_png`` exists and ``force`` is False.

    Notes
    -----
    Radiological display convention and LPS handling are described in the module
    docstring. The PNG has exactly ``size_px`` pixels (no tight cropping), so
    :attr:`RenderedViews.panels_px` locates each view in it.
    """
    centre_hu, width_hu = window_hu(window)
    ct = reorient(volume, "LPS")  # a view: exact, no copy
    point = _as_point(point_lps_mm, "point_lps_mm")
    slice_index = _slice_index(ct, point)
    width_px, height_px = (int(n) for n in size_px)
    if width_px < 300 or height_px < 150:
        raise BadInputError(f"size_px must be at least (300, 150) pixels; got {size_px!r}.")

    dpi = 100.0
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor=_BACKGROUND)
    canvas = FigureCanvasAgg(figure)
    top = 0.90
    bottom = 0.16 if attribution else 0.12
    axes_list = [
        figure.add_axes((0.01 + n / 3.0, bottom, 1 / 3.0 - 0.02, top - bottom)) for n in range(3)
    ]

    spacing = np.asarray(ct.spacing_mm)
    origin = ct.origin_lps_mm
    # Display coordinate along array axis a: origin[a] + index * spacing[a] (LPS mm for
    # axis-aligned CTs).
    handles: list[Any] = []
    mask_slices = _mask_slices(ct, slice_index, masks or {})
    point_items = [
        (name, _as_point(p, f"points[{name!r}]"), POINT_COLOURS[n % len(POINT_COLOURS)])
        for n, (name, p) in enumerate((points or {}).items())
    ]
    line_items = [
        (
            name,
            _as_point(a, f"lines[{name!r}][0]"),
            _as_point(b, f"lines[{name!r}][1]"),
            POINT_COLOURS[n % len(POINT_COLOURS)],
        )
        for n, (name, (a, b)) in enumerate((lines or {}).items())
    ]
    if not 0.0 <= fill_alpha <= 1.0:
        raise BadInputError(f"fill_alpha must lie in [0, 1]; got {fill_alpha!r}.")

    for panel, axes in zip(_PANELS, axes_list, strict=True):
        image = _take(ct.array, panel, slice_index[panel.normal_axis])
        h = origin[panel.h_axis] + np.arange(image.shape[1]) * spacing[panel.h_axis]
        v = origin[panel.v_axis] + np.arange(image.shape[0]) * spacing[panel.v_axis]
        dh, dv = spacing[panel.h_axis] / 2, spacing[panel.v_axis] / 2
        extent = (h[0] - dh, h[-1] + dh, v[0] - dv, v[-1] + dv)
        axes.set_facecolor(_BACKGROUND)
        axes.imshow(
            image,
            cmap="gray",
            vmin=centre_hu - width_hu / 2,
            vmax=centre_hu + width_hu / 2,
            origin="lower",
            extent=extent,
            interpolation="bilinear",
            aspect="equal",
        )
        for n, (name, slices) in enumerate(mask_slices.items()):
            colour = MASK_COLOURS[n % len(MASK_COLOURS)]
            inside = slices[panel.name]
            if inside.any() and name not in outlined and fill_alpha > 0:
                fill = np.zeros((*inside.shape, 4), dtype=np.float32)
                fill[inside] = to_rgba(colour, fill_alpha)
                axes.imshow(
                    fill, origin="lower", extent=extent, interpolation="nearest", aspect="equal"
                )
            if inside.any() and not inside.all():
                axes.contour(
                    h,
                    v,
                    inside.astype(np.float32),
                    levels=[0.5],
                    colors=[colour],
                    linewidths=1.5,
                )
        for _name, a_lps_mm, b_lps_mm, colour in line_items:
            _draw_segment(axes, ct, panel, slice_index, a_lps_mm, b_lps_mm, colour)
        for _name, p_lps_mm, colour in point_items:
            p_index = ct.lps_to_index(p_lps_mm)
            a = panel.normal_axis
            on_slice = abs(p_index[a] - slice_index[a]) <= 0.5 + 1e-6
            axes.plot(
                origin[panel.h_axis] + p_index[panel.h_axis] * spacing[panel.h_axis],
                origin[panel.v_axis] + p_index[panel.v_axis] * spacing[panel.v_axis],
                marker="+" if on_slice else "o",
                markersize=14 if on_slice else 8,
                markeredgewidth=2.0 if on_slice else 1.5,
                color=colour,
                markerfacecolor="none",
                linestyle="none",
            )
        axes.set_xlim(extent[0], extent[1])
        if panel.v_down:
            axes.set_ylim(extent[3], extent[2])
        else:
            axes.set_ylim(extent[2], extent[3])
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_visible(False)
        _orientation_letters(axes, panel.letters)
        _scale_bar(axes, extent, panel.v_down)
        a = panel.normal_axis
        slice_mm = origin[a] + slice_index[a] * spacing[a]
        axes.set_title(
            f"{panel.name.capitalize()}  ({'xyz'[a]} = {slice_mm:.1f} mm)",
            color=_TEXT,
            fontsize=11,
        )

    for n, (name, slices) in enumerate(mask_slices.items()):
        if not any(inside.any() for inside in slices.values()):
            continue  # not on any of the slices drawn: no legend entry
        colour = MASK_COLOURS[n % len(MASK_COLOURS)]
        face = "none" if name in outlined else to_rgba(colour, 0.5)
        handles.append(Patch(facecolor=face, edgecolor=colour, linewidth=1.5, label=name))
    for name, p_lps_mm, colour in point_items:
        # the legend shows the marker drawn: a cross on a slice, else a circle
        offset = np.abs(ct.lps_to_index(p_lps_mm) - np.asarray(slice_index))
        on_any = bool(np.any(offset <= 0.5 + 1e-6))
        handles.append(
            Line2D(
                [],
                [],
                marker="+" if on_any else "o",
                markerfacecolor="none",
                color=colour,
                linestyle="none",
                markersize=10 if on_any else 7,
                mew=2 if on_any else 1.5,
                label=name if on_any else f"{name} (off the slices)",
            )
        )
    for name, _, _, colour in line_items:
        handles.append(Line2D([], [], color=colour, linewidth=2.0, label=name))
    if handles:
        figure.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 0.055 if attribution else 0.01),
            ncol=min(len(handles), 6),
            frameon=False,
            labelcolor=_TEXT,
            fontsize=10,
        )
    heading = title or (
        f"Through LPS ({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm — window "
        f"C {centre_hu:g} / W {width_hu:g} HU" + (f" ({window})" if isinstance(window, str) else "")
    )
    figure.text(0.5, 0.965, heading, ha="center", va="center", color=_TEXT, fontsize=12)
    if attribution:
        figure.text(
            0.5, 0.02, attribution, ha="center", va="bottom", color="#bbbbbb", fontsize=8, wrap=True
        )

    canvas.draw()
    panels_px = {}
    for panel, axes in zip(_PANELS, axes_list, strict=True):
        box = axes.get_window_extent()  # display pixels, origin bottom-left
        panels_px[panel.name] = (
            round(box.x0),
            round(height_px - box.y1),
            round(box.x1),
            round(height_px - box.y0),
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor=figure.get_facecolor())
    png = buffer.getvalue()
    if out_png is not None:
        with atomic_path(out_png, force=force) as tmp:
            tmp.write_bytes(png)
        logger.debug("wrote %s", out_png)
    return RenderedViews(png, (width_px, height_px), panels_px, slice_index)


def _draw_segment(
    axes: Any,
    ct: Volume,
    panel: _Panel,
    slice_index: tuple[int, int, int],
    a_lps_mm: npt.NDArray[np.float64],
    b_lps_mm: npt.NDArray[np.float64],
    colour: str,
) -> None:
    """A segment projected onto a view: solid within half a voxel of the slice, else dashed."""
    ts = np.linspace(0.0, 1.0, 201)
    index = ct.lps_to_index(a_lps_mm[None, :] + ts[:, None] * (b_lps_mm - a_lps_mm)[None, :])
    h = ct.origin_lps_mm[panel.h_axis] + index[:, panel.h_axis] * ct.spacing_mm[panel.h_axis]
    v = ct.origin_lps_mm[panel.v_axis] + index[:, panel.v_axis] * ct.spacing_mm[panel.v_axis]
    on = np.abs(index[:, panel.normal_axis] - slice_index[panel.normal_axis]) <= 0.5 + 1e-6
    axes.plot(h, v, color=colour, linewidth=1.2, linestyle=(0, (4, 3)), alpha=0.9, zorder=5)
    if on.any():
        axes.plot(
            np.where(on, h, np.nan), np.where(on, v, np.nan), color=colour, linewidth=2.2, zorder=5
        )


def _as_point(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """Three finite LPS coordinates (mm) as a float array, or ValueError naming ``name``."""
    try:
        point = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise BadInputError(f"{name} must be three LPS coordinates in mm; got {value!r}.") from err
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise BadInputError(f"{name} must be three finite LPS coordinates in mm; got {value!r}.")
    return point


def _slice_index(ct: Volume, point_lps_mm: npt.NDArray[np.float64]) -> tuple[int, int, int]:
    """Nearest voxel index of the point in the LPS-ordered CT, or ValueError if outside."""
    index = np.rint(ct.lps_to_index(point_lps_mm)).astype(int)
    if np.any(index < 0) or np.any(index >= np.asarray(ct.shape)):
        lo, hi = ct.geometry.bounds_lps_mm()
        raise BadInputError(
            f"point_lps_mm {np.round(point_lps_mm, 1).tolist()} lies outside the CT (LPS extent "
            f"{np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm). Choose a point "
            "inside the scanned volume."
        )
    return int(index[0]), int(index[1]), int(index[2])


def _take(array: npt.NDArray[Any], panel: _Panel, index: int) -> npt.NDArray[Any]:
    """2-D slice with rows along ``panel.v_axis`` and columns along ``panel.h_axis``."""
    plane = np.take(array, index, axis=panel.normal_axis)
    # remaining axes keep their order: the lower array axis comes first
    if panel.h_axis < panel.v_axis:
        plane = plane.T
    return np.asarray(plane)


def _plane_geometry(ct: Volume, panel: _Panel, index: int) -> VolumeGeometry:
    """One-voxel-thick grid of a displayed slice of the LPS-ordered CT."""
    shape = list(ct.shape)
    shape[panel.normal_axis] = 1
    affine = ct.affine.copy()
    affine[:3, 3] = ct.index_to_lps(np.eye(3)[panel.normal_axis] * index)
    return VolumeGeometry((shape[0], shape[1], shape[2]), affine)


def _mask_slices(
    ct: Volume, slice_index: tuple[int, int, int], masks: Mapping[str, Volume]
) -> dict[str, dict[str, npt.NDArray[np.bool_]]]:
    """For each mask, its boolean slice per view on the CT's displayed planes."""
    result: dict[str, dict[str, npt.NDArray[np.bool_]]] = {}
    for name, mask in masks.items():
        if not isinstance(mask, Volume):
            raise TypeError(
                f"masks[{name!r}] must be a seldinger.imaging.Volume; got {type(mask).__name__}."
            )
        per_view = {}
        for panel in _PANELS:
            index = slice_index[panel.normal_axis]
            # Resampling onto the single displayed plane is exact (nearest) and cheap,
            # whatever grid the mask is on.
            plane = mask.resample_to(
                _plane_geometry(ct, panel, index), interpolation="nearest", fill_value=0
            )
            per_view[panel.name] = _take(plane.array != 0, panel, 0)
        result[name] = per_view
    return result


def _orientation_letters(axes: Any, letters: tuple[str, str, str, str]) -> None:
    """Patient-direction letters at the left, right, top and bottom image edges."""
    style = {"color": "#ffd60a", "fontsize": 13, "fontweight": "bold", "transform": axes.transAxes}
    left, right, top, bottom = letters
    axes.text(0.015, 0.5, left, ha="left", va="center", **style)
    axes.text(0.985, 0.5, right, ha="right", va="center", **style)
    axes.text(0.5, 0.985, top, ha="center", va="top", **style)
    axes.text(0.5, 0.015, bottom, ha="center", va="bottom", **style)


def _scale_bar(axes: Any, extent: tuple[float, ...], v_down: bool, length_mm: float = 50.0) -> None:
    """A 50 mm bar in the lower-left corner (shows the physical scale and aspect)."""
    x0 = extent[0] + 0.05 * (extent[1] - extent[0])
    height = extent[3] - extent[2]
    y = extent[3] - 0.06 * height if v_down else extent[2] + 0.06 * height
    axes.plot([x0, x0 + length_mm], [y, y], color=_TEXT, linewidth=2)
    axes.text(
        x0 + length_mm / 2,
        y + (-0.015 * height if v_down else 0.015 * height),
        f"{length_mm:g} mm",
        ha="center",
        va="bottom",
        color=_TEXT,
        fontsize=8,
    )
