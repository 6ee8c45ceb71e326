"""The ``navigate`` commands that talk OpenIGTLink: simulate, replay, record, guide.

``--json`` prints JSON lines (one compact object per line, flushed as written, each with a
``type``: ``start``, ``update``, ``stale``, ``end``). Ctrl-C ends a command normally (its
summary is still printed, exit status 0).
"""

from __future__ import annotations

import json
import re
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from seldinger.app.common import (
    STATE,
    ForceOption,
    JsonOption,
    err_console,
    out_console,
    print_json,
    print_notes,
)
from seldinger.app.guide_display import GuideDisplay, print_simulation_start

__all__ = ["guide", "parse_tracker_address", "record", "replay_log", "simulate"]

DEFAULT_PORT = 18944  # seldinger.navigation.igtl.DEFAULT_PORT (not imported: --help stays fast)


class SimMotion(StrEnum):
    """What the simulated needle does."""

    insertion = "insertion"
    pivot = "pivot"


def parse_tracker_address(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` (port 18944) or ``PORT``."""
    value = text.strip()
    match = re.fullmatch(
        r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<host>[^:\s]*)(?::(?P<port>\d+))?", value
    )
    if value.isdigit():
        host, port = "127.0.0.1", int(value)
    elif match and (match["v6"] or match["host"]):
        host = match["v6"] or match["host"]
        port = int(match["p6"] or match["port"] or DEFAULT_PORT)
    else:
        host, port = "", -1
    if not host or not 0 < port < 65536:
        raise typer.BadParameter(
            f"expected HOST:PORT (e.g. localhost:18944 or [::1]:18944) or a port; got {text!r}.",
            param_hint="--tracker",
        )
    return host, port


TrackerOption = Annotated[
    str,
    typer.Option(
        "--tracker",
        metavar="HOST:PORT",
        help="OpenIGTLink server to connect to: HOST:PORT (localhost:18944, [::1]:18944) or a port on this machine.",
        show_default=False,
    ),
]
ConnectTimeoutOption = Annotated[
    float, typer.Option("--connect-timeout-s", min=0.1, help="How long to try to connect, seconds.")
]
SecondsOption = Annotated[
    float | None,
    typer.Option(
        "--seconds",
        min=0.0,
        help="Stop after this long (default: until Ctrl-C or the peer hangs up).",
        show_default=False,
    ),
]
RecordOutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Session log to write: JSON lines, one per message, flushed as received (a crash leaves every line before it).",
        show_default=False,
    ),
]
SimPlanOption = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        help="Plan with trajectories (`seldinger plan trajectory`): the needle follows one of them. Needed for --motion insertion; with --motion pivot the tip rests on its target (default: the CT origin).",
        show_default=False,
    ),
]
PortOption = Annotated[
    int,
    typer.Option(
        "--port",
        min=0,
        max=65535,
        help="TCP port to serve OpenIGTLink on (Slicer and PLUS use 18944); 0 picks a free one, printed at start.",
    ),
]
HostOption = Annotated[
    str,
    typer.Option(
        "--host", help="Interface to listen on: 127.0.0.1 (this machine) or 0.0.0.0 (all)."
    ),
]
HzOption = Annotated[
    float, typer.Option("--hz", min=0.1, max=1000.0, help="Frame rate, Hz (EM: 40-250).")
]
SeedOption = Annotated[
    int, typer.Option("--seed", min=0, help="Seed of noise and breathing (same seed, same run).")
]
NoiseMmOption = Annotated[
    float, typer.Option("--noise-mm", min=0.0, help="Position noise of each pose, 3-D RMS, mm.")
]
NoiseDegOption = Annotated[
    float,
    typer.Option("--noise-deg", min=0.0, help="Orientation noise of each pose, RMS, degrees."),
]
BreathingOption = Annotated[
    bool,
    typer.Option(
        "--breathing/--no-breathing",
        help="Move chest, reference sensor, needle and target with breathing (Lujan 1999).",
    ),
]
RankOption = Annotated[
    int, typer.Option("--trajectory", min=1, metavar="RANK", help="The plan's trajectory, by rank.")
]
MotionOption = Annotated[
    SimMotion,
    typer.Option(
        "--motion",
        help="insertion: approach the entry, pause on the skin, insert to the target at 5 mm/s, hold. pivot: the tip rests in a divot while the shaft sweeps a cone (record it for `navigate pivot`).",
    ),
]
TipOffsetOption = Annotated[
    float,
    typer.Option("--tip-offset-mm", min=0.0, help="Needle tip along the sensor's +Z axis, mm."),
]
AngleErrorOption = Annotated[
    float, typer.Option("--angle-error-deg", help="Deliberate tilt of the inserted path, degrees.")
]
LateralErrorOption = Annotated[
    float, typer.Option("--lateral-error-mm", help="Deliberate shift of the skin entry, mm.")
]
TdataOption = Annotated[
    bool, typer.Option("--tdata", help="Send one TDATA per frame instead of two TRANSFORMs.")
]
WaitClientOption = Annotated[
    bool,
    typer.Option(
        "--wait-client",
        help="Start when the first client connects (default: at once, streaming to whoever is connected).",
    ),
]
TruthOutOption = Annotated[
    Path | None,
    typer.Option(
        "--truth-out",
        help="Write the start information (ground truth) as JSON here; `navigate guide --tracker-to-ct FILE` reads its tracker_to_ct.",
        show_default=False,
    ),
]
MotionSiOption = Annotated[
    float | None,
    typer.Option(
        "--motion-si-mm",
        min=0.0,
        metavar="MM",
        help="Breathe the patient with a deforming field (issue 17) instead of --breathing: the target moves MM superior-inferior (end-expiration to end-inspiration), the needle in tissue, the skin and a chest reference sensor with it; the truth is known at every frame.",
        show_default=False,
    ),
]
MotionApOption = Annotated[
    float,
    typer.Option(
        "--motion-ap-mm", min=0.0, help="With --motion-si-mm: anterior rise of the chest wall, mm."
    ),
]
MotionPeriodOption = Annotated[
    float,
    typer.Option(
        "--motion-period-s", min=0.5, help="With --motion-si-mm: mean breathing period, s."
    ),
]
WriteModelOption = Annotated[
    Path | None,
    typer.Option(
        "--write-model",
        help="With --motion-si-mm: write the surrogate → target model fitted from a simulated 4-D CT of the same patient (JSON) for `navigate guide --motion`.",
        show_default=False,
    ),
]
LogArgument = Annotated[
    Path,
    typer.Argument(help="Session log (JSON lines) from `navigate record`.", show_default=False),
]
SpeedOption = Annotated[
    float,
    typer.Option("--speed", min=0.0, help="1 real time, 2 twice as fast; 0 as fast as possible."),
]
KeepStampsOption = Annotated[
    bool,
    typer.Option(
        "--keep-timestamps/--restamp",
        help="Send the logged message timestamps, or stamp each message now (default: a live-looking stream for guidance and latency).",
    ),
]
GuidePlanOption = Annotated[
    Path,
    typer.Option(
        "--plan",
        help="Plan with trajectories (`seldinger plan trajectory`), and the registrations and calibrations stored by `navigate register/pivot --plan`.",
        show_default=False,
    ),
]
RegistrationOption = Annotated[
    str | None,
    typer.Option(
        "--registration",
        metavar="ID|latest",
        help="The plan's registration to use, by id (registration-2) or name; default: the latest, unless --tracker-to-ct or --reference-to-ct is given.",
        show_default=False,
    ),
]
TrackerToCtOption = Annotated[
    str | None,
    typer.Option(
        "--tracker-to-ct",
        metavar="MATRIX",
        help="Registration as a 4x4 JSON matrix, inline ('[[1,0,0,0],…]') or a JSON file holding one (or an object with tracker_to_ct, e.g. `simulate --truth-out`).",
        show_default=False,
    ),
]
ReferenceToCtOption = Annotated[
    str | None,
    typer.Option(
        "--reference-to-ct",
        metavar="MATRIX",
        help="Registration of the patient reference sensor (4x4 JSON, inline or a file): the needle is then followed relative to the --reference tool.",
        show_default=False,
    ),
]
GuideTipOption = Annotated[
    float | None,
    typer.Option(
        "--tip-offset-mm",
        min=0.0,
        help="Needle tip along the tool sensor's +Z axis, mm (instead of a stored pivot calibration).",
        show_default=False,
    ),
]
CalibrationOption = Annotated[
    str | None,
    typer.Option(
        "--calibration",
        metavar="ID|latest",
        help="The plan's tool calibration, by id or name; default: the latest of --tool.",
        show_default=False,
    ),
]
GuideToolOption = Annotated[
    str, typer.Option("--tool", help="Device (or TDATA tool) name of the needle sensor.")
]
GuideReferenceOption = Annotated[
    str,
    typer.Option(
        "--reference",
        help="Device name of the patient reference sensor (used with a reference registration).",
    ),
]
CriticalOption = Annotated[
    str,
    typer.Option(
        "--critical", help="Structures of the plan to keep away from (comma-separated), or none."
    ),
]
BreachOption = Annotated[
    float, typer.Option("--breach-mm", min=0.0, help="Breach warning below this distance, mm.")
]
GuideMotionOption = Annotated[
    Path | None,
    typer.Option(
        "--motion",
        metavar="MODEL",
        help="Follow the breathing target: a surrogate → target model (JSON, e.g. `navigate simulate --write-model`) predicts it from the --reference sensor in every frame; shows the breathing trace, phase and gating light. Needs a tracker-to-CT registration.",
        show_default=False,
    ),
]
GateWindowOption = Annotated[
    str,
    typer.Option(
        "--gate-window",
        metavar="LOW,HIGH",
        help="With --motion: the gating light is on while the breathing lies in this window, fractions of the amplitude (0 end-expiration, 1 end-inspiration).",
    ),
]
StaleOption = Annotated[
    float,
    typer.Option(
        "--stale-s", min=0.01, help="Warn (STALE) after this long without a needle pose, s."
    ),
]


def simulate(
    plan_path: SimPlanOption = None,
    port: PortOption = DEFAULT_PORT,
    host: HostOption = "127.0.0.1",
    hz: HzOption = 40.0,
    seed: SeedOption = 0,
    seconds: SecondsOption = None,
    noise_mm: NoiseMmOption = 0.5,
    noise_deg: NoiseDegOption = 0.3,
    breathing: BreathingOption = True,
    trajectory: RankOption = 1,
    motion: MotionOption = SimMotion.insertion,
    tip_offset_mm: TipOffsetOption = 5.0,
    angle_error_deg: AngleErrorOption = 0.0,
    lateral_error_mm: LateralErrorOption = 0.0,
    tdata: TdataOption = False,
    wait_client: WaitClientOption = False,
    truth_out: TruthOutOption = None,
    motion_si_mm: MotionSiOption = None,
    motion_ap_mm: MotionApOption = 5.0,
    motion_period_s: MotionPeriodOption = 4.0,
    write_model: WriteModelOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Serve a simulated EM tracker over OpenIGTLink: a needle inserted along a plan's path.

    Streams the needle sensor (ToolToTracker) and a patient reference sensor (on the
    chest) as TRANSFORM messages at --hz, in real time, with Aurora-like noise and
    breathing; every client gets a STATUS OK when it connects. Prints the ground truth first
    (ct_to_tracker and its inverse tracker_to_ct, reference_to_ct, the tip offset and the
    frame conventions) so that guidance can be registered and checked; with --json that is
    one JSON line (type start), and a summary line (type end) follows at the end. With
    --motion-si-mm the patient breathes with a deforming field; --write-model saves the
    model that `navigate guide --motion` follows the target with.

    Example: `seldinger navigate simulate --plan plan.json --port 18944 --truth-out
    truth.json` (then `seldinger navigate guide --plan plan.json --tracker localhost:18944
    --tracker-to-ct truth.json --tip-offset-mm 5`).
    """
    from seldinger.files import atomic_path, check_overwrite
    from seldinger.navigation.igtl import IgtlServer, LinkOptions
    from seldinger.navigation.live import stream_simulation
    from seldinger.workflow.motion_simulation import BreathingFieldRequest, tracker_simulation
    from seldinger.workflow.simulation import SimulationRequest

    if truth_out is not None:
        check_overwrite(truth_out, force)
    options = (plan_path, trajectory, motion.value, hz, seed, seconds, noise_mm, noise_deg)
    more = (breathing, tip_offset_mm, angle_error_deg, lateral_error_mm, tdata)
    field = BreathingFieldRequest(motion_si_mm, motion_ap_mm, motion_period_s,
                                  write_model=write_model, force=force)  # fmt: skip
    sim, info = tracker_simulation(SimulationRequest(*options, *more), field)
    # A streaming server reads what clients send and keeps none of it (defence in depth:
    # the loop empties the queue at every frame too).
    with IgtlServer(host, port, options=LinkOptions(keep_incoming=False)) as server:
        info |= {"host": host, "port": server.port}
        if truth_out is not None:
            with atomic_path(truth_out, force=force) as tmp:
                tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        print_simulation_start(info, truth_out, as_json)
        waiting = f"waiting for a client on port {server.port} …"
        on_wait = None if as_json else lambda: err_console.print(waiting)
        summary = stream_simulation(
            server, sim, seconds=seconds, tdata=tdata, wait_client=wait_client, on_wait=on_wait
        )
    if as_json:
        print_json({"type": "end", **summary.to_dict()}, line=True)
        return
    out_console.print(
        f"sent {summary.frames} frames ({summary.messages} messages) to {summary.clients} "
        f"client(s) in {summary.seconds:.1f} s" + (" (interrupted)" if summary.interrupted else ""),
        highlight=False,
    )


def replay_log(
    log: LogArgument,
    port: PortOption = DEFAULT_PORT,
    host: HostOption = "127.0.0.1",
    speed: SpeedOption = 1.0,
    keep_timestamps: KeepStampsOption = False,
    wait_client: WaitClientOption = False,
    as_json: JsonOption = False,
) -> None:
    """Serve a recorded tracker session again over OpenIGTLink, with its original timing.

    Every TRANSFORM, POSITION, TDATA, STATUS and STRING message of the log is sent to all
    connected clients at its logged time offset (divided by --speed); other types are
    logged without their bodies and are skipped (counted). Use it to rerun `navigate guide`
    on a recorded procedure, or to test a client.

    Example: `seldinger navigate replay session.jsonl --port 18944 --speed 1`.
    """
    from seldinger.navigation.igtl import IgtlServer, LinkOptions
    from seldinger.navigation.live import replay_session
    from seldinger.navigation.recording import SessionLogError, read_session_log

    try:
        session = read_session_log(log)
    except SessionLogError as err:
        raise SessionLogError(f"cannot replay: {err}") from err  # the error names the file
    with IgtlServer(host=host, port=port, options=LinkOptions(keep_incoming=False)) as server:
        info = {"log": str(log), "host": host, "port": server.port, "records": len(session.records)}
        if as_json:
            print_json({"type": "start", **info}, line=True)
        else:
            out_console.print(
                f"replaying {len(session.records)} records of {log} on "
                f"{host}:{server.port}; Ctrl-C stops",
                highlight=False,
            )
        summary = replay_session(
            server,
            session.records,
            speed=speed or None,
            keep_timestamps=keep_timestamps,
            wait_client=wait_client,
        )
    done = {**summary.to_dict(), "sent": summary.messages}
    if as_json:
        print_json({"type": "end", **done}, line=True)
        return
    out_console.print(
        f"sent {summary.messages} messages ({summary.skipped} skipped) to "
        f"{summary.clients} client(s) in {summary.seconds:.1f} s",
        highlight=False,
    )


def record(
    tracker: TrackerOption,
    out: RecordOutOption,
    seconds: SecondsOption = None,
    connect_timeout_s: ConnectTimeoutOption = 5.0,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Record every message from an OpenIGTLink server into a session log (JSON lines).

    Line 1 is a SESSION header; then one line per message: type, device, timestamp_s (the
    sender's), received_s (local), and matrix (TRANSFORM, 4x4 mm), tools (TDATA),
    position_mm + quaternion (POSITION, x y z w), code/message (STATUS) or text (STRING).
    A message that failed its CRC check is logged as the STATUS error made for it. Prints
    a summary: messages per type and device, CRC and decode errors, messages dropped.

    Example: `seldinger navigate record --tracker localhost:18944 --seconds 20 --out
    pivot.jsonl`.
    """
    from rich.table import Table

    from seldinger.files import check_overwrite
    from seldinger.navigation.live import record_session

    host, port = parse_tracker_address(tracker)
    check_overwrite(out, force)
    quiet = as_json or STATE.quiet or not err_console.is_terminal
    status = None if quiet else err_console.status(f"recording {host}:{port} into {out} …")
    if status is not None:
        status.start()
    try:
        summary = record_session(
            host,
            port,
            out,
            seconds=seconds,
            connect_timeout_s=connect_timeout_s,
            on_progress=None
            if status is None
            else lambda n: status.update(f"recording into {out}: {n} messages"),
        )
    finally:
        if status is not None:
            status.stop()
    result = summary.to_dict()
    if as_json:
        print_json(result)
        return
    print_notes(result["notes"])
    table = Table(title=f"Recorded {tracker} → {out} ({result['seconds']:.1f} s)")
    table.add_column("type")
    table.add_column("messages", justify="right")
    for name, count in result["by_type"].items():
        table.add_row(name, str(count))
    out_console.print(table)
    devices = ", ".join(f"{d} ({n})" for d, n in result["by_device"].items()) or "none"
    out_console.print(
        f"devices: {devices}; CRC errors {result['crc_errors']}, decode errors "
        f"{result['decode_errors']}, dropped {result['dropped']}",
        highlight=False,
    )
    out_console.print(f"wrote {out} ({result['written']} messages)", highlight=False)


def guide(
    plan_path: GuidePlanOption,
    tracker: TrackerOption,
    trajectory: RankOption = 1,
    registration: RegistrationOption = None,
    tracker_to_ct: TrackerToCtOption = None,
    reference_to_ct: ReferenceToCtOption = None,
    tip_offset_mm: GuideTipOption = None,
    calibration: CalibrationOption = None,
    tool: GuideToolOption = "ToolToTracker",
    reference: GuideReferenceOption = "ReferenceToTracker",
    critical: CriticalOption = "bones,vessels,airways",
    breach_mm: BreachOption = 5.0,
    stale_s: StaleOption = 0.5,
    motion: GuideMotionOption = None,
    gate_window: GateWindowOption = "0,0.25",
    seconds: SecondsOption = None,
    connect_timeout_s: ConnectTimeoutOption = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Live needle guidance along a planned trajectory, from a tracker's poses.

    For every needle pose: tip-to-target distance, lateral deviation from the planned line,
    angle error, remaining depth, progress (0 entry, 1 target), and the distance to the
    nearest critical structure of the plan (bones, vessels, airways: BREACH below
    --breach-mm). STALE when no pose came for --stale-s. A live table, or with --json one
    JSON line per update (type update), per stale episode (type stale), and at start and end.

    The registration (tracker → CT, or reference → CT) comes from the plan (latest, or
    --registration) or from --tracker-to-ct / --reference-to-ct; the tip from the plan's
    pivot calibration of --tool or --tip-offset-mm. With --motion MODEL, the target (and
    the errors) follow the breathing, predicted from the --reference sensor.

    Example: `seldinger navigate guide --plan plan.json --tracker localhost:18944`.
    """
    from seldinger.navigation.guide_session import GuidanceSession
    from seldinger.navigation.igtl import IgtlClient
    from seldinger.navigation.live import follow_guidance
    from seldinger.workflow.motion_guidance import setup_motion_guidance
    from seldinger.workflow.navigation import GuidanceRequest, setup_guidance

    host, port = parse_tracker_address(tracker)
    names = [] if critical.strip().lower() == "none" else critical.split(",")
    request = GuidanceRequest(
        plan_path, trajectory, registration, tracker_to_ct, reference_to_ct, tip_offset_mm,
        calibration, tool, reference, tuple(n.strip() for n in names if n.strip()),
        breach_mm, stale_s,
    )  # fmt: skip
    setup = (setup_guidance(request) if motion is None
             else setup_motion_guidance(request, motion, gate_window))  # fmt: skip
    display = GuideDisplay({"type": "start", "tracker": f"{host}:{port}", **setup.info},
                           setup.guide, as_json)  # fmt: skip
    started = time.monotonic()
    with IgtlClient(host, port, connect_timeout_s=connect_timeout_s) as client:
        session = GuidanceSession(
            setup.guide, tool, reference if setup.info["reference"] else None, display
        )
        display.start(session)
        with display.live():
            ended_by = follow_guidance(client, session, seconds=seconds, on_idle=display.refresh)
    display.end(session, round(time.monotonic() - started, 3), ended_by)
