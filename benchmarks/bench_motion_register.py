"""Deformable registration of a 512×512×133 chest CT pair: time, peak memory, accuracy.

The pair is lidc-idri-0001 (MOVING, the real CT) and the same CT warped by the analytic
breath of :func:`seldinger.motion.synthetic.breathing_field` (15 mm SI at the lung bases
fading to the apex, 5 mm AP, sliding at the chest wall) with 20 HU noise (FIXED), so the
FIXED → MOVING field is known. In the same process, after one warm-up on a small volume
(itk loads its modules lazily), it registers the pair with

- ``lung``: Seldinger's preset (affine, then B-spline after elastix model zoo Par0011),
- ``elastix-default``: ``GetDefaultParameterMap("bspline")`` unchanged (the baseline),
- ``affine``: the affine stage alone (what a deformable method must beat),

each with the same lung mask, and prints per method: elastix time, the time of the field
on the whole grid and its Jacobian, total wall time, the peak resident memory rise, the
error of the recovered displacement at 1000 lung points and the minimum Jacobian in the
lungs. Goal (issue 17): ≤ 60 s on 2 cores and ≤ 4 GB.

Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_motion_register.py [--methods lung,elastix-default,affine]

Peak memory is the high-water mark of the resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` before each run) minus the resident set before it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "lidc-idri-0001"
GOAL_S = 60.0
GOAL_PEAK_GB = 4.0
NOISE_SIGMA_HU = 20.0
SEED = 20261207


def _warm_up() -> None:
    """Register two tiny volumes so that itk's lazy module loading is not timed."""
    from seldinger.imaging import Volume
    from seldinger.motion import RegistrationSettings, register

    rng = np.random.default_rng(SEED)
    texture = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (64, 64, 32)), 2.0)
    small = Volume((texture / texture.std() * 300.0).astype(np.float32), np.diag([2, 2, 3, 1.0]))
    register(small, small, settings=RegistrationSettings(affine_iterations=5, bspline_iterations=5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="lung,elastix-default,affine")
    args = parser.parse_args()

    from seldinger.anatomy.body import segment_body
    from seldinger.anatomy.lungs import segment_lungs
    from seldinger.imaging import reorient
    from seldinger.io import read_ct
    from seldinger.motion import RegistrationSettings, register, warp
    from seldinger.motion.synthetic import breathing_field

    path = SHARED / "ct.nii.gz"
    if not path.is_file():
        print(f"{path} is absent: this benchmark needs ../shared/data/lidc-idri-0001")
        return 1
    moving = reorient(read_ct(path).volume, "LPS")
    print(f"CT {path}  {moving!r}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(this process may use {len(os.sched_getaffinity(0))}), load average "
        f"{os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}"
    )
    lungs_moving = segment_lungs(moving, segment_body(moving)).both
    truth = breathing_field(moving.geometry, lungs_moving)
    warped = warp(moving, truth)
    rng = np.random.default_rng(SEED)
    noisy = warped.array + rng.normal(0.0, NOISE_SIGMA_HU, warped.shape).astype(np.float32)
    fixed = warped.with_array(np.clip(np.rint(noisy), -2048, 4095).astype(np.int16))
    lungs = warp(moving.with_array(lungs_moving), truth, "nearest", fill_value=0).array
    del warped, noisy
    voxels = np.argwhere(lungs)
    points = fixed.index_to_lps(voxels[rng.choice(len(voxels), 1000, replace=False)])
    true_u = truth.at_lps(points)
    print(
        f"truth: |u| at 1000 lung points mean {np.linalg.norm(true_u, axis=-1).mean():.2f} mm, "
        f"max {np.linalg.norm(true_u, axis=-1).max():.2f} mm; lungs {lungs.sum() / 1e6:.2f} M voxels"
    )
    _warm_up()

    print()
    print(
        f"{'method':<17}{'elastix s':>10}{'field s':>9}{'total s':>9}{'peak GB':>9}"
        f"{'mean mm':>9}{'p95 mm':>8}{'max mm':>8}{'min det':>9}"
    )
    for method in args.methods.split(","):
        reset_peak()
        before = rss_kb("VmRSS")
        t0 = time.perf_counter()
        # Folding is reported here, not refused, so that a folding baseline still shows.
        settings = RegistrationSettings(refuse_folding=False)
        result = register(fixed, moving, mask=lungs, method=method, settings=settings)
        total = time.perf_counter() - t0
        peak_gb = (rss_kb("VmHWM") - before) / 1024**2
        error = np.linalg.norm(result.field.at_lps(points) - true_u, axis=-1)
        print(
            f"{method:<17}{result.registration_s:>10.1f}{result.field_s:>9.1f}{total:>9.1f}"
            f"{peak_gb:>9.2f}{error.mean():>9.2f}{np.percentile(error, 95):>8.2f}"
            f"{error.max():>8.2f}{result.jacobian.array[lungs].min():>9.3f}"
            f"{'  FOLDS: refused by register()' if result.min_jacobian <= 0 else ''}"
        )
        del result
    print(f"goal: total ≤ {GOAL_S:.0f} s on 2 cores, peak ≤ {GOAL_PEAK_GB:.0f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
