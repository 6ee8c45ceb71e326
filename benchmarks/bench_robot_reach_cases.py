"""Reachability on the real CTs: every safe candidate path to the target, both robots.

- lidc-idri-0001: the consensus nodule, anatomy by the classical pipeline;
- totalseg-abdomen: a 3 cm lesion inserted in the liver (centred 16-18 mm from the portal
  vein, as tests/planning/test_ablation_real.py), anatomy body + bones + liver.

For each case the trajectory planner's search gives all skin candidates and which are safe;
``reach_paths`` then checks every safe one for each robot (the robot standing on the side
of the best path). Prints the fraction reachable, the reasons counted, and the time beside
the goal (≤ 1 s per robot), with the planner's search time for scale. Needs ../shared/data;
takes a few minutes (segmentation). Run from the project root::

    .venv/bin/python benchmarks/bench_robot_reach_cases.py [lidc-idri-0001] [totalseg-abdomen]
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy, segment
from seldinger.imaging import Volume
from seldinger.io import read_ct, read_volume
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints, plan_trajectories
from seldinger.robot import (
    bore_axis_lps_mm,
    list_models,
    load_model,
    mount_side_for,
    mount_to_ct,
    reach_paths,
    summarise,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GOAL_S = 1.0


def lidc() -> tuple[Volume, Anatomy, Volume]:
    ct = read_ct(DATA / "lidc-idri-0001" / "ct.nii.gz").volume
    nodule = read_volume(DATA / "lidc-idri-0001" / "nodule_consensus.nii.gz")
    return ct, segment(ct), nodule.with_array(np.asarray(nodule.array) > 0)


def abdomen() -> tuple[Volume, Anatomy, Volume]:
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path[:0] = [str(tests), str(tests / "anatomy")]
    from reference import reference_volume  # the test helper that reads the label maps

    case = DATA / "totalseg-abdomen"
    ct = read_ct(case / "ct.nii.gz").volume
    anatomy = segment(ct, structures=["body", "bones", "liver"])
    liver = reference_volume(case, "liver")
    portal = reference_volume(case, "portal_vein_and_splenic_vein")
    inside = ndi.distance_transform_edt(liver.array, sampling=ct.spacing_mm)
    to_vein = ndi.distance_transform_edt(~portal.array, sampling=ct.spacing_mm)
    where = np.argwhere((inside >= 16.0) & (to_vein >= 16.0) & (to_vein <= 18.0))
    centre = ct.index_to_lps(where[len(where) // 2])
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in ct.shape), indexing="ij"), -1)
    lesion = ct.with_array(np.linalg.norm(ct.index_to_lps(grid) - centre, axis=-1) <= 15.0)
    return ct, anatomy, lesion


def main() -> None:
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}\n")
    print(
        f"{'case':<18} {'robot':<11} {'safe paths':>10} {'reachable':>14} {'reach s':>8} "
        f"{'search s':>9}  goal  reasons"
    )
    cases = {"lidc-idri-0001": lidc, "totalseg-abdomen": abdomen}
    chosen = sys.argv[1:] or list(cases)
    for name, load in ((n, cases[n]) for n in chosen):
        if not DATA.is_dir():
            print("../shared/data is absent")
            return
        ct, anatomy, lesion = load()
        maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
        centroid = ct.index_to_lps(np.argwhere(np.asarray(lesion.array)).mean(axis=0))
        start = time.perf_counter()
        search = plan_trajectories(maps, centroid)
        search_s = time.perf_counter() - start
        entries = search.entries_lps_mm[search.safe]
        targets = np.broadcast_to(search.target_lps_mm, entries.shape)
        best = search.best
        body = anatomy["body"]
        body = body.with_array(np.asarray(body.array) > 0)
        axis = bore_axis_lps_mm(body)
        side = mount_side_for(best.entry_lps_mm, best.target_lps_mm)
        for robot in list_models():
            model = load_model(robot)
            base = mount_to_ct([*axis, best.target_lps_mm[2]], side) @ model.base_to_mount
            reach_paths(model, entries[:5], targets[:5], base, body=body)  # warm-up
            start = time.perf_counter()
            results = reach_paths(
                model, entries, targets, base, body=body, bore_axis_xy_lps_mm=axis
            )
            seconds = time.perf_counter() - start
            s = summarise(results)
            print(
                f"{name:<18} {robot:<11} {len(entries):>10} "
                f"{s['reachable']:>6} ({100 * s['fraction_reachable']:4.1f} %) {seconds:>8.3f} "
                f"{search_s:>9.3f}  {'ok' if seconds <= GOAL_S else 'MISS':<4}  "
                f"{side.value} side, {s['reasons']}"
            )


if __name__ == "__main__":
    main()
