"""`seldinger plan migrate`: every plan round 1's commands wrote migrates, validates, reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.plan import Plan, PlanVersionError, migrate_document, migrate_file

V1 = Path(__file__).resolve().parents[1] / "data" / "plans_v1"
FIXTURES = sorted(V1.glob("plan_*.json"))


def test_there_are_fixtures_of_every_step() -> None:
    assert {p.name for p in FIXTURES} == {
        "plan_traj.json",
        "plan_abl.json",
        "plan_seeds.json",
        "plan_nav.json",
        "plan_demo.json",
    }


@pytest.mark.parametrize("source", FIXTURES, ids=lambda p: p.stem)
def test_v1_plans_migrate_and_reload(tmp_path: Path, source: Path) -> None:
    old = json.loads(source.read_text(encoding="utf-8"))
    with pytest.raises(PlanVersionError, match="seldinger plan migrate"):
        Plan.load(source)
    plan = migrate_file(source, tmp_path / "plan.json")
    again = Plan.load(tmp_path / "plan.json")
    assert again == plan
    assert plan.provenance.migrated_from == "1"
    assert plan.case.voxel_sha256 == old["case"]["voxel_sha256"]
    assert [t.name for t in plan.targets] == [t["name"] for t in old["targets"]]
    # every v1 path, with its entry, target and metrics
    assert plan.trajectories is not None
    assert len(plan.trajectories.paths) == len(old["trajectories"])
    for new, was in zip(plan.trajectories.paths, old["trajectories"], strict=True):
        assert list(new.entry_lps_mm) == was["entry_lps_mm"]
        assert new.risk_score == was["risk_score"] and new.rank == was["rank"]
    assert plan.trajectories.target == plan.targets[0].name
    if old.get("ablation"):
        assert plan.ablation is not None
        assert plan.ablation.n_applicators == old["ablation"]["n_applicators"]
        assert plan.ablation.margin.min_margin_mm == old["ablation"]["margin"]["min_margin_mm"]
    if old.get("seeds"):
        assert plan.seeds is not None
        assert plan.seeds.n_seeds == old["seeds"]["n_seeds"]
        assert plan.seeds.goals.prescription_gy == old["seeds"]["prescription_gy"]
        np.testing.assert_allclose(plan.seeds.total_u, old["seeds"]["total_u"], atol=5e-3)
        assert plan.seeds.seeds_lps_mm[0] == tuple(old["seeds"]["needles"][0]["seeds_lps_mm"][0])
    if old.get("navigation"):
        assert plan.navigation is not None
        for new_reg, was_reg in zip(
            plan.navigation.registrations, old["navigation"]["registrations"], strict=True
        ):
            np.testing.assert_allclose(
                new_reg.moving_to_fixed, was_reg["moving_to_fixed"], atol=1e-6
            )
            assert new_reg.predicted_tre_mm == was_reg["predicted_tre_mm"]


def test_navigation_records_keep_ids_and_names(tmp_path: Path) -> None:
    plan = migrate_file(V1 / "plan_nav.json", tmp_path / "plan.json")
    assert plan.navigation is not None
    assert [r.id for r in plan.navigation.registrations] == ["registration-1"]
    assert plan.navigation.registrations[0].name == "ct-markers"
    assert [(c.id, c.name, c.method) for c in plan.navigation.calibrations] == [
        ("calibration-1", "needle", "pivot_algebraic_one_step")
    ]


def test_migrate_refuses_unknown_versions() -> None:
    with pytest.raises(PlanVersionError, match="cannot be migrated"):
        migrate_document({"schema_version": "7"})


def test_cli_migrate_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes((V1 / "plan_seeds.json").read_bytes())
    assert main(["plan", "migrate", str(plan), str(plan)]) == ExitCode.IO  # exists: --force
    assert "--force" in capsys.readouterr().err
    assert main(["plan", "migrate", str(plan), str(plan), "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema_version"] == "2" and out["sections"] == ["trajectories", "ablation", "seeds"]
    assert Plan.load(plan).seeds is not None


def test_cli_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Plan" and "trajectories" in schema["properties"]


def test_loading_a_v1_plan_through_a_command_says_to_migrate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "ablation", str(V1 / "plan_traj.json"), "--device", "emprint"])
    assert code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "seldinger plan migrate" in err and len(err.strip().splitlines()) <= 3
