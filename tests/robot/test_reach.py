"""Reachability: each reason on a synthetic body, the predicted error, the guide pose's
convention, and the `seldinger robot` commands on a planned synthetic chest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from case_copy import copy_case
from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.robot import (
    DEFAULT_TRE_MM,
    forward,
    load_model,
    mount_to_ct,
    predicted_error_mm,
    reach_paths,
    summarise,
)

#: 4 mm voxels over LPS -400..396 mm in x and y, -40..36 mm in z.
SHAPE = (200, 200, 20)
AFFINE = np.array([[4.0, 0, 0, -400.0], [0, 4.0, 0, -400.0], [0, 0, 4.0, -40.0], [0, 0, 0, 1]])


def _body(radius_mm: float, hand: bool = False) -> Volume:
    """A body cylinder along z on the axis x = y = 0; ``hand``: a 30 mm ball resting on the
    chest at (0, -radius - 80, 0)."""
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij"), axis=-1)
    lps = ijk @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    body = np.hypot(lps[..., 0], lps[..., 1]) <= radius_mm
    if hand:
        body |= np.linalg.norm(lps - [0.0, -radius_mm - 80.0, 0.0], axis=-1) <= 30.0
    return Volume(body, AFFINE.copy())


def _reach(name: str, entries, targets, body: Volume, side: str = "anterior"):  # type: ignore[no-untyped-def]
    model = load_model(name)
    base = mount_to_ct([0.0, 0.0, 0.0], side) @ model.base_to_mount
    return reach_paths(model, entries, targets, base, body=body)


def test_predicted_error_is_the_root_sum_square_of_its_parts() -> None:
    # 3 mm TRE, 0.5 mm repeatability, 1.5 mm deflection at 100 mm: sqrt(9 + 0.25 + 2.25).
    assert predicted_error_mm(100.0, 3.0, 0.5) == pytest.approx(np.sqrt(11.5))
    assert predicted_error_mm(0.0, DEFAULT_TRE_MM, 0.0) == pytest.approx(3.0)


@pytest.mark.parametrize("name", ["guide_5dof", "ur5_guide"])
def test_a_straight_anterior_path_is_reachable_with_a_guide_pose_on_the_needle(name: str) -> None:
    entry, target = np.array([0.0, -150.0, 20.0]), np.array([30.0, -40.0, 10.0])
    (result,) = _reach(name, [entry], [target], _body(150.0))
    assert result.reachable and result.reason is None and result.joints is not None
    direction = (target - entry) / np.linalg.norm(target - entry)
    np.testing.assert_allclose(result.guide_pose[:3, 2], direction, atol=1e-6)
    offset = result.guide_pose[:3, 3] - entry
    assert np.linalg.norm(np.cross(offset, direction)) < 1e-4  # translation on the line
    base = mount_to_ct([0.0, 0.0, 0.0], "anterior") @ load_model(name).base_to_mount
    np.testing.assert_allclose(
        forward(load_model(name), result.joints, base), result.guide_pose, atol=1e-3
    )
    depth_mm = float(np.linalg.norm(target - entry))
    expected = predicted_error_mm(depth_mm, DEFAULT_TRE_MM, load_model(name).repeatability_mm)
    assert result.predicted_error_mm == pytest.approx(float(expected))


@pytest.mark.parametrize("name", ["guide_5dof", "ur5_guide"])
def test_a_hand_on_the_chest_blocks_the_guide(name: str) -> None:
    entries = [[0.0, -150.0, 0.0], [0.0, -150.0, 32.0]]  # under the hand; beside it
    targets = [[0.0, -50.0, 0.0], [0.0, -50.0, 32.0]]
    results = _reach(name, entries, targets, _body(150.0, hand=True))
    assert [r.reason for r in results] == ["collision_body", None]
    assert results[0].joints is None


def test_the_in_bore_guide_must_stay_in_the_70_cm_bore_and_the_arm_need_not() -> None:
    # A 300 mm body: the guide's 120 mm reaches 420 mm from the axis, outside the bore.
    entries, targets = [[0.0, -300.0, 0.0]], [[0.0, -200.0, 0.0]]
    assert _reach("guide_5dof", entries, targets, _body(300.0))[0].reason == "bore"
    assert _reach("ur5_guide", entries, targets, _body(300.0))[0].reason != "bore"


def test_reasons_are_counted() -> None:
    entries = [[0.0, -150.0, 0.0], [0.0, 150.0, 0.0], [100.0, -112.0, 0.0], [0.0, -150.0, 30.0]]
    targets = [[0.0, -50.0, 0.0], [0.0, 50.0, 0.0], [-100.0, -60.0, 0.0], [0.0, -50.0, 30.0]]
    summary = summarise(_reach("guide_5dof", entries, targets, _body(150.0)))
    # A posterior entry lies 400 mm from an anterior guide's base (its z axis: 0-250 mm);
    # a path 76° from the vertical needs more than the guide's 70° elevation.
    assert summary == {
        "paths": 4,
        "reachable": 2,
        "fraction_reachable": 0.5,
        "reasons": {"workspace": 1, "joint_limit": 1},
    }


# --- the command line on a planned synthetic chest (as tests/app/conftest.py) -------------

CHEST_SHAPE = (100, 100, 60)
CHEST_AFFINE = np.array([[1.0, 0, 0, -50.0], [0, 1.0, 0, -50.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("robot_case")
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in CHEST_SHAPE), indexing="ij")
    r = np.hypot(i - 50, j - 50)
    body, bones = r <= 45, (r >= 30) & (r <= 34) & ((k % 12) < 8)
    lungs = (r < 28) & (np.abs(i - 50) > 4) & (k > 5) & (k < 55)
    lesion = np.hypot(np.hypot(i - 62, j - 50), k - 30) <= 5.0
    ct = np.where(body, 40, -1000).astype(np.int16)
    ct[bones], ct[lungs], ct[lesion] = 700, -850, 30
    write_volume(Volume(ct, CHEST_AFFINE.copy()), root / "ct.nii.gz")
    write_volume(Volume(lesion.astype(np.uint8), CHEST_AFFINE.copy()), root / "lesion.nii.gz")
    masks = {
        "body": body,
        "bones": bones,
        "lung_left": lungs & (i > 50),
        "lung_right": lungs & (i < 50),
    }
    Anatomy(masks={n: Volume(m, CHEST_AFFINE.copy()) for n, m in masks.items()}).save(
        root / "anatomy"
    )
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", root / "plan.json", "--top", "3"]
    assert main([str(a) for a in args]) == 0
    return root / "plan.json"


def test_robot_list_names_both_robots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["robot", "list", "--json"]) == 0
    robots = json.loads(capsys.readouterr().out)["robots"]
    assert [(r["name"], r["kind"]) for r in robots] == [
        ("guide_5dof", "needle_guide_5dof"),
        ("ur5_guide", "serial_arm_guide"),
    ]


@pytest.mark.parametrize("robot", ["guide_5dof", "ur5_guide"])
def test_robot_reach_reports_every_path(
    plan_path: Path, robot: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["robot", "reach", str(plan_path), "--robot", robot, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tre_mm"] == DEFAULT_TRE_MM and report["summary"]["paths"] == 3
    for path in report["paths"]:
        assert set(path) >= {"reachable", "reason", "joints", "guide_pose", "predicted_error_mm"}
        pose = np.array(path["guide_pose"])
        entry, target = np.array(path["entry_lps_mm"]), np.array(path["target_lps_mm"])
        direction = (target - entry) / np.linalg.norm(target - entry)
        np.testing.assert_allclose(pose[:3, 2], direction, atol=1e-5)
        assert path["reachable"] == (path["reason"] is None)
    assert main(["robot", "reach", str(plan_path), "--robot", robot]) == 0
    assert "paths reachable" in capsys.readouterr().out


def test_robot_reach_refuses_an_unknown_robot(
    plan_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["robot", "reach", str(plan_path), "--robot", "kuka"]) == 3
    assert "choose one of" in capsys.readouterr().err


def test_robot_run_from_the_command_line_places_the_needle_and_logs_it(
    plan_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`robot reach --write` ranks the paths; `robot run --auto` against the simulated robot
    and its tracker places the needle on the robot's first path and records the session."""
    from seldinger.plan import Plan
    from seldinger.robot.needle_world import NeedleWorld
    from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

    plan = copy_case(plan_path.parent, tmp_path / "case") / "plan.json"
    assert main(["robot", "reach", str(plan), "--robot", "guide_5dof", "--write"]) == 0
    assert "robot rank" in capsys.readouterr().out
    saved = Plan.load(plan)
    assert saved.robot is not None and len(saved.robot.reach) == 3
    first = min(saved.robot.reach, key=lambda r: r.robot_rank)
    settings = SimulatedRobotSettings(speed_mm_per_s=200.0)
    with SimulatedRobot(settings=settings, world=NeedleWorld(), tracker_port=0) as sim:
        args = ["robot", "run", str(plan), "--robot-at", f"127.0.0.1:{sim.port}"]
        args += ["--tracker", f"127.0.0.1:{sim.tracker_port}", "--auto", "--json"]
        # The tracker's frame is never guessed: no registration in the plan, no option.
        assert main(args) != 0
        assert "tracker's frame is unknown" in capsys.readouterr().err
        assert main([*args, "--tracker-in-ct"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "completed"
    assert out["tracker_frame"] == "the tracker reports CT LPS mm (--tracker-in-ct)"
    (needle,) = out["needles"]
    assert needle["name"] == f"introducer (path rank {first.rank})"
    assert needle["error_mm"] <= 2.0
    assert Path(out["log"]).is_file() and Path(out["log"]).parent == plan.parent
    saved = Plan.load(plan)
    assert saved.robot is not None and saved.robot.reach  # the reach survives the session
    assert saved.robot.sessions[-1].needles[0].error_mm == needle["error_mm"]
    # No robot listening: one line, the peer's exit status, no session in the plan.
    assert main(["robot", "run", str(plan), "--robot-at", "127.0.0.1:1", "--auto"]) == 6
    assert "cannot connect" in capsys.readouterr().err
    assert len(Plan.load(plan).robot.sessions) == 1  # type: ignore[union-attr]


def test_robot_run_takes_the_tracker_into_the_ct_by_the_plans_registration(
    plan_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tracker in its own frame, registered with `navigate register --plan`: `robot run`
    uses the plan's latest registration by default and records which."""
    from scipy.spatial.transform import Rotation

    from seldinger.navigation.transforms import rigid_matrix
    from seldinger.robot.needle_world import NeedleWorld
    from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

    plan = copy_case(plan_path.parent, tmp_path / "case") / "plan.json"
    tracker_to_ct = rigid_matrix(
        Rotation.from_euler("zyx", [-40, 15, 0], degrees=True).as_matrix(), [-300.0, 800.0, 50.0]
    )
    fiducials = np.array([[-120.0, -90.0, 20.0], [110.0, -80.0, -10.0], [0.0, -110.0, 90.0],
                          [10.0, 60.0, -80.0], [-60.0, 40.0, 60.0]])  # fmt: skip
    in_tracker = (np.linalg.inv(tracker_to_ct) @ np.c_[fiducials, np.ones(5)].T).T[:, :3]
    for name, points in (("ct.csv", fiducials), ("tracker.csv", in_tracker)):
        rows = ["x_mm,y_mm,z_mm", *(",".join(f"{v:.6f}" for v in p) for p in points)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    args = ["navigate", "register", "--fixed", str(tmp_path / "ct.csv"), "--moving"]
    assert main([*args, str(tmp_path / "tracker.csv"), "--plan", str(plan)]) == 0
    capsys.readouterr()
    settings = SimulatedRobotSettings(speed_mm_per_s=200.0)
    world = NeedleWorld()
    with SimulatedRobot(
        settings=settings, world=world, tracker_port=0, tracker_to_ct=tracker_to_ct
    ) as sim:
        args = ["robot", "run", str(plan), "--robot-at", f"127.0.0.1:{sim.port}"]
        args += ["--tracker", f"127.0.0.1:{sim.tracker_port}", "--auto", "--json"]
        assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "completed"
    assert out["tracker_frame"] == "registration-1 of plan.json"
    assert out["needles"][0]["error_mm"] <= 2.0
    truth = world.tissue_tip_lps_mm()
    measured = out["needles"][0]["measured_tip_lps_mm"]
    assert truth is not None and np.linalg.norm(np.subtract(measured, truth)) <= 1.0
    # two frames at once: one clear line
    assert main([*args, "--tracker-in-ct", "--registration", "latest"]) == 3
    assert "give one tracker frame" in capsys.readouterr().err


def test_robot_run_reads_a_hub_sensor_through_the_plans_pivot_calibration(
    plan_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real tracked needle reports a sensor on its hub, 120 mm behind the tip. `navigate
    pivot --plan` calibrates it from a pivoting log; `robot run --tool` then confirms the
    needle at the calibrated tip, where read raw the sensor is 120 mm off."""
    from scipy.spatial.transform import Rotation

    from seldinger.navigation.log_records import TransformRecord
    from seldinger.navigation.recording import write_session_log
    from seldinger.navigation.transforms import rigid_matrix
    from seldinger.robot.needle_world import NEEDLE_SENSOR, SENSOR_TIP_MM, NeedleWorld
    from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

    plan = copy_case(plan_path.parent, tmp_path / "case") / "plan.json"
    # Pivoting about a divot at (40, -60, 25) mm, tilted up to 30 degrees, 0.1 mm noise.
    rng = np.random.default_rng(11)
    divot = np.array([40.0, -60.0, 25.0])
    records = []
    for n, rotvec in enumerate(rng.uniform(-0.5, 0.5, (80, 3))):
        rotation = Rotation.from_rotvec(rotvec).as_matrix()
        origin = divot - rotation @ np.array(SENSOR_TIP_MM) + rng.normal(0.0, 0.06, 3)
        pose = rigid_matrix(rotation, origin)
        records.append(TransformRecord.from_matrix(NEEDLE_SENSOR, 0.025 * n, pose))
    log = tmp_path / "pivot.jsonl"
    write_session_log(log, records)
    pivot = ["navigate", "pivot", str(log), "--tool", NEEDLE_SENSOR, "--plan", str(plan)]
    settings = SimulatedRobotSettings(speed_mm_per_s=200.0)
    world = NeedleWorld()
    with SimulatedRobot(settings=settings, world=world, tracker_port=0) as sim:
        args = ["robot", "run", str(plan), "--robot-at", f"127.0.0.1:{sim.port}"]
        args += ["--tracker", f"127.0.0.1:{sim.tracker_port}", "--tracker-in-ct", "--json"]
        # A sensor without its tip: refused before any motion, naming the fix.
        assert main([*args, "--auto", "--tool", NEEDLE_SENSOR]) != 0
        assert "holds no calibration of 'NeedleToTracker'" in capsys.readouterr().err
        assert main([*args, "--auto", "--tip-offset-mm", "120"]) != 0
        assert "name it with --tool" in capsys.readouterr().err
        assert main(pivot) == 0
        capsys.readouterr()
        assert main([*args, "--auto", "--tool", NEEDLE_SENSOR]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "completed"
    (note,) = (n for n in out["notes"] if n.startswith("needle tip:"))
    assert note.startswith(f"needle tip: device {NEEDLE_SENSOR}, tip at [")
    assert note.endswith("mm by calibration-1")
    tip_mm = json.loads(note[note.index("[") : note.index("]") + 1])
    np.testing.assert_allclose(tip_mm, SENSOR_TIP_MM, atol=0.2)
    (needle,) = out["needles"]
    assert needle["error_mm"] <= 2.0
    truth = world.tissue_tip_lps_mm()
    assert truth is not None
    assert np.linalg.norm(np.subtract(needle["measured_tip_lps_mm"], truth)) <= 1.0
