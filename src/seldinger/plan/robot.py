"""The robot section: reachability of the plan's paths by a robot, and the sessions run.

Written by ``seldinger robot reach --write`` (per path: reachable, reason, predicted
targeting error, and the ranking that takes them into account) and ``seldinger robot run``
(each needle placed: planned and confirmed tip, errors, adjustments; the re-plans after
each confirmation; the session log beside the plan).
"""

from __future__ import annotations

from pydantic import Field

from seldinger.plan.fields import NonNegativeFloat, PlanModel, Point3, RigidMatrix

__all__ = [
    "NeedlePlacementRecord",
    "PathReachRecord",
    "ReplanRecord",
    "RobotSection",
    "RobotSessionRecord",
]


class PathReachRecord(PlanModel):
    """One trajectory (by its rank in the trajectory section) as the robot sees it.

    ``robot_rank`` orders the paths for the robot: reachable first, then by the planner's
    rank within steps of 0.5 mm predicted error (a safer path is not given up for a
    fraction of a millimetre).
    """

    rank: int = Field(ge=1)
    robot_rank: int = Field(ge=1)
    reachable: bool
    reason: str | None = None
    predicted_error_mm: NonNegativeFloat


class NeedlePlacementRecord(PlanModel):
    """A needle placed by the robot and confirmed (errors against the planned tip, mm;
    ``depth_error_mm`` > 0 beyond the tip along the needle)."""

    name: str
    entry_lps_mm: Point3
    planned_tip_lps_mm: Point3
    measured_tip_lps_mm: Point3 | None = None
    error_mm: NonNegativeFloat | None = None
    lateral_error_mm: NonNegativeFloat | None = None
    depth_error_mm: float | None = None
    adjustments: int = Field(ge=0)
    gated: bool = False
    seconds: NonNegativeFloat = 0.0


class ReplanRecord(PlanModel):
    """The ablation re-planned after a confirmation, or why it could not be."""

    after: str
    feasible: bool
    placed_coverage_percent: float = Field(ge=0.0, le=100.0)
    target_coverage_percent: float | None = Field(default=None, ge=0.0, le=100.0)
    min_margin_mm: float | None = None
    n_applicators: int | None = Field(default=None, ge=0)
    reason: str | None = None


class RobotSessionRecord(PlanModel):
    """One ``seldinger robot run``: where it ran, what was placed, how it ended."""

    robot: str
    started_utc: str
    calibration_source: str
    robot_to_ct: RigidMatrix
    #: Where the tracker's points were taken into the CT from (None: no tracker).
    tracker_frame: str | None = None
    gated: bool
    log_path: str
    needles: list[NeedlePlacementRecord] = Field(default_factory=list)
    replans: list[ReplanRecord] = Field(default_factory=list)
    outcome: str
    notes: list[str] = Field(default_factory=list)


class RobotSection(PlanModel):
    """Reachability by a robot and the robot sessions of this plan."""

    robot: str
    side: str | None = None
    tre_mm: NonNegativeFloat | None = None
    reach: list[PathReachRecord] = Field(default_factory=list)
    sessions: list[RobotSessionRecord] = Field(default_factory=list)
