"""Bad plans and bad places: refused in one line, before the work, nothing touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.plan import Plan


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_nan_plan_is_refused_and_left_byte_identical(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path = case / "plan.json"
    document = json.loads(plan_path.read_text())
    document["targets"][0]["centroid_lps_mm"][0] = float("nan")
    for path in document["trajectories"]["paths"]:
        path["entry_lps_mm"][1] = float("nan")
    plan_path.write_text(json.dumps(document, indent=2))  # Python writes NaN as a bare token
    before = plan_path.read_bytes()
    code, out, err = _run(capsys, "plan", "ablation", plan_path, "--device", "emprint")
    assert code == ExitCode.BAD_INPUT and out == ""
    assert len(err.strip().splitlines()) == 1 and "NaN" in err and "plan.json" in err
    assert plan_path.read_bytes() == before
    # the same with the NaN as a string a hand edit might leave: the field is named
    document["targets"][0]["centroid_lps_mm"][0] = "NaN"
    for path in document["trajectories"]["paths"]:
        path["entry_lps_mm"][1] = 0.0
    plan_path.write_text(json.dumps(document, indent=2))
    before = plan_path.read_bytes()
    code, _, err = _run(capsys, "plan", "seeds", plan_path)
    assert code == ExitCode.BAD_INPUT
    assert "targets[0].centroid_lps_mm[0]" in err and len(err.strip().splitlines()) == 1
    assert plan_path.read_bytes() == before


def test_bad_option_values_are_one_line_usage_errors(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ("navigate", "simulate", "--hz", "0"),
        ("plan", "trajectory", case / "ct.nii.gz", "--anatomy", case, "--out", "p.json", "--top", "0"),
        ("dose", "tg43", "--seeds", "s.csv", "--points", "p.csv", "--sk-u", "-1"),
        ("plan", "trajectory", case / "ct.nii.gz", "--anatomy", case, "--out", "p.json",
         "--target-lps-mm", "nan,0,0"),
    ):  # fmt: skip
        code, out, err = _run(capsys, *args)
        assert code == ExitCode.USAGE, args
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
        assert "--help" in err and out == ""


def test_an_output_under_a_file_is_refused_before_the_work(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = case / "not_a_folder"
    blocker.write_text("x")
    started = time.monotonic()
    code, _, err = _run(capsys, "segment", case / "ct.nii.gz", "--out", blocker / "anatomy")
    assert code == ExitCode.IO and "not_a_folder is a file, not a folder" in err
    assert time.monotonic() - started < 5.0  # refused before segmenting


def _slow_convert_input(tmp_path: Path) -> Path:
    """A CT large enough that converting it takes a few hundred milliseconds."""
    import numpy as np

    from seldinger.imaging import Volume
    from seldinger.io import write_volume

    rng = np.random.default_rng(20261206)
    array = rng.integers(-1024, 2000, size=(256, 256, 160), dtype=np.int16)
    source = tmp_path / "big.nii.gz"
    write_volume(Volume(array, np.diag([0.8, 0.8, 1.0, 1.0])), source)
    return source


@pytest.mark.skipif(sys.platform != "linux", reason="kill -9 of a child process (POSIX)")
def test_kill_9_leaves_no_output_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    source = _slow_convert_input(tmp_path)
    out = tmp_path / "out" / "ct.nii.gz"
    out.parent.mkdir()
    script = Path(sys.executable).parent / "seldinger"
    for delay_s in (0.3, 0.6, 0.9, 1.2):
        child = subprocess.Popen([str(script), "convert", str(source), str(out), "--force"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        if not out.exists():  # killed before the commit: nothing at the final path
            assert all(p.name.startswith(".ct.nii.gz.") for p in out.parent.iterdir())
    done = subprocess.run([str(script), "convert", str(source), str(out), "--force"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.parent.iterdir()] == ["ct.nii.gz"]  # leftovers gone


@pytest.mark.skipif(sys.platform != "linux", reason="kill -9 of a child process (POSIX)")
def test_kill_9_during_a_plan_step_keeps_the_earlier_plan(case: Path) -> None:
    plan_path = case / "plan.json"
    before = plan_path.read_bytes()
    script = Path(sys.executable).parent / "seldinger"
    for delay_s in (1.0, 2.5):
        child = subprocess.Popen(
            [str(script), "plan", "seeds", str(plan_path), "--figures", str(case / "fig")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        if child.returncode == -signal.SIGKILL:
            after = plan_path.read_bytes()
            if after == before:  # killed before the commit: the earlier plan, whole
                assert Plan.load(plan_path).seeds is None
            else:  # killed after the atomic commit (figures, exit): the new plan, whole
                assert Plan.load(plan_path).seeds is not None
                plan_path.write_bytes(before)
    done = subprocess.run([str(script), "plan", "seeds", str(plan_path), "--force"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    leftovers = [p.name for p in case.iterdir() if ".part" in p.name]
    assert leftovers == []


@pytest.mark.skipif(sys.platform != "linux", reason="kill -9 of a child process (POSIX)")
def test_kill_9_during_segment_leaves_no_folder_and_the_earlier_one_intact(
    tmp_path: Path,
) -> None:
    """`segment` writes its folder aside and swaps it in: killed at any moment, the earlier
    anatomy folder stays whole (or, without one, none appears); the next run cleans up."""
    from shared_paths import LIDC

    if not LIDC.is_dir():
        pytest.skip("../shared/data is absent")
    from seldinger.io import read_ct, write_volume

    ct = read_ct(LIDC / "ct.nii.gz").volume
    small = tmp_path / "ct.nii.gz"
    write_volume(ct.crop_index((slice(None), slice(None), slice(40, 70))), small)
    out = tmp_path / "anatomy"
    script = str(Path(sys.executable).parent / "seldinger")
    structures = ["--structures", "body,lung_left,lung_right,bones"]
    first = subprocess.run([script, "segment", str(small), "--out", str(out), *structures],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for delay_s in (0.8, 1.6, 2.4, 3.2):
        child = subprocess.Popen([script, "segment", str(small), "--out", str(out), "--force",
                                  *structures],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        if child.returncode == -signal.SIGKILL:
            now = {p.name: p.read_bytes() for p in out.iterdir()}
            if now != before:
                # Killed after its folder was swapped in (while exiting, on a loaded
                # machine): then the new folder must be whole, never a mixture.
                assert now.keys() == before.keys()
                assert (
                    json.loads(now["anatomy.json"])["structures"].keys()
                    == json.loads(before["anatomy.json"])["structures"].keys()
                )
                before = now
    done = subprocess.run([script, "segment", str(small), "--out", str(out), "--force",
                           *structures], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # leftovers gone
