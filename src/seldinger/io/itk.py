"""NRRD and MetaImage (.mha/.mhd) through SimpleITK, whose physical frame is already LPS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from seldinger.files import atomic_path
from seldinger.imaging import Volume
from seldinger.io.errors import ImageReadError
from seldinger.io.itk_header import check_data_file, check_data_size, data_layout
from seldinger.io.limits import (
    MAX_ABS_POSITION_MM,
    MAX_SPACING_MM,
    build_volume,
    check_voxel_count,
    reason,
)
from seldinger.io.native import last_line, native_stderr

__all__ = ["read_itk", "write_itk"]

T = TypeVar("T")

#: Bytes per voxel of SimpleITK's scalar pixel IDs (sitkInt8 … sitkFloat64).
_PIXEL_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 8, 7: 8, 8: 4, 9: 8}


def read_itk(path: str | Path) -> Volume:
    """Read NRRD/MHA/MHD with SimpleITK into a Volume (ITK space is LPS; NRRD files in
    another space are converted by ITK's reader).

    The header is read first; its sizes are checked against :data:`MAX_VOXELS` and the data
    file (:mod:`seldinger.io.itk_header`), and its spacing must be positive, before ITK
    allocates and reads the voxels.

    Raises
    ------
    ImageReadError
        Unreadable, truncated or damaged files, non-positive spacing, images that are not
        3-D scalar, invalid geometry.
    """
    import SimpleITK as sitk

    source = Path(path)
    fmt = "nrrd" if source.suffix.lower() in (".nrrd", ".nhdr") else "metaimage"
    try:
        layout = data_layout(source, fmt)
    except OSError as err:  # unreadable (permissions, I/O error); missing is MissingInputError
        raise ImageReadError(f"{source}: cannot be read ({reason(err)}).") from err
    check_data_file(source, layout)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(source))
    _run_itk(reader.ReadImageInformation, source)
    size = reader.GetSize()
    components = reader.GetNumberOfComponents()
    if len(size) != 3 or components != 1:
        raise ImageReadError(
            f"{source}: expected a 3-D scalar image; got {len(size)}-D with "
            f"{components} component(s)."
        )
    voxels = check_voxel_count(size, str(source))
    _check_spacing(reader.GetSpacing(), source)
    bytes_per_voxel = _PIXEL_BYTES.get(reader.GetPixelIDValue())
    if bytes_per_voxel is None:
        raise ImageReadError(
            f"{source}: pixel type {sitk.GetPixelIDValueAsString(reader.GetPixelID())} is not a scalar number "
            "type. Export the CT as integers or floats."
        )
    check_data_size(source, layout, voxels * bytes_per_voxel)
    image = _run_itk(reader.Execute, source)
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)  # (k, j, i) → (i, j, k)
    affine = np.eye(4)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    affine[:3, 3] = image.GetOrigin()
    if not (np.isfinite(affine).all() and np.abs(affine[:3, 3]).max() <= MAX_ABS_POSITION_MM):
        raise ImageReadError(
            f"{source}: origin or direction is not finite or beyond ±{MAX_ABS_POSITION_MM:g} "
            "mm. The header is damaged; export the image again."
        )
    return build_volume(array, affine, str(source))


def _run_itk(step: Callable[[], T], source: Path) -> T:
    """Run one ITK step with its stderr captured; its failure becomes an ImageReadError."""
    failure: RuntimeError | None = None
    with native_stderr() as noise:
        try:
            return step()
        except RuntimeError as err:
            failure = err
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    said = lines[-1] if lines else last_line(noise) or "unknown error"
    raise ImageReadError(f"{source}: cannot be read ({reason(RuntimeError(said))}).") from failure


def _check_spacing(spacing: tuple[float, ...], source: Path) -> None:
    if not all(0 < s <= MAX_SPACING_MM for s in spacing):
        raise ImageReadError(
            f"{source}: spacing {list(spacing)} mm must be positive (at most {MAX_SPACING_MM:g} "
            "mm); a zero or negative spacing would collapse or flip an axis. The header is "
            "damaged (ElementSpacing / space directions); export the image again."
        )


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
