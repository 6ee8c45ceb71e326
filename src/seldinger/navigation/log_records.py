"""Session-log records: one per OpenIGTLink message, their validation and JSON form.

The line format of :mod:`seldinger.navigation.recording` (documented in
``docs/navigation_simulation.md``, "Session log format"): ``type``, ``device``,
``timestamp_s``, optional ``received_s`` and the fields of the type. Records are frozen
and validated on construction; malformed input raises :class:`SessionLogError` naming the
field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.navigation.transforms import matrix_to_quaternion, quaternion_to_matrix

__all__ = [
    "FORMAT_VERSION",
    "GenericRecord",
    "PositionRecord",
    "Record",
    "SessionHeader",
    "SessionLogError",
    "StatusRecord",
    "StringRecord",
    "TrackedTool",
    "TrackingDataRecord",
    "TransformRecord",
    "parse_header",
    "parse_record",
    "record_to_json",
]

FloatArray = npt.NDArray[np.float64]
Matrix44 = tuple[tuple[float, float, float, float], ...]

#: Version of the log format written in SESSION headers.
FORMAT_VERSION = 1
#: OpenIGTLink TDATA instrument types (trackingdata.md): 1 tracker, 2 6-D, 3 3-D, 4 5-D.
TDATA_TOOL_TYPES = (1, 2, 3, 4)


class SessionLogError(BadInputError):
    """A malformed session-log line or record; ``path``, ``line_number`` and ``field`` say where.

    The message reads ``"<path>: line <n>, field '<name>': <reason>"``, leaving out the parts
    that are not known.
    """

    def __init__(
        self,
        message: str,
        *,
        line_number: int | None = None,
        field: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"line {line_number}" if line_number is not None else "",
                f"field {field!r}" if field is not None else "",
            )
            if part
        )
        if path is not None:
            where = f"{os.fspath(path)}: {where}" if where else os.fspath(path)
        super().__init__(f"{where}: {message}" if where else message)
        self.line_number = line_number
        self.field = field
        self.path = None if path is None else os.fspath(path)
        self.reason = message


def _fail(message: str, field_name: str | None = None) -> SessionLogError:
    return SessionLogError(message, field=field_name)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"must be a finite number; got {value!r}.", name)
    return float(value)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not low <= value <= high
    ):
        raise _fail(f"must be an integer from {low} to {high}; got {value!r}.", name)
    return int(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _fail(f"must be a string; got {value!r}.", name)
    return value


def _vector(value: Any, name: str, size: int) -> tuple[float, ...]:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if array.shape != (size,) or not np.isfinite(array).all() or _has_bool(value):
        raise _fail(f"must be a list of {size} finite numbers; got {value!r}.", name)
    return tuple(float(v) for v in array)


def _has_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple):
        return any(_has_bool(v) for v in value)
    return False


def parse_matrix(value: Any, name: str = "matrix") -> Matrix44:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if array.shape != (4, 4) or not np.isfinite(array).all() or _has_bool(value):
        raise _fail(f"must be 4 rows of 4 finite numbers (row-major 4x4, mm); got {value!r}.", name)
    if not np.allclose(array[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise _fail(f"last row must be [0, 0, 0, 1]; got {array[3].tolist()}.", name)
    rows = array.tolist()
    return tuple((r[0], r[1], r[2], r[3]) for r in rows)


@dataclass(frozen=True)
class _Base:
    device: str
    timestamp_s: float

    def _check_common(self) -> None:
        _text(self.device, "device")
        object.__setattr__(self, "timestamp_s", _number(self.timestamp_s, "timestamp_s"))
        if self.timestamp_s < 0:
            raise _fail(f"must be ≥ 0 (Unix seconds); got {self.timestamp_s!r}.", "timestamp_s")
        received = getattr(self, "received_s", None)
        if received is not None:
            object.__setattr__(self, "received_s", _number(received, "received_s"))


@dataclass(frozen=True)
class TransformRecord(_Base):
    """A TRANSFORM message: ``matrix`` is the 4×4 pose (rows, mm) of ``device``."""

    message_type: ClassVar[str] = "TRANSFORM"
    matrix: Matrix44
    received_s: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        object.__setattr__(self, "matrix", parse_matrix(self.matrix))

    @classmethod
    def from_matrix(
        cls, device: str, timestamp_s: float, matrix: npt.ArrayLike, received_s: float | None = None
    ) -> TransformRecord:
        return cls(device, timestamp_s, parse_matrix(matrix), received_s)

    def to_matrix(self) -> FloatArray:
        return np.array(self.matrix, dtype=np.float64)


@dataclass(frozen=True)
class PositionRecord(_Base):
    """A POSITION message: ``position_mm`` and unit ``quaternion`` ``(x, y, z, w)``."""

    message_type: ClassVar[str] = "POSITION"
    position_mm: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]
    received_s: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        position = _vector(self.position_mm, "position_mm", 3)
        quaternion = _vector(self.quaternion, "quaternion", 4)
        if math.hypot(*quaternion) < 1e-9:
            raise _fail(
                "must not be all zero (x, y, z, w; identity is [0, 0, 0, 1]).", "quaternion"
            )
        object.__setattr__(self, "position_mm", position)
        object.__setattr__(self, "quaternion", quaternion)

    @classmethod
    def from_matrix(
        cls, device: str, timestamp_s: float, matrix: npt.ArrayLike, received_s: float | None = None
    ) -> PositionRecord:
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4):
            raise BadInputError(f"matrix must have shape (4, 4); got {m.shape}.")
        x, y, z = (float(v) for v in m[:3, 3])
        qx, qy, qz, qw = (float(v) for v in matrix_to_quaternion(m))
        return cls(device, timestamp_s, (x, y, z), (qx, qy, qz, qw), received_s)

    def to_matrix(self) -> FloatArray:
        return quaternion_to_matrix(self.quaternion, self.position_mm)


@dataclass(frozen=True)
class TrackedTool:
    """One tool of a TDATA message; ``tool_type`` is JSON ``type`` (1 tracker, 2 6-D, 3 3-D, 4 5-D)."""

    name: str
    tool_type: int
    matrix: Matrix44

    def __post_init__(self) -> None:
        _text(self.name, "tools.name")
        object.__setattr__(self, "tool_type", _integer(self.tool_type, "tools.type", 1, 4))
        object.__setattr__(self, "matrix", parse_matrix(self.matrix, "tools.matrix"))

    def to_matrix(self) -> FloatArray:
        return np.array(self.matrix, dtype=np.float64)


@dataclass(frozen=True)
class TrackingDataRecord(_Base):
    """A TDATA message: all visible tools of one tracker frame."""

    message_type: ClassVar[str] = "TDATA"
    tools: tuple[TrackedTool, ...]
    received_s: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        if not isinstance(self.tools, list | tuple) or not all(
            isinstance(t, TrackedTool) for t in self.tools
        ):
            raise _fail(f"must be a list of TrackedTool; got {self.tools!r}.", "tools")
        object.__setattr__(self, "tools", tuple(self.tools))


@dataclass(frozen=True)
class StatusRecord(_Base):
    """A STATUS message (codes: OpenIGTLink status.md; 1 = OK)."""

    message_type: ClassVar[str] = "STATUS"
    code: int
    subcode: int = 0
    error_name: str = ""
    message: str = ""
    received_s: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        object.__setattr__(self, "code", _integer(self.code, "code", 0, 65535))
        object.__setattr__(self, "subcode", _integer(self.subcode, "subcode", -(2**63), 2**63 - 1))
        _text(self.error_name, "error_name")
        _text(self.message, "message")


@dataclass(frozen=True)
class StringRecord(_Base):
    """A STRING message."""

    message_type: ClassVar[str] = "STRING"
    text: str
    received_s: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        _text(self.text, "text")


@dataclass(frozen=True)
class GenericRecord(_Base):
    """A message of another type, kept with its extra JSON fields (forward compatibility)."""

    message_type: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    received_s: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        _check_type_name(self.message_type)


Record = (
    TransformRecord
    | PositionRecord
    | TrackingDataRecord
    | StatusRecord
    | StringRecord
    | GenericRecord
)


@dataclass(frozen=True)
class SessionHeader:
    """Optional first line of a log (``type`` ``SESSION``).

    Attributes
    ----------
    timestamp_s : float
        Session start, Unix seconds.
    software, software_version : str
        What wrote the log.
    rate_hz : float or None
        Nominal tracker rate, when known.
    description : str
    format_version : int
        :data:`FORMAT_VERSION`; readers refuse newer versions.
    """

    timestamp_s: float
    software: str = "seldinger"
    software_version: str = ""
    rate_hz: float | None = None
    description: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp_s", _number(self.timestamp_s, "timestamp_s"))
        _text(self.software, "software")
        _text(self.software_version, "software_version")
        _text(self.description, "description")
        if self.rate_hz is not None:
            rate = _number(self.rate_hz, "rate_hz")
            if rate <= 0:
                raise _fail(f"must be positive (Hz); got {rate!r}.", "rate_hz")
            object.__setattr__(self, "rate_hz", rate)
        version = _integer(self.format_version, "format_version", 1, 2**31)
        if version > FORMAT_VERSION:
            raise _fail(
                f"is {version}, newer than this reader ({FORMAT_VERSION}); update seldinger.",
                "format_version",
            )


def _check_type_name(name: Any) -> str:
    if not (
        isinstance(name, str) and 0 < len(name) <= 12 and name.isascii() and name.isprintable()
    ):
        raise _fail(
            f"must be 1-12 printable ASCII characters (OpenIGTLink TYPE); got {name!r}.", "type"
        )
    return name


_COMMON_KEYS = {"type", "device", "timestamp_s", "received_s"}
_TYPE_KEYS: dict[str, tuple[set[str], set[str]]] = {  # required, optional
    "TRANSFORM": ({"matrix"}, set()),
    "POSITION": ({"position_mm", "quaternion"}, set()),
    "TDATA": ({"tools"}, set()),
    "STATUS": ({"code"}, {"subcode", "error_name", "message"}),
    "STRING": ({"text"}, set()),
}
_HEADER_KEYS = (
    {"type", "timestamp_s"},
    {"software", "software_version", "rate_hz", "description", "format_version"},
)


def _check_keys(obj: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    for key in sorted(required - obj.keys()):
        raise _fail("is missing.", key)
    for key in sorted(obj.keys() - required - optional):
        raise _fail(
            f"is not a field of {obj.get('type')!r} records (allowed: "
            f"{', '.join(sorted(required | optional))}).",
            key,
        )


def parse_header(obj: Mapping[str, Any]) -> SessionHeader:
    """A :class:`SessionHeader` from a decoded JSON object (raises :class:`SessionLogError`)."""
    _check_keys(obj, *_HEADER_KEYS)
    return SessionHeader(**{k: v for k, v in obj.items() if k != "type"})


def parse_record(obj: Any) -> Record:
    """A record from a decoded JSON object; :class:`SessionLogError` names the bad field."""
    if not isinstance(obj, dict):
        raise _fail(f"a record must be a JSON object; got {type(obj).__name__}.")
    kind = _check_type_name(obj.get("type"))
    if kind == "SESSION":
        raise _fail("a SESSION header is allowed only on line 1.", "type")
    common: dict[str, Any] = {"device": obj.get("device"), "timestamp_s": obj.get("timestamp_s")}
    for key in ("device", "timestamp_s"):
        if key not in obj:
            raise _fail("is missing.", key)
    common["received_s"] = obj.get("received_s")
    if kind not in _TYPE_KEYS:
        extra = {k: v for k, v in obj.items() if k not in _COMMON_KEYS}
        return GenericRecord(message_type=kind, fields=extra, **common)
    required, optional = _TYPE_KEYS[kind]
    _check_keys(obj, required | {"type", "device", "timestamp_s"}, optional | {"received_s"})
    if kind == "TRANSFORM":
        return TransformRecord(matrix=obj["matrix"], **common)
    if kind == "POSITION":
        return PositionRecord(
            position_mm=obj["position_mm"], quaternion=obj["quaternion"], **common
        )
    if kind == "TDATA":
        return TrackingDataRecord(tools=_parse_tools(obj["tools"]), **common)
    if kind == "STATUS":
        payload = {k: obj[k] for k in ("code", "subcode", "error_name", "message") if k in obj}
        return StatusRecord(**payload, **common)
    return StringRecord(text=obj["text"], **common)


def _parse_tools(value: Any) -> tuple[TrackedTool, ...]:
    if not isinstance(value, list):
        raise _fail(f"must be a list of tool objects; got {value!r}.", "tools")
    tools = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "type", "matrix"}:
            raise _fail(
                f"tool {i} must be an object with exactly name, type and matrix; got {item!r}.",
                "tools",
            )
        tools.append(TrackedTool(item["name"], item["type"], item["matrix"]))
    return tuple(tools)


def _record_dict(record: Record | SessionHeader) -> dict[str, Any]:
    if isinstance(record, SessionHeader):
        out: dict[str, Any] = {"type": "SESSION", "timestamp_s": record.timestamp_s}
        out |= {
            "format_version": record.format_version,
            "software": record.software,
            "software_version": record.software_version,
        }
        if record.rate_hz is not None:
            out["rate_hz"] = record.rate_hz
        if record.description:
            out["description"] = record.description
        return out
    out = {"type": record.message_type, "device": record.device, "timestamp_s": record.timestamp_s}
    if record.received_s is not None:
        out["received_s"] = record.received_s
    if isinstance(record, TransformRecord):
        out["matrix"] = [list(row) for row in record.matrix]
    elif isinstance(record, PositionRecord):
        out["position_mm"] = list(record.position_mm)
        out["quaternion"] = list(record.quaternion)
    elif isinstance(record, TrackingDataRecord):
        out["tools"] = [
            {"name": t.name, "type": t.tool_type, "matrix": [list(r) for r in t.matrix]}
            for t in record.tools
        ]
    elif isinstance(record, StatusRecord):
        out |= {
            "code": record.code,
            "subcode": record.subcode,
            "error_name": record.error_name,
            "message": record.message,
        }
    elif isinstance(record, StringRecord):
        out["text"] = record.text
    else:
        out |= dict(record.fields)
    return out


def record_to_json(record: Record | SessionHeader) -> str:
    """One log line (without the newline): compact JSON, keys in a fixed order."""
    return json.dumps(
        _record_dict(record), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
