"""Measurements of a lesion mask: volume, centroid, RECIST and longest 3-D diameter."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from seldinger.anatomy.errors import LesionError
from seldinger.imaging import Volume

__all__ = ["AXIAL_TOLERANCE_DEG", "axial_axis", "lesion_measurements"]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

#: An axis within this angle of the patient z axis carries the axial slices for RECIST.
AXIAL_TOLERANCE_DEG = 1.0


def axial_axis(affine: npt.ArrayLike) -> int:
    """Array axis whose direction is within :data:`AXIAL_TOLERANCE_DEG` of the patient z axis.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Index-to-LPS affine.

    Returns
    -------
    int
        0, 1 or 2: slices across this axis are axial.

    Raises
    ------
    LesionError
        If no axis is that close to z (an oblique grid).

    Examples
    --------
    >>> axial_axis(np.diag([0.7, 0.7, 2.5, 1.0]))
    2
    >>> axial_axis(np.array([[0, 1, 0, 0], [0, 0, 1, 0], [-3, 0, 0, 0], [0, 0, 0, 1.0]]))
    0
    """
    matrix = np.asarray(affine, dtype=np.float64)[:3, :3]
    direction = matrix / np.linalg.norm(matrix, axis=0)
    axis = int(np.argmax(np.abs(direction[2])))
    angle_deg = float(np.degrees(np.arccos(min(1.0, abs(direction[2, axis])))))
    if angle_deg > AXIAL_TOLERANCE_DEG:
        raise LesionError(
            f"no array axis is within {AXIAL_TOLERANCE_DEG}° of the patient z axis (closest: "
            f"axis {axis} at {angle_deg:.1f}°), so axial (RECIST) diameters are undefined on "
            "this oblique grid. Resample the CT onto an axial grid first "
            "(seldinger.imaging.resample)."
        )
    return axis


def _max_distance_mm(points_mm: FloatArray) -> float:
    """Largest distance between any two points (rows, 2-D or 3-D), via their convex hull."""
    if len(points_mm) < 2:
        return 0.0
    if len(points_mm) > 64:
        try:
            points_mm = points_mm[ConvexHull(points_mm).vertices]
        except QhullError:  # a flat or collinear set: joggled, vertices still index the input
            points_mm = points_mm[ConvexHull(points_mm, qhull_options="QJ").vertices]
    best = 0.0
    for start in range(0, len(points_mm), 512):
        chunk = points_mm[start : start + 512]
        d2 = ((chunk[:, None, :] - points_mm[None, :, :]) ** 2).sum(axis=-1)
        best = max(best, float(d2.max()))
    return float(np.sqrt(best))


def _surface(mask: BoolArray) -> BoolArray:
    """Voxels of ``mask`` with a face neighbour outside it (the array border counts as outside)."""
    interior = ndi.binary_erosion(mask, border_value=0)
    return np.asarray(mask & ~interior)


def lesion_measurements(mask: Volume) -> dict[str, Any]:
    """Volume, centroid and diameters of a lesion mask.

    Parameters
    ----------
    mask : Volume
        Lesion mask (nonzero = inside) on any orthonormal grid with an axial axis (see
        :func:`axial_axis`).

    Returns
    -------
    dict
        ``volume_ml`` (voxel count times voxel volume), ``centroid_lps_mm`` (list of 3),
        ``recist_diameter_mm`` (longest in-plane distance between voxel centres of one
        axial slice), ``max_diameter_mm`` (longest 3-D distance between voxel centres) and
        ``voxels``. Diameters run between voxel *centres*, so a sphere of diameter D
        measures up to about one voxel less than D.

    Raises
    ------
    LesionError
        If the mask is empty or the grid is oblique.

    Examples
    --------
    >>> cube = Volume(np.ones((3, 3, 2), bool), np.diag([1.0, 1.0, 2.0, 1.0]))
    >>> m = lesion_measurements(cube)
    >>> round(m["volume_ml"], 6), round(m["recist_diameter_mm"], 3), round(m["max_diameter_mm"], 3)
    (0.036, 2.828, 3.464)
    """
    array = np.asarray(mask.array) != 0
    voxels = int(np.count_nonzero(array))
    if voxels == 0:
        raise LesionError(
            "the lesion mask is empty (no nonzero voxel); nothing to measure. Segment the "
            "lesion first or check that the mask is on the CT's grid."
        )
    axis = axial_axis(mask.affine)
    voxel_ml = abs(float(np.linalg.det(mask.affine[:3, :3]))) / 1000.0
    # Work in the bounding box (plus one voxel) and shift indices back by its corner.
    bounds = [
        np.flatnonzero(array.any(axis=tuple(b for b in range(3) if b != a))) for a in range(3)
    ]
    corner = np.array([max(int(b[0]) - 1, 0) for b in bounds])
    stop = np.array([int(b[-1]) + 2 for b in bounds])
    array = array[corner[0] : stop[0], corner[1] : stop[1], corner[2] : stop[2]]
    centroid = mask.index_to_lps(np.argwhere(array).mean(axis=0) + corner)

    surface_index = np.argwhere(_surface(array)) + corner
    max_diameter_mm = _max_distance_mm(mask.index_to_lps(surface_index.astype(np.float64)))

    # In-plane boundary of each axial slice (2-D erosion: no neighbours across the axis),
    # measured in the slice's own two axes (orthonormal grid: index × spacing is mm).
    in_plane = ndi.generate_binary_structure(3, 1)
    for end in (0, 2):
        across = [1, 1, 1]
        across[axis] = end
        in_plane[tuple(across)] = False
    rim_index = np.argwhere(array & ~ndi.binary_erosion(array, in_plane, border_value=0))
    plane_axes = [a for a in range(3) if a != axis]
    plane_mm = rim_index[:, plane_axes] * np.asarray(mask.spacing_mm)[plane_axes]
    recist_mm = 0.0
    for value in np.unique(rim_index[:, axis]):
        recist_mm = max(recist_mm, _max_distance_mm(plane_mm[rim_index[:, axis] == value]))

    return {
        "volume_ml": voxels * voxel_ml,
        "centroid_lps_mm": [float(c) for c in centroid],
        "recist_diameter_mm": recist_mm,
        "max_diameter_mm": max_diameter_mm,
        "voxels": voxels,
    }
