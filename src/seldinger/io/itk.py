"""NRRD and MetaImage (.mha/.mhd) through SimpleITK, whose physical frame is already LPS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.files import atomic_path
from seldinger.imaging import GeometryError, Volume
from seldinger.io.errors import ImageReadError

__all__ = ["read_itk", "write_itk"]


def read_itk(path: str | Path) -> Volume:
    """Read NRRD/MHA/MHD with SimpleITK into a Volume (ITK space is LPS; NRRD files in
    another space are converted by ITK's reader)."""
    import SimpleITK as sitk

    source = Path(path)
    try:
        image = sitk.ReadImage(str(source))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
        raise ImageReadError(f"{source}: cannot be read ({first}).") from err
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(
            f"{source}: expected a 3-D scalar image; got {image.GetDimension()}-D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)."
        )
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)  # (k, j, i) → (i, j, k)
    affine = np.eye(4)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    affine[:3, 3] = image.GetOrigin()
    try:
        return Volume(array, affine)
    except GeometryError as err:
        raise ImageReadError(f"{source}: invalid geometry ({err})") from err


def _itk_array(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return array.astype(np.uint8) if array.dtype == bool else array


def write_itk(volume: Volume, path: str | Path, force: bool = False) -> Path:
    """Write a Volume as NRRD (.nrrd) or MetaImage (.mha), compressed, atomically."""
    import SimpleITK as sitk

    target = Path(path)
    array = np.ascontiguousarray(_itk_array(np.asarray(volume.array)).transpose(2, 1, 0))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(volume.spacing_mm)
    image.SetOrigin(tuple(float(x) for x in volume.origin_lps_mm))
    image.SetDirection(tuple(float(x) for x in volume.direction.ravel()))
    with atomic_path(target, force=force) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return target
