"""DICOM folders for reader tests, written from the 16 real LIDC-IDRI-0001 CT slices.

Each case function writes one folder (``dst``, created if needed) and returns a
:class:`DicomCase`. A case is valid DICOM except for the one defect its name says. Files
get random names (``IMG_<hex>.dcm``), so a reader cannot lean on file names. Randomness
comes from ``rng`` (default ``np.random.default_rng(SEED)``), so every case is reproducible.

The source slices (GE LightSpeed Plus, explicit VR little endian, 512×512 int16, stored +
``RescaleIntercept`` −1024 = HU, 0.703125 mm pixels, z −132.5 … −95 mm every 2.5 mm, axial
IOP) are described in ``shared/README.md``. :func:`lidc_reference` gives the HU volume and
LPS affine that a correct reader returns for them.

``DicomCase.facts`` keys, by case:

- ``copy_lidc``: ``instance_numbers`` ({path: InstanceNumber}, shuffled against z).
- ``truncated_slice``: ``z_mm`` of the cut slice, ``kept_bytes``, ``full_bytes``.
- ``two_series_mixed`` / ``two_series_mixed_sizes``: ``other_series_uid``,
  ``other_files``, ``other_n_slices``.
- ``duplicate_positions``: ``z_mm`` shared by the two files in ``offending``.
- ``missing_slice``: ``missing_z_mm``, ``gap_z_mm`` (the neighbours either side).
- ``uneven_spacing``: ``z_mm`` (ascending), ``steps_mm``.
- ``differing_orientation``: ``z_mm``, ``angle_deg``.
- ``gantry_tilt``: ``tilt_deg``, ``slice_step_lps_mm``.
- ``non_ct_modality``: ``modality``, ``sop_class_uid``.
- ``undecodable_transfer_syntax`` / ``compressed``: ``transfer_syntax_uid``.
- ``enhanced_multiframe`` / ``with_scout_and_dose_report``: ``scout``, ``dose_report``
  (and ``multiframe`` or ``non_dicom``).
- ``write_ct_series`` / ``series_300``: ``affine_lps``, ``pixel_representation``.
"""

from __future__ import annotations

import copy
import functools
import json
import struct
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    MRImageStorage,
    RLELossless,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

__all__ = [
    "LIDC_DICOM_DIR",
    "LIDC_SPACING_MM",
    "LIDC_Z_MM",
    "SEED",
    "DicomCase",
    "compressed",
    "copy_lidc",
    "differing_orientation",
    "duplicate_positions",
    "empty_folder",
    "enhanced_multiframe",
    "gantry_tilt",
    "lidc_reference",
    "lidc_slices",
    "missing_slice",
    "non_ct_modality",
    "non_dicom_only",
    "series_300",
    "stretch_along_k",
    "synthetic_ct",
    "to_lps_order",
    "truncated_slice",
    "two_series_mixed",
    "two_series_mixed_sizes",
    "undecodable_transfer_syntax",
    "uneven_spacing",
    "with_scout_and_dose_report",
    "write_ct_series",
]

SEED = 20240611

#: The 16 real slices; the project root's sibling ``shared/`` holds them.
LIDC_DICOM_DIR = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lidc-idri-0001" / "dicom"
)
LIDC_Z_MM = tuple(-132.5 + 2.5 * k for k in range(16))
LIDC_SPACING_MM = (0.703125, 0.703125, 2.5)

#: Stored value = HU − this intercept in every series written here (GE and Siemens use −1024).
RESCALE_INTERCEPT_HU = -1024

#: JPEG 2000 Part 2 multi-component (lossless): encapsulated and known to pydicom, but no
#: installed plugin (pylibjpeg, GDCM via SimpleITK) decodes it.
JPEG2000_PART2_LOSSLESS = UID("1.2.840.10008.1.2.4.92")
XRAY_RADIATION_DOSE_SR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.88.67")

_SYNTAXES = {"rle": RLELossless, "jpeg2000": JPEG2000Lossless, "jpeg_lossless": JPEGLosslessSV1}


@dataclass(frozen=True)
class DicomCase:
    """What a case function wrote: its folder, main series, defective files and facts."""

    folder: Path
    series_uid: str | None
    offending: tuple[Path, ...] = ()
    files: tuple[Path, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


@functools.cache
def _read_lidc(source: Path) -> tuple[Dataset, ...]:
    paths = sorted(source.glob("*.dcm"))
    if len(paths) != 16:
        raise FileNotFoundError(
            f"expected the 16 LIDC-IDRI-0001 slices in {source}, found {len(paths)} .dcm files. "
            "Put the shared data next to the project root (../shared/data) or pass source=."
        )
    datasets = [pydicom.dcmread(p) for p in paths]
    return tuple(sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2])))


def lidc_slices(source: Path = LIDC_DICOM_DIR) -> list[Dataset]:
    """Fresh copies of the 16 LIDC slices, sorted by ascending z (inferior first)."""
    return [copy.deepcopy(ds) for ds in _read_lidc(Path(source))]


def lidc_reference(
    source: Path = LIDC_DICOM_DIR,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float64]]:
    """HU array, shape (512, 512, 16) indexed (i, j, k), and index→LPS affine of the slices."""
    slices = _read_lidc(Path(source))
    stored = np.stack([ds.pixel_array for ds in slices], axis=-1)  # (row=j, col=i, k)
    hu = (stored.astype(np.int32) + RESCALE_INTERCEPT_HU).astype(np.int16).transpose(1, 0, 2)
    affine = np.eye(4)
    affine[:3, :3] = np.diag(LIDC_SPACING_MM)
    affine[:3, 3] = [float(v) for v in slices[0].ImagePositionPatient]
    return np.ascontiguousarray(hu), affine


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng(SEED) if rng is None else rng


def _uid(rng: np.random.Generator) -> UID:
    return generate_uid(entropy_srcs=[f"seldinger-test-{rng.integers(2**62)}"])


def _ds(value: float) -> str:
    return format_number_as_ds(float(value))


class _Names:
    """Unique random file names (``IMG_<hex>.dcm``) in one case."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._taken: set[str] = set()

    def __call__(self, suffix: str = ".dcm", prefix: str = "IMG_") -> str:
        while True:
            name = f"{prefix}{int(self._rng.integers(16**8)):08X}{suffix}"
            if name not in self._taken:
                self._taken.add(name)
                return name


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _write_flat(datasets: Sequence[Dataset], dst: Path, names: _Names) -> list[Path]:
    return [_save(ds, dst / names()) for ds in datasets]


def _set_sop_instance(ds: Dataset, uid: str) -> None:
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid


def _set_sop_class(ds: Dataset, uid: str) -> None:
    ds.SOPClassUID = uid
    ds.file_meta.MediaStorageSOPClassUID = uid


def _set_z(ds: Dataset, z_mm: float) -> None:
    x, y, _ = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [_ds(x), _ds(y), _ds(z_mm)]
    ds.SliceLocation = _ds(z_mm)


def _set_stored(ds: Dataset, stored: np.ndarray) -> None:
    ds.PixelData = np.ascontiguousarray(stored.astype(ds.pixel_array.dtype)).tobytes()


def _noisy(ds: Dataset, rng: np.random.Generator, sigma_hu: float) -> np.ndarray:
    """Stored values plus Gaussian noise inside the field of view (outside stays padding)."""
    stored = ds.pixel_array.astype(np.int32)
    inside = stored > stored.min()
    noise = np.rint(rng.normal(0.0, sigma_hu, stored.shape)).astype(np.int32)
    return np.where(inside, np.clip(stored + noise, -1024, 4095), stored)


def _new_series(ds: Dataset, series_uid: str, number: int, description: str) -> None:
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description


def _readme(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    readme = dst / "README.txt"
    readme.write_text("Exported by PACS viewer. Images are in DICOM format.\n", encoding="utf-8")
    return readme


def _non_dicom_files(dst: Path) -> list[Path]:
    """A README, a real 1×1 PNG and a JSON sidecar: the litter found in exported folders."""
    readme = _readme(dst)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    png = dst / "preview.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )
    sidecar = dst / "series.json"
    sidecar.write_text(json.dumps({"Modality": "CT", "SliceThickness": 2.5}), encoding="utf-8")
    return [readme, png, sidecar]


def _localizer(
    slices: Sequence[Dataset],
    rng: np.random.Generator,
    series_uid: str,
    series_number: int,
    instance_number: int = 1,
) -> Dataset:
    """Coronal projection of the slices, labelled as a CT LOCALIZER (a scout/topogram)."""
    ds = copy.deepcopy(slices[-1])
    hu = np.stack([s.pixel_array.astype(np.float32) for s in slices[::-1]])  # (k top→down, j, i)
    profile_hu = np.maximum(hu, -1000.0).mean(axis=1)  # mean along j (AP), shape (16, 512)
    rows_per_slice = 4  # 2.5 mm slices → 0.625 mm scout rows
    stored = np.rint(np.repeat(profile_hu, rows_per_slice, axis=0) + 1024.0).astype(np.int16)
    ds.set_pixel_data(stored, "MONOCHROME2", 16)
    _set_sop_instance(ds, _uid(rng))
    _new_series(ds, series_uid, series_number, "Topogram 0.6 T20")
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]  # coronal, rows run inferior
    x0 = float(ds.ImagePositionPatient[0])
    z_top_mm = float(slices[-1].ImagePositionPatient[2]) + 1.25 - 0.3125
    ds.ImagePositionPatient = [_ds(x0), "0", _ds(z_top_mm)]
    ds.PixelSpacing = [_ds(2.5 / rows_per_slice), ds.PixelSpacing[1]]
    ds.SliceThickness = None
    for keyword in ("SliceLocation", "PixelPaddingValue"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.WindowCenter, ds.WindowWidth = "-300", "1200"
    return ds


def _dose_report(template: Dataset, rng: np.random.Generator) -> Dataset:
    """Minimal X-Ray Radiation Dose SR (TID 10011 CT Radiation Dose) for the same study."""
    import highdicom as hd

    code = hd.sr.CodedConcept
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XRAY_RADIATION_DOSE_SR_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    sr = Dataset()
    sr.file_meta = meta
    sr.SpecificCharacterSet = "ISO_IR 100"
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "Manufacturer",
    ):
        setattr(sr, keyword, template.get(keyword, ""))
    sr.SOPClassUID = XRAY_RADIATION_DOSE_SR_STORAGE
    _set_sop_instance(sr, _uid(rng))
    sr.Modality = "SR"
    sr.SeriesInstanceUID = _uid(rng)
    sr.SeriesNumber = 997
    sr.SeriesDescription = "Dose Report"
    sr.InstanceNumber = 1
    sr.ContentDate = template.StudyDate
    sr.ContentTime = "120000"
    sr.CompletionFlag = "COMPLETE"
    sr.VerificationFlag = "UNVERIFIED"
    sr.ReferencedPerformedProcedureStepSequence = []
    sr.PerformedProcedureCodeSequence = []
    sr.ValueType = "CONTAINER"
    sr.ConceptNameCodeSequence = [code("113701", "DCM", "X-Ray Radiation Dose Report")]
    sr.ContinuityOfContent = "SEPARATE"
    template_id = Dataset()
    template_id.MappingResource = "DCMR"
    template_id.TemplateIdentifier = "10011"
    sr.ContentTemplateSequence = [template_id]
    accumulated = hd.sr.ContainerContentItem(
        code("113811", "DCM", "CT Accumulated Dose Data"), relationship_type="CONTAINS"
    )
    accumulated.ContentSequence = [
        hd.sr.NumContentItem(
            code("113812", "DCM", "Total Number of Irradiation Events"),
            1,
            code("{events}", "UCUM", "events"),
            relationship_type="CONTAINS",
        ),
        hd.sr.NumContentItem(
            code("113813", "DCM", "CT Dose Length Product Total"),
            412.5,
            code("mGy.cm", "UCUM", "mGy.cm"),
            relationship_type="CONTAINS",
        ),
    ]
    sr.ContentSequence = [
        hd.sr.CodeContentItem(
            code("121058", "DCM", "Procedure reported"),
            code("77477000", "SCT", "Computed Tomography"),
            relationship_type="HAS CONCEPT MOD",
        ),
        accumulated,
    ]
    return sr


# --------------------------------------------------------------------------- cases


def copy_lidc(
    dst: Path, *, rng: np.random.Generator | None = None, source: Path = LIDC_DICOM_DIR
) -> DicomCase:
    """The 16 slices in nested folders under random names (one without extension), with InstanceNumber shuffled against z."""
    rng = _rng(rng)
    names = _Names(rng)
    slices = lidc_slices(source)
    order = np.arange(1, len(slices) + 1)
    while np.all(np.diff(order) > 0) or np.all(np.diff(order) < 0):
        order = rng.permutation(len(slices)) + 1
    folders = [dst / "PA000001" / "ST000001" / "SE000001", dst / "PA000001" / "EXTRA", dst / "x"]
    files, numbers = [], {}
    for k, (ds, number) in enumerate(zip(slices, order, strict=True)):
        ds.InstanceNumber = int(number)
        name = names(suffix="", prefix="I") if k == 5 else names()
        path = _save(ds, folders[int(rng.integers(len(folders)))] / name)
        files.append(path)
        numbers[path] = int(number)
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        files=tuple(files),
        facts={"instance_numbers": numbers},
    )


def empty_folder(dst: Path) -> DicomCase:
    """A folder with nothing in it."""
    dst.mkdir(parents=True, exist_ok=True)
    return DicomCase(dst, None)


def non_dicom_only(dst: Path) -> DicomCase:
    """A folder holding only a README.txt, a PNG and a JSON file."""
    files = _non_dicom_files(dst)
    return DicomCase(dst, None, offending=tuple(files), files=tuple(files))


def truncated_slice(
    dst: Path, *, rng: np.random.Generator | None = None, source: Path = LIDC_DICOM_DIR
) -> DicomCase:
    """The 16 slices, one (z −115.0) cut off in the middle of its pixel data; offending = it."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    files = _write_flat(slices, dst, _Names(rng))
    k = 7
    path = files[k]
    raw = path.read_bytes()
    n_pixel_bytes = len(slices[k].PixelData)
    value_start = len(raw) - n_pixel_bytes
    header = raw[value_start - 12 : value_start]
    if header[:4] != b"\xe0\x7f\x10\x00" or struct.unpack("<I", header[8:])[0] != n_pixel_bytes:
        raise RuntimeError(f"{path.name}: Pixel Data is not the last element; cannot cut it.")
    kept = value_start + n_pixel_bytes // 2 + 1  # odd length, mid-row: a broken transfer
    path.write_bytes(raw[:kept])
    return DicomCase(
        dst,
        str(slices[k].SeriesInstanceUID),
        offending=(path,),
        files=tuple(files),
        facts={"z_mm": LIDC_Z_MM[k], "kept_bytes": kept, "full_bytes": len(raw)},
    )


def _two_series(
    dst: Path, n_second: int, rng: np.random.Generator | None, source: Path
) -> DicomCase:
    rng = _rng(rng)
    names = _Names(rng)
    slices = lidc_slices(source)
    if not 1 <= n_second <= len(slices):
        raise ValueError(f"n_second must be 1 to {len(slices)}; got {n_second}.")
    step = len(slices) // n_second
    other_uid = _uid(rng)
    second = []
    for number, original in enumerate(slices[::step][:n_second], start=1):
        ds = copy.deepcopy(original)
        _set_stored(ds, _noisy(ds, rng, sigma_hu=25.0))  # a sharper (noisier) kernel
        _set_sop_instance(ds, _uid(rng))
        _new_series(ds, other_uid, int(ds.SeriesNumber) + 1, "CHEST 2.5 BONE")
        ds.ConvolutionKernel = "BONE"
        ds.InstanceNumber = number
        second.append(ds)
    everything = [*slices, *second]
    mixed = [everything[i] for i in rng.permutation(len(everything))]
    files = _write_flat(mixed, dst, names)
    second_ids = {id(ds) for ds in second}
    other_files = tuple(p for p, ds in zip(files, mixed, strict=True) if id(ds) in second_ids)
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        files=tuple(files),
        facts={
            "other_series_uid": str(other_uid),
            "other_files": other_files,
            "other_n_slices": len(second),
        },
    )


def two_series_mixed(
    dst: Path,
    *,
    n_second: int = 16,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """The 16 slices plus a second series (new UID, noisier 'BONE' pixels) of equal size in one folder."""
    return _two_series(dst, n_second, rng, source)


def two_series_mixed_sizes(
    dst: Path, *, rng: np.random.Generator | None = None, source: Path = LIDC_DICOM_DIR
) -> DicomCase:
    """The 16 slices plus an 8-slice second series (every other z): series_uid is the larger."""
    return _two_series(dst, 8, rng, source)


def duplicate_positions(
    dst: Path,
    *,
    identical_pixels: bool = False,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """The 16 slices plus a copy of the z −115.0 slice (new SOPInstanceUID, same IPP); offending = both."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    k = 7
    extra = copy.deepcopy(slices[k])
    _set_sop_instance(extra, _uid(rng))
    extra.InstanceNumber = max(int(ds.InstanceNumber) for ds in slices) + 1
    if not identical_pixels:
        _set_stored(extra, _noisy(extra, rng, sigma_hu=10.0))
    files = _write_flat([*slices, extra], dst, _Names(rng))
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        offending=(files[k], files[-1]),
        files=tuple(files),
        facts={"z_mm": LIDC_Z_MM[k]},
    )


def missing_slice(
    dst: Path,
    *,
    z_mm: float = -115.0,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """The slices without the interior one at z_mm; facts['gap_z_mm'] = its two neighbours."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    k = int(np.argmin([abs(z - z_mm) for z in LIDC_Z_MM]))
    if not 0 < k < len(slices) - 1 or abs(LIDC_Z_MM[k] - z_mm) > 1e-3:
        raise ValueError(f"z_mm must be an interior slice position of {LIDC_Z_MM}; got {z_mm}.")
    files = _write_flat(slices[:k] + slices[k + 1 :], dst, _Names(rng))
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        files=tuple(files),
        facts={"missing_z_mm": LIDC_Z_MM[k], "gap_z_mm": (LIDC_Z_MM[k - 1], LIDC_Z_MM[k + 1])},
    )


def uneven_spacing(
    dst: Path, *, rng: np.random.Generator | None = None, source: Path = LIDC_DICOM_DIR
) -> DicomCase:
    """The 16 slices (pixels kept) re-positioned so the z step alternates 2.5 / 3.0 mm."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    steps_mm = [2.5 if k % 2 == 0 else 3.0 for k in range(len(slices) - 1)]
    z_mm = tuple(LIDC_Z_MM[0] + float(s) for s in np.concatenate([[0.0], np.cumsum(steps_mm)]))
    for ds, z in zip(slices, z_mm, strict=True):
        _set_z(ds, z)
    files = _write_flat(slices, dst, _Names(rng))
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        files=tuple(files),
        facts={"z_mm": z_mm, "steps_mm": tuple(steps_mm)},
    )


def differing_orientation(
    dst: Path,
    *,
    angle_deg: float = 10.0,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """The 16 slices, the z −115.0 one rotated angle_deg about z around its centre; offending = it."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    k = 7
    ds = slices[k]
    t = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0, 0, 1.0]])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    d_row_mm, d_col_mm = (float(v) for v in ds.PixelSpacing)  # (between rows, between columns)
    half = row * (ds.Columns - 1) / 2 * d_col_mm + col * (ds.Rows - 1) / 2 * d_row_mm
    centre = np.array([float(v) for v in ds.ImagePositionPatient]) + half
    new_row, new_col = rotation @ row, rotation @ col
    new_half = new_row * (ds.Columns - 1) / 2 * d_col_mm + new_col * (ds.Rows - 1) / 2 * d_row_mm
    ds.ImageOrientationPatient = [_ds(v) for v in (*new_row, *new_col)]
    ds.ImagePositionPatient = [_ds(v) for v in centre - new_half]
    files = _write_flat(slices, dst, _Names(rng))
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        offending=(files[k],),
        files=tuple(files),
        facts={"z_mm": LIDC_Z_MM[k], "angle_deg": angle_deg},
    )


def gantry_tilt(
    dst: Path,
    tilt_deg: float = 15.0,
    *,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """Tilted acquisition: IOP [1,0,0, 0,cos t,−sin t], IPP stepping 2.5 mm along z only, GantryDetectorTilt t."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    t = np.deg2rad(tilt_deg)
    iop = [1.0, 0.0, 0.0, 0.0, np.cos(t), -np.sin(t)]
    for ds in slices:
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.GantryDetectorTilt = _ds(tilt_deg)
    files = _write_flat(slices, dst, _Names(rng))
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        files=tuple(files),
        facts={"tilt_deg": float(tilt_deg), "slice_step_lps_mm": (0.0, 0.0, 2.5)},
    )


def non_ct_modality(
    dst: Path, *, rng: np.random.Generator | None = None, source: Path = LIDC_DICOM_DIR
) -> DicomCase:
    """The 16 slices relabelled as an MR series (Modality MR, MR Image Storage, MR tags added)."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    series_uid = _uid(rng)
    for ds in slices:
        _set_sop_class(ds, MRImageStorage)
        _set_sop_instance(ds, _uid(rng))
        _new_series(ds, series_uid, 5, "t1_se_tra")
        ds.Modality = "MR"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "1.5"
        for keyword in ("KVP", "XRayTubeCurrent", "Exposure", "ExposureTime", "ConvolutionKernel"):
            if keyword in ds:
                delattr(ds, keyword)
    files = _write_flat(slices, dst, _Names(rng))
    return DicomCase(
        dst,
        str(series_uid),
        offending=tuple(files),
        files=tuple(files),
        facts={"modality": "MR", "sop_class_uid": str(MRImageStorage)},
    )


def undecodable_transfer_syntax(
    dst: Path,
    *,
    transfer_syntax_uid: str = JPEG2000_PART2_LOSSLESS,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """The 16 slices as well-formed encapsulated pixel data (one garbage fragment each) in a syntax nothing installed decodes."""
    rng = _rng(rng)
    slices = lidc_slices(source)
    for ds in slices:
        # A JPEG 2000 SOC + SIZ marker, then noise: parses as a codestream start, never decodes.
        fragment = b"\xff\x4f\xff\x51" + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax_uid)
        ds.PixelData = encapsulate([fragment])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    files = _write_flat(slices, dst, _Names(rng))
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        offending=tuple(files),
        files=tuple(files),
        facts={"transfer_syntax_uid": str(transfer_syntax_uid)},
    )


def _jpeg_lossless_sitk(ds: Dataset) -> None:
    """Re-encode ds's pixels as JPEG Lossless SV1 with GDCM (via SimpleITK), in place."""
    import SimpleITK as sitk

    stored = ds.pixel_array
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "jpeg.dcm"
        writer = sitk.ImageFileWriter()
        writer.SetFileName(str(path))
        writer.SetUseCompression(True)
        writer.SetCompressor("JPEG")
        writer.Execute(sitk.GetImageFromArray(stored[np.newaxis]))
        encoded = pydicom.dcmread(path)
    if encoded.file_meta.TransferSyntaxUID != JPEGLosslessSV1:
        raise RuntimeError(
            "SimpleITK's GDCM JPEG writer produced "
            f"{encoded.file_meta.TransferSyntaxUID.name}, not JPEG Lossless SV1."
        )
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encoded.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def compressed(
    dst: Path,
    syntax: Literal["rle", "jpeg2000", "jpeg_lossless"],
    *,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """The 16 slices losslessly compressed (RLE / JPEG 2000 Lossless / JPEG Lossless SV1), each checked to decode exactly."""
    if syntax not in _SYNTAXES:
        raise ValueError(f"syntax must be one of {sorted(_SYNTAXES)}; got {syntax!r}.")
    uid = _SYNTAXES[syntax]
    rng = _rng(rng)
    slices = lidc_slices(source)
    originals = [ds.pixel_array.copy() for ds in slices]
    for ds in slices:
        try:
            if syntax == "jpeg_lossless":
                _jpeg_lossless_sitk(ds)
            else:
                ds.compress(uid)
        except (ImportError, RuntimeError, NotImplementedError) as err:
            raise RuntimeError(f"no working encoder for {uid.name}: {err}") from err
    files = _write_flat(slices, dst, _Names(rng))
    for path, original in zip(files, originals, strict=True):
        written = pydicom.dcmread(path)
        if written.file_meta.TransferSyntaxUID != uid or not np.array_equal(
            written.pixel_array, original
        ):
            raise RuntimeError(f"{path.name}: {uid.name} round trip is not lossless.")
    return DicomCase(
        dst,
        str(slices[0].SeriesInstanceUID),
        files=tuple(files),
        facts={"transfer_syntax_uid": str(uid)},
    )


def enhanced_multiframe(
    dst: Path, *, rng: np.random.Generator | None = None, source: Path = LIDC_DICOM_DIR
) -> DicomCase:
    """One Legacy Converted Enhanced CT (16 frames, highdicom) plus a scout and a dose SR in the same folder."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    rng = _rng(rng)
    names = _Names(rng)
    slices = lidc_slices(source)
    series_uid = _uid(rng)
    multiframe = LegacyConvertedEnhancedCTImage(
        slices,
        series_instance_uid=series_uid,
        series_number=int(slices[0].SeriesNumber) + 10,
        sop_instance_uid=_uid(rng),
        instance_number=1,
    )
    mf_path = _save(multiframe, dst / names())
    scout_path = _save(_localizer(slices, rng, _uid(rng), 1), dst / names())
    sr_path = _save(_dose_report(slices[0], rng), dst / names())
    return DicomCase(
        dst,
        str(series_uid),
        files=(mf_path, scout_path, sr_path),
        facts={"multiframe": mf_path, "scout": scout_path, "dose_report": sr_path},
    )


def with_scout_and_dose_report(
    dst: Path,
    *,
    scout_in_ct_series: bool = True,
    rng: np.random.Generator | None = None,
    source: Path = LIDC_DICOM_DIR,
) -> DicomCase:
    """copy_lidc plus a coronal LOCALIZER (in the CT series by default), a dose SR and a README."""
    rng = _rng(rng)
    case = copy_lidc(dst, rng=rng, source=source)
    slices = lidc_slices(source)
    scout_uid = str(case.series_uid) if scout_in_ct_series else _uid(rng)
    names = _Names(rng)
    if scout_in_ct_series:  # a scout sharing the CT series takes the next free InstanceNumber
        scout = _localizer(slices, rng, scout_uid, int(slices[0].SeriesNumber), len(slices) + 1)
    else:
        scout = _localizer(slices, rng, scout_uid, 1)
    scout_path = _save(scout, dst / "PA000001" / "ST000001" / "SE000001" / names())
    sr_path = _save(_dose_report(slices[0], rng), dst / "PA000001" / "DOSE" / names())
    readme = _readme(dst)
    return DicomCase(
        dst,
        case.series_uid,
        files=(*case.files, scout_path, sr_path, readme),
        facts={"scout": scout_path, "dose_report": sr_path, "non_dicom": readme},
    )


# --------------------------------------------------------------------------- CT-sized series


def write_ct_series(
    dst: Path,
    array_ijk_hu: npt.ArrayLike,
    affine_lps: npt.ArrayLike,
    series_uid: str | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> DicomCase:
    """Write integer HU voxels (i, j, k) with their index→LPS affine as uncompressed CT slices, one per k."""
    array = np.asarray(array_ijk_hu)
    affine = np.asarray(affine_lps, dtype=np.float64)
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"array_ijk_hu must be a 3-D integer array (i, j, k) of HU; got shape {array.shape}, "
            f"dtype {array.dtype}. Round floating HU first."
        )
    if affine.shape != (4, 4):
        raise ValueError(f"affine_lps must be 4x4; got shape {affine.shape}.")
    rng = _rng(rng)
    series_uid = str(series_uid or _uid(rng))
    study_uid, frame_uid = _uid(rng), _uid(rng)
    spacing_mm = np.linalg.norm(affine[:3, :3], axis=0)
    row_dir, col_dir = affine[:3, 0] / spacing_mm[0], affine[:3, 1] / spacing_mm[1]
    normal = np.cross(row_dir, col_dir)
    thickness_mm = abs(float(normal @ affine[:3, 2]))
    # Stored = HU − intercept; unsigned when every value fits (PixelRepresentation 0).
    pixel_representation = int(int(array.min()) - RESCALE_INTERCEPT_HU < 0)
    dtype = np.dtype(np.int16 if pixel_representation else np.uint16)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    dst.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(array.shape[2]):
        ipp = (affine @ [0.0, 0.0, k, 1.0])[:3]
        # DICOM rows run along j and columns along i: pixel[r, c] = array[c, r, k].
        stored = np.clip(array[:, :, k].T.astype(np.int32) - RESCALE_INTERCEPT_HU, lo, hi)
        sop_uid = _uid(rng)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240611"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "Seldinger test writer"
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = "Synthetic CT series for reader benchmarks"
        ds.PatientName = "Seldinger^Benchmark"
        ds.PatientID = "SELDINGER-BENCH"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.SliceThickness = _ds(thickness_mm)
        ds.KVP = "120"
        ds.PatientPosition = "FFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in ipp]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(normal @ ipp))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = array.shape[1], array.shape[0]
        ds.PixelSpacing = [_ds(spacing_mm[1]), _ds(spacing_mm[0])]  # [between rows, columns]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = pixel_representation
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept = str(RESCALE_INTERCEPT_HU)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored.astype(dtype)).tobytes()
        files.append(_save(ds, dst / f"CT.{sop_uid}.dcm"))
    return DicomCase(
        dst,
        series_uid,
        files=tuple(files),
        facts={"affine_lps": affine.copy(), "pixel_representation": pixel_representation},
    )


def synthetic_ct(
    shape: tuple[int, int, int] = (512, 512, 300), *, rng: np.random.Generator | None = None
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float64]]:
    """Deterministic chest-like HU phantom (i, j, k) and its LPS affine (0.7×0.7×1.1 mm)."""
    rng = _rng(rng)
    n_i, n_j, n_k = shape
    i, j = np.meshgrid(np.arange(n_i), np.arange(n_j), indexing="ij")
    u, v = (i - n_i / 2) / (n_i / 2), (j - n_j / 2) / (n_j / 2)  # −1 … 1 across the slice
    outside_fov = u**2 + v**2 > 0.98
    array = np.empty(shape, dtype=np.int16)
    for k in range(n_k):
        s = 1.0 + 0.08 * np.sin(2 * np.pi * k / max(n_k, 1))  # body outline changes along k
        body = (u / (0.85 * s)) ** 2 + (v / (0.6 * s)) ** 2 < 1
        lungs = ((np.abs(u) - 0.38) / 0.28) ** 2 + (v / 0.42) ** 2 < 1
        spine = u**2 + ((v - 0.42) / 0.9) ** 2 < 0.01
        hu = np.full((n_i, n_j), -1000, dtype=np.int16)
        hu[body] = 40
        hu[body & lungs] = -850
        hu[spine] = 700
        hu += rng.integers(-20, 21, size=(n_i, n_j), dtype=np.int16)
        hu[outside_fov] = -2048
        array[:, :, k] = hu
    affine = np.diag([0.703125, 0.703125, 1.1, 1.0])
    affine[:3, 3] = [-180.0, -180.0, -340.0]
    return array, affine


def to_lps_order(
    array_ijk: np.ndarray, affine_lps: npt.ArrayLike
) -> tuple[np.ndarray, npt.NDArray[np.float64]]:
    """Permute and flip axes (views, no copy) so i, j, k run towards +L, +P, +S; affine follows."""
    affine = np.array(affine_lps, dtype=np.float64)
    axes = np.argmax(np.abs(affine[:3, :3]), axis=0)  # world axis each index axis runs along
    if sorted(axes.tolist()) != [0, 1, 2]:
        raise ValueError(f"affine_lps is too oblique to name its axes' directions:\n{affine}")
    order = np.argsort(axes)  # index axis that runs along x, y, z
    array = np.transpose(array_ijk, order)
    affine[:, :3] = affine[:, :3][:, order]
    for axis in range(3):
        if affine[axis, axis] < 0:
            n = array.shape[axis]
            affine[:3, 3] += affine[:3, axis] * (n - 1)
            affine[:3, axis] *= -1
            array = np.flip(array, axis=axis)
    return array, affine


def stretch_along_k(
    array_ijk: npt.NDArray[np.integer],
    affine_lps: npt.ArrayLike,
    n_slices: int,
    spacing_k_mm: float | None = None,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float64]]:
    """Linearly interpolate slices to n_slices at spacing_k_mm (default ≤ 1.1 mm, fitting the source)."""
    affine = np.array(affine_lps, dtype=np.float64)
    n_src = array_ijk.shape[2]
    src_spacing_mm = float(np.linalg.norm(affine[:3, 2]))
    longest_mm = (n_src - 1) * src_spacing_mm / max(n_slices - 1, 1)
    spacing_k_mm = min(1.1, longest_mm) if spacing_k_mm is None else spacing_k_mm
    if spacing_k_mm > longest_mm + 1e-9:
        raise ValueError(
            f"spacing_k_mm {spacing_k_mm} × {n_slices} slices runs past the source's "
            f"{n_src} slices at {src_spacing_mm} mm; use spacing_k_mm ≤ {longest_mm:.4f}."
        )
    out = np.empty((*array_ijk.shape[:2], n_slices), dtype=np.int16)
    for k in range(n_slices):
        s = k * spacing_k_mm / src_spacing_mm
        f = min(int(np.floor(s)), n_src - 1)
        w = s - f
        below = array_ijk[:, :, f].astype(np.float32)
        above = array_ijk[:, :, min(f + 1, n_src - 1)].astype(np.float32)
        out[:, :, k] = np.rint((1 - w) * below + w * above).astype(np.int16)
    affine[:3, 2] *= spacing_k_mm / src_spacing_mm
    return out, affine


def series_300(
    dst: Path,
    n_slices: int = 300,
    source_ct: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> DicomCase:
    """A 512×512×n_slices CT series from source_ct (array_ijk_hu, affine_lps; reordered to LPS, stretched along k), else the phantom."""
    rng = _rng(rng)
    if source_ct is None:
        array, affine = synthetic_ct((512, 512, n_slices), rng=rng)
    else:
        array, affine = stretch_along_k(*to_lps_order(*source_ct), n_slices)
    return write_ct_series(dst, array, affine, rng=rng)
