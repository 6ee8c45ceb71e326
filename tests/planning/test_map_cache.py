"""The trajectory planner's map cache and lazy anatomy reading, on the real lidc-idri-0001 CT.

A cached build must give the very maps an uncached one gives; a changed mask must not be
served stale; an unwritable cache must not stop planning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.anatomy import AnatomyError, LazyMasks, load_anatomy
from seldinger.imaging import reorient
from seldinger.io import write_volume
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints, plan_trajectories
from seldinger.planning.trajectory.map_cache import CACHE_FOLDER

CONSTRAINTS = TrajectoryConstraints(ablation_probe_length_mm=150.0)


@pytest.fixture(scope="module")
def saved(lidc_anatomy, tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("cache") / "anatomy"
    lidc_anatomy.save(folder)
    return folder


@pytest.fixture(scope="module")
def lesion(lidc_anatomy):  # type: ignore[no-untyped-def]
    """A 12 mm ball centred on a large vessel in the lung: the vessel reaches into it, so the
    planner must take the lesion out of the vessel mask (and its distance map)."""
    vessels = lidc_anatomy["vessels"]
    large = vessels.array & (lidc_anatomy.vessel_radius_mm.array >= 1.5)
    lungs = lidc_anatomy["lung_right"].array
    where = np.argwhere(large & ndi.binary_erosion(lungs, iterations=8))
    centre = where[len(where) // 2]
    ijk = np.indices(vessels.shape).reshape(3, -1).T
    mm = (ijk - centre) * np.asarray(vessels.spacing_mm)
    ball = (np.linalg.norm(mm, axis=1) <= 6.0).reshape(vessels.shape)
    return vessels.with_array(ball)


def _same(a: RiskMaps, b: RiskMaps) -> None:
    assert a.distance_names == b.distance_names
    assert a.hard_names == b.hard_names
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.distances_cmm, b.distances_cmm)
    assert np.array_equal(a.pleura_field, b.pleura_field)
    assert np.array_equal(a.candidates_lps_mm, b.candidates_lps_mm)
    assert np.allclose(a.body.affine, b.body.affine)
    assert a.notes == b.notes


def test_load_anatomy_reads_masks_only_when_used(saved: Path) -> None:
    anatomy = load_anatomy(saved)
    assert isinstance(anatomy.masks, LazyMasks)
    assert "vessels" in anatomy and "no-such" not in anatomy
    assert not any(anatomy.masks.is_loaded(n) for n in anatomy.masks)
    # Volumes come from the digests recorded in anatomy.json, without reading the masks.
    assert anatomy.volume_ml("bones") > 100
    assert not anatomy.masks.is_loaded("bones")
    assert anatomy["bones"].array.dtype == bool
    assert anatomy.masks.is_loaded("bones")
    counted = np.count_nonzero(anatomy["bones"].array) * np.prod(anatomy["bones"].spacing_mm)
    assert anatomy.volume_ml("bones") == pytest.approx(counted / 1000.0)


def test_cached_maps_equal_uncached_ones(lidc_anatomy, saved, lesion) -> None:  # type: ignore[no-untyped-def]
    first = RiskMaps.build(load_anatomy(saved), CONSTRAINTS, lesion)  # computes, then keeps
    assert "base_cached" not in first.seconds
    assert any(p.name.startswith("dist-vessels") for p in (saved / CACHE_FOLDER).iterdir())
    again = load_anatomy(saved)
    second = RiskMaps.build(again, CONSTRAINTS, lesion)
    assert "maps_cached" in second.seconds  # the finished maps, mapped from the cache
    loaded = [n for n in again.masks if again.masks.is_loaded(n)]
    assert loaded == ["body"], loaded  # every structure's map came from the cache
    _same(first, second)
    # Other rules (a finer vessel calibre): the base and the other structures' maps are
    # reused, the vessels' is made again for the new calibre.
    finer = TrajectoryConstraints(ablation_probe_length_mm=150.0, vessel_calibre_mm=2.0)
    third = RiskMaps.build(load_anatomy(saved), finer, lesion)
    assert "base_cached" in third.seconds and "maps_cached" not in third.seconds
    for m, name in enumerate(first.distance_names):
        same = np.array_equal(third.distances_cmm[..., m], first.distances_cmm[..., m])
        assert same == (name != "vessels"), name
    reference = first
    # The lesion is taken out of the vessels: no vessel voxel inside it, and the vessel map
    # is the distance to the rest (checked against SciPy's transform, not the planner's).
    m = reference.distance_names.index("vessels")
    full = reorient(lidc_anatomy["body"], "LPS")
    origin = np.rint(full.lps_to_index(reference.body.index_to_lps([0, 0, 0]))).astype(int)
    crop = tuple(slice(o, o + n) for o, n in zip(origin, reference.labels.shape, strict=True))
    vessels = reorient(lidc_anatomy["vessels"], "LPS").array[crop]
    radius = reorient(lidc_anatomy.vessel_radius_mm, "LPS").array[crop]
    inside = reorient(lesion, "LPS").array[crop]
    expected_zero = vessels & (2.0 * radius >= CONSTRAINTS.vessel_calibre_mm) & ~inside
    assert (vessels & inside).any()  # the test's premise
    assert np.array_equal(reference.distances_cmm[..., m] == 0, expected_zero)
    # Near the lesion (a box 40 mm around it; distances under 15 mm, 20 mm inside the box's
    # edge, cannot reach past it).
    spacing = np.asarray(reference.body.spacing_mm)
    ijk = np.argwhere(inside)
    pad = np.ceil(40.0 / spacing).astype(int)
    lo = np.maximum(ijk.min(axis=0) - pad, 0)
    hi = np.minimum(ijk.max(axis=0) + pad + 1, inside.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    edt = ndi.distance_transform_edt(~expected_zero[box], sampling=spacing)
    inner = np.zeros(edt.shape, dtype=bool)
    margin = np.ceil(20.0 / spacing).astype(int)
    inner[tuple(slice(k, -k) for k in margin)] = True
    near = inner & (edt < 15.0)
    assert near.sum() > 1000
    got = reference.distances_cmm[..., m][box][near] / 100.0
    assert np.abs(got - edt[near]).max() < 0.006
    # And the search reads them the same.
    a = plan_trajectories(reference, lesion=lesion)
    b = plan_trajectories(second, lesion=lesion)
    assert np.array_equal(a.safe, b.safe)
    assert np.array_equal(a.risk_score, b.risk_score, equal_nan=True)


def test_a_changed_mask_is_not_served_stale(saved, lesion) -> None:  # type: ignore[no-untyped-def]
    anatomy = load_anatomy(saved)
    before = RiskMaps.build(anatomy, CONSTRAINTS, lesion)
    bones = anatomy["bones"]
    changed = bones.array.copy()
    changed[:, :, : changed.shape[2] // 2] = False  # the lower half of the skeleton gone
    write_volume(bones.with_array(changed), saved / "bones.nii.gz", force=True)
    after = RiskMaps.build(load_anatomy(saved), CONSTRAINTS, lesion)
    m = after.distance_names.index("bones")
    assert "base_cached" in after.seconds  # body and lungs unchanged: their maps reused
    assert (after.distances_cmm[..., m] == 0).sum() < (before.distances_cmm[..., m] == 0).sum()
    others = [n for n in after.distance_names if n != "bones"]
    for name in others:
        k = after.distance_names.index(name)
        assert np.array_equal(after.distances_cmm[..., k], before.distances_cmm[..., k]), name
    write_volume(bones, saved / "bones.nii.gz", force=True)


def test_an_unwritable_or_damaged_cache_does_not_stop_planning(saved, tmp_path, lesion) -> None:  # type: ignore[no-untyped-def]
    import shutil

    expected = RiskMaps.build(load_anatomy(saved), CONSTRAINTS, lesion)  # from the cache
    folder = tmp_path / "anatomy"
    shutil.copytree(saved, folder)
    for entry in (folder / CACHE_FOLDER).glob("dist-mediastinum-*.npy"):
        entry.write_bytes(entry.read_bytes()[:1000])  # a damaged entry is a miss
    _same(RiskMaps.build(load_anatomy(folder), CONSTRAINTS, lesion), expected)
    shutil.rmtree(folder / CACHE_FOLDER)
    (folder / CACHE_FOLDER).write_text("a file where the cache folder would be")
    _same(RiskMaps.build(load_anatomy(folder), CONSTRAINTS, lesion), expected)
    assert (folder / CACHE_FOLDER).is_file()


def test_a_missing_mask_file_is_named(saved: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "anatomy"
    shutil.copytree(saved, copy, ignore=shutil.ignore_patterns(CACHE_FOLDER))
    (copy / "vessels.nii.gz").unlink()
    with pytest.raises(AnatomyError, match=r"vessels\.nii\.gz.*missing"):
        load_anatomy(copy)


def test_plan_trajectory_on_lidc_keeps_the_rules_users_expect(saved, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The user's step on the real CT: the position from the table in the image (a NIfTI file
    has no PatientPosition), no top path from the table side, rib margins reported; a
    second run reads its maps from the cache."""
    from seldinger.workflow.trajectory import TrajectoryRequest, plan_trajectory_step
    from shared_paths import LIDC

    request = TrajectoryRequest(
        ct_path=LIDC / "ct.nii.gz",
        anatomy_dir=saved,
        out=tmp_path / "plan.json",
        lesion_path=LIDC / "nodule_consensus.nii.gz",
    )
    outcome = plan_trajectory_step(request)
    assert outcome.setup is not None
    assert (outcome.setup.position, outcome.setup.source) == ("supine", "CT table")
    assert outcome.section.rules.table_side == "posterior"
    assert outcome.search.blocked_by["table_side"] > 0
    for path in outcome.section.paths:
        direction = np.subtract(path.entry_lps_mm, path.target_lps_mm)
        assert direction[1] / np.linalg.norm(direction) < 0.5  # not within 60° of posterior
        assert path.rib_margin_mm is not None and path.rib_margin_mm > 0
        assert "rib_margin" in path.risk_terms
    again = plan_trajectory_step(replace_out(request, tmp_path / "again.json"))
    assert "maps_cached" in again.maps.seconds
    assert [p.entry_lps_mm for p in again.section.paths] == [
        p.entry_lps_mm for p in outcome.section.paths
    ]


def replace_out(request, out):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(request, out=out)


def test_paths_prefer_one_lobe_and_count_fissures_like_an_independent_sampler(saved) -> None:  # type: ignore[no-untyped-def]
    """Targets in the left lower lobe 8-12 mm below the oblique fissure: about half the safe
    paths cross it; none of the top five does (ln 3.75 for a fissure crossed, Huo et al.).
    The kernel's exact count agrees with :func:`seldinger.anatomy.lobes.fissure_crossings`
    (samples every 0.2 mm) on a random sample of paths."""
    from seldinger.anatomy.lobes import LOBE_NAMES, fissure_crossings, lobe_labels

    anatomy = load_anatomy(saved)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(table_direction_lps=(0.0, 1.0, 0.0)))
    assert maps.lobes == LOBE_NAMES
    lower = reorient(anatomy["lung_lower_lobe_left"], "LPS")
    spacing = lower.spacing_mm
    to_fissure = ndi.distance_transform_edt(
        ~np.asarray(reorient(anatomy["fissure_left_oblique"], "LPS").array), sampling=spacing
    )
    in_lung = ndi.distance_transform_edt(
        np.asarray(reorient(anatomy["lung_left"], "LPS").array), sampling=spacing
    )
    off_vessel = ndi.distance_transform_edt(
        ~np.asarray(reorient(anatomy["vessels"], "LPS").array), sampling=spacing
    )
    where = np.argwhere(
        np.asarray(lower.array)
        & (to_fissure > 8)
        & (to_fissure < 12)
        & (in_lung > 15)
        & (off_vessel > 4)
    )
    labels = lower.with_array(lobe_labels({n: reorient(anatomy[n], "LPS") for n in LOBE_NAMES}))
    rng = np.random.default_rng(0)
    for idx in where[rng.choice(len(where), 3, replace=False)]:
        search = plan_trajectories(maps, target_lps_mm=lower.index_to_lps(idx))
        safe = search.trajectories
        crossings = np.array([t.fissure_crossings for t in safe])
        assert (crossings == 0).sum() > 500 and (crossings > 0).sum() > 500  # the premise
        assert [t.fissure_crossings for t in search.top(5)] == [0] * 5
        assert all(t.risk_terms["fissure_crossed"] == 0 for t in search.top(5))
        pick = rng.choice(len(safe), 200, replace=False)
        samples = np.array(
            [np.linspace(safe[k].target_lps_mm, safe[k].entry_lps_mm, 800) for k in pick]
        )
        independent = fissure_crossings(labels, samples)
        assert np.mean(independent == crossings[pick]) >= 0.97
