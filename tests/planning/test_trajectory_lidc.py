"""Trajectory search on the real lidc-idri-0001 CT, checked independently of the planner."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.planning.trajectory import (
    RiskMaps,
    TrajectoryConstraints,
    evaluate_path,
    plan_trajectories,
)
from shared_paths import LIDC, NODULE_CENTROID_LPS_MM

STEP_MM = 0.25


@pytest.fixture(scope="module")
def nodule():  # type: ignore[no-untyped-def]
    from seldinger.io import read_volume

    mask = read_volume(LIDC / "nodule_consensus.nii.gz")
    return mask.with_array(mask.array > 0)


@pytest.fixture(scope="module")
def lidc_search(lidc_anatomy, nodule):  # type: ignore[no-untyped-def]
    constraints = TrajectoryConstraints(ablation_probe_length_mm=150.0)
    maps = RiskMaps.build(lidc_anatomy, constraints, nodule)
    return maps, plan_trajectories(maps, lesion=nodule)


def _samples(a, b, step_mm=STEP_MM):  # type: ignore[no-untyped-def]
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = int(np.ceil(np.linalg.norm(b - a) / step_mm)) + 1
    return a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)


def _values(volume, points):  # type: ignore[no-untyped-def]
    """Mask values at LPS points, nearest voxel, by the inverse affine (no planner code)."""
    inv = np.linalg.inv(volume.affine)
    ijk = np.rint(points @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    ijk = np.clip(ijk, 0, np.array(volume.array.shape) - 1)
    return np.asarray(volume.array)[ijk[:, 0], ijk[:, 1], ijk[:, 2]]


def test_best_paths_to_the_nodule_cross_no_bone_mediastinum_or_large_vessel(
    lidc_anatomy, nodule, lidc_search
) -> None:  # type: ignore[no-untyped-def]
    _, search = lidc_search
    assert np.allclose(search.target_lps_mm, NODULE_CENTROID_LPS_MM, atol=0.5)
    assert search.safe.sum() > 100
    assert search.blocked_by["bones"] > 0
    calibre = lidc_anatomy.vessel_radius_mm.array * 2.0 >= 3.0
    large_vessels = lidc_anatomy["vessels"].with_array(lidc_anatomy["vessels"].array & calibre)
    for t in search.top(5):
        points = _samples(t.entry_lps_mm, t.target_lps_mm)
        outside_lesion = ~_values(nodule, points).astype(bool)
        for volume in (lidc_anatomy["bones"], lidc_anatomy["mediastinum"], large_vessels):
            assert not _values(volume, points)[outside_lesion].any()
        # No air on the way (the entry itself lies on the skin, between voxels).
        assert _values(lidc_anatomy["body"], points[1:]).all()
        assert t.length_mm <= 150.0 and t.depth_to_far_side_mm <= 150.0
        assert t.min_distance_mm["vessels"] >= 3.0
        assert t.dual_use is not None
    assert any(t.pareto for t in search.trajectories)
    assert search.best.risk_score == min(t.risk_score for t in search.trajectories)


def test_hand_path_on_the_real_ct_matches_independent_sampling(
    lidc_anatomy, nodule, lidc_search
) -> None:  # type: ignore[no-untyped-def]
    maps, _ = lidc_search
    # From the left lateral chest wall through the lung to the nodule's centroid.
    target = np.asarray(NODULE_CENTROID_LPS_MM)
    entry = target + np.array([95.0, -60.0, 10.0]) / np.linalg.norm([95.0, -60.0, 10.0]) * 90.0
    path = evaluate_path(maps, entry, target)
    fine = _samples(entry, target, 0.02)
    lung = _values(lidc_anatomy["lung_left"], fine).astype(bool) | _values(
        lidc_anatomy["lung_right"], fine
    ).astype(bool)
    in_nodule = _values(nodule, fine).astype(bool)
    step = np.linalg.norm(target - entry) / (len(fine) - 1)
    assert path.length_mm == pytest.approx(90.0, abs=1e-6)
    # Aerated lung: lung voxels outside the nodule; the nodule is neither lung nor pleura.
    # (The planner also fills holes inside each lung; this path meets none.)
    assert path.lung_length_mm == pytest.approx((lung & ~in_nodule).sum() * step, abs=0.1)
    outside = lung[~in_nodule].astype(int)
    assert path.pleural_crossings == np.count_nonzero(np.diff(outside) != 0)
    assert path.pleural_crossings >= 1
