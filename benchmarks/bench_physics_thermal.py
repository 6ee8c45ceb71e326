"""10 minutes of RF ablation on 10⁶ voxels: the Numba stencil beside a NumPy baseline.

A Cool-tip-type electrode (2 cm exposure, cooled to 25 °C, 12 W into tissue) in perfused
liver on a 100³ grid of 1 mm: the RF potential (AMG-CG), then 600 s of Pennes bioheat with
Arrhenius damage and perfusion shut-down by forward Euler at 0.9 of its stability limit.
The baseline is the same explicit step written with NumPy slicing, timed on ``--numpy-steps``
steps and scaled to the run's step count. Goal: ≤ 60 s. Run from the project root::

    .venv/bin/python benchmarks/bench_physics_thermal.py [--n 100] [--numpy-steps 20]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

GOAL_S = 60.0


def numpy_steps(
    temperature: np.ndarray,
    omega: np.ndarray,
    grid: object,
    heat: np.ndarray,
    dt: float,
    steps: int,
) -> np.ndarray:
    """The Pennes forward-Euler step with NumPy slices (the baseline)."""
    from seldinger.physics.bioheat import ARRHENIUS_A_PER_S, ARRHENIUS_EA_J_PER_MOL

    gx, gy, gz = grid.faces  # type: ignore[attr-defined]
    cap, perf, fixed = grid.capacity_j_per_k, grid.perfusion_w_per_k, grid.fixed  # type: ignore[attr-defined]
    t = temperature.copy()
    for _ in range(steps):
        omega += dt * ARRHENIUS_A_PER_S * np.exp(-ARRHENIUS_EA_J_PER_MOL / 8.314 / (t + 273.15))
        flux = np.zeros_like(t)
        for axis, g in enumerate((gx, gy, gz)):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, -1), slice(1, None)
            flow = g * (t[tuple(hi)] - t[tuple(lo)])
            flux[tuple(lo)] += flow
            flux[tuple(hi)] -= flow
        w = np.where(omega >= 1.0, 0.0, perf)
        new = t + dt * (flux + heat - w * (t - 37.0)) / cap
        t = np.where(fixed, t, new)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--numpy-steps", type=int, default=20)
    args = parser.parse_args(argv)
    from seldinger.imaging import VolumeGeometry
    from seldinger.physics.bioheat import ThermalGrid, simulate_pennes, stable_time_step_s
    from seldinger.physics.electrodes import Electrode, apply_well_factor
    from seldinger.physics.heat_sources import rf_electrode_heat_w
    from seldinger.physics.tissue import load_tissues

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    liver = load_tissues()["liver"]
    n = args.n
    geometry = VolumeGeometry.from_spacing((n, n, n), (1.0,) * 3, (-(n // 2),) * 3)
    shape = geometry.shape
    electrode = Electrode((0.0, 0.0, 10.0), (0, 0, 1), 20.0, 0.75)
    clock = time.perf_counter()
    heat, cells, rasters = rf_electrode_heat_w(
        geometry, np.full(shape, liver.electrical_conductivity_s_per_m), [electrode], 12.0
    )
    t_source = time.perf_counter() - clock
    grid = ThermalGrid.from_maps(
        (1.0,) * 3,
        np.full(shape, liver.thermal_conductivity_w_per_m_k),
        np.full(shape, liver.heat_capacity_j_per_m3_k),
        np.full(shape, liver.perfusion_w_per_m3_k),
        fixed=cells,
    )
    for raster in rasters:
        apply_well_factor(grid.faces, raster)
    start = np.where(cells, 25.0, 37.0)
    simulate_pennes(grid, start, heat, 2.0)  # compile
    clock, cpu = time.perf_counter(), time.process_time()
    result = simulate_pennes(grid, start, heat, args.seconds)
    t_numba, cpu_numba = time.perf_counter() - clock, time.process_time() - cpu
    dt = 0.9 * stable_time_step_s(grid)
    clock = time.perf_counter()
    numpy_steps(start, np.zeros(shape), grid, heat, dt, args.numpy_steps)
    t_numpy = (time.perf_counter() - clock) / args.numpy_steps * result.n_steps
    zone_ml = float(result.lethal.sum()) / 1000.0
    print(
        f"{n**3:,} cells, {args.seconds:g} s in {result.n_steps} steps of {result.time_step_s:.2f} s"
    )
    print(f"RF potential (AMG-CG):     {t_source:7.2f} s")
    print(
        f"bioheat, Numba stencil:    {t_numba:7.2f} s wall, {cpu_numba:.2f} s CPU  ({t_numba / result.n_steps / n**3 * 1e9:.1f} ns/cell/step)"
    )
    print(
        f"bioheat, NumPy baseline:   {t_numpy:7.2f} s  (scaled from {args.numpy_steps} steps; {t_numpy / t_numba:.1f}x slower)"
    )
    total = t_source + t_numba
    print(
        f"total {total:.1f} s (goal ≤ {GOAL_S:g} s): {'met' if total <= GOAL_S else 'NOT met'}; "
        f"lethal zone {zone_ml:.1f} mL, max {result.peak_temperature_c.max():.0f} °C"
    )
    assert math.isfinite(total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
