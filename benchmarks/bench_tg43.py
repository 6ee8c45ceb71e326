"""TG-43U1 dose superposition: 100 seeds of 6711 on a 1 mm grid of 100 x 100 x 100 points.

Times ``dose_on_grid`` (Numba, parallel over points, 2-D line-source model), and in the
same process the straightforward per-seed NumPy implementation
(``dose_rate_reference_cgy_per_h``) on the first ``--baseline-seeds`` seeds, its time
scaled to all seeds. Prints both, the speed-up, the largest relative difference between
them (on those seeds) and the peak resident memory rise. Goal: <= 0.5 s on 2 cores. Run
from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_tg43.py [--repeat 3] [--baseline-seeds 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

GOAL_GRID_S = 0.5
N_SEEDS = 100
SHAPE = (100, 100, 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-seeds", type=int, default=10)
    args = parser.parse_args(argv)
    import numba

    from seldinger.imaging import Volume
    from seldinger.physics.tg43 import dose_on_grid, dose_rate_reference_cgy_per_h, load_seed_data

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
    )
    data = load_seed_data("6711")
    rng = np.random.default_rng(20240611)
    affine = np.eye(4)
    affine[:3, 3] = -49.5  # grid centred on LPS (0, 0, 0), 1 mm spacing
    grid = Volume(np.zeros(SHAPE, np.float32), affine)
    seeds = rng.uniform(-20.0, 20.0, (N_SEEDS, 3))  # a 4 cm implant in a 10 cm grid
    axes = rng.normal(size=(N_SEEDS, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    sk_u = 0.635  # 0.5 mCi

    dose_on_grid(grid, seeds[:1], axes[:1], sk_u, data)  # compile (cached on disk)
    base_kb = rss_kb("VmRSS")
    reset_peak()
    times = []
    for _ in range(args.repeat):
        clock = time.perf_counter()
        dose = dose_on_grid(grid, seeds, axes, sk_u, data)
        times.append(time.perf_counter() - clock)
    peak_mb = (rss_kb("VmHWM") - base_kb) / 1024
    grid_s = min(times)
    pairs = N_SEEDS * int(np.prod(SHAPE))
    print(
        f"dose_on_grid: {grid_s:.3f} s best of {args.repeat} ({pairs / grid_s / 1e6:.0f} M "
        f"point-seed pairs/s); max {float(dose.array.max()):.1f} cGy/h"
    )

    k = min(args.baseline_seeds, N_SEEDS)
    points = grid.index_to_lps(np.indices(SHAPE).reshape(3, -1).T)
    clock = time.perf_counter()
    slow = dose_rate_reference_cgy_per_h(points, seeds[:k], axes[:k], sk_u, data)
    baseline_s = (time.perf_counter() - clock) * N_SEEDS / k
    fast = dose_on_grid(grid.with_array(grid.array), seeds[:k], axes[:k], sk_u, data)
    from seldinger.physics.tg43 import dose_rate_cgy_per_h

    fast64 = dose_rate_cgy_per_h(points, seeds[:k], axes[:k], sk_u, data)
    rel64 = float(np.max(np.abs(fast64 / slow - 1.0)))
    rel32 = float(np.max(np.abs(fast.array.reshape(-1) / slow - 1.0)))
    print(f"per-seed NumPy baseline: {baseline_s:.2f} s ({k} seeds timed, scaled to {N_SEEDS})")
    print(f"{'':<34}{'measured':>12}{'goal':>12}")
    verdict = "ok" if grid_s <= GOAL_GRID_S else "MISSED"
    print(f"{'dose_on_grid (s)':<34}{grid_s:>12.3f}{GOAL_GRID_S:>12.1f}  {verdict}")
    print(f"{'per-seed NumPy (s)':<34}{baseline_s:>12.2f}")
    print(f"{'speed-up':<34}{baseline_s / grid_s:>12.1f}")
    print(f"{'max rel. diff float64 kernel':<34}{rel64:>12.1e}")
    print(f"{'max rel. diff float32 grid':<34}{rel32:>12.1e}")
    print(f"{'peak memory rise (MB)':<34}{peak_mb:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
