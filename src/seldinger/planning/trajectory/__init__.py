"""Automatic needle trajectory planning: every straight path from the skin, safe ones ranked.

Usage (``anatomy`` from :func:`seldinger.anatomy.segment`, ``lesion`` a mask Volume)::

    search = plan_trajectories(anatomy, lesion=lesion)
    search.best.length_mm, search.top(3), search.blocked_by

Methods, rules and evidence: ``docs/trajectory.md``.
"""

from seldinger.planning.trajectory.candidates import SKIN_STEP_MM, skin_candidates
from seldinger.planning.trajectory.constraints import (
    DEFAULT_HARD,
    REASONS,
    ReachableFn,
    TrajectoryConstraints,
)
from seldinger.planning.trajectory.maps import RiskMaps
from seldinger.planning.trajectory.score import EVIDENCE_ODDS_RATIOS, pareto_front, risk_terms
from seldinger.planning.trajectory.search import (
    NeedleTooShortError,
    NoSafePathError,
    TargetError,
    Trajectory,
    TrajectorySearch,
    evaluate_path,
    evaluate_paths,
    paths_along,
    plan_trajectories,
)

__all__ = [
    "DEFAULT_HARD",
    "EVIDENCE_ODDS_RATIOS",
    "REASONS",
    "SKIN_STEP_MM",
    "NeedleTooShortError",
    "NoSafePathError",
    "ReachableFn",
    "RiskMaps",
    "TargetError",
    "Trajectory",
    "TrajectoryConstraints",
    "TrajectorySearch",
    "evaluate_path",
    "evaluate_paths",
    "pareto_front",
    "paths_along",
    "plan_trajectories",
    "risk_terms",
    "skin_candidates",
]
