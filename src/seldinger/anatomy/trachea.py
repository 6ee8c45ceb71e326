"""Finding the trachea: a round, air-filled tube near the midline in the upper chest.

The seed of :func:`seldinger.anatomy.airways.segment_airways`.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.morphology import IN_PLANE_8, BoolArray, repeat_in_plane
from seldinger.imaging import Volume

__all__ = ["AIR_CORE_HU", "compact_seed", "find_trachea"]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]

#: Air in a lumen wide enough to escape partial volume reads -1000 to -950 HU, aerated lung
#: -900 to -800; voxels below this are taken as certain air when looking for the trachea.
AIR_CORE_HU = -900.0

# --- trachea search -----------------------------------------------------------------------
# Cross-section of the trachea: 1.5-3 cm across in adults (1.8-4 cm2 lumen); the limits leave
# room for a narrow subglottis or a child, and for the flare at the carina.
_TRACHEA_AREA_MM2 = (50.0, 600.0)
# A tube 2 cm across has most of its voxels below -900 HU: mean well under it.
_TRACHEA_MEAN_HU = -920.0
# Tissue (wall, thyroid, oesophagus, mediastinal fat) surrounds the lumen; a noise speck in
# lung parenchyma has lung around it (about -870 HU).
_TRACHEA_RING_HU = -650.0
_TRACHEA_RING_MM = 3.0
_TRACHEA_MIN_FILL = 0.45  # area / bounding box: a disc fills 0.79, a crescent much less
_TRACHEA_MAX_ASPECT = 2.5
_TRACHEA_MAX_OFF_MIDLINE_MM = 45.0
_TRACHEA_MIN_LENGTH_MM = 30.0
_TRACHEA_MAX_SHIFT_MM = 8.0  # centroid shift between neighbouring slices of one tube
_SEARCH_FRACTION = 0.5  # upper half of the body's slices
_SEED_LENGTH_MM = 10.0
_SEARCH_PIXEL_MM = 1.2


def find_trachea(ct: Volume, body: BoolArray) -> IntArray:
    """Voxels of the trachea's air column in the upper slices of a chest CT.

    In each axial slice of the upper half of the body, air components (below
    :data:`AIR_CORE_HU`) are candidates when they are 0.5-6 cm2, round (fill their bounding
    box by at least 45 %, aspect at most 2.5), mostly air (mean below -920 HU), surrounded
    by tissue (median of a 3 mm ring above -650 HU: not a speck in lung) and within 45 mm
    of the body's midline. Candidates in neighbouring slices (one missing slice allowed)
    whose centres lie within 8 mm chain into tubes; the longest tube of at least 30 mm is
    the trachea.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered.
    body : ndarray of bool, the CT's shape
        Body mask.

    Returns
    -------
    ndarray of int, shape (N, 3)
        CT voxel indices (i, j, k) of the trachea's air below :data:`AIR_CORE_HU` (the
        column may run on into a main bronchus, which is round too).

    Raises
    ------
    AnatomyError
        When no such tube exists: the CT does not show the trachea (an abdomen or pelvis
        scan, a scan starting below the carina) or is not in HU.
    """
    require_canonical(ct)
    spacing = np.asarray(ct.spacing_mm, dtype=np.float64)
    in_body = np.flatnonzero(body.any(axis=(0, 1)))
    if in_body.size == 0:
        raise AnatomyError("the body mask is empty: segment the body first (segment_body).")
    k_top = int(in_body[-1])
    k_lo = max(
        int(in_body[0]), k_top - int(np.ceil(_SEARCH_FRACTION * (k_top - in_body[0] + 1))) + 1
    )
    # Per-slice body centre (i) and front-back extent (j), from every 4th row and column.
    coarse = body[::4, ::4, k_lo : k_top + 1]
    counts = coarse.sum(axis=(0, 1)).astype(np.float64)
    ii = np.arange(0, body.shape[0], 4, dtype=np.float64)
    centre_i = (coarse.sum(axis=1) * ii[:, None]).sum(axis=0) / np.maximum(counts, 1.0)
    rows_j = np.asarray(coarse.any(axis=0))  # (J / 4, K)
    j_first = 4 * rows_j.argmax(axis=0)
    j_last = 4 * (rows_j.shape[0] - 1 - rows_j[::-1].argmax(axis=0))
    # Only a band around the midline is searched.
    mid = float(np.median(centre_i[counts > 0]))
    half = (_TRACHEA_MAX_OFF_MIDLINE_MM + _TRACHEA_AREA_MM2[1] ** 0.5) / spacing[0]
    box = (
        slice(max(0, int(mid - half)), min(body.shape[0], int(mid + half) + 1)),
        slice(int(j_first[counts > 0].min()), int(j_last[counts > 0].max()) + 4),
        slice(k_lo, k_top + 1),
    )
    # Searched on pixels of about 1.4 mm: the trachea is still 10 across, lung noise shrinks.
    st = [max(1, round(_SEARCH_PIXEL_MM / s)) for s in spacing[:2]]
    px = spacing[:2] * st
    hu_full = ct.array[box]
    hu = hu_full[:: st[0], :: st[1]]
    body_box = body[box][:: st[0], :: st[1]]
    centre_i = (centre_i - box[0].start) / st[0]
    j_first = (j_first - box[1].start) / st[1]
    j_last = (j_last - box[1].start) / st[1]

    air = (hu < AIR_CORE_HU) & body_box
    labels, n = ndi.label(air, structure=IN_PLANE_8)
    if n == 0:
        raise _no_trachea(ct)
    flat = labels.ravel()
    area_vox = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    sum_hu = np.bincount(flat, weights=hu.ravel(), minlength=n + 1)[1:]
    pixel_mm2 = px[0] * px[1]
    area_mm2 = area_vox * pixel_mm2
    ok = (area_mm2 >= _TRACHEA_AREA_MM2[0]) & (area_mm2 <= _TRACHEA_AREA_MM2[1])
    ok &= sum_hu / np.maximum(area_vox, 1.0) < _TRACHEA_MEAN_HU
    objects = ndi.find_objects(labels)
    ring_px = [max(1, round(_TRACHEA_RING_MM / s)) for s in px]
    ring_element = np.ones((2 * ring_px[0] + 1, 2 * ring_px[1] + 1), dtype=bool)
    candidates: list[tuple[int, float, float, int]] = []  # (k, centre i, centre j, label)
    for lab in np.flatnonzero(ok) + 1:
        sl = objects[lab - 1]
        if sl is None:
            continue
        width_mm = (sl[0].stop - sl[0].start) * px[0]
        height_mm = (sl[1].stop - sl[1].start) * px[1]
        fill = area_mm2[lab - 1] / (width_mm * height_mm)
        aspect = max(width_mm, height_mm) / min(width_mm, height_mm)
        if fill < _TRACHEA_MIN_FILL or aspect > _TRACHEA_MAX_ASPECT:
            continue
        k = sl[2].start
        grown = (
            slice(max(sl[0].start - ring_px[0], 0), sl[0].stop + ring_px[0]),
            slice(max(sl[1].start - ring_px[1], 0), sl[1].stop + ring_px[1]),
        )
        comp = labels[grown[0], grown[1], k] == lab
        ii_c, jj_c = np.nonzero(comp)
        ci = float(ii_c.mean()) + grown[0].start
        cj = float(jj_c.mean()) + grown[1].start
        if abs(ci - centre_i[k]) * px[0] > _TRACHEA_MAX_OFF_MIDLINE_MM:
            continue
        depth = (cj - j_first[k]) / max(j_last[k] - j_first[k], 1)
        if not 0.15 <= depth <= 0.85:
            continue
        ring = ndi.binary_dilation(comp, ring_element) & ~comp
        if float(np.median(hu[grown[0], grown[1], k][ring])) < _TRACHEA_RING_HU:
            continue
        candidates.append((k, ci, cj, int(lab)))

    chain = _longest_tube(candidates, np.array([px[0], px[1], spacing[2]]))
    if (
        len(chain) == 0
        or (max(c[0] for c in chain) - min(c[0] for c in chain) + 1) * spacing[2]
        < _TRACHEA_MIN_LENGTH_MM
    ):
        raise _no_trachea(ct)
    keep = np.zeros(n + 1, dtype=bool)
    keep[[c[3] for c in chain]] = True
    tube = repeat_in_plane(keep[labels], st, hu_full.shape)
    ijk = np.argwhere(tube & (hu_full < AIR_CORE_HU))
    offset = np.array([box[0].start, box[1].start, box[2].start])
    logger.debug("trachea: %d slices, %d seed voxels", len(chain), len(ijk))
    return np.asarray(ijk + offset, dtype=np.intp)


def _longest_tube(
    candidates: list[tuple[int, float, float, int]], spacing: FloatArray
) -> list[tuple[int, float, float, int]]:
    """Longest chain of candidates in neighbouring slices (gap of one allowed), top down."""
    if not candidates:
        return []
    candidates = sorted(candidates, key=lambda c: -c[0])
    best_len = [1] * len(candidates)
    best_next = [-1] * len(candidates)
    # Dynamic programming from the bottom up: chain length starting at each candidate.
    for a in range(len(candidates) - 1, -1, -1):
        ka, ia, ja, _ = candidates[a]
        for b in range(a + 1, len(candidates)):
            kb, ib, jb, _ = candidates[b]
            if ka - kb > 2:
                break
            if ka == kb:
                continue
            shift_mm = np.hypot((ia - ib) * spacing[0], (ja - jb) * spacing[1])
            if shift_mm <= _TRACHEA_MAX_SHIFT_MM and best_len[b] + 1 > best_len[a]:
                best_len[a] = best_len[b] + 1
                best_next[a] = b
    span = [0.0] * len(candidates)
    for a in range(len(candidates) - 1, -1, -1):
        b = best_next[a]
        span[a] = (candidates[a][0] - candidates[b][0]) + span[b] if b >= 0 else 0.0
    a = int(np.argmax(span))
    chain = []
    while a >= 0:
        chain.append(candidates[a])
        a = best_next[a]
    return chain


def _no_trachea(ct: Volume) -> AnatomyError:
    lo, hi = ct.geometry.bounds_lps_mm()
    return AnatomyError(
        f"no trachea found: the upper half of the body in this CT (LPS z {lo[2]:.0f} to "
        f"{hi[2]:.0f} mm) holds no round, air-filled tube of 0.5-6 cm2 near the midline, "
        f"surrounded by tissue and at least {_TRACHEA_MIN_LENGTH_MM:.0f} mm long. Airway segmentation "
        "needs a chest CT that includes the trachea above the carina; this scan looks like "
        "it starts below it (abdomen, pelvis) or is not in HU (air should read -1000)."
    )


def compact_seed(trachea_ijk: IntArray, slice_mm: float) -> IntArray:
    """A 10 mm piece of the trachea, a quarter down its found length, to grow from.

    A compact seed gives a front that is one cross-section going up and one going down;
    seeding the whole column would start hundreds of rim fronts at once.
    """
    k = trachea_ijk[:, 2]
    k_top, k_bottom = int(k.max()), int(k.min())
    centre = k_top - 0.25 * (k_top - k_bottom)
    half = max(0.5, _SEED_LENGTH_MM / 2.0 / slice_mm)
    return trachea_ijk[np.abs(k - centre) <= half]
