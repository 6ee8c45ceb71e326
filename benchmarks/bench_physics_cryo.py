"""15 minutes of cryoablation on 10⁶ voxels: the Numba enthalpy stencil beside NumPy.

Two 17 G argon probes (2 cm apart, 3 cm freezing length, −140 °C) in perfused liver on a
100³ grid of 1 mm; 900 s of the enthalpy method (latent heat, k and c of the phase, no
perfusion once frozen) by RKL1 super-time-stepping (5 s super-steps). The baseline is plain
forward Euler at 0.9 of the frozen tissue's limit written with NumPy slicing, timed on
``--numpy-steps`` steps and scaled. Goal:
≤ 60 s. Run from the project root::

    .venv/bin/python benchmarks/bench_physics_cryo.py [--n 100] [--numpy-steps 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

GOAL_S = 60.0


def numpy_steps(
    enthalpy: np.ndarray,
    geo: list[np.ndarray],
    k_u: float,
    c_u: float,
    props: object,
    fixed: np.ndarray,
    dt_over_v: float,
    steps: int,
) -> None:
    """The enthalpy step with NumPy (the baseline): T(H), k(T), harmonic faces, update."""
    c_f = 1079.0 * props.frozen_specific_heat_j_per_kg_k  # type: ignore[attr-defined]
    lat = 1079.0 * props.latent_heat_j_per_kg  # type: ignore[attr-defined]
    t_s, t_l = props.solidus_c, props.liquidus_c  # type: ignore[attr-defined]
    c_m = 0.5 * (c_f + c_u)
    h_l = c_m * (t_l - t_s) + lat
    for _ in range(steps):
        t = np.where(
            enthalpy <= 0,
            t_s + enthalpy / c_f,
            np.where(
                enthalpy >= h_l,
                t_l + (enthalpy - h_l) / c_u,
                t_s + enthalpy / (c_m + lat / (t_l - t_s)),
            ),
        )
        f = np.clip((t - t_s) / (t_l - t_s), 0, 1)
        k = props.frozen_conductivity_w_per_m_k + f * (k_u - props.frozen_conductivity_w_per_m_k)  # type: ignore[attr-defined]
        flux = np.zeros_like(t)
        for axis in range(3):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, -1), slice(1, None)
            ka, kb = k[tuple(lo)], k[tuple(hi)]
            flow = geo[axis] * 2 * ka * kb / (ka + kb) * (t[tuple(hi)] - t[tuple(lo)])
            flux[tuple(lo)] += flow
            flux[tuple(hi)] -= flow
        enthalpy += np.where(fixed, 0.0, dt_over_v * flux)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--numpy-steps", type=int, default=10)
    args = parser.parse_args(argv)
    from seldinger.physics.cryo import FreezingProperties, simulate_cryo
    from seldinger.physics.solvers import face_conductances

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    n = args.n
    shape = (n, n, n)
    k = np.full(shape, 0.52)
    rho = np.full(shape, 1079.0)
    c = np.full(shape, 3540.0)
    perfusion = np.full(shape, 3.6e-3 * 1000 * 3639)
    probes = np.zeros(shape, dtype=bool)
    c0 = n // 2
    probes[c0 - 10, c0, c0 - 15 : c0 + 15] = True
    probes[c0 + 10, c0, c0 - 15 : c0 + 15] = True
    simulate_cryo(
        (1.0,) * 3,
        k[:9, :9, :9],
        rho[:9, :9, :9],
        c[:9, :9, :9],
        perfusion[:9, :9, :9],
        probes[:9, :9, :9] | (np.indices((9, 9, 9)).sum(0) == 0),
        -140.0,
        1.0,
    )  # compile
    clock, cpu = time.perf_counter(), time.process_time()
    result = simulate_cryo((1.0,) * 3, k, rho, c, perfusion, probes, -140.0, args.seconds)
    t_numba, cpu_numba = time.perf_counter() - clock, time.process_time() - cpu
    geo = face_conductances(np.ones(shape), [1e-3] * 3)
    enthalpy = np.full(shape, 1e8)
    euler = simulate_cryo(
        (1.0,) * 3,
        k[:9, :9, :9],
        rho[:9, :9, :9],
        c[:9, :9, :9],
        perfusion[:9, :9, :9],
        probes[:9, :9, :9] | (np.indices((9, 9, 9)).sum(0) == 0),
        -140.0,
        1.0,
        super_step_s=None,
    )
    euler_steps = args.seconds / euler.time_step_s
    clock = time.perf_counter()
    numpy_steps(
        enthalpy,
        geo,
        0.52,
        1079 * 3540.0,
        FreezingProperties(),
        probes,
        euler.time_step_s / 1e-9,
        args.numpy_steps,
    )
    t_numpy = (time.perf_counter() - clock) / args.numpy_steps * euler_steps
    iso = {t: float(result.isotherm(t).sum()) / 1000 for t in (0.0, -20.0, -40.0)}
    sweeps = result.n_steps * result.stages
    print(
        f"{n**3:,} cells, {args.seconds:g} s in {result.n_steps} RKL1 super-steps of "
        f"{result.time_step_s:.2f} s x {result.stages} stages = {sweeps} sweeps (forward Euler: "
        f"{euler_steps:.0f} steps of {euler.time_step_s:.3f} s)"
    )
    print(
        f"enthalpy, Numba RKL1:           {t_numba:7.2f} s wall, {cpu_numba:.2f} s CPU  "
        f"({t_numba / sweeps / n**3 * 1e9:.1f} ns/cell/sweep)"
    )
    print(
        f"enthalpy, NumPy forward Euler:  {t_numpy:7.2f} s  (scaled from {args.numpy_steps} "
        f"steps; {t_numpy / t_numba:.1f}x slower)"
    )
    print(
        f"goal ≤ {GOAL_S:g} s: {'met' if t_numba <= GOAL_S else 'NOT met'}; iceball 0 / −20 / "
        "−40 °C: " + " / ".join(f"{v:.1f}" for v in iso.values()) + " mL"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
