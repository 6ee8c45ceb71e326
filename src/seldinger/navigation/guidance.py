"""Needle guidance against a planned trajectory: errors per update, breach warning, watchdog.

One tracker update becomes one :class:`GuidanceState`:

* ``tip_to_target_mm``: Euclidean distance from the needle tip to the target;
* ``lateral_deviation_mm``: distance of the tip from the planned line (the infinite line
  through entry and target);
* ``angle_error_deg``: angle between the needle's shaft (hub → tip) and the planned
  direction (entry → target);
* ``remaining_depth_mm``: along the path, from the tip's projection on the line to the
  target; positive before the target, negative past it; ``progress`` is the projection's
  fraction of entry → target (0 at the entry, 1 at the target);
* ``distance_to_critical_mm``: the tip's distance to the nearest critical structure
  (bones, vessels, airways…), looked up trilinearly in a map made by
  :func:`critical_distance_map`; ``breach`` when it is below the threshold, the
  SlicerIGT *Breach Warning* (``docs/navigation_guidance.md``).

:class:`Guide` turns raw tracker poses into that state. Frames and conventions
(``docs/conventions.md``, PLUS naming):

* ``tool_to_tracker`` (ToolToTracker): the needle's sensor pose from the tracker.
* ``tool_tip_to_tool`` (NeedleTipToNeedle): the calibration. **Its origin is the needle
  tip and its +Z axis points along the shaft from the hub toward the tip** (direction of
  insertion): the PLUS convention, built by
  :func:`seldinger.navigation.calibration.tool_tip_to_tool`.
* Without a patient reference, the registration is ``tracker_to_ct`` and
  ``tip_to_ct = tracker_to_ct @ tool_to_tracker @ tool_tip_to_tool``.
* With a patient reference sensor (on the skin, registered to the CT), the registration is
  ``reference_to_ct`` and the needle is taken relative to the reference,
  ``tool_to_reference = inv(reference_to_tracker) @ tool_to_tracker``, so that moving the
  patient or the field generator does not move the needle in the CT.

:class:`Watchdog` says when updates stop (default 0.5 s, the display watchdog of
``docs/navigation_guidance.md``; SlicerIGT's default is 1 s). Its clock is injected, so it
is tested without sleeping.

An update takes 30–80 µs (``Guide.update``; plain-float arithmetic and 4×4 products, no
large array is touched), far below the 1 ms of a 1000 Hz stream.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError
from seldinger.imaging import Volume, require_same_geometry
from seldinger.navigation.transforms import validate_rigid

__all__ = [
    "BREACH_THRESHOLD_MM",
    "CRITICAL_STRUCTURES",
    "STALE_AFTER_S",
    "DistanceLookup",
    "GuidanceError",
    "GuidanceState",
    "Guide",
    "PlannedPath",
    "Watchdog",
    "WatchdogStatus",
    "critical_distance_map",
    "guidance_state",
]

FloatArray = npt.NDArray[np.float64]

#: Default breach-warning distance (mm) from the tip to a critical structure.
BREACH_THRESHOLD_MM = 5.0
#: Default watchdog limit (s) without an update before the display calls the pose stale.
STALE_AFTER_S = 0.5
#: Structures a needle must not hit, as named by :mod:`seldinger.anatomy`.
CRITICAL_STRUCTURES: tuple[str, ...] = ("bones", "vessels", "airways")
#: Shortest accepted entry → target distance (mm): below it the direction is noise.
_MIN_PATH_MM = 1e-3


class GuidanceError(BadInputError):
    """Bad input to guidance: a degenerate path or pose, a missing reference pose."""


class _MaskSource(Protocol):
    """An ``Anatomy`` or a ``dict`` of masks: ``masks[name] -> Volume``, ``name in masks``."""

    def __getitem__(self, name: str, /) -> Volume: ...

    def __contains__(self, name: object, /) -> bool: ...


# --- the plan -------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPath:
    """A straight needle path from a skin entry to a target (LPS mm).

    Raises
    ------
    GuidanceError
        If a point is not three finite numbers or entry and target coincide.
    """

    entry_lps_mm: tuple[float, float, float]
    target_lps_mm: tuple[float, float, float]

    def __post_init__(self) -> None:
        entry = _point(self.entry_lps_mm, "entry_lps_mm")
        target = _point(self.target_lps_mm, "target_lps_mm")
        length = math.dist(entry, target)
        if length < _MIN_PATH_MM:
            raise GuidanceError(
                f"entry_lps_mm {list(entry)} and target_lps_mm {list(target)} coincide "
                f"(length {length:.2g} mm < {_MIN_PATH_MM:g} mm): the path has no direction. "
                "Give a skin entry distinct from the target."
            )
        object.__setattr__(self, "entry_lps_mm", entry)
        object.__setattr__(self, "target_lps_mm", target)

    @classmethod
    def from_trajectory(cls, trajectory: Any) -> PlannedPath:
        """From any object with ``entry_lps_mm`` and ``target_lps_mm`` (a planned Trajectory)."""
        return cls(trajectory.entry_lps_mm, trajectory.target_lps_mm)

    @property
    def length_mm(self) -> float:
        """Entry → target distance, mm."""
        return math.dist(self.entry_lps_mm, self.target_lps_mm)

    @property
    def direction_lps(self) -> tuple[float, float, float]:
        """Unit vector entry → target."""
        length = self.length_mm
        e, t = self.entry_lps_mm, self.target_lps_mm
        return ((t[0] - e[0]) / length, (t[1] - e[1]) / length, (t[2] - e[2]) / length)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "entry_lps_mm": list(self.entry_lps_mm),
            "target_lps_mm": list(self.target_lps_mm),
            "length_mm": self.length_mm,
        }


# --- the state of one update ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GuidanceState:
    """Where the needle is relative to the plan, at one tracker update.

    Attributes
    ----------
    timestamp_s : float
        Time of the update (the watchdog's clock, monotonic seconds).
    tip_lps_mm, direction_lps : tuple of float
        Needle tip (LPS mm) and unit shaft direction (hub → tip) in the CT.
    tip_to_target_mm : float
        Euclidean tip–target distance.
    lateral_deviation_mm : float
        Distance of the tip from the planned line (infinite line through entry, target).
    angle_error_deg : float
        Angle between the shaft and the planned direction (0–180°).
    remaining_depth_mm : float
        From the tip's projection on the line to the target, along the path; negative
        past the target.
    progress : float
        Projection's fraction of entry → target (0 entry, 1 target, > 1 past it).
    tip_projection_lps_mm : tuple of float
        The tip's projection on the planned line.
    distance_to_critical_mm : float
        Tip's distance to the nearest critical structure (0 inside one); NaN when no
        map was given or the tip is outside it.
    outside_critical_map : bool
        True when a map was given but the tip lies outside it (distance unknown).
    breach : bool
        ``distance_to_critical_mm < breach_threshold_mm`` (False when unknown).
    breach_threshold_mm : float
        The threshold used.
    """

    timestamp_s: float
    tip_lps_mm: tuple[float, float, float]
    direction_lps: tuple[float, float, float]
    tip_to_target_mm: float
    lateral_deviation_mm: float
    angle_error_deg: float
    remaining_depth_mm: float
    progress: float
    tip_projection_lps_mm: tuple[float, float, float]
    distance_to_critical_mm: float
    outside_critical_map: bool
    breach: bool
    breach_threshold_mm: float

    @property
    def past_target(self) -> bool:
        """True when the tip's projection lies beyond the target."""
        return self.remaining_depth_mm < 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""
        critical = self.distance_to_critical_mm
        return {
            "timestamp_s": self.timestamp_s,
            "tip_lps_mm": list(self.tip_lps_mm),
            "direction_lps": list(self.direction_lps),
            "tip_to_target_mm": self.tip_to_target_mm,
            "lateral_deviation_mm": self.lateral_deviation_mm,
            "angle_error_deg": self.angle_error_deg,
            "remaining_depth_mm": self.remaining_depth_mm,
            "progress": self.progress,
            "past_target": self.past_target,
            "tip_projection_lps_mm": list(self.tip_projection_lps_mm),
            "distance_to_critical_mm": None if math.isnan(critical) else critical,
            "outside_critical_map": self.outside_critical_map,
            "breach": self.breach,
            "breach_threshold_mm": self.breach_threshold_mm,
        }


def guidance_state(
    tip_lps_mm: npt.ArrayLike,
    direction_lps: npt.ArrayLike,
    path: PlannedPath,
    critical_distance: Volume | DistanceLookup | None = None,
    breach_threshold_mm: float = BREACH_THRESHOLD_MM,
    timestamp_s: float = 0.0,
) -> GuidanceState:
    """Guidance errors of a needle pose already in the CT frame.

    Parameters
    ----------
    tip_lps_mm : array_like, shape (3,)
        Needle tip, LPS mm.
    direction_lps : array_like, shape (3,)
        Shaft direction from hub to tip; normalised here (any non-zero length).
    path : PlannedPath
        The plan.
    critical_distance : Volume or DistanceLookup, optional
        Distance map from :func:`critical_distance_map` (mm). A Volume is wrapped in a
        :class:`DistanceLookup` on each call; pass the lookup when calling often.
    breach_threshold_mm : float
        Breach warning below this distance.
    timestamp_s : float
        Stored in the state.

    Returns
    -------
    GuidanceState

    Raises
    ------
    GuidanceError
        If the tip is not finite or the direction is zero or not finite.

    Examples
    --------
    >>> path = PlannedPath((0.0, 0.0, 0.0), (0.0, 0.0, 100.0))
    >>> s = guidance_state([3.0, 0.0, 40.0], [0.0, 0.0, 1.0], path)
    >>> s.lateral_deviation_mm, s.remaining_depth_mm, s.angle_error_deg
    (3.0, 60.0, 0.0)
    """
    tip = _point(tip_lps_mm, "tip_lps_mm")
    d = _point(direction_lps, "direction_lps")
    norm = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    if norm < 1e-12:
        raise GuidanceError(
            f"direction_lps {list(d)} has zero length; pass the shaft direction from hub "
            "to tip (the +Z column of tip_to_ct)."
        )
    lookup = (
        DistanceLookup(critical_distance)
        if isinstance(critical_distance, Volume)
        else critical_distance
    )
    return _state(
        tip,
        (d[0] / norm, d[1] / norm, d[2] / norm),
        path.entry_lps_mm,
        path.target_lps_mm,
        path.direction_lps,
        path.length_mm,
        lookup,
        float(breach_threshold_mm),
        float(timestamp_s),
    )


def _state(
    tip: tuple[float, float, float],
    d: tuple[float, float, float],
    entry: tuple[float, float, float],
    target: tuple[float, float, float],
    u: tuple[float, float, float],
    length_mm: float,
    lookup: DistanceLookup | None,
    threshold_mm: float,
    timestamp_s: float,
) -> GuidanceState:
    """The arithmetic of :func:`guidance_state` on plain floats (no arrays: it runs per update)."""
    rx, ry, rz = tip[0] - entry[0], tip[1] - entry[1], tip[2] - entry[2]
    along = rx * u[0] + ry * u[1] + rz * u[2]
    # |r × u| is the distance from the line, exact also for tiny offsets.
    cx, cy, cz = ry * u[2] - rz * u[1], rz * u[0] - rx * u[2], rx * u[1] - ry * u[0]
    lateral = math.sqrt(cx * cx + cy * cy + cz * cz)
    # atan2(|d × u|, d·u) keeps full precision near 0° and 180°, unlike acos.
    dx, dy, dz = d[1] * u[2] - d[2] * u[1], d[2] * u[0] - d[0] * u[2], d[0] * u[1] - d[1] * u[0]
    angle = math.degrees(
        math.atan2(math.sqrt(dx * dx + dy * dy + dz * dz), d[0] * u[0] + d[1] * u[1] + d[2] * u[2])
    )
    projection = (entry[0] + u[0] * along, entry[1] + u[1] * along, entry[2] + u[2] * along)
    if lookup is None:
        critical, outside = math.nan, False
    else:
        critical = lookup(tip)
        outside = math.isnan(critical)
    return GuidanceState(
        timestamp_s=timestamp_s,
        tip_lps_mm=tip,
        direction_lps=d,
        tip_to_target_mm=math.dist(tip, target),
        lateral_deviation_mm=lateral,
        angle_error_deg=angle,
        remaining_depth_mm=length_mm - along,
        progress=along / length_mm,
        tip_projection_lps_mm=projection,
        distance_to_critical_mm=critical,
        outside_critical_map=outside,
        breach=critical < threshold_mm,  # False for NaN
        breach_threshold_mm=threshold_mm,
    )


# --- distance to critical structures --------------------------------------------------


def critical_distance_map(
    masks: _MaskSource | Mapping[str, Volume],
    names: Iterable[str] = CRITICAL_STRUCTURES,
    *,
    box_lps_mm: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    pad_mm: float = 30.0,
) -> Volume:
    """Distance (mm) from every voxel to the nearest voxel of the critical structures.

    Parameters
    ----------
    masks : Anatomy or mapping of str to Volume
        Bool masks on one grid (``segment(ct)`` or a dict).
    names : iterable of str
        Structures to avoid; each must be in ``masks``.
    box_lps_mm : (lo, hi) pair of array_like, optional
        Only this LPS box is returned (e.g. around the planned path, with a margin);
        structures up to ``pad_mm`` outside it still count. Default: the whole grid.
    pad_mm : float
        With a box: how far beyond it structures are looked for. Values in the box are
        exact below ``pad_mm`` and capped at ``pad_mm`` (meaning "at least that far").

    Returns
    -------
    Volume
        float32 distances in mm on the masks' grid (or its box): 0 inside a structure,
        otherwise the Euclidean distance (anisotropic spacing honoured) to the nearest
        structure voxel *centre*. The structure's surface lies up to half a voxel nearer
        (0.35 mm in-plane, 1.25 mm across 2.5 mm slices): keep the breach threshold above
        that.

    Raises
    ------
    GuidanceError
        If a name is missing from ``masks``, the names are empty, or (without a box) the
        union holds no voxel: nothing to warn about more likely means a wrong name.
    seldinger.imaging.GeometryError
        If the masks are not on one grid.

    Notes
    -----
    One :func:`scipy.ndimage.distance_transform_edt` (Maurer's exact algorithm); a
    512 × 512 × 133 CT takes a few seconds, a box around a path a fraction of one.
    """
    wanted = list(names)
    if not wanted:
        raise GuidanceError("names is empty; give the structures to avoid, e.g. ('bones',).")
    missing = [n for n in wanted if n not in masks]
    if missing:
        raise GuidanceError(
            f"critical structure(s) {missing} are not in the masks; segment them first or "
            "leave them out of names (a structure silently skipped would never warn)."
        )
    volumes = [masks[n] for n in wanted]
    require_same_geometry(*volumes)
    first = volumes[0]
    if box_lps_mm is not None:
        if not (math.isfinite(pad_mm) and pad_mm > 0.0):
            raise GuidanceError(f"pad_mm must be a positive length (mm); got {pad_mm!r}.")
        lo = np.asarray(box_lps_mm[0], dtype=np.float64)
        hi = np.asarray(box_lps_mm[1], dtype=np.float64)
        inner = first.crop_lps(lo, hi)
        outer = first.crop_lps(np.minimum(lo, hi) - pad_mm, np.maximum(lo, hi) + pad_mm)
        start = np.rint(outer.lps_to_index(inner.origin_lps_mm)).astype(int)
        outer_box = _box_of(first, outer)
        union = np.zeros(outer.shape, dtype=bool)
        for v in volumes:
            union |= np.asarray(v.array[outer_box], dtype=bool)
        inner_box = tuple(
            slice(int(a), int(a) + n) for a, n in zip(start, inner.shape, strict=True)
        )
        if not union.any():
            return inner.with_array(np.full(inner.shape, pad_mm, dtype=np.float32))
        distance = ndi.distance_transform_edt(~union, sampling=outer.spacing_mm)[inner_box]
        return inner.with_array(np.minimum(distance, pad_mm).astype(np.float32))
    union = np.zeros(first.shape, dtype=bool)
    for v in volumes:
        union |= np.asarray(v.array, dtype=bool)
    if not union.any():
        raise GuidanceError(
            f"the critical structures {wanted} hold no voxel; check the segmentation or the names."
        )
    return first.with_array(
        ndi.distance_transform_edt(~union, sampling=first.spacing_mm).astype(np.float32)
    )


def _box_of(volume: Volume, crop: Volume) -> tuple[slice, ...]:
    start = np.rint(volume.lps_to_index(crop.origin_lps_mm)).astype(int)
    return tuple(slice(int(a), int(a) + n) for a, n in zip(start, crop.shape, strict=True))


class DistanceLookup:
    """Trilinear lookup of a distance map at LPS points, fast enough for every update.

    Parameters
    ----------
    distance : Volume
        Distances in mm (:func:`critical_distance_map`).

    Notes
    -----
    Returns NaN for a point outside the grid's voxel centres. Plain-float arithmetic and
    eight element reads: no array is allocated per call.
    """

    __slots__ = ("_array", "_last", "_lps_to_index")

    def __init__(self, distance: Volume) -> None:
        self._array = np.ascontiguousarray(distance.array, dtype=np.float64)
        inverse = np.linalg.inv(distance.affine)
        self._lps_to_index = tuple(tuple(float(v) for v in row) for row in inverse[:3])
        self._last = tuple(n - 1 for n in distance.shape)

    def __call__(self, lps_mm: npt.ArrayLike) -> float:
        """Distance (mm) at one LPS point, shape (3,); NaN outside the map."""
        x, y, z = (float(v) for v in np.asarray(lps_mm, dtype=np.float64).reshape(3).tolist())
        low: list[int] = []
        frac: list[float] = []
        for row, last in zip(self._lps_to_index, self._last, strict=True):
            v = row[0] * x + row[1] * y + row[2] * z + row[3]
            if not 0.0 <= v <= last:  # also refuses NaN
                return math.nan
            i = min(int(v), max(last - 1, 0))
            low.append(i)
            frac.append(v - i)
        (i0, j0, k0), (fi, fj, fk) = low, frac
        i1, j1, k1 = (min(i + 1, last) for i, last in zip(low, self._last, strict=True))
        a = self._array
        c00 = a[i0, j0, k0] * (1.0 - fi) + a[i1, j0, k0] * fi
        c10 = a[i0, j1, k0] * (1.0 - fi) + a[i1, j1, k0] * fi
        c01 = a[i0, j0, k1] * (1.0 - fi) + a[i1, j0, k1] * fi
        c11 = a[i0, j1, k1] * (1.0 - fi) + a[i1, j1, k1] * fi
        c0 = c00 * (1.0 - fj) + c10 * fj
        c1 = c01 * (1.0 - fj) + c11 * fj
        return float(c0 * (1.0 - fk) + c1 * fk)


# --- watchdog -------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchdogStatus:
    """Whether updates have stopped, and for how long."""

    stale: bool
    age_s: float  # since the last update; inf before the first
    last_update_s: float | None
    stale_after_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (an infinite age becomes ``None``)."""
        return {
            "stale": self.stale,
            "age_s": self.age_s if math.isfinite(self.age_s) else None,
            "last_update_s": self.last_update_s,
            "stale_after_s": self.stale_after_s,
        }


class Watchdog:
    """Flags a tracked pose as stale when no update came for ``stale_after_s``.

    Parameters
    ----------
    stale_after_s : float
        Longest accepted gap between updates, seconds (default 0.5 s).
    clock : callable returning float
        Monotonic seconds; inject a fake clock in tests. Timestamps given to :meth:`feed`
        must come from the same clock (receive time, not a device's own clock).

    Notes
    -----
    Thread-safe: the I/O thread feeds, the display thread asks; ``_last_s`` is guarded by
    ``_lock``. Out-of-order timestamps never move the last update back.

    Examples
    --------
    >>> now = [10.0]
    >>> dog = Watchdog(0.5, clock=lambda: now[0])
    >>> dog.feed()
    >>> now[0] = 10.7
    >>> dog.status().stale, round(dog.status().age_s, 3)
    (True, 0.7)
    """

    def __init__(
        self, stale_after_s: float = STALE_AFTER_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(stale_after_s) and stale_after_s > 0.0):
            raise GuidanceError(
                f"stale_after_s must be a positive number of seconds; got {stale_after_s!r}."
            )
        self.stale_after_s = float(stale_after_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_s: float | None = None  # guarded by _lock; written by the feeding thread

    def feed(self, timestamp_s: float | None = None) -> None:
        """Record an update at ``timestamp_s`` (default: now on the watchdog's clock)."""
        t = self._clock() if timestamp_s is None else float(timestamp_s)
        if not math.isfinite(t):
            raise GuidanceError(f"timestamp_s must be finite seconds; got {timestamp_s!r}.")
        with self._lock:
            if self._last_s is None or t > self._last_s:
                self._last_s = t

    def status(self, now_s: float | None = None) -> WatchdogStatus:
        """Stale flag and age of the last update at ``now_s`` (default: the clock's now)."""
        now = self._clock() if now_s is None else float(now_s)
        with self._lock:
            last = self._last_s
        age = math.inf if last is None else now - last
        return WatchdogStatus(
            stale=age > self.stale_after_s,
            age_s=age,
            last_update_s=last,
            stale_after_s=self.stale_after_s,
        )

    def is_stale(self, now_s: float | None = None) -> bool:
        """Shorthand for ``status(now_s).stale``."""
        return self.status(now_s).stale


# --- the guide: tracker poses in, guidance out ----------------------------------------


class Guide:
    """Live needle guidance: tracker poses → :class:`GuidanceState`.

    Give exactly one registration: ``tracker_to_ct`` (no patient reference; the needle
    pose is ToolToTracker) or ``reference_to_ct`` (a patient reference sensor is tracked;
    every update must then carry ``reference_to_tracker``, and the needle is taken as
    ``inv(reference_to_tracker) @ tool_to_tracker``). See the module docstring for frames.

    Parameters
    ----------
    path : PlannedPath
        The plan (LPS mm).
    tool_tip_to_tool : array_like, shape (4, 4)
        Needle calibration: origin at the tip, +Z along the shaft toward the tip.
    tracker_to_ct, reference_to_ct : array_like, shape (4, 4), optional
        The rigid registration, one of the two.
    critical_distance : Volume, optional
        Map from :func:`critical_distance_map`; no breach warning without it.
    breach_threshold_mm : float
        Breach warning below this distance, mm.
    stale_after_s : float
        Watchdog limit, seconds.
    clock : callable returning float
        Monotonic seconds for timestamps and the watchdog (inject in tests).

    Raises
    ------
    GuidanceError
        If both or neither registration is given, or a number is out of range.
    seldinger.navigation.transforms.TransformError
        If a matrix is not rigid (both are ValueErrors).
    """

    def __init__(
        self,
        path: PlannedPath,
        tool_tip_to_tool: npt.ArrayLike,
        *,
        tracker_to_ct: npt.ArrayLike | None = None,
        reference_to_ct: npt.ArrayLike | None = None,
        critical_distance: Volume | None = None,
        breach_threshold_mm: float = BREACH_THRESHOLD_MM,
        stale_after_s: float = STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tracker_to_ct is not None and reference_to_ct is None:
            registration = validate_rigid(tracker_to_ct, "tracker_to_ct")
        elif reference_to_ct is not None and tracker_to_ct is None:
            registration = validate_rigid(reference_to_ct, "reference_to_ct")
        else:
            raise GuidanceError(
                "give exactly one registration: tracker_to_ct (no patient reference) or "
                "reference_to_ct (poses taken relative to a tracked patient reference); "
                f"got {'both' if tracker_to_ct is not None else 'neither'}."
            )
        if not (math.isfinite(breach_threshold_mm) and breach_threshold_mm >= 0.0):
            raise GuidanceError(
                f"breach_threshold_mm must be a non-negative length (mm); got "
                f"{breach_threshold_mm!r}."
            )
        self.path = path
        self.uses_reference = reference_to_ct is not None
        self.registration = registration
        self.tool_tip_to_tool = validate_rigid(tool_tip_to_tool, "tool_tip_to_tool")
        self.breach_threshold_mm = float(breach_threshold_mm)
        self.watchdog = Watchdog(stale_after_s, clock)
        self._clock = clock
        self._lookup = None if critical_distance is None else DistanceLookup(critical_distance)
        self._entry = path.entry_lps_mm
        self._target = path.target_lps_mm
        self._direction = path.direction_lps
        self._length_mm = path.length_mm

    def update(
        self,
        tool_to_tracker: npt.ArrayLike,
        reference_to_tracker: npt.ArrayLike | None = None,
        timestamp_s: float | None = None,
        tracker_timestamp_s: float | None = None,
    ) -> GuidanceState:
        """Guidance for one tracker frame; also feeds the watchdog.

        Parameters
        ----------
        tool_to_tracker : array_like, shape (4, 4)
            Needle sensor pose (ToolToTracker), mm.
        reference_to_tracker : array_like, shape (4, 4), optional
            Patient reference pose; required with ``reference_to_ct``, refused without.
        timestamp_s : float, optional
            Receive time on the guide's clock (default: now).
        tracker_timestamp_s : float, optional
            Acquisition time the tracker stamped on the pose, s. Not used here; guides
            that follow a signal in time (motion compensation) read it.

        Raises
        ------
        GuidanceError
            If the reference pose is missing (reference mode) or given (tracker mode).
        seldinger.navigation.transforms.TransformError
            If a pose is not rigid.
        """
        tool = validate_rigid(tool_to_tracker, "tool_to_tracker")
        if self.uses_reference:
            if reference_to_tracker is None:
                raise GuidanceError(
                    "reference_to_tracker is missing: this Guide was built with "
                    "reference_to_ct, so every update needs the patient reference's pose. "
                    "Skip frames where the reference is not visible."
                )
            reference = validate_rigid(reference_to_tracker, "reference_to_tracker")
            rotation_t = reference[:3, :3].T
            tool_to_reference = np.empty((4, 4))
            tool_to_reference[:3, :3] = rotation_t @ tool[:3, :3]
            tool_to_reference[:3, 3] = rotation_t @ (tool[:3, 3] - reference[:3, 3])
            tool_to_reference[3] = (0.0, 0.0, 0.0, 1.0)
            tool = tool_to_reference
        elif reference_to_tracker is not None:
            raise GuidanceError(
                "reference_to_tracker was given but this Guide was built with tracker_to_ct; "
                "build it with reference_to_ct to track relative to the patient reference."
            )
        tip_to_ct = self.registration @ tool @ self.tool_tip_to_tool
        t = self._clock() if timestamp_s is None else float(timestamp_s)
        self.watchdog.feed(t)
        m = tip_to_ct.tolist()
        return _state(
            (m[0][3], m[1][3], m[2][3]),
            (m[0][2], m[1][2], m[2][2]),
            self._entry,
            self._target,
            self._direction,
            self._length_mm,
            self._lookup,
            self.breach_threshold_mm,
            t,
        )

    def status(self, now_s: float | None = None) -> WatchdogStatus:
        """The watchdog's verdict on the needle pose stream."""
        return self.watchdog.status(now_s)


def _point(value: npt.ArrayLike, name: str) -> tuple[float, float, float]:
    p = np.asarray(value, dtype=np.float64)
    if p.shape != (3,) or not np.isfinite(p).all():
        raise GuidanceError(f"{name} must be three finite numbers (LPS mm); got {value!r}.")
    return (float(p[0]), float(p[1]), float(p[2]))
