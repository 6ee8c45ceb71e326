"""The demo pipeline: the sample case through every step that exists, ending in a report.

Steps: anatomy, lesion, needle trajectories, ablation plan, seed implant, and a simulated
navigated insertion (:mod:`seldinger.app.demo_navigation`). Later steps (respiratory
motion, robots) add their stages here and their sections to the report.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seldinger._files import atomic_dir
from seldinger.anatomy import Anatomy, Lesion, segment, segment_lesion
from seldinger.app.cli_seeds import metric_rows, write_seed_figures
from seldinger.app.demo_navigation import Navigated, navigation_section, simulate_navigation
from seldinger.data import SampleCase, load_sample
from seldinger.export import Report, render_views, write_trajectory_figures
from seldinger.export.ablation_figures import write_ablation_figures
from seldinger.export.anatomy3d import render_airways_3d
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.physics.ablation import load_catalogue
from seldinger.physics.tg43 import load_seed_data
from seldinger.planning import Plan, StructureRef, Target
from seldinger.planning.ablation import (
    HEAT_SINK_CALIBRE_MM,
    HEAT_SINK_DISTANCE_MM,
    AblationPlan,
    PlacementError,
    plan_ablation,
)
from seldinger.planning.seeds import SeedGoals, SeedPlan, SeedPlanError, plan_seeds
from seldinger.planning.trajectory import (
    EVIDENCE_ODDS_RATIOS,
    SKIN_STEP_MM,
    NoSafePathError,
    RiskMaps,
    Trajectory,
    TrajectoryConstraints,
    TrajectorySearch,
    plan_trajectories,
)
from seldinger.planning.trajectory.score import DEPTH_RAMP_MM

__all__ = ["run_demo", "write_sample"]

logger = logging.getLogger(__name__)

#: Distinct paths the demo keeps in the plan and shows.
DEMO_TOP_PATHS = 5
#: The demo's ablation: device, setting, margin (mm) and most applicators.
DEMO_ABLATION_DEVICE = "emprint"
DEMO_ABLATION_SETTING = "150W-10min"
DEMO_ABLATION_MARGIN_MM = 5.0
DEMO_ABLATION_MAX_PROBES = 3
#: The demo's seed implant: seed model, prescription (Gy), PTV margin (mm), template.
DEMO_SEED_MODEL = "6711"
DEMO_SEED_RX_GY = 120.0
DEMO_SEED_MARGIN_MM = 5.0
DEMO_SEED_TEMPLATE = "coplanar"


@dataclass
class _Planned:
    """The demo's trajectory step: the search and its pictures, or why there is no path."""

    search: TrajectorySearch | None = None
    paths: list[Trajectory] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    error: str | None = None
    blocked_by: dict[str, int] = field(default_factory=dict)
    n_candidates: int = 0
    maps: RiskMaps | None = None


@dataclass
class _Ablated:
    """The demo's ablation step: the plan and its pictures, or why there is none."""

    result: AblationPlan | None = None
    figures: list[Path] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Seeded:
    """The demo's seed step: the implant and its pictures, or why there is none."""

    result: SeedPlan | None = None
    figures: list[Path] = field(default_factory=list)
    error: str | None = None


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

    start = time.perf_counter()
    planned = _plan_paths(ct, anatomy, lesion, out / "trajectories")
    plan.trajectories = [path.to_dict() for path in planned.paths]
    timings_s["trajectories"] = time.perf_counter() - start

    start = time.perf_counter()
    ablated = _plan_ablation(ct, anatomy, lesion, planned.maps, out / "ablation")
    if ablated.result is not None:
        zone_path = masks_dir / "ablation_zone.nii.gz"
        write_volume(ablated.result.zone, zone_path)
        plan.ablation = {
            **ablated.result.to_dict(),
            "target": "nodule",
            "zone_mask_path": zone_path.relative_to(out).as_posix(),
        }
    plan.provenance.parameters["ablation"] = {
        "device": DEMO_ABLATION_DEVICE,
        "settings": [DEMO_ABLATION_SETTING],
        "margin_mm": DEMO_ABLATION_MARGIN_MM,
        "max_probes": DEMO_ABLATION_MAX_PROBES,
        "target": "nodule",
        "error": ablated.error,
    }
    timings_s["ablation"] = time.perf_counter() - start

    start = time.perf_counter()
    seeded = _plan_seed_implant(ct, anatomy, lesion, planned.maps, out / "seeds")
    if seeded.result is not None:
        plan.seeds = {**seeded.result.to_dict(), "target": "nodule", "seed_data": DEMO_SEED_MODEL}
    plan.provenance.parameters["seeds"] = {
        "prescription_gy": DEMO_SEED_RX_GY,
        "margin_mm": DEMO_SEED_MARGIN_MM,
        "template": DEMO_SEED_TEMPLATE if seeded.result is None else seeded.result.template,
        "seed_data": DEMO_SEED_MODEL,
        "target": "nodule",
        "error": seeded.error,
    }
    timings_s["seeds"] = time.perf_counter() - start

    start = time.perf_counter()
    navigated = _simulate_navigation(ct, anatomy, planned, out / "navigation")
    if navigated.plan_entry is not None:
        plan.navigation = {"registrations": [navigated.plan_entry], "calibrations": []}
    timings_s["navigation"] = time.perf_counter() - start
    plan_path = plan.save(out / "plan.json")

    start = time.perf_counter()
    report = _report(case, anatomy, lesion, structures, planned, ablated, seeded, navigated)
    report.write(out / "report")
    timings_s["report"] = time.perf_counter() - start
    return {"report": "report/index.html", "plan": plan_path.name}


def _simulate_navigation(
    ct: Volume, anatomy: Anatomy, planned: _Planned, figures_dir: Path
) -> Navigated:
    """The simulated navigation along the best path, or why there is none."""
    if not planned.paths:
        return Navigated(error="no safe needle path to navigate along.")
    best = planned.paths[0]
    try:
        return simulate_navigation(
            ct, anatomy["body"], best.entry_lps_mm, best.target_lps_mm, figures_dir
        )
    except ValueError as err:  # e.g. no skin patch for the markers: the report says why
        return Navigated(error=" ".join(str(err).split()))


def _plan_paths(ct: Volume, anatomy: Anatomy, lesion: Lesion, figures_dir: Path) -> _Planned:
    """Plan needle paths to the lesion (default constraints) and draw them into ``figures_dir``."""
    # built once: the ablation step places its probes on the same maps
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion.mask)
    try:
        search = plan_trajectories(maps, lesion=lesion.mask)
    except NoSafePathError as err:
        # The report says why; the rest of the demo still runs.
        return _Planned(
            error=" ".join(str(err).split()),
            blocked_by=dict(err.blocked_by),
            n_candidates=err.n_candidates,
            maps=maps,
        )
    paths = search.top(DEMO_TOP_PATHS)
    figures_dir.mkdir()
    figures = write_trajectory_figures(
        ct, search, paths, figures_dir, anatomy, lesion.mask, n_needle_views=1
    )
    return _Planned(
        search=search,
        paths=paths,
        figures=figures,
        blocked_by=dict(search.blocked_by),
        n_candidates=search.n_candidates,
        maps=maps,
    )


def _plan_ablation(
    ct: Volume, anatomy: Anatomy, lesion: Lesion, maps: RiskMaps | None, figures_dir: Path
) -> _Ablated:
    """Plan the demo's ablation on the trajectory maps and draw it into ``figures_dir``."""
    try:
        result = plan_ablation(
            anatomy,
            lesion.mask,
            DEMO_ABLATION_DEVICE,
            [DEMO_ABLATION_SETTING],
            margin_mm=DEMO_ABLATION_MARGIN_MM,
            max_probes=DEMO_ABLATION_MAX_PROBES,
            maps=maps,
        )
    except PlacementError as err:
        # The report says why; the rest of the demo still runs.
        return _Ablated(error=" ".join(str(err).split()))
    context = {"vessels": anatomy["vessels"]} if "vessels" in anatomy else {}
    figures = write_ablation_figures(ct, result, lesion.mask, figures_dir, context)
    return _Ablated(result=result, figures=figures)


def _plan_seed_implant(
    ct: Volume, anatomy: Anatomy, lesion: Lesion, maps: RiskMaps | None, figures_dir: Path
) -> _Seeded:
    """Plan the demo's seed implant on the trajectory maps and draw it into ``figures_dir``."""
    if maps is None:
        maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion.mask)
    data = load_seed_data(DEMO_SEED_MODEL)
    errors: list[str] = []
    plans: list[SeedPlan] = []
    # The coplanar template first; individually angled needles when it cannot meet every
    # goal (V150 included): the first plan meeting all of them, else the first plan made.
    for template in dict.fromkeys((DEMO_SEED_TEMPLATE, "free")):
        try:
            plans.append(
                plan_seeds(
                    maps,
                    lesion.mask,
                    data,
                    margin_mm=DEMO_SEED_MARGIN_MM,
                    goals=SeedGoals(prescription_gy=DEMO_SEED_RX_GY),
                    template=template,
                )
            )
        except SeedPlanError as err:
            errors.append(f"{template}: {' '.join(str(err).split())}")
            continue
        if not plans[-1].notes:
            break
        errors.append(f"{template}: {' '.join(plans[-1].notes)}")
    result = next((p for p in plans if not p.notes), plans[0] if plans else None)
    if result is None:
        # The report says why; the rest of the demo still runs.
        return _Seeded(error="; ".join(errors))
    figures = write_seed_figures(ct, result, lesion.mask, data, figures_dir)
    return _Seeded(result=result, figures=figures, error="; ".join(errors) or None)


#: How the report names the risk factors of :data:`EVIDENCE_ODDS_RATIOS`.
_FACTOR_LABELS = {
    "bulla_crossed": "bulla crossed",
    "fissure_crossed": "fissure crossed",
    "emphysema_crossed": "emphysema crossed",
    "multiple_pleural_punctures": "more than one pleural puncture",
    "depth_3cm_or_more": "lesion depth >= 3 cm",
}


def _risk_score_sentence(terms: Sequence[str]) -> str:
    """What the risk score is, naming the odds ratios behind the terms the planner used."""
    used = [name for name in terms if name in EVIDENCE_ODDS_RATIOS]
    factors = ", ".join(
        f"{_FACTOR_LABELS.get(name, name.replace('_', ' '))} OR {EVIDENCE_ODDS_RATIOS[name]:g} "
        f"(+{math.log(EVIDENCE_ODDS_RATIOS[name]):.2f})"
        for name in used
    )
    lo_mm, hi_mm = DEPTH_RAMP_MM
    return (
        "The risk score is a log odds of pneumothorax: each risk factor a path has adds the "
        "natural logarithm of its pooled odds ratio from a meta-analysis of CT-guided lung "
        f"biopsy (Huo et al., Br J Radiol 2020;93:20190866: {factors}; the depth term ramps in "
        f"from {lo_mm / 10:g} to {hi_mm / 10:g} cm), as in a logistic model with independent "
        "factors, plus small tie-breakers for needle length, aerated lung crossed, angle to "
        "the pleura and closeness to vessels. Lower is better; 0.7 more is about twice the "
        "odds."
    )


def _trajectory_section(report: Report, planned: _Planned) -> None:
    """The report's "Needle trajectories" section."""
    rules = TrajectoryConstraints()
    report.add_section(
        "Needle trajectories",
        f"Every straight path from a skin point to the lesion's centroid was examined "
        f"({planned.n_candidates} skin candidates {SKIN_STEP_MM:g} mm apart). Paths through "
        "bone, mediastinum, trachea or main bronchi, within "
        f"{rules.vessel_distance_mm:g} mm of a vessel {rules.vessel_calibre_mm:g} mm wide or "
        "more, leaving and re-entering the body, or longer than the "
        f"{rules.needle_length_mm:g} mm needle (to the lesion's far side) are refused; the "
        "safe ones are ranked by risk score. The plan (plan.json) holds the best "
        f"{DEMO_TOP_PATHS} with every metric.",
    )
    if planned.search is None:
        report.add_text(f"No safe path: {planned.error}")
    else:
        search = planned.search
        best = planned.paths[0]
        report.add_text(_risk_score_sentence(list(best.risk_terms)))
        names = [path.name for path in planned.figures]
        report.add_image(
            planned.figures[names.index("paths_axial.png")],
            caption=f"The {len(planned.paths)} best distinct paths (entries at least 10 mm "
            "apart) projected on the axial slice through the target; 1 (thickest) is the best. "
            "Outlines: bones, mediastinum, vessels, airways, lesion.",
        )
        report.add_image(
            planned.figures[names.index("needle_1.png")],
            caption="The best path seen along the needle: the plane holding the needle and "
            "the left-right direction, the plane at right angles to it, and the needle's-eye "
            f"view at the target with the {search.constraints.vessel_distance_mm:g} mm vessel "
            "safety radius.",
        )
        report.add_image(
            planned.figures[names.index("skin_risk_map.png")],
            caption="Skin entry candidates unwrapped around the target (azimuth, height): safe "
            "ones coloured by risk score, refused ones shaded by their first reason (legend), "
            "stars at the entries of the best paths.",
        )
        rows = []
        for path in planned.paths:
            row = path.to_dict()
            distance = row["min_distance_mm"]
            rows.append(
                {
                    "rank": row["rank"],
                    "entry_lps_mm": [round(v, 1) for v in row["entry_lps_mm"]],
                    "length_mm": row["length_mm"],
                    "to_far_side_mm": row["depth_to_far_side_mm"],
                    "lung_length_mm": row["lung_length_mm"],
                    "pleural_crossings": row["pleural_crossings"],
                    "closest_vessel_mm": distance.get("vessels"),
                    "closest_bone_mm": distance.get("bones"),
                    "axial_angle_deg": row["axial_angle_deg"],
                    "pleura_angle_deg": row["pleura_angle_deg"],
                    "risk_score": row["risk_score"],
                    "pareto": row["pareto"],
                }
            )
        report.add_table(
            rows,
            caption=f"The {len(rows)} best distinct paths of {int(search.safe.sum())} safe "
            "ones (mm, degrees; a dash: the structure is farther than 100 mm, or no pleura is "
            "crossed; pareto: no other path is better in every metric)",
        )
    report.add_table(
        [
            {"reason": reason, "candidates": count}
            for reason, count in sorted(planned.blocked_by.items(), key=lambda kv: -kv[1])
        ],
        caption=f"Skin candidates refused, per reason, of {planned.n_candidates} (a candidate "
        "may count under several)",
    )


def _ablation_section(report: Report, ablated: _Ablated) -> None:
    """The report's "Ablation plan" section."""
    device = load_catalogue().device(DEMO_ABLATION_DEVICE)
    zone = device.setting(DEMO_ABLATION_SETTING).zone
    report.add_section(
        "Ablation plan",
        f"Up to {DEMO_ABLATION_MAX_PROBES} microwave applicators ({device.manufacturer}, "
        f"catalogue name {device.name}) at {DEMO_ABLATION_SETTING} (predicted zone {zone.length_mm:g} mm long, "
        f"{zone.width_mm:g} mm wide, an ellipsoid) were placed so that their zones cover 99 % "
        f"of the lesion and a {DEMO_ABLATION_MARGIN_MM:g} mm margin: the fewest applicators, "
        "then the least healthy tissue. Each probe path keeps the needle-trajectory rules "
        "above, and no zone may reach the mediastinum or the central airways. Vendor charts "
        "come from normal animal liver and over-predict clinical zones, especially in "
        "perfused tissue and near vessels (Ruiter et al., Eur Radiol 2019;29:4026): read the "
        "predicted zone as an optimistic outline.",
    )
    result = ablated.result
    if result is None:
        report.add_text(f"No ablation plan: {ablated.error}")
        return
    placement = result.placement
    names = [path.name for path in ablated.figures]
    report.add_image(
        ablated.figures[names.index("ablation_zones.png")],
        caption="Axial, coronal and sagittal slices through the lesion: the lesion, the "
        "predicted ablation zone (union of the applicators' ellipsoids) and the pulmonary "
        "vessels; the applicator tips are marked (a circle: the tip lies off the slice).",
    )
    for n in range(1, len(placement.applicators) + 1):
        report.add_image(
            ablated.figures[names.index(f"ablation_probe_{n}.png")],
            caption=f"Applicator {n} seen along its path: the plane holding the probe and the "
            "left-right direction, the plane at right angles to it, and the probe's-eye view "
            "at the tip, with the lesion and the predicted zone.",
        )
    lo_mm, hi_mm = result.margin.thresholds_mm
    report.add_image(
        ablated.figures[names.index("margin_map.png")],
        caption="The lesion surface coloured by its ablative margin, the distance out to the "
        f"predicted zone's surface (red: lesion outside the zone; orange to yellow: {lo_mm:g} "
        f"to {hi_mm:g} mm; green: {hi_mm:g} mm or more), and two slices through the smallest "
        "margin with the zone outlined.",
    )
    rows = []
    for n, applicator in enumerate(placement.applicators, 1):
        row = applicator.to_dict()
        rows.append(
            {
                "applicator": n,
                "setting": row["setting"],
                "tip_lps_mm": [round(v, 1) for v in row["tip_lps_mm"]],
                "entry_lps_mm": [round(v, 1) for v in row["entry_lps_mm"]],
                "insertion_depth_mm": row["insertion_depth_mm"],
                "zone_diameters_mm": [round(2 * r, 1) for r in row["zone_radii_mm"]],
                "coverage_alone_percent": row["coverage_percent_alone"],
                "path_risk_score": row["path"]["risk_score"],
            }
        )
    report.add_table(
        rows,
        caption="Applicators (LPS mm; zone diameters along the probe, across it and across "
        "both; coverage of the lesion + margin by this applicator alone)",
    )
    margin = result.margin
    report.add_table(
        {
            f"lesion + {placement.margin_mm:g} mm covered (%)": round(
                placement.target_coverage_percent, 1
            ),
            "lesion covered (%)": round(margin.coverage_percent, 1),
            "minimal ablative margin (mm)": round(margin.min_margin_mm, 1),
            f"surface with margin < {lo_mm:g} mm (%)": round(margin.surface_below_0_percent, 1),
            f"surface with margin {lo_mm:g}-{hi_mm:g} mm (%)": round(
                margin.surface_0_to_5_percent, 1
            ),
            f"surface with margin >= {hi_mm:g} mm (%)": round(margin.surface_at_least_5_percent, 1),
            "zone volume (mL)": round(placement.zone_volume_ml, 1),
            "healthy tissue ablated (mL)": round(placement.healthy_ablated_ml, 1),
        },
        caption="Coverage and margin of the predicted zone (margins between sub-voxel "
        "surfaces; surface percentages of the lesion's surface area)",
    )
    if result.heat_sinks:
        report.add_table(
            [sink.to_dict() for sink in result.heat_sinks],
            caption=f"Heat sinks: vessels at least {HEAT_SINK_CALIBRE_MM:g} mm wide within "
            f"{HEAT_SINK_DISTANCE_MM:g} mm of the zone (blood flow cools the zone next to "
            "them: expect a smaller zone there; mm, LPS)",
        )
    else:
        report.add_text(
            f"Heat sinks: no vessel at least {HEAT_SINK_CALIBRE_MM:g} mm wide runs within "
            f"{HEAT_SINK_DISTANCE_MM:g} mm of the zone."
        )
    report.add_text(
        f"Device: {device.name}, zone sizes from a {device.provenance} (confidence "
        f"{device.confidence}). Source: {' '.join(device.source.split())}"
    )
    for note in placement.notes:
        report.add_text(f"Note: {note}")


def _seed_section(report: Report, seeded: _Seeded) -> None:
    """The report's "Seed implant" section."""
    report.add_section(
        "Seed implant",
        f"A permanent I-125 implant (model {DEMO_SEED_MODEL}, TG-43 dosimetry: 2-D line "
        f"source, dose by complete decay) prescribed {DEMO_SEED_RX_GY:g} Gy to the PTV, the "
        f"lesion plus {DEMO_SEED_MARGIN_MM:g} mm. Parallel needles through a {DEMO_SEED_TEMPLATE} "
        "template (5 mm hole grid) keep the needle-trajectory rules above; seeds sit every "
        "5 mm along them inside the PTV. The loading (greedy, then simulated annealing) meets "
        "D90 >= the prescription, V100 >= 95 % and V150 <= 60 %, with the fewest seeds and "
        "needles. Dose in lung tissue is "
        "computed as in water (TG-43 ignores heterogeneity).",
    )
    result = seeded.result
    if result is None:
        report.add_text(f"No seed implant: {seeded.error}")
        return
    if result.template != DEMO_SEED_TEMPLATE:
        report.add_text(
            f"The {DEMO_SEED_TEMPLATE} template could not meet the goals ({seeded.error}); "
            f"the implant below uses {result.template} (individually angled) needles."
        )
    names = [path.name for path in seeded.figures]
    report.add_image(
        seeded.figures[names.index("seed_dose.png")],
        caption="Axial, coronal and sagittal slices through the lesion: the lesion, the "
        f"regions receiving at least 100, 150 and 200 % of {DEMO_SEED_RX_GY:g} Gy, and the seeds.",
    )
    report.add_image(
        seeded.figures[names.index("seed_needles.png")],
        caption="The needles projected on the axial slice through the lesion, from the skin "
        "entry to the deepest seed; each labelled with its number of seeds.",
    )
    report.add_image(
        seeded.figures[names.index("seed_dvh.png")],
        caption="Cumulative dose-volume histogram of the PTV, with the prescription and D90.",
    )
    summary = result.to_dict()
    report.add_table(
        [
            {
                "needle": n,
                "entry_lps_mm": [round(v, 1) for v in needle["entry_lps_mm"]],
                "seeds": needle["n_seeds"],
                "depths_mm": [round(d) for d in needle["depths_mm"]],
            }
            for n, needle in enumerate(summary["needles"], 1)
        ],
        caption=f"Needles: {summary['n_seeds']} seeds of {summary['strength_u']:.3f} U "
        f"({summary['strength_mci']:.3f} mCi), total {summary['total_u']:.2f} U "
        f"({summary['total_mci']:.2f} mCi); seed depths below the skin entry along the needle",
    )
    report.add_table(
        {name: round(value, 2) for name, value in metric_rows(result).items()},
        caption="Dose metrics of the PTV (Gy, % of the PTV volume)",
    )
    for note in result.notes:
        report.add_text(f"Note: {note}")


def _dice(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else 1.0


def _report(
    case: SampleCase,
    anatomy: Anatomy,
    lesion: Lesion,
    structures: dict[str, dict[str, Any]],
    planned: _Planned,
    ablated: _Ablated,
    seeded: _Seeded,
    navigated: Navigated,
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
    _trajectory_section(report, planned)
    _ablation_section(report, ablated)
    _seed_section(report, seeded)
    navigation_section(report, navigated)
    report.add_section("Reference structures")
    report.add_table(
        [{"structure": name, **stats} for name, stats in structures.items()],
        caption="Shipped reference masks: volumes in mL, centroids in LPS mm",
    )
    return report
