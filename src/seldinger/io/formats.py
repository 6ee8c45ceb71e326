"""Choosing a reader or writer from a path: DICOM folder/file, NIfTI, NRRD, MetaImage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.io.ct import Ct, CtMeta
from seldinger.io.errors import ImageReadError, MissingInputError
from seldinger.io.nifti import read_nifti, write_nifti

if TYPE_CHECKING:
    from seldinger.io.dicom import ProgressCallback

# pydicom and SimpleITK (0.3 s of imports) are loaded only when a DICOM series or an
# NRRD/MetaImage file is read: a NIfTI-only command starts without them.

__all__ = ["SUPPORTED_INPUTS", "detect_format", "read_ct", "read_volume", "write_volume"]

SUPPORTED_INPUTS = (
    "a DICOM folder or file, NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd)"
)
_WRITERS = {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".mha": "metaimage"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _is_dicom_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def detect_format(path: str | Path) -> str:
    """ "dicom", "nifti", "nrrd" or "metaimage"; raises ImageReadError for anything else."""
    source = Path(path)
    if not source.exists():
        raise MissingInputError(f"{source} does not exist. Give {SUPPORTED_INPUTS}.")
    if source.is_dir():
        return "dicom"
    suffix = _suffix(source)
    if suffix in (".nii", ".nii.gz"):
        return "nifti"
    if suffix in (".nrrd", ".nhdr"):
        return "nrrd"
    if suffix in (".mha", ".mhd"):
        return "metaimage"
    if suffix in (".dcm", ".dicom", ".ima") or _is_dicom_file(source):
        return "dicom"
    raise ImageReadError(
        f"{source}: unknown image format {suffix or '(no suffix)'}. Give {SUPPORTED_INPUTS}."
    )


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI, NRRD or MetaImage file (a CT, mask, dose grid …) into a Volume."""
    fmt = detect_format(path)
    if fmt == "nifti":
        return read_nifti(path)
    if fmt in ("nrrd", "metaimage"):
        from seldinger.io.itk import read_itk

        return read_itk(path)
    return read_ct(path).volume


def read_ct(
    path: str | Path,
    series_uid: str | None = None,
    resample: bool = False,
    progress: ProgressCallback | None = None,
) -> Ct:
    """Read a CT from a DICOM folder/file, NIfTI, NRRD or MetaImage.

    Parameters
    ----------
    path : str or Path
        The CT. DICOM folders are searched recursively.
    series_uid : str, optional
        DICOM only: the series to read when a folder holds several.
    resample : bool
        DICOM only: resample stacks with gaps, uneven spacing or gantry tilt onto a
        uniform grid instead of refusing them.
    progress : callable, optional
        DICOM only: ``progress(done, total)`` per file.

    Returns
    -------
    Ct
        ``.volume`` (HU, LPS mm) and ``.meta`` (UIDs, kVp, kernel, …; None where
        the format has no such field).

    Examples
    --------
    >>> from seldinger.io import read_ct  # doctest: +SKIP
    >>> ct = read_ct("LIDC-IDRI-0001/")  # doctest: +SKIP
    >>> ct.volume.spacing_mm  # doctest: +SKIP
    (0.703125, 0.703125, 2.5)
    """
    fmt = detect_format(path)
    if fmt == "dicom":
        from seldinger.io.dicom import read_dicom_ct

        return read_dicom_ct(path, series_uid=series_uid, resample=resample, progress=progress)
    if series_uid is not None:
        raise ImageReadError(f"{path}: series_uid (--series) applies to DICOM input only.")
    if fmt == "nifti":
        volume = read_nifti(path)
    else:
        from seldinger.io.itk import read_itk

        volume = read_itk(path)
    return Ct(volume=volume, meta=CtMeta(source_path=str(path), format=fmt))


def write_volume(volume: Volume, path: str | Path, force: bool = False) -> Path:
    """Write a Volume as NIfTI (.nii/.nii.gz), NRRD (.nrrd) or MetaImage (.mha), atomically."""
    target = Path(path)
    kind = _WRITERS.get(_suffix(target))
    if kind is None:
        raise BadInputError(
            f"cannot write {target}: the name must end in one of {', '.join(_WRITERS)}."
        )
    if kind == "nifti":
        return write_nifti(volume, target, force=force)
    from seldinger.io.itk import write_itk

    return write_itk(volume, target, force=force)
