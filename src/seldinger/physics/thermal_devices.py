"""Source models of the catalogue's thermal devices, and running them on a grid.

Each RF, MW and cryo device of :mod:`seldinger.physics.ablation.catalogue` has a model in
``physics/data/thermal_devices.json``: applicator radius and active length, an RF electrode's
coolant temperature, a MW antenna's design and frequency
(:class:`~seldinger.physics.mw_antenna.CoaxialSlotAntenna`, its SAR solved from Maxwell's
equations), a cryoprobe's temperature and the isotherm its catalogue zone stands for. The power each
RF / MW setting delivers to tissue, and each cryoprobe's surface temperature (and, where
needed, its freezing length), are calibrated (:mod:`seldinger.physics.calibration`) so that
the simulated zone in homogeneous liver matches the catalogue; the catalogue itself is not
changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import VolumeGeometry
from seldinger.physics.ablation import load_catalogue
from seldinger.physics.ablation.catalogue import Setting
from seldinger.physics.ablation.zones import cluster_offsets_mm
from seldinger.physics.bioheat import ThermalGrid, ThermalResult, simulate_pennes
from seldinger.physics.cryo import CryoResult, FreezingProperties, simulate_cryo
from seldinger.physics.electrodes import Electrode, apply_well_factor, rasterise_electrode
from seldinger.physics.heat_sources import mw_antenna_heat_w, rf_electrode_heat_w
from seldinger.physics.mw_antenna import LIVER_2450MHZ, CoaxialSlotAntenna, TissueDielectric
from seldinger.physics.tissue import ARTERIAL_TEMPERATURE_C, PropertyMaps

__all__ = [
    "DeviceRun",
    "SettingModel",
    "ThermalDeviceModel",
    "applicators",
    "catalogue_setting",
    "load_thermal_devices",
    "run_device",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
DEFAULT_RF_DURATION_S = 720.0  # 12 min, Goldberg et al. 1998 protocol [U]


@dataclass(frozen=True)
class SettingModel:
    """A setting's calibrated delivery: power into tissue, duration, perfusion."""

    delivered_power_w: float
    duration_s: float
    perfused: bool


@dataclass(frozen=True)
class ThermalDeviceModel:
    """The physical model of one catalogue device (see the module docstring)."""

    name: str
    modality: str  # "rf", "mw" or "cryo"
    radius_mm: float
    exposure_mm: float
    source: str
    settings: Mapping[str, SettingModel] = field(default_factory=dict)
    coolant_c: float | None = None
    antenna: CoaxialSlotAntenna | None = None
    frequency_hz: float = 2.45e9
    probe_c: float = -140.0
    isotherm_c: float = 0.0
    freeze_s: float = 600.0
    initial_c: float = ARTERIAL_TEMPERATURE_C
    perfused: bool | None = None
    calibrated_setting: str | None = None  # cryo: the setting probe_c / exposure_mm fit

    def setting(self, name: str, catalogue_setting: Setting | None = None) -> SettingModel:
        """The calibrated setting, or a default from the catalogue's parameters."""
        for key, value in self.settings.items():
            if key.lower() == name.lower():
                return value
        if catalogue_setting is None:
            raise BadInputError(
                f"Device {self.name!r} has no calibrated setting {name!r}; calibrated: "
                f"{list(self.settings)}."
            )
        params = catalogue_setting.parameters
        minutes = params.get("time_min", params.get("freeze_min"))
        duration = self.freeze_s if self.modality == "cryo" else DEFAULT_RF_DURATION_S
        perfused = "exvivo" not in name.lower() if self.perfused is None else self.perfused
        return SettingModel(
            delivered_power_w=float(params.get("power_w", 30.0)),
            duration_s=duration if minutes is None else 60.0 * float(minutes),
            perfused=perfused,
        )


def load_thermal_devices() -> dict[str, ThermalDeviceModel]:
    """The shipped device models, keyed by catalogue name (lower case)."""
    text = resources.files("seldinger.physics").joinpath("data", "thermal_devices.json")
    document: dict[str, Any] = json.loads(text.read_text("utf-8"))
    models = {}
    for name, raw in document["devices"].items():
        raw = dict(raw)
        settings = {k: SettingModel(**v) for k, v in raw.pop("settings", {}).items()}
        if "antenna" in raw:
            raw["antenna"] = CoaxialSlotAntenna(**raw.pop("antenna"))
        models[name.lower()] = ThermalDeviceModel(name=name, settings=settings, **raw)
    return models


def applicators(
    model: ThermalDeviceModel,
    setting: Setting,
    tip_lps_mm: npt.ArrayLike,
    direction: npt.ArrayLike,
) -> list[Electrode]:
    """The probes of a setting (one, or a parallel cluster around the axis)."""
    d = np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    helper = np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    offsets = cluster_offsets_mm(setting.n_probes, setting.probe_spacing_mm or 1.0)
    tip = np.asarray(tip_lps_mm, dtype=np.float64)
    return [
        Electrode(tuple(tip + a * u + b * v), tuple(d), model.exposure_mm, model.radius_mm)
        for a, b in offsets
    ]


@dataclass(frozen=True, eq=False)
class DeviceRun:
    """A device run: the thermal or cryo result, the lethal zone, and what was used."""

    zone: BoolArray
    temperature_c: FloatArray
    damage_omega: FloatArray | None
    heat_result: ThermalResult | None
    cryo_result: CryoResult | None
    setting: SettingModel
    notes: list[str]


def run_device(
    geometry: VolumeGeometry,
    maps: PropertyMaps,
    density_kg_per_m3: FloatArray,
    specific_heat_j_per_kg_k: FloatArray,
    model: ThermalDeviceModel,
    catalogue_setting: Setting,
    setting_name: str,
    tip_lps_mm: npt.ArrayLike,
    direction: npt.ArrayLike,
    *,
    vessels: BoolArray | None = None,
    active: BoolArray | None = None,
    linear: bool = False,
    duration_s: float | None = None,
    delivered_power_w: float | None = None,
) -> DeviceRun:
    """Simulate a catalogue device at a setting, its axis at ``tip_lps_mm``/``direction``.

    ``vessels`` are held at blood temperature (heat sink).
    """
    calibrated = model.setting(setting_name, catalogue_setting)
    setting = SettingModel(
        delivered_power_w=calibrated.delivered_power_w
        if delivered_power_w is None
        else delivered_power_w,
        duration_s=calibrated.duration_s if duration_s is None else duration_s,
        perfused=calibrated.perfused,
    )
    probes = applicators(model, catalogue_setting, tip_lps_mm, direction)
    perfusion = (
        maps.perfusion_w_per_m3_k if setting.perfused else np.zeros_like(maps.perfusion_w_per_m3_k)
    )
    fixed = np.zeros(geometry.shape, dtype=bool) if vessels is None else vessels.copy()
    notes: list[str] = []
    if model.modality == "cryo":
        probe_cells = np.zeros(geometry.shape, dtype=bool)
        factors = [
            np.ones(tuple(n - (a == axis) for a, n in enumerate(geometry.shape)))
            for axis in range(3)
        ]
        for n, probe in enumerate(probes):
            raster = rasterise_electrode(probe, geometry, active, n)
            probe_cells[tuple(raster.cells.T)] = True
            apply_well_factor(factors, raster)
        frozen = simulate_cryo(
            geometry.spacing_mm,
            maps.thermal_conductivity_w_per_m_k,
            density_kg_per_m3,
            specific_heat_j_per_kg_k,
            perfusion,
            probe_cells,
            model.probe_c,
            setting.duration_s,
            freezing=FreezingProperties(),
            initial_c=model.initial_c,
            fixed=fixed,
            active=active,
            face_factors=factors,
        )
        return DeviceRun(
            frozen.isotherm(model.isotherm_c),
            frozen.temperature_c,
            None,
            None,
            frozen,
            setting,
            notes,
        )
    grid = ThermalGrid.from_maps(
        geometry.spacing_mm,
        maps.thermal_conductivity_w_per_m_k,
        maps.heat_capacity_j_per_m3_k,
        perfusion,
        fixed,
        active,
    )
    initial = np.full(geometry.shape, model.initial_c)
    cells = np.zeros(geometry.shape, dtype=bool)
    if model.modality == "rf":
        heat, cells, rasters = rf_electrode_heat_w(
            geometry,
            maps.electrical_conductivity_s_per_m,
            probes,
            setting.delivered_power_w,
            active,
        )
        if model.coolant_c is not None:
            grid.fixed[cells] = True
            initial[cells] = model.coolant_c
            for raster in rasters:
                apply_well_factor(grid.faces, raster)
    elif model.modality == "mw":
        if model.antenna is None:
            raise BadInputError(f"MW device {model.name!r} names no antenna design.")
        # homogeneous-tissue pattern: the maps carry no microwave properties, so liver's
        # (physics.md §2.2) at the device frequency are used [U elsewhere than in liver]
        tissue = TissueDielectric(
            LIVER_2450MHZ.relative_permittivity,
            LIVER_2450MHZ.conductivity_s_per_m,
            model.frequency_hz,
        )
        heat = np.zeros(geometry.shape)
        for probe in probes:
            heat += mw_antenna_heat_w(
                geometry,
                probe,
                setting.delivered_power_w / len(probes),
                design=model.antenna,
                tissue=tissue,
                active=active,
            )
        notes.append(
            f"MW SAR: {model.antenna.name} antenna solved in homogeneous liver "
            f"(ε_r {tissue.relative_permittivity}, σ {tissue.conductivity_s_per_m} S/m, "
            f"{tissue.frequency_hz / 1e9:g} GHz)"
        )
    else:
        raise BadInputError(f"Unknown modality {model.modality!r} of device {model.name!r}.")
    if vessels is not None:
        heat = np.where(vessels, 0.0, heat)
    result = simulate_pennes(grid, initial, heat, setting.duration_s, linear=linear)
    if not math.isfinite(float(result.peak_temperature_c.max())):
        raise BadInputError("The thermal simulation diverged; report this with the inputs.")
    zone = result.lethal
    if model.modality == "rf":
        zone = zone | cells  # the cooled electrode's own cells: the needle track, not tissue left
    return DeviceRun(zone, result.temperature_c, result.damage_omega, result, None, setting, notes)


def catalogue_setting(device: str, setting: str) -> tuple[ThermalDeviceModel, Setting]:
    """The model and the catalogue setting of ``device``/``setting``."""
    models = load_thermal_devices()
    entry = load_catalogue().device(device)
    model = models.get(entry.name.lower())
    if model is None:
        raise BadInputError(
            f"Device {device!r} has no physics model (thermal devices: {sorted(models)}); "
            "IRE devices are simulated with `seldinger simulate ire`."
        )
    return model, entry.setting(setting)
