"""Tests of session logs (JSON lines), their conversions and replay."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from seldinger.navigation.motion import NeedleInsertion, PivotMotion
from seldinger.navigation.recording import (
    GenericRecord,
    PositionRecord,
    Record,
    SessionHeader,
    SessionLogError,
    SessionLogWriter,
    StatusRecord,
    StringRecord,
    frame_to_tdata_record,
    frame_to_transform_records,
    parse_record,
    pose_series,
    read_pose_series,
    read_session_log,
    record_to_json,
    records_to_frames,
    replay,
    write_session_log,
)
from seldinger.navigation.simulate import (
    REFERENCE_NAME,
    TOOL_NAME,
    DropoutModel,
    NoiseModel,
    TrackerFrame,
    TrackerSimConfig,
    TrackerSimulator,
)
from seldinger.navigation.transforms import matrix_to_quaternion, quaternion_to_matrix

SEED = 20240611
START_S = 1_718_000_000.25  # a Unix time
IDENTITY = np.eye(4).tolist()


def line(**fields: object) -> str:
    return json.dumps(fields)


def simulated_frames(seconds: float = 1.0, dropout: float = 0.2) -> list[TrackerFrame]:
    config = TrackerSimConfig(
        NeedleInsertion([0.0, 0.0, 0.0], [0.0, 80.0, 10.0]),
        dropout=DropoutModel(probability=dropout),
        start_time_s=START_S,
    )
    return list(TrackerSimulator(config, rng=SEED).frames(seconds))


def mixed_records() -> list[Record]:
    frames = simulated_frames(0.5)
    records: list[Record] = []
    for frame in frames:
        records += frame_to_transform_records(frame, received_s=frame.timestamp_s + 0.002)
    records.append(frame_to_tdata_record(frames[-1]))
    pose = frames[0].transforms[REFERENCE_NAME]
    records.append(PositionRecord.from_matrix("ReferenceToTracker", START_S + 1.0, pose))
    records.append(StatusRecord("Tracker", START_S + 1.0, 1, 0, "", "OK"))
    records.append(StatusRecord("Robot", START_S + 1.1, 13, -7, "NOT_READY", "homing ☃"))
    records.append(StringRecord("Console", START_S + 1.2, 'say "hi"\nline 2'))
    records.append(GenericRecord("Dose", START_S + 1.3, "SENSOR", {"data": [1.5, 2.0]}))
    return records


def test_record_round_trip_is_field_and_byte_exact(tmp_path: Path) -> None:
    records = mixed_records()
    header = SessionHeader(START_S, software_version="0.1.0", rate_hz=40.0, description="sim")
    path = tmp_path / "session.jsonl"
    write_session_log(path, records, header=header)
    log = read_session_log(path)
    assert log.header == header
    assert log.records == tuple(records)
    assert log.skipped == ()
    again = tmp_path / "again.jsonl"
    write_session_log(again, log.records, header=log.header)
    assert again.read_bytes() == path.read_bytes()
    # every line is one JSON object with the documented keys
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["type"] == "SESSION"
    first = json.loads(lines[1])
    assert list(first) == ["type", "device", "timestamp_s", "received_s", "matrix"]
    assert np.array(first["matrix"]).shape == (4, 4)
    status = json.loads(lines[-3])
    assert status == {
        "type": "STATUS",
        "device": "Robot",
        "timestamp_s": START_S + 1.1,
        "code": 13,
        "subcode": -7,
        "error_name": "NOT_READY",
        "message": "homing ☃",
    }
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_transform_records_carry_the_frame_poses_exactly() -> None:
    frame = simulated_frames(0.1, dropout=0.0)[2]
    records = frame_to_transform_records(frame)
    assert [r.device for r in records] == [TOOL_NAME, REFERENCE_NAME]
    for record in records:
        assert record.timestamp_s == frame.timestamp_s
        np.testing.assert_array_equal(record.to_matrix(), frame.transforms[record.device])
        parsed = parse_record(json.loads(record_to_json(record)))
        np.testing.assert_array_equal(parsed.to_matrix(), frame.transforms[record.device])  # type: ignore[union-attr]
    tdata = frame_to_tdata_record(frame)
    assert [(t.name, t.tool_type) for t in tdata.tools] == [(TOOL_NAME, 2), (REFERENCE_NAME, 2)]


def test_records_to_frames_regroups_by_timestamp() -> None:
    frames = simulated_frames(0.5)
    records = [r for f in frames for r in frame_to_transform_records(f)]
    records.insert(3, StringRecord("Console", frames[1].timestamp_s, "ignored"))
    regrouped = records_to_frames(records)
    nonempty = [f for f in frames if f.transforms]
    assert len(regrouped) == len(nonempty)
    for got, want in zip(regrouped, nonempty, strict=True):
        assert got.timestamp_s == want.timestamp_s and got.truth is None
        assert got.transforms.keys() == want.transforms.keys()
        for name in got.transforms:
            np.testing.assert_array_equal(got.transforms[name], want.transforms[name])
    tdata = records_to_frames([frame_to_tdata_record(f) for f in nonempty])
    assert [f.transforms.keys() for f in tdata] == [f.transforms.keys() for f in nonempty]


def test_quaternion_convention_is_xyzw() -> None:
    half = math.sqrt(0.5)
    m = quaternion_to_matrix([0.0, 0.0, half, half], [1.0, 2.0, 3.0])  # 90° about z
    np.testing.assert_allclose(m[:3, :3] @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(m[:3, 3], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(matrix_to_quaternion(m), [0.0, 0.0, half, half])
    record = PositionRecord.from_matrix("Tool", 1.0, m)
    assert record.quaternion == pytest.approx((0.0, 0.0, half, half))
    np.testing.assert_allclose(record.to_matrix(), m, atol=1e-15)
    with pytest.raises(ValueError, match="scale or shear"):
        matrix_to_quaternion(np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(SessionLogError, match="field 'quaternion': must not be all zero"):
        PositionRecord("Tool", 1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))


def test_pose_series_reads_transform_tdata_and_position_of_one_tool(tmp_path: Path) -> None:
    frames = simulated_frames(1.0)
    records: list[Record] = []
    for i, frame in enumerate(frames):
        if i % 2:
            records += frame_to_transform_records(frame)
        else:
            records.append(frame_to_tdata_record(frame))
    path = tmp_path / "pivot.jsonl"
    write_session_log(path, records)
    times, poses = read_pose_series(path, TOOL_NAME)
    seen = [f for f in frames if TOOL_NAME in f.transforms]
    assert poses.shape == (len(seen), 4, 4)
    np.testing.assert_array_equal(times, [f.timestamp_s for f in seen])
    np.testing.assert_array_equal(poses, np.stack([f.transforms[TOOL_NAME] for f in seen]))
    position = PositionRecord.from_matrix("Stylus", 5.0, seen[0].transforms[TOOL_NAME])
    _, stylus = pose_series([position], "Stylus")
    np.testing.assert_allclose(stylus[0], seen[0].transforms[TOOL_NAME], atol=1e-12)
    with pytest.raises(
        ValueError, match=r"tool 'Needle'.*tools present: ReferenceToTracker, ToolToTracker"
    ):
        read_pose_series(path, "Needle")


def test_pose_series_of_a_pivot_log_satisfies_the_pivot_equation(tmp_path: Path) -> None:
    config = TrackerSimConfig(
        PivotMotion([10.0, 20.0, 30.0]), tip_offset_mm=9.0, noise=NoiseModel(0.0, 0.0)
    )
    sim = TrackerSimulator(config, rng=SEED)
    path = tmp_path / "pivot.jsonl"
    with SessionLogWriter(path) as writer:
        for frame in sim.frames(3.0):
            writer.write_all(frame_to_transform_records(frame))
    _, poses = read_pose_series(path, TOOL_NAME)
    tips = poses[:, :3, :3] @ [0.0, 0.0, 9.0] + poses[:, :3, 3]
    pivot = (sim.ct_to_tracker @ [10.0, 20.0, 30.0, 1.0])[:3]
    np.testing.assert_allclose(tips, np.broadcast_to(pivot, tips.shape), atol=1e-9)


def test_streaming_writer_flushes_each_record_and_refuses_to_clobber(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    header = SessionHeader(START_S)
    writer = SessionLogWriter(path, header=header)
    writer.write(StringRecord("Console", START_S, "first"))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # visible before close
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(StringRecord("Console", START_S, "late"))
    with pytest.raises(FileExistsError, match="mode='append'"):
        SessionLogWriter(path)
    with pytest.raises(ValueError, match="header can only start a log"):
        SessionLogWriter(path, header=header, mode="append")
    with SessionLogWriter(path, mode="append") as more:
        more.write(StringRecord("Console", START_S + 1, "second"))
    log = read_session_log(path)
    assert log.header == header
    assert [r.text for r in log.records] == ["first", "second"]  # type: ignore[union-attr]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_session_log(path, [])


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (
            '{"type":"TRANSFORM","device":"T","timestamp_s":1.0,"matrix":[[1,0,0]]}',
            "matrix",
            "4 rows of 4",
        ),
        (
            line(type="TRANSFORM", device="T", timestamp_s=1.0, matrix=IDENTITY, matrx=1),
            "matrx",
            "not a field",
        ),
        (line(type="TRANSFORM", device="T", matrix=IDENTITY), "timestamp_s", "missing"),
        (
            '{"type":"STATUS","device":"T","timestamp_s":"now","code":1}',
            "timestamp_s",
            "finite number",
        ),
        ('{"type":"STATUS","device":"T","timestamp_s":1.0,"code":true}', "code", "integer"),
        (
            '{"type":"POSITION","device":"T","timestamp_s":1.0,"position_mm":[0,0],"quaternion":[0,0,0,1]}',
            "position_mm",
            "3 finite",
        ),
        (
            line(
                type="TDATA",
                device="T",
                timestamp_s=1.0,
                tools=[{"name": "A", "type": 9, "matrix": IDENTITY}],
            ),
            "tools.type",
            "from 1 to 4",
        ),
        ('{"type":"STRING","device":7,"timestamp_s":1.0,"text":"x"}', "device", "string"),
        ('{"type":"SESSION","timestamp_s":1.0}', "type", "only on line 1"),
        (
            '{"type":"TRANSFORM","device":"T","timestamp_s":1.0,"matrix":[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,2]]}',
            "matrix",
            "last row",
        ),
        (
            '{"type":"TRANSFORM","device":"T","timestamp_s":1.0,"matrix":[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]',
            None,
            "not valid JSON",
        ),
        ("[1, 2]", None, "must be a JSON object"),
    ],
)
def test_malformed_line_errors_name_line_and_field(
    tmp_path: Path, line: str, field: str | None, message: str
) -> None:
    good = record_to_json(StringRecord("Console", 1.0, "ok"))
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")  # bad line is line 3
    with pytest.raises(SessionLogError) as info:
        read_session_log(path)
    error = info.value
    assert error.line_number == 3 and error.field == field
    assert str(error).startswith(f"{path}: line 3" + (f", field {field!r}" if field else ""))
    assert message in str(error) and "skip_invalid=True" in str(error)
    log = read_session_log(path, skip_invalid=True)
    assert len(log.records) == 2
    assert [e.line_number for e in log.skipped] == [3]


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    path.write_text('{"type":"SESSION","timestamp_s":1.0,"format_version":2}\n', encoding="utf-8")
    with pytest.raises(SessionLogError, match=r"line 1, field 'format_version'.*update seldinger"):
        read_session_log(path)


def test_replay_keeps_relative_timing_and_paces_by_speed() -> None:
    records = [StringRecord("C", START_S + dt, str(dt)) for dt in (0.0, 0.5, 0.5, 2.0)]
    fast = list(replay([SessionHeader(START_S), *records]))
    assert [item.offset_s for item in fast] == [0.0, 0.5, 0.5, 2.0]
    assert [item.record for item in fast] == records
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    paced = list(replay(records, speed=2.0, clock=lambda: now[0], sleep=sleep))
    assert len(paced) == 4
    assert waits == pytest.approx([0.25, 0.75])  # half the original gaps
    assert now[0] == pytest.approx(101.0)
    stop = threading.Event()
    stop.set()
    assert list(replay(records, speed=1.0, stop=stop)) == []
    with pytest.raises(ValueError, match="speed must be positive"):
        list(replay(records, speed=0.0))
    with pytest.raises(ValueError, match="has no received_s"):
        list(replay(records, time_field="received_s"))
