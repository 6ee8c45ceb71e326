"""Seed loading optimisers on hand-made influence matrices: the goals are counts of points."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.planning.seeds.loading import (
    AnnealWeights,
    anneal_loading,
    greedy_loading,
    loading_cost,
)


def _line_case(n_candidates: int = 40, n_points: int = 400) -> tuple[np.ndarray, ...]:
    """Points on a 40 mm segment, candidates every 1 mm along it; 1/(r^2 + 4) falloff."""
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0.0, 40.0, n_points))
    cand = np.linspace(0.5, 39.5, n_candidates)
    d = (100.0 / ((x[None, :] - cand[:, None]) ** 2 + 4.0)).astype(np.float32)
    pos = np.stack([cand, np.zeros_like(cand), np.zeros_like(cand)], axis=1)
    owner = np.arange(n_candidates, dtype=np.int64) // 5  # 8 needles of 5 positions
    return d, pos, owner


def test_greedy_meets_v100_and_d90_counts() -> None:
    d, _, owner = _line_case()
    no_oar = np.zeros((d.shape[0], 0), dtype=np.float32)
    loaded = greedy_loading(d, no_oar, np.zeros(0), owner, 20.0, 1.0, 96.0)
    assert loaded is not None
    dose = d[loaded].sum(axis=0, dtype=np.float64)
    assert np.mean(dose >= 20.0) >= 0.96
    assert np.quantile(dose, 0.1) >= 20.0 - 1e-9  # D90 >= Rx
    # unloading leaves nothing superfluous: removing any seed breaks V100
    for j in np.flatnonzero(loaded):
        assert np.mean(dose - d[j] >= 20.0) < 0.96


def test_greedy_reports_unreachable_goals() -> None:
    d, _, owner = _line_case()
    no_oar = np.zeros((d.shape[0], 0), dtype=np.float32)
    assert greedy_loading(d, no_oar, np.zeros(0), owner, 1e5, 1.0, 95.0) is None


def test_organ_limit_excludes_seeds_in_greedy_and_annealing() -> None:
    d, pos, owner = _line_case()
    # an organ point at x = 45 mm: seeds near the right end would overdose it
    organ = (100.0 / ((45.0 - pos[:, 0]) ** 2 + 4.0)).astype(np.float32)[:, None]
    free = greedy_loading(d, organ, np.array([np.inf]), owner, 20.0, 1.0, 90.0)
    assert free is not None
    limit = 0.8 * float(organ[free].sum())
    kept = greedy_loading(d, organ, np.array([limit]), owner, 20.0, 1.0, 90.0)
    assert kept is not None and float(organ[kept].sum()) <= limit
    shell = np.zeros((d.shape[0], 0), dtype=np.float32)
    args = (d, shell, organ, np.array([limit]), owner)
    annealed = anneal_loading(kept, *args, pos, 20.0, 1.0, 90.0, 60.0, iterations=5000)
    assert float(organ[annealed].sum()) <= limit


def test_cost_counts_goals_seeds_and_needles() -> None:
    d, _, owner = _line_case()
    empty = np.zeros((d.shape[0], 0), dtype=np.float32)
    w = AnnealWeights(hot_per_percent=0.0, shell_per_percent=0.0)
    one = np.zeros(d.shape[0], dtype=bool)
    one[[0, 1]] = True  # two seeds on needle 0
    dose = d[one].sum(axis=0, dtype=np.float64)
    v100 = 100.0 * np.mean(dose >= 20.0)
    expected = w.hard_per_percent * (
        max(0.0, np.ceil(0.95 * 400) - np.count_nonzero(dose >= 20.0)) / 4.0
        + max(0.0, np.ceil(0.9 * 400) - np.count_nonzero(dose >= 20.0)) / 4.0
    )
    expected += w.seed * 2 + w.needle * 1
    cost = loading_cost(one, d, empty, empty, np.zeros(0), owner, 20.0, 1.0, 95.0, 100.0, w)
    assert v100 < 95.0
    assert cost == pytest.approx(expected)


def test_annealing_lowers_the_hot_volume_the_greedy_leaves() -> None:
    d, pos, owner = _line_case()
    empty = np.zeros((d.shape[0], 0), dtype=np.float32)
    start = greedy_loading(d, empty, np.zeros(0), owner, 20.0, 1.0, 96.0)
    assert start is not None
    dose0 = d[start].sum(axis=0, dtype=np.float64)
    v150_greedy = 100.0 * np.mean(dose0 >= 30.0)
    goal = v150_greedy - 10.0  # demand clearly less hot volume than the greedy gives
    args = (d, empty, empty, np.zeros(0), owner)
    best = anneal_loading(start, *args, pos, 20.0, 1.0, 96.0, goal, iterations=20_000, seed=1)
    dose = d[best].sum(axis=0, dtype=np.float64)
    assert np.mean(dose >= 20.0) >= 0.96  # the hard goal still holds
    assert 100.0 * np.mean(dose >= 30.0) < v150_greedy
    assert loading_cost(best, *args, 20.0, 1.0, 96.0, goal) < loading_cost(
        start, *args, 20.0, 1.0, 96.0, goal
    )
    # reproducible from its seed
    again = anneal_loading(start, *args, pos, 20.0, 1.0, 96.0, goal, iterations=20_000, seed=1)
    assert np.array_equal(best, again)


def test_loading_shape_is_checked() -> None:
    d, pos, owner = _line_case()
    empty = np.zeros((d.shape[0], 0), dtype=np.float32)
    with pytest.raises(ValueError, match="one flag per candidate"):
        anneal_loading(
            np.zeros(3, dtype=bool), d, empty, empty, np.zeros(0), owner, pos, 20.0, 1.0, 95, 60
        )
