"""Mediastinum: heart, great vessels and the soft tissue between the lungs, as one region."""

from __future__ import annotations

import numpy as np

from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.morphology import BoolArray, bounding_slices, largest_component
from seldinger.imaging import Volume

__all__ = ["segment_mediastinum"]

# Fat, vessels, heart and lymph nodes read above -200 HU; air in the oesophagus or
# trachea below it stays out (the airways are their own structure).
_SOFT_TISSUE_MIN_HU = -200.0
# The descending aorta lies beside the front half of the vertebral body; tissue further
# back than this behind the spine's front edge (vertebral arch, paraspinal muscle) is not
# mediastinum.
_BEHIND_SPINE_FRONT_MM = 15.0
# Thickness of the cut under the lung bases (diaphragm and partial volume).
_UNDER_BASE_MM = 12.0
# Half-width of the midline strip where the spine's front edge is looked for.
_SPINE_STRIP_MM = 15.0


def segment_mediastinum(
    ct: Volume,
    lungs_left: BoolArray,
    lungs_right: BoolArray,
    bones: BoolArray,
    liver: BoolArray | None = None,
) -> BoolArray:
    """Segment the region between the lungs: heart, great vessels, oesophagus, fat.

    In each axial row (fixed j, k) the mediastinum is the soft tissue between the right
    lung's medial edge and the left lung's medial edge; bone, and tissue more than 15 mm
    behind the front of the vertebral body, are excluded; the largest 3-D component is kept.
    Tissue under a lung base (lung above it in its column: liver, stomach, spleen) is
    excluded, and rows where only one lung is present contribute nothing, so the region
    ends where the lungs end.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (i grows toward the patient's left).
    lungs_left, lungs_right, bones : ndarray of bool
        Masks from :func:`~seldinger.anatomy.lungs.segment_lungs` and
        :func:`~seldinger.anatomy.bones.segment_bones`.
    """
    require_canonical(ct)
    lungs = lungs_left | lungs_right
    out = np.zeros(ct.shape, dtype=bool)
    if not (lungs_left.any() and lungs_right.any()):
        return out
    box = bounding_slices(lungs)
    left, right, bone = lungs_left[box], lungs_right[box], bones[box]
    lung = left | right
    ni, nj, _ = lung.shape
    i = np.arange(ni)[:, None, None]
    # The right lung lies at low i: its medial edge is its largest i in the row, the left
    # lung's its smallest i.
    right_edge = np.where(right.any(axis=0), ni - 1 - np.argmax(right[::-1], axis=0), -1)
    left_edge = np.where(left.any(axis=0), np.argmax(left, axis=0), ni)
    both = (right_edge >= 0) & (left_edge < ni)
    region = both[None] & (i > right_edge[None]) & (i < left_edge[None])
    region &= (ct.array[box] > _SOFT_TISSUE_MIN_HU) & ~bone & ~lung
    if liver is not None:
        region &= ~liver[box]
    # Under a lung base (lung within _UNDER_BASE_MM above the voxel in its column) lie the
    # diaphragm and the liver, stomach or spleen: cut there, so the abdomen does not join.
    # The band is short because the anterior lungs also overhang the top of the heart.
    band = max(1, round(_UNDER_BASE_MM / ct.spacing_mm[2]))
    under = np.zeros_like(lung)
    for dk in range(1, band + 1):
        under[:, :, :-dk] |= lung[:, :, dk:]
    region &= ~under
    # Spine front edge per slice: the most anterior bone voxel in a midline strip of the
    # posterior half of the lungs' box.
    mid_i = round(float(np.mean(np.flatnonzero(lung.any(axis=(1, 2))))))
    half = max(1, round(_SPINE_STRIP_MM / ct.spacing_mm[0]))
    j_mid = nj // 2
    posterior = bone[max(mid_i - half, 0) : mid_i + half + 1, j_mid:].any(axis=0)  # (j, k)
    front_j = np.where(posterior.any(axis=0), j_mid + np.argmax(posterior, axis=0), nj)
    limit_j = front_j + _BEHIND_SPINE_FRONT_MM / ct.spacing_mm[1]
    region &= np.arange(nj)[None, :, None] <= limit_j[None, None, :]
    out[box] = largest_component(region)
    return out
