"""`seldinger motion register | warp | plan` on the synthetic chest of conftest.

The inspiration phase is the expiration CT warped by a known smooth field (the lesion and
the lung around it move about 7 mm toward the feet, the chest wall stays), so the truth is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from case_copy import copy_case
from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.imaging import Volume
from seldinger.io import read_volume, write_volume
from seldinger.motion import DisplacementField, read_displacement_nifti, warp
from seldinger.motion.plan_motion import invert_points
from seldinger.navigation.fiducials import insert_spherical_markers
from seldinger.plan import Plan
from seldinger.workflow.motion_guidance import read_motion_model

SHIFT_MM = 8.0
LESION_LPS_MM = np.array([12.0, 0.0, 0.0])  # conftest: index (62, 50, 30)


def _run(capsys, *args: object) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


#: Three 4 mm skin markers on the anterolateral chest, 2 mm off the skin (the body's radius
#: is 45 mm; straight in front they would touch the edge of the 100 mm scan), and how far
#: breathing lifts the anterior wall (LPS −y).
MARKERS_LPS_MM = np.array([[-33.2, -33.2, -8.0], [33.2, -33.2, -8.0], [33.2, -33.2, 10.0]])
LIFT_MM = 4.0


def _breathing_field(ct: Volume) -> DisplacementField:
    """v on the inspiration grid: inspiration(y) = expiration(y + v(y)).

    An SI bump (toward the feet) around the lesion, and the anterior chest wall (y < −30)
    lifted by LIFT_MM (y < −24 mm, smoothly).
    """
    ijk = np.indices(ct.shape).reshape(3, -1).T
    lps = ct.index_to_lps(ijk)
    r2 = np.sum((lps - LESION_LPS_MM) ** 2, axis=1)
    vectors = np.zeros((len(lps), 3), np.float32)
    vectors[:, 2] = SHIFT_MM * np.exp(-r2 / (2 * 12.0**2))
    vectors[:, 1] = LIFT_MM / (1.0 + np.exp((lps[:, 1] + 24.0) / 1.5))
    return DisplacementField(ct.geometry, vectors.reshape(*ct.shape, 3))


@pytest.fixture(scope="module")
def breathing(planned: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The synthetic chest with skin markers, planned again; insp.nii.gz beside it; the
    lesion's true displacement."""
    root = copy_case(planned, tmp_path_factory.mktemp("motion") / "case")
    ct = insert_spherical_markers(read_volume(root / "ct.nii.gz"), MARKERS_LPS_MM, 4.0, 1500.0)
    write_volume(ct, root / "ct.nii.gz", force=True)
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", root / "plan.json", "--top", "3"]
    assert main([str(a) for a in [*args, "--force"]]) == 0
    v = _breathing_field(ct)
    write_volume(warp(ct, v), root / "insp.nii.gz")
    # A point x of expiration lies at y with y + v(y) = x (invert_points solves exactly that).
    y = invert_points(v, [LESION_LPS_MM])
    return root, y[0] - LESION_LPS_MM


def test_motion_plan_follows_the_lesion(capsys, breathing) -> None:  # type: ignore[no-untyped-def]
    root, truth = breathing
    plan_path = root / "plan.json"
    code, out, err = _run(
        capsys, "motion", "plan", plan_path, "--reference", "expiration",
        "--phase", f"inspiration={root / 'insp.nii.gz'}", "--rank-by-p-hit",
        "--write-model", root / "model.json",
    )  # fmt: skip
    assert code == 0, err
    assert "P(hit)" in out and "motion management recommended (TG-76)" in out
    # The chest markers → target model, fitted on the two phases: the markers rise 4 mm
    # while the lesion goes 7 mm down; `navigate guide --motion` reads it.
    model = read_motion_model(root / "model.json")
    # (the amplitude is that of the markers' stacked positions: √3 × each one's)
    assert model.amplitude_mm / np.sqrt(3) == pytest.approx(LIFT_MM, abs=0.6)
    lifted = MARKERS_LPS_MM + np.array([0.0, -LIFT_MM, 0.0])
    assert model.predict(lifted[None])[0] == pytest.approx(LESION_LPS_MM + truth, abs=1.0)
    assert model.predict(MARKERS_LPS_MM[None])[0] == pytest.approx(LESION_LPS_MM, abs=1.0)
    plan = Plan.load(plan_path)
    assert plan.motion is not None and plan.trajectories is not None
    (target,) = plan.motion.targets
    moved = np.asarray(target.phases[1].displacement_vector_mm)
    assert -SHIFT_MM < truth[2] < -6.0  # toward the feet (the bump is 8 mm at its centre)
    # The lesion's mean displacement (its voxels) against the truth at its centre.
    assert np.linalg.norm(moved - truth) < 1.0, (moved, truth)
    assert target.motion_management_recommended  # about 7 mm > TG-76's 5 mm
    assert len(plan.motion.trajectories) == len(plan.trajectories.paths)
    assert [t.rank for t in plan.motion.trajectories] == [1, 2, 3]
    for record in plan.motion.trajectories:
        assert record.p_hit is not None and 0.0 < record.p_hit <= 1.0
        assert record.tip_motion_mm == pytest.approx(np.linalg.norm(moved), abs=1.0)
    p_hits = [t.p_hit or 0.0 for t in plan.motion.trajectories if t.safe_in_all_phases]
    assert p_hits == sorted(p_hits, reverse=True)  # --rank-by-p-hit
    assert plan.motion.tre_source.startswith("assumed")
    (phase,) = [p for p in plan.motion.phases if not p.reference]
    assert phase.min_jacobian is not None and phase.min_jacobian > 0
    field = read_displacement_nifti(plan_path.parent / str(phase.field_path))
    assert field.geometry.same_as(read_volume(root / "ct.nii.gz").geometry)
    # The report shows it beside each path.
    code, _, err = _run(capsys, "report", plan_path, "--out", root / "report")
    assert code == 0, err
    html = (root / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h2>Breathing motion</h2>" in html and "P(hit) (%)" in html and "TG-76" in html
    # Warping inspiration with the plan's field brings it back onto expiration (`motion
    # warp`): inside the lung, the lesion's edge, the only structure that moved, lines up.
    back_path = root / "back.nii.gz"
    code, out, err = _run(
        capsys,
        "motion",
        "warp",
        root / "insp.nii.gz",
        plan_path.parent / str(phase.field_path),
        "--out",
        back_path,
    )
    assert code == 0, err
    lung = read_volume(root / "anatomy" / "lung_left.nii.gz").array.astype(bool)
    back = read_volume(back_path).array.astype(float)[lung]
    expiration = read_volume(root / "ct.nii.gz").array.astype(float)[lung]
    before = np.abs(read_volume(root / "insp.nii.gz").array.astype(float)[lung] - expiration)
    assert np.abs(back - expiration).mean() < 0.5 * before.mean()


def test_motion_register(capsys, breathing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The affine baseline (seconds): the command's files and figures; a one-lung mask no
    # longer starts the registration off centre (automatic initialisation is off).
    root, _ = breathing
    code, out, err = _run(
        capsys, "motion", "register", root / "ct.nii.gz", root / "insp.nii.gz",
        "--mask", root / "anatomy" / "lung_left.nii.gz", "--out", tmp_path / "reg",
        "--method", "affine", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["method"] == "affine" and summary["min_jacobian"] > 0.9
    assert summary["max_displacement_mm"] < 6.0  # the lesion and the wall move 4-7 mm, not 22
    assert (tmp_path / "reg" / "displacement_lps_mm.nii.gz").is_file()
    assert (tmp_path / "reg" / "jacobian.nii.gz").is_file()
    code, _, err = _run(
        capsys, "motion", "register", root / "ct.nii.gz", root / "insp.nii.gz",
        "--out", tmp_path / "reg", "--method", "affine",
    )  # fmt: skip
    assert code == ExitCode.IO and "--force" in err


def test_motion_plan_bad_input(capsys, breathing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = breathing
    plan_path = root / "plan.json"
    # the plan's own CT given as another phase
    code, _, err = _run(
        capsys, "motion", "plan", plan_path, "--phase", f"same={root / 'ct.nii.gz'}"
    )
    assert (
        code == ExitCode.BAD_INPUT and "plan's own CT" in err and len(err.strip().splitlines()) == 1
    )
    # a phase on another grid (another field of view)
    ct = read_volume(root / "ct.nii.gz")
    write_volume(Volume(np.asarray(ct.array)[:80], ct.affine), tmp_path / "crop.nii.gz")
    code, _, err = _run(
        capsys, "motion", "plan", plan_path, "--phase", f"crop={tmp_path / 'crop.nii.gz'}"
    )
    assert code == ExitCode.BAD_INPUT and "grid" in err and len(err.strip().splitlines()) == 1
    # a missing phase file; a malformed option; nothing written by any of them
    code, _, err = _run(
        capsys, "motion", "plan", plan_path, "--phase", f"x={tmp_path / 'none.nii.gz'}"
    )
    assert code == ExitCode.BAD_INPUT and "does not exist" in err
    code, _, err = _run(
        capsys, "motion", "plan", plan_path, "--phase", "insp", "--gate-window", "0.5,0.2"
    )
    assert code == ExitCode.USAGE
    assert not (root / "motion" / "crop").exists() and not (root / "motion" / "x").exists()
