"""The CT series every exported object references: read from DICOM, or written from a Volume.

A :class:`SourceSeries` is the list of the CT's slice headers in k order together with the
grid they form. SEG, RTSTRUCT, RT Plan, RT Dose and Spatial Registration objects take their
patient, study and Frame of Reference from it, and SEG/RTSTRUCT reference its SOP instances
slice by slice.

- DICOM input: :func:`read_source_series` reads the headers (no pixel data) of one series
  and matches every slice to a k-plane of the CT Volume by its ImagePositionPatient,
  whatever the file names or InstanceNumbers say.
- NIfTI/NRRD/MetaImage input: :func:`write_ct_series` writes the Volume itself as a new CT
  Image series (one file per k-plane) with new Study, Series and Frame of Reference UIDs,
  so that one new study holds the CT and every object exported for it. The same folder can
  be sent to a PACS as it is.

Geometry follows ``docs/conventions.md``: i runs along a row (ImageOrientationPatient's row
direction, PixelSpacing[1]), j down the rows (column direction, PixelSpacing[0]), k along
the slice normal row × column (PS3.3 C.7.6.2.1.1).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import CTImageStorage, generate_uid

from seldinger.export.dicom.common import (
    dicom_date_time,
    ds_text,
    ds_texts,
    new_instance,
    save_dataset,
)
from seldinger.export.dicom.errors import DicomExportError
from seldinger.files import atomic_dir
from seldinger.imaging import Volume, VolumeGeometry, reorient
from seldinger.io.dicom_geometry import SPACING_RELATIVE_TOLERANCE, SPACING_TOLERANCE_MM

__all__ = [
    "DIRECTION_TOLERANCE",
    "PLACEHOLDER_PATIENT_ID",
    "PLACEHOLDER_PATIENT_NAME",
    "SourceSeries",
    "read_source_series",
    "write_ct_series",
]

logger = logging.getLogger(__name__)

#: ImageOrientationPatient must match the Volume's i and j directions to this (decimal
#: strings of at most 16 characters carry far less error; 1e-4 rad ≈ 0.006°).
DIRECTION_TOLERANCE = 1e-4
#: Placeholder patient of a series written from NIfTI/NRRD/MetaImage input (PS3.15 E.1:
#: the identity was never in the file; these values say so instead of inventing one).
PLACEHOLDER_PATIENT_NAME = "Anonymous^Seldinger"
PLACEHOLDER_PATIENT_ID = "SELDINGER-ANON"

_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """The CT slices that exported objects reference, in k order, and the grid they form.

    Parameters
    ----------
    datasets : tuple of Dataset
        One header per k-plane (``datasets[k]`` lies at k), without pixel data.
    geometry : VolumeGeometry
        The CT grid (index → LPS mm); masks and dose grids are checked against it.
    """

    datasets: tuple[Dataset, ...]
    geometry: VolumeGeometry

    @property
    def reference(self) -> Dataset:
        """The first slice's header (patient, study and Frame of Reference source)."""
        return self.datasets[0]

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID shared by the CT and every exported object."""
        return str(self.reference.StudyInstanceUID)

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID of the CT series."""
        return str(self.reference.SeriesInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str:
        """FrameOfReferenceUID of the CT (the LPS frame of every export)."""
        return str(self.reference.FrameOfReferenceUID)

    @property
    def sop_instance_uids(self) -> tuple[str, ...]:
        """SOPInstanceUID of each k-plane."""
        return tuple(str(ds.SOPInstanceUID) for ds in self.datasets)

    def mask_array(self, mask: Volume, name: str) -> npt.NDArray[np.bool_]:
        """The mask as a boolean (i, j, k) array on this series' grid.

        A mask whose grid is the series grid with axes permuted or flipped (e.g. the Volume
        before :func:`write_ct_series` reversed its slice order) is reoriented exactly.

        Raises
        ------
        DicomExportError
            If the mask is on another grid or has no voxel set.
        """
        geometry = self.geometry
        candidate = mask
        if not candidate.geometry.same_as(geometry):
            code = geometry.orientation
            if mask.orientation != code:
                candidate = reorient(mask, code)
        if not candidate.geometry.same_as(geometry):
            raise DicomExportError(
                f"mask {name!r} is on another grid than the CT series: {mask.geometry!r} vs "
                f"{geometry!r}. Resample it onto the CT first "
                f"(mask.resample_to(ct, interpolation='nearest'))."
            )
        array = np.asarray(candidate.array)
        if array.dtype != np.bool_:
            array = array != 0
        if not array.any():
            raise DicomExportError(
                f"mask {name!r} is empty (no voxel set); DICOM segments and ROIs must hold "
                "something. Leave the structure out, or check how it was segmented."
            )
        return array


# --- DICOM input ----------------------------------------------------------------------


def _headers(folder: Path, series_uid: str) -> list[tuple[Path, Dataset]]:
    found: list[tuple[Path, Dataset]] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue  # not DICOM (README, DICOMDIR parts …): not ours to judge
        if str(ds.get("SeriesInstanceUID", "")) == series_uid:
            found.append((path, ds))
    return found


def _vector(ds: Dataset, keyword: str, n: int, path: Path) -> npt.NDArray[np.float64]:
    value = ds.get(keyword)
    try:
        vector = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DicomExportError(
            f"{path}: {keyword} is missing or not numeric ({value!r}); the slice cannot be "
            "placed on the CT grid. Export from a complete CT series."
        ) from err
    if vector.shape != (n,):
        raise DicomExportError(f"{path}: {keyword} must have {n} values; got {value!r}.")
    return vector


def read_source_series(
    folder: str | os.PathLike[str],
    series_uid: str,
    ct: Volume | VolumeGeometry,
) -> SourceSeries:
    """Read a CT series' headers and match each slice to a k-plane of the CT Volume.

    Parameters
    ----------
    folder : str or PathLike
        Folder holding the series' files (searched recursively; other files are skipped).
    series_uid : str
        SeriesInstanceUID of the CT (``Ct.meta.series_uid`` after ``read_ct``).
    ct : Volume or VolumeGeometry
        The CT as read from that series (its grid only is used).

    Returns
    -------
    SourceSeries
        ``datasets[k]`` is the header of the slice at k-plane k.

    Raises
    ------
    DicomExportError
        If no file of the series is found; if a slice's orientation, pixel spacing or
        matrix size differs from the Volume's; if a slice lies off the Volume's k-planes by
        more than the reader's tolerance (0.01 mm or 1 % of the slice spacing); or if a
        k-plane has no slice or two.

    Notes
    -----
    Slices are placed by ImagePositionPatient (PS3.3 C.7.6.2.1.1), never by file name or
    InstanceNumber. A Volume reoriented after reading (``reorient(ct, "RAS")``) no longer
    has the slices as k-planes: reorient it back (the message says to which code).
    """
    source = Path(folder)
    geometry = ct if isinstance(ct, VolumeGeometry) else ct.geometry
    if not source.is_dir():
        raise DicomExportError(f"folder {source} does not exist; give the CT's DICOM folder.")
    found = _headers(source, series_uid)
    if not found:
        raise DicomExportError(
            f"no DICOM file of series {series_uid} in {source}. Give the folder the CT was "
            "read from and its SeriesInstanceUID (Ct.meta.series_uid)."
        )
    direction = geometry.direction
    spacing = np.asarray(geometry.spacing_mm)
    ni, nj, nk = geometry.shape
    tolerance_mm = max(SPACING_TOLERANCE_MM, SPACING_RELATIVE_TOLERANCE * spacing[2])
    by_k: dict[int, tuple[Path, Dataset]] = {}
    for path, ds in found:
        iop = _vector(ds, "ImageOrientationPatient", 6, path)
        ipp = _vector(ds, "ImagePositionPatient", 3, path)
        pixel = _vector(ds, "PixelSpacing", 2, path)
        if (
            np.abs(iop[:3] - direction[:, 0]).max() > DIRECTION_TOLERANCE
            or np.abs(iop[3:] - direction[:, 1]).max() > DIRECTION_TOLERANCE
        ):
            slices_code = _code_of(iop)
            raise DicomExportError(
                f"{path}: ImageOrientationPatient {iop.tolist()} differs from the CT Volume's "
                f"i and j directions {np.round(direction[:, :2].T.ravel(), 6).tolist()} "
                f"(Volume orientation {geometry.orientation!r}). Pass the Volume as read from "
                f"this series, or reorient it back: reorient(ct, {slices_code!r})."
            )
        if abs(pixel[1] - spacing[0]) > 1e-4 or abs(pixel[0] - spacing[1]) > 1e-4:
            raise DicomExportError(
                f"{path}: PixelSpacing {pixel.tolist()} mm differs from the CT Volume's "
                f"(j, i) spacing {[spacing[1], spacing[0]]} mm; the Volume was resampled. "
                "Export on the grid the series was read on."
            )
        if int(ds.get("Rows", -1)) != nj or int(ds.get("Columns", -1)) != ni:
            raise DicomExportError(
                f"{path}: {ds.get('Rows')}x{ds.get('Columns')} pixels (rows x columns) but the "
                f"CT Volume has {nj}x{ni} per k-plane; it was cropped or resampled. Export on "
                "the grid the series was read on."
            )
        index = geometry.lps_to_index(ipp)
        k = int(np.rint(index[2]))
        offset_mm = np.abs((index - [0.0, 0.0, k]) * spacing)
        if not 0 <= k < nk or offset_mm.max() > tolerance_mm:
            lo, hi = geometry.bounds_lps_mm()
            raise DicomExportError(
                f"{path}: ImagePositionPatient {ipp.tolist()} mm is not the corner voxel of a "
                f"k-plane of the CT Volume (nearest k {k}, off by {offset_mm.max():.3f} mm > "
                f"{tolerance_mm:.3f} mm; Volume extent {np.round(lo, 2).tolist()} to "
                f"{np.round(hi, 2).tolist()} mm). The Volume was not read from this series; "
                "pass the matching series_uid and Volume."
            )
        if k in by_k:
            raise DicomExportError(
                f"{by_k[k][0]} and {path} both lie at k-plane {k}; the series holds duplicate "
                "slices. Remove the duplicate files."
            )
        by_k[k] = (path, ds)
    missing = sorted(set(range(nk)) - set(by_k))
    if missing:
        raise DicomExportError(
            f"series {series_uid} in {source} has no slice for k-planes {missing[:10]} of the "
            f"CT Volume ({len(by_k)} slices for {nk} planes). Give the complete series "
            "folder, or the Volume read from it."
        )
    return SourceSeries(tuple(by_k[k][1] for k in range(nk)), geometry)


def _code_of(iop: npt.NDArray[np.float64]) -> str:
    row, col = iop[:3], iop[3:]
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row, col, np.cross(row, col)
    return VolumeGeometry((1, 1, 1), affine).orientation


# --- NIfTI (or any Volume) input -------------------------------------------------------


def _right_handed(volume: Volume) -> Volume:
    """The volume with k reversed when k runs against row × column (DICOM stacks along it)."""
    direction = volume.direction
    if np.linalg.det(direction) > 0:
        return volume
    code = volume.orientation
    flipped = code[:2] + {"S": "I", "I": "S", "L": "R", "R": "L", "P": "A", "A": "P"}[code[2]]
    return reorient(volume, flipped)


def _hu_int16(volume: Volume) -> npt.NDArray[np.int16]:
    array = np.asarray(volume.array)
    if array.dtype.kind == "b":
        raise DicomExportError(
            "ct is a boolean mask, not a CT in HU; pass the CT Volume (Ct.volume)."
        )
    lo, hi = float(array.min()), float(array.max())
    if lo < _INT16.min or hi > _INT16.max:
        raise DicomExportError(
            f"ct values span {lo:g} to {hi:g} HU, beyond int16 ({_INT16.min} to {_INT16.max}); "
            "a CT in Hounsfield units fits. Check that the Volume holds HU (not raw or scaled "
            "values)."
        )
    if array.dtype == np.int16:
        return array
    return np.rint(array).astype(np.int16)


def write_ct_series(
    ct: Volume,
    folder: str | os.PathLike[str],
    *,
    series_description: str = "CT (Seldinger)",
    patient_name: str = PLACEHOLDER_PATIENT_NAME,
    patient_id: str = PLACEHOLDER_PATIENT_ID,
    study_description: str = "Seldinger plan",
    moment: datetime | None = None,
    force: bool = False,
    uid_seed: str | None = None,
) -> SourceSeries:
    """Write a CT Volume as a new DICOM CT Image series, one file per k-plane, atomically.

    Parameters
    ----------
    ct : Volume
        Hounsfield units (rounded to int16 if float) on an orthogonal grid in LPS mm.
    folder : str or PathLike
        New folder for the series (files ``CT0001.dcm`` …, k order).
    series_description, study_description : str
        Shown in the PACS and viewers.
    patient_name, patient_id : str
        Patient module. Default: a de-identified placeholder (``Anonymous^Seldinger``,
        ``SELDINGER-ANON``, PatientIdentityRemoved YES): a NIfTI file carries no patient
        identity, and none is invented. Give the real ones when the CT goes back to the
        patient's record.
    moment : datetime, optional
        Study, series and content date/time (default: now).
    force : bool
        Replace an existing ``folder``.
    uid_seed : str, optional
        Derive the Study, Series, Frame of Reference and SOP Instance UIDs from this text
        (``2.25`` UIDs from its SHA-512, pydicom's ``generate_uid(entropy_srcs=…)``) instead
        of drawing new ones: the same seed (e.g. the CT's voxel hash) gives the same study
        every time, so objects exported later join it in a PACS.

    Returns
    -------
    SourceSeries
        The written headers (without pixel data) and their grid, to pass to the exporters.

    Raises
    ------
    DicomExportError
        If ``ct`` is boolean or its values do not fit int16.

    Notes
    -----
    Stored values are HU (signed 16 bit, RescaleSlope 1, RescaleIntercept 0, RescaleType
    HU). ImagePositionPatient is the LPS centre of voxel (0, 0, k); ImageOrientationPatient
    the i and j directions; PixelSpacing (j, i) spacing; SliceThickness and
    SpacingBetweenSlices the k spacing (PS3.3 C.7.6.2, C.8.2.1). DICOM stacks slices along
    row × column: a left-handed Volume (e.g. orientation ``"LPI"``) is written with its
    k-planes reversed, and reads back as ``reorient(ct, "LPS")``; masks on the original grid
    are still accepted (:meth:`SourceSeries.mask_array`). New Study, Series and Frame of
    Reference UIDs are generated on every call unless ``uid_seed`` is given.
    """
    volume = _right_handed(ct)
    hu = _hu_int16(volume)
    geometry = volume.geometry
    when = datetime.now() if moment is None else moment
    date, time = dicom_date_time(when)
    template = Dataset()
    template.SpecificCharacterSet = "ISO_IR 100"
    template.PatientName = patient_name
    template.PatientID = patient_id
    template.PatientBirthDate = None
    template.PatientSex = None
    template.PatientIdentityRemoved = "YES"
    template.DeidentificationMethod = "Seldinger placeholder patient (source without identity)"

    def uid(role: str) -> str:
        return str(
            generate_uid() if uid_seed is None else generate_uid(entropy_srcs=[uid_seed, role])
        )

    template.StudyInstanceUID = uid("study")
    template.StudyDate = date
    template.StudyTime = time
    template.ReferringPhysicianName = None
    template.StudyID = "1"
    template.AccessionNumber = None
    template.StudyDescription = study_description
    frame_uid = uid("frame of reference")
    series_uid = uid("ct series")
    direction = geometry.direction
    sx, sy, sz = geometry.spacing_mm
    headers = []
    for k in range(geometry.shape[2]):
        ds = new_instance(template, CTImageStorage, "CT", series_description, 1, when)
        ds.SeriesInstanceUID = series_uid
        if uid_seed is not None:
            ds.SOPInstanceUID = uid(f"ct slice {k}")
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.AcquisitionNumber = 1
        ds.AcquisitionDate = date
        ds.AcquisitionTime = time
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = None
        ds.PatientPosition = None  # not known from a NIfTI file (Type 2C, General Series)
        ds.Laterality = None  # Type 2C: a chest CT images no paired structure on its own
        ds.ImagePositionPatient = ds_texts(geometry.index_to_lps([0.0, 0.0, float(k)]))
        ds.ImageOrientationPatient = ds_texts(direction[:, :2].T.ravel())
        ds.PixelSpacing = [ds_text(sy), ds_text(sx)]
        ds.SliceThickness = ds_text(sz)
        ds.SpacingBetweenSlices = ds_text(sz)
        ds.SliceLocation = ds_text(
            float(geometry.index_to_lps([0.0, 0.0, float(k)]) @ direction[:, 2])
        )
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = geometry.shape[1]
        ds.Columns = geometry.shape[0]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.KVP = None
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        headers.append(ds)
    out = Path(folder)
    with atomic_dir(out, force=force) as tmp:
        for k, ds in enumerate(headers):
            ds.PixelData = np.ascontiguousarray(hu[:, :, k].T).tobytes()
            try:
                save_dataset(ds, tmp / f"CT{k + 1:04d}.dcm")
            finally:
                del ds.PixelData
    logger.info("wrote %d CT slices to %s", len(headers), out)
    return SourceSeries(tuple(headers), geometry)
