"""Tests of seldinger.planning.plan: the Plan document, its case identity and its file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import seldinger
from seldinger.imaging import Volume, reorient
from seldinger.planning import (
    CaseIdentity,
    Plan,
    PlanCaseMismatchError,
    PlanFileError,
    StructureRef,
    Target,
    voxel_sha256,
)


def _ct(seed: int = 20240611) -> Volume:
    """Small anisotropic CT-like volume (HU) with an off-origin LPS affine."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1024, 1500, size=(12, 10, 6), dtype=np.int16)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = [-160.0, -170.0, -340.0]
    return Volume(array, affine)


def _full_plan(ct: Volume) -> Plan:
    plan = Plan.new(
        ct,
        "data/ct.nii.gz",
        series_uid="1.2.840.113654.2.55.1",
        parameters={"margin_mm": 5.0, "seed": 20240611, "organs": ["lung", "heart"]},
        command="seldinger plan trajectory ct.nii.gz",
    )
    plan.structures["lung_left"] = StructureRef(
        mask_path="masks/lung_left.nii.gz", volume_ml=1450.2
    )
    plan.targets.append(
        Target(
            name="nodule 1",
            centroid_lps_mm=(56.4, 86.3, -116.0),
            volume_ml=7.76,
            diameters_mm=(27.1, 22.3, 19.8),
        )
    )
    plan.trajectories.append({"entry_lps_mm": [90.0, 120.0, -116.0], "length_mm": 48.2})
    plan.notes.append("made by a test")
    return plan


# --- voxel hash -----------------------------------------------------------------------


def test_voxel_sha256_is_independent_of_axis_order_and_flips() -> None:
    ct = _ct()
    expected = voxel_sha256(ct)
    for code in ("RAI", "PIR", "SLA", "RPS"):
        other = reorient(ct, code)
        assert other.orientation == code
        assert voxel_sha256(other) == expected


def test_voxel_sha256_is_independent_of_integer_dtype() -> None:
    ct = _ct()
    assert voxel_sha256(ct.with_array(ct.array.astype(np.float32))) == voxel_sha256(ct)


def test_voxel_sha256_changes_with_one_voxel_and_with_shape() -> None:
    ct = _ct()
    changed = ct.array.copy()
    changed[3, 4, 5] += 1
    assert voxel_sha256(ct.with_array(changed)) != voxel_sha256(ct)
    # Same values in the same memory order, another shape: must not collide.
    reshaped = Volume(np.ascontiguousarray(ct.array).reshape(10, 12, 6), ct.affine)
    assert voxel_sha256(reshaped) != voxel_sha256(ct)


def test_case_identity_records_volume_as_given() -> None:
    ct = reorient(_ct(), "RAI")
    case = CaseIdentity.from_volume(ct, Path("ct.nii.gz"), series_uid="1.2.3")
    assert case.shape == ct.shape
    assert np.array_equal(np.asarray(case.affine), ct.affine)
    assert case.dtype == "int16"
    assert case.source_path == "ct.nii.gz"
    assert case.voxel_sha256 == voxel_sha256(_ct())


def test_case_identity_rejects_invalid_affine() -> None:
    case = CaseIdentity.from_volume(_ct(), "ct.nii.gz")
    document = case.model_dump()
    document["affine"] = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="affine must be a 4x4 matrix"):
        CaseIdentity.model_validate(document)


# --- the document ---------------------------------------------------------------------


def test_new_plan_records_provenance() -> None:
    plan = Plan.new(_ct(), "ct.nii.gz", parameters={"margin_mm": 5.0})
    assert plan.schema_version == "1"
    assert plan.provenance.software_version == seldinger.__version__
    assert plan.provenance.created_utc.utcoffset() is not None
    assert plan.provenance.parameters == {"margin_mm": 5.0}
    assert plan.structures == {} and plan.targets == [] and plan.trajectories == []


def test_plan_json_round_trip(tmp_path: Path) -> None:
    ct = _ct()
    plan = _full_plan(ct)
    path = plan.save(tmp_path / "plan.json")
    loaded = Plan.load(path, volume=ct)
    assert loaded == plan
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["schema_version"] == "1"
    assert document["case"]["shape"] == [12, 10, 6]
    assert document["provenance"]["created_utc"].endswith("Z")  # ISO 8601 in UTC
    assert path.read_text(encoding="utf-8").startswith('{\n  "schema_version"')  # indent 2


def test_plan_rejects_unknown_fields() -> None:
    plan = _full_plan(_ct())
    document = plan.model_dump(mode="json")
    document["targets"][0]["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        Plan.model_validate(document)


def test_structure_path_must_be_relative() -> None:
    with pytest.raises(ValueError, match=r"mask_path must be .* relative"):
        StructureRef(mask_path="/abs/lung.nii.gz", volume_ml=1.0)
    ref = StructureRef(mask_path="masks/lung.nii.gz", volume_ml=1.0)
    assert ref.resolve("/plans/case1/plan.json") == Path("/plans/case1/masks/lung.nii.gz")


# --- pairing a plan with a CT ---------------------------------------------------------


def test_load_accepts_same_ct_in_another_orientation(tmp_path: Path) -> None:
    ct = _ct()
    path = Plan.new(ct, "ct.nii.gz").save(tmp_path / "plan.json")
    Plan.load(path, volume=reorient(ct, "RAI"))
    Plan.load(path, volume=reorient(ct, "PIR"))


def test_load_refuses_changed_voxel(tmp_path: Path) -> None:
    ct = _ct()
    plan = Plan.new(ct, "ct.nii.gz")
    path = plan.save(tmp_path / "plan.json")
    changed = ct.array.copy()
    changed[0, 0, 0] += 10
    other = ct.with_array(changed)
    with pytest.raises(
        PlanCaseMismatchError,
        match=rf"voxel_sha256 differs: plan {plan.case.voxel_sha256[:12]}…, "
        rf"CT {voxel_sha256(other)[:12]}….*Load the CT this plan was made on "
        r"\(source_path 'ct.nii.gz'\) or make a new plan",
    ):
        Plan.load(path, volume=other)


def test_load_refuses_changed_affine(tmp_path: Path) -> None:
    ct = _ct()
    path = Plan.new(ct, "ct.nii.gz").save(tmp_path / "plan.json")
    shifted = ct.affine.copy()
    shifted[0, 3] += 1.0  # 1 mm to the patient's left
    with pytest.raises(PlanCaseMismatchError, match=r"affine differs by up to 1 mm.*new plan"):
        Plan.load(path, volume=Volume(ct.array, shifted))
    # below tolerance (1e-3 mm): still the same CT
    shifted[0, 3] = ct.affine[0, 3] + 1e-4
    Plan.load(path, volume=Volume(ct.array, shifted))


def test_load_refuses_changed_shape(tmp_path: Path) -> None:
    ct = _ct()
    path = Plan.new(ct, "ct.nii.gz").save(tmp_path / "plan.json")
    cropped = Volume(ct.array[:, :, :5], ct.affine)
    with pytest.raises(
        PlanCaseMismatchError,
        match=r"shape differs: plan \(12, 10, 6\), CT \(12, 10, 5\).*make a new plan",
    ):
        Plan.load(path, volume=cropped)


def test_mismatch_error_is_a_value_error() -> None:
    assert issubclass(PlanCaseMismatchError, ValueError)
    assert issubclass(PlanFileError, ValueError)


# --- the file -------------------------------------------------------------------------


def test_save_refuses_overwrite_without_force(tmp_path: Path) -> None:
    ct = _ct()
    path = tmp_path / "plan.json"
    Plan.new(ct, "first.nii.gz").save(path)
    with pytest.raises(FileExistsError, match="force"):
        Plan.new(ct, "second.nii.gz").save(path)
    assert Plan.load(path).case.source_path == "first.nii.gz"
    Plan.new(ct, "second.nii.gz").save(path, force=True)
    assert Plan.load(path).case.source_path == "second.nii.gz"


def test_failed_serialisation_leaves_no_file(tmp_path: Path) -> None:
    plan = Plan.new(_ct(), "ct.nii.gz")
    plan.provenance.parameters["bad"] = object()  # not JSON; in-place edits skip validation
    with pytest.raises(ValueError, match=r"cannot be written as JSON.*parameters"):
        plan.save(tmp_path / "plan.json")
    assert list(tmp_path.iterdir()) == []


def test_failed_serialisation_keeps_previous_file(tmp_path: Path) -> None:
    ct = _ct()
    path = Plan.new(ct, "old.nii.gz").save(tmp_path / "plan.json")
    before = path.read_bytes()
    plan = Plan.new(ct, "new.nii.gz")
    plan.trajectories.append({"tip_lps_mm": np.arange(3)})
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        plan.save(path, force=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"is not valid JSON \(.*line 1"),
        ("[1, 2]", r"is not a Seldinger plan .*got list"),
        ('{"case": {}}', r"is not a Seldinger plan .*keys \['case'\]"),
        ('{"schema_version": "2"}', r"has schema_version '2'.*reads only '1'"),
        ('{"schema_version": "1", "case": {}}', r"is not a valid plan .*case\.source_path"),
    ],
)
def test_load_rejects_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken_plan.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanFileError, match=rf"broken_plan\.json {message}"):
        Plan.load(path)
