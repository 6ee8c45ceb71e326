"""NIfTI-1/2 reading and writing. NIfTI is RAS; the conversion to LPS happens here only."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import numpy.typing as npt

from seldinger.files import atomic_path
from seldinger.imaging import GeometryError, Volume
from seldinger.io.errors import ImageReadError

__all__ = ["LPS_FROM_RAS", "read_nifti", "write_nifti"]

#: Flips x and y: RAS ↔ LPS. Its own inverse.
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_FROM_RAS.setflags(write=False)


def read_nifti(path: str | Path) -> Volume:
    """Read a .nii / .nii.gz file into a Volume whose affine maps (i, j, k) to LPS mm.

    The sform is used when its code is set, else the qform (the NIfTI-1 rule, as in
    nibabel). Scaling (scl_slope, scl_inter) is applied.

    Raises
    ------
    ImageReadError
        If the file is not NIfTI, has neither sform nor qform (orientation unknown),
        a singular or sheared affine, or is not 3-D.
    """
    source = Path(path)
    try:
        image = nibabel.load(source)
    except Exception as err:  # nibabel raises ImageFileError, EOFError, OSError …
        raise ImageReadError(f"{source}: not a readable NIfTI file ({err}).") from err
    if not isinstance(image, nibabel.Nifti1Image | nibabel.Nifti2Image):
        raise ImageReadError(f"{source}: not a NIfTI image ({type(image).__name__}).")
    header = image.header
    with warnings.catch_warnings():
        # nibabel warns on degenerate qforms; the Volume check below reports them properly
        warnings.simplefilter("ignore", RuntimeWarning)
        sform, sform_code = header.get_sform(coded=True)
        qform, qform_code = header.get_qform(coded=True)
    if sform_code and sform_code > 0:
        ras_affine = sform
    elif qform_code and qform_code > 0:
        ras_affine = qform
    else:
        raise ImageReadError(
            f"{source}: neither sform nor qform is set (both codes 0), so the orientation in "
            "the patient is unknown. Re-export the image with its scanner orientation (e.g. from "
            "the DICOM with dcm2niix)."
        )
    try:
        array = _scaled_array(image)
    except Exception as err:
        raise ImageReadError(
            f"{source}: voxel data cannot be read ({err}); the file is damaged."
        ) from err
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ImageReadError(
            f"{source}: expected a 3-D image; got shape {array.shape}. Split 4-D series first."
        )
    try:
        return Volume(array, LPS_FROM_RAS @ np.asarray(ras_affine, dtype=np.float64))
    except GeometryError as err:
        raise ImageReadError(
            f"{source}: invalid NIfTI affine ({err}) Fix the header (sform/qform) or resample "
            "the image onto an orthogonal grid."
        ) from err


def _scaled_array(image: Any) -> npt.NDArray[Any]:
    """Voxels with scl_slope/scl_inter applied, kept integer when the scaling is integral.

    nibabel returns float64 for any scaled file; a CT stored as int16 with slope 1 and
    intercept −1024 would then take four times its memory. Integer scaling of integer
    data stays integer (int16 when the range fits, else int32); other scaling gives
    float32 (float64 only for float64 data).
    """
    proxy = image.dataobj
    slope = getattr(proxy, "slope", 1.0)
    inter = getattr(proxy, "inter", 0.0)
    raw_dtype = image.get_data_dtype()
    if slope == 1.0 and inter == 0.0:
        return np.asanyarray(proxy)
    if slope == 1.0 and float(inter).is_integer() and raw_dtype.kind in "iu":
        raw = proxy.get_unscaled()
        lo, hi = int(raw.min()) + int(inter), int(raw.max()) + int(inter)
        info = np.iinfo(np.int16)
        dtype = np.int16 if info.min <= lo and hi <= info.max else np.int32
        out = raw.astype(dtype)
        out += dtype(int(inter))
        return out
    out_dtype = np.float64 if raw_dtype == np.float64 else np.float32
    raw = proxy.get_unscaled()
    out = raw.astype(out_dtype)
    out *= out_dtype(slope)
    out += out_dtype(inter)
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
