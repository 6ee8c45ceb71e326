"""The plan under breathing, with known fields: target motion, paths through the phases."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.imaging import Volume, VolumeGeometry
from seldinger.motion import DisplacementField, MotionError
from seldinger.motion.plan_motion import (
    displacement_at,
    follow_path,
    gated_residual_rms_mm,
    invert_points,
    target_motion,
)
from shared_paths import requires_shared

SPACING_MM = (1.0, 1.0, 2.0)
GRID = VolumeGeometry.from_spacing((120, 120, 60), SPACING_MM)


def _bump_field(
    amplitude_mm: float, centre_lps_mm: tuple[float, float, float], sigma_mm: float
) -> DisplacementField:
    """A smooth SI (−z) shift, largest at ``centre``: a lung region moving toward the feet."""
    ijk = np.indices(GRID.shape).reshape(3, -1).T
    lps = GRID.index_to_lps(ijk)
    r2 = np.sum((lps - np.asarray(centre_lps_mm)) ** 2, axis=1)
    vectors = np.zeros((len(lps), 3), np.float32)
    vectors[:, 2] = -amplitude_mm * np.exp(-r2 / (2 * sigma_mm**2))
    return DisplacementField(GRID, vectors.reshape(*GRID.shape, 3))


def test_translation_moves_target_and_keeps_paths_straight() -> None:
    shift = (1.0, -2.0, -8.0)
    fields = {"exp": None, "insp": DisplacementField.constant(GRID, shift)}
    motion = target_motion("lesion", [[50.0, 50.0, 50.0], [52.0, 50.0, 50.0]], fields)
    assert motion.phases[1].displacement_vector_mm == pytest.approx(shift, abs=1e-4)
    assert motion.amplitude_mm == pytest.approx(np.linalg.norm(shift), abs=1e-3)
    assert motion.peak_to_peak_si_mm == pytest.approx(8.0, abs=1e-3)
    assert motion.motion_management_recommended  # 8.3 mm > TG-76's 5 mm
    path = follow_path((10.0, 50.0, 50.0), (50.0, 50.0, 50.0), fields, {})
    assert path.max_lateral_deviation_mm == pytest.approx(0.0, abs=1e-4)
    assert path.tip_motion_mm == pytest.approx(np.linalg.norm(shift), abs=1e-3)
    assert path.safe_in_all_phases


def test_small_motion_needs_no_management() -> None:
    fields = {"exp": None, "insp": DisplacementField.constant(GRID, (0.0, 0.0, -4.0))}
    assert not target_motion("lesion", [[50.0, 50.0, 50.0]], fields).motion_management_recommended


def test_inverse_of_a_bump_field() -> None:
    field = _bump_field(12.0, (60.0, 60.0, 60.0), 20.0)
    x = np.array([[60.0, 60.0, 60.0], [45.0, 70.0, 50.0], [20.0, 20.0, 20.0]])
    y = x + displacement_at(field, x)
    assert invert_points(field, y) == pytest.approx(x, abs=0.05)


def test_tissue_bends_and_a_rib_comes_into_the_path() -> None:
    # Entry at the chest wall (no motion), target 60 mm deep moving 12 mm to the feet: the
    # straight needle between them tilts by 12 mm over 60 mm. A "rib" 1.5 mm below the
    # planned line, 10 mm in from the entry, is clear at expiration and crossed at
    # inspiration (the line drops by 10/60 × ~12 = 2 mm there).
    target, entry = (70.0, 60.0, 60.0), (10.0, 60.0, 60.0)
    field = _bump_field(12.0, target, 25.0)
    rib = np.zeros(GRID.shape, bool)
    ijk = np.rint(GRID.lps_to_index(np.array([[20.0, 60.0, 58.0]])))[0].astype(int)
    rib[ijk[0] - 2 : ijk[0] + 3, :, ijk[2] - 1 : ijk[2] + 1] = True  # z 56-58 mm: below 60
    hard = {"bones": Volume(rib, GRID.affine)}
    fields = {"expiration": None, "inspiration": field}
    followed = follow_path(entry, target, fields, hard)
    assert followed.unsafe_phases == {"inspiration": ["bones"]}
    assert not followed.safe_in_all_phases
    moved_tip = np.asarray(target) + displacement_at(field, np.asarray([target]))[0]
    assert followed.targets_lps_mm["inspiration"] == pytest.approx(moved_tip, abs=1e-6)
    # The tissue along the planned line bends (the bump fades toward the entry): it strays
    # from the straight needle by a few mm, less than the tip moves.
    assert 0.5 < followed.max_lateral_deviation_mm < followed.tip_motion_mm
    clear = follow_path(entry, target, {"expiration": None}, hard)
    assert clear.safe_in_all_phases


def test_gated_residual() -> None:
    assert gated_residual_rms_mm(15.0, (0.0, 0.25)) == pytest.approx(0.25 * 15.0 / np.sqrt(12.0))
    assert gated_residual_rms_mm(15.0, (0.0, 1.0)) == pytest.approx(15.0 / np.sqrt(12.0))
    with pytest.raises(MotionError, match="0 <= low < high <= 1"):
        gated_residual_rms_mm(15.0, (0.3, 0.2))


def test_empty_target_is_refused() -> None:
    with pytest.raises(MotionError, match="no voxels"):
        target_motion("lesion", np.zeros((0, 3)), {"exp": None})


@requires_shared
def test_study_phases_are_named_from_series_descriptions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dicom_cases import lidc_slices
    from pydicom.uid import generate_uid

    from seldinger.errors import BadInputError
    from seldinger.workflow.motion import study_phases

    uids = {}
    for number, description in ((1, "Exp 50%"), (2, "Insp 0%"), (3, "Insp 0%")):
        uid = generate_uid()
        uids[number] = uid
        for n, ds in enumerate(lidc_slices()):
            ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = uid, number, description
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.save_as(tmp_path / f"s{number}_{n:03d}.dcm", enforce_file_format=True)
    phases = study_phases(tmp_path, exclude_series_uid=uids[1])
    assert phases == [("insp-0", tmp_path, uids[2]), ("insp-0-2", tmp_path, uids[3])]
    with pytest.raises(BadInputError, match="no CT series besides the plan's own"):
        study_phases(_only(tmp_path, uids[1]), uids[1])


def _only(folder, uid):  # type: ignore[no-untyped-def]
    """A folder holding only the series ``uid`` of ``folder``."""
    import shutil

    import pydicom

    out = folder / "only"
    out.mkdir()
    for path in folder.glob("*.dcm"):
        if pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID == uid:
            shutil.copy(path, out / path.name)
    return out


@requires_shared
@pytest.mark.parametrize(
    ("keyword", "rule"), [("PatientID", "patient"), ("FrameOfReferenceUID", "frame_of_reference")]
)
def test_dicom_phases_of_another_patient_or_frame_are_refused(tmp_path, keyword, rule) -> None:  # type: ignore[no-untyped-def]
    from dicom_cases import lidc_slices
    from pydicom.uid import generate_uid

    from seldinger.io import read_ct
    from seldinger.motion import PhaseError, phases_from_cts

    other = {"PatientID": "SOMEONE-ELSE", "FrameOfReferenceUID": generate_uid()}[keyword]
    folders = []
    for number in (1, 2):
        folder = tmp_path / f"phase{number}"
        folder.mkdir()
        uid = generate_uid()
        for n, ds in enumerate(lidc_slices()):
            ds.SeriesInstanceUID, ds.SeriesNumber = uid, number
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            if number == 2:
                setattr(ds, keyword, other)
            ds.save_as(folder / f"{n:03d}.dcm", enforce_file_format=True)
        folders.append(folder)
    cts = [(f"p{i}", read_ct(folder)) for i, folder in enumerate(folders)]
    assert cts[0][1].meta.patient_id and cts[0][1].meta.frame_of_reference_uid
    assert "patient_id" not in cts[0][1].meta.to_dict()  # compared, never printed
    with pytest.raises(PhaseError) as caught:
        phases_from_cts(cts)
    assert caught.value.rule == rule and "\n" not in str(caught.value)
