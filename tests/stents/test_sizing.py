"""Stent sizing from the catalogue: oversize, length, warnings."""

from __future__ import annotations

import dataclasses

import pytest

from seldinger.stents.sizing import (
    AIRWAY_MARGIN_MM,
    AIRWAY_OVERSIZE_PERCENT,
    load_catalogue,
    size_stents,
)


def test_the_catalogue_is_sourced() -> None:
    stents = load_catalogue()
    kinds = {s.kind for s in stents}
    assert {"silicone_straight", "silicone_y", "sems_covered", "sems_uncovered"} <= kinds
    assert "oesophageal_sems" in kinds
    for s in stents:
        assert s.source and s.confidence in {"S", "U"}
        assert s.diameters_mm and s.lengths_mm
        if s.kind == "oesophageal_sems":
            assert len(s.flare_diameters_mm) == len(s.diameters_mm)


def test_tube_stenosis_is_sized_by_the_rules(tube_survey) -> None:  # type: ignore[no-untyped-def]
    (sizing,) = size_stents(tube_survey)
    ref = sizing.stenosis.reference_diameter_mm
    lesion = sizing.stenosis.length_mm
    assert sizing.wanted_diameter_mm == pytest.approx(
        (ref * (1 + AIRWAY_OVERSIZE_PERCENT[0] / 100), ref * (1 + AIRWAY_OVERSIZE_PERCENT[1] / 100))
    )
    best = sizing.choices[0]
    assert 10.0 - 2.0 <= best.oversize_percent <= 20.0 + 2.0  # nominal sizes, 0.25 mm slack
    assert best.length_mm >= lesion + 2 * AIRWAY_MARGIN_MM[0]
    assert {c.kind for c in sizing.choices} >= {"silicone_straight", "sems_covered"}


def test_a_stent_near_the_carina_is_warned_and_offered_a_y(y_survey) -> None:  # type: ignore[no-untyped-def]
    from seldinger.stents.lumen import Stenosis

    carina = y_survey.carina_path_mm
    assert carina is not None
    lesion = Stenosis(
        label="trachea", reference_diameter_mm=18.0, reference_area_mm2=254.5,
        min_area_mm2=100.0, min_diameter_mm=11.0, stenosis_area_percent=60.7,
        stenosis_diameter_percent=37.3, length_mm=10.0, start_lps_mm=(0.0, 0.0, 15.0),
        end_lps_mm=(0.0, 0.0, 5.0), narrowest_lps_mm=(0.0, 0.0, 10.0),
        start_path_mm=carina - 15.0, end_path_mm=carina - 5.0, occluded=False,
        distance_from_carina_mm=5.0, distance_from_trachea_top_mm=carina - 15.0,
    )  # fmt: skip
    survey = dataclasses.replace(y_survey, stenoses=(lesion,))
    (sizing,) = size_stents(survey)
    kinds = {c.kind for c in sizing.choices}
    assert "silicone_y" in kinds
    straight = [c for c in sizing.choices if c.kind == "silicone_straight"]
    assert any("carina" in w for c in straight for w in c.warnings)
