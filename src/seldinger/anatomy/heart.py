"""Heart: the large soft-tissue mass between the lungs, below the carina, above the diaphragm.

On a contrast CT the chambers are bright and the myocardium is not; unenhanced, blood and
myocardium read alike (30-50 HU). Either way the heart is the thickest non-fat tissue of the
mediastinum, outlined by the lungs, the pericardial fat and the diaphragm, so the method does
not need to tell blood from muscle:

1. Envelope: in each axial row, the region between the lungs' medial borders where both lungs
   are present, carried down :data:`_ENVELOPE_DOWN_MM` (the heart's lower part sits on the
   diaphragm below the anterior lung edges); nothing above the carina.
2. Candidate: non-fat tissue in it (above the half-way level between fat and soft tissue),
   less bone, airways, lungs, the liver with the diaphragm over it, and the vessels and
   oesophagus already segmented.
3. Opening by a ball of :data:`_CORE_MM` radius: the chambers stay, the thin bridges to the
   diaphragm, the stomach wall, the hilar vessels and the mediastinal fat strands go; the
   largest piece is the heart, grown back by :data:`_REGROW_MM` into the candidate
   (the atrial appendages, the apex); its holes are filled in each slice. The outline
   against fat is drawn again on the CT's own voxels.

TotalSegmentator's ``heart`` also holds the pulmonary trunk and the main pulmonary arteries;
here they are :func:`~seldinger.anatomy.great_vessels.segment_pulmonary_artery`'s, so compare
``heart | pulmonary_artery`` with that label.

Frame and units follow ``docs/conventions.md``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from seldinger.anatomy.mediastinal_context import MediastinalContext
from seldinger.anatomy.morphology import (
    BoolArray,
    bounding_slices,
    dilate_mm,
    erode_mm,
    fill_holes_per_slice,
)

__all__ = ["segment_heart"]

# The heart's inferior wall lies on the diaphragm up to 40 mm below the lowest rows where both
# lungs border the mediastinum (lidc-idri-0001: 30 mm at the cardiophrenic angles).
_ENVELOPE_DOWN_MM = 40.0
# The liver's dome is covered by the diaphragm (3-5 mm of muscle, as dense as unenhanced
# myocardium): removed with the liver.
_DIAPHRAGM_MM = 5.0
# Opening radius: the cardiac chambers are 40 mm or more across; the diaphragm, the
# oesophagus, hilar vessels and the great veins are under 24 mm thick.
_CORE_MM = 12.0
# Grown back after the opening (atrial appendages, apex, the chambers' corners).
_REGROW_MM = 4.0
# The heart's outline against fat is drawn at full resolution where the level is this share
# of the way from fat to soft tissue.
_EDGE_LEVEL = 0.75
# The heart lies below the carina; the left atrium's roof is at most this far above it.
_ABOVE_CARINA_MM = 0.0


def _between_lungs(context: MediastinalContext) -> BoolArray:
    """Rows between the right lung's medial edge and the left lung's, where both are present."""
    left, right = context.lung_left, context.lung_right
    ni = left.shape[0]
    i = np.arange(ni)[:, None, None]
    # The right lung lies at low i: its medial edge is its largest i in the row.
    right_edge = np.where(right.any(axis=0), ni - 1 - np.argmax(right[::-1], axis=0), -1)
    left_edge = np.where(left.any(axis=0), np.argmax(left, axis=0), ni)
    both = (right_edge >= 0) & (left_edge < ni)
    return np.asarray(both[None] & (i > right_edge[None]) & (i < left_edge[None]))


def _carried_down(mask: BoolArray, down_mm: float, slice_mm: float) -> BoolArray:
    """``mask`` or ``mask`` in any of the slices up to ``down_mm`` above."""
    out = mask.copy()
    for dk in range(1, max(1, round(down_mm / slice_mm)) + 1):
        out[:, :, :-dk] |= mask[:, :, dk:]
    return out


def segment_heart(context: MediastinalContext, exclude: BoolArray | None = None) -> BoolArray:
    """Segment the heart (chambers, myocardium, pericardium) on the CT's grid.

    Parameters
    ----------
    context : MediastinalContext
        The CT and its structures (:func:`~.mediastinal_context.mediastinal_context`).
    exclude : ndarray of bool, the work grid's shape, optional
        Structures that are not heart (aorta, pulmonary artery, superior vena cava,
        oesophagus), on the work grid.

    Returns
    -------
    ndarray of bool, the CT's shape
        All False when the CT shows no heart (no mediastinum between two lungs).
    """
    sp = context.spacing_mm
    out = np.zeros(context.ct.shape, dtype=bool)
    envelope = _carried_down(_between_lungs(context), _ENVELOPE_DOWN_MM, sp[2])
    carina = context.carina_mm
    if carina is not None:
        top = int(np.floor((carina[2] + _ABOVE_CARINA_MM) / sp[2]))
        envelope[:, :, top + 1 :] = False
    if not envelope.any():
        return out
    box = bounding_slices(envelope, pad=(2, 2, 0))
    levels = context.levels
    hu = context.hu[box]
    candidate = envelope[box] & (hu > levels.fat_edge_hu) & context.body[box]
    candidate &= ~(context.lungs[box] | context.bones[box] | context.airways[box])
    if context.liver.any():
        candidate &= ~dilate_mm(context.liver[box], _DIAPHRAGM_MM, sp)
    # The core is found with the vessels in: cutting them out first can split the heart
    # (the aortic root passes between the atria); they are cut from the grown heart.
    # The opening's erosion and dilation run on a grid twice as coarse in-plane (2.8 mm, a
    # fifth of the radius): the outline is drawn again on the work grid and the CT's.
    coarse = (2, 2, 1)
    sp_c = (sp[0] * 2, sp[1] * 2, sp[2])
    cand_c = _block_all(candidate, coarse)
    core = erode_mm(cand_c, _CORE_MM, sp_c)
    labels, n = ndi.label(core)
    if n == 0:
        return out
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    core = labels == int(np.argmax(sizes))
    if exclude is not None:
        candidate &= ~exclude[box]
    grown = dilate_mm(core, _CORE_MM + _REGROW_MM, sp_c)
    heart = _repeat(grown, coarse, candidate.shape) & candidate
    heart &= ~context.lungs[box]
    if exclude is not None:
        heart &= ~exclude[box]
    work = np.zeros(context.hu.shape, dtype=bool)
    work[box] = fill_holes_per_slice(heart)
    return _on_ct_grid(context, work, exclude)


def _block_all(mask: BoolArray, factors: tuple[int, int, int]) -> BoolArray:
    """Coarse cells whose voxels are all in ``mask`` (an eroding downsampling; edges cut)."""
    ni, nj, nk = (n // f for n, f in zip(mask.shape, factors, strict=True))
    fi, fj, fk = factors
    cut = mask[: ni * fi, : nj * fj, : nk * fk]
    return np.asarray(cut.reshape(ni, fi, nj, fj, nk, fk).all(axis=(1, 3, 5)))


def _on_ct_grid(
    context: MediastinalContext, work: BoolArray, exclude: BoolArray | None
) -> BoolArray:
    """The work-grid heart on the CT's grid: its voxels' edge against fat re-drawn at full
    resolution, holes filled per slice."""
    grid = context.grid
    out = np.zeros(context.ct.shape, dtype=bool)
    if not work.any():
        return out
    disc = np.ones((3, 3, 1), dtype=bool)
    rim = ndi.binary_dilation(work, disc)
    box_w = bounding_slices(rim)
    box = tuple(
        slice(s.start * f, min(s.stop * f, n))
        for s, f, n in zip(box_w, grid.factors, context.ct.shape, strict=True)
    )
    shape = tuple(s.stop - s.start for s in box)
    inner = _repeat(ndi.binary_erosion(work[box_w], disc), grid.factors, shape)
    band = _repeat(rim[box_w], grid.factors, shape) & ~inner
    ct = np.asarray(context.ct.array[box])
    heart = inner | (
        band
        & (ct > _EDGE_LEVEL * context.levels.tissue_hu + (1 - _EDGE_LEVEL) * context.levels.fat_hu)
    )
    if exclude is not None:
        heart &= ~_repeat(exclude[box_w], grid.factors, shape)
    out[box] = fill_holes_per_slice(heart)
    return out


def _repeat(mask: BoolArray, factors: tuple[int, int, int], shape: tuple[int, ...]) -> BoolArray:
    out = mask
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    pad = [(0, max(0, n - m)) for n, m in zip(shape, out.shape, strict=True)]
    if any(after for _, after in pad):
        out = np.pad(out, pad)
    return np.asarray(out[: shape[0], : shape[1], : shape[2]])
