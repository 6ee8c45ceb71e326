"""The shipped ablation device catalogue against physics.md §2.5 and §3.3, and user files."""

from __future__ import annotations

import json
import math
import os

import pytest

from seldinger.physics.ablation import (
    CATALOGUE_ENV_VAR,
    CONFIDENCES,
    PROVENANCES,
    Catalogue,
    Device,
    Modality,
    Setting,
    UnknownDeviceError,
    UnknownSettingError,
    ZoneSpec,
    load_catalogue,
)

SHIPPED_NAMES = {
    "emprint",
    "neuwave-kidney",
    "cooltip-rf",
    "cooltip-cluster",
    "galil-iceseed",
    "galil-icerod",
    "cryo-littrup-2.4mm",
    "cryo-littrup-1.7mm",
    "nanoknife",
}

# physics.md §2.5 A: setting -> (short axis Ø, long axis, z-range lo, hi, centre), mm rel. tip
EMPRINT_TABLE = {
    "75W-5min": (32, 35, -29.0, 6.0, -11.6),
    "75W-7.5min": (33, 36, -29.5, 6.5, -11.6),
    "100W-5min": (35, 37, -30.0, 7.0, -11.6),
    "100W-7.5min": (35, 41, -32.0, 9.0, -11.6),
    "100W-10min": (36, 42, -32.5, 9.5, -11.6),
    "150W-6.5min": (37, 41, -34.2, 6.8, -13.7),
    "150W-8min": (38, 42, -34.2, 7.8, -13.3),
    "150W-10min": (39, 42, -34.2, 7.8, -13.2),
}
NEUWAVE_TABLE = {
    "65W-5min": (24, 36, -34.8, 1.2, -16.8),
    "65W-10min": (30, 43, -40.8, 2.2, -19.3),
}
# The table's centre and z-range are rounded separately (to 0.1 mm): they agree to 0.1 mm.
Z_RANGE_ATOL_MM = 0.1 + 1e-9


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(autouse=True)
def _no_user_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOGUE_ENV_VAR, raising=False)


def _device_json(name: str = "my-probe", **overrides: object) -> dict[str, object]:
    device: dict[str, object] = {
        "name": name,
        "modality": "microwave",
        "manufacturer": "Example Medical",
        "provenance": "published ex vivo",
        "confidence": "U",
        "source": "Our bench test, 2024",
        "settings": [
            {
                "name": "60W-5min",
                "zone": {"length_mm": 30.0, "width_mm": 25.0, "centre_offset_mm": -8.0},
                "parameters": {"power_w": 60, "time_min": 5},
            }
        ],
    }
    device.update(overrides)
    return device


def _write(tmp_path, devices, name="user.json"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(json.dumps({"schema_version": 1, "devices": devices}), encoding="utf-8")
    return path


# --- shipped content ------------------------------------------------------------------


def test_shipped_catalogue_loads_every_device(catalogue: Catalogue) -> None:
    assert set(catalogue.names()) == SHIPPED_NAMES
    assert len(catalogue) == len(SHIPPED_NAMES)
    assert all(isinstance(device, Device) for device in catalogue)


def test_every_entry_is_cited_and_sized(catalogue: Catalogue) -> None:
    for device in catalogue:
        assert device.source.strip(), device.name
        assert device.provenance in PROVENANCES, device.name
        assert device.confidence in CONFIDENCES, device.name
        assert device.manufacturer.strip(), device.name
        for setting in device.settings.values():
            assert min(setting.zone.diameters_mm) > 0, (device.name, setting.name)
            assert math.isfinite(setting.zone.centre_offset_mm)
            assert setting.provenance in (None, *PROVENANCES)
            if setting.assumed:  # each assumption is explained
                assert "assumed" in setting.note, (device.name, setting.name)
            if setting.n_probes > 1:
                assert setting.probe_spacing_mm is not None
                assert setting.probe_spacing_mm > 0


@pytest.mark.parametrize(
    ("device_name", "table"), [("emprint", EMPRINT_TABLE), ("neuwave-kidney", NEUWAVE_TABLE)]
)
def test_microwave_profiles_equal_physics_md(
    catalogue: Catalogue, device_name: str, table: dict[str, tuple[float, ...]]
) -> None:
    device = catalogue.device(device_name)
    assert device.modality is Modality.MICROWAVE
    assert device.provenance == "manufacturer chart"
    assert device.confidence == "S"
    assert "SlicerAblationPlannerProfiles" in device.source
    assert list(device.settings) == list(table)
    for name, (short_mm, long_mm, lo_mm, hi_mm, centre_mm) in table.items():
        setting = device.setting(name)
        zone = setting.zone
        assert (zone.width_mm, zone.length_mm, zone.depth_mm) == (short_mm, long_mm, None)
        assert zone.centre_offset_mm == centre_mm
        # the zone's extent along the axis follows from centre and length
        assert zone.centre_offset_mm - zone.length_mm / 2 == pytest.approx(
            lo_mm, abs=Z_RANGE_ATOL_MM
        )
        assert zone.centre_offset_mm + zone.length_mm / 2 == pytest.approx(
            hi_mm, abs=Z_RANGE_ATOL_MM
        )
        assert setting.assumed == ()
        assert set(setting.parameters) == {"power_w", "time_min"}


def test_emprint_100w_10min(catalogue: Catalogue) -> None:
    zone = catalogue.device("emprint").setting("100W-10min").zone
    assert (zone.width_mm, zone.length_mm, zone.centre_offset_mm) == (36.0, 42.0, -11.6)
    assert catalogue.device("emprint").setting("100W-10min").parameters == {
        "power_w": 100.0,
        "time_min": 10.0,
    }


def test_cooltip_rf_goldberg_1998(catalogue: Catalogue) -> None:
    single = catalogue.device("cooltip-rf")
    cluster = catalogue.device("cooltip-cluster")
    assert single.modality is Modality.RADIOFREQUENCY and single.thermal
    assert "Goldberg" in single.source and "Goldberg" in cluster.source
    assert single.setting("invivo-liver").zone.width_mm == 18.0
    assert single.setting("invivo-liver").provenance == "published in vivo"
    assert single.setting("exvivo-liver").zone.width_mm == 29.0
    widths = {name: s.zone.width_mm for name, s in cluster.settings.items()}
    assert widths == {
        "invivo-12min": 31.0,
        "exvivo-15min": 47.0,
        "exvivo-30min": 62.0,
        "exvivo-45min": 70.0,
    }
    for setting in [*single.settings.values(), *cluster.settings.values()]:
        # length assumed from the CEUS clinical RFA aspect 30.9 x 26.8 mm, and marked
        assert "length_mm" in setting.assumed
        assert setting.zone.length_mm == pytest.approx(
            setting.zone.width_mm * 30.9 / 26.8, abs=1e-3
        )
    for setting in cluster.settings.values():
        assert (setting.n_probes, setting.probe_spacing_mm) == (3, 5.0)


def test_galil_iceballs_sit_5mm_beyond_the_tip(catalogue: Catalogue) -> None:
    for name, radii in (("galil-iceseed", (10.0, 12.5)), ("galil-icerod", (12.5, 17.5))):
        zone = catalogue.device(name).setting("iceball").zone
        assert (zone.width_mm / 2, zone.length_mm / 2) == radii
        assert zone.centre_offset_mm + zone.length_mm / 2 == pytest.approx(5.0)


def test_littrup_lethal_ice(catalogue: Catalogue) -> None:
    large = catalogue.device("cryo-littrup-2.4mm")
    small = catalogue.device("cryo-littrup-1.7mm")
    assert large.provenance == "phantom" and large.modality is Modality.CRYO
    names = ["1probe", "2probes-20mm", "3probes-20mm", "4probes-20mm"]
    assert list(large.settings) == names == list(small.settings)
    for n, (name, diameter_mm) in enumerate(
        zip(names, (12.0, 33.0, 41.0, 49.0), strict=True), start=1
    ):
        setting = large.setting(name)
        assert setting.zone.width_mm == diameter_mm
        assert setting.n_probes == n
        assert setting.probe_spacing_mm == (None if n == 1 else 20.0)
        assert setting.parameters["isotherm_c"] == -30.0
        assert "length_mm" in setting.assumed
        assert small.setting(name).zone.width_mm == pytest.approx(0.84 * diameter_mm)


def test_nanoknife_ben_david_2012(catalogue: Catalogue) -> None:
    device = catalogue.device("nanoknife")
    assert device.modality is Modality.IRE and not device.thermal
    pair = device.setting("pair-15mm-2250V")
    assert (pair.zone.width_mm, pair.zone.depth_mm, pair.zone.length_mm) == (30.0, 17.0, 30.0)
    assert (pair.n_probes, pair.probe_spacing_mm) == (2, 15.0)
    assert pair.parameters["voltage_v"] == 2250.0
    assert pair.parameters["exposure_mm"] == 20.0
    assert "length_mm" not in pair.assumed
    wide = device.setting("pair-20mm")
    assert (wide.zone.width_mm, wide.zone.depth_mm) == (39.0, 19.0)
    assert wide.zone.length_mm == pair.zone.length_mm and "length_mm" in wide.assumed
    assert wide.probe_spacing_mm == 20.0
    high = device.setting("pair-15mm-3000V")
    assert (high.zone.width_mm, high.zone.depth_mm) == (31.0, 20.0)


# --- look-up ------------------------------------------------------------------------


def test_lookup_is_case_insensitive(catalogue: Catalogue) -> None:
    assert catalogue.device("EMPRINT") is catalogue.device("emprint")
    assert catalogue.device("emprint").setting("100w-10MIN").name == "100W-10min"
    assert "NanoKnife" in catalogue and "nope" not in catalogue


def test_unknown_device_lists_the_names_and_how_to_add_one(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownDeviceError, match=r"'acme'.*emprint.*nanoknife") as info:
        catalogue.device("acme")
    assert CATALOGUE_ENV_VAR in str(info.value)
    assert "Did you mean" not in str(info.value)
    assert isinstance(info.value, ValueError)
    # A misspelling is answered with the nearest name.
    with pytest.raises(UnknownDeviceError, match=r"'emprnt'.*Did you mean 'emprint'\?"):
        catalogue.device("emprnt")


def test_unknown_setting_lists_the_settings(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownSettingError, match=r"'200W-1min'.*75W-5min.*150W-10min"):
        catalogue.device("emprint").setting("200W-1min")
    with pytest.raises(UnknownSettingError, match=r"Did you mean '150W-10min'\?"):
        catalogue.device("emprint").setting("150W-10mn")


def test_modality_accepts_strings() -> None:
    assert Modality("cryo") is Modality.CRYO
    assert Modality.IRE == "ire"


# --- user files -----------------------------------------------------------------------


def test_user_file_adds_a_device(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, [_device_json()])
    catalogue = load_catalogue(path)
    assert set(catalogue.names()) == SHIPPED_NAMES | {"my-probe"}
    setting = catalogue.device("my-probe").setting("60W-5min")
    assert setting.zone == ZoneSpec(30.0, 25.0, None, -8.0)
    assert setting.parameters == {"power_w": 60.0, "time_min": 5.0}


def test_user_file_replaces_a_device_by_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, [_device_json("Emprint", source="Site chart 2024")])
    emprint = load_catalogue(path).device("emprint")
    assert emprint.source == "Site chart 2024"
    assert list(emprint.settings) == ["60W-5min"]  # the whole entry is replaced


def test_env_var_paths_load_in_order(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = _write(tmp_path, [_device_json("a-probe")], "first.json")
    second = _write(tmp_path, [_device_json("b-probe")], "second.json")
    monkeypatch.setenv(CATALOGUE_ENV_VAR, os.pathsep.join([str(first), "", str(second)]))
    assert {"a-probe", "b-probe"} <= set(load_catalogue().names())
    # explicit paths come after the environment's: they win
    explicit = _write(tmp_path, [_device_json("a-probe", source="explicit")], "third.json")
    assert load_catalogue(explicit).device("a-probe").source == "explicit"


def test_missing_env_file_names_the_variable(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CATALOGUE_ENV_VAR, str(tmp_path / "absent.json"))
    with pytest.raises(FileNotFoundError, match=rf"absent\.json.*{CATALOGUE_ENV_VAR}"):
        load_catalogue()


def test_invalid_json_names_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "broken.json"
    path.write_text('{"devices": [', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json.*not valid JSON"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("device", "pattern"),
    [
        (
            _device_json(settings=[{"name": "s1", "zone": {"length_mm": 30.0, "width_mm": -2.0}}]),
            r"device 'my-probe', setting #0 's1'.*width_mm.*positive.*-2",
        ),
        (
            _device_json(settings=[{"name": "s1", "zone": {"lenght_mm": 30, "width_mm": 2}}]),
            r"device 'my-probe'.*unknown field.*lenght_mm",
        ),
        (_device_json(modality="laser"), r"device 'my-probe', field 'modality'.*laser"),
        (_device_json(confidence="V"), r"device 'my-probe'.*confidence.*'V'"),
        (_device_json(provenance="blog"), r"device 'my-probe'.*provenance"),
        ({"name": "x", "modality": "cryo"}, r"device 'x'.*missing required field"),
        (
            _device_json(
                settings=[
                    {
                        "name": "pair",
                        "zone": {"length_mm": 30, "width_mm": 30},
                        "n_probes": 2,
                    }
                ]
            ),
            r"setting #0 'pair'.*probe_spacing_mm",
        ),
        (_device_json(settings=[]), r"device 'my-probe', field 'settings'"),
    ],
)
def test_schema_errors_name_file_device_and_field(tmp_path, device, pattern) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, [device])
    with pytest.raises(ValueError, match=r"user\.json.*" + pattern):
        load_catalogue(path)


def test_duplicate_device_in_one_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, [_device_json("twin"), _device_json("TWIN")])
    with pytest.raises(ValueError, match=r"'twin' appears more than once"):
        load_catalogue(path)


def test_setting_and_zone_validate_on_construction() -> None:
    with pytest.raises(ValueError, match="length_mm must be a positive"):
        ZoneSpec(0.0, 10.0)
    with pytest.raises(ValueError, match="centre_offset_mm must be a finite"):
        ZoneSpec(10.0, 10.0, centre_offset_mm=math.nan)
    with pytest.raises(ValueError, match="n_probes must be 1 to 6"):
        Setting("x", ZoneSpec(10.0, 10.0), {}, n_probes=0)
    with pytest.raises(ValueError, match="assumed may name only ZoneSpec fields"):
        Setting("x", ZoneSpec(10.0, 10.0), {}, assumed=("power_w",))
