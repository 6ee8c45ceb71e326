"""Input/output: CT and masks from DICOM, NIfTI, NRRD and MetaImage; all RAS↔LPS conversion."""

from seldinger.io.ct import Ct, CtMeta
from seldinger.io.dicom import list_series, read_dicom_ct
from seldinger.io.errors import DicomReadError, ImageReadError
from seldinger.io.formats import SUPPORTED_INPUTS, detect_format, read_ct, read_volume, write_volume
from seldinger.io.nifti import LPS_FROM_RAS, read_nifti, write_nifti

__all__ = [
    "LPS_FROM_RAS",
    "SUPPORTED_INPUTS",
    "Ct",
    "CtMeta",
    "DicomReadError",
    "ImageReadError",
    "detect_format",
    "list_series",
    "read_ct",
    "read_dicom_ct",
    "read_nifti",
    "read_volume",
    "write_nifti",
    "write_volume",
]
