"""Analytic airway phantoms with partial volume: a tilted tube with a stenosis, a Y.

Each voxel's HU is the air fraction of its volume (sampled on a sub-voxel lattice) mixed
between air and wall, as a CT's partial-volume effect would: the lumen edge then lies at
the -500 HU isocontour to within the sampling, and the analytic areas are the truth the
measurement is checked against (tests and ``benchmarks/bench_stents.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from seldinger.imaging import Volume

__all__ = ["TubeSegment", "insert_stenosis", "phantom_ct", "stenosed_tube", "y_airway"]

FloatArray = npt.NDArray[np.float64]

AIR_HU = -1000.0
WALL_HU = 40.0  # soft tissue


@dataclass(frozen=True)
class TubeSegment:
    """A straight tube from ``start`` to ``end`` (LPS mm) with a radius profile.

    ``radius_mm(t)`` gives the radius at the arc length ``t`` (mm) from ``start``; a constant
    radius is ``lambda t: 9.0 + 0 * t``. The ends are capped by hemispheres of the end radius
    (so that tubes meeting at a point join without a gap).
    """

    start_lps_mm: tuple[float, float, float]
    end_lps_mm: tuple[float, float, float]
    radius_profile_mm: tuple[tuple[float, float], ...]  # (t_mm, radius_mm), piecewise constant

    def radius_at(self, t_mm: FloatArray) -> FloatArray:
        """Piecewise-constant radius: the last profile entry with ``t_i <= t``."""
        knots = np.array([k for k, _ in self.radius_profile_mm])
        radii = np.array([r for _, r in self.radius_profile_mm])
        idx = np.clip(np.searchsorted(knots, t_mm, side="right") - 1, 0, len(radii) - 1)
        return np.asarray(radii[idx], dtype=np.float64)


def _signed_distance(points: FloatArray, segments: Sequence[TubeSegment]) -> FloatArray:
    """Distance outside the union of the tubes (negative inside), mm; exact away from the
    radius steps, where it is only a bound (the caller supersamples near the boundary)."""
    out = np.full(len(points), np.inf)
    for seg in segments:
        a = np.asarray(seg.start_lps_mm, dtype=np.float64)
        b = np.asarray(seg.end_lps_mm, dtype=np.float64)
        axis = b - a
        length = float(np.linalg.norm(axis))
        axis /= length
        tc = np.clip((points - a) @ axis, 0.0, length)
        d = np.linalg.norm(points - (a + tc[:, None] * axis), axis=1)
        out = np.minimum(out, d - seg.radius_at(tc))
    return out


def phantom_ct(
    segments: Sequence[TubeSegment],
    shape: tuple[int, ...],
    spacing_mm: tuple[float, float, float],
    origin_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    subsample_mm: float = 0.25,
) -> Volume:
    """A CT (float32 HU) of air tubes in soft tissue, partial volume included.

    Parameters
    ----------
    segments : sequence of TubeSegment
        The tubes (their union is air).
    shape : tuple of int
        Grid size (i, j, k).
    spacing_mm : tuple of float
        Voxel size (i, j, k), mm; the grid is axis-aligned LPS.
    origin_lps_mm : tuple of float
        Centre of voxel (0, 0, 0).
    subsample_mm : float
        Spacing of the sub-voxel lattice that gives each voxel its air fraction, mm.

    Returns
    -------
    Volume
    """
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin_lps_mm
    sub = np.maximum(np.ceil(spacing / subsample_mm).astype(int), 1)
    offsets = [((np.arange(n) + 0.5) / n - 0.5) * h for n, h in zip(sub, spacing, strict=True)]
    lattice = np.stack(np.meshgrid(*offsets, indexing="ij"), axis=-1).reshape(-1, 3)
    fraction = np.zeros(shape, dtype=np.float32)
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    plane = np.stack([ii.ravel(), jj.ravel()], axis=1).astype(np.float64)
    # radius steps make the distance a bound only: widen the band by the largest step
    radii = [np.array([r for _, r in seg.radius_profile_mm]) for seg in segments]
    steps = [float(np.abs(np.diff(r)).max()) for r in radii if len(r) > 1]
    band = 0.5 * float(np.linalg.norm(spacing)) + max(steps, default=0.0)
    for k in range(shape[2]):  # slice by slice: bounded memory
        centres = np.column_stack([plane, np.full(len(plane), float(k))]) * spacing + affine[:3, 3]
        d = _signed_distance(centres, segments)
        column = (d <= 0).astype(np.float32)
        edge = np.abs(d) < band
        if edge.any():
            pts = (centres[edge][:, None, :] + lattice[None, :, :]).reshape(-1, 3)
            inside = _signed_distance(pts, segments) <= 0
            column[edge] = inside.reshape(int(edge.sum()), len(lattice)).mean(axis=1)
        fraction[:, :, k] = column.reshape(shape[0], shape[1])
    hu = WALL_HU + (AIR_HU - WALL_HU) * fraction
    return Volume(hu.astype(np.float32), affine)


def stenosed_tube(
    *,
    diameter_mm: float = 18.0,
    stenosis_area_percent: float = 50.0,
    stenosis_length_mm: float = 20.0,
    length_mm: float = 100.0,
    tilt_deg: float = 20.0,
    spacing_mm: tuple[float, float, float] = (0.7, 0.7, 2.5),
) -> tuple[Volume, TubeSegment]:
    """An 18 mm tube, tilted from the k axis, with a centred stenosis over a given length.

    Returns the CT and the tube (its axis and radius profile are the analytic truth).
    """
    r = diameter_mm / 2.0
    r_s = r * np.sqrt(1.0 - stenosis_area_percent / 100.0)
    tilt = np.radians(tilt_deg)
    axis = np.array([np.sin(tilt) * np.cos(0.6), np.sin(tilt) * np.sin(0.6), -np.cos(tilt)])
    half = 0.5 * length_mm * axis
    # the tube runs out through the top and bottom faces of the grid (no end caps in view)
    overhang = 3.0 * r
    t0 = overhang + (length_mm - stenosis_length_mm) / 2.0
    extent = np.abs(half) + (r + 6.0) / np.cos(tilt)
    extent[2] = abs(half[2])
    shape = tuple(int(np.ceil(2 * e / h)) + 1 for e, h in zip(extent, spacing_mm, strict=True))
    origin = -extent
    seg = TubeSegment(
        tuple(-half - overhang * axis),
        tuple(half + overhang * axis),
        ((0.0, r), (t0, float(r_s)), (t0 + stenosis_length_mm, r)),
    )
    ct = phantom_ct([seg], shape, spacing_mm, tuple(origin))
    return ct, seg


def y_airway(
    *,
    trachea_diameter_mm: float = 18.0,
    bronchus_diameters_mm: tuple[float, float] = (13.0, 11.0),
    spacing_mm: tuple[float, float, float] = (0.7, 0.7, 1.25),
) -> tuple[Volume, tuple[TubeSegment, ...]]:
    """A trachea (80 mm) dividing into a right (``bronchus_diameters_mm[0]``) and a left main
    bronchus (40 and 50 mm long, 30° and 45° from the vertical).

    Returns the CT and (trachea, right, left) tubes.
    """
    carina = np.array([0.0, 0.0, 0.0])
    top = carina + np.array([0.0, 0.0, 80.0])
    right_dir = np.array([-np.sin(np.radians(30)), 0.0, -np.cos(np.radians(30))])
    left_dir = np.array([np.sin(np.radians(45)), 0.0, -np.cos(np.radians(45))])
    right_end = carina + 40.0 * right_dir
    left_end = carina + 50.0 * left_dir
    tubes = (
        TubeSegment(tuple(top), tuple(carina), ((0.0, trachea_diameter_mm / 2),)),
        TubeSegment(tuple(carina), tuple(right_end), ((0.0, bronchus_diameters_mm[0] / 2),)),
        TubeSegment(tuple(carina), tuple(left_end), ((0.0, bronchus_diameters_mm[1] / 2),)),
    )
    pts = np.stack([top, right_end, left_end, carina])
    lo = pts.min(axis=0) - 16.0
    hi = pts.max(axis=0) + 16.0
    lo[2] = right_end[2] - 10.0
    hi[2] = top[2] - 2.0  # the CT cuts the trachea, as a chest CT does
    shape = tuple(int(np.ceil((b - a) / h)) + 1 for a, b, h in zip(lo, hi, spacing_mm, strict=True))
    return phantom_ct(tubes, shape, spacing_mm, tuple(lo)), tubes


def insert_stenosis(
    ct: Volume,
    axis_lps_mm: npt.ArrayLike,
    start_mm: float,
    length_mm: float,
    residual_radius_mm: float,
    tissue_hu: float = WALL_HU,
) -> Volume:
    """A copy of ``ct`` with soft tissue filling a tube's lumen beyond a residual radius.

    Over ``length_mm`` of the axis from arc length ``start_mm``, every voxel farther than
    ``residual_radius_mm`` from the axis (and within 2.5 times that of it, so the wall and
    its neighbours are untouched) becomes ``tissue_hu`` where it read darker, with a linear
    partial-volume ramp one in-plane voxel wide: the residual lumen is a disc of area
    ``pi residual_radius_mm**2`` wherever the original lumen was wider.

    Parameters
    ----------
    ct : Volume
        CT in HU.
    axis_lps_mm : array_like, shape (N, 3)
        The tube's centreline, LPS mm (a smooth polyline).
    start_mm, length_mm : float
        Where the lesion starts along the axis and its length, mm.
    residual_radius_mm : float
        Radius of the lumen left open, mm.
    tissue_hu : float
        HU of the inserted tissue.

    Returns
    -------
    Volume
        float32 HU.
    """
    axis = np.asarray(axis_lps_mm, dtype=np.float64).reshape(-1, 3)
    seg = np.linalg.norm(np.diff(axis, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(start_mm, start_mm + length_mm, max(int(length_mm * 4), 2))
    centre = np.stack([np.interp(t, s, axis[:, d]) for d in range(3)], axis=1)
    reach = 2.5 * residual_radius_mm + 10.0
    lo_mm, hi_mm = centre.min(axis=0) - reach, centre.max(axis=0) + reach
    corners = np.array(np.meshgrid(*zip(lo_mm, hi_mm, strict=True), indexing="ij")).reshape(3, -1)
    corner_ijk = ct.lps_to_index(corners.T)
    top = np.asarray(ct.shape) - 1
    ijk_lo = np.clip(np.floor(corner_ijk.min(axis=0)).astype(int), 0, top)
    ijk_hi = np.clip(np.ceil(corner_ijk.max(axis=0)).astype(int), 0, top)
    box = tuple(slice(a, b + 1) for a, b in zip(ijk_lo, ijk_hi, strict=True))
    grid = np.stack(np.meshgrid(*[np.arange(x.start, x.stop) for x in box], indexing="ij"), -1)
    pts = ct.index_to_lps(grid.reshape(-1, 3).astype(np.float64))
    # distance to the lesion's axis (nearest sample) and the arc length there
    fine_t = np.linspace(start_mm - 5.0, start_mm + length_mm + 5.0, int((length_mm + 10) * 8))
    fine = np.stack([np.interp(fine_t, s, axis[:, d]) for d in range(3)], axis=1)
    distance, nearest = cKDTree(fine).query(pts)
    along = fine_t[nearest]
    inside = (along >= start_mm) & (along <= start_mm + length_mm) & (distance < reach)
    ramp_mm = min(ct.spacing_mm[0], ct.spacing_mm[1])
    tissue = np.clip((distance - residual_radius_mm) / ramp_mm + 0.5, 0.0, 1.0)
    array = np.asarray(ct.array, dtype=np.float32).copy()
    sub = array[box].reshape(-1)
    mixed = (1.0 - tissue) * sub + tissue * tissue_hu
    sub = np.where(inside & (sub < tissue_hu), np.maximum(sub, mixed), sub)
    array[box] = sub.reshape(array[box].shape)
    return ct.with_array(array)
