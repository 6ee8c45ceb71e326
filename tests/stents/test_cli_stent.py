"""``seldinger stent measure / size / design`` end to end on the tube phantom."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory, tube_phantom):  # type: ignore[no-untyped-def]
    from seldinger.io import write_volume

    folder = tmp_path_factory.mktemp("stent_cli")
    ct, _ = tube_phantom
    write_volume(
        ct.with_array(np.rint(np.asarray(ct.array)).astype(np.int16)), folder / "ct.nii.gz"
    )
    write_volume(
        ct.with_array((np.asarray(ct.array) < -500).astype(np.uint8)), folder / "lumen.nii.gz"
    )
    return folder


def test_measure_prints_the_stenosis_as_json(phantom_files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    figure = phantom_files / "lumen.png"
    code = main(["stent", "measure", str(phantom_files / "ct.nii.gz"), "--lumen-mask",
                 str(phantom_files / "lumen.nii.gz"), "--figure", str(figure), "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    (stenosis,) = result["stenoses"]
    for key in ("reference_diameter_mm", "min_area_mm2", "stenosis_area_percent",
                "stenosis_diameter_percent", "length_mm", "start_lps_mm", "end_lps_mm"):  # fmt: skip
        assert key in stenosis
    assert stenosis["stenosis_area_percent"] == pytest.approx(50.0, abs=3.0)
    assert stenosis["length_mm"] == pytest.approx(20.0, abs=2.0)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_size_and_design_with_mould(phantom_files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ct, mask = str(phantom_files / "ct.nii.gz"), str(phantom_files / "lumen.nii.gz")
    assert main(["stent", "size", ct, "--lumen-mask", mask, "--json"]) == 0
    sizing = json.loads(capsys.readouterr().out)["sizing"]
    assert sizing[0]["choices"][0]["length_mm"] >= sizing[0]["stenosis"]["length_mm"] + 10
    out = phantom_files / "stent.stl"
    code = main(["stent", "design", ct, "--lumen-mask", mask, "--type", "tracheal", "--out",
                 str(out), "--mould", str(phantom_files / "mould"), "--studs", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    check = result["stent"]["print_check"]
    assert check["watertight"] and check["min_wall_mm"] >= 1.0 and check["ok"]
    for name in ("stent.stl", "stent.3mf", "stent.png", "mould/half_a.stl", "mould/half_b.stl",
                 "mould/core.stl"):  # fmt: skip
        assert (phantom_files / name).stat().st_size > 0
    # refuses to overwrite without --force
    again = main(["stent", "design", ct, "--lumen-mask", mask, "--out", str(out)])
    assert again == ExitCode.IO


def test_bad_inputs_are_clear_errors(phantom_files: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from seldinger.io import write_volume

    ct = str(phantom_files / "ct.nii.gz")
    # neither a lumen mask nor an anatomy folder: a usage error
    assert main(["stent", "measure", ct]) == ExitCode.USAGE
    # an anatomy folder without an airway mask
    folder = tmp_path / "anatomy"
    folder.mkdir()
    (folder / "anatomy.json").write_text(json.dumps({"structures": {}, "engine": "classical"}))
    assert main(["stent", "measure", ct, "--anatomy", str(folder)]) == ExitCode.BAD_INPUT
    assert "no airway mask" in capsys.readouterr().err
    # an empty lumen mask
    empty = tmp_path / "empty.nii.gz"
    write_volume(
        _phantom_volume(phantom_files).with_array(
            np.zeros(_phantom_volume(phantom_files).shape, np.uint8)
        ),
        empty,
    )
    assert (
        main(["stent", "measure", ct, "--lumen-mask", str(empty), "--json"]) == ExitCode.BAD_INPUT
    )
    assert "empty" in json.loads(capsys.readouterr().out)["error"]


def _phantom_volume(folder: Path):  # type: ignore[no-untyped-def]
    from seldinger.io import read_volume

    return read_volume(folder / "ct.nii.gz")
