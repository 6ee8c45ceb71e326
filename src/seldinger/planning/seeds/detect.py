"""Implanted seeds in a post-implant CT: positions and axes for the delivered dose.

An I-125 seed (4.5 mm long, 0.8 mm wide titanium capsule) reads far above bone on CT
(metal, > 2 000 HU at its core) and blooms to a few mm³ above that level. Steps:

1. Voxels above :data:`METAL_HU` inside the search region (the implanted organ or target
   area: undiluted contrast in veins and dense cortex can read as high) form components
   (26-connected).
2. The single-seed volume is the median volume of the components (most are single seeds);
   components far smaller are noise, far larger than :data:`MAX_SEEDS_PER_CLUMP` seeds
   are other metal (clips, wires, dental or orthopaedic hardware) and are reported, not
   taken.
3. A component holding k ≈ volume / single volume seeds (touching seeds, end to end or
   side by side) is split into k by k-means on its voxel positions, started from points
   spread along its first and, separately, its second principal axis (end to end and
   side by side); the split whose parts are shaped most like the single seeds wins.
4. Each seed's position is its voxels' HU-weighted centroid, its axis their principal
   direction (sign: towards +S, then +P, then +L, for reproducibility).

Written here rather than taken from a library: the steps are a threshold, a labelling,
per-component moments and a small k-means, each one SciPy call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.cluster.vq import kmeans2

from seldinger.errors import BadInputError
from seldinger.imaging import Volume, require_same_geometry

__all__ = ["MAX_SEEDS_PER_CLUMP", "METAL_HU", "DetectedSeeds", "detect_seeds"]

#: Seed metal reads above this (bone cortex stays below about 1 900 HU).
METAL_HU = 2000.0
#: A component of more than this many single-seed volumes is other metal.
MAX_SEEDS_PER_CLUMP = 6
#: Components smaller than this share of the single-seed volume are noise.
_MIN_SHARE = 0.3


@dataclass(frozen=True)
class DetectedSeeds:
    """Seeds found in a CT (LPS mm) and what was left out."""

    positions_lps_mm: npt.NDArray[np.float64]  # (n, 3)
    axes_lps: npt.NDArray[np.float64]  # (n, 3) unit
    single_seed_mm3: float
    clumps_split: int  # components holding several touching seeds
    other_metal_mm3: tuple[float, ...] = ()  # components too large to be seeds
    notes: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        """Number of seeds."""
        return int(self.positions_lps_mm.shape[0])


def detect_seeds(
    ct: Volume, region: Volume | None = None, metal_hu: float = METAL_HU, seed: int = 0
) -> DetectedSeeds:
    """Find implanted seeds (positions, axes) in a post-implant CT.

    Parameters
    ----------
    ct : Volume
        Post-implant CT in HU (any axis order).
    region : Volume, optional
        Where to look: the implanted organ or the target with a few cm around it
        (default: everywhere). Outside it, contrast in veins, dental fillings, clips and
        dense cortex also exceed the metal level.
    metal_hu : float
        Threshold of seed metal.
    seed : int
        Seed of the k-means starts' random generator (results are reproducible).

    Raises
    ------
    ValueError
        If no voxel exceeds ``metal_hu`` (no seeds, or the CT is not in HU).
    """
    hu = np.asarray(ct.array)
    metal = hu > metal_hu
    if region is not None:
        require_same_geometry(ct, region)
        metal &= np.asarray(region.array, dtype=bool)
    if not metal.any():
        raise BadInputError(
            f"no voxel above {metal_hu:.0f} HU: no seeds found. Check that this is the "
            "post-implant CT in HU (seeds read > 2000 HU), or lower metal_hu."
        )
    labels, n = ndi.label(metal, structure=np.ones((3, 3, 3), dtype=bool))
    voxel_mm3 = float(np.prod(ct.spacing_mm))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:] * voxel_mm3
    single = float(np.median(sizes))
    spacing = np.asarray(ct.spacing_mm, dtype=np.float64)
    rng = np.random.default_rng(seed)
    slices = ndi.find_objects(labels)
    singles = [
        _spreads(np.argwhere(labels[box] == c) * spacing)
        for c, box in enumerate(slices, start=1)
        if box is not None and 0.7 <= sizes[c - 1] / single <= 1.3
    ]
    single_spreads = np.median(np.array(singles), axis=0) if singles else np.zeros(2)
    positions: list[npt.NDArray[np.float64]] = []
    axes: list[npt.NDArray[np.float64]] = []
    other: list[float] = []
    split = 0
    for c, box in enumerate(slices, start=1):
        if box is None:
            continue
        size = sizes[c - 1]
        k = round(float(size) / single)
        if size < _MIN_SHARE * single:
            continue
        if k > MAX_SEEDS_PER_CLUMP:
            other.append(float(size))
            continue
        k = max(k, 1)
        local = labels[box] == c
        ijk = np.argwhere(local) + np.array([s.start for s in box])
        weight = np.clip(hu[tuple(ijk.T)].astype(np.float64) - metal_hu, 1.0, None)
        mm = ijk * spacing
        groups = [np.arange(len(ijk))]
        if k > 1:
            split += 1
            groups = _split(mm, k, rng, single_spreads)
        for g in groups:
            w = weight[g]
            centroid_ijk = (ijk[g] * w[:, None]).sum(axis=0) / w.sum()
            positions.append(np.asarray(ct.index_to_lps(centroid_ijk), dtype=np.float64))
            axes.append(_lps_axis(ct, _principal(mm[g]) / spacing))
    notes = []
    if other:
        notes.append(
            f"{len(other)} metal object(s) larger than {MAX_SEEDS_PER_CLUMP} seeds left out "
            f"({', '.join(f'{v:.0f}' for v in other)} mm³): clips, wires or hardware?"
        )
    return DetectedSeeds(
        positions_lps_mm=np.array(positions).reshape(-1, 3),
        axes_lps=np.array(axes).reshape(-1, 3),
        single_seed_mm3=single,
        clumps_split=split,
        other_metal_mm3=tuple(other),
        notes=tuple(notes),
    )


def _spreads(mm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Standard deviations (mm) along the two main principal axes of a point set."""
    if len(mm) < 2:
        return np.zeros(2)
    sv = np.linalg.svd(mm - mm.mean(axis=0), compute_uv=False)
    out = np.zeros(2)
    out[: min(2, sv.size)] = sv[:2] / np.sqrt(len(mm))
    return out


def _split(
    mm: npt.NDArray[np.float64],
    k: int,
    rng: np.random.Generator,
    single: npt.NDArray[np.float64],
) -> list[npt.NDArray[np.intp]]:
    """Voxel groups of ``k`` touching seeds.

    k-means is started along the first and, separately, the second principal axis (seeds
    end to end, side by side); the split whose groups look most like a single seed (their
    principal spreads closest to ``single``, the median of the single seeds) wins.
    """
    centre = mm.mean(axis=0)
    _, _, vt = np.linalg.svd(mm - centre, full_matrices=False)
    best: list[npt.NDArray[np.intp]] = [np.arange(len(mm))]
    best_misfit = np.inf
    for direction in vt[:2]:
        span = (mm - centre) @ direction
        starts = centre + np.linspace(span.min(), span.max(), 2 * k + 1)[1::2, None] * direction
        _, assign = kmeans2(mm, starts, minit="matrix", seed=rng)
        groups = [np.flatnonzero(assign == j) for j in range(k) if np.any(assign == j)]
        misfit = sum(float(np.abs(_spreads(mm[g]) - single).sum()) for g in groups)
        if len(groups) == k and misfit < best_misfit:
            best, best_misfit = groups, misfit
    return best


def _principal(points_mm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Unit direction of largest spread (array-index frame scaled to mm)."""
    if len(points_mm) < 2:
        return np.array([0.0, 0.0, 1.0])
    centred = points_mm - points_mm.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray(vt[0], dtype=np.float64)


def _lps_axis(ct: Volume, direction_ijk: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """An index-space direction as a unit LPS vector, signed towards +S, +P, +L."""
    d = np.asarray(ct.affine)[:3, :3] @ direction_ijk
    d = d / np.linalg.norm(d)
    for axis in (2, 1, 0):
        if abs(d[axis]) > 1e-6:
            return d if d[axis] > 0 else -d
    return d
