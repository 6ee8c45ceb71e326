"""Paths to liver targets cross normal liver before the lesion: measured and ranked.

On the real abdomen CT (totalseg-abdomen, 3 mm voxels) with its reference organ labels, a
subcapsular lesion is inserted 3 mm under the capsule. The shortest safe path enters it
straight from the capsule; the ranked paths cross at least 10 mm of normal liver first, and
every reported length is checked by sampling the masks along the path at 0.1 mm.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume
from seldinger.planning.trajectory import (
    RiskMaps,
    TrajectoryConstraints,
    evaluate_path,
    plan_trajectories,
)
from seldinger.planning.trajectory.score import LIVER_CAPSULE_WEIGHT, LIVER_PARENCHYMA_MM
from shared_paths import ABDOMEN, canonical_ct

#: Abdominal organs a liver path keeps out of, as a team would name them.
FORBIDDEN = (
    "gallbladder",
    "kidney_right",
    "stomach",
    "colon",
    "duodenum",
    "inferior_vena_cava",
    "portal_vein",
)
STEP_MM = 0.1


@pytest.fixture(scope="module")
def abdomen() -> tuple[Anatomy, Volume, np.ndarray]:
    """The abdomen's body (ours) and reference organs, in LPS order; the liver's depth (mm)."""
    from seldinger.anatomy.body import segment_body
    from seldinger.imaging import reorient
    from seldinger.io import read_volume

    ct = canonical_ct(ABDOMEN)
    labels = np.asarray(reorient(read_volume(ABDOMEN / "model_labels.nii.gz"), "LPS").array)
    code = {v: int(k) for k, v in json.loads((ABDOMEN / "model_labels.json").read_text()).items()}

    def mask(*names: str) -> np.ndarray:
        return np.isin(labels, [code[n] for n in names])

    bony = [
        n
        for n in code
        if n.startswith(("rib_", "vertebrae_")) or n in ("sternum", "costal_cartilages", "sacrum")
    ]
    masks = {
        "body": segment_body(ct),
        "liver": mask("liver"),
        "bones": mask(*bony),
        "lung_left": mask("lung_upper_lobe_left", "lung_lower_lobe_left"),
        "lung_right": mask(
            "lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"
        ),
        "heart": mask("heart"),
        "aorta": mask("aorta"),
        "esophagus": mask("esophagus"),
        "spinal_cord": mask("spinal_cord"),
        "portal_vein": mask("portal_vein_and_splenic_vein"),
        **{n: mask(n) for n in FORBIDDEN if n != "portal_vein"},
    }
    anatomy = Anatomy(masks={n: ct.with_array(m) for n, m in masks.items()})
    depth = ndi.distance_transform_edt(masks["liver"], sampling=ct.spacing_mm)
    return anatomy, ct, depth


def _ball(ct: Volume, centre_lps_mm: np.ndarray, radius_mm: float) -> Volume:
    index = np.indices(ct.shape).reshape(3, -1).T.astype(float)
    lps = index @ ct.affine[:3, :3].T + ct.affine[:3, 3]
    inside = np.linalg.norm(lps - centre_lps_mm, axis=1) <= radius_mm
    return ct.with_array(inside.reshape(ct.shape))


def _values(volume: Volume, points: np.ndarray) -> np.ndarray:
    """Mask values at LPS points, nearest voxel, by the inverse affine (no planner code)."""
    inv = np.linalg.inv(volume.affine)
    ijk = np.rint(points @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(volume.shape)), axis=1)
    out = np.zeros(len(points), dtype=bool)
    out[inside] = np.asarray(volume.array, dtype=bool)[tuple(ijk[inside].T)]
    return out


def _parenchyma_mm(liver: Volume, lesion: Volume | None, entry, target) -> float:  # type: ignore[no-untyped-def]
    """The first run of liver outside the lesion, from the target out, by sampling."""
    entry, target = np.asarray(entry, float), np.asarray(target, float)
    n = int(np.ceil(np.linalg.norm(entry - target) / STEP_MM)) + 1
    points = target + np.linspace(0.0, 1.0, n)[:, None] * (entry - target)
    normal = _values(liver, points)
    if lesion is not None:
        normal &= ~_values(lesion, points)
    hits = np.flatnonzero(normal)
    if hits.size == 0:
        return 0.0
    gaps = np.flatnonzero(~normal[hits[0] :])
    run = gaps[0] if gaps.size else normal.size - hits[0]
    return float(run * np.linalg.norm(entry - target) / (n - 1))


def _subcapsular(ct: Volume, depth: np.ndarray) -> np.ndarray:
    """The centre of a lesion 13 mm under the right lateral capsule (LPS mm)."""
    ring = np.argwhere((depth > 12.0) & (depth < 14.0))
    lps = ring @ ct.affine[:3, :3].T + ct.affine[:3, 3]
    return lps[np.argmin(lps[:, 0])]  # the most rightward (smallest L)


@pytest.mark.usefixtures("abdomen")
def test_a_subcapsular_liver_lesion_is_reached_through_normal_liver(abdomen) -> None:  # type: ignore[no-untyped-def]
    anatomy, ct, depth = abdomen
    centre = _subcapsular(ct, depth)
    lesion = _ball(ct, centre, 10.0)  # 3 mm of liver between it and the nearest capsule
    constraints = TrajectoryConstraints(forbidden=FORBIDDEN)
    maps = RiskMaps.build(anatomy, constraints, lesion)
    assert maps.lesion_liver_share is not None and maps.lesion_liver_share > 0.9
    search = plan_trajectories(maps)
    liver = anatomy["liver"]
    paths = search.trajectories
    # Without the rule the shortest safe path would lead: it enters from the capsule.
    shortest = min(paths, key=lambda t: t.length_mm)
    assert shortest.liver_parenchyma_mm is not None
    assert shortest.liver_parenchyma_mm < 5.0
    assert shortest.risk_terms["liver_capsule"] > 0.5 * LIVER_CAPSULE_WEIGHT
    top = search.top(3)
    for path in top:
        # The term ramps to 0 at 10 mm and the length tie-breaker then favours the shortest
        # path: the best ones sit at the bar (within 0.1 mm).
        assert path.liver_parenchyma_mm is not None
        assert path.liver_parenchyma_mm >= LIVER_PARENCHYMA_MM - 0.1
        assert path.risk_terms["liver_capsule"] <= 0.02
    for path in (*top, shortest):
        measured = _parenchyma_mm(liver, lesion, path.entry_lps_mm, path.target_lps_mm)
        assert path.liver_parenchyma_mm == pytest.approx(measured, abs=0.3)
    # The plan's record and the notes: the best path keeps the rule, so no note.
    assert top[0].to_record().liver_parenchyma_mm == pytest.approx(
        top[0].liver_parenchyma_mm, abs=0.01
    )
    assert not any("normal liver" in n for n in search.notes)
    # A path drawn straight in from the nearest capsule is measured the same way.
    drawn = evaluate_path(maps, shortest.entry_lps_mm, shortest.target_lps_mm)
    assert drawn.liver_parenchyma_mm == pytest.approx(shortest.liver_parenchyma_mm, abs=1e-6)


def test_a_point_in_the_liver_is_a_liver_target_and_a_lung_lesion_is_not(abdomen) -> None:  # type: ignore[no-untyped-def]
    anatomy, ct, depth = abdomen
    constraints = TrajectoryConstraints(forbidden=FORBIDDEN)
    deep = np.unravel_index(int(np.argmax(depth)), depth.shape)
    target = ct.index_to_lps(np.array(deep, dtype=float))
    search = plan_trajectories(anatomy, target, constraints=constraints)
    best = search.best
    assert best.liver_parenchyma_mm is not None
    measured = _parenchyma_mm(anatomy["liver"], None, best.entry_lps_mm, best.target_lps_mm)
    assert best.liver_parenchyma_mm == pytest.approx(measured, abs=0.3)
    assert best.liver_parenchyma_mm >= LIVER_PARENCHYMA_MM
    # A nodule in the right lung base, over the liver dome: not a liver lesion.
    lung = np.asarray(anatomy["lung_right"].array, dtype=bool)
    inner = ndi.distance_transform_edt(lung, sampling=ct.spacing_mm) > 12.0
    lowest = np.argwhere(inner)
    spot = lowest[np.argmin(lowest[:, 2])]
    nodule = _ball(ct, ct.index_to_lps(spot.astype(float)), 8.0)
    maps = RiskMaps.build(anatomy, constraints, nodule)
    assert maps.lesion_liver_share is not None and maps.lesion_liver_share < 0.4
    lung_search = plan_trajectories(maps)
    assert all(t.liver_parenchyma_mm is None for t in lung_search.top(5))
    assert all("liver_capsule" not in t.risk_terms for t in lung_search.top(5))


def test_a_lesion_no_path_reaches_through_10_mm_of_liver_is_said_so() -> None:
    # A lesion with 6 mm of liver around it: no path can cross 10 mm of normal liver
    # before the lesion, and the plan says so.
    shape = (60, 60, 40)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [-30.0, -30.0, -20.0]
    x, y, z = (np.indices(shape).astype(float).T - [30, 30, 20]).T
    body = np.hypot(x, y) <= 28
    radius = np.sqrt(x**2 + y**2 + z**2)
    liver, lesion = radius <= 12, radius <= 6
    anatomy = Anatomy(masks={"body": Volume(body, affine), "liver": Volume(liver, affine)})
    search = plan_trajectories(anatomy, lesion=Volume(lesion, affine))
    best = search.best
    assert best.liver_parenchyma_mm == pytest.approx(6.0, abs=1.0)
    assert best.risk_terms["liver_capsule"] == pytest.approx(0.4 * LIVER_CAPSULE_WEIGHT, abs=0.15)
    notes = " ".join(search.notes)
    assert "no safe path crosses 10 mm of normal liver before the lesion" in notes
