"""A path the radiologist draws: the planner's metrics for it and every rule it breaks."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import InfeasiblePlanError
from seldinger.planning.trajectory.constraints import TrajectoryConstraints
from seldinger.planning.trajectory.maps import RiskMaps
from seldinger.planning.trajectory.search import Trajectory, TrajectorySearch, evaluate_path

__all__ = ["DrawnPath", "UnsafeDrawnPathError", "describe_reason", "score_drawn_path"]


def describe_reason(reason: str, constraints: TrajectoryConstraints) -> str:
    """A refusal reason (``REASONS`` or a hard structure) as a clinician reads it."""
    c = constraints
    texts = {
        "too_long": f"deeper than the needle's usable length ({c.needle_length_mm:g} mm)",
        "outside_body": "leaves the body and enters it again (an arm, a skin fold)",
        "vessel": (
            f"passes within {c.vessel_distance_mm:g} mm of a vessel at least "
            f"{c.vessel_calibre_mm:g} mm wide"
        ),
        "table_side": "enters from the side the patient lies on (the table)",
        "axial_angle": (
            f"more oblique to the axial plane than {c.max_axial_angle_deg:g} deg"
            if c.max_axial_angle_deg is not None
            else "too oblique to the axial plane"
        ),
        "unreachable": "outside the robot's workspace",
    }
    return texts.get(reason, f"crosses {reason.replace('_', ' ')}")


@dataclass(frozen=True)
class DrawnPath:
    """A drawn path scored like the planner's own.

    Attributes
    ----------
    trajectory : Trajectory
        Its metrics; ``safe`` and ``blocked_by`` say whether it keeps every rule.
    broken : tuple of str
        Each rule it breaks, in words.
    rank_among_safe : int or None
        Where it would rank among the search's safe paths (1: better than all); None when
        it is not safe.
    best_risk_score : float
        The risk score of the planner's best path, for comparison.
    """

    trajectory: Trajectory
    broken: tuple[str, ...]
    rank_among_safe: int | None
    best_risk_score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the path's record, the broken rules and the comparison."""
        return {
            "path": self.trajectory.to_dict(),
            "broken_rules": list(self.broken),
            "rank_among_safe": self.rank_among_safe,
            "best_risk_score": round(self.best_risk_score, 4),
        }


class UnsafeDrawnPathError(InfeasiblePlanError):
    """The drawn path breaks a rule; ``drawn`` holds its metrics and the rules broken."""

    def __init__(self, message: str, drawn: DrawnPath) -> None:
        super().__init__(message)
        self.drawn = drawn

    def details(self) -> dict[str, Any]:
        """The drawn path's metrics and broken rules."""
        return self.drawn.to_dict()


def score_drawn_path(
    maps: RiskMaps, search: TrajectorySearch, entry_lps_mm: npt.ArrayLike
) -> DrawnPath:
    """Score the path from ``entry_lps_mm`` to the search's target, as the planner would.

    Raises
    ------
    UnsafeDrawnPathError
        If it breaks a rule (the message names each one); its metrics are in ``drawn``.
    """
    path = evaluate_path(maps, entry_lps_mm, search.target_lps_mm)
    broken = tuple(describe_reason(r, maps.constraints) for r in path.blocked_by)
    scores = search.risk_score[search.safe]
    best = float(np.nanmin(scores)) if scores.size else math.nan
    rank = None
    if path.safe:
        rank = int(np.count_nonzero(scores < path.risk_score)) + 1
        path = replace(path, rank=1)
    drawn = DrawnPath(path, broken, rank, best)
    if not path.safe:
        entry = ", ".join(f"{v:.1f}" for v in path.entry_lps_mm)
        raise UnsafeDrawnPathError(
            f"the drawn path from {entry} LPS mm breaks {len(broken)} rule(s): "
            + "; ".join(broken)
            + ". Nothing was written; draw another entry or relax the rule.",
            drawn,
        )
    return drawn
