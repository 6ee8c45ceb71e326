"""Session logs: one JSON object per received OpenIGTLink message (JSON lines), and replay.

The records themselves (types, validation, JSON form) are in
:mod:`seldinger.navigation.log_records` and re-exported here.

The format is documented in ``docs/navigation_simulation.md`` ("Session log format"). A
log is UTF-8 text, one record per line: ``type``, ``device``, ``timestamp_s`` (message
time, Unix seconds), optional ``received_s`` (local receive time), and the fields of the
type — ``matrix`` (TRANSFORM), ``tools`` (TDATA), ``position_mm`` + ``quaternion``
(POSITION, quaternion ``(x, y, z, w)`` as OpenIGTLink), ``code``/``subcode``/
``error_name``/``message`` (STATUS), ``text`` (STRING). Line 1 may be a ``SESSION``
header. Matrices are 4×4, row-major, mm.

Pure I/O on files and values; no sockets (the OpenIGTLink layer turns messages into
records).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from seldinger.errors import MissingFileError, OutputExistsError, SeldingerIOError
from seldinger.navigation.log_records import (
    FORMAT_VERSION,
    GenericRecord,
    PositionRecord,
    Record,
    SessionHeader,
    SessionLogError,
    StatusRecord,
    StringRecord,
    TrackedTool,
    TrackingDataRecord,
    TransformRecord,
    parse_header,
    parse_matrix,
    parse_record,
    record_to_json,
)
from seldinger.navigation.simulate import TrackerFrame

__all__ = [
    "FORMAT_VERSION",
    "MAX_LINE_BYTES",
    "GenericRecord",
    "PositionRecord",
    "Record",
    "ReplayItem",
    "SessionHeader",
    "SessionLog",
    "SessionLogError",
    "SessionLogWriter",
    "StatusRecord",
    "StringRecord",
    "TrackedTool",
    "TrackingDataRecord",
    "TransformRecord",
    "frame_to_tdata_record",
    "frame_to_transform_records",
    "iter_session_log",
    "parse_record",
    "pose_series",
    "read_pose_series",
    "read_session_log",
    "record_to_json",
    "records_to_frames",
    "replay",
    "write_session_log",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SessionLog:
    """A whole log: the optional header, the records, and the lines skipped as invalid."""

    header: SessionHeader | None
    records: tuple[Record, ...]
    skipped: tuple[SessionLogError, ...] = ()


#: A log line longer than this is damaged (a TDATA line of 50 tools is about 15 kB).
MAX_LINE_BYTES = 1 << 20


def _raw_lines(
    handle: IO[bytes], path: str | os.PathLike[str]
) -> Iterator[tuple[bytes | None, bool]]:
    """Lines as bytes, each with whether it ended in a newline; None for an over-long line
    (which is consumed up to its newline, never held in memory whole)."""
    try:
        while True:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = handle.readline(MAX_LINE_BYTES)
                yield None, bool(line)
                continue
            yield line, line.endswith(b"\n")
    except OSError as err:
        raise SeldingerIOError(
            f"session log {os.fspath(path)} cannot be read ({err.strerror or err})."
        ) from err


def _decode_line(raw: bytes | None, number: int) -> str:
    """The text of one line; SessionLogError (without location) when it cannot be JSON text."""
    if raw is None:
        raise SessionLogError(
            f"longer than {MAX_LINE_BYTES} bytes; a log line holds one message (the file is "
            "damaged or not a session log)."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SessionLogError(
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); a session "
            "log is UTF-8 JSON lines (the file is damaged or not a session log)."
        ) from err
    if number == 1:
        text = text.removeprefix("\ufeff")  # a byte-order mark some editors add
    return text


def _parse_line(text: str, number: int, complete: bool) -> Record | SessionHeader:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        cut = "" if complete else " The line has no newline at its end: the log was cut short."
        raise SessionLogError(f"not valid JSON ({err.msg} at column {err.colno}).{cut}") from err
    except (RecursionError, ValueError) as err:  # nesting too deep; int of > 4300 digits
        raise SessionLogError(f"not a usable JSON record ({type(err).__name__}).") from err
    if number == 1 and isinstance(obj, dict) and obj.get("type") == "SESSION":
        return parse_header(obj)
    return parse_record(obj)


def _open_log(path: str | os.PathLike[str]) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError as err:
        raise MissingFileError(f"session log {os.fspath(path)} does not exist.") from err
    except OSError as err:
        raise SeldingerIOError(
            f"session log {os.fspath(path)} cannot be read ({err.strerror or err})."
        ) from err


def iter_session_log(
    path: str | os.PathLike[str],
    *,
    skip_invalid: bool = False,
    skipped: list[SessionLogError] | None = None,
) -> Iterator[Record | SessionHeader]:
    """Read a log line by line: the header (if line 1 is one) and then the records.

    Parameters
    ----------
    path : path-like
    skip_invalid : bool
        False (default): the first malformed line raises :class:`SessionLogError` naming
        the file, line and field. True: malformed lines are skipped (a crash can truncate
        the last line of a streaming log) and appended to ``skipped``.
    skipped : list, optional
        Receives the error of each skipped line.

    Blank lines are ignored. A line that is not UTF-8, not JSON, longer than
    :data:`MAX_LINE_BYTES` or not a valid record is malformed.

    Raises
    ------
    SessionLogError
        A malformed line (unless ``skip_invalid``), naming the file and the line.
    MissingFileError, SeldingerIOError
        The file does not exist or cannot be read.
    """
    with _open_log(path) as handle:
        for number, (raw, complete) in enumerate(_raw_lines(handle, path), start=1):
            if raw is not None and not raw.strip():
                continue
            try:
                yield _parse_line(_decode_line(raw, number), number, complete)
            except SessionLogError as err:
                located = SessionLogError(
                    err.reason
                    + ("" if skip_invalid else " Fix the line, or read with skip_invalid=True."),
                    line_number=number,
                    field=err.field,
                    path=path,
                )
                if not skip_invalid:
                    raise located from err
                logger.debug("skipped %s", located)
                if skipped is not None:
                    skipped.append(located)


def read_session_log(path: str | os.PathLike[str], *, skip_invalid: bool = False) -> SessionLog:
    """Read a whole log (see :func:`iter_session_log`)."""
    skipped: list[SessionLogError] = []
    header = None
    records: list[Record] = []
    for item in iter_session_log(path, skip_invalid=skip_invalid, skipped=skipped):
        if isinstance(item, SessionHeader):
            header = item
        else:
            records.append(item)
    return SessionLog(header, tuple(records), tuple(skipped))


class SessionLogWriter:
    """Append records to a log, one line each, flushed as written (a streaming log).

    Parameters
    ----------
    path : path-like
    header : SessionHeader, optional
        Written first; only when the file starts empty.
    mode : {"create", "append", "overwrite"}
        ``create`` (default) refuses an existing file.

    Safe to call :meth:`write` from several threads (a lock serialises lines). Use as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        header: SessionHeader | None = None,
        mode: Literal["create", "append", "overwrite"] = "create",
    ) -> None:
        self.path = Path(path)
        if mode not in ("create", "append", "overwrite"):
            raise SessionLogError(f"mode must be 'create', 'append' or 'overwrite'; got {mode!r}.")
        if mode == "create" and self.path.exists():
            raise OutputExistsError(
                f"{self.path} exists; pass mode='append' to add to it or 'overwrite' to replace it."
            )
        if (
            mode == "append"
            and header is not None
            and self.path.exists()
            and self.path.stat().st_size
        ):
            raise SessionLogError(
                f"header can only start a log, but {self.path} is not empty; append without a header."
            )
        self._lock = threading.Lock()  # guards _file and records_written
        self._file: IO[str] | None = open(  # noqa: SIM115  (closed in close())
            self.path, {"create": "x", "append": "a", "overwrite": "w"}[mode], encoding="utf-8"
        )
        self.records_written = 0
        if header is not None:
            self._write_line(record_to_json(header))

    def _write_line(self, line: str) -> None:
        with self._lock:
            if self._file is None:
                raise SessionLogError(f"the log writer for {self.path} is closed; open a new one.")
            self._file.write(line + "\n")
            self._file.flush()

    def write(self, record: Record) -> None:
        """Append one record and flush."""
        self._write_line(record_to_json(record))
        with self._lock:
            self.records_written += 1

    def write_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> SessionLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_session_log(
    path: str | os.PathLike[str],
    records: Iterable[Record],
    *,
    header: SessionHeader | None = None,
    overwrite: bool = False,
) -> None:
    """Write a finished log atomically (a temporary file in the same folder, then rename)."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists; pass overwrite=True to replace it.")
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if header is not None:
                fh.write(record_to_json(header) + "\n")
            for record in records:
                fh.write(record_to_json(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def frame_to_transform_records(
    frame: TrackerFrame, *, received_s: float | None = None
) -> list[TransformRecord]:
    """One TRANSFORM record per visible tool of a frame (``device`` = tool name)."""
    return [
        TransformRecord.from_matrix(name, frame.timestamp_s, matrix, received_s)
        for name, matrix in frame.transforms.items()
    ]


def frame_to_tdata_record(
    frame: TrackerFrame, *, device: str = "Tracker", received_s: float | None = None
) -> TrackingDataRecord:
    """One TDATA record with every visible tool of a frame (6-D instruments, type 2)."""
    tools = tuple(TrackedTool(name, 2, parse_matrix(m)) for name, m in frame.transforms.items())
    return TrackingDataRecord(device, frame.timestamp_s, tools, received_s)


def _poses(record: Record) -> list[tuple[str, FloatArray]]:
    if isinstance(record, TransformRecord | PositionRecord):
        return [(record.device, record.to_matrix())]
    if isinstance(record, TrackingDataRecord):
        return [(t.name, t.to_matrix()) for t in record.tools]
    return []


def records_to_frames(
    records: Iterable[Record | SessionHeader], *, tolerance_s: float = 1e-6
) -> list[TrackerFrame]:
    """Group pose records (TRANSFORM, POSITION, TDATA) into frames by timestamp.

    Consecutive pose records whose timestamps lie within ``tolerance_s`` of the first of
    the group form one frame (``truth`` None); other record types are ignored.
    """
    frames: list[TrackerFrame] = []
    current: dict[str, FloatArray] = {}
    start = math.nan
    for record in records:
        if isinstance(record, SessionHeader):
            continue
        poses = _poses(record)
        if not poses:
            continue
        if current and abs(record.timestamp_s - start) > tolerance_s:
            frames.append(TrackerFrame(len(frames), start, current))
            current = {}
        if not current:
            start = record.timestamp_s
        current.update(poses)
    if current:
        frames.append(TrackerFrame(len(frames), start, current))
    return frames


def pose_series(
    records: Iterable[Record | SessionHeader],
    tool: str,
    *,
    message_types: Iterable[str] = ("TRANSFORM", "TDATA", "POSITION"),
) -> tuple[FloatArray, FloatArray]:
    """Timestamps (n,) and poses (n, 4, 4) of one tool, in log order.

    Collects TRANSFORM and POSITION records whose ``device`` is ``tool`` and the TDATA
    tools named ``tool``. Raises ValueError, listing the names present, when there are none.
    """
    wanted = set(message_types)
    times: list[float] = []
    matrices: list[FloatArray] = []
    seen: set[str] = set()
    for record in records:
        if isinstance(record, SessionHeader) or record.message_type not in wanted:
            continue
        for name, matrix in _poses(record):
            seen.add(name)
            if name == tool:
                times.append(record.timestamp_s)
                matrices.append(matrix)
    if not times:
        names = ", ".join(sorted(seen)[:20]) or "none"
        raise SessionLogError(
            f"tool {tool!r} has no {'/'.join(sorted(wanted))} poses in the log; tools present: "
            f"{names}. Pass one of those names."
        )
    return np.asarray(times, dtype=np.float64), np.stack(matrices)


def read_pose_series(
    path: str | os.PathLike[str], tool: str, *, skip_invalid: bool = False
) -> tuple[FloatArray, FloatArray]:
    """:func:`pose_series` of a log file, read as a stream."""
    return pose_series(iter_session_log(path, skip_invalid=skip_invalid), tool)


class ReplayItem(NamedTuple):
    """A replayed record and its time since the first record of the replay, seconds."""

    offset_s: float
    record: Record


def replay(
    records: Iterable[Record | SessionHeader],
    *,
    speed: float | None = None,
    time_field: Literal["timestamp_s", "received_s"] = "timestamp_s",
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[ReplayItem]:
    """Yield records with their original relative timing.

    Parameters
    ----------
    records : iterable of Record
        A SESSION header among them is skipped.
    speed : float, optional
        None (default): as fast as possible. Otherwise paced against ``clock``: a record
        ``Δt`` after the first is yielded ``Δt / speed`` seconds after the start (1 = real
        time, 2 = twice as fast).
    time_field : {"timestamp_s", "received_s"}
        Which time to replay (``received_s`` must then be present in every record).
    stop : threading.Event, optional
        Setting it ends the replay, also during a wait.
    clock, sleep : callables
        Monotonic seconds and a sleep function (for tests).
    """
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise SessionLogError(f"speed must be positive (1 = real time) or None; got {speed!r}.")
    first: float | None = None
    started = clock()
    for record in records:
        if isinstance(record, SessionHeader):
            continue
        t = getattr(record, time_field)
        if t is None:
            raise SessionLogError(
                f"record of {record.device!r} at {record.timestamp_s} has no {time_field}; "
                "replay with time_field='timestamp_s'."
            )
        if first is None:
            first = t
        offset = t - first
        if speed is not None:
            delay = started + offset / speed - clock()
            if delay > 0:
                if stop is not None:
                    if stop.wait(delay):
                        return
                else:
                    sleep(delay)
        if stop is not None and stop.is_set():
            return
        yield ReplayItem(offset, record)
