"""Stenoses in an area profile: reference from the neighbours, half-depth extent, occlusion."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.stents.stenosis import find_lesions, running_reference


def _blurred_step(s: np.ndarray, start: float, end: float, ref: float, low: float) -> np.ndarray:
    """A stenosis from ``start`` to ``end`` blurred over 2.5 mm (a CT slice)."""
    from scipy.special import erf

    edge = 0.5 * (erf((s - start) / 1.5) - erf((s - end) / 1.5))
    return ref - (ref - low) * edge


def test_a_blurred_step_is_measured_at_its_depth_and_length() -> None:
    s = np.arange(0.0, 120.0)
    area = _blurred_step(s, 47.3, 69.8, 250.0, 100.0)
    (lesion,) = find_lesions(s, area)
    assert lesion.stenosis_area_percent == pytest.approx(60.0, abs=0.5)
    assert lesion.length_mm == pytest.approx(22.5, abs=0.3)
    assert lesion.reference_area_mm2 == pytest.approx(250.0, rel=1e-3)
    assert lesion.bounded and not lesion.occluded


def test_a_gentle_taper_and_noise_are_not_stenoses() -> None:
    rng = np.random.default_rng(20261207)
    s = np.arange(0.0, 100.0)
    area = np.linspace(230.0, 150.0, 100) + rng.normal(0, 4.0, 100)  # 35 % over 10 cm
    assert find_lesions(s, area) == []
    assert np.all(running_reference(area) > 140)


def test_an_occlusion_is_graded_100_percent() -> None:
    s = np.arange(0.0, 80.0)
    area = np.where((s >= 30) & (s < 40), 0.0, 200.0)
    (lesion,) = find_lesions(s, area)
    assert lesion.occluded
    assert lesion.stenosis_area_percent == 100.0
    assert lesion.length_mm == pytest.approx(10.0, abs=1.0)


def test_a_narrowing_running_into_the_end_is_unbounded() -> None:
    s = np.arange(0.0, 60.0)
    area = np.where(s < 8, 60.0, 200.0)  # like the larynx above a chest CT's trachea
    lesions = find_lesions(s, area)
    assert len(lesions) == 1 and not lesions[0].bounded
