"""Pivot and spin calibration on poses simulated here (seeded), with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from seldinger.navigation.calibration import (
    CalibrationError,
    pivot_calibration,
    spin_calibration,
    tool_tip_to_tool,
)
from seldinger.navigation.transforms import TransformError, validate_rigid

TIP_OFFSET_MM = np.array([2.0, -1.0, 150.0])
PIVOT_POINT_MM = np.array([10.0, -20.0, -100.0])


def pivot_poses(
    rng: np.random.Generator,
    n: int = 200,
    cone_deg: float = 30.0,
    translation_noise_mm: float = 0.3,
    rotation_noise_deg: float = 0.1,
) -> np.ndarray:
    """ToolToReference poses of a tool pivoting about its tip in a cone around tool +Z.

    Tilts fill a ±cone_deg disc (uniform in area, random azimuth), with any spin about the
    shaft; noise is per-axis Gaussian on the translation and isotropic on the rotation.
    """
    azimuth = rng.uniform(0.0, 2.0 * np.pi, n)
    tilt = np.radians(cone_deg) * np.sqrt(rng.uniform(0.0, 1.0, n))
    spin = rng.uniform(-np.pi, np.pi, n)
    rotation = Rotation.from_rotvec(
        np.c_[np.cos(azimuth) * tilt, np.sin(azimuth) * tilt, np.zeros(n)]
    ) * Rotation.from_rotvec(np.c_[np.zeros((n, 2)), spin])
    translation = PIVOT_POINT_MM - rotation.apply(TIP_OFFSET_MM)
    noise = Rotation.from_rotvec(rng.normal(0.0, np.radians(rotation_noise_deg), (n, 3)))
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = (noise * rotation).as_matrix()
    poses[:, :3, 3] = translation + rng.normal(0.0, translation_noise_mm, (n, 3))
    return poses


def test_pivot_exact_without_noise() -> None:
    poses = pivot_poses(
        np.random.default_rng(1), n=20, translation_noise_mm=0.0, rotation_noise_deg=0.0
    )
    result = pivot_calibration(poses)
    assert np.abs(result.tip_offset_mm - TIP_OFFSET_MM).max() < 1e-9
    assert np.abs(result.pivot_point_mm - PIVOT_POINT_MM).max() < 1e-9
    assert result.rms_mm < 1e-9
    assert result.rejected == ()


def test_pivot_recovers_tip_offset_with_noise() -> None:
    rng = np.random.default_rng(20240611)
    result = pivot_calibration(pivot_poses(rng))
    assert np.linalg.norm(result.tip_offset_mm - TIP_OFFSET_MM) <= 0.5
    assert np.linalg.norm(result.pivot_point_mm - PIVOT_POINT_MM) <= 0.5
    # 0.3 mm per axis plus 0.1° at a 150 mm lever (0.26 mm): about 0.65 mm RMS per pose.
    assert 0.4 < result.rms_mm < 0.9
    assert result.max_mm <= result.threshold_mm
    assert len(result.rejected) <= 2  # Gaussian inliers survive a 3-robust-RMS threshold
    assert result.n_used == 200 - len(result.rejected)


def test_pivot_rejects_outlier_poses() -> None:
    rng = np.random.default_rng(7)
    poses = pivot_poses(rng)
    outliers = np.sort(rng.choice(len(poses), 20, replace=False))
    direction = rng.normal(size=(20, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    poses[outliers, :3, 3] += direction * rng.uniform(5.0, 20.0, (20, 1))

    result = pivot_calibration(poses)
    assert set(outliers.tolist()) <= set(result.rejected)
    assert len(result.rejected) <= len(outliers) + 2
    robust_error = np.linalg.norm(result.tip_offset_mm - TIP_OFFSET_MM)
    assert robust_error <= 0.5
    assert np.all(result.residuals_mm[outliers] > result.threshold_mm)
    # Without rejection the same poses give a worse tip: the outliers matter.
    plain = pivot_calibration(poses, outlier_floor_mm=1e6)
    assert plain.rejected == ()
    assert np.linalg.norm(plain.tip_offset_mm - TIP_OFFSET_MM) > 2 * robust_error


def test_pivot_needs_four_poses() -> None:
    poses = pivot_poses(np.random.default_rng(2), n=3)
    with pytest.raises(CalibrationError, match=r"holds 3 poses.*at least 4"):
        pivot_calibration(poses)


def test_pivot_needs_angular_spread() -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(CalibrationError, match=r"rotate too little.*< 5°"):
        pivot_calibration(pivot_poses(rng, cone_deg=2.0))
    # Turning about a single axis (here spinning about the shaft) leaves the tip offset
    # along that axis undetermined, however large the turn.
    n = 50
    spin = Rotation.from_rotvec(np.c_[np.zeros((n, 2)), np.linspace(-3.0, 3.0, n)])
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = spin.as_matrix()
    poses[:, :3, 3] = PIVOT_POINT_MM - spin.apply(TIP_OFFSET_MM)
    with pytest.raises(CalibrationError, match="not only spinning"):
        pivot_calibration(poses)


def test_pivot_rejects_non_rigid_pose() -> None:
    poses = pivot_poses(np.random.default_rng(4), n=10)
    poses[3, :3, :3] *= 1.01
    with pytest.raises(TransformError, match=r"tool_to_reference\[3\] is not rigid"):
        pivot_calibration(poses)


def test_pivot_to_dict_is_json() -> None:
    result = pivot_calibration(pivot_poses(np.random.default_rng(5), n=30))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["n_used"] == result.n_used
    assert np.allclose(data["tip_offset_mm"], result.tip_offset_mm, atol=5e-4)
    assert len(data["residuals_mm"]) == 30
    validate_rigid(data["tool_tip_to_tool"])


def test_tool_tip_to_tool_convention() -> None:
    # Tip straight along tool +Z: the tip frame is the tool frame moved to the tip.
    straight = tool_tip_to_tool([0.0, 0.0, 150.0])
    assert straight.tolist() == [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 150.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
    # Tip along tool −Z: +Z of the tip frame still points from the tool toward the tip.
    reverse = tool_tip_to_tool([0.0, 0.0, -80.0], shaft_axis_tool=[0.0, 0.0, 1.0])
    assert reverse[:3, 2].tolist() == [0.0, 0.0, -1.0]
    assert reverse[:3, 0].tolist() == [1.0, 0.0, 0.0]
    validate_rigid(reverse)
    # Shaft along tool X: X cannot be kept, tool Y is used.
    sideways = tool_tip_to_tool([100.0, 0.0, 0.0])
    assert sideways[:3, 2].tolist() == [1.0, 0.0, 0.0]
    assert sideways[:3, 0].tolist() == [0.0, 1.0, 0.0]
    validate_rigid(sideways)
    with pytest.raises(CalibrationError, match="no shaft direction"):
        tool_tip_to_tool([0.0, 0.0, 0.0])


def spin_poses(rng: np.random.Generator, axis_tool: np.ndarray, n: int = 100) -> np.ndarray:
    """Needle rolled back and forth about ``axis_tool`` (10–30° steps), 0.2° noise, drifting."""
    angles = np.radians(np.cumsum(rng.uniform(10.0, 30.0, n) * rng.choice([-1.0, 1.0], n)))
    base = Rotation.from_rotvec([0.3, -0.2, 0.5])
    rotation = base * Rotation.from_rotvec(angles[:, None] * axis_tool)
    noise = Rotation.from_rotvec(rng.normal(0.0, np.radians(0.2), (n, 3)))
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = (rotation * noise).as_matrix()
    poses[:, :3, 3] = rng.normal(0.0, 2.0, (n, 3))
    return poses


def test_spin_recovers_shaft_axis() -> None:
    axis = np.array([0.1, -0.05, 1.0]) / np.linalg.norm([0.1, -0.05, 1.0])
    poses = spin_poses(np.random.default_rng(11), axis)
    result = spin_calibration(poses, tip_offset_mm=TIP_OFFSET_MM)
    angle_deg = np.degrees(np.arccos(np.clip(result.axis_tool @ axis, -1.0, 1.0)))
    assert angle_deg < 0.5
    assert 0.1 < result.error_deg < 1.0  # 0.2° per-pose noise over 10–30° steps
    tip_to_tool = result.tool_tip_to_tool
    assert tip_to_tool is not None
    validate_rigid(tip_to_tool)
    assert np.allclose(tip_to_tool[:3, 2], result.axis_tool)
    assert np.allclose(tip_to_tool[:3, 3], TIP_OFFSET_MM)
    json.dumps(result.to_dict())


def test_spin_axis_sign() -> None:
    axis = np.array([0.0, 0.6, -0.8])
    poses = spin_poses(np.random.default_rng(12), axis)
    # Toward the tip when a tip offset is given …
    toward_tip = spin_calibration(poses, tip_offset_mm=-100.0 * axis)
    assert toward_tip.axis_tool @ axis < -0.999
    # … otherwise the largest component (here z, −0.8 in ``axis``) is positive.
    plain = spin_calibration(poses)
    assert plain.axis_tool @ axis < -0.999
    assert plain.axis_tool[2] > 0.0
    assert plain.tool_tip_to_tool is None


def test_spin_needs_rotation() -> None:
    poses = spin_poses(np.random.default_rng(13), np.array([0.0, 0.0, 1.0]), n=20)
    poses[:, :3, :3] = poses[0, :3, :3]
    with pytest.raises(CalibrationError, match=r"turned at most 0\.0°"):
        spin_calibration(poses)
