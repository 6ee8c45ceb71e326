"""Ablation zones as ellipsoids in the patient frame (LPS mm), and their voxel masks.

A zone is placed from the applicator's tip and direction (entry → tip) and a
:class:`~seldinger.physics.ablation.catalogue.ZoneSpec`: its centre lies
``centre_offset_mm`` along the direction from the tip, its first semi-axis runs along
the applicator, the second along the width direction (the line of the probes for a
pair or cluster), the third across both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.physics.ablation.catalogue import Setting, ZoneSpec

__all__ = [
    "MAX_CLUSTER_PROBES",
    "Ellipsoid",
    "cluster_offsets_mm",
    "probe_tips_lps_mm",
    "zone_ellipsoid",
    "zone_mask",
]

logger = logging.getLogger(__name__)

#: Largest probe cluster :func:`cluster_offsets_mm` lays out (regular polygons up to 6).
MAX_CLUSTER_PROBES = 6

_ORTHONORMAL_ATOL = 1e-6
_SURFACE_RTOL = 1e-12  # on the normalised squared radius: ~1e-10 mm for a 200 mm semi-axis


def _point(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    point = np.asarray(value, dtype=np.float64)
    if point.shape != (3,) or not np.isfinite(point).all():
        raise BadInputError(f"{name} must be 3 finite LPS coordinates in mm; got {value!r}.")
    return point


def _unit(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    vector = np.asarray(value, dtype=np.float64)
    norm = float(np.linalg.norm(vector)) if vector.shape == (3,) else math.nan
    if not (math.isfinite(norm) and norm > 1e-12):
        raise BadInputError(
            f"{name} must be a non-zero, finite LPS vector of 3 components (entry → tip for "
            f"the applicator direction); got {value!r}."
        )
    return vector / norm


@dataclass(frozen=True, eq=False)
class Ellipsoid:
    """A solid ellipsoid in LPS mm.

    Parameters
    ----------
    centre_lps_mm : ndarray, shape (3,)
        Centre, LPS mm.
    axes : ndarray, shape (3, 3)
        Rows: unit LPS directions of the semi-axes; row 0 is the applicator direction.
        Must be orthonormal.
    radii_mm : ndarray, shape (3,)
        Semi-axis lengths in mm along those rows; positive.

    Examples
    --------
    >>> ball = Ellipsoid(np.zeros(3), np.eye(3), np.array([10.0, 10.0, 10.0]))
    >>> ball.contains([[0.0, 0.0, 9.9], [0.0, 0.0, 10.1]]).tolist()
    [True, False]
    >>> round(ball.volume_ml, 3)
    4.189
    """

    centre_lps_mm: npt.NDArray[np.float64]
    axes: npt.NDArray[np.float64]
    radii_mm: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        centre = _point(self.centre_lps_mm, "Ellipsoid.centre_lps_mm")
        axes = np.asarray(self.axes, dtype=np.float64)
        radii = np.asarray(self.radii_mm, dtype=np.float64)
        if (
            axes.shape != (3, 3)
            or not np.isfinite(axes).all()
            or not np.allclose(axes @ axes.T, np.eye(3), rtol=0.0, atol=_ORTHONORMAL_ATOL)
        ):
            raise BadInputError(
                f"Ellipsoid.axes must be a 3x3 matrix of orthonormal rows (unit LPS "
                f"directions); got\n{axes}"
            )
        if radii.shape != (3,) or not np.isfinite(radii).all() or (radii <= 0).any():
            raise BadInputError(
                f"Ellipsoid.radii_mm must be 3 positive finite semi-axes in mm; got {radii}."
            )
        for name, array in (("centre_lps_mm", centre), ("axes", axes), ("radii_mm", radii)):
            array = array.copy()
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    def contains(self, points_lps_mm: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether LPS points lie inside or on the ellipsoid.

        Parameters
        ----------
        points_lps_mm : array_like, shape (..., 3)

        Returns
        -------
        ndarray of bool, shape (...)
        """
        points = np.asarray(points_lps_mm, dtype=np.float64)
        if points.ndim == 0 or points.shape[-1] != 3:
            raise BadInputError(f"points_lps_mm must have shape (..., 3); got {points.shape}.")
        local = ((points - self.centre_lps_mm) @ self.axes.T) / self.radii_mm
        # The tolerance keeps points exactly on the surface inside despite rounding.
        squared = np.einsum("...i,...i->...", local, local)
        result: npt.NDArray[np.bool_] = squared <= 1.0 + _SURFACE_RTOL
        return result

    @property
    def volume_ml(self) -> float:
        """4/3 π a b c, in millilitres (1 mL = 1000 mm³)."""
        return float(4.0 / 3.0 * math.pi * np.prod(self.radii_mm) / 1000.0)

    def bounds_lps_mm(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(lowest, highest) LPS corner of the tightest axis-aligned box around it."""
        # The half-extent along LPS axis e is sqrt(sum_k (r_k * axes[k, e])^2).
        half = np.sqrt(((self.radii_mm[:, None] * self.axes) ** 2).sum(axis=0))
        return self.centre_lps_mm - half, self.centre_lps_mm + half

    def __repr__(self) -> str:
        centre = ", ".join(f"{c:.2f}" for c in self.centre_lps_mm)
        radii = ", ".join(f"{r:.2f}" for r in self.radii_mm)
        direction = ", ".join(f"{c:.3f}" for c in self.axes[0])
        return (
            f"Ellipsoid(centre_lps_mm=({centre}), radii_mm=({radii}), direction_lps=({direction}))"
        )


def _frame(
    direction_lps: npt.ArrayLike, width_direction_lps: npt.ArrayLike | None
) -> npt.NDArray[np.float64]:
    """Rows (applicator, width, depth): a right-handed orthonormal LPS frame."""
    axis = _unit(direction_lps, "direction_lps")
    if width_direction_lps is None:
        # Any perpendicular: start from the LPS axis least aligned with the applicator.
        helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
        width = helper - (helper @ axis) * axis
    else:
        given = _unit(width_direction_lps, "width_direction_lps")
        width = given - (given @ axis) * axis
        if np.linalg.norm(width) < 1e-6:
            raise BadInputError(
                f"width_direction_lps {np.asarray(width_direction_lps).tolist()} is parallel "
                f"to direction_lps {np.asarray(direction_lps).tolist()}; give the in-plane line "
                "of the probes, across the applicator axis."
            )
    width = width / np.linalg.norm(width)
    depth = np.cross(axis, width)
    return np.stack([axis, width, depth])


def zone_ellipsoid(
    tip_lps_mm: npt.ArrayLike,
    direction_lps: npt.ArrayLike,
    zone: ZoneSpec,
    width_direction_lps: npt.ArrayLike | None = None,
) -> Ellipsoid:
    """The ellipsoid of ``zone`` for an applicator with its tip at ``tip_lps_mm``.

    Parameters
    ----------
    tip_lps_mm : array_like, shape (3,)
        Applicator tip (for a cluster: the tip point on the cluster's axis), LPS mm.
    direction_lps : array_like, shape (3,)
        Applicator direction, entry → tip; normalised here.
    zone : ZoneSpec
        Published zone size and centre offset.
    width_direction_lps : array_like, shape (3,), optional
        For pairs and clusters, the in-plane line of the probes; its component along
        ``direction_lps`` is removed. ``None``: any perpendicular (fine for zones of
        revolution, ``depth_mm is None``).

    Returns
    -------
    Ellipsoid
        Centre ``tip + centre_offset_mm * direction``; axes rows (applicator, width,
        depth); radii half of (length, width, depth).

    Raises
    ------
    ValueError
        If a direction is zero or not finite, or the width direction is parallel to
        the applicator.

    Examples
    --------
    A needle going superior (+S) with its zone centre 11.6 mm behind the tip:

    >>> e = zone_ellipsoid([0, 0, 0], [0, 0, 5], ZoneSpec(42.0, 36.0, centre_offset_mm=-11.6))
    >>> e.centre_lps_mm.tolist(), e.radii_mm.tolist()
    ([0.0, 0.0, -11.6], [21.0, 18.0, 18.0])
    """
    tip = _point(tip_lps_mm, "tip_lps_mm")
    axes = _frame(direction_lps, width_direction_lps)
    radii = np.asarray(zone.diameters_mm, dtype=np.float64) / 2.0
    return Ellipsoid(tip + zone.centre_offset_mm * axes[0], axes, radii)


def cluster_offsets_mm(n_probes: int, spacing_mm: float) -> npt.NDArray[np.float64]:
    """In-plane positions of parallel probes around the cluster axis.

    The probes sit on the vertices of a regular polygon of side ``spacing_mm``
    centred on the axis, with one side parallel to the width line and on its negative
    depth side: 1 probe on the axis; 2 on the width line at ±s/2; 3 an equilateral
    triangle (apex at +depth); 4 a square with sides along width and depth; 5 and 6 a
    regular pentagon and hexagon. Neighbouring probes are ``spacing_mm`` apart.

    Parameters
    ----------
    n_probes : int
        1 to :data:`MAX_CLUSTER_PROBES`.
    spacing_mm : float
        Centre-to-centre distance of neighbouring probes (polygon side), mm; positive
        when ``n_probes > 1`` (ignored for 1).

    Returns
    -------
    ndarray, shape (n_probes, 2)
        (width, depth) offsets in mm from the cluster axis.

    Examples
    --------
    >>> cluster_offsets_mm(2, 15.0).tolist()
    [[-7.5, 0.0], [7.5, 0.0]]
    >>> cluster_offsets_mm(4, 20.0).round(6).tolist()
    [[-10.0, -10.0], [10.0, -10.0], [10.0, 10.0], [-10.0, 10.0]]
    """
    if isinstance(n_probes, bool) or not isinstance(n_probes, int | np.integer):
        raise BadInputError(f"n_probes must be an integer; got {n_probes!r}.")
    if not 1 <= n_probes <= MAX_CLUSTER_PROBES:
        raise BadInputError(
            f"n_probes must be 1 to {MAX_CLUSTER_PROBES} (parallel probes on a regular "
            f"polygon); got {n_probes}. Place larger arrays as several clusters."
        )
    if n_probes == 1:
        return np.zeros((1, 2))
    if not (math.isfinite(spacing_mm) and spacing_mm > 0):
        raise BadInputError(
            f"spacing_mm must be a positive finite distance in mm for {n_probes} probes; "
            f"got {spacing_mm!r}."
        )
    circumradius_mm = spacing_mm / (2.0 * math.sin(math.pi / n_probes))
    angles = -math.pi / 2 - math.pi / n_probes + 2 * math.pi * np.arange(n_probes) / n_probes
    offsets = circumradius_mm * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    offsets[np.abs(offsets) < 1e-12 * spacing_mm] = 0.0  # exact zeros on the axes
    return offsets


def probe_tips_lps_mm(
    tip_lps_mm: npt.ArrayLike,
    direction_lps: npt.ArrayLike,
    setting: Setting,
    width_direction_lps: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Tips of each parallel probe of ``setting``'s cluster.

    Parameters
    ----------
    tip_lps_mm : array_like, shape (3,)
        Tip point on the cluster axis (the ``tip_lps_mm`` given to
        :func:`zone_ellipsoid`), LPS mm.
    direction_lps : array_like, shape (3,)
        Common probe direction, entry → tip.
    setting : Setting
        Supplies ``n_probes`` and ``probe_spacing_mm``.
    width_direction_lps : array_like, shape (3,), optional
        The in-plane width line, as for :func:`zone_ellipsoid` (same default).

    Returns
    -------
    ndarray, shape (n_probes, 3)
        Probe tips, LPS mm, in :func:`cluster_offsets_mm` order; each probe shares
        ``direction_lps``.
    """
    tip = _point(tip_lps_mm, "tip_lps_mm")
    axes = _frame(direction_lps, width_direction_lps)
    spacing_mm = 0.0 if setting.probe_spacing_mm is None else setting.probe_spacing_mm
    offsets = cluster_offsets_mm(setting.n_probes, spacing_mm)
    tips: npt.NDArray[np.float64] = tip + offsets @ axes[1:]
    return tips


def _index_box(
    reference: Volume, lo_lps_mm: npt.NDArray[np.float64], hi_lps_mm: npt.NDArray[np.float64]
) -> tuple[slice, slice, slice] | None:
    """Index slices covering an LPS box (any axis order), clipped; None when outside."""
    corners = np.array(np.meshgrid(*zip(lo_lps_mm, hi_lps_mm, strict=True), indexing="ij"))
    index = reference.lps_to_index(corners.reshape(3, -1).T)
    start = np.maximum(np.floor(index.min(axis=0) - 1e-9).astype(np.int64), 0)
    stop = np.minimum(np.ceil(index.max(axis=0) + 1e-9).astype(np.int64) + 1, reference.shape)
    if (stop <= start).any():
        return None
    return (slice(start[0], stop[0]), slice(start[1], stop[1]), slice(start[2], stop[2]))


def zone_mask(reference: Volume, ellipsoids: Sequence[Ellipsoid], supersample: int = 1) -> Volume:
    """Voxels of ``reference``'s grid inside the union of ``ellipsoids``.

    Only the voxels in each ellipsoid's bounding box are tested, so the cost follows
    the zones' size, not the CT's.

    Parameters
    ----------
    reference : Volume
        Grid to sample (any orientation or axis order; its voxels are not read).
    ellipsoids : sequence of Ellipsoid
        Zones; the mask is their union. Empty: an all-False mask.
    supersample : int
        1: a voxel is inside when its centre is. n > 1: each voxel is sampled at
        n × n × n evenly spaced points, and it is inside when at least half of them lie
        in the union (partial-volume rule).

    Returns
    -------
    Volume
        Boolean mask on ``reference``'s grid.

    Examples
    --------
    >>> grid = Volume(np.zeros((21, 21, 21), np.int16), np.diag([1.0, 1.0, 1.0, 1.0]))
    >>> ball = Ellipsoid(np.full(3, 10.0), np.eye(3), np.full(3, 5.0))
    >>> int(zone_mask(grid, [ball]).array.sum())  # lattice points within radius 5
    515
    """
    if isinstance(supersample, bool) or not isinstance(supersample, int) or supersample < 1:
        raise BadInputError(
            f"supersample must be a positive integer (samples per voxel edge); got {supersample!r}."
        )
    zones = list(ellipsoids)
    for n, item in enumerate(zones):
        if not isinstance(item, Ellipsoid):
            raise TypeError(
                f"ellipsoids[{n}] must be an Ellipsoid (see zone_ellipsoid); got "
                f"{type(item).__name__}."
            )
    mask = np.zeros(reference.shape, dtype=bool)
    step = reference.affine[:3, :3]  # columns: LPS mm per unit of i, j, k
    fractions = (np.arange(supersample) + 0.5) / supersample - 0.5
    sub_offsets = np.array(np.meshgrid(fractions, fractions, fractions, indexing="ij"))
    sub_offsets_lps = sub_offsets.reshape(3, -1).T @ step.T
    needed = supersample**3 / 2.0
    margin_mm = float(np.abs(step).sum(axis=1).max()) if supersample > 1 else 0.0
    bounds = [zone.bounds_lps_mm() for zone in zones]
    for lo, hi in bounds:
        box = _index_box(reference, lo - margin_mm, hi + margin_mm)
        if box is None:
            continue
        starts = [s.start for s in box]
        ranges = [np.arange(s.start, s.stop) - start for s, start in zip(box, starts, strict=True)]
        # Voxel centres of the box by broadcasting, shape (ni, nj, nk, 3).
        centres = (
            reference.index_to_lps(starts)
            + ranges[0][:, None, None, None] * step[:, 0]
            + ranges[1][None, :, None, None] * step[:, 1]
            + ranges[2][None, None, :, None] * step[:, 2]
        )
        box_lo, box_hi = centres.reshape(-1, 3).min(0), centres.reshape(-1, 3).max(0)
        neighbours = [
            zone
            for zone, (zlo, zhi) in zip(zones, bounds, strict=True)
            if (zlo - margin_mm <= box_hi).all() and (zhi + margin_mm >= box_lo).all()
        ]
        count = np.zeros(centres.shape[:3], dtype=np.int32)
        for offset in sub_offsets_lps:
            points = centres + offset
            inside = np.zeros(centres.shape[:3], dtype=bool)
            for zone in neighbours:
                inside |= zone.contains(points)
            count += inside
        mask[box] |= count >= needed
    return reference.with_array(mask)
