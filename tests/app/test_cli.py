"""The `seldinger` CLI: the `info --json` contract, conversions, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.io import read_ct
from shared_paths import ABDOMEN, LIDC, requires_shared

CONTRACT_KEYS = {
    "shape",
    "spacing_mm",
    "affine",
    "orientation",
    "hu_min",
    "hu_max",
    "modality",
    "series_uid",
}


def _info(capsys, *args):
    code = main(["info", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@requires_shared
@pytest.mark.parametrize(
    "path", [LIDC / "dicom", LIDC / "ct.nii.gz", ABDOMEN / "ct.nii.gz", ABDOMEN / "dicom"]
)
def test_info_json_contract(capsys, path):
    info = _info(capsys, path)
    assert info.keys() >= CONTRACT_KEYS
    affine = np.array(info["affine"])
    assert affine.shape == (4, 4)
    assert len(info["shape"]) == 3 and len(info["spacing_mm"]) == 3
    assert len(info["orientation"]) == 3
    assert info["hu_min"] < info["hu_max"]
    if path.is_dir():
        assert info["modality"] == "CT"
    else:
        assert info["series_uid"] is None


@requires_shared
def test_info_json_lidc_values(capsys):
    info = _info(capsys, LIDC / "dicom")
    assert info["shape"] == [512, 512, 16]
    assert info["spacing_mm"] == pytest.approx([0.703125, 0.703125, 2.5])
    assert info["orientation"] == "LPS"
    assert info["affine"][0][3] == pytest.approx(-166.0)
    assert info["affine"][2][3] == pytest.approx(-132.5)
    assert info["series_uid"].endswith("179049373636438705059720603192")


@requires_shared
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_convert_keeps_geometry_and_refuses_overwrite(tmp_path, capsys, suffix):
    out = tmp_path / f"ct{suffix}"
    assert main(["convert", str(LIDC / "dicom"), str(out), "--json"]) == 0
    capsys.readouterr()
    original = read_ct(LIDC / "dicom").volume
    back = read_ct(out).volume
    assert np.array_equal(back.array, original.array)
    assert np.allclose(back.affine, original.affine, atol=1e-4)
    assert main(["convert", str(LIDC / "dicom"), str(out)]) == ExitCode.IO
    assert "--force" in capsys.readouterr().err


def test_bad_input_one_line_error_and_no_output(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(empty), str(out)]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no files" in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        main(["--debug", "info", str(tmp_path / "missing")])


def test_help_teaches():
    result = subprocess.run(
        [sys.executable, "-m", "seldinger.app.cli", "info", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--series" in result.stdout and "LPS" in result.stdout


def test_console_script_installed():
    script = Path(sys.executable).parent / "seldinger"
    assert script.exists()
    result = subprocess.run(
        [str(script), "info", "/nonexistent.nii.gz"], capture_output=True, text=True
    )
    assert result.returncode == ExitCode.IO  # a missing input file
    assert result.stderr.strip().startswith("error:")


@requires_shared
def test_no_progress_output_when_stderr_is_not_a_terminal(tmp_path):
    """Progress bars are for terminals: piped or logged, stderr holds no blank lines."""
    script = Path(sys.executable).parent / "seldinger"
    out = tmp_path / "ct.nii.gz"
    result = subprocess.run(
        [str(script), "convert", str(LIDC / "dicom"), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "wrote" in result.stdout and "\n\n" not in result.stdout
