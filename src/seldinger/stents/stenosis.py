"""Stenoses in a lumen-area profile: the healthy reference, the narrowing, its extent.

The profile is the lumen area every millimetre along a centreline
(:mod:`seldinger.stents.sections`). The *reference* (healthy) area of a lesion is taken from
the neighbouring segments, as a bronchoscopist sizes a stent on the airway above and below
the narrowing: the median area over :data:`REFERENCE_SEGMENT_MM` on each side, starting
:data:`REFERENCE_GAP_MM` beyond the lesion (one side when the other runs out of airway).
Candidate narrowings are where the area falls below ``(1 - min_stenosis_percent / 100)``
times a running reference (the :data:`RUNNING_PERCENTILE`-th percentile over
±:data:`RUNNING_WINDOW_MM`, high enough that a lesion shorter than the window does not pull
it down). A lesion extends, from its narrowest point, as far as the area stays below half-way
between its minimum and its reference (full width at half depth, placed between stations by
linear interpolation): a step narrowing blurred by the CT's resolution is measured at its
true length. Stations without a lumen (area 0) make an *occlusion*: stenosis 100 %.

Stenosis by area is ``1 - A_min / A_ref``; by diameter ``1 - D_min / D_ref`` with the
equivalent diameters ``D = 2 sqrt(A / pi)`` (a circle with the same area), so an oval
trachea is not read as narrowed.

References
----------
.. [1] Murgu SD, Colt HG. Description of a multidimensional classification system for
   patients with expiratory central airway collapse and fixed central airway obstruction.
   Respirology 15(5):775-779, 2010 (stenosis as % of the healthy lumen, length, distance
   from the vocal cords and the carina).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Lesion",
    "find_lesions",
    "reference_area",
    "running_reference",
]

FloatArray = npt.NDArray[np.float64]

#: Window of the running reference (± mm) and the percentile taken in it.
RUNNING_WINDOW_MM = 30.0
RUNNING_PERCENTILE = 75.0
#: The reference segments start this far beyond the lesion and are this long, mm.
REFERENCE_GAP_MM = 5.0
REFERENCE_SEGMENT_MM = 15.0
#: Narrowings closer than this (mm) are one lesion.
MERGE_GAP_MM = 3.0
#: A narrowing must span this many stations (a single thin plane is noise on a CT whose
#: slices are thicker than the station spacing) unless it is an occlusion.
MIN_NARROWED_STATIONS = 2
#: Default threshold of a reported stenosis, % of the reference area.
MIN_STENOSIS_PERCENT = 20.0


@dataclass(frozen=True)
class Lesion:
    """A narrowing along one profile (positions are arc lengths along its centreline).

    Parameters
    ----------
    start_mm, end_mm : float
        Extent (full width at half depth), mm from the first station.
    min_at_mm : float
        Arc length of the narrowest station, mm.
    min_area_mm2 : float
        Smallest lumen area, mm² (0 for an occlusion).
    reference_area_mm2 : float
        Healthy area from the neighbouring segments, mm².
    occluded : bool
        Some station of the lesion has no lumen.
    bounded : bool
        The area recovers on both sides within the measured stations. An unbounded
        narrowing runs into a junction, a gap or the end of the centreline (the larynx
        above a chest CT's trachea, a bronchus tapering into its division): its extent and
        its reference are not known, so it is not graded.
    """

    start_mm: float
    end_mm: float
    min_at_mm: float
    min_area_mm2: float
    reference_area_mm2: float
    occluded: bool
    bounded: bool = True

    @property
    def length_mm(self) -> float:
        """Extent along the centreline, mm."""
        return self.end_mm - self.start_mm

    @property
    def stenosis_area_percent(self) -> float:
        """``100 (1 - A_min / A_ref)``."""
        return 100.0 * (1.0 - self.min_area_mm2 / self.reference_area_mm2)

    @property
    def stenosis_diameter_percent(self) -> float:
        """``100 (1 - D_min / D_ref)`` with equivalent diameters."""
        return 100.0 * (1.0 - np.sqrt(self.min_area_mm2 / self.reference_area_mm2))

    @property
    def reference_diameter_mm(self) -> float:
        """Equivalent diameter of the reference area, mm."""
        return float(2.0 * np.sqrt(self.reference_area_mm2 / np.pi))


def running_reference(area_mm2: FloatArray, step_mm: float = 1.0) -> FloatArray:
    """The :data:`RUNNING_PERCENTILE`-th percentile of the valid area within ±window.

    NaN where fewer than 5 valid stations are in the window.

    Examples
    --------
    >>> a = np.full(61, 100.0); a[25:35] = 50.0
    >>> float(running_reference(a)[30])
    100.0
    """
    half = round(RUNNING_WINDOW_MM / step_mm)
    padded = np.concatenate([np.full(half, np.nan), area_mm2, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    count = np.isfinite(windows).sum(axis=1)
    out = np.full(len(area_mm2), np.nan)
    enough = count >= 5
    if enough.any():
        out[enough] = np.nanpercentile(windows[enough], RUNNING_PERCENTILE, axis=1)
    return out


def reference_area(
    s_mm: FloatArray,
    area_mm2: FloatArray,
    start_mm: float,
    end_mm: float,
    exclude: npt.NDArray[np.bool_],
) -> float:
    """Median area of the neighbouring segments on both sides of [start, end] (NaN if none).

    ``exclude`` (bool per station) marks stations of other narrowings, left out.
    """
    lo = (s_mm >= start_mm - REFERENCE_GAP_MM - REFERENCE_SEGMENT_MM) & (
        s_mm <= start_mm - REFERENCE_GAP_MM
    )
    hi = (s_mm >= end_mm + REFERENCE_GAP_MM) & (
        s_mm <= end_mm + REFERENCE_GAP_MM + REFERENCE_SEGMENT_MM
    )
    use = (lo | hi) & np.isfinite(area_mm2) & ~exclude.astype(bool)
    if use.sum() < 3:
        return float("nan")
    return float(np.median(area_mm2[use]))


def _half_depth_extent(
    s_mm: FloatArray, area: FloatArray, centre: int, threshold: float
) -> tuple[float, float, bool]:
    """Arc lengths where the area crosses ``threshold`` on either side of ``centre``, and
    whether it did cross on both sides (rather than running out of measured stations)."""
    n = len(area)

    def walk(step: int) -> tuple[float, bool]:
        j = centre
        last = centre
        while 0 <= j + step < n:
            nxt = j + step
            if np.isfinite(area[nxt]) and area[nxt] >= threshold:
                a0, a1 = area[last], area[nxt]
                frac = (threshold - a0) / (a1 - a0) if a1 != a0 else 0.5
                return float(s_mm[last] + frac * (s_mm[nxt] - s_mm[last])), True
            if np.isfinite(area[nxt]):
                last = nxt
            elif abs(nxt - last) * (s_mm[1] - s_mm[0]) > MERGE_GAP_MM:
                break  # a gap in the measurements: the lesion's edge is not seen
            j = nxt
        return float(s_mm[last]), False

    (start, lo_ok), (end, hi_ok) = walk(-1), walk(+1)
    return start, end, lo_ok and hi_ok


def find_lesions(
    s_mm: FloatArray,
    area_mm2: FloatArray,
    *,
    min_stenosis_percent: float = MIN_STENOSIS_PERCENT,
    fallback_reference_mm2: float | None = None,
) -> list[Lesion]:
    """Narrowings of at least ``min_stenosis_percent`` (by area) along a profile.

    Parameters
    ----------
    s_mm : ndarray, shape (N,)
        Arc length of each station, mm (evenly spaced).
    area_mm2 : ndarray, shape (N,)
        Lumen area, mm²; NaN where not measurable, 0 where occluded.
    min_stenosis_percent : float
        Smallest stenosis by area reported, %.
    fallback_reference_mm2 : float, optional
        Reference when neither neighbouring segment is measurable (a short bronchus), mm²;
        default the running reference at the narrowest point.

    Returns
    -------
    list of Lesion
        Proximal first; unbounded ones (:attr:`Lesion.bounded`) included.

    Examples
    --------
    >>> s = np.arange(101.0)
    >>> a = np.where((s >= 40) & (s < 60), 50.0, 100.0)
    >>> (lesion,) = find_lesions(s, a)
    >>> lesion.stenosis_area_percent, lesion.length_mm
    (50.0, 20.0)
    """
    if len(s_mm) < 3 or not np.isfinite(area_mm2).any():
        return []
    step = float(np.median(np.diff(s_mm)))
    running = running_reference(area_mm2, step)
    fraction = 1.0 - min_stenosis_percent / 100.0
    narrowed = np.isfinite(area_mm2) & np.isfinite(running) & (area_mm2 < fraction * running)
    narrowed |= area_mm2 == 0.0
    idx = np.flatnonzero(narrowed)
    if len(idx) == 0:
        return []
    runs: list[list[int]] = [[int(idx[0]), int(idx[0])]]
    for i in idx[1:]:
        if (i - runs[-1][1]) * step <= MERGE_GAP_MM:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    lesions = []
    for a, b in runs:
        if b - a + 1 < MIN_NARROWED_STATIONS and not np.any(area_mm2[a : b + 1] == 0.0):
            continue
        segment = np.where(np.isfinite(area_mm2[a : b + 1]), area_mm2[a : b + 1], np.inf)
        centre = a + int(np.argmin(segment))
        a_min = float(area_mm2[centre])
        start, end = float(s_mm[a]), float(s_mm[b])
        ref = float("nan")
        bounded = False
        for _ in range(3):  # the extent sets the reference segments and back
            ref = reference_area(s_mm, area_mm2, start, end, narrowed)
            if not np.isfinite(ref):
                ref = (
                    fallback_reference_mm2
                    if fallback_reference_mm2 is not None
                    else float(running[centre])
                )
            if not np.isfinite(ref) or ref <= a_min:
                break
            start, end, bounded = _half_depth_extent(s_mm, area_mm2, centre, 0.5 * (ref + a_min))
        if not np.isfinite(ref) or ref <= 0 or 100.0 * (1 - a_min / ref) < min_stenosis_percent:
            continue
        occluded = bool(np.any(area_mm2[a : b + 1] == 0.0))
        lesions.append(Lesion(start, end, float(s_mm[centre]), a_min, ref, occluded, bounded))
    return lesions
