"""The ``navigate`` steps on a plan: register, calibrate, set up guidance and simulation.

Registrations and calibrations are stored in the plan's navigation section (typed records,
``registration-N`` / ``calibration-N``); guidance reads them back with the planned path and
a distance map of the plan's critical structures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, OutputExistsError
from seldinger.imaging import Volume
from seldinger.io import read_points_csv, read_volume
from seldinger.navigation.calibration import pivot_calibration, tool_tip_to_tool
from seldinger.navigation.guidance import Guide, PlannedPath, critical_distance_map
from seldinger.navigation.log_poses import tool_poses
from seldinger.navigation.registration import register_points
from seldinger.navigation.transforms import validate_rigid
from seldinger.plan import (
    NavigationSection,
    PivotCalibrationRecord,
    Plan,
    PlanContentError,
    RegistrationRecord,
    TrajectoryRecord,
)

__all__ = [
    "CRITICAL_BOX_MARGIN_MM",
    "GuidanceRequest",
    "GuidanceSetup",
    "pivot_step",
    "plan_path_of",
    "read_matrix",
    "register_step",
    "setup_guidance",
    "tool_tip_matrix",
]

#: Margin (mm) around the planned path's box in which the critical-distance map is made:
#: covers the simulated approach, which starts 50 mm behind the entry.
CRITICAL_BOX_MARGIN_MM = 60.0


def plan_path_of(plan: Plan, plan_path: Path, rank: int) -> TrajectoryRecord:
    """The plan's trajectory of ``rank`` (1 = best).

    Raises
    ------
    PlanContentError
        If the plan has no trajectories or none of that rank.
    """
    if plan.trajectories is None or not plan.trajectories.paths:
        raise PlanContentError(
            f"{plan_path} holds no trajectories; run `seldinger plan trajectory CT --anatomy "
            f"DIR --lesion MASK --out {plan_path} --force` first."
        )
    try:
        return plan.trajectories.path(rank)
    except PlanContentError as err:
        raise PlanContentError(f"{plan_path}: {err}") from err


def _check_name(
    plan: Plan,
    plan_path: Path,
    kind: Literal["registration", "calibration"],
    name: str | None,
    force: bool,
) -> None:
    section = plan.navigation or NavigationSection()
    if name is not None and not force and section.holds_name(kind, name):
        raise OutputExistsError(
            f"{plan_path} already holds a {kind} named {name!r}; pass --force to replace it, "
            "or choose another --name."
        )


def register_step(
    fixed_csv: Path,
    moving_csv: Path,
    *,
    target_lps_mm: tuple[float, float, float] | None = None,
    fle_mm: float | None = None,
    moving_frame: Literal["tracker", "reference"] = "tracker",
    plan_path: Path | None = None,
    trajectory: int = 1,
    name: str | None = None,
    force: bool = False,
) -> RegistrationRecord:
    """Register tracker fiducials to CT fiducials (two CSVs paired by row); with a plan,
    store the result in it (the target defaults to the plan's trajectory target).

    Raises
    ------
    PointsFileError, RegistrationError
        Unusable points (the file, line or rule is named).
    OutputExistsError
        A registration of that name exists and ``force`` is not set.
    """
    plan = None if plan_path is None else Plan.load(plan_path)
    target_source = None if target_lps_mm is None else "--target-lps-mm"
    if plan is not None and plan_path is not None:
        _check_name(plan, plan_path, "registration", name, force)
        if target_lps_mm is None and plan.trajectories is not None:
            target_lps_mm = plan_path_of(plan, plan_path, trajectory).target_lps_mm
            target_source = f"trajectory {trajectory} of the plan"
        elif target_lps_mm is None and plan.targets:
            target_lps_mm = plan.targets[0].centroid_lps_mm
            target_source = f"centroid of target {plan.targets[0].name!r} of the plan"
    fixed = read_points_csv(fixed_csv, f"--fixed {fixed_csv}")
    moving = read_points_csv(moving_csv, f"--moving {moving_csv}")
    if len(fixed) < 3:
        raise BadInputError(
            f"--fixed {fixed_csv} and --moving {moving_csv} hold {len(fixed)} point pair(s); a "
            "rigid registration needs at least 3 fiducials not on one line (4-6 spread around "
            "the target are better)."
        )
    if len(fixed) != len(moving):
        raise BadInputError(
            f"--fixed {fixed_csv} has {len(fixed)} points and --moving {moving_csv} has "
            f"{len(moving)}; rows are paired by order, so give the same fiducials in both."
        )
    result = register_points(fixed, moving, target_mm=target_lps_mm, fle_mm=fle_mm)
    section = (plan.navigation if plan is not None else None) or NavigationSection()
    record = result.to_record(
        section.next_id("registration") if plan is not None else "registration",
        name=name,
        moving_frame=moving_frame,
        source=f"fixed {fixed_csv}; moving {moving_csv}",
        target_source=target_source,
    )
    if plan is not None and plan_path is not None:
        section.store_registration(record)
        plan.navigation = section
        plan.provenance.record("navigate register", {"id": record.id, "name": name})
        plan.save(plan_path, force=True)
    return record


def pivot_step(
    log: Path,
    tool: str,
    *,
    reference: str | None = None,
    plan_path: Path | None = None,
    name: str | None = None,
    skip_invalid: bool = False,
    force: bool = False,
) -> PivotCalibrationRecord:
    """Pivot calibration of ``tool`` from a session log; with a plan, store it there.

    Raises
    ------
    SessionLogError, CalibrationError, BadInputError
        An unusable log or poses.
    OutputExistsError
        A calibration of that name exists and ``force`` is not set.
    """
    plan = None if plan_path is None else Plan.load(plan_path)
    if plan is not None and plan_path is not None:
        _check_name(plan, plan_path, "calibration", name, force)
    poses = tool_poses(log, tool, reference, skip_invalid=skip_invalid)
    result = pivot_calibration(poses)
    section = (plan.navigation if plan is not None else None) or NavigationSection()
    record = result.to_record(
        section.next_id("calibration") if plan is not None else None,
        name=name,
        time_utc=datetime.now(UTC),
        tool=tool,
        reference=reference,
        source=f"log {log}",
    )
    if plan is not None and plan_path is not None:
        section.store_calibration(record)
        plan.navigation = section
        plan.provenance.record("navigate pivot", {"id": record.id, "tool": tool})
        plan.save(plan_path, force=True)
    return record


def read_matrix(text: str, option: str, key: str) -> npt.NDArray[np.float64]:
    """A rigid 4x4 from inline JSON or a JSON file (a matrix, or an object holding ``key``,
    ``moving_to_fixed`` or ``matrix``).

    Raises
    ------
    BadInputError
        Not JSON, no such key, or not rigid (the option is named).
    """
    source = text.strip()
    if not source.startswith("["):
        file = Path(source)
        if not file.is_file():
            raise BadInputError(f"{option} {text}: not a JSON matrix ('[[...], ...]') nor a file.")
        source = file.read_text(encoding="utf-8")
    try:
        value = json.loads(source)
    except json.JSONDecodeError as err:
        raise BadInputError(
            f"{option} {text}: not valid JSON ({err.msg} at line {err.lineno})."
        ) from err
    if isinstance(value, dict):
        found = next((value[k] for k in (key, "moving_to_fixed", "matrix") if k in value), None)
        if found is None:
            raise BadInputError(
                f"{option} {text}: a JSON object needs a {key}, moving_to_fixed or matrix key; "
                f"got keys {sorted(value)[:10]}."
            )
        value = found
    try:
        return validate_rigid(value, key)
    except (ValueError, TypeError) as err:
        raise BadInputError(f"{option} {text}: {err}") from err


@dataclass(frozen=True)
class GuidanceRequest:
    """What ``seldinger navigate guide`` was asked (see its ``--help``)."""

    plan_path: Path
    trajectory: int = 1
    registration: str | None = None
    tracker_to_ct: str | None = None
    reference_to_ct: str | None = None
    tip_offset_mm: float | None = None
    calibration: str | None = None
    tool: str = "ToolToTracker"
    reference: str = "ReferenceToTracker"
    critical: tuple[str, ...] = ("bones", "vessels", "airways")
    breach_mm: float = 5.0
    stale_s: float = 0.5

    def __post_init__(self) -> None:
        given = [
            o
            for o, v in (
                ("--registration", self.registration),
                ("--tracker-to-ct", self.tracker_to_ct),
                ("--reference-to-ct", self.reference_to_ct),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise BadInputError(f"give one registration; got {' and '.join(given)}.")
        if self.tip_offset_mm is not None and self.calibration is not None:
            raise BadInputError("give --tip-offset-mm or --calibration, not both.")


@dataclass
class GuidanceSetup:
    """A ready :class:`Guide`, what it was made from, and notes."""

    guide: Guide
    path: PlannedPath
    frame: Literal["tracker", "reference"]
    info: dict[str, Any]
    notes: list[str]


def setup_guidance(
    request: GuidanceRequest, make_guide: Callable[..., Guide] = Guide
) -> GuidanceSetup:
    """The guide for a plan's trajectory: registration, tool calibration, critical map.

    ``make_guide`` builds it from the same arguments as :class:`Guide` (a subclass such
    as the motion-compensated guide, its own options bound).

    Raises
    ------
    PlanContentError, BadInputError
        No trajectory, registration or calibration to use (the message says how to add one).
    """
    plan_path = request.plan_path
    plan = Plan.load(plan_path)
    chosen = plan_path_of(plan, plan_path, request.trajectory)
    path = PlannedPath(chosen.entry_lps_mm, chosen.target_lps_mm)
    frame, matrix, registration_source = _registration(plan, request)
    tip_to_tool, calibration_source = _calibration(plan, request)
    distance, used, notes = _critical_map(plan, plan_path, list(request.critical), path)
    key = "tracker_to_ct" if frame == "tracker" else "reference_to_ct"
    guide = make_guide(
        path,
        tip_to_tool,
        tracker_to_ct=matrix if frame == "tracker" else None,
        reference_to_ct=matrix if frame == "reference" else None,
        critical_distance=distance,
        breach_threshold_mm=request.breach_mm,
        stale_after_s=request.stale_s,
    )
    info = {
        "plan": str(plan_path),
        "trajectory": request.trajectory,
        **path.to_dict(),
        "registration": {"source": registration_source, key: matrix.tolist()},
        "calibration": {"source": calibration_source, "tool_tip_to_tool": tip_to_tool.tolist()},
        "tool": request.tool,
        "reference": request.reference if frame == "reference" else None,
        "critical": used,
        "breach_threshold_mm": request.breach_mm,
        "stale_after_s": request.stale_s,
        "notes": notes,
    }
    return GuidanceSetup(guide, path, frame, info, notes)


def _registration(
    plan: Plan, request: GuidanceRequest
) -> tuple[Literal["tracker", "reference"], npt.NDArray[np.float64], str]:
    if request.tracker_to_ct is not None:
        matrix = read_matrix(request.tracker_to_ct, "--tracker-to-ct", "tracker_to_ct")
        return "tracker", matrix, "--tracker-to-ct"
    if request.reference_to_ct is not None:
        matrix = read_matrix(request.reference_to_ct, "--reference-to-ct", "reference_to_ct")
        return "reference", matrix, "--reference-to-ct"
    section = plan.navigation or NavigationSection()
    record = section.registration(request.registration)
    if record is None:
        known = ", ".join(r.name or r.id for r in section.registrations) or "none"
        raise PlanContentError(
            f"{request.plan_path} has no registration {request.registration or ''} (it has: "
            f"{known}); register first (`seldinger navigate register --fixed CT.csv --moving "
            f"TRACKER.csv --plan {request.plan_path}`) or pass --tracker-to-ct MATRIX."
        )
    if record.scale != 1.0:
        raise PlanContentError(f"registration {record.id} scales; guidance needs a rigid one.")
    matrix = validate_rigid(record.moving_to_fixed, f"{record.id}.moving_to_fixed")
    return record.moving_frame, matrix, f"{record.id} of {request.plan_path}"


def _calibration(plan: Plan, request: GuidanceRequest) -> tuple[npt.NDArray[np.float64], str]:
    return tool_tip_matrix(
        plan, request.plan_path, request.tool, request.calibration, request.tip_offset_mm
    )


def tool_tip_matrix(
    plan: Plan,
    plan_path: Path,
    tool: str,
    calibration: str | None = None,
    tip_offset_mm: float | None = None,
) -> tuple[npt.NDArray[np.float64], str]:
    """A tracked tool's ``tool_tip_to_tool`` and where it came from.

    ``tip_offset_mm`` (the tip that far along the sensor's +z) wins; else the plan's
    calibration ``calibration`` (an id or name; None or "latest": the latest of ``tool``).

    Raises
    ------
    PlanContentError
        The plan holds no such calibration, or one without a tool tip (says how to add one).
    """
    if tip_offset_mm is not None:
        matrix = tool_tip_to_tool([0.0, 0.0, tip_offset_mm], [0.0, 0.0, 1.0])
        return matrix, "--tip-offset-mm"
    section = plan.navigation or NavigationSection()
    record = section.calibration(calibration, None if calibration not in (None, "latest") else tool)
    if record is None:
        what = (
            f"calibration of {tool!r}"
            if calibration in (None, "latest")
            else f"calibration {calibration!r}"
        )
        raise PlanContentError(
            f"{plan_path} holds no {what}; calibrate (`seldinger navigate pivot LOG "
            f"--tool {tool} --plan {plan_path}`) or pass --tip-offset-mm D."
        )
    label = record.id or record.name or "calibration"
    if record.tool_tip_to_tool is not None:
        return validate_rigid(record.tool_tip_to_tool, f"{label}.tool_tip_to_tool"), label
    raise PlanContentError(f"calibration {label} of {plan_path} has no tool tip; pivot first.")


def _critical_map(
    plan: Plan, plan_path: Path, names: list[str], path: PlannedPath
) -> tuple[Volume | None, list[str], list[str]]:
    """Distance map to the plan's critical structures around the path, names used, notes."""
    notes: list[str] = []
    missing = [n for n in names if n not in plan.structures]
    if names and missing:
        notes.append(
            f"the plan has no {', '.join(missing)} mask: the distance to critical structures "
            "leaves them out."
        )
    masks = {}
    for name in (n for n in names if n in plan.structures):
        file = plan.structures[name].resolve(plan_path)
        try:
            mask = read_volume(file)
        except (OSError, ValueError) as err:
            notes.append(f"the {name} mask {file} cannot be read ({err}); left out.")
            continue
        masks[name] = mask.with_array(np.asarray(mask.array) > 0)
    if not masks:
        if names:
            notes.append(
                "no critical-structure mask: guidance runs without a distance to critical "
                "structures or breach warnings."
            )
        return None, [], notes
    ends = np.array([path.entry_lps_mm, path.target_lps_mm])
    box = (ends.min(axis=0) - CRITICAL_BOX_MARGIN_MM, ends.max(axis=0) + CRITICAL_BOX_MARGIN_MM)
    try:
        distance = critical_distance_map(masks, list(masks), box_lps_mm=box)
    except ValueError as err:
        notes.append(f"no critical-distance map ({err}); guidance runs without breach warnings.")
        return None, [], notes
    return distance, list(masks), notes
