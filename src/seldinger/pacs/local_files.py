"""Reading what we push: DICOM Part-10 files, read and checked whole before any network use."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AllStoragePresentationContexts

from seldinger.errors import SeldingerIOError

from .errors import PacsInputError

__all__ = ["LocalFiles", "LocalInstance", "read_instances"]

logger = logging.getLogger(__name__)

_STORAGE_CLASSES = frozenset(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
#: Dataset UIDs that the file meta repeats (PS3.10 7.1): an emptied one is taken from there.
_FROM_FILE_META = {
    "SOPClassUID": "MediaStorageSOPClassUID",
    "SOPInstanceUID": "MediaStorageSOPInstanceUID",
}
#: A DICOM Part-10 file: 128-byte preamble, then "DICM" (PS3.10 7.1).
_PREAMBLE_BYTES = 128
_MAGIC = b"DICM"


@dataclass(frozen=True, eq=False)
class LocalInstance:
    """One file to push, read whole into memory."""

    path: Path
    dataset: Dataset

    @property
    def sop_class_uid(self) -> str:
        return str(self.dataset.SOPClassUID)

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)

    @property
    def transfer_syntax_uid(self) -> str:
        return str(self.dataset.file_meta.TransferSyntaxUID)


def _is_part10(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(_PREAMBLE_BYTES + len(_MAGIC))
    except OSError as err:
        raise SeldingerIOError(f"cannot read {path}: {err.strerror}.") from err
    return head[_PREAMBLE_BYTES:] == _MAGIC


def _candidates(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Files to read, and the files inside folders that are not Part-10 (skipped)."""
    files: list[Path] = []
    skipped: list[Path] = []
    given = [Path(p) for p in paths]
    if not given:
        raise PacsInputError("no files to push: give DICOM files or folders of them.")
    for path in given:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file())
            found = [p for p in inside if _is_part10(p)]
            if not found:
                raise PacsInputError(
                    f"{path} holds no DICOM Part-10 file ({len(inside)} files looked at, "
                    "searched recursively). Give the folder of the exported series."
                )
            files.extend(found)
            kept = set(found)
            skipped.extend(p for p in inside if p not in kept)
        elif path.is_file():
            if not _is_part10(path):
                raise PacsInputError(
                    f"{path} is not a DICOM Part-10 file (no 'DICM' after the 128-byte "
                    "preamble). Give DICOM files, or the folder that holds them."
                )
            files.append(path)
        else:
            raise SeldingerIOError(f"{path} does not exist. Give DICOM files or folders.")
    return files, skipped


def _read(path: Path, *, refuse_burned_in: bool) -> Dataset:
    try:
        dataset = dcmread(path)
        transfer_syntax = str(dataset.file_meta.get("TransferSyntaxUID", "") or "")
        for keyword, meta_keyword in _FROM_FILE_META.items():
            if not _text(dataset, keyword):
                setattr(dataset, keyword, _text(dataset.file_meta, meta_keyword))
        burned_in = _text(dataset, "BurnedInAnnotation").upper() == "YES"
    except OSError as err:
        raise SeldingerIOError(f"cannot read {path}: {err.strerror}.") from err
    except Exception as err:  # any parse failure of a local file is bad input
        raise PacsInputError(
            f"{path} is not a readable DICOM file ({type(err).__name__}: {err}). Export it "
            "again, or leave it out."
        ) from err
    missing = [k for k in _FROM_FILE_META if not _text(dataset, k)]
    missing += [] if transfer_syntax else ["TransferSyntaxUID"]
    if missing:
        raise PacsInputError(
            f"{path} lacks {', '.join(missing)}, which every stored instance needs. Export "
            "it again from the system that made it."
        )
    if str(dataset.SOPClassUID) not in _STORAGE_CLASSES:
        raise PacsInputError(
            f"{path} has SOP class {dataset.SOPClassUID} ({dataset.SOPClassUID.name}), which "
            "is not a storage SOP class; DICOMDIR and other non-storage files cannot be "
            "pushed. Leave it out."
        )
    _check_pixel_bytes(dataset, path, transfer_syntax)
    if refuse_burned_in and burned_in:
        raise PacsInputError(
            f"{path} declares burned-in annotation (0028,0301 = YES): patient details may be "
            "in the pixels, which de-identification does not clean. Remove them first, or "
            "push with deidentify=False (--no-deidentify) only to a PACS allowed to hold "
            "identified data."
        )
    return dataset


def _check_pixel_bytes(dataset: Dataset, path: Path, transfer_syntax: str) -> None:
    """Native (uncompressed) pixel data must hold every pixel: a truncated file does not."""
    if "PixelData" not in dataset or UID(transfer_syntax).is_compressed:
        return
    try:
        pixels = (
            int(dataset.Rows)
            * int(dataset.Columns)
            * int(dataset.get("SamplesPerPixel", 1) or 1)
            * int(dataset.get("NumberOfFrames", 1) or 1)
        )
        expected_bytes = (pixels * int(dataset.BitsAllocated) + 7) // 8
    except (AttributeError, TypeError, ValueError) as err:
        raise PacsInputError(
            f"{path} has pixel data but no usable Rows, Columns or BitsAllocated ({err}). "
            "Export it again."
        ) from err
    actual_bytes = len(dataset.PixelData)
    if actual_bytes < expected_bytes:
        raise PacsInputError(
            f"{path} holds {actual_bytes} bytes of pixel data where its header needs "
            f"{expected_bytes}: the file is truncated. Copy or export it again."
        )


def _text(dataset: Dataset, keyword: str) -> str:
    return str(dataset.get(keyword, "") or "").strip()


def _surrogate_uid(kind: str, fields: Iterable[str]) -> str:
    """A UID for an instance whose Study/Series UID was emptied: RFC 9562 UUIDv8 of SHA-256."""
    raw = bytearray(hashlib.sha256("\x00".join([kind, *fields]).encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return f"2.25.{int.from_bytes(raw, 'big')}"


def _fill_study_and_series(dataset: Dataset) -> list[str]:
    """Fill an empty Study/Series Instance UID; returns the keywords filled.

    Anonymised exports sometimes empty these UIDs. The series is then the images that
    share a frame of reference, modality, series number, orientation and matrix (as
    :mod:`seldinger.io` groups them when reading); the study, those that share patient,
    study date and time, accession number and frame of reference. The UIDs are derived
    from those values, so the same files always get the same UIDs.
    """
    filled = []
    frame = _text(dataset, "FrameOfReferenceUID")
    if not _text(dataset, "StudyInstanceUID"):
        keys = ("PatientID", "StudyDate", "StudyTime", "AccessionNumber")
        dataset.StudyInstanceUID = _surrogate_uid(
            "study", [*(_text(dataset, k) for k in keys), frame]
        )
        filled.append("StudyInstanceUID")
    if not _text(dataset, "SeriesInstanceUID"):
        orientation = ",".join(
            f"{float(v):.4f}" for v in dataset.get("ImageOrientationPatient") or []
        )
        fields = [
            str(dataset.StudyInstanceUID),
            frame,
            _text(dataset, "Modality"),
            _text(dataset, "SeriesNumber"),
            orientation,
            f"{dataset.get('Rows')}x{dataset.get('Columns')}",
        ]
        dataset.SeriesInstanceUID = _surrogate_uid("series", fields)
        filled.append("SeriesInstanceUID")
    return filled


@dataclass(frozen=True, eq=False)
class LocalFiles:
    """What :func:`read_instances` found."""

    instances: list[LocalInstance]
    skipped: list[Path]
    notes: list[str]


def read_instances(paths: Iterable[str | Path], *, refuse_burned_in: bool = True) -> LocalFiles:
    """Read every DICOM file in ``paths`` (files, or folders searched recursively).

    Small, unambiguous repairs are made and noted: an empty SOP Class / SOP Instance UID
    is taken from the file meta, which repeats it; an empty Study / Series Instance UID
    gets a UID derived from the attributes that group the images (see
    :func:`_fill_study_and_series`).

    Parameters
    ----------
    paths : iterable of str or Path
        Files must be DICOM Part-10; in folders, other files are skipped.
    refuse_burned_in : bool
        Refuse files whose BurnedInAnnotation is ``YES`` (set when de-identifying).

    Returns
    -------
    LocalFiles
        ``instances`` in path order, each read whole (pixel data included); ``skipped``
        files in the folders that were not DICOM Part-10; ``notes`` on repairs.

    Raises
    ------
    PacsInputError
        A file is not DICOM or is damaged, lacks a UID or transfer syntax, is not a
        storage SOP class, declares burned-in annotation, or two files share a SOP
        Instance UID; a folder holds no DICOM file; nothing was given.
    SeldingerIOError
        A path does not exist or cannot be read.
    """
    files, skipped = _candidates(paths)
    instances: list[LocalInstance] = []
    seen: dict[str, Path] = {}
    filled: dict[str, int] = {}
    for path in files:
        dataset = _read(path, refuse_burned_in=refuse_burned_in)
        for keyword in _fill_study_and_series(dataset):
            filled[keyword] = filled.get(keyword, 0) + 1
        uid = str(dataset.SOPInstanceUID)
        if uid in seen:
            raise PacsInputError(
                f"{path} and {seen[uid]} have the same SOP Instance UID {uid}; a PACS keeps "
                "one of them. Push each instance once."
            )
        seen[uid] = path
        instances.append(LocalInstance(path, dataset))
    notes = [
        f"{count} files had an empty {keyword}; each group of images that belong together "
        "(frame of reference, modality, series number, orientation, matrix) got one new UID"
        for keyword, count in filled.items()
    ]
    logger.debug("read %d instances, skipped %d files", len(instances), len(skipped))
    return LocalFiles(instances, skipped, notes)
