"""What every exported DICOM object shares: equipment, patient/study copy, UIDs, atomic save.

Each object gets a new SeriesInstanceUID and SOPInstanceUID and keeps the referenced CT's
StudyInstanceUID, patient module and (where the IOD has one) FrameOfReferenceUID, so that a
PACS files it in the CT's study and a viewer overlays it on the CT (PS3.3 C.7.1.1 Patient,
C.7.2.1 General Study, C.7.5.1 General Equipment, C.12.1 SOP Common).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

import seldinger
from seldinger.files import atomic_path

if TYPE_CHECKING:  # source.py imports this module
    from seldinger.export.dicom.source import SourceSeries

__all__ = [
    "DEVICE_SERIAL_NUMBER",
    "MANUFACTURER",
    "MODEL_NAME",
    "PATIENT_KEYWORDS",
    "STUDY_KEYWORDS",
    "dicom_date_time",
    "ds_text",
    "ds_texts",
    "file_meta",
    "frame_of_reference",
    "new_instance",
    "save_dataset",
]

#: General Equipment module values of every object Seldinger writes.
MANUFACTURER = "Seldinger"
MODEL_NAME = "Seldinger"
DEVICE_SERIAL_NUMBER = "0"  # research software: no device serial; SEG needs a value (Type 1)
_IMPLEMENTATION_VERSION_NAME = f"SELDINGER_{seldinger.__version__}"[:16]

#: Patient module (PS3.3 C.7.1.1) attributes copied from the referenced CT.
PATIENT_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDsSequence",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
)
_PATIENT_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
#: General Study module (PS3.3 C.7.2.1) attributes copied from the referenced CT.
STUDY_KEYWORDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)
_STUDY_TYPE2 = ("StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


def ds_text(value: float) -> str:
    """A number as a DICOM Decimal String (at most 16 characters, full precision that fits).

    >>> ds_text(-171.699997), ds_text(1 / 3)
    ('-171.699997', '0.33333333333333')
    """
    return str(format_number_as_ds(float(value)))


def ds_texts(values: Iterable[float] | npt.NDArray[np.float64]) -> list[str]:
    """:func:`ds_text` of each value (for multi-valued DS attributes)."""
    return [ds_text(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def dicom_date_time(moment: datetime) -> tuple[str, str]:
    """(DA, TM) strings of a moment, e.g. ``("20240611", "142530.123456")``."""
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S.%f")


def new_instance(
    reference: Dataset,
    sop_class_uid: str,
    modality: str,
    series_description: str,
    series_number: int,
    moment: datetime | None = None,
    content_date_time: bool = True,
) -> Dataset:
    """A dataset with the SOP Common, Patient, General Study, series and equipment attributes.

    Parameters
    ----------
    reference : Dataset
        A header of the referenced CT series: patient and study attributes are copied from
        it (Type 2 attributes it lacks are written empty).
    sop_class_uid : str
        SOP Class of the new object.
    modality : str
        Modality of the new series (``"SEG"``, ``"RTSTRUCT"``, ``"RTPLAN"``, ``"RTDOSE"``,
        ``"REG"``).
    series_description : str
        Shown by viewers in the series list.
    series_number : int
        SeriesNumber of the new series.
    moment : datetime, optional
        Content date and time (default: now).
    content_date_time : bool
        Write ContentDate/ContentTime (not part of every IOD, e.g. RT Structure Set).

    Returns
    -------
    Dataset
        With a new SeriesInstanceUID and SOPInstanceUID, file meta information set for
        explicit VR little endian.
    """
    when = datetime.now() if moment is None else moment
    date, time = dicom_date_time(when)
    ds = Dataset()
    ds.SpecificCharacterSet = reference.get("SpecificCharacterSet", "ISO_IR 100") or "ISO_IR 100"
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.SOPClassUID = UID(sop_class_uid)
    ds.SOPInstanceUID = generate_uid()
    for keyword in (*PATIENT_KEYWORDS, *STUDY_KEYWORDS):
        if keyword in reference:
            ds[keyword] = reference[keyword]
    for keyword in (*_PATIENT_TYPE2, *_STUDY_TYPE2):
        if keyword not in ds:
            setattr(ds, keyword, None)
    ds.Modality = modality
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.SeriesDate = date
    ds.SeriesTime = time
    ds.OperatorsName = None
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.SoftwareVersions = seldinger.__version__
    ds.DeviceSerialNumber = DEVICE_SERIAL_NUMBER
    if content_date_time:
        ds.ContentDate = date
        ds.ContentTime = time
    ds.InstanceNumber = 1
    ds.file_meta = file_meta(ds)
    return ds


def frame_of_reference(ds: Dataset, series: SourceSeries) -> None:
    """Frame of Reference module (PS3.3 C.7.4.1) of the referenced CT: same UID, same origin."""
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = series.reference.get("PositionReferenceIndicator", None)


def file_meta(ds: Dataset) -> FileMetaDataset:
    """File meta information (PS3.10 7.1) for ``ds`` in explicit VR little endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME
    return meta


def save_dataset(ds: Dataset, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``ds`` as a DICOM file (PS3.10) atomically; refuse to replace unless ``force``."""
    target = Path(path)
    with atomic_path(target, force=force) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return target
