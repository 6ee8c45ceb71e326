"""Trajectory search: synthetic anatomy with known geometry, hand computations, real CT."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume, reorient
from seldinger.planning.trajectory import (
    EVIDENCE_ODDS_RATIOS,
    NeedleTooShortError,
    NoSafePathError,
    RiskMaps,
    TargetError,
    TrajectoryConstraints,
    evaluate_path,
    pareto_front,
    plan_trajectories,
    risk_terms,
)

SHAPE = (100, 100, 60)
SPACING = (1.0, 1.0, 1.0)
CENTRE = np.array([50.0, 50.0, 30.0])


def _volume(array: np.ndarray, spacing=SPACING) -> Volume:  # type: ignore[no-untyped-def]
    return Volume(array, np.diag([*spacing, 1.0]))


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")


def _cage(gaps: bool) -> Anatomy:
    """A body cylinder (radius 45 mm) with a bony shell (radius 30-34 mm) around its axis.

    With ``gaps`` the shell is a rib cage: 8 mm ribs and 4 mm intercostal spaces along S.
    """
    i, j, k = _grid()
    r = np.hypot(i - CENTRE[0], j - CENTRE[1])
    body = r <= 45
    bones = (r >= 30) & (r <= 34)
    if gaps:
        bones &= (k % 12) < 8
    return Anatomy(masks={"body": _volume(body), "bones": _volume(bones)})


def _samples_hit(mask: np.ndarray, affine: np.ndarray, a, b, step_mm=0.25) -> bool:  # type: ignore[no-untyped-def]
    """Independent check: does the segment a -> b (LPS) touch ``mask``, sampled every step?

    Shares no code with the planner: plain NumPy, the inverse affine, nearest voxel.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = int(np.ceil(np.linalg.norm(b - a) / step_mm)) + 1
    points = a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)
    inv = np.linalg.inv(affine)
    ijk = np.rint(points @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    ijk = ijk[inside]
    return bool(mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]].any())


def test_target_behind_a_rib_gets_a_path_between_ribs() -> None:
    anatomy = _cage(gaps=True)
    target = CENTRE.copy()
    target[2] = 29.0  # level with a rib (24 <= k < 32): every axial path is blocked
    search = plan_trajectories(anatomy, target)
    best = search.best
    assert not _samples_hit(
        anatomy["bones"].array, anatomy["bones"].affine, best.entry_lps_mm, best.target_lps_mm
    )
    assert best.axial_angle_deg > 1.0  # it has to tilt to reach an intercostal space
    assert search.blocked_by["bones"] > 0
    # Every path the search calls safe really misses the ribs (a sample of them).
    safe = [t for t in search.trajectories[:: max(1, len(search.trajectories) // 50)]]
    for t in safe:
        assert not _samples_hit(
            anatomy["bones"].array, anatomy["bones"].affine, t.entry_lps_mm, t.target_lps_mm
        )
    # And the axial ones through the rib are refused.
    u = search.candidates_lps_mm - target
    axial = np.abs(u[:, 2]) / np.linalg.norm(u, axis=1) < math.sin(math.radians(2.0))
    assert axial.any() and not search.safe[axial].any()


def test_enclosed_target_has_no_safe_path_naming_bone() -> None:
    with pytest.raises(NoSafePathError, match="bones") as err:
        plan_trajectories(_cage(gaps=False), CENTRE)
    assert err.value.blocked_by.get("bones", 0) > 0
    assert set(err.value.blocked_by) <= {"bones", "too_long"}


def _lung_phantom() -> tuple[Anatomy, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Body box with a right lung box and a left lung box (index = mm, spacing 1 mm)."""
    body = np.zeros(SHAPE, bool)
    body[5:95, 5:95, :] = True
    right = np.zeros(SHAPE, bool)
    right[15:45, 20:80, 10:50] = True  # voxels 15..44 cover x in [14.5, 44.5)
    left = np.zeros(SHAPE, bool)
    left[55:85, 20:80, 10:50] = True
    boxes = {
        "right": (np.array([14.5, 19.5, 9.5]), np.array([44.5, 79.5, 49.5])),
        "left": (np.array([54.5, 19.5, 9.5]), np.array([84.5, 79.5, 49.5])),
    }
    masks = {"body": body, "lung_right": right, "lung_left": left, "bones": np.zeros(SHAPE, bool)}
    return Anatomy(masks={k: _volume(v) for k, v in masks.items()}), boxes


def _slab_length(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Hand computation: length of segment a-b inside the box [lo, hi] (slab method)."""
    d = b - a
    t0, t1 = 0.0, 1.0
    for axis in range(3):
        if d[axis] == 0:
            if not lo[axis] <= a[axis] <= hi[axis]:
                return 0.0
            continue
        ta, tb = sorted(((lo[axis] - a[axis]) / d[axis], (hi[axis] - a[axis]) / d[axis]))
        t0, t1 = max(t0, ta), min(t1, tb)
    return max(0.0, t1 - t0) * float(np.linalg.norm(d))


@pytest.mark.parametrize(
    ("entry", "target", "crossings"),
    [
        ((5.2, 50.0, 30.0), (30.0, 50.0, 30.0), 1),  # skin -> right lung, axial
        ((5.3, 31.0, 12.0), (35.0, 61.0, 40.0), 1),  # oblique into the right lung
        ((94.6, 70.0, 20.0), (20.0, 40.0, 35.0), 3),  # through the left lung into the right
    ],
)
def test_hand_path_metrics_equal_a_hand_computation(entry, target, crossings) -> None:  # type: ignore[no-untyped-def]
    anatomy, boxes = _lung_phantom()
    maps = RiskMaps.build(anatomy)
    path = evaluate_path(maps, entry, target)
    a, b = np.asarray(entry, float), np.asarray(target, float)
    assert path.length_mm == pytest.approx(float(np.linalg.norm(b - a)), abs=1e-9)
    expected_lung = sum(_slab_length(a, b, lo, hi) for lo, hi in boxes.values())
    assert path.lung_length_mm == pytest.approx(expected_lung, abs=1e-6)
    assert path.pleural_crossings == crossings
    assert path.safe


def test_pleura_angle_and_depth_on_a_flat_pleura() -> None:
    anatomy, _ = _lung_phantom()
    maps = RiskMaps.build(anatomy)
    # Perpendicular to the lateral pleura (x = 14.5): 90 degrees; 45 degrees when tilted.
    straight = evaluate_path(maps, (5.2, 50.0, 30.0), (30.0, 50.0, 30.0))
    assert straight.pleura_angle_deg == pytest.approx(90.0, abs=1.0)
    assert straight.target_depth_mm == pytest.approx(30.0 - 14.5, abs=1e-6)
    tilted = evaluate_path(maps, (5.2, 34.7, 30.0), (30.0, 59.5, 30.0))
    assert tilted.pleura_angle_deg == pytest.approx(45.0, abs=2.0)
    assert tilted.axial_angle_deg == pytest.approx(0.0, abs=1e-9)


def test_constraints_limit_angle_and_table_side() -> None:
    anatomy, _ = _lung_phantom()
    target = (30.0, 50.0, 30.0)
    free = plan_trajectories(anatomy, target)
    limited = plan_trajectories(
        anatomy,
        target,
        constraints=TrajectoryConstraints(max_axial_angle_deg=10.0, table_direction_lps=(0, 1, 0)),
    )
    assert limited.blocked_by["axial_angle"] > 0 and limited.blocked_by["table_side"] > 0
    assert limited.safe.sum() < free.safe.sum()
    for t in limited.trajectories:
        assert t.axial_angle_deg <= 10.0 + 1e-9
        u = np.subtract(t.entry_lps_mm, t.target_lps_mm)
        assert u[1] / np.linalg.norm(u) < math.cos(math.radians(60.0))


def test_robot_hook_refuses_what_it_cannot_reach() -> None:
    anatomy, _ = _lung_phantom()

    def left_half_only(entries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return entries[:, 0] > 50.0

    search = plan_trajectories(
        anatomy, (30.0, 50.0, 30.0), constraints=TrajectoryConstraints(reachable=left_half_only)
    )
    assert search.blocked_by["unreachable"] > 0
    assert all(t.entry_lps_mm[0] > 50.0 for t in search.trajectories)


def test_bad_targets_and_short_needles_are_refused() -> None:
    anatomy = _cage(gaps=True)
    with pytest.raises(TargetError, match="outside the body"):
        plan_trajectories(anatomy, (2.0, 2.0, 30.0))
    with pytest.raises(TargetError, match="outside"):
        plan_trajectories(anatomy, (500.0, 50.0, 30.0))
    with pytest.raises(TargetError, match="inside bones"):
        plan_trajectories(anatomy, (50.0, 82.0, 29.0))
    with pytest.raises(NeedleTooShortError, match="at least") as err:
        plan_trajectories(anatomy, CENTRE, constraints=TrajectoryConstraints(needle_length_mm=20.0))
    assert err.value.shallowest_mm == pytest.approx(45.0, abs=1.5)
    with pytest.raises(ValueError, match="needle_length_mm"):
        TrajectoryConstraints(needle_length_mm=0.0)
    with pytest.raises(ValueError, match="forbidden structure 'kidney'"):
        RiskMaps.build(anatomy, TrajectoryConstraints(forbidden=("kidney",)))


def test_risk_terms_carry_the_published_odds_ratios() -> None:
    n = np.ones(1)
    terms = risk_terms(
        length_mm=100 * n,
        lung_mm=50 * n,
        crossings=np.array([2]),
        depth_mm=45 * n,
        emphysema_mm=3 * n,
        bulla=np.array([True]),
        pleura_angle_deg=90 * n,
        vessel_mm=np.array([np.inf]),
        vessel_safety_mm=3.0,
    )
    for name in ("bulla_crossed", "emphysema_crossed", "multiple_pleural_punctures"):
        assert terms[name][0] == pytest.approx(math.log(EVIDENCE_ODDS_RATIOS[name]))
    assert terms["depth_3cm_or_more"][0] == pytest.approx(math.log(2.38))
    assert terms["pleura_angle"][0] == pytest.approx(0.0)
    assert terms["vessel_margin"][0] == pytest.approx(0.0, abs=1e-9)


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 6, size=(400, 3)).astype(float)
    keep = pareto_front(values)
    first = {}
    for r, row in enumerate(values):
        first.setdefault(tuple(row), r)
    for r, row in enumerate(values):
        dominated = np.any(np.all(values <= row, axis=1) & np.any(values < row, axis=1))
        assert keep[r] == (not dominated and first[tuple(row)] == r), r


def test_distance_maps_equal_scipy_edt() -> None:
    from scipy import ndimage as ndi

    from seldinger.planning.trajectory.maps import _distance_cmm

    rng = np.random.default_rng(0)
    mask = rng.random((40, 50, 30)) > 0.995
    spacing = (0.7, 0.8, 2.5)
    expected = np.minimum(np.rint(ndi.distance_transform_edt(~mask, sampling=spacing) * 100), 10000)
    assert np.array_equal(_distance_cmm(mask, spacing), expected)


def test_axis_order_of_the_masks_does_not_change_the_plan() -> None:
    anatomy = _cage(gaps=True)
    flipped = Anatomy(masks={k: reorient(v, "RAI") for k, v in anatomy.masks.items()})
    target = CENTRE + np.array([0.0, 0.0, -1.0])
    a = plan_trajectories(anatomy, target)
    b = plan_trajectories(flipped, target)
    assert a.safe.sum() == b.safe.sum()
    assert a.best.entry_lps_mm == pytest.approx(b.best.entry_lps_mm, abs=1e-6)
    assert a.best.length_mm == pytest.approx(b.best.length_mm, abs=1e-6)


def test_reason_labels_name_the_first_reason_of_each_candidate() -> None:
    search = plan_trajectories(_cage(gaps=True), CENTRE + np.array([0.0, 0.0, -1.0]))
    labels = np.array(search.reason_labels())
    assert labels.shape == (search.n_candidates,)
    assert np.array_equal(labels == "safe", search.safe)
    bone = np.uint32(1 << search.reason_names.index("bones"))
    only_bone = search.reasons == bone
    assert only_bone.any() and set(labels[only_bone]) == {"bones"}
