"""All anatomy structures of a 512×512×133 chest CT: time per structure and peak memory.

Runs ``seldinger.anatomy.segment`` (every structure, classical engine) on lidc-idri-0001
and, in the same process, a plain baseline: lungs as the largest component below
-400 HU inside a thresholded body, holes filled per slice (the textbook first attempt).
Prints per-structure wall times, the total against the goal (issue 16: every structure
including the five lobes, three fissures and six mediastinal organs ≤ 30 s on 2 cores;
round 1's nine structures had 15 s), the process's peak resident memory rise against the
goal (≤ 4 GB), and — when the reference
labels in ../shared are present — Dice of both lung masks against the model's lobes.

Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_anatomy.py [--repeat 2] [--ct PATH]

Peak memory is the high-water mark of the resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` after reading the CT) minus the resident set before segmenting,
so C allocations in SciPy and scikit-image count. Elsewhere than Linux ``ru_maxrss`` stands
in (not reset).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "lidc-idri-0001"
GOAL_TOTAL_S = 30.0
GOAL_PEAK_GB = 4.0


def baseline_lungs(hu: np.ndarray) -> np.ndarray:
    """Threshold-and-largest-component lungs (LPS-ordered array)."""
    body = ndi.binary_fill_holes(hu > -400, structure=np.ones((3, 3, 1), bool))
    air = body & (hu < -400)
    labels, _ = ndi.label(air)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    lungs = labels == sizes.argmax()
    return np.asarray(ndi.binary_fill_holes(lungs, structure=np.ones((3, 3, 1), bool)))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="timed runs (best kept)")
    parser.add_argument("--ct", type=Path, default=None, help="CT (default: lidc-idri-0001)")
    args = parser.parse_args()

    from seldinger.anatomy import STRUCTURES, segment
    from seldinger.io import read_ct

    path = args.ct
    if path is None:
        if (SHARED / "ct.nii.gz").is_file():
            path = SHARED / "ct.nii.gz"
        else:
            from seldinger.data import fetch_sample_ct

            path = fetch_sample_ct()
    ct = read_ct(path).volume
    print(f"CT {path}  {ct!r}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {sys.version.split()[0]}"
    )

    best: dict[str, float] = {}
    best_total = np.inf
    peak_gb = 0.0
    anatomy = None
    for _ in range(max(args.repeat, 1)):
        reset_peak()
        before = rss_kb("VmRSS")
        t0 = time.perf_counter()
        anatomy = segment(ct)
        total = time.perf_counter() - t0
        peak_gb = max(peak_gb, (rss_kb("VmHWM") - before) / 1024**2)
        if total < best_total:
            best_total, best = total, dict(anatomy.seconds)

    t0 = time.perf_counter()
    base = baseline_lungs(ct.array)
    base_s = time.perf_counter() - t0

    assert anatomy is not None
    print()
    print(f"{'structure':<26}{'seconds':>9}{'volume mL':>12}")
    for name in STRUCTURES:
        if name in anatomy.masks:
            print(f"{name:<26}{best[name]:>9.2f}{anatomy.volume_ml(name):>12.1f}")
    # Steps that make several structures book their time on the first one (lobes and
    # fissures on lung_upper_lobe_left, the mediastinal organs on aorta).
    print(
        f"{'total (wall)':<26}{best_total:>9.2f}   goal ≤ {GOAL_TOTAL_S:.0f} s  "
        f"{'OK' if best_total <= GOAL_TOTAL_S else 'MISSED'}"
    )
    print(
        f"{'peak memory':<26}{peak_gb:>9.2f} GB goal ≤ {GOAL_PEAK_GB:.0f} GB  "
        f"{'OK' if peak_gb <= GOAL_PEAK_GB else 'MISSED'}"
    )
    print()
    ours = anatomy["lung_left"].array | anatomy["lung_right"].array
    line = f"lungs: seldinger {best['lung_left'] + best['lung_right']:.2f} s (+ body and airways {best['body'] + best['airways']:.2f} s)  vs  baseline {base_s:.2f} s"
    print(line)
    labels_path = SHARED / "model_labels.nii.gz"
    if path == SHARED / "ct.nii.gz" and labels_path.is_file():
        from seldinger.io import read_volume

        labels = read_volume(labels_path).array
        lobes = np.isin(labels, [10, 11, 12, 13, 14])
        trachea = labels == 16
        print(
            f"Dice vs model lobes: seldinger {_dice(ours, lobes):.4f}  baseline {_dice(base, lobes):.4f}"
            f"  (baseline keeps {100 * base[trachea].mean():.0f} % of the trachea, seldinger "
            f"{100 * ours[trachea].mean():.0f} %; baseline cannot tell left from right)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
