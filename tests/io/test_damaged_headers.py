"""The cases we can name get a precise message: the file, the attribute, the value, the fix.

Each test damages one field of a real LIDC slice (or of a small NIfTI / NRRD made from the
LIDC crop) and pins the message; ``test_fuzz.py`` checks the general promise.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag

from seldinger.imaging import Volume
from seldinger.io import DicomReadError, ImageReadError, read_ct, write_volume
from shared_paths import LIDC


@pytest.fixture(scope="module")
def lidc_slice() -> bytes:
    files = sorted((LIDC / "dicom").glob("*.dcm"))
    if not files:
        pytest.skip("the LIDC-IDRI-0001 DICOM slices are absent")
    return files[0].read_bytes()


def _edited(tmp_path: Path, data: bytes, **fields: Any) -> Path:
    ds = pydicom.dcmread(io.BytesIO(data))
    path = tmp_path / "slice.dcm"
    with warnings.catch_warnings():  # pydicom warns about the values we damage on purpose
        warnings.simplefilter("ignore")
        _set(ds, fields)
        ds.save_as(path, enforce_file_format=True)
    return path


def _set(ds: pydicom.Dataset, fields: dict[str, Any]) -> None:
    for keyword, value in fields.items():
        if value is None:
            del ds[keyword]
        elif isinstance(value, tuple):  # (VR, raw bytes): a value pydicom would not write
            tag = BaseTag(pydicom.datadict.tag_for_keyword(keyword))
            raw = value[1] + (b" " if len(value[1]) % 2 else b"")
            ds[tag] = RawDataElement(tag, value[0], len(raw), raw, 0, False, True)
        else:
            setattr(ds, keyword, value)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"BitsAllocated": None}, r"BitsAllocated \(0028,0100\) is missing"),
        ({"Columns": 0}, r"Rows 512 x Columns 0: an image needs at least one"),
        (
            {"RescaleSlope": ["65535", "1", "2"]},
            r"RescaleSlope must hold one value; got '65535\\\\1\\\\2'",
        ),
        ({"RescaleIntercept": ("DS", b"inf ")}, r"RescaleIntercept is 'inf', not a finite number"),
        ({"RescaleIntercept": ("DS", b"nan ")}, r"RescaleIntercept is 'nan', not a finite number"),
        ({"RescaleSlope": "0"}, r"RescaleSlope must not be 0"),
        ({"RescaleSlope": "-1e308"}, r"RescaleSlope -1e\+308 .* beyond 1e\+07"),
        (
            {"PixelSpacing": ["-0.703125", "0.703125"]},
            r"PixelSpacing \[-0\.703125, 0\.703125\] mm must be positive",
        ),
        ({"PixelSpacing": ["0", "0.703125"]}, r"PixelSpacing .* must be positive"),
        ({"SliceThickness": "-2.5"}, r"SliceThickness -2\.5 mm must be positive"),
        ({"ImageOrientationPatient": ["2", "0", "0", "0", "1", "0"]}, r"not two unit vectors"),
        ({"ImagePositionPatient": ["1e9", "0", "0"]}, r"ImagePositionPatient .* beyond"),
        ({"SamplesPerPixel": 3}, r"SamplesPerPixel 3.*grayscale"),
        (
            {"PixelRepresentation": ("CS", b"MODIFIED")},
            r"PixelRepresentation 'MODIFIED' is not an integer",
        ),
        ({"SeriesNumber": ("IS", b"3000566(")}, r"SeriesNumber '3000566\(' is not an integer"),
        ({"SOPInstanceUID": "1.2.3.abc"}, r"SOPInstanceUID '1\.2\.3\.abc' is not a valid UID"),
        (
            {"GantryDetectorTilt": ("DS", b"0.000p00")},
            r"GantryDetectorTilt '0\.000p00' is not a number",
        ),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, dict) else None,
)
def test_named_dicom_defects(
    tmp_path: Path, lidc_slice: bytes, fields: dict[str, Any], match: str
) -> None:
    path = _edited(tmp_path, lidc_slice, **fields)
    with pytest.raises(DicomReadError, match=match) as info:
        read_ct(path)
    assert str(info.value).startswith(f"{path}: ")


def test_truncated_dicom_names_what_is_missing(tmp_path: Path, lidc_slice: bytes) -> None:
    path = tmp_path / "slice.dcm"
    path.write_bytes(lidc_slice[:153])
    with pytest.raises(DicomReadError, match=r"truncated DICOM file: it ends inside a header"):
        read_ct(path)
    path.write_bytes(lidc_slice[:-1000])
    with pytest.raises(
        DicomReadError,
        match=r"slice\.dcm: truncated DICOM file: .* inside \(7FE0,0010\) PixelData \(1000 of",
    ):
        read_ct(path)


def test_damaged_slice_in_a_folder_is_named_not_skipped(tmp_path: Path, lidc_slice: bytes) -> None:
    """A slice with the DICM preamble that cannot be parsed stops the read and is named;
    before, it was skipped as "non-DICOM" and the stack silently lost an end slice."""
    folder = tmp_path / "series"
    folder.mkdir()
    for n, source in enumerate(sorted((LIDC / "dicom").glob("*.dcm"))[:3]):
        (folder / f"s{n}.dcm").write_bytes(source.read_bytes())
    whole = (folder / "s0.dcm").read_bytes()
    (folder / "s0.dcm").write_bytes(whole[:1501])  # inside ImagePositionPatient
    with pytest.raises(DicomReadError, match=r"s0\.dcm: truncated DICOM file: .*\(0020,0032\)"):
        read_ct(folder)
    (folder / "s0.dcm").write_bytes(whole[:1490])  # just before it: no element is cut
    with pytest.raises(DicomReadError, match=r"s0\.dcm: a CT image without Rows or Columns"):
        read_ct(folder)


def _small_volume() -> Volume:
    affine = np.diag([0.703125, 0.703125, 2.5, 1.0])
    return Volume(np.arange(24, dtype=np.int16).reshape(4, 3, 2), affine)


@pytest.mark.parametrize(
    ("suffix", "old", "new", "match"),
    [
        (".nrrd", b"(0.703125,0,0)", b"(0,0,0)", r"spacing \[0\.0, 0\.703125, 2\.5\] mm must be"),
        (".nrrd", b"sizes: 4 3 2", b"sizes: 4 3 200", r"header declares 4800 bytes .* holds only"),
        (".nrrd", b"dimension: 3", b"dimension: -1", r"dimension is '-1'; it must be 3"),
        (
            ".mha",
            b"ElementSpacing = 0.703125",
            b"ElementSpacing = -0.703125",
            r"ElementSpacing is .*positive",
        ),
        (".mha", b"DimSize = 4 3 2", b"DimSize = 2048 2048 512", r"2048 x 2048 x 512|declares"),
    ],
    ids=["nrrd-zero-direction", "nrrd-short-data", "nrrd-dimension", "mha-negative", "mha-huge"],
)
def test_named_itk_defects(tmp_path: Path, suffix: str, old: bytes, new: bytes, match: str) -> None:
    import SimpleITK as sitk

    path = tmp_path / f"ct{suffix}"
    array = np.ascontiguousarray(np.asarray(_small_volume().array).transpose(2, 1, 0))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.703125, 0.703125, 2.5))
    sitk.WriteImage(image, str(path), useCompression=False)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(ImageReadError, match=match) as info:
        read_ct(path)
    assert str(path) in str(info.value)


def test_round_trip_still_reads(tmp_path: Path) -> None:
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        path = write_volume(_small_volume(), tmp_path / f"ct{suffix}")
        assert np.array_equal(read_ct(path).volume.array, _small_volume().array)
