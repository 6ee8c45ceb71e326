"""``seldinger robot …``: the robots known, and which of a plan's paths a robot reaches."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from seldinger.app.common import JsonOption, PlanArgument, out_console, print_json, progress

__all__ = ["robot_app"]

robot_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Robotic needle guidance: robot models (a 5-DOF in-bore needle guide, a UR5-class "
    "arm carrying a guide) and reachability of a plan's paths.",
    no_args_is_help=True,
)


class Side(StrEnum):
    """Side of the patient the robot stands on (seldinger.robot.MountSide)."""

    anterior = "anterior"
    posterior = "posterior"
    left = "left"
    right = "right"


@robot_app.command("list")
def list_robots(as_json: JsonOption = False) -> None:
    """The robots known, with their kind, joints and repeatability."""
    from seldinger.workflow.robot import robots_known

    robots = robots_known()
    if as_json:
        print_json({"robots": robots})
        return
    table = Table("robot", "kind", "joints", "repeatability mm", "in bore")
    for r in robots:
        table.add_row(r["name"], r["kind"], str(r["joints"]), str(r["repeatability_mm"]),
                      "yes" if r["in_bore"] else "no")  # fmt: skip
    out_console.print(table)


@robot_app.command("reach")
def reach(
    plan: PlanArgument,
    robot: Annotated[str, typer.Option("--robot", help="Robot name (`seldinger robot list`).")],
    side: Annotated[
        Side | None,
        typer.Option("--side", help="Side the robot stands on (default: the rank-1 path's)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Per path of PLAN: reachable, the reason when not (collision_body, bore, workspace,
    joint_limit), the joints (mm / degrees), the guide pose (4x4 in CT LPS mm: third column
    the needle direction, translation on the needle line) and the predicted targeting error
    (registration TRE ⊕ repeatability ⊕ needle deflection, mm).

    Example: `seldinger robot reach plan.json --robot guide_5dof`.
    """
    from seldinger.workflow.robot import plan_reachability

    with progress("checking reachability", not as_json):
        report = plan_reachability(plan, robot, None if side is None else side.value)
    if as_json:
        print_json(report)
        return
    table = Table("rank", "reachable", "reason", "predicted error mm")
    for p in report["paths"]:
        table.add_row(str(p["rank"]), "yes" if p["reachable"] else "no", p["reason"] or "",
                      f"{p['predicted_error_mm']:.2f}")  # fmt: skip
    out_console.print(table)
    s = report["summary"]
    out_console.print(f"{report['robot']} on the {report['side']} side: {s['reachable']} of "
                      f"{s['paths']} paths reachable; TRE {report['tre_mm']} mm "
                      f"({report['tre_source']}).", highlight=False)  # fmt: skip


@robot_app.command("serve")
def serve(
    robot: Annotated[
        str, typer.Option("--robot", help="Robot model (see `seldinger robot list`).")
    ] = "guide_5dof",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="OpenIGTLink port (0: any free one).")
    ] = 18945,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds", help="Stop after this long (default: Ctrl-C).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A simulated robot speaking the robot protocol over OpenIGTLink (Seldinger controls it).

    States START_UP, PLANNING, CALIBRATION, TARGETING, MOVE_TO_TARGET, MANUAL, STOP,
    EMERGENCY; STRING commands acknowledged by STATUS, TRANSFORM calibration and target,
    the pose streamed; a lost controller or EMERGENCY stops motion (docs/robot.md).

    Example: `seldinger robot serve --robot guide_5dof --port 18945 --seconds 600`.
    """
    from seldinger.workflow.robot import serve_simulated_robot

    def ready(bound: int) -> None:
        if not as_json:
            out_console.print(f"robot {robot} listening on {host}:{bound}", highlight=False)

    summary = serve_simulated_robot(robot, host, port, seconds, on_ready=ready)
    if as_json:
        print_json(summary)
    else:
        out_console.print(f"stopped in state {summary['state']}", highlight=False)
