"""Spinal canal (reported as ``spinal_cord``) and the spine landmarks the mediastinal steps use.

The canal is the one soft-tissue space on the posterior midline that bone surrounds on almost
every side: the vertebral body in front, the pedicles beside it, the laminae behind. From each
voxel, rays are cast in 16 in-plane directions; a voxel of the canal meets bone within
:data:`_REACH_MM` along nearly all of them, even at the levels where a foramen or the gap
between two laminae opens one side, or where a 2.5 mm slice passes through a disc instead of
a vertebral body. Bone is taken from the CT (cortex and marrow above soft tissue + 100 HU)
and the pipeline's bone mask, less anything close to soft tissue (that mask fills the canal
where enhanced epidural veins brighten it).

The best-enclosed piece of a canal's size on the midline seeds a slice-by-slice tracking up
and down: each next slice takes the enclosed piece that overlaps the last cross-section most
for its size (cut back to it when it has merged with a disc or a foramen); where no enclosed
piece continues it (a 3 mm lumbar slice open at a foramen and between the laminae at once),
the soft tissue within one voxel of the last cross-section does, as long as it keeps most of
it. Slices it skips are bridged from their neighbours.

The mask is the whole canal content (cord, cerebrospinal fluid, epidural fat and veins) out to
the bone, which is what a needle must avoid; TotalSegmentator calls its nearest structure
``spinal_cord``, so the pipeline reports the canal under that name.

Frame and units follow ``docs/conventions.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.mediastinal_grid import FloatArray, WorkGrid, checked_mask, measure_levels
from seldinger.anatomy.morphology import (
    BoolArray,
    bounding_slices,
    ellipsoid,
    fill_holes_per_slice,
    largest_component,
)
from seldinger.imaging import Volume

__all__ = ["Spine", "find_spine", "segment_spinal_canal"]

# Rays: 16 in-plane directions (22.5° apart). A canal voxel meets bone within _REACH_MM in at
# least _MIN_ENCLOSED of them. The thoracic and lumbar canal is 15-25 mm across, so from any
# point inside it the wall is nearer than 22 mm; a foramen or the interlaminar gap opens at
# most 2-3 directions, and a disc level (no bone in front) another 3.
_DIRECTIONS = 16
_REACH_MM = 22.0
_MIN_ENCLOSED = 12
# The canal lies within this distance (left-right) of the body's midline; the scapulae and the
# costovertebral joints that also enclose soft tissue lie further out.
_MIDLINE_MM = 25.0
# The canal lies behind the body's centre in the chest and abdomen, and up to this far in front
# of it where the shoulders pull that centre back (as bones.py measured on lidc-idri-0001).
_AHEAD_OF_CENTRE_MM = 25.0
# Bone for the enclosure test: cortex and vertebral marrow read 180 HU and more on 1.4 mm
# blocks, the canal's content 0-60 HU (CSF, cord, epidural fat) except enhanced veins at its
# rim. Soft tissue + 100 HU lies between (150 HU with muscle at 50 HU).
_BONE_ABOVE_TISSUE_HU = 100.0
# The pipeline's bone mask fills the canal where enhanced epidural veins lift its mean above
# 50 HU; a voxel less than this above soft tissue is not bone whatever that mask says, and
# only such voxels can be canal (discs, 70-110 HU, and osteoporotic marrow stay out).
_CANAL_MAX_ABOVE_TISSUE_HU = 30.0
_AIR_HU = -400.0
# Seed of the tracking: a piece of a canal's area (1-4.5 cm²), the best enclosed.
_SEED_AREA_MM2 = (100.0, 450.0)
# From slice to slice the canal's outline moves less than _STEP_MM; a piece more than
# _MAX_GROWTH times the previous cross-section has merged with its surroundings and is cut to
# one voxel around the previous one.
_STEP_MM = 3.0
_MAX_GROWTH = 1.5
# Without an enclosed piece, the canal continues through soft tissue if that keeps at least
# _MIN_KEPT of its previous cross-section.
_MIN_KEPT = 0.6
# A canal cross-section holds at least this area (the cord alone is 0.6-1 cm²): where less is
# left, the canal has ended (the lower sacrum) or is lost.
_MIN_AREA_MM2 = 60.0
# The vertebral body's front is looked for this far in front of the canal's centre (canal
# radius 8 mm + vertebral body depth 25-45 mm, with margin; the sternum lies 80 mm or more in
# front of the canal) and this far to either side of it.
_BODY_DEPTH_MM = 65.0
_BODY_HALF_WIDTH_MM = 8.0
# Slices where the canal is not found (open on too many sides, or merged with the tissue
# around it) are bridged up to this length.
_GAP_MM = 6.0
# The vertebral body's posterior wall lies within _POSTERIOR_WALL_MM in front of the canal's
# centre (canal radius 6-12 mm); its bone run may be interrupted by up to _CORTEX_GAP_MM
# (basivertebral vein, partial volume of a thin cortex).
_POSTERIOR_WALL_MM = 16.0
_CORTEX_GAP_MM = 3.0
# A disc level shows no bone in front of the canal on a 2.5 mm slice: the front is taken as the
# most anterior bone within this many millimetres above or below.
_DISC_MM = 6.0

# In-plane 4-connectivity (one call labels every axial slice), and its 2-D cross.
_IN_PLANE_4 = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE_4[1, :, 1] = True
_IN_PLANE_4[:, 1, 1] = True
_CROSS = _IN_PLANE_4[:, :, 1].copy()


@dataclass(frozen=True)
class Spine:
    """Spine landmarks per work-grid slice (work-grid index units; NaN where not found).

    Attributes
    ----------
    canal : ndarray of bool, the work grid's shape
        Spinal canal on the work grid.
    centre_i, centre_j : ndarray, shape (K,)
        Canal centre in each slice.
    front_j : ndarray, shape (K,)
        j of the vertebral body's front (its most anterior bone) in each slice.
    tissue_hu : float
        The soft-tissue level the canal was told from bone with.
    """

    canal: BoolArray
    centre_i: FloatArray
    centre_j: FloatArray
    front_j: FloatArray
    tissue_hu: float

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        """Slices where the canal was found (or bridged)."""
        return np.asarray(np.isfinite(self.centre_i))


def _ray_offsets(spacing_mm: tuple[float, float, float]) -> list[list[tuple[int, int]]]:
    """Per direction, the (di, dj) voxel steps out to :data:`_REACH_MM` (duplicates removed)."""
    step_mm = min(spacing_mm[0], spacing_mm[1])
    steps = np.arange(step_mm, _REACH_MM + 1e-6, step_mm)
    out = []
    for angle in np.linspace(0.0, 2.0 * np.pi, _DIRECTIONS, endpoint=False):
        di = np.round(steps * np.cos(angle) / spacing_mm[0]).astype(int)
        dj = np.round(steps * np.sin(angle) / spacing_mm[1]).astype(int)
        offsets = list(dict.fromkeys(zip(di.tolist(), dj.tolist(), strict=True)))
        out.append([o for o in offsets if o != (0, 0)])
    return out


def _shifted(mask: BoolArray, di: int, dj: int) -> BoolArray:
    """``out[i, j] = mask[i + di, j + dj]`` (False beyond the array)."""
    out = np.zeros_like(mask)
    ni, nj = mask.shape[:2]
    src_i = slice(max(di, 0), ni + min(di, 0))
    dst_i = slice(max(-di, 0), ni + min(-di, 0))
    src_j = slice(max(dj, 0), nj + min(dj, 0))
    dst_j = slice(max(-dj, 0), nj + min(-dj, 0))
    out[dst_i, dst_j] = mask[src_i, src_j]
    return out


def _enclosure(bone: BoolArray, spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.uint8]:
    """Number of the 16 in-plane directions in which bone lies within :data:`_REACH_MM`."""
    count = np.zeros(bone.shape, dtype=np.uint8)
    for offsets in _ray_offsets(spacing_mm):
        hit = np.zeros_like(bone)
        for di, dj in offsets:
            hit |= _shifted(bone, di, dj)
        count += hit
    return count


def _body_centre(body: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Centre (i, j) of the body in each slice (NaN where the slice holds no body)."""
    i_idx = np.arange(body.shape[0], dtype=np.float64)[:, None, None]
    j_idx = np.arange(body.shape[1], dtype=np.float64)[None, :, None]
    n = body.sum(axis=(0, 1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ci = (body * i_idx).sum(axis=(0, 1)) / n
        cj = (body * j_idx).sum(axis=(0, 1)) / n
    return ci.astype(np.float32), cj.astype(np.float32)


def _interpolate(values: FloatArray) -> FloatArray:
    """Fill NaNs between the first and last finite value linearly; NaN outside stays."""
    out = values.astype(np.float32).copy()
    ok = np.flatnonzero(np.isfinite(out))
    if ok.size == 0:
        return out
    span = np.arange(ok[0], ok[-1] + 1)
    out[span] = np.interp(span, ok, out[ok])
    return out


def find_spine(
    hu: FloatArray, body: BoolArray, bones: BoolArray, grid: WorkGrid, tissue_hu: float
) -> Spine:
    """Spinal canal and vertebral body front on the work grid (see the module docstring).

    Parameters
    ----------
    hu : ndarray, the work grid's shape
        Smoothed CT on the work grid (HU).
    body : ndarray of bool, the work grid's shape
        Body on the work grid.
    grid : WorkGrid
        The work grid.
    tissue_hu : float
        The scan's soft-tissue level (:func:`~.mediastinal_grid.measure_levels`).
    """
    ni, nj, nk = hu.shape
    sp = grid.spacing_mm
    nan = np.full(nk, np.nan, dtype=np.float32)
    none = Spine(np.zeros(hu.shape, dtype=bool), nan, nan.copy(), nan.copy(), tissue_hu)
    centre_i, centre_j = _body_centre(body)
    if not np.isfinite(centre_i).any():
        return none
    # Bone from the CT itself: the pipeline's bone mask fills the canal where enhanced
    # epidural veins brighten it.
    bone = (bones | (hu > tissue_hu + _BONE_ABOVE_TISSUE_HU)) & (
        hu > tissue_hu + _CANAL_MAX_ABOVE_TISSUE_HU
    )
    mid_i = float(np.nanmedian(centre_i))
    lo_i = max(int(mid_i - (_MIDLINE_MM + _REACH_MM) / sp[0]), 0)
    hi_i = min(int(mid_i + (_MIDLINE_MM + _REACH_MM) / sp[0]) + 1, ni)
    lo_j = max(int(np.nanmin(centre_j) - (_AHEAD_OF_CENTRE_MM + _REACH_MM) / sp[1]), 0)
    box = (slice(lo_i, hi_i), slice(lo_j, nj))
    count = _enclosure(bone[box], sp)
    soft = ~bone[box] & body[box] & (hu[box] > _AIR_HU)
    soft &= hu[box] < tissue_hu + _CANAL_MAX_ABOVE_TISSUE_HU
    candidate = soft & (count >= _MIN_ENCLOSED)
    i_rel = np.arange(lo_i, hi_i, dtype=np.float32)[:, None, None]
    j_rel = np.arange(lo_j, nj, dtype=np.float32)[None, :, None]
    candidate &= np.abs(i_rel - centre_i[None, None, :]) * sp[0] <= _MIDLINE_MM
    candidate &= (centre_j[None, None, :] - j_rel) * sp[1] <= _AHEAD_OF_CENTRE_MM
    labels, n = ndi.label(candidate, structure=_IN_PLANE_4)
    if n == 0:
        return none
    canal_box = _track(labels, n, count, soft, centre_i[None, None, :] - lo_i, sp)
    if canal_box is None:
        return none
    canal = np.zeros(hu.shape, dtype=bool)
    canal[box] = canal_box
    return _landmarks(canal, bone, grid, tissue_hu)


def _track(
    labels: npt.NDArray[np.int32],
    n: int,
    count: npt.NDArray[np.uint8],
    soft: BoolArray,
    centre_i: FloatArray,
    sp: tuple[float, float, float],
) -> BoolArray | None:
    """Follow the canal through the per-slice pieces ``labels`` from the best-enclosed one.

    Where no enclosed piece continues the canal (a 3 mm slice through a lumbar foramen and
    the interlaminar gap at once), the canal continues through ``soft`` tissue within one
    voxel of its previous outline.
    """
    where = np.nonzero(labels)
    lab = labels[where]
    area_mm2 = np.bincount(lab, minlength=n + 1) * sp[0] * sp[1]
    size = np.maximum(np.bincount(lab, minlength=n + 1), 1)
    enclosed = np.bincount(lab, count[where], minlength=n + 1) / size
    off_mm = np.bincount(lab, where[0] - centre_i[0, 0, where[2]], minlength=n + 1) / size
    k_of = np.zeros(n + 1, dtype=np.intp)
    k_of[lab] = where[2]
    # Seed: the best-enclosed piece of a canal's size on the midline.
    score = enclosed - np.abs(off_mm) * sp[0] / _MIDLINE_MM * _DIRECTIONS / 4.0
    plausible = (area_mm2 >= _SEED_AREA_MM2[0]) & (area_mm2 <= _SEED_AREA_MM2[1])
    plausible[0] = False
    if not plausible.any():
        return None
    seed = int(np.argmax(np.where(plausible, score, -np.inf)))
    out = np.zeros(labels.shape, dtype=bool)
    k0 = int(k_of[seed])
    out[:, :, k0] = labels[:, :, k0] == seed
    near = ellipsoid(_STEP_MM, sp, in_plane=True)[:, :, 0]
    gap = max(1, round(_GAP_MM / sp[2]))
    for step in (1, -1):
        prev, misses, k = out[:, :, k0], 0, k0 + step
        while 0 <= k < labels.shape[2] and misses <= gap:
            piece = _next_piece(labels[:, :, k], prev, near, area_mm2)
            if piece is None:
                piece = _continue_soft(soft[:, :, k], prev, _MIN_AREA_MM2 / (sp[0] * sp[1]))
            if piece is None:
                misses += 1
            else:
                out[:, :, k] = piece
                prev, misses = piece, 0
            k += step
    return out


def _next_piece(
    here: npt.NDArray[np.int32], prev: BoolArray, near: BoolArray, area_mm2: FloatArray
) -> BoolArray | None:
    """The enclosed piece of slice ``here`` that continues ``prev``, or None."""
    hits = np.bincount(here[ndi.binary_dilation(prev, near)], minlength=area_mm2.size)
    hits[0] = 0
    if hits.max() == 0:
        return None
    # The piece that overlaps most relative to its size: a large neighbour touching the
    # canal's rim does not win over the canal.
    piece = here == int(np.argmax(hits / np.sqrt(np.maximum(area_mm2, 1.0))))
    if piece.sum() > _MAX_GROWTH * prev.sum():
        # Merged with the tissue around (an open foramen, a disc): keep what lies near.
        piece &= ndi.binary_dilation(prev, _CROSS)
    return piece


def _continue_soft(soft: BoolArray, prev: BoolArray, min_voxels: float) -> BoolArray | None:
    """Soft tissue within one voxel of ``prev``, if it keeps most of the cross-section."""
    grown = soft & ndi.binary_dilation(prev, _CROSS)
    kept = largest_component(grown)
    if kept.sum() < max(_MIN_KEPT * prev.sum(), min_voxels):
        return None
    if kept.sum() > _MAX_GROWTH * prev.sum():
        kept &= prev
    return kept


def _landmarks(canal: BoolArray, bones: BoolArray, grid: WorkGrid, tissue_hu: float) -> Spine:
    """Centres per slice (gaps bridged, the canal filled in there) and the vertebral front."""
    ni, nj, nk = canal.shape
    sp = grid.spacing_mm
    ii, jj, kk = np.nonzero(canal)
    n = np.bincount(kk, minlength=nk).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ci = (np.bincount(kk, ii, minlength=nk) / n).astype(np.float32)
        cj = (np.bincount(kk, jj, minlength=nk) / n).astype(np.float32)
    ci, cj = _interpolate(ci), _interpolate(cj)
    # Bridge slices without canal by a disc of the median cross-section.
    radius_mm = float(np.sqrt(np.median(n[n > 0]) * sp[0] * sp[1] / np.pi))
    gi = np.arange(ni, dtype=np.float32)[:, None]
    gj = np.arange(nj, dtype=np.float32)[None, :]
    for k in np.flatnonzero((n == 0) & np.isfinite(ci)):
        disc = ((gi - ci[k]) * sp[0]) ** 2 + ((gj - cj[k]) * sp[1]) ** 2 <= radius_mm**2
        canal[:, :, k] = disc & ~bones[:, :, k]
    # Vertebral body front: the anterior end of the bone run that starts just in front of
    # the canal, in a strip along the midline (a disc level has none: bridged below).
    front = np.full(nk, np.nan, dtype=np.float32)
    half = max(1, round(_BODY_HALF_WIDTH_MM / sp[0]))
    depth = round(_BODY_DEPTH_MM / sp[1])
    start = round(_POSTERIOR_WALL_MM / sp[1])
    gap = max(1, round(_CORTEX_GAP_MM / sp[1]))
    for k in np.flatnonzero(np.isfinite(ci)):
        i0, j0 = round(float(ci[k])), round(float(cj[k]))
        strip = bones[max(i0 - half, 0) : i0 + half + 1, max(j0 - depth, 0) : j0, k]
        column = np.asarray(strip.any(axis=0))
        idx = np.flatnonzero(column[::-1])  # bone at these steps forwards from the centre
        if idx.size == 0 or idx[0] > start:
            continue
        breaks = np.flatnonzero(np.diff(idx) > gap + 1)
        front[k] = j0 - 1 - (idx[breaks[0]] if breaks.size else idx[-1])
    reach = max(1, round(_DISC_MM / sp[2]))
    filled = np.where(np.isfinite(front), front, np.inf)
    front_min = ndi.minimum_filter1d(filled, 2 * reach + 1, mode="nearest")
    front = np.where(np.isfinite(front_min) & np.isfinite(ci), front_min, np.nan)
    return Spine(canal, ci, cj, _interpolate(front.astype(np.float32)), tissue_hu)


def segment_spinal_canal(
    ct: Volume, body: npt.ArrayLike, bones: npt.ArrayLike, *, spine: Spine | None = None
) -> BoolArray:
    """Segment the spinal canal (cord, CSF, epidural space) inside the vertebrae.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (the pipeline's body-cropped CT).
    body, bones : array_like of bool, the CT's shape
        Body and bones of this CT (:mod:`seldinger.anatomy.body`, :mod:`.bones`).
    spine : Spine, optional
        Landmarks already found on the work grid by :func:`find_spine` (saves the search).

    Returns
    -------
    ndarray of bool, the CT's shape
        The canal; all False when the CT shows no spine.
    """
    require_canonical(ct)
    body_m = checked_mask("body", body, ct.shape)
    bones_m = checked_mask("bones", bones, ct.shape)
    grid = WorkGrid.for_ct(ct.shape, ct.spacing_mm)
    if spine is None:
        hu = grid.smooth(grid.mean(ct.array))
        body_w = grid.coarse(body_m)
        levels = measure_levels(hu, body_w)
        spine = find_spine(hu, body_w, grid.coarse(bones_m), grid, levels.tissue_hu)
    if not spine.canal.any():
        return np.zeros(ct.shape, dtype=bool)
    # Back on the CT's grid: the work voxels of the canal and a one-voxel rim (the partial
    # blocks at its edge), less the CT's own bone and rim voxels of cortex, holes filled per
    # slice; all inside the canal's bounding box.
    box = bounding_slices(grid.full(spine.canal), pad=(4, 4, 0))
    rim = grid.full(ndi.binary_dilation(spine.canal, _IN_PLANE_4))[box]
    out = (
        rim
        & body_m[box]
        & (np.asarray(ct.array[box]) < spine.tissue_hu + _CANAL_MAX_ABOVE_TISSUE_HU)
    )
    full = np.zeros(ct.shape, dtype=bool)
    full[box] = fill_holes_per_slice(out)
    return full
