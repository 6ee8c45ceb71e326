"""Atomic outputs: whole or nothing, and readable like any file the user writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from seldinger.files import atomic_dir, atomic_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_umask_mode_not_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("{}")
        with atomic_dir(tmp_path / "folder") as tmp_dir:
            (tmp_dir / "x.txt").write_text("x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.json") == 0o644
    assert _mode(tmp_path / "folder") == 0o755


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# --- locations, leftovers of killed runs, disk errors -----------------------------------


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from seldinger.files import OutputLocationError, check_overwrite

    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputLocationError, match=r"a_file is a file, not a folder"):
        check_overwrite(tmp_path / "a_file" / "sub" / "plan.json", force=False)


def test_leftovers_of_dead_processes_are_removed_at_the_next_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from seldinger.files import atomic_dir, atomic_path, remove_leftovers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale_file = tmp_path / f".plan.json.{pid}.abcdefgh.part.json"
    stale_file.write_text("half")
    legacy = tmp_path / ".plan.json.ab_cd123.part.json"  # round 1 names had no pid
    legacy.write_text("half")
    mine = tmp_path / f".plan.json.{os.getpid()}.zzzzzzzz.part.json"  # a live writer's
    mine.write_text("in progress")
    unrelated = tmp_path / ".plan.json.bak.part"
    unrelated.write_text("keep")
    with atomic_path(tmp_path / "plan.json") as tmp:
        tmp.write_text("{}")
    assert not stale_file.exists() and not legacy.exists()
    assert mine.exists() and unrelated.exists()
    mine.unlink()
    # a folder being replaced when the run was killed: the earlier one comes back
    report = tmp_path / "report"
    old = tmp_path / ".report.old"
    old.mkdir()
    (old / "index.html").write_text("earlier")
    half = tmp_path / f".report.{pid}.qwertyui.part"
    half.mkdir()
    assert set(remove_leftovers(report)) == {old, half}
    assert (report / "index.html").read_text() == "earlier" and not half.exists()
    with atomic_dir(report, force=True) as tmp:
        (tmp / "index.html").write_text("new")
    assert (report / "index.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".plan.json.bak.part",
        "plan.json",
        "report",
    ]


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno
    import os

    from seldinger.errors import SeldingerIOError
    from seldinger.files import atomic_path

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with (
        pytest.raises(
            SeldingerIOError, match=r"could not write .*plan\.json: No space left on device"
        ),
        atomic_path(tmp_path / "plan.json") as tmp,
    ):
        tmp.write_text("{}")
    assert list(tmp_path.iterdir()) == []
