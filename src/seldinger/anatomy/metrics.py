"""Agreement of a segmentation with a reference: dense-voxel recall and surface Dice.

Both take boolean masks on one voxel grid in the (i, j, k) order (docs/conventions.md);
surface Dice measures in mm with the grid's spacing, so anisotropic voxels (0.7 x 0.7 x
2.5 mm) count as what they are.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from skimage.measure import marching_cubes, mesh_surface_area

__all__ = ["dense_recall", "surface_dice"]


def dense_recall(
    mask: npt.ArrayLike, reference: npt.ArrayLike, ct_hu: npt.ArrayLike, min_hu: float
) -> float:
    """Share of the reference voxels at ``min_hu`` or above that ``mask`` holds.

    With a bone reference and ``min_hu`` = 300 HU this is the recall of cortical (compact)
    bone: the part of a bone a needle cannot pass, whatever the outlines do at the
    partial-volume edge or in the marrow.

    Parameters
    ----------
    mask, reference : array_like of bool, shape (I, J, K)
        The segmentation judged and the reference, on the CT's grid.
    ct_hu : array_like, shape (I, J, K)
        The CT in HU.
    min_hu : float
        The level (HU) a reference voxel must reach to count.

    Returns
    -------
    float
        In [0, 1]; 1.0 when no reference voxel reaches ``min_hu``.

    Raises
    ------
    ValueError
        If the three arrays differ in shape.

    Examples
    --------
    >>> ct_hu = np.array([[[100, 400, 900, 1200]]])
    >>> reference = np.array([[[True, True, True, False]]])
    >>> mask = np.array([[[False, True, False, True]]])
    >>> dense_recall(mask, reference, ct_hu, min_hu=300.0)
    0.5
    """
    mask_b = np.asarray(mask, dtype=bool)
    reference_b = np.asarray(reference, dtype=bool)
    hu = np.asarray(ct_hu)
    if not mask_b.shape == reference_b.shape == hu.shape:
        raise ValueError(
            f"mask, reference and ct_hu must share one grid; got shapes {mask_b.shape}, "
            f"{reference_b.shape} and {hu.shape}. Resample them onto the CT's grid first."
        )
    dense = reference_b & (hu >= min_hu)
    total = int(np.count_nonzero(dense))
    if total == 0:
        return 1.0
    return int(np.count_nonzero(dense & mask_b)) / total


# Above this many offsets in the tolerance ball a distance transform is faster than dilation.
_MAX_BALL_OFFSETS = 125

# Voxel offsets of the 8 corners of a cell (the cube between 2 x 2 x 2 voxel centres); corner
# n sets bit n of the cell's neighbour code.
_CORNERS = tuple((n >> 2 & 1, n >> 1 & 1, n & 1) for n in range(8))


@lru_cache(maxsize=16)
def _code_to_area_mm2(spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.float64]:
    """Area (mm²) of the marching-cubes surface inside a cell, for each of the 256 codes."""
    area = np.zeros(256, dtype=np.float64)
    for code in range(1, 255):
        cell = np.zeros((2, 2, 2), dtype=np.float32)
        for n, corner in enumerate(_CORNERS):
            cell[corner] = code >> n & 1
        verts, faces, _, _ = marching_cubes(cell, 0.5, spacing=spacing_mm)
        area[code] = mesh_surface_area(verts, faces)
    return area


def _neighbour_codes(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """Neighbour code of every cell of ``mask`` padded with background, shape (I+1, J+1, K+1)."""
    padded = np.pad(mask, 1).view(np.uint8)
    ni, nj, nk = (n - 1 for n in padded.shape)
    code = np.zeros((ni, nj, nk), dtype=np.uint8)
    for n, (di, dj, dk) in enumerate(_CORNERS):
        code |= padded[di : di + ni, dj : dj + nj, dk : dk + nk] << np.uint8(n)
    return code


def _bounding_box(mask: npt.NDArray[np.bool_]) -> tuple[slice, slice, slice]:
    """The box holding ``mask``'s voxels."""
    box = []
    for axis in range(3):
        present = np.flatnonzero(np.any(mask, axis=tuple(x for x in range(3) if x != axis)))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return box[0], box[1], box[2]


def _within(
    surface: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float], tolerance_mm: float
) -> npt.NDArray[np.bool_]:
    """Cells within ``tolerance_mm`` (centre to centre) of a ``surface`` cell.

    A dilation by the ball of cell offsets within the tolerance when that ball is small (a
    2 mm tolerance on CT voxels: a few dozen offsets), else a distance transform; both are
    exact.
    """
    reach = [int(tolerance_mm // s) for s in spacing_mm]
    offsets = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    squared_mm2 = sum((o * s) ** 2 for o, s in zip(offsets, spacing_mm, strict=True))
    ball = np.asarray(squared_mm2 <= tolerance_mm**2)
    if ball.sum() <= _MAX_BALL_OFFSETS:
        return np.asarray(ndi.binary_dilation(surface, ball))
    distance_mm = ndi.distance_transform_edt(~surface, sampling=spacing_mm)
    return np.asarray(distance_mm <= tolerance_mm)


def surface_dice(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    spacing_mm: tuple[float, float, float],
    tolerance_mm: float,
) -> float:
    """Surface Dice at ``tolerance_mm``: the share of both surfaces within it of the other.

    Each mask's surface is its marching-cubes surface at level 0.5, in cells (the cubes
    between 2 x 2 x 2 voxel centres) that each carry the area of the surface inside them.
    A cell agrees when the nearest surface cell of the other mask (centre to centre, in mm)
    lies within ``tolerance_mm``. The result is the agreeing area of both surfaces over
    their total area: the surface Dice of Nikolov et al. [1]_, computed as their reference
    code (``surface-distance``, DeepMind) does.

    Parameters
    ----------
    a, b : array_like of bool, shape (I, J, K)
        The two masks on one grid; outside the array counts as background.
    spacing_mm : tuple of 3 floats
        Voxel size (mm) along i, j and k.
    tolerance_mm : float
        How far (mm) a surface may lie from the other and still agree; not negative.

    Returns
    -------
    float
        In [0, 1]: 1.0 when both masks are empty, 0.0 when only one is.

    Raises
    ------
    ValueError
        If the masks differ in shape or are not 3-D, a spacing is not positive, or the
        tolerance is negative.

    Notes
    -----
    Surface cells lie on the grid of cell centres, so distances come in steps of the voxel
    size: on 3 mm voxels a face moved by one voxel lies outside a 2 mm tolerance, and only
    the bevelled cells around a one-voxel step still agree.

    References
    ----------
    .. [1] Nikolov S, Blackwell S, Zverovitch A, et al. Clinically applicable segmentation
       of head and neck anatomy for radiotherapy: deep learning algorithm development and
       validation study. J Med Internet Res 23(7):e26151 (2021); preprint arXiv:1809.04430
       (2018), section "Surface DSC".

    Examples
    --------
    A cube of 4 mm against itself, and against the same cube moved 1 mm along i (every
    surface cell of either lies within 1 mm of the other's):

    >>> a = np.zeros((8, 8, 8), dtype=bool)
    >>> a[2:6, 2:6, 2:6] = True
    >>> b = np.roll(a, 1, axis=0)
    >>> surface_dice(a, a, (1.0, 1.0, 1.0), 0.0)
    1.0
    >>> surface_dice(a, b, (1.0, 1.0, 1.0), 1.0)
    1.0
    >>> round(surface_dice(a, b, (1.0, 1.0, 1.0), 0.5), 3)
    0.663
    """
    a_b = np.asarray(a, dtype=bool)
    b_b = np.asarray(b, dtype=bool)
    if a_b.shape != b_b.shape or a_b.ndim != 3:
        raise ValueError(
            f"a and b must be 3-D masks on one grid; got shapes {a_b.shape} and {b_b.shape}."
        )
    if len(spacing_mm) != 3 or min(spacing_mm) <= 0:
        raise ValueError(f"spacing_mm must be 3 positive voxel sizes (mm); got {spacing_mm!r}.")
    if tolerance_mm < 0:
        raise ValueError(f"tolerance_mm must not be negative (mm); got {tolerance_mm!r}.")
    if not a_b.any() and not b_b.any():
        return 1.0
    if not a_b.any() or not b_b.any():
        return 0.0
    # Every surface cell lies in the box holding both masks (plus the padding): the same
    # distances, on far fewer voxels.
    box = _bounding_box(a_b | b_b)
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    to_area = _code_to_area_mm2(spacing)
    area_a = to_area[_neighbour_codes(a_b[box])]
    area_b = to_area[_neighbour_codes(b_b[box])]
    near_b = _within(area_b > 0, spacing, tolerance_mm)
    near_a = _within(area_a > 0, spacing, tolerance_mm)
    agree = area_a[near_b].sum() + area_b[near_a].sum()
    return float(agree / (area_a.sum() + area_b.sum()))
