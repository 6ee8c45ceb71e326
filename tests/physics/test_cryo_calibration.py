"""The cryo device models are calibrated: each stores a fitted probe temperature (within the
physical range) and the single-probe iceball it reproduces (± 15 % in width)."""

from __future__ import annotations

from seldinger.physics.ablation import load_catalogue
from seldinger.physics.calibration import (
    CRYO_EXPOSURE_RANGE_MM,
    CRYO_PROBE_RANGE_C,
    cryo_fit_setting,
    simulate_in_liver,
)
from seldinger.physics.thermal_devices import load_thermal_devices


def test_every_cryo_device_stores_a_fitted_probe_temperature_in_range() -> None:
    models = load_thermal_devices()
    cryo = [m for m in models.values() if m.modality == "cryo"]
    assert len(cryo) == 4
    for model in cryo:
        assert model.calibrated_setting == cryo_fit_setting(model.name), model.name
        assert CRYO_PROBE_RANGE_C[0] <= model.probe_c <= CRYO_PROBE_RANGE_C[1], model.name
        assert CRYO_EXPOSURE_RANGE_MM[0] <= model.exposure_mm <= CRYO_EXPOSURE_RANGE_MM[1]
        assert "FITTED" in model.source, model.name


def test_stored_cryo_calibration_reproduces_the_catalogue_iceball_width() -> None:
    device = "galil-iceseed"
    setting = cryo_fit_setting(device)
    row = simulate_in_liver(device, setting)  # the stored probe_c / exposure_mm
    zone = load_catalogue().device(device).setting(setting).zone
    assert row.catalogue_width_mm == zone.width_mm
    assert row.probe_c == load_thermal_devices()[device].probe_c
    assert abs(row.width_error) <= 0.15, row
