"""DICOM Spatial Registration: tracker_to_ct stored as the matrix from the tracker frame."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from scipy.spatial.transform import Rotation

from seldinger.export.dicom import DicomExportError, read_registration, write_registration


def _tracker_to_ct() -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", [12.0, -25.0, 40.0], degrees=True).as_matrix()
    matrix[:3, 3] = [101.25, -20.5, 3.125]
    return matrix


def test_matrix_round_trip_and_direction(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker_to_ct = _tracker_to_ct()
    path = write_registration(
        tracker_to_ct, dicom_case.series, tmp_path / "reg.dcm", tracker_frame_uid="1.2.3.4"
    )
    ct_item, tracker_item = read_registration(path)
    assert ct_item.source_frame_uid == dicom_case.series.frame_of_reference_uid
    np.testing.assert_allclose(ct_item.source_to_registered, np.eye(4), atol=1e-12)
    assert tracker_item.source_frame_uid == "1.2.3.4"
    assert tracker_item.registered_frame_uid == dicom_case.series.frame_of_reference_uid
    np.testing.assert_allclose(tracker_item.source_to_registered, tracker_to_ct, rtol=0, atol=1e-6)
    # PS3.3 C.20.2.1.1: A_M_B maps B (the item's frame: tracker) into A (the registered
    # frame: CT), row-major. Hand check: the tracker origin lands at the translation.
    ds = pydicom.dcmread(path)
    values = [
        float(v)
        for v in ds.RegistrationSequence[1]
        .MatrixRegistrationSequence[0]
        .MatrixSequence[0]
        .FrameOfReferenceTransformationMatrix
    ]
    assert values[3::4] == pytest.approx([101.25, -20.5, 3.125, 1.0])
    assert ds.FrameOfReferenceUID == dicom_case.series.frame_of_reference_uid
    assert ds.StudyInstanceUID == dicom_case.series.study_uid and ds.Modality == "REG"
    referenced = ds.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == dicom_case.series.series_uid
    assert len(referenced.ReferencedInstanceSequence) == 16


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (np.diag([1.01, 1.0, 1.0, 1.0]), "scaled"),
        (np.diag([-1.0, 1.0, 1.0, 1.0]), "reflection"),
        (np.array([[1, 0.01, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "sheared"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.1, 1]]), "projective"),
    ],
)
def test_non_rigid_matrix_is_refused_and_nothing_written(dicom_case, tmp_path, change, why) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "reg.dcm"
    matrix = change @ _tracker_to_ct() if why != "projective" else change
    with pytest.raises(DicomExportError, match="tracker_to_ct is not rigid"):
        write_registration(matrix, dicom_case.series, out)
    assert not out.exists()


def test_non_finite_matrix_is_refused(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DicomExportError, match="finite 4x4"):
        write_registration(np.full((4, 4), np.nan), dicom_case.series, tmp_path / "r.dcm")
    with pytest.raises(DicomExportError, match="finite 4x4"):
        write_registration(np.eye(3), dicom_case.series, tmp_path / "r.dcm")
    with pytest.raises(DicomExportError, match="not a valid DICOM UID"):
        write_registration(
            np.eye(4), dicom_case.series, tmp_path / "r.dcm", tracker_frame_uid="tracker"
        )
    assert list(tmp_path.iterdir()) == []
