"""Round tubes in CT: circle detection per axial slice, linking across slices, 3-D tracking.

The great vessels are tubes of 15-40 mm diameter whose content (blood) is brighter than what
surrounds most of their circumference: fat (-100 HU) and lung on any CT, and, after contrast,
the vessel wall and every unenhanced neighbour. Three tools build on that:

- :func:`axial_circles`: a gradient-directed Hough transform [1]_ per axial slice. Each edge
  voxel votes for the centre one radius away on its bright side; the votes of a radius are
  divided by the circumference, so a score is the share of a circle's outline that is seen
  as an edge with the inside brighter. Edges count with a weight that saturates at the
  fat-to-tissue step, so a contrast-filled lumen does not outvote an unenhanced one.
- :func:`link_circles`: the best chain of detections through the slices (Viterbi), with a
  penalty for moving in-plane and for changing radius, and the option of "no tube here".
- :func:`track_tube`: follows a tube in 3-D from a known cross-section: it samples the plane
  normal to the current direction, finds the wall along 32 rays (the first fall below the
  half-way level between the content and fat), fits a circle to the consistent wall points
  and steps on [2]_. It goes round the aortic arch, where axial slices cut the tube
  lengthwise.

All positions are work-grid index coordinates scaled to millimetres (``index * spacing``),
in LPS order; ``docs/conventions.md`` has the frame.

References
----------
.. [1] Kimme C, Ballard D, Sklansky J. Finding circles by an array of accumulators.
   Communications of the ACM 18(2):120-122, 1975 (edge direction restricts the votes).
.. [2] Wink O, Niessen WJ, Viergever MA. Fast delineation and visualization of vessels in
   3-D angiographic images. IEEE TMI 19(4):337-346, 2000 (centreline tracking by
   cross-sections and ray casting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.mediastinal_grid import FloatArray
from seldinger.anatomy.morphology import BoolArray

__all__ = [
    "Circles",
    "TubeTrack",
    "axial_circles",
    "follow_axial",
    "link_circles",
    "paint_tube",
    "slice_windows",
    "track_tube",
]

F64 = npt.NDArray[np.float64]
_T = TypeVar("_T", bound=np.generic)

# Edges weaker than this share of the fat-to-tissue step per _EDGE_WIDTH_MM do not vote.
_EDGE_WIDTH_MM = 4.0
_MIN_EDGE_SHARE = 0.3
# Candidate centres: local maxima of the score within this distance in-plane (less than a
# radius: the aorta beside the crus or the oesophagus must keep its own peak).
_PEAK_MM = 4.0
# Each slice keeps at most this many candidates, each with at least this score (a fifth of
# a circle's outline).
_MAX_CANDIDATES = 6
_MIN_PEAK = 0.2

# Detected centres and radii are quantised to the work grid (1.4 mm: two neighbouring
# slices' centres differ by up to 2 mm with no motion) and to the radii tested.
_JITTER_MM = 2.5
# Following a tube slice by slice: its centre moves less than _FOLLOW_MOVE_MM between
# slices and its radius changes by less than _FOLLOW_RADIUS_CHANGE; circles are looked for
# within the radius + _FOLLOW_REACH_MM of the start.
_FOLLOW_MOVE_MM = 5.0
_FOLLOW_RADIUS_CHANGE = 0.3
_FOLLOW_REACH_MM = 25.0
# Tracking: rays per cross-section and radial sampling (mm).
_RAYS = 32
_RAY_STEP_MM = 0.7
# A wall point is kept if its distance from the centre is within this factor range of the
# tube's current radius (a neighbour of the same density leaves no wall on its side).
_WALL_RANGE = (0.55, 1.5)
# After the first fit, wall points further than this from the circle are dropped.
_FIT_RESIDUAL_MM = 2.5


@dataclass(frozen=True)
class Circles:
    """Circle candidates per axial slice (work-grid mm coordinates).

    Attributes
    ----------
    centre_mm : ndarray, shape (K, N, 2)
        In-plane centre (i, j) × spacing of the N best candidates of each slice; NaN pads.
    radius_mm : ndarray, shape (K, N)
    score : ndarray, shape (K, N)
        Share of the outline seen as an edge (0 to 1, about); -inf pads.
    """

    centre_mm: F64
    radius_mm: F64
    score: F64


def _edge_field(
    hu: FloatArray, spacing_mm: tuple[float, float, float], step_hu: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """In-plane unit gradient (towards brighter) and vote weight per voxel."""
    gi = ndi.sobel(hu, axis=0) / np.float32(8.0 * spacing_mm[0])
    gj = ndi.sobel(hu, axis=1) / np.float32(8.0 * spacing_mm[1])
    mag = np.hypot(gi, gj)
    ref = np.float32(step_hu / _EDGE_WIDTH_MM)
    weight = np.minimum(mag / ref, np.float32(1.0))
    weight[weight < _MIN_EDGE_SHARE] = 0.0
    safe = np.maximum(mag, np.float32(1e-6))
    return gi / safe, gj / safe, weight.astype(np.float32)


def axial_circles(
    hu: FloatArray,
    allowed: BoolArray,
    spacing_mm: tuple[float, float, float],
    radii_mm: F64,
    step_hu: float,
    interior_ok: BoolArray | None = None,
) -> Circles:
    """Bright circles in each axial slice, centred where ``allowed`` (Hough; see module).

    Parameters
    ----------
    hu : ndarray, shape (I, J, K)
        Smoothed CT (HU) on the work grid, usually cropped to a search box.
    allowed : ndarray of bool, shape (I, J, K)
        Where a centre may lie.
    spacing_mm : (float, float, float)
        Work-grid spacing.
    radii_mm : ndarray
        Radii to test.
    step_hu : float
        The fat-to-tissue step (HU): an edge of this step over 4 mm votes with full weight.
    interior_ok : ndarray of bool, optional
        Where a centre's neighbourhood has a tube's content (homogeneous, not fat or bone).
    """
    ni, nj, nk = hu.shape
    ui, uj, weight = _edge_field(hu, spacing_mm, step_hu)
    vi, vj, vk = np.nonzero(weight)
    w = weight[vi, vj, vk]
    dui, duj = ui[vi, vj, vk], uj[vi, vj, vk]
    radii = np.asarray(radii_mm, dtype=np.float64)
    ok = allowed if interior_ok is None else allowed & interior_ok
    best = np.zeros((ni, nj, nk), dtype=np.float32)
    best_r = np.zeros((ni, nj, nk), dtype=np.intp)
    for n, r in enumerate(radii):
        ci = np.rint(vi + r * dui / spacing_mm[0]).astype(np.intp)
        cj = np.rint(vj + r * duj / spacing_mm[1]).astype(np.intp)
        inside = (ci >= 0) & (ci < ni) & (cj >= 0) & (cj < nj)
        flat = np.ravel_multi_index((ci[inside], cj[inside], vk[inside]), (ni, nj, nk))
        votes = np.bincount(flat, w[inside], minlength=ni * nj * nk).astype(np.float32)
        # Votes within one voxel of a centre count for it (a real outline is not a perfect
        # circle); divided by the circumference in voxels.
        perimeter = 2.0 * np.pi * r / float(np.sqrt(spacing_mm[0] * spacing_mm[1]))
        acc = ndi.uniform_filter(votes.reshape(ni, nj, nk), size=(3, 3, 1))
        acc *= np.float32(9.0 / perimeter)
        better = acc > best
        best[better] = acc[better]
        best_r[better] = n
    best[~ok] = 0.0
    size = [max(3, 2 * round(_PEAK_MM / s) + 1) for s in spacing_mm[:2]]
    peaks = (best == ndi.maximum_filter(best, size=(*size, 1))) & (best > 0)
    centre = np.full((nk, _MAX_CANDIDATES, 2), np.nan)
    radius = np.full((nk, _MAX_CANDIDATES), np.nan)
    score = np.full((nk, _MAX_CANDIDATES), -np.inf)
    pi, pj, pk = np.nonzero(peaks & (best >= _MIN_PEAK))
    values = best[pi, pj, pk]
    order = np.lexsort((-values, pk))
    pi, pj, pk, values = pi[order], pj[order], pk[order], values[order]
    first = np.searchsorted(pk, pk, side="left")
    rank = np.arange(pk.size) - first
    top = rank < _MAX_CANDIDATES
    pi, pj, pk, values, rank = pi[top], pj[top], pk[top], values[top], rank[top]
    centre[pk, rank, 0] = pi * spacing_mm[0]
    centre[pk, rank, 1] = pj * spacing_mm[1]
    radius[pk, rank] = radii[best_r[pi, pj, pk]]
    score[pk, rank] = values
    return Circles(centre, radius, score)


def slice_windows(
    array: npt.NDArray[_T], origin: npt.NDArray[np.intp], size: tuple[int, int], fill: float
) -> npt.NDArray[_T]:
    """Stack of per-slice windows: ``out[:, :, k] = array[oi:oi + W, oj:oj + H, k]``.

    ``origin`` has shape (K, 2); parts of a window outside the array read ``fill``. Per-slice
    (axial) operations on the stack equal those on the array, on far fewer voxels when the
    structure looked for moves with a landmark (the spine) from slice to slice.
    """
    ni, nj, nk = array.shape
    out = np.full((size[0], size[1], nk), fill, dtype=array.dtype)
    for k in range(nk):
        oi, oj = int(origin[k, 0]), int(origin[k, 1])
        si = slice(max(oi, 0), min(oi + size[0], ni))
        sj = slice(max(oj, 0), min(oj + size[1], nj))
        if si.stop <= si.start or sj.stop <= sj.start:
            continue
        out[si.start - oi : si.stop - oi, sj.start - oj : sj.stop - oj, k] = array[si, sj, k]
    return out


def link_circles(
    circles: Circles,
    slice_mm: float,
    min_score: float,
    start_cost: float | None = None,
    move_mm_per_mm: float = 1.0,
    radius_change: float = 0.3,
    max_gap_slices: int = 6,
) -> tuple[F64, F64]:
    """The best chain of candidates through the slices (Viterbi), or NaN where none.

    A candidate earns ``score - min_score``; "no tube" earns 0. Starting or ending the chain
    costs ``start_cost`` (default ``3 * min_score``): one chain is wanted, not fragments, and
    a weak slice inside a strong chain is kept. Moving more than
    ``move_mm_per_mm`` × slice distance + :data:`_JITTER_MM` in-plane between neighbouring
    slices, or changing the radius by more than ``radius_change`` of it + :data:`_JITTER_MM`,
    is forbidden. Runs of the chain separated by up to ``max_gap_slices`` slices are joined
    (the gap interpolated) when the tube could have moved between them.

    Returns
    -------
    centre_mm : ndarray, shape (K, 2)
    radius_mm : ndarray, shape (K,)
        NaN in slices outside the chain.
    """
    nk, nc = circles.score.shape
    cost = 3.0 * min_score if start_cost is None else start_cost
    gain = np.where(np.isfinite(circles.score), circles.score - min_score, -np.inf)
    # State 0 is "no tube"; states 1..nc the candidates.
    total = np.full((nk, nc + 1), -np.inf)
    back = np.zeros((nk, nc + 1), dtype=np.intp)
    total[0, 0] = 0.0
    total[0, 1:] = gain[0] - cost
    max_move = move_mm_per_mm * slice_mm + _JITTER_MM
    for k in range(1, nk):
        prev = total[k - 1]
        # to "no tube": from no tube (free) or from a candidate (ending costs)
        from_tube = prev[1:] - cost
        best_end = int(np.argmax(from_tube)) if nc else 0
        if nc and from_tube[best_end] > prev[0]:
            total[k, 0], back[k, 0] = from_tube[best_end], best_end + 1
        else:
            total[k, 0], back[k, 0] = prev[0], 0
        for c in range(nc):
            if not np.isfinite(gain[k, c]):
                continue
            options = np.full(nc + 1, -np.inf)
            options[0] = prev[0] - cost  # starting
            d = np.hypot(*(circles.centre_mm[k - 1] - circles.centre_mm[k, c]).T)
            dr = np.abs(circles.radius_mm[k - 1] - circles.radius_mm[k, c])
            fine = (d <= max_move) & (dr <= radius_change * circles.radius_mm[k, c] + _JITTER_MM)
            options[1:] = np.where(fine, prev[1:], -np.inf)
            best = int(np.argmax(options))
            total[k, c + 1], back[k, c + 1] = options[best] + gain[k, c], best
    centre = np.full((nk, 2), np.nan)
    radius = np.full(nk, np.nan)
    state = int(np.argmax(total[-1]))
    for k in range(nk - 1, -1, -1):
        if state > 0:
            centre[k] = circles.centre_mm[k, state - 1]
            radius[k] = circles.radius_mm[k, state - 1]
        state = int(back[k, state])
    return _best_run(centre, radius, circles, max_move, max_gap_slices)


def _best_run(
    centre: F64, radius: F64, circles: Circles, max_move_mm: float, max_gap_slices: int
) -> tuple[F64, F64]:
    """Keep the run of slices with the largest summed score (one tube).

    Runs separated by at most ``max_gap_slices`` slices join when the tube could have
    moved between them (``max_move_mm`` per slice: a hiatus, a slice of streaks); the gap is
    filled by interpolation.
    """
    found = np.isfinite(radius)
    if not found.any():
        return centre, radius
    best_score = np.where(np.isfinite(circles.score), circles.score, 0.0).max(axis=1)
    labels, n = ndi.label(found)
    starts = [int(np.flatnonzero(labels == r)[0]) for r in range(1, n + 1)]
    ends = [int(np.flatnonzero(labels == r)[-1]) for r in range(1, n + 1)]
    group = list(range(n))
    for r in range(1, n):
        gap = starts[r] - ends[r - 1] - 1
        step = np.hypot(*(centre[starts[r]] - centre[ends[r - 1]]))
        if gap <= max_gap_slices and step <= max_move_mm * (gap + 1):
            group[r] = group[r - 1]
    totals = np.zeros(n)
    for r in range(n):
        totals[group[r]] += best_score[labels == r + 1].sum()
    chosen = int(np.argmax(totals))
    members = [r for r in range(n) if group[r] == chosen]
    lo, hi = starts[members[0]], ends[members[-1]]
    keep = np.zeros(len(radius), dtype=bool)
    keep[lo : hi + 1] = True
    k_known = np.flatnonzero(found & keep)
    span = np.arange(lo, hi + 1)
    for axis in range(2):
        centre[span, axis] = np.interp(span, k_known, centre[k_known, axis])
    radius[span] = np.interp(span, k_known, radius[k_known])
    centre[~keep] = np.nan
    radius[~keep] = np.nan
    return centre, radius


@dataclass(frozen=True)
class TubeTrack:
    """Centreline of a tracked tube (work-grid mm coordinates) with its radius.

    Attributes
    ----------
    points_mm : ndarray, shape (N, 3)
    radius_mm : ndarray, shape (N,)
    stop : str
        Why the tracking stopped.
    """

    points_mm: F64
    radius_mm: F64
    stop: str


def _basis(direction: F64) -> tuple[F64, F64]:
    """Two unit vectors orthogonal to ``direction`` and to each other."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(direction, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(direction, e1)
    return e1, e2


def _fit_circle(u: F64, v: F64) -> tuple[float, float, float]:
    """Least-squares circle through points (Kåsa): centre (u, v) and radius."""
    a = np.column_stack([u, v, np.ones_like(u)])
    b = u * u + v * v
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cu, cv = sol[0] / 2.0, sol[1] / 2.0
    return float(cu), float(cv), float(np.sqrt(max(sol[2] + cu * cu + cv * cv, 0.0)))


def cross_section(
    hu: FloatArray,
    spacing_mm: tuple[float, float, float],
    centre_mm: F64,
    direction: F64,
    radius_mm: float,
    edge_hu: float,
) -> tuple[F64, float, float] | None:
    """Circle fit of the wall in the plane through ``centre_mm`` normal to ``direction``.

    Returns the fitted centre (mm), radius (mm) and the share of rays that found a
    consistent wall; None when fewer than three wall points remain.
    """
    e1, e2 = _basis(direction)
    angles = np.linspace(0.0, 2.0 * np.pi, _RAYS, endpoint=False)
    rho = np.arange(_RAY_STEP_MM, _WALL_RANGE[1] * radius_mm + 3.0, _RAY_STEP_MM)
    dirs = np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2  # (rays, 3)
    pts = centre_mm + rho[None, :, None] * dirs[:, None, :]  # (rays, samples, 3)
    idx = pts / np.asarray(spacing_mm)
    values = ndi.map_coordinates(hu, idx.reshape(-1, 3).T, order=1, mode="nearest")
    values = values.reshape(_RAYS, rho.size)
    below = values < edge_hu
    below[:, rho < _WALL_RANGE[0] * radius_mm * 0.5] = False
    has = below.any(axis=1)
    first = np.argmax(below, axis=1)
    # Interpolate the crossing between the sample before and the first below.
    prev_i = np.maximum(first - 1, 0)
    v0 = values[np.arange(_RAYS), prev_i]
    v1 = values[np.arange(_RAYS), first]
    frac = np.clip((v0 - edge_hu) / np.maximum(v0 - v1, 1e-6), 0.0, 1.0)
    wall = rho[prev_i] + frac * (rho[first] - rho[prev_i])
    keep = has & (wall >= _WALL_RANGE[0] * radius_mm) & (wall <= _WALL_RANGE[1] * radius_mm)
    if keep.sum() < 3:
        return None
    u, v = wall[keep] * np.cos(angles[keep]), wall[keep] * np.sin(angles[keep])
    cu, cv, r = _fit_circle(u, v)
    residual = np.abs(np.hypot(u - cu, v - cv) - r)
    inlier = residual <= _FIT_RESIDUAL_MM
    if inlier.sum() >= 3:
        cu, cv, r = _fit_circle(u[inlier], v[inlier])
    share = float(inlier.sum()) / _RAYS
    return centre_mm + cu * e1 + cv * e2, r, share


def track_tube(
    hu: FloatArray,
    spacing_mm: tuple[float, float, float],
    start_mm: F64,
    direction: F64,
    radius_mm: float,
    edge_hu: float,
    *,
    step_mm: float = 2.5,
    max_length_mm: float = 400.0,
    min_share: float = 0.4,
    inside: tuple[float, float] | None = None,
    stop_heading_down: float | None = None,
    stop_mask: BoolArray | None = None,
) -> TubeTrack:
    """Follow a tube from ``start_mm`` along ``direction`` (see the module docstring).

    Parameters
    ----------
    hu : ndarray
        Smoothed CT on the work grid (HU).
    spacing_mm : (float, float, float)
        Work-grid spacing.
    start_mm, direction : ndarray, shape (3,)
        A point on the centreline (work-grid mm) and the way to go.
    radius_mm : float
        The tube's radius at the start.
    edge_hu : float
        The wall is where the content falls below this level.
    step_mm : float
        Distance between cross-sections.
    max_length_mm : float
        Longest track.
    min_share : float
        Stop when fewer rays than this share see a consistent wall (twice in a row).
    inside : (float, float), optional
        Range of the content's HU: stop when the centre leaves it.
    stop_heading_down : float, optional
        Stop once the direction's k component falls below ``-stop_heading_down`` (the
        track has turned into a tube that runs down, followed better slice by slice).
    stop_mask : ndarray of bool, optional
        Stop when the centre enters it (a pulmonary artery entering the lung).
    """
    direction = np.asarray(direction, dtype=np.float64)
    direction /= np.linalg.norm(direction)
    centre = np.asarray(start_mm, dtype=np.float64)
    radii = [radius_mm]
    points = [centre.copy()]
    upper = (np.asarray(hu.shape) - 1) * np.asarray(spacing_mm)
    misses, stop = 0, "length"
    for _ in range(int(max_length_mm / step_mm)):
        r_ref = float(np.median(radii[-5:]))
        guess = centre + step_mm * direction
        if np.any(guess < 0) or np.any(guess > upper):
            stop = "edge of the image"
            break
        fit = cross_section(hu, spacing_mm, guess, direction, r_ref, edge_hu)
        ok = fit is not None and fit[2] >= min_share and 0.6 * r_ref <= fit[1] <= 1.5 * r_ref
        if ok and inside is not None and fit is not None:
            value = float(
                ndi.map_coordinates(
                    hu, (fit[0] / np.asarray(spacing_mm))[:, None], order=1, mode="nearest"
                )[0]
            )
            ok = inside[0] <= value <= inside[1]
        if not ok or fit is None:
            misses += 1
            if misses >= 2:
                stop = "wall lost"
                break
            centre = guess
            continue
        misses = 0
        new_centre = fit[0]
        if stop_mask is not None:
            index = np.clip(
                np.rint(new_centre / np.asarray(spacing_mm)).astype(int),
                0,
                np.asarray(hu.shape) - 1,
            )
            if stop_mask[tuple(index)]:
                stop = "entered the stop mask"
                break
        moved = new_centre - points[-1]
        if np.linalg.norm(moved) > 1e-6:
            direction = 0.5 * direction + 0.5 * moved / np.linalg.norm(moved)
            direction /= np.linalg.norm(direction)
        centre = new_centre
        points.append(centre.copy())
        radii.append(fit[1])
        if stop_heading_down is not None and direction[2] < -stop_heading_down:
            stop = "heading down"
            break
    return TubeTrack(np.asarray(points), np.asarray(radii), stop)


def follow_axial(
    hu: FloatArray,
    spacing_mm: tuple[float, float, float],
    start_mm: F64,
    radius_mm: float,
    step_hu: float,
    content: BoolArray,
    *,
    direction: int = -1,
    max_length_mm: float = 120.0,
    min_score: float = 1.0,
    first_move_mm: float = 0.0,
    max_misses: int = 1,
) -> TubeTrack:
    """Follow a tube that runs along k slice by slice with the axial Hough transform.

    From the circle at ``start_mm`` (work mm) go ``direction`` (-1: down) through the slices;
    in each, take the best circle within :data:`_FOLLOW_MOVE_MM` of the last centre and within
    :data:`_FOLLOW_RADIUS_CHANGE` of the start's radius, with at least ``min_score``; stop
    after more than ``max_misses`` slices in a row without one (the search widens by
    :data:`_FOLLOW_MOVE_MM` per missed slice). The first circle may lie ``first_move_mm`` further from
    the start (a start on a bend of the tube). The radii returned are the start's (re-fit the walls with
    :func:`cross_section`).
    """
    nk = hu.shape[2]
    k0 = round(float(start_mm[2]) / spacing_mm[2])
    n_slices = round(max_length_mm / spacing_mm[2])
    k_lo, k_hi = (
        (max(k0 - n_slices, 0), k0 + 1) if direction < 0 else (k0, min(k0 + n_slices + 1, nk))
    )
    reach = radius_mm * (1.0 + _FOLLOW_RADIUS_CHANGE) + _FOLLOW_REACH_MM
    lo = [max(int((start_mm[a] - 2 * reach) / spacing_mm[a]), 0) for a in range(2)]
    hi = [min(int((start_mm[a] + 2 * reach) / spacing_mm[a]) + 1, hu.shape[a]) for a in range(2)]
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(k_lo, k_hi))
    radii = radius_mm * np.linspace(1.0 - _FOLLOW_RADIUS_CHANGE, 1.0 + _FOLLOW_RADIUS_CHANGE, 7)
    gi = np.arange(hi[0] - lo[0])[:, None, None] * spacing_mm[0] + lo[0] * spacing_mm[0]
    gj = np.arange(hi[1] - lo[1])[None, :, None] * spacing_mm[1] + lo[1] * spacing_mm[1]
    allowed = np.hypot(gi - start_mm[0], gj - start_mm[1]) <= reach
    allowed = np.broadcast_to(allowed, hu[box].shape)
    circles = axial_circles(hu[box], allowed, spacing_mm, radii, step_hu, content[box])
    offset = np.array([lo[0] * spacing_mm[0], lo[1] * spacing_mm[1]])
    centre, r = np.asarray(start_mm[:2], dtype=np.float64), radius_mm
    points: list[list[float]] = []
    out_r: list[float] = []
    misses, stop = 0, "length"
    ks = range(k0 - 1, k_lo - 1, -1) if direction < 0 else range(k0 + 1, k_hi)
    for k in ks:
        row = k - k_lo
        cand = circles.centre_mm[row] + offset
        move = np.hypot(*(cand - centre).T)
        fine = (
            np.isfinite(circles.score[row])
            & (circles.score[row] >= min_score)
            & (move <= _FOLLOW_MOVE_MM * (misses + 1) + (first_move_mm if not points else 0.0))
            & (np.abs(circles.radius_mm[row] - r) <= _FOLLOW_RADIUS_CHANGE * r + _JITTER_MM)
        )
        if not fine.any():
            misses += 1
            if misses > max_misses:
                stop = "circle lost"
                break
            continue
        # The reference radius stays that of the start: the Hough radius is quantised and
        # biased towards the inner side of the edge, and would drift.
        best = int(np.argmax(np.where(fine, circles.score[row], -np.inf)))
        centre, misses = cand[best], 0
        points.append([centre[0], centre[1], k * spacing_mm[2]])
        out_r.append(r)
    return TubeTrack(np.asarray(points).reshape(-1, 3), np.asarray(out_r), stop)


def paint_tube(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    points_mm: F64,
    radius_mm: F64,
    margin_mm: float = 0.0,
) -> BoolArray:
    """Union of balls of ``radius_mm + margin_mm`` along the polyline ``points_mm``.

    The polyline is resampled every half voxel so the balls overlap into a tube.
    """
    out = np.zeros(shape, dtype=bool)
    if len(points_mm) == 0:
        return out
    pts = np.asarray(points_mm, dtype=np.float64)
    rad = np.asarray(radius_mm, dtype=np.float64) + margin_mm
    if len(pts) > 1:
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        dense = np.arange(0.0, s[-1] + 1e-9, 0.5 * min(spacing_mm))
        pts = np.column_stack([np.interp(dense, s, pts[:, a]) for a in range(3)])
        rad = np.interp(dense, s, rad)
    sp = np.asarray(spacing_mm)
    for p, r in zip(pts, rad, strict=True):
        lo = np.maximum(np.floor((p - r) / sp).astype(int), 0)
        hi = np.minimum(np.ceil((p + r) / sp).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        gi, gj, gk = (np.arange(lo[a], hi[a]) * sp[a] - p[a] for a in range(3))
        ball = gi[:, None, None] ** 2 + gj[None, :, None] ** 2 + gk[None, None, :] ** 2 <= r * r
        out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= ball
    return out
