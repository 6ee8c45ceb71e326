"""A robotic needle session: align → insert (gated) → confirm → adjust, for each needle in
turn, logged as JSON lines.

The controller side of the one-session biopsy + ablation workflow (the steps and what
comes after each confirmation are chosen by :mod:`seldinger.workflow.robot_session`):

1. **Align**: the robot moves the needle tip to ``standoff_mm`` outside the skin entry on
   the planned line (guide axis from entry toward the tip goal).
2. **Insert** to depth along that line. With a breathing gate the move runs only while the
   chest is near end-exhale (the phase of the planning CT): when the gate closes mid-move
   the controller pauses the robot (``MANUAL``, which halts it) and resumes
   (``TARGETING`` → ``MOVE_TO_TARGET``) at the next exhale.
3. **Confirm**: the tracked tip, averaged over ``confirm_s`` at the deepest exhale
   samples, is compared with the goal (3-D, lateral and depth errors).
4. **Adjust** when the error exceeds ``tolerance_mm``: back to the standoff, aim against
   the lateral miss (needle deflection is systematic), insert again; at most
   ``max_adjustments`` times (Epione reported 0.4 adjustments per tumour).

Every state change, command, acknowledgement, gate event and measurement is a line of
the session log (``SessionLog``): ``{"t_s", "utc", "event", ...}``.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, ExitCode, PeerError, SeldingerError
from seldinger.imaging import Volume
from seldinger.navigation.igtl import IgtlClient, Received, TransformMessage

from .kinematics import frame_from_axis
from .needle_ct import needle_in_ct
from .needle_world import CHEST_REFERENCE, NEEDLE_TIP
from .protocol import (
    MOTION_STOPPED,
    TARGET_REACHED,
    RobotController,
    RobotState,
)

__all__ = [
    "BreathingGate",
    "NeedleGoal",
    "NeedleResult",
    "RobotSession",
    "SessionLog",
    "SessionSettings",
    "SessionStoppedError",
    "TrackerFeed",
]

Float64Array = npt.NDArray[np.float64]


class SessionLog:
    """JSON lines, one per event, flushed as written (a crash keeps what happened).

    ``path`` None keeps the records in memory only (:attr:`records` holds them either way).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.records: list[dict[str, Any]] = []
        self._start_s = time.monotonic()
        self._file: IO[str] | None = None
        if self.path is not None:
            self._file = self.path.open("x", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event (numbers rounded to 0.001; arrays as lists)."""
        record = {
            "t_s": round(time.monotonic() - self._start_s, 3),
            "utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            **{k: _plain(v) for k, v in fields.items()},
        }
        self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        return record

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.round(value.astype(float), 3).tolist()
    if isinstance(value, float | np.floating):
        return round(float(value), 3)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class TrackerFeed:
    """The tracked needle tip and chest reference (CT LPS mm) from an OpenIGTLink stream.

    A reader thread keeps the recent samples (``history_s``) of ``tip_device`` and
    ``chest_device`` (TRANSFORMs whose translation is the point). ``tracker_to_ct`` (rigid
    4 x 4, the tracker's registration to the CT) takes the points from the tracker's frame
    into the CT's; None when the tracker already reports CT LPS mm (the simulator).

    ``tip_to_sensor`` (rigid 4 x 4, a pivot calibration's ``tool_tip_to_tool``) makes
    ``tip_device`` a sensor on the needle: the tip is then ``pose @ tip_to_sensor``'s
    translation, not the pose's own. None: the device reports the tip itself.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tip_device: str = NEEDLE_TIP,
        chest_device: str = CHEST_REFERENCE,
        history_s: float = 30.0,
        tracker_to_ct: Float64Array | None = None,
        tip_to_sensor: Float64Array | None = None,
    ) -> None:
        self._to_ct = None if tracker_to_ct is None else np.asarray(tracker_to_ct, dtype=float)
        self._tip_in_sensor = (
            None if tip_to_sensor is None else np.asarray(tip_to_sensor, dtype=float)[:3, 3]
        )
        self._lock = threading.Lock()
        self._names = {tip_device: "tip", chest_device: "chest"}
        size = int(history_s * 200)
        self._samples: dict[str, deque[tuple[float, Float64Array]]] = {
            "tip": deque(maxlen=size),
            "chest": deque(maxlen=size),
        }
        self._client = IgtlClient(host, port, on_message=self._on_message)

    def _on_message(self, frame: Received) -> None:
        message = frame.message
        if frame.ok and isinstance(message, TransformMessage):
            key = self._names.get(message.device_name)
            if key is not None:
                point = message.matrix[:3, 3].copy()
                if key == "tip" and self._tip_in_sensor is not None:
                    point += message.matrix[:3, :3] @ self._tip_in_sensor
                if self._to_ct is not None:
                    point = self._to_ct[:3, :3] @ point + self._to_ct[:3, 3]
                with self._lock:
                    self._samples[key].append((time.monotonic(), point))

    def samples(self, key: str, since_s: float) -> tuple[Float64Array, Float64Array]:
        """Times (monotonic s) and points (n, 3) of ``key`` ("tip" or "chest") since then."""
        with self._lock:
            items = [(t, p) for t, p in self._samples[key] if t >= since_s]
        if not items:
            return np.zeros(0), np.zeros((0, 3))
        return np.array([t for t, _ in items]), np.array([p for _, p in items])

    def close(self) -> None:
        """Disconnect (idempotent)."""
        self._client.close()


@dataclass
class BreathingGate:
    """Open near end-exhale: the chest signal within ``window`` of its range from exhale.

    :meth:`learn` takes the chest samples of a few breaths: the motion direction (first
    principal axis), the exhale end (where the chest dwells longest, as in Lujan's cycle)
    and the range. ``signal`` is 0 at exhale and 1 at inhale.
    """

    window: float = 0.1
    direction: Float64Array = field(default_factory=lambda: np.zeros(3))
    exhale: float = 0.0
    span_mm: float = 0.0

    def learn(self, chest_lps_mm: Float64Array) -> None:
        """Fit the gate to chest samples (n, 3) covering at least one breath."""
        points = np.asarray(chest_lps_mm, dtype=float)
        if len(points) < 20:
            raise PeerError(
                f"the breathing gate needs chest samples of whole breaths; got {len(points)}. "
                "Check that the tracker streams the chest reference."
            )
        centred = points - points.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projection = centred @ vt[0]
        lo, hi = float(projection.min()), float(projection.max())
        self.span_mm = hi - lo
        # Exhale is the end the signal dwells at: more samples in the bottom fifth.
        near_lo = np.count_nonzero(projection < lo + 0.2 * self.span_mm)
        near_hi = np.count_nonzero(projection > hi - 0.2 * self.span_mm)
        self.direction = vt[0] if near_lo >= near_hi else -vt[0]
        self.exhale = float((points @ self.direction).min())

    def signal(self, chest_lps_mm: Float64Array) -> Float64Array:
        """0 at exhale, 1 at inhale (n,)."""
        if self.span_mm <= 0:
            return np.zeros(len(np.atleast_2d(chest_lps_mm)))
        values = np.atleast_2d(chest_lps_mm) @ self.direction
        return np.asarray((values - self.exhale) / self.span_mm, dtype=float)

    def is_open(self, chest_lps_mm: Float64Array) -> bool:
        """Whether the gate is open for this chest position."""
        return bool(self.signal(chest_lps_mm)[0] <= self.window)


@dataclass(frozen=True)
class SessionSettings:
    """How the session runs (module docstring)."""

    standoff_mm: float = 5.0
    tolerance_mm: float = 2.0
    max_adjustments: int = 2
    confirm_s: float = 1.0
    move_timeout_s: float = 60.0
    gate_learn_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("standoff_mm", "tolerance_mm", "confirm_s", "move_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise BadInputError(f"{name} must be a finite number > 0; got {value!r}.")
        if not 0 <= self.max_adjustments <= 5:
            raise BadInputError(f"max_adjustments must be 0-5; got {self.max_adjustments}.")


@dataclass(frozen=True)
class NeedleGoal:
    """One needle to place: a name, the skin entry and the tip goal (LPS mm)."""

    name: str
    entry_lps_mm: tuple[float, float, float]
    tip_lps_mm: tuple[float, float, float]

    @property
    def axis(self) -> Float64Array:
        """Unit insertion direction (entry → tip)."""
        d = np.subtract(self.tip_lps_mm, self.entry_lps_mm)
        return np.asarray(d / np.linalg.norm(d), dtype=float)


@dataclass(frozen=True)
class NeedleResult:
    """Where a needle ended, as confirmed: errors against the goal (mm)."""

    goal: NeedleGoal
    measured_tip_lps_mm: tuple[float, float, float] | None
    error_mm: float | None
    lateral_error_mm: float | None
    depth_error_mm: float | None  # + beyond the goal along the axis
    adjustments: int
    gated: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.goal.name,
            "entry_lps_mm": list(self.goal.entry_lps_mm),
            "planned_tip_lps_mm": list(self.goal.tip_lps_mm),
            "measured_tip_lps_mm": None
            if self.measured_tip_lps_mm is None
            else list(self.measured_tip_lps_mm),
            "error_mm": self.error_mm,
            "lateral_error_mm": self.lateral_error_mm,
            "depth_error_mm": self.depth_error_mm,
            "adjustments": self.adjustments,
            "gated": self.gated,
            "seconds": round(self.seconds, 2),
        }


class RobotSession:
    """Drives a robot through the protocol for each needle (module docstring).

    Parameters
    ----------
    controller : RobotController
    log : SessionLog
    tracker : TrackerFeed, optional
        Without it there is no confirmation (the robot's own pose is reported) and no gate.
    gate : BreathingGate, optional
        Gated insertion (learnt from the tracker's chest samples on :meth:`start`).
    settings : SessionSettings
    ask : callable, optional
        Asked before every motion with a sentence; False stops the session (``--auto``
        passes None: no questions).
    confirm_ct : callable, optional
        Gives the confirmation CT (in the plan's frame) after a needle is inserted; the tip
        is then found in it (:func:`~seldinger.robot.needle_ct.needle_in_ct`) instead of
        read from the tracker.
    """

    def __init__(
        self,
        controller: RobotController,
        log: SessionLog,
        *,
        tracker: TrackerFeed | None = None,
        gate: BreathingGate | None = None,
        settings: SessionSettings | None = None,
        ask: Callable[[str], bool] | None = None,
        confirm_ct: Callable[[NeedleGoal], Volume] | None = None,
    ) -> None:
        self.controller = controller
        self._confirm_ct = confirm_ct
        self.log = log
        self.tracker = tracker
        self.gate = gate
        self.settings = settings or SessionSettings()
        self._ask = ask
        self.state: RobotState | None = None

    # --- protocol steps ------------------------------------------------------------------

    def command(self, state: RobotState) -> None:
        """Ask for ``state`` and log the acknowledgement (a refusal raises)."""
        ack = self.controller.command(state)
        self.state = state
        self.log.write("state", state=state.value, ack=ack.status_string)

    def start(self, robot_to_ct: Float64Array) -> None:
        """START_UP → PLANNING → CALIBRATION (calibration sent) → TARGETING; learn the gate."""
        for state in (RobotState.START_UP, RobotState.PLANNING, RobotState.CALIBRATION):
            self.command(state)
        self.controller.send_calibration(robot_to_ct)
        self.log.write("calibration", robot_to_ct=np.asarray(robot_to_ct))
        self.command(RobotState.TARGETING)
        if self.gate is not None:
            if self.tracker is None:
                raise BadInputError("a breathing gate needs a tracker (--tracker HOST:PORT).")
            since = time.monotonic()
            self.log.write("gate_learning", seconds=self.settings.gate_learn_s)
            time.sleep(self.settings.gate_learn_s)
            _, chest = self.tracker.samples("chest", since)
            self.gate.learn(chest)
            self.log.write(
                "gate_learnt",
                span_mm=self.gate.span_mm,
                window=self.gate.window,
                direction_lps=self.gate.direction,
            )

    def finish(self, reason: str = "done") -> None:
        """Back to PLANNING (the robot holds still); log the end."""
        try:
            if self.state not in (RobotState.PLANNING, RobotState.EMERGENCY):
                if self.state is RobotState.MOVE_TO_TARGET:
                    self.command(RobotState.MANUAL)
                self.command(RobotState.PLANNING)
        finally:
            self.log.write("end", reason=reason)

    def place(self, goal: NeedleGoal) -> NeedleResult:
        """Align, insert, confirm and adjust one needle (module docstring)."""
        clock = time.monotonic()
        self.log.write(
            "needle", name=goal.name, entry_lps_mm=goal.entry_lps_mm, tip_lps_mm=goal.tip_lps_mm
        )
        aim = np.asarray(goal.tip_lps_mm, dtype=float)
        entry = np.asarray(goal.entry_lps_mm, dtype=float)
        adjustments = 0
        while True:
            axis = (aim - entry) / np.linalg.norm(aim - entry)
            self._confirm_step(f"align the robot on {goal.name}")
            self._move(frame_from_axis(axis, entry - self.settings.standoff_mm * axis), "align")
            self._confirm_step(f"insert {goal.name} to {np.linalg.norm(aim - entry):.1f} mm")
            self._move(frame_from_axis(axis, aim), "insert", gated=self.gate is not None)
            measured = self._confirm(goal)
            if measured is None:
                break
            found = self._result(goal, measured, adjustments, time.monotonic() - clock)
            self.log.write(
                "confirm",
                name=goal.name,
                measured_tip_lps_mm=measured,
                error_mm=found.error_mm,
                lateral_error_mm=found.lateral_error_mm,
                depth_error_mm=found.depth_error_mm,
            )
            assert found.error_mm is not None
            if (
                found.error_mm <= self.settings.tolerance_mm
                or adjustments >= self.settings.max_adjustments
            ):
                return found
            adjustments += 1
            # aim against the miss: deflection and depth are systematic
            aim = aim - (measured - np.asarray(goal.tip_lps_mm))
            self.log.write("adjust", name=goal.name, number=adjustments, new_aim_lps_mm=aim)
        return self._result(goal, measured, adjustments, time.monotonic() - clock)

    def _result(
        self, goal: NeedleGoal, measured: Float64Array | None, adjustments: int, seconds: float
    ) -> NeedleResult:
        if measured is None:
            return NeedleResult(goal, None, None, None, None, adjustments, False, seconds)
        error = measured - np.asarray(goal.tip_lps_mm)
        along = float(np.dot(error, goal.axis))
        return NeedleResult(
            goal=goal,
            measured_tip_lps_mm=(float(measured[0]), float(measured[1]), float(measured[2])),
            error_mm=round(float(np.linalg.norm(error)), 3),
            lateral_error_mm=round(float(np.linalg.norm(error - along * goal.axis)), 3),
            depth_error_mm=round(along, 3),
            adjustments=adjustments,
            gated=self.gate is not None,
            seconds=seconds,
        )

    def _confirm_step(self, sentence: str) -> None:
        if self._ask is not None and not self._ask(sentence):
            self.log.write("declined", step=sentence)
            raise SessionStoppedError(f"stopped by the operator before: {sentence}")

    # --- motion ---------------------------------------------------------------------------

    def _move(self, pose: Float64Array, what: str, gated: bool = False) -> None:
        """One move to ``pose`` (CT LPS): paused outside the gate when ``gated``."""
        if self.state is not RobotState.TARGETING:
            self.command(RobotState.TARGETING)
        self.controller.send_target(pose)
        self.log.write("target", move=what, tip_lps_mm=pose[:3, 3], axis_lps=pose[:3, 2])
        deadline = time.monotonic() + self.settings.move_timeout_s
        while time.monotonic() < deadline:
            if gated:
                self._wait_for_gate(deadline)
            self.command(RobotState.MOVE_TO_TARGET)
            while time.monotonic() < deadline:
                reached = self.controller.poll_status(TARGET_REACHED, 0.01)
                if reached is not None:
                    self.log.write("reached", move=what, robot=reached.status_string)
                    self.command(RobotState.TARGETING)
                    return
                stopped = self.controller.poll_status(MOTION_STOPPED, 0.0)
                if stopped is not None:
                    raise PeerError(f"the robot stopped the {what} move: {stopped.status_string}")
                if gated and not self._gate_open():
                    self.command(RobotState.MANUAL)  # halts the move
                    self.controller.poll_status(MOTION_STOPPED, 0.2)
                    self.log.write("gate_closed", move=what)
                    self.command(RobotState.TARGETING)
                    break
        raise PeerError(
            f"the {what} move did not finish within {self.settings.move_timeout_s:g} s."
        )

    def _gate_open(self) -> bool:
        """The gate on the mean of the last 0.1 s of chest samples (tracker noise would
        otherwise flicker it at the edge of the window)."""
        assert self.gate is not None and self.tracker is not None
        _, chest = self.tracker.samples("chest", time.monotonic() - 0.1)
        return len(chest) > 0 and self.gate.is_open(chest.mean(axis=0))

    def _wait_for_gate(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._gate_open():
                self.log.write("gate_open")
                return
            time.sleep(0.005)
        raise PeerError("the breathing gate did not open before the move's time ran out.")

    def _confirm(self, goal: NeedleGoal) -> Float64Array | None:
        """The tip found in the confirmation CT, else the tracked tip: the mean of the
        samples at the deepest exhale within ``confirm_s`` (or two breaths when gated);
        None without either."""
        if self._confirm_ct is not None:
            found = needle_in_ct(self._confirm_ct(goal), goal.entry_lps_mm, goal.tip_lps_mm)
            self.log.write(
                "confirm_ct", name=goal.name, tip_lps_mm=found.tip_lps_mm, voxels=found.n_voxels
            )
            return np.asarray(found.tip_lps_mm, dtype=float)
        if self.tracker is None:
            self.log.write(
                "confirm_skipped", reason="no tracker: the robot's own pose is no confirmation"
            )
            return None
        span_s = self.settings.confirm_s
        if self.gate is not None:
            span_s = max(span_s, self.settings.gate_learn_s / 2.0)
        since = time.monotonic()
        time.sleep(span_s)
        times, tips = self.tracker.samples("tip", since)
        if len(tips) < 3:
            raise PeerError(
                f"the tracker sent {len(tips)} needle-tip samples in {span_s:g} s; check it streams."
            )
        if self.gate is not None:
            chest_t, chest = self.tracker.samples("chest", since)
            signal = np.interp(times, chest_t, self.gate.signal(chest))
            keep = signal <= np.quantile(signal, 0.2)
            tips = tips[keep]
        return np.asarray(np.mean(tips, axis=0), dtype=float)


class SessionStoppedError(SeldingerError):
    """The operator declined a step; the robot is left in PLANNING."""

    exit_code = ExitCode.INTERRUPTED
