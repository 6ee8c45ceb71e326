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

from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.morphology import IN_PLANE_8, BoolArray, bounding_slices, largest_component
from seldinger.anatomy.trachea import AIR_CORE_HU, compact_seed, find_trachea
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

#: Lumen edge of the large airways: half-way between air (-1000) and the wall (about 0 HU),
#: the usual full-width-at-half-maximum boundary of a tube on CT.
LUMEN_EDGE_HU = -500.0

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
# A stenosis: a tube narrowed to half its cross-section or less, then widening again, is no
# leak while its front stays within 1.25 x the cross-section it had upstream (within 60 mm,
# without a real branch point between: a piece twice the size of any other of its split
# continues the tube; the two main bronchi at the carina are within 2:1).
# Only for fronts of >= 60 mm² upstream (trachea, main and intermediate bronchi).
_STENOSIS_REACH_MM = 60.0
_STENOSIS_NARROWING = 0.5
_STENOSIS_REGAIN = 1.25
_STENOSIS_DOMINANT = 2.0
_STENOSIS_MIN_MM2 = 60.0
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
    down to -925 HU, where it stops. A tube narrowed to half its cross-section or less
    and widening again (a stenosis of the trachea or a main bronchus) is not leaking while
    its front stays within 1.25 x the cross-section it had upstream: its calibre is restored
    and the tree beyond the stenosis grows as it would without it. Every branch starts at
    -800 HU. The grown lumen is
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
    seeds_ijk = compact_seed(trachea_ijk, ct.spacing_mm[2])
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
    settle_until: int = 0  # the calibre is not narrowed before this step (past a stenosis)
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


def _span(branches: list[_Branch], a: int) -> int:
    """Steps branch ``a`` and the branches it gave off grew for."""
    return (
        max(branches[d].birth + len(branches[d].sizes) for d in [a, *_descendants(branches, a)])
        - branches[a].birth
    )


def _upstream_front(
    branches: list[_Branch], a: int, step: int, reach: int, mature: int, seed_front: float
) -> float:
    """The widest recent front of the tube that branch ``a`` continues (0: none).

    Walks up through the ancestors born within ``reach`` steps while each split gave the
    line the dominant piece (a stenosis may shed a voxel or two as side pieces; a real
    branch point splits the front into comparable parts). The seed layer is a stretch of
    trachea, not a front, and its two ends growing apart are no branch point: a line
    reaching it takes the seed's cross-section, ``seed_front``, or the widest first front
    of its ends (a trachea narrowed above the seed, grown upwards from it).
    """
    upstream = 0.0
    b = a
    while branches[b].parent >= 0 and step - branches[b].birth <= reach:
        parent = branches[branches[b].parent]
        if parent.parent < 0:  # the seed's own ends grow apart: no branch point
            ends = [branches[c].sizes[0] for c in parent.children if branches[c].sizes]
            return max(upstream, seed_front, *ends)
        others = [  # the other pieces of the split that grew on: a dead end is no branch
            branches[c].sizes[0]
            for c in parent.children
            if c != b and branches[c].sizes and _span(branches, c) > mature
        ]
        if not branches[b].sizes or branches[b].sizes[0] < _STENOSIS_DOMINANT * max(
            others, default=0
        ):
            break
        if parent.sizes:
            upstream = max(upstream, float(max(parent.sizes[-mature:])))
        b = branches[b].parent
    return upstream


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
    reach = round(_STENOSIS_REACH_MM / h)
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
    # The seed's cross-section (grid voxels per grid slice along S) stands for its front.
    seed_k = seeds % grid.shape[2]
    seed_front = seeds.size / float(seed_k.max() - seed_k.min() + 1)
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
        for b in sorted(failing):
            upstream = _upstream_front(branches, b, step, reach, mature, seed_front)
            if (
                upstream * h * h >= _STENOSIS_MIN_MM2
                and branches[b].calibre <= _STENOSIS_NARROWING * upstream
                and count[b] <= _STENOSIS_REGAIN * upstream + slack
            ):
                logger.debug(
                    "step %d: branch %d widens again past a stenosis (front %d, calibre "
                    "%.1f, %.0f upstream): calibre restored",
                    step,
                    b,
                    count[b],
                    branches[b].calibre,
                    upstream,
                )
                branches[b].calibre = upstream
                branches[b].settle_until = step + reach  # while the lumen widens back
                failing.discard(b)
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
            if step - branch.birth >= mature and branch.sizes and step >= branch.settle_until:
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
