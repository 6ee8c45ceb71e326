"""DICOM RT Plan of a permanent I-125 seed implant: needles as channels, seeds as positions."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest

from seldinger.export.dicom import (
    DicomExportError,
    read_brachy_plan,
    write_brachy_plan,
    write_rtstruct,
)
from seldinger.physics.tg43 import I125_HALF_LIFE_DAYS
from shared_paths import NODULE_CENTROID_LPS_MM


def _needles() -> list[np.ndarray]:
    rng = np.random.default_rng(20240611)
    centre = np.asarray(NODULE_CENTROID_LPS_MM)
    return [centre + rng.uniform(-12.0, 12.0, (n, 3)) for n in (3, 5, 1, 4)]


def test_seed_positions_round_trip(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    needles = _needles()
    rs = write_rtstruct(
        {"nodule": dicom_case.masks["nodule"]}, dicom_case.series, tmp_path / "rs.dcm"
    )
    path = write_brachy_plan(
        needles,
        dicom_case.series,
        tmp_path / "plan.dcm",
        strength_u=0.635,
        prescription_dose_gy=145.0,
        seed_model="6711",
        seed_manufacturer="GE Healthcare",
        structure_set=rs,
    )
    plan = read_brachy_plan(path)
    assert len(plan.needles_lps_mm) == len(needles)
    for written, read in zip(needles, plan.needles_lps_mm, strict=True):
        np.testing.assert_allclose(read, written, rtol=0, atol=0.01)
    assert (plan.strength_u, plan.isotope, plan.seed_model) == (0.635, "I-125", "6711")
    assert plan.half_life_days == pytest.approx(59.40)
    assert plan.prescription_dose_gy == pytest.approx(145.0)

    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == dicom_case.series.study_uid
    assert ds.FrameOfReferenceUID == dicom_case.series.frame_of_reference_uid
    assert ds.RTPlanGeometry == "PATIENT"
    assert (
        ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
        == pydicom.dcmread(rs).SOPInstanceUID
    )
    assert (ds.BrachyTreatmentTechnique, ds.BrachyTreatmentType) == ("INTERSTITIAL", "LDR")
    # one seed = its mean life τ = T½ / ln 2; TRAK = N · S_K · τ (µGy at 1 m)
    tau_h = I125_HALF_LIFE_DAYS * 24.0 / math.log(2.0)
    setup = ds.ApplicationSetupSequence[0]
    assert float(setup.TotalReferenceAirKerma) == pytest.approx(13 * 0.635 * tau_h, rel=1e-9)
    channel = setup.ChannelSequence[1]
    assert channel.SourceMovementType == "FIXED"
    assert float(channel.ChannelTotalTime) == pytest.approx(5 * tau_h * 3600.0, rel=1e-9)
    weights = [float(p.CumulativeTimeWeight) for p in channel.BrachyControlPointSequence]
    assert weights == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert float(channel.FinalCumulativeTimeWeight) == 5


def test_without_structure_set_the_plan_is_device_based(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_brachy_plan(
        _needles(),
        dicom_case.series,
        tmp_path / "p.dcm",
        strength_u=0.5,
        prescription_dose_gy=120.0,
        seed_model="6711",
    )
    assert pydicom.dcmread(path).RTPlanGeometry == "TREATMENT_DEVICE"


def test_bad_plans_are_refused_and_nothing_written(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "p.dcm"
    kwargs = {"strength_u": 0.5, "prescription_dose_gy": 145.0, "seed_model": "6711"}
    with pytest.raises(DicomExportError, match="needles_lps_mm is empty"):
        write_brachy_plan([], dicom_case.series, out, **kwargs)
    with pytest.raises(DicomExportError, match=r"needles_lps_mm\[1\] must be an \(n, 3\)"):
        write_brachy_plan([np.zeros((2, 3)), np.zeros((0, 3))], dicom_case.series, out, **kwargs)
    with pytest.raises(DicomExportError, match="NaN"):
        write_brachy_plan([np.full((1, 3), np.nan)], dicom_case.series, out, **kwargs)
    with pytest.raises(DicomExportError, match="strength_u must be a positive"):
        write_brachy_plan(_needles(), dicom_case.series, out, **{**kwargs, "strength_u": 0.0})
    with pytest.raises(DicomExportError, match="structure_set must be an RT Structure Set"):
        write_brachy_plan(
            _needles(), dicom_case.series, out, **kwargs, structure_set=dicom_case.series.reference
        )
    assert list(tmp_path.iterdir()) == []
