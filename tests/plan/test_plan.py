"""Tests of seldinger.plan: the Plan document (schema v2), its case identity and its file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import seldinger
from seldinger.errors import BadInputError, ExitCode, OutputExistsError, SeldingerIOError
from seldinger.imaging import Volume, reorient
from seldinger.plan import (
    U_PER_MCI_I125,
    CaseIdentity,
    NavigationSection,
    Plan,
    PlanCaseMismatchError,
    PlanContentError,
    PlanFileError,
    PlanVersionError,
    RegistrationRecord,
    StructureRef,
    Target,
    TrajectoryRecord,
    TrajectorySection,
    rigid_error,
    voxel_sha256,
)


def _ct(seed: int = 20240611) -> Volume:
    """Small anisotropic CT-like volume (HU) with an off-origin LPS affine."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1024, 1500, size=(12, 10, 6), dtype=np.int16)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = [-4.0, -3.0, -6.0]
    return Volume(array, affine)


def _path(rank: int, entry: tuple[float, float, float]) -> TrajectoryRecord:
    return TrajectoryRecord(
        rank=rank,
        entry_lps_mm=entry,
        target_lps_mm=(0.0, 0.0, 0.0),
        length_mm=5.0,
        depth_to_far_side_mm=6.0,
        lung_length_mm=2.0,
        pleural_crossings=1,
        axial_angle_deg=10.0,
        risk_score=0.7,
    )


def _full_plan(ct: Volume) -> Plan:
    plan = Plan.new(ct, "data/ct.nii.gz", "1.2.840.113654.2.55.1", command="seldinger plan")
    plan.provenance.record("trajectory", {"margin_mm": 5.0, "organs": ["lung", "heart"]})
    plan.structures["lung_left"] = StructureRef(
        mask_path="masks/lung_left.nii.gz", volume_ml=1450.2
    )
    plan.targets.append(
        Target(
            name="nodule 1",
            centroid_lps_mm=(1.0, 2.0, 0.0),
            volume_ml=7.76,
            diameters_mm=(27.1, 22.3),
        )
    )
    plan.trajectories = TrajectorySection(
        target="nodule 1", target_lps_mm=(0.0, 0.0, 0.0), paths=[_path(1, (3.0, 2.0, 1.0))]
    )
    plan.notes.append("made by a test")
    return plan


# --- voxel hash and case identity -------------------------------------------------------


def test_voxel_sha256_is_independent_of_axis_order_and_flips() -> None:
    ct = _ct()
    expected = voxel_sha256(ct)
    for code in ("RAI", "PIR", "SLA", "RPS"):
        other = reorient(ct, code)
        assert other.orientation == code
        assert voxel_sha256(other) == expected


def test_voxel_sha256_changes_with_one_voxel_and_with_shape() -> None:
    ct = _ct()
    changed = ct.array.copy()
    changed[3, 4, 5] += 1
    assert voxel_sha256(ct.with_array(changed)) != voxel_sha256(ct)
    reshaped = Volume(np.ascontiguousarray(ct.array).reshape(10, 12, 6), ct.affine)
    assert voxel_sha256(reshaped) != voxel_sha256(ct)
    assert voxel_sha256(ct.with_array(ct.array.astype(np.float32))) == voxel_sha256(ct)


def test_case_identity_records_volume_as_given() -> None:
    ct = reorient(_ct(), "RAI")
    case = CaseIdentity.from_volume(
        ct, Path("ct.nii.gz"), series_uid="1.2.3", source_format="nifti"
    )
    assert case.shape == ct.shape
    assert np.array_equal(np.asarray(case.affine), ct.affine)
    assert (case.dtype, case.source_path, case.source_format) == ("int16", "ct.nii.gz", "nifti")
    assert case.voxel_sha256 == voxel_sha256(_ct())


def test_case_bounds_are_the_outer_voxel_faces() -> None:
    low, high = CaseIdentity.from_volume(_ct(), "ct.nii.gz").lps_bounds_mm()
    np.testing.assert_allclose(low, [-4.35, -3.35, -7.25])
    np.testing.assert_allclose(high, [-4.0 + 11.5 * 0.7, -3.0 + 9.5 * 0.7, -6.0 + 5.5 * 2.5])


# --- the document ---------------------------------------------------------------------


def test_new_plan_is_v2_with_provenance() -> None:
    plan = Plan.new(_ct(), "ct.nii.gz")
    assert plan.schema_version == "2"
    assert plan.provenance.software_version == seldinger.__version__
    assert plan.provenance.created_utc.utcoffset() is not None
    assert plan.trajectories is None and plan.ablation is None and plan.seeds is None
    step = plan.provenance.record("trajectory", {"top": 5}, "seldinger plan trajectory")
    assert plan.provenance.last("trajectory") == step and step.parameters == {"top": 5}


def test_plan_json_round_trip(tmp_path: Path) -> None:
    ct = _ct()
    plan = _full_plan(ct)
    path = plan.save(tmp_path / "plan.json")
    loaded = Plan.load(path, volume=ct)
    assert loaded == plan
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["schema_version"] == "2"
    assert document["case"]["shape"] == [12, 10, 6]
    assert document["provenance"]["created_utc"].endswith("Z")
    assert document["trajectories"]["paths"][0]["entry_lps_mm"] == [3.0, 2.0, 1.0]


def test_json_schema_names_units_and_sections() -> None:
    schema = json.dumps(Plan.model_json_schema())
    for name in (
        "entry_lps_mm",
        "strength_u",
        "strength_mci",
        "fre_mm",
        "predicted_tre_mm",
        "moving_to_fixed",
        "min_margin_mm",
        "d90_gy",
        "software_version",
    ):
        assert f'"{name}"' in schema, name


def test_structure_path_must_be_relative() -> None:
    with pytest.raises(ValueError, match=r"mask path must be .* relative"):
        StructureRef(mask_path="/abs/lung.nii.gz", volume_ml=1.0)
    ref = StructureRef(mask_path="masks/lung.nii.gz", volume_ml=1.0)
    assert ref.resolve("/plans/case1/plan.json") == Path("/plans/case1/masks/lung.nii.gz")


# --- refused on load, naming the field ----------------------------------------------------


def _broken(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    document = json.loads(_full_plan(_ct()).to_json())
    change(document)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["targets"][0].__setitem__("volume_ml", float("nan")), r"is not valid JSON \(NaN"),
        (lambda d: d["targets"][0].__setitem__("volume_ml", None), r"targets\[0\]\.volume_ml: Input should be a valid number"),
        (lambda d: d["targets"][0].pop("centroid_lps_mm"), r"targets\[0\]\.centroid_lps_mm: Field required"),
        (lambda d: d["targets"][0].__setitem__("centroid_lps_cm", [1, 2, 3]), r"targets\[0\]\.centroid_lps_cm: unknown field \(units are part of the names"),
        (lambda d: d.__setitem__("schema_version", "99"), r"schema_version '99'; Seldinger .* reads only '2'"),
        (lambda d: d.__setitem__("schema_version", "1"), r"schema v1 plan .*`seldinger plan migrate"),
        (lambda d: d["trajectories"]["paths"][0].__setitem__("entry_lps_mm", [300.0, 2.0, 1.0]), r"points outside the CT .*trajectories\.paths\[0\]\.entry_lps_mm = \[300\.0, 2\.0, 1\.0\]"),
        (lambda d: d["trajectories"].__setitem__("target", "other"), r"trajectories\.target 'other' is not one of the plan's targets"),
    ],
    ids=["nan", "null", "missing", "wrong-unit", "version-99", "version-1", "outside-ct", "unknown-target"],
)  # fmt: skip
def test_hand_broken_plans_get_one_line_naming_the_field(tmp_path: Path, change, message) -> None:  # type: ignore[no-untyped-def]
    path = _broken(tmp_path, change)
    with pytest.raises(PlanFileError, match=message) as caught:
        Plan.load(path)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    if "schema" in message:
        assert isinstance(caught.value, PlanVersionError)


def test_a_non_rigid_registration_is_refused() -> None:
    shear = np.eye(4)
    shear[0, 1] = 0.2
    assert "not orthonormal" in (rigid_error(shear) or "")
    good = dict(id="registration-1", moving_to_fixed=np.eye(4).tolist(), n_fiducials=4, fre_mm=0.4)
    RegistrationRecord(**good)
    with pytest.raises(
        ValueError,
        match=r"moving_to_fixed must be a rigid transform: its rotation part is not orthonormal",
    ):
        RegistrationRecord(**{**good, "moving_to_fixed": shear.tolist()})
    mirror = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="reflection"):
        RegistrationRecord(**{**good, "moving_to_fixed": mirror.tolist()})


def test_seed_strengths_must_agree() -> None:
    from seldinger.physics.tg43 import U_PER_MCI

    assert U_PER_MCI_I125 == U_PER_MCI  # the plan's copy of the TG-43 factor


# --- refused on save: a plan that loads can be written back -----------------------------------


def test_save_refuses_nan_and_points_outside_and_leaves_no_file(tmp_path: Path) -> None:
    ct = _ct()
    path = Plan.new(ct, "old.nii.gz").save(tmp_path / "plan.json")
    before = path.read_bytes()
    plan = _full_plan(ct)
    plan.targets[0].__dict__["centroid_lps_mm"] = (float("nan"), 0.0, 0.0)  # bypasses validation
    with pytest.raises(
        PlanContentError,
        match=r"not written: targets\[0\]\.centroid_lps_mm\[0\]: Input should be a finite number",
    ):
        plan.save(path, force=True)
    plan = _full_plan(ct)
    plan.trajectories.paths[0].__dict__["entry_lps_mm"] = (500.0, 0.0, 0.0)  # type: ignore[union-attr]
    with pytest.raises(PlanContentError, match=r"points outside the CT"):
        plan.save(path, force=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_assignment_is_validated() -> None:
    plan = _full_plan(_ct())
    with pytest.raises(ValueError, match="finite number"):
        plan.targets[0].volume_ml = float("inf")


def test_navigation_ids_and_names() -> None:
    section = NavigationSection()
    assert section.next_id("registration") == "registration-1"
    record = RegistrationRecord(
        id="registration-1", name="a", moving_to_fixed=np.eye(4).tolist(), n_fiducials=3, fre_mm=0.1
    )
    section.store_registration(record)
    assert section.next_id("registration") == "registration-2"
    assert section.holds_name("registration", "a") and section.registration("latest") == record
    with pytest.raises(ValueError, match="unique"):
        NavigationSection(registrations=[record, record])


# --- pairing a plan with a CT ---------------------------------------------------------


def test_load_accepts_same_ct_in_another_orientation(tmp_path: Path) -> None:
    ct = _ct()
    path = Plan.new(ct, "ct.nii.gz").save(tmp_path / "plan.json")
    Plan.load(path, volume=reorient(ct, "RAI"))
    Plan.load(path, volume=reorient(ct, "PIR"))


def test_load_refuses_another_ct(tmp_path: Path) -> None:
    ct = _ct()
    plan = Plan.new(ct, "ct.nii.gz")
    path = plan.save(tmp_path / "plan.json")
    changed = ct.array.copy()
    changed[0, 0, 0] += 10
    with pytest.raises(
        PlanCaseMismatchError, match=r"voxel_sha256 differs.*source_path 'ct.nii.gz'"
    ):
        Plan.load(path, volume=ct.with_array(changed))
    shifted = ct.affine.copy()
    shifted[0, 3] += 1.0
    with pytest.raises(PlanCaseMismatchError, match=r"affine differs by up to 1 mm"):
        Plan.load(path, volume=Volume(ct.array, shifted))
    with pytest.raises(
        PlanCaseMismatchError, match=r"shape differs: plan \(12, 10, 6\), CT \(12, 10, 5\)"
    ):
        Plan.load(path, volume=Volume(ct.array[:, :, :5], ct.affine))


def test_errors_share_the_base_and_the_builtins() -> None:
    for error in (PlanCaseMismatchError, PlanFileError, PlanContentError):
        assert issubclass(error, BadInputError) and issubclass(error, ValueError)


# --- the file -------------------------------------------------------------------------


def test_save_refuses_overwrite_without_force(tmp_path: Path) -> None:
    ct = _ct()
    path = tmp_path / "plan.json"
    Plan.new(ct, "first.nii.gz").save(path)
    with pytest.raises(OutputExistsError, match="--force"):
        Plan.new(ct, "second.nii.gz").save(path)
    assert Plan.load(path).case.source_path == "first.nii.gz"
    Plan.new(ct, "second.nii.gz").save(path, force=True)
    assert Plan.load(path).case.source_path == "second.nii.gz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"is not valid JSON \(.*line 1"),
        ("[1, 2]", r"is not a Seldinger plan .*got list"),
        ('{"case": {}}', r"is not a Seldinger plan .*keys \['case'\]"),
        (
            '{"schema_version": "2", "case": {}}',
            r"is not a valid plan: case\.source_path: Field required",
        ),
    ],
)
def test_load_rejects_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken_plan.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanFileError, match=rf"broken_plan\.json {message}"):
        Plan.load(path)


def test_missing_plan_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(SeldingerIOError, match=r"no plan at .*seldinger plan trajectory") as caught:
        Plan.load(tmp_path / "nowhere.json")
    assert caught.value.exit_code is ExitCode.IO


def test_a_plan_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(b'{"schema_version": "2", "notes": ["\xff\xfe"]}')
    with pytest.raises(PlanFileError, match=r"plan\.json is not UTF-8 text \(byte \d+\)"):
        Plan.load(path)
