"""DICOM RT Dose of a dose grid (Gy) in the CT's Frame of Reference, referencing its RT Plan.

Modules (PS3.3 A.18 RT Dose IOD): Patient, General Study (the CT's), RT Series, Frame of
Reference (the CT's), General Equipment, General Image, Image Plane, Image Pixel,
Multi-frame, RT Dose (C.8.8.3), SOP Common.

The grid is stored as unsigned 32-bit integers times DoseGridScaling (Gy), one frame per
k-plane; GridFrameOffsetVector gives each frame's offset (mm) along row × column from the
first frame's ImagePositionPatient (C.8.8.3.2, relative offsets starting at 0). The largest
dose maps to 2³¹ − 1 rather than 2³² − 1, so that a reader that takes the pixels as signed
still gets them right; the quantisation step is then max / 2.1·10⁹, far below 0.1 %.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import RTDoseStorage, RTPlanStorage

from seldinger.export.dicom.common import (
    ds_text,
    ds_texts,
    frame_of_reference,
    new_instance,
    save_dataset,
)
from seldinger.export.dicom.errors import DicomExportError
from seldinger.export.dicom.source import SourceSeries
from seldinger.imaging import Volume, reorient

__all__ = ["DOSE_STORED_MAX", "read_rtdose", "write_rtdose"]

logger = logging.getLogger(__name__)

#: Stored value of the largest dose (see module docstring).
DOSE_STORED_MAX = 2**31 - 1
_GRID_FRAME_OFFSET_VECTOR = 0x3004000C


def _plan_reference(plan: str | os.PathLike[str] | Dataset) -> Dataset:
    header = plan if isinstance(plan, Dataset) else pydicom.dcmread(plan, stop_before_pixels=True)
    if header.get("SOPClassUID") != RTPlanStorage:
        raise DicomExportError(
            f"plan must be an RT Plan; got SOP Class {header.get('SOPClassUID')!r}. Pass the "
            "file write_brachy_plan wrote."
        )
    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return item


def _checked_dose(dose_gy: Volume) -> Volume:
    array = np.asarray(dose_gy.array)
    if array.dtype.kind not in "fiu":
        raise DicomExportError(f"dose_gy must hold numbers (Gy); got dtype {array.dtype}.")
    if not np.isfinite(array).all():
        raise DicomExportError(
            f"dose_gy holds {int(np.count_nonzero(~np.isfinite(array)))} NaN or infinite "
            "voxels; an RT Dose needs a dose everywhere. Set voxels outside the calculation "
            "to 0 Gy."
        )
    if array.min() < 0:
        raise DicomExportError(
            f"dose_gy has negative doses (min {float(array.min()):g} Gy); a physical dose "
            "is >= 0. Check the dose calculation."
        )
    if np.linalg.det(dose_gy.direction) < 0:  # frames are stacked along row × column
        code = dose_gy.orientation
        flip = {"S": "I", "I": "S", "L": "R", "R": "L", "P": "A", "A": "P"}[code[2]]
        return reorient(dose_gy, code[:2] + flip)
    return dose_gy


def write_rtdose(
    dose_gy: Volume,
    series: SourceSeries,
    path: str | os.PathLike[str],
    *,
    plan: str | os.PathLike[str] | Dataset,
    comment: str = "TG-43 dose, complete decay",
    series_description: str = "Dose (Seldinger)",
    series_number: int = 303,
    moment: datetime | None = None,
    force: bool = False,
) -> Path:
    """Write a dose grid as a DICOM RT Dose (PHYSICAL, PLAN) referencing its RT Plan, atomically.

    Parameters
    ----------
    dose_gy : Volume
        Absorbed dose in Gy (>= 0, finite) on any orthogonal grid in the CT's LPS frame.
    series : SourceSeries
        The CT (patient, study, Frame of Reference).
    path : str or PathLike
        Output file.
    plan : path or Dataset
        The RT Plan the dose belongs to (ReferencedRTPlanSequence).
    comment : str
        DoseComment.
    series_description, series_number : str, int
        Of the new RTDOSE series.
    moment : datetime, optional
        Content date/time (default: now).
    force : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DicomExportError
        NaN, infinite or negative doses, or ``plan`` not an RT Plan (nothing is written).
    """
    dose = _checked_dose(dose_gy)
    plan_item = _plan_reference(plan)
    array = np.asarray(dose.array, dtype=np.float64)
    peak_gy = float(array.max())
    # scaling as stored (DS text), so that stored × scaling reproduces the dose
    scaling_text = ds_text(peak_gy / DOSE_STORED_MAX if peak_gy > 0 else 1.0)
    scaling = float(scaling_text)
    stored = np.clip(np.rint(array / scaling), 0, DOSE_STORED_MAX).astype(np.uint32)
    geometry = dose.geometry
    direction = geometry.direction
    sx, sy, sz = geometry.spacing_mm
    ds = new_instance(
        series.reference, RTDoseStorage, "RTDOSE", series_description, series_number, moment
    )
    frame_of_reference(ds, series)
    ds.ImageType = ["DERIVED", "SECONDARY", "DOSE"]
    ds.PatientOrientation = None  # Type 2C; ImageOrientationPatient says it all
    ds.ImagePositionPatient = ds_texts(geometry.origin_lps_mm)
    ds.ImageOrientationPatient = ds_texts(direction[:, :2].T.ravel())
    ds.PixelSpacing = [ds_text(sy), ds_text(sx)]
    ds.SliceThickness = ds_text(sz)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = geometry.shape[1]
    ds.Columns = geometry.shape[0]
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = geometry.shape[2]
    ds.FrameIncrementPointer = _GRID_FRAME_OFFSET_VECTOR
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseComment = comment[:64]
    ds.DoseSummationType = "PLAN"
    ds.ReferencedRTPlanSequence = [plan_item]
    ds.GridFrameOffsetVector = ds_texts(np.arange(geometry.shape[2]) * sz)
    ds.DoseGridScaling = scaling_text
    ds.TissueHeterogeneityCorrection = "WATER"
    ds.PixelData = np.ascontiguousarray(stored.transpose(2, 1, 0)).astype("<u4").tobytes()
    target = save_dataset(ds, path, force=force)
    logger.info("wrote RT Dose %s (max %.3g Gy) to %s", geometry.shape, peak_gy, target)
    return target


def read_rtdose(path: str | os.PathLike[str]) -> Volume:
    """An RT Dose file as a Volume of Gy (float64) on its grid in LPS mm.

    Raises
    ------
    DicomExportError
        If the file is not an RT Dose grid with uniform, relative frame offsets.
    """
    ds = pydicom.dcmread(path)
    if ds.get("SOPClassUID") != RTDoseStorage or "PixelData" not in ds:
        raise DicomExportError(f"{path} is not an RT Dose with a dose grid.")
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    offsets = np.array([float(v) for v in ds.GridFrameOffsetVector])
    if len(offsets) > 1:
        steps = np.diff(offsets)
        if offsets[0] != 0 or np.ptp(steps) > 1e-3 or steps[0] <= 0:
            raise DicomExportError(
                f"{path}: GridFrameOffsetVector {offsets[:4].tolist()}... is not relative "
                "(starting at 0) and uniformly increasing; this reader needs a regular grid."
            )
        dz = float(steps.mean())
    else:
        dz = float(ds.get("SliceThickness") or 1.0)
    dy, dx = (float(v) for v in ds.PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row * dx, col * dy, normal * dz
    affine[:3, 3] = [float(v) for v in ds.ImagePositionPatient]
    frames = np.asarray(ds.pixel_array).reshape(len(offsets), int(ds.Rows), int(ds.Columns))
    dose: npt.NDArray[np.float64] = frames.transpose(2, 1, 0) * float(ds.DoseGridScaling)
    return Volume(dose, affine)
