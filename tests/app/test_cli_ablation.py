"""`seldinger plan ablation`, `plan devices` and `margin`: the --json contract, refusals.

The synthetic chest: a body cylinder (radius 45 mm) around a bony shell with 4 mm
intercostal gaps (radius 30-34 mm), two lungs, and a 5 mm lesion in the left lung, on
1 mm voxels; `plan trajectory` makes the plan the ablation extends. The margin tests use
two concentric spheres (tumour radius 8 mm, zone 13 mm): a 5 mm margin all round.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.imaging import Volume
from seldinger.io import read_ct, read_volume, write_volume
from seldinger.physics.ablation import load_catalogue
from seldinger.plan import Plan

SHAPE = (100, 100, 60)
#: Index (50, 50, 30) is LPS (0, 0, 0); 1 mm voxels.
AFFINE = np.array([[1.0, 0, 0, -50.0], [0, 1.0, 0, -50.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1.0]])
LESION_RADIUS_MM = 5.0
FIGURES = ["ablation_probe_1.png", "ablation_zones.png", "margin_map.png"]


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Exit status, stdout, and stderr with Rich's box borders and line breaks flattened."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


def test_ablation_json_plan_zone_and_figures(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    figures = case / "figures"
    code, stdout, err = _run(
        capsys,
        "plan",
        "ablation",
        plan_path,
        "--device",
        "emprint",
        "--setting",
        "100W-5min",
        "--figures",
        figures,
        "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["device"] == "emprint" and result["settings"] == ["100W-5min"]
    assert result["plan"] == str(plan_path) and result["target"] == "lesion"
    assert result["zone_mask"] == str(case / "ablation_zone.nii.gz")
    assert result["n_applicators"] == len(result["applicators"]) >= 1
    assert result["target_coverage_percent"] >= 99.0 and result["lesion_coverage_percent"] == 100
    assert result["margin"]["min_margin_mm"] >= 4.0
    assert result["device_provenance"] == "manufacturer chart" and result["device_source"]
    assert result["heat_sinks"] == []
    assert any("Ruiter" in note for note in result["notes"])
    applicator = result["applicators"][0]
    assert applicator["setting"] == "100W-5min"
    assert applicator["insertion_depth_mm"] == pytest.approx(
        np.linalg.norm(np.subtract(applicator["tip_lps_mm"], applicator["entry_lps_mm"])), abs=0.02
    )
    # the entry lies on the skin (radius 45 mm)
    assert np.hypot(*applicator["entry_lps_mm"][:2]) == pytest.approx(45.0, abs=1.5)
    assert sorted(result["figures"]) == [str(figures / name) for name in FIGURES]
    assert sorted(p.name for p in figures.iterdir()) == FIGURES

    ct = read_ct(case / "ct.nii.gz").volume
    plan = Plan.load(plan_path, volume=ct)
    assert plan.ablation is not None
    assert plan.ablation.zone_mask_path == "ablation_zone.nii.gz"
    assert plan.ablation.model_dump(mode="json")["applicators"] == result["applicators"]
    assert plan.provenance.last("ablation").parameters["device"] == "emprint"
    assert plan.trajectories is not None
    assert len(plan.trajectories.paths) == 3  # the trajectory step's output is kept
    zone = read_volume(case / plan.ablation.zone_mask_path)
    lesion = read_volume(case / "lesion.nii.gz")
    assert zone.geometry.same_as(ct.geometry)
    assert np.all(zone.array[lesion.array > 0] > 0)
    voxel_ml = 1e-3
    assert np.count_nonzero(zone.array) * voxel_ml == pytest.approx(
        result["zone_volume_ml"], rel=0.02
    )

    # an ablation plan is not replaced without --force, and nothing changes
    before = plan_path.read_text()
    code, _, err = _run(capsys, "plan", "ablation", plan_path, "--device", "emprint")
    assert code == ExitCode.IO and "already holds an ablation plan" in err and "--force" in err
    assert plan_path.read_text() == before
    # with --force it is; human output names what matters
    code, stdout, err = _run(
        capsys,
        "plan",
        "ablation",
        plan_path,
        "--device",
        "emprint",
        "--setting",
        "100W-5min",
        "--force",
    )
    assert code == 0, err
    for text in (
        "100W-5min",
        "covered",
        "min_margin_mm",
        "surface_at_least_5_percent",
        "heat sinks: none",
        "manufacturer chart",
        "wrote",
    ):
        assert text in stdout
    assert "Ruiter" in err


def test_unknown_device_or_setting_lists_the_alternatives(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    before = plan_path.read_text()
    code, stdout, err = _run(capsys, "plan", "ablation", plan_path, "--device", "laser")
    assert code == ExitCode.BAD_INPUT and stdout == ""
    assert "'laser'" in err and all(name in err for name in load_catalogue().names())
    code, _, err = _run(
        capsys, "plan", "ablation", plan_path, "--device", "emprint", "--setting", "200W-1min"
    )
    assert (
        code == ExitCode.BAD_INPUT
        and "'200W-1min'" in err
        and "150W-10min" in err
        and "75W-5min" in err
    )
    assert plan_path.read_text() == before and not (case / "ablation_zone.nii.gz").exists()


def test_no_placement_says_what_to_change_and_writes_nothing(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    before = plan_path.read_text()
    code, stdout, err = _run(
        capsys,
        "plan",
        "ablation",
        plan_path,
        "--device",
        "cryo-littrup-2.4mm",
        "--setting",
        "1probe",
        "--max-probes",
        "1",
        "--figures",
        case / "figures",
        "--json",
    )
    assert code == ExitCode.INFEASIBLE and json.loads(stdout)["exit_code"] == 4
    assert "no set of up to 1" in err and "--max-probes" in err
    assert plan_path.read_text() == before
    assert not (case / "ablation_zone.nii.gz").exists() and not (case / "figures").exists()
    assert [p.name for p in case.iterdir() if p.name.startswith(".")] == []  # no scratch left


def test_plan_without_anatomy_or_ct(capsys, case: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ct = read_ct(case / "ct.nii.gz").volume
    bare = tmp_path / "bare.json"
    Plan.new(ct, case / "ct.nii.gz").save(bare)
    code, _, err = _run(capsys, "plan", "ablation", bare, "--device", "emprint")
    assert code == ExitCode.BAD_INPUT and "`seldinger plan trajectory" in err
    # the plan's CT moved: the error names --ct, which fixes it
    plan = Plan.load(case / "plan.json")
    moved = plan.model_copy(
        update={"case": plan.case.model_copy(update={"source_path": str(tmp_path / "gone.nii.gz")})}
    )
    moved.save(case / "plan.json", force=True)
    code, _, err = _run(capsys, "plan", "ablation", case / "plan.json", "--device", "emprint")
    assert code == ExitCode.IO and "gone.nii.gz" in err and "--ct" in err
    # another CT is refused
    write_volume(ct.with_array(ct.array + np.int16(1)), tmp_path / "other.nii.gz")
    code, _, err = _run(
        capsys,
        "plan",
        "ablation",
        case / "plan.json",
        "--device",
        "emprint",
        "--ct",
        tmp_path / "other.nii.gz",
    )
    assert code == ExitCode.BAD_INPUT and "another CT" in err
    message = " ".join(err.split())
    assert "given with --ct" in message and "is not the plan's" in message
    assert "has changed since" not in message  # the user chose that CT: no contradiction
    assert Plan.load(case / "plan.json").ablation is None
    code, _, err = _run(
        capsys,
        "plan",
        "ablation",
        case / "plan.json",
        "--device",
        "emprint",
        "--setting",
        "100W-5min",
        "--ct",
        case / "ct.nii.gz",
        "--target",
        "lesion",
    )
    assert code == 0, err
    code, _, err = _run(
        capsys,
        "plan",
        "ablation",
        case / "plan.json",
        "--device",
        "emprint",
        "--force",
        "--target",
        "nodule 2",
    )
    assert code == ExitCode.BAD_INPUT and "no target 'nodule 2'" in err and "'lesion'" in err


def test_plan_devices_lists_the_catalogue(capsys) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = _run(capsys, "plan", "devices", "--json")
    assert code == 0
    devices = {row["name"]: row for row in json.loads(stdout)["devices"]}
    assert list(devices) == load_catalogue().names()
    assert devices["emprint"]["modality"] == "microwave"
    assert "150W-10min" in devices["emprint"]["settings"]
    assert devices["nanoknife"]["provenance"] == "published in vivo"
    assert all(row["source"] for row in devices.values())
    code, stdout, _ = _run(capsys, "plan", "devices")
    assert code == 0 and "cryo-littrup-2.4mm" in stdout and "Ruiter" in stdout


def _spheres(tmp_path: Path, radius_zone_mm: float = 13.0) -> tuple[Path, Path]:
    i, j, k = np.meshgrid(*(np.arange(40, dtype=float),) * 3, indexing="ij")
    r = np.sqrt((i - 20) ** 2 + (j - 20) ** 2 + (k - 20) ** 2)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    write_volume(Volume((r <= 8).astype(np.uint8), affine), tmp_path / "tumour.nii.gz")
    write_volume(Volume((r <= radius_zone_mm).astype(np.uint8), affine), tmp_path / "zone.nii.gz")
    return tmp_path / "tumour.nii.gz", tmp_path / "zone.nii.gz"


def test_margin_of_concentric_spheres(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tumour, zone = _spheres(tmp_path)
    figure = tmp_path / "margin.png"
    code, stdout, err = _run(capsys, "margin", tumour, zone, "--json", "--figure", figure)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["min_margin_mm"] == pytest.approx(5.0, abs=0.5)
    assert result["coverage_percent"] == pytest.approx(100.0)
    assert result["surface_below_0_percent"] == pytest.approx(0.0, abs=1e-9)
    parts = ("surface_below_0_percent", "surface_0_to_5_percent", "surface_at_least_5_percent")
    assert sum(result[key] for key in parts) == pytest.approx(100.0)
    assert result["tumour"] == str(tumour) and result["figure"] == str(figure)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the picture is not replaced without --force
    code, _, err = _run(capsys, "margin", tumour, zone, "--figure", figure)
    assert code == ExitCode.IO and "already exists" in err
    code, stdout, _ = _run(capsys, "margin", tumour, zone)
    assert code == 0 and "min_margin_mm: " in stdout and "surface_0_to_5_percent" in stdout


def test_margin_refuses_other_grids_and_empty_tumours(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tumour, zone = _spheres(tmp_path)
    write_volume(
        Volume(np.zeros((40, 40, 40), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])),
        tmp_path / "coarse.nii.gz",
    )
    code, _, err = _run(capsys, "margin", tumour, tmp_path / "coarse.nii.gz")
    assert (
        code == ExitCode.BAD_INPUT and "not on the tumour mask's grid" in err and "resample" in err
    )
    write_volume(Volume(np.zeros((40, 40, 40), np.uint8), np.eye(4)), tmp_path / "empty.nii.gz")
    code, _, err = _run(capsys, "margin", tmp_path / "empty.nii.gz", zone)
    assert code == ExitCode.BAD_INPUT and "empty" in err and "seldinger lesion" in err


def test_help_teaches(capsys) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = _run(capsys, "plan", "ablation", "--help")
    assert code == 0
    flat = " ".join(stdout.replace("│", " ").split())
    for text in (
        "--device",
        "--setting",
        "--margin-mm",
        "--max-probes",
        "--target",
        "--vessel",
        "--figures",
        "--force",
        "--json",
        "seldinger plan devices",
        "Exit status",
    ):
        assert text in flat
    code, stdout, _ = _run(capsys, "margin", "--help")
    flat = " ".join(stdout.replace("│", " ").split())
    assert code == 0 and "min_margin_mm" in flat and "--figure" in flat
    code, stdout, _ = _run(capsys, "plan", "--help")
    assert code == 0 and "ablation" in stdout and "devices" in stdout


def test_a_plan_made_with_relative_paths_is_used_from_another_folder(  # type: ignore[no-untyped-def]
    capsys, case: Path, tmp_path: Path, monkeypatch
) -> None:
    """A tester planned from the case folder with `ct.nii.gz` relative, then ran the next
    step from elsewhere: "the plan's CT ... is not there any more" (exit 5). The plan now
    records where the CT is, whatever folder the next step runs from."""
    monkeypatch.chdir(case)
    args = ["plan", "trajectory", "ct.nii.gz", "--anatomy", "anatomy", "--lesion"]
    args += ["lesion.nii.gz", "--out", "relative.json", "--top", "2"]
    assert main(args) == 0
    assert Path(Plan.load(case / "relative.json").case.source_path) == case / "ct.nii.gz"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    code = main(["plan", "ablation", str(case / "relative.json"), "--device", "emprint"])
    assert code == 0, capsys.readouterr().err


def test_two_plans_in_one_folder_keep_their_own_zones(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    """A tester's second plan in the same folder was refused: ablation_zone.nii.gz existed.
    A plan not named plan.json writes <name>.ablation_zone.nii.gz, and records it."""
    import shutil

    shutil.copy(case / "plan.json", case / "second.json")
    assert main(["plan", "ablation", str(case / "plan.json"), "--device", "emprint"]) == 0
    assert main(["plan", "ablation", str(case / "second.json"), "--device", "emprint"]) == 0
    capsys.readouterr()
    assert (case / "ablation_zone.nii.gz").is_file()
    assert (case / "second.ablation_zone.nii.gz").is_file()
    second = Plan.load(case / "second.json")
    assert second.ablation is not None
    assert second.ablation.zone_mask_path == "second.ablation_zone.nii.gz"
