"""`seldinger plan trajectory`: the --json contract, the plan and pictures, refusals.

Most tests use a small synthetic chest: a body cylinder (radius 45 mm) around a bony shell
(radius 30-34 mm) with two lungs inside and a 4 mm lesion in the left lung. With gaps in
the shell (8 mm ribs, 4 mm intercostal spaces) a needle reaches the lesion between ribs;
a closed shell blocks every path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.imaging import Volume
from seldinger.io import read_ct, write_volume
from seldinger.plan import Plan, Target
from shared_paths import LIDC, NODULE_CENTROID_LPS_MM, requires_shared

SHAPE = (100, 100, 60)
#: Index (50, 50, 30) is LPS (0, 0, 0); 1 mm voxels.
AFFINE = np.array([[1.0, 0, 0, -50.0], [0, 1.0, 0, -50.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1.0]])
LESION_CENTRE_LPS_MM = (10.0, 0.0, 0.0)
FIGURES = ["needle_1.png", "needle_2.png", "needle_3.png", "paths_axial.png", "skin_risk_map.png"]


def _write_case(root: Path, gaps: bool) -> Path:
    """CT (NIfTI), lesion mask and anatomy folder of the synthetic chest under ``root``."""
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    r = np.hypot(i - 50, j - 50)
    body = r <= 45
    bones = (r >= 30) & (r <= 34)
    if gaps:
        bones &= (k % 12) < 8
    lungs = (r < 28) & (np.abs(i - 50) > 4) & (k > 5) & (k < 55)
    lesion = np.hypot(np.hypot(i - 60, j - 50), k - 30) <= 4
    ct = np.where(body, 40, -1000).astype(np.int16)
    ct[bones] = 700
    ct[lungs] = -850
    ct[lesion] = 30

    def volume(array: np.ndarray) -> Volume:
        return Volume(array, AFFINE.copy())

    root.mkdir(parents=True)
    write_volume(volume(ct), root / "ct.nii.gz")
    write_volume(volume(lesion.astype(np.uint8)), root / "lesion.nii.gz")
    masks = {
        "body": body,
        "bones": bones,
        "lung_left": lungs & (i > 50),
        "lung_right": lungs & (i < 50),
    }
    Anatomy(masks={name: volume(mask) for name, mask in masks.items()}).save(root / "anatomy")
    return root


@pytest.fixture(scope="module")
def ribs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic chest with intercostal spaces (read only: copy what you change)."""
    return _write_case(tmp_path_factory.mktemp("ribs") / "case", gaps=True)


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic chest with a closed bony shell: no safe path to the lesion."""
    return _write_case(tmp_path_factory.mktemp("closed") / "case", gaps=False)


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Exit status, stdout, and stderr with Rich's box borders and line breaks flattened."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


def _plan(case: Path, out: Path, *extra: object) -> list[object]:
    return [
        "plan",
        "trajectory",
        case / "ct.nii.gz",
        "--anatomy",
        case / "anatomy",
        "--out",
        out,
        *extra,
    ]


def test_lesion_paths_json_plan_and_figures(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    figures = tmp_path / "figures"
    code, stdout, err = _run(
        capsys,
        *_plan(ribs, out, "--lesion", ribs / "lesion.nii.gz", "--figures", figures, "--json"),
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["target_lps_mm"] == pytest.approx(LESION_CENTRE_LPS_MM, abs=0.01)
    assert 0 < result["n_safe"] < result["n_candidates"]
    assert result["blocked_by"]["bones"] > 0
    assert result["plan"] == str(out)
    paths = result["trajectories"]
    assert [p["rank"] for p in paths] == [1, 2, 3, 4, 5]
    risks = [p["risk_score"] for p in paths]
    assert risks == sorted(risks)
    entries = np.array([p["entry_lps_mm"] for p in paths])
    for n, path in enumerate(paths):
        assert path["target_lps_mm"] == pytest.approx(LESION_CENTRE_LPS_MM, abs=0.01)
        # the entry lies on the skin (radius 45 mm), the path through an intercostal space
        assert np.hypot(*path["entry_lps_mm"][:2]) == pytest.approx(45.0, abs=1.5)
        length = np.linalg.norm(np.subtract(path["entry_lps_mm"], path["target_lps_mm"]))
        assert path["length_mm"] == pytest.approx(length, abs=0.02)
        assert 0 < path["lung_length_mm"] < path["length_mm"]
        assert path["pleural_crossings"] == 1
        assert path["min_distance_mm"]["bones"] > 0
        assert isinstance(path["pareto"], bool)
        others = np.delete(entries, n, axis=0)
        assert np.linalg.norm(others - entries[n], axis=1).min() >= 10.0 - 0.02
    assert any(p["pareto"] for p in paths)
    # The plan: these trajectories, the anatomy as structures, the lesion as a target.
    ct = read_ct(ribs / "ct.nii.gz").volume
    plan = Plan.load(out, volume=ct)
    assert plan.trajectories is not None
    assert plan.trajectories.model_dump(mode="json")["paths"] == paths
    assert set(plan.structures) == {"body", "bones", "lung_left", "lung_right"}
    assert plan.structures["bones"].resolve(out) == (ribs / "anatomy" / "bones.nii.gz").resolve()
    (target,) = plan.targets
    assert target.name == "lesion"
    assert target.centroid_lps_mm == pytest.approx(LESION_CENTRE_LPS_MM, abs=0.01)
    assert target.volume_ml == pytest.approx(4 / 3 * np.pi * 4**3 / 1000, rel=0.15)
    assert (out.parent / target.mask_path).resolve() == (ribs / "lesion.nii.gz").resolve()
    assert plan.provenance.last("trajectory").parameters["needle_length_mm"] == 150.0
    assert plan.provenance.command.startswith("seldinger plan trajectory")
    # The pictures.
    assert sorted(result["figures"]) == sorted(str(figures / name) for name in FIGURES)
    assert sorted(p.name for p in figures.iterdir()) == FIGURES  # no scratch left
    for name in FIGURES:
        assert (figures / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "plan.json"]


def test_point_target_human_output(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    code, stdout, err = _run(capsys, *_plan(ribs, out, "--target-lps-mm", "10,0,0", "--top", "2"))
    assert code == 0, err
    assert "Best 2 of" in stdout and "pleural" in stdout and "pareto" in stdout
    assert "Refused skin candidates" in stdout and "bones" in stdout
    assert f"wrote {out}" in stdout
    plan = Plan.load(out)
    assert len(plan.trajectories.paths) == 2 and plan.targets == []
    assert plan.trajectories.paths[0].far_side_lps_mm is None  # no lesion: no far side


def test_exactly_one_target_option(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    code, _, err = _run(capsys, *_plan(ribs, out))
    assert code == 2 and "exactly one of --target-lps-mm" in err and "neither" in err
    code, _, err = _run(
        capsys,
        *_plan(ribs, out, "--target-lps-mm", "10,0,0", "--lesion", ribs / "lesion.nii.gz"),
    )
    assert code == 2 and "both" in err
    code, _, err = _run(capsys, *_plan(ribs, out, "--target-lps-mm", "10,0"))
    assert code == 2 and "three numbers" in err
    assert list(tmp_path.iterdir()) == []


def test_target_outside_the_body_is_refused(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    code, stdout, err = _run(
        capsys,
        *_plan(ribs, out, "--target-lps-mm", "-45,-45,0", "--figures", tmp_path / "f", "--json"),
    )
    assert code == ExitCode.BAD_INPUT and "outside the body" in err
    assert json.loads(stdout) == {"error": err.removeprefix("error: "), "exit_code": 3}
    assert list(tmp_path.iterdir()) == []


def test_needle_too_short(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    args = _plan(ribs, out, "--lesion", ribs / "lesion.nii.gz", "--needle-length-mm", "20")
    code, stdout, err = _run(capsys, *args, "--json")
    assert code == ExitCode.INFEASIBLE
    result = json.loads(stdout)
    assert "at least" in result["error"] and "--needle-length-mm" in result["error"]
    assert list(result["blocked_by"]) == ["too_long"]
    assert result["shallowest_mm"] == pytest.approx(35.0, abs=1.5)  # skin 45 mm, target 10 mm
    assert "error:" in err
    assert list(tmp_path.iterdir()) == []


def test_no_safe_path_names_the_blockers_and_writes_nothing(
    capsys, closed: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "case" / "plan.json"
    figures = tmp_path / "figures"
    args = _plan(closed, out, "--lesion", closed / "lesion.nii.gz", "--figures", figures)
    code, stdout, err = _run(capsys, *args, "--json")
    assert code == ExitCode.INFEASIBLE
    result = json.loads(stdout)
    assert "no safe path" in result["error"]
    assert result["blocked_by"]["bones"] == result["n_candidates"] > 0
    assert set(result["blocked_by"]) <= {"bones", "too_long", "table_side"}
    assert list(tmp_path.iterdir()) == []
    # Human output: the error and a table of the blockers, on stderr.
    code, stdout, err = _run(capsys, *args)
    assert code == ExitCode.INFEASIBLE and stdout == ""
    assert "no safe path" in err and "Refused skin candidates" in err and "bones" in err
    assert list(tmp_path.iterdir()) == []


def test_force_keeps_the_plans_targets_and_replaces_its_trajectories(
    capsys, ribs: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    figures = tmp_path / "figures"
    lesion = ("--lesion", ribs / "lesion.nii.gz")
    assert _run(capsys, *_plan(ribs, out, *lesion, "--figures", figures))[0] == 0
    before = out.read_text()
    # refuses to overwrite the plan, or a picture, without --force
    code, _, err = _run(capsys, *_plan(ribs, out, *lesion))
    assert code == ExitCode.IO and "exists" in err and "--force" in err
    code, _, err = _run(
        capsys, *_plan(ribs, tmp_path / "other.json", *lesion, "--figures", figures)
    )
    assert code == ExitCode.IO and "paths_axial.png already exists" in err
    assert out.read_text() == before and not (tmp_path / "other.json").exists()
    # a target added by hand survives a re-plan with --force; trajectories are replaced
    plan = Plan.load(out)
    plan.targets.append(Target(name="by hand", centroid_lps_mm=(-10.0, 0.0, 0.0), volume_ml=0.1))
    plan.structures.pop("lung_right")
    plan.save(out, force=True)
    code, stdout, err = _run(
        capsys, *_plan(ribs, out, *lesion, "--figures", figures, "--top", "2", "--force", "--json")
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert any("replaced the 5 trajectories" in note for note in result["notes"])
    plan = Plan.load(out)
    assert [t.name for t in plan.targets] == ["lesion", "by hand"]  # the lesion not twice
    assert "lung_right" in plan.structures  # absent structures are added again
    assert [t.rank for t in plan.trajectories.paths] == [1, 2]
    assert plan.provenance.last("trajectory").parameters["top"] == 2
    # two needle views now; the third of the earlier run is gone
    assert sorted(p.name for p in figures.iterdir()) == [
        "needle_1.png",
        "needle_2.png",
        "paths_axial.png",
        "skin_risk_map.png",
    ]


def test_force_replaces_a_plan_of_another_ct(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    other = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    stale = Plan.new(other, "other.nii.gz")
    stale.targets.append(Target(name="elsewhere", centroid_lps_mm=(0.0, 0.0, 0.0), volume_ml=1.0))
    stale.save(out)
    code, stdout, err = _run(
        capsys, *_plan(ribs, out, "--target-lps-mm", "10,0,0", "--force", "--json")
    )
    assert code == 0, err
    assert any("replaced by a new plan" in note for note in json.loads(stdout)["notes"])
    plan = Plan.load(out, volume=read_ct(ribs / "ct.nii.gz").volume)
    assert plan.targets == [] and len(plan.trajectories.paths) == 5


def test_constraint_options(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    code, stdout, err = _run(
        capsys,
        *_plan(ribs, out, "--target-lps-mm", "10,0,0", "--json"),
        "--max-axial-angle-deg",
        "8",
        "--table-side",
        "posterior",
        "--forbid",
        "lung_right",
        "--ablation-probe-length-mm",
        "100",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["blocked_by"]["axial_angle"] > 0 and result["blocked_by"]["table_side"] > 0
    assert result["blocked_by"]["lung_right"] > 0
    for path in result["trajectories"]:
        assert path["axial_angle_deg"] <= 8.0
        direction = np.subtract(path["entry_lps_mm"], path["target_lps_mm"])
        assert direction[1] / np.linalg.norm(direction) < 0.5  # not within 60° of posterior
        assert path["dual_use"] is True  # 100 mm reaches a target 35 mm deep
    assert Plan.load(out).provenance.last("trajectory").parameters["table_side"] == "posterior"
    code, _, err = _run(
        capsys, *_plan(ribs, tmp_path / "p.json", "--target-lps-mm", "10,0,0", "--forbid", "kidney")
    )
    assert code == ExitCode.BAD_INPUT and "forbidden structure 'kidney'" in err
    code, _, err = _run(
        capsys,
        *_plan(ribs, tmp_path / "p.json", "--target-lps-mm", "10,0,0", "--table-side", "below"),
    )
    assert code == 2 and "--table-side" in err
    code, _, err = _run(
        capsys,
        *_plan(ribs, tmp_path / "p.json", "--target-lps-mm", "10,0,0", "--position", "upright"),
    )
    assert code == 2 and "--position" in err
    assert not (tmp_path / "p.json").exists()


def test_anatomy_and_lesion_must_belong_to_the_ct(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shifted = AFFINE.copy()
    shifted[0, 3] += 5.0
    ct = read_ct(ribs / "ct.nii.gz").volume
    write_volume(Volume(ct.array, shifted), tmp_path / "moved.nii.gz")
    out = tmp_path / "plan.json"
    code, _, err = _run(
        capsys,
        "plan",
        "trajectory",
        tmp_path / "moved.nii.gz",
        "--anatomy",
        ribs / "anatomy",
        "--target-lps-mm",
        "10,0,0",
        "--out",
        out,
    )
    assert (
        code == ExitCode.BAD_INPUT
        and "is not on the CT's grid" in err
        and "seldinger segment" in err
    )
    write_volume(Volume(np.zeros((10, 10, 10), np.uint8), AFFINE), tmp_path / "small.nii.gz")
    code, _, err = _run(capsys, *_plan(ribs, out, "--lesion", tmp_path / "small.nii.gz"))
    assert code == ExitCode.BAD_INPUT and "lesion mask" in err and "seldinger lesion" in err
    code, _, err = _run(
        capsys,
        "plan",
        "trajectory",
        ribs / "ct.nii.gz",
        "--anatomy",
        tmp_path,
        "--target-lps-mm",
        "10,0,0",
        "--out",
        out,
    )
    assert code == ExitCode.BAD_INPUT and "not an anatomy folder" in err
    assert not out.exists()


def test_lesion_in_another_axis_order_is_accepted(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from seldinger.imaging import reorient
    from seldinger.io import read_volume

    flipped = reorient(read_volume(ribs / "lesion.nii.gz"), "RAI")
    write_volume(flipped, tmp_path / "lesion_rai.nii.gz")
    code, stdout, err = _run(
        capsys,
        *_plan(ribs, tmp_path / "plan.json", "--lesion", tmp_path / "lesion_rai.nii.gz", "--json"),
    )
    assert code == 0, err
    assert json.loads(stdout)["target_lps_mm"] == pytest.approx(LESION_CENTRE_LPS_MM, abs=0.01)


def test_plan_help_teaches(capsys) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = _run(capsys, "plan", "--help")
    assert code == 0 and "trajectory" in stdout and "Example" in stdout
    code, stdout, _ = _run(capsys, "plan", "trajectory", "--help")
    assert code == 0
    for text in ("--target-lps-mm", "--lesion", "--needle-length-mm", "Exit status", "Example"):
        assert text in stdout


@requires_shared
@pytest.mark.slow
def test_plan_to_the_lidc_nodule(capsys, lidc_anatomy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    anatomy_dir = lidc_anatomy.save(tmp_path / "anatomy")
    out = tmp_path / "plan.json"
    code, stdout, err = _run(
        capsys,
        "plan",
        "trajectory",
        LIDC / "ct.nii.gz",
        "--anatomy",
        anatomy_dir,
        "--lesion",
        LIDC / "nodule_consensus.nii.gz",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["target_lps_mm"] == pytest.approx(NODULE_CENTROID_LPS_MM, abs=1.0)
    assert result["n_safe"] > 100 and result["blocked_by"]["bones"] > 0
    best = result["trajectories"][0]
    assert 20.0 < best["length_mm"] <= best["depth_to_far_side_mm"] <= 150.0
    assert best["min_distance_mm"]["vessels"] is None or best["min_distance_mm"]["vessels"] >= 3.0
    assert best["min_distance_mm"]["bones"] > 0 and best["min_distance_mm"]["mediastinum"] > 0
    # the nodule touches the posterior chest wall: the best path reaches it without lung
    assert best["pleural_crossings"] <= 1 and best["lung_length_mm"] < best["length_mm"]
    assert best["safe"] is True
    plan = Plan.load(out, volume=read_ct(LIDC / "ct.nii.gz").volume)
    assert len(plan.trajectories.paths) == 5 and plan.targets[0].name == "nodule_consensus"
    assert {"vessels", "bones", "airways"} <= set(plan.structures)


def _unit(path: dict) -> np.ndarray:  # type: ignore[type-arg]
    direction = np.subtract(path["entry_lps_mm"], path["target_lps_mm"])
    return direction / np.linalg.norm(direction)


def test_the_table_side_is_refused_by_default(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No position in a NIfTI file and no table in this phantom: supine is assumed and said,
    and no path comes from the back; --position prone moves the refusal to the front."""
    code, stdout, err = _run(
        capsys, *_plan(ribs, tmp_path / "a.json", "--target-lps-mm", "10,0,0", "--json")
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["position"] == "supine" and result["position_source"] == "assumed"
    assert result["table_side"] == "posterior" and result["blocked_by"]["table_side"] > 0
    assert any("supine assumed" in note for note in result["notes"])
    assert all(_unit(p)[1] < 0.5 for p in result["trajectories"])  # none within 60° of the back
    rules = Plan.load(tmp_path / "a.json").trajectories.rules
    assert (rules.position, rules.table_side) == ("supine", "posterior")

    code, stdout, err = _run(
        capsys,
        *_plan(ribs, tmp_path / "b.json", "--target-lps-mm", "10,0,0", "--json"),
        "--position",
        "prone",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["table_side"] == "anterior" and result["position_source"] == "--position"
    assert all(_unit(p)[1] > -0.5 for p in result["trajectories"])

    code, stdout, err = _run(
        capsys,
        *_plan(ribs, tmp_path / "c.json", "--target-lps-mm", "10,0,0", "--json"),
        "--table-side",
        "none",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["table_side"] is None and "table_side" not in result["blocked_by"]


def test_rib_margin_is_reported_and_scored(capsys, ribs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """8 mm ribs with 4 mm spaces: a needle between two ribs passes within 2 mm of one
    (voxel centres), and the rib term of the score says so."""
    code, stdout, err = _run(
        capsys, *_plan(ribs, tmp_path / "p.json", "--target-lps-mm", "10,0,0", "--json")
    )
    assert code == 0, err
    for path in json.loads(stdout)["trajectories"]:
        assert 0.9 <= path["rib_margin_mm"] <= 2.0 + 1e-6
        assert path["rib_margin_mm"] >= path["min_distance_mm"]["bones"] - 1e-6  # a part of it
        expected = 0.25 * (1.0 - path["rib_margin_mm"] / 5.0)
        assert path["risk_terms"]["rib_margin"] == pytest.approx(expected, abs=2e-3)


def test_a_drawn_path_is_scored_and_its_broken_rules_named(
    capsys, ribs: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    # Between two ribs (bone at k % 12 < 8; z = 2-5 mm, k = 32-35, is a space), from the left.
    code, stdout, err = _run(
        capsys,
        *_plan(ribs, out, "--target-lps-mm", "10,0,0", "--json", "--entry-lps-mm", "44,0,4"),
    )
    assert code == 0, err
    result = json.loads(stdout)
    drawn = result["drawn"]
    assert drawn["broken_rules"] == [] and drawn["path"]["safe"] is True
    assert drawn["path"]["entry_lps_mm"] == [44.0, 0.0, 4.0]
    assert drawn["path"]["length_mm"] == pytest.approx(np.hypot(34.0, 4.0), abs=0.01)
    assert drawn["rank_among_safe"] >= 1
    paths = Plan.load(out).trajectories.paths
    assert len(paths) == 1 and paths[0].entry_lps_mm == (44.0, 0.0, 4.0)
    # Through a rib and from the back: both named, status 4, nothing written.
    bad = tmp_path / "bad.json"
    code, stdout, err = _run(
        capsys,
        *_plan(ribs, bad, "--target-lps-mm", "10,0,0", "--json", "--entry-lps-mm", "10,44,-4"),
    )
    assert code == ExitCode.INFEASIBLE
    result = json.loads(stdout)
    assert "crosses bones" in result["error"] and "table" in result["error"]
    assert set(result["path"]["blocked_by"]) == {"bones", "table_side"}
    assert result["path"]["safe"] is False
    assert not bad.exists()
    # Human output: the metrics and each broken rule, on stderr.
    code, _, err = _run(
        capsys, *_plan(ribs, bad, "--target-lps-mm", "10,0,0", "--entry-lps-mm", "10,44,-4")
    )
    assert code == ExitCode.INFEASIBLE and "BREAKS" in err and "crosses bones" in err
