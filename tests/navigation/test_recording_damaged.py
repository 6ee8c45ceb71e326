"""Damaged session logs give a SessionLogError naming the file and the line, never a
UnicodeDecodeError, RecursionError or a bare ValueError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seldinger.errors import ExitCode, MissingFileError, SeldingerError
from seldinger.navigation.recording import (
    MAX_LINE_BYTES,
    SessionHeader,
    SessionLogError,
    StringRecord,
    TrackedTool,
    TrackingDataRecord,
    TransformRecord,
    read_session_log,
    record_to_json,
)

SEED = 20240611


def _good_lines() -> list[str]:
    pose = np.eye(4)
    pose[:3, 3] = [1.5, -2.0, 30.25]
    return [
        record_to_json(SessionHeader(1_718_000_000.0, rate_hz=40.0)),
        record_to_json(TransformRecord.from_matrix("Needle", 1_718_000_000.5, pose)),
        record_to_json(
            TrackingDataRecord(
                "Tracker",
                1_718_000_000.5,
                (TrackedTool("Needle", 2, TransformRecord.from_matrix("N", 0.0, pose).matrix),),
            )
        ),
        record_to_json(StringRecord("Console", 1_718_000_001.0, "température ok")),
    ]


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "session.jsonl"
    path.write_bytes(data)
    return path


def test_non_utf8_bytes_name_file_and_line(tmp_path: Path) -> None:
    lines = [line.encode() for line in _good_lines()]
    lines[2] = lines[2].replace(b"Tracker", b"Tr\xe4cker")  # Latin-1 ä
    path = _write(tmp_path, b"\n".join(lines) + b"\n")
    with pytest.raises(
        SessionLogError, match=r"session\.jsonl: line 3: not UTF-8 text \(byte 0xe4"
    ) as info:
        read_session_log(path)
    assert info.value.line_number == 3 and info.value.path == str(path)
    log = read_session_log(path, skip_invalid=True)
    assert len(log.records) == 2 and [e.line_number for e in log.skipped] == [3]


def test_truncated_last_line_says_the_log_was_cut(tmp_path: Path) -> None:
    text = "\n".join(_good_lines())
    path = _write(tmp_path, text[:-7].encode())  # a crash cut the last record
    with pytest.raises(SessionLogError, match=r"line 4: not valid JSON .*cut short") as info:
        read_session_log(path)
    assert str(path) in str(info.value)
    assert len(read_session_log(path, skip_invalid=True).records) == 2


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("[" * 100_000 + "]" * 100_000, "not a usable JSON record"),
        ('{"type":"STRING","device":"C","timestamp_s":' + "9" * 5000 + ',"text":""}', "usable"),
        ('{"type":"STRING","device":"C","timestamp_s":NaN,"text":""}', "finite number"),
        ('{"type":"STRING","device":"C","timestamp_s":1e999,"text":""}', "finite number"),
    ],
    ids=["deep-nesting", "5000-digits", "nan", "overflow"],
)
def test_hostile_json_is_a_session_log_error(tmp_path: Path, line: str, match: str) -> None:
    path = _write(tmp_path, (_good_lines()[0] + "\n" + line + "\n").encode())
    with pytest.raises(SessionLogError, match=rf"session\.jsonl: line 2.*{match}"):
        read_session_log(path)


def test_over_long_line_is_refused_without_holding_it(tmp_path: Path) -> None:
    good = _good_lines()
    path = _write(
        tmp_path, (good[1] + "\n" + "x" * (MAX_LINE_BYTES + 10) + "\n" + good[3]).encode()
    )
    with pytest.raises(SessionLogError, match=r"line 2: longer than"):
        read_session_log(path)
    assert len(read_session_log(path, skip_invalid=True).records) == 2


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, ("\ufeff" + "\n".join(_good_lines()) + "\n").encode())
    log = read_session_log(path)
    assert log.header is not None and len(log.records) == 3


def test_missing_log_is_a_missing_file_error(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="does not exist") as info:
        read_session_log(tmp_path / "nowhere.jsonl")
    assert info.value.exit_code is ExitCode.IO
    with pytest.raises(SeldingerError, match="cannot be read"):
        read_session_log(tmp_path)  # a folder


def test_mutated_logs_give_only_session_log_errors(tmp_path: Path) -> None:
    """1,000 seeded bit flips, byte overwrites, deletions and truncations of a valid log."""
    rng = np.random.default_rng(SEED)
    data = ("\n".join(_good_lines()) + "\n").encode()
    path = tmp_path / "session.jsonl"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1000):
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            op, at = int(rng.integers(4)), int(rng.integers(len(buf)))
            if op == 0:
                buf[at] ^= 1 << int(rng.integers(8))
            elif op == 1:
                buf[at] = int(rng.choice([0x00, 0x22, 0x5B, 0x7B, 0x7D, 0x0A, 0xC3, 0xFF, 0x2D]))
            elif op == 2:
                del buf[at : at + int(rng.integers(1, 8))]
            else:
                del buf[at:]
            if not buf:
                break
        path.write_bytes(bytes(buf))
        try:
            read_session_log(path)
            outcomes["ok"] += 1
        except SessionLogError as err:
            assert str(path) in str(err) and err.line_number is not None
            outcomes["error"] += 1
    assert outcomes["error"] > 500
