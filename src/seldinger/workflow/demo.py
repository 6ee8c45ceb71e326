"""The demo: the sample case through the same steps the commands run, ending in a report.

``seldinger demo`` writes the sample CT (``ct.nii.gz``), then runs what a user would type —
segment, lesion, ``plan trajectory``, ``plan ablation``, ``plan seeds`` — through the
same library steps, adds a simulated navigated insertion along path 1
(:mod:`seldinger.workflow.demo_navigation`) and builds the report with ``seldinger report``'s
builder. Objects already in memory (the CT, the anatomy, the risk maps) are handed from
one step to the next instead of read again; that is the only difference from the commands.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from seldinger.data import SampleCase, load_sample
from seldinger.export import Report
from seldinger.files import atomic_dir
from seldinger.io import write_volume
from seldinger.plan import NavigationSection, Plan, StructureRef
from seldinger.planning.ablation import PlacementError
from seldinger.planning.seeds import SeedPlanError
from seldinger.planning.trajectory import NoSafePathError
from seldinger.workflow.ablation import AblationRequest, plan_ablation_step
from seldinger.workflow.anatomy import segment_files, segment_lesion_file
from seldinger.workflow.case import PlanCase
from seldinger.workflow.demo_navigation import navigation_section, simulate_navigation
from seldinger.workflow.report import ReportRequest, build_report_files
from seldinger.workflow.seeds import SeedRequest, plan_seeds_step
from seldinger.workflow.trajectory import TrajectoryRequest, plan_trajectory_step

__all__ = ["DEMO_ABLATION", "DEMO_SEEDS", "run_demo", "write_sample"]

logger = logging.getLogger(__name__)

#: The demo's ablation (the plan's path and figures folder are set when it runs).
DEMO_ABLATION = AblationRequest(
    Path("plan.json"),
    "emprint",
    ("150W-10min",),
    margin_mm=5.0,
    max_probes=3,
    command="seldinger demo",
)
#: The demo's implant: 6711 seeds, 120 Gy to lesion + 5 mm; coplanar, else free needles.
DEMO_SEEDS = SeedRequest(
    Path("plan.json"),
    prescription_gy=120.0,
    margin_mm=5.0,
    templates=("coplanar", "free"),
    seed_data="6711",
    command="seldinger demo",
)


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
    """Run the pipeline on the sample case into ``out`` (written whole or not at all).

    Returns
    -------
    dict
        ``report`` and ``plan`` paths, seconds per step, whether the phantom was used, notes.
    """
    timings_s: dict[str, float] = {}
    start = time.perf_counter()
    case = load_sample(offline=offline)
    timings_s["load_sample"] = time.perf_counter() - start
    with atomic_dir(out, force=force) as tmp:
        notes = _run(case, tmp, timings_s)
    return {
        "report": str(out / "report" / "index.html"),
        "plan": str(out / "plan.json"),
        "timings_s": {k: round(v, 2) for k, v in timings_s.items()},
        "is_phantom": case.is_phantom,
        "notes": [*case.notes, *notes],
    }


def _timed(timings_s: dict[str, float], name: str, start: float) -> None:
    timings_s[name] = time.perf_counter() - start


def _run(sample: SampleCase, out: Path, timings_s: dict[str, float]) -> list[str]:
    notes: list[str] = []
    start = time.perf_counter()
    ct_path, plan_path = out / "ct.nii.gz", out / "plan.json"
    write_volume(sample.ct.volume, ct_path)
    ct, anatomy = segment_files(ct_path, out / "anatomy")
    _timed(timings_s, "anatomy", start)

    start = time.perf_counter()
    lesion_path = out / "masks" / "lesion.nii.gz"
    lesion_path.parent.mkdir()
    _, lesion = segment_lesion_file(
        ct_path, sample.nodule_centroid_lps_mm, lesion_path, anatomy=anatomy
    )
    _timed(timings_s, "lesion", start)

    start = time.perf_counter()
    request = TrajectoryRequest(
        ct_path=ct_path,
        anatomy_dir=out / "anatomy",
        out=plan_path,
        lesion_path=lesion_path,
        top=5,
        figures_dir=out / "trajectories",
        command="seldinger demo",
    )
    try:
        planned = plan_trajectory_step(request, ct=ct, anatomy=anatomy)
    except NoSafePathError as err:
        raise NoSafePathError(
            f"the demo found no safe needle path: {err}", err.blocked_by, err.n_candidates
        ) from err
    plan = _with_sample(planned.plan, sample, out, lesion.seed_lps_mm)
    plan.save(plan_path, force=True)
    _timed(timings_s, "trajectories", start)

    state = PlanCase(plan, plan_path, ct, ct_path)
    start = time.perf_counter()
    try:
        ablated = plan_ablation_step(
            replace(DEMO_ABLATION, plan_path=plan_path, figures_dir=out / "ablation"),
            case=state,
            maps=planned.maps,
        )
        state = PlanCase(ablated.plan, plan_path, ct, ct_path)
    except PlacementError as err:
        notes.append(f"no ablation plan: {' '.join(str(err).split())}")
    _timed(timings_s, "ablation", start)

    start = time.perf_counter()
    try:
        seeded = plan_seeds_step(
            replace(DEMO_SEEDS, plan_path=plan_path, figures_dir=out / "seeds"),
            case=state,
            maps=planned.maps,
        )
        state = PlanCase(seeded.plan, plan_path, ct, ct_path)
        notes.extend(seeded.notes)
    except SeedPlanError as err:
        notes.append(f"no seed implant: {' '.join(str(err).split())}")
    _timed(timings_s, "seeds", start)

    start = time.perf_counter()
    best = planned.section.paths[0]
    navigated = simulate_navigation(
        ct.volume, anatomy["body"], best.entry_lps_mm, best.target_lps_mm, out / "navigation"
    )
    if navigated.registration is not None:
        plan = state.plan
        section = plan.navigation or NavigationSection()
        section.store_registration(navigated.registration)
        plan.navigation = section
        plan.provenance.record("navigation simulation", {"registration": navigated.registration.id})
        plan.save(plan_path, force=True)
    _timed(timings_s, "navigation", start)

    start = time.perf_counter()
    reference = sample.labels.get("nodule")
    extra: dict[str, Any] = {}
    if reference is not None:
        extra["Dice vs readers' consensus"] = round(_dice(lesion.mask.array, reference.array), 3)
    build_report_files(
        ReportRequest(
            plan_path,
            out / "report",
            title="Seldinger demo",
            subtitle=(
                "synthetic thorax phantom" if sample.is_phantom else "LIDC-IDRI-0001 chest CT"
            )
            + f" — {sample.attribution}",
            extra_sections=(
                lambda report: navigation_section(report, navigated),
                lambda report: _reference_section(report, sample),
            ),
            target_extra=extra,
        ),
        case=state,
    )
    _timed(timings_s, "report", start)
    return notes


def _with_sample(plan: Plan, sample: SampleCase, out: Path, seed_lps_mm: Any) -> Plan:
    """The plan with its CT path relative to the plan, the lesion's seed, reference masks."""
    plan.case = plan.case.model_copy(update={"source_path": "ct.nii.gz"})
    plan.targets = [t.model_copy(update={"seed_lps_mm": tuple(seed_lps_mm)}) for t in plan.targets]
    for name, mask in sample.labels.items():
        path = out / "masks" / f"{name}_reference.nii.gz"
        write_volume(mask, path)
        volume_ml = float(np.count_nonzero(mask.array)) * float(np.prod(mask.spacing_mm)) / 1000.0
        plan.structures[f"{name}_reference"] = StructureRef(
            mask_path=f"masks/{name}_reference.nii.gz", volume_ml=round(volume_ml, 3)
        )
    return plan


def _dice(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else 1.0


def _reference_section(report: Report, sample: SampleCase) -> None:
    report.add_section(
        "Reference structures",
        "Masks shipped with the sample case (the readers' nodule consensus, or the phantom's "
        f"organs), kept beside the plan under masks/. {sample.attribution}",
    )
    rows = []
    for name, mask in sample.labels.items():
        ijk = np.argwhere(np.asarray(mask.array, bool))
        centroid = mask.index_to_lps(ijk.mean(axis=0)) if len(ijk) else [float("nan")] * 3
        rows.append(
            {
                "structure": name,
                "volume_ml": round(len(ijk) * float(np.prod(mask.spacing_mm)) / 1000.0, 3),
                "centroid_lps_mm": [round(float(c), 1) for c in centroid],
            }
        )
    report.add_table(rows, caption="Shipped reference masks: volume (mL) and centroid (LPS mm)")
