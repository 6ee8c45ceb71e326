"""Robot models and their kinematics, checked by forward kinematics written independently
(roboticstoolbox: an elementary-transform sequence for the guide, the DH UR5 for the arm)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import roboticstoolbox as rtb

from seldinger.errors import BadInputError
from seldinger.robot import (
    RobotKind,
    axis_errors,
    forward,
    inverse,
    list_models,
    load_model,
    model_from_dict,
    mount_side_for,
    mount_to_ct,
)
from seldinger.robot.kinematics import IK_ANGLE_TOL_DEG, IK_DISTANCE_TOL_MM

#: The top-5 paths of ``seldinger plan trajectory`` on lidc-idri-0001 (tests/planning,
#: test_plan_to_the_lidc_nodule; entry, target LPS mm) and the body's centre line there
#: (bore_axis_lps_mm of its body mask), fixed here so the test needs no shared data.
LIDC_TOP5 = [
    ((102.93, 114.82, -95.62), (56.37, 86.32, -115.99)),
    ((112.06, 111.55, -98.75), (56.37, 86.32, -115.99)),
    ((109.27, 112.26, -88.15), (56.37, 86.32, -115.99)),
    ((108.92, 109.2, -108.44), (56.37, 86.32, -115.99)),
    ((119.12, 103.47, -106.98), (56.37, 86.32, -115.99)),
]
LIDC_AXIS_XY_LPS_MM = (10.69, 13.87)
RANDOM_POSES = 1000
DEPTH_MM = 80.0


def _guide_fk(model, joints, base_to_ct):  # type: ignore[no-untyped-def]
    """The guide's FK as roboticstoolbox's ETS tx·ty·tz·Rz·Ry (mm, radians)."""
    ets = rtb.ET.tx() * rtb.ET.ty() * rtb.ET.tz() * rtb.ET.Rz() * rtb.ET.Ry()
    q = np.concatenate([joints[:3], np.radians(joints[3:])])
    return base_to_ct @ np.asarray(ets.fkine(q).A)


def _arm_fk(model, joints, base_to_ct):  # type: ignore[no-untyped-def]
    """The arm's FK from roboticstoolbox's DH UR5 (metres -> mm), then the tool."""
    flange = np.array(rtb.models.DH.UR5().fkine(np.radians(joints)).A)
    flange[:3, 3] *= 1000.0
    return base_to_ct @ flange @ model.tool_to_flange


FK = {RobotKind.NEEDLE_GUIDE_5DOF: _guide_fk, RobotKind.SERIAL_ARM_GUIDE: _arm_fk}


def _check(model, joints, base_to_ct, entry, target) -> None:  # type: ignore[no-untyped-def]
    pose = FK[model.kind](model, np.asarray(joints), base_to_ct)
    entry_mm, target_mm, angle_deg = axis_errors(pose, entry, target)
    assert entry_mm <= IK_DISTANCE_TOL_MM and target_mm <= IK_DISTANCE_TOL_MM
    assert angle_deg <= IK_ANGLE_TOL_DEG
    assert np.all(np.asarray(joints) >= model.lower - 1e-9)
    assert np.all(np.asarray(joints) <= model.upper + 1e-9)
    np.testing.assert_allclose(forward(model, joints, base_to_ct), pose, atol=1e-6)


def test_both_models_are_listed_with_their_kind() -> None:
    assert list_models() == ["guide_5dof", "ur5_guide"]
    assert load_model("guide_5dof").kind is RobotKind.NEEDLE_GUIDE_5DOF
    assert load_model("ur5_guide").kind is RobotKind.SERIAL_ARM_GUIDE


def test_an_unknown_robot_or_a_bad_model_file_is_refused() -> None:
    with pytest.raises(BadInputError, match=r"robot 'kuka'.*choose one of"):
        load_model("kuka")
    data = json.loads(json.dumps({"name": "x", "kind": "needle_guide_5dof", "joints": []}))
    with pytest.raises(BadInputError, match="robot model 'x' is invalid"):
        model_from_dict(data)


def test_guide_at_zero_points_its_axis_posteriorly_from_above_a_supine_patient() -> None:
    # Hand-computed: the base sits 250 mm anterior of the axis with z toward posterior (+y).
    pose = forward(load_model("guide_5dof"), [10.0, 20.0, 100.0, 0.0, 0.0])
    np.testing.assert_allclose(pose[:3, 2], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 3], [10.0, -150.0, -20.0], atol=1e-12)


@pytest.mark.parametrize("name", ["guide_5dof", "ur5_guide"])
@pytest.mark.parametrize("path", range(5))
def test_ik_puts_the_axis_through_the_lidc_top5_paths(name: str, path: int) -> None:
    model = load_model(name)
    entry, target = LIDC_TOP5[path]
    side = mount_side_for(LIDC_TOP5[0][0], LIDC_TOP5[0][1])
    base = mount_to_ct([*LIDC_AXIS_XY_LPS_MM, target[2]], side) @ model.base_to_mount
    result = inverse(model, entry, target, base)
    assert result.reason is None and result.joints is not None
    _check(model, result.joints, base, entry, target)
    entry_mm, target_mm, _ = axis_errors(result.guide_pose, entry, target)
    assert max(entry_mm, target_mm) <= IK_DISTANCE_TOL_MM


@pytest.mark.parametrize("name", ["guide_5dof", "ur5_guide"])
def test_ik_of_random_reachable_poses(name: str) -> None:
    """Random joints within limits -> a pose by independent FK -> a path on its axis -> IK."""
    model = load_model(name)
    rng = np.random.default_rng(20261207)
    base = mount_to_ct([5.0, -10.0, 40.0], "left") @ model.base_to_mount
    for _ in range(RANDOM_POSES):
        truth = rng.uniform(model.lower, model.upper)
        pose = FK[model.kind](model, truth, base)
        direction = pose[:3, 2]
        entry = pose[:3, 3] + model.standoff_mm * direction
        target = entry + DEPTH_MM * direction
        result = inverse(model, entry, target, base)
        assert result.reason is None and result.joints is not None, truth
        _check(model, result.joints, base, entry, target)


def test_guide_reports_joint_limit_and_workspace() -> None:
    model = load_model("guide_5dof")
    # Needle from posterior to anterior under an anterior guide: it would tilt past 90°.
    assert inverse(model, [0.0, -100.0, 0.0], [0.0, -200.0, 0.0]).reason == "joint_limit"
    # Entry 400 mm lateral: the x axis (±200 mm) cannot place the RCM there.
    assert inverse(model, [400.0, -100.0, 0.0], [400.0, 0.0, 0.0]).reason == "workspace"


def test_arm_reports_workspace_beyond_its_reach() -> None:
    model = load_model("ur5_guide")
    assert inverse(model, [3000.0, -100.0, 0.0], [3000.0, 0.0, 0.0]).reason == "workspace"
