"""Pennes bioheat and Arrhenius damage against the closed forms of physics.md §2.3–2.4."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erfc

from seldinger.imaging import VolumeGeometry
from seldinger.physics.bioheat import (
    ThermalGrid,
    simulate_pennes,
    steady_temperature_c,
    time_to_lethal_damage_s,
)
from seldinger.physics.electrodes import Electrode
from seldinger.physics.heat_sources import rf_electrode_heat_w
from seldinger.physics.tissue import load_tissues

# the liver test set of physics.md §2.4: L = 6.300 mm
K, RHO, C, PERFUSION_PER_S = 0.52, 1079.0, 3540.0, 3.6e-3
SINK = PERFUSION_PER_S * 1000.0 * 3639.0
POWER_W = 10.0


def liver_cube(spacing_mm: float, half_cells: int) -> tuple[ThermalGrid, np.ndarray, int]:
    n = 2 * half_cells + 1
    shape = (n, n, n)
    grid = ThermalGrid.from_maps(
        (spacing_mm,) * 3, np.full(shape, K), np.full(shape, RHO * C), np.full(shape, SINK)
    )
    source = np.zeros(shape)
    source[half_cells, half_cells, half_cells] = POWER_W
    return grid, source, half_cells


def steady_point(r_mm: float) -> float:
    length_m = math.sqrt(K / SINK)
    return POWER_W / (4 * math.pi * K * r_mm / 1000) * math.exp(-r_mm / 1000 / length_m)


def transient_point(r_mm: float, t_s: float) -> float:
    r = r_mm / 1000
    length_m = math.sqrt(K / SINK)
    alpha = K / (RHO * C)
    tau = RHO * C / SINK
    u = r / (2 * math.sqrt(alpha * t_s))
    v = math.sqrt(t_s / tau)
    return (
        POWER_W
        / (8 * math.pi * K * r)
        * (math.exp(-r / length_m) * erfc(u - v) + math.exp(r / length_m) * erfc(u + v))
    )


def test_the_oracle_functions_reproduce_the_reference_tables() -> None:
    assert steady_point(5) == pytest.approx(138.406, rel=1e-4)
    assert steady_point(20) == pytest.approx(3.1997, rel=1e-4)
    assert transient_point(5, 60) == pytest.approx(58.5714, rel=1e-4)
    assert transient_point(10, 600) == pytest.approx(29.8142, rel=1e-4)


@pytest.mark.parametrize(
    ("temperature_c", "reference_s"),
    [(50.0, 61.05), (55.0, 14.16), (60.0, 3.431), (65.0, 0.867), (70.0, 0.228)],
)
def test_arrhenius_time_to_lethal_damage_within_1_percent(
    temperature_c: float, reference_s: float
) -> None:
    assert time_to_lethal_damage_s(temperature_c) == pytest.approx(reference_s, rel=0.01)
    # through the simulation kernel: a block held at the temperature for that long
    shape = (3, 3, 3)
    grid = ThermalGrid.from_maps(
        (1.0,) * 3,
        np.full(shape, K),
        np.full(shape, RHO * C),
        np.zeros(shape),
        fixed=np.ones(shape, dtype=bool),
    )
    result = simulate_pennes(grid, temperature_c, None, reference_s, time_step_s=reference_s / 500)
    assert result.damage_omega[1, 1, 1] == pytest.approx(1.0, rel=0.01)


def test_steady_point_source_within_2_percent_from_5_to_20_mm() -> None:
    # 1 mm for 10–20 mm; the near field at 5 mm needs 0.5 mm (lattice Green function)
    grid, source, c = liver_cube(1.0, 40)
    temperature = steady_temperature_c(grid, source, boundary_c=37.0)
    for r_mm in (10, 15, 20):
        assert temperature[c + r_mm, c, c] - 37 == pytest.approx(steady_point(r_mm), rel=0.02)
    grid, source, c = liver_cube(0.5, 36)  # ± 18 mm: the Dirichlet boundary costs < 0.5 % at 5 mm
    temperature = steady_temperature_c(grid, source, boundary_c=37.0)
    assert temperature[c + 10, c, c] - 37 == pytest.approx(steady_point(5.0), rel=0.02)


def test_transient_point_source_in_perfused_liver_within_2_percent() -> None:
    grid, source, c = liver_cube(0.5, 30)
    early = simulate_pennes(grid, 37.0, source, 60.0, linear=True)
    assert early.temperature_c[c + 10, c, c] - 37 == pytest.approx(transient_point(5, 60), rel=0.02)
    spacing = 5 / 7
    grid, source, c = liver_cube(spacing, 28)
    late = simulate_pennes(grid, 37.0, source, 600.0, linear=True)
    for r_mm in (5, 10):
        cell = c + round(r_mm / spacing)
        rise = late.temperature_c[cell, c, c] - 37
        assert rise == pytest.approx(transient_point(r_mm, 600), rel=0.02)
    assert late.time_step_s < 0.6  # forward Euler at 0.9 of its limit (0.62 s here)


def test_a_vessel_beside_an_rf_electrode_shrinks_the_zone_on_its_side() -> None:
    liver = load_tissues()["liver"]
    spacing = 1.0
    n = 61
    geometry = VolumeGeometry.from_spacing((n, n, n), (spacing,) * 3, (-30.0, -30.0, -30.0))
    shape = geometry.shape
    electrode = Electrode((0.0, 0.0, 10.0), (0, 0, 1), 20.0, 0.75)
    sigma = np.full(shape, liver.electrical_conductivity_s_per_m)
    heat, cells, _ = rf_electrode_heat_w(geometry, sigma, [electrode], 12.0)

    def zone(vessel: bool) -> tuple[np.ndarray, np.ndarray]:
        x, y, _ = np.meshgrid(*(np.arange(n) * spacing - 30.0,) * 3, indexing="ij")
        # 6 mm vessel, parallel to the electrode, its wall 5 mm from the electrode's axis
        vessel_cells = (np.hypot(x - 8.0, y) <= 3.0) if vessel else np.zeros(shape, bool)
        fixed = vessel_cells | cells
        grid = ThermalGrid.from_maps(
            (spacing,) * 3,
            np.full(shape, liver.thermal_conductivity_w_per_m_k),
            np.full(shape, liver.heat_capacity_j_per_m3_k),
            np.full(shape, liver.perfusion_w_per_m3_k),
            fixed=fixed,
        )
        start = np.where(cells, 25.0, 37.0)
        result = simulate_pennes(grid, start, np.where(vessel_cells, 0.0, heat), 300.0)
        return result.lethal, x

    plain, x = zone(False)
    sunk, _ = zone(True)
    mid = n // 2
    reach_plain = x[plain[:, mid, mid + 0], mid, mid].max()
    reach_sunk = x[sunk[:, mid, mid], mid, mid].max()
    reach_away = -x[sunk[:, mid, mid], mid, mid].min()
    assert reach_plain > 6.0  # without the vessel the zone would reach past its wall
    assert reach_sunk < 5.0  # with it, it stops short of the blood
    assert reach_plain - reach_sunk >= 2.0
    assert reach_away == pytest.approx(-x[plain[:, mid, mid], mid, mid].min(), abs=1.5)
