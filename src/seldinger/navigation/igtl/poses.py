"""Geometry messages: TRANSFORM, POSITION, TDATA (tracking data) and POINT.

Matrices are 4x4 float64 in millimetres; on the wire they are float32, so a value
round-trips to float32 precision. Layouts follow the OpenIGTLink protocol documents
(``Documents/Protocol/{transform,position,trackingdata,point}.md``) and the C++
library's ``igtl_transform.h``, ``igtl_position.h``, ``igtl_tdata.h``, ``igtl_point.h``.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

from .header import BodyError, fixed_bytes
from .messages import (
    Message,
    as_float_array,
    as_homogeneous,
    c_text,
    require_multiple,
    require_size,
)

__all__ = [
    "InstrumentType",
    "PointElement",
    "PointMessage",
    "PositionLayout",
    "PositionMessage",
    "TrackingDataMessage",
    "TrackingElement",
    "TransformMessage",
]

_IDENTITY_QUATERNION = (0.0, 0.0, 0.0, 1.0)


def _f32_words(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The 12 wire values of a transform: rotation columns, then translation (column-major)."""
    return matrix[:3, :4].T.reshape(12)


def _matrix_from_words(words: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The 4x4 matrix of 12 wire values (float32). A signalling NaN from the wire raises
    the FPU's "invalid" flag when widened; it is let through here and refused, like any
    non-finite value, by the message's constructor (a :class:`BodyError` for the peer)."""
    matrix = np.eye(4)
    with np.errstate(invalid="ignore"):
        matrix[:3, :4] = np.asarray(words, np.float64).reshape(4, 3).T
    return matrix


class InstrumentType(enum.IntEnum):
    """TDATA element type (OpenIGTLink ``trackingdata.md``)."""

    TRACKER = 1
    INSTRUMENT_6D = 2
    INSTRUMENT_3D = 3  # tip only
    INSTRUMENT_5D = 4  # tip and handle, no roll


class PositionLayout(enum.Enum):
    """Wire layout of a POSITION body.

    ``FULL`` (28 bytes: x y z ox oy oz w), ``POSITION_ONLY`` (12 bytes) and
    ``QUATERNION3`` (24 bytes, w >= 0 implied) are the protocol's three variants.
    ``PYIGTL`` is what pyigtl 0.3 sends and expects: one 152-byte element shaped like a
    POINT element with a quaternion (name[64] group[32] rgba[4] xyz ox oy oz w diameter
    owner[20]); it is not in the protocol, and pyigtl reads a standard POSITION as empty.
    """

    FULL = "full"
    POSITION_ONLY = "position_only"
    QUATERNION3 = "quaternion3"
    PYIGTL = "pyigtl"


# --- TRANSFORM ---------------------------------------------------------------------------

_TRANSFORM = struct.Struct(">12f")


@dataclass(frozen=True, kw_only=True, eq=False)
class TransformMessage(Message):
    """TRANSFORM: a 4x4 transform (mm), e.g. tool to tracker.

    Parameters
    ----------
    matrix : array_like, shape (4, 4)
        Homogeneous transform, translation in mm; stored as read-only float64.
        Sent as R11 R21 R31 R12 R22 R32 R13 R23 R33 TX TY TZ (float32).
    """

    TYPE_NAME: ClassVar[str] = "TRANSFORM"
    matrix: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "matrix", as_homogeneous(self.matrix, "matrix"))

    def pack_content(self) -> bytes:
        return _TRANSFORM.pack(*_f32_words(self.matrix).tolist())

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        require_size(content, (48,), "TRANSFORM")
        return cls(matrix=_matrix_from_words(np.frombuffer(content, ">f4")), **common)


# --- POSITION ---------------------------------------------------------------------------

_PYIGTL_POSITION = struct.Struct(">64s32s4B3f4ff20s")  # 152 bytes


@dataclass(frozen=True, kw_only=True, eq=False)
class PositionMessage(Message):
    """POSITION: a position (mm) and an orientation quaternion, 19 % smaller than TRANSFORM.

    Parameters
    ----------
    position_mm : array_like, shape (3,)
        x, y, z in mm.
    quaternion : array_like, shape (4,)
        Orientation (ox, oy, oz, w), unit length (within 1e-3); default identity.
    layout : PositionLayout
        Wire layout (:class:`PositionLayout`); received messages keep theirs.
    """

    TYPE_NAME: ClassVar[str] = "POSITION"
    position_mm: npt.NDArray[np.float64]
    quaternion: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.array(_IDENTITY_QUATERNION)
    )
    layout: PositionLayout = PositionLayout.FULL

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "layout", PositionLayout(self.layout))
        object.__setattr__(
            self, "position_mm", as_float_array(self.position_mm, (3,), "position_mm")
        )
        quaternion = as_float_array(self.quaternion, (4,), "quaternion")
        norm = float(np.linalg.norm(quaternion))
        if abs(norm - 1.0) > 1e-3:
            raise BadInputError(
                f"quaternion (ox, oy, oz, w) must have unit length; got {quaternion} "
                f"(norm {norm:.6f}). Normalise it."
            )
        object.__setattr__(self, "quaternion", quaternion)

    @property
    def matrix(self) -> npt.NDArray[np.float64]:
        """The 4x4 transform (rotation from the quaternion, translation in mm)."""
        x, y, z, w = self.quaternion / np.linalg.norm(self.quaternion)
        matrix = np.eye(4)
        matrix[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
        matrix[:3, 3] = self.position_mm
        return matrix

    def pack_content(self) -> bytes:
        position = self.position_mm.tolist()
        quaternion = self.quaternion.tolist()
        if self.layout is PositionLayout.POSITION_ONLY:
            return struct.pack(">3f", *position)
        if self.layout is PositionLayout.QUATERNION3:
            sign = (
                -1.0 if quaternion[3] < 0 else 1.0
            )  # q and -q are one rotation; w >= 0 is implied
            return struct.pack(">6f", *position, *(sign * q for q in quaternion[:3]))
        if self.layout is PositionLayout.PYIGTL:
            return _PYIGTL_POSITION.pack(
                b"", b"", 255, 255, 0, 255, *position, *quaternion, 0.0, b""
            )
        return struct.pack(">7f", *position, *quaternion)

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        size = len(content)
        if size == 12:
            values = struct.unpack(">3f", content)
            return cls(position_mm=np.array(values), layout=PositionLayout.POSITION_ONLY, **common)
        if size == 24:
            values = struct.unpack(">6f", content)
            ox, oy, oz = values[3:]
            w = math.sqrt(max(0.0, 1.0 - (ox * ox + oy * oy + oz * oz)))
            return cls(
                position_mm=np.array(values[:3]),
                quaternion=np.array((ox, oy, oz, w)),
                layout=PositionLayout.QUATERNION3,
                **common,
            )
        if size == 28:
            values = struct.unpack(">7f", content)
            return cls(position_mm=np.array(values[:3]), quaternion=np.array(values[3:]), **common)
        if size == _PYIGTL_POSITION.size:
            values = _PYIGTL_POSITION.unpack(content)
            return cls(
                position_mm=np.array(values[6:9]),
                quaternion=np.array(values[9:13]),
                layout=PositionLayout.PYIGTL,
                **common,
            )
        raise BodyError(
            f"a POSITION body has 12, 24 or 28 bytes (or 152 as pyigtl sends one pose); got {size}."
        )


# --- TDATA ------------------------------------------------------------------------------

_TDATA_DTYPE = np.dtype(
    [("name", "S20"), ("type", "u1"), ("reserved", "u1"), ("matrix", ">f4", (12,))]
)


@dataclass(frozen=True, eq=False)
class TrackingElement:
    """One tool in a TDATA message.

    Parameters
    ----------
    name : str
        Tool name, at most 20 bytes.
    matrix : array_like, shape (4, 4)
        Tool to tracker (or reference) transform, mm.
    instrument_type : InstrumentType or int
        1 tracker, 2 6-D instrument (default), 3 3-D (tip only), 4 5-D.
    """

    name: str
    matrix: npt.NDArray[np.float64]
    instrument_type: InstrumentType = InstrumentType.INSTRUMENT_6D

    def __post_init__(self) -> None:
        fixed_bytes(self.name, 20, "TrackingElement.name")
        object.__setattr__(self, "matrix", as_homogeneous(self.matrix, f"matrix of {self.name!r}"))
        try:
            object.__setattr__(self, "instrument_type", InstrumentType(self.instrument_type))
        except ValueError as err:
            raise BadInputError(
                f"instrument_type of {self.name!r} must be 1-4 (tracker, 6D, 3D, 5D); got "
                f"{self.instrument_type!r}."
            ) from err


@dataclass(frozen=True, kw_only=True, eq=False)
class TrackingDataMessage(Message):
    """TDATA: all tools of one tracker frame (invisible tools are left out; may be empty).

    Parameters
    ----------
    elements : sequence of TrackingElement
        One 70-byte element each: name[20], type uint8, reserved uint8, 12 float32.
    """

    TYPE_NAME: ClassVar[str] = "TDATA"
    elements: Sequence[TrackingElement] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "elements", tuple(self.elements))

    def pack_content(self) -> bytes:
        records = np.zeros(len(self.elements), _TDATA_DTYPE)
        for record, element in zip(records, self.elements, strict=True):
            record["name"] = element.name.encode("utf-8")
            record["type"] = int(element.instrument_type)
            record["matrix"] = _f32_words(element.matrix)
        return records.tobytes()

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        require_multiple(content, _TDATA_DTYPE.itemsize, "TDATA")
        records = np.frombuffer(content, _TDATA_DTYPE)
        elements = tuple(
            TrackingElement(
                name=c_text(bytes(r["name"])),
                matrix=_matrix_from_words(r["matrix"]),
                instrument_type=InstrumentType(int(r["type"])),
            )
            for r in records
        )
        return cls(elements=elements, **common)

    def find(self, name: str) -> TrackingElement:
        """The element called ``name``; KeyError names the tools present if it is absent."""
        for element in self.elements:
            if element.name == name:
                return element
        raise KeyError(f"no tool {name!r} in this frame; tools: {[e.name for e in self.elements]}.")


# --- POINT ------------------------------------------------------------------------------

_POINT = struct.Struct(">64s32s4B3ff20s")  # 136 bytes


@dataclass(frozen=True, eq=False)
class PointElement:
    """One fiducial in a POINT message (name[64] group[32] RGBA x y z diameter owner[20])."""

    name: str
    position_mm: npt.NDArray[np.float64]
    group: str = ""
    rgba: tuple[int, int, int, int] = (255, 255, 0, 255)
    diameter_mm: float = 0.0
    owner: str = ""

    def __post_init__(self) -> None:
        fixed_bytes(self.name, 64, "PointElement.name")
        fixed_bytes(self.group, 32, "PointElement.group")
        fixed_bytes(self.owner, 20, "PointElement.owner")
        object.__setattr__(
            self,
            "position_mm",
            as_float_array(self.position_mm, (3,), f"position_mm of {self.name!r}"),
        )
        rgba = tuple(int(c) for c in self.rgba)
        if len(rgba) != 4 or not all(0 <= c <= 255 for c in rgba):
            raise BadInputError(
                f"rgba of {self.name!r} must be 4 integers 0-255; got {self.rgba!r}."
            )
        object.__setattr__(self, "rgba", rgba)
        diameter = float(as_float_array(self.diameter_mm, (), f"diameter_mm of {self.name!r}"))
        object.__setattr__(self, "diameter_mm", diameter)


@dataclass(frozen=True, kw_only=True, eq=False)
class PointMessage(Message):
    """POINT: fiducials or targets, 136 bytes each."""

    TYPE_NAME: ClassVar[str] = "POINT"
    points: Sequence[PointElement] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "points", tuple(self.points))

    def pack_content(self) -> bytes:
        return b"".join(
            _POINT.pack(
                p.name.encode(),
                p.group.encode(),
                *p.rgba,
                *p.position_mm.tolist(),
                p.diameter_mm,
                p.owner.encode(),
            )
            for p in self.points
        )

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        require_multiple(content, _POINT.size, "POINT")
        points = []
        for values in _POINT.iter_unpack(content):
            points.append(
                PointElement(
                    name=c_text(values[0]),
                    group=c_text(values[1]),
                    rgba=values[2:6],
                    position_mm=np.array(values[6:9]),
                    diameter_mm=values[9],
                    owner=c_text(values[10]),
                )
            )
        return cls(points=tuple(points), **common)
