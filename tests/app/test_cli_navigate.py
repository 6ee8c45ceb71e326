"""`seldinger navigate`: register, pivot, record, simulate and guide, over loopback.

The live commands run against in-process OpenIGTLink servers and clients on free ports
(port 0); `simulate` runs in a subprocess. Ground truth comes from the library's tracker
simulator. The plan is the synthetic chest of tests/app/conftest.py.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from seldinger.app.cli import main
from seldinger.app.cli_navigate_live import DEFAULT_PORT as CLI_DEFAULT_PORT
from seldinger.app.cli_navigate_live import parse_tracker_address
from seldinger.errors import ExitCode
from seldinger.navigation.igtl import (
    DEFAULT_PORT,
    Header,
    IgtlClient,
    IgtlServer,
    LinkClosedError,
    PositionMessage,
    RawMessage,
    Received,
    StatusCode,
    StatusMessage,
    StringMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
)
from seldinger.navigation.igtl.header import CrcMismatchError, timestamp_from_seconds
from seldinger.navigation.igtl.records import received_to_record
from seldinger.navigation.motion import NeedleInsertion, PivotMotion
from seldinger.navigation.recording import (
    GenericRecord,
    StatusRecord,
    frame_to_transform_records,
    read_session_log,
    write_session_log,
)
from seldinger.navigation.simulate import NoiseModel, TrackerSimConfig, TrackerSimulator
from seldinger.navigation.transforms import invert_rigid, rigid_matrix
from seldinger.plan import Plan

#: Fiducials in the CT (LPS mm): spread in 3-D around the synthetic chest's lesion.
FIDUCIALS_LPS_MM = np.array(
    [[-40.0, -30.0, -20.0], [40.0, -30.0, 0.0], [0.0, 40.0, 20.0], [30.0, 30.0, -25.0],
     [-30.0, 20.0, 25.0], [10.0, -40.0, 15.0]]
)  # fmt: skip
START_S = 1000.0  # simulated frame 0's timestamp (frame i at START_S + i / rate)


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Exit status, stdout, and stderr with Rich's box borders and line breaks flattened."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


def _write_points(
    path: Path, points: Sequence[Sequence[float]], header: str = "x_mm,y_mm,z_mm"
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header.split(","))
        writer.writerows([[f"{v:.6f}" for v in p] for p in points])
    return path


def _pose(rotvec_deg: Sequence[float], translation_mm: Sequence[float]) -> np.ndarray:
    rotation = Rotation.from_rotvec(np.radians(rotvec_deg)).as_matrix()
    return rigid_matrix(rotation, translation_mm)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def _lines(stdout: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@contextlib.contextmanager
def _serving(messages: Sequence[object]) -> Iterator[tuple[IgtlServer, threading.Thread]]:
    """A server that sends ``messages`` to its first client, then keeps the link open."""
    with IgtlServer(port=0) as server:
        failures: list[BaseException] = []

        def send_all() -> None:
            try:
                server.wait_for_clients(1, timeout_s=10.0)
                for message in messages:
                    server.send(message)  # type: ignore[arg-type]
            except BaseException as err:  # reported by the test, not lost in the thread
                failures.append(err)

        thread = threading.Thread(target=send_all, daemon=True)
        thread.start()
        try:
            yield server, thread
        finally:
            server.close()
            thread.join(10.0)
        assert not failures, failures


def _pivot_log(path: Path, tip_offset_mm: float, noise: NoiseModel, seconds: float = 8.0) -> Path:
    sim = TrackerSimulator(
        TrackerSimConfig(
            PivotMotion([10.0, -20.0, 30.0]), tip_offset_mm=tip_offset_mm, noise=noise
        ),
        rng=20240611,
    )
    records = [r for frame in sim.frames(seconds) for r in frame_to_transform_records(frame)]
    write_session_log(path, records)
    return path


# --- register --------------------------------------------------------------------------


def test_register_recovers_a_known_transform(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ct_to_tracker = _pose([20.0, -35.0, 110.0], [5.0, 12.0, 250.0])
    fixed = _write_points(tmp_path / "ct.csv", FIDUCIALS_LPS_MM)
    moving = _write_points(tmp_path / "tracker.csv", _apply(ct_to_tracker, FIDUCIALS_LPS_MM))
    code, out, err = _run(
        capsys, "navigate", "register", "--fixed", fixed, "--moving", moving,
        "--target-lps-mm", "5,0,0", "--fle-mm", "0.5", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    np.testing.assert_allclose(result["moving_to_fixed"], invert_rigid(ct_to_tracker), atol=1e-5)
    assert result["fre_mm"] < 1e-3 and len(result["residuals_mm"]) == len(FIDUCIALS_LPS_MM)
    assert 0.0 < result["predicted_tre_mm"] < 0.5  # FLE 0.5 mm over 6 fiducials around it
    assert result["moving_frame"] == "tracker" and "id" not in result

    code, out, err = _run(capsys, "navigate", "register", "--fixed", fixed, "--moving", moving)
    assert code == 0, err
    assert "tracker_to_ct" in out and "FRE" in out


@pytest.mark.parametrize(
    ("fixed_rows", "header", "message"),
    [
        (FIDUCIALS_LPS_MM[:2], "x_mm,y_mm,z_mm", r"2 point pair\(s\).*at least 3"),
        (
            [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [20.0, 0.0, 0.0], [35.0, 0.0, 0.0]],
            None,
            "collinear",
        ),
        (FIDUCIALS_LPS_MM, "x_mm,y_mm,zz", r"ct\.csv, line 1: missing column\(s\) z_mm"),
        (FIDUCIALS_LPS_MM, "x_mm,y_mm,z_mm,bad", r"ct\.csv, line 3, column y_mm: .*'oops'"),
    ],
)
def test_register_refuses_unusable_points(  # type: ignore[no-untyped-def]
    capsys, tmp_path: Path, fixed_rows, header, message
) -> None:
    fixed = _write_points(tmp_path / "ct.csv", fixed_rows, header or "x_mm,y_mm,z_mm")
    if header and header.endswith(",bad"):  # a text value in line 3, column y_mm
        text = fixed.read_text().splitlines()
        cells = text[2].split(",")
        text[2] = ",".join([cells[0], "oops", *cells[2:]])
        fixed.write_text("\n".join(text) + "\n")
    moving = _write_points(tmp_path / "tracker.csv", np.asarray(fixed_rows) + 1.0)
    code, out, err = _run(capsys, "navigate", "register", "--fixed", fixed, "--moving", moving)
    assert code == ExitCode.BAD_INPUT and out == ""
    assert err.startswith("error:") and "Traceback" not in err
    assert re.search(message, err), err


# --- pivot -----------------------------------------------------------------------------


def test_pivot_recovers_the_tip_offset(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = _pivot_log(tmp_path / "pivot.jsonl", 120.0, NoiseModel(0.5, 0.3))
    code, out, err = _run(capsys, "navigate", "pivot", log, "--tool", "ToolToTracker", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert np.linalg.norm(np.subtract(result["tip_offset_mm"], [0.0, 0.0, 120.0])) <= 0.5
    assert result["rms_mm"] < 2.0 and result["n_used"] + len(result["rejected"]) == 320
    assert result["tool"] == "ToolToTracker" and result["n_poses"] == 320
    assert "pivot.jsonl" in result["source"]

    code, out, err = _run(
        capsys, "navigate", "pivot", log, "--tool", "ToolToTracker", "--reference",
        "ReferenceToTracker",
    )  # fmt: skip
    assert code == 0, err
    assert "tip_offset_mm" in out and "ReferenceToTracker frame" in out

    code, out, err = _run(capsys, "navigate", "pivot", log, "--tool", "Stylus")
    assert code == ExitCode.BAD_INPUT and "'Stylus'" in err and "ToolToTracker" in err


# --- record ----------------------------------------------------------------------------


def test_record_writes_every_message(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pose = _pose([0.0, 0.0, 90.0], [1.0, 2.0, 3.0])
    messages = [
        TransformMessage(matrix=pose, device_name="ToolToTracker", timestamp_s=START_S),
        TrackingDataMessage(
            elements=[TrackingElement("ToolToTracker", pose), TrackingElement("Ref", np.eye(4))],
            device_name="Tracker",
            timestamp_s=START_S + 0.025,
        ),
        PositionMessage(
            position_mm=[4.0, 5.0, 6.0],
            quaternion=[0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)],
            device_name="Probe",
            timestamp_s=START_S + 0.05,
        ),
        StatusMessage(device_name="Tracker", status_string="ready", timestamp_s=START_S + 0.06),
        StringMessage(device_name="Console", text="insert", timestamp_s=START_S + 0.07),
    ]
    out_path = tmp_path / "session.jsonl"
    with _serving(messages) as (server, thread):
        # the thread sends, then the test closes the server: the recording ends with it
        def close_when_sent() -> None:
            thread.join(10.0)
            server.close()

        closer = threading.Thread(target=close_when_sent, daemon=True)
        closer.start()
        code, out, err = _run(
            capsys, "navigate", "record", "--tracker", f"127.0.0.1:{server.port}",
            "--seconds", "20", "--out", out_path, "--json",
        )  # fmt: skip
        closer.join(10.0)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ended_by"] == "tracker" and summary["written"] == 5
    assert summary["by_type"] == {
        "POSITION": 1,
        "STATUS": 1,
        "STRING": 1,
        "TDATA": 1,
        "TRANSFORM": 1,
    }
    assert summary["crc_errors"] == summary["dropped"] == summary["not_written"] == 0

    lines = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert lines[0]["type"] == "SESSION"
    transform, tdata, position, status, text = lines[1:]
    assert transform["type"] == "TRANSFORM" and transform["device"] == "ToolToTracker"
    np.testing.assert_allclose(transform["matrix"], pose, atol=1e-6)
    assert (
        transform["timestamp_s"] == pytest.approx(START_S, abs=1e-6) and "received_s" in transform
    )
    assert [t["name"] for t in tdata["tools"]] == ["ToolToTracker", "Ref"]
    np.testing.assert_allclose(tdata["tools"][0]["matrix"], pose, atol=1e-6)
    assert position["position_mm"] == [4.0, 5.0, 6.0]
    np.testing.assert_allclose(
        position["quaternion"], [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-7
    )
    assert (status["code"], status["message"]) == (1, "ready") and text["text"] == "insert"
    assert len(read_session_log(out_path).records) == 5  # the library reads it back

    code, out, err = _run(
        capsys, "navigate", "record", "--tracker", "localhost:1", "--out", out_path
    )
    assert code == ExitCode.IO and "already exists" in err and "--force" in err
    code, out, err = _run(
        capsys, "navigate", "record", "--tracker", "nohost:port", "--out", out_path
    )
    assert code == 2 and "HOST:PORT" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:18950", ("localhost", 18950)),
        ("[::1]:18951", ("::1", 18951)),
        ("18952", ("127.0.0.1", 18952)),
        ("tracker.local", ("tracker.local", DEFAULT_PORT)),
    ],
)
def test_tracker_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_tracker_address(text) == expected
    assert CLI_DEFAULT_PORT == DEFAULT_PORT


def test_bad_and_unknown_messages_become_records() -> None:
    stamp = timestamp_from_seconds(START_S)
    bad = Received(
        StatusMessage(
            code=StatusCode.CHECKSUM_ERROR,
            error_name="CRC64 mismatch",
            status_string="CRC-64 differs",
            device_name="ToolToTracker",
            timestamp_s=START_S,
        ),
        Header(1, "TRANSFORM", "ToolToTracker", stamp, 48, 0),
        START_S + 0.01,
        5.0,
        "127.0.0.1:1",
        CrcMismatchError("CRC-64 differs"),
    )
    logged = received_to_record(bad)
    assert isinstance(logged, StatusRecord) and (logged.code, logged.device) == (9, "ToolToTracker")
    unknown = Received(
        RawMessage(message_type="SENSOR", content=b"1234", device_name="Force"),
        Header(1, "SENSOR", "Force", stamp, 4, 0),
        START_S + 0.01,
        5.0,
        "127.0.0.1:1",
    )
    generic = received_to_record(unknown)
    assert isinstance(generic, GenericRecord) and generic.message_type == "SENSOR"
    assert generic.fields == {"body_size": 4} and generic.received_s == START_S + 0.01


# --- simulate --------------------------------------------------------------------------


def _serve_and_receive(command: list[str]) -> tuple[dict, list, dict]:  # type: ignore[type-arg]
    """Run a serving command (``--port 0 --wait-client --json``) in a subprocess, receive
    everything it sends until it hangs up; its start and end JSON lines and the messages."""
    received = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        start = json.loads(proc.stdout.readline() or "{}")
        assert start.get("type") == "start", proc.stderr.read() if proc.stderr else ""
        with (
            IgtlClient(port=start["port"], connect_timeout_s=10.0) as client,
            contextlib.suppress(LinkClosedError),
        ):
            while True:
                received.append(client.receive(timeout_s=10.0))
        end = json.loads(proc.stdout.readline())
        proc.wait(timeout=10.0)
    assert proc.returncode == 0
    return start, received, end


def test_simulate_streams_the_plan_needle(case: Path) -> None:
    plan = Plan.load(case / "plan.json")
    entry, target = (
        np.array(getattr(plan.trajectories.paths[0], k)) for k in ("entry_lps_mm", "target_lps_mm")
    )  # type: ignore[union-attr]
    command = [
        sys.executable, "-m", "seldinger.app.cli", "navigate", "simulate",
        "--plan", str(case / "plan.json"), "--port", "0", "--hz", "50", "--seconds", "1",
        "--noise-mm", "0", "--noise-deg", "0", "--no-breathing", "--wait-client", "--json",
    ]  # fmt: skip
    start, received, end = _serve_and_receive(command)
    assert end["type"] == "end" and end["frames"] == 50 and end["clients"] == 1
    assert isinstance(received[0].message, StatusMessage) and received[0].message.ok
    poses = [r for r in received if isinstance(r.message, TransformMessage)]
    assert [r.device_name for r in poses[:2]] == ["ToolToTracker", "ReferenceToTracker"]
    assert len(poses) == 100
    np.testing.assert_allclose(start["entry_lps_mm"], entry)
    # frame 0: the tip is 50 mm behind the entry, on the path (approach)
    tool_to_tracker = poses[0].message.matrix  # type: ignore[attr-defined]
    tip = (
        np.asarray(start["tracker_to_ct"])
        @ tool_to_tracker
        @ [0.0, 0.0, start["tip_offset_mm"], 1.0]
    )
    direction = (target - entry) / np.linalg.norm(target - entry)
    np.testing.assert_allclose(tip[:3], entry - 50.0 * direction, atol=0.01)
    np.testing.assert_allclose(
        np.asarray(start["ct_to_tracker"]) @ start["tracker_to_ct"], np.eye(4), atol=1e-9
    )


def test_replay_serves_a_recorded_session_again(tmp_path: Path) -> None:
    from seldinger.navigation.recording import (
        GenericRecord,
        StatusRecord,
        TransformRecord,
        write_session_log,
    )

    rng = np.random.default_rng(2)
    poses = []
    for _ in range(20):
        m = np.eye(4)
        m[:3, :3] = Rotation.from_rotvec(rng.normal(0, 0.3, 3)).as_matrix()
        m[:3, 3] = rng.uniform(-100, 100, 3)
        poses.append(m)
    records = [StatusRecord("Tracker", 1000.0, code=1, subcode=0, error_name="", message="ok")]
    records += [
        TransformRecord.from_matrix("ToolToTracker", 1000.0 + 0.01 * k, m)
        for k, m in enumerate(poses)
    ]
    records.append(
        GenericRecord("Tracker", 1000.5, message_type="NDARRAY", fields={"body_size": 8})
    )
    log = tmp_path / "session.jsonl"
    write_session_log(log, records)
    command = [
        sys.executable, "-m", "seldinger.app.cli", "navigate", "replay", str(log),
        "--port", "0", "--speed", "0", "--wait-client", "--keep-timestamps", "--json",
    ]  # fmt: skip
    start, received, end = _serve_and_receive(command)
    assert start["records"] == len(records)
    assert end["type"] == "end" and end["sent"] == 21 and end["skipped"] == 1
    assert isinstance(received[0].message, StatusMessage)
    transforms = [r.message for r in received if isinstance(r.message, TransformMessage)]
    assert len(transforms) == 20
    for message, pose, record in zip(transforms, poses, records[1:21], strict=True):
        np.testing.assert_allclose(message.matrix, pose, atol=1e-4)  # float32 on the wire
        assert message.timestamp_s == pytest.approx(record.timestamp_s, abs=1e-6)


def test_replay_of_a_broken_log_is_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "broken.jsonl"
    log.write_text('{"type": "TRANSFORM", "device": "Tool"}\n')
    assert main(["navigate", "replay", str(log), "--port", "0"]) == ExitCode.BAD_INPUT
    assert "cannot replay" in capsys.readouterr().err


# --- guide -----------------------------------------------------------------------------


def test_guide_follows_the_simulated_needle(capsys, case: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    trajectory = Plan.load(plan_path).trajectories.paths[0]  # type: ignore[union-attr]
    entry, target = np.array(trajectory.entry_lps_mm), np.array(trajectory.target_lps_mm)
    sim = TrackerSimulator(
        TrackerSimConfig(
            NeedleInsertion(entry, target, insertion_speed_mm_per_s=50.0),
            rate_hz=100.0,
            noise=NoiseModel(0.0, 0.0),
            breathing=None,
            start_time_s=START_S,
        ),
        rng=7,
    )
    series = sim.simulate(4.0)  # approach, pause and insertion
    messages = [
        TransformMessage(matrix=m, device_name=name, timestamp_s=frame.timestamp_s)
        for frame in series.frames()
        for name, m in frame.transforms.items()
    ]

    # no registration yet: refused before connecting
    code, out, err = _run(capsys, "navigate", "guide", "--plan", plan_path, "--tracker", "1")
    assert (
        code == ExitCode.BAD_INPUT and "has no registration" in err and "navigate register" in err
    )

    # register (stored as registration-1) and calibrate (calibration-1) into the plan
    fixed = _write_points(tmp_path / "ct.csv", FIDUCIALS_LPS_MM)
    moving = _write_points(tmp_path / "tracker.csv", _apply(sim.ct_to_tracker, FIDUCIALS_LPS_MM))
    code, out, err = _run(
        capsys, "navigate", "register", "--fixed", fixed, "--moving", moving, "--plan", plan_path,
        "--name", "fiducials", "--json",
    )  # fmt: skip
    assert code == 0, err
    registration = json.loads(out)
    assert registration["id"] == "registration-1" and registration["predicted_tre_mm"] is not None
    np.testing.assert_allclose(registration["target_lps_mm"], target)  # the trajectory's target
    log = _pivot_log(tmp_path / "pivot.jsonl", sim.config.tip_offset_mm, NoiseModel(0.0, 0.0), 4.0)
    code, out, err = _run(
        capsys, "navigate", "pivot", log, "--tool", "ToolToTracker", "--plan", plan_path, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["id"] == "calibration-1"
    stored = Plan.load(plan_path).navigation
    assert stored is not None
    assert [e.id for e in stored.registrations] == ["registration-1"]
    assert stored.calibrations[0].tool == "ToolToTracker"
    assert stored.calibrations[0].time_utc is not None and "pivot.jsonl" in (
        stored.calibrations[0].source or ""
    )
    code, out, err = _run(
        capsys, "navigate", "register", "--fixed", fixed, "--moving", moving, "--plan", plan_path,
        "--name", "fiducials",
    )  # fmt: skip
    assert code == ExitCode.IO and "already holds a registration named 'fiducials'" in err

    # the frames arrive at once, then nothing: updates, then one stale report
    with _serving(messages) as (server, _):
        code, out, err = _run(
            capsys, "navigate", "guide", "--plan", plan_path, "--tracker",
            f"127.0.0.1:{server.port}", "--json", "--seconds", "1.5",
        )  # fmt: skip
    assert code == 0, err
    lines = _lines(out)
    start, updates = lines[0], [x for x in lines if x["type"] == "update"]
    assert start["type"] == "start" and lines[-1]["type"] == "end"
    assert start["registration"]["source"].startswith("registration-1")
    assert start["calibration"]["source"] == "calibration-1" and start["critical"] == ["bones"]
    assert any("vessels" in note for note in start["notes"])
    assert len(updates) == len(series) and lines[-1]["updates"] == len(series)
    assert [x["type"] for x in lines].count("stale") == 1 and lines[-2]["type"] == "stale"
    u = (target - entry) / np.linalg.norm(target - entry)
    for update in updates:
        i = round((update["tracker_timestamp_s"] - START_S) * 100.0)
        tip = series.truth.tip_lps_mm[i]
        lateral = np.linalg.norm(np.cross(tip - entry, u))
        assert update["lateral_deviation_mm"] == pytest.approx(lateral, abs=0.5)
        assert update["tip_to_target_mm"] == pytest.approx(np.linalg.norm(tip - target), abs=0.5)
    assert updates[-1]["tip_to_target_mm"] < 0.5 and updates[-1]["progress"] == pytest.approx(
        1.0, abs=0.01
    )
    assert any(x["distance_to_critical_mm"] is not None for x in updates)

    # reference mode, from inline matrices, shown as a table
    reference_to_ct = json.dumps(sim.reference_to_ct.tolist())
    with _serving(messages) as (server, _):
        code, out, err = _run(
            capsys, "navigate", "guide", "--plan", plan_path, "--tracker", str(server.port),
            "--reference-to-ct", reference_to_ct, "--tip-offset-mm", "5", "--critical", "none",
            "--seconds", "0.8",
        )  # fmt: skip
    assert code == 0, err
    assert "tip → target" in out and f"{len(series)} updates" in out


def test_a_peer_that_does_not_speak_openigtlink_is_a_peer_error(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A web server on the tracker's port: the link is dropped for its framing, and the
    command says so with the peer's exit status, not as a tracker that hung up."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + b"<html>" * 20)
            time.sleep(3.0)  # stays open: the client must be the one to drop it

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    try:
        code, _, err = _run(
            capsys, "navigate", "record", "--tracker", f"127.0.0.1:{port}",
            "--seconds", "5", "--out", tmp_path / "log.jsonl",
        )  # fmt: skip
    finally:
        thread.join(10.0)
        listener.close()
    assert code == ExitCode.PEER
    assert "was disconnected: framing errors" in err and "does not speak OpenIGTLink" in err
