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
from seldinger.anatomy import Anatomy, Lesion, segment, segment_lesion
from seldinger.data import SampleCase, load_sample
from seldinger.export import Report, render_views
from seldinger.export.anatomy3d import render_airways_3d
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
    anatomy = segment(ct, modality=case.ct.meta.modality)
    anatomy.save(out / "anatomy")
    timings_s["anatomy"] = time.perf_counter() - start
    for name in anatomy.masks:
        plan.structures[name] = StructureRef(
            mask_path=f"anatomy/{name}.nii.gz", volume_ml=round(anatomy.volume_ml(name), 3)
        )

    start = time.perf_counter()
    structures: dict[str, dict[str, Any]] = {}
    for name, mask in case.labels.items():
        path = masks_dir / f"{name}_reference.nii.gz"
        write_volume(mask, path)
        structures[name] = _mask_stats(mask)
        plan.structures[f"{name}_reference"] = StructureRef(
            mask_path=f"masks/{name}_reference.nii.gz", volume_ml=structures[name]["volume_ml"]
        )
    seed = case.nodule_centroid_lps_mm
    lungs = anatomy["lung_left"].array | anatomy["lung_right"].array
    lesion = segment_lesion(ct, seed, lungs=lungs, body=anatomy["body"].array)
    write_volume(lesion.mask, masks_dir / "lesion.nii.gz")
    plan.targets.append(
        Target(
            name="nodule",
            centroid_lps_mm=lesion.centroid_lps_mm,
            volume_ml=round(lesion.volume_ml, 3),
            mask_path="masks/lesion.nii.gz",
            seed_lps_mm=lesion.seed_lps_mm,
            recist_diameter_mm=round(lesion.recist_diameter_mm, 2),
            max_diameter_mm=round(lesion.max_diameter_mm, 2),
        )
    )
    timings_s["lesion"] = time.perf_counter() - start
    plan_path = plan.save(out / "plan.json")

    start = time.perf_counter()
    report = _report(case, anatomy, lesion, structures)
    report.write(out / "report")
    timings_s["report"] = time.perf_counter() - start
    return {"report": "report/index.html", "plan": plan_path.name}


def _dice(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else 1.0


def _report(
    case: SampleCase,
    anatomy: Anatomy,
    lesion: Lesion,
    structures: dict[str, dict[str, Any]],
) -> Report:
    ct = case.ct
    volume = ct.volume
    centre = lesion.centroid_lps_mm
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
        "Anatomy",
        f"Segmented by the {anatomy.engine} engine (thresholds, region growing, morphology, "
        "Hessian vesselness; no model). Masks are in anatomy/ beside the plan, one NIfTI per "
        "structure in the CT's geometry.",
    )
    info = anatomy.summary()
    report.add_table(
        [
            {"structure": name, "volume_ml": row["volume_ml"], "seconds": row["seconds"]}
            for name, row in info["structures"].items()
        ],
        caption=f"Structures: volume in mL and time in s (total {info['total_seconds']:.1f} s)",
    )
    extra = {}
    if anatomy.laa_percent is not None:
        extra["emphysema index LAA%-950"] = round(anatomy.laa_percent, 2)
    if "airway_generations" in info:
        extra["airway generations reached, left"] = info["airway_generations"]["left"]
        extra["airway generations reached, right"] = info["airway_generations"]["right"]
    if extra:
        report.add_table(extra, caption="Lung and airway figures")
    for note in anatomy.notes:
        report.add_text(f"Note: {note}")
    lesion_masks = {"lesion": lesion.mask}
    views = {
        "lung": {
            name: anatomy[name]
            for name in ("lung_left", "lung_right", "airways", "vessels", "emphysema")
            if name in anatomy
        },
        "mediastinum": {
            name: anatomy[name] for name in ("bones", "mediastinum", "liver") if name in anatomy
        },
    }
    for window, masks in views.items():
        rendered = render_views(
            volume,
            centre,
            masks={**masks, **lesion_masks},
            points={"seed": np.asarray(lesion.seed_lps_mm)},
            window=window,
            attribution=case.attribution,
            title=f"Anatomy through the lesion ({window} window)",
        )
        report.add_image(
            rendered.png,
            caption=f"{window} window: " + ", ".join([*masks, "lesion"]),
        )
    if "airways" in anatomy:
        png = render_airways_3d(
            anatomy["airways"],
            anatomy.airway_graph,
            {"lesion": (lesion.mask, "red")},
            title="Airway tree and lesion",
        )
        report.add_image(
            png, caption="3-D airway tree with centrelines by generation, and the lesion"
        )

    report.add_section(
        "Target lesion",
        "Segmented from one seed point (the readers' consensus centroid) by adaptive region "
        "growing, cut from the pleura and vessels.",
    )
    row: dict[str, Any] = {
        "seed_lps_mm": [round(v, 1) for v in lesion.seed_lps_mm],
        "volume_ml": round(lesion.volume_ml, 2),
        "centroid_lps_mm": [round(v, 1) for v in lesion.centroid_lps_mm],
        "recist_diameter_mm": round(lesion.recist_diameter_mm, 1),
        "max_diameter_mm": round(lesion.max_diameter_mm, 1),
    }
    reference = case.labels.get("nodule")
    if reference is not None:
        row["Dice vs reference nodule"] = round(
            _dice(lesion.mask.array, reference.array.astype(bool)), 3
        )
    report.add_table(row, caption="Lesion measurements (mL, mm, LPS)")
    report.add_section("Reference structures")
    report.add_table(
        [{"structure": name, **stats} for name, stats in structures.items()],
        caption="Shipped reference masks: volumes in mL, centroids in LPS mm",
    )
    return report
