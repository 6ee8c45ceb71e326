"""``seldinger robot run``: the one-session biopsy + ablation with a robot.

From a saved plan:

1. The needles: with an ablation, a coaxial introducer on applicator 1's line to its tip
   (the biopsy is taken through it, then applicator 1 goes down the introducer); without,
   the trajectory the robot ranks first (``robot reach --write``), else rank 1.
2. The robot is calibrated (``--calibration FILE``: ``{"robot_to_ct": 4x4}``, e.g. from
   ``seldinger robot calibrate``; else the assumed mount of ``robot reach``), each needle is
   aligned, inserted (gated at end-exhale when the plan has a motion section or a gate
   window is given), confirmed by the tracker and adjusted (:class:`~seldinger.robot.
   session.RobotSession`). The tracker's points are taken into the CT by its registration:
   ``--tracker-to-ct MATRIX``, the plan's registration (``--registration ID``, default the
   latest, from ``seldinger navigate register``), or ``--tracker-in-ct`` for a tracker that
   reports CT LPS mm itself (the simulator); with none of them the session is refused
   rather than guessing the frame. The tip is the stream's ``NeedleTip``, or, with
   ``--tool DEVICE`` (a sensor on the needle's hub), that sensor's pose carried to the tip
   by the plan's pivot calibration of the tool (``seldinger navigate pivot``) or by
   ``--tip-offset-mm``.
3. After each confirmed applicator the rest of the ablation is re-planned from where the
   needles really are (:func:`~seldinger.workflow.ablation_replan.replan_ablation`), and
   the next applicator goes where the re-plan says.
4. The session log (JSON lines) is written beside the plan as it happens; the plan gets a
   robot session record (and the re-planned ablation section and zone mask), atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, MissingFileError, SeldingerError
from seldinger.files import staged_outputs
from seldinger.imaging import Volume
from seldinger.io import read_ct, write_volume
from seldinger.navigation.transforms import validate_rigid
from seldinger.plan import (
    NeedlePlacementRecord,
    Plan,
    ReplanRecord,
    RobotSection,
    RobotSessionRecord,
)
from seldinger.plan.errors import PlanContentError
from seldinger.robot import load_model
from seldinger.robot.needle_world import NEEDLE_TIP
from seldinger.robot.protocol import RobotController
from seldinger.robot.session import (
    BreathingGate,
    NeedleGoal,
    NeedleResult,
    RobotSession,
    SessionLog,
    SessionSettings,
    TrackerFeed,
)
from seldinger.workflow.ablation_replan import PlacedProbe, Replan, Replanner
from seldinger.workflow.navigation import read_matrix, tool_tip_matrix
from seldinger.workflow.robot import robot_base_in_ct

__all__ = ["DEFAULT_GATE_WINDOW", "SessionOutcome", "SessionRequest", "run_robot_session"]

Float64Array = npt.NDArray[np.float64]

#: Gate window (fraction of the breathing range from end-exhale) when the plan has motion.
DEFAULT_GATE_WINDOW = 0.1


@dataclass(frozen=True)
class SessionRequest:
    """What ``seldinger robot run`` was asked (see its ``--help``)."""

    plan_path: Path
    robot: str
    robot_at: tuple[str, int]
    tracker_at: tuple[str, int] | None = None
    calibration_path: Path | None = None
    gate_window: float | None = None
    settings: SessionSettings = field(default_factory=SessionSettings)
    command: str | None = None
    #: Gives the confirmation CT's path after each insertion (by the needle's name); the
    #: tip is then found in that CT rather than read from the tracker.
    confirm_ct: Callable[[str], Path] | None = None
    #: The tracker's frame (module docstring, step 2): at most one of the three.
    tracker_to_ct: str | None = None
    registration: str | None = None
    tracker_in_ct: bool = False
    #: The needle's tracked sensor (a device name, e.g. NeedleToTracker): its tip from the
    #: plan's pivot calibration of that tool (``tip_calibration``: an id or name, default
    #: the latest) or ``tip_offset_mm`` along its +z. None: the stream's NeedleTip is the tip.
    tool: str | None = None
    tip_calibration: str | None = None
    tip_offset_mm: float | None = None

    def __post_init__(self) -> None:
        given = [
            option
            for option, value in (
                ("--tracker-to-ct", self.tracker_to_ct),
                ("--registration", self.registration),
                ("--tracker-in-ct", self.tracker_in_ct or None),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise BadInputError(f"give one tracker frame; got {' and '.join(given)}.")
        tip = [o for o, v in (("--tip-calibration", self.tip_calibration),
                              ("--tip-offset-mm", self.tip_offset_mm)) if v is not None]  # fmt: skip
        if tip and self.tool is None:
            raise BadInputError(
                f"{tip[0]} calibrates a tracked needle sensor: name it with --tool DEVICE "
                "(e.g. --tool NeedleToTracker)."
            )
        if len(tip) > 1:
            raise BadInputError("give --tip-calibration or --tip-offset-mm, not both.")


@dataclass
class SessionOutcome:
    """The session's record (saved in the plan), its log, and the re-plans."""

    record: RobotSessionRecord
    log_path: Path
    results: list[NeedleResult]
    replans: list[Replan]

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**self.record.model_dump(mode="json"), "log": str(self.log_path)}


def _goals(plan: Plan) -> list[NeedleGoal]:
    """The first needle (module docstring, step 1)."""
    if plan.ablation is not None and plan.ablation.applicators:
        first = plan.ablation.applicators[0]
        return [NeedleGoal("introducer + applicator 1", first.entry_lps_mm, first.tip_lps_mm)]
    if plan.trajectories is None or not plan.trajectories.paths:
        raise PlanContentError("the plan has no trajectory and no ablation to place a needle on.")
    paths = plan.trajectories.paths
    if plan.robot is not None and plan.robot.reach:
        best = min(plan.robot.reach, key=lambda r: r.robot_rank)
        if not best.reachable:
            raise PlanContentError(
                f"no path of the plan is reachable by {plan.robot.robot} "
                f"(rank {best.rank}: {best.reason}); see `seldinger robot reach`."
            )
        path = next(p for p in paths if p.rank == best.rank)
    else:
        path = paths[0]
    return [
        NeedleGoal(f"introducer (path rank {path.rank})", path.entry_lps_mm, path.target_lps_mm)
    ]


def _calibration(request: SessionRequest, plan: Plan) -> tuple[np.ndarray, str]:
    if request.calibration_path is not None:
        try:
            data = json.loads(request.calibration_path.read_text(encoding="utf-8"))
            matrix = np.asarray(data["robot_to_ct"], dtype=float)
        except FileNotFoundError as err:
            raise MissingFileError(f"no calibration file {request.calibration_path}.") from err
        except (ValueError, TypeError, KeyError) as err:
            raise BadInputError(
                f"{request.calibration_path}: not a calibration ({err}); expected a JSON "
                'object {"robot_to_ct": 4x4} as `seldinger robot calibrate --out` writes.'
            ) from err
        if matrix.shape != (4, 4):
            raise BadInputError(
                f"{request.calibration_path}: robot_to_ct must be a 4x4 matrix (robot base "
                "-> CT LPS mm), as `seldinger robot calibrate` writes it."
            )
        return validate_rigid(matrix, "robot_to_ct"), f"file {request.calibration_path.name}"
    model = load_model(request.robot)
    base_to_ct, mount, _, _ = robot_base_in_ct(plan, request.plan_path, model)
    return base_to_ct, f"assumed {mount.value} mount (no calibration given)"


def _record(result: NeedleResult) -> NeedlePlacementRecord:
    d = result.to_dict()
    return NeedlePlacementRecord(
        name=d["name"],
        entry_lps_mm=tuple(d["entry_lps_mm"]),
        planned_tip_lps_mm=tuple(d["planned_tip_lps_mm"]),
        measured_tip_lps_mm=None
        if d["measured_tip_lps_mm"] is None
        else tuple(d["measured_tip_lps_mm"]),
        error_mm=d["error_mm"],
        lateral_error_mm=d["lateral_error_mm"],
        depth_error_mm=d["depth_error_mm"],
        adjustments=d["adjustments"],
        gated=d["gated"],
        seconds=d["seconds"],
    )


def _ct_reader(request: SessionRequest, plan: Plan) -> Callable[[NeedleGoal], Volume] | None:
    """Read the confirmation CT the request's provider names; it must cover the plan's CT
    frame (same patient position, or registered and resampled onto the plan's CT)."""
    provider = request.confirm_ct
    if provider is None:
        return None

    def read(goal: NeedleGoal) -> Volume:
        volume = read_ct(provider(goal.name)).volume
        box_lo, box_hi = volume.geometry.bounds_lps_mm()
        tip = np.asarray(goal.tip_lps_mm)
        if np.any(tip < np.minimum(box_lo, box_hi) - 1.0) or np.any(
            tip > np.maximum(box_lo, box_hi) + 1.0
        ):
            raise BadInputError(
                f"the confirmation CT does not cover the planned tip of {goal.name} "
                f"{np.round(tip, 1).tolist()} LPS mm; is it in the plan's frame ({plan.case.shape} "
                "CT)? Register and resample it onto the plan's CT first."
            )
        return volume

    return read


def _replan_record(after: str, replan: Replan) -> ReplanRecord:
    d = replan.to_dict()
    return ReplanRecord(
        after=after,
        feasible=replan.feasible,
        placed_coverage_percent=min(100.0, d["placed_coverage_percent"]),
        target_coverage_percent=d.get("target_coverage_percent"),
        min_margin_mm=d.get("min_margin_mm"),
        n_applicators=d.get("n_applicators"),
        reason=replan.reason,
    )


def run_robot_session(
    request: SessionRequest, ask: Callable[[str], bool] | None = None
) -> SessionOutcome:
    """Run the session (module docstring). ``ask`` is asked before every motion (None:
    ``--auto``). The plan is saved with the session record even when the session stops
    early (the record says how it ended); the log is beside the plan either way."""
    plan = Plan.load(request.plan_path)
    model = load_model(request.robot)
    goals = _goals(plan)
    robot_to_ct, calibration_source = _calibration(request, plan)
    tracker_to_ct, tracker_frame = _tracker_frame(request, plan)
    tip_device, tip_to_sensor, tip_source = _needle_tip(request, plan)
    window = request.gate_window
    if window is None and plan.motion is not None:
        window = DEFAULT_GATE_WINDOW
    if window is not None and request.tracker_at is None:
        raise BadInputError(
            "gated insertion needs the breathing signal: give --tracker HOST:PORT (or no "
            "--gate-window, for a plan without a motion section)."
        )
    # Connect first: a robot or tracker that does not answer leaves no log and no record.
    controller = RobotController(*request.robot_at)
    try:
        tracker = (
            TrackerFeed(
                *request.tracker_at,
                tip_device=tip_device,
                tracker_to_ct=tracker_to_ct,
                tip_to_sensor=tip_to_sensor,
            )
            if request.tracker_at is not None
            else None
        )
    except SeldingerError:
        controller.close()
        raise
    started = datetime.now(UTC)
    log_path = request.plan_path.parent / f"robot_session_{started:%Y%m%dT%H%M%S}.jsonl"
    log = SessionLog(log_path)
    log.write(
        "session",
        robot=model.name,
        plan=request.plan_path.name,
        gate_window=window,
        tracker_frame=tracker_frame,
        needle_tip=tip_source,
    )
    results: list[NeedleResult] = []
    replans: list[tuple[str, Replan]] = []
    outcome = "completed"
    notes: list[str] = [] if tip_source is None else [f"needle tip: {tip_source}"]
    session = RobotSession(
        controller,
        log,
        tracker=tracker,
        gate=BreathingGate(window) if window is not None else None,
        settings=request.settings,
        ask=ask,
        confirm_ct=_ct_reader(request, plan),
    )
    try:
        session.start(robot_to_ct)
        outcome = _run_needles(request, plan, session, goals, results, replans, notes)
        session.finish(outcome)
    except SeldingerError as err:
        outcome = f"stopped: {err}"
        log.write("error", message=str(err))
        raise
    finally:
        controller.close()
        if tracker is not None:
            tracker.close()
        log.close()
        record = RobotSessionRecord(
            robot=model.name,
            started_utc=started.isoformat(timespec="seconds"),
            calibration_source=calibration_source,
            robot_to_ct=np.round(robot_to_ct, 6).tolist(),
            tracker_frame=tracker_frame,
            gated=window is not None,
            log_path=log_path.name,
            needles=[_record(r) for r in results],
            replans=[_replan_record(name, r) for name, r in replans],
            outcome=outcome[:300],
            notes=notes,
        )
        _save(request, record, [r for _, r in replans])
    return SessionOutcome(record, log_path, results, [r for _, r in replans])


def _tracker_frame(request: SessionRequest, plan: Plan) -> tuple[Float64Array | None, str | None]:
    """The tracker's registration to the CT (None: it reports CT) and where it came from."""
    if request.tracker_at is None:
        return None, None
    if request.tracker_in_ct:
        return None, "the tracker reports CT LPS mm (--tracker-in-ct)"
    if request.tracker_to_ct is not None:
        matrix = read_matrix(request.tracker_to_ct, "--tracker-to-ct", "tracker_to_ct")
        return matrix, "--tracker-to-ct"
    section = plan.navigation
    record = section.registration(request.registration) if section is not None else None
    if record is None:
        known = ", ".join(r.name or r.id for r in section.registrations) if section else ""
        raise PlanContentError(
            f"the tracker's frame is unknown: {request.plan_path} has no registration "
            f"{request.registration or ''}(it has: {known or 'none'}). Register the tracker "
            f"to the CT (`seldinger navigate register --fixed CT.csv --moving TRACKER.csv "
            f"--plan {request.plan_path}`), or pass --tracker-to-ct MATRIX, or --tracker-in-ct "
            "when the tracker reports CT LPS mm itself (`seldinger robot serve --tracker-port`)."
        )
    if record.moving_frame != "tracker" or record.scale != 1.0:
        raise PlanContentError(
            f"registration {record.id} of {request.plan_path} is "
            f"{'scaled' if record.scale != 1.0 else 'to the patient reference'}; the robot "
            "session needs a rigid registration of the tracker's own frame (--moving-frame "
            "tracker)."
        )
    matrix = validate_rigid(record.moving_to_fixed, f"{record.id}.moving_to_fixed")
    return matrix, f"{record.id} of {request.plan_path.name}"


def _needle_tip(request: SessionRequest, plan: Plan) -> tuple[str, Float64Array | None, str | None]:
    """The tracked device, its tip calibration (None: it is the tip) and their source."""
    if request.tracker_at is None:
        return NEEDLE_TIP, None, None
    if request.tool is None:
        return NEEDLE_TIP, None, f"device {NEEDLE_TIP} (the tracker reports the tip)"
    matrix, source = tool_tip_matrix(
        plan, request.plan_path, request.tool, request.tip_calibration, request.tip_offset_mm
    )
    offset = np.round(matrix[:3, 3], 2).tolist()
    return request.tool, matrix, f"device {request.tool}, tip at {offset} mm by {source}"


def _run_needles(
    request: SessionRequest,
    plan: Plan,
    session: RobotSession,
    goals: list[NeedleGoal],
    results: list[NeedleResult],
    replans: list[tuple[str, Replan]],
    notes: list[str],
) -> str:
    """Place the needles in turn, re-planning the ablation after each confirmed one."""
    placed: list[PlacedProbe] = []
    replanner: Replanner | None = None
    queue = list(goals)
    while queue:
        goal = queue.pop(0)
        result = session.place(goal)
        results.append(result)
        if not placed:
            session.log.write("biopsy", through=goal.name)
        if plan.ablation is None:
            continue
        if result.measured_tip_lps_mm is None:
            notes.append("no tracker: the ablation was not re-planned from confirmed positions")
            continue
        # The needle pivots at the skin: its real line runs from the entry to the tip found.
        tip = np.asarray(result.measured_tip_lps_mm)
        u = (tip - np.asarray(goal.entry_lps_mm)) / np.linalg.norm(tip - goal.entry_lps_mm)
        placed.append(PlacedProbe((tip[0], tip[1], tip[2]), (u[0], u[1], u[2])))
        if replanner is None:
            replanner = Replanner(request.plan_path)
        replan = replanner.replan(placed)
        replans.append((goal.name, replan))
        session.log.write("replan", after=goal.name, **replan.to_dict())
        if not replan.feasible or replan.section is None:
            return f"re-plan infeasible after {goal.name}: {replan.reason}"
        rest = replan.section.applicators[len(placed) :]
        if rest:
            k = len(placed) + 1
            queue = [NeedleGoal(f"applicator {k}", rest[0].entry_lps_mm, rest[0].tip_lps_mm)]
    return "completed"


def _save(request: SessionRequest, record: RobotSessionRecord, replans: list[Replan]) -> None:
    """The session record into the plan, and the last feasible re-plan as its ablation."""
    plan = Plan.load(request.plan_path)
    if plan.robot is None:
        plan.robot = RobotSection(robot=record.robot)
    plan.robot.sessions.append(record)
    last = next((r for r in reversed(replans) if r.feasible), None)
    zone_path = None
    if last is not None and last.section is not None and last.result is not None:
        plan.ablation = last.section
        if last.section.zone_mask_path:
            zone_path = request.plan_path.parent / last.section.zone_mask_path
    plan.provenance.record(
        "robot run", {"robot": record.robot, "outcome": record.outcome}, request.command
    )
    with staged_outputs(force=True) as stage:
        if zone_path is not None and last is not None and last.result is not None:
            write_volume(last.result.zone, stage.path(zone_path), force=True)
        plan.save(stage.path(request.plan_path), force=True)
