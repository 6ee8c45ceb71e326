"""Motion-compensated needle guidance: the target follows the breathing, frame by frame.

:class:`MotionGuide` is a :class:`~seldinger.navigation.guidance.Guide` that also reads the
chest reference sensor in every tracker frame, predicts where the target is now with a
:class:`~seldinger.motion.correspondence.CorrespondenceModel` (through a
:class:`~seldinger.motion.correspondence.LivePredictor`), and measures the needle against
the *moving* path: from the skin entry, displaced as the reference sensor is along its
direction of motion, to the compensated target. Each update is a
:class:`MotionGuidanceState`: the needle's errors against that path, the predicted target,
the breathing phase (inhale or exhale, fraction of the amplitude) and the gating light.

Frames: the model and the path are in the CT frame (LPS mm); the registration is
``tracker_to_ct`` (a reference-relative registration would hide the motion the model
reads). Time: the tracker's own timestamps, so that a late or bunched delivery of frames
does not distort the surrogate's velocity. Conventions: ``docs/conventions.md``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.imaging import Volume
from seldinger.motion.correspondence import (
    DEFAULT_VELOCITY_WINDOW_S,
    CorrespondenceError,
    CorrespondenceModel,
    GatingWindow,
    LivePredictor,
)
from seldinger.navigation.guidance import (
    BREACH_THRESHOLD_MM,
    STALE_AFTER_S,
    GuidanceError,
    GuidanceState,
    Guide,
    PlannedPath,
    guidance_state,
)
from seldinger.navigation.transforms import validate_rigid

__all__ = ["MotionGuidanceState", "MotionGuide"]

_BASE_FIELDS = tuple(f.name for f in dataclasses.fields(GuidanceState))


@dataclass(frozen=True, slots=True)
class MotionGuidanceState(GuidanceState):
    """A :class:`GuidanceState` against the moving path, with the breathing state.

    The inherited errors (``tip_to_target_mm``, ``lateral_deviation_mm``,
    ``angle_error_deg``, ``remaining_depth_mm``, ``progress``) are measured against the
    path from ``entry_lps_mm`` to ``target_lps_mm`` of this frame; the distance to
    critical structures is the planned (static) map's.

    Attributes
    ----------
    target_lps_mm, entry_lps_mm : tuple of float
        Compensated target (the model's prediction) and displaced skin entry, LPS mm.
    planned_target_lps_mm : tuple of float
        The plan's target (end-expiration CT), LPS mm.
    target_shift_mm : float
        Distance from the planned to the compensated target: what guidance without
        compensation would miss by (as far as the model knows).
    sample_time_s : float
        Time of the frame given to the predictor (the tracker's stamp when it has one), s.
    surrogate_mm, velocity_mm_per_s : float
        The reference sensor's displacement along its direction of motion and its rate.
    amplitude_fraction : float
        0 at end-expiration, 1 at end-inspiration of the model's phases.
    inhaling : bool
        The breathing is on its inhale half (the surrogate moves toward inspiration).
    gate_on : bool
        The gating light: the breathing is inside the gating window.
    """

    target_lps_mm: tuple[float, float, float]
    entry_lps_mm: tuple[float, float, float]
    planned_target_lps_mm: tuple[float, float, float]
    target_shift_mm: float
    sample_time_s: float
    surrogate_mm: float
    velocity_mm_per_s: float
    amplitude_fraction: float
    inhaling: bool
    gate_on: bool

    @property
    def phase(self) -> str:
        """``"inhale"`` or ``"exhale"``."""
        return "inhale" if self.inhaling else "exhale"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the guidance fields, then the target and the breathing state."""
        return {
            **GuidanceState.to_dict(self),
            "target_lps_mm": list(self.target_lps_mm),
            "entry_lps_mm": list(self.entry_lps_mm),
            "planned_target_lps_mm": list(self.planned_target_lps_mm),
            "target_shift_mm": self.target_shift_mm,
            "sample_time_s": self.sample_time_s,
            "surrogate_mm": self.surrogate_mm,
            "velocity_mm_per_s": self.velocity_mm_per_s,
            "amplitude_fraction": self.amplitude_fraction,
            "phase": self.phase,
            "gate_on": self.gate_on,
        }


class MotionGuide(Guide):
    """Live guidance against the target a correspondence model predicts (module docstring).

    Parameters
    ----------
    path : PlannedPath
        The plan, on the end-expiration CT (the model's frame), LPS mm.
    tool_tip_to_tool : array_like, shape (4, 4)
        Needle calibration.
    tracker_to_ct : array_like, shape (4, 4)
        The rigid registration of the tracker to the CT (required).
    reference_to_ct : None
        Refused: accepted only to say so clearly (see ``tracker_to_ct``).
    model : CorrespondenceModel
        Surrogate → target model of one reference sensor.
    gating : GatingWindow, optional
        Window of the gating light; default end-expiration, 25 % of the amplitude.
    window_s : float
        Velocity window of the predictor, s.
    critical_distance, breach_threshold_mm, stale_after_s, clock
        As for :class:`Guide`.

    Raises
    ------
    GuidanceError
        No ``tracker_to_ct``, or a ``reference_to_ct``.
    CorrespondenceError
        A model of more than one reference sensor.
    """

    def __init__(
        self,
        path: PlannedPath,
        tool_tip_to_tool: npt.ArrayLike,
        *,
        tracker_to_ct: npt.ArrayLike | None = None,
        reference_to_ct: npt.ArrayLike | None = None,
        model: CorrespondenceModel,
        gating: GatingWindow | None = None,
        window_s: float = DEFAULT_VELOCITY_WINDOW_S,
        critical_distance: Volume | None = None,
        breach_threshold_mm: float = BREACH_THRESHOLD_MM,
        stale_after_s: float = STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if reference_to_ct is not None or tracker_to_ct is None:
            raise GuidanceError(
                "motion compensation needs the tracker-to-CT registration (tracker_to_ct: "
                "--tracker-to-ct, or a plan registration of tracker points); relative to the "
                "reference sensor, the sensor's breathing motion, which the model reads, is "
                "invisible."
            )
        super().__init__(
            path,
            tool_tip_to_tool,
            tracker_to_ct=tracker_to_ct,
            critical_distance=critical_distance,
            breach_threshold_mm=breach_threshold_mm,
            stale_after_s=stale_after_s,
            clock=clock,
        )
        if model.n_sensors != 1:
            raise CorrespondenceError(
                f"The correspondence model reads {model.n_sensors} reference sensors; live "
                "guidance follows one (--reference). Fit the model from that sensor alone."
            )
        self.model = model
        self.predictor = LivePredictor(model, window_s, gating=gating)
        self.gating = self.predictor.gating
        self._planned_entry = np.asarray(path.entry_lps_mm, dtype=np.float64)
        self._planned_target = path.target_lps_mm

    def update(
        self,
        tool_to_tracker: npt.ArrayLike,
        reference_to_tracker: npt.ArrayLike | None = None,
        timestamp_s: float | None = None,
        tracker_timestamp_s: float | None = None,
    ) -> MotionGuidanceState:
        """Guidance for one frame, against the target predicted from the reference sensor.

        Parameters
        ----------
        tool_to_tracker, reference_to_tracker : array_like, shape (4, 4)
            Needle and chest reference sensor poses of the same frame (both required).
        timestamp_s : float, optional
            Receive time on the guide's clock (watchdog), default now.
        tracker_timestamp_s : float, optional
            The frame's acquisition time from the tracker (the predictor's clock); the
            receive time when absent.

        Raises
        ------
        GuidanceError
            The reference pose is missing.
        """
        if reference_to_tracker is None:
            raise GuidanceError(
                "reference_to_tracker is missing: motion compensation reads the chest "
                "reference sensor in every frame. Skip frames where it is not visible."
            )
        base = super().update(tool_to_tracker, None, timestamp_s)
        reference = validate_rigid(reference_to_tracker, "reference_to_tracker")
        reference_lps_mm = self.registration[:3, :3] @ reference[:3, 3] + self.registration[:3, 3]
        t = base.timestamp_s
        if tracker_timestamp_s is not None and math.isfinite(tracker_timestamp_s):
            t = tracker_timestamp_s  # one clock for the whole stream: the tracker's
        estimate = self.predictor.update(t, reference_lps_mm)
        model = self.model
        # the skin entry moves as the reference sensor does, from its end-expiration position
        skin_shift = (estimate.surrogate_mm - model.surrogate_range_mm[0]) * model.surrogate_axis
        entry = self._planned_entry + skin_shift
        target = estimate.target_lps_mm
        moving = PlannedPath(
            (float(entry[0]), float(entry[1]), float(entry[2])),
            (float(target[0]), float(target[1]), float(target[2])),
        )
        state = guidance_state(
            base.tip_lps_mm, base.direction_lps, moving, None, self.breach_threshold_mm, t
        )
        values = {name: getattr(state, name) for name in _BASE_FIELDS}
        for name in ("timestamp_s", "distance_to_critical_mm", "outside_critical_map", "breach"):
            values[name] = getattr(base, name)
        return MotionGuidanceState(
            **values,
            target_lps_mm=moving.target_lps_mm,
            entry_lps_mm=moving.entry_lps_mm,
            planned_target_lps_mm=self._planned_target,
            target_shift_mm=math.dist(moving.target_lps_mm, self._planned_target),
            sample_time_s=t,
            surrogate_mm=estimate.surrogate_mm,
            velocity_mm_per_s=estimate.velocity_mm_per_s,
            amplitude_fraction=estimate.amplitude_fraction,
            inhaling=estimate.inhaling,
            gate_on=estimate.gate_on,
        )
