"""`seldinger report`: the report of a plan made by the command-line steps alone, as HTML and
PDF, loaded in headless Chromium without a console error."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from case_copy import copy_case
from seldinger.app.cli import main
from seldinger.errors import ExitCode

CHROMIUM = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


@pytest.fixture(scope="module")
def full_plan(planned: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic chest planned by the CLI: trajectory (conftest), ablation and seeds."""
    root = copy_case(planned, tmp_path_factory.mktemp("report") / "case")
    plan = root / "plan.json"
    assert (
        main(["plan", "ablation", str(plan), "--device", "emprint", "--setting", "100W-5min"]) == 0
    )
    assert main(["plan", "seeds", str(plan), "--template", "free"]) == 0
    return root


def test_report_of_a_cli_plan(capsys, full_plan: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    code, stdout, err = _run(capsys, "report", full_plan / "plan.json", "--out", out)
    assert code == 0, err
    assert f"wrote {out / 'index.html'}" in stdout
    html = (out / "index.html").read_text(encoding="utf-8")
    for section in (
        "Case",
        "Target: lesion",
        "Needle trajectories",
        "Ablation plan",
        "Seed implant",
    ):
        assert f"<h2>{section}</h2>" in html, section
    assert "Navigation" not in html  # the plan has no navigation records
    # what the trajectory planner could not check is kept with the plan and reported
    assert "Note: not in the anatomy, so not avoided: mediastinum" in html
    # de-identified by default: the CT's path is not in the page
    assert str(full_plan) not in html and "ct.nii.gz" not in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 8 and all((out / name).is_file() for name in images)
    # every figure is captioned, with units
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html, re.S)
    assert len(captions) == len(images)
    unitless = [c for c in captions if not re.search(r"(\bmm\b|\bGy\b|\bHU\b|%)", c)]
    assert unitless == []
    # identified on request; a folder that exists is replaced only with --force
    code, _, err = _run(capsys, "report", full_plan / "plan.json", "--out", out, "--identified")
    assert code == ExitCode.IO and "--force" in err
    code, _, _ = _run(
        capsys, "report", full_plan / "plan.json", "--out", out, "--identified", "--force"
    )
    assert code == 0 and "ct.nii.gz" in (out / "index.html").read_text(encoding="utf-8")


@needs_chromium
def test_pdf_and_headless_chromium(capsys, full_plan: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    code, _, err = _run(capsys, "report", full_plan / "plan.json", "--out", out, "--pdf")
    assert code == 0, err
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "report.pdf").stat().st_size > 50_000  # the figures are in it
    shot = tmp_path / "page.png"
    run = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1400,2400", f"--screenshot={shot}", (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_report_bad_input(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(capsys, "report", tmp_path / "nowhere.json")
    assert code == ExitCode.IO and "no plan at" in err


def test_export_writes_the_plans_points_as_slicer_markups(
    capsys, full_plan: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The needle paths, applicators, seeds and target as 3D Slicer markups (LPS mm): the
    plan's points, which the mask formats did not carry (a tester found entry and target
    points only in plan.json)."""
    import json

    from seldinger.plan import Plan

    out = tmp_path / "export"
    code, _, err = _run(capsys, "export", full_plan / "plan.json", "--out", out, "--format",
                        "markups")  # fmt: skip
    assert code == 0, err
    plan = Plan.load(full_plan / "plan.json")
    assert plan.trajectories is not None and plan.ablation is not None and plan.seeds is not None
    files = {p.name: json.loads(p.read_text()) for p in (out / "markups").glob("*.mrk.json")}
    paths = [f"path_{p.rank}.mrk.json" for p in plan.trajectories.paths]
    assert set(paths) | {"targets.mrk.json", "seeds.mrk.json"} <= set(files)
    for document in files.values():
        assert "markups-schema-v1.0.3.json" in document["@schema"]
        (markup,) = document["markups"]
        assert markup["coordinateSystem"] == "LPS" and markup["coordinateUnits"] == "mm"
    best = plan.trajectories.paths[0]
    line = files["path_1.mrk.json"]["markups"][0]
    assert line["type"] == "Line"
    entry, target = (np.array(point["position"]) for point in line["controlPoints"])
    assert np.allclose(entry, best.entry_lps_mm, atol=1e-3)
    assert np.allclose(target, best.target_lps_mm, atol=1e-3)
    probes = sum(max(1, len(a.probes_tip_lps_mm)) for a in plan.ablation.applicators)
    assert len([n for n in files if n.startswith("applicator_")]) == probes
    first = plan.ablation.applicators[0]
    tip = files[sorted(n for n in files if n.startswith("applicator_1"))[0]]["markups"][0]
    assert np.allclose(tip["controlPoints"][1]["position"],
                       (first.probes_tip_lps_mm or [first.tip_lps_mm])[0], atol=1e-3)  # fmt: skip
    seeds = files["seeds.mrk.json"]["markups"][0]
    assert seeds["type"] == "Fiducial"
    assert len(seeds["controlPoints"]) == sum(len(n.seeds_lps_mm) for n in plan.seeds.needles)
