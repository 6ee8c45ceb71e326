"""Input/output: CT and masks from DICOM, NIfTI, NRRD and MetaImage; all RAS↔LPS conversion."""

from seldinger.io.ct import Ct, CtMeta
from seldinger.io.dicom import list_series, read_dicom_ct
from seldinger.io.errors import DicomReadError, ImageReadError
from seldinger.io.formats import SUPPORTED_INPUTS, detect_format, read_ct, read_volume, write_volume
from seldinger.io.nifti import LPS_FROM_RAS, read_nifti, write_nifti
from seldinger.io.points_csv import (
    PointsFileError,
    read_columns_csv,
    read_points_csv,
    read_seeds_csv,
)

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
