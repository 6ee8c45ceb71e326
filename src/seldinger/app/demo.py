"""The demo pipeline: the sample case through every step that exists, ending in a report.

Later steps (anatomy, trajectories, ablation, seeds, navigation) add their stages here
and their sections to the report.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from seldinger._files import atomic_dir
from seldinger.data import SampleCase, load_sample
from seldinger.export import Report, render_views
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.planning import Plan, StructureRef, Target

__all__ = ["run_demo", "write_sample"]

logger = logging.getLogger(__name__)


def _mask_stats(mask: Volume) -> dict[str, Any]:
    ijk = np.argwhere(mask.array)
    voxel_ml = float(np.prod(mask.spacing_mm)) / 1000.0
    centroid = mask.index_to_lps(ijk).mean(axis=0)
    return {
        "voxels": len(ijk),
        "volume_ml": round(len(ijk) * voxel_ml, 3),
        "centroid_lps_mm": [round(float(c), 2) for c in centroid],
    }


def write_sample(out: Path | None, offline: bool = False, force: bool = False) -> dict[str, Any]:
    """Fetch the sample case; with ``out``, write ``out/ct.nii.gz`` and ``out/nodule.nii.gz``."""
    case = load_sample(offline=offline)
    result: dict[str, Any] = {
        "source": case.ct.meta.source_path,
        "is_phantom": case.is_phantom,
        "attribution": case.attribution,
        "notes": list(case.notes),
    }
    if out is not None:
        with atomic_dir(out, force=force) as tmp:
            write_volume(case.ct.volume, tmp / "ct.nii.gz")
            for name, mask in case.labels.items():
                write_volume(mask, tmp / f"{name}.nii.gz")  # bool masks are stored as uint8
        result["ct"] = str(out / "ct.nii.gz")
        result["labels"] = {name: str(out / f"{name}.nii.gz") for name in case.labels}
    return result


def run_demo(out: Path, offline: bool = False, force: bool = False) -> dict[str, Any]:
    """Run the pipeline on the sample case; write ``out/`` with the report, plan and masks.

    Returns
    -------
    dict
        Paths (``report``, ``plan``), timings in seconds and notes, JSON-ready.
    """
    timings_s: dict[str, float] = {}
    start = time.perf_counter()
    case = load_sample(offline=offline)
    timings_s["load_sample"] = time.perf_counter() - start
    with atomic_dir(out, force=force) as tmp:
        result = _run(case, tmp, timings_s)
    final = {key: str(out / value) for key, value in result.items() if key in ("report", "plan")}
    return {
        **final,
        "timings_s": timings_s,
        "is_phantom": case.is_phantom,
        "notes": list(case.notes),
    }


def _run(case: SampleCase, out: Path, timings_s: dict[str, float]) -> dict[str, str]:
    ct = case.ct.volume
    masks_dir = out / "masks"
    plan = Plan.new(
        ct,
        source_path=case.ct.meta.source_path,
        series_uid=case.ct.meta.series_uid,
        parameters={"sample": "phantom" if case.is_phantom else "lidc-idri-0001"},
        command="seldinger demo",
    )
    start = time.perf_counter()
    structures: dict[str, dict[str, Any]] = {}
    for name, mask in case.labels.items():
        path = masks_dir / f"{name}.nii.gz"
        write_volume(mask, path)
        structures[name] = _mask_stats(mask)
        plan.structures[name] = StructureRef(
            mask_path=f"masks/{name}.nii.gz", volume_ml=structures[name]["volume_ml"]
        )
    nodule = structures.get("nodule")
    if nodule is not None:
        plan.targets.append(
            Target(
                name="nodule",
                centroid_lps_mm=tuple(nodule["centroid_lps_mm"]),
                volume_ml=nodule["volume_ml"],
            )
        )
    timings_s["structures"] = time.perf_counter() - start
    plan_path = plan.save(out / "plan.json")

    start = time.perf_counter()
    report = _report(case, structures)
    report.write(out / "report")
    timings_s["report"] = time.perf_counter() - start
    return {"report": "report/index.html", "plan": plan_path.name}


def _report(case: SampleCase, structures: dict[str, dict[str, Any]]) -> Report:
    ct = case.ct
    volume = ct.volume
    centre = case.nodule_centroid_lps_mm
    subtitle = "synthetic thorax phantom" if case.is_phantom else "LIDC-IDRI-0001 chest CT"
    report = Report("Seldinger demo", subtitle=subtitle)
    report.add_section("Case", case.attribution)
    summary = ct.summary()
    report.add_table(
        {
            key: summary[key]
            for key in (
                "source",
                "format",
                "shape",
                "spacing_mm",
                "orientation",
                "origin_lps_mm",
                "hu_min",
                "hu_max",
                "modality",
                "series_uid",
            )
        },
        caption="CT geometry (LPS mm) and intensities (HU)",
    )
    for note in case.notes:
        report.add_text(f"Note: {note}")
    report.add_section(
        "Views through the target",
        "Axial, coronal and sagittal slices through the nodule centroid, radiological "
        "convention (patient's right on the image's left).",
    )
    masks = {name: mask for name, mask in case.labels.items()}
    points = {"nodule centroid": np.asarray(centre)}
    for window in ("lung", "mediastinum"):
        views = render_views(
            volume,
            centre,
            masks=masks,
            points=points,
            window=window,
            attribution=case.attribution,
        )
        report.add_image(views.png, caption=f"{window} window")
    report.add_section("Structures")
    report.add_table(
        [{"structure": name, **stats} for name, stats in structures.items()],
        caption="Volumes in mL, centroids in LPS mm",
    )
    return report
