"""The 58-byte header, timestamps, and the v3 extended header with metadata."""

from __future__ import annotations

import struct

import pytest

from seldinger.navigation.igtl import (
    HEADER_SIZE,
    BodyError,
    Header,
    HeaderError,
    StringMessage,
    seconds_from_timestamp,
    timestamp_from_seconds,
)
from seldinger.navigation.igtl.header import pack_body, split_body

LIMIT = 1 << 30


def test_header_fields_at_their_offsets() -> None:
    header = Header(1, "TRANSFORM", "Needle", 0x0000000100000002, 48, 0x0123456789ABCDEF)
    data = header.pack()
    assert len(data) == HEADER_SIZE == 58
    assert data[0:2] == b"\x00\x01"  # version, big-endian
    assert data[2:14] == b"TRANSFORM\0\0\0"
    assert data[14:34] == b"Needle" + b"\0" * 14
    assert data[34:42] == bytes.fromhex("0000000100000002")  # seconds, fraction
    assert data[42:50] == (48).to_bytes(8, "big")
    assert data[50:58] == bytes.fromhex("0123456789abcdef")
    assert Header.unpack(data, LIMIT) == header


def test_timestamp_halves_are_seconds_and_binary_fraction() -> None:
    assert timestamp_from_seconds(0.0) == 0
    assert timestamp_from_seconds(1.5) == (1 << 32) | 0x80000000
    assert timestamp_from_seconds(2.25) == (2 << 32) | 0x40000000
    assert seconds_from_timestamp((7 << 32) | 0xC0000000) == 7.75


def test_timestamp_conversion_is_the_c_library_s() -> None:
    # pyigtl copies igtl_nanosec_to_frac / igtl_frac_to_nanosec from the C library.
    messages = pytest.importorskip("pyigtl.messages")
    for t in (0.0, 1.000000001, 1_700_000_000.123456, 1_796_225_869.999999, 4_000_000_000.5):
        seconds = int(t)
        expected = (seconds << 32) | messages._igtl_nanosec_to_frac(int((t - seconds) * 10**9))
        assert timestamp_from_seconds(t) == expected
        frac = expected & 0xFFFFFFFF
        assert (
            seconds_from_timestamp(expected)
            == seconds + messages._igtl_frac_to_nanosec(frac) * 1e-9
        )


def test_timestamp_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="timestamp_s"):
        timestamp_from_seconds(-1.0)
    with pytest.raises(ValueError, match="timestamp_s"):
        timestamp_from_seconds(2.0**32)


def _raw_header(version: int = 1, type_name: bytes = b"TRANSFORM", body_size: int = 48) -> bytes:
    return struct.pack(">H12s20sQQQ", version, type_name, b"Dev", 0, body_size, 0)


@pytest.mark.parametrize("version", [0, 3, 0x4745])
def test_unknown_header_version_is_a_framing_error(version: int) -> None:
    with pytest.raises(HeaderError, match="header version must be 1 or 2"):
        Header.unpack(_raw_header(version=version), LIMIT)


@pytest.mark.parametrize("type_name", [b"", b"TRANS\x01FORM", b"\xff\xfe"])
def test_unprintable_type_is_a_framing_error(type_name: bytes) -> None:
    with pytest.raises(HeaderError, match="TYPE"):
        Header.unpack(_raw_header(type_name=type_name), LIMIT)


def test_body_over_the_limit_is_a_framing_error() -> None:
    with pytest.raises(HeaderError, match="exceeds the limit of 1000 bytes"):
        Header.unpack(_raw_header(body_size=1001), 1000)


def test_header_must_be_58_bytes() -> None:
    with pytest.raises(HeaderError, match="58 bytes"):
        Header.unpack(_raw_header()[:57], LIMIT)


def test_device_name_longer_than_20_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="device_name must be at most 20 bytes"):
        StringMessage(device_name="x" * 21, text="")


def test_extended_header_and_metadata_layout() -> None:
    body = pack_body(b"CONTENT", 2, {"Key": "Value", "Ü": "é"}, message_id=9)
    ext_size, meta_header_size, meta_size, message_id = struct.unpack(">HHII", body[:12])
    assert (ext_size, message_id) == (12, 9)
    assert meta_header_size == 2 + 2 * 8
    assert body[12:19] == b"CONTENT"
    metadata = body[19:]
    assert struct.unpack(">H", metadata[:2]) == (2,)
    assert struct.unpack(">HHI", metadata[2:10]) == (3, 3, 5)  # key size, ASCII, value size
    assert struct.unpack(">HHI", metadata[10:18]) == (2, 106, 2)  # "Ü" key, UTF-8 value
    assert metadata[18:] == b"KeyValue" + "Ü".encode() + "é".encode()
    assert meta_size == len(metadata) - meta_header_size
    content, decoded, message_id = split_body(body, 2)
    assert bytes(content) == b"CONTENT"
    assert decoded == {"Key": "Value", "Ü": "é"}
    assert message_id == 9


def test_extended_header_size_is_read_not_assumed() -> None:
    # A future sender with a 16-byte extended header: content starts after it.
    body = struct.pack(">HHII", 16, 0, 0, 1) + b"\0" * 4 + b"DATA"
    content, metadata, _ = split_body(body, 2)
    assert (bytes(content), metadata) == (b"DATA", {})


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"short", "extended header"),
        (struct.pack(">HHII", 12, 100, 0, 0) + b"x" * 10, "do not fit"),
        (struct.pack(">HHII", 12, 10, 0, 0) + struct.pack(">H", 5) + b"\0" * 8, "INDEX_COUNT 5"),
        (
            struct.pack(">HHII", 12, 10, 3, 0) + struct.pack(">HHHI", 1, 9, 3, 1) + b"abc",
            "runs past",
        ),
        (
            struct.pack(">HHII", 12, 10, 2, 0) + struct.pack(">HHHI", 1, 1, 1, 1) + b"ab",
            "encoding 1",
        ),
    ],
)
def test_inconsistent_extended_header_is_a_body_error(body: bytes, match: str) -> None:
    with pytest.raises(BodyError, match=match):
        split_body(body, 2)


def test_metadata_needs_header_version_2() -> None:
    with pytest.raises(ValueError, match="metadata needs header_version=2"):
        StringMessage(text="x", metadata={"a": "b"})
