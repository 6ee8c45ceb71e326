"""Great vessels: aorta, pulmonary artery and superior vena cava, with or without contrast.

Each vessel is found as a round tube at the place anatomy puts it, then followed in 3-D
(:mod:`.mediastinal_tubes`):

- **Aorta.** The descending aorta is the round tube of 7-19 mm radius beside the front of
  the vertebral bodies, left of the midline (12 mm right to 55 mm left of the canal, 45 mm in
  front of to 25 mm behind the vertebral body's front): circles are detected in every axial
  slice there and linked into one chain. From the top of the chain the tube is tracked up,
  over the arch and down the ascending aorta until its wall is lost in the heart (the aortic
  root). The blood's attenuation is measured inside the descending aorta: that tells a
  contrast CT (blood 150-500 HU) from an unenhanced one (blood 30-50 HU, like the wall and
  the heart muscle).
- **Pulmonary artery** and **superior vena cava**: found relative to the ascending aorta,
  see :mod:`.mediastinal_vessels`.

The masks follow TotalSegmentator's outlines on a contrast CT: the enhanced lumen out to its
partial-volume edge. On an unenhanced CT the lumen cannot be told from the wall, and the
mask is the whole vessel out to the surrounding fat (about 2 mm more in radius).

Frame and units follow ``docs/conventions.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.mediastinal_context import MediastinalContext
from seldinger.anatomy.mediastinal_tubes import (
    Circles,
    axial_circles,
    cross_section,
    follow_axial,
    link_circles,
    paint_tube,
    slice_windows,
    track_tube,
)
from seldinger.anatomy.morphology import BoolArray, bounding_slices, fill_holes_per_slice

__all__ = [
    "Aorta",
    "Blood",
    "Vessel",
    "measure_blood",
    "refine_chain",
    "segment_aorta",
    "vessel_mask",
    "wall_edge_hu",
]

F64 = npt.NDArray[np.float64]

# Search window of the descending aorta's centre relative to the spine, mm: left-right from
# the canal's centre (+ = left), front-back from the vertebral body's front (+ = posterior).
# On lidc-idri-0001 the descending aorta lies 11-17 mm left of the canal and 10-15 mm in front
# of the vertebral body at the hiatus, up to 30 mm left and level with the body's front below
# the arch; the inferior vena cava lies 20-30 mm right of the canal.
_DESC_LEFT_MM = (-12.0, 55.0)
_DESC_FRONT_MM = (-45.0, 25.0)
# Below the arch the descending aorta's centre moves less than 0.6 mm per mm along the body
# (lidc-idri-0001: 0.3-0.5); a looser chain wanders to neighbours at the hiatus.
_DESC_MOVE_MM_PER_MM = 0.6
# Radii tested: an abdominal aorta of 14 mm diameter to an ectatic thoracic one of 38 mm.
_DESC_RADII_MM = np.arange(7.0, 19.1, 1.5)
# A clean tube scores 2-3 (its 2-3 voxel wide edge, all round); one half surrounded by the
# crura or the oesophagus 1-1.5. A slice joins the chain with half a circle's outline (0.5);
# starting or ending the chain costs 3 (so a chain starts on a few strong slices).
_MIN_CIRCLE_SCORE = 0.5
_CHAIN_START_COST = 3.0
# The content of a tube is not fat: its centre reads at least this far above the fat-tissue
# edge.
_CONTENT_ABOVE_FAT_EDGE_HU = 20.0

# Below the chain the aorta is followed slice by slice (from the median Hough radius of its
# lowest _EXTEND_FROM_SLICES slices), with half a circle's outline and up to _EXTEND_MAX_MISSES
# slices in a row without one (7.5 mm on 2.5 mm slices: the crura).
_EXTEND_FROM_SLICES = 5
_EXTEND_MIN_SCORE = 0.5
_EXTEND_MAX_MISSES = 3
# A cross-section counts when this share of its rays found the wall; the extension stops
# where the wall is narrower than _MIN_RADIUS_SHARE of the chain's (the iliac arteries are
# about half the aorta's radius).
_MIN_WALL_SHARE = 0.4
_MIN_RADIUS_SHARE = 0.75
_NARROW_SLICES = 2
# The Hough radius is quantised and biased towards the inner side of the edge: about 0.75 of
# the wall's on lidc-idri-0001.
_HOUGH_TO_WALL = 1.3
# Contrast: blood more than this above the soft-tissue level (unenhanced blood 30-50 HU,
# muscle 40-60 HU; portal-venous aorta 150 HU and more, arterial 250-500 HU).
_CONTRAST_ABOVE_TISSUE_HU = 60.0
# TotalSegmentator outlines an enhanced lumen out to its partial-volume edge: on
# lidc-idri-0001 it includes voxels of 100-140 HU next to 390 HU blood and leaves the 40-50 HU
# wall out. The edge is this share of the way from soft tissue to blood.
_LUMEN_EDGE_SHARE = 0.2
# Tubes are painted this much wider than the fitted wall, then cut at the edge level. On a
# contrast CT the wall is found at the lumen's edge and the margin lets the mask follow an
# outline that is not quite round; unenhanced, the wall is found against the fat around and
# only partial volume is added (a wider margin takes in the oesophagus and the crura).
_PAINT_MARGIN_MM = {True: 2.0, False: 0.7}
# The arch rises up to 40 mm above the top of the descending chain; a CT that ends closer
# above it does not show the arch.
_ARCH_ROOM_MM = 40.0
# The tracking over the arch starts this far below the top of the axial chain (first try,
# then lower); it has found the ascending aorta when it comes down at least _ASCENDING_MIN_MM
# from its highest point.
_HANDOFF_MM = (15.0, 30.0, 45.0)
# Over the arch the track turns down; once it heads down (k component of its direction below
# -0.8, i.e. within 37° of straight down) it is in the ascending aorta, which runs along the
# slices and is followed slice by slice (circles there are round and whole).
_HEADING_DOWN = 0.8
_ASCENDING_MIN_SCORE = 0.6
# Followed down, the ascending aorta's centre moves left (towards the valve); one more than
# this right of the leftmost centre so far has left it.
_ASC_RIGHTWARD_MM = 4.0
# Below the arch the ascending aorta runs 5-7 cm to the aortic valve; a follow longer than
# this has left it (into the right atrium or the ventricle's outflow).
_ASCENDING_MAX_MM = 80.0
# Unless the track heads down, it must come down at least this far from the apex (it has then
# turned into the ascending aorta; a first follow slice may move up to a radius).
_PAST_APEX_MM = 5.0
# The ascending aorta is 5 cm long or more: a follow of fewer slices is not it.
_ASCENDING_MIN_SLICES = 4
# The tracked ascending aorta ends in the heart: a last cross-section this much wider than
# the ones before is the left ventricular outflow, not the aorta.
_ROOT_WIDENING = 1.25


@dataclass(frozen=True)
class Blood:
    """Blood attenuation measured in the descending aorta (HU) and what it implies."""

    blood_hu: float
    contrast: bool


@dataclass(frozen=True, eq=False)
class Vessel:
    """A segmented vessel.

    Attributes
    ----------
    mask : ndarray of bool
        On the CT's grid (all False when the vessel is not found).
    centreline_lps_mm : ndarray, shape (N, 3)
        Centreline points, LPS mm, in order along the vessel.
    radius_mm : ndarray, shape (N,)
        Radius of the fitted cross-section at each point, mm.
    notes : tuple of str
        What the user should know (not in view, parts not found).
    """

    mask: BoolArray
    centreline_lps_mm: F64
    radius_mm: F64
    notes: tuple[str, ...] = ()


def _window(
    context: MediastinalContext, left_mm: tuple[float, float], front_mm: tuple[float, float]
) -> BoolArray:
    """Centres allowed relative to the spine (per slice; nothing where no spine was found)."""
    sp = context.spacing_mm
    ni, nj, _ = context.hu.shape
    i_mm = np.arange(ni, dtype=np.float32)[:, None, None] * sp[0]
    j_mm = np.arange(nj, dtype=np.float32)[None, :, None] * sp[1]
    canal_i = context.spine.centre_i[None, None, :] * sp[0]
    front_j = context.spine.front_j[None, None, :] * sp[1]
    with np.errstate(invalid="ignore"):
        left = i_mm - canal_i
        back = j_mm - front_j
        out = (
            (left >= left_mm[0])
            & (left <= left_mm[1])
            & (back >= front_mm[0])
            & (back <= front_mm[1])
        )
    return np.asarray(out & context.body & ~context.bones & ~context.lungs)


def _descending_chain(context: MediastinalContext) -> tuple[F64, F64]:
    """Centres (work mm, NaN where none) and radii of the descending aorta per slice.

    The circles are looked for in a window that moves with the spine from slice to slice
    (:func:`~.mediastinal_tubes.slice_windows`), wide enough for the edges of the largest
    circle centred in it.
    """
    sp = context.spacing_mm
    nk = context.hu.shape[2]
    spine = context.spine
    none = (np.full((nk, 3), np.nan), np.full(nk, np.nan))
    found = np.isfinite(spine.centre_i) & np.isfinite(spine.front_j)
    if not found.any():
        return none
    reach_mm = float(_DESC_RADII_MM[-1]) + 3.0
    lo = np.column_stack(
        [
            np.where(found, spine.centre_i + (_DESC_LEFT_MM[0] - reach_mm) / sp[0], 0.0),
            np.where(found, spine.front_j + (_DESC_FRONT_MM[0] - reach_mm) / sp[1], 0.0),
        ]
    )
    origin = np.floor(lo).astype(np.intp)
    size = (
        int(np.ceil((_DESC_LEFT_MM[1] - _DESC_LEFT_MM[0] + 2 * reach_mm) / sp[0])) + 1,
        int(np.ceil((_DESC_FRONT_MM[1] - _DESC_FRONT_MM[0] + 2 * reach_mm) / sp[1])) + 1,
    )
    allowed = _window(context, _DESC_LEFT_MM, _DESC_FRONT_MM)
    levels = context.levels
    content = (context.hu > levels.fat_edge_hu + _CONTENT_ABOVE_FAT_EDGE_HU) & ~context.bones
    circles = axial_circles(
        slice_windows(context.hu, origin, size, levels.fat_hu),
        slice_windows(allowed, origin, size, False),
        sp,
        _DESC_RADII_MM,
        levels.tissue_hu - levels.fat_hu,
        slice_windows(content, origin, size, False),
    )
    # Back to the work grid's coordinates before linking (the windows move between slices).
    shift = origin[:, None, :] * np.asarray(sp[:2])
    circles = Circles(circles.centre_mm + shift, circles.radius_mm, circles.score)
    centre, radius = link_circles(
        circles, sp[2], _MIN_CIRCLE_SCORE, _CHAIN_START_COST, move_mm_per_mm=_DESC_MOVE_MM_PER_MM
    )
    out = np.column_stack([centre, np.arange(nk) * sp[2]])
    out[~np.isfinite(radius)] = np.nan
    return _extend_down(context, out, radius)


def _wall_fit(
    context: MediastinalContext, point: F64, radius_mm: float, wall_hu: float
) -> float | None:
    """Radius of the wall fitted in the axial plane at ``point``; None if not found."""
    fit = cross_section(
        context.hu, context.spacing_mm, point, np.array([0.0, 0.0, 1.0]), radius_mm, wall_hu
    )
    if fit is None or fit[2] < _MIN_WALL_SHARE:
        return None
    return fit[1]


def _extend_down(context: MediastinalContext, centres: F64, radii: F64) -> tuple[F64, F64]:
    """Trim the chain's lower end to the aorta's size and continue it through the hiatus.

    Where the aorta passes between the crura (and in the abdomen, among bowel and vessels)
    its circle is weaker and competitors are many; followed from the chain with a small
    search radius that widens over missed slices, it is kept. Below the bifurcation the
    chain or the follow would go on in an iliac artery or a neighbour: a slice whose wall,
    fitted axially, is narrower than :data:`_MIN_RADIUS_SHARE` of the chain's median ends
    the aorta.
    """
    rows = np.flatnonzero(np.isfinite(radii))
    if rows.size < _EXTEND_FROM_SLICES:
        return centres, radii
    sp = context.spacing_mm
    wall_hu = wall_edge_hu(context, measure_blood(context, centres, radii))
    fitted = [_wall_fit(context, centres[k], _HOUGH_TO_WALL * radii[k], wall_hu) for k in rows]
    known = np.array([f for f in fitted if f is not None])
    if known.size == 0:
        return centres, radii
    r_wall = float(np.median(known))
    # Walking down (and up) the chain from its middle, the aorta ends where its wall is
    # narrower than the aorta's in _NARROW_SLICES slices in a row: below, the iliac arteries
    # (a single narrow slice can be the oblique bifurcation); above, a branch of the arch
    # (the left subclavian artery continues straight up from it); the arch is tracked from
    # below that end.
    narrow = [f is not None and f < _MIN_RADIUS_SHARE * r_wall for f in fitted]
    n, top = 0, rows.size
    run = 0
    for index in range(rows.size // 2, -1, -1):
        run = run + 1 if narrow[index] else 0
        if run >= _NARROW_SLICES:
            n = index + run
            break
    run = 0
    for index in range(rows.size // 2, rows.size):
        # Above, a lost wall ends it too: the arch, cut lengthwise, or a branch.
        run = run + 1 if narrow[index] or fitted[index] is None else 0
        if run >= _NARROW_SLICES:
            top = index - run + 1
            break
    n = min(n, rows.size - 1)
    centres[rows[:n]], radii[rows[:n]] = np.nan, np.nan
    centres[rows[top:]], radii[rows[top:]] = np.nan, np.nan
    low = int(rows[n])
    if low == 0:
        return centres, radii
    levels = context.levels
    content = (context.hu > levels.fat_edge_hu + _CONTENT_ABOVE_FAT_EDGE_HU) & ~context.bones
    down = follow_axial(
        context.hu,
        sp,
        centres[low],
        float(np.median(radii[rows[n : n + _EXTEND_FROM_SLICES]])),
        levels.tissue_hu - levels.fat_hu,
        content & ~context.lungs,
        min_score=_EXTEND_MIN_SCORE,
        max_misses=_EXTEND_MAX_MISSES,
        max_length_mm=float(low * sp[2]),
    )
    accepted: list[tuple[F64, float]] = []
    lost, run = 0, 0
    for point, r in zip(down.points_mm, down.radius_mm, strict=True):
        wall = _wall_fit(context, point, r_wall, wall_hu)
        run = run + 1 if wall is not None and wall < _MIN_RADIUS_SHARE * r_wall else 0
        if run >= _NARROW_SLICES:
            accepted = accepted[: len(accepted) - run + 1]
            break  # narrower: past the bifurcation
        lost = lost + 1 if wall is None else 0
        if lost > _EXTEND_MAX_MISSES:
            break
        if wall is not None:
            accepted.append((point, r))
    for point, r in accepted:
        k = round(float(point[2]) / sp[2])
        centres[k], radii[k] = point, r
    # Slices skipped by the follow: interpolated.
    rows = np.flatnonzero(np.isfinite(radii))
    span = np.arange(rows[0], rows[-1] + 1)
    for axis in range(2):
        centres[span, axis] = np.interp(span, rows, centres[rows, axis])
    centres[span, 2] = span * sp[2]
    radii[span] = np.interp(span, rows, radii[rows])
    return centres, radii


def measure_blood(context: MediastinalContext, centres_mm: F64, radii_mm: F64) -> Blood:
    """Median HU of the inner half (by radius) of the given circles."""
    sp = np.asarray(context.spacing_mm)
    values = []
    for c, r in zip(centres_mm, radii_mm, strict=True):
        if not np.isfinite(r):
            continue
        idx = np.rint(c / sp).astype(int)
        h = max(1, int(0.5 * r / sp[0]))
        patch = context.hu[
            max(idx[0] - h, 0) : idx[0] + h + 1, max(idx[1] - h, 0) : idx[1] + h + 1, idx[2]
        ]
        values.append(patch.ravel())
    if not values:
        return Blood(context.levels.tissue_hu, False)
    blood_hu = float(np.median(np.concatenate(values)))
    return Blood(blood_hu, blood_hu > context.levels.tissue_hu + _CONTRAST_ABOVE_TISSUE_HU)


def wall_edge_hu(context: MediastinalContext, blood: Blood) -> float:
    """Level at which the tracker finds a vessel's wall: half-way from blood to fat."""
    return 0.5 * (blood.blood_hu + context.levels.fat_hu)


def lumen_edge_hu(context: MediastinalContext, blood: Blood) -> float:
    """Level at which the mask is cut: the enhanced lumen's edge, or the vessel's against fat."""
    if blood.contrast:
        tissue = context.levels.tissue_hu
        return tissue + _LUMEN_EDGE_SHARE * (blood.blood_hu - tissue)
    return context.levels.fat_edge_hu


def refine_chain(
    context: MediastinalContext,
    centres: F64,
    radii: F64,
    edge_hu: float,
    scale: float = _HOUGH_TO_WALL,
) -> tuple[F64, F64]:
    """Re-fit each slice's circle to the wall, starting from ``scale`` × the radius given."""
    rows = np.flatnonzero(np.isfinite(radii))
    pts, rad = [], []
    for n, k in enumerate(rows):
        lo, hi = rows[max(n - 2, 0)], rows[min(n + 2, len(rows) - 1)]
        tangent = centres[hi] - centres[lo] if hi != lo else np.array([0.0, 0.0, 1.0])
        tangent = tangent / np.linalg.norm(tangent)
        fit = cross_section(
            context.hu, context.spacing_mm, centres[k], tangent, scale * radii[k], edge_hu
        )
        if fit is not None and fit[2] >= _MIN_WALL_SHARE:
            pts.append(fit[0])
            rad.append(fit[1])
        else:
            pts.append(centres[k])
            rad.append(scale * radii[k])
    return np.asarray(pts).reshape(-1, 3), np.asarray(rad)


def _trim_root(points: F64, radii: F64) -> tuple[F64, F64]:
    """Drop the last cross-sections where the tube widens into the heart."""
    n = len(radii)
    while n > 6 and radii[n - 1] > _ROOT_WIDENING * float(np.median(radii[n - 7 : n - 1])):
        n -= 1
    return points[:n], radii[:n]


def _over_the_arch(
    context: MediastinalContext, points: F64, radii: F64, edge_hu: float
) -> tuple[F64, F64, int]:
    """Track from the descending chain over the arch and down the ascending aorta.

    The top of the axial chain may already be the arch (cut lengthwise) or a branch, so the
    tracking starts :data:`_HANDOFF_MM` below it, and lower again if it fails at once.
    Returns the centreline (chain below the start + track + ascending aorta), the radii, and
    the number of ascending aorta points at its end (-1 when the track did not turn down).
    """
    z = points[:, 2]
    for back_mm in _HANDOFF_MM:
        below = np.flatnonzero(z <= z[-1] - back_mm)
        if below.size < 3:
            break
        n = int(below[-1])
        tangent = points[n] - points[max(n - 5, 0)]
        tangent /= np.linalg.norm(tangent)
        track = track_tube(
            context.hu,
            context.spacing_mm,
            points[n],
            tangent,
            float(radii[n]),
            edge_hu,
            stop_heading_down=_HEADING_DOWN,
        )
        arch, arch_r = _past_the_apex(track.points_mm[1:], track.radius_mm[1:])
        if len(arch) == 0:
            continue
        levels = context.levels
        content = context.hu > levels.fat_edge_hu + _CONTENT_ABOVE_FAT_EDGE_HU
        down = follow_axial(
            context.hu,
            context.spacing_mm,
            arch[-1],
            float(np.median(arch_r)),
            levels.tissue_hu - levels.fat_hu,
            content & ~context.bones & ~context.lungs,
            min_score=_ASCENDING_MIN_SCORE,
            max_length_mm=_ASCENDING_MAX_MM,
            first_move_mm=float(np.median(arch_r)),
        )
        if len(down.points_mm) < _ASCENDING_MIN_SLICES:
            continue
        asc, asc_r = refine_chain(context, down.points_mm, down.radius_mm, edge_hu, scale=1.0)
        asc, asc_r = _trim_root(asc, asc_r)
        # From the valve the ascending aorta runs up and to the right (its upper part may
        # bulge further right): followed down, a centre in its lower half that moves right
        # has left it (for the right atrium or the vena cava).
        half = len(asc) // 2
        leftmost = np.maximum.accumulate(asc[half:, 0])
        rightward = np.flatnonzero(asc[half:, 0] < leftmost - _ASC_RIGHTWARD_MM)
        if rightward.size:
            asc, asc_r = asc[: half + rightward[0]], asc_r[: half + rightward[0]]
        return (
            np.concatenate([points[: n + 1], arch, asc]),
            np.concatenate([radii[: n + 1], arch_r, asc_r]),
            len(asc),
        )
    return points, radii, -1


def _past_the_apex(points: F64, radii: F64) -> tuple[F64, F64]:
    """The track up to its last good point beyond the arch's apex (empty if it never got
    there): the track must have come down :data:`_PAST_APEX_MM` from its highest point, and
    cross-sections that widened into a neighbour (more than :data:`_ROOT_WIDENING` × the
    median radius) at its end are dropped."""
    if len(points) < 3:
        return points[:0], radii[:0]
    apex = int(np.argmax(points[:, 2]))
    n = len(points)
    median = float(np.median(radii))
    while n > apex + 1 and radii[n - 1] > _ROOT_WIDENING * median:
        n -= 1
    if points[apex, 2] - points[n - 1, 2] < _PAST_APEX_MM:
        return points[:0], radii[:0]
    return points[:n], radii[:n]


@dataclass(frozen=True, eq=False)
class Aorta:
    """The aorta with what the other mediastinal steps take from it.

    Attributes
    ----------
    vessel : Vessel
    blood : Blood
        The blood's attenuation, measured in the descending aorta.
    descending_mm, ascending_mm : ndarray, shape (K, 3)
        Centre of the descending and the ascending aorta in each work-grid slice (work mm;
        NaN where none).
    """

    vessel: Vessel
    blood: Blood
    descending_mm: F64
    ascending_mm: F64


def segment_aorta(context: MediastinalContext) -> Aorta:
    """Segment the aorta (see the module docstring) and measure the blood's attenuation."""
    notes: list[str] = []
    centres, radii = _descending_chain(context)
    if not np.isfinite(radii).any():
        empty = np.zeros(context.ct.shape, dtype=bool)
        notes.append("aorta: no descending aorta found beside the spine")
        vessel = Vessel(empty, np.zeros((0, 3)), np.zeros(0), tuple(notes))
        return Aorta(vessel, Blood(context.levels.tissue_hu, False), centres, centres.copy())
    blood = measure_blood(context, centres, radii)
    edge = wall_edge_hu(context, blood)
    points, rad = refine_chain(context, centres, radii, edge)
    descending = centres.copy()
    rows = np.flatnonzero(np.isfinite(radii))
    descending[rows] = points[: rows.size]
    nk = context.hu.shape[2]
    ascending = np.full((nk, 3), np.nan)
    room_mm = (nk - 1 - rows[-1]) * context.spacing_mm[2]
    if room_mm >= _ARCH_ROOM_MM:
        points, rad, n_asc = _over_the_arch(context, points, rad, edge)
        if n_asc < 0:
            notes.append("aorta: the arch and ascending aorta could not be followed")
        for point in points[len(points) - max(n_asc, 0) :]:
            ascending[round(float(point[2]) / context.spacing_mm[2])] = point
    else:
        notes.append("aorta: the CT ends before the aortic arch (only the descending aorta)")
    mask = vessel_mask(context, points, rad, blood)
    vessel = Vessel(mask, context.to_lps(points), rad, tuple(notes))
    return Aorta(vessel, blood, descending, ascending)


def vessel_mask(context: MediastinalContext, points: F64, radii: F64, blood: Blood) -> BoolArray:
    """The tube painted along ``points`` on the CT's grid, cut at the lumen's edge level."""
    grid = context.grid
    edge_hu = lumen_edge_hu(context, blood)
    tube_w = paint_tube(
        context.hu.shape, context.spacing_mm, points, radii, _PAINT_MARGIN_MM[blood.contrast]
    )
    out = np.zeros(context.ct.shape, dtype=bool)
    if not tube_w.any():
        return out
    box_w = bounding_slices(tube_w)
    box = tuple(
        slice(s.start * f, min(s.stop * f, n))
        for s, f, n in zip(box_w, grid.factors, context.ct.shape, strict=True)
    )
    tube = np.repeat(
        np.repeat(np.repeat(tube_w[box_w], grid.factors[0], 0), grid.factors[1], 1),
        grid.factors[2],
        2,
    )
    tube = tube[
        : box[0].stop - box[0].start, : box[1].stop - box[1].start, : box[2].stop - box[2].start
    ]
    inside = tube & (np.asarray(context.ct.array[box]) > edge_hu)
    inside = fill_holes_per_slice(inside)
    # Specks of noise above the edge in the painted margin.
    inside = ndi.binary_opening(inside, np.ones((3, 3, 1), dtype=bool))
    out[box] = inside
    return out
