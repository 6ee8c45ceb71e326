"""Zone ellipsoids, probe clusters and zone masks: analytic checks and a brute-force reference."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from seldinger.imaging import Volume, reorient
from seldinger.physics.ablation import (
    Ellipsoid,
    Setting,
    ZoneSpec,
    cluster_offsets_mm,
    load_catalogue,
    probe_tips_lps_mm,
    zone_ellipsoid,
    zone_mask,
)

EMPRINT_100W_10MIN = ZoneSpec(length_mm=42.0, width_mm=36.0, centre_offset_mm=-11.6)
# Voxelising a 36 x 42 mm zone on a 0.7 x 0.7 x 2.5 mm grid: volume within 2 %.
VOXEL_VOLUME_RTOL = 0.02


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _ct_grid(shape=(90, 90, 30), spacing=(0.7, 0.7, 2.5), origin=(-31.0, -31.0, -37.0)):  # type: ignore[no-untyped-def]
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return Volume(np.zeros(shape, np.int16), affine)


def _brute_force_mask(reference: Volume, ellipsoids: list[Ellipsoid]) -> np.ndarray:
    """Reference implementation: test every voxel centre of the grid."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in reference.shape], indexing="ij"), -1)
    points = reference.index_to_lps(index)
    inside = np.zeros(reference.shape, bool)
    for ellipsoid in ellipsoids:
        inside |= ellipsoid.contains(points)
    return inside


# --- Ellipsoid ----------------------------------------------------------------------


def test_contains_at_centre_and_just_inside_and_outside_each_pole() -> None:
    rng = np.random.default_rng(20240611)
    axes = _rotation(rng)
    ellipsoid = Ellipsoid(np.array([12.0, -40.0, 7.5]), axes, np.array([21.0, 18.0, 8.5]))
    assert ellipsoid.contains(ellipsoid.centre_lps_mm)
    for axis, radius in zip(axes, ellipsoid.radii_mm, strict=True):
        for sign in (-1.0, 1.0):
            inner = ellipsoid.centre_lps_mm + sign * (radius - 1e-9) * axis
            outer = ellipsoid.centre_lps_mm + sign * (radius + 1e-9) * axis
            assert ellipsoid.contains([inner, outer]).tolist() == [True, False]


def test_volume_and_bounds_are_analytic() -> None:
    rng = np.random.default_rng(7)
    ellipsoid = Ellipsoid(np.array([1.0, 2.0, 3.0]), _rotation(rng), np.array([21.0, 18.0, 8.0]))
    assert ellipsoid.volume_ml == pytest.approx(4 / 3 * math.pi * 21 * 18 * 8 / 1000)
    # bounds: the extremes of densely sampled surface points approach them from inside
    theta, phi = np.meshgrid(np.linspace(0, np.pi, 721), np.linspace(0, 2 * np.pi, 1441))
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    surface = ellipsoid.centre_lps_mm + (unit * ellipsoid.radii_mm) @ ellipsoid.axes
    lo, hi = ellipsoid.bounds_lps_mm()
    assert np.all(surface.reshape(-1, 3).min(0) >= lo - 1e-9)
    assert np.all(surface.reshape(-1, 3).max(0) <= hi + 1e-9)
    np.testing.assert_allclose(surface.reshape(-1, 3).min(0), lo, atol=0.01)
    np.testing.assert_allclose(surface.reshape(-1, 3).max(0), hi, atol=0.01)


def test_ellipsoid_rejects_bad_geometry() -> None:
    with pytest.raises(ValueError, match="orthonormal"):
        Ellipsoid(np.zeros(3), np.diag([1.0, 2.0, 1.0]), np.ones(3))
    with pytest.raises(ValueError, match="radii_mm must be 3 positive"):
        Ellipsoid(np.zeros(3), np.eye(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="centre_lps_mm"):
        Ellipsoid(np.array([0.0, np.nan, 0.0]), np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        Ellipsoid(np.zeros(3), np.eye(3), np.ones(3)).contains([1.0, 2.0])


# --- zone_ellipsoid ---------------------------------------------------------------------


def test_centre_offset_is_behind_the_tip() -> None:
    # Needle going superior (+S, entry below the tip): the centre is 11.6 mm inferior.
    tip = np.array([10.0, 20.0, 30.0])
    zone = zone_ellipsoid(tip, [0.0, 0.0, 1.0], EMPRINT_100W_10MIN)
    np.testing.assert_allclose(zone.centre_lps_mm, [10.0, 20.0, 30.0 - 11.6], atol=1e-12)
    lo, hi = zone.bounds_lps_mm()
    # physics.md §2.5 A: zone z-range -32.5 ... +9.5 mm rel. tip (rounded to 0.1 mm)
    assert (lo[2] - 30.0, hi[2] - 30.0) == pytest.approx((-32.6, 9.4), abs=1e-9)
    np.testing.assert_allclose(hi[:2] - lo[:2], [36.0, 36.0])


def test_direction_is_normalised() -> None:
    a = zone_ellipsoid([0, 0, 0], [1.0, 2.0, -2.0], EMPRINT_100W_10MIN)
    b = zone_ellipsoid([0, 0, 0], [7.0, 14.0, -14.0], EMPRINT_100W_10MIN)
    np.testing.assert_allclose(a.axes[0], [1 / 3, 2 / 3, -2 / 3])
    np.testing.assert_allclose(a.centre_lps_mm, b.centre_lps_mm)
    np.testing.assert_allclose(a.axes, b.axes)
    np.testing.assert_allclose(a.centre_lps_mm, -11.6 * a.axes[0])
    assert np.linalg.det(a.axes) == pytest.approx(1.0)


def test_width_direction_is_made_orthogonal() -> None:
    zone = ZoneSpec(length_mm=30.0, width_mm=30.0, depth_mm=17.0)
    e = zone_ellipsoid([0, 0, 0], [0, 0, 1], zone, width_direction_lps=[1.0, 0.0, 0.5])
    np.testing.assert_allclose(e.axes, [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(e.radii_mm, [15.0, 15.0, 8.5])


@pytest.mark.parametrize(
    ("direction", "width", "pattern"),
    [
        ([0.0, 0.0, 0.0], None, "direction_lps must be a non-zero"),
        ([np.nan, 0.0, 1.0], None, "direction_lps must be a non-zero"),
        ([0.0, 1.0], None, "direction_lps must be a non-zero"),
        ([0.0, 0.0, 1.0], [0.0, 0.0, -3.0], "parallel to direction_lps"),
        ([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], "width_direction_lps must be a non-zero"),
    ],
)
def test_bad_directions(direction, width, pattern) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=pattern):
        zone_ellipsoid([0, 0, 0], direction, EMPRINT_100W_10MIN, width_direction_lps=width)


def test_bad_tip() -> None:
    with pytest.raises(ValueError, match="tip_lps_mm must be 3 finite"):
        zone_ellipsoid([0, np.inf, 0], [0, 0, 1], EMPRINT_100W_10MIN)


# --- clusters ------------------------------------------------------------------------


@pytest.mark.parametrize("n_probes", [2, 3, 4, 5, 6])
def test_cluster_neighbours_are_spacing_apart(n_probes: int) -> None:
    offsets = cluster_offsets_mm(n_probes, 20.0)
    assert offsets.shape == (n_probes, 2)
    np.testing.assert_allclose(offsets.mean(axis=0), [0.0, 0.0], atol=1e-12)
    # polygon order: consecutive probes (and last-first) are one side apart
    sides = np.linalg.norm(offsets - np.roll(offsets, 1, axis=0), axis=1)
    np.testing.assert_allclose(sides, 20.0)
    distances = [np.linalg.norm(a - b) for a, b in combinations(offsets, 2)]
    assert min(distances) == pytest.approx(20.0)


def test_cluster_literal_layouts() -> None:
    assert cluster_offsets_mm(1, 0.0).tolist() == [[0.0, 0.0]]
    assert cluster_offsets_mm(2, 15.0).tolist() == [[-7.5, 0.0], [7.5, 0.0]]
    r = 20.0 / math.sqrt(3.0)  # triangle circumradius
    np.testing.assert_allclose(
        cluster_offsets_mm(3, 20.0), [[-10.0, -r / 2], [10.0, -r / 2], [0.0, r]], atol=1e-12
    )


@pytest.mark.parametrize(
    ("n_probes", "spacing_mm", "pattern"),
    [(0, 10.0, "1 to 6"), (7, 10.0, "1 to 6"), (2, 0.0, "positive"), (3, math.nan, "positive")],
)
def test_cluster_bad_inputs(n_probes: int, spacing_mm: float, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        cluster_offsets_mm(n_probes, spacing_mm)


def test_probe_tips_of_catalogue_settings() -> None:
    catalogue = load_catalogue()
    tip = np.array([5.0, -3.0, 2.0])
    direction = np.array([0.0, 1.0, 1.0])
    for device in catalogue:
        for setting in device.settings.values():
            tips = probe_tips_lps_mm(tip, direction, setting, width_direction_lps=[1, 0, 0])
            assert tips.shape == (setting.n_probes, 3)
            np.testing.assert_allclose(tips.mean(axis=0), tip, atol=1e-12)
            np.testing.assert_allclose((tips - tip) @ direction, 0.0, atol=1e-12)
            if setting.n_probes > 1:
                nearest = min(np.linalg.norm(a - b) for a, b in combinations(tips, 2))
                assert nearest == pytest.approx(setting.probe_spacing_mm)
    pair = catalogue.device("nanoknife").setting("pair-15mm-2250V")
    tips = probe_tips_lps_mm(tip, direction, pair, width_direction_lps=[1, 0, 0])
    half = np.array([7.5, 0.0, 0.0])
    np.testing.assert_allclose(tips, [tip - half, tip + half])


def test_pair_zone_width_runs_along_the_probes() -> None:
    pair = load_catalogue().device("nanoknife").setting("pair-15mm-2250V")
    e = zone_ellipsoid([0, 0, 0], [0, 0, 1], pair.zone, width_direction_lps=[0, 1, 0])
    tips = probe_tips_lps_mm([0, 0, 0], [0, 0, 1], pair, width_direction_lps=[0, 1, 0])
    np.testing.assert_allclose(tips[:, 1], [-7.5, 7.5])
    lo, hi = e.bounds_lps_mm()
    np.testing.assert_allclose(hi - lo, [17.0, 30.0, 30.0])


def test_setting_needs_spacing_for_clusters() -> None:
    with pytest.raises(ValueError, match="probe_spacing_mm must be a positive"):
        Setting("pair", ZoneSpec(30.0, 30.0), {}, n_probes=2)


# --- zone_mask -----------------------------------------------------------------------


def test_mask_volume_approaches_the_analytic_volume() -> None:
    ct = _ct_grid()
    zone = zone_ellipsoid([1.3, -0.4, 11.0], [1.0, 1.0, 2.0], EMPRINT_100W_10MIN)
    for supersample in (1, 3):
        mask = zone_mask(ct, [zone], supersample=supersample)
        assert mask.array.dtype == bool and mask.shape == ct.shape
        np.testing.assert_array_equal(mask.affine, ct.affine)
        volume_ml = mask.array.sum() * np.prod(ct.spacing_mm) / 1000.0
        assert volume_ml == pytest.approx(zone.volume_ml, rel=VOXEL_VOLUME_RTOL)
        assert not mask.array[[0, -1]].any() and not mask.array[:, :, [0, -1]].any()


def test_mask_equals_brute_force_reference() -> None:
    ct = _ct_grid(shape=(60, 50, 20))
    zones = [
        zone_ellipsoid([0.0, 0.0, 0.0], [0.3, -1.0, 0.4], EMPRINT_100W_10MIN),
        zone_ellipsoid([20.0, 8.0, -5.0], [1.0, 0.0, 0.0], ZoneSpec(25.0, 20.0, 10.0, -7.5)),
    ]  # the second one crosses the grid's edge
    np.testing.assert_array_equal(zone_mask(ct, zones).array, _brute_force_mask(ct, zones))


def test_mask_is_the_same_in_any_axis_order() -> None:
    ct = _ct_grid()
    zone = zone_ellipsoid([1.3, -0.4, 11.0], [1.0, 1.0, 2.0], EMPRINT_100W_10MIN)

    def inside_lps(volume: Volume) -> np.ndarray:
        mask = zone_mask(volume, [zone])
        points = volume.index_to_lps(np.argwhere(mask.array))
        return points[np.lexsort(points.T[::-1])]

    expected = inside_lps(ct)
    assert len(expected) > 1000
    for code in ("RAS", "PIR"):
        reoriented = reorient(ct, code)
        assert reoriented.orientation == code
        np.testing.assert_allclose(inside_lps(reoriented), expected, atol=1e-9)


def test_union_of_two_overlapping_zones() -> None:
    ct = _ct_grid()
    a = zone_ellipsoid([0.0, 0.0, 0.0], [0, 0, 1], ZoneSpec(30.0, 20.0))
    b = zone_ellipsoid([10.0, 0.0, 0.0], [0, 0, 1], ZoneSpec(30.0, 20.0))
    mask_a, mask_b = zone_mask(ct, [a]).array, zone_mask(ct, [b]).array
    union = zone_mask(ct, [a, b]).array
    np.testing.assert_array_equal(union, mask_a | mask_b)
    assert (mask_a & mask_b).any()
    assert union.sum() < mask_a.sum() + mask_b.sum()


def test_mask_of_nothing_or_outside_is_empty() -> None:
    ct = _ct_grid(shape=(10, 10, 4))
    far = zone_ellipsoid([500.0, 0.0, 0.0], [0, 0, 1], EMPRINT_100W_10MIN)
    assert not zone_mask(ct, []).array.any()
    assert not zone_mask(ct, [far], supersample=2).array.any()


def test_mask_bad_inputs() -> None:
    ct = _ct_grid(shape=(10, 10, 4))
    zone = zone_ellipsoid([0.0, 0.0, 0.0], [0, 0, 1], EMPRINT_100W_10MIN)
    with pytest.raises(ValueError, match="supersample must be a positive integer"):
        zone_mask(ct, [zone], supersample=0)
    with pytest.raises(TypeError, match=r"ellipsoids\[1\] must be an Ellipsoid"):
        zone_mask(ct, [zone, EMPRINT_100W_10MIN])  # type: ignore[list-item]


def test_default_width_direction_is_shared_by_zone_and_probes() -> None:
    # Without width_direction_lps both pick the same perpendicular: the pair lies on the width.
    pair = load_catalogue().device("nanoknife").setting("pair-20mm")
    direction = [0.2, -0.7, 0.4]
    e = zone_ellipsoid([1.0, 2.0, 3.0], direction, pair.zone)
    tips = probe_tips_lps_mm([1.0, 2.0, 3.0], direction, pair)
    line = (tips[1] - tips[0]) / np.linalg.norm(tips[1] - tips[0])
    np.testing.assert_allclose(line, e.axes[1], atol=1e-12)
