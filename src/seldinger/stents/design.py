"""A patient-specific airway stent: tracheal or Y, shaped on the lumen at its reference size.

The outer surface follows the lumen's measured outline (the polar radius of every
cross-section, :attr:`~seldinger.stents.sections.CrossSections.radius_mm`) where the airway
is healthy; across a stenosis (and at junctions, where no outline is measured) the outline
is interpolated between the healthy sections on either side, so the stent has the
airway's reference size there and opens the narrowing. The outline is smoothed, enlarged
by the oversize, and the wall (``wall_mm``) is taken inwards, so that each limb's lumen lies
a wall inside its own limb. A Y stent joins the lower trachea and both main bronchi: each
bronchial limb starts inside the tracheal limb and leaves through its floor (the tracheal
lumen stops a wall short of the limb's end, each bronchial lumen starts a wall into its
limb), so the solids overlap in volume and the boolean union is exact and manifold. Given
the CT, the Y's junction is fitted to the airway (:func:`_airway_clip`): the limbs are cut
by the lumen grown by the oversize and the lumens by the same surface a wall further in,
so the crotch takes the carina's shape with a full wall; without it, a slab between the
bronchial lumens stays as the stent's carina. Optional studs (cylinders on the outer
surface, as on Dumon stents) resist migration.

Printability is checked on the result: closed manifold (watertight, consistently
oriented), the wall thickness everywhere (exact distances from the lumen's surface to the
outer surface), and the volume.

Frame and units follow ``docs/conventions.md``: LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError, InfeasiblePlanError
from seldinger.imaging import Volume
from seldinger.stents.centreline import rotation_minimising_frames
from seldinger.stents.lumen import LumenProfile, LumenSurvey
from seldinger.stents.meshes import Mesh, from_manifold, swept_tube, to_manifold

__all__ = [
    "FIT_TOLERANCE_MM",
    "MIN_WALL_MM",
    "PrintCheck",
    "StentDesign",
    "StentOptions",
    "airway_fit",
    "design_stent",
    "reference_outline",
    "uncovered_stenoses",
]

FloatArray = npt.NDArray[np.float64]

#: Thinnest printable / castable silicone wall, mm (the issue's bar).
MIN_WALL_MM = 1.0
#: How far beyond the oversize the outer surface may lie outside the airway lumen, mm: the
#: outline is smoothed along and around the tube (a sharp bump of the wall is not
#: followed), and a Y's limbs are blended into the trachea.
FIT_TOLERANCE_MM = 0.5
_FIT_STEP_MM = 0.05
_FIT_REACH_MM = 8.0
_SMOOTH_ALONG_MM = 2.0
_SMOOTH_AROUND_RAYS = 1.5
_SAMPLE_MM = 0.3  # spacing of the outer-surface points the wall is measured to
_EXACT_POINTS = 500  # lumen points whose wall is measured exactly
_RING_STEP_MM = 1.0  # ring spacing along a limb
_END_FIT_MM = 10.0  # healthy axis fitted by a line to continue it beyond its ends
_CLIP_GRID_MM = 0.3  # grid of the airway a Y junction is fitted to
_OPEN_MM = 1.0  # radius of the ball the fitted airway is opened by
_BEND_MM = 15.0  # a Y's bronchial limb bends onto its bronchus's axis this far down it


@dataclass(frozen=True)
class StentOptions:
    """How to shape the stent.

    Parameters
    ----------
    kind : {"tracheal", "y"}
        A straight tracheal stent, or a Y (trachea and both main bronchi).
    wall_mm : float
        Wall thickness, mm (>= :data:`MIN_WALL_MM`).
    oversize_percent : float
        Outer outline over the reference lumen, % (0-20).
    proximal_path_mm, distal_path_mm : float, optional
        Extent of a tracheal stent along the airway (path length from the upper end of the
        trachea); default: the most severe tracheal stenosis plus 10 mm each end, else the
        middle of the trachea.
    tracheal_limb_mm, bronchial_limb_mm : float
        Lengths of a Y stent's limbs from the carina, mm.
    studs : bool
        Add studs on the outer surface.
    stud_height_mm, stud_diameter_mm, stud_spacing_mm : float
        Stud size and spacing along the stent, mm (8 studs around).
    """

    kind: Literal["tracheal", "y"] = "tracheal"
    wall_mm: float = 1.5
    oversize_percent: float = 10.0
    proximal_path_mm: float | None = None
    distal_path_mm: float | None = None
    tracheal_limb_mm: float = 40.0
    bronchial_limb_mm: float = 20.0
    studs: bool = False
    stud_height_mm: float = 1.0
    stud_diameter_mm: float = 2.0
    stud_spacing_mm: float = 8.0

    def __post_init__(self) -> None:
        if self.kind not in ("tracheal", "y"):
            raise BadInputError(f"kind must be 'tracheal' or 'y'; got {self.kind!r}.")
        if not self.wall_mm >= MIN_WALL_MM:
            raise BadInputError(
                f"wall_mm must be at least {MIN_WALL_MM} mm to print and cast; got {self.wall_mm}."
            )
        if not 0.0 <= self.oversize_percent <= 30.0:
            raise BadInputError(
                f"oversize_percent must lie in 0-30 % (10-20 % is usual); got "
                f"{self.oversize_percent}."
            )


@dataclass(frozen=True)
class PrintCheck:
    """Printability of a stent mesh."""

    watertight: bool
    min_wall_mm: float
    volume_mm3: float
    max_outside_mm: float | None = None
    max_excess_mm: float | None = None

    @property
    def ok(self) -> bool:
        """Watertight, wall >= :data:`MIN_WALL_MM`, and (when checked against the CT)
        nowhere outside the airway by more than the oversize (to :data:`FIT_TOLERANCE_MM`)."""
        fits = self.max_excess_mm is None or self.max_excess_mm <= FIT_TOLERANCE_MM
        return self.watertight and self.min_wall_mm >= MIN_WALL_MM - 1e-6 and fits

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "watertight": self.watertight,
            "min_wall_mm": round(self.min_wall_mm, 3),
            "volume_mm3": round(self.volume_mm3, 1),
            "volume_ml": round(self.volume_mm3 / 1000.0, 3),
            "max_outside_airway_mm": None
            if self.max_outside_mm is None
            else round(self.max_outside_mm, 2),
            "max_beyond_oversize_mm": None
            if self.max_excess_mm is None
            else round(self.max_excess_mm, 2),
            "ok": self.ok,
        }


@dataclass(frozen=True, eq=False)
class StentDesign:
    """The designed stent and what it was built from."""

    mesh: Mesh
    outer: Any  # manifold3d.Manifold: the outer solid (studs included), for the mould
    inner: Any  # manifold3d.Manifold: the lumen solid, longer than the stent (the core)
    options: StentOptions
    check: PrintCheck
    axis_lps_mm: FloatArray  # the centrelines joined, for the mould's parting plane
    limbs: tuple[tuple[str, float, float], ...]  # (label, from path mm, to path mm)
    ring_radius_max_mm: float = 0.0  # largest outer ring radius (studs stand beyond it)
    # a Y's crotch: the tracheal floor's centre, the downward axis and the septum's normal
    crotch: tuple[FloatArray, FloatArray, FloatArray] | None = None
    stud_bases_lps_mm: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "kind": self.options.kind,
            "wall_mm": self.options.wall_mm,
            "oversize_percent": self.options.oversize_percent,
            "studs": self.options.studs,
            "limbs": [
                {"label": lab, "from_path_mm": round(a, 1), "to_path_mm": round(b, 1)}
                for lab, a, b in self.limbs
            ],
            "vertices": len(self.mesh.vertices_lps_mm),
            "triangles": len(self.mesh.faces),
            "print_check": self.check.to_dict(),
        }


def reference_outline(profile: LumenProfile, lesions: list[tuple[float, float]]) -> FloatArray:
    """The lumen's polar outline (N, RAYS) at its reference size, mm.

    Stations measured as healthy keep their outline; stations in a lesion (``lesions``: arc
    length extents, mm, widened by 2 mm), junction stations and unmeasured ones are
    interpolated along the tube from the healthy ones (the nearest at the ends). The result
    is smoothed along (:data:`_SMOOTH_ALONG_MM`) and around the tube.

    Raises
    ------
    InfeasiblePlanError
        Fewer than two healthy stations.
    """
    radius = profile.sections.radius_mm.copy()
    s = profile.centreline.s_mm
    healthy = (profile.sections.status == "ok") & ~profile.junction & np.isfinite(radius).all(1)
    for a, b in lesions:
        healthy &= ~((s >= a - 2.0) & (s <= b + 2.0))
    if healthy.sum() < 2:
        raise InfeasiblePlanError(
            f"the {profile.label.replace('_', ' ')} has fewer than two healthy cross-sections "
            "to shape a stent on; measure a longer stretch of airway."
        )
    for j in range(radius.shape[1]):
        radius[:, j] = np.interp(s, s[healthy], radius[healthy, j])
    step = float(np.median(np.diff(s))) if len(s) > 1 else 1.0
    radius = ndi.gaussian_filter1d(radius, _SMOOTH_ALONG_MM / step, axis=0, mode="nearest")
    radius = ndi.gaussian_filter1d(radius, _SMOOTH_AROUND_RAYS, axis=1, mode="wrap")
    return np.asarray(radius, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class _Limb:
    """Rings of one limb: centres, frames and the outer radius per ray (mm)."""

    centres: FloatArray
    u: FloatArray
    v: FloatArray
    outer_r: FloatArray
    tangent_start: FloatArray
    tangent_end: FloatArray


def _healthy_axis(profile: LumenProfile) -> tuple[FloatArray, FloatArray]:
    """Arc lengths and lumen centroids of the healthy stations (junctions left out)."""
    ok = (profile.sections.status == "ok") & ~profile.junction
    if ok.sum() < 2:
        ok = profile.sections.status == "ok"
    if ok.sum() < 2:
        return profile.centreline.s_mm, profile.centreline.points_lps_mm
    return profile.centreline.s_mm[ok], profile.sections.centroid_lps_mm[ok]


def _axis_at(s_known: FloatArray, points: FloatArray, q: FloatArray) -> FloatArray:
    """Points at arc lengths ``q``: interpolated inside, straight lines (fitted on the last
    :data:`_END_FIT_MM`) beyond the known ends."""
    out = np.stack([np.interp(q, s_known, points[:, d]) for d in range(3)], axis=1)
    for beyond, near in (
        (q < s_known[0], s_known <= s_known[0] + _END_FIT_MM),
        (q > s_known[-1], s_known >= s_known[-1] - _END_FIT_MM),
    ):
        if beyond.any() and near.sum() >= 2:
            coef = np.polyfit(s_known[near], points[near], 1)
            out[beyond] = np.outer(q[beyond], coef[0]) + coef[1]
    return out


def _limb_on_profile(
    profile: LumenProfile,
    outline: FloatArray,
    lo_mm: float,
    hi_mm: float,
    oversize: float,
) -> _Limb:
    """A limb over arc lengths [lo, hi] of one profile (beyond its healthy stations, the
    axis runs straight on), with rings at both exact ends and frames that do not twist;
    the outline is rolled from the profile's frames into the limb's."""
    if hi_mm - lo_mm < 2.0:
        raise InfeasiblePlanError(
            f"a {hi_mm - lo_mm:.1f} mm limb in the {profile.label.replace('_', ' ')} is too "
            "short; choose a longer extent."
        )
    n = int(np.ceil((hi_mm - lo_mm) / _RING_STEP_MM)) + 1
    q = np.linspace(lo_mm, hi_mm, n)
    s_known, known = _healthy_axis(profile)
    axis = _axis_at(s_known, known, q)
    centres = _smooth_keeping_ends(axis, 3.0 / _RING_STEP_MM)
    tangents = np.gradient(centres, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    u, v = rotation_minimising_frames(centres, tangents)
    rolled = _rolled_outline(profile, outline, q, u)
    return _Limb(centres, u, v, rolled * (1.0 + oversize / 100.0), tangents[0], tangents[-1])


def _slope_factor(limb: _Limb) -> FloatArray:
    """``1 / cos`` of the angle between the outer surface's normal and the radial direction,
    per ring and ray: a wall taken inwards along the radius by ``wall / cos`` is ``wall``
    thick along the normal where the outline changes along or around the tube."""
    r = limb.outer_r
    step = np.linalg.norm(np.gradient(limb.centres, axis=0), axis=1)[:, None]
    along = np.gradient(r, axis=0) / np.maximum(step, 1e-6) if len(r) > 1 else 0.0 * r
    dtheta = 2.0 * np.pi / r.shape[1]
    around = (np.roll(r, -1, axis=1) - np.roll(r, 1, axis=1)) / (2.0 * dtheta * r)
    factor = np.sqrt(1.0 + along**2 + around**2)
    # the thinnest spot is where the slope is steepest nearby: spread the largest
    return np.asarray(ndi.maximum_filter(factor, size=3, mode="nearest"), dtype=np.float64)


def _tubes(
    limb: _Limb,
    lumen: _Limb,
    wall_mm: float,
    extend_start_mm: float,
    extend_end_mm: float,
    label: str,
) -> tuple[Mesh, Mesh]:
    """Outer tube of ``limb``, and the lumen tube of ``lumen`` (``wall_mm`` inside its outer
    radius), extended at its ends along the tangents."""
    inner_r = lumen.outer_r - wall_mm * _slope_factor(lumen)
    if inner_r.min() < 1.0:
        raise InfeasiblePlanError(
            f"a {wall_mm} mm wall leaves under 1 mm of lumen in the {label.replace('_', ' ')}; "
            "choose a thinner wall."
        )
    outer = swept_tube(limb.centres, limb.u, limb.v, limb.outer_r)
    centres = lumen.centres.copy()
    centres[0] -= extend_start_mm * lumen.tangent_start
    centres[-1] += extend_end_mm * lumen.tangent_end
    inner = swept_tube(centres, lumen.u, lumen.v, inner_r)
    return outer, inner


def _bronchial_limb(
    trachea_limb: _Limb,
    bronchus: LumenProfile,
    outline: FloatArray,
    o: StentOptions,
    above_floor_mm: float,
) -> _Limb:
    """A Y's bronchial limb: from inside the tracheal lumen, ``above_floor_mm`` above its
    floor and moved half-way to the tracheal wall on the bronchus's side, heading down the
    trachea; a cubic Bezier bends it onto the bronchus's axis :data:`_BEND_MM` down the
    bronchus (a gentle bend: its radius stays above the tube's, so rings never cross), and
    it follows the bronchus to ``bronchial_limb_mm``."""
    oversize = o.oversize_percent
    down = trachea_limb.tangent_end / np.linalg.norm(trachea_limb.tangent_end)
    floor = trachea_limb.centres[-1] - o.wall_mm * down
    shift = _side_shift(trachea_limb, bronchus, outline, oversize)
    start = floor - above_floor_mm * down + shift
    s_known, known = _healthy_axis(bronchus)
    bend_end = min(_BEND_MM, o.bronchial_limb_mm - 2.0)
    q = np.arange(bend_end, o.bronchial_limb_mm + 1e-9, _RING_STEP_MM)
    if q[-1] < o.bronchial_limb_mm - 1e-6:
        q = np.append(q, o.bronchial_limb_mm)
    follow = _axis_at(s_known, known, q)
    end = follow[0]
    tangent = follow[1] - follow[0]
    tangent /= np.linalg.norm(tangent)
    reach = 0.5 * float(np.linalg.norm(end - start))
    t = np.linspace(0.0, 1.0, max(int(np.ceil(3.0 * reach / _RING_STEP_MM)), 4))[:-1, None]
    c1, c2 = start + reach * down, end - reach * tangent
    bend = (1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * end
    centres = np.concatenate([bend, follow])
    tangents = np.gradient(centres, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    u, v = rotation_minimising_frames(centres, tangents)
    # the outline along the bend is the bronchus's at the bend's end; then its own
    s_of = np.concatenate([np.full(len(bend), bend_end), q])
    return _Limb(
        centres,
        u,
        v,
        _rolled_outline(bronchus, outline, s_of, u) * (1.0 + oversize / 100.0),
        tangents[0],
        tangents[-1],
    )


def _trim_start(limb: _Limb, mm: float) -> _Limb:
    """The limb without its first ``mm`` (along its centres; the new first ring
    interpolated between the two rings about it)."""
    step = np.linalg.norm(np.diff(limb.centres, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(step)])
    k = int(np.clip(np.searchsorted(s, mm, side="right"), 1, len(s) - 1))
    t = (mm - s[k - 1]) / max(s[k] - s[k - 1], 1e-9)

    def cut(a: FloatArray) -> FloatArray:
        first = (1.0 - t) * a[k - 1] + t * a[k]
        return np.concatenate([first[None], a[k:]])

    u, v = cut(limb.u), cut(limb.v)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v -= u * np.einsum("ij,ij->i", u, v)[:, None]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return _Limb(cut(limb.centres), u, v, cut(limb.outer_r), limb.tangent_start, limb.tangent_end)


def _trim_end(limb: _Limb, mm: float) -> _Limb:
    """The limb without its last ``mm`` (as :func:`_trim_start`)."""

    def flip(x: _Limb) -> _Limb:
        return _Limb(x.centres[::-1], x.u[::-1], x.v[::-1], x.outer_r[::-1],
                     -x.tangent_end, -x.tangent_start)  # fmt: skip

    return flip(_trim_start(flip(limb), mm))


def _rolled_outline(
    profile: LumenProfile, outline: FloatArray, s_mm: FloatArray, u: FloatArray
) -> FloatArray:
    """The profile's outline at arc lengths ``s_mm`` (clamped), its rays rolled from the
    profile's frames into frames whose first axis is ``u``."""
    s = profile.centreline.s_mm
    qc = np.clip(s_mm, s[0], s[-1])
    u_p = np.stack([np.interp(qc, s, profile.centreline.u[:, d]) for d in range(3)], axis=1)
    v_p = np.stack([np.interp(qc, s, profile.centreline.v[:, d]) for d in range(3)], axis=1)
    phi = np.arctan2(np.einsum("ij,ij->i", u, v_p), np.einsum("ij,ij->i", u, u_p))
    rays = outline.shape[1]
    angles = 2.0 * np.pi * np.arange(rays) / rays
    radius = np.stack([np.interp(qc, s, outline[:, j]) for j in range(rays)], axis=1)
    return np.stack(
        [
            np.interp(np.mod(angles + phi[k], 2 * np.pi), angles, radius[k], period=2 * np.pi)
            for k in range(len(s_mm))
        ]
    )


def _side_shift(
    trachea_limb: _Limb, bronchus: LumenProfile, outline: FloatArray, oversize: float
) -> FloatArray:
    """Sideways shift (LPS mm) putting a bronchial limb's start against its side of the
    tracheal limb: along the bronchus's direction across the trachea, by the difference of
    their outer radii."""
    down = trachea_limb.tangent_end / np.linalg.norm(trachea_limb.tangent_end)
    _s_known, known = _healthy_axis(bronchus)
    direction = known[-1] - known[0]
    across = direction - down * float(direction @ down)
    norm = float(np.linalg.norm(across))
    if norm < 1e-6:
        return np.zeros(3)
    r_trachea = float(np.mean(trachea_limb.outer_r[-1]))
    r_bronchus = float(np.mean(outline[np.searchsorted(bronchus.centreline.s_mm, 0.0)]))
    r_bronchus *= 1.0 + oversize / 100.0
    shift = 0.5 * max(r_trachea - r_bronchus, 0.0)
    return np.asarray(across / norm * shift, dtype=np.float64)


def _crotch_frame(lumens: list[_Limb]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The tracheal floor's centre, the trachea's downward axis, and the unit normal of the
    plane between the bronchial limbs (from the right limb towards the left)."""
    trachea, right, left = lumens
    down = trachea.tangent_end / np.linalg.norm(trachea.tangent_end)
    apart = left.tangent_end - right.tangent_end
    normal = apart - down * float(apart @ down)
    return trachea.centres[-1], down, normal / np.linalg.norm(normal)


def _septum(lumens: list[_Limb], wall_mm: float) -> Any:
    """A slab ``wall_mm`` thick between the two bronchial lumens, from the tracheal floor
    down: the Y's carina spur, which two diverging lumens would otherwise thin to a knife
    edge."""
    import manifold3d  # type: ignore[import-not-found,unused-ignore]

    floor, down, normal = _crotch_frame(lumens)
    side = np.cross(down, normal)
    size = 80.0
    slab = manifold3d.Manifold.cube((wall_mm, size, size), True)
    transform = np.column_stack([normal, side, down, floor + 0.5 * size * down])
    return slab.transform(transform)


def _airway_clip(
    ct: Volume,
    lumen: Volume | None,
    box: tuple[float, ...],
    axis_lps_mm: FloatArray,
    survey: LumenSurvey,
    o: StentOptions,
    radius_mm: float,
    edge_level_hu: float,
) -> tuple[Any, Any]:
    """The airway lumen grown by the oversize, and the same a wall further in: solids
    (manifold3d) over ``box`` (x0, y0, z0, x1, y1, z1, LPS mm, grown by 2 mm).

    The lumen is the CT below ``edge_level_hu`` (trilinear, on a :data:`_CLIP_GRID_MM`
    grid) within 3 mm of the airway mask, plus the stretch of every stenosis (the stent is
    meant to push it open); opened by a :data:`_OPEN_MM` ball, only the part holding the
    limbs' axes (``axis_lps_mm``) is kept, with the air within a ball of it (lung that a
    partial-volume leak joins to the airway is not airway). From its signed distance
    (Euclidean distance transform, smoothed by one grid step), the level ``d`` = the
    oversize allowed at ``radius_mm`` from the axis less a grid step gives the outer cut,
    ``d - wall_mm`` the inner one: level sets of one distance field lie ``wall_mm`` apart,
    and erosion distributes over intersection, so cutting the outer and the inner solid by
    them keeps the wall.
    """
    from skimage.measure import marching_cubes

    h = _CLIP_GRID_MM
    lo = np.asarray(box[:3], dtype=np.float64) - 2.0
    hi = np.asarray(box[3:], dtype=np.float64) + 2.0
    axes = [np.arange(a, b + h, h) for a, b in zip(lo, hi, strict=True)]
    shape = tuple(len(a) for a in axes)
    hu = ndi.map_coordinates(
        ct.array, _grid_index(ct, axes), order=1, mode="nearest", output=np.float32
    )
    inside = hu < edge_level_hu
    if lumen is not None:
        inside &= _near_mask_ijk(lumen, _grid_index(lumen, axes), 3.0)
    for stenosis in survey.stenoses:
        a, b = np.asarray(stenosis.start_lps_mm), np.asarray(stenosis.end_lps_mm)
        mid, half = 0.5 * (a + b), 0.5 * float(np.linalg.norm(b - a)) + 3.0
        square = sum(
            ((ax - m) ** 2).reshape([-1 if d == i else 1 for d in range(3)])
            for i, (ax, m) in enumerate(zip(axes, mid, strict=True))
        )
        inside |= np.asarray(square) <= half**2 + (radius_mm * 2.0) ** 2
    inside_3d = inside
    # the airway is the air connected to the limbs' axes, not lung behind a wall that
    # partial volume leaves thinner than the edge level somewhere: opened by a ball
    # (leaks under two radii across are cut), the part holding the axes, and the air
    # within a radius of it
    core = ndi.distance_transform_edt(inside_3d) > _OPEN_MM / h
    labels, _ = ndi.label(core)
    at = np.round((axis_lps_mm - lo) / h).astype(int)
    at = at[np.all((at >= 0) & (at < np.asarray(shape)), axis=1)]
    seeds = np.unique(labels[tuple(at.T)])
    core = np.isin(labels, seeds[seeds > 0])
    inside_3d &= ndi.distance_transform_edt(~core) <= _OPEN_MM / h + 1.0
    inside_3d[[0, -1]] = inside_3d[:, [0, -1]] = inside_3d[:, :, [0, -1]] = False
    sdf = ndi.distance_transform_edt(~inside_3d) - ndi.distance_transform_edt(inside_3d)
    sdf = ndi.gaussian_filter(sdf.astype(np.float64) * h, 1.0)
    sdf[[0, -1]] = sdf[:, [0, -1]] = sdf[:, :, [0, -1]] = 1e3  # closed surfaces
    fraction = o.oversize_percent / 100.0
    # a grid step inside the allowance: the cut surface is resolved to about that
    grow = max(fraction / (1.0 + fraction) * radius_mm - h, 0.0)
    solids = []
    for level in (grow, grow - o.wall_mm):
        verts, faces, _, _ = marching_cubes(sdf, level=level, spacing=(h, h, h))
        mesh = Mesh(verts.astype(np.float64) + lo, faces.astype(np.int64))
        if mesh.volume_mm3 < 0:
            mesh = Mesh(mesh.vertices_lps_mm, mesh.faces[:, ::-1].copy())
        solids.append(to_manifold(mesh).simplify(_CLIP_GRID_MM / 6.0).as_original())
    return solids[0], solids[1]


def _smooth_keeping_ends(points: FloatArray, sigma: float) -> FloatArray:
    """Gaussian smoothing along a polyline that neither shortens it nor moves its ends
    (the straight line between the ends is taken out, smoothed residual added back)."""
    t = np.linspace(0.0, 1.0, len(points))[:, None]
    line = points[:1] + t * (points[-1:] - points[:1])
    residual = ndi.gaussian_filter1d(points - line, sigma, axis=0, mode="constant")
    return np.asarray(line + residual, dtype=np.float64)


def _default_extent(survey: LumenSurvey, trachea: LumenProfile) -> tuple[float, float]:
    lesions = [s for s in survey.stenoses if s.label == "trachea"]
    if lesions:
        worst = max(lesions, key=lambda s: s.stenosis_area_percent)
        return worst.start_path_mm - 10.0, worst.end_path_mm + 10.0
    path = trachea.path_mm
    analysed = np.isfinite(trachea.analysed_area_mm2)
    lo, hi = float(path[analysed].min()), float(path[analysed].max())
    middle = 0.5 * (lo + hi)
    return middle - 20.0, middle + 20.0


def _studs(
    centres: FloatArray, u: FloatArray, v: FloatArray, outer_r: FloatArray, o: StentOptions
) -> list[Any]:
    """Cylinders standing on the outer surface (8 around, every ``stud_spacing_mm``)."""
    import manifold3d  # type: ignore[import-not-found,unused-ignore]

    rays = outer_r.shape[1]
    studs = []
    for k in range(2, len(centres) - 2, max(round(o.stud_spacing_mm), 1)):
        offset = (k // max(round(o.stud_spacing_mm), 1)) % 2 * (rays // 16)
        for j in range(offset, rays, rays // 8):
            a = 2.0 * np.pi * j / rays
            radial = np.cos(a) * u[k] + np.sin(a) * v[k]
            base = centres[k] + (outer_r[k, j] - 0.5) * radial
            z = radial / np.linalg.norm(radial)
            x = np.cross(z, [0.0, 0.0, 1.0] if abs(z[2]) < 0.9 else [1.0, 0.0, 0.0])
            x /= np.linalg.norm(x)
            y = np.cross(z, x)
            transform = np.column_stack([x, y, z, base])
            cylinder = manifold3d.Manifold.cylinder(
                o.stud_height_mm + 0.5, o.stud_diameter_mm / 2, o.stud_diameter_mm / 2, 16
            )
            studs.append((cylinder.transform(transform), base))
    return studs


def uncovered_stenoses(design: StentDesign, survey: LumenSurvey) -> list[str]:
    """A note for each graded stenosis of the survey that the stent does not span whole.

    A Y stent covers the carina and a few centimetres of trachea and main bronchi; a
    stenosis higher in the trachea, or one longer than a limb, is left (partly) open.
    """
    notes = []
    for stenosis in survey.stenoses:
        spans = [(a, b) for label, a, b in design.limbs if label == stenosis.label]
        inside = any(
            a <= stenosis.start_path_mm + 0.5 and stenosis.end_path_mm - 0.5 <= b for a, b in spans
        )
        if inside:
            continue
        covered = any(a < stenosis.end_path_mm and stenosis.start_path_mm < b for a, b in spans)
        notes.append(
            f"the {stenosis.label.replace('_', ' ')} stenosis "
            f"({stenosis.stenosis_area_percent:.0f} % by area, narrowest at LPS "
            f"{np.round(stenosis.narrowest_lps_mm, 1).tolist()} mm) is {'only partly' if covered else 'not'} "
            f"covered by this {design.options.kind} stent; "
            + (
                "a tracheal stent (--type tracheal) spans it."
                if design.options.kind == "y" and stenosis.label == "trachea"
                else "check the stent's extent against it (StentOptions.proximal_path_mm and "
                "distal_path_mm set it)."
            )
        )
    return notes


def design_stent(
    survey: LumenSurvey,
    options: StentOptions | None = None,
    *,
    ct: Volume | None = None,
    lumen: Volume | None = None,
    edge_level_hu: float = -500.0,
) -> StentDesign:
    """Design a tracheal or Y stent on a measured airway.

    Parameters
    ----------
    survey : LumenSurvey
        From :func:`~seldinger.stents.lumen.measure_airway` (a Y stent needs the trachea and
        both main bronchi).
    options : StentOptions, optional
        Shape parameters (default: tracheal, 1.5 mm wall, 10 % oversize, no studs).
    ct, lumen : Volume, optional
        The CT and its airway mask. Given with a Y stent, the junction is fitted to the
        airway (:func:`_airway_clip`): the swept limbs are cut by the lumen grown by the
        oversize and the stent's lumen by the same surface a wall further in, so the crotch
        takes the carina's real shape with a wall of ``wall_mm`` across it.

    Returns
    -------
    StentDesign

    Raises
    ------
    BadInputError
        The survey is not of an airway, or lacks a branch the stent needs.
    InfeasiblePlanError
        Too little healthy airway to shape the stent on, or the wall leaves no lumen.
    """
    import manifold3d  # type: ignore[import-not-found,unused-ignore]

    o = options or StentOptions()
    if survey.organ != "airway":
        raise BadInputError("stents are designed on an airway survey (organ 'airway').")
    try:
        trachea = survey.profile("trachea")
    except KeyError as err:
        raise BadInputError(
            f"no trachea among the airway's measured segments: {err}. Check the airway mask "
            "(seldinger segment; a narrowed trachea can cut the tree short)."
        ) from None
    lesions = {
        p.label: [
            (s.start_path_mm - p.path_offset_mm, s.end_path_mm - p.path_offset_mm)
            for s in survey.stenoses
            if s.label == p.label
        ]
        for p in survey.profiles
    }
    oversize = o.oversize_percent
    limbs: list[tuple[str, float, float]] = []
    # (limb, its lumen, lumen extension at the start and the end, label)
    pieces: list[tuple[_Limb, _Limb, float, float, str]] = []
    if o.kind == "tracheal":
        lo, hi = (
            (o.proximal_path_mm, o.distal_path_mm)
            if o.proximal_path_mm is not None and o.distal_path_mm is not None
            else _default_extent(survey, trachea)
        )
        outline = reference_outline(trachea, lesions["trachea"])
        off = trachea.path_offset_mm
        limb = _limb_on_profile(trachea, outline, lo - off, hi - off, oversize)
        pieces.append((limb, limb, 3.0, 3.0, "trachea"))
        limbs.append(("trachea", lo, hi))
    else:
        if survey.carina_path_mm is None:
            raise BadInputError("a Y stent needs the carina: the airway tree has no bronchi.")
        carina = survey.carina_path_mm
        off = trachea.path_offset_mm
        outline = reference_outline(trachea, lesions["trachea"])
        trachea_limb = _limb_on_profile(
            trachea, outline, carina - o.tracheal_limb_mm - off, carina - off, oversize
        )
        # the tracheal lumen stops a wall short of the limb's end: the floor of the Y,
        # pierced by the bronchial lumens
        trachea_lumen = _trim_end(trachea_limb, o.wall_mm)
        pieces.append((trachea_limb, trachea_lumen, 3.0, 0.0, "trachea"))
        limbs.append(("trachea", carina - o.tracheal_limb_mm, carina))
        for index, label in enumerate(("main_bronchus_right", "main_bronchus_left")):
            try:
                bronchus = survey.profile(label)
            except KeyError:
                raise BadInputError(
                    f"a Y stent needs the {label.replace('_', ' ')}, and the airway mask does "
                    "not reach it (no such segment was measured). Check the airways of "
                    "`seldinger segment` (a narrowed trachea can cut the tree short), or "
                    "design a tracheal stent (--type tracheal)."
                ) from None
            # each limb starts inside the tracheal lumen above its floor (each at its own
            # height: nothing coincides), on its own side, heading down the trachea, and
            # bends smoothly onto its bronchus (see _bronchial_limb)
            b_outline = reference_outline(bronchus, lesions[label])
            limb = _bronchial_limb(
                trachea_limb,
                bronchus,
                b_outline,
                o,
                above_floor_mm=6.0 + 0.5 * index,
            )
            # its lumen starts a wall into the limb, as the tracheal lumen stops a wall
            # short of the floor: each lumen lies a wall inside its own limb
            pieces.append((limb, _trim_start(limb, o.wall_mm), 0.0, 3.0, label))
            limbs.append(
                (label, bronchus.path_offset_mm, bronchus.path_offset_mm + o.bronchial_limb_mm)
            )
    outers: list[Any] = []
    inners: list[Any] = []
    studs: list[Any] = []
    stud_bases: list[FloatArray] = []
    for limb, bore, ext0, ext1, label in pieces:
        outer, inner = _tubes(limb, bore, o.wall_mm, ext0, ext1, label)
        outers.append(to_manifold(outer))
        inners.append(to_manifold(inner))
        if o.studs:
            for solid, base in _studs(limb.centres, limb.u, limb.v, limb.outer_r, o):
                studs.append(solid)
                stud_bases.append(base)
    outer_solid = manifold3d.Manifold.batch_boolean(outers, manifold3d.OpType.Add)
    inner_solid = manifold3d.Manifold.batch_boolean(inners, manifold3d.OpType.Add)
    fitted = o.kind == "y" and ct is not None
    if fitted and ct is not None:
        # the junction takes the airway's shape: the limbs cut by the lumen grown by the
        # oversize, their lumens by the same surface a wall further in (no septum needed:
        # each lumen lies a wall inside its own limb, and the carina's wall is the cut's)
        radius = float(min(p[0].outer_r.min() for p in pieces))
        grown, shrunk = _airway_clip(
            ct,
            lumen,
            inner_solid.bounding_box(),
            np.concatenate([p[0].centres for p in pieces]),
            survey,
            o,
            radius,
            edge_level_hu,
        )
        # slivers of a limb cut off by the airway's wall are dropped
        outer_solid = max((outer_solid ^ grown).decompose(), key=lambda m: m.volume())
        inner_solid = inner_solid ^ shrunk
    elif o.kind == "y":
        inner_solid = inner_solid - _septum([p[1] for p in pieces], o.wall_mm)
    if studs:
        outer_solid = manifold3d.Manifold.batch_boolean(
            [outer_solid, *studs], manifold3d.OpType.Add
        )
    stent = outer_solid - inner_solid
    mesh = from_manifold(stent)
    ends = [(pieces[0][0].centres[0], pieces[0][0].tangent_start)]
    if o.kind == "tracheal":
        ends.append((pieces[0][0].centres[-1], pieces[0][0].tangent_end))
    ends += [(p[0].centres[-1], p[0].tangent_end) for p in pieces[1:]]
    check = print_check(stent, mesh, inner_solid, outer_solid, ends, o.wall_mm)
    axis = np.concatenate([p[0].centres for p in pieces])
    ring_max = float(max(p[0].outer_r.max() for p in pieces))
    # a crotch fitted to the carina is checked like the rest; a swept one rides on it
    crotch = _crotch_frame([p[1] for p in pieces]) if o.kind == "y" and not fitted else None
    return StentDesign(
        mesh,
        outer_solid,
        inner_solid,
        o,
        check,
        axis,
        tuple(limbs),
        ring_max,
        crotch,
        np.asarray(stud_bases, dtype=np.float64).reshape(-1, 3),
    )


def print_check(
    stent: Any,
    mesh: Mesh,
    inner_solid: Any,
    outer_solid: Any,
    ends: list[tuple[FloatArray, FloatArray]] | None = None,
    wall_mm: float = 0.0,
) -> PrintCheck:
    """Watertightness, the thinnest wall and the volume of a stent solid.

    The wall at a point of the lumen's surface is its distance to the nearest point of the
    outer surface (the radius of the largest ball that fits in the wall there, doubled
    where both surfaces curve away — the offset definition of thickness). It is taken from
    the centroid of every triangle of the stent on the lumen's surface (``inner_solid``'s
    boundary) to points spread :data:`_SAMPLE_MM` apart over the outer solid's surface.
    Triangles within 1.5 walls of an open end (``ends``: centre and outward axis of each,
    LPS mm) are left out: there the nearest outer point is on the end face, not across
    the wall.
    """
    import manifold3d  # type: ignore[import-not-found,unused-ignore]
    import trimesh
    from scipy.spatial import cKDTree

    # as an STL reader sees it: float32 positions, coincident vertices merged
    stored = mesh.vertices_lps_mm.astype(np.float32).astype(np.float64)
    tm = trimesh.Trimesh(stored, mesh.faces, process=True)
    watertight = bool(
        tm.is_watertight and tm.is_winding_consistent and stent.status() == manifold3d.Error.NoError
    )
    outer_mesh = from_manifold(outer_solid.refine_to_length(_SAMPLE_MM))
    tree = cKDTree(outer_mesh.vertices_lps_mm)
    centroids = np.asarray(tm.triangles_center, dtype=np.float64)
    normals = np.asarray(tm.face_normals, dtype=np.float64)
    lumen = np.array(
        [
            bool(inner_solid.ray_cast(tuple(c - 0.02 * n), tuple(c + 0.02 * n)))
            for c, n in zip(centroids, normals, strict=True)
        ],
        dtype=bool,
    )
    # the lumen's triangles' centroids and corners
    points = np.concatenate([centroids[lumen], stored[np.unique(tm.faces[lumen])]])
    for centre, axis in ends or []:
        points = points[np.abs((points - centre) @ axis) > 1.5 * wall_mm]
    if len(points):
        # every point: exactly to the outer triangles around its nearest outer vertex; the
        # nearest few thousand: exactly to every outer triangle within reach
        distance, vertex = tree.query(points)
        incident = trimesh.Trimesh(outer_mesh.vertices_lps_mm, outer_mesh.faces,
                                   process=False).vertex_faces[vertex]  # fmt: skip
        which, column = np.nonzero(incident >= 0)
        triangles = outer_mesh.vertices_lps_mm[outer_mesh.faces[incident[which, column]]]
        closest = trimesh.triangles.closest_point(triangles, points[which])
        min_wall = float(np.linalg.norm(closest - points[which], axis=1).min())
        nearest = np.argsort(distance)[:_EXACT_POINTS]
        min_wall = min(
            min_wall, _exact_min_distance(outer_mesh, points[nearest], distance[nearest])
        )
    else:
        min_wall = float("nan")
    return PrintCheck(watertight, min_wall, float(stent.volume()))


def _exact_min_distance(mesh: Mesh, points: FloatArray, upper: FloatArray) -> float:
    """The least distance from ``points`` to the triangles of ``mesh``, given an upper
    bound per point (its distance to the nearest vertex): every triangle whose centre lies
    within the bound plus the largest centre-to-corner distance is tested exactly (closest
    point on a triangle, Ericson 2005, via trimesh)."""
    import trimesh
    from scipy.spatial import cKDTree

    tri = mesh.vertices_lps_mm[mesh.faces]
    centres = tri.mean(axis=1)
    reach = float(np.linalg.norm(tri - centres[:, None], axis=2).max())
    lists = cKDTree(centres).query_ball_point(points, upper + reach + 1e-6)
    which = np.repeat(np.arange(len(points)), [len(x) for x in lists])
    faces = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])
    closest = trimesh.triangles.closest_point(tri[faces], points[which])
    return float(np.linalg.norm(closest - points[which], axis=1).min())


def airway_fit(
    design: StentDesign,
    ct: Volume,
    survey: LumenSurvey,
    *,
    lumen: Volume | None = None,
    edge_level_hu: float = -500.0,
) -> PrintCheck:
    """The design's print check with how far its outer surface lies outside the airway.

    From every vertex of the stent's outer surface (studs, the end rims, and the stretch of
    each stenosis, which the stent is meant to push out, left out) the CT is sampled
    (trilinear) inwards along the surface normal until it reads lumen (below ``edge_level_hu``, the same sub-voxel edge
    the lumen was measured on; within 3 mm of ``lumen``, the airway mask, when given, so
    that lung is not airway): that distance is how far the vertex lies outside the airway.
    The oversize allows ``oversize / (1 + oversize)`` of the vertex's distance from the
    axis.

    Returns
    -------
    PrintCheck
        ``max_outside_mm`` and ``max_excess_mm`` (beyond the oversize) filled in.
    """
    import trimesh
    from scipy.spatial import cKDTree

    verts = design.mesh.vertices_lps_mm
    normals = np.asarray(
        trimesh.Trimesh(verts, design.mesh.faces, process=False).vertex_normals, dtype=np.float64
    )
    axis = design.axis_lps_mm
    _, nearest = cKDTree(axis).query(verts)
    rho = np.linalg.norm(axis[nearest] - verts, axis=1)
    tangent = np.gradient(axis, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    fraction = design.options.oversize_percent / 100.0
    outer_r = float(np.max(rho))
    keep = rho > design.options.wall_mm + 0.5  # the outer surface side, not the lumen
    keep &= np.abs(np.einsum("ij,ij->i", normals, tangent[nearest])) < 0.5  # not end rims
    keep &= rho <= design.ring_radius_max_mm + 0.05  # not the studs ...
    if len(design.stud_bases_lps_mm):  # ... nor the creases around them
        near, _ = cKDTree(design.stud_bases_lps_mm).query(verts)
        keep &= near > design.options.stud_diameter_mm + 0.5
    for stenosis in survey.stenoses:
        a = np.asarray(stenosis.start_lps_mm)
        b = np.asarray(stenosis.end_lps_mm)
        mid, half = 0.5 * (a + b), 0.5 * float(np.linalg.norm(b - a)) + 3.0
        keep &= np.linalg.norm(verts - mid, axis=1) > np.hypot(half, outer_r)
    if design.crotch is not None:
        # a Y's crotch rides on the carina: two oversized limbs meet below the lumen's
        # crotch by about oversize / sin(half their angle), by design
        floor, down, normal = design.crotch
        below = (verts - floor) @ down
        keep &= ~(
            (below > 0) & (below < 2 * outer_r) & (np.abs((verts - floor) @ normal) < 0.5 * outer_r)
        )
    if not keep.any():
        return design.check
    steps = np.arange(0.0, _FIT_REACH_MM, _FIT_STEP_MM)
    unit = -normals[keep]
    samples = verts[keep, None, :] + steps[None, :, None] * unit[:, None, :]
    ijk = ct.lps_to_index(samples.reshape(-1, 3))
    hu = ndi.map_coordinates(ct.array, ijk.T, order=1, mode="nearest", output=np.float32)
    in_lumen = (hu < edge_level_hu).reshape(samples.shape[:2])
    if lumen is not None:
        in_lumen &= _near_mask(lumen, samples.reshape(-1, 3), 3.0).reshape(samples.shape[:2])
    in_lumen[:, -1] = True  # no lumen within reach: count the reach
    first = in_lumen.argmax(axis=1)
    distance = steps[first]
    allowed = fraction / (1.0 + fraction) * rho[keep]
    return replace(
        design.check,
        max_outside_mm=float(distance.max()),
        max_excess_mm=float(np.max(distance - allowed)),
    )


def _grid_index(volume: Volume, axes: list[FloatArray]) -> npt.NDArray[np.float32]:
    """Fractional voxel indices (3, nx, ny, nz) of the LPS grid spanned by ``axes``."""
    inverse = np.linalg.inv(volume.affine)
    out = np.empty((3, *(len(a) for a in axes)), dtype=np.float32)
    for row in range(3):
        out[row] = (
            (inverse[row, 0] * axes[0])[:, None, None]
            + (inverse[row, 1] * axes[1])[None, :, None]
            + (inverse[row, 2] * axes[2])[None, None, :]
            + inverse[row, 3]
        )
    return out


def _near_mask_ijk(mask: Volume, ijk: npt.NDArray[Any], reach_mm: float) -> npt.NDArray[np.bool_]:
    """Whether voxel positions ``ijk`` (3, ...) lie within ``reach_mm`` of a bool mask."""
    spacing = np.asarray(mask.spacing_mm)
    flat = ijk.reshape(3, -1)
    top = np.asarray(mask.shape) - 1
    lo = np.clip(np.floor(flat.min(axis=1) - 2).astype(int), 0, top)
    hi = np.clip(np.ceil(flat.max(axis=1) + 2).astype(int), 0, top)
    box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
    distance = ndi.distance_transform_edt(
        ~np.asarray(mask.array[box], dtype=bool), sampling=spacing
    )
    shifted = ijk - lo.reshape((3,) + (1,) * (ijk.ndim - 1)).astype(np.float32)
    values = ndi.map_coordinates(distance, shifted, order=1, mode="nearest", output=np.float32)
    return np.asarray(values <= reach_mm)


def _near_mask(mask: Volume, points_lps_mm: FloatArray, reach_mm: float) -> npt.NDArray[np.bool_]:
    """Whether points lie within ``reach_mm`` of a bool mask (distance map on a crop)."""
    spacing = np.asarray(mask.spacing_mm)
    ijk = mask.lps_to_index(points_lps_mm)
    top = np.asarray(mask.shape) - 1
    lo = np.clip(np.floor(ijk.min(axis=0) - 2).astype(int), 0, top)
    hi = np.clip(np.ceil(ijk.max(axis=0) + 2).astype(int), 0, top)
    box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
    distance = ndi.distance_transform_edt(
        ~np.asarray(mask.array[box], dtype=bool), sampling=spacing
    )
    values = ndi.map_coordinates(distance, (ijk - lo).T, order=1, mode="nearest")
    return np.asarray(values <= reach_mm)
