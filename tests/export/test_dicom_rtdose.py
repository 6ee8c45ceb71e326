"""DICOM RT Dose: a Gy grid stored as scaled uint32, referencing its RT Plan, read back."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from seldinger.export.dicom import DicomExportError, read_rtdose, write_brachy_plan, write_rtdose
from seldinger.imaging import Volume, reorient


@pytest.fixture
def plan(dicom_case, tmp_path):  # type: ignore[no-untyped-def]
    needles = [np.array([[56.4, 86.3, -116.0], [56.4, 86.3, -111.0]])]
    return write_brachy_plan(
        needles,
        dicom_case.series,
        tmp_path / "plan.dcm",
        strength_u=0.6,
        prescription_dose_gy=145.0,
        seed_model="6711",
    )


def _dose(affine_diag=(2.0, 2.0, 2.5)) -> Volume:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(20240611)
    affine = np.diag([*affine_diag, 1.0])
    affine[:3, 3] = [30.0, 60.0, -130.0]
    i, j, k = np.meshgrid(np.arange(24), np.arange(20), np.arange(10), indexing="ij")
    r_mm = np.sqrt(((i - 12) * 2.0) ** 2 + ((j - 10) * 2.0) ** 2 + ((k - 5) * 2.5) ** 2) + 1.0
    return Volume(400.0 / r_mm + rng.uniform(0, 1, r_mm.shape), affine)


def test_dose_round_trip_within_a_thousandth_of_max(dicom_case, plan, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dose = _dose()
    path = write_rtdose(dose, dicom_case.series, tmp_path / "dose.dcm", plan=plan)
    back = read_rtdose(path)
    assert np.abs(back.array - dose.array).max() <= 1e-3 * dose.array.max()
    np.testing.assert_allclose(back.affine, dose.affine, atol=1e-6)
    ds = pydicom.dcmread(path)
    assert (ds.DoseType, ds.DoseSummationType, ds.DoseUnits) == ("PHYSICAL", "PLAN", "GY")
    assert (ds.BitsAllocated, ds.PixelRepresentation) == (32, 0)
    assert (
        ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
        == pydicom.dcmread(plan).SOPInstanceUID
    )
    assert [float(v) for v in ds.GridFrameOffsetVector] == pytest.approx(np.arange(10) * 2.5)
    assert ds.FrameOfReferenceUID == dicom_case.series.frame_of_reference_uid


def test_left_handed_dose_grid_is_stacked_along_the_normal(dicom_case, plan, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dose = _dose((2.0, 2.0, -2.5))
    back = read_rtdose(write_rtdose(dose, dicom_case.series, tmp_path / "d.dcm", plan=plan))
    expected = reorient(dose, "LPS")
    np.testing.assert_allclose(back.affine, expected.affine, atol=1e-6)
    assert np.abs(back.array - expected.array).max() <= 1e-3 * dose.array.max()


def test_bad_dose_is_refused_and_nothing_written(dicom_case, plan, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "dose.dcm"
    values = np.array(_dose().array)
    dose = Volume(values, _dose().affine)
    values[3, 4, 5] = np.nan  # a caller changing the array it gave the Volume
    with pytest.raises(DicomExportError, match="1 NaN or infinite voxels"):
        write_rtdose(dose, dicom_case.series, out, plan=plan)
    with pytest.raises(DicomExportError, match="negative doses"):
        write_rtdose(_dose().with_array(-_dose().array), dicom_case.series, out, plan=plan)
    with pytest.raises(DicomExportError, match="plan must be an RT Plan"):
        write_rtdose(_dose(), dicom_case.series, out, plan=dicom_case.series.reference)
    assert not out.exists()
