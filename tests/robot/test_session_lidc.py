"""The robot workflow on lidc-idri-0001: a planned biopsy + microwave ablation of the nodule,
run against the simulated robot and its tracker, still and with 15 mm breathing (gated);
re-planning after an introducer placed 5 mm off; reachability of both robots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from case_copy import copy_case
from seldinger.app.cli import main
from seldinger.io import write_volume
from seldinger.plan import Plan
from seldinger.robot.needle_world import NeedleWorld, NeedleWorldSettings
from seldinger.robot.session import SessionSettings
from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings
from seldinger.workflow.ablation_replan import PlacedProbe, Replanner
from seldinger.workflow.robot_session import SessionRequest, run_robot_session
from shared_paths import LIDC

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lidc_plan(tmp_path_factory, lidc_volume, lidc_anatomy) -> Path:  # type: ignore[no-untyped-def]
    """ct, anatomy, nodule, and a plan with trajectories and an EMPRINT ablation."""
    from seldinger.io import read_volume

    root = tmp_path_factory.mktemp("lidc_robot")
    write_volume(lidc_volume, root / "ct.nii.gz")
    lidc_anatomy.save(root / "anatomy")
    nodule = read_volume(LIDC / "nodule_consensus.nii.gz")
    write_volume(nodule.with_array((nodule.array > 0).astype(np.uint8)), root / "nodule.nii.gz")
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "nodule.nii.gz", "--out", root / "plan.json", "--top", "5"]
    assert main([str(a) for a in args]) == 0
    args = ["plan", "ablation", root / "plan.json", "--device", "emprint"]
    args += ["--setting", "150W-10min"]
    assert main([str(a) for a in args]) == 0
    return root


def _copy(root: Path, tmp_path: Path, ablation: bool = True) -> Path:
    case = copy_case(root, tmp_path / "case")
    if not ablation:
        plan = Plan.load(case / "plan.json")
        plan.ablation = None
        plan.save(case / "plan.json", force=True)
    return case / "plan.json"


def _session(  # type: ignore[no-untyped-def]
    plan_path: Path,
    breathing_mm: float,
    gate: float | None,
    seed: int = 1,
    deflection: float = 1.0,
    session: SessionSettings | None = None,
):
    world = NeedleWorld(
        NeedleWorldSettings(
            breathing_amplitude_mm=breathing_mm, seed=seed, deflection_mm_per_100mm=deflection
        )
    )
    settings = SimulatedRobotSettings(repeatability_mm=0.5, speed_mm_per_s=60.0)
    with SimulatedRobot(settings=settings, world=world, tracker_port=0) as sim:
        assert sim.tracker_port is not None
        request = SessionRequest(
            plan_path=plan_path,
            robot="guide_5dof",
            robot_at=("127.0.0.1", sim.port),
            tracker_at=("127.0.0.1", sim.tracker_port),
            tracker_in_ct=True,
            gate_window=gate,
            settings=session or SessionSettings(gate_learn_s=8.0),
        )
        outcome = run_robot_session(request)
    return outcome, world


@pytest.mark.parametrize(("breathing_mm", "gate", "bar_mm"), [(0.0, None, 1.5), (15.0, 0.1, 2.5)])
def test_the_biopsy_needle_reaches_the_nodule(
    lidc_plan, tmp_path, breathing_mm, gate, bar_mm
) -> None:  # type: ignore[no-untyped-def]
    plan_path = _copy(lidc_plan, tmp_path, ablation=False)
    outcome, world = _session(plan_path, breathing_mm, gate)
    (needle,) = outcome.record.needles
    truth = world.tissue_tip_lps_mm()
    assert truth is not None
    true_error = float(np.linalg.norm(truth - np.asarray(needle.planned_tip_lps_mm)))
    assert true_error <= bar_mm, (true_error, needle)
    # the confirmation the controller saw agrees with the truth within the tracker noise
    assert needle.error_mm is not None and abs(needle.error_mm - true_error) < 0.6
    # The log shows each state, in protocol order, and the gate when gated.
    records = [json.loads(line) for line in outcome.log_path.read_text().splitlines()]
    states = [r["state"] for r in records if r["event"] == "state"]
    assert states[:4] == ["START_UP", "PLANNING", "CALIBRATION", "TARGETING"]
    assert "MOVE_TO_TARGET" in states and states[-1] == "PLANNING"
    events = {r["event"] for r in records}
    assert {"calibration", "target", "reached", "confirm", "biopsy", "end"} <= events
    assert ("gate_learnt" in events) == (gate is not None)
    saved = Plan.load(plan_path)
    assert saved.robot is not None and saved.robot.sessions[-1].outcome == "completed"
    assert saved.robot.sessions[-1].log_path == outcome.log_path.name


def test_biopsy_then_ablation_replans_from_the_confirmed_introducer(lidc_plan, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan_path = _copy(lidc_plan, tmp_path)
    # A needle that drifts 5 mm per 100 mm and is not adjusted: the introducer lands a few
    # mm off, and the re-plan adds an applicator, placed and confirmed in turn.
    outcome, _ = _session(
        plan_path, 0.0, None, seed=2, deflection=5.0,
        session=SessionSettings(tolerance_mm=20.0, max_adjustments=0),
    )  # fmt: skip
    record = outcome.record
    assert record.outcome == "completed"
    assert record.needles[0].name.startswith("introducer")
    assert record.needles[0].error_mm is not None and record.needles[0].error_mm > 2.0
    assert record.replans[0].placed_coverage_percent < 99.0
    assert len(record.needles) >= 2 and record.needles[1].name == "applicator 2"
    assert len(record.replans) == len(record.needles)
    last = record.replans[-1]
    assert last.feasible and last.target_coverage_percent is not None
    assert last.target_coverage_percent >= 99.0
    saved = Plan.load(plan_path)
    assert saved.ablation is not None
    assert saved.ablation.n_applicators == len(record.needles)
    assert any("re-planned" in n for n in saved.ablation.notes)
    # the session lands in the report
    assert main(["report", str(plan_path), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<h2>Robot</h2>" in html and "ablation re-planned from the confirmed needles" in html


def test_an_introducer_5_mm_off_is_made_good_by_the_replan(lidc_plan, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan_path = _copy(lidc_plan, tmp_path)
    plan = Plan.load(plan_path)
    assert plan.ablation is not None
    first = plan.ablation.applicators[0]
    tip, u = np.asarray(first.tip_lps_mm), np.asarray(first.direction_lps)
    side = np.cross(u, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    replanner = Replanner(plan_path)
    for offset in (5.0 * side, 5.0 * np.cross(u, side)):
        replan = replanner.replan([PlacedProbe(tuple(tip + offset), tuple(u))])
        assert replan.placed_coverage_percent < 99.0  # the miss matters
        if replan.feasible:
            assert replan.section is not None
            assert replan.section.target_coverage_percent >= 99.0
            assert replan.section.margin is not None
            assert replan.section.margin.min_margin_mm >= 3.0
            placed = replan.section.applicators[0]
            np.testing.assert_allclose(placed.tip_lps_mm, tip + offset, atol=0.01)
        else:
            assert replan.reason and "covers" in replan.reason


@pytest.mark.parametrize("robot", ["guide_5dof", "ur5_guide"])
def test_reachability_of_the_lidc_paths_is_reported_and_ranked(
    lidc_plan, tmp_path, robot, capsys
) -> None:  # type: ignore[no-untyped-def]
    plan_path = _copy(lidc_plan, tmp_path)
    assert main(["robot", "reach", str(plan_path), "--robot", robot, "--write", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = report["summary"]
    assert summary["paths"] == 5
    assert summary["reachable"] + sum(summary["reasons"].values()) == 5
    saved = Plan.load(plan_path)
    assert saved.robot is not None and saved.robot.robot == robot
    ranks = sorted(r.robot_rank for r in saved.robot.reach)
    assert ranks == [1, 2, 3, 4, 5]
    best = min(saved.robot.reach, key=lambda r: r.robot_rank)
    assert best.reachable == (summary["reachable"] > 0)


def _draw_needle(ct, entry, tip, hu: float = 3000.0):  # type: ignore[no-untyped-def]
    """The CT with a steel needle from entry to tip: every voxel the line passes through
    (sampled every 0.1 mm) and its in-plane neighbours (the needle's blooming) at ``hu``."""
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    n = int(np.linalg.norm(tip - entry) / 0.1) + 1
    line = entry + np.linspace(0.0, 1.0, n)[:, None] * (tip - entry)
    ijk = np.unique(np.rint(ct.lps_to_index(line)).astype(int), axis=0)
    array = np.array(ct.array, copy=True)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            array[ijk[:, 0] + di, ijk[:, 1] + dj, ijk[:, 2]] = hu
    return ct.with_array(array)


def test_a_confirmation_ct_finds_the_needle_and_the_session_uses_it(
    lidc_plan, lidc_volume, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from seldinger.robot.needle_ct import NeedleNotFoundError, needle_in_ct

    plan_path = _copy(lidc_plan, tmp_path, ablation=False)
    path = Plan.load(plan_path).trajectories.paths[0]  # type: ignore[union-attr]
    entry, target = np.asarray(path.entry_lps_mm), np.asarray(path.target_lps_mm)
    # Unit check: a needle 3 mm beside and 2 mm short of the target is found to within a
    # voxel (0.7 x 0.7 x 2.5 mm).
    u = (target - entry) / np.linalg.norm(target - entry)
    side = np.cross(u, [0.0, 0.0, 1.0]) / np.linalg.norm(np.cross(u, [0.0, 0.0, 1.0]))
    tip = target + 3.0 * side - 2.0 * u
    found = needle_in_ct(_draw_needle(lidc_volume, entry + 3.0 * side, tip), entry, target)
    assert np.linalg.norm(np.subtract(found.tip_lps_mm, tip)) <= 1.5
    with pytest.raises(NeedleNotFoundError, match="no needle"):
        needle_in_ct(lidc_volume, entry, target)
    # The session: the control CT shows the needle where it really is.
    world = NeedleWorld(NeedleWorldSettings(seed=4))
    settings = SimulatedRobotSettings(repeatability_mm=0.5, speed_mm_per_s=100.0)

    def control_ct(name: str) -> Path:
        truth = world.tissue_tip_lps_mm()
        assert truth is not None
        out = tmp_path / f"control_{name.split()[0]}.nii.gz"
        write_volume(_draw_needle(lidc_volume, entry, truth), out, force=True)
        return out

    with SimulatedRobot(settings=settings, world=world, tracker_port=0) as sim:
        request = SessionRequest(
            plan_path=plan_path,
            robot="guide_5dof",
            robot_at=("127.0.0.1", sim.port),
            confirm_ct=control_ct,
        )
        outcome = run_robot_session(request)
    (needle,) = outcome.record.needles
    truth = world.tissue_tip_lps_mm()
    assert truth is not None and needle.measured_tip_lps_mm is not None
    assert np.linalg.norm(np.subtract(needle.measured_tip_lps_mm, truth)) <= 1.5
    events = [json.loads(line)["event"] for line in outcome.log_path.read_text().splitlines()]
    assert "confirm_ct" in events
