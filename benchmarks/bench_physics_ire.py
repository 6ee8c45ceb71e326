"""IRE field of one electrode pair on 10⁶ voxels: pyamg (AMG-preconditioned CG) beside SuperLU.

Two 19 G needles (1.5 cm apart, 2 cm exposure, 2250 V) in homogeneous liver on a
100 × 100 × 100 grid of 1.25 mm (10⁶ cells): assembly, AMG set-up and CG solve, timed
(best of ``--repeat``). The baseline is scipy's sparse direct solver (SuperLU) on the same
problem; on 10⁶ cells its fill-in takes minutes and gigabytes, so by default it runs on
the ``--direct-cells`` grid (and pyamg again on that grid, for a like-for-like ratio). Goal:
≤ 5 s for the pair on 10⁶ cells. Run from the project root::

    .venv/bin/python benchmarks/bench_physics_ire.py [--repeat 2] [--direct-cells 64000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

GOAL_S = 5.0


def _problem(n: int) -> tuple[object, np.ndarray, list[object], list[object]]:
    from seldinger.imaging import VolumeGeometry
    from seldinger.physics.electrodes import Electrode
    from seldinger.physics.ire import ElectrodePair

    spacing = 1.25
    origin = -(n // 2) * spacing
    geometry = VolumeGeometry.from_spacing((n, n, n), (spacing,) * 3, (origin,) * 3)
    needles = [
        Electrode((-7.5, 0.0, 10.0), (0, 0, 1), 20.0, 0.5),
        Electrode((7.5, 0.0, 10.0), (0, 0, 1), 20.0, 0.5),
    ]
    return geometry, np.full(geometry.shape, 0.12), needles, [ElectrodePair(0, 1, 2250.0)]


def _time(n: int, method: str, repeat: int) -> tuple[float, float, float, float]:
    from seldinger.physics.ire import solve_ire

    best, best_cpu, midpoint, current = np.inf, np.inf, 0.0, 0.0
    geometry, sigma, needles, pairs = _problem(n)
    for _ in range(repeat):
        clock, cpu = time.perf_counter(), time.process_time()
        result = solve_ire(geometry, sigma, needles, pairs, method=method)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - clock)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        c = n // 2
        midpoint = float(result.max_field_v_per_cm[c, c, c])
        current = result.pairs[0].current_a
    return best, best_cpu, midpoint, current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--direct-cells", type=int, default=64_000)
    args = parser.parse_args(argv)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    _time(21, "amg", 1)  # warm-up (imports)
    rows = []
    for cells, methods in ((args.direct_cells, ("amg", "direct")), (args.cells, ("amg",))):
        n = round(cells ** (1 / 3))
        for method in methods:
            seconds, cpu, midpoint, current = _time(n, method, args.repeat)
            rows.append((n**3, method, seconds, cpu, midpoint, current))
    print(
        f"{'cells':>10s} {'solver':>8s} {'wall s':>8s} {'CPU s':>8s} {'E mid V/cm':>11s} {'current A':>10s}"
    )
    for cells, method, seconds, cpu, midpoint, current in rows:
        print(
            f"{cells:10,d} {method:>8s} {seconds:8.2f} {cpu:8.2f} {midpoint:11.1f} {current:10.3f}"
        )
    small = {m: s for c, m, s, *_ in rows if c == rows[0][0]}
    print(f"pyamg vs SuperLU at {rows[0][0]:,} cells: {small['direct'] / small['amg']:.1f}x faster")
    full = rows[-1][2]
    print(
        f"one pair on {rows[-1][0]:,} cells: {full:.2f} s (goal ≤ {GOAL_S} s): "
        f"{'met' if full <= GOAL_S else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
