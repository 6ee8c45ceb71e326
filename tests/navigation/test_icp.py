"""Surface extraction and ICP: a synthetic ellipsoid, then the skin of lidc-idri-0001."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from seldinger.imaging import Volume
from seldinger.navigation.icp import icp, surface_points_from_mask
from seldinger.navigation.registration import RegistrationError
from seldinger.navigation.transforms import (
    TransformError,
    apply_transform,
    invert_rigid,
    rigid_matrix,
)
from shared_paths import NODULE_CENTROID_LPS_MM


def misalignment(
    rng: np.random.Generator, angle_deg: float, shift_mm: float, centre_mm: np.ndarray
) -> np.ndarray:
    """A rigid transform: ``angle_deg`` about a random axis through ``centre_mm``, then a
    ``shift_mm`` translation in a random direction."""
    axis = rng.normal(size=3)
    direction = rng.normal(size=3)
    rotation = Rotation.from_rotvec(np.radians(angle_deg) * axis / np.linalg.norm(axis)).as_matrix()
    shift = shift_mm * direction / np.linalg.norm(direction)
    return rigid_matrix(rotation, centre_mm - rotation @ centre_mm + shift)


def target_error_mm(
    estimated_to_fixed: np.ndarray, true_to_fixed: np.ndarray, target_mm: np.ndarray
) -> float:
    """How far the estimate puts the (fixed-frame) target, in mm."""
    target_moving = apply_transform(target_mm, invert_rigid(true_to_fixed))
    return float(np.linalg.norm(apply_transform(target_moving, estimated_to_fixed) - target_mm))


# --- synthetic -------------------------------------------------------------------------


def test_surface_of_a_sphere_mask() -> None:
    # Sphere of radius 20 mm on a 1 × 1 × 2 mm grid, cut by the grid's last slices.
    shape = (60, 60, 22)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    ijk = np.indices(shape).reshape(3, -1).T
    lps = ijk * [1.0, 1.0, 2.0]
    centre = np.array([30.0, 30.0, 30.0])  # k = 15 of 0–21: the sphere runs past k = 21
    inside = (np.linalg.norm(lps - centre, axis=1) <= 20.0).reshape(shape)
    mask = Volume(inside, affine)
    points = surface_points_from_mask(mask)
    radius = np.linalg.norm(points - centre, axis=1)
    assert np.abs(radius - 20.0).max() < 1.1  # the level-0.5 surface of a staircase
    # No cap where the grid cuts the sphere (z = 42 mm is the last slice): the surface
    # ends there, at the sphere's radius, instead of closing with a flat disc.
    assert points[:, 2].max() <= 43.0
    assert radius[points[:, 2] > 41.0].min() > 18.5
    smooth = surface_points_from_mask(mask, smoothing_mm=1.0)
    smooth_radius = np.linalg.norm(smooth - centre, axis=1)
    assert smooth_radius.std() < radius.std()


def ellipsoid_points(n: int, rng: np.random.Generator) -> np.ndarray:
    """Points on an ellipsoid of semi-axes 150, 100, 200 mm (a torso-sized, curved body)."""
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * [150.0, 100.0, 200.0]


@pytest.fixture(scope="module")
def ellipsoid_case() -> dict[str, np.ndarray]:
    """A 1.2 mm-sampled ellipsoid, 300 noisy points of one side moved by 5° and 10 mm."""
    rng = np.random.default_rng(20240611)
    surface = ellipsoid_points(200_000, rng)
    skin = ellipsoid_points(4000, rng)
    skin = skin[skin[:, 1] < -30.0][:300]  # one side only, as a tracked patch would be
    true = misalignment(rng, 5.0, 10.0, skin.mean(axis=0))
    moving = apply_transform(skin, invert_rigid(true)) + rng.normal(0.0, 0.5, skin.shape)
    assert target_error_mm(np.eye(4), true, np.zeros(3)) > 5.0  # starts away from the answer
    return {"surface": surface, "moving": moving, "true": true}


def test_icp_point_to_plane_on_ellipsoid(ellipsoid_case: dict[str, np.ndarray]) -> None:
    result = icp(ellipsoid_case["surface"], ellipsoid_case["moving"], method="point_to_plane")
    assert result.converged
    assert target_error_mm(result.moving_to_fixed, ellipsoid_case["true"], np.zeros(3)) < 0.5
    assert result.rms_mm < 1.0  # 0.5 mm noise per axis plus the surface sampling
    assert result.to_dict()["method"] == "icp_point_to_plane"


def test_icp_point_to_point_on_ellipsoid(ellipsoid_case: dict[str, np.ndarray]) -> None:
    """Besl–McKay improves the fit but stalls near the sampling scale of the surface.

    Closest *vertices* pull only along the normal; the tangential error shrinks through
    curvature alone, and stops where the vertex spacing (1.2 mm here) hides it: measured
    3–4 mm at the centre from 7.3 mm. Point-to-plane (the default) does not stall.
    """
    true = ellipsoid_case["true"]
    result = icp(ellipsoid_case["surface"], ellipsoid_case["moving"], method="point_to_point")
    assert result.converged
    start_mm = target_error_mm(np.eye(4), true, np.zeros(3))
    assert target_error_mm(result.moving_to_fixed, true, np.zeros(3)) < 0.7 * start_mm
    assert result.rms_mm < 1.5


def test_icp_arguments() -> None:
    surface = ellipsoid_points(1000, np.random.default_rng(1))
    with pytest.raises(RegistrationError, match=r"trim_fraction must be in \[0, 0.5\)"):
        icp(surface, surface[:50], trim_fraction=0.5)
    with pytest.raises(
        RegistrationError, match=r"moving_points_mm must have shape \(N, 3\) with N ≥ 6"
    ):
        icp(surface, surface[:5])
    with pytest.raises(TransformError, match="initial_moving_to_fixed is not rigid"):
        icp(surface, surface[:50], np.diag([1.1, 1.0, 1.0, 1.0]))
    with pytest.raises(RegistrationError, match=r"method must be one of.*'point_to_line'"):
        icp(surface, surface[:50], method="point_to_line")


# --- the real chest CT -----------------------------------------------------------------


@pytest.fixture(scope="module")
def chest_skin(lidc_volume: Volume) -> dict[str, np.ndarray]:
    """Anterior skin of lidc-idri-0001: the ICP surface and an independent sample of it."""
    from seldinger.anatomy.body import segment_body

    lo, hi = lidc_volume.geometry.bounds_lps_mm()
    # Whole axial slices from z −280 to −40 mm (the body's slice-wise hole filling needs the
    # whole outline), then the anterior half of the chest (y < 0: anterior is −y in LPS).
    chest = lidc_volume.crop_lps([lo[0], lo[1], -280.0], [hi[0], hi[1], -40.0])
    body = chest.with_array(segment_body(chest))
    anterior = body.crop_lps([lo[0], lo[1], -280.0], [hi[0], 0.0, -40.0])
    surface = surface_points_from_mask(anterior)
    # "Tracked" skin points come from a smoothed extraction, so they are not the ICP
    # surface's own vertices; restricted to the front of the chest.
    smooth = surface_points_from_mask(anterior, smoothing_mm=1.5)
    front = smooth[(smooth[:, 1] < -40.0) & (smooth[:, 2] > -250.0) & (smooth[:, 2] < -70.0)]
    return {"surface": surface, "front": front}


@pytest.mark.parametrize(
    ("angle_deg", "shift_mm", "start"),
    [(5.0, 10.0, "identity"), (20.0, 40.0, "identity"), (10.0, 20.0, "perturbed")],
)
def test_icp_on_lidc_anterior_chest(
    chest_skin: dict[str, np.ndarray], angle_deg: float, shift_mm: float, start: str
) -> None:
    rng = np.random.default_rng(11)
    front = chest_skin["front"]
    skin_ct = front[rng.choice(len(front), 300, replace=False)]
    target = np.asarray(NODULE_CENTROID_LPS_MM)
    if start == "identity":
        # The tracker frame is the CT frame moved by the misalignment; ICP starts at I.
        tracker_to_ct = misalignment(rng, angle_deg, shift_mm, skin_ct.mean(axis=0))
        initial = np.eye(4)
    else:
        # An arbitrary tracker frame; the initial guess (e.g. from 3 landmarks) is off by
        # the misalignment.
        tracker_to_ct = rigid_matrix(
            Rotation.from_rotvec([0.4, 2.0, -0.7]).as_matrix(), [250.0, -80.0, 400.0]
        )
        initial = misalignment(rng, angle_deg, shift_mm, skin_ct.mean(axis=0)) @ tracker_to_ct
    skin_tracker = apply_transform(skin_ct, invert_rigid(tracker_to_ct))
    skin_tracker += rng.normal(0.0, 0.5, skin_tracker.shape)

    assert target_error_mm(initial, tracker_to_ct, target) > 5.0
    result = icp(chest_skin["surface"], skin_tracker, initial)
    assert result.converged
    assert target_error_mm(result.moving_to_fixed, tracker_to_ct, target) < 1.0
    assert result.rms_mm < 1.0


def test_icp_on_lidc_trims_points_off_the_skin(chest_skin: dict[str, np.ndarray]) -> None:
    """10 % of the points lifted 10–30 mm off the skin (a pointer off the patient)."""
    rng = np.random.default_rng(12)
    front = chest_skin["front"]
    skin_ct = front[rng.choice(len(front), 300, replace=False)]
    lifted = rng.choice(300, 30, replace=False)
    skin_ct[lifted, 1] -= rng.uniform(10.0, 30.0, 30)  # anterior, away from the body
    tracker_to_ct = misalignment(rng, 5.0, 10.0, skin_ct.mean(axis=0))
    skin_tracker = apply_transform(skin_ct, invert_rigid(tracker_to_ct))
    skin_tracker += rng.normal(0.0, 0.5, skin_tracker.shape)
    target = np.asarray(NODULE_CENTROID_LPS_MM)

    trimmed = icp(chest_skin["surface"], skin_tracker, trim_fraction=0.15)
    assert target_error_mm(trimmed.moving_to_fixed, tracker_to_ct, target) < 1.0
    assert not trimmed.inliers[lifted].any()
    assert np.all(trimmed.distances_mm[lifted] > 5.0)
    untrimmed = icp(chest_skin["surface"], skin_tracker, trim_fraction=0.0)
    assert target_error_mm(untrimmed.moving_to_fixed, tracker_to_ct, target) > 1.0
