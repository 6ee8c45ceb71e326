"""Which sample points lie inside which ablation zones (Numba), for many zones at once.

The placement tests every candidate zone (an ellipsoid) against a few 10^4-10^5 sample
points: the planning target, a grid of the healthy tissue around it, a shell beyond the
margin and the critical structures. Testing every point against every zone grows as
zones x points (10^4 x 10^5 for a 5 cm lesion); here the points are sorted once into
cubic cells (:class:`PointCells`) and each zone visits only the cells of its bounding box,
so the work grows with the zone's volume, and no zones x points matrix is kept: the
kernels return counts, or the points' membership for the few zones asked.

The membership test is :meth:`seldinger.physics.ablation.Ellipsoid.contains`'s: the
point in the zone's frame, divided by the semi-axes, has a squared norm of at most
``1 + SURFACE_RTOL``.

Written by hand because the point-in-ellipsoid count over spatial cells, for 10^4 zones
with their own frames, is a few lines of loops that no library offers; a k-d tree
(scipy) answers balls, not ellipsoids, and would still return every index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["SURFACE_RTOL", "PointCells", "Zones", "zone_any", "zone_counts", "zone_members"]

#: Tolerance on the normalised squared radius (as ``Ellipsoid.contains``): points exactly
#: on the surface count as inside despite rounding.
SURFACE_RTOL = 1e-12
#: Edge of the cubic cells the points are sorted into, mm.
_CELL_MM = 4.0


@dataclass(frozen=True)
class PointCells:
    """Sample points (LPS mm) sorted into cubic cells, for zone-by-zone membership tests.

    ``points`` are the given points in cell order (``order`` maps them back: ``points ==
    given[order]``); the points of cell ``c`` (C order over ``shape``) are
    ``points[starts[c]:starts[c + 1]]``.
    """

    points: npt.NDArray[np.float64]  # (n, 3) LPS mm, in cell order
    order: npt.NDArray[np.int64]  # (n,) index into the points as given
    origin_mm: npt.NDArray[np.float64]  # (3,) LPS corner of cell (0, 0, 0)
    shape: npt.NDArray[np.int64]  # (3,) cells along L, P, S
    starts: npt.NDArray[np.int64]  # (n_cells + 1,)
    cell_mm: float = _CELL_MM

    @classmethod
    def build(cls, points_lps_mm: npt.ArrayLike, cell_mm: float = _CELL_MM) -> PointCells:
        """Sort ``points_lps_mm`` (shape (n, 3), LPS mm) into cells of ``cell_mm``."""
        given = np.asarray(points_lps_mm, dtype=np.float64).reshape(-1, 3)
        if len(given):
            origin = given.min(axis=0)
            shape = np.floor((given.max(axis=0) - origin) / cell_mm).astype(np.int64) + 1
        else:
            origin, shape = np.zeros(3), np.ones(3, dtype=np.int64)
        cell = np.minimum(np.floor((given - origin) / cell_mm).astype(np.int64), shape - 1)
        flat = np.ravel_multi_index((cell[:, 0], cell[:, 1], cell[:, 2]), tuple(shape))
        order = np.argsort(flat, kind="stable").astype(np.int64)
        counts = np.bincount(flat, minlength=int(np.prod(shape)))
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.ascontiguousarray(given[order]), order, origin, shape, starts, cell_mm)

    def __len__(self) -> int:
        return len(self.points)


@nb.njit(cache=True, nogil=True, inline="always")
def _inside(
    points: npt.NDArray[np.float64],
    i: int,
    centre: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    radii: npt.NDArray[np.float64],
) -> bool:
    """Whether point ``i`` lies in the ellipsoid (centre, axes rows, semi-axes)."""
    d0 = points[i, 0] - centre[0]
    d1 = points[i, 1] - centre[1]
    d2 = points[i, 2] - centre[2]
    squared = 0.0
    for k in range(3):
        local = (d0 * axes[k, 0] + d1 * axes[k, 1] + d2 * axes[k, 2]) / radii[k]
        squared += local * local
    return squared <= 1.0 + SURFACE_RTOL


@nb.njit(cache=True, nogil=True, inline="always")
def _cell_box(
    centre: npt.NDArray[np.float64],
    half: npt.NDArray[np.float64],
    origin: npt.NDArray[np.float64],
    shape: npt.NDArray[np.int64],
    cell_mm: float,
) -> tuple[int, int, int, int, int, int]:
    """The cells (lo inclusive, hi exclusive per axis) of the box centre +- half."""
    lo = np.empty(3, dtype=np.int64)
    hi = np.empty(3, dtype=np.int64)
    for e in range(3):
        a = int(np.floor((centre[e] - half[e] - origin[e]) / cell_mm))
        b = int(np.floor((centre[e] + half[e] - origin[e]) / cell_mm)) + 1
        lo[e] = min(max(a, 0), shape[e])
        hi[e] = min(max(b, 0), shape[e])
    return lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]


@nb.njit(parallel=True, cache=True, nogil=True)
def _counts(
    points: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    origin: npt.NDArray[np.float64],
    shape: npt.NDArray[np.int64],
    cell_mm: float,
    centres: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    radii: npt.NDArray[np.float64],
    half: npt.NDArray[np.float64],
    frame: npt.NDArray[np.int64],
    skip: npt.NDArray[np.bool_],
    first_only: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per zone: points inside, and those of them not in ``skip``; or 0/1 at the first."""
    n = len(centres)
    inside = np.zeros(n, dtype=np.int64)
    new = np.zeros(n, dtype=np.int64)
    ny, nz = shape[1], shape[2]
    for z in nb.prange(n):
        f = frame[z]
        i0, i1, j0, j1, k0, k1 = _cell_box(centres[z], half[f], origin, shape, cell_mm)
        found = 0
        fresh = 0
        for i in range(i0, i1):
            for j in range(j0, j1):
                row = (i * ny + j) * nz
                for p in range(starts[row + k0], starts[row + k1]):
                    if _inside(points, p, centres[z], axes[f], radii[f]):
                        found += 1
                        if not skip[p]:
                            fresh += 1
                        if first_only:
                            break
                if first_only and found:
                    break
            if first_only and found:
                break
        inside[z] = found
        new[z] = fresh
    return inside, new


@nb.njit(parallel=True, cache=True, nogil=True)
def _members(
    points: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    origin: npt.NDArray[np.float64],
    shape: npt.NDArray[np.int64],
    cell_mm: float,
    centres: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    radii: npt.NDArray[np.float64],
    half: npt.NDArray[np.float64],
    frame: npt.NDArray[np.int64],
    out: npt.NDArray[np.bool_],
) -> None:
    """``out[z, p]``: whether point ``p`` (cell order) lies in zone ``z``."""
    ny, nz = shape[1], shape[2]
    for z in nb.prange(len(centres)):
        f = frame[z]
        i0, i1, j0, j1, k0, k1 = _cell_box(centres[z], half[f], origin, shape, cell_mm)
        for i in range(i0, i1):
            for j in range(j0, j1):
                row = (i * ny + j) * nz
                for p in range(starts[row + k0], starts[row + k1]):
                    if _inside(points, p, centres[z], axes[f], radii[f]):
                        out[z, p] = True


@dataclass(frozen=True)
class Zones:
    """Many ellipsoids sharing a few frames: zone ``z`` is centred at ``centres[z]`` with
    the axes rows ``axes[frame[z]]`` and semi-axes ``radii[frame[z]]`` (mm)."""

    centres: npt.NDArray[np.float64]  # (n, 3) LPS mm
    frame: npt.NDArray[np.int64]  # (n,)
    axes: npt.NDArray[np.float64]  # (n_frames, 3, 3)
    radii: npt.NDArray[np.float64]  # (n_frames, 3) mm

    @property
    def half_extent_mm(self) -> npt.NDArray[np.float64]:
        """(n_frames, 3): half of each frame's axis-aligned bounding box, mm (+1e-6)."""
        half = np.sqrt(((self.radii[:, :, None] * self.axes) ** 2).sum(axis=1))
        return np.asarray(half * (1.0 + 1e-9) + 1e-6, dtype=np.float64)

    def subset(self, which: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> Zones:
        """The zones ``which`` (indices or mask)."""
        return Zones(self.centres[which], self.frame[which], self.axes, self.radii)


def _run(
    kernel: Callable[..., Any],
    cells: PointCells,
    zones: Zones,
    *extra: object,
) -> Any:
    """``kernel`` on the cells and zones as contiguous arrays, then ``extra``."""
    run: Callable[..., Any] = kernel
    return run(
        cells.points,
        cells.starts,
        cells.origin_mm,
        cells.shape,
        float(cells.cell_mm),
        np.ascontiguousarray(zones.centres, dtype=np.float64),
        np.ascontiguousarray(zones.axes, dtype=np.float64),
        np.ascontiguousarray(zones.radii, dtype=np.float64),
        zones.half_extent_mm,
        np.ascontiguousarray(zones.frame, dtype=np.int64),
        *extra,
    )


def zone_counts(
    cells: PointCells, zones: Zones, skip: npt.NDArray[np.bool_] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per zone: how many of the points lie inside, and how many of those not in ``skip``.

    ``skip``: per point as given (not cell order), e.g. those covered already.
    """
    if not len(zones.centres) or not len(cells):
        zero = np.zeros(len(zones.centres), dtype=np.int64)
        return zero, zero.copy()
    flags = np.zeros(len(cells), dtype=bool) if skip is None else np.asarray(skip)[cells.order]
    inside, new = _run(_counts, cells, zones, np.ascontiguousarray(flags, dtype=np.bool_), False)
    return inside, new


def zone_any(cells: PointCells, zones: Zones) -> npt.NDArray[np.bool_]:
    """Per zone: whether any point lies inside (stops at the first)."""
    if not len(zones.centres) or not len(cells):
        return np.zeros(len(zones.centres), dtype=bool)
    flags = np.zeros(len(cells), dtype=np.bool_)
    found, _ = _run(_counts, cells, zones, flags, True)
    return np.asarray(found > 0)


def zone_members(cells: PointCells, zones: Zones) -> npt.NDArray[np.bool_]:
    """(n_zones, n_points) membership, points in the order given; for a few zones."""
    out = np.zeros((len(zones.centres), len(cells)), dtype=bool)
    if len(zones.centres) and len(cells):
        _run(_members, cells, zones, out)
    given = np.empty_like(out)
    given[:, cells.order] = out
    return given
