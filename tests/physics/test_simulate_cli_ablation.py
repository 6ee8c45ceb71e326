"""`seldinger plan ablation --physics`: coverage and margin from the simulated zone, heat sink."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.plan import Plan


@pytest.fixture(scope="module")
def liver_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic abdomen: body, liver, a 6 mm vessel beside a 12 mm lesion; planned."""
    root = tmp_path_factory.mktemp("liver") / "case"
    root.mkdir(parents=True)
    shape = (90, 90, 70)
    affine = np.array([[1.0, 0, 0, -45.0], [0, 1.0, 0, -45.0], [0, 0, 1.0, -35.0], [0, 0, 0, 1]])
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    x, y, z = i - 45, j - 45, k - 35
    body = np.hypot(x, y) <= 42
    liver = body & (np.hypot(x, y) <= 36)
    vessel = np.hypot(x - 11, y) <= 3  # a 6 mm vessel along S, 5 mm from the lesion
    lesion = np.sqrt(x**2 + y**2 + z**2) <= 6
    ct = np.where(body, 40, -1000).astype(np.int16)
    ct[liver] = 60
    ct[vessel & body] = 150
    write_volume(Volume(ct, affine.copy()), root / "ct.nii.gz")
    write_volume(Volume(lesion.astype(np.uint8), affine.copy()), root / "lesion.nii.gz")
    masks = {"body": body, "liver": liver, "vessels": vessel & body}
    Anatomy(masks={n: Volume(m, affine.copy()) for n, m in masks.items()}).save(root / "anatomy")
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", root / "plan.json", "--top", "3"]
    assert main([str(a) for a in args]) == 0
    return root


@pytest.mark.slow
def test_physics_zone_replaces_the_chart_and_reports_the_heat_sink(
    capsys: pytest.CaptureFixture[str], liver_plan: Path
) -> None:
    plan_path = liver_plan / "plan.json"
    args = ["plan", "ablation", plan_path, "--device", "cooltip-rf", "--setting", "exvivo-liver"]
    code = main([str(a) for a in [*args, "--physics", "--json"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    physics = summary["physics"]
    assert physics is not None and physics["engine"] == "seldinger.physics"
    assert summary["zone_volume_ml"] != physics["chart_zone_volume_ml"]
    shrink = {h["vessel"]: h for h in physics["heat_sink_shrinkage"]}
    assert "vessels" in shrink
    assert shrink["vessels"]["shrinkage_mm"] >= 2.0 and shrink["vessels"]["flagged"]
    assert any("heat sink" in note for note in summary["notes"])
    saved = Plan.load(plan_path)
    assert saved.ablation is not None and saved.ablation.physics is not None
    assert saved.ablation.physics.heat_sink_shrinkage[0].shrinkage_mm == pytest.approx(
        shrink["vessels"]["shrinkage_mm"]
    )
    # the report shows the shrinkage
    report = liver_plan / "report"
    assert main(["report", str(plan_path), "--out", str(report)]) == 0
    assert "Heat-sink shrinkage" in (report / "index.html").read_text(encoding="utf-8")
