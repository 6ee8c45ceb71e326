"""Re-planning an ablation from where the probes really are.

After a confirmation (tracked needle or control CT) the probe placed is rarely where it
was planned. The rest of the ablation is placed again around it: the placed probe is fixed
(:func:`seldinger.planning.ablation.applicator_at` at its real tip and direction), and
the placement looks for the fewest further applicators of the plan's device that bring
the lesion + margin back to the coverage goal (``place_applicators(fixed=...)``). When
none does, the answer says so and why (the placement's message), and the clinician decides
(withdraw and re-insert, a larger setting, accept a smaller margin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.physics.ablation import load_catalogue
from seldinger.plan import AblationSection, Plan
from seldinger.plan.errors import PlanContentError
from seldinger.planning.ablation import (
    AblationPlan,
    Applicator,
    PlacementError,
    applicator_at,
    plan_ablation,
)
from seldinger.planning.target import expand_target
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints
from seldinger.workflow.ablation import step_rules
from seldinger.workflow.case import open_target, quiet_stages

__all__ = ["PlacedProbe", "Replan", "Replanner", "placed_coverage_percent", "replan_ablation"]

#: The coverage goal of a re-plan: the plan's own (99 % of lesion + margin).
REPLAN_COVERAGE_GOAL_PERCENT = 99.0


@dataclass(frozen=True)
class PlacedProbe:
    """A probe where the confirmation found it: its tip and unit insertion direction
    (entry -> tip), LPS mm, and its setting (default: that of the plan's first applicator)."""

    tip_lps_mm: tuple[float, float, float]
    direction_lps: tuple[float, float, float]
    setting: str | None = None


@dataclass(frozen=True)
class Replan:
    """The answer: a new ablation section, or why there is none.

    ``placed_coverage_percent``: lesion + margin covered by the probes in place alone.
    """

    feasible: bool
    section: AblationSection | None
    result: AblationPlan | None
    placed_coverage_percent: float
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (coverage, margin, applicators added)."""
        out: dict[str, Any] = {
            "feasible": self.feasible,
            "reason": self.reason,
            "placed_coverage_percent": round(self.placed_coverage_percent, 2),
        }
        if self.section is not None:
            out.update(
                target_coverage_percent=self.section.target_coverage_percent,
                min_margin_mm=round(self.section.margin.min_margin_mm, 2)
                if self.section.margin is not None
                else None,
                n_applicators=self.section.n_applicators,
                applicators=[
                    {"tip_lps_mm": list(a.tip_lps_mm), "entry_lps_mm": list(a.entry_lps_mm)}
                    for a in self.section.applicators
                ],
            )
        return out


def _direction(value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    u = np.asarray(value, dtype=np.float64)
    return u / np.linalg.norm(u)


class Replanner:
    """Re-plans of one plan's ablation, reading its case and building its risk maps once
    (a session re-plans after every needle).

    Parameters
    ----------
    plan_path : path
        A plan with an ablation section (``seldinger plan ablation``).
    max_probes : int, optional
        Most applicators in all (default: one more than planned, at most 4).

    Raises
    ------
    PlanContentError
        The plan has no ablation.
    """

    def __init__(self, plan_path: str | Path, max_probes: int | None = None) -> None:
        self.plan_path = Path(plan_path)
        plan = Plan.load(self.plan_path)
        if plan.ablation is None:
            raise PlanContentError(
                f"{self.plan_path} has no ablation to re-plan; run `seldinger plan ablation`."
            )
        self.ablation = plan.ablation
        planned = len(plan.ablation.applicators)
        self.max_probes = max_probes if max_probes is not None else min(4, planned + 1)
        if not 1 <= self.max_probes <= 4:
            raise BadInputError(f"max_probes must lie in [1, 4]; got {self.max_probes}.")
        self.catalogue = load_catalogue()
        self.device = self.catalogue.device(plan.ablation.device)
        self.case, _, self.anatomy, self.lesion = open_target(
            self.plan_path, plan, plan.ablation.target, None, False, quiet_stages
        )
        rules = step_rules(self.case.plan, self.device.usable_length_mm)
        self.maps = RiskMaps.build(
            self.anatomy, TrajectoryConstraints.from_rules(rules), self.lesion
        )

    def replan(self, placed: Sequence[PlacedProbe]) -> Replan:
        """Place the rest of the ablation around the probes in place (module docstring)."""
        ablation = self.ablation
        if len(placed) > self.max_probes:
            raise BadInputError(
                f"{len(placed)} probes are in place; at most {self.max_probes} are allowed."
            )
        fixed = [
            applicator_at(
                self.maps,
                self.device,
                p.setting or ablation.applicators[0].setting,
                p.tip_lps_mm,
                _direction(p.direction_lps),
            )
            for p in placed
        ]
        placed_percent = placed_coverage_percent(self.lesion, ablation.margin_mm, fixed)
        try:
            result = plan_ablation(
                self.anatomy,
                self.lesion,
                self.device.name,
                list(ablation.settings),
                margin_mm=ablation.margin_mm,
                max_probes=self.max_probes,
                catalogue=self.catalogue,
                maps=self.maps,
                fixed=fixed,
            )
        except PlacementError as err:
            return Replan(False, None, None, placed_percent, str(err))
        section = result.to_section(ablation.target, ablation.zone_mask_path, ablation.rules)
        added = len(result.placement.applicators) - len(fixed)
        section.notes.append(
            f"re-planned around {len(fixed)} probe(s) in place at their confirmed positions "
            f"(covering {placed_percent:.1f} % of the lesion + {ablation.margin_mm:g} mm "
            f"alone); {added} applicator(s) added"
        )
        return Replan(True, section, result, placed_percent, None)


def replan_ablation(
    plan_path: str | Path, placed: Sequence[PlacedProbe], *, max_probes: int | None = None
) -> Replan:
    """One re-plan of the plan's ablation around ``placed`` (see :class:`Replanner`)."""
    return Replanner(plan_path, max_probes).replan(placed)


def placed_coverage_percent(
    lesion: Volume, margin_mm: float, applicators: Sequence[Applicator]
) -> float:
    """Share of the lesion + ``margin_mm`` inside the zones of ``applicators``, percent."""
    target = expand_target(lesion, margin_mm)
    points = target.lesion.index_to_lps(np.argwhere(target.ptv))
    inside = np.zeros(len(points), dtype=bool)
    for a in applicators:
        inside |= a.zone.contains(points)
    return 100.0 * float(inside.mean()) if len(points) else 0.0
