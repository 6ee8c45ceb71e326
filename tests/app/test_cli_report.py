"""`seldinger report`: the report of a plan made by the command-line steps alone, as HTML and
PDF, loaded in headless Chromium without a console error."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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
