"""Morphology helpers shared by the anatomy modules: spacing-aware elements, components.

scipy.ndimage has the primitives; these wrappers only turn millimetres into voxel
structuring elements on anisotropic grids and name the idioms used in every module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

BoolArray = npt.NDArray[np.bool_]

#: In-plane (i, j) 8-connectivity, no connection across k: per-axial-slice operations in
#: one call on an LPS-ordered array.
IN_PLANE_8 = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE_8[:, :, 1] = True


def ellipsoid(radius_mm: float, spacing_mm: Sequence[float], in_plane: bool = False) -> BoolArray:
    """Structuring element of a ball of ``radius_mm`` on a grid with ``spacing_mm``.

    Each axis gets ``floor(radius_mm / spacing)`` voxels of half-width (the neighbours
    within the radius); with ``in_plane`` the third axis has none.

    >>> ellipsoid(1.5, (0.75, 0.75, 2.5)).shape
    (5, 5, 1)
    >>> ellipsoid(3.0, (1.0, 1.0, 1.0), in_plane=True).shape
    (7, 7, 1)
    """
    half = [int(np.floor(radius_mm / s + 1e-9)) for s in spacing_mm]
    if in_plane:
        half[2] = 0
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist2 = sum((g * s / radius_mm) ** 2 for g, s in zip(grids, spacing_mm, strict=True))
    return np.asarray(dist2 <= 1.0 + 1e-9)


def largest_component(mask: BoolArray, structure: npt.ArrayLike | None = None) -> BoolArray:
    """The largest connected component of ``mask`` (all False when it is empty)."""
    labels, n = ndi.label(mask, structure=structure)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(labels == sizes.argmax())


def components_above(
    mask: BoolArray, min_voxels: int, structure: npt.ArrayLike | None = None
) -> BoolArray:
    """Connected components of ``mask`` with at least ``min_voxels`` voxels."""
    labels, n = ndi.label(mask, structure=structure)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return np.asarray(keep[labels])


def fill_holes_per_slice(mask: BoolArray) -> BoolArray:
    """Fill holes in each axial (i, j) slice of an LPS-ordered mask, in one call."""
    return np.asarray(ndi.binary_fill_holes(mask, structure=IN_PLANE_8))


def bounding_slices(mask: BoolArray, pad: int | Sequence[int] = 0) -> tuple[slice, ...]:
    """Slices of the bounding box of ``mask`` grown by ``pad`` voxels, clipped to the array."""
    pads = [pad] * mask.ndim if isinstance(pad, int) else list(pad)
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        if idx.size == 0:
            return tuple(slice(0, 0) for _ in range(mask.ndim))
        out.append(
            slice(
                max(int(idx[0]) - pads[axis], 0),
                min(int(idx[-1]) + pads[axis] + 1, mask.shape[axis]),
            )
        )
    return tuple(out)


# Morphology by exact Euclidean balls in millimetres through distance transforms: one pass
# however large the radius, and exact on anisotropic grids (a structuring element is not).


def dilate_mm(mask: BoolArray, radius_mm: float, spacing_mm: Sequence[float]) -> BoolArray:
    """Dilation by a ball of ``radius_mm`` (exact, through a Euclidean distance transform).

    >>> m = np.zeros((9, 1, 1), bool); m[4] = True
    >>> np.flatnonzero(dilate_mm(m, 2.0, (1.0, 1.0, 1.0))[:, 0, 0]).tolist()
    [2, 3, 4, 5, 6]
    """
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return np.asarray(ndi.distance_transform_edt(~mask, sampling=spacing_mm) <= radius_mm)


def erode_mm(mask: BoolArray, radius_mm: float, spacing_mm: Sequence[float]) -> BoolArray:
    """Erosion by a ball of ``radius_mm`` (voxels farther than it from the outside)."""
    if mask.all():
        return np.ones_like(mask, dtype=bool)
    return np.asarray(ndi.distance_transform_edt(mask, sampling=spacing_mm) > radius_mm)


def open_mm(mask: BoolArray, radius_mm: float, spacing_mm: Sequence[float]) -> BoolArray:
    """Opening (erosion then dilation) by a ball of ``radius_mm``."""
    return dilate_mm(erode_mm(mask, radius_mm, spacing_mm), radius_mm, spacing_mm)


def close_mm(mask: BoolArray, radius_mm: float, spacing_mm: Sequence[float]) -> BoolArray:
    """Closing (dilation then erosion) by a ball of ``radius_mm``; the array border is outside."""
    return erode_mm(dilate_mm(mask, radius_mm, spacing_mm), radius_mm, spacing_mm)


# In-plane coarse grids: several steps work on (i, j) blocks of ``step`` voxels, whole
# slices kept, because labelling, openings and watersheds cost per voxel.


def block_any_in_plane(mask: BoolArray, step: Sequence[int]) -> BoolArray:
    """Coarse cells of ``step[0] × step[1]`` voxels that hold any True voxel.

    Incomplete cells at the far edges are kept, so every True voxel has a True cell.

    >>> m = np.zeros((3, 2, 1), bool); m[2, 1, 0] = True
    >>> block_any_in_plane(m, (2, 2))[:, :, 0].tolist()
    [[False], [True]]
    """
    ni, nj, nk = mask.shape
    padded = np.zeros((-(-ni // step[0]) * step[0], -(-nj // step[1]) * step[1], nk), bool)
    padded[:ni, :nj] = mask
    blocks = padded.reshape(padded.shape[0] // step[0], step[0], -1, step[1], nk)
    return np.asarray(blocks.any(axis=(1, 3)))


def repeat_in_plane(
    coarse: npt.NDArray[Any], step: Sequence[int], shape: Sequence[int]
) -> npt.NDArray[Any]:
    """Each coarse cell repeated over its ``step[0] × step[1]`` voxels, cut to ``shape[:2]``.

    >>> repeat_in_plane(np.array([[[1], [2]]]), (2, 1), (1, 2, 1))[:, :, 0].tolist()
    [[1, 2]]
    """
    full = np.repeat(np.repeat(coarse, step[0], axis=0), step[1], axis=1)
    return np.asarray(full[: shape[0], : shape[1]])
