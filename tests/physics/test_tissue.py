"""Tissue table, overrides and per-voxel maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.errors import BadInputError, MissingFileError
from seldinger.physics.tissue import TISSUE_FIELDS, load_tissues, property_maps


def test_shipped_tissues_have_every_structure_with_sources() -> None:
    tissues = load_tissues()
    for name in ("tumour", "liver", "lung", "blood", "fat", "muscle", "bone"):
        assert name in tissues and tissues[name].source
    liver = tissues["liver"]
    assert liver.perfusion_length_m * 1000 == pytest.approx(6.300, abs=1e-3)  # physics.md §2.4
    assert liver.heat_capacity_j_per_m3_k == pytest.approx(1079 * 3540)


def test_tissue_file_overrides_and_adds(tmp_path: Path) -> None:
    file = tmp_path / "tissues.json"
    liver = {field: 1.0 for field in TISSUE_FIELDS}
    file.write_text(json.dumps({"liver": liver, "kidney": liver}), encoding="utf-8")
    tissues = load_tissues(file)
    assert tissues["liver"].density_kg_per_m3 == 1.0
    assert "kidney" in tissues and "blood" in tissues


def test_bad_tissue_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="does not exist"):
        load_tissues(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(BadInputError, match="not valid JSON"):
        load_tissues(broken)
    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps({"liver": {"density_kg_per_m3": 1000}}), encoding="utf-8")
    with pytest.raises(BadInputError, match="lacks"):
        load_tissues(lacking)
    negative = tmp_path / "negative.json"
    values = {field: 1.0 for field in TISSUE_FIELDS} | {"density_kg_per_m3": -1}
    negative.write_text(json.dumps({"liver": values}), encoding="utf-8")
    with pytest.raises(BadInputError, match="density_kg_per_m3 must be"):
        load_tissues(negative)


def test_property_maps_look_up_labels() -> None:
    tissues = load_tissues()
    labels = np.array([0, 1, 1, 0], dtype=np.uint8).reshape(2, 2, 1)
    maps = property_maps(labels, [tissues["liver"], tissues["blood"]])
    assert (
        maps.electrical_conductivity_s_per_m[0, 1, 0]
        == tissues["blood"].electrical_conductivity_s_per_m
    )
    assert maps.perfusion_w_per_m3_k[1, 1, 0] == pytest.approx(
        tissues["liver"].perfusion_w_per_m3_k
    )
    with pytest.raises(BadInputError, match="index"):
        property_maps(labels + 5, [tissues["liver"]])
