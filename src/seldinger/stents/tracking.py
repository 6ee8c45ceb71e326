"""Follow a lumen on the CT beyond where its segmentation stopped.

Region growing stops at a tight stenosis or an occlusion (the front narrows, then widens
again beyond it: a leak to a leak detector), so the segmented tree ends there and the
airway beyond is lost: exactly where a stent is needed. :func:`track_lumen` continues the
centreline on the CT itself: it steps along the last direction, measures the cross-section
normal to it (:func:`~seldinger.stents.sections.measure_cross_sections`), moves onto the
lumen's centroid and turns gently towards it; through a stretch without lumen (an
occlusion) it goes straight on, and it stops where the lumen becomes much wider than the
tube (a bifurcation: the carina), where the lumen does not come back within
:data:`MAX_OCCLUSION_MM`, or at the edge of the image.

Frame and units follow ``docs/conventions.md``: LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.imaging import Volume
from seldinger.stents.centreline import Centreline, rotation_minimising_frames
from seldinger.stents.sections import measure_cross_sections

__all__ = ["MAX_OCCLUSION_MM", "TrackedLumen", "track_lumen"]

FloatArray = npt.NDArray[np.float64]

#: The longest stretch without lumen crossed before giving up, mm.
MAX_OCCLUSION_MM = 40.0
#: Longest track, mm.
MAX_TRACK_MM = 150.0
#: The lumen is a bifurcation (stop) when wider than this times the tube's area.
BIFURCATION_AREA_RATIO = 1.6
#: A stretch whose outline is open (the lumen runs out of the sampled square: a wall thinner
#: than the CT resolves against the lung, or the bifurcation) longer than this ends it, mm.
MAX_OPEN_MM = 8.0
_TURN = 0.25  # how far the direction turns towards each new centroid step
_DIRECTION_MM = 10.0  # the start direction: the last this many mm of the centreline


@dataclass(frozen=True, eq=False)
class TrackedLumen:
    """The centreline continued on the CT.

    Parameters
    ----------
    points_lps_mm : ndarray, shape (M, 3)
        Points beyond the given centreline's end, 1 mm apart (empty if none).
    reached : str
        Why tracking stopped: ``"bifurcation"``, ``"no lumen"``, ``"image edge"`` or
        ``"length"``.
    crossed_occlusion_mm : float
        Length of the longest stretch without lumen that was crossed, mm.
    """

    points_lps_mm: FloatArray
    reached: str
    crossed_occlusion_mm: float


def _one_station(point: FloatArray, direction: FloatArray) -> Centreline:
    pts = point[None, :]
    tangent = direction[None, :]
    u, v = rotation_minimising_frames(pts, tangent)
    return Centreline(pts, tangent, u, v, np.zeros(1))


def track_lumen(
    ct: Volume,
    points_lps_mm: npt.ArrayLike,
    *,
    reference_area_mm2: float,
    edge_level_hu: float = -500.0,
    step_mm: float = 1.0,
) -> TrackedLumen:
    """Continue a centreline beyond its distal end by following the lumen on the CT.

    Parameters
    ----------
    ct : Volume
        CT in HU.
    points_lps_mm : array_like, shape (N, 3)
        The centreline so far, proximal first (at least 10 mm of it sets the direction).
    reference_area_mm2 : float
        Healthy lumen area of the tube, mm²: sets the sampled square, the search radius for
        an eccentric residual lumen, and the bifurcation test.
    edge_level_hu : float
        Lumen edge, HU.
    step_mm : float
        Step, mm.

    Returns
    -------
    TrackedLumen
        The tracked points exclude a trailing stretch without lumen (an occlusion the
        lumen never comes back from cannot be told from the end of the airway).
    """
    pts = np.asarray(points_lps_mm, dtype=np.float64).reshape(-1, 3)
    radius = float(np.sqrt(reference_area_mm2 / np.pi))
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    back = np.concatenate([[0.0], np.cumsum(seg[::-1])])
    first = pts[::-1][min(int(np.searchsorted(back, _DIRECTION_MM)), len(pts) - 1)]
    direction = pts[-1] - first
    direction /= max(float(np.linalg.norm(direction)), 1e-9)
    lo, hi = ct.geometry.bounds_lps_mm()
    point = pts[-1].copy()
    out: list[FloatArray] = []
    lumen_at: list[bool] = []
    gap = longest_gap = opened = 0.0
    reached = "length"
    while len(out) * step_mm < MAX_TRACK_MM:
        point = point + step_mm * direction
        if np.any(point < np.minimum(lo, hi)) or np.any(point > np.maximum(lo, hi)):
            reached = "image edge"
            break
        sections = measure_cross_sections(
            ct,
            _one_station(point, direction),
            edge_level=edge_level_hu,
            lumen_below=True,
            half_width_mm=2.0 * radius + 4.0,
            search_radius_mm=max(0.8 * radius, 2.0),
        )
        status = str(sections.status[0])
        area = float(sections.area_mm2[0])
        if status == "ok" and area > BIFURCATION_AREA_RATIO * reference_area_mm2:
            reached = "bifurcation"
            break
        if status == "outside":
            reached = "image edge"
            break
        if status == "open":
            opened += step_mm
            if opened > MAX_OPEN_MM:
                reached = "bifurcation"
                break
            out.append(point.copy())
            lumen_at.append(False)
            continue
        opened = 0.0
        if status == "occluded":
            gap += step_mm
            longest_gap = max(longest_gap, gap)
            if gap > MAX_OCCLUSION_MM:
                reached = "no lumen"
                break
            out.append(point.copy())
            lumen_at.append(False)
            continue
        gap = 0.0
        centroid = sections.centroid_lps_mm[0]
        moved = centroid - (point - step_mm * direction)
        moved /= max(float(np.linalg.norm(moved)), 1e-9)
        direction = (1.0 - _TURN) * direction + _TURN * moved
        direction /= float(np.linalg.norm(direction))
        point = centroid
        out.append(point.copy())
        lumen_at.append(True)
    # drop a trailing stretch without lumen
    while lumen_at and not lumen_at[-1]:
        lumen_at.pop()
        out.pop()
    if reached == "no lumen" or not out:
        longest_gap = _longest_false_run(lumen_at) * step_mm
    points = np.array(out, dtype=np.float64).reshape(-1, 3)
    return TrackedLumen(points, reached, longest_gap)


def _longest_false_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = 0 if flag else run + 1
        best = max(best, run)
    return best
