"""Rays from a lesion's core: where each one meets an edge, which edges belong to the lesion.

The outline of a large lesion is found direction by direction. From the centre of the
lesion's core, rays in evenly spread directions walk through the voxels that look like
the lesion until they leave them; the voxel where a ray leaves says why (aerated lung,
fat, a denser structure, the body's outside, a cut made by the user). A ray that meets no
edge within the search radius is *open*: the lesion touches a structure of its own
density there (mediastinum, chest wall, diaphragm) or has leaked into one.

Which edges are the lesion's own is decided by continuity over the sphere of directions
(:func:`continuous_edges`): starting from the nearest edge, a neighbouring ray's edge is
accepted when it lies at most a steep slope farther. A ray that slips through a contact
and meets an edge far beyond (the other side of the heart, the end of a vessel) jumps
and is left out. The lesion is then bounded by the convex hull of the accepted edge
points (:func:`inside_hull`): across a contact this is the flat face spanning the rim
where the lesion's free surface meets the neighbouring structure, which is where a reader
draws the line.

Coordinates here are millimetres along the array axes of a box (index × spacing): an
isometry of LPS for the orthonormal grids of :class:`~seldinger.imaging.Volume`.
See ``docs/conventions.md``.
"""

from __future__ import annotations

import heapq

import numpy as np
import numpy.typing as npt
from scipy.spatial import ConvexHull, QhullError, cKDTree

__all__ = [
    "EXIT_AIR",
    "EXIT_CUT",
    "EXIT_DENSE",
    "EXIT_LOW",
    "EXIT_OPEN",
    "EXIT_OUTSIDE",
    "Rays",
    "cast_rays",
    "continuous_edges",
    "fibonacci_directions",
    "inside_hull",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Why a ray stopped: the code of the first voxel it reached outside the lesion-like set.
#: ``EXIT_OPEN``: no edge within the search radius.
EXIT_OPEN = 0
#: Aerated lung (or other air inside the body).
EXIT_AIR = 1
#: Tissue darker than the lesion (fat, a hypodense neighbour).
EXIT_LOW = 2
#: Tissue denser than the lesion (enhanced blood, bone, a hyperdense neighbour).
EXIT_DENSE = 3
#: Outside the body.
EXIT_OUTSIDE = 4
#: A cut made by the user (the face of ``box_lps_mm``, the plane of an exclude point).
EXIT_CUT = 5

#: Default number of ray directions: about 5° apart.
N_DIRECTIONS = 1500
#: Sample spacing along a ray, mm (below the smallest CT voxel size in use).
RAY_STEP_MM = 0.4
#: Steepest accepted slope of the outline seen from the core: a neighbour's edge may lie
#: ``tan(MAX_SLOPE_DEG)`` × radius × angle farther (lobulations pass; a ray that slips
#: past a contact and finds an edge far beyond does not).
MAX_SLOPE_DEG = 75.0
#: ... but always at least this much farther (mm): voxel steps on small nodules.
MIN_JUMP_MM = 4.0


def fibonacci_directions(n: int) -> FloatArray:
    """``n`` unit vectors spread evenly over the sphere (golden-angle spiral), shape (n, 3).

    >>> d = fibonacci_directions(100)
    >>> d.shape, bool(np.allclose(np.linalg.norm(d, axis=1), 1.0))
    ((100, 3), True)
    """
    index = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * index / n
    ring = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * index
    return np.stack([ring * np.cos(phi), ring * np.sin(phi), z], axis=1)


class Rays:
    """Where each ray from a centre left the lesion-like voxels, and why.

    Attributes
    ----------
    centre_mm : ndarray, shape (3,)
        Origin of the rays, box mm.
    directions : ndarray, shape (n, 3)
        Unit vectors.
    radius_mm : ndarray, shape (n,)
        Distance from the centre to the edge (half a step beyond the last inside sample);
        the search radius for open rays.
    code : ndarray, shape (n,)
        ``EXIT_*`` code of each ray.
    """

    def __init__(
        self, centre_mm: FloatArray, directions: FloatArray, radius_mm: FloatArray, code: IntArray
    ) -> None:
        self.centre_mm = centre_mm
        self.directions = directions
        self.radius_mm = radius_mm
        self.code = code

    def points_mm(self, which: BoolArray) -> FloatArray:
        """Edge points of the selected rays, box mm."""
        return np.asarray(
            self.centre_mm + self.directions[which] * self.radius_mm[which, None], dtype=np.float64
        )

    def fraction(self, *codes: int) -> float:
        """Fraction of the rays that stopped with one of ``codes``."""
        return float(np.isin(self.code, codes).mean())


def cast_rays(
    why: npt.NDArray[np.int8],
    centre_mm: FloatArray,
    spacing_mm: tuple[float, float, float],
    radius_mm: float,
    directions: FloatArray,
) -> Rays:
    """Walk rays from ``centre_mm`` through the voxels where ``why == 0`` until they leave.

    Parameters
    ----------
    why : ndarray of int8, shape (I, J, K)
        0 for lesion-like voxels, else the ``EXIT_*`` code of the voxel.
    centre_mm : ndarray, shape (3,)
        Start of the rays in box mm (index × spacing); should lie where ``why == 0``.
    spacing_mm : tuple of float
        Voxel size along the array axes.
    radius_mm : float
        Search radius: a ray that has not left by then is open (``EXIT_OPEN``), as is one
        that reaches the box's border.
    directions : ndarray, shape (n, 3)
        Unit vectors in box mm.

    Returns
    -------
    Rays
    """
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    steps = np.arange(1, int(np.ceil(radius_mm / RAY_STEP_MM)) + 1) * RAY_STEP_MM
    n = len(directions)
    radius = np.full(n, float(radius_mm))
    code = np.full(n, EXIT_OPEN, dtype=np.intp)
    shape = np.asarray(why.shape)
    # In chunks of rays: (rays, steps, 3) indices stay a few MB.
    chunk = max(1, 400_000 // len(steps))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        points = centre_mm + directions[start:stop, None, :] * steps[None, :, None]
        index = np.rint(points / spacing).astype(np.intp)
        inside_box = np.all((index >= 0) & (index < shape), axis=-1)
        np.clip(index, 0, shape - 1, out=index)
        values = why[index[..., 0], index[..., 1], index[..., 2]].astype(np.intp)
        values[~inside_box] = -1  # the box's border: open
        stopped = values != 0
        first = np.argmax(stopped, axis=1)
        hit = stopped[np.arange(stop - start), first]
        value = values[np.arange(stop - start), first]
        edge = hit & (value > 0)
        radius[start:stop][edge] = steps[first[edge]] - 0.5 * RAY_STEP_MM
        code[start:stop][edge] = value[edge]
        border = hit & (value < 0)
        radius[start:stop][border] = steps[first[border]] - 0.5 * RAY_STEP_MM
    return Rays(np.asarray(centre_mm, dtype=np.float64), directions, radius, code)


def direction_neighbours(directions: FloatArray, k: int = 8) -> tuple[IntArray, FloatArray]:
    """The ``k`` nearest other directions of each direction, and the angles to them (rad)."""
    distance, index = cKDTree(directions).query(directions, k=k + 1)
    angle = 2.0 * np.arcsin(np.clip(distance[:, 1:] / 2.0, 0.0, 1.0))
    return np.asarray(index[:, 1:], dtype=np.intp), np.asarray(angle, dtype=np.float64)


def continuous_edges(
    rays: Rays,
    valid: BoolArray,
    *,
    max_slope_deg: float = MAX_SLOPE_DEG,
    min_jump_mm: float = MIN_JUMP_MM,
) -> BoolArray:
    """Rays whose edges join the nearest edge without a jump: the lesion's own outline.

    Grown over the sphere of directions in order of increasing radius (a Dijkstra-like
    sweep): a ray is taken when one of its already taken neighbours lies at an angle θ
    and its edge is no more than ``max(min_jump_mm, tan(max_slope_deg) · r · θ)`` farther.
    Nearer edges are always taken (a cleft between lobes, a bronchus).

    Parameters
    ----------
    rays : Rays
    valid : ndarray of bool, shape (n,)
        Rays whose stop counts as an edge of the lesion (e.g. aerated lung for a lung
        mass; every edge for a soft-tissue lesion).

    Returns
    -------
    ndarray of bool, shape (n,)
        The accepted rays (all False when none is valid).
    """
    accepted = np.zeros(len(valid), dtype=bool)
    if not valid.any():
        return accepted
    neighbours, angles = direction_neighbours(rays.directions)
    slope = np.tan(np.radians(max_slope_deg))
    radius = rays.radius_mm
    start = int(np.flatnonzero(valid)[np.argmin(radius[valid])])
    queue: list[tuple[float, int]] = [(float(radius[start]), start)]
    while queue:
        r, ray = heapq.heappop(queue)
        if accepted[ray]:
            continue
        accepted[ray] = True
        for other, angle in zip(neighbours[ray], angles[ray], strict=True):
            if accepted[other] or not valid[other]:
                continue
            if radius[other] <= r + max(min_jump_mm, slope * r * angle):
                heapq.heappush(queue, (float(radius[other]), int(other)))
    return accepted


def inside_hull(
    points_mm: FloatArray, candidates_mm: FloatArray, tolerance_mm: float = 0.25
) -> BoolArray | None:
    """Which candidate points lie inside the convex hull of ``points_mm`` (box mm).

    Candidates nearer the hull's centroid than its nearest face are inside without a test;
    the others are tested against the faces in batches, dropped at the first face they
    lie beyond. Returns None when the points span no volume (fewer than 4, or flat).
    """
    if len(points_mm) < 4:
        return None
    try:
        hull = ConvexHull(points_mm)
    except QhullError:
        return None
    normals = hull.equations[:, :3]
    offsets = hull.equations[:, 3] - tolerance_mm
    centre = points_mm[hull.vertices].mean(axis=0)
    inner_mm = float(-(normals @ centre + offsets).max())
    inside = np.ones(len(candidates_mm), dtype=bool)
    if inner_mm <= 0.0:
        return None
    test = np.flatnonzero(((candidates_mm - centre) ** 2).sum(axis=1) >= inner_mm**2)
    points = (candidates_mm[test] - centre).astype(np.float32)
    shifted = (offsets + normals @ centre).astype(np.float32)
    normals32 = normals.astype(np.float32)
    alive = np.arange(len(test))
    for start in range(0, len(normals32), 64):
        beyond = (
            points[alive] @ normals32[start : start + 64].T + shifted[start : start + 64]
        ) > 0.0
        alive = alive[~beyond.any(axis=1)]
        if alive.size == 0:
            break
    inside[test] = False
    inside[test[alive]] = True
    return inside
