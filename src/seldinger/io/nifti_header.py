"""Reading and checking a NIfTI-1/2 header before any voxel is read.

nibabel's own loader checks a header and *fixes* what it finds (a negative pixdim becomes
its absolute value, a wrong bitpix is overwritten), logs the fix on its own stderr handler,
and then trusts the declared size. Seldinger parses the header bytes with nibabel's header
classes but ``check=False``, refuses every inconsistency itself (NIfTI-1 standard,
``nifti1.h``), and compares the declared voxel bytes with what the file holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import numpy.typing as npt

from seldinger.io.errors import ImageReadError
from seldinger.io.limits import (
    MAX_ABS_POSITION_MM,
    MAX_SPACING_MM,
    check_voxel_count,
    reason,
)
from seldinger.io.streams import (
    DEFLATE_MAX_RATIO,
    GZIP_ERRORS,
    StreamError,
    available_bytes,
    gzip_isize,
    open_gzip,
)

__all__ = ["NiftiLayout", "read_layout"]

_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_BYTES = {348: (nibabel.Nifti1Header, b"n+1"), 540: (nibabel.Nifti2Header, b"n+2")}
_EXPORT_FIX = "Export the image again (e.g. from the DICOM with dcm2niix)."


@dataclass(frozen=True)
class NiftiLayout:
    """What a checked header says: where the voxels are, their type, grid and scaling."""

    compressed: bool
    offset: int  # byte offset of the voxels in the (uncompressed) stream
    shape: tuple[int, int, int]
    dtype: np.dtype[Any]  # as stored, with byte order
    slope: float  # 1 and 0 when the header says "no scaling"
    inter: float
    ras_affine: npt.NDArray[np.float64]

    @property
    def data_bytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2] * self.dtype.itemsize


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _header(path: Path, compressed: bool) -> Any:
    try:
        with open_gzip(path) if compressed else path.open("rb") as handle:
            block = handle.read(540)
    except GZIP_ERRORS as err:  # BadGzipFile is an OSError
        raise ImageReadError(
            f"{path}: not a readable NIfTI file ({reason(err)}). {_EXPORT_FIX}"
        ) from err
    if len(block) < 348:
        raise ImageReadError(
            f"{path}: not a NIfTI file: {len(block)} bytes, shorter than a NIfTI header (348). "
            f"The file is truncated or not NIfTI. {_EXPORT_FIX}"
        )
    for order in ("<", ">"):
        size = int(np.frombuffer(block[:4], dtype=f"{order}i4")[0])
        if size in _HEADER_BYTES and len(block) >= size:
            klass, magic = _HEADER_BYTES[size]
            header = klass(block[:size], endianness=order, check=False)
            if bytes(header["magic"])[:3] != magic:
                raise ImageReadError(
                    f"{path}: magic {bytes(header['magic'])!r} is not {magic!r} (a single-file "
                    f"NIfTI image). The header is damaged, or this is a .hdr/.img pair. "
                    f"{_EXPORT_FIX}"
                )
            return header
    raise ImageReadError(
        f"{path}: not a NIfTI file (sizeof_hdr is neither 348 nor 540). The header is damaged "
        f"or the file is not NIfTI. {_EXPORT_FIX}"
    )


def _shape(header: Any, path: Path) -> tuple[int, int, int]:
    dim = [int(d) for d in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise ImageReadError(
            f"{path}: dim[0] is {dim[0]}; it must be the number of dimensions, 1 to 7. The "
            f"header is damaged. {_EXPORT_FIX}"
        )
    sizes = dim[1 : dim[0] + 1]
    check_voxel_count(sizes, str(path))
    if len(sizes) < 3 or any(n != 1 for n in sizes[3:]):
        raise ImageReadError(
            f"{path}: expected a 3-D image; got shape {tuple(sizes)}. Split 4-D series first."
        )
    return sizes[0], sizes[1], sizes[2]


def _dtype(header: Any, path: Path) -> np.dtype[Any]:
    code = int(header["datatype"])
    try:
        dtype = np.dtype(header.get_data_dtype())
    except Exception as err:  # KeyError for an unknown code
        raise ImageReadError(
            f"{path}: datatype {code} is not a NIfTI data type. The header is damaged. "
            f"{_EXPORT_FIX}"
        ) from err
    if dtype.kind not in "iuf":
        raise ImageReadError(
            f"{path}: datatype {code} ({dtype}) is not a scalar number type (a colour or "
            "complex image?). Seldinger reads scalar images; export the CT as integers or floats."
        )
    if int(header["bitpix"]) != dtype.itemsize * 8:
        raise ImageReadError(
            f"{path}: bitpix {int(header['bitpix'])} does not match datatype {code} "
            f"({dtype.itemsize * 8} bits), so the voxel layout is unknown. The header is damaged. "
            f"{_EXPORT_FIX}"
        )
    return dtype


def _offset(header: Any, path: Path) -> int:
    minimum = int(header["sizeof_hdr"]) + 4  # header + 4 extension bytes (nifti1.h)
    value = float(header["vox_offset"])
    if not (value == value and minimum <= value < 2**62 and value.is_integer()):
        raise ImageReadError(
            f"{path}: vox_offset {value:g} must be a whole number of bytes of at least {minimum} "
            f"(the voxels follow the header). The header is damaged. {_EXPORT_FIX}"
        )
    return int(value)


def _scaling(header: Any, path: Path) -> tuple[float, float]:
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    if slope == 0 or slope != slope:  # nifti1.h: scl_slope 0 means no scaling (NaN: nibabel)
        return 1.0, 0.0
    if not (abs(slope) < np.inf and abs(inter) < np.inf):
        raise ImageReadError(
            f"{path}: scl_slope {slope:g} / scl_inter {inter:g} must be finite. The header is "
            f"damaged. {_EXPORT_FIX}"
        )
    return slope, inter


def _spacing(header: Any, path: Path) -> None:
    pixdim = [float(v) for v in header["pixdim"][1:4]]
    if not all(0 < v <= MAX_SPACING_MM for v in pixdim):
        raise ImageReadError(
            f"{path}: pixdim[1:4] {pixdim} mm must be positive voxel sizes (at most "
            f"{MAX_SPACING_MM:g} mm); a zero or negative spacing would collapse or flip an axis. "
            f"The header is damaged. {_EXPORT_FIX}"
        )


def _qform(header: Any, path: Path) -> npt.NDArray[np.float64]:
    form = "qform (quatern_b/c/d, qoffset_x/y/z, pixdim)"
    fields = [float(header[k]) for k in ("quatern_b", "quatern_c", "quatern_d")]
    fields += [float(header[f"qoffset_{a}"]) for a in "xyz"]
    if not all(abs(v) < np.inf for v in fields):
        raise ImageReadError(
            f"{path}: the {form} holds non-finite values. The header is damaged. {_EXPORT_FIX}"
        )
    qfac = float(header["pixdim"][0])
    if qfac not in (-1.0, 0.0, 1.0):
        raise ImageReadError(
            f"{path}: qfac (pixdim[0]) is {qfac:g}; it must be 1 or -1. The header is "
            f"damaged. {_EXPORT_FIX}"
        )
    checked = header.copy()
    if qfac == 0.0:  # nifti1.h: "if pixdim[0] is 0, qfac is taken as 1"
        checked["pixdim"][0] = 1.0
    try:
        return _bounded(np.asarray(checked.get_qform(), dtype=np.float64), form, path)
    except ImageReadError:
        raise
    except Exception as err:  # nibabel: "w2 should be positive" for |(b, c, d)| > 1
        raise ImageReadError(
            f"{path}: the {form} is not a rotation ({reason(err)}). The header is damaged. "
            f"{_EXPORT_FIX}"
        ) from err


def _bounded(affine: npt.NDArray[np.float64], form: str, path: Path) -> npt.NDArray[np.float64]:
    if not (np.isfinite(affine).all() and np.abs(affine[:3]).max() <= MAX_ABS_POSITION_MM):
        raise ImageReadError(
            f"{path}: the {form} holds values that are not finite or beyond "
            f"±{MAX_ABS_POSITION_MM:g} mm. The header is damaged. {_EXPORT_FIX}"
        )
    return affine


def _ras_affine(header: Any, path: Path) -> npt.NDArray[np.float64]:
    """The sform when its code is set, else the qform (the NIfTI-1 rule, as in nibabel).

    Every form whose code is set must be valid, used or not: a damaged qform beside a good
    sform still means a damaged header.
    """
    sform = qform = None
    if int(header["qform_code"]) > 0:
        qform = _qform(header, path)
    if int(header["sform_code"]) > 0:
        rows = np.stack([np.asarray(header[f"srow_{a}"], dtype=np.float64) for a in "xyz"])
        sform = _bounded(np.vstack([rows, [0.0, 0.0, 0.0, 1.0]]), "sform (srow_x/y/z)", path)
    if sform is not None:
        return sform
    if qform is not None:
        return qform
    raise ImageReadError(
        f"{path}: neither sform nor qform is set (both codes 0), so the orientation in "
        "the patient is unknown. Re-export the image with its scanner orientation (e.g. from "
        "the DICOM with dcm2niix)."
    )


def _check_size(path: Path, layout: NiftiLayout) -> None:
    """Refuse a header that declares more voxel bytes than the file holds."""
    needed = layout.offset + layout.data_bytes
    stored = path.stat().st_size
    if not layout.compressed:
        held = stored
    elif needed > stored * DEFLATE_MAX_RATIO:
        held = -1  # deflate cannot expand that much: refuse without decompressing
    elif needed < 2**32 and (gzip_isize(path) or 0) >= needed:
        return  # the trailer says the stream is long enough (ISIZE is the size mod 2**32)
    else:
        try:
            with path.open("rb") as handle:
                held = available_bytes(handle, "gzip", needed)
        except StreamError as err:
            raise ImageReadError(f"{path}: damaged gzip stream ({err}). {_EXPORT_FIX}") from err
    if held < needed:
        shown = "far fewer" if held < 0 else f"only {held}"
        raise ImageReadError(
            f"{path}: truncated or damaged: the header declares "
            f"{' x '.join(map(str, layout.shape))} voxels of "
            f"{layout.dtype.itemsize} byte(s) after {layout.offset} header bytes ({needed} bytes"
            f"{' uncompressed' if layout.compressed else ''}), but the file holds {shown}. "
            f"{_EXPORT_FIX}"
        )


def read_layout(path: Path) -> NiftiLayout:
    """Read and check the header of a .nii / .nii.gz file, and the file's size against it.

    Raises
    ------
    ImageReadError
        Naming the file, the field and the fix, for anything inconsistent.
    """
    compressed = _is_gzip(path)
    header = _header(path, compressed)
    # header floats may hold any bit pattern, signalling NaNs included: every check below
    # tests finiteness itself, so numpy's floating-point warnings are not wanted here
    with np.errstate(all="ignore"):
        shape = _shape(header, path)
        dtype = _dtype(header, path)
        offset = _offset(header, path)
        slope, inter = _scaling(header, path)
        _spacing(header, path)
        affine = _ras_affine(header, path)
    layout = NiftiLayout(compressed, offset, shape, dtype, slope, inter, affine)
    _check_size(path, layout)
    return layout
