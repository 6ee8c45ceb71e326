"""Superposition over seeds: fast kernel vs per-seed NumPy, linearity, rotation, grids."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.imaging import Volume
from seldinger.physics.tg43 import (
    dose_on_grid,
    dose_rate_cgy_per_h,
    dose_rate_matrix_per_u,
    dose_rate_reference_cgy_per_h,
    load_seed_data,
    points_inside_seeds,
    seed_dose_rate_per_u,
)

DATA = load_seed_data("6711")
MODELS = ["2d", "1d-line", "1d-point"]


def _random_case(n_points: int, n_seeds: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(20240611)
    points = rng.uniform(-60, 60, (n_points, 3))
    seeds = rng.uniform(-15, 15, (n_seeds, 3))
    axes = rng.normal(size=(n_seeds, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return points, seeds, axes, rng.uniform(0.3, 1.0, n_seeds)


@pytest.mark.parametrize("model", MODELS)
def test_kernel_equals_per_seed_reference(model: str) -> None:
    points, seeds, axes, sk = _random_case(3000, 7)
    points[:20] = seeds[0] + np.linspace(-3, 3, 20)[:, None] * axes[0]  # on and in a seed
    fast = dose_rate_cgy_per_h(points, seeds, axes, sk, DATA, model)
    slow = dose_rate_reference_cgy_per_h(points, seeds, axes, sk, DATA, model)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=0)


def test_two_seeds_are_the_sum_of_single_seeds() -> None:
    points, seeds, axes, sk = _random_case(500, 2)
    both = dose_rate_cgy_per_h(points, seeds, axes, sk, DATA)
    one = dose_rate_cgy_per_h(points, seeds[:1], axes[:1], sk[0], DATA)
    two = dose_rate_cgy_per_h(points, seeds[1:], axes[1:], sk[1], DATA)
    np.testing.assert_allclose(both, one + two, rtol=1e-13)
    # and linear in strength
    np.testing.assert_allclose(
        dose_rate_cgy_per_h(points, seeds, axes, 2 * sk, DATA), 2 * both, rtol=1e-13
    )


def test_rotating_the_seed_axis_rotates_the_dose() -> None:
    points, _, _, _ = _random_case(400, 1)
    seed = np.array([[3.0, -2.0, 5.0]])
    axis = np.array([[0.0, 0.0, 1.0]])
    angle = 0.7
    rot = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    )
    before = dose_rate_cgy_per_h(points, seed, axis, 1.0, DATA)
    moved = (points - seed) @ rot.T + seed
    after = dose_rate_cgy_per_h(moved, seed, axis @ rot.T, 1.0, DATA)
    np.testing.assert_allclose(after, before, rtol=1e-10)
    # flipping the axis changes nothing for the symmetric 6711
    flipped = dose_rate_cgy_per_h(points, seed, -axis, 1.0, DATA)
    np.testing.assert_allclose(flipped, before, rtol=1e-12)
    # the dose is not isotropic: along the axis it is lower than across it at 2 cm
    probes = seed + np.array([[0, 0, 20.0], [20.0, 0, 0]])
    on_axis, across = dose_rate_cgy_per_h(probes, seed, axis, 1.0, DATA)
    assert on_axis / across == pytest.approx(0.442 * 0.251414 / 0.249533, rel=1e-4)


def test_points_inside_a_seed_take_the_capsule_surface_value() -> None:
    seed = np.zeros((1, 3))
    axis = np.array([[0.0, 0.0, 1.0]])
    # inside the capsule (half-length 2.25 mm, radius 0.4 mm) on the axis and across it
    inside = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -2.0], [0.2, 0.0, 0.0], [0.0, 0.0, 0.0]])
    surface = np.array([[0.0, 0.0, 2.25], [0.0, 0.0, -2.25], [0.4, 0.0, 0.0], [0.4, 0.0, 0.0]])
    got = dose_rate_cgy_per_h(inside, seed, axis, 1.0, DATA)
    np.testing.assert_allclose(got, dose_rate_cgy_per_h(surface, seed, axis, 1.0, DATA))
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    assert points_inside_seeds(inside, seed, axis, DATA).all()
    assert not points_inside_seeds([[0.0, 0.0, 2.3], [0.5, 0, 0]], seed, axis, DATA).any()
    # just outside the capsule the dose is continuous with the clamped value
    outside = float(seed_dose_rate_per_u(0.225001, 0.0, DATA))
    assert float(got[0]) == pytest.approx(outside, rel=1e-3)
    # the on-axis geometry at the capsule end is finite: 1/(r^2 - L^2/4) with r = 0.225 cm
    assert float(got[0]) == pytest.approx(
        0.965 / 0.992600 / (0.225**2 - 0.15**2) * 1.081 * 0.333, rel=1e-6
    )


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="axes must be unit vectors; seed 0"):
        dose_rate_cgy_per_h([[0, 0, 10.0]], [[0, 0, 0.0]], [[0, 0, 0.0]], 1.0, DATA)
    with pytest.raises(ValueError, match=r"points_lps_mm must have shape \(n, 3\)"):
        dose_rate_cgy_per_h([0, 0, 10.0], [[0, 0, 0.0]], [[0, 0, 1.0]], 1.0, DATA)
    with pytest.raises(ValueError, match="model must be one of 2d, 1d-line, 1d-point"):
        dose_rate_cgy_per_h([[0, 0, 10.0]], [[0, 0, 0.0]], [[0, 0, 1.0]], 1.0, DATA, "3d")
    with pytest.raises(ValueError, match="sk_u must be a number or one value per seed"):
        dose_rate_cgy_per_h([[0, 0, 10.0]], [[0, 0, 0.0]], [[0, 0, 1.0]], [1.0, 2.0], DATA)
    assert dose_rate_cgy_per_h(np.zeros((0, 3)), [[0, 0, 0.0]], [[0, 0, 1.0]], 1.0, DATA).shape == (
        0,
    )


def test_dose_on_grid_follows_the_affine_in_any_axis_order() -> None:
    seeds = np.array([[1.0, 2.0, -3.0], [-4.0, 0.5, 2.0]])
    axes = np.array([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
    # i -> S (2 mm), j -> L (1.5 mm), k -> P (1 mm): not in LPS order
    affine = np.array([[0, 1.5, 0, -15.0], [0, 0, 1.0, -12.0], [2.0, 0, 0, -14.0], [0, 0, 0, 1.0]])
    grid = Volume(np.zeros((15, 21, 25), np.int16), affine)
    dose = dose_on_grid(grid, seeds, axes, [0.6, 0.8], DATA, exact=True)
    assert dose.array.dtype == np.float32 and dose.shape == grid.shape
    np.testing.assert_array_equal(dose.affine, affine)
    ijk = np.indices(grid.shape).reshape(3, -1).T
    expected = dose_rate_reference_cgy_per_h(grid.index_to_lps(ijk), seeds, axes, [0.6, 0.8], DATA)
    np.testing.assert_allclose(dose.array.reshape(-1), expected, rtol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_influence_matrix_rows_are_each_seed_alone(model: str) -> None:
    points, seeds, axes, sk = _random_case(500, 12)
    matrix = dose_rate_matrix_per_u(points, seeds, axes, DATA, model)
    assert matrix.shape == (12, 500) and matrix.dtype == np.float32
    for j in (0, 5, 11):
        alone = dose_rate_reference_cgy_per_h(
            points, seeds[j : j + 1], axes[j : j + 1], 1.0, DATA, model
        )
        np.testing.assert_allclose(matrix[j], alone, rtol=2e-6, atol=1e-9)
    total = dose_rate_cgy_per_h(points, seeds, axes, sk, DATA, model)
    np.testing.assert_allclose(sk @ matrix.astype(np.float64), total, rtol=1e-5)
