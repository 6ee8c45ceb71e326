"""`seldinger plan seeds`: the --json contract, the plan's seeds, the STL plate, refusals.

The synthetic chest of tests/app/test_cli_ablation.py: a body cylinder (radius 45 mm)
around a bony shell with 4 mm intercostal gaps, two lungs and a 5 mm lesion in the left
lung, on 1 mm voxels; `plan trajectory` makes the plan the implant extends.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.imaging import Volume
from seldinger.io import read_ct, write_volume
from seldinger.planning import Plan

SHAPE = (100, 100, 60)
#: Index (50, 50, 30) is LPS (0, 0, 0); 1 mm voxels.
AFFINE = np.array([[1.0, 0, 0, -50.0], [0, 1.0, 0, -50.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1.0]])
LESION_RADIUS_MM = 5.0


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Exit status, stdout, and stderr with Rich's box borders and line breaks flattened."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Case folder with ct.nii.gz, lesion.nii.gz, anatomy/ and plan.json (copy to change)."""
    root = tmp_path_factory.mktemp("seeds") / "case"
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    r = np.hypot(i - 50, j - 50)
    body = r <= 45
    bones = (r >= 30) & (r <= 34) & ((k % 12) < 8)
    lungs = (r < 28) & (np.abs(i - 50) > 4) & (k > 5) & (k < 55)
    lesion = np.hypot(np.hypot(i - 62, j - 50), k - 30) <= LESION_RADIUS_MM
    ct = np.where(body, 40, -1000).astype(np.int16)
    ct[bones] = 700
    ct[lungs] = -850
    ct[lesion] = 30
    root.mkdir(parents=True)
    write_volume(Volume(ct, AFFINE.copy()), root / "ct.nii.gz")
    write_volume(Volume(lesion.astype(np.uint8), AFFINE.copy()), root / "lesion.nii.gz")
    masks = {
        "body": body,
        "bones": bones,
        "lung_left": lungs & (i > 50),
        "lung_right": lungs & (i < 50),
    }
    Anatomy(masks={n: Volume(m, AFFINE.copy()) for n, m in masks.items()}).save(root / "anatomy")
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", root / "plan.json", "--top", "3"]
    assert main([str(a) for a in args]) == 0
    return root


@pytest.fixture
def case(planned: Path, tmp_path: Path) -> Path:
    """A copy of the planned case (the plan records the original CT's absolute path)."""
    return Path(shutil.copytree(planned, tmp_path / "case"))


def test_seeds_json_plan_stl_and_figures(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    figures = case / "figures"
    stl = case / "plate.stl"
    code, stdout, err = _run(
        capsys, "plan", "seeds", plan_path, "--figures", figures, "--stl", stl, "--json"
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["plan"] == str(plan_path) and result["target"] == "lesion"
    assert result["template"] == "coplanar" and result["prescription_gy"] == 120.0
    assert result["margin_mm"] == 5.0 and result["seed_data"] == "6711"
    assert result["n_seeds"] == sum(n["n_seeds"] for n in result["needles"]) >= 1
    assert result["n_needles"] == len(result["needles"])
    assert result["strength_mci"] == pytest.approx(result["strength_u"] / 1.270, rel=1e-3)
    metrics = result["metrics"]
    assert metrics["d90_gy"] >= 120.0 - 1e-6 and metrics["v100_percent"] >= 95.0
    for key in ("d100_gy", "v150_percent", "v200_percent", "conformity_index"):
        assert key in metrics
    for needle in result["needles"]:
        assert len(needle["depths_mm"]) == len(needle["seeds_lps_mm"]) == needle["n_seeds"]
        assert needle["template_hole_mm"] is not None
    assert result["stl"] == str(stl) and stl.stat().st_size > 1000
    assert sorted(result["figures"]) == [
        str(figures / n) for n in ("seed_dose.png", "seed_dvh.png")
    ]
    for path in result["figures"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    plan = Plan.load(plan_path, volume=read_ct(case / "ct.nii.gz").volume)
    assert plan.seeds is not None and plan.seeds["needles"] == result["needles"]
    assert plan.seeds["target"] == "lesion"
    assert plan.provenance.parameters["seeds"]["prescription_gy"] == 120.0
    assert len(plan.trajectories) == 3  # the trajectory step's output is kept

    # a second run refuses to replace the implant without --force; the plan is unchanged
    before = plan_path.read_bytes()
    code, _, err = _run(capsys, "plan", "seeds", plan_path)
    assert code == 1 and "--force" in err
    assert plan_path.read_bytes() == before
    code, stdout, err = _run(capsys, "plan", "seeds", plan_path, "--force")
    assert code == 0, err
    assert "D90 (Gy)" in stdout and "mCi" in stdout and "wrote" in stdout


def test_seeds_refusals(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    before = plan_path.read_bytes()
    code, _, err = _run(capsys, "plan", "seeds", plan_path, "--template", "diagonal")
    assert code == 2 and "diagonal" in err
    code, _, err = _run(capsys, "plan", "seeds", plan_path, "--strength-mci", "0.4,x")
    assert code == 2 and "--strength-mci" in err
    code, _, err = _run(
        capsys, "plan", "seeds", plan_path, "--template", "free", "--stl", case / "p.stl"
    )
    assert code == 1 and "coplanar" in err
    assert plan_path.read_bytes() == before and not (case / "p.stl").exists()
