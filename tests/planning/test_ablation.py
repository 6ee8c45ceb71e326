"""Ablation placement on synthetic anatomy with known geometry; errors; heat sinks."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume
from seldinger.physics.ablation import UnknownDeviceError, UnknownSettingError, load_catalogue
from seldinger.planning.ablation import (
    PlacementError,
    heat_sinks,
    place_applicators,
    plan_ablation,
)
from seldinger.planning.ablation.placement import _spacing_ok
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints, evaluate_path

SPACING = (1.0, 1.0, 2.5)
SHAPE = (140, 140, 48)
CENTRE_LPS = np.array([70.0, 70.0, 60.0])


def _grid() -> tuple[np.ndarray, ...]:
    idx = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    return tuple(i * s for i, s in zip(idx, SPACING, strict=True))


def _volume(array: np.ndarray) -> Volume:
    return Volume(array, np.diag([*SPACING, 1.0]))


def _case(radius_mm: float, stretch_s: float = 1.0) -> tuple[Anatomy, Volume]:
    """Body cylinder (r 62 mm) with a bony block behind; a spherical (or S-stretched) lesion."""
    x, y, z = _grid()
    body = np.hypot(x - 70, y - 70) <= 62
    bones = body & (y > 110)  # the back: paths come from the front and sides
    r = np.sqrt((x - 70) ** 2 + (y - 70) ** 2 + ((z - 60) / stretch_s) ** 2)
    lesion = r <= radius_mm
    anatomy = Anatomy(masks={"body": _volume(body), "bones": _volume(bones)})
    return anatomy, _volume(lesion)


@pytest.fixture(scope="module")
def emprint():  # type: ignore[no-untyped-def]
    return load_catalogue().device("emprint")


def test_small_lesion_takes_one_probe_with_its_margin(emprint) -> None:  # type: ignore[no-untyped-def]
    anatomy, lesion = _case(8.0)
    result = plan_ablation(anatomy, lesion, "emprint", ["100W-10min"], margin_mm=5.0)
    placement = result.placement
    assert len(placement.applicators) == 1
    assert placement.target_coverage_percent >= 99.0
    assert placement.lesion_coverage_percent == pytest.approx(100.0, abs=1e-9)
    # Emprint 100 W 10 min: 36 mm across, centred 11.6 mm behind the tip; the lesion
    # (r 8 mm) sits inside with at least 18 - 8 - (centring error) mm to spare.
    assert result.margin.min_margin_mm >= 5.0
    a = placement.applicators[0]
    assert np.linalg.norm(np.asarray(a.zone.centre_lps_mm) - CENTRE_LPS) <= 6.0
    tip_to_centre = np.subtract(a.zone.centre_lps_mm, a.tip_lps_mm)
    assert np.dot(tip_to_centre, a.direction_lps) == pytest.approx(-11.6, abs=1e-6)
    # The probe path, checked by the trajectory planner's own rules, is safe.
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    assert evaluate_path(maps, a.entry_lps_mm, a.tip_lps_mm, reach_far_side=False).safe
    assert result.to_section("lesion").n_applicators == 1


def test_long_lesion_needs_more_probes_and_says_so(emprint) -> None:  # type: ignore[no-untyped-def]
    # 20 x 20 x 36 mm (S): with 5 mm of margin 46 mm long, beyond one 36 x 42 mm zone.
    anatomy, lesion = _case(10.0, stretch_s=1.8)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    with pytest.raises(PlacementError, match="max-probes"):
        place_applicators(maps, lesion, emprint, ["100W-10min"], max_probes=1)
    result = place_applicators(maps, lesion, emprint, ["100W-10min"], max_probes=3)
    assert len(result.applicators) >= 2
    assert result.target_coverage_percent >= 99.0
    tips = np.array([a.tip_lps_mm for a in result.applicators])
    assert (
        np.min(np.linalg.norm(tips[:, None] - tips[None], axis=2) + 1e9 * np.eye(len(tips))) >= 5.0
    )


def test_the_fewest_probes_of_the_biggest_setting(emprint) -> None:  # type: ignore[no-untyped-def]
    anatomy, lesion = _case(8.0, stretch_s=1.8)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    small = place_applicators(maps, lesion, emprint, ["75W-5min"], max_probes=4)
    big = place_applicators(maps, lesion, emprint, ["150W-10min"])
    assert len(big.applicators) <= len(small.applicators)
    both = place_applicators(maps, lesion, emprint, ["75W-5min", "150W-10min"])
    assert len(both.applicators) == len(big.applicators)


def test_bad_inputs_are_refused(emprint) -> None:  # type: ignore[no-untyped-def]
    anatomy, lesion = _case(8.0)
    with pytest.raises(UnknownDeviceError, match="emprint"):
        plan_ablation(anatomy, lesion, "no-such-probe")
    with pytest.raises(UnknownSettingError, match="100W-10min"):
        plan_ablation(anatomy, lesion, "emprint", ["999W"])
    with pytest.raises(ValueError, match="empty"):
        plan_ablation(anatomy, lesion.with_array(np.zeros(SHAPE, bool)), "emprint")
    other = Volume(lesion.array, np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"geometr|grid|spacing"):
        plan_ablation(anatomy, other, "emprint")
    maps = RiskMaps.build(anatomy, TrajectoryConstraints())
    with pytest.raises(ValueError, match="without the lesion"):
        place_applicators(maps, lesion, emprint)


def test_heat_sink_flags_a_large_vessel_near_the_zone() -> None:
    x, y, z = _grid()
    zone = _volume(np.sqrt((x - 70) ** 2 + (y - 70) ** 2 + (z - 60) ** 2) <= 15)
    near = _volume(np.hypot(x - 92, y - 70) <= 2.5)  # 5 mm wide, 4.5-9.5 mm from the zone
    far = _volume(np.hypot(x - 100, y - 70) <= 2.5)  # 12.5 mm away
    thin = _volume(np.hypot(x - 88, y - 70) <= 0.9)  # close but under 3 mm
    found = heat_sinks(zone, {"near": near, "far": far, "thin": thin})
    assert [h.vessel for h in found] == ["near"]
    assert found[0].distance_mm == pytest.approx(92 - 2.5 - 70 - 15, abs=1.0)
    assert found[0].diameter_mm >= 3.0


def test_ire_spacing_rule(emprint) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from seldinger.physics.ablation import Modality

    anatomy, lesion = _case(8.0)
    result = plan_ablation(anatomy, lesion, "emprint", ["100W-10min"])
    a = result.placement.applicators[0]
    shifted = replace(
        a,
        probes_tip_lps_mm=tuple(tuple(np.add(p, (15.0, 0.0, 0.0))) for p in a.probes_tip_lps_mm),
    )
    far = replace(
        a,
        probes_tip_lps_mm=tuple(tuple(np.add(p, (40.0, 0.0, 0.0))) for p in a.probes_tip_lps_mm),
    )
    assert _spacing_ok(a, shifted, Modality.IRE)
    assert not _spacing_ok(a, far, Modality.IRE)
    assert not _spacing_ok(a, a, Modality.IRE)  # 0 mm apart


@pytest.mark.parametrize(
    ("device", "setting", "n_probes", "spacing_mm"),
    [("nanoknife", "pair-15mm-2250V", 2, 15.0), ("cryo-littrup-2.4mm", "3probes-20mm", 3, 20.0)],
)
def test_probe_clusters_keep_their_spacing_and_each_probe_path_is_safe(
    device: str, setting: str, n_probes: int, spacing_mm: float
) -> None:
    anatomy, lesion = _case(6.0)
    result = plan_ablation(anatomy, lesion, device, [setting], margin_mm=3.0, max_probes=3)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    for a in result.placement.applicators:
        tips = np.asarray(a.probes_tip_lps_mm)
        assert len(tips) == n_probes
        gaps = np.linalg.norm(tips[:, None] - tips[None], axis=2)[np.triu_indices(n_probes, 1)]
        assert gaps.min() == pytest.approx(spacing_mm, abs=1e-6)
        for entry, tip in zip(a.probes_entry_lps_mm, a.probes_tip_lps_mm, strict=True):
            # parallel probes
            u = np.subtract(tip, entry) / np.linalg.norm(np.subtract(tip, entry))
            assert np.dot(u, a.direction_lps) == pytest.approx(1.0, abs=1e-9)
            assert evaluate_path(maps, entry, tip, reach_far_side=False).safe
    assert result.placement.target_coverage_percent >= 99.0
    assert (not result.heat_sinks) or result.modality != "ire"


def test_placement_around_a_probe_already_in_place(emprint) -> None:  # type: ignore[no-untyped-def]
    from seldinger.planning.ablation import applicator_at

    anatomy, lesion = _case(8.0)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    planned = place_applicators(maps, lesion, emprint, ["100W-10min"]).applicators[0]
    # In place where planned: nothing to add, the same coverage.
    same = applicator_at(maps, emprint, "100W-10min", planned.tip_lps_mm, planned.direction_lps)
    again = place_applicators(maps, lesion, emprint, ["100W-10min"], fixed=[same])
    assert len(again.applicators) == 1 and again.target_coverage_percent >= 99.0
    np.testing.assert_allclose(again.applicators[0].tip_lps_mm, planned.tip_lps_mm)
    # 8 mm off sideways: the probe stays, one more is added and the coverage comes back.
    u = np.asarray(planned.direction_lps)
    side = np.cross(u, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    off = applicator_at(maps, emprint, "100W-10min", np.add(planned.tip_lps_mm, 8.0 * side), u)
    assert off.path.safe
    fixed = place_applicators(maps, lesion, emprint, ["100W-10min"], fixed=[off])
    assert fixed.applicators[0].tip_lps_mm == off.tip_lps_mm
    assert fixed.applicators[0].coverage_percent < 99.0
    assert len(fixed.applicators) == 2 and fixed.target_coverage_percent >= 99.0
    # With no room for another probe the error says what the probe in place covers.
    with pytest.raises(PlacementError, match="in place"):
        place_applicators(maps, lesion, emprint, ["100W-10min"], max_probes=1, fixed=[off])
