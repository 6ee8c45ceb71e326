"""Segmentation engines: the TotalSegmentator back-end with a stand-in package, refusals."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from reference import LUNG_LOBES, dice, reference_mask
from seldinger.anatomy import (
    EngineUnavailableError,
    TotalSegmentatorEngine,
    get_engine,
    segment,
)
from seldinger.anatomy.errors import AnatomyError
from seldinger.io import read_ct
from shared_paths import ABDOMEN, requires_shared


@pytest.fixture
def fake_totalsegmentator(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A stand-in `totalsegmentator` package whose model 'predicts' the stored labels.

    It mimics the real package's API (python_api.totalsegmentator(input, output, ml=True,
    task=...), map_to_binary.class_map["total"]) and writes totalseg-abdomen's model labels,
    so the engine's mapping is checked against the same labels.
    """
    package = tmp_path / "site" / "totalsegmentator"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "python_api.py").write_text(
        textwrap.dedent(
            f"""
            import shutil
            CALLS = []
            def totalsegmentator(input, output, ml=False, task="total", fast=False, quiet=False):
                CALLS.append(dict(input=str(input), task=task, ml=ml, fast=fast))
                shutil.copy({str(ABDOMEN / "model_labels.nii.gz")!r}, output)
            """
        )
    )
    (package / "map_to_binary.py").write_text(
        "import json, pathlib\n"
        f"_names = json.loads(pathlib.Path({str(ABDOMEN / 'model_labels.json')!r}).read_text())\n"
        "class_map = {'total': {int(k): v for k, v in _names.items()}}\n"
    )
    home = tmp_path / "tshome"
    (home / "nnunet" / "results" / "Dataset291_TotalSegmentator_part1_organs_1559subj").mkdir(
        parents=True
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(home))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    for name in [m for m in sys.modules if m.startswith("totalsegmentator")]:
        monkeypatch.delitem(sys.modules, name)
    yield home


@requires_shared
def test_totalsegmentator_labels_map_onto_our_structures(fake_totalsegmentator) -> None:
    ct = read_ct(ABDOMEN / "ct.nii.gz").volume
    anatomy = segment(
        ct, ["lung_left", "lung_right", "liver", "bones", "body"], engine="totalsegmentator"
    )
    assert anatomy.engine == "totalsegmentator"
    assert np.array_equal(anatomy["liver"].array, reference_mask(ABDOMEN, "liver"))
    lungs = anatomy["lung_left"].array | anatomy["lung_right"].array
    assert np.array_equal(lungs, reference_mask(ABDOMEN, *LUNG_LOBES))
    assert dice(anatomy["bones"].array, reference_mask(ABDOMEN, "vertebrae_", "hip_")) > 0.5
    assert anatomy["body"].array.sum() > 0  # not in the model's task: classical
    assert "from TotalSegmentator: bones, liver, lung_left, lung_right" in anatomy.notes[0]
    api = sys.modules["totalsegmentator.python_api"]
    assert api.CALLS[0]["task"] == "total" and api.CALLS[0]["ml"] is True


def test_totalsegmentator_without_weights_refuses_to_run(
    fake_totalsegmentator, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "empty"))
    with pytest.raises(EngineUnavailableError, match="never downloads weights"):
        TotalSegmentatorEngine().check_available()
    assert not (tmp_path / "empty").exists()


def test_totalsegmentator_missing_says_what_to_install(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "totalsegmentator" else real(name, *a),
    )
    with pytest.raises(EngineUnavailableError, match="pip install TotalSegmentator"):
        get_engine("totalsegmentator").check_available()


def test_unknown_engine() -> None:
    with pytest.raises(AnatomyError, match="choose from classical, totalsegmentator"):
        get_engine("monai")
