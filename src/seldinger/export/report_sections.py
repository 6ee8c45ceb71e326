"""The sections of a plan's report: text, tables and captions from the plan's typed sections.

Each function adds one section to a :class:`~seldinger.export.report.Report` from a plan
section and the figures drawn for it (``figures`` maps a file name to its path; a missing
figure is left out). Captions give units and windows; numbers come from the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seldinger.export.report import Report
from seldinger.plan import (
    AblationSection,
    MotionSection,
    NavigationSection,
    Plan,
    SeedSection,
    Target,
    TrajectorySection,
)

__all__ = [
    "ablation_section",
    "case_section",
    "motion_section",
    "navigation_record_section",
    "risk_score_sentence",
    "seed_metric_rows",
    "seed_section",
    "target_section",
    "trajectory_section",
]

Figures = Mapping[str, Path]

#: How the report names the risk factors behind the risk score.
_FACTOR_LABELS = {
    "bulla_crossed": "bulla crossed",
    "fissure_crossed": "fissure crossed",
    "emphysema_crossed": "emphysema crossed",
    "multiple_pleural_punctures": "more than one pleural puncture",
    "depth_3cm_or_more": "lesion depth >= 3 cm",
}


def _image(report: Report, figures: Figures, name: str, caption: str) -> None:
    if name in figures:
        report.add_image(figures[name], caption=caption)


#: How captions name the outlines of a view (its legend lists those the slices cut).
_OUTLINES = "the structures outlined are named in the legend (only those the slices cut)"


def _window_words(window: str) -> str:
    """``"lung window (W 1500 / L -600 HU)"`` for a preset name, else the name."""
    from seldinger.export.views import WINDOW_PRESETS_HU

    name = {"mediastinum": "mediastinal"}.get(window, window.replace("_", " "))
    if window not in WINDOW_PRESETS_HU:
        return f"{name} window"
    centre_hu, width_hu = WINDOW_PRESETS_HU[window]
    return f"{name} window (W {width_hu:g} / L {centre_hu:g} HU)"


def _round(point: Sequence[float], digits: int = 1) -> list[float]:
    return [round(float(v), digits) for v in point]


def case_section(
    report: Report, plan: Plan, ct_summary: Mapping[str, Any], identified: bool
) -> None:
    """The case header: the CT's geometry; path and UIDs only when ``identified``."""
    report.add_section(
        "Case",
        "The plan's CT and how it was read. Positions are DICOM patient LPS millimetres "
        "(x to the patient's left, y posterior, z superior)."
        + (
            ""
            if identified
            else " De-identified: the CT's path and DICOM UIDs are left out "
            "(`seldinger report --identified` shows them)."
        ),
    )
    keys = [
        "format",
        "shape",
        "spacing_mm",
        "orientation",
        "origin_lps_mm",
        "hu_min",
        "hu_max",
        "modality",
        "manufacturer",
        "kvp",
        "kernel",
        "slice_thickness_mm",
    ]
    if identified:
        keys = ["source", *keys, "study_uid", "series_uid"]
    row = {key: ct_summary.get(key) for key in keys if ct_summary.get(key) is not None}
    origin = ct_summary.get("origin_lps_mm")
    if origin is not None:  # every coordinate to 0.01 mm (178 beside -11.32 misread)
        row["origin_lps_mm"] = ", ".join(f"{float(v):.2f}" for v in origin)
    row["plan created (UTC)"] = plan.provenance.created_utc.isoformat(timespec="seconds")
    row["software"] = f"Seldinger {plan.provenance.software_version}"
    report.add_table(row, caption="CT geometry (mm, LPS) and intensities (HU)")
    steps = [
        {
            "step": s.step,
            "time (UTC)": s.time_utc.isoformat(timespec="seconds"),
            "software": s.software_version,
        }
        for s in plan.provenance.steps
    ]
    if steps:
        report.add_table(steps, caption="Planning steps recorded in the plan (provenance)")


def target_section(
    report: Report, target: Target, figures: Figures, extra: Mapping[str, Any]
) -> None:
    """The target lesion: measurements and its views."""
    report.add_section(
        f"Target: {target.name}",
        "The lesion as segmented on the CT (mask beside the plan); diameters run between voxel "
        "centres (RECIST: longest diameter in one axial slice).",
    )
    row: dict[str, Any] = {
        "centroid_lps_mm": _round(target.centroid_lps_mm),
        "volume (mL)": round(target.volume_ml, 2),
    }
    if target.recist_diameter_mm is not None:
        row["RECIST diameter (mm)"] = round(target.recist_diameter_mm, 1)
    if target.max_diameter_mm is not None:
        row["largest 3-D diameter (mm)"] = round(target.max_diameter_mm, 1)
    if target.seed_lps_mm is not None:
        row["seed point (LPS mm)"] = _round(target.seed_lps_mm)
    row.update(extra)
    report.add_table(row, caption="Lesion measurements (mL, mm, LPS)")
    # The anatomy pictures in the order drawn (the target's own window first), captioned by
    # the window each was drawn in; the legend names the structures the slices cut.
    anatomy_views = [n for n in figures if n.startswith("anatomy_") and n.endswith(".png")]
    for n, name in enumerate(anatomy_views):
        window = name.removeprefix("anatomy_").removesuffix(".png")
        lead = (
            "Axial, coronal and sagittal slices through the lesion" if n == 0 else "The same slices"
        )
        _image(report, figures, name, f"{lead}, {_window_words(window)}: {_OUTLINES}.")
    _image(
        report,
        figures,
        "airways_3d.png",
        "3-D airway tree with centrelines coloured by "
        "generation, and the lesion (red); axes in LPS mm.",
    )


def risk_score_sentence(terms: Sequence[str]) -> str:
    """What the risk score is, naming the odds ratios behind the terms the planner used."""
    from seldinger.planning.trajectory import EVIDENCE_ODDS_RATIOS
    from seldinger.planning.trajectory.score import DEPTH_RAMP_MM

    used = [name for name in terms if name in EVIDENCE_ODDS_RATIOS]
    factors = ", ".join(
        f"{_FACTOR_LABELS.get(name, name.replace('_', ' '))} OR {EVIDENCE_ODDS_RATIOS[name]:g} "
        f"(+{math.log(EVIDENCE_ODDS_RATIOS[name]):.2f})"
        for name in used
    )
    from seldinger.planning.trajectory.score import LIVER_CAPSULE_WEIGHT, LIVER_PARENCHYMA_MM

    lo_mm, hi_mm = DEPTH_RAMP_MM
    liver = (
        " For this liver target it adds a practice rule with no pooled odds ratio: up to "
        f"{LIVER_CAPSULE_WEIGHT:g} for a path entering the lesion straight from the capsule, "
        f"falling to 0 at {LIVER_PARENCHYMA_MM:g} mm of normal liver crossed first (the "
        "parenchyma tamponades the tract: less bleeding and seeding)."
        if "liver_capsule" in terms
        else ""
    )
    return (
        "The risk score is a log odds of pneumothorax: each risk factor a path has adds the "
        "natural logarithm of its pooled odds ratio from a meta-analysis of CT-guided lung "
        f"biopsy (Huo et al., Br J Radiol 2020;93:20190866: {factors}; the depth term ramps in "
        f"from {lo_mm / 10:g} to {hi_mm / 10:g} cm), as in a logistic model with independent "
        "factors, plus small tie-breakers for needle length, aerated lung crossed, angle to "
        "the pleura and closeness to vessels. Lower is better; 0.7 more is about twice the odds."
        + liver
    )


def trajectory_section(report: Report, section: TrajectorySection, figures: Figures) -> None:
    """The needle paths: rules, ranked paths with every metric, refusals."""
    rules = section.rules
    searched = (
        f"Every straight path from a skin point to the target ({section.n_candidates} skin "
        "candidates) was examined. "
        if section.n_candidates
        else ""
    )
    report.add_section(
        "Needle trajectories",
        searched
        + "Paths through bone, mediastinum, trachea or main bronchi"
        + (f", {', '.join(rules.forbidden)}" if rules.forbidden else "")
        + f", within {rules.vessel_distance_mm:g} mm of a vessel {rules.vessel_calibre_mm:g} mm "
        f"wide or more, leaving and re-entering the body, or longer than the "
        f"{rules.needle_length_mm:g} mm needle (to the lesion's far side)"
        + (
            f", more than {rules.max_axial_angle_deg:g}° out of the axial plane"
            if rules.max_axial_angle_deg is not None
            else ""
        )
        + (f", or entering from the table ({rules.table_side})" if rules.table_side else "")
        + f" are refused; the safe ones are ranked by risk score. The plan holds the best "
        f"{len(section.paths)} distinct paths.",
    )
    if section.paths:
        report.add_text(risk_score_sentence(list(section.paths[0].risk_terms)))
    _image(
        report,
        figures,
        "paths_axial.png",
        f"The {len(section.paths)} best distinct paths "
        "(entries at least 10 mm apart) on the axial slice through the target; 1 (thickest) "
        "is the best. A path is solid where it runs within the slice and dashed where it is "
        "projected from other levels (a projection does not show what the path crosses); an "
        "entry off the slice is a hollow circle, labelled with its height above (+) or below "
        "(-) the slice, on a dotted outline of the skin at its own level. "
        + _OUTLINES.capitalize()
        + ".",
    )
    _image(
        report,
        figures,
        "needle_1.png",
        "The best path seen along the needle: the plane "
        "holding the needle and the left-right direction, the plane at right angles to it, "
        f"and the needle's-eye view at the target with the {rules.vessel_distance_mm:g} mm "
        "vessel safety radius (mm).",
    )
    _image(
        report,
        figures,
        "skin_risk_map.png",
        "Skin entry candidates unwrapped around the "
        "target (azimuth, height): safe ones coloured by risk score, refused ones shaded by "
        "their first reason, stars at the entries of the best paths.",
    )
    rows = [
        {
            "rank": p.rank,
            "entry_lps_mm": _round(p.entry_lps_mm),
            "length_mm": p.length_mm,
            "to_far_side_mm": p.depth_to_far_side_mm,
            "lung_length_mm": p.lung_length_mm,
            "pleural_crossings": p.pleural_crossings,
            "closest_vessel_mm": p.min_distance_mm.get("vessels"),
            "closest_bone_mm": p.min_distance_mm.get("bones"),
            "axial_angle_deg": p.axial_angle_deg,
            "pleura_angle_deg": p.pleura_angle_deg,
            **(
                {"normal_liver_mm": p.liver_parenchyma_mm}
                if p.liver_parenchyma_mm is not None
                else {}
            ),
            "risk_score": p.risk_score,
            "pareto": p.pareto,
        }
        for p in section.paths
    ]
    report.add_table(
        rows,
        caption=f"The {len(rows)} best distinct paths"
        + (f" of {section.n_safe} safe ones" if section.n_safe is not None else "")
        + " (mm, degrees; a dash: farther than 100 mm, or no pleura crossed; normal liver: "
        "crossed before a liver lesion, 10 mm or more kept by the ranking when it can; pareto: "
        "no other path is better in every metric)",
    )
    if section.blocked_by:
        report.add_table(
            [
                {"reason": r, "candidates": c}
                for r, c in sorted(section.blocked_by.items(), key=lambda kv: -kv[1])
            ],
            caption=f"Skin candidates refused, per reason, of {section.n_candidates} (a candidate "
            "may count under several)",
        )
    for note in section.notes:
        report.add_text(f"Note: {note}")


def ablation_section(report: Report, section: AblationSection, figures: Figures) -> None:
    """The ablation plan: applicators, coverage, margin, heat sinks, device source."""
    from seldinger.planning.ablation import HEAT_SINK_CALIBRE_MM, HEAT_SINK_DISTANCE_MM

    report.add_section(
        "Ablation plan",
        f"{len(section.applicators)} {section.modality} applicator(s) of {section.device} "
        f"({', '.join(section.settings)}) placed so that their predicted zones cover the lesion "
        f"{section.target!r} and a {section.margin_mm:g} mm margin: the fewest applicators, then "
        "the least healthy tissue. Each probe path keeps the trajectory rules, and no zone may "
        "reach the mediastinum or the central airways. Zone sizes come from a "
        f"{section.device_provenance}; vendor charts come from normal animal liver and "
        "over-predict clinical zones, especially in perfused tissue and near vessels (Ruiter "
        "et al., Eur Radiol 2019;29:4026): read the predicted zone as an optimistic outline.",
    )
    _image(
        report,
        figures,
        "ablation_zones.png",
        "Axial, coronal and sagittal slices through "
        "the lesion: the lesion (outline), the predicted ablation zone (union of the "
        "applicators' ellipsoids, translucent) and the vessels the slices cut; each probe from "
        "its skin entry to its tip (solid within the slice, dashed where projected), tips "
        "marked (a cross on the slice, a circle off it); lung or soft-tissue window (HU) by the "
        "lesion's surroundings, scale bar in mm.",
    )
    for n in range(1, len(section.applicators) + 1):
        _image(
            report,
            figures,
            f"ablation_probe_{n}.png",
            f"Applicator {n} seen along its path: "
            "the plane holding the probe and the left-right direction, the plane at right "
            "angles to it, and the probe's-eye view at the tip, with the lesion and zone (mm).",
        )
    lo_mm, hi_mm = section.margin.thresholds_mm
    _image(
        report,
        figures,
        "margin_map.png",
        "The lesion surface coloured by its ablative margin "
        f"(mm, to the predicted zone's surface; red: outside the zone; orange to yellow: "
        f"{lo_mm:g} to {hi_mm:g} mm; green: {hi_mm:g} mm or more), and two slices through the "
        "smallest margin with the zone outlined.",
    )
    report.add_table(
        [
            {
                "applicator": n,
                "setting": a.setting,
                "tip_lps_mm": _round(a.tip_lps_mm),
                "entry_lps_mm": _round(a.entry_lps_mm),
                "insertion_depth_mm": a.insertion_depth_mm,
                "zone_diameters_mm": [round(2 * r, 1) for r in a.zone_radii_mm],
                "coverage_alone_percent": a.coverage_percent_alone,
                **(
                    {"normal_liver_mm": a.path.liver_parenchyma_mm}
                    if a.path.liver_parenchyma_mm is not None
                    else {}
                ),
                "path_risk_score": a.path.risk_score,
            }
            for n, a in enumerate(section.applicators, 1)
        ],
        caption="Applicators (LPS mm; zone diameters along the probe, across it and across both; "
        "coverage of the lesion + margin by this applicator alone, %; normal liver crossed "
        "before a liver lesion, mm, 10 or more by the ranking's rule)",
    )
    margin = section.margin
    report.add_table(
        {
            f"lesion + {section.margin_mm:g} mm covered (%)": round(
                section.target_coverage_percent, 1
            ),
            "lesion covered (%)": round(margin.coverage_percent, 1),
            "minimal ablative margin (mm)": round(margin.min_margin_mm, 1),
            f"surface with margin < {lo_mm:g} mm (%)": round(margin.surface_below_0_percent, 1),
            f"surface with margin {lo_mm:g}-{hi_mm:g} mm (%)": round(
                margin.surface_0_to_5_percent, 1
            ),
            f"surface with margin >= {hi_mm:g} mm (%)": round(margin.surface_at_least_5_percent, 1),
            "zone volume (mL)": round(section.zone_volume_ml, 1),
            "healthy tissue ablated (mL)": round(section.healthy_ablated_ml, 1),
        },
        caption="Coverage and margin of the predicted zone (margins between sub-voxel surfaces; "
        "surface percentages of the lesion's surface area)",
    )
    if section.modality == "ire":
        report.add_text("Heat sinks: not applicable (IRE is non-thermal).")
    elif section.heat_sinks:
        report.add_table(
            [h.model_dump(mode="json") for h in section.heat_sinks],
            caption=f"Heat sinks: vessels at least {HEAT_SINK_CALIBRE_MM:g} mm wide within "
            f"{HEAT_SINK_DISTANCE_MM:g} mm of the zone (blood flow cools the zone next to them: "
            "expect a smaller zone there; mm, LPS)",
        )
    else:
        report.add_text(
            f"Heat sinks: no vessel at least {HEAT_SINK_CALIBRE_MM:g} mm wide runs "
            f"within {HEAT_SINK_DISTANCE_MM:g} mm of the zone among the vessel masks checked: "
            "the anatomy's pulmonary vessels and any given with --vessel (the liver's portal "
            "and hepatic veins only when given)."
        )
    if section.physics is not None:
        physics_rows(report, section)
    report.add_text(
        f"Device: {section.device}, zone sizes from a {section.device_provenance}. "
        f"Source: {' '.join(section.device_source.split())}"
    )
    for note in section.notes:
        report.add_text(f"Note: {note}")


def physics_rows(report: Report, section: AblationSection) -> None:
    """The simulated zone (``plan ablation --physics``): the chart's figures beside it and
    the heat-sink shrinkage per vessel."""
    physics = section.physics
    assert physics is not None
    report.add_text(
        "Coverage and margin above come from the zone simulated on this CT "
        f"({physics.engine}, {physics.spacing_mm:g} mm grid: bioheat with the vessels held at "
        "blood temperature, or the IRE field, or the cryo isotherm). The chart zone gave "
        f"{physics.chart_target_coverage_percent:.1f} % of the lesion + margin, "
        f"{physics.chart_zone_volume_ml:.1f} mL and a minimal margin of "
        f"{physics.chart_min_margin_mm:.1f} mm."
    )
    if physics.heat_sink_shrinkage:
        report.add_table(
            [
                {
                    "vessel": h.vessel,
                    "reach without the sink (mm)": h.reach_without_sink_mm,
                    "reach with the sink (mm)": h.reach_with_sink_mm,
                    "shrinkage (mm)": h.shrinkage_mm,
                    "flagged": "yes" if h.flagged else "no",
                }
                for h in physics.heat_sink_shrinkage
            ],
            caption="Heat-sink shrinkage: how far the simulated zone reaches from its centre "
            "towards each vessel before it first ends, without and with the vessel held at 37 °C "
            "(mm; flagged from 2 mm)",
        )


def seed_metric_rows(section: SeedSection) -> dict[str, float]:
    """The implant's dose metrics with readable names (Gy, %)."""
    metrics = section.metrics
    rows = {
        "D90 (Gy)": metrics.d90_gy,
        "D100 (Gy)": metrics.d100_gy,
        "V100 (%)": metrics.v100_percent,
        "V150 (%)": metrics.v150_percent,
        "V200 (%)": metrics.v200_percent,
        "conformity index": metrics.conformity_index,
        "external index": metrics.external_index,
        "homogeneity index": metrics.homogeneity_index,
    }
    if metrics.ptv_volume_ml is not None:
        rows["PTV volume (mL)"] = metrics.ptv_volume_ml
    for organ, value in metrics.organ_max_gy.items():
        rows[f"{organ} max (Gy)"] = value
    return rows


def seed_section(report: Report, section: SeedSection, figures: Figures) -> None:
    """The seed implant: needles, strength, DVH indices, figures."""
    rx = section.goals.prescription_gy
    report.add_section(
        "Seed implant",
        f"A permanent I-125 implant (seed model {section.seed_model}, TG-43 dosimetry: 2-D line "
        f"source, dose by complete decay) prescribed {rx:g} Gy to the PTV, the lesion "
        f"{section.target!r} plus {section.margin_mm:g} mm. "
        + (
            "Parallel needles through a coplanar template (5 mm hole grid)"
            if section.template == "coplanar"
            else "Individually angled needles"
        )
        + " keep the needle-trajectory rules; seeds sit every 5 mm along them inside the PTV. "
        f"The loading meets D90 >= the prescription, V100 >= {section.goals.v100_min_percent:g} % "
        f"and V150 <= {section.goals.v150_max_percent:g} % where it can, with the fewest seeds and "
        "needles. Dose in lung is computed as in water (TG-43 ignores heterogeneity).",
    )
    _image(
        report,
        figures,
        "seed_dose.png",
        "Axial, coronal and sagittal slices through the "
        f"lesion: the lesion (outline), the regions receiving at least 100, 150 and 200 % of "
        f"{rx:g} Gy, and the seeds; lung or soft-tissue window (HU) by the lesion's "
        "surroundings.",
    )
    _image(
        report,
        figures,
        "seed_needles.png",
        "The needles on the axial slice through the "
        "lesion, from the skin entry to the deepest seed, numbered as in the needle table "
        "below (the legend gives each needle's seeds); solid within the slice, dashed where "
        "projected from other levels; the 100 % isodose outlined, scale bar in mm.",
    )
    _image(
        report,
        figures,
        "seed_dvh.png",
        "Cumulative dose-volume histogram of the PTV (% of "
        "its volume receiving at least each dose, Gy), with the prescription and D90.",
    )
    report.add_table(
        [
            {
                "needle": n,
                "entry_lps_mm": _round(needle.entry_lps_mm),
                "seeds": needle.n_seeds,
                "depths_mm": [round(d) for d in needle.depths_mm],
            }
            for n, needle in enumerate(section.needles, 1)
        ],
        caption=f"Needles: {section.n_seeds} seeds of {section.strength_u:.3f} U "
        f"({section.strength_mci:.3f} mCi), total {section.total_u:.2f} U "
        f"({section.strength_mci * section.n_seeds:.2f} mCi); seed depths below the skin entry "
        "along the needle (mm)",
    )
    report.add_table(
        {k: round(v, 2) for k, v in seed_metric_rows(section).items()},
        caption="Dose metrics of the PTV (Gy, % of the PTV volume)",
    )
    for note in section.notes:
        report.add_text(f"Note: {note}")


def navigation_record_section(report: Report, section: NavigationSection) -> None:
    """The registrations and calibrations stored in the plan."""
    report.add_section(
        "Navigation records",
        "Registrations of the tracker (or patient reference sensor) to the CT and tool "
        "calibrations stored in the plan. FRE: RMS distance of the registered fiducials; "
        "predicted TRE: Fitzpatrick's expected error at the target (Fitzpatrick et al., IEEE "
        "TMI 1998;17:694).",
    )
    if section.registrations:
        report.add_table(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "frame": f"{r.moving_frame} → CT",
                    "fiducials": r.n_fiducials,
                    "FRE (mm)": r.fre_mm,
                    "FLE (mm)": r.fle_mm,
                    "predicted TRE (mm)": r.predicted_tre_mm,
                    "target_lps_mm": None if r.target_lps_mm is None else _round(r.target_lps_mm),
                }
                for r in section.registrations
            ],
            caption="Registrations (mm)",
        )
    if section.calibrations:
        report.add_table(
            [
                {
                    "id": c.id,
                    "name": c.name,
                    "tool": c.tool,
                    "method": c.method,
                    "tip_offset_mm": _round(getattr(c, "tip_offset_mm", None) or (), 2) or None,
                    "RMS (mm)": getattr(c, "rms_mm", None),
                }
                for c in section.calibrations
            ],
            caption="Tool calibrations (tip in the tool sensor's frame, mm)",
        )


def motion_section(report: Report, section: MotionSection) -> None:
    """Breathing motion: each target's displacement, each path in every phase, P(hit)."""
    report.add_section(
        "Breathing motion",
        f"The plan's CT is the {section.reference_phase!r} phase; every other phase was "
        "registered to it (deformable, elastix). A path is re-checked in each phase as a "
        "straight needle from its moved entry to its moved target. P(hit): probability that "
        f"the tip lands in the lesion, from a seeded Monte Carlo ({section.n_samples} samples) "
        f"of registration TRE {section.tre_mm:g} mm ({section.tre_source}), residual motion "
        f"{section.residual_rms_mm:g} mm RMS in the gating window "
        f"{section.gate_window[0]:g}-{section.gate_window[1]:g} of the amplitude, and needle "
        f"deflection {section.deflection_mm_per_100mm:g} mm per 100 mm.",
    )
    for target in section.targets:
        advice = (
            "above 5 mm: respiratory motion management is recommended (AAPM TG-76)"
            if target.motion_management_recommended
            else "within 5 mm (AAPM TG-76: no motion management needed)"
        )
        report.add_text(
            f"Target {target.target}: moves {target.amplitude_mm:.1f} mm between phases "
            f"(SI {target.peak_to_peak_si_mm:.1f}, AP {target.peak_to_peak_ap_mm:.1f}, LR "
            f"{target.peak_to_peak_lr_mm:.1f} mm), {advice}."
        )
    report.add_table(
        [
            {
                "phase": p.name + (" (plan CT)" if p.reference else ""),
                "method": p.method,
                "mean |u| (mm)": p.mean_displacement_mm,
                "max |u| (mm)": p.max_displacement_mm,
                "min Jacobian": p.min_jacobian,
            }
            for p in section.phases
        ],
        caption="Phases and their registrations to the plan's CT (displacement in mm)",
    )
    if section.trajectories:
        report.add_table(
            [
                {
                    "rank": t.rank,
                    "lateral deviation (mm)": t.max_lateral_deviation_mm,
                    "tip motion (mm)": t.tip_motion_mm,
                    "safe in every phase": "yes"
                    if t.safe_in_all_phases
                    else "no: "
                    + "; ".join(f"{k}: {', '.join(v)}" for k, v in t.unsafe_phases.items()),
                    "P(hit) (%)": None if t.p_hit is None else round(100 * t.p_hit, 1),
                    "placement error RMS (mm)": t.placement_rms_mm,
                }
                for t in section.trajectories
            ],
            caption="Needle paths under breathing (mm, %)",
        )
    if section.ablation_p_margin_5mm is not None:
        report.add_text(
            f"Ablation: P(minimal margin ≥ 5 mm) = {100 * section.ablation_p_margin_5mm:.1f} % "
            f"(planned minimal margin {section.ablation_nominal_min_margin_mm:g} mm)."
        )
    for note in section.notes:
        report.add_text(note)
