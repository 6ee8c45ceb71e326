"""A simulated robot that speaks the robot protocol (:mod:`.protocol`) over OpenIGTLink.

It runs the state machine, answers every message, moves its guide toward a target at a
constant speed (motion time proportional to distance), lands with repeatability noise,
refuses targets beyond its reach (joint and travel limits abstracted as a sphere of
``max_reach_mm`` about its base), and streams ``CURRENT_POSITION``.

Threads: one control thread owns the whole robot state (state, calibration, target,
pose, motion); it reads messages from the server's queue with a timeout of one control
tick and advances the motion each tick. Other threads read the state through the
properties, under ``_lock``. The watchdog runs on the control thread every tick: a
move stops at once on STOP, EMERGENCY or MANUAL, and within one tick (5 ms by default)
of the controller's connection closing (its reader thread sees the end of stream at
once), so well inside the 100 ms the protocol requires.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.navigation.igtl import (
    IgtlServer,
    LinkClosedError,
    Received,
    StatusCode,
    StatusMessage,
    StringMessage,
    TransformMessage,
)
from seldinger.navigation.transforms import invert_rigid, validate_rigid

from .needle_world import CHEST_REFERENCE, NEEDLE_SENSOR, NEEDLE_TIP, SENSOR_TIP_MM, NeedleWorld
from .protocol import (
    ACK_PREFIX,
    CALIBRATION_PREFIX,
    COMMAND_PREFIX,
    CURRENT_POSITION,
    MOTION_STOPPED,
    TARGET_PREFIX,
    TARGET_REACHED,
    RobotState,
    is_legal,
    split_device_name,
)

__all__ = ["SimulatedRobot", "SimulatedRobotSettings", "StopEvent"]

logger = logging.getLogger(__name__)

#: Period of the simulated tracker's stream (40 Hz, an EM tracker's usual rate).
TRACKER_INTERVAL_S = 0.025
#: Roll of the hub sensor about the shaft (degrees): its x and y axes follow no CT axis.
SENSOR_ROLL_DEG = 35.0

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SimulatedRobotSettings:
    """How the simulated robot behaves.

    Parameters
    ----------
    max_reach_mm : float
        Targets farther than this from the robot base origin are refused (``OutOfReach``).
    speed_mm_per_s : float
        Guide speed while moving; motion time = distance / speed.
    repeatability_mm : float
        RMS 3-D error of where a move ends (isotropic Gaussian).
    latency_s : float
        Processing delay before each answer (blocks the control thread: keep it ≪ 0.1 s).
    tick_s : float
        Control period, seconds: motion and watchdog resolution.
    stream_interval_s : float
        Period of ``CURRENT_POSITION`` messages.
    """

    max_reach_mm: float = 400.0
    speed_mm_per_s: float = 50.0
    repeatability_mm: float = 0.1
    latency_s: float = 0.0
    tick_s: float = 0.005
    stream_interval_s: float = 0.05

    def __post_init__(self) -> None:
        for name in ("max_reach_mm", "speed_mm_per_s", "tick_s", "stream_interval_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise BadInputError(f"{name} must be a finite number > 0; got {value!r}.")
        for name in ("repeatability_mm", "latency_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise BadInputError(f"{name} must be a finite number >= 0; got {value!r}.")


@dataclass(frozen=True)
class StopEvent:
    """A move that ended early: when (``time.monotonic()``), why, and where (robot mm)."""

    monotonic_s: float
    reason: str
    position_robot_mm: tuple[float, float, float]


class SimulatedRobot:
    """A robot server on ``host:port`` (0 picks a free port, see :attr:`port`).

    Parameters
    ----------
    host, port : str, int
        Where to listen.
    settings : SimulatedRobotSettings, optional
        Reach, speed, noise, latency, control period.
    rng : numpy.random.Generator, optional
        Source of the repeatability noise (default: seeded 0, reproducible).
    world : NeedleWorld, optional
        The patient and needle (breathing, deflection): with it the robot's moves drive
        the needle and a tracker stream (``NeedleTip``, ``ChestReference`` in CT LPS mm)
        is served on ``tracker_port``.
    tracker_port : int, optional
        Where the tracker listens (0: a free port, see :attr:`tracker_port`); needs ``world``.
    tracker_to_ct : ndarray (4, 4), optional
        Where the simulated tracker stands: its points are sent in its own frame, the CT's
        points mapped by the inverse of this rigid transform (a session then needs this
        registration, as with a real tracker). None: the tracker reports CT LPS mm.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        settings: SimulatedRobotSettings | None = None,
        rng: np.random.Generator | None = None,
        world: NeedleWorld | None = None,
        tracker_port: int | None = None,
        tracker_to_ct: Float64Array | None = None,
    ) -> None:
        self.settings = settings or SimulatedRobotSettings()
        self.world = world
        self._ct_to_tracker = (
            None if tracker_to_ct is None else np.linalg.inv(np.asarray(tracker_to_ct, float))
        )
        self._tracker = (
            IgtlServer(host, tracker_port or 0)
            if world is not None and tracker_port is not None
            else None
        )
        self._last_track_s = 0.0
        self._rng = rng or np.random.default_rng(0)
        self._lock = threading.Lock()
        # Written by the control thread only, under _lock; read by any thread under _lock.
        self._state = RobotState.START_UP
        self._pose_robot = np.eye(4)  # guide_to_robot
        self._robot_to_ct: Float64Array | None = None
        self._target_robot: Float64Array | None = None
        self._moving = False
        self._stops: list[StopEvent] = []
        # Control thread only.
        self._controller_peer: str | None = None
        self._last_stream_s = 0.0
        self._idle = threading.Event()
        self._idle.set()
        self._closing = threading.Event()
        self._server = IgtlServer(host, port)
        self._thread = threading.Thread(target=self._run, name="robot-control", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The TCP port listened on."""
        return self._server.port

    @property
    def tracker_port(self) -> int | None:
        """The simulated tracker's TCP port (None without one)."""
        return None if self._tracker is None else self._tracker.port

    @property
    def state(self) -> RobotState:
        """The current state."""
        with self._lock:
            return self._state

    @property
    def moving(self) -> bool:
        """True while a move is under way."""
        with self._lock:
            return self._moving

    @property
    def position_robot_mm(self) -> Float64Array:
        """The guide tip in the robot base frame, mm."""
        with self._lock:
            return self._pose_robot[:3, 3].copy()

    @property
    def stop_events(self) -> list[StopEvent]:
        """Moves that ended early, oldest first."""
        with self._lock:
            return list(self._stops)

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Wait until no move is under way; False if one still is after ``timeout_s``."""
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        """Stop the control thread and the server (idempotent)."""
        self._closing.set()
        self._server.close()
        if self._tracker is not None:
            self._tracker.close()
        self._thread.join()

    def __enter__(self) -> SimulatedRobot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- control thread --------------------------------------------------------------------

    def _run(self) -> None:
        tick_s = self.settings.tick_s
        next_tick_s = time.monotonic()
        while not self._closing.is_set():
            try:
                frame = self._server.receive(timeout_s=max(0.0, next_tick_s - time.monotonic()))
            except TimeoutError:
                frame = None
            except LinkClosedError:
                return
            if frame is not None:
                self._handle(frame)
            now_s = time.monotonic()
            if now_s >= next_tick_s:
                self._tick(now_s, tick_s)
                next_tick_s = now_s + tick_s

    def _tick(self, now_s: float, dt_s: float) -> None:
        if self._moving:
            # Watchdog: the controller that started the move must still be connected.
            if self._controller_peer not in self._server.clients:
                self._halt(now_s, "controller connection lost", RobotState.STOP)
            else:
                self._advance(dt_s)
        if now_s - self._last_stream_s >= self.settings.stream_interval_s:
            self._last_stream_s = now_s
            with self._lock:
                pose = self._pose_robot.copy()
                if self._robot_to_ct is not None:
                    pose = self._robot_to_ct @ pose
            self._server.send(TransformMessage(device_name=CURRENT_POSITION, matrix=pose))
        if self._tracker is not None and now_s - self._last_track_s >= TRACKER_INTERVAL_S:
            self._last_track_s = now_s
            self._stream_tracker(now_s)

    def _stream_tracker(self, now_s: float) -> None:
        assert self.world is not None and self._tracker is not None
        tip, chest = self.world.tracked(now_s)
        poses: list[tuple[str, Float64Array]] = []
        for name, point in ((NEEDLE_TIP, tip), (CHEST_REFERENCE, chest)):
            if point is not None:
                matrix = np.eye(4)
                matrix[:3, 3] = point
                poses.append((name, matrix))
        with self._lock:
            pose_robot = self._pose_robot.copy()
        held = self._world_tip(pose_robot)
        if tip is not None and held is not None:
            poses.append((NEEDLE_SENSOR, _sensor_pose(tip, held[1])))
        for name, matrix in poses:
            if self._ct_to_tracker is not None:
                matrix = self._ct_to_tracker @ matrix
            self._tracker.send(TransformMessage(device_name=name, matrix=matrix))

    def _world_tip(self, pose_robot: Float64Array) -> tuple[Float64Array, Float64Array] | None:
        """The tip and axis in CT LPS of a robot-frame pose (None before calibration)."""
        with self._lock:
            robot_to_ct = self._robot_to_ct
        if robot_to_ct is None:
            return None
        pose = robot_to_ct @ pose_robot
        return pose[:3, 3], pose[:3, 2]

    def _advance(self, dt_s: float) -> None:
        assert self._target_robot is not None
        goal = self._target_robot[:3, 3]
        with self._lock:
            position = self._pose_robot[:3, 3]
        step = goal - position
        distance = float(np.linalg.norm(step))
        travel = self.settings.speed_mm_per_s * dt_s
        if distance > travel:
            with self._lock:
                self._pose_robot[:3, 3] = position + step * (travel / distance)
                if self.world is not None:
                    # the guide turns to the target's axis as it sets off (a rotation
                    # stage is fast beside the travel)
                    self._pose_robot[:3, :3] = self._target_robot[:3, :3]
                pose = self._pose_robot.copy()
            self._move_needle(pose)
            return
        sigma = self.settings.repeatability_mm / np.sqrt(3.0)
        landed = self._target_robot.copy()
        landed[:3, 3] += self._rng.normal(0.0, sigma, 3)
        with self._lock:
            self._pose_robot = landed
            self._moving = False
        self._move_needle(landed)
        if self.world is not None:
            placed = self._world_tip(landed)
            if placed is not None:
                self.world.landed(*placed)
        self._idle.set()
        miss_mm = float(np.linalg.norm(landed[:3, 3] - goal))
        self._server.send(
            StatusMessage(device_name=TARGET_REACHED, status_string=f"miss {miss_mm:.3f} mm")
        )

    def _move_needle(self, pose_robot: Float64Array) -> None:
        if self.world is None:
            return
        placed = self._world_tip(pose_robot)
        if placed is not None:
            self.world.needle_moved(placed[0], time.monotonic())

    def _halt(self, now_s: float, reason: str, state: RobotState | None = None) -> None:
        with self._lock:
            self._moving = False
            position = self._pose_robot[:3, 3]
            self._stops.append(StopEvent(now_s, reason, (position[0], position[1], position[2])))
            if state is not None:
                self._state = state
        self._idle.set()
        logger.warning("robot motion stopped: %s", reason)
        self._server.send(
            StatusMessage(
                device_name=MOTION_STOPPED, code=StatusCode.OK, status_string=reason[:200]
            )
        )

    def _handle(self, frame: Received) -> None:
        if not frame.ok:
            logger.warning("damaged message from %s: %s", frame.peer, frame.error)
            return
        message = frame.message
        coded = split_device_name(message.device_name)
        if coded is None or coded[0] == ACK_PREFIX:
            return
        prefix, code = coded
        self._controller_peer = frame.peer
        if self.settings.latency_s:
            time.sleep(self.settings.latency_s)
        if prefix == COMMAND_PREFIX and isinstance(message, StringMessage):
            reply = self._on_command(message.text.strip())
        elif prefix == CALIBRATION_PREFIX and isinstance(message, TransformMessage):
            reply = self._on_calibration(message.matrix)
        elif prefix == TARGET_PREFIX and isinstance(message, TransformMessage):
            reply = self._on_target(message.matrix)
        else:
            reply = _refusal(
                StatusCode.UNKNOWN_INSTRUCTION,
                "UnknownMessage",
                f"{message.type_name} {message.device_name} is not a message of this protocol",
            )
        ack = StatusMessage(
            device_name=ACK_PREFIX + code,
            code=reply.code,
            error_name=reply.error_name,
            status_string=reply.status_string,
        )
        try:
            self._server.send(ack, peer=frame.peer)
        except KeyError:
            logger.info("controller %s left before its acknowledgement", frame.peer)

    def _on_command(self, text: str) -> StatusMessage:
        try:
            requested = RobotState(text)
        except ValueError:
            return _refusal(
                StatusCode.UNKNOWN_INSTRUCTION,
                "UnknownState",
                f"unknown state {text!r}; one of {[s.value for s in RobotState]}",
            )
        current = self._state
        if not is_legal(current, requested):
            return _refusal(
                StatusCode.NOT_READY,
                "IllegalTransition",
                f"{current.value} -> {requested.value} is not allowed",
            )
        if requested is RobotState.TARGETING and self._robot_to_ct is None:
            return _refusal(
                StatusCode.NOT_READY, "NoCalibration", "TARGETING needs a calibration first"
            )
        if requested is RobotState.MOVE_TO_TARGET and self._target_robot is None:
            return _refusal(
                StatusCode.NOT_READY, "NoTarget", "MOVE_TO_TARGET needs a reachable target"
            )
        if self._moving and requested is not RobotState.MOVE_TO_TARGET:
            self._halt(time.monotonic(), f"{requested.value} during a move")
        with self._lock:
            self._state = requested
            if requested is RobotState.MOVE_TO_TARGET:
                self._moving = True
                self._idle.clear()
            if requested is RobotState.START_UP:
                self._target_robot = None
        return StatusMessage(status_string=requested.value)

    def _on_calibration(self, matrix: Float64Array) -> StatusMessage:
        if self._state is not RobotState.CALIBRATION:
            return _refusal(
                StatusCode.NOT_READY,
                "IllegalTransition",
                f"calibration is accepted in CALIBRATION only; the robot is in {self._state.value}",
            )
        try:
            robot_to_ct = validate_rigid(matrix, "robot_to_ct")
        except BadInputError as err:
            return _refusal(StatusCode.CONFIG_ERROR, "NotRigid", str(err)[:200])
        with self._lock:
            self._robot_to_ct = robot_to_ct
            self._target_robot = None
        return StatusMessage(status_string=self._state.value)

    def _on_target(self, matrix: Float64Array) -> StatusMessage:
        if self._state is not RobotState.TARGETING or self._robot_to_ct is None:
            return _refusal(
                StatusCode.NOT_READY,
                "IllegalTransition",
                f"a target is accepted in TARGETING only; the robot is in {self._state.value}",
            )
        try:
            target_robot = invert_rigid(self._robot_to_ct) @ validate_rigid(matrix, "target")
        except BadInputError as err:
            return _refusal(StatusCode.CONFIG_ERROR, "NotRigid", str(err)[:200])
        distance_mm = float(np.linalg.norm(target_robot[:3, 3]))
        if distance_mm > self.settings.max_reach_mm:
            return _refusal(
                StatusCode.CONFIG_ERROR,
                "OutOfReach",
                f"target {distance_mm:.1f} mm from the robot base; reach "
                f"{self.settings.max_reach_mm:g} mm",
            )
        with self._lock:
            self._target_robot = target_robot
        return StatusMessage(status_string=self._state.value)


def _sensor_pose(tip_lps_mm: Float64Array, axis_lps: Float64Array) -> Float64Array:
    """The hub sensor's pose (sensor to CT) for a needle tip on a shaft along ``axis_lps``.

    Its z axis runs along the shaft toward the tip, its x axis is rolled
    :data:`SENSOR_ROLL_DEG` about it, and :data:`SENSOR_TIP_MM` in its frame is the tip.
    """
    z = np.asarray(axis_lps, dtype=float) / np.linalg.norm(axis_lps)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x0 = np.cross(helper, z)
    x0 /= np.linalg.norm(x0)
    y0 = np.cross(z, x0)
    roll = np.radians(SENSOR_ROLL_DEG)
    x = np.cos(roll) * x0 + np.sin(roll) * y0
    rotation = np.column_stack([x, np.cross(z, x), z])
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = np.asarray(tip_lps_mm, dtype=float) - rotation @ np.asarray(SENSOR_TIP_MM)
    return pose


def _refusal(code: StatusCode, error_name: str, text: str) -> StatusMessage:
    return StatusMessage(code=code, error_name=error_name, status_string=text)
