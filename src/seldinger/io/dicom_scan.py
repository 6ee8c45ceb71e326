"""Finding the image series in a DICOM folder (headers only, no pixel data)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from seldinger.io.dicom_header import (
    DAMAGED_FIX,
    HeaderNotes,
    PixelLayout,
    has_dicom_preamble,
    header_integer,
    header_number,
    header_numbers,
    header_text,
    header_uid,
    pixel_layout,
    pydicom_calls,
    read_dataset,
)
from seldinger.io.errors import DicomReadError
from seldinger.io.limits import MAX_ABS_POSITION_MM, MAX_SPACING_MM

__all__ = [
    "MAX_ABS_HU",
    "DicomFrame",
    "SeriesInfo",
    "choose_series",
    "image_frames",
    "multi_frames",
    "scan_dicom_folder",
    "series_facts",
    "single_frame",
]

logger = logging.getLogger(__name__)

#: SOP classes read as CT images (DICOM PS3.4 Annex B.5).
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.2"
MULTIFRAME_CT_CLASSES = {ENHANCED_CT_IMAGE_STORAGE, LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE}
CT_CLASSES = {CT_IMAGE_STORAGE} | MULTIFRAME_CT_CLASSES
#: Direction cosines are unit vectors to this (decimal strings of 6 digits and more).
UNIT_TOLERANCE = 1e-2
#: Largest |HU| a rescale may produce: far beyond any material (dense metal reads some
#: 10⁴ HU on extended scales), far inside float32; a larger value means a damaged header.
MAX_ABS_HU = 1e7


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
    n_frames: int = 1  # frames in the file this frame comes from
    thickness_mm: float | None = None  # SpacingBetweenSlices or SliceThickness, when given

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
    header: Dataset | None = None  # first file's header
    facts: dict[str, Any] = field(default_factory=dict)  # from series_facts, for metadata

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


def _is_localizer(ds: Dataset, where: str) -> bool:
    image_type = (header_text(ds, "ImageType", where) or "").upper().split("\\")
    return "LOCALIZER" in image_type


def _sop_class(ds: Dataset, where: str) -> str:
    uid = header_uid(ds, "SOPClassUID", where)
    meta = getattr(ds, "file_meta", None)
    if not uid and meta is not None:
        uid = header_uid(meta, "MediaStorageSOPClassUID", where)
    return uid or ""


def _series_key(ds: Dataset, where: str, number: int | None) -> tuple[str, ...]:
    uid = header_uid(ds, "SeriesInstanceUID", where)
    if uid:
        return ("uid", uid)
    # Anonymised files sometimes lose the UID; keep images that share a frame of
    # reference, modality, orientation and matrix together (never merge across them).
    iop = header_numbers(ds, "ImageOrientationPatient", 6, where)
    return (
        "nouid",
        header_uid(ds, "FrameOfReferenceUID", where) or "",
        header_text(ds, "Modality", where) or "",
        str(number),
        ",".join(f"{v:.4f}" for v in iop),
        f"{header_text(ds, 'Rows', where)}x{header_text(ds, 'Columns', where)}",
    )


def _slice_thickness(ds: Dataset, where: str) -> float | None:
    """SpacingBetweenSlices, else SliceThickness (used only for a single slice)."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = header_number(ds, keyword, where)
        if value is not None:
            if not 0 < value <= MAX_SPACING_MM:
                raise DicomReadError(
                    f"{where}: {keyword} {value} mm must be positive and at most "
                    f"{MAX_SPACING_MM:g} mm. The header is damaged. {DAMAGED_FIX}"
                )
            return value
    return None


def _rescale(ds: Dataset, where: str) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept), each one finite number; slope not 0 (PS3.3 C.11.1)."""
    slope = header_number(ds, "RescaleSlope", where, 1.0, nonzero=True)
    intercept = header_number(ds, "RescaleIntercept", where, 0.0)
    return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)


def _pixel_spacing(ds: Dataset, where: str) -> tuple[float, ...]:
    spacing = header_numbers(ds, "PixelSpacing", 2, where)
    if min(spacing) <= 0:
        raise DicomReadError(
            f"{where}: PixelSpacing {list(spacing)} mm must be positive; a zero or negative "
            f"spacing would flip or collapse the image. The header is damaged. {DAMAGED_FIX}"
        )
    if max(spacing) > MAX_SPACING_MM:
        raise DicomReadError(
            f"{where}: PixelSpacing {list(spacing)} mm is beyond {MAX_SPACING_MM:g} mm. The "
            f"header is damaged. {DAMAGED_FIX}"
        )
    return spacing


def _position(ds: Dataset, where: str) -> tuple[float, ...]:
    position = header_numbers(ds, "ImagePositionPatient", 3, where)
    if max(abs(x) for x in position) > MAX_ABS_POSITION_MM:
        raise DicomReadError(
            f"{where}: ImagePositionPatient {list(position)} mm is beyond "
            f"±{MAX_ABS_POSITION_MM:g} mm. The header is damaged. {DAMAGED_FIX}"
        )
    return position


def _orientation(ds: Dataset, where: str) -> tuple[float, ...]:
    """ImageOrientationPatient: two unit vectors (PS3.3 C.7.6.2.1.1); their angle is
    checked with the stack (:mod:`seldinger.io.dicom_geometry`)."""
    cosines = header_numbers(ds, "ImageOrientationPatient", 6, where)
    for vector in (cosines[:3], cosines[3:]):
        if not abs(float(np.sqrt(sum(c * c for c in vector))) - 1.0) <= UNIT_TOLERANCE:
            raise DicomReadError(
                f"{where}: ImageOrientationPatient {list(cosines)} is not two unit vectors; the "
                f"header is damaged. {DAMAGED_FIX}"
            )
    return cosines


def _check_hu_range(layout: PixelLayout, slope: float, intercept: float, where: str) -> None:
    """Refuse a rescale that takes stored values beyond what float32 HU can hold."""
    stored_max = 2.0 ** (layout.bits_stored - (1 if layout.signed else 0))
    hu_max = abs(slope) * stored_max + abs(intercept)
    if not hu_max < MAX_ABS_HU:
        raise DicomReadError(
            f"{where}: RescaleSlope {slope:g} and RescaleIntercept {intercept:g} map "
            f"{layout.bits_stored}-bit stored values to about {hu_max:.3g} HU, beyond "
            f"{MAX_ABS_HU:g}. The header is damaged. {DAMAGED_FIX}"
        )


def single_frame(ds: Dataset, path: Path, file_bytes: int | None = None) -> DicomFrame:
    """The one frame of a single-frame image file (call inside ``pydicom_calls``)."""
    where = str(path)
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if tag not in ds:
            raise DicomReadError(
                f"{path}: {tag} is missing, so this slice's position in the patient is unknown. "
                "Seldinger never guesses geometry; export the series again with full headers."
            )
    layout = pixel_layout(ds, where, file_bytes)
    slope, intercept = _rescale(ds, where)
    _check_hu_range(layout, slope, intercept, where)
    return DicomFrame(
        path=path,
        frame=None,
        position_lps_mm=_position(ds, where),
        orientation=_orientation(ds, where),
        pixel_spacing_mm=_pixel_spacing(ds, where),
        rows=layout.rows,
        columns=layout.columns,
        slope=slope,
        intercept=intercept,
        sop_instance_uid=header_uid(ds, "SOPInstanceUID", where) or path.name,
        gantry_tilt_deg=header_number(ds, "GantryDetectorTilt", where, 0.0) or 0.0,
        n_frames=layout.n_frames,
        thickness_mm=_slice_thickness(ds, where),
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


def multi_frames(ds: Dataset, path: Path, file_bytes: int | None = None) -> list[DicomFrame]:
    """Frames of an Enhanced / Legacy Converted Enhanced CT (PS3.3 C.7.6.16); call inside
    ``pydicom_calls``."""
    layout = pixel_layout(ds, str(path), file_bytes)
    sop_uid = header_uid(ds, "SOPInstanceUID", str(path)) or path.name
    tilt = header_number(ds, "GantryDetectorTilt", str(path), 0.0) or 0.0
    frames = []
    for n in range(layout.n_frames):
        where = f"{path} frame {n + 1}"
        position = _functional(ds, n, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _functional(ds, n, "PlaneOrientationSequence", "ImageOrientationPatient")
        measures = _functional(ds, n, "PixelMeasuresSequence", "PixelSpacing")
        if position is None or orientation is None or measures is None:
            raise DicomReadError(
                f"{where} lacks PlanePosition/PlaneOrientation/PixelMeasures "
                "functional groups, so its geometry is unknown."
            )
        rescale = _functional(ds, n, "PixelValueTransformationSequence", "RescaleIntercept")
        slope, intercept = _rescale(rescale, where) if rescale is not None else (1.0, 0.0)
        _check_hu_range(layout, slope, intercept, where)
        frames.append(
            DicomFrame(
                path=path,
                frame=n,
                position_lps_mm=_position(position, where),
                orientation=_orientation(orientation, where),
                pixel_spacing_mm=_pixel_spacing(measures, where),
                rows=layout.rows,
                columns=layout.columns,
                slope=slope,
                intercept=intercept,
                sop_instance_uid=f"{sop_uid}#{n + 1}",
                gantry_tilt_deg=tilt,
                n_frames=layout.n_frames,
                thickness_mm=_slice_thickness(measures, where),
            )
        )
    return frames


def image_frames(ds: Dataset, path: Path, file_bytes: int | None = None) -> list[DicomFrame]:
    """The frames of an image file, single- or multi-frame (call inside ``pydicom_calls``)."""
    sop_class = _sop_class(ds, str(path))
    if sop_class in MULTIFRAME_CT_CLASSES or "PerFrameFunctionalGroupsSequence" in ds:
        return multi_frames(ds, path, file_bytes)
    return [single_frame(ds, path, file_bytes)]


def series_facts(ds: Dataset, path: Path, notes: list[str]) -> dict[str, Any]:
    """Identity (strict: damaged UIDs are refused) and description (lenient: a damaged value
    is left out with a note) of the series a file belongs to; call inside ``pydicom_calls``."""
    where = str(path)
    facts: dict[str, Any] = {
        "series_uid": header_uid(ds, "SeriesInstanceUID", where),
        "study_uid": header_uid(ds, "StudyInstanceUID", where),
        "modality": header_text(ds, "Modality", where),
        "number": header_integer(ds, "SeriesNumber", where, low=-(2**31), high=2**31 - 1),
    }
    described = (
        ("description", "SeriesDescription", header_text),
        ("kvp", "KVP", header_number),
        ("kernel", "ConvolutionKernel", header_text),
        ("slice_thickness_mm", "SliceThickness", header_number),
        ("manufacturer", "Manufacturer", header_text),
        ("model", "ManufacturerModelName", header_text),
        ("patient_position", "PatientPosition", header_text),
        # Breathing phases must be one patient in one frame (seldinger.motion.check_phases).
        ("patient_id", "PatientID", header_text),
        ("frame_of_reference_uid", "FrameOfReferenceUID", header_uid),
    )
    for name, keyword, read in described:
        try:
            facts[name] = read(ds, keyword, where)
        except DicomReadError as err:
            notes.append(f"left out {keyword} of {path.name}: {err}")
            facts[name] = None
    return facts


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
    header_notes = HeaderNotes()
    for path in _walk(folder):
        n_files += 1
        if not has_dicom_preamble(path):
            logger.debug("not DICOM (no DICM preamble): %s", path)
            skipped_non_dicom.append(path.name)
            continue
        with pydicom_calls(str(path), header_notes):
            ds = read_dataset(path, stop_before_pixels=True)
            where = str(path)
            if "Rows" not in ds or "Columns" not in ds:
                sop_class = _sop_class(ds, where)
                if not sop_class or sop_class in CT_CLASSES:  # SOPClassUID is type 1
                    raise DicomReadError(
                        f"{path}: a {'CT image' if sop_class else 'DICOM file'} without "
                        f"{'SOPClassUID, ' if not sop_class else ''}Rows or Columns: the file "
                        f"is truncated or damaged. {DAMAGED_FIX}"
                    )
                notes.append(
                    f"skipped {path.name}: not an image ({header_text(ds, 'Modality', where) or '?'}"
                    f", SOP class {sop_class})"
                )
                continue
            if _is_localizer(ds, where):
                notes.append(f"skipped {path.name}: localizer/scout image")
                continue
            frames = image_frames(ds, path, path.stat().st_size)
            facts = series_facts(ds, path, notes)
            key = _series_key(ds, where, facts["number"])
        info = groups.get(key)
        if info is None:
            info = SeriesInfo(
                series_uid=facts["series_uid"],
                modality=facts["modality"],
                description=facts["description"] or "",
                number=facts["number"],
                study_uid=facts["study_uid"],
                header=ds,
                facts=facts,
            )
            groups[key] = info
        info.frames.extend(frames)
        info.files.add(path)
    notes.extend(header_notes.as_notes())
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
