"""Skin-marker detection (seldinger.navigation.fiducials): phantoms, then the real LIDC CT."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.imaging import Volume
from seldinger.navigation.fiducials import (
    MarkerQuality,
    RejectReason,
    detect_skin_markers,
    insert_spherical_markers,
)
from seldinger.navigation.pairing import pair_points
from seldinger.navigation.registration import predicted_tre_mm
from seldinger.navigation.transforms import apply_transform, rigid_matrix, rotation_angle_deg
from shared_paths import NODULE_CENTROID_LPS_MM

SPACING_MM = (0.703125, 0.703125, 2.5)  # the LIDC grid: 2.5 mm slices, 3.6 voxels wide
SPHERE_MM3 = 4.0 / 3.0 * math.pi * 2.0**3
#: Acceptance: every marker within this of its true centre (partial volume on 2.5 mm slices).
MAX_ERROR_MM = 0.5


def _skin_phantom(
    normal: np.ndarray, rng: np.random.Generator | None = None, shape=(64, 64, 20)
) -> tuple[Volume, np.ndarray]:
    """Air (−1000 HU) over tissue (20 HU) split by a plane through the grid's centre.

    ``normal`` points out of the body. Voxels hold the partial-volume mix (4³
    sub-samples), as a CT would. Returns the Volume and the plane's centre point (LPS mm).
    """
    geometry = np.diag([*SPACING_MM, 1.0])
    ct = Volume(np.zeros(shape, np.float32), geometry)
    centre = ct.index_to_lps((np.array(shape) - 1) / 2.0)
    steps = (np.arange(4) + 0.5) / 4 - 0.5
    sub = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    outside = (((ijk[..., None, :] + sub) * SPACING_MM - centre) @ normal > 0).mean(axis=-1)
    hu = outside * -1000.0 + (1.0 - outside) * 20.0
    if rng is not None:
        hu += rng.normal(0.0, 15.0, shape)  # CT noise
    return ct.with_array(hu.astype(np.float32)), centre


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


# --- the synthetic marker itself --------------------------------------------------------


def test_inserted_sphere_has_the_sphere_volume_and_full_core():
    ct = Volume(np.zeros((30, 30, 12), np.int16), np.diag([*SPACING_MM, 1.0]))
    centre = ct.index_to_lps([14.3, 15.1, 5.7])
    out = insert_spherical_markers(ct, centre, diameter_mm=4.0, hu=1000.0, supersample=9)
    assert out.array.dtype == np.int16
    volume_mm3 = out.array.sum() / 1000.0 * np.prod(SPACING_MM)
    assert volume_mm3 == pytest.approx(SPHERE_MM3, rel=0.01)
    core = np.rint(ct.lps_to_index(centre)).astype(int)
    assert out.array[tuple(core)] == 1000  # the voxel at the centre lies inside


def test_insert_blends_with_the_original_values():
    ct = Volume(np.full((20, 20, 8), -1000.0, np.float32), np.diag([*SPACING_MM, 1.0]))
    out = insert_spherical_markers(ct, ct.index_to_lps([10.0, 10.0, 4.0]), hu=1500.0)
    values = np.asarray(out.array)
    assert values.min() == -1000.0 and values.max() == 1500.0
    fraction = (values + 1000.0) / 2500.0
    assert fraction.sum() * np.prod(SPACING_MM) == pytest.approx(SPHERE_MM3, rel=0.02)


def test_insert_refuses_a_centre_off_the_grid():
    ct = Volume(np.zeros((10, 10, 4), np.int16), np.eye(4))
    with pytest.raises(ValueError, match=r"centres_lps_mm .* outside the CT"):
        insert_spherical_markers(ct, [100.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="supersample must be a positive integer"):
        insert_spherical_markers(ct, [5.0, 5.0, 2.0], supersample=0)


# --- detection on phantoms --------------------------------------------------------------


@pytest.mark.parametrize(
    ("normal", "height_mm"),
    [
        ((0.0, -1.0, 0.0), 2.0),  # anterior skin, marker resting on it
        ((0.3, -1.0, 0.45), 2.0),  # oblique skin: slabs mix air and skin under the marker
        ((-0.8, -0.5, -0.35), 0.0),  # half-embedded in the skin
    ],
)
def test_markers_on_a_skin_plane_are_found_within_a_tenth_of_a_mm(normal, height_mm):
    rng = np.random.default_rng(20240611)
    n = _unit(normal)
    ct, centre = _skin_phantom(n, rng)
    # Two markers 12 mm apart on the skin, centres at sub-voxel offsets.
    across = _unit(np.cross(n, [0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.cross(n, [1, 0, 0]))
    truth = np.array([centre + s * 6.0 * across + height_mm * n for s in (-1, 1)])
    truth += rng.uniform(-0.3, 0.3, truth.shape)
    detection = detect_skin_markers(insert_spherical_markers(ct, truth))
    assert detection.count == 2
    for marker in detection.markers:
        error = np.linalg.norm(truth - marker.centre_lps_mm, axis=1).min()
        assert error < 0.12
        assert marker.volume_mm3 == pytest.approx(SPHERE_MM3, rel=0.1)
        assert marker.sphericity > 0.8
        assert marker.quality is MarkerQuality.GOOD


def test_markers_are_sorted_by_their_superior_coordinate():
    ct, centre = _skin_phantom(np.array([0.0, -1.0, 0.0]))
    truth = centre + np.array([[8.0, -2.0, 10.0], [-8.0, -2.0, -10.0], [0.0, -2.0, 0.0]])
    found = detect_skin_markers(insert_spherical_markers(ct, truth)).centres_lps_mm
    assert found.shape == (3, 3)
    np.testing.assert_allclose(found, truth[[1, 2, 0]], atol=0.15)


def test_a_ct_without_markers_gives_an_empty_result_with_a_note():
    ct, _ = _skin_phantom(np.array([0.0, -1.0, 0.0]), np.random.default_rng(1))
    detection = detect_skin_markers(ct)
    assert detection.markers == ()
    assert detection.centres_lps_mm.shape == (0, 3)
    assert "no skin marker found" in detection.notes[0]


def test_candidates_too_deep_too_far_or_misshapen_are_refused_with_their_reason():
    n = np.array([0.0, -1.0, 0.0])
    ct, centre = _skin_phantom(n)
    deep = centre - 12.0 * n + [-10.0, 0.0, -12.0]  # in the body, 12 mm under the skin
    away = centre + 12.0 * n + [10.0, 0.0, -12.0]  # in the air, 10 mm off the skin
    rod = [centre + 2.0 * n + [x, 0.0, 12.0] for x in np.arange(-4.0, 4.01, 0.5)]
    ct = insert_spherical_markers(ct, [deep, away], hu=1500.0)
    ct = insert_spherical_markers(ct, rod, diameter_mm=2.4, hu=1500.0)  # a 2.4 × 10 mm rod
    detection = detect_skin_markers(ct)
    assert detection.markers == ()
    reasons = {r.reason: r for r in detection.rejected}
    assert set(reasons) == {RejectReason.INSIDE_BODY, RejectReason.OFF_BODY, RejectReason.SHAPE}
    assert np.linalg.norm(reasons[RejectReason.INSIDE_BODY].centre_lps_mm - deep) < 1.0
    assert np.linalg.norm(reasons[RejectReason.OFF_BODY].centre_lps_mm - away) < 1.0
    assert "mm inside the body" in reasons[RejectReason.INSIDE_BODY].detail
    summary = detection.to_dict()
    assert summary["rejected_inside_body"] == 1 and len(summary["rejected"]) == 2
    json.dumps(summary, allow_nan=False)


def test_a_sphere_of_the_wrong_size_is_refused():
    n = np.array([0.0, -1.0, 0.0])
    ct, centre = _skin_phantom(n)
    big = insert_spherical_markers(ct, centre + 2.75 * n, diameter_mm=5.5)  # 2.6 × the volume
    detection = detect_skin_markers(big, diameter_mm=4.0)
    assert detection.markers == ()
    assert [r.reason for r in detection.rejected] == [RejectReason.VOLUME]
    assert detect_skin_markers(big, diameter_mm=5.5).count == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"diameter_mm": 0.0}, "diameter_mm must be a positive"),
        ({"volume_tolerance": 1.5}, "volume_tolerance must lie in"),
        ({"min_sphericity": 2.0}, "min_sphericity must lie in"),
        ({"min_hu": 1450.0}, "marker_hu .* must exceed min_hu"),
    ],
)
def test_bad_parameters_are_refused(kwargs, match):
    ct = Volume(np.zeros((8, 8, 4), np.int16), np.eye(4))
    with pytest.raises(ValueError, match=match):
        detect_skin_markers(ct, **kwargs)


# --- the real CT ------------------------------------------------------------------------


def _match(detected: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Error (mm) of each true marker's nearest detection."""
    return np.linalg.norm(truth[:, None, :] - detected[None, :, :], axis=2).min(axis=1)


def test_lidc_ct_has_no_skin_markers(lidc_volume):
    detection = detect_skin_markers(lidc_volume)
    assert detection.markers == ()
    # Every bright component of about a marker's size is bone, refused as too deep.
    assert detection.rejected and {r.reason for r in detection.rejected} == {
        RejectReason.INSIDE_BODY
    }


def test_lidc_six_skin_markers_found_within_half_a_mm(lidc_markers, lidc_detection):
    _, truth = lidc_markers
    detection = lidc_detection  # own body mask (markers part of it)
    assert detection.count == 6  # and no false positive
    errors = _match(detection.centres_lps_mm, truth)
    assert errors.max() < MAX_ERROR_MM, errors
    # Measured on this grid: 0.06–0.17 mm (see docs/navigation_guidance.md).
    assert errors.max() < 0.25
    for marker in detection.markers:
        assert -2.5 < marker.surface_distance_mm < 0.0  # inside its own body mask
        assert marker.diameter_mm == pytest.approx(4.0, abs=0.4)


def test_lidc_detection_with_the_segmented_body(lidc_markers, lidc_anatomy):
    ct, truth = lidc_markers
    detection = detect_skin_markers(ct, lidc_anatomy["body"])  # markers outside this body
    assert detection.count == 6
    assert _match(detection.centres_lps_mm, truth).max() < MAX_ERROR_MM
    assert all(0.5 < m.surface_distance_mm < 3.0 for m in detection.markers)


def test_lidc_markers_on_a_rib_or_in_the_chest_wall_are_not_taken(lidc_markers, lidc_anatomy):
    ct, truth = lidc_markers
    bones = np.asarray(lidc_anatomy["bones"].array, dtype=bool)
    body = np.asarray(lidc_anatomy["body"].array, dtype=bool)
    k = 70
    depth_mm = ndi.distance_transform_edt(body[:, :, k], sampling=ct.spacing_mm[:2])
    # The rib voxel nearest the skin on the right lateral chest of slice 70.
    ribs = np.argwhere(bones[:, :, k] & (depth_mm > 3.0))
    x_mm = ct.index_to_lps(np.column_stack([ribs, np.full(len(ribs), k)]))[:, 0]
    ribs = ribs[x_mm < -90.0]
    i, j = ribs[np.argmin(depth_mm[ribs[:, 0], ribs[:, 1]])]
    on_rib = ct.index_to_lps([i, j, k])
    # A marker 15 mm under the skin, in the soft tissue of the anterior chest wall.
    soft = np.argwhere(
        (np.abs(depth_mm - 15.0) < 0.5) & ~bones[:, :, k] & (ct.array[:, :, k] < 100)
    )
    in_wall = ct.index_to_lps([*soft[np.argmin(soft[:, 1])], k])
    fakes = insert_spherical_markers(ct, [on_rib, in_wall], diameter_mm=4.0, hu=1500.0)
    detection = detect_skin_markers(fakes)
    assert detection.count == 6
    assert _match(detection.centres_lps_mm, truth).max() < MAX_ERROR_MM
    for fake in (on_rib, in_wall):
        assert np.linalg.norm(detection.centres_lps_mm - fake, axis=1).min() > 10.0
        # Refused as too deep (or, merged with the rib, dropped as too large).
        deep = [r for r in detection.rejected if r.reason is RejectReason.INSIDE_BODY]
        nearest = min(np.linalg.norm(np.subtract(r.centre_lps_mm, fake)) for r in deep)
        assert nearest < 2.0 or (fake is on_rib and detection.dropped_large > 64)


def test_lidc_markers_pair_with_shuffled_tracker_points(lidc_markers, lidc_detection):
    _, truth = lidc_markers
    found = lidc_detection.centres_lps_mm
    rng = np.random.default_rng(20240611)
    angle = math.radians(30.0)
    ct_to_tracker = rigid_matrix(
        [
            [math.cos(angle), -math.sin(angle), 0.0],
            [math.sin(angle), math.cos(angle), 0.0],
            [0, 0, 1],
        ],
        [120.0, -40.0, 300.0],
    )
    order = rng.permutation(len(truth))
    tracker = apply_transform(truth, ct_to_tracker)[order] + rng.normal(0.0, 0.3, truth.shape)
    pairing = pair_points(found, tracker, tolerance_mm=1.5)
    # Tracker point t is true marker order[t]; its CT partner must be the detection of it.
    partner_truth = np.argmin(
        np.linalg.norm(found[pairing.permutation][:, None] - truth[None], axis=2), axis=1
    )
    np.testing.assert_array_equal(partner_truth, order)
    assert rotation_angle_deg(pairing.tracker_to_ct @ ct_to_tracker) < 1.0
    # The nodule lies ~170 mm behind the nearly flat marker layout: the lever arm of
    # Fitzpatrick's TRE. 0.3 mm per axis is 0.52 mm FLE (3-D); with the CT's ~0.15 mm,
    # eq. 46 predicts ~1 mm RMS at the nodule (this draw: 1.8 mm).
    target_lps = np.array(NODULE_CENTROID_LPS_MM)
    predicted = predicted_tre_mm(found, target_lps, math.hypot(0.3 * math.sqrt(3), 0.15))
    moved = apply_transform(apply_transform(target_lps, ct_to_tracker), pairing.tracker_to_ct)
    assert np.linalg.norm(moved - target_lps) < 3.0 * predicted
