"""The referenced CT series: DICOM slices matched to k-planes; a Volume written as a series."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from seldinger.export.dicom import (
    PLACEHOLDER_PATIENT_ID,
    DicomExportError,
    read_source_series,
    write_ct_series,
)
from seldinger.imaging import Volume, reorient
from seldinger.io import read_ct


def _synthetic_ct(affine: np.ndarray, shape=(12, 10, 6)) -> Volume:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(20240611)
    return Volume(rng.integers(-1024, 2000, shape).astype(np.int16), affine)


def test_dicom_slices_are_matched_by_position_not_by_file_order(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    z = [float(ds.ImagePositionPatient[2]) for ds in dicom_case.series.datasets]
    assert z == pytest.approx([-132.5 + 2.5 * k for k in range(16)])  # k order, not file order
    assert all("PixelData" not in ds for ds in dicom_case.series.datasets)
    # the same slices under shuffled names in nested folders, with a stray non-DICOM file
    rng = np.random.default_rng(20240611)
    for n, path in enumerate(sorted(dicom_case.folder.glob("*.dcm"))):
        sub = tmp_path / f"d{n % 3}"
        sub.mkdir(exist_ok=True)
        shutil.copy(path, sub / f"IMG_{rng.integers(1 << 30):x}")
    (tmp_path / "README.txt").write_text("not DICOM")
    uid = dicom_case.series.series_uid
    again = read_source_series(tmp_path, uid, dicom_case.ct)
    assert again.sop_instance_uids == dicom_case.series.sop_instance_uids


def test_dicom_slices_must_match_the_volume(dicom_case) -> None:  # type: ignore[no-untyped-def]
    folder, uid, ct = dicom_case.folder, dicom_case.series.series_uid, dicom_case.ct
    with pytest.raises(DicomExportError, match=r"reorient\(ct, 'LPS'\)"):
        read_source_series(folder, uid, reorient(ct, "RAS"))
    with pytest.raises(DicomExportError, match="not the corner voxel of a k-plane"):
        read_source_series(folder, uid, ct.crop_index((slice(0, 512), slice(0, 512), slice(2, 16))))
    affine = ct.affine.copy()
    affine[2, 3] += 0.3  # 0.3 mm along z: more than the reader's 0.025 mm
    shifted = Volume(ct.array, affine)
    with pytest.raises(DicomExportError, match=r"off by 0\.300 mm"):
        read_source_series(folder, uid, shifted)
    with pytest.raises(DicomExportError, match=r"no DICOM file of series 1\.2\.3"):
        read_source_series(folder, "1.2.3", ct)


def test_written_series_reads_back_identical(nifti_case, dcmdump_reads, dciodvfy_errors) -> None:  # type: ignore[no-untyped-def]
    ct = nifti_case.ct
    back = read_ct(nifti_case.folder)
    assert back.volume.array.dtype == np.int16
    np.testing.assert_array_equal(back.volume.array, ct.array)
    np.testing.assert_allclose(back.volume.affine, ct.affine, rtol=0, atol=1e-4)
    files = sorted(nifti_case.folder.glob("*.dcm"))
    assert len(files) == ct.shape[2]
    first = pydicom.dcmread(files[0])
    assert first.Manufacturer == "Seldinger" and first.PatientID == PLACEHOLDER_PATIENT_ID
    assert first.PatientIdentityRemoved == "YES" and first.RescaleType == "HU"
    assert first.StudyInstanceUID == nifti_case.series.study_uid
    for path in (files[0], files[-1]):
        assert dcmdump_reads(path)
        assert dciodvfy_errors(path) == []


def test_left_handed_volume_is_written_in_reverse_slice_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    affine = np.diag([0.8, 0.8, -2.0, 1.0])  # "LPI": k runs inferior
    affine[:3, 3] = [-40.0, 10.0, 30.0]
    ct = _synthetic_ct(affine)
    series = write_ct_series(ct, tmp_path / "ct")
    back = read_ct(tmp_path / "ct").volume
    expected = reorient(ct, "LPS")
    np.testing.assert_array_equal(back.array, expected.array)
    np.testing.assert_allclose(back.affine, expected.affine, atol=1e-4)
    mask = ct.with_array(ct.array > 1500)  # on the original (LPI) grid: still accepted
    np.testing.assert_array_equal(series.mask_array(mask, "m"), expected.array > 1500)


def test_oblique_float_ct_is_rounded_to_hu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    angle = np.deg2rad(20.0)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.9, 1.5])
    ct = _synthetic_ct(affine)
    floats = ct.with_array(ct.array.astype(np.float32) + 0.3)
    write_ct_series(floats, tmp_path / "ct")
    back = read_ct(tmp_path / "ct").volume
    np.testing.assert_array_equal(back.array, ct.array)
    np.testing.assert_allclose(back.affine, affine, atol=1e-4)


def test_bad_ct_is_refused_and_nothing_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ct = _synthetic_ct(np.eye(4))
    with pytest.raises(DicomExportError, match="beyond int16"):
        write_ct_series(ct.with_array(ct.array.astype(np.float32) * 100), tmp_path / "a")
    with pytest.raises(DicomExportError, match="boolean mask"):
        write_ct_series(ct.with_array(ct.array > 0), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []
    write_ct_series(ct, tmp_path / "c")
    with pytest.raises(FileExistsError):
        write_ct_series(ct, tmp_path / "c")
