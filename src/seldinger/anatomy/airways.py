"""Airways: the air lumen of the trachea and bronchi, found from the trachea down.

The trachea is found as a round, air-filled tube near the midline of the upper slices; the
lumen is then grown from it by wave-front propagation on an isotropic grid, each bronchus
with its own threshold, and a front that widens like parenchyma rather than a tube is rolled
back and regrown with a stricter threshold (leak control in the manner of [1]_, [2]_).

Frame and units follow ``docs/conventions.md``.

References
----------
.. [1] Schlathölter T, Lorenz C, Carlsen IC, Renisch S, Deschamps T. Simultaneous
   segmentation and tree reconstruction of the coronary arteries in MSCT images. Proc SPIE
   4684, 2002 (front propagation with branch detection from front connectivity).
.. [2] van Ginneken B, Baggerman W, van Rikxoort EM. Robust segmentation and anatomical
   labeling of the airway tree from thoracic CT scans. MICCAI 2008, LNCS 5241:219-226
   (wave-front growing with per-branch leak detection and stricter thresholds on leaks).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from seldinger.anatomy._morph import IN_PLANE_8, BoolArray, bounding_slices, largest_component
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.imaging import Volume

__all__ = [
    "AIR_CORE_HU",
    "LUMEN_EDGE_HU",
    "find_trachea",
    "resample_linear",
    "segment_airways",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]

#: Air in a lumen wide enough to escape partial volume reads -1000 to -950 HU, aerated lung
#: -900 to -800; voxels below this are taken as certain air when looking for the trachea.
AIR_CORE_HU = -900.0
#: Lumen edge of the large airways: half-way between air (-1000) and the wall (about 0 HU),
#: the usual full-width-at-half-maximum boundary of a tube on CT.
LUMEN_EDGE_HU = -500.0

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

# --- growth ---------------------------------------------------------------------------------
_GRID_MM = 1.0  # isotropic grid of the wave-front
_GROW_START_HU = -800.0  # first threshold of every branch
_GROW_STEP_HU = 25.0  # tightening after each leak
_GROW_FLOOR_HU = -925.0  # no branch is grown with a stricter threshold than this
_LEAK_FACTOR = 2.0  # a front (with its young side branches) may grow to 2x its calibre ...
_LEAK_SLACK_MM2 = 8.0  # ... plus this, for the small bronchi where one voxel is a lot
_MATURE_MM = 8.0  # a branch sets its own calibre after this length; leaks roll back as far
_WINDOW_MM = 15.0  # fronts count for the ancestors they branched from within this distance
_MAX_AIRWAY_ML = 300.0  # a larger tree has leaked: regrow stricter
_MAX_STEPS = 5000


def segment_airways(ct: Volume, body: BoolArray) -> BoolArray:
    """Segment the airway lumen: trachea and bronchi as deep as the CT resolves them.

    The mask is the **air lumen only; the airway wall is not included**. Its edge lies where
    the CT reads half-way between air and wall (:data:`LUMEN_EDGE_HU`), or at the growing
    threshold (about -800 to -925 HU) where partial volume has blurred a small bronchus'
    wall into the lung. A needle planner wanting the whole
    tracheal structure dilates this mask by the wall thickness (1-3 mm in adults).

    Method: :func:`find_trachea` gives the seed; the lumen is grown from it by wave-front
    propagation on a 1 mm isotropic grid sampled lazily (trilinear) from the CT. The front
    is split into connected pieces at every step; a piece that separates from its
    neighbours starts a new branch. A branch whose front, with those of the branches it
    gave off in the last 15 mm, grows past twice its calibre is leaking into lung (a tube
    keeps its cross-section; parenchyma spreads, often crumbling into many small pieces):
    its last 8 mm and the branches it gave off are rolled back and regrown 25 HU stricter,
    down to -925 HU, where it stops. Every branch starts at -800 HU. The grown lumen is
    mapped back to the CT grid (nearest grid voxel), its edge moved out to
    :data:`LUMEN_EDGE_HU` where a wall is in sight, and its largest 26-connected part kept.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (see :func:`seldinger.anatomy.checks.require_canonical`).
    body : ndarray of bool, the CT's shape
        Body mask (:func:`seldinger.anatomy.body.segment_body`); growth stays inside it.

    Returns
    -------
    ndarray of bool, the CT's shape
        The airway lumen, one 26-connected component (a bronchus joined only through a
        sliver between two thick slices may be lost to it).

    Raises
    ------
    AnatomyError
        No trachea in view (see :func:`find_trachea`), or ``body`` of the wrong shape.
    """
    require_canonical(ct)
    if body.shape != ct.shape:
        raise AnatomyError(
            f"body mask shape {body.shape} differs from the CT's {ct.shape}; pass the mask "
            "segment_body returned for this CT."
        )
    trachea_ijk = find_trachea(ct, body)
    seeds_ijk = _compact_seed(trachea_ijk, ct.spacing_mm[2])
    spacing = np.asarray(ct.spacing_mm, dtype=np.float64)
    grid = _LazyGrid.around(ct.array, body, spacing, _GRID_MM)
    voxel_ml = _GRID_MM**3 / 1000.0
    start_hu = _GROW_START_HU
    while True:
        grown = _grow(grid, seeds_ijk, start_hu, max_voxels=int(_MAX_AIRWAY_ML / voxel_ml))
        if grown is not None or start_hu <= _GROW_FLOOR_HU:
            break
        logger.info(
            "airway tree over %.0f mL at %.0f HU: regrowing stricter", _MAX_AIRWAY_ML, start_hu
        )
        start_hu = max(start_hu - 2 * _GROW_STEP_HU, _GROW_FLOOR_HU)
    if grown is None:
        raise AnatomyError(
            f"the airway lumen grown from the trachea exceeds {_MAX_AIRWAY_ML:.0f} mL even at "
            f"{start_hu:.0f} HU: it leaks into the lungs. Check that the CT is in HU and not "
            "of a severely emphysematous lung; segment airways on a thinner-slice series."
        )
    return _to_ct_grid(ct, grid, grown)


# ------------------------------------------------------------------------------- trachea


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
    tube = np.repeat(np.repeat(keep[labels], st[0], axis=0), st[1], axis=1)
    ijk = np.argwhere(tube[: hu_full.shape[0], : hu_full.shape[1]] & (hu_full < AIR_CORE_HU))
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


def _compact_seed(trachea_ijk: IntArray, slice_mm: float) -> IntArray:
    """A 10 mm piece of the trachea, a quarter down its found length, to grow from.

    A compact seed gives a front that is one cross-section going up and one going down;
    seeding the whole column would start hundreds of rim fronts at once.
    """
    k = trachea_ijk[:, 2]
    k_top, k_bottom = int(k.max()), int(k.min())
    centre = k_top - 0.25 * (k_top - k_bottom)
    half = max(0.5, _SEED_LENGTH_MM / 2.0 / slice_mm)
    return trachea_ijk[np.abs(k - centre) <= half]


# ---------------------------------------------------------------------------- lazy grid


def resample_linear(
    array: npt.ArrayLike, step: Sequence[float], out_shape: Sequence[int]
) -> npt.NDArray[np.float32]:
    """Trilinear resampling ``out[p] = array[p * step]`` (float32), one axis at a time.

    Parameters
    ----------
    array : array_like, shape (I, J, K)
        Input samples.
    step : sequence of 3 floats
        Input-index distance between neighbouring output samples, per axis.
    out_shape : sequence of 3 ints
        Output shape; positions past the last input sample repeat it.

    Examples
    --------
    >>> resample_linear(np.arange(3.0).reshape(1, 1, 3), (1, 1, 0.5), (1, 1, 5)).ravel()
    array([0. , 0.5, 1. , 1.5, 2. ], dtype=float32)
    """
    out = np.asarray(array)
    # Shrinking axes first keeps the intermediate arrays small.
    for axis in np.argsort(np.asarray(step))[::-1]:
        n_in = out.shape[axis]
        pos = np.arange(out_shape[axis]) * float(step[axis])
        i0 = np.minimum(np.floor(pos).astype(np.intp), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        shape = [1, 1, 1]
        shape[axis] = -1
        w = (pos - i0).astype(np.float32).reshape(shape)
        lo = np.take(out, i0, axis=axis).astype(np.float32, copy=False)
        hi = np.take(out, i1, axis=axis).astype(np.float32, copy=False)
        out = lo + (hi - lo) * w
    return np.asarray(out, dtype=np.float32)


@dataclass
class _LazyGrid:
    """An isotropic grid over a box of the CT, sampled only where the front goes.

    Grid voxel ``p`` (padded by one voxel on every side, the padding never grows) lies at
    CT index ``lo + (p - 1) * step``.
    """

    hu: npt.NDArray[np.int16]
    body: BoolArray
    lo: FloatArray
    step: FloatArray
    shape: tuple[int, int, int]
    spacing_mm: float
    strides: IntArray = field(init=False)

    def __post_init__(self) -> None:
        self.strides = np.array([self.shape[1] * self.shape[2], self.shape[2], 1], dtype=np.intp)

    @classmethod
    def around(
        cls, hu: npt.NDArray[np.int16], body: BoolArray, spacing: FloatArray, grid_mm: float
    ) -> _LazyGrid:
        box = bounding_slices(body)
        lo = np.array([s.start for s in box], dtype=np.float64)
        n_ct = np.array([s.stop - s.start for s in box], dtype=np.float64)
        step = grid_mm / spacing
        n = np.floor((n_ct - 1) / step).astype(int) + 1 + 2
        return cls(hu, body, lo, step, (int(n[0]), int(n[1]), int(n[2])), grid_mm)

    def to_ct(self, flat: IntArray) -> FloatArray:
        """Fractional CT indices, shape (N, 3), of padded flat grid indices."""
        p = np.stack(np.unravel_index(flat, self.shape), axis=-1).astype(np.float64)
        return self.lo + (p - 1.0) * self.step

    def from_ct(self, ijk: npt.ArrayLike) -> IntArray:
        """Padded flat grid indices of the grid voxels nearest CT indices ``ijk`` (N, 3)."""
        p = np.rint((np.asarray(ijk, dtype=np.float64) - self.lo) / self.step).astype(np.intp) + 1
        p = np.clip(p, 1, np.array(self.shape) - 2)
        return np.asarray(p @ self.strides, dtype=np.intp)

    def sample(self, flat: IntArray) -> tuple[npt.NDArray[np.float32], BoolArray]:
        """Trilinear HU and nearest-voxel body membership at padded flat grid indices."""
        c = self.to_ct(flat)
        hi_idx = np.array(self.hu.shape) - 1
        c = np.clip(c, 0.0, hi_idx)
        c0 = np.minimum(np.floor(c).astype(np.intp), hi_idx - 1).clip(0)
        w = (c - c0).astype(np.float32)
        c1 = np.minimum(c0 + 1, hi_idx)
        a = self.hu
        value = np.zeros(len(flat), dtype=np.float32)
        for di in (0, 1):
            ii = c1[:, 0] if di else c0[:, 0]
            wi = w[:, 0] if di else 1.0 - w[:, 0]
            for dj in (0, 1):
                jj = c1[:, 1] if dj else c0[:, 1]
                wj = w[:, 1] if dj else 1.0 - w[:, 1]
                for dk in (0, 1):
                    kk = c1[:, 2] if dk else c0[:, 2]
                    wk = w[:, 2] if dk else 1.0 - w[:, 2]
                    value += a[ii, jj, kk] * (wi * wj * wk)
        nearest = np.rint(c).astype(np.intp)
        inside = self.body[nearest[:, 0], nearest[:, 1], nearest[:, 2]]
        return value, np.asarray(inside)


# -------------------------------------------------------------------------------- growth


def _offsets(shape: tuple[int, int, int], connectivity: int) -> IntArray:
    """Flat-index offsets of the 6- or 26-neighbourhood on a C-ordered ``shape``."""
    d = np.array([v for v in np.ndindex(3, 3, 3) if v != (1, 1, 1)]) - 1
    if connectivity == 6:
        d = d[np.abs(d).sum(axis=1) == 1]
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    return np.asarray(d @ strides, dtype=np.intp)


def _components(flat: IntArray, half_offsets: IntArray) -> tuple[int, IntArray]:
    """Connected components of a sorted set of flat indices (neighbourhood ``half_offsets``)."""
    n = flat.size
    rows, cols = [], []
    for off in half_offsets:
        target = flat + off
        pos = np.minimum(np.searchsorted(flat, target), n - 1)
        hit = flat[pos] == target
        rows.append(np.flatnonzero(hit))
        cols.append(pos[hit])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), np.asarray(labels, dtype=np.intp)


@dataclass
class _Branch:
    """Bookkeeping of one branch of the wave-front (not the anatomical branch)."""

    parent: int
    birth: int
    threshold_hu: float
    calibre: float  # front size (voxels) the branch may not outgrow by _LEAK_FACTOR
    sizes: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)


def _descendants(branches: list[_Branch], a: int) -> list[int]:
    """All branches below branch ``a`` (not ``a`` itself)."""
    out: list[int] = []
    stack = list(branches[a].children)
    while stack:
        b = stack.pop()
        out.append(b)
        stack.extend(branches[b].children)
    return out


def _grow(
    grid: _LazyGrid, seeds_ijk: IntArray, start_hu: float, max_voxels: int
) -> BoolArray | None:
    """Wave-front growth from the seeds; the grown grid voxels (padded shape), or None on a leak.

    Each step adds the 6-neighbours of the front that are inside the body and below the
    threshold of the branch they grow from; the new layer is split into 26-connected
    pieces. One piece continues its branch; several pieces from one branch start child
    branches, which inherit its threshold and calibre (front size, in voxels) until they
    have grown ``_MATURE_MM`` and take the median of their own recent fronts (never more
    than inherited). Each piece counts for its branch and for the ancestors reached through
    branches born within ``_WINDOW_MM``; a branch whose count exceeds ``_LEAK_FACTOR`` x
    calibre + slack leaks. The oldest leaking branch of a line loses its last
    ``_MATURE_MM`` and its descendants' growth of the window, and regrows from there
    ``_GROW_STEP_HU`` stricter; below ``_GROW_FLOOR_HU`` it stops and the removed voxels
    stay blocked. Returns None once more than ``max_voxels`` are grown.
    """
    h = grid.spacing_mm
    mature = max(2, round(_MATURE_MM / h))
    window = max(mature, round(_WINDOW_MM / h))
    slack = _LEAK_SLACK_MM2 / (h * h)
    off6 = _offsets(grid.shape, 6)
    half26 = _offsets(grid.shape, 26)
    half26 = half26[half26 > 0]

    visited = np.zeros(grid.shape, dtype=bool)
    visited[[0, -1], :, :] = True
    visited[:, [0, -1], :] = True
    visited[:, :, [0, -1]] = True
    vflat = visited.ravel()

    seeds = np.unique(grid.from_ct(seeds_ijk))
    value, inside = grid.sample(seeds)
    seeds = seeds[(value < start_hu) & inside]
    if seeds.size == 0:
        raise AnatomyError(
            "the trachea seed has no voxel below the growing threshold on the isotropic grid; "
            "the trachea found is too small to grow from. Check the CT is in HU."
        )
    branches = [_Branch(parent=-1, birth=0, threshold_hu=start_hu, calibre=np.inf)]
    layers: list[tuple[IntArray, npt.NDArray[np.int32]]] = [
        (seeds, np.zeros(seeds.size, dtype=np.int32))
    ]
    alive: list[BoolArray] = [np.ones(seeds.size, dtype=bool)]
    vflat[seeds] = True
    front, front_branch = seeds, np.zeros(seeds.size, dtype=np.int32)
    n_grown = seeds.size

    for step in range(1, _MAX_STEPS):
        if front.size == 0:
            break
        nb = (front[:, None] + off6[None, :]).ravel()
        src = np.repeat(front_branch, off6.size)
        free = ~vflat[nb]
        nb, src = nb[free], src[free]
        new, first = np.unique(nb, return_index=True)
        src = src[first]
        if new.size:
            value, inside = grid.sample(new)
            thresholds = np.array([b.threshold_hu for b in branches], dtype=np.float32)
            ok = inside & (value < thresholds[src])
            new, src = new[ok], src[ok]
        resume: list[tuple[IntArray, npt.NDArray[np.int32]]] = []
        if new.size == 0:
            layers.append((new, src.astype(np.int32)))
            alive.append(np.zeros(0, dtype=bool))
            front, front_branch = new, src.astype(np.int32)
            continue
        vflat[new] = True
        n_comp, comp = _components(new, half26)
        order = np.argsort(comp, kind="stable")
        comp_parent = src[order[np.searchsorted(comp[order], np.arange(n_comp))]]
        comp_size = np.bincount(comp, minlength=n_comp)
        comp_branch = np.empty(n_comp, dtype=np.int32)
        for p in np.unique(comp_parent):
            pieces = np.flatnonzero(comp_parent == p)
            if pieces.size == 1:
                comp_branch[pieces[0]] = p
                continue
            for piece in pieces:  # the front of branch p split: a branch point
                parent = branches[int(p)]
                branches.append(_Branch(int(p), step, parent.threshold_hu, parent.calibre))
                comp_branch[piece] = len(branches) - 1
                parent.children.append(len(branches) - 1)
        for c in range(n_comp):
            branches[comp_branch[c]].sizes.append(int(comp_size[c]))
        layer_branch = comp_branch[comp]
        layers.append((new, layer_branch))
        layer_alive = np.ones(new.size, dtype=bool)
        alive.append(layer_alive)

        n_grown += new.size
        # Leak test: every front piece counts for its branch and for the ancestors it
        # descends from through branches born within the window; a branch whose count
        # exceeds its calibre is leaking. Of a failing line, the oldest failing branch is
        # rolled back: that also catches a leak that crumbles into many small pieces.
        count: dict[int, int] = {}
        lines: list[list[int]] = []
        for c in range(n_comp):
            b = int(comp_branch[c])
            line = [b]
            count[b] = count.get(b, 0) + int(comp_size[c])
            while step - branches[b].birth <= window and branches[b].parent >= 0:
                b = branches[b].parent
                line.append(b)
                count[b] = count.get(b, 0) + int(comp_size[c])
            lines.append(line)
        failing = {
            b
            for b, n_front in count.items()
            if n_front > _LEAK_FACTOR * branches[b].calibre + slack
        }
        killed = np.zeros(n_comp, dtype=bool)
        leaking: set[int] = set()
        for c, line in enumerate(lines):
            hits = [b for b in line if b in failing]
            if hits:
                killed[c] = True
                leaking.add(hits[-1])  # the oldest failing ancestor
        for a in sorted(leaking):
            anchor = branches[a]
            young = _descendants(branches, a)
            since = max(step - mature, anchor.birth)
            removed: list[IntArray] = []
            for s in range(max(0, min(since, step - window - 1)) + 1, step + 1):
                idx, br = layers[s]
                drop = np.isin(br, young) & alive[s]
                if s > since:
                    drop |= (br == a) & alive[s]
                alive[s][drop] = False
                removed.append(idx[drop])
            n_removed = int(sum(r.size for r in removed))
            n_grown -= n_removed
            del anchor.sizes[max(0, len(anchor.sizes) - (step - since)) :]
            stricter = anchor.threshold_hu - _GROW_STEP_HU
            logger.debug(
                "leak at step %d: branch %d front %d > 2 x %.1f; %d voxels back; %.0f -> %.0f HU",
                step,
                a,
                count[a],
                anchor.calibre,
                n_removed,
                anchor.threshold_hu,
                stricter,
            )
            for b in young:
                branches[b].threshold_hu = -np.inf  # dead
            anchor.children.clear()
            if stricter < _GROW_FLOOR_HU:
                anchor.threshold_hu = -np.inf
                continue  # the removed voxels stay visited: blocked
            anchor.threshold_hu = stricter
            for r in removed:
                vflat[r] = False
            # Regrow from the branch's last surviving layer (a branch regrown once lags
            # behind the global step count).
            restart = np.zeros(0, dtype=np.intp)
            for s in range(since, -1, -1):
                idx, br = layers[s]
                restart = idx[(br == a) & alive[s]]
                if restart.size or s < anchor.birth:
                    break
            resume.append((restart, np.full(restart.size, a, dtype=np.int32)))
        for b in set(comp_branch.tolist()):
            branch = branches[b]
            if step - branch.birth >= mature and branch.sizes:
                recent = branch.sizes[-mature:]
                branch.calibre = min(branch.calibre, float(np.median(recent)))
        if n_grown > max_voxels:
            return None
        keep = ~killed[comp]
        front = np.concatenate([new[keep]] + [r[0] for r in resume])
        front_branch = np.concatenate([layer_branch[keep]] + [r[1] for r in resume])

    grown = np.zeros(visited.size, dtype=bool)
    for (idx, _), ok in zip(layers, alive, strict=True):
        grown[idx[ok]] = True
    return grown.reshape(grid.shape)


# ----------------------------------------------------------------------------- CT grid


def _to_ct_grid(ct: Volume, grid: _LazyGrid, grown: BoolArray) -> BoolArray:
    """Map the grown grid voxels onto the CT grid and set the large airways' edge."""
    box = bounding_slices(grown, pad=1)
    lo_ct = grid.lo + (np.array([s.start for s in box]) - 2) * grid.step
    hi_ct = grid.lo + np.array([s.stop for s in box]) * grid.step
    # one CT voxel of margin in-plane for the edge ring
    lo = np.clip(np.floor(lo_ct).astype(int) - np.array([1, 1, 0]), 0, None)
    hi = np.minimum(np.ceil(hi_ct).astype(int) + np.array([2, 2, 1]), ct.shape)
    axes = [np.arange(lo[d], hi[d]) for d in range(3)]
    # Nearest grid voxel of every CT voxel in the box.
    p = [
        np.clip(
            np.rint((axes[d] - grid.lo[d]) / grid.step[d]).astype(np.intp) + 1, 1, grid.shape[d] - 2
        )
        for d in range(3)
    ]
    lumen = grown[np.ix_(p[0], p[1], p[2])]
    # The growing threshold (-800 HU or stricter) puts the edge up to a voxel inside the
    # half-maximum edge: add the in-plane ring of voxels that read below LUMEN_EDGE_HU and
    # lie between the lumen and a wall (a neighbour at or above LUMEN_EDGE_HU). Lung next to
    # a small bronchus whose wall partial volume has blurred away has no such neighbour.
    hu = ct.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    ring = ndi.binary_dilation(lumen, structure=IN_PLANE_8) & ~lumen & (hu < LUMEN_EDGE_HU)
    wall_next = ndi.maximum_filter(hu, footprint=IN_PLANE_8) >= LUMEN_EDGE_HU
    lumen |= ring & wall_next
    lumen = largest_component(lumen, structure=np.ones((3, 3, 3)))
    out = np.zeros(ct.shape, dtype=bool)
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = lumen
    return out
