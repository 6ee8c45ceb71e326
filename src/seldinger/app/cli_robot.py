"""``seldinger robot …``: the robots known, which of a plan's paths a robot reaches, the
session with a robot, hand–eye calibration and the simulator."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from seldinger.app.cli_navigate_live import TrackerToCtOption
from seldinger.app.common import (
    ForceOption,
    JsonOption,
    PlanArgument,
    out_console,
    print_json,
    progress,
)

__all__ = ["robot_app"]

robot_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Robotic needle guidance: robot models (a 5-DOF in-bore needle guide, a UR5-class "
    "arm carrying a guide), reachability of a plan's paths, the biopsy + ablation session "
    "with a robot, hand-eye calibration, and a simulated robot and patient.",
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
    write: Annotated[
        bool,
        typer.Option(
            "--write", help="Save the answer and the robot's ranking in the plan (robot section)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Per path of PLAN: reachable, the reason when not (collision_body, bore, workspace,
    joint_limit), the joints (mm / degrees), the guide pose (4x4 in CT LPS mm: third column
    the needle direction, translation on the needle line) and the predicted targeting error
    (registration TRE ⊕ repeatability ⊕ needle deflection, mm). `robot_rank` orders the
    paths for this robot: reachable first, then the planner's rank within 0.5 mm steps of
    predicted error; `robot run` takes the first.

    Example: `seldinger robot reach plan.json --robot guide_5dof --write`.
    """
    from seldinger.workflow.robot import plan_reachability

    with progress("checking reachability", not as_json):
        report = plan_reachability(plan, robot, None if side is None else side.value, write=write)
    if as_json:
        print_json(report)
        return
    table = Table("rank", "robot rank", "reachable", "reason", "predicted error mm")
    for p in report["paths"]:
        table.add_row(str(p["rank"]), str(p["robot_rank"]), "yes" if p["reachable"] else "no",
                      p["reason"] or "", f"{p['predicted_error_mm']:.2f}")  # fmt: skip
    out_console.print(table)
    s = report["summary"]
    out_console.print(f"{report['robot']} on the {report['side']} side: {s['reachable']} of "
                      f"{s['paths']} paths reachable; TRE {report['tre_mm']} mm "
                      f"({report['tre_source']}).", highlight=False)  # fmt: skip


SimTrackerPortOption = Annotated[
    int | None,
    typer.Option(
        "--tracker-port",
        min=0,
        max=65535,
        help="Also simulate the patient and a tracker streaming NeedleTip and "
        "ChestReference (40 Hz) on this port (0: any free one).",
        show_default=False,
    ),
]
BreathingOption = Annotated[
    float,
    typer.Option("--breathing-mm", min=0.0, help="Target motion peak to peak (SI), mm."),
]
DeflectionOption = Annotated[
    float,
    typer.Option("--deflection-mm-per-100mm", min=0.0, help="Needle drift per 100 mm inserted."),
]
SimTrackerFrameOption = Annotated[
    str | None,
    typer.Option(
        "--tracker-to-ct",
        metavar="MATRIX",
        help="Place the simulated tracker: it reports in its own frame, this rigid 4x4 (JSON "
        "or a JSON file) taking it to the CT. Default: it reports CT LPS mm.",
        show_default=False,
    ),
]
RegistrationOption = Annotated[
    str | None,
    typer.Option(
        "--registration",
        metavar="ID|latest",
        help="The plan's tracker registration (`navigate register`); default: the latest, "
        "unless --tracker-to-ct or --tracker-in-ct is given.",
        show_default=False,
    ),
]
TrackerInCtOption = Annotated[
    bool,
    typer.Option(
        "--tracker-in-ct",
        help="The tracker reports CT LPS mm itself (the simulator of `robot serve`).",
    ),
]


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
    tracker_port: SimTrackerPortOption = None,
    breathing_mm: BreathingOption = 0.0,
    deflection: DeflectionOption = 1.0,
    tracker_to_ct: SimTrackerFrameOption = None,
    as_json: JsonOption = False,
) -> None:
    """A simulated robot speaking the robot protocol over OpenIGTLink (Seldinger controls it).

    States START_UP, PLANNING, CALIBRATION, TARGETING, MOVE_TO_TARGET, MANUAL, STOP,
    EMERGENCY; STRING commands acknowledged by STATUS, TRANSFORM calibration and target,
    the pose streamed; a lost controller or EMERGENCY stops motion (docs/robot.md).

    With `--tracker-port` it also plays the patient (breathing, needle deflection) and a
    tracker, for `seldinger robot run --tracker`: reporting CT LPS mm (`robot run
    --tracker-in-ct`), or in its own frame with `--tracker-to-ct MATRIX` (`robot run
    --tracker-to-ct` the same matrix, or the plan's registration). It streams the tip
    (NeedleTip), the chest (ChestReference) and a hub sensor on the needle (NeedleToTracker,
    the tip 120 mm along its +z: `robot run --tool NeedleToTracker --tip-offset-mm 120`).

    Example: `seldinger robot serve --robot guide_5dof --port 18945 --tracker-port 18944
    --breathing-mm 15`.
    """
    from seldinger.robot.needle_world import NeedleWorldSettings
    from seldinger.workflow.navigation import read_matrix
    from seldinger.workflow.robot import serve_simulated_robot

    def ready(what: str) -> Callable[[int], None]:
        def say(bound: int) -> None:
            if not as_json:
                out_console.print(f"{what} listening on {host}:{bound}", highlight=False)

        return say

    world = NeedleWorldSettings(
        breathing_amplitude_mm=breathing_mm, deflection_mm_per_100mm=deflection
    )
    summary = serve_simulated_robot(
        robot,
        host,
        port,
        seconds,
        on_ready=ready(f"robot {robot}"),
        tracker_port=tracker_port,
        world=world,
        on_tracker_ready=ready("tracker"),
        tracker_to_ct=None
        if tracker_to_ct is None
        else read_matrix(tracker_to_ct, "--tracker-to-ct", "tracker_to_ct"),
    )
    if as_json:
        print_json(summary)
    else:
        out_console.print(f"stopped in state {summary['state']}", highlight=False)


CalibrationOption = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        help='JSON {"robot_to_ct": 4x4} (from `robot calibrate --out`); default: the '
        "assumed mount of `robot reach`.",
        show_default=False,
    ),
]

GateWindowOption = Annotated[
    float | None,
    typer.Option(
        "--gate-window",
        min=0.01,
        max=1.0,
        help="Insert only while the chest is within this fraction of its range from "
        "end-exhale (default 0.1 when the plan has a motion section).",
        show_default=False,
    ),
]

ToolOption = Annotated[
    str | None,
    typer.Option(
        "--tool",
        metavar="DEVICE",
        help="The tracked sensor on the needle (e.g. NeedleToTracker): its tip comes from "
        "the plan's pivot calibration of that tool (`navigate pivot --plan`) or "
        "--tip-offset-mm. Default: the stream's NeedleTip is the tip itself.",
        show_default=False,
    ),
]
TipCalibrationOption = Annotated[
    str | None,
    typer.Option(
        "--tip-calibration",
        metavar="ID|latest",
        help="Which of the plan's calibrations of --tool (default: its latest).",
        show_default=False,
    ),
]
TipOffsetOption = Annotated[
    float | None,
    typer.Option(
        "--tip-offset-mm",
        min=0.0,
        help="The tip this far along the --tool sensor's +z (mm), instead of a calibration.",
        show_default=False,
    ),
]
ConfirmCtOption = Annotated[
    bool,
    typer.Option(
        "--confirm-ct",
        help="Confirm each needle in a control CT (asked for after each insertion; in "
        "the plan's frame) instead of with the tracker.",
    ),
]


@robot_app.command("run")
def run(
    plan: PlanArgument,
    robot_at: Annotated[
        str,
        typer.Option("--robot-at", metavar="HOST:PORT", help="The robot's OpenIGTLink server."),
    ],
    robot: Annotated[str, typer.Option("--robot", help="Robot model.")] = "guide_5dof",
    tracker: Annotated[
        str | None,
        typer.Option(
            "--tracker",
            metavar="HOST:PORT",
            help="Tracker stream (NeedleTip, ChestReference), taken into the CT by the "
            "plan's registration, --tracker-to-ct or --tracker-in-ct: confirmation, "
            "adjustment, re-planning and gating need it.",
            show_default=False,
        ),
    ] = None,
    calibration: CalibrationOption = None,
    gate_window: GateWindowOption = None,
    tolerance_mm: Annotated[
        float, typer.Option("--tolerance-mm", min=0.1, help="Adjust a needle missing by more.")
    ] = 2.0,
    confirm_ct: ConfirmCtOption = False,
    tracker_to_ct: TrackerToCtOption = None,
    registration: RegistrationOption = None,
    tracker_in_ct: TrackerInCtOption = False,
    tool: ToolOption = None,
    tip_calibration: TipCalibrationOption = None,
    tip_offset_mm: TipOffsetOption = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Do not ask before each motion (simulation).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The one-session biopsy + ablation with a robot: align, insert (gated when the plan
    has breathing motion), confirm with the tracker, adjust, biopsy, then the ablation
    applicators in turn, re-planning the rest from where each needle really is. The session
    is logged as JSON lines beside PLAN and recorded in it (robot section, report).

    Example (the simulator of `robot serve --tracker-port 18944`): `seldinger robot run
    plan.json --robot-at localhost:18945 --tracker localhost:18944 --tracker-in-ct --auto`.
    A real tracked needle reports a sensor on its hub: add `--tool NeedleToTracker` (its
    tip from the plan's pivot calibration, `seldinger navigate pivot --plan`).
    """
    from seldinger.app.cli_navigate_live import parse_tracker_address
    from seldinger.app.common import command_line
    from seldinger.robot.session import SessionSettings
    from seldinger.workflow.robot_session import SessionRequest, run_robot_session

    request = SessionRequest(
        plan_path=plan,
        robot=robot,
        robot_at=parse_tracker_address(robot_at),
        tracker_at=None if tracker is None else parse_tracker_address(tracker),
        calibration_path=calibration,
        gate_window=gate_window,
        settings=SessionSettings(tolerance_mm=tolerance_mm),
        command=command_line(),
        confirm_ct=_ask_for_ct if confirm_ct else None,
        tracker_to_ct=tracker_to_ct,
        registration=registration,
        tracker_in_ct=tracker_in_ct,
        tool=tool,
        tip_calibration=tip_calibration,
        tip_offset_mm=tip_offset_mm,
    )
    with progress("robot session", not as_json and auto):
        outcome = run_robot_session(request, None if auto else _ask)
    if as_json:
        print_json(outcome.summary())
        return
    _print_session(outcome)


def _print_session(outcome: Any) -> None:
    table = Table("needle", "error mm", "lateral mm", "depth mm", "adjustments", "gated")
    for n in outcome.record.needles:
        table.add_row(n.name, _mm(n.error_mm), _mm(n.lateral_error_mm), _mm(n.depth_error_mm),
                      str(n.adjustments), "yes" if n.gated else "no")  # fmt: skip
    out_console.print(table)
    for r in outcome.record.replans:
        text = (f"coverage {r.target_coverage_percent} %, {r.n_applicators} applicators"
                if r.feasible else f"infeasible: {r.reason}")  # fmt: skip
        out_console.print(f"re-plan after {r.after}: {text}", highlight=False)
    out_console.print(f"{outcome.record.outcome}; log {outcome.log_path}", highlight=False)


def _ask(sentence: str) -> bool:
    return typer.confirm(f"{sentence}?", default=True)


def _ask_for_ct(needle: str) -> Path:
    return Path(typer.prompt(f"confirmation CT of {needle} (file or DICOM folder)"))


def _mm(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@robot_app.command("calibrate")
def calibrate(
    log: Annotated[
        Path, typer.Argument(help="JSON lines with flange_to_base and marker_to_tracker.")
    ],
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="Plan whose tracker registration places the robot in the CT."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help='Write {"robot_to_ct": 4x4} for `robot run --calibration`.'),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Hand-eye calibration (AX = XB, Park & Martin) from tracked robot poses: where the
    marker sits on the flange, where the robot base stands in the tracker, the residuals;
    with --plan the robot base in the CT.

    Example: `seldinger robot calibrate poses.jsonl --plan plan.json --out robot.json`.
    """
    from seldinger.workflow.robot import calibrate_from_log

    result = calibrate_from_log(log, plan_path=plan, out_path=out, force=force)
    if as_json:
        print_json(result)
        return
    out_console.print(f"{result['poses']} poses: RMS pose residual "
                      f"{result['rms_pose_residual_mm']} mm, largest rotation residual "
                      f"{result['max_rotation_residual_deg']}°", highlight=False)  # fmt: skip
    if result.get("written"):
        out_console.print(f"wrote {result['written']}", highlight=False)
