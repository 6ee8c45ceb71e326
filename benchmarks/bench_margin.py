"""Ablation margin of a 25 mm tumour in a 35 mm zone on a 0.7 × 0.7 × 2.5 mm grid.

Times ``seldinger.planning.assess_margin`` (best of ``--repeat``) on concentric voxelised
spheres (voxel centre inside; radii 25 and 35 mm, analytic margin 10 mm, coverage 100 %)
in a 112 × 112 × 80 grid (10⁶ voxels), with the sphere centres at a seeded random
sub-voxel offset. Beside it, in the same process, the plain voxel baseline of QAM
(Sandu et al. 2021, ``qam/margin.py``): borders by erosion, ``distance_transform_edt``
with ``sampling``, sign from the zone mask, evaluated at the tumour border voxels. Both
errors are against the analytic margin. Prints the figures beside the goals (≤ 1 s,
error ≤ 0.5 mm) and the peak resident memory rise. Run from the project root (never
collected by pytest)::

    .venv/bin/python benchmarks/bench_margin.py [--repeat 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
from scipy import ndimage

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

GOAL_S = 1.0
GOAL_ERROR_MM = 0.5
SPACING_MM = (0.7, 0.7, 2.5)
SHAPE = (112, 112, 80)
TUMOUR_R_MM, ZONE_R_MM = 25.0, 35.0


def voxel_baseline(tumour: np.ndarray, zone: np.ndarray, spacing_mm: tuple[float, ...]) -> float:
    """QAM's method: signed voxel-centre distance to the zone border at tumour border voxels."""
    border_t = tumour ^ ndimage.binary_erosion(tumour)
    border_z = zone ^ ndimage.binary_erosion(zone)
    distance = ndimage.distance_transform_edt(~border_z, sampling=spacing_mm)
    signed = np.where(zone, distance, -distance)
    return float(signed[border_t].min())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from seldinger.imaging import Volume
    from seldinger.planning.margin import assess_margin

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    rng = np.random.default_rng(args.seed)
    offset = rng.uniform(0.0, 1.0, 3) * SPACING_MM
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1)
    lps = ijk * SPACING_MM
    centre = np.array(SHAPE) * SPACING_MM / 2 + offset
    radius = np.linalg.norm(lps - centre, axis=-1)
    affine = np.diag([*SPACING_MM, 1.0])
    tumour = Volume(radius <= TUMOUR_R_MM, affine)
    zone = Volume(radius <= ZONE_R_MM, affine)
    truth_mm = ZONE_R_MM - TUMOUR_R_MM
    print(
        f"grid {SHAPE} = {np.prod(SHAPE) / 1e6:.2f} M voxels at {SPACING_MM} mm; "
        f"tumour r {TUMOUR_R_MM:g} mm, zone r {ZONE_R_MM:g} mm, centre offset "
        f"{np.round(offset, 2).tolist()} mm; analytic margin {truth_mm:g} mm"
    )

    assess_margin(tumour, zone)  # warm-up (imports, caches)
    base_kb = rss_kb("VmRSS")
    reset_peak()
    times = []
    for _ in range(args.repeat):
        clock = time.perf_counter()
        report = assess_margin(tumour, zone)
        times.append(time.perf_counter() - clock)
    peak_mb = (rss_kb("VmHWM") - base_kb) / 1024
    ours_s = min(times)

    times = []
    for _ in range(args.repeat):
        clock = time.perf_counter()
        baseline_mm = voxel_baseline(tumour.array, zone.array, SPACING_MM)
        times.append(time.perf_counter() - clock)
    baseline_s = min(times)

    ours_err = report.min_margin_mm - truth_mm
    base_err = baseline_mm - truth_mm
    print(f"{'':<30}{'min margin':>12}{'error':>10}{'time (s)':>10}")
    print(
        f"{'assess_margin (sub-voxel)':<30}{report.min_margin_mm:>12.3f}{ours_err:>+10.3f}{ours_s:>10.3f}"
    )
    print(
        f"{'voxel EDT baseline (QAM)':<30}{baseline_mm:>12.3f}{base_err:>+10.3f}{baseline_s:>10.3f}"
    )
    print(
        f"assess_margin: coverage {report.coverage_percent:.2f} % (analytic 100), median "
        f"margin {report.median_margin_mm:.3f} mm, {len(report.surface_margin_mm)} surface "
        f"points, tumour {report.tumour_volume_ml:.2f} mL "
        f"(analytic {4 / 3 * np.pi * TUMOUR_R_MM**3 / 1e3:.2f})"
    )
    print(f"{'':<30}{'measured':>12}{'goal':>10}")
    ok = "ok" if ours_s <= GOAL_S else "MISSED"
    print(f"{'time (s)':<30}{ours_s:>12.3f}{GOAL_S:>10.1f}  {ok}")
    ok = "ok" if abs(ours_err) <= GOAL_ERROR_MM else "MISSED"
    print(f"{'|min margin error| (mm)':<30}{abs(ours_err):>12.3f}{GOAL_ERROR_MM:>10.1f}  {ok}")
    print(f"{'peak memory rise (MB)':<30}{peak_mb:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
