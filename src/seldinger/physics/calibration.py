"""Calibration of the thermal device models against the catalogue zones (homogeneous liver).

For each RF / MW setting, the power delivered to tissue is found (secant iterations on
log power) so that the simulated lethal zone (Ω ≥ 1) has the catalogue's width; the length
along the applicator is then compared, not fitted. Each cryo device is calibrated on its
single-probe setting (:func:`calibrate_cryo`): the probe surface temperature is bisected within
a physical range so that the simulated iceball (the catalogue isotherm, at the catalogue's
freeze time, in the catalogue's conditions) has the catalogue width; the length along the
probe (freezing length as modelled) and the multi-probe settings are then predictions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import VolumeGeometry
from seldinger.physics.ablation import load_catalogue
from seldinger.physics.thermal_devices import catalogue_setting, run_device
from seldinger.physics.tissue import load_tissues, property_maps

__all__ = [
    "CRYO_EXPOSURE_RANGE_MM",
    "CRYO_PROBE_RANGE_C",
    "CalibrationRow",
    "calibrate_cryo",
    "calibrate_setting",
    "cryo_fit_setting",
    "measure_zone_mm",
    "simulate_in_liver",
]

# argon Joule-Thomson probes: the gas leaves the orifice at about -186 °C; the probe surface
# in tissue is warmer (physical range of the fit, not a measurement) [U]
CRYO_PROBE_RANGE_C = (-185.0, -60.0)
CRYO_EXPOSURE_RANGE_MM = (10.0, 40.0)  # freezing length along the probe, fitted range [U]


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
    probe_c: float | None = None  # cryo: probe surface temperature of the run
    exposure_mm: float | None = None  # cryo: freezing length of the run

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
    *,
    probe_c: float | None = None,
    exposure_mm: float | None = None,
) -> CalibrationRow:
    """The device alone in homogeneous liver (a cube around the catalogue zone); a cryo
    device's ``probe_c`` / ``exposure_mm`` replace the stored ones when given."""
    model, cat = catalogue_setting(device, setting)
    if probe_c is not None:
        model = dataclasses.replace(model, probe_c=probe_c)
    if exposure_mm is not None:
        model = dataclasses.replace(model, exposure_mm=exposure_mm)
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
        model.probe_c if model.modality == "cryo" else None,
        model.exposure_mm if model.modality == "cryo" else None,
    )


def cryo_fit_setting(device: str) -> str:
    """The catalogue setting a cryo device is calibrated on: its (first) single-probe one."""
    entry = load_catalogue().device(device)
    for name in entry.settings:
        if entry.setting(name).n_probes == 1:
            return name
    raise BadInputError(f"Cryo device {device!r} has no single-probe setting to calibrate on.")


def _bisect_cryo(
    run: Callable[[float], CalibrationRow],
    bounds: tuple[float, float],
    error: Callable[[CalibrationRow], float],
    start: float,
    rtol: float,
    max_runs: int,
    resolution: float,
) -> CalibrationRow:
    """Bisection of ``run(x)`` on ``bounds`` to ``error == 0``, where the error grows with
    ``x``; returns the run of least |error|."""
    low, high = bounds
    x = float(np.clip(start, low, high))
    best: CalibrationRow | None = None
    tried: set[float] = set()
    for _ in range(max_runs):
        row = run(x)
        tried.add(x)
        if best is None or abs(error(row)) < abs(error(best)):
            best = row
        if abs(error(row)) <= rtol:
            break
        if error(row) < 0:
            low = x
        else:
            high = x
        if high - low > resolution:
            x = 0.5 * (low + high)
        elif (other := low if error(row) > 0 else high) not in tried:
            x = other  # the bracket's untried end (a bound of the range)
        else:
            break
    assert best is not None
    return best


def calibrate_cryo(
    device: str,
    spacing_mm: float = 1.0,
    rtol: float = 0.03,
    length_tol: float = math.inf,
    max_runs: int = 6,
) -> CalibrationRow:
    """Fit a cryo device on its single-probe setting (:func:`cryo_fit_setting`).

    The probe surface temperature (within :data:`CRYO_PROBE_RANGE_C`) is bisected so that the
    iceball has the catalogue width; the length is then a prediction, as for RF and MW. With
    a finite ``length_tol``, a length off by more than that has the freezing length (within
    :data:`CRYO_EXPOSURE_RANGE_MM`, whole grid steps) bisected to the catalogue length and the
    temperature fitted again to the width; not by default, since the catalogue's lengths of
    the Littrup probes are assumed (1.25 x the published diameters), and fitting them to
    10 mm made the cluster predictions worse (lengths -51 to -65 %).
    Returns the row of the fitted run (its ``probe_c`` / ``exposure_mm`` are the fit).
    """
    setting = cryo_fit_setting(device)
    model, _ = catalogue_setting(device, setting)

    def fit_width(exposure: float, start: float) -> CalibrationRow:
        # a warmer probe gives a smaller iceball: the width error falls with probe_c, so
        # bisect on -probe_c (the error grows with it)
        low, high = CRYO_PROBE_RANGE_C
        return _bisect_cryo(
            lambda x: simulate_in_liver(
                device, setting, spacing_mm=spacing_mm, probe_c=-x, exposure_mm=exposure
            ),
            (-high, -low),
            lambda r: r.width_error,
            -start,
            rtol,
            max_runs,
            2.0,
        )

    row = fit_width(model.exposure_mm, model.probe_c)
    # freezing length in whole grid steps
    low, high = (round(b / spacing_mm) for b in CRYO_EXPOSURE_RANGE_MM)
    for _ in range(2):  # length and width are coupled: alternate twice at most
        if abs(row.length_error) <= length_tol:
            break
        probe = model.probe_c if row.probe_c is None else row.probe_c
        exposure = model.exposure_mm if row.exposure_mm is None else row.exposure_mm

        def run_length(k: float, t: float = probe) -> CalibrationRow:
            return simulate_in_liver(
                device, setting, spacing_mm=spacing_mm, probe_c=t, exposure_mm=round(k) * spacing_mm
            )

        length_row = _bisect_cryo(
            run_length,
            (float(low), float(high)),
            lambda r: r.length_error,
            round(exposure / spacing_mm),
            rtol,
            max_runs,
            1.0,
        )
        fitted = exposure if length_row.exposure_mm is None else length_row.exposure_mm
        row = fit_width(round(fitted / spacing_mm) * spacing_mm, probe)
    return row


def calibrate_setting(
    device: str, setting: str, spacing_mm: float = 1.0, rtol: float = 0.03, max_runs: int = 10
) -> CalibrationRow:
    """The delivered power giving the catalogue width: secant on log P until the target is
    bracketed, then bisection; returns the closest run (the caller judges its error)."""
    model, cat = catalogue_setting(device, setting)
    if model.modality == "cryo":
        if setting.lower() == cryo_fit_setting(device).lower():
            return calibrate_cryo(device, spacing_mm)
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
