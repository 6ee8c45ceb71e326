"""Figure contents a radiologist reads: windows, legends, numbering and colours."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from seldinger.export import seed_figures
from seldinger.export.trajectory_views import (
    BLOCKED_REASON_COLOURS,
    PATH_COLOURS,
    blocked_reason_colour,
    render_paths_axial,
    render_skin_risk_map,
)
from seldinger.export.views import picture_window, render_views
from seldinger.imaging import Volume


def _ct(background_hu: float) -> tuple[Volume, Volume]:
    """A 1 x 1 x 2.5 mm CT of ``background_hu`` with a 40 HU ball, and the ball's mask."""
    shape = (60, 60, 24)
    affine = np.diag([1.0, 1.0, 2.5, 1.0])
    ijk = np.indices(shape).astype(float)
    r = np.sqrt((ijk[0] - 30) ** 2 + (ijk[1] - 30) ** 2 + ((ijk[2] - 12) * 2.5) ** 2)
    ball = r <= 8.0
    image = np.where(ball, 40.0, background_hu).astype(np.float32)
    return Volume(image, affine), Volume(ball, affine)


@pytest.fixture
def legends(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The handles of every figure legend drawn while the test runs."""
    seen: list[list[Any]] = []
    original = Figure.legend

    def spy(self: Figure, *args: Any, **kwargs: Any) -> Any:
        seen.append(list(kwargs.get("handles", [])))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "legend", spy)
    return seen


def test_window_follows_the_target() -> None:
    liver_ct, liver_lesion = _ct(60.0)
    lung_ct, lung_lesion = _ct(-850.0)
    assert picture_window(liver_ct, liver_lesion) == "soft_tissue"
    assert picture_window(lung_ct, lung_lesion) == "lung"


def test_legend_names_only_drawn_structures(tmp_path: Path, legends: list[list[Any]]) -> None:
    ct, lesion = _ct(60.0)
    far = np.zeros(ct.shape, dtype=bool)
    far[2:5, 2:5, 0:2] = True  # cut by none of the slices through the centre
    centre = ct.index_to_lps(np.array([30.0, 30.0, 12.0]))
    render_views(
        ct,
        centre,
        masks={"lesion": lesion, "emphysema": ct.with_array(far)},
        points={"tip 1": ct.index_to_lps(np.array([33.0, 33.0, 14.0]))},
        lines={"probe 1": (centre + 40.0, centre)},
        outlined=("lesion",),
    )
    labels = [h.get_label() for h in legends[-1]]
    assert "lesion" in labels
    assert "emphysema" not in labels
    # the tip lies on none of the three slices: drawn as a circle, and the legend says so
    tip = next(h for h in legends[-1] if h.get_label().startswith("tip 1"))
    assert tip.get_marker() == "o"
    assert "off the slices" in tip.get_label()
    assert "probe 1" in labels


def test_reason_colours_fixed_across_cases(tmp_path: Path, legends: list[list[Any]]) -> None:
    rng = np.random.default_rng(0)
    angles = rng.uniform(-np.pi, np.pi, 400)
    points = np.stack([100 * np.sin(angles), -100 * np.cos(angles), rng.uniform(0, 50, 400)], 1)
    risk = np.where(np.arange(400) % 3 == 0, np.nan, 1.0)

    def colours(reasons: list[str], name: str) -> dict[str, Any]:
        render_skin_risk_map(
            points,
            risk,
            tmp_path / name,
            centre_lps_mm=(0, 0, 25),
            blocked_reason=[reasons[n % len(reasons)] for n in range(400)],
        )
        return {h.get_label(): h.get_facecolor() for h in legends[-1]}

    one = colours(["too_long", "vessel"], "a.png")
    two = colours(["vessel", "bones", "table_side"], "b.png")
    assert one["blocked: vessel"] == two["blocked: vessel"]
    assert blocked_reason_colour("vessel") == BLOCKED_REASON_COLOURS["vessel"]
    assert blocked_reason_colour("my_organ") == blocked_reason_colour("my_organ")
    known = list(BLOCKED_REASON_COLOURS.values())
    assert len(set(known)) == len(known)


def test_paths_get_distinct_colours_and_given_legend(
    tmp_path: Path, legends: list[list[Any]]
) -> None:
    ct, lesion = _ct(60.0)
    target = ct.index_to_lps(np.array([30.0, 30.0, 12.0]))
    entries = [target + np.array([-25.0, -20.0 + 5 * n, 0.0]) for n in range(8)]
    render_paths_axial(
        ct,
        entries,
        [target] * 8,
        tmp_path / "p.png",
        masks={"lesion": lesion},
        labels=[str(n) for n in range(1, 9)],
        legend_labels=[f"needle {n}: {n} seeds" for n in range(1, 9)],
        emphasise_first=False,
        window="soft_tissue",
    )
    paths = [h for h in legends[-1] if h.get_label().startswith("needle ")]
    assert [h.get_label() for h in paths] == [f"needle {n}: {n} seeds" for n in range(1, 9)]
    assert len({h.get_color() for h in paths}) == 8
    assert len(set(PATH_COLOURS)) == len(PATH_COLOURS)


def test_seed_figures_number_needles_as_the_table_in_the_target_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct, lesion = _ct(60.0)  # a "liver" lesion
    centre = ct.index_to_lps(np.array([30.0, 30.0, 12.0]))
    needles = [
        SimpleNamespace(
            entry_lps_mm=centre + np.array([-25.0, dy, 0.0]),
            seeds_lps_mm=[centre + np.array([k * 5.0 - 5, dy, 0.0]) for k in range(count)],
            direction_lps=(1.0, 0.0, 0.0),
        )
        for dy, count in ((-5.0, 1), (0.0, 3), (5.0, 2))
    ]
    seeds = SimpleNamespace(
        needles=needles,
        seeds_lps_mm=[s for n in needles for s in n.seeds_lps_mm],
        n_seeds=6,
        template="coplanar",
        goals=SimpleNamespace(prescription_gy=120.0),
        metrics=SimpleNamespace(d90_gy=None),
    )
    dose = lesion.with_array(np.where(np.asarray(lesion.array), 130.0, 0.0).astype(np.float32))
    monkeypatch.setattr(seed_figures, "seed_dose_grid", lambda *a: (dose, lesion.array))
    calls: dict[str, Any] = {}

    def views(*args: Any, **kwargs: Any) -> None:
        calls["views"] = kwargs

    def paths(*args: Any, **kwargs: Any) -> Path:
        calls["paths"] = kwargs
        return Path(args[3])

    monkeypatch.setattr(seed_figures, "render_views", views)
    monkeypatch.setattr(seed_figures, "render_paths_axial", paths)
    seed_figures.write_seed_figures(ct, seeds, lesion, None, tmp_path)  # type: ignore[arg-type]
    assert calls["views"]["window"] == "soft_tissue"
    assert calls["paths"]["window"] == "soft_tissue"
    # the needle with most seeds is drawn first, but each keeps its table number
    assert calls["paths"]["labels"] == ["2", "3", "1"]
    assert calls["paths"]["legend_labels"] == [
        "needle 2: 3 seeds",
        "needle 3: 2 seeds",
        "needle 1: 1 seed",
    ]
