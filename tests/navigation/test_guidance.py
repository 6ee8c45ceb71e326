"""Needle guidance against a plan (seldinger.navigation.guidance)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

from seldinger.imaging import Volume
from seldinger.navigation.calibration import tool_tip_to_tool
from seldinger.navigation.guidance import (
    DistanceLookup,
    GuidanceError,
    Guide,
    PlannedPath,
    Watchdog,
    critical_distance_map,
    guidance_state,
)
from seldinger.navigation.transforms import TransformError, invert_rigid, rigid_matrix

PATH = PlannedPath((0.0, 0.0, 0.0), (0.0, 0.0, 100.0))
NEEDLE_MM = 150.0  # tip offset along the sensor's +Z
TIP_TO_TOOL = tool_tip_to_tool([0.0, 0.0, NEEDLE_MM])


def _random_rigid(rng: np.random.Generator) -> np.ndarray:
    return rigid_matrix(Rotation.random(random_state=rng).as_matrix(), rng.uniform(-200, 200, 3))


def _tool_to_tracker_for(tip_ct, direction_ct, tracker_to_ct) -> np.ndarray:
    """The sensor pose that puts the needle tip at ``tip_ct`` pointing along ``direction_ct``."""
    z = np.asarray(direction_ct, float) / np.linalg.norm(direction_ct)
    x = np.cross([0.3, 1.0, 0.2], z)
    x /= np.linalg.norm(x)
    tip_to_ct = rigid_matrix(np.column_stack([x, np.cross(z, x), z]), tip_ct)
    return invert_rigid(tracker_to_ct) @ tip_to_ct @ invert_rigid(TIP_TO_TOOL)


# --- geometry ---------------------------------------------------------------------------


def test_needle_on_the_path_at_half_depth():
    s = guidance_state([0.0, 0.0, 50.0], [0.0, 0.0, 1.0], PATH)
    assert s.lateral_deviation_mm == pytest.approx(0.0, abs=1e-9)
    assert s.angle_error_deg == pytest.approx(0.0, abs=1e-9)
    assert s.remaining_depth_mm == pytest.approx(50.0, abs=1e-9)
    assert s.tip_to_target_mm == pytest.approx(50.0, abs=1e-9)
    assert s.progress == pytest.approx(0.5, abs=1e-9)
    assert s.tip_projection_lps_mm == (0.0, 0.0, 50.0)
    assert not s.past_target and not s.breach and math.isnan(s.distance_to_critical_mm)


def test_known_lateral_offset_and_tilt_are_reproduced_on_an_oblique_path():
    rng = np.random.default_rng(20240611)
    for _ in range(5):
        m = _random_rigid(rng)  # the same geometry, anywhere, in any orientation
        path = PlannedPath(tuple(m[:3, 3]), tuple(m[:3, 3] + m[:3, :3] @ [0.0, 0.0, 80.0]))
        tilt = math.radians(5.0)
        tip = m[:3, :3] @ [3.0, 0.0, 30.0] + m[:3, 3]
        direction = m[:3, :3] @ [math.sin(tilt), 0.0, math.cos(tilt)]
        s = guidance_state(tip, direction * 7.0, path)  # any length: normalised
        assert s.lateral_deviation_mm == pytest.approx(3.0, abs=1e-9)
        assert s.angle_error_deg == pytest.approx(5.0, abs=1e-9)
        assert s.remaining_depth_mm == pytest.approx(50.0, abs=1e-9)
        assert s.progress == pytest.approx(30.0 / 80.0, abs=1e-12)
        assert s.tip_to_target_mm == pytest.approx(math.hypot(3.0, 50.0), abs=1e-9)
        expected = m[:3, :3] @ [0.0, 0.0, 30.0] + m[:3, 3]
        np.testing.assert_allclose(s.tip_projection_lps_mm, expected, atol=1e-9)


def test_past_the_target_the_remaining_depth_is_negative():
    s = guidance_state([0.0, 2.0, 112.5], [0.0, 0.0, 1.0], PATH)
    assert s.remaining_depth_mm == pytest.approx(-12.5)
    assert s.progress == pytest.approx(1.125)
    assert s.past_target
    assert s.tip_to_target_mm == pytest.approx(math.hypot(2.0, 12.5))


def test_a_needle_pointing_backwards_has_a_180_degree_error():
    s = guidance_state([0.0, 0.0, 10.0], [0.0, 0.0, -1.0], PATH)
    assert s.angle_error_deg == pytest.approx(180.0)
    assert guidance_state([0, 0, 10.0], [1e-6, 0, 1.0], PATH).angle_error_deg == pytest.approx(
        math.degrees(1e-6), rel=1e-9
    )


def test_the_state_is_json_ready():
    s = guidance_state([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], PATH, timestamp_s=12.5)
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert d["distance_to_critical_mm"] is None
    assert d["timestamp_s"] == pytest.approx(12.5, abs=1e-9) and d[
        "remaining_depth_mm"
    ] == pytest.approx(97.0, abs=1e-9)


# --- bad inputs -------------------------------------------------------------------------


def test_entry_equal_to_target_is_refused():
    with pytest.raises(GuidanceError, match="coincide"):
        PlannedPath((1.0, 2.0, 3.0), (1.0, 2.0, 3.0))
    with pytest.raises(GuidanceError, match="target_lps_mm must be three finite"):
        PlannedPath((1.0, 2.0, 3.0), (1.0, math.nan, 3.0))


def test_zero_direction_is_refused():
    with pytest.raises(GuidanceError, match=r"direction_lps .* zero length"):
        guidance_state([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], PATH)


def test_non_rigid_matrices_are_refused():
    scaled = np.diag([1.01, 1.0, 1.0, 1.0])
    with pytest.raises(TransformError, match="tracker_to_ct is not rigid"):
        Guide(PATH, TIP_TO_TOOL, tracker_to_ct=scaled)
    with pytest.raises(TransformError, match=r"tool_tip_to_tool .*reflection"):
        Guide(PATH, np.diag([1.0, 1.0, -1.0, 1.0]), tracker_to_ct=np.eye(4))
    guide = Guide(PATH, TIP_TO_TOOL, tracker_to_ct=np.eye(4))
    with pytest.raises(TransformError, match="tool_to_tracker"):
        guide.update(scaled, timestamp_s=0.0)
    assert isinstance(TransformError("x"), ValueError)


def test_exactly_one_registration_and_the_matching_reference_pose():
    with pytest.raises(GuidanceError, match=r"exactly one registration.*neither"):
        Guide(PATH, TIP_TO_TOOL)
    with pytest.raises(GuidanceError, match=r"exactly one registration.*both"):
        Guide(PATH, TIP_TO_TOOL, tracker_to_ct=np.eye(4), reference_to_ct=np.eye(4))
    with pytest.raises(GuidanceError, match="reference_to_tracker is missing"):
        Guide(PATH, TIP_TO_TOOL, reference_to_ct=np.eye(4)).update(np.eye(4), None, 0.0)
    with pytest.raises(GuidanceError, match="built with tracker_to_ct"):
        Guide(PATH, TIP_TO_TOOL, tracker_to_ct=np.eye(4)).update(np.eye(4), np.eye(4), 0.0)


# --- the guide: poses in, state out -----------------------------------------------------


def test_guide_puts_the_calibrated_tip_where_the_poses_say():
    rng = np.random.default_rng(7)
    tracker_to_ct = _random_rigid(rng)
    guide = Guide(PATH, TIP_TO_TOOL, tracker_to_ct=tracker_to_ct)
    pose = _tool_to_tracker_for([3.0, 0.0, 40.0], [0.0, 0.0, 1.0], tracker_to_ct)
    s = guide.update(pose, timestamp_s=1.0)
    np.testing.assert_allclose(s.tip_lps_mm, [3.0, 0.0, 40.0], atol=1e-9)
    assert s.lateral_deviation_mm == pytest.approx(3.0, abs=1e-9)
    assert s.angle_error_deg == pytest.approx(0.0, abs=1e-6)
    assert s.remaining_depth_mm == pytest.approx(60.0, abs=1e-9)
    assert s.timestamp_s == pytest.approx(1.0, abs=1e-9)


def test_reference_mode_equals_direct_mode_while_the_reference_is_still():
    rng = np.random.default_rng(11)
    tracker_to_ct = _random_rigid(rng)
    reference_to_tracker = _random_rigid(rng)
    direct = Guide(PATH, TIP_TO_TOOL, tracker_to_ct=tracker_to_ct)
    relative = Guide(PATH, TIP_TO_TOOL, reference_to_ct=tracker_to_ct @ reference_to_tracker)
    for t in range(5):
        pose = _tool_to_tracker_for(rng.uniform(-20, 80, 3), rng.normal(size=3), tracker_to_ct)
        a = direct.update(pose, timestamp_s=float(t))
        b = relative.update(pose, reference_to_tracker, timestamp_s=float(t))
        for name in ("tip_lps_mm", "direction_lps", "tip_projection_lps_mm"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-9)
        for name in ("lateral_deviation_mm", "angle_error_deg", "remaining_depth_mm"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), abs=1e-9)


def test_reference_mode_follows_the_patient_when_the_patient_moves():
    rng = np.random.default_rng(13)
    tracker_to_ct = _random_rigid(rng)
    reference_to_tracker = _random_rigid(rng)
    guide = Guide(PATH, TIP_TO_TOOL, reference_to_ct=tracker_to_ct @ reference_to_tracker)
    pose = _tool_to_tracker_for([1.0, -2.0, 30.0], [0.1, 0.0, 1.0], tracker_to_ct)
    before = guide.update(pose, reference_to_tracker, 0.0)
    shift = rigid_matrix(Rotation.from_euler("z", 10, degrees=True).as_matrix(), [5, -3, 8])
    # Patient (reference) and needle move together in the tracker frame: nothing changes.
    after = guide.update(shift @ pose, shift @ reference_to_tracker, 0.1)
    np.testing.assert_allclose(after.tip_lps_mm, before.tip_lps_mm, atol=1e-9)
    assert after.lateral_deviation_mm == pytest.approx(before.lateral_deviation_mm, abs=1e-9)


# --- critical structures and the breach warning -----------------------------------------


def _block_anatomy() -> dict[str, Volume]:
    """A 10 × 10 × 10 mm 'bone' cube at LPS (40…50, 40…50, 40…50) on a 1 × 1 × 2.5 mm grid."""
    affine = np.diag([1.0, 1.0, 2.5, 1.0])
    bone = np.zeros((100, 100, 40), bool)
    bone[40:51, 40:51, 16:21] = True
    return {"bones": Volume(bone, affine), "vessels": Volume(np.zeros_like(bone), affine)}


def test_breach_near_a_structure_on_a_synthetic_map():
    masks = _block_anatomy()
    distance = critical_distance_map(masks, ["bones", "vessels"])
    assert distance.array.dtype == np.float32
    path = PlannedPath((45.0, 0.0, 45.0), (45.0, 30.0, 45.0))  # toward the cube's face y=40
    near = guidance_state([45.0, 38.0, 45.0], [0, 1, 0], path, distance)
    assert near.distance_to_critical_mm == pytest.approx(2.0)
    assert near.breach
    far = guidance_state([45.0, 30.0, 45.0], [0, 1, 0], path, distance)
    assert far.distance_to_critical_mm == pytest.approx(10.0) and not far.breach
    between = guidance_state([45.0, 34.5, 45.0], [0, 1, 0], path, distance)  # trilinear
    assert between.distance_to_critical_mm == pytest.approx(5.5)
    inside = guidance_state([45.0, 45.0, 45.0], [0, 1, 0], path, distance)
    assert inside.distance_to_critical_mm == pytest.approx(0.0, abs=1e-9) and inside.breach
    outside = guidance_state([45.0, -5.0, 45.0], [0, 1, 0], path, distance)
    assert math.isnan(outside.distance_to_critical_mm)
    assert outside.outside_critical_map and not outside.breach


def test_a_boxed_map_matches_the_full_map_below_the_pad():
    masks = _block_anatomy()
    full = DistanceLookup(critical_distance_map(masks, ["bones"]))
    boxed_volume = critical_distance_map(
        masks, ["bones"], box_lps_mm=((20.0, 20.0, 30.0), (35.0, 35.0, 60.0)), pad_mm=20.0
    )
    boxed = DistanceLookup(boxed_volume)
    assert boxed_volume.shape == (16, 16, 13)
    for p in [(30.0, 30.0, 45.0), (34.0, 21.0, 31.0), (20.5, 34.2, 58.7)]:
        assert boxed(p) == pytest.approx(min(full(p), 20.0), abs=1e-5)
    assert boxed((20.0, 20.0, 30.0)) == pytest.approx(20.0)  # capped: at least 20 mm


def test_critical_map_refuses_unknown_or_empty_structures():
    masks = _block_anatomy()
    with pytest.raises(GuidanceError, match=r"\['airways'\] are not in the masks"):
        critical_distance_map(masks)  # the default names include airways
    with pytest.raises(GuidanceError, match="hold no voxel"):
        critical_distance_map(masks, ["vessels"])


def test_breach_two_mm_from_a_rib_of_the_lidc_anatomy(lidc_anatomy):
    bones = lidc_anatomy["bones"]
    k = 70
    mask = np.asarray(bones.array[:, :, k], dtype=bool)
    body = np.asarray(lidc_anatomy["body"].array[:, :, k], dtype=bool)
    # Soft-tissue voxels 2 mm (in-plane) from a rib of the right lateral chest wall.
    to_bone = ndi.distance_transform_edt(~mask, sampling=bones.spacing_mm[:2])
    ij = np.argwhere(body & ~mask & (np.abs(to_bone - 2.0) < 0.05))
    x_mm = bones.index_to_lps(np.column_stack([ij, np.full(len(ij), k)]))[:, 0]
    i, j = ij[np.argmin(x_mm)]
    tip = bones.index_to_lps([i, j, k])
    box = (tip - 25.0, tip + 25.0)
    distance = critical_distance_map(lidc_anatomy, ["bones"], box_lps_mm=box)
    lateral = np.array([1.0, 0.0, 0.0])
    path = PlannedPath(tuple(tip - 20.0 * lateral), tuple(tip + 40.0 * lateral))
    s = guidance_state(tip, [1.0, 0.0, 0.0], path, distance)
    assert s.breach
    assert s.distance_to_critical_mm <= 2.0 + 1e-6  # 3-D: a neighbouring slice may be nearer
    far = guidance_state(tip - [12.0, 0.0, 0.0], [1, 0, 0], path, distance)  # outward
    assert far.distance_to_critical_mm > 5.0 and not far.breach


# --- watchdog ---------------------------------------------------------------------------


class _Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_watchdog_goes_stale_after_half_a_second_without_updates():
    clock = _Clock()
    dog = Watchdog(clock=clock)
    assert dog.status().stale and dog.status().age_s == math.inf  # never fed
    dog.feed()
    clock.t += 0.4
    assert not dog.is_stale()
    clock.t += 0.2
    status = dog.status()
    assert status.stale and status.age_s == pytest.approx(0.6)
    dog.feed(clock.t - 0.1)
    assert not dog.is_stale() and dog.status().age_s == pytest.approx(0.1)
    dog.feed(clock.t - 5.0)  # a late, out-of-order update never moves time back
    assert dog.status().age_s == pytest.approx(0.1)
    json.dumps(Watchdog(clock=clock).status().to_dict(), allow_nan=False)


def test_guide_feeds_its_watchdog():
    clock = _Clock(10.0)
    guide = Guide(PATH, TIP_TO_TOOL, tracker_to_ct=np.eye(4), stale_after_s=0.5, clock=clock)
    pose = _tool_to_tracker_for([0, 0, 10.0], [0, 0, 1.0], np.eye(4))
    assert guide.update(pose).timestamp_s == pytest.approx(10.0, abs=1e-9)
    clock.t = 10.3
    assert not guide.status().stale
    clock.t = 10.6
    assert guide.status().stale and guide.status().age_s == pytest.approx(0.6)
    with pytest.raises(GuidanceError, match="stale_after_s must be a positive"):
        Watchdog(0.0)
