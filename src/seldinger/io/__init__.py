"""Input/output: CT and masks from DICOM, NIfTI, NRRD and MetaImage; all RAS↔LPS conversion."""

from typing import TYPE_CHECKING

from seldinger.io.ct import Ct, CtMeta
from seldinger.io.errors import DicomReadError, ImageReadError
from seldinger.io.formats import SUPPORTED_INPUTS, detect_format, read_ct, read_volume, write_volume
from seldinger.io.nifti import LPS_FROM_RAS, read_nifti, write_nifti
from seldinger.io.points_csv import (
    PointsFileError,
    read_columns_csv,
    read_points_csv,
    read_seeds_csv,
)

if TYPE_CHECKING:
    from seldinger.io.dicom import list_series, read_dicom_ct

# The DICOM reader (pydicom) is imported on first use: `seldinger.io.list_series` works as
# before, but reading a NIfTI CT does not pay for pydicom's import.
_LAZY = {"list_series", "read_dicom_ct"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from seldinger.io import dicom

        return getattr(dicom, name)
    raise AttributeError(f"module 'seldinger.io' has no attribute {name!r}")


__all__ = [
    "LPS_FROM_RAS",
    "SUPPORTED_INPUTS",
    "Ct",
    "CtMeta",
    "DicomReadError",
    "ImageReadError",
    "PointsFileError",
    "detect_format",
    "list_series",
    "read_columns_csv",
    "read_ct",
    "read_dicom_ct",
    "read_nifti",
    "read_points_csv",
    "read_seeds_csv",
    "read_volume",
    "write_nifti",
    "write_volume",
]
