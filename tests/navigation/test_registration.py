"""Rigid transforms, paired-point registration, Fitzpatrick TRE and automatic pairing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from seldinger.navigation.pairing import PairingError, pair_points
from seldinger.navigation.registration import (
    RegistrationError,
    fle_from_fre_mm,
    predicted_fre_mm,
    predicted_tre_mm,
    register_points,
    rigid_fit,
)
from seldinger.navigation.transforms import (
    TransformError,
    apply_transform,
    invert_rigid,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rigid_matrix,
    rotation_angle_deg,
    validate_rigid,
)

#: A tracker_to_ct with a large rotation and translation (any test pose will do).
TRACKER_TO_CT = rigid_matrix(
    Rotation.from_rotvec([0.5, -1.0, 2.0]).as_matrix(), translation_mm=[100.0, -50.0, 30.0]
)


def hexagon(
    radius_mm: float = 60.0, centre_mm: tuple[float, float, float] = (0, 0, 0)
) -> np.ndarray:
    angles = np.radians(np.arange(6) * 60.0)
    return np.c_[radius_mm * np.cos(angles), radius_mm * np.sin(angles), np.zeros(6)] + centre_mm


# --- transforms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(3), r"shape \(4, 4\) or \(n, 4, 4\); got \(3, 3\)"),
        (np.full((4, 4), np.nan), "NaN or infinite"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1.0]]), "last row"),
        (np.diag([1.0, 1.0, 0.0, 1.0]), "not invertible"),
        (np.diag([-1.0, 1.0, 1.0, 1.0]), "reflection"),
        (np.diag([1.0, 1.0, 1.001, 1.0]), "not rigid"),
    ],
)
def test_validate_rigid_rejects(matrix: np.ndarray, message: str) -> None:
    with pytest.raises(TransformError, match=message):
        validate_rigid(matrix, "tracker_to_ct")


def test_validate_rigid_names_stack_index() -> None:
    stack = np.tile(np.eye(4), (5, 1, 1))
    stack[2, 0, 0] = -1.0
    with pytest.raises(TransformError, match=r"poses\[2\] is a reflection"):
        validate_rigid(stack, "poses")
    # float32 rounding of a proper rotation is accepted
    validate_rigid(TRACKER_TO_CT.astype(np.float32))


def test_invert_rigid_round_trip() -> None:
    ct_to_tracker = invert_rigid(TRACKER_TO_CT)
    assert np.abs(ct_to_tracker @ TRACKER_TO_CT - np.eye(4)).max() < 1e-12
    assert np.abs(ct_to_tracker - np.linalg.inv(TRACKER_TO_CT)).max() < 1e-12
    stack = invert_rigid(np.stack([TRACKER_TO_CT, np.eye(4)]))
    assert np.allclose(stack[0], ct_to_tracker)


def test_quaternion_conventions() -> None:
    # 90° about z: (x, y, z, w) = (0, 0, sin 45°, cos 45°); x axis goes to y.
    q = [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)]
    m = quaternion_to_matrix(q, translation_mm=[1.0, 2.0, 3.0])
    assert np.allclose(apply_transform([1.0, 0.0, 0.0], m), [1.0, 3.0, 3.0])
    assert np.allclose(matrix_to_quaternion(m), q)
    assert rotation_angle_deg(m) == pytest.approx(90.0)
    q_random = Rotation.from_rotvec([0.3, -0.4, 2.5]).as_quat(canonical=True)
    assert np.allclose(matrix_to_quaternion(quaternion_to_matrix(q_random)), q_random)
    with pytest.raises(ValueError, match="not all zero"):
        quaternion_to_matrix([0.0, 0.0, 0.0, 0.0])


# --- paired-point registration -----------------------------------------------------------


def test_exact_recovery_without_noise() -> None:
    rng = np.random.default_rng(1)
    fixed = rng.uniform(-100.0, 100.0, (5, 3))
    moving = apply_transform(fixed, invert_rigid(TRACKER_TO_CT))
    result = register_points(fixed, moving)
    assert np.abs(result.moving_to_fixed - TRACKER_TO_CT).max() < 1e-9
    assert result.fre_mm < 1e-9
    assert result.scale == 1.0
    validate_rigid(result.moving_to_fixed, tol=1e-12)


def test_rotation_matches_scipy_align_vectors() -> None:
    """Reference implementation: SciPy's Kabsch solution of Wahba's problem."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        fixed = rng.uniform(-80.0, 80.0, (6, 3))
        moving = apply_transform(fixed, invert_rigid(TRACKER_TO_CT)) + rng.normal(0, 2.0, (6, 3))
        matrix, _ = rigid_fit(fixed, moving)
        reference, _ = Rotation.align_vectors(fixed - fixed.mean(0), moving - moving.mean(0))
        assert np.abs(matrix[:3, :3] - reference.as_matrix()).max() < 1e-9


def test_reflection_guard() -> None:
    """A mirrored point set: the unguarded SVD answer is the mirror (det −1)."""
    rng = np.random.default_rng(3)
    moving = rng.uniform(-50.0, 50.0, (5, 3))
    fixed = moving * [-1.0, 1.0, 1.0]
    xc, yc = fixed - fixed.mean(0), moving - moving.mean(0)
    u, _, vt = np.linalg.svd(yc.T @ xc)
    assert np.linalg.det(vt.T @ u.T) == pytest.approx(-1.0)  # naive Arun fails here
    result = register_points(fixed, moving)
    assert np.linalg.det(result.moving_to_fixed[:3, :3]) == pytest.approx(1.0)
    validate_rigid(result.moving_to_fixed)
    reference, _ = Rotation.align_vectors(xc, yc)
    assert np.abs(result.moving_to_fixed[:3, :3] - reference.as_matrix()).max() < 1e-9
    assert result.fre_mm > 1.0  # a mirror cannot be matched by a rotation


def test_similarity_scale() -> None:
    rng = np.random.default_rng(4)
    moving = rng.uniform(-50.0, 50.0, (6, 3))
    fixed = 1.5 * apply_transform(moving, TRACKER_TO_CT)
    scaled = register_points(fixed, moving, allow_scaling=True, target_mm=[0.0, 0.0, 0.0])
    assert scaled.scale == pytest.approx(1.5)
    assert scaled.fre_mm < 1e-9
    assert scaled.predicted_tre_mm is None
    assert scaled.to_dict()["method"] == "paired_point_similarity"
    assert register_points(fixed, moving).fre_mm > 1.0


@pytest.mark.parametrize(
    ("fixed", "moving", "message"),
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), "holds 2 points.*at least 3"),
        (np.eye(3), np.eye(4, 3), "pair up point for point; got 3 and 4"),
        (
            np.array([[0, 0, 0], [1, 0, np.nan], [0, 1, 0.0]]),
            np.eye(3),
            r"fixed_mm\[1\].*not finite",
        ),
        (np.c_[np.arange(5.0) * 10, np.zeros(5), np.zeros(5)], np.eye(5, 3), "collinear"),
        # Nearly collinear: 100 mm long, 0.3 mm off the line.
        (np.c_[np.arange(5.0) * 25, [0, 0.3, 0, -0.3, 0], np.zeros(5)], np.eye(5, 3), "collinear"),
        (np.zeros((4, 2)), np.zeros((4, 2)), r"shape \(N, 3\)"),
    ],
)
def test_register_points_rejects(fixed: np.ndarray, moving: np.ndarray, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        register_points(fixed, moving)


def test_worked_example_of_the_reference_notes() -> None:
    """navigation.md §2.4: hexagon r = 60 mm, FLE 1 mm, target 120 mm below the centre."""
    fiducials = hexagon()
    # Hand computation: f = 60/√2 = 42.43 mm about both in-plane axes, 60 mm about the
    # normal; d = 120 mm from both in-plane axes, 0 from the normal;
    # ⟨TRE²⟩ = (1/6)(1 + (1/3)·2·120²/1800) = (1/6)(1 + 16/3) = 19/18 mm².
    assert predicted_tre_mm(fiducials, [0.0, 0.0, -120.0], 1.0) == pytest.approx(
        np.sqrt(19.0 / 18.0), abs=1e-9
    )
    assert np.sqrt(19.0 / 18.0) == pytest.approx(1.03, abs=0.005)  # the notes' rounding
    assert predicted_fre_mm(6, 1.0) == pytest.approx(np.sqrt(2.0 / 3.0), abs=1e-12)  # 0.816
    # At the centroid only the 1/N term remains.
    assert predicted_tre_mm(fiducials, [0.0, 0.0, 0.0], 1.0) == pytest.approx(1 / np.sqrt(6))


def monte_carlo_errors_mm(
    fiducials_mm: np.ndarray,
    target_mm: np.ndarray,
    fle_rms_mm: float,
    rng: np.random.Generator,
    n_trials: int = 2000,
) -> tuple[float, float]:
    """RMS TRE at the target and RMS FRE over registrations with isotropic Gaussian FLE.

    The moving fiducials (tracker) are the fixed ones (CT) mapped by a known transform and
    perturbed by N(0, FLE²/3) per axis; TRE is the distance between the registered and the
    true image of the target.
    """
    ct_to_tracker = invert_rigid(TRACKER_TO_CT)
    moving_true = apply_transform(fiducials_mm, ct_to_tracker)
    target_tracker = apply_transform(target_mm, ct_to_tracker)
    sigma = fle_rms_mm / np.sqrt(3.0)
    tre2, fre2 = [], []
    for _ in range(n_trials):
        result = register_points(
            fiducials_mm, moving_true + rng.normal(0, sigma, moving_true.shape)
        )
        tre2.append(
            np.sum((apply_transform(target_tracker, result.moving_to_fixed) - target_mm) ** 2)
        )
        fre2.append(result.fre_mm**2)
    return float(np.sqrt(np.mean(tre2))), float(np.sqrt(np.mean(fre2)))


LAYOUT_RNG = np.random.default_rng(20240611)
SPREAD_3D = LAYOUT_RNG.uniform(-50.0, 50.0, (5, 3))
ELONGATED = np.c_[
    np.linspace(-80, 80, 6), LAYOUT_RNG.uniform(-8, 8, 6), LAYOUT_RNG.uniform(-8, 8, 6)
]
#: Four skin fiducials, slightly off one plane.
FOUR = hexagon()[[0, 1, 3, 4]] + [
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 20.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, -10.0],
]


@pytest.mark.parametrize(
    ("name", "fiducials", "target", "fle_rms_mm"),
    [
        ("hexagon, deep target", hexagon(), [0.0, 0.0, -120.0], 1.0),
        ("hexagon, far lateral target", hexagon(), [200.0, 0.0, -150.0], 1.0),
        ("3-D spread, target inside", SPREAD_3D, [10.0, 20.0, -30.0], 1.0),
        ("3-D spread, target far outside", SPREAD_3D, [250.0, 100.0, -200.0], 1.0),
        ("elongated (line-ish)", ELONGATED, [0.0, 0.0, 60.0], 0.5),
        ("four fiducials", FOUR, [30.0, 40.0, -90.0], 1.5),
    ],
)
def test_predicted_tre_matches_monte_carlo(
    name: str, fiducials: np.ndarray, target: list[float], fle_rms_mm: float
) -> None:
    rng = np.random.default_rng(31)
    target_mm = np.asarray(target)
    predicted = predicted_tre_mm(fiducials, target_mm, fle_rms_mm)
    tre, fre = monte_carlo_errors_mm(fiducials, target_mm, fle_rms_mm, rng)
    assert tre == pytest.approx(predicted, rel=0.10), name
    assert fre == pytest.approx(predicted_fre_mm(len(fiducials), fle_rms_mm), rel=0.05), name


def test_fle_given_or_estimated() -> None:
    rng = np.random.default_rng(6)
    fixed = hexagon()
    moving = apply_transform(fixed, invert_rigid(TRACKER_TO_CT)) + rng.normal(0, 0.6, (6, 3))
    target = [0.0, 0.0, -120.0]
    given = register_points(fixed, moving, target_mm=target, fle_mm=1.0)
    assert not given.fle_estimated
    assert given.predicted_fre_mm == pytest.approx(np.sqrt(2.0 / 3.0))
    assert given.predicted_tre_mm == pytest.approx(np.sqrt(19.0 / 18.0))
    estimated = register_points(fixed, moving, target_mm=target)
    assert estimated.fle_estimated
    assert estimated.predicted_fre_mm is None
    assert estimated.fle_mm == pytest.approx(estimated.fre_mm * np.sqrt(6 / 4))
    assert estimated.fle_mm == pytest.approx(fle_from_fre_mm(estimated.fre_mm, 6))
    assert estimated.predicted_tre_mm == pytest.approx(
        predicted_tre_mm(fixed, target, estimated.fle_mm)
    )
    data = json.loads(json.dumps(estimated.to_dict()))
    assert data["fle_estimated"] is True
    assert data["n_fiducials"] == 6
    assert np.allclose(data["moving_to_fixed"], estimated.moving_to_fixed, atol=1e-6)


# --- automatic pairing -------------------------------------------------------------------

IRREGULAR_SKIN_LAYOUT = np.c_[
    [60, 45, 70, 55, 65, 50] * np.cos(np.radians([0, 50, 110, 170, 240, 300])),
    [60, 45, 70, 55, 65, 50] * np.sin(np.radians([0, 50, 110, 170, 240, 300])),
    [3.0, -4.0, 8.0, 0.0, -6.0, 2.0],
] + [20.0, -100.0, -120.0]


def tracked(
    ct_points: np.ndarray, rng: np.random.Generator, noise_mm: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """The CT points as touched with the tracker: shuffled, moved, noisy; and the order."""
    order = rng.permutation(len(ct_points))
    points = apply_transform(ct_points[order], invert_rigid(TRACKER_TO_CT))
    return points + rng.normal(0.0, noise_mm, points.shape), order


def mapping_error_mm(tracker_to_ct: np.ndarray, ct_points: np.ndarray) -> float:
    """Largest distance by which an estimated tracker_to_ct misplaces the true positions."""
    tracker_true = apply_transform(ct_points, invert_rigid(TRACKER_TO_CT))
    return float(
        np.linalg.norm(apply_transform(tracker_true, tracker_to_ct) - ct_points, axis=1).max()
    )


@pytest.mark.parametrize("layout", ["skin", "random"])
def test_pair_points_shuffled_noisy(layout: str) -> None:
    rng = np.random.default_rng(8)
    ct = IRREGULAR_SKIN_LAYOUT if layout == "skin" else rng.uniform(-80.0, 80.0, (7, 3))
    tracker, order = tracked(ct, rng)
    pairing = pair_points(ct, tracker, tolerance_mm=2.5)
    assert np.array_equal(pairing.permutation, order)  # tracker point j is CT point order[j]
    assert pairing.unmatched_ct == () and pairing.unmatched_tracker == ()
    assert mapping_error_mm(pairing.tracker_to_ct, ct) < 2.0  # FLE 0.87 mm RMS (3-D)
    assert pairing.registration.fre_mm < 1.0
    json.dumps(pairing.to_dict())


def test_pair_points_one_missing_or_extra() -> None:
    rng = np.random.default_rng(9)
    ct = IRREGULAR_SKIN_LAYOUT
    tracker, order = tracked(ct, rng)
    # The tracker missed one fiducial.
    missing = pair_points(ct, tracker[:-1], tolerance_mm=2.5)
    assert missing.unmatched_ct == (int(order[-1]),)
    assert np.array_equal(missing.permutation, order[:-1])
    # The CT detection found one too few (so the tracker has an extra point).
    extra = pair_points(np.delete(ct, 2, axis=0), tracker, tolerance_mm=2.5)
    assert extra.unmatched_tracker == (int(np.flatnonzero(order == 2)[0]),)
    assert mapping_error_mm(extra.tracker_to_ct, ct) < 2.0


def test_pair_points_symmetric_layout_is_ambiguous() -> None:
    rng = np.random.default_rng(10)
    ct = hexagon(centre_mm=(20.0, -100.0, -120.0))
    tracker, _ = tracked(ct, rng)
    # A regular hexagon maps onto itself 12 ways (6 turns, 6 flips, all proper rotations
    # in 3-D): the residual check cannot tell them apart.
    with pytest.raises(PairingError, match="ambiguous: 12 different pairings"):
        pair_points(ct, tracker, tolerance_mm=2.5)


def test_pair_points_failures() -> None:
    rng = np.random.default_rng(11)
    ct = IRREGULAR_SKIN_LAYOUT
    with pytest.raises(PairingError, match="no pairing"):
        pair_points(ct, rng.uniform(-80, 80, (6, 3)), tolerance_mm=2.5)
    with pytest.raises(PairingError, match="at most one extra or missing"):
        pair_points(ct, ct[:4], tolerance_mm=2.5)
    with pytest.raises(PairingError, match="tolerance_mm must be a positive"):
        pair_points(ct, ct, tolerance_mm=0.0)
