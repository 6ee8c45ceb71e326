"""``plan ablation`` as a library step: a plan -> the same plan with applicators and zone.

Reads the plan, its CT, anatomy and target lesion (:mod:`seldinger.workflow.case`), places
the fewest applicators of the device whose zones cover the lesion + margin on paths that
keep the plan's trajectory rules, checks margin and heat sinks, and writes the plan, the
zone mask beside it (``ablation_zone.nii.gz``) and the figures, all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seldinger.anatomy import Anatomy
from seldinger.errors import OutputExistsError
from seldinger.files import check_outputs, staged_outputs
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.physics.ablation import Device, load_catalogue
from seldinger.plan import AblationSection, Plan, TrajectoryRules
from seldinger.plan.ablation import HeatSinkShrinkageRecord, PhysicsZoneRecord
from seldinger.planning.ablation import (
    DEFAULT_CRITICAL,
    AblationPlan,
    plan_ablation,
    zone_reach_notes,
)
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints
from seldinger.workflow.case import PlanCase, Stages, open_target, quiet_stages, read_mask

__all__ = [
    "ZONE_MASK_NAME",
    "AblationOutcome",
    "AblationRequest",
    "ablation_caveats",
    "plan_ablation_step",
    "step_rules",
    "zone_mask_name",
]

#: Name of the zone mask written beside a plan named plan.json (:func:`zone_mask_name`).
ZONE_MASK_NAME = "ablation_zone.nii.gz"


def zone_mask_name(plan_path: Path) -> str:
    """The zone mask's file name beside ``plan_path``: ``ablation_zone.nii.gz`` for
    ``plan.json``, ``<stem>.ablation_zone.nii.gz`` for any other plan, so that two plans in
    one folder keep their own zones (a tester's second plan was refused: the file existed).

    >>> zone_mask_name(Path("case/plan.json")), zone_mask_name(Path("case/liver_b.json"))
    ('ablation_zone.nii.gz', 'liver_b.ablation_zone.nii.gz')
    """
    if plan_path.name == "plan.json":
        return ZONE_MASK_NAME
    return f"{plan_path.stem}.{ZONE_MASK_NAME}"


@dataclass(frozen=True)
class AblationRequest:
    """What ``seldinger plan ablation`` was asked (see its ``--help``)."""

    plan_path: Path
    device: str
    settings: tuple[str, ...] = ()
    margin_mm: float = 5.0
    max_probes: int = 3
    target: str | None = None
    vessels: dict[str, Path] = field(default_factory=dict)
    figures_dir: Path | None = None
    ct_path: Path | None = None
    resample: bool = False
    force: bool = False
    command: str | None = None
    physics: bool = False
    physics_spacing_mm: float = 1.0

    def parameters(self) -> dict[str, Any]:
        """The request as the plan's provenance records it."""
        return {
            "device": self.device,
            "settings": list(self.settings) or None,
            "margin_mm": self.margin_mm,
            "max_probes": self.max_probes,
            "target": self.target,
            "vessels": {name: str(path) for name, path in self.vessels.items()},
            "physics": self.physics,
        }


@dataclass
class AblationOutcome:
    """What the step made: the saved plan, the planner's result, its section, files, notes."""

    plan: Plan
    result: AblationPlan
    section: AblationSection
    device: Device
    zone_path: Path
    figures: list[Path]
    notes: list[str]
    #: What the zone reaches beyond the lesion's organ, and the end of the CT
    #: (:func:`~seldinger.planning.ablation.reach.zone_reach_notes`).
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the section, with the files written, the notes and the warnings."""
        return {
            **self.section.model_dump(mode="json"),
            "n_applicators": self.section.n_applicators,
            "zone_mask": str(self.zone_path),
            "figures": [str(p) for p in self.figures],
            "notes": self.notes,
            "warnings": self.warnings,
        }


def step_rules(plan: Plan, needle_length_mm: float | None = None) -> TrajectoryRules:
    """The plan's trajectory rules, with another usable needle length when given."""
    rules = plan.trajectories.rules if plan.trajectories is not None else TrajectoryRules()
    if needle_length_mm is not None:
        rules = rules.model_copy(update={"needle_length_mm": float(needle_length_mm)})
    return rules


def ablation_caveats(device: Device) -> list[str]:
    """What a user must know about the device's zone sizes."""
    if device.provenance in ("manufacturer chart", "published ex vivo"):
        return [
            f"zone sizes are a {device.provenance}: vendor charts come from normal animal liver "
            "and over-predict clinical zones, most near vessels and in perfused tissue (Ruiter "
            "et al., Eur Radiol 2019;29:4026). Treat the zone as an optimistic outline."
        ]
    return []


def plan_ablation_step(
    request: AblationRequest,
    stages: Stages = quiet_stages,
    *,
    case: PlanCase | None = None,
    maps: RiskMaps | None = None,
) -> AblationOutcome:
    """Place applicators on the plan's target and write the results (module docstring).

    Parameters
    ----------
    request : AblationRequest
    stages : Stages
        Progress display.
    case : PlanCase, optional
        The plan and CT already read from ``request.plan_path``.
    maps : RiskMaps, optional
        Risk maps built with this lesion; used when their constraints are the ones this
        device needs (the plan's rules with its usable length), else built anew.

    Raises
    ------
    UnknownDeviceError, UnknownSettingError
        The device or a setting is not in the catalogue (the alternatives are listed).
    PlacementError
        No placement reaches the goal (the message says what to change); nothing written.
    OutputExistsError
        The plan holds an ablation already and ``force`` was not given.
    """
    catalogue = load_catalogue()
    device = catalogue.device(request.device)
    settings = [device.setting(name).name for name in request.settings]
    plan = case.plan if case is not None else Plan.load(request.plan_path)
    if plan.ablation is not None and not request.force:
        raise OutputExistsError(
            f"{request.plan_path} already holds an ablation plan ({plan.ablation.device} "
            f"{', '.join(plan.ablation.settings)}); pass --force to replace it."
        )
    zone_path = request.plan_path.parent / zone_mask_name(request.plan_path)
    check_outputs([zone_path], request.force or plan.ablation is not None)
    if request.figures_dir is not None:  # matplotlib: imported only to draw
        from seldinger.export.ablation_figures import ablation_figure_names

        check_outputs((request.figures_dir / n for n in ablation_figure_names()), request.force)
    case, target, anatomy, lesion = open_target(
        request.plan_path, plan, request.target, request.ct_path, request.resample, stages, case
    )
    vessels = {
        name: read_mask(path, case.volume, f"--vessel {name}", "Use masks made on this CT.")
        for name, path in request.vessels.items()
    }
    rules = step_rules(case.plan, device.usable_length_mm)
    constraints = TrajectoryConstraints.from_rules(rules)
    if maps is not None and maps.constraints != constraints:
        maps = None
    with stages(f"placing {device.name} applicators"):
        result = plan_ablation(
            anatomy,
            lesion,
            device.name,
            settings or None,
            margin_mm=request.margin_mm,
            max_probes=request.max_probes,
            constraints=constraints,
            vessels=vessels,
            catalogue=catalogue,
            maps=maps,
            # What the plan forbids to needles (gallbladder, bowel …) its zones keep out of too.
            critical=tuple(dict.fromkeys((*DEFAULT_CRITICAL, *rules.forbidden))),
        )
    plan = case.plan
    section = result.to_section(target.name, zone_path.name, rules)
    physics_notes: list[str] = []
    if request.physics:
        with stages("simulating the zone (physics)"):
            result, section, physics_notes = _physics_zone(
                case, anatomy, lesion, result, section, vessels, request
            )
    warnings = zone_reach_notes(result.zone, lesion, anatomy)
    section.notes = [*section.notes, *warnings]  # the report shows them
    plan.ablation = section
    plan.provenance.record("ablation", request.parameters(), request.command)
    figures: list[Path] = []
    with staged_outputs(force=True) as stage:
        write_volume(result.zone, stage.path(zone_path), force=True)
        if request.figures_dir is not None:
            from seldinger.export.ablation_figures import (
                ablation_figure_names,
                write_ablation_figures,
            )

            scratch = stage.scratch(request.figures_dir)
            with stages("drawing figures"):
                context = {"vessels": anatomy["vessels"]} if "vessels" in anatomy else {}
                drawn = write_ablation_figures(
                    case.volume, section, result.zone, result.margin, lesion, scratch, context
                )
            figures = [stage.adopt(p, request.figures_dir / p.name) for p in drawn]
            for name in set(ablation_figure_names()) - {p.name for p in drawn}:
                stage.remove(request.figures_dir / name)  # an earlier run's probe views
        plan.save(stage.path(request.plan_path), force=True)
    return AblationOutcome(
        plan=plan,
        result=result,
        section=section,
        device=device,
        zone_path=zone_path,
        figures=figures,
        notes=[
            *case.ct.meta.notes,
            *result.placement.notes,
            *(physics_notes if request.physics else ablation_caveats(device)),
        ],
        warnings=warnings,
    )


def _physics_zone(
    case: PlanCase,
    anatomy: Anatomy,
    lesion: Volume,
    result: AblationPlan,
    section: AblationSection,
    vessels: dict[str, Volume],
    request: AblationRequest,
) -> tuple[AblationPlan, AblationSection, list[str]]:
    """Coverage and margin from the simulated zone; the chart's figures kept beside them."""
    from seldinger.planning.ablation.physics_zone import coverage_percent, simulate_physics_zone
    from seldinger.planning.margin import assess_margin

    simulated = simulate_physics_zone(
        case.volume,
        anatomy,
        lesion,
        section.device,
        section.applicators,
        section.heat_sinks,
        vessels,
        request.physics_spacing_mm,
    )
    margin = assess_margin(lesion, simulated.zone)
    target_percent, lesion_percent, zone_ml, healthy_ml = coverage_percent(
        simulated.zone, lesion, request.margin_mm
    )
    record = PhysicsZoneRecord(
        spacing_mm=request.physics_spacing_mm,
        chart_target_coverage_percent=section.target_coverage_percent,
        chart_zone_volume_ml=section.zone_volume_ml,
        chart_min_margin_mm=section.margin.min_margin_mm,
        heat_sink_shrinkage=[
            HeatSinkShrinkageRecord(
                vessel=s.vessel,
                reach_without_sink_mm=s.reach_without_sink_mm,
                reach_with_sink_mm=s.reach_with_sink_mm,
                shrinkage_mm=round(s.shrinkage_mm, 2),
                flagged=s.flagged,
            )
            for s in simulated.shrinkage
        ],
        notes=simulated.notes,
    )
    section = section.model_copy(
        update={
            "target_coverage_percent": round(target_percent, 2),
            "lesion_coverage_percent": round(lesion_percent, 2),
            "zone_volume_ml": round(zone_ml, 2),
            "healthy_ablated_ml": round(healthy_ml, 2),
            "margin": margin.to_record(),
            "physics": record,
            "notes": [*section.notes, *simulated.notes],
        }
    )
    notes = [
        f"physics zone: lesion + {request.margin_mm:g} mm covered {target_percent:.1f} % "
        f"(chart zone {record.chart_target_coverage_percent:.1f} %), zone {zone_ml:.1f} mL "
        f"(chart {record.chart_zone_volume_ml:.1f} mL)",
        *simulated.notes,
    ]
    return replace(result, zone=simulated.zone, margin=margin), section, notes
