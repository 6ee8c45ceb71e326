"""Surrogate → target correspondence model, velocity estimate, live predictor, gating."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.motion.correspondence import (
    CorrespondenceError,
    CorrespondenceModel,
    GatingWindow,
    LivePredictor,
    fit_correspondence,
    gating_light,
    surrogate_velocity_mm_per_s,
)

T0 = np.array([10.0, 20.0, 30.0])
A = np.array([0.5, -0.8, -3.0])  # target mm per chest mm
B = np.array([0.0, -0.3, 0.1])  # target mm per chest mm/s


def _phases(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chest sensor rising anteriorly (−y) by u from (0, −100, 0); target from T0, A, B."""
    chest = np.c_[np.zeros_like(u), -100.0 - u, np.zeros_like(u)]
    target = T0 + u[:, None] * A + v[:, None] * B
    return chest, target


def test_fit_recovers_hysteresis_model_exactly() -> None:
    u = np.array([0.0, 1.5, 4.0, 5.0, 3.0, 1.0])
    v = np.array([0.0, 3.0, 2.5, 0.0, -3.0, -2.0])
    chest, target = _phases(u, v)
    model = fit_correspondence(chest, target, v)
    # u is measured from the mean chest position, so t0 absorbs the mean offset
    assert np.allclose(model.coef_amplitude, A)
    assert np.allclose(model.coef_velocity_s, B)
    assert np.allclose(model.predict(chest, v), target)
    assert model.residual_rms_mm < 1e-9
    assert model.degrees_of_freedom == 3 and model.hysteresis
    assert model.amplitude_mm == pytest.approx(5.0)
    assert isinstance(model.residual_rms_mm, float)
    # JSON round trip
    again = CorrespondenceModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(again.predict(chest, v), target)
    assert again.surrogate_range_mm == model.surrogate_range_mm
    broken = model.to_dict()
    del broken["coef_amplitude"]
    with pytest.raises(CorrespondenceError, match="incomplete or malformed"):
        CorrespondenceModel.from_dict(broken)


def test_default_orientation_grows_toward_inspiration() -> None:
    u = np.array([0.0, 2.0, 5.0])
    chest, target = _phases(u, np.zeros(3))
    model = fit_correspondence(chest, target)
    fraction = model.amplitude_fraction(model.surrogate_displacement_mm(chest))
    assert fraction.tolist() == pytest.approx([0.0, 0.4, 1.0])
    # naming the expiration phase gives the same orientation; naming the other end flips it
    flipped = fit_correspondence(chest, target, expiration_index=2)
    assert flipped.amplitude_fraction(flipped.surrogate_displacement_mm(chest))[2] == 0.0


def test_residual_reported_for_noisy_phases() -> None:
    rng = np.random.default_rng(20261207)
    u = np.linspace(0.0, 5.0, 8)
    chest, target = _phases(u, np.zeros(8))
    noisy = target + rng.normal(0.0, 0.5, target.shape)
    model = fit_correspondence(chest, noisy)
    assert 0.1 < model.residual_rms_mm < 1.5
    assert model.residual_max_mm >= model.residual_rms_mm
    assert len(model.residuals_mm) == 8 and model.degrees_of_freedom == 6


def test_two_sensors_are_read_together() -> None:
    u = np.array([0.0, 2.0, 5.0, 3.0])
    chest, target = _phases(u, np.zeros(4))
    two = np.stack([chest, chest + np.array([50.0, 0.0, 0.0])], axis=1)  # (P, 2, 3)
    model = fit_correspondence(two, target)
    assert model.n_sensors == 2
    assert np.allclose(model.predict(two), target)


def test_two_phases_without_hysteresis_fit_exactly() -> None:
    chest, target = _phases(np.array([0.0, 5.0]), np.zeros(2))
    model = fit_correspondence(chest, target)
    assert model.degrees_of_freedom == 0 and model.residual_rms_mm < 1e-12
    assert model.target_motion_mm == pytest.approx(5.0 * float(np.linalg.norm(A)))


def test_errors_are_clear() -> None:
    chest, target = _phases(np.array([0.0, 2.0, 5.0]), np.zeros(3))
    with pytest.raises(CorrespondenceError, match="at least 2 phases; got 1"):
        fit_correspondence(chest[:1], target[:1])
    with pytest.raises(CorrespondenceError, match="with hysteresis needs at least 3"):
        fit_correspondence(chest[:2], target[:2], [1.0, -1.0])
    with pytest.raises(BadInputError, match=r"moves only 0\.1 mm"):
        fit_correspondence(
            chest[0] + np.array([[0.0, 0.0, 0.0], [0, -0.1, 0], [0, -0.05, 0]]), target
        )
    with pytest.raises(CorrespondenceError, match="does not separate inhale from exhale"):
        fit_correspondence(chest, target, [2.0, 2.0, 2.0])
    with pytest.raises(
        CorrespondenceError, match=r"target_lps_mm must be finite with shape \(3, 3\)"
    ):
        fit_correspondence(chest, target[:2])
    with pytest.raises(CorrespondenceError, match=r"shape \(n, 3\) or \(n, K, 3\)"):
        fit_correspondence(chest[:, :2], target)
    bad = chest.copy()
    bad[1, 0] = np.nan
    with pytest.raises(CorrespondenceError, match=r"surrogate_lps_mm\[1\] is not finite"):
        fit_correspondence(bad, target)


def _slow_velocity(t: np.ndarray, u: np.ndarray, window_s: float) -> np.ndarray:
    """Reference: np.polyfit over each trailing window."""
    out = np.zeros(t.size)
    for i in range(t.size):
        keep = (t > t[i] - window_s) & (t <= t[i])
        if keep.sum() >= 2 and t[i] - t[keep].min() >= 0.5 * window_s:
            out[i] = np.polyfit(t[keep], u[keep], 1)[0]
    return out


def test_velocity_matches_reference_and_live_predictor() -> None:
    rng = np.random.default_rng(11)
    t = np.cumsum(rng.uniform(0.02, 0.03, 300))
    u = 3.0 * np.sin(2 * np.pi * t / 4.0) + rng.normal(0.0, 0.1, t.size)
    fast = surrogate_velocity_mm_per_s(t, u, 0.4)
    assert np.allclose(fast, _slow_velocity(t, u, 0.4), atol=1e-8)

    chest, target = _phases(np.array([0.0, 2.0, 5.0, 3.0]), np.array([0.0, 2.0, 0.0, -2.0]))
    model = fit_correspondence(chest, target, [0.0, 2.0, 0.0, -2.0])
    live = LivePredictor(model, window_s=0.4, max_rate_hz=50.0)
    sensor = np.c_[np.zeros_like(u), -100.0 - u, np.zeros_like(u)]
    u_model = model.surrogate_displacement_mm(sensor)
    v_model = surrogate_velocity_mm_per_s(t, u_model, 0.4)
    expected = model.predict(sensor, v_model)
    light = gating_light(model, sensor)
    for i in range(t.size):
        estimate = live.update(float(t[i]), sensor[i])
        assert estimate.surrogate_mm == pytest.approx(u_model[i])
        assert estimate.velocity_mm_per_s == pytest.approx(v_model[i], abs=1e-8)
        assert np.allclose(estimate.target_lps_mm, expected[i], atol=1e-8)
        assert estimate.gate_on == light[i]
        assert estimate.inhaling == (v_model[i] > 0)


def test_velocity_input_checks() -> None:
    with pytest.raises(CorrespondenceError, match="increase strictly"):
        surrogate_velocity_mm_per_s([0.0, 0.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(CorrespondenceError, match="window_s must be a positive"):
        surrogate_velocity_mm_per_s([0.0, 1.0], [0.0, 1.0], 0.0)


def test_gating_light_end_expiration_window() -> None:
    chest, target = _phases(np.array([0.0, 2.0, 4.0]), np.zeros(3))
    model = fit_correspondence(chest, target)
    live_u = np.array([-1.0, 0.0, 0.9, 1.0, 1.1, 4.0, 5.0])  # fractions −0.25 … 1.25
    live = np.c_[np.zeros(7), -100.0 - live_u, np.zeros(7)]
    assert gating_light(model, live).tolist() == [True, True, True, True, False, False, False]
    end_inhale = GatingWindow(0.75, 1.0)
    assert gating_light(model, live, end_inhale).tolist() == [False] * 5 + [True, True]
    with pytest.raises(CorrespondenceError, match="lower_fraction < upper_fraction"):
        GatingWindow(0.5, 0.25)
