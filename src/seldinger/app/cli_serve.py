"""``seldinger serve``: the browser workstation (issue 21; docs/workstation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seldinger.app.common import err_console, out_console, print_notes

__all__ = ["serve"]

PlanArgument = Annotated[
    Path | None,
    typer.Argument(help="The plan to review (default: plan.json here).", show_default=False),
]
PortOption = Annotated[
    int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")
]
HostOption = Annotated[
    str,
    typer.Option("--host", help="Address to bind; other than loopback only with --token."),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", help="Session secret (default: a random one, printed in the URL)."),
]
CtOption = Annotated[
    Path | None, typer.Option("--ct", help="The plan's CT, if it moved since planning.")
]
TrackerOption = Annotated[
    str | None,
    typer.Option("--tracker", metavar="HOST:PORT", help="Follow this tracker live (OpenIGTLink)."),
]
TrackerToCtOption = Annotated[
    str | None,
    typer.Option(
        "--tracker-to-ct",
        help="Registration: a JSON 4x4 matrix or a file holding tracker_to_ct (as navigate guide).",
    ),
]
RegistrationOption = Annotated[
    str | None, typer.Option("--registration", help="Registration of the plan to use (id or name).")
]
TipOption = Annotated[
    float | None, typer.Option("--tip-offset-mm", help="Needle tip along the sensor's +Z, mm.")
]
MotionOption = Annotated[
    Path | None, typer.Option("--motion", help="Breathing model (navigate simulate --write-model).")
]
GateOption = Annotated[
    str, typer.Option("--gate-window", metavar="LOW,HIGH", help="Gating window with --motion.")
]


def serve(
    plan_path: PlanArgument = None,
    port: PortOption = 8080,
    host: HostOption = "127.0.0.1",
    token: TokenOption = None,
    ct: CtOption = None,
    tracker: TrackerOption = None,
    tracker_to_ct: TrackerToCtOption = None,
    registration: RegistrationOption = None,
    tip_offset_mm: TipOption = None,
    motion: MotionOption = None,
    gate_window: GateOption = "0,0.25",
) -> None:
    """The browser workstation: review and adjust a plan, follow the needle live.

    Serves the plan's CT (window presets), masks, lesion, trajectories, ablation zones,
    seeds and isodoses in axial, coronal, sagittal and 3-D views. Click an entry or a target
    to re-score the path, choose within the Pareto set, move an applicator, approve (the plan
    is written atomically with provenance). With --tracker, the needle is followed live over
    a WebSocket as `navigate guide` follows it. Binds 127.0.0.1; open the printed URL (it
    holds the session token, required on every request).

    Example: `seldinger serve plan.json --tracker localhost:18944 --tracker-to-ct truth.json
    --tip-offset-mm 5`.
    """
    from seldinger.app.cli_navigate_live import parse_tracker_address
    from seldinger.app.web.server import check_bind, create_app, listening_socket, new_token
    from seldinger.app.web.serving import serve_forever
    from seldinger.workflow.workstation import open_workstation

    check_bind(host, token)
    session_token = token or new_token()
    plan = plan_path if plan_path is not None else Path("plan.json")
    ws = open_workstation(plan, ct)
    live = None
    if tracker is not None:
        from seldinger.workflow.navigation import GuidanceRequest, setup_guidance
        from seldinger.workflow.workstation_live import LiveRelay

        tracker_host, tracker_port = parse_tracker_address(tracker)
        request = GuidanceRequest(
            plan, registration=registration, tracker_to_ct=tracker_to_ct,
            tip_offset_mm=tip_offset_mm,
        )  # fmt: skip
        if motion is None:
            setup = setup_guidance(request)
        else:
            from seldinger.workflow.motion_guidance import setup_motion_guidance

            setup = setup_motion_guidance(request, motion, gate_window)
        print_notes(setup.notes)
        reference = "ReferenceToTracker" if motion is not None else None
        live = LiveRelay(setup, tracker_host, tracker_port, reference=reference)
        live.start()
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    out_console.print(
        f"Seldinger workstation: http://{shown}:{bound}/?token={session_token}",
        highlight=False,
        soft_wrap=True,
    )
    out_console.file.flush()
    err_console.print("Ctrl-C stops the server.", highlight=False)
    try:
        serve_forever(create_app(ws, session_token, live), sock)
    finally:
        if live is not None:
            live.stop()
