"""Calibration of the thermal device models against the catalogue zones (homogeneous liver).

For each RF / MW setting, the power delivered to tissue is found (secant iterations on
log power) so that the simulated lethal zone (Ω ≥ 1) has the catalogue's width; the length
along the applicator is then compared, not fitted. Cryo models are run as they are (probe
temperature from the device model) and compared on the catalogue isotherm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.imaging import VolumeGeometry
from seldinger.physics.thermal_devices import catalogue_setting, run_device
from seldinger.physics.tissue import load_tissues, property_maps

__all__ = ["CalibrationRow", "calibrate_setting", "measure_zone_mm", "simulate_in_liver"]


def measure_zone_mm(
    zone: npt.NDArray[np.bool_],
    geometry: VolumeGeometry,
    tip_lps_mm: npt.ArrayLike,
    direction: npt.ArrayLike,
) -> tuple[float, float]:
    """(length along the applicator, largest width across it), voxel-edge to voxel-edge, mm.

    The width is the larger of the zone's extents along the two grid axes across the
    applicator (the applicator must be along a grid axis).
    """
    if not zone.any():
        return 0.0, 0.0
    d = np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    points = geometry.index_to_lps(np.argwhere(zone))
    spacing = np.asarray(geometry.spacing_mm)
    axis = int(np.argmax(np.abs(geometry.direction.T @ d)))
    along = (points - np.asarray(tip_lps_mm)) @ d
    length = float(along.max() - along.min() + spacing[axis])
    widths = []
    for other in range(3):
        if other == axis:
            continue
        coordinate = points @ geometry.direction[:, other]
        widths.append(float(coordinate.max() - coordinate.min() + spacing[other]))
    return length, max(widths)


@dataclass(frozen=True)
class CalibrationRow:
    """One row of the calibration table."""

    device: str
    setting: str
    delivered_power_w: float
    duration_s: float
    perfused: bool
    catalogue_length_mm: float
    catalogue_width_mm: float
    length_mm: float
    width_mm: float

    @property
    def length_error(self) -> float:
        return self.length_mm / self.catalogue_length_mm - 1.0

    @property
    def width_error(self) -> float:
        return self.width_mm / self.catalogue_width_mm - 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "length_error": round(self.length_error, 4),
            "width_error": round(self.width_error, 4),
        }


def simulate_in_liver(
    device: str,
    setting: str,
    delivered_power_w: float | None = None,
    spacing_mm: float = 1.0,
) -> CalibrationRow:
    """The device alone in homogeneous liver (a cube around the catalogue zone)."""
    model, cat = catalogue_setting(device, setting)
    length, width, _ = cat.zone.diameters_mm
    half = 0.75 * max(length, width) + 12.0
    n = 2 * math.ceil(half / spacing_mm) + 1
    origin = -(n // 2) * spacing_mm
    geometry = VolumeGeometry.from_spacing((n, n, n), (spacing_mm,) * 3, (origin,) * 3)
    direction = (0.0, 0.0, 1.0)
    tip = (0.0, 0.0, -cat.zone.centre_offset_mm)
    liver = load_tissues()["liver"]
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    maps = property_maps(labels, [liver])
    run = run_device(
        geometry,
        maps,
        np.full(geometry.shape, liver.density_kg_per_m3),
        np.full(geometry.shape, liver.specific_heat_j_per_kg_k),
        model,
        cat,
        setting,
        tip,
        direction,
        delivered_power_w=delivered_power_w,
    )
    sim_length, sim_width = measure_zone_mm(run.zone, geometry, tip, direction)
    return CalibrationRow(
        model.name,
        cat.name,
        run.setting.delivered_power_w,
        run.setting.duration_s,
        run.setting.perfused,
        length,
        width,
        sim_length,
        sim_width,
    )


def calibrate_setting(
    device: str, setting: str, spacing_mm: float = 1.0, rtol: float = 0.03, max_runs: int = 10
) -> CalibrationRow:
    """The delivered power giving the catalogue width: secant on log P until the target is
    bracketed, then bisection; returns the closest run (the caller judges its error)."""
    model, cat = catalogue_setting(device, setting)
    if model.modality == "cryo":
        return simulate_in_liver(device, setting, spacing_mm=spacing_mm)
    target = cat.zone.width_mm
    guess = model.setting(setting, cat).delivered_power_w
    calibrated = any(key.lower() == setting.lower() for key in model.settings)
    guess = guess * 0.2 if model.modality == "mw" and not calibrated else guess
    row = simulate_in_liver(device, setting, guess, spacing_mm)
    best = row
    low: float | None = None  # log power giving too small a zone
    high: float | None = None
    previous: tuple[float, float] | None = None
    for _ in range(max_runs):
        log_p, log_w = math.log(row.delivered_power_w), math.log(max(row.width_mm, 1e-3))
        if abs(row.width_error) < abs(best.width_error):
            best = row
        if abs(row.width_error) <= rtol:
            return row
        if row.width_mm < target:
            low = log_p if low is None else max(low, log_p)
        else:
            high = log_p if high is None else min(high, log_p)
        if low is not None and high is not None:
            new_log = 0.5 * (low + high)
        elif previous is not None and abs(log_w - previous[1]) > 1e-9:
            slope = (log_w - previous[1]) / (log_p - previous[0])
            new_log = log_p + (math.log(target) - log_w) / max(slope, 0.05)
            new_log = float(np.clip(new_log, log_p - 1.0, log_p + 1.0))
        else:
            new_log = log_p + (0.4 if row.width_mm < target else -0.4)
        previous = (log_p, log_w)
        row = simulate_in_liver(device, setting, math.exp(new_log), spacing_mm)
    return best if abs(best.width_error) <= abs(row.width_error) else row
