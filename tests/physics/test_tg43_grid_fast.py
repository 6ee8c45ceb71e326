"""The tabulated grid path of dose_on_grid agrees with the exact TG-43U1 kernel."""

from __future__ import annotations

import numpy as np

from seldinger.imaging import Volume
from seldinger.physics.tg43 import dose_on_grid, load_seed_data


def test_tabulated_grid_dose_matches_the_exact_formalism() -> None:
    data = load_seed_data("6711")
    rng = np.random.default_rng(5)
    grid = Volume(np.zeros((40, 40, 16), np.float32), np.diag([1.0, 1.0, 2.5, 1.0]))
    seeds = rng.uniform([5, 5, 5], [35, 35, 35], size=(12, 3))
    axes = rng.normal(size=(12, 3))
    axes /= np.linalg.norm(axes, axis=1)[:, None]
    fast = dose_on_grid(grid, seeds, axes, 0.7, data).array
    exact = dose_on_grid(grid, seeds, axes, 0.7, data, exact=True).array
    assert np.max(np.abs(fast - exact) / exact) < 5e-4
