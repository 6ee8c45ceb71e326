"""What a user waits for: ``seldinger plan trajectory`` end to end, with and without cached maps.

Round 1's ``plan trajectory`` rebuilt the planner's distance maps on every run (14.5 s end
to end on lidc-idri-0001 although the search took 0.035 s). The maps now live in the
anatomy folder's cache, keyed by the masks' digests. This script, from the project root::

    .venv/bin/python benchmarks/bench_plan_trajectory.py [--repeat 3] [--keep DIR]

1. segments lidc-idri-0001 once with ``seldinger segment`` (not timed against a goal);
2. times the round-1 path: ``seldinger plan trajectory CT --anatomy DIR --lesion NODULE``
   with the cache folder removed before each run (the maps are built, as round 1 did, and
   then written);
3. times the same command with the cache in place (the user's second and later runs:
   another rule, a drawn path, another output);
4. times ``seldinger plan ablation`` on that plan the same two ways (it builds the same
   maps for the applicator's tracts).

Each is a fresh process (imports, reading the CT and masks, writing the plan included), as
the user runs it; best and median of ``--repeat``. The peak resident memory of each
process is printed too. Goal: cached ``plan trajectory`` <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "lidc-idri-0001"
GOAL_CACHED_S = 3.0
SELDINGER = str(Path(sys.executable).parent / "seldinger")


def run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and the peak RSS (MB) of one command (fails loudly)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    clock = time.perf_counter()
    done = subprocess.run([SELDINGER, *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - clock
    if done.returncode != 0:
        raise SystemExit(f"seldinger {' '.join(args)} failed:\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024.0


def timed(label: str, args: list[str], repeat: int, before: object = None) -> list[float]:
    times, peaks = [], []
    for _ in range(repeat):
        if callable(before):
            before()
        seconds, peak = run(args)
        times.append(seconds)
        peaks.append(peak)
    print(f"{label:<44}{min(times):>8.2f}{statistics.median(times):>9.2f}{max(peaks):>10.0f}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"no data at {SHARED}; nothing to measure")
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-plan-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    ct, nodule = SHARED / "ct.nii.gz", SHARED / "nodule_consensus.nii.gz"
    anatomy, plan = work / "anatomy", work / "plan.json"
    if not (anatomy / "anatomy.json").is_file():
        seconds, peak = run(["segment", str(ct), "--out", str(anatomy), "--force"])
        print(f"seldinger segment (all structures, once): {seconds:.1f} s, peak {peak:.0f} MB")
    cache = anatomy / "cache"

    def drop_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    trajectory = [
        "plan", "trajectory", str(ct), "--anatomy", str(anatomy), "--lesion", str(nodule),
        "--out", str(plan), "--force",
    ]  # fmt: skip
    ablation = [
        "plan",
        "ablation",
        str(plan),
        "--device",
        "emprint",
        "--setting",
        "150W-10min",
        "--max-probes",
        "4",
        "--force",
    ]
    print(f"{'command (fresh process each run)':<44}{'best s':>8}{'median s':>9}{'peak MB':>10}")
    timed("plan trajectory, maps built (round-1 path)", trajectory, args.repeat, drop_cache)
    cached = timed("plan trajectory, maps cached", trajectory, args.repeat)
    timed("plan ablation, maps built", ablation, args.repeat, drop_cache)
    run(trajectory)  # puts the cache back
    timed("plan ablation, maps cached", ablation, args.repeat)
    size_mb = sum(p.stat().st_size for p in cache.glob("*")) / 1e6
    print(f"cache: {size_mb:.0f} MB in {cache}")
    best = min(cached)
    verdict = "ok" if best <= GOAL_CACHED_S else "MISSED"
    print(f"cached plan trajectory {best:.2f} s, goal <= {GOAL_CACHED_S:.0f} s: {verdict}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
