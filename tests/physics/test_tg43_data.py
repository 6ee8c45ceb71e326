"""Seed data files: the built-in 6711, a second model with another F grid, malformed files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seldinger.physics.tg43 import (
    dose_rate_cgy_per_h,
    dose_rate_reference_cgy_per_h,
    load_seed_data,
    seed_dose_rate_per_u,
)

#: A made-up seed with its own grids: F on 0-180° at 7 angles and 3 radii, no φ_an table.
OTHER_MODEL: dict[str, Any] = {
    "seed": "test seed (made up; not a real source)",
    "source": "tests/physics/test_tg43_data.py",
    "dose_rate_constant_cGy_per_h_per_U": 1.0,
    "L_cm": 0.4,
    "r0_cm": 1.0,
    "theta0_deg": 90.0,
    "half_life_days": 17.0,
    "gL": {"r_cm": [0.2, 1.0, 3.0, 6.0], "value": [1.1, 1.0, 0.7, 0.3]},
    "F": {
        "r_cm": [0.5, 2.0, 4.0],
        "theta_deg": [0, 15, 45, 90, 135, 165, 180],
        "table_rows_theta": [
            [0.4, 0.5, 0.6],
            [0.7, 0.75, 0.8],
            [0.95, 0.96, 0.97],
            [1.0, 1.0, 1.0],
            [0.9, 0.92, 0.94],
            [0.6, 0.65, 0.7],
            [0.3, 0.35, 0.4],
        ],
    },
}


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(doc))
    return path


def test_builtin_6711_matches_the_shared_reference() -> None:
    data = load_seed_data("6711")
    assert data.dose_rate_constant_cgy_per_h_per_u == 0.965
    assert (data.length_cm, data.r0_cm, data.theta0_deg) == (0.3, 1.0, 90.0)
    assert data.anisotropy_f.shape == (11, 6) and data.theta_symmetric
    assert (data.capsule_length_cm, data.capsule_diameter_cm) == (0.45, 0.08)
    shared = Path(__file__).resolve().parents[3] / "shared" / "reference" / "tg43" / "6711.json"
    if shared.is_file():  # the same numbers as the research copy, read as a user file
        other = load_seed_data(shared)
        np.testing.assert_array_equal(other.anisotropy_f, data.anisotropy_f)
        np.testing.assert_array_equal(other.radial_g, data.radial_g)
        assert other.capsule_length_cm == pytest.approx(0.45)  # default 1.5 L


def test_other_model_with_different_f_grid_loads_and_computes(tmp_path: Path) -> None:
    data = load_seed_data(_write(tmp_path, OTHER_MODEL))
    assert data.anisotropy_f.shape == (7, 3) and not data.theta_symmetric
    assert data.phi_an is None
    # at (r0, θ0) the dose rate per U is Λ
    assert float(seed_dose_rate_per_u(0.0, 1.0, data)) == pytest.approx(1.0, rel=1e-12)
    # not symmetric: θ = 170° uses the 165-180° rows; at r = 2 cm F = 0.65 + (0.35-0.65)/3
    r, theta = 2.0, np.radians(170.0)
    z, y = r * np.cos(theta), r * np.sin(theta)
    expected_f = 0.65 + (0.35 - 0.65) * (5.0 / 15.0)
    g = 1.0 + (0.7 - 1.0) * 0.5
    from seldinger.physics.tg43 import geometry_line_per_cm2

    ratio = float(geometry_line_per_cm2(z, y, 0.4) / geometry_line_per_cm2(0.0, 1.0, 0.4))
    assert float(seed_dose_rate_per_u(z, y, data)) == pytest.approx(
        ratio * g * expected_f, rel=1e-12
    )
    assert float(seed_dose_rate_per_u(-z, y, data)) != pytest.approx(
        float(seed_dose_rate_per_u(z, y, data)), rel=1e-3
    )
    rng = np.random.default_rng(20240611)
    points = rng.uniform(-40, 40, (200, 3))
    seeds = rng.uniform(-10, 10, (3, 3))
    axes = rng.normal(size=(3, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    for model in ("2d", "1d-line", "1d-point"):
        fast = dose_rate_cgy_per_h(points, seeds, axes, [0.5, 1.0, 0.7], data, model)
        slow = dose_rate_reference_cgy_per_h(points, seeds, axes, [0.5, 1.0, 0.7], data, model)
        np.testing.assert_allclose(fast, slow, rtol=1e-12)


def _set(doc: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    parts = field.split(".")
    for part in parts[:-1]:
        node = node[part]
    if value is KeyError:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return out


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("seed", KeyError, "'seed' must be present"),
        ("seed", 3, "'seed' must be a non-empty string"),
        ("source", "", "'source' must be a non-empty string"),
        ("dose_rate_constant_cGy_per_h_per_U", KeyError, "'dose_rate_constant.*present"),
        ("dose_rate_constant_cGy_per_h_per_U", -0.9, "'dose_rate_constant.*greater than 0"),
        ("dose_rate_constant_cGy_per_h_per_U", "0.965", "'dose_rate_constant.*finite number"),
        ("L_cm", 0, "'L_cm' must be a finite number greater than 0"),
        ("r0_cm", None, "'r0_cm' must be a finite number"),
        ("theta0_deg", 120.0, "'theta0_deg'.*at most 90"),
        ("half_life_days", True, "'half_life_days' must be a finite number"),
        ("gL", KeyError, "'gL.r_cm' must be present"),
        ("gL.r_cm", [1.0, 0.5, 2.0], "'gL.r_cm' must be a strictly increasing"),
        ("gL.r_cm", [1.0], "'gL.r_cm' must be a list of at least 2"),
        ("gL.value", [1.0, 1.0, 1.0], "'gL.value' must be 4 positive numbers"),
        ("gL.value", [1.0, "x", 1.0, 1.0], "'gL.value' must be a list of at least 2 finite"),
        ("F.r_cm", [2.0, 0.5, 4.0], "'F.r_cm' must be a strictly increasing"),
        ("F.theta_deg", [0, 15, 45, 90, 135, 165, 170], "'F.theta_deg' must be .* 0 to 90"),
        ("F.theta_deg", [5, 15, 45, 90, 135, 165, 180], "'F.theta_deg' must be"),
        ("F.table_rows_theta", [[1.0, 1.0, 1.0]], "'F.table_rows_theta' must be a list of 7"),
        ("F.table_rows_theta", "1,2", "'F.table_rows_theta' must be a list of 7"),
        ("phi_an", {"r_cm": [1.0, 2.0], "value": [0.9]}, "'phi_an.value' must be 2 positive"),
        ("phi_an", {"value": [0.9]}, "'phi_an.r_cm' must be present"),
        ("capsule_length_cm", -1.0, "'capsule_length_cm' must be a finite number"),
        ("apparent_activity_conversion_U_per_mCi", 0, "'apparent_activity.*greater than 0"),
    ],
)
def test_malformed_field_is_named(tmp_path: Path, field: str, value: Any, expected: str) -> None:
    path = _write(tmp_path, _set(OTHER_MODEL, field, value))
    with pytest.raises(ValueError, match=expected) as caught:
        load_seed_data(path)
    assert str(path) in str(caught.value)


def test_malformed_table_rows(tmp_path: Path) -> None:
    doc = copy.deepcopy(OTHER_MODEL)
    doc["F"]["table_rows_theta"][2] = [0.95, 0.96]
    with pytest.raises(ValueError, match=r"'F.table_rows_theta' must be 7 rows of 3 positive"):
        load_seed_data(_write(tmp_path, doc))
    doc["F"]["table_rows_theta"][2] = [0.95, None, 0.97]
    with pytest.raises(ValueError, match=r"'F.table_rows_theta\[2\]' must be a list"):
        load_seed_data(_write(tmp_path, doc))


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON"):
        load_seed_data(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="top level"):
        load_seed_data(bad)
    with pytest.raises(FileNotFoundError, match="neither a built-in model"):
        load_seed_data(tmp_path / "absent.json")
