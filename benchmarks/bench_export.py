"""DICOM and mesh export of the whole lidc-idri-0001 case, NIfTI input (a new study).

Times, on the 512 x 512 x 133 CT read from ``../shared/data/lidc-idri-0001/ct.nii.gz`` and
ten structures (left and right lung, trachea, heart, aorta, ribs merged, vertebrae merged,
liver, esophagus from ``model_labels.nii.gz``; the consensus nodule), every export a plan
makes of them:

- the CT as a new DICOM CT Image series (``write_ct_series``, 133 files),
- one DICOM SEG of the ten structures (``write_seg``, highdicom),
- one RTSTRUCT of the ten (``write_rtstruct``),
- one STL per structure (``write_mask_mesh``, marching cubes).

Then the same through the user's command, end to end: a plan of this CT holding the ten
structures (NIfTI beside it) and the nodule as target, exported with ``seldinger export
PLAN --format dicom,stl`` (``seldinger.workflow.export.export_plan``: reading the plan, the
CT and its voxel hash, the masks, then writing), the time a user waits.

Beside it, in the same run, the baseline: the same ten masks written as NIfTI with
``seldinger.io.write_volume`` (the project's plain mask export). A first, untimed export
of a small crop warms imports and highdicom's IOD tables (as the other benchmarks warm
their caches); the cold first call is printed too. Goal: total <= 10 s on the 2-core
machine. Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_export.py [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

GOAL_S = 10.0
LIDC = Path(__file__).resolve().parents[2] / "shared" / "data" / "lidc-idri-0001"
#: model_labels.csv ids merged into each exported structure.
STRUCTURES = {
    "lung_left": (10, 11),
    "lung_right": (12, 13, 14),
    "trachea": (16,),
    "heart": (51,),
    "aorta": (52,),
    "ribs": tuple(range(92, 116)),
    "vertebrae": tuple(range(25, 51)),
    "liver": (5,),
    "esophagus": (15,),
}


def _masks():  # type: ignore[no-untyped-def]
    from seldinger.io import read_volume

    labels = read_volume(LIDC / "model_labels.nii.gz")
    nodule = read_volume(LIDC / "nodule_consensus.nii.gz")
    masks = {
        name: labels.with_array(np.isin(labels.array, ids)) for name, ids in STRUCTURES.items()
    }
    masks["nodule"] = nodule.with_array(nodule.array > 0)
    return masks


def export_all(ct, masks, out: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Every export into ``out``; seconds per object."""
    from seldinger.export.dicom import write_ct_series, write_rtstruct, write_seg
    from seldinger.export.meshes import write_mask_mesh

    seconds = {}
    clock = time.perf_counter()
    series = write_ct_series(ct, out / "ct")
    seconds["CT series"] = time.perf_counter() - clock
    clock = time.perf_counter()
    write_seg(masks, series, out / "seg.dcm")
    seconds["SEG"] = time.perf_counter() - clock
    clock = time.perf_counter()
    write_rtstruct(masks, series, out / "rtstruct.dcm")
    seconds["RTSTRUCT"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for name, mask in masks.items():
        write_mask_mesh(mask, out / f"{name}.stl", name=name)
    seconds["STL x10"] = time.perf_counter() - clock
    return seconds


def baseline(masks, out: Path) -> float:  # type: ignore[no-untyped-def]
    from seldinger.io import write_volume

    clock = time.perf_counter()
    for name, mask in masks.items():
        write_volume(mask.with_array(mask.array.astype(np.uint8)), out / f"{name}.nii.gz")
    return time.perf_counter() - clock


def plan_export(ct_path: Path, masks, work: Path) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Seconds of ``export_plan`` (dicom + stl) on a plan holding ``masks``; files written."""
    from seldinger.io import read_ct, write_volume
    from seldinger.plan import Plan, StructureRef
    from seldinger.workflow.export import ExportRequest, export_plan
    from seldinger.workflow.trajectory import lesion_target

    case = work / "case"
    case.mkdir()
    plan = Plan.for_ct(read_ct(ct_path))
    for name, mask in masks.items():
        write_volume(mask.with_array(mask.array.astype(np.uint8)), case / f"{name}.nii.gz")
        if name != "nodule":
            ml = float(mask.array.sum()) * float(np.prod(mask.spacing_mm)) / 1000.0
            plan.structures[name] = StructureRef(mask_path=f"{name}.nii.gz", volume_ml=ml)
    plan.targets.append(lesion_target("nodule", masks["nodule"], "nodule.nii.gz"))
    plan.save(case / "plan.json")
    clock = time.perf_counter()
    done = export_plan(ExportRequest(case / "plan.json", work / "export", ("dicom", "stl")))
    return time.perf_counter() - clock, len(done.files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="timed exports (best kept)")
    parser.add_argument("--keep", type=Path, help="write the last export here (else a temp dir)")
    args = parser.parse_args(argv)
    if not LIDC.is_dir():
        print(f"{LIDC} is absent: nothing to benchmark")
        return 1
    from seldinger.io import read_ct

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    ct = read_ct(LIDC / "ct.nii.gz").volume
    masks = _masks()
    voxels = {name: int(np.count_nonzero(m.array)) for name, m in masks.items()}
    print(
        f"CT {ct.shape}, {len(masks)} structures: "
        + ", ".join(f"{k} {v}" for k, v in voxels.items())
    )

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        box = (slice(150, 250), slice(150, 250), slice(60, 70))
        small = {k: m.crop_index(box) for k, m in masks.items() if m.crop_index(box).array.any()}
        clock = time.perf_counter()
        export_all(ct.crop_index(box), small, work / "warm")  # imports, highdicom IOD tables
        print(
            f"warm-up (cold imports and tables, 100 x 100 x 10 crop): {time.perf_counter() - clock:.2f} s"
        )
        base_kb = rss_kb("VmRSS")
        reset_peak()
        runs = []
        for n in range(args.repeat):
            out = work / f"run{n}"
            out.mkdir()
            runs.append(export_all(ct, masks, out))
        peak_mb = (rss_kb("VmHWM") - base_kb) / 1024
        best = min(runs, key=lambda r: sum(r.values()))
        (work / "nifti").mkdir()
        baseline_s = baseline(masks, work / "nifti")
        command_s, n_files = plan_export(LIDC / "ct.nii.gz", masks, work)
        if args.keep is not None:
            export_all(ct, masks, args.keep)
        sizes = {p.name: p.stat().st_size for p in (work / "run0").iterdir() if p.is_file()}

    total = sum(best.values())
    print(f"{'object':<28}{'seconds':>10}")
    for name, seconds in best.items():
        print(f"{name:<28}{seconds:>10.2f}")
    print(f"{'total':<28}{total:>10.2f}")
    print(f"{'seldinger export (plan)':<28}{command_s:>10.2f}  ({n_files} files, reading included)")
    print(f"{'baseline: 10 masks as NIfTI':<28}{baseline_s:>10.2f}")
    print(
        f"SEG {sizes.get('seg.dcm', 0) / 1e6:.1f} MB, RTSTRUCT {sizes.get('rtstruct.dcm', 0) / 1e6:.1f} MB; "
        f"peak memory rise {peak_mb:.0f} MB"
    )
    ok = "ok" if total <= GOAL_S else "MISSED"
    print(f"{'goal: total <= (s)':<28}{GOAL_S:>10.1f}  {ok}")
    ok = "ok" if command_s <= GOAL_S else "MISSED"
    print(f"{'goal: seldinger export <= (s)':<28}{GOAL_S:>10.1f}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
