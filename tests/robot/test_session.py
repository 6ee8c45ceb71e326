"""The robot session pieces: the closed-form UR inverse against roboticstoolbox, the
simulated patient, the breathing gate, a whole session against the simulated robot and its
tracker (no CT), `robot calibrate` and `robot serve --tracker-port` from the command line."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.transform import Rotation

from seldinger.app.cli import main
from seldinger.navigation.calibration import tool_tip_to_tool
from seldinger.navigation.transforms import rigid_matrix
from seldinger.robot.kinematics import arm_robot
from seldinger.robot.needle_world import (
    NEEDLE_SENSOR,
    SENSOR_TIP_MM,
    NeedleWorld,
    NeedleWorldSettings,
)
from seldinger.robot.protocol import RobotController
from seldinger.robot.session import (
    BreathingGate,
    NeedleGoal,
    NeedleResult,
    RobotSession,
    SessionLog,
    SessionSettings,
    TrackerFeed,
)
from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings
from seldinger.robot.ur_ik import ur_forward_many, ur_geometry, ur_inverse_many
from seldinger.workflow.robot import robot_ranks


def test_closed_form_ur5_inverse_recovers_random_joints_checked_by_roboticstoolbox() -> None:
    robot = arm_robot("UR5")
    geometry = ur_geometry(robot)
    rng = np.random.default_rng(7)
    truth = rng.uniform(-np.pi, np.pi, (1000, 6))
    flange = np.array([robot.fkine(q).A for q in truth])  # independent forward kinematics
    solutions = ur_inverse_many(geometry, flange)
    valid = np.isfinite(solutions).all(axis=2)
    assert valid.sum(axis=1).min() >= 2  # at least two branches of every pose
    for i in range(0, 1000, 50):  # each valid branch, by roboticstoolbox's FK
        for q in solutions[i][valid[i]]:
            np.testing.assert_allclose(robot.fkine(q).A, flange[i], atol=1e-9)
    # the joints the pose came from are among the eight branches
    wrapped = np.abs((solutions - truth[:, None, :] + np.pi) % (2 * np.pi) - np.pi).max(axis=2)
    assert (np.nanmin(wrapped, axis=1) < 1e-6).all()
    # the first branch alone is branch 0 of the whole answer
    first = ur_inverse_many(geometry, flange, first_only=True)
    np.testing.assert_allclose(first[:, 0], solutions[:, 0], atol=1e-12)
    assert np.isnan(first[:, 1:]).all()
    # and the forward model agrees with roboticstoolbox's
    np.testing.assert_allclose(ur_forward_many(geometry, truth[:20])[:, 6], flange[:20], atol=1e-12)


def test_the_robots_ranking_puts_reachable_paths_first_then_the_planners_rank() -> None:
    ranks = robot_ranks([False, True, True, True], [1.0, 3.9, 2.1, 2.3])
    # path 1 unreachable -> last; 2.1 and 2.3 share the 0.5 mm step -> the planner's order
    assert ranks == [4, 3, 1, 2]


def test_needle_in_breathing_tissue_lands_short_when_inserted_at_inhale() -> None:
    world = NeedleWorld(
        NeedleWorldSettings(breathing_amplitude_mm=10.0, deflection_mm_per_100mm=0.0)
    )
    axis = np.array([0.0, 1.0, 0.0])
    world.landed(np.array([0.0, -10.0, 0.0]), axis)  # aligned outside the skin
    world.needle_moved(np.array([0.0, 50.0, 0.0]), 0.0)  # t = 0 is end-inhale (start_phase 0)
    tip = world.tissue_tip_lps_mm()
    assert tip is not None
    # the target sits 10 mm inferior (LPS +z is superior: displacement -z) at inhale, so the
    # needle ends 10 mm superior of it in the plan's (exhale) frame (within the 5 % cycle-to-
    # cycle amplitude variation of the simulated breather)
    np.testing.assert_allclose(tip, [0.0, 50.0, 10.0], atol=0.6)


def test_the_gate_learns_exhale_from_an_asymmetric_breath() -> None:
    t = np.linspace(0.0, 8.0, 400)
    signal = np.cos(np.pi * (t / 4.0)) ** 4  # Lujan: long dwell at exhale (signal 0)
    chest = np.outer(signal * 5.0, [0.0, -1.0, 0.0])
    gate = BreathingGate(window=0.1)
    gate.learn(chest)
    assert gate.span_mm == pytest.approx(5.0, abs=0.05)
    assert gate.is_open(np.array([[0.0, -0.2, 0.0]]))
    assert not gate.is_open(np.array([[0.0, -4.0, 0.0]]))


def test_a_session_aligns_inserts_confirms_and_adjusts(tmp_path: Path) -> None:
    """Strong deflection (4 mm per 100 mm): the first insertion misses by ~3 mm, the
    controller aims against the miss and the second lands within the tolerance."""
    world = NeedleWorld(NeedleWorldSettings(deflection_mm_per_100mm=4.0, tracker_noise_mm=0.1))
    robot_to_ct = rigid_matrix(np.eye(3), [0.0, -250.0, 0.0])
    goal = NeedleGoal("introducer", (30.0, -100.0, 5.0), (20.0, -20.0, 0.0))
    settings = SimulatedRobotSettings(repeatability_mm=0.1, speed_mm_per_s=200.0)
    with SimulatedRobot(settings=settings, world=world, tracker_port=0) as sim:
        assert sim.tracker_port is not None
        controller = RobotController("127.0.0.1", sim.port)
        tracker = TrackerFeed("127.0.0.1", sim.tracker_port)
        log = SessionLog(tmp_path / "session.jsonl")
        session = RobotSession(
            controller, log, tracker=tracker, settings=SessionSettings(confirm_s=0.3)
        )
        try:
            session.start(robot_to_ct)
            result = session.place(goal)
            session.finish()
        finally:
            controller.close()
            tracker.close()
            log.close()
    assert result.adjustments >= 1
    assert result.error_mm is not None and result.error_mm <= 2.0
    truth = world.tissue_tip_lps_mm()
    assert truth is not None and np.linalg.norm(truth - goal.tip_lps_mm) <= 2.0
    lines = (tmp_path / "session.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("confirm") == result.adjustments + 1 and "adjust" in events
    assert events[-1] == "end"


def _place_with_a_registered_tracker(
    tmp_path: Path,
    tracker_to_ct: npt.NDArray[np.float64],
    feed: dict[str, Any],
    raw_feed: dict[str, Any],
) -> tuple[NeedleResult, NeedleGoal, NeedleWorld, npt.NDArray[np.float64]]:
    """One needle placed with a tracker standing at ``tracker_to_ct``, read through its
    registration and ``feed`` (TrackerFeed options); also the last point of a second feed
    read with ``raw_feed`` only."""
    world = NeedleWorld(NeedleWorldSettings(deflection_mm_per_100mm=0.0, tracker_noise_mm=0.1))
    goal = NeedleGoal("introducer", (30.0, -100.0, 5.0), (20.0, -20.0, 0.0))
    settings = SimulatedRobotSettings(repeatability_mm=0.1, speed_mm_per_s=200.0)
    with SimulatedRobot(
        settings=settings, world=world, tracker_port=0, tracker_to_ct=tracker_to_ct
    ) as sim:
        assert sim.tracker_port is not None
        controller = RobotController("127.0.0.1", sim.port)
        tracker = TrackerFeed("127.0.0.1", sim.tracker_port, tracker_to_ct=tracker_to_ct, **feed)
        raw = TrackerFeed("127.0.0.1", sim.tracker_port, **raw_feed)
        log = SessionLog(tmp_path / "session.jsonl")
        session = RobotSession(
            controller, log, tracker=tracker, settings=SessionSettings(confirm_s=0.3)
        )
        try:
            session.start(rigid_matrix(np.eye(3), [0.0, -250.0, 0.0]))
            result = session.place(goal)
            session.finish()
            _, raw_points = raw.samples("tip", 0.0)
        finally:
            controller.close()
            tracker.close()
            raw.close()
            log.close()
    assert len(raw_points)
    assert result.error_mm is not None and result.error_mm <= 1.0
    truth = world.tissue_tip_lps_mm()
    assert truth is not None and result.measured_tip_lps_mm is not None
    assert np.linalg.norm(np.subtract(result.measured_tip_lps_mm, truth)) <= 0.5
    return result, goal, world, raw_points[-1]


def test_a_tracker_in_its_own_frame_is_taken_into_the_ct_by_its_registration(
    tmp_path: Path,
) -> None:
    """The simulated tracker stands 30 degrees round and 1.2 m off the CT's origin: read
    through its registration the needle lands as planned; read raw, the points are nowhere
    near the CT's."""
    tracker_to_ct = rigid_matrix(
        Rotation.from_euler("zyx", [30, -10, 5], degrees=True).as_matrix(), [200.0, -900.0, 700.0]
    )
    result, _, world, raw_tip = _place_with_a_registered_tracker(tmp_path, tracker_to_ct, {}, {})
    assert result.adjustments == 0
    assert np.linalg.norm(raw_tip - world.tissue_tip_lps_mm()) > 500.0


def test_a_hub_sensor_in_the_trackers_frame_gives_the_tip_through_its_calibration(
    tmp_path: Path,
) -> None:
    """The hub sensor's pose, in a tracker 1.2 m off the CT: carried to the tip by the
    pivot calibration, then into the CT by the registration, it is the needle's tip; its
    own translation lies 120 mm back along the shaft."""
    tracker_to_ct = rigid_matrix(
        Rotation.from_euler("zyx", [-25, 10, 40], degrees=True).as_matrix(), [-150.0, 900.0, 80.0]
    )
    sensor = {"tip_device": NEEDLE_SENSOR, "tracker_to_ct": tracker_to_ct}
    calibrated = {"tip_device": NEEDLE_SENSOR, "tip_to_sensor": tool_tip_to_tool(SENSOR_TIP_MM)}
    _, goal, world, hub = _place_with_a_registered_tracker(
        tmp_path, tracker_to_ct, calibrated, sensor
    )
    back = world.tissue_tip_lps_mm() - hub
    assert np.linalg.norm(back) == pytest.approx(120.0, abs=1.0)
    assert np.dot(back / 120.0, goal.axis) > 0.99  # behind the tip, on the shaft


def test_robot_calibrate_from_a_logged_session(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    marker_to_flange = rigid_matrix(Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix(), [20.0, 5.0, 60.0])  # fmt: skip
    base_to_tracker = rigid_matrix(Rotation.from_euler("xyz", [170, 5, -40], degrees=True).as_matrix(), [200.0, -300.0, 1500.0])  # fmt: skip
    lines = [json.dumps({"event": "session"})]
    for _ in range(15):
        flange = rigid_matrix(
            Rotation.from_rotvec(rng.normal(0, 0.6, 3)).as_matrix(),
            np.array([400.0, 0.0, 300.0]) + rng.normal(0, 80, 3),
        )
        marker = base_to_tracker @ flange @ marker_to_flange
        lines.append(
            json.dumps({"flange_to_base": flange.tolist(), "marker_to_tracker": marker.tolist()})
        )
    log = tmp_path / "poses.jsonl"
    log.write_text("\n".join(lines) + "\n")
    assert main(["robot", "calibrate", str(log), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["poses"] == 15 and result["rms_pose_residual_mm"] < 1e-6
    np.testing.assert_allclose(result["base_to_tracker"], base_to_tracker, atol=1e-5)
    # too few poses, and --out without a plan: one clear line each
    log.write_text("\n".join(lines[:3]) + "\n")
    assert main(["robot", "calibrate", str(log)]) == 3
    assert "at least 3" in capsys.readouterr().err


def test_robot_serve_with_a_tracker_streams_the_chest(capsys) -> None:  # type: ignore[no-untyped-def]
    from seldinger.navigation.igtl import IgtlClient, TransformMessage

    ports: dict[str, int] = {}
    done = threading.Event()

    def serve() -> None:
        from seldinger.workflow.robot import serve_simulated_robot

        serve_simulated_robot(
            "guide_5dof", port=0, seconds=1.5,
            on_ready=lambda p: ports.setdefault("robot", p),
            tracker_port=0,
            world=NeedleWorldSettings(breathing_amplitude_mm=15.0),
            on_tracker_ready=lambda p: ports.setdefault("tracker", p),
        )  # fmt: skip
        done.set()

    thread = threading.Thread(target=serve)
    thread.start()
    deadline = time.monotonic() + 5.0
    while "tracker" not in ports and time.monotonic() < deadline:
        time.sleep(0.01)
    with IgtlClient("127.0.0.1", ports["tracker"]) as client:
        names = {f.message.device_name for f in client.frames(timeout_s=0.3) if f.ok and isinstance(f.message, TransformMessage)}  # fmt: skip
    thread.join()
    assert done.is_set() and "ChestReference" in names
