"""DICOM export: the CT series, SEG, RTSTRUCT, RT Plan (seeds), RT Dose, Spatial Registration.

Every object joins the referenced CT's study and Frame of Reference (same
StudyInstanceUID and FrameOfReferenceUID, a new SeriesInstanceUID each); see
``docs/dicom_export.md``. Quick start::

    from seldinger.io import read_ct
    from seldinger.export.dicom import read_source_series, write_ct_series, write_seg
    ct = read_ct("ct.nii.gz")
    series = write_ct_series(ct.volume, "out/ct")           # NIfTI input: a new study
    # DICOM input: series = read_source_series(folder, ct.meta.series_uid, ct.volume)
    write_seg({"nodule": nodule_mask}, series, "out/seg.dcm")
"""

from seldinger.export.dicom.codes import (
    KNOWN_STRUCTURES,
    StructureCode,
    normalise_name,
    structure_code,
)
from seldinger.export.dicom.contours import plane_contours, rasterise_contours
from seldinger.export.dicom.errors import DicomExportError
from seldinger.export.dicom.registration import (
    RIGID_TOLERANCE,
    FrameRegistration,
    read_registration,
    write_registration,
)
from seldinger.export.dicom.rtdose import DOSE_STORED_MAX, read_rtdose, write_rtdose
from seldinger.export.dicom.rtplan import (
    I125_ISOTOPE_NAME,
    BrachyPlanSeeds,
    read_brachy_plan,
    write_brachy_plan,
)
from seldinger.export.dicom.rtstruct import CONTOUR_DECIMALS, read_rtstruct, write_rtstruct
from seldinger.export.dicom.seg import ALGORITHM_FAMILY, ALGORITHM_NAME, write_seg
from seldinger.export.dicom.source import (
    PLACEHOLDER_PATIENT_ID,
    PLACEHOLDER_PATIENT_NAME,
    SourceSeries,
    read_source_series,
    write_ct_series,
)

__all__ = [
    "ALGORITHM_FAMILY",
    "ALGORITHM_NAME",
    "CONTOUR_DECIMALS",
    "DOSE_STORED_MAX",
    "I125_ISOTOPE_NAME",
    "KNOWN_STRUCTURES",
    "PLACEHOLDER_PATIENT_ID",
    "PLACEHOLDER_PATIENT_NAME",
    "RIGID_TOLERANCE",
    "BrachyPlanSeeds",
    "DicomExportError",
    "FrameRegistration",
    "SourceSeries",
    "StructureCode",
    "normalise_name",
    "plane_contours",
    "rasterise_contours",
    "read_brachy_plan",
    "read_registration",
    "read_rtdose",
    "read_rtstruct",
    "read_source_series",
    "structure_code",
    "write_brachy_plan",
    "write_ct_series",
    "write_registration",
    "write_rtdose",
    "write_rtstruct",
    "write_seg",
]
