"""P(hit) and P(margin ≥ 5 mm) by Monte Carlo, against analytic and independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import cKDTree

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.motion.uncertainty import (
    PlacementError,
    SphereLesion,
    ellipsoid_signed_distance_mm,
    p_hit,
    p_margin,
    placement_error,
    tre_covariance_mm2,
)
from seldinger.navigation.motion import rotation_from_rotvec
from seldinger.navigation.registration import predicted_tre_mm, rigid_fit
from seldinger.physics.ablation import Ellipsoid

#: Acceptance (issue 17): P(hit) within 2 percentage points of an independent oracle.
TOLERANCE_PP = 2.0
LESION_DIAMETERS_MM = (10.0, 20.0, 30.0)
CENTRE_LPS_MM = np.array([40.0, -20.0, -100.0])
AIM_LPS_MM = CENTRE_LPS_MM + np.array([2.0, -2.0, 1.0])  # 3 mm off the centre


def _isotropic_error() -> PlacementError:
    return placement_error(tre_rms_mm=4.0, model_residual_rms_mm=2.0)


def _p_inside_sphere(radius_mm: float, offset_mm: float, sigma_mm: float) -> float:
    """P(|X| ≤ R) for X ~ N(offset, σ² I) in 3-D: noncentral χ² with 3 degrees of freedom."""
    return float(stats.ncx2.cdf(radius_mm**2 / sigma_mm**2, 3, offset_mm**2 / sigma_mm**2))


@pytest.mark.parametrize("diameter_mm", LESION_DIAMETERS_MM)
def test_p_hit_sphere_matches_noncentral_chi(diameter_mm: float) -> None:
    # a large error (σ 4.9 mm per axis) so that no lesion size is a sure hit
    error = placement_error(tre_rms_mm=8.0, model_residual_rms_mm=3.0)
    sigma = float(np.sqrt(error.covariance_mm2[0, 0]))
    assert error.rms_mm == pytest.approx(np.hypot(8.0, 3.0))
    lesion = SphereLesion(CENTRE_LPS_MM, diameter_mm / 2.0)
    result = p_hit(AIM_LPS_MM, lesion, error, np.random.default_rng(17))
    oracle = _p_inside_sphere(diameter_mm / 2.0, 3.0, sigma)
    assert abs(result.p_hit - oracle) * 100.0 <= TOLERANCE_PP, (result.p_hit, oracle)
    assert isinstance(result.p_hit, float) and result.n_samples == 20_000
    assert result.standard_error < 0.004


def _sphere_mask(radius_mm: float) -> Volume:
    """A voxelised sphere on an oblique 0.8 mm grid (rotated 30° about an oblique axis)."""
    rotation = rotation_from_rotvec(np.radians(30.0) * np.array([1.0, 1.0, 0.0]) / np.sqrt(2))
    n = int(np.ceil(2 * (radius_mm + 25.0) / 0.8))
    affine = np.eye(4)
    affine[:3, :3] = rotation * 0.8
    affine[:3, 3] = CENTRE_LPS_MM - affine[:3, :3] @ np.full(3, (n - 1) / 2.0)
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    inside = np.linalg.norm(lps - CENTRE_LPS_MM, axis=-1) <= radius_mm
    return Volume(inside, affine)


@pytest.mark.parametrize("diameter_mm", LESION_DIAMETERS_MM)
def test_p_hit_mask_matches_independent_monte_carlo(diameter_mm: float) -> None:
    direction = np.array([0.3, 0.9, -0.3])
    direction /= np.linalg.norm(direction)
    error = placement_error(
        tre_rms_mm=3.0,
        model_residual_rms_mm=1.5,
        needle_direction_lps=direction,
        insertion_depth_mm=120.0,
        deflection_mm_per_100mm=3.0,
    )
    mask = _sphere_mask(diameter_mm / 2.0)
    result = p_hit(AIM_LPS_MM, mask, error, np.random.default_rng(3))
    # the oracle: 10⁵ samples drawn part by part (not from the combined covariance) and
    # looked up with Volume.value_at_lps
    rng = np.random.default_rng(99)
    n = 100_000
    across = np.linalg.svd(direction[None, :])[2][1:]  # two unit vectors ⊥ the needle
    lateral_sigma = 3.0 * 1.2 / np.sqrt(2.0)
    tips = (
        AIM_LPS_MM
        + rng.normal(0.0, 3.0 / np.sqrt(3.0), (n, 3))
        + rng.normal(0.0, 1.5 / np.sqrt(3.0), (n, 3))
        + rng.normal(0.0, lateral_sigma, (n, 2)) @ across
    )
    oracle = float(np.mean(mask.value_at_lps(tips)))
    assert abs(result.p_hit - oracle) * 100.0 <= TOLERANCE_PP, (result.p_hit, oracle)


def test_tre_covariance_matches_fitzpatrick_and_simulation() -> None:
    rng = np.random.default_rng(2001)
    fiducials = rng.uniform(-60.0, 60.0, (5, 3)) * [1.0, 1.0, 0.3]
    target = np.array([20.0, -30.0, 110.0])
    covariance = tre_covariance_mm2(fiducials, target, 1.0)
    assert np.sqrt(np.trace(covariance)) == pytest.approx(predicted_tre_mm(fiducials, target, 1.0))
    # simulation: register noisy copies and look at the error at the target
    sigma = 1.0 / np.sqrt(3.0)
    errors = []
    for _ in range(4000):
        moving = fiducials + rng.normal(0.0, sigma, fiducials.shape)
        m, _ = rigid_fit(fiducials, moving)
        errors.append(m[:3, :3] @ target + m[:3, 3] - target)
    simulated = np.cov(np.array(errors).T)
    assert np.linalg.norm(simulated - covariance) <= 0.1 * np.linalg.norm(covariance)


def test_placement_error_parts() -> None:
    direction = np.array([0.0, 1.0, 0.0])
    only_deflection = placement_error(
        needle_direction_lps=direction, insertion_depth_mm=100.0, deflection_mm_per_100mm=2.0
    )
    assert only_deflection.covariance_mm2 @ direction == pytest.approx(np.zeros(3))
    assert only_deflection.rms_mm == pytest.approx(2.0)
    assert only_deflection.deflection_rms_mm == pytest.approx(2.0)
    with pytest.raises(BadInputError, match="needle_direction_lps is needed"):
        placement_error(insertion_depth_mm=80.0)
    with pytest.raises(BadInputError, match="tre_covariance must be a finite symmetric"):
        placement_error(tre_covariance=-np.eye(3))
    with pytest.raises(BadInputError, match="tre_rms_mm must be a finite number"):
        placement_error(tre_rms_mm=-1.0)


def test_ellipsoid_distance_matches_dense_surface() -> None:
    radii = np.array([20.0, 15.0, 10.0])
    theta, phi = np.meshgrid(
        np.linspace(0.0, np.pi, 801), np.linspace(0.0, 2 * np.pi, 1601), indexing="ij"
    )
    surface = np.stack(
        [
            radii[0] * np.sin(theta) * np.cos(phi),
            radii[1] * np.sin(theta) * np.sin(phi),
            radii[2] * np.cos(theta),
        ],
        axis=-1,
    ).reshape(-1, 3)
    rng = np.random.default_rng(4)
    points = rng.uniform(-28.0, 28.0, (300, 3))
    points[:20, 2] = 0.0  # on the medial plane of the smallest axis
    signed = ellipsoid_signed_distance_mm(points, radii)
    brute, _ = cKDTree(surface).query(points)
    assert np.abs(np.abs(signed) - brute).max() < 0.03
    assert np.array_equal(signed > 0, np.sum((points / radii) ** 2, axis=1) < 1.0)


def test_p_margin_sphere_zone_matches_analytic() -> None:
    error = _isotropic_error()
    sigma = float(np.sqrt(error.covariance_mm2[0, 0]))
    zone = Ellipsoid(CENTRE_LPS_MM, np.eye(3), np.full(3, 20.0))
    lesion = SphereLesion(CENTRE_LPS_MM + np.array([0.0, 0.0, 2.0]), 8.0)
    result = p_margin(zone, lesion, error, np.random.default_rng(8))
    # margin = 20 − |lesion centre − zone centre − δ| − 8 ≥ 5  ⇔  |…| ≤ 7
    oracle = _p_inside_sphere(7.0, 2.0, sigma)
    assert abs(result.p_margin - oracle) * 100.0 <= TOLERANCE_PP
    assert result.nominal_min_margin_mm == pytest.approx(10.0)
    p5, p50, p95 = result.min_margin_percentiles_mm
    assert p5 < p50 < p95 <= 12.0  # at best the error centres the lesion: 20 − 8


def test_p_margin_mask_agrees_with_sphere_for_an_ellipsoid_zone() -> None:
    axes = rotation_from_rotvec([0.2, -0.4, 0.3])
    zone = Ellipsoid(CENTRE_LPS_MM, axes, np.array([22.0, 17.0, 15.0]))
    error = placement_error(tre_rms_mm=2.5, model_residual_rms_mm=1.0)
    sphere = p_margin(zone, SphereLesion(CENTRE_LPS_MM, 8.0), error, np.random.default_rng(1))
    mask = p_margin(zone, _sphere_mask(8.0), error, np.random.default_rng(1))
    assert sphere.nominal_min_margin_mm == pytest.approx(7.0)
    # the mask's sub-voxel surface (0.8 mm voxels) stands for the sphere to a few 0.1 mm
    assert abs(mask.nominal_min_margin_mm - sphere.nominal_min_margin_mm) <= 0.3
    assert abs(mask.p_margin - sphere.p_margin) * 100.0 <= 5.0
    assert 0.2 < sphere.p_margin < 0.95 and mask.n_surface_points > 100


def test_input_checks() -> None:
    error = _isotropic_error()
    lesion = SphereLesion(CENTRE_LPS_MM, 5.0)
    with pytest.raises(BadInputError, match="n_samples must be an integer ≥ 100"):
        p_hit(AIM_LPS_MM, lesion, error, np.random.default_rng(0), n_samples=10)
    with pytest.raises(BadInputError, match="radius_mm must be positive"):
        SphereLesion(CENTRE_LPS_MM, 0.0)
    with pytest.raises(BadInputError, match="aim_lps_mm must be 3 finite"):
        p_hit([0.0, 1.0], lesion, error, np.random.default_rng(0))
    empty = Volume(np.zeros((4, 4, 4), dtype=bool), np.eye(4))
    zone = Ellipsoid(CENTRE_LPS_MM, np.eye(3), np.full(3, 20.0))
    with pytest.raises(BadInputError, match="lesion mask is empty"):
        p_margin(zone, empty, error, np.random.default_rng(0))
