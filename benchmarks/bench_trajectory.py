"""Trajectory search for the lidc-idri-0001 nodule: every skin candidate, exact ray march.

Times, after segmentation (not timed here):

- the precomputation (voxel labels, distance maps, skin candidates: ``RiskMaps.build``);
- the search (``plan_trajectories`` on the prebuilt maps): every skin sample ~1.4 mm apart,
  the length pre-check, one exact voxel-by-voxel march per candidate within reach (finer
  than any sampling step: every voxel the path touches is read), constraints, scoring,
  Pareto set;
- a baseline in the same process: the straightforward per-candidate Python loop (sample
  the path every 1 mm with NumPy, nearest voxel, same labels and distance maps) on a
  random subset of the candidates within reach, its per-candidate time scaled to all of
  them.

Prints the figures beside the goals (search <= 1 s, >= 50x the loop) and the peak resident
memory rise. Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_trajectory.py [--repeat 3] [--baseline-n 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "lidc-idri-0001"
GOAL_SEARCH_S = 1.0
GOAL_SPEEDUP = 50.0


def baseline_loop(maps, target: np.ndarray, candidates: np.ndarray) -> int:  # type: ignore[no-untyped-def]
    """Per-candidate loop: sample every 1 mm, nearest voxel, hard bits and vessel distance."""
    hard = sum(maps.hard_bit(n) for n in maps.hard_names)
    vessel = maps.distance_names.index("vessels") if "vessels" in maps.distance_names else None
    shape = np.array(maps.labels.shape)
    safe = 0
    for c in candidates:
        length = float(np.linalg.norm(c - target))
        n = int(np.ceil(length)) + 1
        points = target + np.linspace(0.0, 1.0, n)[:, None] * (c - target)
        ijk = np.clip(np.rint(maps.lps_to_index(points)).astype(int), 0, shape - 1)
        labels = maps.labels[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        inside = (labels & 1) != 0
        last = int(np.argmin(inside)) if not inside.all() else n
        labels = labels[:last]
        blocked = bool(np.any(labels & hard))
        lung = (labels & 0b110) != 0
        _lung_mm = float(lung.sum()) * length / (n - 1)
        _crossings = int(np.count_nonzero(np.diff(lung.astype(np.int8))))
        if vessel is not None and last:
            d = maps.distances_cmm[ijk[:last, 0], ijk[:last, 1], ijk[:last, 2], vessel]
            blocked |= bool(d.min() < maps.constraints.vessel_distance_mm * 100)
        safe += not blocked
    return safe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-n", type=int, default=2000)
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"no data at {SHARED}; nothing to measure")
        return 0
    from seldinger.anatomy import segment
    from seldinger.io import read_ct, read_volume
    from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints, plan_trajectories

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    ct = read_ct(SHARED / "ct.nii.gz").volume
    nodule = read_volume(SHARED / "nodule_consensus.nii.gz")
    nodule = nodule.with_array(nodule.array > 0)
    clock = time.perf_counter()
    anatomy = segment(ct)
    print(f"anatomy (not part of the goal): {time.perf_counter() - clock:.1f} s")

    base_kb = rss_kb("VmRSS")
    reset_peak()
    clock = time.perf_counter()
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), nodule)
    build_s = time.perf_counter() - clock
    steps = ", ".join(f"{k} {v:.2f}" for k, v in maps.seconds.items())
    print(f"precomputation: {build_s:.2f} s ({steps}); grid {maps.labels.shape}, ")
    print(
        f"  {maps.distances_cmm.shape[-1]} distance maps, {len(maps.candidates_lps_mm)} skin samples"
    )
    plan_trajectories(maps, lesion=nodule)  # compiles the Numba kernels (cached on disk)
    times = []
    for _ in range(args.repeat):
        clock = time.perf_counter()
        search = plan_trajectories(maps, lesion=nodule)
        times.append(time.perf_counter() - clock)
    peak_mb = (rss_kb("VmHWM") - base_kb) / 1024
    search_s = min(times)
    within = np.linalg.norm(search.candidates_lps_mm - search.target_lps_mm, axis=1) <= 155.0
    n_within = int(within.sum())
    parts = ", ".join(f"{k} {v:.3f}" for k, v in search.seconds.items())
    print(
        f"search: {search_s:.3f} s best of {args.repeat} ({parts}); "
        f"{search.n_candidates} candidates, {n_within} within reach marched, "
        f"{int(search.safe.sum())} safe, blocked {search.blocked_by}"
    )
    rng = np.random.default_rng(0)
    pick = rng.choice(np.flatnonzero(within), size=min(args.baseline_n, n_within), replace=False)
    clock = time.perf_counter()
    baseline_loop(maps, search.target_lps_mm, search.candidates_lps_mm[pick])
    per_candidate = (time.perf_counter() - clock) / len(pick)
    loop_s = per_candidate * n_within
    print(
        f"baseline loop (1 mm sampling): {per_candidate * 1e3:.2f} ms per candidate on "
        f"{len(pick)}, x {n_within} = {loop_s:.1f} s"
    )
    speedup = loop_s / search_s
    print(f"{'':<26}{'measured':>12}{'goal':>12}")
    print(
        f"{'search (s)':<26}{search_s:>12.3f}{GOAL_SEARCH_S:>12.1f}  {'ok' if search_s <= GOAL_SEARCH_S else 'MISSED'}"
    )
    print(
        f"{'speed-up vs loop':<26}{speedup:>12.0f}{GOAL_SPEEDUP:>12.0f}  {'ok' if speedup >= GOAL_SPEEDUP else 'MISSED'}"
    )
    print(f"{'peak memory rise (MB)':<26}{peak_mb:>12.0f}")
    best = search.best
    print(
        f"best path: {best.length_mm:.1f} mm, lung {best.lung_length_mm:.1f} mm, risk {best.risk_score:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
