"""The robot protocol over real loopback sockets: transitions, guards, watchdog, latency."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.navigation.igtl import IgtlClient, StatusCode, StatusMessage, StringMessage
from seldinger.navigation.transforms import rigid_matrix
from seldinger.robot.protocol import (
    LEGAL_TRANSITIONS,
    TARGET_REACHED,
    RobotController,
    RobotRefusedError,
    RobotState,
    is_legal,
)
from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

S = RobotState
#: Robot base 200 mm below the CT origin (LPS): a target at the CT origin is 200 mm away.
ROBOT_TO_CT = rigid_matrix(translation_mm=[0.0, 0.0, 200.0])
TARGET_TO_CT = rigid_matrix(translation_mm=[10.0, -20.0, 100.0])  # 101.5 mm from the base
WATCHDOG_LIMIT_S = 0.100
P99_GOAL_MS = 5.0
P99_CI_BOUND_MS = 50.0

# From START_UP to each state: commands, and "CLB"/"TGT" for calibration and target.
PATHS: dict[RobotState, list[str]] = {
    S.START_UP: [],
    S.PLANNING: ["PLANNING"],
    S.CALIBRATION: ["PLANNING", "CALIBRATION", "CLB"],
    S.TARGETING: ["PLANNING", "CALIBRATION", "CLB", "TARGETING", "TGT"],
    S.MOVE_TO_TARGET: ["PLANNING", "CALIBRATION", "CLB", "TARGETING", "TGT", "MOVE_TO_TARGET"],
    S.MANUAL: ["PLANNING", "CALIBRATION", "CLB", "PLANNING", "MANUAL"],
    S.STOP: ["STOP"],
    S.EMERGENCY: ["EMERGENCY"],
}


@pytest.fixture
def slow_robot() -> Iterator[SimulatedRobot]:
    """Moves take seconds (20 mm/s), so a move is under way when a test interrupts it."""
    settings = SimulatedRobotSettings(speed_mm_per_s=20.0)
    with SimulatedRobot(settings=settings, rng=np.random.default_rng(20261207)) as robot:
        yield robot


@pytest.fixture
def controller(slow_robot: SimulatedRobot) -> Iterator[RobotController]:
    with RobotController(port=slow_robot.port, timeout_s=5.0) as client:
        yield client


def _drive(controller: RobotController, state: RobotState) -> None:
    """From any state: EMERGENCY, START_UP, then the path to ``state`` (each step checked)."""
    controller.command(S.EMERGENCY)
    controller.command(S.START_UP)
    for step in PATHS[state]:
        if step == "CLB":
            controller.send_calibration(ROBOT_TO_CT)
        elif step == "TGT":
            controller.send_target(TARGET_TO_CT)
        else:
            controller.command(step)


def test_table_covers_every_state_and_safety_commands() -> None:
    assert set(LEGAL_TRANSITIONS) == set(RobotState)
    for state in RobotState:
        assert is_legal(state, S.EMERGENCY)
        assert is_legal(state, S.STOP) == (state is not S.EMERGENCY)
    assert LEGAL_TRANSITIONS[S.EMERGENCY] == {S.START_UP, S.EMERGENCY}


@pytest.mark.parametrize("source", list(RobotState))
def test_every_transition_from_state(
    source: RobotState, slow_robot: SimulatedRobot, controller: RobotController
) -> None:
    """Every legal transition is carried out; every illegal one is refused, state unchanged."""
    for requested in RobotState:
        _drive(controller, source)
        assert slow_robot.state is source
        status = controller.command(requested, check=False)
        if is_legal(source, requested):
            assert status.ok, (source, requested, status.status_string)
            assert status.status_string == requested.value
            assert slow_robot.state is requested
        else:
            assert status.code is StatusCode.NOT_READY, (source, requested)
            assert status.error_name == "IllegalTransition"
            assert f"{source.value} -> {requested.value}" in status.status_string
            assert slow_robot.state is source


def test_refusal_raises_with_the_status(controller: RobotController) -> None:
    with pytest.raises(RobotRefusedError, match="IllegalTransition") as info:
        controller.command(S.MOVE_TO_TARGET)
    assert info.value.status.code is StatusCode.NOT_READY
    with pytest.raises(BadInputError, match="state must be one of"):
        controller.command("FLY")


def test_guards_calibration_target_and_reach(
    slow_robot: SimulatedRobot, controller: RobotController
) -> None:
    controller.command(S.PLANNING)
    controller.command(S.CALIBRATION)
    status = controller.command(S.TARGETING, check=False)  # legal, but no calibration yet
    assert status.error_name == "NoCalibration" and slow_robot.state is S.CALIBRATION
    assert controller.send_target(TARGET_TO_CT, check=False).error_name == "IllegalTransition"
    controller.send_calibration(ROBOT_TO_CT)
    controller.command(S.TARGETING)
    assert controller.command(S.MOVE_TO_TARGET, check=False).error_name == "NoTarget"
    far = controller.send_target(rigid_matrix(translation_mm=[0.0, 0.0, 700.0]), check=False)
    assert far.code is StatusCode.CONFIG_ERROR and far.error_name == "OutOfReach"
    assert controller.send_calibration(ROBOT_TO_CT, check=False).error_name == "IllegalTransition"
    assert slow_robot.state is S.TARGETING


def test_unknown_state_and_message_are_refused(slow_robot: SimulatedRobot) -> None:
    with IgtlClient(port=slow_robot.port) as raw:
        raw.send(StringMessage(device_name="CMD_0001", text="FLY"))
        raw.send(StatusMessage(device_name="CLB_0002"))
        # the two acknowledgements, among the CURRENT_POSITION the robot streams meanwhile
        acks: list[StatusMessage] = []
        while len(acks) < 2:
            message = raw.receive(timeout_s=5.0).message
            if isinstance(message, StatusMessage) and message.device_name.startswith("ACK_"):
                acks.append(message)
    codes = [m.code for m in acks]
    assert codes == [StatusCode.UNKNOWN_INSTRUCTION, StatusCode.UNKNOWN_INSTRUCTION]
    assert slow_robot.state is S.START_UP


def test_move_reaches_target_in_time_proportional_to_distance() -> None:
    speed_mm_per_s = 400.0
    settings = SimulatedRobotSettings(speed_mm_per_s=speed_mm_per_s, repeatability_mm=0.1)
    with (
        SimulatedRobot(settings=settings, rng=np.random.default_rng(3)) as robot,
        RobotController(port=robot.port, timeout_s=5.0) as controller,
    ):
        _drive(controller, S.TARGETING)
        distance_mm = float(np.linalg.norm(TARGET_TO_CT[:3, 3] - ROBOT_TO_CT[:3, 3]))
        start_s = time.monotonic()
        controller.command(S.MOVE_TO_TARGET)
        reached = controller.wait_for_status(TARGET_REACHED, timeout_s=5.0)
        elapsed_s = time.monotonic() - start_s
        assert reached.ok and robot.state is S.MOVE_TO_TARGET and not robot.moving
        assert elapsed_s >= 0.9 * distance_mm / speed_mm_per_s
        target_robot_mm = TARGET_TO_CT[:3, 3] - ROBOT_TO_CT[:3, 3]
        assert np.linalg.norm(robot.position_robot_mm - target_robot_mm) < 1.0
        controller.command(S.TARGETING)


def _wait_until_moved(robot: SimulatedRobot, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while np.linalg.norm(robot.position_robot_mm) < 1.0:
        assert time.monotonic() < deadline, "the robot did not start moving"
        robot.wait_until_idle(0.01)


def test_disconnect_mid_move_stops_within_100_ms(slow_robot: SimulatedRobot) -> None:
    controller = RobotController(port=slow_robot.port, timeout_s=5.0)
    _drive(controller, S.TARGETING)
    controller.command(S.MOVE_TO_TARGET)
    _wait_until_moved(slow_robot)
    assert slow_robot.moving
    lost_s = time.monotonic()
    controller.close()
    assert slow_robot.wait_until_idle(1.0)
    stop = slow_robot.stop_events[-1]
    stop_latency_s = stop.monotonic_s - lost_s
    print(f"watchdog: motion stopped {stop_latency_s * 1e3:.1f} ms after the disconnect")
    assert stop.reason == "controller connection lost"
    assert stop_latency_s <= WATCHDOG_LIMIT_S
    assert slow_robot.state is S.STOP
    held = slow_robot.position_robot_mm
    time.sleep(0.05)  # the robot must stay where it stopped
    np.testing.assert_array_equal(slow_robot.position_robot_mm, held)


def test_emergency_mid_move_stops_before_the_ack(
    slow_robot: SimulatedRobot, controller: RobotController
) -> None:
    _drive(controller, S.TARGETING)
    controller.command(S.MOVE_TO_TARGET)
    _wait_until_moved(slow_robot)
    sent_s = time.monotonic()
    controller.command(S.EMERGENCY)
    assert not slow_robot.moving and slow_robot.state is S.EMERGENCY
    assert slow_robot.stop_events[-1].monotonic_s - sent_s <= WATCHDOG_LIMIT_S
    assert controller.command(S.PLANNING, check=False).error_name == "IllegalTransition"


def test_command_ack_latency_p99(controller: RobotController) -> None:
    latencies_ms = []
    for _ in range(200):
        start = time.perf_counter()
        controller.command(S.START_UP)
        latencies_ms.append((time.perf_counter() - start) * 1e3)
    p50, p99 = np.percentile(latencies_ms, [50, 99])
    print(f"command -> ack over loopback: p50 {p50:.2f} ms, p99 {p99:.2f} ms (goal {P99_GOAL_MS})")
    assert p99 <= P99_CI_BOUND_MS


def test_current_position_is_streamed_in_ct(controller: RobotController) -> None:
    _drive(controller, S.CALIBRATION)
    deadline = time.monotonic() + 5.0
    while True:
        controller.command(S.CALIBRATION, check=False)  # reads the link while waiting
        pose = controller.current_pose
        if pose is not None and np.allclose(pose, ROBOT_TO_CT, atol=1e-4):
            break
        assert time.monotonic() < deadline, f"no calibrated CURRENT_POSITION; last {pose}"


def test_settings_are_checked() -> None:
    with pytest.raises(BadInputError, match="speed_mm_per_s"):
        SimulatedRobotSettings(speed_mm_per_s=0.0)
    with pytest.raises(BadInputError, match="latency_s"):
        SimulatedRobotSettings(latency_s=-1.0)
