"""Hand–eye calibration against the truth and against OpenCV's calibrateHandEye."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.transform import Rotation

from seldinger.errors import BadInputError
from seldinger.navigation.registration import RegistrationError
from seldinger.navigation.transforms import invert_rigid, rigid_matrix
from seldinger.robot.handeye import HandEyeError, hand_eye_calibration, register_robot_base

NOISE_MM = 0.2
NOISE_DEG = 0.2
TOLERANCE_MM = 0.5
TOLERANCE_DEG = 0.2

MARKER_TO_FLANGE = rigid_matrix(
    Rotation.from_euler("xyz", [20.0, -35.0, 110.0], degrees=True).as_matrix(),
    [35.0, -20.0, 80.0],
)
BASE_TO_TRACKER = rigid_matrix(
    Rotation.from_euler("xyz", [170.0, 10.0, -60.0], degrees=True).as_matrix(),
    [250.0, -400.0, 1600.0],
)


def _noisy(poses: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Each pose with an isotropic rotation error of NOISE_DEG and translation NOISE_MM (RMS
    per axis over 3 axes gives the stated 3-D size)."""
    n = len(poses)
    out = poses.copy()
    rotvec = rng.normal(0.0, np.radians(NOISE_DEG) / np.sqrt(3.0), (n, 3))
    out[:, :3, :3] = Rotation.from_rotvec(rotvec).as_matrix() @ poses[:, :3, :3]
    out[:, :3, 3] += rng.normal(0.0, NOISE_MM / np.sqrt(3.0), (n, 3))
    return out


def _simulate(
    n: int, rng: np.random.Generator, noise: bool = True
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    flange = np.tile(np.eye(4), (n, 1, 1))
    flange[:, :3, :3] = Rotation.from_rotvec(rng.normal(0.0, 0.6, (n, 3))).as_matrix()
    flange[:, :3, 3] = np.array([400.0, 0.0, 300.0]) + rng.normal(0.0, 80.0, (n, 3))
    marker = BASE_TO_TRACKER @ flange @ MARKER_TO_FLANGE
    if noise:
        return _noisy(flange, rng), _noisy(marker, rng)
    return flange, marker


def _errors(x: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]) -> tuple[float, float]:
    delta = invert_rigid(truth) @ x
    angle = float(np.degrees(Rotation.from_matrix(delta[:3, :3]).magnitude()))
    return float(np.linalg.norm(x[:3, 3] - truth[:3, 3])), angle


def test_exact_poses_recover_both_transforms() -> None:
    flange, marker = _simulate(6, np.random.default_rng(20261207), noise=False)
    result = hand_eye_calibration(flange, marker)
    np.testing.assert_allclose(result.marker_to_flange, MARKER_TO_FLANGE, atol=1e-9)
    np.testing.assert_allclose(result.base_to_tracker, BASE_TO_TRACKER, atol=1e-8)
    assert result.rms_pose_residual_mm < 1e-8
    assert len(result.rotation_residuals_deg) == 15  # all pairs of 6 poses


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noisy_poses_within_tolerance_of_truth(seed: int) -> None:
    flange, marker = _simulate(20, np.random.default_rng(seed))
    result = hand_eye_calibration(flange, marker)
    error_mm, error_deg = _errors(result.marker_to_flange, MARKER_TO_FLANGE)
    assert error_mm <= TOLERANCE_MM, error_mm
    assert error_deg <= TOLERANCE_DEG, error_deg
    # The pose residuals are of the size of the noise, not of a wrong solution.
    assert result.rms_pose_residual_mm < 5.0 * NOISE_MM


def test_agrees_with_opencv_calibrate_hand_eye() -> None:
    cv2 = pytest.importorskip(
        "cv2", reason="opencv-python-headless (dev extra) is not installed: no OpenCV reference"
    )
    flange, marker = _simulate(20, np.random.default_rng(42))
    ours = hand_eye_calibration(flange, marker).marker_to_flange
    # OpenCV solves eye-in-hand: gripper2base @ cam2gripper @ target2cam is constant. Ours is
    # that with gripper = flange, cam = marker, target = tracker (base_to_tracker⁻¹ constant).
    tracker_to_marker = invert_rigid(marker)
    for method in (cv2.CALIB_HAND_EYE_TSAI, cv2.CALIB_HAND_EYE_PARK):
        rotation, translation = cv2.calibrateHandEye(
            list(flange[:, :3, :3]),
            list(flange[:, :3, 3]),
            list(tracker_to_marker[:, :3, :3]),
            list(tracker_to_marker[:, :3, 3]),
            method=method,
        )
        theirs = rigid_matrix(rotation, np.ravel(translation))
        error_mm, error_deg = _errors(ours, theirs)
        assert error_mm <= TOLERANCE_MM, (method, error_mm)
        assert error_deg <= TOLERANCE_DEG, (method, error_deg)
        truth_mm, truth_deg = _errors(theirs, MARKER_TO_FLANGE)
        assert truth_mm <= TOLERANCE_MM and truth_deg <= TOLERANCE_DEG


def test_too_few_poses_is_one_clear_error() -> None:
    flange, marker = _simulate(2, np.random.default_rng(5), noise=False)
    with pytest.raises(HandEyeError, match="at least 3 poses"):
        hand_eye_calibration(flange, marker)


def test_rotations_about_one_axis_are_refused() -> None:
    rng = np.random.default_rng(6)
    flange = np.tile(np.eye(4), (8, 1, 1))
    flange[:, :3, :3] = Rotation.from_euler(
        "z", rng.uniform(-90, 90, (8, 1)), degrees=True
    ).as_matrix()
    flange[:, :3, 3] = rng.normal(0.0, 80.0, (8, 3))
    marker = _noisy(BASE_TO_TRACKER @ flange @ MARKER_TO_FLANGE, rng)
    with pytest.raises(HandEyeError, match="one axis") as info:
        hand_eye_calibration(flange, marker)
    assert isinstance(info.value, BadInputError) and isinstance(info.value, ValueError)


def test_mismatched_and_malformed_poses() -> None:
    flange, marker = _simulate(5, np.random.default_rng(8), noise=False)
    with pytest.raises(HandEyeError, match="pair up"):
        hand_eye_calibration(flange, marker[:4])
    with pytest.raises(HandEyeError, match=r"\(N, 4, 4\)"):
        hand_eye_calibration(flange[0], marker[0])
    scaled = flange.copy()
    scaled[0, :3, :3] *= 1.1
    with pytest.raises(HandEyeError, match="not rigid"):
        hand_eye_calibration(scaled, marker)


def test_register_robot_base_gives_robot_to_ct_and_tre() -> None:
    robot_to_ct = rigid_matrix(
        Rotation.from_euler("z", 90.0, degrees=True).as_matrix(), [0.0, -150.0, -300.0]
    )
    robot = np.array([[0, 0, 0], [120, 0, 0], [0, 120, 0], [0, 0, 90], [120, 120, 40]], float)
    ct = robot @ robot_to_ct[:3, :3].T + robot_to_ct[:3, 3]
    result = register_robot_base(ct, robot, target_lps_mm=[50.0, -100.0, -250.0], fle_mm=0.3)
    np.testing.assert_allclose(result.moving_to_fixed, robot_to_ct, atol=1e-9)
    assert result.predicted_tre_mm is not None and 0.0 < result.predicted_tre_mm < 1.0
    with pytest.raises(RegistrationError, match="at least 3"):
        register_robot_base(ct[:2], robot[:2])
