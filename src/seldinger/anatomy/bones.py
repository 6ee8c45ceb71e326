"""Bones: ribs, spine, sternum, scapulae, clavicles, humeri, pelvis, femora (one mask)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from seldinger.anatomy._morph import BoolArray, IN_PLANE_8, ellipsoid
from seldinger.anatomy.checks import require_canonical
from seldinger.imaging import Volume

__all__ = ["BONE_THRESHOLD_HU", "segment_bones"]

#: Bone (cortex, and trabecular bone blurred by partial volume on 3 mm slices) reads above
#: it; muscle and unenhanced organs (30-70 HU) stay below.
BONE_THRESHOLD_HU = 130.0

# Contrast-enhanced blood and organs (heart, aorta, spleen, kidneys: 150-450 HU on
# lidc-idri-0001) read like trabecular bone. They are found as thick regions of that range
# (an opening of _THICK_MM keeps them, removes cortex and thin trabeculae) that are not
# wrapped in cortex: the 90th percentile of the 3 mm shell around each region is below
# _SHELL_CORTEX_HU for organs (125-284 HU measured) and above it for marrow inside a
# vertebra, humerus or pelvis (317-640 HU; one lumbar body at 3 mm read 278 and is lost).
_ENHANCED_RANGE_HU = (BONE_THRESHOLD_HU, 600.0)
_THICK_MM = 4.0
_SHELL_MM = 3.0
_SHELL_CORTEX_HU = 300.0
_COARSE_MM = 1.4
# An enhanced region this large (heart and great vessels: 541 mL on lidc-idri-0001) tells
# a contrast CT; without one, nothing is removed as enhanced tissue.
_BLOOD_POOL_ML = 100.0
_MIN_BONE_ML = 0.3
# A bone component reaches cortex: HU above both _MIN_CORTEX_HU and the brightest
# enhanced blood (its 99.5th percentile + _CORTEX_ABOVE_BLOOD_HU), over _MIN_CORTEX_ML.
_MIN_CORTEX_HU = 300.0
_CORTEX_ABOVE_BLOOD_HU = 50.0
_MIN_CORTEX_ML = 0.02
# Per-slice holes up to this area are marrow (filled); larger ones (the spinal canal,
# 2-3 cm²) stay open.
_MAX_MARROW_HOLE_MM2 = 150.0


def _enhanced_soft_tissue(ct: Volume, body: BoolArray) -> tuple[BoolArray, float]:
    """Thick contrast-enhanced soft tissue (blood pool, spleen, kidneys) to keep out of bone.

    Returns the mask and the 99.5th percentile of the CT inside it (-inf when none).
    """
    sp = ct.spacing_mm
    step = [max(1, int(round(_COARSE_MM / s))) for s in sp[:2]]
    coarse_sp = (sp[0] * step[0], sp[1] * step[1], sp[2])
    smooth = ndi.gaussian_filter(
        ct.array[:: step[0], :: step[1]].astype(np.float32), [1.0 / s for s in coarse_sp]
    )
    mid = (smooth > _ENHANCED_RANGE_HU[0]) & (smooth < _ENHANCED_RANGE_HU[1])
    mid &= body[:: step[0], :: step[1]]
    thick = ndi.binary_opening(mid, ellipsoid(_THICK_MM, coarse_sp))
    labels, n = ndi.label(thick)
    soft = np.zeros(n + 1, dtype=bool)
    size_ml = np.bincount(labels.ravel(), minlength=n + 1) * float(np.prod(coarse_sp)) / 1000.0
    shell_el = ellipsoid(_SHELL_MM, coarse_sp)
    pad = [s // 2 + 1 for s in shell_el.shape]
    for lab, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - p, 0), min(s.stop + p, dim))
            for s, p, dim in zip(sl, pad, labels.shape, strict=True)
        )
        region = labels[box] == lab
        shell = ndi.binary_dilation(region, shell_el) & ~region
        if shell.any() and float(np.percentile(smooth[box][shell], 90)) < _SHELL_CORTEX_HU:
            soft[lab] = True
    if not np.any(soft & (size_ml >= _BLOOD_POOL_ML)):
        # No heart/aorta-sized enhanced region: an unenhanced CT, where thick mid-range
        # regions are vertebral bodies and pelvic marrow (totalseg-abdomen), not organs.
        return np.zeros(ct.shape, dtype=bool), -np.inf
    organs = soft[labels]
    # Give back what the opening trimmed off the organs' surface, within the HU range.
    organs = ndi.binary_dilation(organs, ellipsoid(_THICK_MM, coarse_sp)) & mid
    full = np.repeat(np.repeat(organs, step[0], axis=0), step[1], axis=1)
    full = np.asarray(full[: ct.shape[0], : ct.shape[1]])
    top_hu = float(np.percentile(ct.array[full], 99.5)) if full.any() else -np.inf
    return full, top_hu


def _fill_small_holes_per_slice(mask: BoolArray, max_area_voxels: int) -> BoolArray:
    filled = ndi.binary_fill_holes(mask, structure=IN_PLANE_8)
    holes = filled & ~mask
    labels, n = ndi.label(holes, structure=IN_PLANE_8)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    small = sizes <= max_area_voxels
    small[0] = False
    return np.asarray(mask | small[labels])


def segment_bones(ct: Volume, body: BoolArray) -> BoolArray:
    """Segment the skeleton inside the body as one mask.

    Voxels above :data:`BONE_THRESHOLD_HU` inside the body, minus thick contrast-enhanced
    soft tissue that is not wrapped in cortex (see the module constants for the measured
    separation), components of at least 0.3 mL, marrow holes (≤ 1.5 cm² per axial slice)
    filled. Costal cartilage (30-240 HU) is mostly below the threshold and not included.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered.
    body : ndarray of bool
        Body mask.
    """
    require_canonical(ct)
    a = ct.array
    organs, organ_top_hu = _enhanced_soft_tissue(ct, body)
    dense = body & (a > BONE_THRESHOLD_HU) & ~organs
    # Bone has cortex brighter than any blood: keep components that reach it (hysteresis).
    cortex_hu = max(_MIN_CORTEX_HU, organ_top_hu + _CORTEX_ABOVE_BLOOD_HU)
    labels, n = ndi.label(dense)
    voxel_ml = float(np.prod(ct.spacing_mm)) / 1000.0
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * voxel_ml
    cortex = np.bincount(labels[dense & (a > cortex_hu)], minlength=n + 1) * voxel_ml
    keep = (sizes >= _MIN_BONE_ML) & (cortex >= _MIN_CORTEX_ML)
    keep[0] = False
    bones = keep[labels]
    pixel_mm2 = ct.spacing_mm[0] * ct.spacing_mm[1]
    bones = _fill_small_holes_per_slice(bones, int(_MAX_MARROW_HOLE_MM2 / pixel_mm2))
    # Marrow enclosed by cortex in 3-D (femoral heads, sacrum); the spinal canal is open.
    return np.asarray(ndi.binary_fill_holes(bones))
