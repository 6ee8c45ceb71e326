"""OpenIGTLink message base class and the text messages: STATUS, STRING, and raw.

Each message is a frozen dataclass, valid after construction (shapes, finite values,
field lengths checked; a ValueError names the field). :meth:`Message.pack` gives the
bytes on the wire (header + body); :func:`.codec.decode_message` goes the other way.
Body layouts follow the OpenIGTLink protocol documents
(``Documents/Protocol/{status,string}.md``) and the C++ library's ``igtl_*.h`` structs.
Geometry messages (TRANSFORM, POSITION, TDATA, POINT) are in :mod:`.poses`, IMAGE in
:mod:`.image`. Types we do not decode arrive as :class:`RawMessage`.
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

from .crc import crc64
from .header import (
    BodyError,
    Header,
    decode_text,
    encode_text,
    fixed_bytes,
    pack_body,
    timestamp_from_seconds,
)

__all__ = [
    "Message",
    "RawMessage",
    "StatusCode",
    "StatusMessage",
    "StringMessage",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_float_array(value: Any, shape: tuple[int, ...], field_name: str) -> npt.NDArray[np.float64]:
    """Read-only float64 copy of ``value``; ValueError unless it has ``shape``, is finite and fits float32."""
    array = np.array(value, dtype=np.float64)
    if array.shape != shape:
        raise BadInputError(f"{field_name} must have shape {shape}; got shape {array.shape}.")
    if not np.abs(array).max(initial=0.0) <= FLOAT32_MAX:  # one pass; False for NaN too
        if not np.all(np.isfinite(array)):
            raise BadInputError(
                f"{field_name} must be finite (it is sent as float32); got\n{array}\n"
                "Check the tracker's status before sending (a tool out of view)."
            )
        raise BadInputError(f"{field_name} exceeds the float32 range: {array}.")
    array.setflags(write=False)
    return array


def as_homogeneous(value: Any, field_name: str) -> npt.NDArray[np.float64]:
    """4x4 float64 transform with last row [0, 0, 0, 1]."""
    matrix = as_float_array(value, (4, 4), field_name)
    if not np.array_equal(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise BadInputError(
            f"{field_name} must be a homogeneous 4x4 transform with last row [0, 0, 0, 1]; "
            f"got last row {matrix[3]}."
        )
    return matrix


class StatusCode(enum.IntEnum):
    """STATUS codes (OpenIGTLink ``status.md``; ``igtlStatusMessage.h``)."""

    INVALID = 0
    OK = 1
    UNKNOWN_ERROR = 2
    PANIC = 3
    NOT_FOUND = 4
    ACCESS_DENIED = 5
    BUSY = 6
    TIME_OUT = 7
    OVERFLOW = 8
    CHECKSUM_ERROR = 9
    CONFIG_ERROR = 10
    RESOURCE_ERROR = 11
    UNKNOWN_INSTRUCTION = 12
    NOT_READY = 13
    MANUAL_MODE = 14
    DISABLED = 15
    NOT_PRESENT = 16
    UNKNOWN_VERSION = 17
    HARDWARE_FAILURE = 18
    SHUT_DOWN = 19


@dataclass(frozen=True, kw_only=True, eq=False)
class Message:
    """Fields common to all messages (the header and the v3 extended header).

    Parameters
    ----------
    device_name : str
        Name of the device or tool, at most 20 bytes of UTF-8 (e.g. ``"NeedleToTracker"``).
    timestamp_s : float
        When the data was generated, Unix time in seconds (default: now); 0.0 means
        "unset" on the wire.
    header_version : int
        1 (protocol v1/v2; understood by every peer) or 2 (v3: extended header,
        metadata, message id).
    metadata : mapping of str to str
        v3 key/value metadata (needs ``header_version=2``), e.g. PLUS's
        ``{"TransformStatus": "OK"}``.
    message_id : int
        v3 message id (uint32).
    """

    TYPE_NAME: ClassVar[str] = ""

    device_name: str = ""
    timestamp_s: float = field(default_factory=time.time)
    header_version: int = 1
    metadata: Mapping[str, str] = field(default_factory=dict)
    message_id: int = 0

    def __post_init__(self) -> None:
        fixed_bytes(self.device_name, 20, "device_name")
        if not 0.0 <= self.timestamp_s < 2.0**32:
            raise BadInputError(
                f"timestamp_s must be Unix time in seconds, 0 <= t < 2**32; got {self.timestamp_s!r}."
            )
        if self.header_version not in (1, 2):
            raise BadInputError(
                f"header_version must be 1 (v1/v2) or 2 (v3); got {self.header_version!r}."
            )
        if self.metadata and self.header_version != 2:
            raise BadInputError(
                "metadata needs header_version=2 (OpenIGTLink v3); got header_version="
                f"{self.header_version}. Set header_version=2 or drop the metadata."
            )
        if not 0 <= self.message_id < 2**32:
            raise BadInputError(f"message_id must fit uint32; got {self.message_id!r}.")
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def type_name(self) -> str:
        """The header TYPE, e.g. ``"TRANSFORM"``."""
        return self.TYPE_NAME

    def pack_content(self) -> bytes:
        """The content bytes (the body without v3 extended header and metadata)."""
        raise NotImplementedError

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        """Build the message from its content bytes; ``common`` holds the header fields.

        Raises
        ------
        BodyError
            If the content does not have this type's layout.
        """
        raise NotImplementedError

    def pack(self) -> bytes:
        """The whole message as sent: 58-byte header, then body (CRC filled in)."""
        body = pack_body(self.pack_content(), self.header_version, self.metadata, self.message_id)
        header = Header(
            self.header_version,
            self.type_name,
            self.device_name,
            timestamp_from_seconds(self.timestamp_s),
            len(body),
            crc64(body),
        )
        return header.pack() + body


# Helpers for the unpack_content methods here and in .poses / .image.


def require_size(content: memoryview, sizes: Sequence[int], type_name: str) -> None:
    """BodyError unless the content has one of ``sizes`` bytes."""
    if len(content) not in sizes:
        expected = " or ".join(str(s) for s in sizes)
        raise BodyError(f"a {type_name} body has {expected} bytes; got {len(content)}.")


def require_multiple(content: memoryview, element_size: int, type_name: str) -> int:
    """Number of ``element_size``-byte elements in the content; BodyError if it is not whole."""
    count, rest = divmod(len(content), element_size)
    if rest:
        raise BodyError(
            f"a {type_name} body is a whole number of {element_size}-byte elements; got "
            f"{len(content)} bytes."
        )
    return count


def c_text(raw: bytes) -> str:
    """Text of a null-padded char[] field, up to the first NUL (bad UTF-8 replaced)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


# --- STATUS, STRING -------------------------------------------------------------------------

_STATUS = struct.Struct(">Hq20s")  # 30 bytes, then a null-terminated message


@dataclass(frozen=True, kw_only=True, eq=False)
class StatusMessage(Message):
    """STATUS: device health (code, sub-code, error name[20], message text).

    Received bytes that fail their CRC check or do not decode are delivered as a
    STATUS made here (code ``CHECKSUM_ERROR`` or ``UNKNOWN_ERROR``) with the error
    attached to the :class:`~.queue.Received` record.
    """

    TYPE_NAME: ClassVar[str] = "STATUS"
    code: StatusCode = StatusCode.OK
    subcode: int = 0
    error_name: str = ""
    status_string: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            object.__setattr__(self, "code", StatusCode(self.code))
        except ValueError as err:
            raise BadInputError(f"code must be a STATUS code 0-19; got {self.code!r}.") from err
        if not -(2**63) <= self.subcode < 2**63:
            raise BadInputError(f"subcode must fit int64; got {self.subcode!r}.")
        fixed_bytes(self.error_name, 20, "error_name")

    @property
    def ok(self) -> bool:
        """True for code OK."""
        return self.code is StatusCode.OK

    def pack_content(self) -> bytes:
        head = _STATUS.pack(int(self.code), self.subcode, self.error_name.encode())
        return head + self.status_string.encode("utf-8") + b"\0"

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        if len(content) < _STATUS.size:
            raise BodyError(f"a STATUS body has at least {_STATUS.size} bytes; got {len(content)}.")
        code, subcode, error_name = _STATUS.unpack(content[: _STATUS.size])
        try:
            status_code = StatusCode(code)
        except ValueError as err:
            raise BodyError(f"STATUS code must be 0-19; got {code}.") from err
        return cls(
            code=status_code,
            subcode=subcode,
            error_name=c_text(error_name),
            status_string=c_text(bytes(content[_STATUS.size :])),
            **common,
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class StringMessage(Message):
    """STRING: text (encoding uint16, length uint16, bytes; at most 65535 bytes).

    Parameters
    ----------
    text : str
        The text.
    encoding : int or None
        IANA MIBenum (3 US-ASCII, 4 ISO-8859-1, 106 UTF-8); None picks ASCII when the
        text allows and UTF-8 otherwise (as pyigtl). Received messages keep theirs.
    """

    TYPE_NAME: ClassVar[str] = "STRING"
    text: str = ""
    encoding: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        size = len(self._encoded()[0])
        if size > 0xFFFF:
            raise BadInputError(f"text must encode to at most 65535 bytes; got {size}. Split it.")

    def _encoded(self) -> tuple[bytes, int]:
        if self.encoding is None:
            return encode_text(self.text)
        codec = {3: "ascii", 4: "latin-1", 106: "utf-8"}.get(self.encoding)
        if codec is None:
            raise BadInputError(
                f"encoding must be 3 (US-ASCII), 4 (ISO-8859-1), 106 (UTF-8) or None; got "
                f"{self.encoding!r}."
            )
        try:
            return self.text.encode(codec), self.encoding
        except UnicodeEncodeError as err:
            raise BadInputError(
                f"text {self.text[:40]!r} cannot be encoded as {codec}; use 106."
            ) from err

    def pack_content(self) -> bytes:
        encoded, encoding = self._encoded()
        return struct.pack(">HH", encoding, len(encoded)) + encoded

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        if len(content) < 4:
            raise BodyError(f"a STRING body has at least 4 bytes; got {len(content)}.")
        encoding, length = struct.unpack(">HH", content[:4])
        if 4 + length > len(content):
            raise BodyError(
                f"STRING length {length} runs past the body ({len(content) - 4} bytes)."
            )
        text = decode_text(content[4 : 4 + length], encoding)
        return cls(text=text, encoding=encoding, **common)


# --- anything else -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class RawMessage(Message):
    """A message of a type we do not decode (e.g. ``GET_TDATA``, ``NDARRAY``): content kept as bytes."""

    message_type: str
    content: bytes = b""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < len(self.message_type) <= 12 or not self.message_type.isascii():
            raise BadInputError(
                f"message_type must be 1-12 ASCII characters; got {self.message_type!r}."
            )
        object.__setattr__(self, "content", bytes(self.content))

    @property
    def type_name(self) -> str:
        return self.message_type

    def pack_content(self) -> bytes:
        return self.content
