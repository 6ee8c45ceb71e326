"""The demo pipeline end to end: offline on the phantom, and on the real sample case."""

import json

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.data import load_sample
from seldinger.errors import ExitCode
from seldinger.io import read_volume
from seldinger.plan import Plan, PlanCaseMismatchError
from seldinger.workflow.demo import run_demo


def dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_demo_offline_phantom(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--offline", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["is_phantom"] is True
    assert any("phantom" in note for note in result["notes"])
    html = (out / "report" / "index.html").read_text()
    assert "research software, not a certified medical device" in html
    assert "lung window" in html and "Target: " in html and "Case" in html
    assert "Needle trajectories" in html and "log odds of pneumothorax" in html
    assert "Skin candidates refused" in html
    assert sorted(p.name for p in (out / "trajectories").iterdir()) == [
        "needle_1.png",
        "needle_2.png",
        "needle_3.png",
        "paths_axial.png",
        "skin_risk_map.png",
    ]
    case = load_sample(offline=True)
    plan = Plan.load(out / "plan.json", volume=case.ct.volume)
    n_probes = _check_ablation(plan, out, html)
    _check_seeds(plan, out, html)
    _check_navigation(plan, out, html)
    # anatomy in two windows, 3-D airway tree; axial paths, best needle, skin risk map;
    # zones, one view per applicator, margin map; seed dose views, needles and DVH;
    # navigation: a marker and the guidance trace
    assert html.count("<img") == 6 + 2 + n_probes + 3 + 2
    assert {"body", "lung_left", "lung_right", "airways", "bones"} <= set(plan.structures)
    assert {f"{name}_reference" for name in case.labels} <= set(plan.structures)
    nodule = read_volume(plan.structures["nodule_reference"].resolve(out / "plan.json"))
    assert np.array_equal(nodule.array.astype(bool), case.labels["nodule"].array)
    lungs = read_volume(plan.structures["lung_left"].resolve(out / "plan.json"))
    assert dice(lungs.array, case.labels["lung_left"].array) > 0.95
    (target,) = plan.targets
    lesion = read_volume(out / target.mask_path)
    assert dice(lesion.array, case.labels["nodule"].array) > 0.8
    assert target.recist_diameter_mm <= target.max_diameter_mm
    _check_trajectories(plan, target)
    # the plan refuses another CT
    other = case.ct.volume.with_array(case.ct.volume.array + np.int16(1))
    with pytest.raises(PlanCaseMismatchError):
        Plan.load(out / "plan.json", volume=other)
    # no overwrite without --force, and the old output stays whole
    assert main(["demo", "--out", str(out), "--offline"]) == ExitCode.IO
    assert (out / "report" / "index.html").exists()


def _check_ablation(plan: Plan, out, html: str) -> int:  # type: ignore[no-untyped-def]
    """The report's ablation section and the plan's ablation; returns the applicator count."""
    assert "Ablation plan" in html and "Ruiter et al." in html and "animal liver" in html
    ablation = plan.ablation
    assert ablation is not None, "the demo's ablation failed; see the report"
    assert ablation.device == "emprint" and ablation.settings == ["150W-10min"]
    n = ablation.n_applicators
    assert 1 <= n <= 3 and len(ablation.applicators) == n
    assert ablation.target_coverage_percent >= 99.0
    assert ablation.margin.coverage_percent == pytest.approx(100.0, abs=0.5)
    assert "minimal ablative margin (mm)" in html and "manufacturer chart" in html
    zone = read_volume(out / (ablation.zone_mask_path or ""))
    lesion = read_volume(out / plan.targets[0].mask_path)
    assert np.count_nonzero(zone.array[lesion.array > 0] > 0) >= 0.99 * np.count_nonzero(
        lesion.array
    )
    names = sorted(p.name for p in (out / "ablation").iterdir())
    probes = [f"ablation_probe_{k}.png" for k in range(1, n + 1)]
    assert names == sorted(["ablation_zones.png", "margin_map.png", *probes])
    return int(n)


def _check_seeds(plan: Plan, out, html: str) -> None:  # type: ignore[no-untyped-def]
    """The report's seed section and the plan's seed implant."""
    assert "Seed implant" in html and "D90 (Gy)" in html
    seeds = plan.seeds
    assert seeds is not None, "the demo's seed implant failed; see the report"
    # coplanar first; the demo falls back to free needles when the template cannot meet the goals
    assert seeds.template in ("coplanar", "free") and seeds.goals.prescription_gy == 120.0
    assert seeds.margin_mm == 5.0 and seeds.n_seeds >= 1
    assert seeds.metrics.d90_gy >= 120.0 - 1e-6
    assert seeds.metrics.v100_percent >= 95.0
    assert sorted(p.name for p in (out / "seeds").iterdir()) == [
        "seed_dose.png",
        "seed_dvh.png",
        "seed_needles.png",
    ]


def _check_navigation(plan: Plan, out, html: str) -> None:  # type: ignore[no-untyped-def]
    """The simulated navigation: markers found, a registration stored with its errors."""
    assert "Navigation (simulated)" in html and "predicted TRE at the target" in html
    assert plan.navigation is not None, "the demo's navigation simulation failed; see the report"
    (registration,) = plan.navigation.registrations
    assert registration.n_fiducials == 6 and registration.calibration is not None
    # 0.3 mm per-axis pointer error and sub-voxel marker detection: FRE well under 1.5 mm
    assert 0.0 < registration.fre_mm < 1.5
    assert 0.0 < (registration.predicted_tre_mm or 0.0) < 2.0
    assert sorted(p.name for p in (out / "navigation").iterdir()) == [
        "navigation_guidance.png",
        "navigation_markers.png",
    ]


def _check_trajectories(plan: Plan, target) -> None:  # type: ignore[no-untyped-def]
    """The plan holds the 5 best distinct paths to the lesion, ranked by risk."""
    assert plan.trajectories is not None and plan.trajectories.target == target.name
    paths = plan.trajectories.paths
    assert [p.rank for p in paths] == [1, 2, 3, 4, 5]
    risks = [p.risk_score for p in paths]
    assert risks == sorted(risks)
    for path in paths:
        assert path.safe is True and path.blocked_by == []
        assert path.target_lps_mm == pytest.approx(target.centroid_lps_mm, abs=0.5)
        assert 0 < path.length_mm <= path.depth_to_far_side_mm <= 150.0
        vessel = path.min_distance_mm.get("vessels")
        assert vessel is None or vessel >= 3.0
        assert (path.min_distance_mm["bones"] or 0.0) > 0


@pytest.mark.network
def test_demo_on_sample_case(tmp_path):
    case = load_sample()
    if case.is_phantom:
        pytest.skip("sample CT could not be downloaded")
    result = run_demo(tmp_path / "demo")
    assert result["is_phantom"] is False
    plan = Plan.load(result["plan"], volume=case.ct.volume)
    (target,) = plan.targets
    # segmented from the consensus centroid: within the readers' range, near the centroid
    assert target.centroid_lps_mm == pytest.approx((56.4, 86.3, -116.0), abs=1.5)
    assert 5.0 <= target.volume_ml <= 10.6
    assert set(plan.structures) >= {"lung_left", "lung_right", "airways", "vessels"}
    _check_trajectories(plan, target)
    html = (tmp_path / "demo" / "report" / "index.html").read_text()
    assert "LIDC-IDRI" in html and "CC BY 3.0" in html
    n_probes = _check_ablation(plan, tmp_path / "demo", html)
    _check_seeds(plan, tmp_path / "demo", html)
    _check_navigation(plan, tmp_path / "demo", html)
    assert "Needle trajectories" in html and html.count("<img") == 6 + 2 + n_probes + 3 + 2
