"""``plan seeds`` as a library step: a plan -> the same plan with an I-125 seed implant.

Reads the plan, its CT, anatomy and target (:mod:`seldinger.workflow.case`), loads seeds on
needles that keep the plan's trajectory rules (TG-43 dose, one strength), and writes the
plan, the figures and the printable template plate, all or nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seldinger.errors import BadInputError, OutputExistsError
from seldinger.export.seed_figures import SEED_FIGURES, write_seed_figures
from seldinger.export.template import seed_template_plate, write_template_stl
from seldinger.files import check_outputs, staged_outputs
from seldinger.physics.tg43 import load_seed_data
from seldinger.plan import Plan, SeedSection
from seldinger.planning.seeds import STRENGTHS_MCI, SeedGoals, SeedPlan, SeedPlanError, plan_seeds
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints
from seldinger.workflow.ablation import step_rules
from seldinger.workflow.case import PlanCase, Stages, open_target, quiet_stages

__all__ = ["SeedOutcome", "SeedRequest", "plan_seeds_step"]


@dataclass(frozen=True)
class SeedRequest:
    """What ``seldinger plan seeds`` was asked (see its ``--help``).

    ``templates`` are tried in order: the first whose plan meets every goal is kept, else
    the first plan made (the demo tries coplanar, then free).
    """

    plan_path: Path
    prescription_gy: float = 120.0
    margin_mm: float = 5.0
    templates: tuple[Literal["coplanar", "free"], ...] = ("coplanar",)
    seed_data: str = "6711"
    strengths_mci: tuple[float, ...] = STRENGTHS_MCI
    target: str | None = None
    figures_dir: Path | None = None
    stl_path: Path | None = None
    ct_path: Path | None = None
    resample: bool = False
    force: bool = False
    command: str | None = None
    oar_max_gy: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.templates:
            raise BadInputError("templates is empty; give coplanar, free or both.")
        if self.stl_path is not None and self.templates != ("coplanar",):
            raise BadInputError(
                "--stl needs --template coplanar (a free implant has no template to print)."
            )
        if not self.strengths_mci or any(
            not (math.isfinite(v) and v > 0) for v in self.strengths_mci
        ):
            raise BadInputError(
                f"strengths_mci must be positive mCi values; got {list(self.strengths_mci)}."
            )

    def parameters(self) -> dict[str, Any]:
        """The request as the plan's provenance records it."""
        return {
            "prescription_gy": self.prescription_gy,
            "margin_mm": self.margin_mm,
            "templates": list(self.templates),
            "seed_data": self.seed_data,
            "strengths_mci": list(self.strengths_mci),
            "target": self.target,
            "oar_max_gy": dict(self.oar_max_gy),
        }


@dataclass
class SeedOutcome:
    """What the step made: the saved plan, the planner's result and section, files, notes."""

    plan: Plan
    result: SeedPlan
    section: SeedSection
    figures: list[Path]
    stl: Path | None
    notes: list[str]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the section, with totals, files and notes."""
        return {
            **self.section.model_dump(mode="json"),
            "n_seeds": self.section.n_seeds,
            "n_needles": self.section.n_needles,
            "total_u": round(self.section.total_u, 3),
            "stl": None if self.stl is None else str(self.stl),
            "figures": [str(p) for p in self.figures],
            "notes": self.notes,
        }


def plan_seeds_step(
    request: SeedRequest,
    stages: Stages = quiet_stages,
    *,
    case: PlanCase | None = None,
    maps: RiskMaps | None = None,
) -> SeedOutcome:
    """Plan the implant and write the results (module docstring).

    Parameters
    ----------
    request : SeedRequest
    stages : Stages
        Progress display.
    case : PlanCase, optional
        The plan and CT already read from ``request.plan_path``.
    maps : RiskMaps, optional
        Risk maps already built with this lesion and the plan's rules.

    Raises
    ------
    SeedPlanError
        No loading can be made (the message says what to change); nothing is written.
    OutputExistsError
        The plan holds an implant already and ``force`` was not given.
    """
    data = load_seed_data(request.seed_data)
    plan = case.plan if case is not None else Plan.load(request.plan_path)
    if plan.seeds is not None and not request.force:
        raise OutputExistsError(
            f"{request.plan_path} already holds a seed implant ({plan.seeds.n_seeds} seeds, "
            f"{plan.seeds.template}); pass --force to replace it."
        )
    figures = [] if request.figures_dir is None else [request.figures_dir / n for n in SEED_FIGURES]
    check_outputs([request.stl_path, *figures], request.force)
    case, target, anatomy, lesion = open_target(
        request.plan_path, plan, request.target, request.ct_path, request.resample, stages, case
    )
    rules = step_rules(case.plan)
    if maps is not None and maps.constraints != TrajectoryConstraints.from_rules(rules):
        maps = None
    if maps is None:
        with stages("building the risk maps"):
            maps = RiskMaps.build(anatomy, TrajectoryConstraints.from_rules(rules), lesion)
    organs = {name: anatomy[name] for name in request.oar_max_gy if name in anatomy}
    result, tried = _best_plan(request, maps, lesion, data, organs, stages)
    section = result.to_section(target.name, request.seed_data, rules)
    plan = case.plan
    plan.seeds = section
    plan.provenance.record("seeds", request.parameters(), request.command)
    drawn: list[Path] = []
    with staged_outputs(force=True) as stage:
        if request.figures_dir is not None:
            scratch = stage.scratch(request.figures_dir)
            with stages("drawing figures"):
                made = write_seed_figures(case.volume, section, lesion, data, scratch)
            drawn = [stage.adopt(p, request.figures_dir / p.name) for p in made]
        if request.stl_path is not None:
            with stages("making the template plate"):
                write_template_stl(
                    stage.path(request.stl_path), seed_template_plate(section), force=True
                )
        plan.save(stage.path(request.plan_path), force=True)
    return SeedOutcome(
        plan=plan,
        result=result,
        section=section,
        figures=drawn,
        stl=request.stl_path,
        notes=[*case.ct.meta.notes, *tried, *result.notes],
    )


def _best_plan(
    request: SeedRequest,
    maps: RiskMaps,
    lesion: Any,
    data: Any,
    organs: dict[str, Any],
    stages: Stages,
) -> tuple[SeedPlan, list[str]]:
    """The first template's plan that meets every goal, else the first plan made."""
    plans: list[SeedPlan] = []
    tried: list[str] = []
    errors: list[SeedPlanError] = []
    goals = SeedGoals(prescription_gy=request.prescription_gy, oar_max_gy=request.oar_max_gy)
    for template in request.templates:
        with stages(f"loading seeds ({template} needles)"):
            try:
                made = plan_seeds(
                    maps,
                    lesion,
                    data,
                    margin_mm=request.margin_mm,
                    goals=goals,
                    template=template,
                    strengths_mci=request.strengths_mci,
                    organs=organs or None,
                )
            except SeedPlanError as err:
                errors.append(err)
                tried.append(f"{template} needles: {' '.join(str(err).split())}")
                continue
        plans.append(made)
        if not made.notes:
            break
        tried.append(f"{template} needles fall short: {' '.join(made.notes)}")
    chosen = next((p for p in plans if not p.notes), plans[0] if plans else None)
    if chosen is None:
        if len(errors) == 1:
            raise errors[0]
        raise SeedPlanError("no seed implant could be made: " + "; ".join(tried))
    kept = [t for t in tried if not t.startswith(f"{chosen.template} ")]
    return chosen, kept
