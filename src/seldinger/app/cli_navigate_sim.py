"""``seldinger navigate simulate``: an OpenIGTLink server streaming the simulated tracker.

Added to the ``navigate`` group by :mod:`seldinger.app.cli_navigate`, whose plan helpers
it imports inside the command (no import cycle at load time). ``--json`` prints JSON
lines: a ``start`` and an ``end`` object, one per line.
"""

from __future__ import annotations

import contextlib
import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from seldinger.app._cli_common import ForceOption, JsonOption, _err, _out
from seldinger.app.cli_navigate_live import _DEFAULT_PORT, _bad_input, _emit

__all__ = ["CONVENTIONS", "SimMotion", "replay_log", "simulate"]

#: Frame conventions, printed by ``simulate``.
CONVENTIONS = (
    "Matrices are 4x4, row-major, mm; a_to_b maps points from frame a into frame b "
    "(ToolToTracker: tool sensor -> tracker). CT frame: DICOM patient LPS mm. Tool frame: "
    "+Z along the shaft toward the tip, the tip at (0, 0, tip_offset_mm); "
    "tool_tip_to_tool has its origin at the tip and +Z the direction of insertion (PLUS)."
)


class SimMotion(StrEnum):
    """What the simulated needle does."""

    insertion = "insertion"
    pivot = "pivot"


def simulate(
    plan_path: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Plan with trajectories (`seldinger plan trajectory`): the needle follows one "
            "of them. Needed for --motion insertion; with --motion pivot the tip rests on its "
            "target (default: the CT origin).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            help="TCP port to serve OpenIGTLink on (Slicer and PLUS use 18944); 0 picks a free "
            "one, printed at start.",
        ),
    ] = _DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Interface to listen on: 127.0.0.1 (this machine) or 0.0.0.0 (all)."
        ),
    ] = "127.0.0.1",
    hz: Annotated[
        float, typer.Option("--hz", min=0.1, max=1000.0, help="Frame rate, Hz (EM: 40-250).")
    ] = 40.0,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, help="Seed of noise and breathing (same seed, same run)."),
    ] = 0,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            min=0.0,
            help="Stop after this long (default: until Ctrl-C).",
            show_default=False,
        ),
    ] = None,
    noise_mm: Annotated[
        float,
        typer.Option("--noise-mm", min=0.0, help="Position noise of each pose, 3-D RMS, mm."),
    ] = 0.5,
    noise_deg: Annotated[
        float,
        typer.Option("--noise-deg", min=0.0, help="Orientation noise of each pose, RMS, degrees."),
    ] = 0.3,
    breathing: Annotated[
        bool,
        typer.Option(
            "--breathing/--no-breathing",
            help="Move chest, reference sensor, needle and target with breathing (Lujan 1999).",
        ),
    ] = True,
    trajectory: Annotated[
        int,
        typer.Option("--trajectory", min=1, metavar="RANK", help="The plan's trajectory, by rank."),
    ] = 1,
    motion: Annotated[
        SimMotion,
        typer.Option(
            "--motion",
            help="insertion: approach the entry, pause on the skin, insert to the target at "
            "5 mm/s, hold. pivot: the tip rests in a divot while the shaft sweeps a cone "
            "(record it for `navigate pivot`).",
        ),
    ] = SimMotion.insertion,
    tip_offset_mm: Annotated[
        float,
        typer.Option("--tip-offset-mm", min=0.0, help="Needle tip along the sensor's +Z axis, mm."),
    ] = 5.0,
    angle_error_deg: Annotated[
        float,
        typer.Option("--angle-error-deg", help="Deliberate tilt of the inserted path, degrees."),
    ] = 0.0,
    lateral_error_mm: Annotated[
        float,
        typer.Option("--lateral-error-mm", help="Deliberate shift of the skin entry, mm."),
    ] = 0.0,
    tdata: Annotated[
        bool,
        typer.Option("--tdata", help="Send one TDATA per frame instead of two TRANSFORMs."),
    ] = False,
    wait_client: Annotated[
        bool,
        typer.Option(
            "--wait-client",
            help="Start the motion when the first client connects (default: at once, streaming "
            "to whoever is connected).",
        ),
    ] = False,
    truth_out: Annotated[
        Path | None,
        typer.Option(
            "--truth-out",
            help="Write the start information (ground truth) as JSON here; `navigate guide "
            "--tracker-to-ct FILE` reads its tracker_to_ct.",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Serve a simulated EM tracker over OpenIGTLink: a needle inserted along a plan's path.

    Streams ToolToTracker (the needle sensor) and ReferenceToTracker (a reference sensor on
    the chest) as TRANSFORM messages at --hz, in real time, with Aurora-like noise and
    breathing; every client gets a STATUS OK when it connects. Prints the ground truth first
    (ct_to_tracker and its inverse tracker_to_ct, reference_to_ct, the tip offset and the
    frame conventions) so that guidance can be registered and checked; with --json that is
    one JSON line (type start), and a summary line (type end) follows at the end.

    Example: `seldinger navigate simulate --plan plan.json --port 18944 --truth-out
    truth.json` (then `seldinger navigate guide --plan plan.json --tracker localhost:18944
    --tracker-to-ct truth.json --tip-offset-mm 5`).
    """
    import numpy as np

    from seldinger._files import atomic_path, check_overwrite
    from seldinger.app.cli_navigate import _load_plan, _plan_trajectory
    from seldinger.navigation.calibration import tool_tip_to_tool
    from seldinger.navigation.igtl import IgtlServer
    from seldinger.navigation.motion import BreathingModel, NeedleInsertion, PivotMotion
    from seldinger.navigation.simulate import NoiseModel, TrackerSimConfig, TrackerSimulator
    from seldinger.navigation.transforms import invert_rigid

    if truth_out is not None:
        check_overwrite(truth_out, force)
    info: dict[str, Any] = {"type": "start", "motion": motion.value}
    anchor = np.zeros(3)
    if plan_path is not None:
        plan = _load_plan(plan_path)
        chosen = _plan_trajectory(plan, plan_path, trajectory)
        entry, anchor = np.asarray(chosen["entry_lps_mm"]), np.asarray(chosen["target_lps_mm"])
        info |= {"plan": str(plan_path), "trajectory": trajectory}
    elif motion is SimMotion.insertion:
        raise typer.BadParameter(
            "--motion insertion follows a planned trajectory; give --plan PLAN (or use "
            "--motion pivot).",
            param_hint="--plan",
        )
    path: NeedleInsertion | PivotMotion
    if motion is SimMotion.insertion:
        path = NeedleInsertion(
            entry, anchor, angle_error_deg=angle_error_deg, lateral_error_mm=lateral_error_mm
        )
        info |= {"entry_lps_mm": entry.tolist(), "target_lps_mm": anchor.tolist()}
        info |= {"angle_error_deg": angle_error_deg, "lateral_error_mm": lateral_error_mm}
    else:
        path = PivotMotion(anchor)
        info["pivot_lps_mm"] = anchor.tolist()
    sim = TrackerSimulator(
        TrackerSimConfig(
            path,
            rate_hz=hz,
            tip_offset_mm=tip_offset_mm,
            noise=NoiseModel(noise_mm, noise_deg),
            breathing=BreathingModel() if breathing else None,
        ),
        rng=seed,
    )
    config = sim.config
    info |= {
        "motion_duration_s": path.duration_s if motion is SimMotion.insertion else None,
        "rate_hz": hz,
        "seed": seed,
        "seconds": seconds,
        "messages": "TDATA" if tdata else "TRANSFORM",
        "tool": config.tool_name,
        "reference": config.reference_name,
        "tip_offset_mm": tip_offset_mm,
        "tool_tip_to_tool": tool_tip_to_tool([0.0, 0.0, tip_offset_mm], [0.0, 0.0, 1.0]).tolist(),
        "ct_to_tracker": sim.ct_to_tracker.tolist(),
        "tracker_to_ct": invert_rigid(sim.ct_to_tracker).tolist(),
        "reference_to_ct": sim.reference_to_ct.tolist(),
        "noise": {"translation_rms_mm": noise_mm, "rotation_rms_deg": noise_deg},
        "breathing": breathing,
        "conventions": CONVENTIONS,
    }
    with IgtlServer(host, port) as server:
        info |= {"host": host, "port": server.port}
        if truth_out is not None:
            with atomic_path(truth_out, force=force) as tmp:
                tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if as_json:
            _emit(info)
        else:
            _print_sim_start(info, truth_out)
        summary = _stream(server, sim, seconds, tdata, wait_client, as_json)
    if as_json:
        _emit({"type": "end", **summary})
    else:
        _out.print(
            f"sent {summary['frames']} frames ({summary['messages']} messages) to "
            f"{summary['clients']} client(s) in {summary['seconds']:.1f} s"
            + (" (interrupted)" if summary["interrupted"] else ""),
            highlight=False,
        )


def _print_sim_start(info: dict[str, Any], truth_out: Path | None) -> None:
    from rich.table import Table

    from seldinger.app.cli_navigate import _matrix_lines

    table = Table(title=f"Simulated tracker on {info['host']}:{info['port']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("motion", "entry_lps_mm", "target_lps_mm", "pivot_lps_mm", "rate_hz", "seed"):
        if key in info:
            table.add_row(key, str(info[key]))
    table.add_row("tools", f"{info['tool']}, {info['reference']} ({info['messages']})")
    table.add_row("tip_offset_mm", f"{info['tip_offset_mm']:g} (tool +Z)")
    for key in ("tracker_to_ct", "reference_to_ct"):
        table.add_row(key, _matrix_lines(info[key]))
    _out.print(table)
    _out.print(CONVENTIONS, highlight=False)
    if truth_out is not None:
        _out.print(f"wrote {truth_out}", highlight=False)
    _out.print("streaming; Ctrl-C stops", highlight=False)


def _stream(
    server: Any, sim: Any, seconds: float | None, tdata: bool, wait_client: bool, quiet: bool
) -> dict[str, Any]:
    """Send the simulator's frames in real time; greet each new client with STATUS OK."""
    from seldinger.navigation.igtl import (
        StatusMessage,
        TrackingDataMessage,
        TrackingElement,
        TransformMessage,
    )

    frames = messages = 0
    greeted: set[str] = set()
    interrupted = False
    started = time.monotonic()
    try:
        if wait_client:
            if not quiet:
                _err.print(f"waiting for a client on port {server.port} …", highlight=False)
            while not server.clients:
                try:
                    server.wait_for_clients(1, timeout_s=1.0)
                except TimeoutError:
                    continue
        start_mono, start_unix = time.monotonic(), time.time()
        for frame in sim.frames(seconds):
            delay = start_mono + frame.index / sim.config.rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for peer in server.clients:
                if peer not in greeted:
                    greeted.add(peer)
                    hello = StatusMessage(device_name="Tracker", status_string="simulated tracker")
                    with contextlib.suppress(KeyError):  # gone again
                        server.send(hello, peer=peer)
            stamp = start_unix + frame.timestamp_s
            if tdata:
                elements = [TrackingElement(n, m) for n, m in frame.transforms.items()]
                server.send(
                    TrackingDataMessage(elements=elements, device_name="Tracker", timestamp_s=stamp)
                )
                messages += 1
            else:
                for name, matrix in frame.transforms.items():
                    server.send(
                        TransformMessage(matrix=matrix, device_name=name, timestamp_s=stamp)
                    )
                    messages += 1
            frames += 1
    except KeyboardInterrupt:
        interrupted = True
    return {
        "frames": frames,
        "messages": messages,
        "clients": len(greeted),
        "seconds": round(time.monotonic() - started, 3),
        "interrupted": interrupted,
    }


# in the order of a session: simulate (or a real tracker), record, calibrate, register, guide


def replay_log(
    log: Annotated[
        Path,
        typer.Argument(help="Session log (JSON lines) from `navigate record`.", show_default=False),
    ],
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="TCP port to serve on; 0 picks a free one."),
    ] = _DEFAULT_PORT,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (127.0.0.1 or 0.0.0.0).")
    ] = "127.0.0.1",
    speed: Annotated[
        float,
        typer.Option(
            "--speed", min=0.0, help="1 real time, 2 twice as fast; 0 as fast as possible."
        ),
    ] = 1.0,
    keep_timestamps: Annotated[
        bool,
        typer.Option(
            "--keep-timestamps/--restamp",
            help="Send the logged message timestamps, or stamp each message now (default: a "
            "live-looking stream for guidance and latency).",
        ),
    ] = False,
    wait_client: Annotated[
        bool, typer.Option("--wait-client", help="Start only once a client has connected.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Serve a recorded tracker session again over OpenIGTLink, with its original timing.

    Every TRANSFORM, POSITION, TDATA, STATUS and STRING message of the log is sent to all
    connected clients at its logged time offset (divided by --speed); other types are
    logged without their bodies and are skipped (counted). Use it to rerun `navigate guide`
    on a recorded procedure, or to test a client.

    Example: `seldinger navigate replay session.jsonl --port 18944 --speed 1`.
    """
    from seldinger.navigation.igtl import IgtlServer
    from seldinger.navigation.igtl.records import record_to_message
    from seldinger.navigation.recording import SessionLogError, read_session_log, replay

    try:
        session = read_session_log(log)
    except (OSError, SessionLogError) as err:
        _bad_input(f"cannot replay {log}: {' '.join(str(err).split())}")
    sent = skipped = 0
    interrupted = False
    with IgtlServer(host=host, port=port) as server:
        info = {"log": str(log), "host": host, "port": server.port, "records": len(session.records)}
        if as_json:
            _emit({"type": "start", **info})
        else:
            _out.print(
                f"replaying {len(session.records)} records of {log} on {host}:{server.port}; "
                "Ctrl-C stops",
                highlight=False,
            )
        started = time.monotonic()
        try:
            while wait_client and not server.clients:
                with contextlib.suppress(TimeoutError):
                    server.wait_for_clients(1, timeout_s=1.0)
            for item in replay(session.records, speed=speed or None):
                message = record_to_message(item.record, None if keep_timestamps else time.time())
                if message is None:
                    skipped += 1
                    continue
                server.send(message)
                sent += 1
        except KeyboardInterrupt:
            interrupted = True
        summary = {
            "sent": sent,
            "skipped": skipped,
            "clients": len(server.clients),
            "seconds": round(time.monotonic() - started, 3),
            "interrupted": interrupted,
        }
    if as_json:
        _emit({"type": "end", **summary})
    else:
        _out.print(
            f"sent {sent} messages ({skipped} skipped) to {summary['clients']} client(s) in "
            f"{summary['seconds']:.1f} s",
            highlight=False,
        )
