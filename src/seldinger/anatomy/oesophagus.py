"""Oesophagus from the thoracic inlet to the hiatus, with its centreline.

The oesophagus is a collapsed muscular tube of 15-25 mm × 8-15 mm, soft tissue (30-60 HU on
any CT: it does not enhance much) often holding a little air, set in fat between the trachea
or the left atrium in front and the spine and descending aorta behind. It is found as a
chain of blobs:

1. Blob map per axial slice: the CT is clipped to [fat, soft tissue] and scaled to 0-1, with
   the structures it is not (lungs, bones, airways, aorta, heart) set to the fat end and air
   pockets outside lungs and airways (the oesophageal lumen) to the tissue end; a difference
   of Gaussians (:data:`_BLOB_SIGMA_MM`, :data:`_SURROUND_SIGMA_MM`) responds to a blob of
   tissue of the oesophagus's size surrounded by fat.
2. Search window per slice relative to the spine (in front of the vertebral body, near the
   midline); candidates are the local maxima; they are linked from slice to slice by the
   same dynamic programming as the aorta's circles, from the top of the CT or the trachea
   down to the last slice above the hiatus where the chain holds.
3. The mask in each slice is the tissue and air connected to the chain's point within
   :data:`_MAX_RADIUS_MM`, less the other structures.

The centreline (LPS mm, top to bottom) carries, at each point, the radius of the circle with
the cross-section's area (outer wall) and that of the air in the lumen (0 where collapsed).

Frame and units follow ``docs/conventions.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.mediastinal_context import MediastinalContext
from seldinger.anatomy.mediastinal_tubes import Circles, link_circles, slice_windows
from seldinger.anatomy.morphology import BoolArray, bounding_slices, fill_holes_per_slice

__all__ = ["OesophagusCentreline", "segment_oesophagus"]

F64 = npt.NDArray[np.float64]

# Where the oesophagus is expected (mm; + = left, + = posterior). Above the carina it lies
# against the trachea's back wall, slightly left (lidc-idri-0001: 0-7 mm left, 12-15 mm
# behind the trachea's centre); below, in front of the descending aorta and a little to its
# right (0-5 mm right, 17-23 mm in front of its centre; 28 mm at the hiatus); without either,
# in front of the vertebral body, left of the midline.
#: Smoothing (Gaussian sigma, mm along the body axis) of the centreline's slice centroids.
_CENTRELINE_SMOOTH_MM = 4.0
_FROM_TRACHEA_MM = (4.0, 14.0)
_FROM_AORTA_MM = (-3.0, -20.0)
_BEHIND_SPINE_MM = (10.0, -20.0)
# Candidates within _SEARCH_MM of the expected centre (_SPINE_SEARCH_MM from the spine's
# guess); an offset of _OFFSET_SCALE_MM costs _OFFSET_COST of the blob response (0-1),
# growing with its square.
_SEARCH_MM = 20.0
_SPINE_SEARCH_MM = 30.0
_OFFSET_SCALE_MM = 10.0
_OFFSET_COST = 0.1
# Blob scale: a collapsed oesophagus is 8-15 mm thick (sigma ~ a third of the radius of the
# blob, the surround 2.5 times wider).
_BLOB_SIGMA_MM = 3.0
_SURROUND_SIGMA_MM = 7.5
# Brighter than soft tissue by more than this is enhanced blood or bone, not oesophagus.
_ABOVE_TISSUE_HU = 60.0
# Air in the lumen reads below this; it is counted as the oesophagus's own content.
_AIR_HU = -500.0
# Chain: a slice joins with a blob response of at least _MIN_RESPONSE (0-1 scale: a tissue
# blob in fat reaches 0.3-0.5); starting or ending the chain costs _START_COST.
_MIN_RESPONSE = 0.08
_START_COST = 1.0
# Where the oesophagus is squeezed between the arch and the trachea, or hides behind the left
# atrium, the chain may miss it over up to this length (bridged by interpolation).
_MAX_GAP_MM = 30.0
# The mask: tissue and lumen air within this distance of the chain's point.
_MAX_RADIUS_MM = 11.0
# The search keeps out of the other structures less this rim (unenhanced, a heart or aorta
# found against the fat around them holds the oesophagus's edge where it touches them).
_OTHERS_CORE_MM = 3.0


@dataclass(frozen=True, eq=False)
class OesophagusCentreline:
    """The oesophagus's centreline from the thoracic inlet (first point) to the hiatus.

    Attributes
    ----------
    points_lps_mm : ndarray, shape (N, 3)
        Centre of the cross-section in each axial slice, LPS mm, top to bottom.
    radius_mm : ndarray, shape (N,)
        Radius of the circle with the cross-section's area (outer wall), mm.
    lumen_radius_mm : ndarray, shape (N,)
        Radius of the circle with the area of the air in the lumen, mm (0 where collapsed).
    """

    points_lps_mm: F64
    radius_mm: F64
    lumen_radius_mm: F64

    @property
    def length_mm(self) -> float:
        """Length of the centreline polyline, mm."""
        if len(self.points_lps_mm) < 2:
            return 0.0
        return float(np.linalg.norm(np.diff(self.points_lps_mm, axis=0), axis=1).sum())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary (0.01 mm)."""
        return {
            "points_lps_mm": np.round(self.points_lps_mm, 2).tolist(),
            "radius_mm": np.round(self.radius_mm, 2).tolist(),
            "lumen_radius_mm": np.round(self.lumen_radius_mm, 2).tolist(),
            "length_mm": round(self.length_mm, 2),
        }


def _blob_map(
    context: MediastinalContext, hu: npt.NDArray[np.float32], masks: dict[str, BoolArray]
) -> npt.NDArray[np.float32]:
    """Difference-of-Gaussians response (per axial slice) to tissue blobs in fat, 0-1 scale.

    ``masks`` holds ``blocked`` (structures that are not oesophagus) and ``air_ok`` (where air
    can be oesophageal lumen: inside the body, outside lungs and airways), on ``hu``'s grid.
    """
    levels = context.levels
    span = max(levels.tissue_hu - levels.fat_hu, 1.0)
    scaled = np.clip((hu - levels.fat_hu) / span, 0.0, 1.0).astype(np.float32)
    # Enhanced blood and bone are not oesophagus (its wall enhances to 60-100 HU at most).
    scaled[hu > levels.tissue_hu + _ABOVE_TISSUE_HU] = 0.0
    scaled[(hu < _AIR_HU) & masks["air_ok"]] = 1.0
    scaled[masks["blocked"]] = 0.0
    sp = context.spacing_mm
    small = ndi.gaussian_filter(scaled, (_BLOB_SIGMA_MM / sp[0], _BLOB_SIGMA_MM / sp[1], 0))
    large = ndi.gaussian_filter(scaled, (_SURROUND_SIGMA_MM / sp[0], _SURROUND_SIGMA_MM / sp[1], 0))
    return np.asarray(small - large, dtype=np.float32)


def _expected(context: MediastinalContext, descending_mm: F64 | None) -> tuple[F64, F64]:
    """Expected in-plane centre (work mm) per slice and the search radius there (NaN: none).

    Above the carina the oesophagus lies behind the trachea, below it in front of the
    descending aorta; elsewhere (an abdominal CT) in front of the spine.
    """
    sp = context.spacing_mm
    nk = context.hu.shape[2]
    z = np.arange(nk) * sp[2]
    expected = np.full((nk, 2), np.nan)
    reach = np.full(nk, _SPINE_SEARCH_MM)
    spine = context.spine
    expected[:, 0] = spine.centre_i * sp[0] + _BEHIND_SPINE_MM[0]
    expected[:, 1] = spine.front_j * sp[1] + _BEHIND_SPINE_MM[1]
    if descending_mm is not None:
        rows = np.isfinite(descending_mm[:, 0])
        expected[rows] = descending_mm[rows, :2] + _FROM_AORTA_MM
        reach[rows] = _SEARCH_MM
    trachea = context.trachea_mm
    if len(trachea) >= 2:
        order = np.argsort(trachea[:, 2])
        tz = trachea[order, 2]
        above = (z >= tz[0]) & (z <= tz[-1])
        for axis in range(2):
            expected[above, axis] = np.interp(z[above], tz, trachea[order, axis])
            expected[above, axis] += _FROM_TRACHEA_MM[axis]
        reach[above] = _SEARCH_MM
    return expected, reach


def segment_oesophagus(
    context: MediastinalContext,
    others: BoolArray,
    descending_mm: F64 | None = None,
    contrast: bool = False,
) -> tuple[BoolArray, OesophagusCentreline | None, tuple[str, ...]]:
    """Segment the oesophagus and its centreline (see the module docstring).

    Parameters
    ----------
    context : MediastinalContext
    others : ndarray of bool, the work grid's shape
        Structures that are not oesophagus (aorta, heart), on the work grid.
    descending_mm : ndarray, shape (K, 3), optional
        Centre of the descending aorta per work slice (work mm, NaN where none).
    contrast : bool
        Whether the blood is enhanced (:class:`~.great_vessels.Blood`): the other structures
        are then told from the oesophagus by their attenuation up to their edge.

    Returns
    -------
    mask : ndarray of bool, the CT's shape
    centreline : OesophagusCentreline or None
    notes : tuple of str
    """
    sp = context.spacing_mm
    nk = context.hu.shape[2]
    empty = np.zeros(context.ct.shape, dtype=bool)
    expected, reach = _expected(context, descending_mm)
    found = np.isfinite(expected[:, 0])
    if not found.any():
        return empty, None, ("esophagus: no spine, trachea or aorta to look for it by",)
    blocked = others | context.lungs | context.bones | ndi.binary_dilation(context.airways, _RIM3)
    # Unenhanced, the heart and the aorta are found with a few millimetres of the tissue that
    # touches them, the oesophagus included: the search keeps out of their cores only (the
    # mask, below, out of all of them).
    steps = max(1, round(_OTHERS_CORE_MM / min(sp[:2])))
    core = ndi.binary_erosion(others, _RIM3, iterations=steps) if not contrast else others
    search_blocked = (
        core | context.lungs | context.bones | ndi.binary_dilation(context.airways, _RIM3)
    )
    # A window around the expected centre in each slice; the distance from it costs.
    half = _SPINE_SEARCH_MM
    origin = np.floor(np.where(found[:, None], expected - half, 0.0) / np.asarray(sp[:2])).astype(
        np.intp
    )
    size = (int(np.ceil(2 * half / sp[0])) + 1, int(np.ceil(2 * half / sp[1])) + 1)
    # The blob filter is per slice: run on the stack of windows (with a margin for the
    # surround's Gaussian), not on the whole CT.
    margin = int(np.ceil(3 * _SURROUND_SIGMA_MM / min(sp[:2])))
    big = (size[0] + 2 * margin, size[1] + 2 * margin)
    stack = _blob_map(
        context,
        slice_windows(context.hu, origin - margin, big, context.levels.fat_hu),
        {
            name: slice_windows(mask, origin - margin, big, False)
            for name, mask in (
                ("blocked", search_blocked),
                ("air_ok", context.body & ~context.lungs & ~context.airways),
            )
        },
    )
    window = np.ascontiguousarray(stack[margin:-margin, margin:-margin])
    wi = (np.arange(size[0])[:, None, None] + origin[None, None, :, 0]) * sp[0]
    wj = (np.arange(size[1])[None, :, None] + origin[None, None, :, 1]) * sp[1]
    dist = np.hypot(wi - expected[None, None, :, 0], wj - expected[None, None, :, 1])
    window -= _OFFSET_COST * (dist / _OFFSET_SCALE_MM) ** 2
    window[dist > reach[None, None, :]] = -1.0
    window[:, :, ~found] = -1.0
    window[slice_windows(search_blocked, origin, size, True)] = -1.0
    circles = _peaks(window, origin, sp)
    centre, radius = link_circles(
        circles, sp[2], _MIN_RESPONSE, _START_COST, max_gap_slices=round(_MAX_GAP_MM / sp[2])
    )
    rows = np.flatnonzero(np.isfinite(radius))
    if rows.size == 0:
        return empty, None, ("esophagus: not found in front of the spine",)
    mask_w = np.zeros(context.hu.shape, dtype=bool)
    tissue = (context.hu > context.levels.fat_edge_hu) | (
        (context.hu < _AIR_HU) & ~context.lungs & ~context.airways
    )
    # Enhanced structures are told from it up to their edge (their rim kept out); unenhanced,
    # the oesophagus takes back the rim the heart or aorta were found with.
    keep_out = ndi.binary_dilation(blocked, _RIM3) if contrast else search_blocked
    tissue &= ~keep_out & context.body
    ni, nj = context.hu.shape[:2]
    gi = np.arange(ni)[:, None] * sp[0]
    gj = np.arange(nj)[None, :] * sp[1]
    for k in rows:
        near = np.hypot(gi - centre[k, 0], gj - centre[k, 1]) <= _MAX_RADIUS_MM
        labels, n = ndi.label(tissue[:, :, k] & near)
        ci, cj = (round(centre[k, a] / sp[a]) for a in range(2))
        lab = labels[min(ci, ni - 1), min(cj, nj - 1)]
        if lab == 0 and n > 0:
            # The peak fell between voxels of tissue: take the piece nearest it.
            pi, pj = np.nonzero(labels)
            nearest = int(np.argmin((pi - ci) ** 2 + (pj - cj) ** 2))
            lab = labels[pi[nearest], pj[nearest]]
        if lab > 0:
            mask_w[:, :, k] = labels == lab
    mask = _on_ct_grid(context, mask_w, blocked if contrast else search_blocked)
    line = _centreline(context, mask) if mask.any() else None
    notes: list[str] = []
    top_k = int(rows[-1])
    if top_k < nk - 1 and context.trachea_mm.size and top_k * sp[2] < context.trachea_mm[0, 2] - 20:
        notes.append("esophagus: lost below the top of the trachea")
    return mask, line, tuple(notes)


_RIM3 = np.ones((3, 3, 1), dtype=bool)


def _peaks(
    window: npt.NDArray[np.float32], origin: npt.NDArray[np.intp], sp: tuple[float, float, float]
) -> Circles:
    """Local maxima of the blob response per slice as circle candidates (work mm)."""
    nk = window.shape[2]
    n_best = 5
    peaks = (window == ndi.maximum_filter(window, size=(5, 5, 1))) & (window > 0)
    centre = np.full((nk, n_best, 2), np.nan)
    radius = np.full((nk, n_best), np.nan)
    score = np.full((nk, n_best), -np.inf)
    pi, pj, pk = np.nonzero(peaks)
    values = window[pi, pj, pk]
    order = np.lexsort((-values, pk))
    pi, pj, pk, values = pi[order], pj[order], pk[order], values[order]
    rank = np.arange(pk.size) - np.searchsorted(pk, pk, side="left")
    top = rank < n_best
    pi, pj, pk, values, rank = pi[top], pj[top], pk[top], values[top], rank[top]
    centre[pk, rank, 0] = (pi + origin[pk, 0]) * sp[0]
    centre[pk, rank, 1] = (pj + origin[pk, 1]) * sp[1]
    radius[pk, rank] = 6.0
    score[pk, rank] = values
    return Circles(centre, radius, score)


def _on_ct_grid(context: MediastinalContext, work: BoolArray, blocked: BoolArray) -> BoolArray:
    """Work-grid mask on the CT's grid, its edge against fat redrawn at full resolution."""
    grid = context.grid
    out = np.zeros(context.ct.shape, dtype=bool)
    if not work.any():
        return out
    rim = ndi.binary_dilation(work, _RIM3) & ~blocked
    box_w = bounding_slices(rim)
    box = tuple(
        slice(s.start * f, min(s.stop * f, n))
        for s, f, n in zip(box_w, grid.factors, context.ct.shape, strict=True)
    )
    shape = tuple(s.stop - s.start for s in box)
    rim_f = _repeat(rim[box_w], grid.factors, shape)
    ct = np.asarray(context.ct.array[box])
    levels = context.levels
    keep = rim_f & ((ct > levels.fat_edge_hu) | (ct < _AIR_HU))
    out[box] = fill_holes_per_slice(keep)
    return out


def _repeat(mask: BoolArray, factors: tuple[int, int, int], shape: tuple[int, ...]) -> BoolArray:
    out = mask
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return np.asarray(out[: shape[0], : shape[1], : shape[2]])


def _centreline(context: MediastinalContext, mask: BoolArray) -> OesophagusCentreline:
    """Centroid and area-equivalent radii of each slice of ``mask`` (top to bottom)."""
    ct = context.ct
    sp = ct.spacing_mm
    box = bounding_slices(mask)
    sub = mask[box]
    air = np.asarray(ct.array[box]) < _AIR_HU
    ii, jj, kk = np.nonzero(sub)
    nk = sub.shape[2]
    count = np.bincount(kk, minlength=nk).astype(np.float64)
    air_count = np.bincount(kk[air[ii, jj, kk]], minlength=nk).astype(np.float64)
    present = count > 0
    ci = np.bincount(kk, ii, minlength=nk)[present] / count[present] + box[0].start
    cj = np.bincount(kk, jj, minlength=nk)[present] / count[present] + box[1].start
    ck = np.flatnonzero(present).astype(np.float64) + box[2].start
    # Slice centroids jitter by a millimetre or two (the wall's outline, partial volume):
    # summed over 100 slices that adds a third to the length a stent is sized on, so the
    # line is smoothed along the body axis first (sigma 4 mm), as centreline tools do.
    sigma = _CENTRELINE_SMOOTH_MM / sp[2]
    ci = ndi.gaussian_filter1d(ci, sigma, mode="nearest")
    cj = ndi.gaussian_filter1d(cj, sigma, mode="nearest")
    index = np.column_stack([ci, cj, ck])[::-1]  # top to bottom
    homogeneous = np.column_stack([index, np.ones(len(index))])
    lps = (ct.affine @ homogeneous.T).T[:, :3]
    pixel_mm2 = sp[0] * sp[1]
    radius = np.sqrt(count[present] * pixel_mm2 / np.pi)[::-1]
    lumen = np.sqrt(air_count[present] * pixel_mm2 / np.pi)[::-1]
    return OesophagusCentreline(np.asarray(lps), radius, lumen)
