"""The CLI's plan tables: the margin warning a user reads under `plan ablation`."""

from __future__ import annotations

import numpy as np

from seldinger.app.plan_tables import margin_shortfall
from seldinger.imaging import Volume
from seldinger.planning.margin import assess_margin


def _sphere(radius_mm: float) -> Volume:
    grid = (np.indices((60, 60, 60)) - 30.0) * 1.0
    return Volume(np.sqrt((grid**2).sum(axis=0)) <= radius_mm, np.eye(4))


def test_a_zone_closer_than_the_margin_asked_is_warned_about() -> None:
    tumour = _sphere(10.0)
    # 3.5 mm all round: the whole tumour is inside the zone (coverage 100 %), yet every
    # point of its surface has less than the 5 mm asked.
    close = assess_margin(tumour, _sphere(13.5))
    warning = margin_shortfall(close, 5.0)
    assert warning is not None and warning.startswith("the minimal margin is 3.")
    assert "under the 5 mm asked: 100.0 % of the tumour surface has less than 5 mm" in warning
    assert margin_shortfall(close, 3.0) is None
    assert margin_shortfall(assess_margin(tumour, _sphere(16.5)), 5.0) is None
