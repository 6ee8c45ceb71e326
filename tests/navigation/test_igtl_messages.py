"""Message bodies: hand-computed layouts, round trips, byte-exact goldens against pyigtl, bad input."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest

from seldinger.navigation.igtl import (
    HEADER_SIZE,
    BodyError,
    CrcMismatchError,
    Header,
    HeaderError,
    ImageMessage,
    InstrumentType,
    PointElement,
    PointMessage,
    PositionLayout,
    PositionMessage,
    RawMessage,
    StatusCode,
    StatusMessage,
    StringMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
    crc64,
    decode_message,
    unpack_message,
)

T_S = 1_700_000_000.25  # a timestamp exact in binary, so round trips compare equal

# 90 degrees about z, translation (10.5, -20.25, 30) mm: every value exact in float32.
NEEDLE_TO_TRACKER = np.array(
    [[0.0, -1.0, 0.0, 10.5], [1.0, 0.0, 0.0, -20.25], [0.0, 0.0, 1.0, 30.0], [0.0, 0.0, 0.0, 1.0]]
)


def content_of(data: bytes) -> bytes:
    return data[HEADER_SIZE:]


# --- hand-computed layouts -------------------------------------------------------------------


def test_transform_is_column_major_rotation_then_translation() -> None:
    data = TransformMessage(device_name="Needle", timestamp_s=T_S, matrix=NEEDLE_TO_TRACKER).pack()
    header = Header.unpack(data[:HEADER_SIZE], 1 << 30)
    assert (header.type_name, header.device_name, header.body_size) == ("TRANSFORM", "Needle", 48)
    assert header.crc == crc64(content_of(data))
    assert header.timestamp == (1_700_000_000 << 32) | 0x40000000
    # R11 R21 R31 | R12 R22 R32 | R13 R23 R33 | TX TY TZ
    assert struct.unpack(">12f", content_of(data)) == (0, 1, 0, -1, 0, 0, 0, 0, 1, 10.5, -20.25, 30)


def test_tdata_elements_are_70_bytes() -> None:
    message = TrackingDataMessage(
        elements=[
            TrackingElement("Needle", NEEDLE_TO_TRACKER),
            TrackingElement("Ref", np.eye(4), InstrumentType.TRACKER),
        ]
    )
    content = content_of(message.pack())
    assert len(content) == 140
    name, kind, reserved, *matrix = struct.unpack(">20sBB12f", content[:70])
    assert (name.rstrip(b"\0"), kind, reserved) == (b"Needle", 2, 0)
    assert tuple(matrix) == (0, 1, 0, -1, 0, 0, 0, 0, 1, 10.5, -20.25, 30)
    assert content[70:90].rstrip(b"\0") == b"Ref" and content[90] == 1


def test_status_layout_and_null_terminated_message() -> None:
    message = StatusMessage(
        code=StatusCode.NOT_READY, subcode=-42, error_name="Homing", status_string="axis 3"
    )
    content = content_of(message.pack())
    assert struct.unpack(">Hq20s", content[:30]) == (13, -42, b"Homing" + b"\0" * 14)
    assert content[30:] == b"axis 3\0"


def test_string_layout() -> None:
    assert content_of(StringMessage(text="abc").pack()) == b"\x00\x03\x00\x03abc"
    assert content_of(StringMessage(text="é").pack()) == b"\x00\x6a\x00\x02\xc3\xa9"


def test_point_elements_are_136_bytes() -> None:
    point = PointElement(
        "Nodule", np.array([56.5, 86.25, -116.0]), "Target", (255, 0, 0, 255), 7.5, "CT"
    )
    content = content_of(PointMessage(points=[point]).pack())
    assert len(content) == 136
    values = struct.unpack(">64s32s4B3ff20s", content)
    assert values[2:10] == (255, 0, 0, 255, 56.5, 86.25, -116.0, 7.5)


@pytest.mark.parametrize(
    ("layout", "size"),
    [
        (PositionLayout.FULL, 28),
        (PositionLayout.QUATERNION3, 24),
        (PositionLayout.POSITION_ONLY, 12),
        (PositionLayout.PYIGTL, 152),
    ],
)
def test_position_variants_round_trip(layout: PositionLayout, size: int) -> None:
    quaternion = np.array([0.0, 0.0, -0.6, -0.8])  # w < 0: the 24-byte form flips the sign
    message = PositionMessage(
        position_mm=np.array([1.5, -2.5, 3.25]), quaternion=quaternion, layout=layout
    )
    data = message.pack()
    assert len(content_of(data)) == size
    decoded = unpack_message(data)
    assert isinstance(decoded, PositionMessage)
    assert decoded.layout is layout
    assert decoded.position_mm.tolist() == [1.5, -2.5, 3.25]
    if layout is PositionLayout.POSITION_ONLY:
        assert decoded.quaternion.tolist() == [0.0, 0.0, 0.0, 1.0]
    else:
        np.testing.assert_allclose(decoded.matrix, message.matrix, atol=1e-6)
    assert decoded.pack() == message.pack() if layout is not PositionLayout.QUATERNION3 else True


def test_position_matrix_of_quarter_turn_about_z() -> None:
    half = math.sqrt(0.5)
    message = PositionMessage(
        position_mm=np.array([1.0, 2.0, 3.0]), quaternion=np.array([0.0, 0.0, half, half])
    )
    np.testing.assert_allclose(message.matrix[:3, :3], NEEDLE_TO_TRACKER[:3, :3], atol=1e-12)
    assert message.matrix[:3, 3].tolist() == [1.0, 2.0, 3.0]


# --- round trips --------------------------------------------------------------------------------


def test_round_trip_of_every_type_with_v3_metadata() -> None:
    common: dict[str, Any] = {
        "device_name": "Dev",
        "timestamp_s": T_S,
        "header_version": 2,
        "message_id": 77,
    }
    image = np.arange(24, dtype=np.int16).reshape(4, 3, 2)
    messages = [
        TransformMessage(matrix=NEEDLE_TO_TRACKER, metadata={"TransformStatus": "OK"}, **common),
        PositionMessage(position_mm=np.array([1.0, 2.0, 3.0]), **common),
        TrackingDataMessage(elements=[TrackingElement("Needle", NEEDLE_TO_TRACKER)], **common),
        PointMessage(points=[PointElement("A", np.array([1.0, 2.0, 3.0]))], **common),
        StatusMessage(
            code=StatusCode.BUSY, subcode=3, error_name="E", status_string="busy", **common
        ),
        StringMessage(text="naïve", metadata={"Unit": "mm"}, **common),
        ImageMessage(array=image, ijk_to_world=np.diag([0.5, 0.5, 2.0, 1.0]), **common),
        RawMessage(message_type="NDARRAY", content=b"\x01\x02", **common),
    ]
    for message in messages:
        data = message.pack()
        decoded = unpack_message(data)
        assert type(decoded) is type(message)
        assert decoded.pack() == data, message.type_name
        assert (decoded.device_name, decoded.timestamp_s, decoded.message_id) == ("Dev", T_S, 77)
        assert decoded.metadata == message.metadata


def test_image_keeps_i_j_k_axes_and_geometry() -> None:
    array = np.random.default_rng(20240611).integers(-1000, 1000, (5, 4, 3)).astype(">i2")
    ijk_to_world = np.array(
        [[0, 0.5, 0, -10.0], [0.75, 0, 0, 20.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1.0]]
    )
    message = ImageMessage(array=array, ijk_to_world=ijk_to_world)
    decoded = unpack_message(message.pack())
    assert isinstance(decoded, ImageMessage)
    np.testing.assert_array_equal(decoded.array, array)
    np.testing.assert_allclose(decoded.ijk_to_world, ijk_to_world)
    assert decoded.spacing_mm == (0.75, 0.5, 2.0)
    assert decoded.image_size == (5, 4, 3)


def test_image_subvolume_round_trip() -> None:
    message = ImageMessage(
        array=np.ones((2, 2, 1, 3), np.uint8),
        ijk_to_world=np.eye(4),
        image_size=(10, 10, 5),
        subvolume_offset=(4, 4, 2),
    )
    decoded = unpack_message(message.pack())
    assert isinstance(decoded, ImageMessage)
    assert (decoded.image_size, decoded.subvolume_offset, decoded.array.shape) == (
        (10, 10, 5),
        (4, 4, 2),
        (2, 2, 1, 3),
    )


def test_empty_tdata_is_a_valid_zero_length_body() -> None:
    data = TrackingDataMessage(device_name="Tracker").pack()
    assert len(data) == HEADER_SIZE
    decoded = unpack_message(data)
    assert isinstance(decoded, TrackingDataMessage) and decoded.elements == ()


# --- byte-exact goldens against pyigtl ----------------------------------------------------------


@pytest.fixture
def pyigtl():  # type: ignore[no-untyped-def]
    return pytest.importorskip("pyigtl")


def test_golden_transform(pyigtl) -> None:  # type: ignore[no-untyped-def]
    theirs = pyigtl.TransformMessage(NEEDLE_TO_TRACKER, timestamp=T_S, device_name="Needle").pack()
    ours = TransformMessage(device_name="Needle", timestamp_s=T_S, matrix=NEEDLE_TO_TRACKER).pack()
    assert ours == theirs


def test_golden_string(pyigtl) -> None:  # type: ignore[no-untyped-def]
    theirs = pyigtl.StringMessage("hello world", timestamp=T_S, device_name="Text").pack()
    assert StringMessage(device_name="Text", timestamp_s=T_S, text="hello world").pack() == theirs


def test_golden_point(pyigtl) -> None:  # type: ignore[no-untyped-def]
    theirs = pyigtl.PointMessage(
        positions=[[1, 2, 3], [4.5, 5.5, 6.5]],
        names=["A", "B"],
        rgba_colors=[[1, 2, 3, 4], [5, 6, 7, 8]],
        diameters=[2.5, 3.0],
        groups="Fiducials",
        owners="CT",
        timestamp=T_S,
        device_name="Points",
    ).pack()
    points = [
        PointElement("A", np.array([1.0, 2.0, 3.0]), "Fiducials", (1, 2, 3, 4), 2.5, "CT"),
        PointElement("B", np.array([4.5, 5.5, 6.5]), "Fiducials", (5, 6, 7, 8), 3.0, "CT"),
    ]
    assert PointMessage(device_name="Points", timestamp_s=T_S, points=points).pack() == theirs


def test_golden_position_in_pyigtl_layout(pyigtl) -> None:  # type: ignore[no-untyped-def]
    theirs = pyigtl.PositionMessage(
        positions=[1.0, 2.0, 3.0],
        quaternions=[0.0, 0.0, 0.6, 0.8],
        timestamp=T_S,
        device_name="Probe",
    ).pack()
    ours = PositionMessage(
        device_name="Probe",
        timestamp_s=T_S,
        position_mm=np.array([1.0, 2.0, 3.0]),
        quaternion=np.array([0.0, 0.0, 0.6, 0.8]),
        layout=PositionLayout.PYIGTL,
    )
    assert ours.pack() == theirs


def test_golden_image(pyigtl) -> None:  # type: ignore[no-untyped-def]
    voxels_kji = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)  # pyigtl's (k, j, i)
    ijk_to_world = np.array(
        [[0.5, 0, 0, -10.0], [0, 0.75, 0, 20.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1.0]]
    )
    theirs = pyigtl.ImageMessage(
        voxels_kji, ijk_to_world_matrix=ijk_to_world, timestamp=T_S, device_name="CT"
    ).pack()
    ours = ImageMessage(
        device_name="CT",
        timestamp_s=T_S,
        array=voxels_kji.transpose(2, 1, 0),
        ijk_to_world=ijk_to_world,
    )
    assert ours.pack() == theirs


def test_golden_v3_header_with_metadata(pyigtl) -> None:  # type: ignore[no-untyped-def]
    theirs = pyigtl.TransformMessage(NEEDLE_TO_TRACKER, timestamp=T_S, device_name="Needle")
    theirs.header_version = 2
    theirs.message_id = 12
    theirs.metadata = {"TransformStatus": "OK", "Unit": "mm"}
    ours = TransformMessage(
        device_name="Needle",
        timestamp_s=T_S,
        matrix=NEEDLE_TO_TRACKER,
        header_version=2,
        message_id=12,
        metadata={"TransformStatus": "OK", "Unit": "mm"},
    )
    assert ours.pack() == theirs.pack()


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, 1e39])
def test_non_finite_or_huge_matrix_names_the_field(bad: float) -> None:
    matrix = np.eye(4)
    matrix[0, 3] = bad
    with pytest.raises(ValueError, match="matrix"):
        TransformMessage(matrix=matrix)
    with pytest.raises(ValueError, match="matrix of 'Needle'"):
        TrackingElement("Needle", matrix)


def test_matrix_must_be_homogeneous_4x4() -> None:
    with pytest.raises(ValueError, match=r"matrix must have shape \(4, 4\)"):
        TransformMessage(matrix=np.eye(3))
    projective = np.eye(4)
    projective[3, 0] = 1.0
    with pytest.raises(ValueError, match="last row"):
        TransformMessage(matrix=projective)


def test_matrix_is_read_only_copy() -> None:
    source = np.eye(4)
    message = TransformMessage(matrix=source)
    source[0, 3] = 5.0
    assert message.matrix[0, 3] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        message.matrix[0, 3] = 1.0


def test_quaternion_must_be_unit_length() -> None:
    with pytest.raises(ValueError, match=r"quaternion .* must have unit length"):
        PositionMessage(position_mm=np.zeros(3), quaternion=np.array([0.0, 0.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="position_mm must be finite"):
        PositionMessage(position_mm=np.array([0.0, math.nan, 0.0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"code": 20}, "STATUS code 0-19"),
        ({"subcode": 2**63}, "int64"),
        ({"error_name": "e" * 21}, "error_name must be at most 20 bytes"),
    ],
)
def test_status_fields_are_checked(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StatusMessage(**kwargs)  # type: ignore[arg-type]


def test_string_limits() -> None:
    with pytest.raises(ValueError, match="65535 bytes"):
        StringMessage(text="x" * 65536)
    with pytest.raises(ValueError, match="cannot be encoded as ascii"):
        StringMessage(text="é", encoding=3)
    with pytest.raises(ValueError, match="encoding must be"):
        StringMessage(text="x", encoding=1015)


def test_point_and_element_names_are_checked() -> None:
    with pytest.raises(ValueError, match=r"PointElement\.name must be at most 64 bytes"):
        PointElement("n" * 65, np.zeros(3))
    with pytest.raises(ValueError, match="rgba"):
        PointElement("A", np.zeros(3), rgba=(0, 0, 0, 256))
    with pytest.raises(ValueError, match="instrument_type of 'T' must be 1-4"):
        TrackingElement("T", np.eye(4), 7)  # type: ignore[arg-type]


def test_image_dtype_and_shape_are_checked() -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        ImageMessage(array=np.zeros((2, 2, 2), np.int64), ijk_to_world=np.eye(4))
    with pytest.raises(ValueError, match="axes"):
        ImageMessage(array=np.zeros((2, 2)), ijk_to_world=np.eye(4))
    with pytest.raises(ValueError, match="must lie inside image_size"):
        ImageMessage(
            array=np.zeros((2, 2, 2), np.uint8), ijk_to_world=np.eye(4), image_size=(2, 2, 1)
        )


# --- bad bodies ----------------------------------------------------------------------------------


def message_bytes(type_name: str, content: bytes, version: int = 1) -> bytes:
    header = Header(version, type_name, "Bad", 0, len(content), crc64(content))
    return header.pack() + content


@pytest.mark.parametrize(
    ("type_name", "content", "match"),
    [
        ("TRANSFORM", b"\0" * 47, "TRANSFORM body has 48 bytes; got 47"),
        ("TRANSFORM", b"", "TRANSFORM body has 48 bytes; got 0"),
        ("POSITION", b"\0" * 20, "POSITION body has 12, 24 or 28 bytes"),
        ("TDATA", b"\0" * 71, "whole number of 70-byte elements"),
        ("TDATA", b"Tool".ljust(20, b"\0") + b"\x09\0" + b"\0" * 48, "does not decode"),
        ("POINT", b"\0" * 135, "136-byte elements"),
        ("STATUS", b"", "at least 30 bytes"),
        ("STATUS", struct.pack(">Hq20s", 99, 0, b""), "STATUS code must be 0-19"),
        ("STRING", b"\0\x03", "at least 4 bytes"),
        ("STRING", b"\0\x03\0\x09abc", "runs past"),
        ("STRING", b"\0\x03\0\x01\xff", "not valid ascii"),
        ("IMAGE", b"", "72-byte image header"),
        (
            "IMAGE",
            struct.pack(">HBBBB3H12f3H3H", 1, 1, 9, 2, 2, 1, 1, 1, *[0.0] * 12, 0, 0, 0, 1, 1, 1),
            "scalar type 9",
        ),
        (
            "IMAGE",
            struct.pack(">HBBBB3H12f3H3H", 1, 1, 3, 2, 2, 2, 2, 2, *[0.0] * 12, 0, 0, 0, 2, 2, 2)
            + b"\0" * 7,
            "needs 8 bytes",
        ),
        ("TRANSFORM", struct.pack(">12f", *[math.nan] * 12), "must be finite"),
        # a signalling NaN (0x7f804000) raises the FPU's "invalid" flag when widened to
        # float64: no RuntimeWarning (an error under pytest), a BodyError (found by fuzzing)
        ("TRANSFORM", bytes.fromhex("7f804000") * 12, "must be finite"),
        ("TDATA", b"Tool".ljust(20, b"\0") + b"\2\0" + bytes.fromhex("7f804000") * 12, "finite"),
    ],
)
def test_malformed_bodies_raise_body_error(type_name: str, content: bytes, match: str) -> None:
    with pytest.raises(BodyError, match=match):
        unpack_message(message_bytes(type_name, content))


def test_unknown_and_query_types_decode_as_raw() -> None:
    for type_name, content in [
        ("GET_TDATA", b""),
        ("NDARRAY", b"\x01\x02\x03"),
        ("STT_TDATA", b"\0" * 36),
    ]:
        decoded = unpack_message(message_bytes(type_name, content))
        assert isinstance(decoded, RawMessage)
        assert (decoded.type_name, decoded.content) == (type_name, content)


def test_wrong_crc_is_detected() -> None:
    data = bytearray(TransformMessage(matrix=NEEDLE_TO_TRACKER).pack())
    data[-1] ^= 0x01
    with pytest.raises(CrcMismatchError, match="CRC-64"):
        unpack_message(bytes(data))
    assert isinstance(unpack_message(bytes(data), verify_crc=False), TransformMessage)


def test_truncated_message_is_a_header_error() -> None:
    data = TransformMessage(matrix=NEEDLE_TO_TRACKER).pack()
    with pytest.raises(HeaderError, match="announces 48 body bytes; 40 follow"):
        unpack_message(data[:-8])


def test_decode_needs_the_announced_body() -> None:
    data = TransformMessage(matrix=NEEDLE_TO_TRACKER).pack()
    with pytest.raises(BodyError, match="the header says 48"):
        decode_message(Header.unpack(data[:HEADER_SIZE], 1 << 30), data[HEADER_SIZE:-1])
