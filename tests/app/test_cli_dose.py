"""`seldinger dose tg43`: the --json contract, the table, and CSV refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("x_mm,y_mm,z_mm,ax,ay,az\n0,0,0,0,0,2\n")  # axis normalised by the CLI
    points = tmp_path / "points.csv"
    points.write_text("x_mm,y_mm,z_mm\n10,0,0\n0,0,5\n0,0,0\n")
    return seeds, points


def test_json_gives_one_value_per_point(
    capsys: pytest.CaptureFixture[str], case: tuple[Path, Path]
) -> None:
    seeds, points = case
    code, out, _ = _run(
        capsys, "dose", "tg43", "--seeds", seeds, "--points", points, "--sk-u", 1, "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert len(result["dose_rate_cgy_per_h"]) == 3 and "total_dose_gy" not in result
    assert result["dose_rate_cgy_per_h"][0] == pytest.approx(0.965, rel=1e-9)
    assert result["dose_rate_cgy_per_h"][1] == pytest.approx(1.52407, rel=1e-5)
    assert result["inside_seed"] == [False, False, True]
    code, out, _ = _run(
        capsys, "dose", "tg43", "--seed-data", "6711", "--seeds", seeds, "--points", points,
        "--sk-u", 1, "--model", "1d-point", "--total", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert result["dose_rate_cgy_per_h"][0] == pytest.approx(0.91096, rel=1e-4)
    assert result["total_dose_gy"][0] == pytest.approx(0.91096 * 2056.7 / 100, rel=1e-4)


def test_table_output(capsys: pytest.CaptureFixture[str], case: tuple[Path, Path]) -> None:
    seeds, points = case
    code, out, err = _run(
        capsys, "dose", "tg43", "--seeds", seeds, "--points", points, "--sk-u", 1, "--total"
    )
    assert code == 0
    assert "0.965" in out and "19.85" in out
    assert "1 point(s) lie inside a seed capsule (rows 4)" in err


@pytest.mark.parametrize(
    ("seeds_text", "points_text", "message"),
    [
        ("x_mm,y_mm,z_mm,ax,ay\n0,0,0,0,0\n", None, "seeds.csv, line 1: missing column.*az"),
        ("x_mm,y_mm,z_mm,ax,ay,az\n0,0,zero,0,0,1\n", None, "line 2, column z_mm.*'zero'"),
        ("x_mm,y_mm,z_mm,ax,ay,az\n0,0,0,0,0,1\n1,1,1,0,0,0\n", None, "line 3.*axis is zero"),
        (None, "x_mm,y_mm\n1,2\n", "points.csv, line 1: missing column.*z_mm"),
        (None, "x_mm,y_mm,z_mm\n1,2,\n", "points.csv, line 2, column z_mm"),
        (None, "x_mm,y_mm,z_mm\n", "points.csv: no data rows"),
    ],
)
def test_bad_csv_is_refused_with_row_and_column(
    capsys: pytest.CaptureFixture[str],
    case: tuple[Path, Path],
    seeds_text: str | None,
    points_text: str | None,
    message: str,
) -> None:
    seeds, points = case
    if seeds_text is not None:
        seeds.write_text(seeds_text)
    if points_text is not None:
        points.write_text(points_text)
    code, _, err = _run(capsys, "dose", "tg43", "--seeds", seeds, "--points", points, "--sk-u", 1)
    assert code == ExitCode.BAD_INPUT
    import re

    assert re.search(message, err), err


def test_bad_options(capsys: pytest.CaptureFixture[str], case: tuple[Path, Path]) -> None:
    seeds, points = case
    code, _, err = _run(capsys, "dose", "tg43", "--seeds", seeds, "--points", points, "--sk-u", -1)
    assert code == ExitCode.USAGE and "--sk-u" in err
    code, _, err = _run(
        capsys, "dose", "tg43", "--seeds", seeds, "--points", points, "--sk-u", 1, "--model", "3d"
    )
    assert code == ExitCode.USAGE and "'2d', '1d-line', '1d-point'" in err
    code, _, err = _run(
        capsys, "dose", "tg43", "--seeds", seeds, "--points", points, "--sk-u", 1,
        "--seed-data", "nonexistent",
    )  # fmt: skip
    assert code == ExitCode.IO and "neither a built-in model" in err


def test_postimplant_finds_seeds_and_writes_the_delivered_dose(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    import numpy as _np

    from seldinger.imaging import Volume
    from seldinger.io import read_volume, write_volume

    shape = (60, 60, 24)
    affine = _np.diag([1.0, 1.0, 2.5, 1.0])
    ct = _np.full(shape, 40, dtype=_np.int16)
    centres = [(20, 20, 10), (40, 20, 10), (20, 40, 14), (40, 40, 14)]
    for i, j, k in centres:  # 4.5 mm seeds along L, bloomed to ~3 x 2 x 1 voxels
        ct[i - 2 : i + 3, j - 1 : j + 1, k] = 3000
    write_volume(Volume(ct, affine), tmp_path / "post.nii.gz")
    write_volume(Volume(_np.ones(shape, _np.uint8), affine), tmp_path / "region.nii.gz")
    target = _np.zeros(shape, _np.uint8)
    target[18:43, 18:43, 9:16] = 1
    write_volume(Volume(target, affine), tmp_path / "target.nii.gz")
    out = tmp_path / "dose.nii.gz"
    args = ["dose", "postimplant", tmp_path / "post.nii.gz", "--region", tmp_path / "region.nii.gz"]
    args += ["--sk-u", "0.8", "--target", tmp_path / "target.nii.gz", "--out", out, "--json"]
    assert main([str(a) for a in args]) == 0
    result = _json.loads(capsys.readouterr().out)
    assert result["n_seeds"] == 4
    found = _np.array(result["seeds_lps_mm"])
    expected = _np.array([[i, j - 0.5, k * 2.5] for i, j, k in centres])
    d = _np.linalg.norm(found[:, None] - expected[None], axis=2)
    assert d.min(axis=0).max() <= 0.3
    dose = read_volume(out).array
    assert dose.shape == shape and float(dose.max()) > 100.0
    assert set(result["metrics"]) >= {"d90_gy", "v100_percent", "v150_percent"}
    assert main([str(a) for a in args]) != 0  # refuses to overwrite without --force
