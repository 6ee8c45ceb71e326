"""NIfTI-1/2 reading and writing. NIfTI is RAS; the conversion to LPS happens here only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import numpy.typing as npt

from seldinger.files import atomic_path
from seldinger.imaging import Volume
from seldinger.io.errors import ImageReadError
from seldinger.io.limits import build_volume, reason
from seldinger.io.nifti_header import NiftiLayout, read_layout
from seldinger.io.streams import CHUNK_BYTES as _CHUNK_BYTES
from seldinger.io.streams import GZIP_ERRORS, open_gzip

__all__ = ["LPS_FROM_RAS", "read_nifti", "write_nifti"]

#: Flips x and y: RAS ↔ LPS. Its own inverse.
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_FROM_RAS.setflags(write=False)

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT64_MAX = float(np.finfo(np.float64).max)


def read_nifti(path: str | Path) -> Volume:
    """Read a .nii / .nii.gz file into a Volume whose affine maps (i, j, k) to LPS mm.

    The sform is used when its code is set, else the qform (the NIfTI-1 rule, as in
    nibabel). Scaling (scl_slope, scl_inter) is applied. The header is checked, and its
    declared size compared with the file, before the voxels are read
    (:mod:`seldinger.io.nifti_header`); a gzip file is read to its end so that its CRC-32
    is verified.

    Raises
    ------
    ImageReadError
        If the file is not NIfTI, is truncated or damaged, has neither sform nor qform
        (orientation unknown), a non-positive pixdim, a singular or sheared affine, is not
        3-D or holds NaN voxels.
    """
    source = Path(path)
    try:
        layout = read_layout(source)
    except OSError as err:  # unreadable (permissions, I/O error); missing is MissingInputError
        raise ImageReadError(f"{source}: cannot be read ({reason(err)}).") from err
    raw = _read_voxels(source, layout)
    array = _scaled(raw, layout, source)
    return build_volume(array, LPS_FROM_RAS @ layout.ras_affine, str(source))


def _read_voxels(path: Path, layout: NiftiLayout) -> npt.NDArray[Any]:
    """The stored voxels, shape (I, J, K), native byte order (NIfTI stores column-major)."""
    buffer = bytearray(layout.data_bytes)
    view = memoryview(buffer)
    done = 0
    try:
        with open_gzip(path) if layout.compressed else path.open("rb") as handle:
            handle.seek(layout.offset)
            while done < len(buffer):
                n = handle.readinto(view[done:])
                if not n:
                    break
                done += n
            if layout.compressed:  # read to the end: gzip checks CRC-32 and ISIZE there
                while handle.read(_CHUNK_BYTES):
                    pass
    except GZIP_ERRORS as err:
        raise ImageReadError(
            f"{path}: voxel data cannot be read ({reason(err)}); the file is damaged. Export "
            "the image again."
        ) from err
    if done < len(buffer):
        raise ImageReadError(
            f"{path}: truncated: {done} of {len(buffer)} bytes of voxel data. Export the image "
            "again."
        )
    array = np.frombuffer(buffer, dtype=layout.dtype).reshape(layout.shape, order="F")
    with np.errstate(all="ignore"):  # a byte swap of signalling NaNs is not arithmetic
        return array.astype(layout.dtype.newbyteorder("="), copy=False)


def _scaled(raw: npt.NDArray[Any], layout: NiftiLayout, path: Path) -> npt.NDArray[Any]:
    """Voxels with scl_slope/scl_inter applied, kept integer when the scaling is integral.

    nibabel returns float64 for any scaled file; a CT stored as int16 with slope 1 and
    intercept −1024 would then take four times its memory. Integer scaling of integer
    data stays integer (int16 when the range fits, else int32); other scaling gives
    float32 (float64 only for float64 data).
    """
    slope, inter = layout.slope, layout.inter
    if (slope == 1.0 and inter == 0.0) or (raw.dtype.kind == "f" and not np.isfinite(raw).all()):
        return raw  # unscaled (non-finite floats are reported by build_volume)
    lo, hi = float(raw.min()), float(raw.max())
    wide = raw.dtype == np.float64
    out_dtype = np.dtype(np.float64 if wide else np.float32)
    extreme = max(abs(slope * lo + inter), abs(slope * hi + inter))
    if not extreme < (_FLOAT64_MAX if wide else _FLOAT32_MAX):
        raise ImageReadError(
            f"{path}: scl_slope {slope:g} and scl_inter {inter:g} take the voxels to about "
            f"{extreme:.3g}, beyond {out_dtype}. The header is damaged. Export the image again."
        )
    if slope == 1.0 and float(inter).is_integer() and raw.dtype.kind in "iu":
        info = np.iinfo(np.int16)
        fits = info.min <= lo + inter and hi + inter <= info.max
        dtype = np.dtype(np.int16 if fits else np.int32)
        if abs(lo + inter) < 2**31 and abs(hi + inter) < 2**31:
            out = raw.astype(dtype)
            out += dtype.type(int(inter))
            return out
    out = raw.astype(out_dtype)
    out *= out_dtype.type(slope)
    out += out_dtype.type(inter)
    return out


def _nifti_array(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def write_nifti(volume: Volume, path: str | Path, force: bool = False) -> Path:
    """Write a Volume as NIfTI (sform and qform, code 1 = scanner), atomically."""
    target = Path(path)
    ras_affine = LPS_FROM_RAS @ volume.affine
    image = nibabel.Nifti1Image(_nifti_array(np.asarray(volume.array)), ras_affine)
    image.header.set_sform(ras_affine, code=1)
    image.header.set_qform(ras_affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    with atomic_path(target, force=force) as tmp:
        nibabel.save(image, tmp)
    return target
