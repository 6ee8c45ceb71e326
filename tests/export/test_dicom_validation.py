"""Every exported object passes dciodvfy (no "Error" line) and dcmdump, for both inputs.

Warnings are allowed; the ones seen are listed in docs/dicom_export.md (empty Type 2
attributes such as StudyID that a DICOMDIR would want, Laterality left empty where it is
unknown, the ApplicationSetupType "INTERSTITIAL" that is not among the Defined Terms).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from seldinger.export.dicom import (
    write_brachy_plan,
    write_registration,
    write_rtdose,
    write_rtstruct,
    write_seg,
)
from shared_paths import NODULE_CENTROID_LPS_MM

OBJECTS = ("seg", "rtstruct", "rtplan", "rtdose", "registration")
#: (input, object): the CT slices are ours only for NIfTI input (DICOM input references the
#: scanner's slices as they are).
CHECKED = [("nifti", "ct_first"), ("nifti", "ct_last")] + [
    (source, kind) for source in ("dicom", "nifti") for kind in OBJECTS
]


def _export_all(case, folder: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    out = {
        "seg": write_seg(case.masks, case.series, folder / "seg.dcm"),
        "rtstruct": write_rtstruct(case.masks, case.series, folder / "rtstruct.dcm"),
    }
    centre = np.asarray(NODULE_CENTROID_LPS_MM)
    needles = [centre + np.outer([dz, dz + 5.0, dz + 10.0], [0, 0, 1]) for dz in (-5.0, 0.0)]
    out["rtplan"] = write_brachy_plan(
        needles,
        case.series,
        folder / "rtplan.dcm",
        strength_u=0.6,
        prescription_dose_gy=145.0,
        seed_model="6711",
        structure_set=out["rtstruct"],
    )
    dose = case.ct.crop_lps(centre - 20.0, centre + 20.0)
    dose = dose.with_array(np.linspace(0.0, 200.0, dose.array.size).reshape(dose.shape))
    out["rtdose"] = write_rtdose(dose, case.series, folder / "rtdose.dcm", plan=out["rtplan"])
    tracker_to_ct = np.eye(4)
    tracker_to_ct[:3, 3] = [10.0, -20.0, 30.0]
    out["registration"] = write_registration(tracker_to_ct, case.series, folder / "reg.dcm")
    if case.folder is not None and case.folder.name == "ct":  # the series we wrote
        files = sorted(case.folder.glob("*.dcm"))
        out["ct_first"], out["ct_last"] = files[0], files[-1]
    return out


@pytest.fixture(scope="module")
def exported(dicom_case, nifti_case, tmp_path_factory) -> dict[str, dict[str, Path]]:  # type: ignore[no-untyped-def]
    return {
        "dicom": _export_all(dicom_case, tmp_path_factory.mktemp("dicom_input")),
        "nifti": _export_all(nifti_case, tmp_path_factory.mktemp("nifti_input")),
    }


@pytest.mark.parametrize(("source", "kind"), CHECKED)
def test_dciodvfy_reports_no_error(exported, source, kind, dciodvfy_errors, dcmdump_reads) -> None:  # type: ignore[no-untyped-def]
    path = exported[source][kind]
    assert dcmdump_reads(path)
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize("source", ["dicom", "nifti"])
def test_objects_join_the_ct_study_and_frame(exported, source, request) -> None:  # type: ignore[no-untyped-def]
    case = request.getfixturevalue(f"{source}_case")
    headers = {k: pydicom.dcmread(p, stop_before_pixels=True) for k, p in exported[source].items()}
    series_uids = {h.SeriesInstanceUID for k, h in headers.items() if not k.startswith("ct_")}
    assert len(series_uids) == 5 and case.series.series_uid not in series_uids
    for kind, header in headers.items():
        assert header.StudyInstanceUID == case.series.study_uid, kind
        assert header.FrameOfReferenceUID == case.series.frame_of_reference_uid, kind
        assert header.PatientID == case.series.reference.PatientID, kind
        assert header.Manufacturer == "Seldinger", kind
        assert header.SoftwareVersions == __import__("seldinger").__version__, kind
