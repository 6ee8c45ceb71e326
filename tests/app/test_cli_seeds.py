"""`seldinger plan seeds`: the --json contract, the plan's seeds, the STL plate, refusals.

The synthetic chest of tests/app/test_cli_ablation.py: a body cylinder (radius 45 mm)
around a bony shell with 4 mm intercostal gaps, two lungs and a 5 mm lesion in the left
lung, on 1 mm voxels; `plan trajectory` makes the plan the implant extends.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.io import read_ct
from seldinger.plan import Plan

SHAPE = (100, 100, 60)
#: Index (50, 50, 30) is LPS (0, 0, 0); 1 mm voxels.
AFFINE = np.array([[1.0, 0, 0, -50.0], [0, 1.0, 0, -50.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1.0]])
LESION_RADIUS_MM = 5.0


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Exit status, stdout, and stderr with Rich's box borders and line breaks flattened."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


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
    assert result["template"] == "coplanar" and result["goals"]["prescription_gy"] == 120.0
    assert result["margin_mm"] == 5.0 and result["seed_data"] == "6711"
    assert result["n_seeds"] == sum(len(n["seeds_lps_mm"]) for n in result["needles"]) >= 1
    assert result["n_needles"] == len(result["needles"])
    assert result["strength_mci"] == pytest.approx(result["strength_u"] / 1.270, rel=1e-3)
    metrics = result["metrics"]
    assert metrics["d90_gy"] >= 120.0 - 1e-6 and metrics["v100_percent"] >= 95.0
    for key in ("d100_gy", "v150_percent", "v200_percent", "conformity_index"):
        assert key in metrics
    for needle in result["needles"]:
        assert len(needle["depths_mm"]) == len(needle["seeds_lps_mm"]) >= 1
        assert needle["template_hole_mm"] is not None
    assert result["stl"] == str(stl) and stl.stat().st_size > 1000
    assert sorted(result["figures"]) == [
        str(figures / n) for n in ("seed_dose.png", "seed_dvh.png", "seed_needles.png")
    ]
    for path in result["figures"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    plan = Plan.load(plan_path, volume=read_ct(case / "ct.nii.gz").volume)
    assert plan.seeds is not None
    assert plan.seeds.model_dump(mode="json")["needles"] == result["needles"]
    assert plan.seeds.target == "lesion"
    assert plan.provenance.last("seeds").parameters["prescription_gy"] == 120.0
    assert (
        plan.trajectories is not None and len(plan.trajectories.paths) == 3
    )  # the trajectory step's output is kept

    # a second run refuses to replace the implant without --force; the plan is unchanged
    before = plan_path.read_bytes()
    code, _, err = _run(capsys, "plan", "seeds", plan_path)
    assert code == ExitCode.IO and "--force" in err
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
    assert code == ExitCode.BAD_INPUT and "coplanar" in err
    assert plan_path.read_bytes() == before and not (case / "p.stl").exists()
