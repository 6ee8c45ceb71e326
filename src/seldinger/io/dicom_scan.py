"""Finding the image series in a DICOM folder (headers only, no pixel data)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from seldinger.io.errors import DicomReadError

__all__ = ["DicomFrame", "SeriesInfo", "choose_series", "scan_dicom_folder"]

logger = logging.getLogger(__name__)

#: SOP classes read as CT images (DICOM PS3.4 Annex B.5).
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.2"
MULTIFRAME_CT_CLASSES = {ENHANCED_CT_IMAGE_STORAGE, LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE}


@dataclass(frozen=True)
class DicomFrame:
    """One image plane of a series: a single-frame file, or one frame of a multi-frame file."""

    path: Path
    frame: int | None  # 0-based frame of a multi-frame file; None for a single-frame file
    position_lps_mm: tuple[float, ...]  # ImagePositionPatient (3 values)
    orientation: tuple[float, ...]  # ImageOrientationPatient, 6 direction cosines
    pixel_spacing_mm: tuple[float, ...]  # (between rows, between columns)
    rows: int
    columns: int
    slope: float
    intercept: float
    sop_instance_uid: str
    gantry_tilt_deg: float

    @property
    def label(self) -> str:
        """File name, with the frame number for a multi-frame file."""
        return self.path.name if self.frame is None else f"{self.path.name} frame {self.frame + 1}"


@dataclass
class SeriesInfo:
    """One series found in a folder: identity, description and its image frames."""

    series_uid: str | None
    modality: str | None
    description: str
    number: int | None
    study_uid: str | None
    frames: list[DicomFrame] = field(default_factory=list)
    files: set[Path] = field(default_factory=set)
    header: Dataset | None = None  # first file's header, for metadata

    @property
    def is_axial(self) -> bool:
        """True when the slice normal is within 45° of the patient's S–I axis."""
        if not self.frames:
            return False
        o = np.asarray(self.frames[0].orientation, dtype=float)
        normal = np.cross(o[:3], o[3:])
        return bool(abs(normal[2]) >= np.sqrt(0.5) * np.linalg.norm(normal))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: UID, modality, number of images, description, whether axial."""
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "images": len(self.frames),
            "description": self.description,
            "axial": self.is_axial,
        }

    def summary(self) -> str:
        """One line: UID, modality, number of images, description."""
        uid = self.series_uid or "(no SeriesInstanceUID)"
        return (
            f"{uid} {self.modality or '?'} {len(self.frames)} images {self.description!r}".strip()
        )


def _float_list(value: Any, n: int, tag: str, path: Path) -> tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise DicomReadError(f"{path}: {tag} is not numeric ({value!r}).") from err
    if len(numbers) != n or not all(np.isfinite(numbers)):
        raise DicomReadError(f"{path}: {tag} must hold {n} finite numbers; got {value!r}.")
    return numbers


def _is_localizer(ds: Dataset) -> bool:
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    return "LOCALIZER" in image_type


def _sop_class(ds: Dataset) -> str:
    uid = str(ds.get("SOPClassUID", "") or "")
    if not uid and hasattr(ds, "file_meta"):
        uid = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
    return uid


def _series_key(ds: Dataset) -> tuple[str, ...]:
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    if uid:
        return ("uid", uid)
    # Anonymised files sometimes lose the UID; keep images that share a frame of
    # reference, modality, orientation and matrix together (never merge across them).
    iop = ds.get("ImageOrientationPatient") or []
    return (
        "nouid",
        str(ds.get("FrameOfReferenceUID", "")),
        str(ds.get("Modality", "")),
        str(ds.get("SeriesNumber", "")),
        ",".join(f"{float(v):.4f}" for v in iop),
        f"{ds.get('Rows')}x{ds.get('Columns')}",
    )


def single_frame(ds: Dataset, path: Path) -> DicomFrame:
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if tag not in ds:
            raise DicomReadError(
                f"{path}: {tag} is missing, so this slice's position in the patient is unknown. "
                "Seldinger never guesses geometry; export the series again with full headers."
            )
    return DicomFrame(
        path=path,
        frame=None,
        position_lps_mm=_float_list(ds.ImagePositionPatient, 3, "ImagePositionPatient", path),
        orientation=_float_list(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", path),
        pixel_spacing_mm=_float_list(ds.PixelSpacing, 2, "PixelSpacing", path),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        slope=float(ds.get("RescaleSlope", 1.0) or 1.0),
        intercept=float(ds.get("RescaleIntercept", 0.0) or 0.0),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or path.name),
        gantry_tilt_deg=float(ds.get("GantryDetectorTilt", 0.0) or 0.0),
    )


def _functional(ds: Dataset, n: int, sequence: str, inner: str) -> Dataset | None:
    """Item ``inner`` of functional group ``sequence`` for frame n (per-frame before shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    candidates = (
        per_frame[n] if per_frame and n < len(per_frame) else None,
        shared[0] if shared else None,
    )
    for group in candidates:
        if group is None:
            continue
        seq = group.get(sequence)
        if seq and inner in seq[0]:
            return seq[0]
    return None


def multi_frames(ds: Dataset, path: Path) -> list[DicomFrame]:
    """Frames of an Enhanced / Legacy Converted Enhanced CT (PS3.3 C.7.6.16)."""
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    frames = []
    for n in range(n_frames):
        position = _functional(ds, n, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _functional(ds, n, "PlaneOrientationSequence", "ImageOrientationPatient")
        measures = _functional(ds, n, "PixelMeasuresSequence", "PixelSpacing")
        if position is None or orientation is None or measures is None:
            raise DicomReadError(
                f"{path}: frame {n + 1} lacks PlanePosition/PlaneOrientation/PixelMeasures "
                "functional groups, so its geometry is unknown."
            )
        rescale = _functional(ds, n, "PixelValueTransformationSequence", "RescaleIntercept")
        slope = float(rescale.get("RescaleSlope", 1.0)) if rescale is not None else 1.0
        intercept = float(rescale.get("RescaleIntercept", 0.0)) if rescale is not None else 0.0
        frames.append(
            DicomFrame(
                path=path,
                frame=n,
                position_lps_mm=_float_list(
                    position.ImagePositionPatient, 3, "ImagePositionPatient", path
                ),
                orientation=_float_list(
                    orientation.ImageOrientationPatient, 6, "ImageOrientationPatient", path
                ),
                pixel_spacing_mm=_float_list(measures.PixelSpacing, 2, "PixelSpacing", path),
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                slope=slope,
                intercept=intercept,
                sop_instance_uid=f"{ds.get('SOPInstanceUID', path.name)}#{n + 1}",
                gantry_tilt_deg=float(ds.get("GantryDetectorTilt", 0.0) or 0.0),
            )
        )
    return frames


def _walk(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def scan_dicom_folder(folder: Path) -> tuple[list[SeriesInfo], list[str]]:
    """Read the headers of every file under ``folder`` and group the images by series.

    Returns
    -------
    series : list of SeriesInfo
        Image series, each with its frames (unsorted).
    notes : list of str
        What was skipped and why (non-DICOM files, scouts, reports, …).

    Raises
    ------
    DicomReadError
        If the folder does not exist, holds no files or no DICOM image.
    """
    if not folder.is_dir():
        raise DicomReadError(
            f"{folder} is not a folder. Pass a DICOM folder or a NIfTI/NRRD/MHA file."
        )
    groups: dict[tuple[str, ...], SeriesInfo] = {}
    notes: list[str] = []
    skipped_non_dicom: list[str] = []
    n_files = 0
    for path in _walk(folder):
        n_files += 1
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as err:
            logger.debug("not DICOM: %s (%s)", path, err)
            skipped_non_dicom.append(path.name)
            continue
        sop_class = _sop_class(ds)
        if "Rows" not in ds or "Columns" not in ds:
            notes.append(
                f"skipped {path.name}: not an image ({ds.get('Modality', '?')}, SOP class {sop_class or '?'})"
            )
            continue
        if _is_localizer(ds):
            notes.append(f"skipped {path.name}: localizer/scout image")
            continue
        try:
            frames = (
                multi_frames(ds, path)
                if sop_class in MULTIFRAME_CT_CLASSES or "PerFrameFunctionalGroupsSequence" in ds
                else [single_frame(ds, path)]
            )
        except DicomReadError:  # already names the file; a ValueError, so caught first
            raise
        except (AttributeError, TypeError, ValueError, KeyError) as err:
            raise DicomReadError(f"{path}: unreadable image header ({err}).") from err
        key = _series_key(ds)
        info = groups.get(key)
        if info is None:
            number = ds.get("SeriesNumber")
            info = SeriesInfo(
                series_uid=str(ds.get("SeriesInstanceUID", "") or "") or None,
                modality=str(ds.get("Modality", "") or "") or None,
                description=str(ds.get("SeriesDescription", "") or ""),
                number=int(number) if number not in (None, "") else None,
                study_uid=str(ds.get("StudyInstanceUID", "") or "") or None,
                header=ds,
            )
            groups[key] = info
        info.frames.extend(frames)
        info.files.add(path)
    if n_files == 0:
        raise DicomReadError(
            f"{folder} holds no files. Point at the folder with the CT's DICOM slices."
        )
    if skipped_non_dicom:
        shown = ", ".join(skipped_non_dicom[:5]) + (" …" if len(skipped_non_dicom) > 5 else "")
        notes.append(f"skipped {len(skipped_non_dicom)} non-DICOM file(s): {shown}")
    if not groups:
        raise DicomReadError(
            f"{folder} holds no DICOM image ({n_files} file(s) checked; "
            + ("; ".join(notes) if notes else "none is DICOM")
            + "). Point at the folder with the CT's DICOM slices."
        )
    return list(groups.values()), notes


def choose_series(
    series: list[SeriesInfo], series_uid: str | None, folder: Path
) -> tuple[SeriesInfo, list[str]]:
    """Pick the series to read: by UID, else the largest axial CT series (with a notice)."""
    notes: list[str] = []
    listing = "; ".join(s.summary() for s in series)
    if series_uid is not None:
        for info in series:
            if info.series_uid == series_uid:
                return info, notes
        raise DicomReadError(
            f"series {series_uid} is not in {folder}. Series found: {listing}. "
            "Pass one of these UIDs with --series."
        )
    ct_axial = [s for s in series if s.modality == "CT" and s.is_axial]
    if not ct_axial:
        modalities = sorted({s.modality or "?" for s in series})
        if all(s.modality != "CT" for s in series):
            raise DicomReadError(
                f"{folder} holds no CT series (found modality {', '.join(modalities)}: {listing}). "
                "Seldinger plans on CT in Hounsfield units; load the patient's CT series."
            )
        raise DicomReadError(
            f"{folder} holds no axial CT series ({listing}). Pass the wanted series with --series UID."
        )
    chosen = max(ct_axial, key=lambda s: len(s.frames))
    tied = [s for s in ct_axial if len(s.frames) == len(chosen.frames)]
    if len(tied) > 1:
        raise DicomReadError(
            f"{folder} holds {len(tied)} axial CT series of {len(chosen.frames)} images each "
            f"({'; '.join(s.summary() for s in tied)}), so the choice is ambiguous. "
            "Pass the wanted one with --series UID."
        )
    if len(series) > 1:
        notes.append(
            f"{len(series)} series in {folder.name}: {listing}. Read the largest axial CT series "
            f"{chosen.series_uid or '(no UID)'}; choose another with --series UID."
        )
    return chosen, notes
