"""Inverse planning of a 50-150-seed I-125 implant on the real lidc-idri-0001 CT.

The consensus nodule grown by ``--grow-mm`` (a large lung tumour; default 12 mm) + 5 mm
margin. Segmentation and the trajectory maps are built first and not timed. Then, in the
same process, for each template (free, coplanar):

* the full planner (greedy start then simulated annealing, all strengths), and
* the baseline: the greedy loading alone (``anneal_iterations=0``),

each with its seed and needle counts, D90, V100, V150, seconds and peak memory rise.
Goal: <= 20 s per plan on 2 cores. Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_seed_plan.py [--grow-mm 12]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GOAL_PLAN_S = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grow-mm", type=float, default=12.0)
    args = parser.parse_args(argv)
    from scipy import ndimage as ndi

    from seldinger.anatomy import segment
    from seldinger.io import read_ct, read_volume
    from seldinger.physics.tg43 import load_seed_data
    from seldinger.planning.seeds import plan_seeds
    from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

    case = SHARED / "lidc-idri-0001"
    ct = read_ct(case / "ct.nii.gz").volume
    nodule = read_volume(case / "nodule_consensus.nii.gz")
    dist = ndi.distance_transform_edt(~(nodule.array > 0), sampling=nodule.spacing_mm)
    lesion = nodule.with_array(dist <= args.grow_mm)
    clock = time.perf_counter()
    anatomy = segment(ct)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    voxel_ml = float(np.prod(lesion.spacing_mm)) / 1000.0
    print(
        f"lidc nodule grown {args.grow_mm:g} mm: lesion {lesion.array.sum() * voxel_ml:.1f} mL; "
        f"anatomy + maps {time.perf_counter() - clock:.1f} s (not timed)"
    )
    data = load_seed_data("6711")
    print(
        f"{'template':<9} {'planner':<22} {'s':>6} {'seeds':>5} {'ndl':>4} {'mCi':>4} "
        f"{'D90 Gy':>7} {'V100%':>6} {'V150%':>6} {'peak MB':>8}  goal"
    )
    for template in ("free", "coplanar"):
        for label, iterations in (("anneal (seldinger)", 60_000), ("greedy (base)", 0)):
            base = rss_kb("VmRSS")
            reset_peak()
            clock = time.perf_counter()
            plan = plan_seeds(
                maps, lesion, data, 5.0, template=template, anneal_iterations=iterations
            )
            s = time.perf_counter() - clock
            peak = (rss_kb("VmHWM") - base) / 1024
            m = plan.metrics
            mci = plan.to_dict()["strength_mci"]
            print(
                f"{template:<9} {label:<22} {s:6.2f} {plan.n_seeds:5d} {len(plan.needles):4d} "
                f"{mci:4.2f} {m['d90_gy']:7.1f} {m['v100_percent']:6.1f} "
                f"{m['v150_percent']:6.1f} {peak:8.0f}  "
                f"{'ok' if s <= GOAL_PLAN_S else 'MISSED'} (PTV {m['ptv_volume_ml']:.0f} mL)"
            )
            parts = ", ".join(f"{k} {v:.1f}" for k, v in plan.seconds.items())
            print(f"{'':<9} {'':<22} {plan.n_candidates} candidates; seconds: {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
