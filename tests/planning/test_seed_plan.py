"""Seed implant planning: synthetic target, the lidc nodule; needles checked independently."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume
from seldinger.physics.tg43 import load_seed_data
from seldinger.planning.seeds import SeedGoals, plan_seeds
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints, evaluate_path
from shared_paths import LIDC

SPACING = (1.0, 1.0, 2.5)
SHAPE = (120, 120, 40)


def _case(radius_mm: float) -> tuple[Anatomy, Volume]:
    idx = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    x, y, z = (i * s for i, s in zip(idx, SPACING, strict=True))
    affine = np.diag([*SPACING, 1.0])
    body = np.hypot(x - 60, y - 60) <= 55
    bones = body & (y > 100)
    lesion = np.sqrt((x - 60) ** 2 + (y - 60) ** 2 + (z - 50) ** 2) <= radius_mm
    return (
        Anatomy(masks={"body": Volume(body, affine), "bones": Volume(bones, affine)}),
        Volume(lesion, affine),
    )


@pytest.mark.parametrize("template", ["coplanar", "free"])
def test_a_sphere_gets_its_prescription(template: str) -> None:
    anatomy, lesion = _case(8.0)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    plan = plan_seeds(maps, lesion, load_seed_data("6711"), margin_mm=5.0, template=template)
    m = plan.metrics
    assert m["d90_gy"] >= 120.0 and m["v100_percent"] >= 95.0
    # V150 is a goal the optimiser prefers; when missed, the plan says so
    assert (m["v150_percent"] <= 60.0) or any("V150" in n for n in plan.notes)
    assert 4 <= plan.n_seeds <= 60
    for needle in plan.needles:
        for s in needle.seeds_lps_mm:
            t = evaluate_path(maps, needle.entry_lps_mm, s, reach_far_side=False)
            assert t.safe, t.blocked_by
        if template == "coplanar":
            assert np.allclose(needle.direction_lps, plan.needles[0].direction_lps)
            assert needle.template_hole_mm is not None
    section = plan.to_section("lesion", "6711")
    assert section.n_seeds == plan.n_seeds
    assert section.strength_mci == pytest.approx(section.strength_u / 1.270, rel=1e-3)


def test_unreachable_goals_are_reported() -> None:
    anatomy, lesion = _case(8.0)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    from seldinger.planning.seeds import SeedPlanError

    with pytest.raises(SeedPlanError, match=r"stronger seeds|loading"):
        plan_seeds(
            maps,
            lesion,
            load_seed_data("6711"),
            goals=SeedGoals(prescription_gy=5000.0, v150_max_percent=100.0),
            strengths_mci=(0.1,),
        )


@pytest.fixture(scope="module")
def lidc_case(lidc_anatomy):  # type: ignore[no-untyped-def]
    """The consensus nodule and the trajectory maps built with it (once for the module)."""
    from seldinger.io import read_volume

    nodule = read_volume(LIDC / "nodule_consensus.nii.gz")
    nodule = nodule.with_array(nodule.array > 0)
    return nodule, RiskMaps.build(lidc_anatomy, TrajectoryConstraints(), nodule)


@pytest.mark.slow
@pytest.mark.parametrize("template", ["free", "coplanar"])
def test_lidc_nodule_plan_meets_d90_and_v100_without_crossing_bone_or_vessels(
    lidc_anatomy,  # type: ignore[no-untyped-def]
    lidc_case,  # type: ignore[no-untyped-def]
    template: str,
) -> None:
    nodule, maps = lidc_case
    plan = plan_seeds(maps, nodule, load_seed_data("6711"), margin_mm=5.0, template=template)
    m = plan.metrics
    assert m["d90_gy"] >= 120.0 and m["v100_percent"] >= 95.0
    assert 10 <= plan.n_seeds <= 80  # plausible for ~23 mL PTV at 0.4-0.8 mCi
    if template == "free":  # individually angled needles reach every goal (V150 <= 60 %)
        assert m["v150_percent"] <= 60.0 and not plan.notes
    else:  # ribs shadow most template holes: the plan says V150 is missed
        assert m["v150_percent"] <= 60.0 or any("V150" in n for n in plan.notes)
    calibre = lidc_anatomy.vessel_radius_mm.array * 2.0 >= 3.0
    large = lidc_anatomy["vessels"].array & calibre
    inv = np.linalg.inv(nodule.affine)
    for needle in plan.needles:
        deepest = np.asarray(needle.seeds_lps_mm[0])
        a, b = np.asarray(needle.entry_lps_mm), deepest
        n = int(np.ceil(np.linalg.norm(b - a) / 0.25)) + 1
        pts = a + np.linspace(0, 1, n)[:, None] * (b - a)
        ijk = np.clip(
            np.rint(pts @ inv[:3, :3].T + inv[:3, 3]).astype(int), 0, np.array(nodule.shape) - 1
        )
        outside = ~nodule.array[tuple(ijk.T)]
        for mask in (lidc_anatomy["bones"].array, large, lidc_anatomy["mediastinum"].array):
            assert not mask[tuple(ijk.T)][outside].any()


def test_organ_at_risk_limit_is_kept() -> None:
    anatomy, lesion = _case(8.0)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    data = load_seed_data("6711")
    free = plan_seeds(maps, lesion, data, template="free")
    # An organ 8 mm beside the PTV (which ends at x = 73 mm); its dose without a limit:
    idx = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    organ = Volume((idx[0] > 81) & (idx[0] < 88) & (np.abs(idx[1] - 60) < 10), lesion.affine)
    loose = plan_seeds(
        maps,
        lesion,
        data,
        template="free",
        organs={"organ": organ},
        goals=SeedGoals(oar_max_gy={"organ": 1e6}),
    )
    # 5 % under the unconstrained maximum: the limit binds (tighter ones make the goals
    # unreachable for this greedy loading, which never trades coverage for organ dose).
    limit = 0.95 * loose.metrics["organ_max_gy"]
    tight = plan_seeds(
        maps,
        lesion,
        data,
        template="free",
        organs={"organ": organ},
        goals=SeedGoals(oar_max_gy={"organ": limit}),
    )
    assert tight.metrics["organ_max_gy"] <= limit + 1e-6
    assert tight.metrics["d90_gy"] >= 120.0
    assert free.n_seeds > 0
    with pytest.raises(ValueError, match="no mask"):
        plan_seeds(maps, lesion, data, goals=SeedGoals(oar_max_gy={"cord": 10.0}))
