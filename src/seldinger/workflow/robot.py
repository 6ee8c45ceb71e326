"""The robot steps a user runs: the robots known, and reachability of a plan's paths."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from seldinger.errors import BadInputError
from seldinger.io import read_volume
from seldinger.plan import Plan
from seldinger.plan.errors import PlanContentError
from seldinger.robot import (
    DEFAULT_TRE_MM,
    MountSide,
    bore_axis_lps_mm,
    list_models,
    load_model,
    mount_side_for,
    mount_to_ct,
    reach_paths,
    summarise,
)

__all__ = ["DEFAULT_ROBOT_PORT", "plan_reachability", "robots_known", "serve_simulated_robot"]


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


def plan_reachability(
    plan_path: str | os.PathLike[str], robot: str, side: MountSide | str | None = None
) -> dict[str, Any]:
    """Reachability of every path of a saved plan by robot ``robot``.

    The robot stands on ``side`` of the patient (default: the side the rank-1 path comes
    from), its mount frame on the body's centre line at the target's slice. The TRE is the
    plan's latest navigation registration's predicted TRE, else :data:`DEFAULT_TRE_MM`.

    Returns
    -------
    dict
        ``robot``, ``kind``, ``side``, ``bore_axis_xy_lps_mm``, ``tre_mm``, ``tre_source``,
        ``summary`` (:func:`~seldinger.robot.summarise`) and ``paths`` (per path: ``rank``,
        ``entry_lps_mm``, ``target_lps_mm``, ``reachable``, ``reason``, ``joints``,
        ``guide_pose``, ``predicted_error_mm``).

    Raises
    ------
    PlanContentError
        If the plan has no trajectories.
    """
    path = Path(plan_path)
    plan = Plan.load(path)
    model = load_model(robot)
    if plan.trajectories is None or not plan.trajectories.paths:
        raise PlanContentError(
            f"{path} has no trajectories; plan them first (`seldinger plan trajectory`)."
        )
    paths = plan.trajectories.paths
    entries = np.array([p.entry_lps_mm for p in paths], dtype=float)
    targets = np.array([p.target_lps_mm for p in paths], dtype=float)
    body = None
    if "body" in plan.structures:
        mask = read_volume(plan.structures["body"].resolve(path))
        body = mask.with_array(np.asarray(mask.array) > 0)
    axis = bore_axis_lps_mm(body) if body is not None else (0.0, 0.0)
    mount = MountSide(side) if side is not None else mount_side_for(entries[0], targets[0])
    base_to_ct = mount_to_ct([*axis, targets[0, 2]], mount) @ model.base_to_mount
    registration = plan.navigation.registration() if plan.navigation else None
    tre = registration.predicted_tre_mm if registration is not None else None
    results = reach_paths(
        model,
        entries,
        targets,
        base_to_ct,
        body=body,
        bore_axis_xy_lps_mm=axis,
        tre_mm=DEFAULT_TRE_MM if tre is None else tre,
    )
    return {
        "robot": model.name,
        "kind": model.kind.value,
        "side": mount.value,
        "bore_axis_xy_lps_mm": [round(v, 2) for v in axis],
        "tre_mm": DEFAULT_TRE_MM if tre is None else tre,
        "tre_source": "assumed: no registration in the plan"
        if tre is None
        else f"registration {registration.id if registration else ''}",
        "summary": summarise(results),
        "paths": [
            {
                "rank": p.rank,
                "entry_lps_mm": list(p.entry_lps_mm),
                "target_lps_mm": list(p.target_lps_mm),
                **r.to_dict(),
            }
            for p, r in zip(paths, results, strict=True)
        ],
    }


def serve_simulated_robot(
    robot: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_ROBOT_PORT,
    seconds: float | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the simulated robot (``seldinger robot serve``) until ``seconds`` pass or Ctrl-C.

    The robot speaks the protocol of :mod:`seldinger.robot.protocol`; its repeatability is
    the model's (:func:`seldinger.robot.load_model`). ``on_ready`` gets the port it
    listens on. Returns the final state and the motion stops it made (watchdog included).
    """
    from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

    model = load_model(robot)
    if seconds is not None and not (np.isfinite(seconds) and seconds > 0):
        raise BadInputError(f"--seconds must be a finite number > 0; got {seconds!r}.")
    settings = SimulatedRobotSettings(repeatability_mm=model.repeatability_mm)
    with SimulatedRobot(host, port, settings=settings) as server:
        if on_ready is not None:
            on_ready(server.port)
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
