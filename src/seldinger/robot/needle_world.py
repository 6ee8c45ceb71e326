"""The patient and needle the simulated robot works on: breathing tissue, needle deflection,
and a tracker that sees the needle tip and the chest.

A simple, explicit model (for testing the workflow, not for predicting a patient):

- The robot drives the needle tip (its guide pose's translation) in the world (CT LPS mm,
  the plan's CT taken at end-exhale). The tissue moves with breathing: at time ``t`` a
  point of the plan's CT lies at ``p + d(t)``, ``d(t) = signal(t) · A · u`` (Lujan's
  cycle, :class:`seldinger.navigation.motion.BreathingModel`).
- A needle advanced into the tissue ends, in the tissue's own frame (the plan's CT), at
  ``world tip − d(t)`` of the moment it got there: insert at inhale and the tip lands
  ``A`` short of an exhale target. Between moves the needle rides with the tissue (the
  robot has released it, as insertion robots do), so the tracker sees ``tissue tip + d(t)``.
- Deflection: the tip drifts sideways in proportion to the depth advanced since the last
  alignment (``deflection_mm_per_100mm`` along a fixed bevel direction ⊥ the axis) —
  deterministic, so aiming against a measured miss corrects it, as clinicians do.
- The tracker reports the tip (device ``NeedleTip``) and the chest reference (device
  ``ChestReference``; its translation is the chest-wall displacement, mm) in CT LPS, with
  Gaussian noise (3-D RMS ``tracker_noise_mm``): a tracker already registered to the CT.
  The simulated robot also streams the pose of a sensor on the needle's hub (device
  ``NeedleToTracker``, :data:`SENSOR_TIP_MM` behind the tip on the shaft), as a real
  tracked needle reports it: its tip is known only through a pivot calibration.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.navigation.motion import BreathingModel, BreathingTrace

__all__ = [
    "CHEST_REFERENCE",
    "NEEDLE_SENSOR",
    "NEEDLE_TIP",
    "SENSOR_TIP_MM",
    "NeedleWorld",
    "NeedleWorldSettings",
]

Float64Array = npt.NDArray[np.float64]

#: Device names of the simulated tracker's stream.
NEEDLE_TIP = "NeedleTip"
CHEST_REFERENCE = "ChestReference"
NEEDLE_SENSOR = "NeedleToTracker"
#: The needle tip in the hub sensor's frame (mm): on the shaft (+z), 120 mm ahead of the
#: sensor, as a pivot calibration of the simulated needle finds it.
SENSOR_TIP_MM = (0.0, 0.0, 120.0)


@dataclass(frozen=True)
class NeedleWorldSettings:
    """The patient and needle model (module docstring).

    ``breathing_amplitude_mm`` is the target's peak-to-peak motion along
    ``breathing_direction_lps`` (default superior-inferior); 0 is a breath-hold.
    """

    breathing_amplitude_mm: float = 0.0
    breathing_direction_lps: tuple[float, float, float] = (0.0, 0.0, -1.0)
    breathing_period_s: float = 4.0
    chest_amplitude_mm: float = 5.0
    deflection_mm_per_100mm: float = 1.0
    tracker_noise_mm: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "breathing_amplitude_mm",
            "chest_amplitude_mm",
            "deflection_mm_per_100mm",
            "tracker_noise_mm",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise BadInputError(f"{name} must be a finite number >= 0; got {value!r}.")


class NeedleWorld:
    """The simulated patient (thread-safe: the robot's control thread moves the needle,
    the tracker thread reads it)."""

    def __init__(self, settings: NeedleWorldSettings | None = None) -> None:
        self.settings = s = settings or NeedleWorldSettings()
        self._trace = BreathingTrace(
            BreathingModel(
                period_s=s.breathing_period_s,
                target_amplitude_mm=s.breathing_amplitude_mm,
                target_direction_lps=s.breathing_direction_lps,
                chest_amplitude_mm=s.chest_amplitude_mm,
                period_variation=0.05,
                amplitude_variation=0.05,
                start_phase=0.0,
            ),
            np.random.default_rng(s.seed),
        )
        self._rng = np.random.default_rng(s.seed + 1)
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._tissue_tip: Float64Array | None = None  # the tip in the plan's CT frame
        self._align: tuple[Float64Array, Float64Array] | None = None  # point, axis
        self._bevel: Float64Array | None = None
        self._world_tip: Float64Array | None = None  # where the robot holds the tip

    def _displacements(self, now_s: float) -> tuple[Float64Array, Float64Array]:
        if self._t0 is None:
            self._t0 = now_s
        _, signal = self._trace.state(np.array([now_s - self._t0]))
        target, chest = self._trace.displacements_lps_mm(signal)
        return target[0], chest[0]

    def landed(self, tip_world_lps_mm: Float64Array, axis_lps: Float64Array) -> None:
        """A move ended with the tip at ``tip_world_lps_mm`` along ``axis_lps``: a new
        alignment when the needle line changed (axis > 0.5° or the line > 0.5 mm away) or
        the tip is back outside the tissue."""
        axis = np.asarray(axis_lps, dtype=float) / np.linalg.norm(axis_lps)
        tip = np.asarray(tip_world_lps_mm, dtype=float)
        with self._lock:
            current = self._align
            inside = self._tissue_tip is not None
        if current is not None and inside:
            point, old = current
            offset = tip - point
            off_line = float(np.linalg.norm(offset - np.dot(offset, old) * old))
            if float(np.dot(axis, old)) > np.cos(np.radians(0.5)) and off_line < 0.5:
                return
        self.aligned(tip, axis)

    def aligned(self, point_lps_mm: Float64Array, axis_lps: Float64Array) -> None:
        """Depth counts from ``point_lps_mm`` along ``axis_lps`` (a needle line entered)."""
        axis = np.asarray(axis_lps, dtype=float) / np.linalg.norm(axis_lps)
        helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        bevel = np.cross(axis, helper)
        with self._lock:
            self._align = (np.asarray(point_lps_mm, dtype=float).copy(), axis)
            self._bevel = bevel / np.linalg.norm(bevel)
            self._tissue_tip = None

    def needle_moved(self, tip_world_lps_mm: Float64Array, now_s: float) -> None:
        """The robot moved the tip to ``tip_world_lps_mm`` (CT LPS) at ``now_s``."""
        with self._lock:
            self._world_tip = np.asarray(tip_world_lps_mm, dtype=float).copy()
            if self._align is None or self._bevel is None:
                return
            point, axis = self._align
            depth = float(np.dot(tip_world_lps_mm - point, axis))
            if depth <= 0.0:
                self._tissue_tip = None
                return
            d_target, _ = self._displacements(now_s)
            drift = self.settings.deflection_mm_per_100mm * depth / 100.0
            self._tissue_tip = tip_world_lps_mm + drift * self._bevel - d_target

    def tissue_tip_lps_mm(self) -> Float64Array | None:
        """The truth: where the tip lies in the plan's CT (None: not in tissue)."""
        with self._lock:
            return None if self._tissue_tip is None else self._tissue_tip.copy()

    def tracked(self, now_s: float) -> tuple[Float64Array | None, Float64Array]:
        """What the tracker sees at ``now_s``: the tip (in tissue it rides with it; outside,
        where the robot holds it; None before the first move) and the chest displacement,
        CT LPS mm, with noise."""
        sigma = self.settings.tracker_noise_mm / np.sqrt(3.0)
        with self._lock:
            d_target, d_chest = self._displacements(now_s)
            if self._tissue_tip is not None:
                tip: Float64Array | None = self._tissue_tip + d_target
            else:
                tip = None if self._world_tip is None else self._world_tip.copy()
            noise = self._rng.normal(0.0, sigma, 6)
        return (None if tip is None else tip + noise[:3]), d_chest + noise[3:]
