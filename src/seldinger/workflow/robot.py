"""The robot steps a user runs: the robots known, and reachability of a plan's paths."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, MissingFileError
from seldinger.imaging import Volume
from seldinger.io import read_volume
from seldinger.plan import PathReachRecord, Plan, RobotSection
from seldinger.plan.errors import PlanContentError
from seldinger.robot import (
    DEFAULT_TRE_MM,
    MountSide,
    RobotModel,
    bore_axis_lps_mm,
    list_models,
    load_model,
    mount_side_for,
    mount_to_ct,
    reach_paths,
    summarise,
)
from seldinger.robot.needle_world import NeedleWorldSettings

__all__ = [
    "DEFAULT_ROBOT_PORT",
    "ERROR_STEP_MM",
    "calibrate_from_log",
    "plan_reachability",
    "robot_base_in_ct",
    "robot_ranks",
    "robots_known",
    "serve_simulated_robot",
]

Float64Array = npt.NDArray[np.float64]

#: Predicted errors within this step count as equal in the robot's ranking (mm).
ERROR_STEP_MM = 0.5


#: Port of ``seldinger robot serve`` (the tracker simulator keeps OpenIGTLink's 18944).
DEFAULT_ROBOT_PORT = 18945


def robots_known() -> list[dict[str, Any]]:
    """The shipped robot models: name, kind, joints, repeatability and where they work."""
    out = []
    for name in list_models():
        model = load_model(name)
        out.append(
            {
                "name": model.name,
                "kind": model.kind.value,
                "joints": len(model.joints),
                "repeatability_mm": model.repeatability_mm,
                "in_bore": model.in_bore,
                "description": model.description,
            }
        )
    return out


def robot_base_in_ct(
    plan: Plan, plan_path: Path, model: RobotModel, side: MountSide | str | None = None
) -> tuple[Float64Array, MountSide, tuple[float, float], Volume | None]:
    """Where the robot stands: its base in the CT, the side, the bore axis and the body.

    The robot stands on ``side`` of the patient (default: the side the rank-1 path comes
    from), its mount frame on the body's centre line at the target's slice.
    """
    if plan.trajectories is None or not plan.trajectories.paths:
        raise PlanContentError(
            f"{plan_path} has no trajectories; plan them first (`seldinger plan trajectory`)."
        )
    first = plan.trajectories.paths[0]
    body = None
    if "body" in plan.structures:
        mask = read_volume(plan.structures["body"].resolve(plan_path))
        body = mask.with_array(np.asarray(mask.array) > 0)
    axis = bore_axis_lps_mm(body) if body is not None else (0.0, 0.0)
    mount = (
        MountSide(side)
        if side is not None
        else mount_side_for(first.entry_lps_mm, first.target_lps_mm)
    )
    base_to_ct = mount_to_ct([*axis, first.target_lps_mm[2]], mount) @ model.base_to_mount
    return base_to_ct, mount, axis, body


def robot_ranks(reachable: list[bool], errors_mm: list[float]) -> list[int]:
    """The order of paths for a robot (1 = best): reachable first, then the planner's rank
    within steps of :data:`ERROR_STEP_MM` of predicted error.

    Examples
    --------
    >>> robot_ranks([False, True, True], [1.0, 3.2, 2.1])
    [3, 2, 1]
    """
    keys = [
        (not ok, math.floor(err / ERROR_STEP_MM), i)
        for i, (ok, err) in enumerate(zip(reachable, errors_mm, strict=True))
    ]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ranks = [0] * len(keys)
    for position, index in enumerate(order, start=1):
        ranks[index] = position
    return ranks


def plan_reachability(
    plan_path: str | os.PathLike[str],
    robot: str,
    side: MountSide | str | None = None,
    *,
    write: bool = False,
) -> dict[str, Any]:
    """Reachability of every path of a saved plan by robot ``robot``.

    Where the robot stands: :func:`robot_base_in_ct`. The TRE is the plan's latest
    navigation registration's predicted TRE, else :data:`DEFAULT_TRE_MM`. ``write`` saves
    the answer and the robot's ranking into the plan's robot section.

    Returns
    -------
    dict
        ``robot``, ``kind``, ``side``, ``bore_axis_xy_lps_mm``, ``tre_mm``, ``tre_source``,
        ``summary`` (:func:`~seldinger.robot.summarise`) and ``paths`` (per path: ``rank``,
        ``robot_rank``, ``entry_lps_mm``, ``target_lps_mm``, ``reachable``, ``reason``,
        ``joints``, ``guide_pose``, ``predicted_error_mm``).

    Raises
    ------
    PlanContentError
        If the plan has no trajectories.
    """
    path = Path(plan_path)
    plan = Plan.load(path)
    model = load_model(robot)
    base_to_ct, mount, axis, body = robot_base_in_ct(plan, path, model, side)
    assert plan.trajectories is not None
    paths = plan.trajectories.paths
    entries = np.array([p.entry_lps_mm for p in paths], dtype=float)
    targets = np.array([p.target_lps_mm for p in paths], dtype=float)
    registration = plan.navigation.registration() if plan.navigation else None
    tre = registration.predicted_tre_mm if registration is not None else None
    tre_mm = DEFAULT_TRE_MM if tre is None else tre
    results = reach_paths(
        model, entries, targets, base_to_ct, body=body, bore_axis_xy_lps_mm=axis, tre_mm=tre_mm
    )
    ranks = robot_ranks([r.reachable for r in results], [r.predicted_error_mm for r in results])
    if write:
        records = [
            PathReachRecord(
                rank=p.rank if p.rank is not None else i + 1,
                robot_rank=k,
                reachable=r.reachable,
                reason=r.reason,
                predicted_error_mm=round(r.predicted_error_mm, 3),
            )
            for i, (p, r, k) in enumerate(zip(paths, results, ranks, strict=True))
        ]
        sessions = plan.robot.sessions if plan.robot is not None else []
        plan.robot = RobotSection(
            robot=model.name, side=mount.value, tre_mm=tre_mm, reach=records, sessions=sessions
        )
        plan.provenance.record("robot reach", {"robot": model.name, "side": mount.value})
        plan.save(path, force=True)
    return {
        "robot": model.name,
        "kind": model.kind.value,
        "side": mount.value,
        "bore_axis_xy_lps_mm": [round(v, 2) for v in axis],
        "tre_mm": tre_mm,
        "tre_source": "assumed: no registration in the plan"
        if tre is None
        else f"registration {registration.id if registration else ''}",
        "summary": summarise(results),
        "paths": [
            {
                "rank": p.rank,
                "robot_rank": k,
                "entry_lps_mm": list(p.entry_lps_mm),
                "target_lps_mm": list(p.target_lps_mm),
                **r.to_dict(),
            }
            for p, r, k in zip(paths, results, ranks, strict=True)
        ],
    }


def serve_simulated_robot(
    robot: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_ROBOT_PORT,
    seconds: float | None = None,
    on_ready: Callable[[int], None] | None = None,
    *,
    tracker_port: int | None = None,
    world: NeedleWorldSettings | None = None,
    on_tracker_ready: Callable[[int], None] | None = None,
    tracker_to_ct: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Run the simulated robot (``seldinger robot serve``) until ``seconds`` pass or Ctrl-C.

    The robot speaks the protocol of :mod:`seldinger.robot.protocol`; its repeatability is
    the model's (:func:`seldinger.robot.load_model`). ``on_ready`` gets the port it
    listens on. With ``tracker_port`` it also plays the patient and a tracker
    (:mod:`seldinger.robot.needle_world`: breathing, needle deflection; ``NeedleTip`` and
    ``ChestReference`` streamed at 40 Hz, in CT LPS mm or, with ``tracker_to_ct``, in the
    frame of a tracker standing there); ``on_tracker_ready`` gets that port. Returns the
    final state and the motion stops it made (watchdog included).
    """
    from seldinger.robot.needle_world import NeedleWorld
    from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

    model = load_model(robot)
    if seconds is not None and not (np.isfinite(seconds) and seconds > 0):
        raise BadInputError(f"--seconds must be a finite number > 0; got {seconds!r}.")
    settings = SimulatedRobotSettings(repeatability_mm=model.repeatability_mm)
    patient = NeedleWorld(world) if tracker_port is not None else None
    with SimulatedRobot(
        host,
        port,
        settings=settings,
        world=patient,
        tracker_port=tracker_port,
        tracker_to_ct=tracker_to_ct,
    ) as server:
        if on_ready is not None:
            on_ready(server.port)
        if on_tracker_ready is not None and server.tracker_port is not None:
            on_tracker_ready(server.tracker_port)
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return {
            "robot": model.name,
            "port": server.port,
            "state": server.state.value,
            "stops": [
                {"reason": s.reason, "position_robot_mm": list(s.position_robot_mm)}
                for s in server.stop_events
            ],
        }


def calibrate_from_log(
    log_path: str | os.PathLike[str],
    *,
    plan_path: str | os.PathLike[str] | None = None,
    out_path: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Hand–eye calibration from a JSON-lines log of pose pairs (``robot calibrate``).

    Each line with both ``flange_to_base`` (the robot's own pose, 4×4 mm) and
    ``marker_to_tracker`` (the tracked marker on its flange at the same instant) is one
    pose; other lines (events of a session log) are skipped. With ``plan_path`` the plan's
    latest tracker registration places the robot in the CT: ``robot_to_ct =
    tracker_to_ct @ base_to_tracker``; ``out_path`` then writes ``{"robot_to_ct": …}`` for
    ``seldinger robot run --calibration`` (atomically).

    Raises
    ------
    BadInputError
        A line that is not JSON, a pose that is not rigid, fewer than 3 poses, or poses
        that turn about one axis only (the fit is then undetermined; the error says so).
    """
    from seldinger.files import atomic_path
    from seldinger.robot.handeye import hand_eye_calibration

    path = Path(log_path)
    flanges, markers = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise MissingFileError(f"no calibration log {path}.") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BadInputError(f"{path}:{number}: not a JSON line ({err.msg}).") from err
        if isinstance(record, dict) and {"flange_to_base", "marker_to_tracker"} <= record.keys():
            flanges.append(record["flange_to_base"])
            markers.append(record["marker_to_tracker"])
    if len(flanges) < 3:
        raise BadInputError(
            f"{path} holds {len(flanges)} pose pairs (lines with flange_to_base and "
            "marker_to_tracker); hand-eye calibration needs at least 3, better 10-20 poses "
            "turning about different axes."
        )
    result = hand_eye_calibration(flanges, markers)
    out: dict[str, Any] = {
        "poses": len(flanges),
        "marker_to_flange": np.round(result.marker_to_flange, 6).tolist(),
        "base_to_tracker": np.round(result.base_to_tracker, 6).tolist(),
        "rms_pose_residual_mm": round(result.rms_pose_residual_mm, 3),
        "max_rotation_residual_deg": round(float(result.rotation_residuals_deg.max()), 3),
        "robot_to_ct": None,
    }
    if plan_path is not None:
        plan = Plan.load(plan_path)
        registration = plan.navigation.registration() if plan.navigation else None
        if registration is None or registration.moving_frame != "tracker":
            raise PlanContentError(
                f"{plan_path} has no tracker registration to place the robot in the CT; "
                "register first (`seldinger navigate register`)."
            )
        tracker_to_ct = np.asarray(registration.moving_to_fixed, dtype=float)
        out["robot_to_ct"] = np.round(tracker_to_ct @ result.base_to_tracker, 6).tolist()
        out["registration"] = registration.id
    if out_path is not None:
        if out["robot_to_ct"] is None:
            raise BadInputError(
                "--out writes robot_to_ct, which needs the plan's tracker registration: "
                "give the plan too (--plan PLAN)."
            )
        with atomic_path(out_path, force=force) as tmp:
            Path(tmp).write_text(json.dumps({"robot_to_ct": out["robot_to_ct"]}, indent=2))
        out["written"] = str(out_path)
    return out
