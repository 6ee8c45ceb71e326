"""A 3-D picture of the airway tree (surface and centrelines) with the target lesion."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # type: ignore[import-untyped]
from skimage.measure import marching_cubes

from seldinger.anatomy import AirwayGraph
from seldinger.errors import BadInputError
from seldinger.imaging import Volume

__all__ = ["render_airways_3d"]

# Generation colours for centrelines: trachea, main bronchi, lobar, segmental, beyond.
_GENERATION_COLOURS = ("#ffffff", "#ffd60a", "#ff9f0a", "#34c759", "#0a84ff", "#bf5af2")
_GENERATION_NAMES = ("white", "yellow", "orange", "green", "blue", "purple")
_BACKGROUND = "black"
# Surfaces are decimated by this many voxels per marching-cubes step (speed, file size).
_STEP = 2


def _surface_lps(mask: Volume, step: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Triangles of a mask's surface in LPS mm (empty arrays for an empty mask)."""
    idx = np.argwhere(mask.array)
    if idx.size == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = idx.max(axis=0) + 3
    crop = np.pad(mask.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 1).astype(np.float32)
    step = step if min(crop.shape) > 4 * step else 1
    verts, faces, _, _ = marching_cubes(crop, level=0.5, step_size=step)
    return mask.index_to_lps(verts + lo - 1), faces


_NAMED_COLOURS = {"red": "#ff3b30", "green": "#34c759", "blue": "#0a84ff", "orange": "#ff9f0a"}


def _named(
    extras: Mapping[str, tuple[Volume, str]] | None,
) -> dict[str, tuple[Volume, str, str]]:
    """Extras with their colour as (hex, name for the caption)."""
    out = {}
    for name, (mask, colour) in (extras or {}).items():
        out[name] = (mask, _NAMED_COLOURS.get(colour, colour), colour)
    return out


def render_airways_3d(
    airways: Volume,
    graph: AirwayGraph | None = None,
    extras: Mapping[str, tuple[Volume, str]] | None = None,
    *,
    title: str = "Airway tree",
    size_px: tuple[int, int] = (1400, 700),
) -> bytes:
    """Render the airway surface, its centreline graph and extra masks, seen two ways.

    Left: from the front (patient's right on the image's left, as a radiograph is read).
    Right: from the patient's left side. Centrelines are coloured by generation.

    Parameters
    ----------
    airways : Volume
        Airway mask.
    graph : AirwayGraph, optional
        Its centreline graph.
    extras : mapping of str to (Volume, colour), optional
        Further masks drawn as opaque surfaces (e.g. ``{"nodule": (mask, "red")}``); a
        colour is a Matplotlib colour, and red/green/blue/orange use the report's palette.
    title : str
        Heading.
    size_px : (int, int)
        PNG size in pixels.

    Returns
    -------
    bytes
        The PNG.
    """
    dpi = 100.0
    figure = Figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi, facecolor=_BACKGROUND)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.0, right=1.0, bottom=0.05, top=0.92, wspace=0.0)
    surfaces = [("airways", *_surface_lps(airways, _STEP), "#8e8e93", 0.25)]
    for name, (mask, colour, _) in _named(extras).items():
        surfaces.append((name, *_surface_lps(mask, 1), colour, 0.9))
    points = [v for _, v, _, _, _ in surfaces if len(v)]
    if not points:
        raise BadInputError("nothing to render: the airway mask and the extra masks are empty.")
    allv = np.concatenate(points)
    centre = (allv.min(axis=0) + allv.max(axis=0)) / 2
    half = float((allv.max(axis=0) - allv.min(axis=0)).max()) / 2 + 5.0
    for n, (elev, azim, view) in enumerate(((5, -90, "anterior"), (5, 0, "left lateral"))):
        axes = figure.add_subplot(1, 2, n + 1, projection="3d", facecolor=_BACKGROUND)
        for _, verts, faces, colour, alpha in surfaces:
            if len(faces):
                axes.add_collection3d(
                    Poly3DCollection(verts[faces], facecolor=colour, edgecolor="none", alpha=alpha)
                )
        if graph is not None:
            for branch in graph:
                colour = _GENERATION_COLOURS[min(branch.generation, len(_GENERATION_COLOURS) - 1)]
                p = branch.points_lps_mm
                axes.plot(p[:, 0], p[:, 1], p[:, 2], color=colour, linewidth=1.2)
        for axis, c in zip("xyz", centre, strict=True):
            getattr(axes, f"set_{axis}lim")(c - half, c + half)
        axes.set_box_aspect((1, 1, 1), zoom=1.35)
        axes.view_init(elev=elev, azim=azim)
        axes.set_axis_off()
        axes.set_title(view, color="white")
    legend = ", ".join(
        f"{g}{'+' if g == len(_GENERATION_NAMES) - 1 else ''} {c}"
        for g, c in enumerate(_GENERATION_NAMES)
    )
    names = ", ".join(f"{name} {label}" for name, (_, _, label) in _named(extras).items())
    figure.suptitle(title, color="white")
    figure.text(
        0.01,
        0.01,
        f"Centrelines by generation (trachea 0): {legend}. Surfaces: airways grey, {names}.",
        color="#cccccc",
        fontsize=9,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=_BACKGROUND)
    return buffer.getvalue()
