"""DVH and implant indices against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.planning.seeds import (
    cumulative_dvh,
    dose_at_volume_gy,
    implant_indices,
    volume_at_dose_percent,
)


def test_dx_and_vx_on_a_known_dose_list() -> None:
    dose = np.arange(1.0, 101.0)  # 100 voxels, 1..100 Gy
    mask = np.ones(100, dtype=bool)
    assert dose_at_volume_gy(dose, mask, 90) == pytest.approx(
        11.0, abs=1e-9
    )  # the 90 hottest are 11..100
    assert dose_at_volume_gy(dose, mask, 100) == pytest.approx(1.0, abs=1e-9)
    assert dose_at_volume_gy(dose, mask, 1) == pytest.approx(100.0, abs=1e-9)
    assert volume_at_dose_percent(dose, mask, 50.0) == pytest.approx(51.0, abs=1e-9)
    assert volume_at_dose_percent(dose, mask, 100.5) == pytest.approx(0.0, abs=1e-9)


def test_cumulative_dvh_is_non_increasing_and_reads_back_vx() -> None:
    rng = np.random.default_rng(3)
    dose = rng.gamma(4.0, 30.0, size=(20, 20, 20))
    mask = rng.random((20, 20, 20)) > 0.3
    dvh = cumulative_dvh(dose, mask, voxel_ml=0.001, name="ptv", bin_gy=1.0)
    assert dvh.volume_percent[0] == pytest.approx(100.0, abs=1e-9)
    assert np.all(np.diff(dvh.volume_percent) <= 0)
    k = 120
    assert dvh.volume_percent[k] == pytest.approx(
        volume_at_dose_percent(dose, mask, dvh.dose_gy[k])
    )
    assert dvh.volume_ml == pytest.approx(mask.sum() * 0.001)
    assert dvh.to_dict()["name"] == "ptv"


def test_indices_of_a_sphere_target_in_a_radial_dose() -> None:
    # Dose falling with distance: the PD isodose is a sphere of radius 10 voxels; the target
    # a sphere of radius 8 (inside it): V100 = 100 %, CI = V_T / V_ref = (8/10)^3 roughly.
    n = 41
    g = np.indices((n, n, n)) - n // 2
    r = np.sqrt((g**2).sum(axis=0)).astype(float)
    pd = 100.0
    dose = pd * (10.0 / np.maximum(r, 0.5))
    target = r <= 8.0
    idx = implant_indices(dose, target, pd)
    assert idx["v100_percent"] == pytest.approx(100.0, abs=1e-9)
    v_ref = np.count_nonzero(dose >= pd)
    assert idx["conformity_index"] == pytest.approx(target.sum() / v_ref)
    assert idx["external_index"] == pytest.approx((v_ref - target.sum()) / target.sum())
    v150 = np.count_nonzero(target & (dose >= 150.0))
    assert idx["homogeneity_index"] == pytest.approx((target.sum() - v150) / target.sum())
    assert idx["d100_gy"] == pytest.approx(dose[target].min())


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same shape"):
        dose_at_volume_gy(np.ones(3), np.ones(4, bool), 90)
    with pytest.raises(ValueError, match="empty"):
        volume_at_dose_percent(np.ones(3), np.zeros(3, bool), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        dose_at_volume_gy(np.array([1.0, np.nan]), np.ones(2, bool), 90)
    with pytest.raises(ValueError, match="prescription"):
        implant_indices(np.ones(3), np.ones(3, bool), 0.0)
