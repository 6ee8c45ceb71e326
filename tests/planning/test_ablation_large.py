"""Large lesions: the coverage bound answers at once, the zone kernels match ``contains``."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume
from seldinger.physics.ablation import Ellipsoid, load_catalogue, zone_ellipsoid
from seldinger.planning.ablation import PlacementError, place_applicators
from seldinger.planning.ablation import placement as placement_module
from seldinger.planning.ablation.kernel import (
    PointCells,
    Zones,
    zone_any,
    zone_counts,
    zone_members,
)
from seldinger.planning.ablation.placement import MAX_PROBES
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

SPACING = (1.0, 1.0, 2.5)
SHAPE = (140, 140, 48)


def _volume(array: np.ndarray) -> Volume:
    return Volume(array, np.diag([*SPACING, 1.0]))


def _case(radius_mm: float) -> tuple[Anatomy, Volume]:
    """Body cylinder (r 62 mm) with a bony block behind; a spherical lesion at its middle."""
    idx = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    x, y, z = (i * s for i, s in zip(idx, SPACING, strict=True))
    body = np.hypot(x - 70, y - 70) <= 62
    bones = body & (y > 110)
    lesion = np.sqrt((x - 70) ** 2 + (y - 70) ** 2 + (z - 60) ** 2) <= radius_mm
    return Anatomy(masks={"body": _volume(body), "bones": _volume(bones)}), _volume(lesion)


@pytest.fixture(scope="module")
def large_case():  # type: ignore[no-untyped-def]
    """A 5 cm lesion (65 mL; 113 mL with its 5 mm margin) and its maps."""
    anatomy, lesion = _case(25.0)
    return RiskMaps.build(anatomy, TrajectoryConstraints(), lesion), lesion


def _no_search(*args: object, **kwargs: object) -> None:
    raise AssertionError("the set search ran although the bound rules every set out")


def test_hopeless_large_lesion_is_refused_by_the_bound(large_case, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Emprint 75 W 5 min: a 35 x 32 mm zone (19 mL) covers at most ~17 % of the target,
    # so 3 (or 4) zones cannot reach 99 % whatever their overlap: no set is searched.
    maps, lesion = large_case
    emprint = load_catalogue().device("emprint")
    monkeypatch.setattr(placement_module, "_search", _no_search)
    with pytest.raises(PlacementError) as caught:
        place_applicators(maps, lesion, emprint, ["75W-5min"], max_probes=3)
    message = str(caught.value)
    assert "no set of up to 3 emprint applicators" in message
    assert "3 together cover at most" in message and "even without overlap" in message
    # More probes cannot help: the advice says so rather than suggest --max-probes alone.
    assert "Even 4 applicators, the most --max-probes allows" in message
    assert "larger zones" in message and "--margin-mm" in message
    assert "other settings (without --setting)" in message


def test_the_cap_is_named_when_max_probes_is_at_it(large_case, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    maps, lesion = large_case
    emprint = load_catalogue().device("emprint")
    monkeypatch.setattr(placement_module, "_search", _no_search)
    with pytest.raises(PlacementError, match="4 applicators are the most --max-probes allows"):
        place_applicators(maps, lesion, emprint, ["75W-5min"], max_probes=4)


def test_bound_is_sound_where_more_probes_may_help() -> None:
    # A 20 x 20 x 36 mm lesion: one 36 x 42 mm zone falls short, the bound allows 2, and the
    # advice is to allow more probes.
    anatomy, lesion = _case(10.0)
    stretched = lesion.array.copy()
    idx = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    x, y, z = (i * s for i, s in zip(idx, SPACING, strict=True))
    stretched = np.sqrt((x - 70) ** 2 + (y - 70) ** 2 + ((z - 60) / 1.8) ** 2) <= 10.0
    lesion = _volume(stretched)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    emprint = load_catalogue().device("emprint")
    with pytest.raises(PlacementError, match=r"Allow more probes \(--max-probes, at most 4\)"):
        place_applicators(maps, lesion, emprint, ["100W-10min"], max_probes=1)
    assert len(place_applicators(maps, lesion, emprint, ["100W-10min"]).applicators) >= 2


def test_zone_kernels_agree_with_contains() -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(-40.0, 40.0, size=(20000, 3))
    # Points exactly on a surface count as inside, as for Ellipsoid.contains.
    points[:3] = [[0.0, 0.0, 21.0], [0.0, 18.0, 0.0], [-18.0, 0.0, 0.0]]
    spec = load_catalogue().device("emprint").setting("100W-10min").zone
    units = rng.normal(size=(5, 3))
    units /= np.linalg.norm(units, axis=1)[:, None]
    units[0] = [0.0, 0.0, 1.0]
    frames = [zone_ellipsoid(np.zeros(3), u, spec) for u in units]
    centres = rng.uniform(-30.0, 30.0, size=(40, 3))
    centres[0] = 0.0
    frame = rng.integers(0, len(units), size=len(centres))
    frame[0] = 0
    zones = Zones(
        centres, frame, np.array([f.axes for f in frames]), np.array([f.radii_mm for f in frames])
    )
    expected = np.array(
        [
            Ellipsoid(c, frames[f].axes, frames[f].radii_mm).contains(points)
            for c, f in zip(centres, frame, strict=True)
        ]
    )
    assert expected[0, :3].all()
    cells = PointCells.build(points)
    skip = rng.random(len(points)) < 0.3
    inside, fresh = zone_counts(cells, zones, skip)
    np.testing.assert_array_equal(inside, expected.sum(axis=1))
    np.testing.assert_array_equal(fresh, (expected & ~skip).sum(axis=1))
    np.testing.assert_array_equal(zone_members(cells, zones), expected)
    np.testing.assert_array_equal(zone_any(cells, zones), expected.any(axis=1))
    far = PointCells.build(points[np.abs(points).max(axis=1) > 39.0] + 500.0)
    assert not zone_any(far, zones).any()
    assert zone_counts(PointCells.build(np.zeros((0, 3))), zones)[0].tolist() == [0] * 40


def test_the_command_lines_probe_cap_is_the_planners() -> None:
    from typing import get_args

    from seldinger.app.cli_plan import MaxProbesOption

    option = get_args(MaxProbesOption)[1]
    assert option.max == MAX_PROBES
