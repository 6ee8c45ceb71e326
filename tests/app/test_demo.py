"""The demo pipeline end to end: offline on the phantom, and on the real sample case."""

import json

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.app.demo import run_demo
from seldinger.data import load_sample
from seldinger.io import read_volume
from seldinger.planning import Plan, PlanCaseMismatchError


def test_demo_offline_phantom(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--offline", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["is_phantom"] is True
    assert any("phantom" in note for note in result["notes"])
    html = (out / "report" / "index.html").read_text()
    assert "research software, not a certified medical device" in html
    assert html.count("<img") == 2
    case = load_sample(offline=True)
    plan = Plan.load(out / "plan.json", volume=case.ct.volume)
    assert set(plan.structures) == set(case.labels)
    nodule = read_volume(plan.structures["nodule"].resolve(out / "plan.json"))
    assert np.array_equal(nodule.array.astype(bool), case.labels["nodule"].array)
    # the plan refuses another CT
    other = case.ct.volume.with_array(case.ct.volume.array + np.int16(1))
    with pytest.raises(PlanCaseMismatchError):
        Plan.load(out / "plan.json", volume=other)
    # no overwrite without --force, and the old output stays whole
    assert main(["demo", "--out", str(out), "--offline"]) == 1
    assert (out / "report" / "index.html").exists()


@pytest.mark.network
def test_demo_on_sample_case(tmp_path):
    case = load_sample()
    if case.is_phantom:
        pytest.skip("sample CT could not be downloaded")
    result = run_demo(tmp_path / "demo")
    assert result["is_phantom"] is False
    plan = Plan.load(result["plan"], volume=case.ct.volume)
    (target,) = plan.targets
    assert target.centroid_lps_mm == pytest.approx((56.4, 86.3, -116.0), abs=0.1)
    assert target.volume_ml == pytest.approx(7.8, abs=0.05)
    html = (tmp_path / "demo" / "report" / "index.html").read_text()
    assert "LIDC-IDRI" in html and "CC BY 3.0" in html
