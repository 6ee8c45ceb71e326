"""IMAGE messages: a 72-byte image header, then the voxels (OpenIGTLink ``image.md``).

Image header (``igtl_image.h``): version uint16 (1), components uint8, scalar type
uint8, endian uint8 (1 big, 2 little), coordinate system uint8 (1 RAS, 2 LPS), size
uint16 x 3 (i, j, k), matrix float32 x 12, sub-volume offset uint16 x 3, sub-volume
size uint16 x 3. The matrix holds the i, j and k axis vectors scaled by the spacing
(mm) and then the position of the image *centre*, which we convert to and from an
``ijk_to_world`` whose translation is the centre of voxel (0, 0, 0), as pyigtl and
Slicer do (centre = origin + A @ (size - 1) / 2). Voxels are sent with i running fastest.

The world frame is whatever the sender flags (``coordinate_system``); this module does
not convert RAS to LPS — that belongs to ``seldinger.io``, like every other conversion.
"""

from __future__ import annotations

import enum
import struct
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

from .header import BodyError
from .messages import Message, as_homogeneous

__all__ = ["CoordinateSystem", "ImageMessage"]

_IMAGE_HEADER = struct.Struct(">HBBBB3H12f3H3H")  # 72 bytes
IMAGE_HEADER_SIZE = _IMAGE_HEADER.size
_SCALAR_TYPES: dict[int, np.dtype[Any]] = {
    2: np.dtype(np.int8),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int16),
    5: np.dtype(np.uint16),
    6: np.dtype(np.int32),
    7: np.dtype(np.uint32),
    10: np.dtype(np.float32),
    11: np.dtype(np.float64),
}
_SCALAR_CODES = {dtype.newbyteorder("="): code for code, dtype in _SCALAR_TYPES.items()}


class CoordinateSystem(enum.IntEnum):
    """The world frame an IMAGE message declares."""

    RAS = 1
    LPS = 2


@dataclass(frozen=True, kw_only=True, eq=False)
class ImageMessage(Message):
    """IMAGE: voxels with their geometry.

    Parameters
    ----------
    array : ndarray, shape (I, J, K) or (I, J, K, C)
        Voxels indexed (i, j, k[, component]); int8-32, uint8-32, float32 or float64,
        either byte order. For a sub-volume, only the sub-volume's voxels.
    ijk_to_world : array_like, shape (4, 4)
        Maps a voxel index of the whole image to a position in mm in
        ``coordinate_system``; the translation is the centre of voxel (0, 0, 0).
    coordinate_system : CoordinateSystem
        ``LPS`` (default) or ``RAS``, as sent; not converted here.
    image_size : tuple of 3 int or None
        Size (I, J, K) of the whole image; None means ``array``'s (no sub-volume).
    subvolume_offset : tuple of 3 int
        Index of ``array[0, 0, 0]`` within the whole image.
    """

    TYPE_NAME: ClassVar[str] = "IMAGE"
    array: npt.NDArray[Any]
    ijk_to_world: npt.NDArray[np.float64]
    coordinate_system: CoordinateSystem = CoordinateSystem.LPS
    image_size: tuple[int, int, int] | None = None
    subvolume_offset: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        array = np.asarray(self.array)
        if array.ndim not in (3, 4):
            raise BadInputError(
                f"array must have axes (i, j, k) or (i, j, k, component); got shape {array.shape}."
            )
        if array.dtype.newbyteorder("=") not in _SCALAR_CODES:
            raise BadInputError(
                f"array dtype must be one of int8/16/32, uint8/16/32, float32, float64; got "
                f"{array.dtype}. Convert it with array.astype(...)."
            )
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "ijk_to_world", as_homogeneous(self.ijk_to_world, "ijk_to_world"))
        object.__setattr__(self, "coordinate_system", CoordinateSystem(self.coordinate_system))
        sub = tuple(int(n) for n in array.shape[:3])
        size = sub if self.image_size is None else tuple(int(n) for n in self.image_size)
        offset = tuple(int(n) for n in self.subvolume_offset)
        if len(size) != 3 or len(offset) != 3:
            raise BadInputError("image_size and subvolume_offset must have 3 entries (i, j, k).")
        if any(o < 0 or o + s > n or n > 0xFFFF for o, s, n in zip(offset, sub, size, strict=True)):
            raise BadInputError(
                f"a sub-volume of shape {sub} at offset {offset} must lie inside image_size "
                f"{size} (each at most 65535)."
            )
        if array.ndim == 4 and not 0 < array.shape[3] < 256:
            raise BadInputError(
                f"the component axis must have 1-255 entries; got {array.shape[3]}."
            )
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "subvolume_offset", offset)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing along i, j, k in mm."""
        spacing = np.linalg.norm(self.ijk_to_world[:3, :3], axis=0)
        return (float(spacing[0]), float(spacing[1]), float(spacing[2]))

    def pack_content(self) -> bytes:
        size = np.array(self.image_size, np.float64)
        centre = self.ijk_to_world @ np.append((size - 1.0) / 2.0, 1.0)
        matrix = [*self.ijk_to_world[:3, :3].T.reshape(9).tolist(), *centre[:3].tolist()]
        array = self.array
        components = 1 if array.ndim == 3 else array.shape[3]
        big = array.dtype.byteorder == ">" or (
            array.dtype.byteorder == "=" and sys.byteorder == "big"
        )
        head = _IMAGE_HEADER.pack(
            1,
            components,
            _SCALAR_CODES[array.dtype.newbyteorder("=")],
            1 if big else 2,  # endian of the voxels (the header itself is big-endian)
            int(self.coordinate_system),
            *self.image_size or (),
            *matrix,
            *self.subvolume_offset,
            *array.shape[:3],
        )
        axes = (2, 1, 0) if array.ndim == 3 else (2, 1, 0, 3)
        return head + np.ascontiguousarray(array.transpose(axes)).tobytes()

    @classmethod
    def unpack_content(cls, content: memoryview, **common: Any) -> Self:
        if len(content) < IMAGE_HEADER_SIZE:
            raise BodyError(
                f"an IMAGE body starts with a {IMAGE_HEADER_SIZE}-byte image header; got "
                f"{len(content)} bytes."
            )
        values = _IMAGE_HEADER.unpack(content[:IMAGE_HEADER_SIZE])
        components, scalar_type, endian, coordinate = values[1:5]
        size = np.array(values[5:8])
        matrix_words, offset, sub = values[8:20], values[20:23], values[23:26]
        dtype = _SCALAR_TYPES.get(scalar_type)
        if dtype is None or endian not in (1, 2) or coordinate not in (1, 2) or components == 0:
            raise BodyError(
                f"IMAGE header has scalar type {scalar_type}, endian {endian}, coordinate "
                f"system {coordinate}, {components} components; expected a type in "
                f"{sorted(_SCALAR_TYPES)}, endian 1|2, coordinates 1|2, >= 1 component."
            )
        dtype = dtype.newbyteorder(">" if endian == 1 else "<")
        voxels = int(np.prod(sub)) * components
        data = content[IMAGE_HEADER_SIZE:]
        if len(data) != voxels * dtype.itemsize:
            raise BodyError(
                f"IMAGE sub-volume {sub} x {components} of {dtype} needs "
                f"{voxels * dtype.itemsize} bytes of voxels; got {len(data)}."
            )
        shape = (
            (sub[2], sub[1], sub[0]) if components == 1 else (sub[2], sub[1], sub[0], components)
        )
        axes = (2, 1, 0) if components == 1 else (2, 1, 0, 3)
        array = np.frombuffer(data, dtype).reshape(shape).transpose(axes)
        ijk_to_world = np.eye(4)
        ijk_to_world[:3, :3] = np.array(matrix_words[:9], np.float64).reshape(3, 3).T
        ijk_to_world[:3, 3] = np.array(matrix_words[9:]) - ijk_to_world[:3, :3] @ (
            (size - 1.0) / 2.0
        )
        try:
            return cls(
                array=array,
                ijk_to_world=ijk_to_world,
                coordinate_system=CoordinateSystem(coordinate),
                image_size=(int(size[0]), int(size[1]), int(size[2])),
                subvolume_offset=(int(offset[0]), int(offset[1]), int(offset[2])),
                **common,
            )
        except ValueError as err:
            raise BodyError(f"IMAGE does not decode: {err}") from err
