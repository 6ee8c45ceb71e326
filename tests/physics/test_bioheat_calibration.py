"""The calibrated RF / MW device models reproduce their catalogue zones in liver (± 15 %)."""

from __future__ import annotations

import pytest

from seldinger.physics.ablation import load_catalogue
from seldinger.physics.calibration import simulate_in_liver
from seldinger.physics.thermal_devices import load_thermal_devices


@pytest.mark.parametrize(
    ("device", "setting"), [("cooltip-rf", "invivo-liver"), ("emprint", "100W-5min")]
)
def test_calibrated_setting_matches_the_catalogue_within_15_percent(
    device: str, setting: str
) -> None:
    row = simulate_in_liver(device, setting)
    zone = load_catalogue().device(device).setting(setting).zone
    assert row.catalogue_width_mm == zone.width_mm
    assert abs(row.width_error) <= 0.15, row
    assert abs(row.length_error) <= 0.15, row


def test_every_rf_and_mw_setting_is_calibrated() -> None:
    models = load_thermal_devices()
    for device in load_catalogue():
        model = models.get(device.name.lower())
        if model is None or model.modality == "cryo":
            continue
        assert set(model.settings) == set(device.settings), device.name
        for calibrated in model.settings.values():
            assert 0 < calibrated.delivered_power_w < 200
