"""OpenIGTLink framing: the 58-byte header, timestamps, the v3 extended header and metadata.

Every message is ``HEADER (58 bytes) | BODY (BODY_SIZE bytes)``, all numbers big-endian
(OpenIGTLink ``Documents/Protocol/header.md``):

====== ==== ============ ======== =====================================================
offset size field        type     notes
====== ==== ============ ======== =====================================================
0      2    VERSION      uint16   header version: 1 (protocol v1/v2), 2 (v3 + metadata)
2      12   TYPE         char[12] e.g. ``TRANSFORM``, null-padded ASCII
14     20   DEVICE_NAME  char[20] null-padded
34     8    TIME_STAMP   uint64   upper 32 bits Unix seconds, lower 32 bits fraction
42     8    BODY_SIZE    uint64   bytes after the header
50     8    CRC64        uint64   CRC-64/ECMA-182 of the body (:mod:`.crc`)
====== ==== ============ ======== =====================================================

With header version 2 the body is ``EXT_HEADER | CONTENT | METADATA``. The extended
header is ``EXT_HEADER_SIZE (uint16) METADATA_HEADER_SIZE (uint16) METADATA_SIZE (uint32)
MSG_ID (uint32)``, 12 bytes as the C++ library and pyigtl write it (the v3 proposal's
prose and diagram disagree with each other); we read ``EXT_HEADER_SIZE`` from the message
rather than assume 12. The metadata is ``INDEX_COUNT (uint16)``, then per entry
``KEY_SIZE (uint16) VALUE_ENCODING (uint16, IANA MIBenum) VALUE_SIZE (uint32)``, then
the keys and values back to back.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from seldinger.errors import BadInputError, PeerError

__all__ = [
    "EXTENDED_HEADER_SIZE",
    "HEADER_SIZE",
    "IANA_ASCII",
    "IANA_LATIN1",
    "IANA_UTF8",
    "BodyError",
    "BodyTooLargeError",
    "CrcMismatchError",
    "Header",
    "HeaderError",
    "ProtocolError",
    "decode_text",
    "encode_text",
    "pack_body",
    "seconds_from_timestamp",
    "split_body",
    "timestamp_from_seconds",
]

HEADER_SIZE = 58
EXTENDED_HEADER_SIZE = 12
#: IANA character-set MIBenums used by OpenIGTLink STRING and metadata values.
IANA_ASCII, IANA_LATIN1, IANA_UTF8 = 3, 4, 106

_HEADER = struct.Struct(">H12s20sQQQ")
_EXT_HEADER = struct.Struct(">HHII")
_META_ENTRY = struct.Struct(">HHI")
_U16 = struct.Struct(">H")
_CODECS = {IANA_ASCII: "ascii", IANA_LATIN1: "latin-1", IANA_UTF8: "utf-8"}


class ProtocolError(PeerError, ValueError):
    """Bytes received from a peer that break the OpenIGTLink protocol."""


class HeaderError(ProtocolError):
    """A header that cannot be trusted: the byte stream has lost its framing."""


class BodyTooLargeError(HeaderError):
    """A header announces a body larger than its type may carry (``LinkOptions.body_limits``).

    Nothing of the body is read or allocated; the connection is dropped, since the peer
    either does not speak OpenIGTLink or tries to make us hold more than we agreed to.
    """


class BodyError(ProtocolError):
    """A body that does not decode as its type says; the framing is intact."""


class CrcMismatchError(ProtocolError):
    """The CRC-64 in the header is not the CRC of the body that arrived."""


def _c_string(raw: bytes, field: str) -> str:
    """Text of a null-padded char[] field (up to the first NUL)."""
    try:
        return raw.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError as err:
        raise HeaderError(f"header field {field} is not text: {raw!r}.") from err


def fixed_bytes(text: str, size: int, field: str) -> bytes:
    """``text`` as UTF-8 for a char[size] field; ValueError if it does not fit."""
    encoded = text.encode("utf-8")
    if len(encoded) > size or b"\0" in encoded:
        raise BadInputError(
            f"{field} must be at most {size} bytes of UTF-8 without NUL; got {text!r} "
            f"({len(encoded)} bytes). Use a shorter name."
        )
    return encoded


# --- timestamps -----------------------------------------------------------------------
# The fraction <-> nanosecond conversions are those of the C library
# (Source/igtlutil/igtl_util.c, igtl_nanosec_to_frac / igtl_frac_to_nanosec), which pyigtl
# copies too: using them keeps our bytes identical to both.


def _nanosec_to_frac(nanosec: int) -> int:
    base, mask, frac = 1_000_000_000, 0x80000000, 0
    while mask:
        base = (base + 1) >> 1
        if nanosec >= base:
            frac |= mask
            nanosec -= base
        mask >>= 1
    return frac


def _frac_to_nanosec(frac: int) -> int:
    base, mask, nanosec = 1_000_000_000, 0x80000000, 0
    while mask:
        base = (base + 1) >> 1
        if frac & mask:
            nanosec += base
        mask >>= 1
    return nanosec


def timestamp_from_seconds(timestamp_s: float) -> int:
    """The 64-bit OpenIGTLink timestamp of Unix time ``timestamp_s`` (0.0 means "unset").

    >>> hex(timestamp_from_seconds(1.5))
    '0x180000000'
    """
    if not 0.0 <= timestamp_s < 2.0**32:
        raise BadInputError(
            f"timestamp_s must be Unix time in seconds, 0 <= t < 2**32; got {timestamp_s!r}."
        )
    seconds = int(timestamp_s)
    return (seconds << 32) | _nanosec_to_frac(int((timestamp_s - seconds) * 1e9))


def seconds_from_timestamp(timestamp: int) -> float:
    """Unix time in seconds of a 64-bit OpenIGTLink timestamp.

    >>> seconds_from_timestamp(0x180000000)
    1.5
    """
    return (timestamp >> 32) + _frac_to_nanosec(timestamp & 0xFFFFFFFF) * 1e-9


# --- header ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The fixed 58-byte header of one message.

    Parameters
    ----------
    version : int
        Header version: 1 for protocol v1/v2 messages, 2 for v3 (extended header).
    type_name : str
        Message type, e.g. ``"TRANSFORM"`` (at most 12 ASCII characters).
    device_name : str
        Name of the device or tool (at most 20 bytes).
    timestamp : int
        Raw 64-bit timestamp; :attr:`timestamp_s` gives it in Unix seconds.
    body_size : int
        Number of body bytes that follow.
    crc : int
        CRC-64/ECMA-182 of the body as the sender computed it.
    """

    version: int
    type_name: str
    device_name: str
    timestamp: int
    body_size: int
    crc: int

    @property
    def timestamp_s(self) -> float:
        """Sender's timestamp in Unix seconds (0.0 when the sender left it unset)."""
        return seconds_from_timestamp(self.timestamp)

    def pack(self) -> bytes:
        """The 58 header bytes."""
        return _HEADER.pack(
            self.version,
            self.type_name.encode("ascii"),
            fixed_bytes(self.device_name, 20, "device_name"),
            self.timestamp,
            self.body_size,
            self.crc,
        )

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, max_body_size: int) -> Header:
        """Parse and check a header.

        Raises
        ------
        HeaderError
            If the version is not 1 or 2 or the type is not printable ASCII. The caller
            cannot find the next message after this and should drop the connection.
        BodyTooLargeError
            If the body size exceeds ``max_body_size`` (a :class:`HeaderError` too).
        """
        if len(data) != HEADER_SIZE:
            raise HeaderError(f"header must be {HEADER_SIZE} bytes; got {len(data)}.")
        version, raw_type, raw_device, timestamp, body_size, crc = _HEADER.unpack(data)
        if version not in (1, 2):
            raise HeaderError(
                f"header version must be 1 or 2; got {version} (first bytes "
                f"{bytes(data[:8]).hex()}). The peer does not speak OpenIGTLink, or the "
                "stream lost its framing."
            )
        type_name = _c_string(raw_type, "TYPE")
        if not type_name or not all(0x20 < ord(c) < 0x7F for c in type_name):
            raise HeaderError(f"header TYPE must be printable ASCII; got {raw_type!r}.")
        if body_size > max_body_size:
            raise BodyTooLargeError(
                f"BODY_SIZE {body_size} of a {type_name} message exceeds the limit of "
                f"{max_body_size} bytes; raise LinkOptions.max_body_size if this is a "
                "genuine image."
            )
        device_name = _c_string(raw_device, "DEVICE_NAME")
        return cls(version, type_name, device_name, timestamp, body_size, crc)


# --- text, extended header, metadata ----------------------------------------------------


def encode_text(text: str) -> tuple[bytes, int]:
    """``text`` as ASCII when it can be, else UTF-8, with its IANA MIBenum (as pyigtl)."""
    try:
        return text.encode("ascii"), IANA_ASCII
    except UnicodeEncodeError:
        return text.encode("utf-8"), IANA_UTF8


def decode_text(data: bytes | memoryview, encoding: int) -> str:
    """Text of ``data`` in IANA character set ``encoding`` (ASCII, ISO-8859-1 or UTF-8)."""
    codec = _CODECS.get(encoding)
    if codec is None:
        raise BodyError(
            f"text encoding {encoding} (IANA MIBenum) is not supported; expected one of "
            f"{sorted(_CODECS)} (US-ASCII, ISO-8859-1, UTF-8)."
        )
    try:
        return bytes(data).decode(codec)
    except UnicodeDecodeError as err:
        raise BodyError(f"text is not valid {codec}: {bytes(data)[:40]!r}.") from err


def pack_body(content: bytes, version: int, metadata: Mapping[str, str], message_id: int) -> bytes:
    """Body bytes: the content, wrapped in extended header and metadata for version 2."""
    if version == 1:
        if metadata:
            raise BadInputError(
                "metadata needs header_version=2 (OpenIGTLink v3); got header_version=1. "
                "Set header_version=2 or drop the metadata."
            )
        return content
    meta_header = [_U16.pack(len(metadata))]
    meta_body = []
    for key, value in metadata.items():
        encoded_key = key.encode("utf-8")
        encoded_value, encoding = encode_text(value)
        meta_header.append(_META_ENTRY.pack(len(encoded_key), encoding, len(encoded_value)))
        meta_body += [encoded_key, encoded_value]
    header_bytes, body_bytes = b"".join(meta_header), b"".join(meta_body)
    ext = _EXT_HEADER.pack(EXTENDED_HEADER_SIZE, len(header_bytes), len(body_bytes), message_id)
    return ext + content + header_bytes + body_bytes


def split_body(
    body: bytes | bytearray | memoryview, version: int
) -> tuple[memoryview, dict[str, str], int]:
    """Split a body into (content, metadata, message id); version 1 has no metadata.

    Raises
    ------
    BodyError
        If the extended header or the metadata sizes do not fit the body.
    """
    view = memoryview(body)
    if version == 1:
        return view, {}, 0
    if len(view) < EXTENDED_HEADER_SIZE:
        raise BodyError(
            f"a header-version-2 body must start with the {EXTENDED_HEADER_SIZE}-byte "
            f"extended header; the body has {len(view)} bytes."
        )
    ext_size, meta_header_size, meta_size, message_id = _EXT_HEADER.unpack(view[:12])
    metadata_total = meta_header_size + meta_size
    if ext_size < EXTENDED_HEADER_SIZE or ext_size + metadata_total > len(view):
        raise BodyError(
            f"extended header sizes (EXT_HEADER_SIZE {ext_size}, METADATA_HEADER_SIZE "
            f"{meta_header_size}, METADATA_SIZE {meta_size}) do not fit a body of "
            f"{len(view)} bytes."
        )
    content = view[ext_size : len(view) - metadata_total]
    metadata = _unpack_metadata(view[len(view) - metadata_total :], meta_header_size)
    return content, metadata, message_id


def _unpack_metadata(view: memoryview, header_size: int) -> dict[str, str]:
    if header_size == 0:
        return {}
    if header_size < 2:
        raise BodyError(f"METADATA_HEADER_SIZE {header_size} is too small for INDEX_COUNT.")
    (count,) = _U16.unpack(view[:2])
    if 2 + 8 * count != header_size:
        raise BodyError(
            f"metadata INDEX_COUNT {count} needs a {2 + 8 * count}-byte metadata header; "
            f"METADATA_HEADER_SIZE says {header_size}."
        )
    metadata: dict[str, str] = {}
    offset = header_size
    for index in range(count):
        key_size, encoding, value_size = _META_ENTRY.unpack(view[2 + 8 * index : 10 + 8 * index])
        end = offset + key_size + value_size
        if end > len(view):
            raise BodyError(f"metadata entry {index} runs past the end of the body.")
        key = decode_text(view[offset : offset + key_size], IANA_UTF8)
        metadata[key] = decode_text(view[offset + key_size : end], encoding)
        offset = end
    return metadata
