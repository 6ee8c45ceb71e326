"""Reading a CT from a DICOM folder (or one multi-frame file) into a Volume in HU.

pydicom reads the headers and the pixel data (with the pylibjpeg plugins for
compressed syntaxes, SimpleITK/GDCM as fallback); this module picks the series,
checks the stack geometry (:mod:`seldinger.io.dicom_geometry`) and assembles the
voxels straight into the output array, so peak memory stays near the voxel bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.imaging import Volume
from seldinger.io.ct import Ct, CtMeta
from seldinger.io.dicom_geometry import StackGeometry, resample_stack, stack_geometry
from seldinger.io.dicom_header import HeaderNotes, pydicom_calls, read_dataset
from seldinger.io.dicom_pixels import read_stored_pixels
from seldinger.io.dicom_scan import (
    SeriesInfo,
    choose_series,
    image_frames,
    scan_dicom_folder,
    series_facts,
)
from seldinger.io.errors import DicomReadError
from seldinger.io.limits import build_volume, check_voxel_count

__all__ = ["list_series", "read_dicom_ct"]

logger = logging.getLogger(__name__)

#: Called after each decoded file with (files done, files in all).
ProgressCallback = Callable[[int, int], None]

_INT16 = np.iinfo(np.int16)


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series under a folder (headers only), largest first."""
    series, _ = scan_dicom_folder(Path(folder))
    return sorted(series, key=lambda s: -len(s.frames))


def _series_from_file(path: Path) -> tuple[SeriesInfo, list[str]]:
    notes: list[str] = []
    header_notes = HeaderNotes()
    with pydicom_calls(str(path), header_notes):
        ds = read_dataset(path, stop_before_pixels=True)
        if "Rows" not in ds or "Columns" not in ds:
            raise DicomReadError(
                f"{path}: not an image (no Rows/Columns). Pass the CT's image files or folder."
            )
        frames = image_frames(ds, path, path.stat().st_size)
        facts = series_facts(ds, path, notes)
    info = SeriesInfo(
        series_uid=facts["series_uid"],
        modality=facts["modality"],
        description=facts["description"] or "",
        number=facts["number"],
        study_uid=facts["study_uid"],
        frames=frames,
        files={path},
        header=ds,
        facts=facts,
    )
    if len(frames) == 1:
        notes.append(f"read the single file {path.name}; pass the folder for the whole series")
    return info, notes + header_notes.as_notes()


def _output_dtype(geometry: StackGeometry) -> np.dtype[Any]:
    """int16 when every slice's rescale keeps integer HU in int16's range, else float32."""
    if geometry.needs_resampling:
        return np.dtype(np.float32)
    for f in geometry.frames:
        if f.slope != 1.0 or f.intercept != round(f.intercept) or abs(f.intercept) > 8192:
            return np.dtype(np.float32)
    return np.dtype(np.int16)


def _put(out: npt.NDArray[Any], stored: npt.NDArray[Any], slope: float, intercept: float) -> None:
    """out[...] = stored * slope + intercept, in place, without a float64 temporary."""
    if out.dtype == np.int16:
        if stored.dtype.kind in "iu" and stored.dtype.itemsize <= 2:
            np.add(stored, np.int32(intercept), out=out, casting="unsafe", dtype=np.int32)
            return
        np.add(stored.astype(np.int32), np.int32(intercept), out=out, casting="unsafe")
        return
    np.multiply(stored, np.float32(slope), out=out, casting="unsafe")
    out += np.float32(intercept)


def read_dicom_ct(
    path: str | Path,
    series_uid: str | None = None,
    resample: bool = False,
    progress: ProgressCallback | None = None,
) -> Ct:
    """Read a CT series from a DICOM folder (searched recursively) or one DICOM file.

    Parameters
    ----------
    path : str or Path
        Folder with the series' files (any names, any sub-folders), or a single
        (multi-frame) DICOM file.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series. Default:
        the largest axial CT series, with a note in ``meta.notes``.
    resample : bool
        Resample stacks with gaps, uneven spacing or gantry tilt onto a uniform
        orthogonal grid (linear) instead of refusing them.
    progress : callable, optional
        ``progress(done, total)`` after each file.

    Returns
    -------
    Ct
        ``volume`` in HU (int16 when the rescale allows it, else float32), indexed
        (i, j, k) = (column, row, slice) with k along the slice normal.

    Raises
    ------
    DicomReadError
        Naming the file and the fix, for every defect listed in
        :mod:`seldinger.io.dicom_geometry` and for unreadable files, non-CT
        modalities and undecodable transfer syntaxes.
    """
    source = Path(path)
    if source.is_file():
        info, notes = _series_from_file(source)
        if series_uid is not None and info.series_uid != series_uid:
            raise DicomReadError(f"{source} belongs to series {info.series_uid}, not {series_uid}.")
    else:
        series, notes = scan_dicom_folder(source)
        info, choice_notes = choose_series(series, series_uid, source)
        notes = notes + choice_notes
    if info.modality != "CT":
        raise DicomReadError(
            f"series {info.series_uid or '(no UID)'} in {source} has modality {info.modality or '?'}, "
            "not CT. Seldinger plans on CT in Hounsfield units; load the patient's CT series."
        )
    try:
        geometry = stack_geometry(info.frames, resample=resample)
    except DicomReadError as err:
        raise DicomReadError(f"{source}: {err}") from err
    notes = notes + list(geometry.notes)
    check_voxel_count(geometry.shape, str(source))
    volume = _assemble(geometry, progress, str(source))
    meta = _meta(source, info, notes)
    for note in notes:
        logger.info("%s: %s", source, note)
    return Ct(volume=volume, meta=meta)


def _assemble(geometry: StackGeometry, progress: ProgressCallback | None, where: str) -> Volume:
    frames = geometry.frames
    rows, cols = frames[0].rows, frames[0].columns
    dtype = _output_dtype(geometry)
    # (k, j, i) in C order is one contiguous plane per slice; its transpose is (i, j, k)
    out = np.empty((len(frames), rows, cols), dtype=dtype)
    # frames of one multi-frame file are decoded once
    by_file: dict[Path, list[int]] = {}
    for k, frame in enumerate(frames):
        by_file.setdefault(frame.path, []).append(k)
    total = len(by_file)
    for done, (file_path, ks) in enumerate(by_file.items(), start=1):
        stored = read_stored_pixels(file_path, frames[ks[0]].n_frames)
        if out.dtype == np.int16 and not _fits_int16(stored, frames[ks[0]].intercept):
            out = out.astype(np.float32)  # rare: metal beyond int16 after rescale
        for k in ks:
            frame = frames[k]
            _put(out[k], stored[frame.frame or 0], frame.slope, frame.intercept)
        del stored
        if progress is not None:
            progress(done, total)
    if geometry.needs_resampling:
        out = resample_stack(out, geometry)
    return build_volume(out.transpose(2, 1, 0), geometry.affine, where)


def _fits_int16(stored: npt.NDArray[Any], intercept: float) -> bool:
    lo, hi = int(stored.min()) + int(intercept), int(stored.max()) + int(intercept)
    return bool(_INT16.min <= lo and hi <= _INT16.max)


def _meta(source: Path, info: SeriesInfo, notes: list[str]) -> CtMeta:
    facts = info.facts
    return CtMeta(
        source_path=str(source),
        format="dicom",
        modality=info.modality,
        study_uid=info.study_uid,
        series_uid=info.series_uid,
        series_description=info.description or None,
        kvp=facts.get("kvp"),
        kernel=facts.get("kernel"),
        slice_thickness_mm=facts.get("slice_thickness_mm"),
        manufacturer=facts.get("manufacturer"),
        model=facts.get("model"),
        patient_position=facts.get("patient_position"),
        patient_id=facts.get("patient_id"),
        frame_of_reference_uid=facts.get("frame_of_reference_uid"),
        n_files=len(info.files),
        notes=tuple(notes),
    )
