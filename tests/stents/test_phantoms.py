"""The issue's analytic phantoms: the tilted stenosed tube, the Y, an occlusion, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.anatomy import AirwayGraph, AnatomyError
from seldinger.errors import BadInputError
from seldinger.stents import measure_airway

TILT_DEG = 20.0


def test_tube_phantom_geometry_is_tilted_on_an_anisotropic_grid(tube_phantom) -> None:  # type: ignore[no-untyped-def]
    ct, tube = tube_phantom
    assert ct.spacing_mm == pytest.approx((0.7, 0.7, 2.5))
    axis = np.subtract(tube.end_lps_mm, tube.start_lps_mm)
    tilt = np.degrees(np.arccos(abs(axis[2]) / np.linalg.norm(axis)))
    assert tilt == pytest.approx(TILT_DEG)


def test_tube_stenosis_50_percent_over_20_mm(tube_survey) -> None:  # type: ignore[no-untyped-def]
    (stenosis,) = tube_survey.stenoses
    assert stenosis.stenosis_area_percent == pytest.approx(50.0, abs=3.0)
    assert stenosis.length_mm == pytest.approx(20.0, abs=2.0)
    assert stenosis.reference_diameter_mm == pytest.approx(18.0, abs=0.3)
    # diameter stenosis of a circle with half the area: 1 - sqrt(0.5)
    assert stenosis.stenosis_diameter_percent == pytest.approx(29.3, abs=2.5)
    # the lesion is centred on the tube (the phantom's origin)
    middle = 0.5 * (np.asarray(stenosis.start_lps_mm) + np.asarray(stenosis.end_lps_mm))
    assert np.linalg.norm(middle) < 1.5


def test_tube_healthy_area_is_the_analytic_one(tube_survey) -> None:  # type: ignore[no-untyped-def]
    profile = tube_survey.profile("trachea")
    ok = profile.sections.status == "ok"
    healthy = ok & (np.abs(profile.path_mm - profile.path_mm.mean()) > 20)
    assert np.median(profile.sections.area_mm2[healthy]) == pytest.approx(np.pi * 81, rel=0.015)


def test_y_phantom_measures_both_bronchi(y_phantom, y_survey) -> None:  # type: ignore[no-untyped-def]
    _, tubes = y_phantom
    summary = {b["label"]: b for b in y_survey.summary()["branches"]}
    assert summary["trachea"]["median_diameter_mm"] == pytest.approx(18.0, abs=0.4)
    assert summary["main_bronchus_right"]["median_diameter_mm"] == pytest.approx(13.0, abs=0.4)
    assert summary["main_bronchus_left"]["median_diameter_mm"] == pytest.approx(11.0, abs=0.4)
    assert y_survey.stenoses == ()
    # the carina is where the analytic tubes meet
    assert np.linalg.norm(y_survey.carina_lps_mm - np.asarray(tubes[0].end_lps_mm)) < 3.0


def test_an_occlusion_is_crossed_and_measured_as_such() -> None:
    from seldinger.anatomy.airway_graph import airway_graph
    from seldinger.stents.phantoms import TubeSegment, phantom_ct

    r = 9.0
    # air above and below a 12 mm plug of tissue, lower in the tube (the upper piece is the
    # larger one the segmentation keeps)
    tube = TubeSegment((0.0, 0.0, 60.0), (0.0, 0.0, -120.0), ((0.0, r),))
    ct = phantom_ct([tube], (50, 50, 56), (0.8, 0.8, 2.0), (-20.0, -20.0, -100.0))
    array = np.asarray(ct.array).copy()
    k = np.arange(ct.shape[2]) * 2.0 - 100.0
    plug = (k >= -62.0) & (k < -50.0)
    array[:, :, plug] = 40.0
    ct = ct.with_array(array)
    mask = ct.with_array(array < -500)
    graph = airway_graph(ct, np.asarray(mask.array))
    survey = measure_airway(ct, graph, mask)
    (stenosis,) = survey.stenoses
    assert stenosis.occluded
    assert stenosis.stenosis_area_percent == 100.0
    assert stenosis.length_mm == pytest.approx(12.0, abs=2.5)
    assert any("followed" in note for note in survey.notes)


def test_no_airway_is_a_clear_error(tube_phantom) -> None:  # type: ignore[no-untyped-def]
    from seldinger.anatomy.airway_graph import airway_graph

    ct, _ = tube_phantom
    with pytest.raises(AnatomyError, match="empty"):
        airway_graph(ct, np.zeros(ct.shape, dtype=bool))
    with pytest.raises(BadInputError, match="no trachea"):
        measure_airway(ct, AirwayGraph(branches=(), branch_points_lps_mm=np.zeros((0, 3))))
