"""Resampling a Volume onto another grid, and exact axis reorientation."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from seldinger.errors import BadInputError
from seldinger.imaging.volume import GeometryError, Volume, VolumeGeometry, orientation_code

__all__ = ["INTERPOLATIONS", "reorient", "resample"]

#: Interpolation name → spline order for scipy.ndimage.
INTERPOLATIONS = {"nearest": 0, "linear": 1}


def resample(
    volume: Volume,
    geometry: VolumeGeometry | Volume,
    interpolation: str = "linear",
    fill_value: float = 0.0,
    dtype: npt.DTypeLike | None = None,
) -> Volume:
    """Values of ``volume`` at the voxel centres of another grid.

    Parameters
    ----------
    volume : Volume
        Source voxels.
    geometry : VolumeGeometry or Volume
        Target grid (any orientation, spacing and extent, in LPS mm).
    interpolation : {"linear", "nearest"}
        Trilinear for intensities, dose and temperature; nearest for masks and labels.
    fill_value : float
        Value of target voxels whose centre lies outside the source grid
        (e.g. -1024 HU for air around a CT, 0 for a mask).
    dtype : dtype, optional
        Output dtype. Default: the source dtype for "nearest", float32 for "linear"
        (float64 when the source is float64).

    Returns
    -------
    Volume
        On ``geometry``'s grid.

    Notes
    -----
    A target voxel centre is "inside" when it lies within half a voxel of the
    source grid's outermost centres; inside that rim values come from the
    nearest edge voxel, so the boundary of a mask is not eaten away.
    """
    if interpolation not in INTERPOLATIONS:
        raise BadInputError(
            f"interpolation must be one of {sorted(INTERPOLATIONS)}; got {interpolation!r}."
        )
    target = geometry.geometry if isinstance(geometry, Volume) else geometry
    order = INTERPOLATIONS[interpolation]
    source = volume.array
    if dtype is None:
        if order == 0:
            out_dtype = source.dtype
        else:
            out_dtype = np.dtype(np.float64 if source.dtype == np.float64 else np.float32)
    else:
        out_dtype = np.dtype(dtype)

    # target index -> source index
    matrix = np.linalg.inv(volume.affine) @ target.affine
    snapped = np.round(matrix)
    close = np.abs(matrix - snapped) < 1e-9
    matrix[close] = snapped[close]

    work: npt.NDArray[Any] = source
    if source.dtype == bool:
        work = source.view(np.uint8)
    elif order > 0 and source.dtype.kind in "iub":
        work = source.astype(np.float32)
    result = ndimage.affine_transform(
        work,
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=target.shape,
        output=work.dtype if order == 0 else out_dtype,
        order=order,
        mode="nearest",
    )
    # Points farther than half a voxel outside the source grid get fill_value.
    outside = _outside_mask(matrix, target.shape, source.shape)
    if outside.any():
        result[outside] = fill_value
    if source.dtype == np.bool_ and out_dtype == np.bool_:
        result = result.astype(bool)
    return Volume(result.astype(out_dtype, copy=False), target.affine)


def _outside_mask(
    matrix: npt.NDArray[np.float64],
    target_shape: tuple[int, int, int],
    source_shape: tuple[int, ...],
) -> npt.NDArray[np.bool_]:
    """Boolean mask of target voxels mapped more than half a voxel outside the source."""
    outside = np.zeros(target_shape, dtype=bool)
    ii = np.arange(target_shape[0], dtype=np.float64)[:, None]
    jj = np.arange(target_shape[1], dtype=np.float64)[None, :]
    low = -0.5 - 1e-6
    high = np.asarray(source_shape[:3], dtype=np.float64) - 0.5 + 1e-6
    # one k-slice at a time keeps the work memory to a few 2-D planes
    for k in range(target_shape[2]):
        plane = outside[:, :, k]
        for axis in range(3):
            coord = (
                matrix[axis, 0] * ii
                + matrix[axis, 1] * jj
                + (matrix[axis, 2] * k + matrix[axis, 3])
            )
            plane |= (coord < low) | (coord > high[axis])
    return outside


def reorient(volume: Volume, code: str = "LPS") -> Volume:
    """The same voxels with axes permuted and flipped so the orientation is ``code``.

    Exact (no interpolation): only transposes and flips, and the affine changes so
    that every voxel keeps its LPS position.

    Parameters
    ----------
    volume : Volume
        Any orientation.
    code : str
        Target orientation, three letters from L/R, P/A, S/I, one per patient axis
        (e.g. "LPS", "RAS", "PIR").

    Raises
    ------
    GeometryError
        If ``code`` is not a valid orientation code.
    """
    code = code.upper()
    pairs = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
    if len(code) != 3 or any(c not in pairs for c in code) or len({pairs[c][0] for c in code}) != 3:
        raise GeometryError(
            f"orientation code must name each patient axis once (e.g. 'LPS', 'RAI'); got {code!r}."
        )
    current = orientation_code(volume.affine)
    # which source axis runs along each patient axis, and its sign
    source_axis_of = {}
    for axis, letter in enumerate(current):
        patient_axis, sign = pairs[letter]
        source_axis_of[patient_axis] = (axis, sign)
    perm = []
    flips = []
    for letter in code:
        patient_axis, sign = pairs[letter]
        axis, source_sign = source_axis_of[patient_axis]
        perm.append(axis)
        flips.append(sign != source_sign)
    array = np.transpose(volume.array, perm)
    affine = volume.affine.copy()
    new_affine = np.eye(4)
    new_affine[:3, :3] = affine[:3, perm]
    new_affine[:3, 3] = affine[:3, 3]
    shape = array.shape
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis)
            new_affine[:3, 3] += new_affine[:3, axis] * (shape[axis] - 1)
            new_affine[:3, axis] = -new_affine[:3, axis]
    return Volume(array, new_affine)
