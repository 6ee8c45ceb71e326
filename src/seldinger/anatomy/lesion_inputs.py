"""The user's input to lesion segmentation, checked once; the box of CT the method works in.

:class:`Refinement` holds the seed and the refinements (include and exclude points, a
box, the largest diameter), validated in :meth:`Refinement.from_arguments` with one-line
messages that name the problem and the fix. :class:`WorkBox` is a crop of the CT around
the lesion with what every step needs: HU, the body's outside, aerated lung, the voxels
the user cut away, and smoothed copies.

Conventions (``docs/conventions.md``): points are LPS mm; arrays keep the CT's index
order; "box mm" are millimetres along the array axes from the box's first voxel
(index × spacing, an isometry of LPS on the orthonormal grids of
:class:`~seldinger.imaging.Volume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.errors import LesionError
from seldinger.anatomy.lesion_regions import SEED_SEARCH_MM, ball, smooth
from seldinger.anatomy.measure import axial_axis
from seldinger.imaging import Volume

__all__ = [
    "AERATED_HU",
    "BONE_HU",
    "SOFT_TISSUE_HU",
    "OutsideAir",
    "Refinement",
    "WorkBox",
    "checked_seed",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
Spacing = tuple[float, float, float]

#: Aerated lung parenchyma reads about -950 to -700 HU; below this a voxel counts as air
#: or aerated lung (outside air, lung, airways, bowel gas).
AERATED_HU = -500.0
#: Soft tissue, fat and solid lesions read above this; the seed needs some within
#: :data:`SEED_SEARCH_MM`.
SOFT_TISSUE_HU = -300.0
#: Above this the seed sits in bone, a dense calcification or contrast-filled blood: denser
#: than any solid lesion. Fatty or red marrow (about 0-300 HU) overlaps soft tissue and is
#: only known as bone from a ``bones`` mask.
BONE_HU = 300.0
#: Contrast-filled blood above BONE_HU is told from bone by its uniformity: a robust
#: spread below BLOOD_SPREAD_HU (noise ~15-30 HU) and a value below BLOOD_MAX_HU (aorta and
#: heart of LIDC-IDRI-0001: 400-430 HU, spread < 30 HU; cortex and marrow vary by hundreds).
BLOOD_SPREAD_HU = 50.0
BLOOD_MAX_HU = 700.0
#: In-plane grid (mm) on which the outside air is labelled.
OUTSIDE_GRID_MM = 1.4
#: An exclude point must lie at least this far (mm) from the seed.
MIN_EXCLUDE_DISTANCE_MM = 3.0
#: Smoothing (Gaussian sigma, mm): light for lung (contrast ~900 HU; only single noisy
#: voxels go), more for soft tissue (contrasts of 30-50 HU sit within 3-4 noise sigmas).
LUNG_SMOOTHING_MM = 1.0
SOFT_TISSUE_SMOOTHING_MM = 2.0


def _rounded(point: npt.ArrayLike) -> list[float]:
    return [float(v) for v in np.round(np.asarray(point, dtype=np.float64), 1)]


def _points(value: Any, name: str) -> FloatArray:
    """An (n, 3) array of finite LPS points from one point or a sequence of them."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise LesionError(
            f"{name} must be LPS points in mm, each (x, y, z); got {value!r}."
        ) from err
    if array.size == 0:
        return np.zeros((0, 3))
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 3 or not np.all(np.isfinite(array)):
        raise LesionError(f"{name} must be LPS points in mm, each (x, y, z); got {value!r}.")
    return array


@dataclass(frozen=True)
class Refinement:
    """The seed and the user's refinements, validated.

    Attributes
    ----------
    seed_lps_mm : ndarray, shape (3,)
    include_lps_mm, exclude_lps_mm : ndarray, shape (n, 3)
        Points on the lesion the method must keep; points in tissue it must give up (the
        tissue joined to the lesion is split off at its narrowest joint).
    box_lo_lps_mm, box_hi_lps_mm : ndarray, shape (3,), or None
        The box's low and high corners (sorted per axis).
    max_diameter_mm : float
        The largest lesion accepted; also bounds the search around the seed.
    seed_index : tuple of int
        The CT voxel nearest the seed.
    """

    seed_lps_mm: FloatArray
    include_lps_mm: FloatArray
    exclude_lps_mm: FloatArray
    box_lo_lps_mm: FloatArray | None
    box_hi_lps_mm: FloatArray | None
    max_diameter_mm: float
    seed_index: tuple[int, int, int]

    @classmethod
    def from_arguments(
        cls,
        ct: Volume,
        seed_lps_mm: npt.ArrayLike,
        *,
        max_diameter_mm: float,
        include_lps_mm: Any,
        exclude_lps_mm: Any,
        box_lps_mm: Any,
    ) -> Refinement:
        """Check every argument against the CT; raise :class:`LesionError` naming the fix."""
        if not np.isfinite(max_diameter_mm) or max_diameter_mm <= 0:
            raise LesionError(
                f"max_diameter_mm must be a positive number of mm; got {max_diameter_mm!r}."
            )
        seed = np.asarray(seed_lps_mm, dtype=np.float64)
        if seed.shape != (3,) or not np.all(np.isfinite(seed)):
            raise LesionError(
                f"seed_lps_mm must be 3 finite LPS coordinates in mm; got {seed_lps_mm!r}."
            )
        lo_mm, hi_mm = ct.geometry.bounds_lps_mm()
        extent = f"(LPS extent {_rounded(lo_mm)} to {_rounded(hi_mm)} mm)"
        seed_index = np.rint(ct.lps_to_index(seed)).astype(int)
        if np.any(seed_index < 0) or np.any(seed_index >= np.array(ct.shape)):
            raise LesionError(
                f"seed_lps_mm {_rounded(seed)} lies outside the image {extent}. Pick a point "
                f"inside the lesion on this CT.{_ras_hint(ct, seed)}"
            )
        include = _points(include_lps_mm, "include_lps_mm")
        exclude = _points(exclude_lps_mm, "exclude_lps_mm")
        for name, points in (("include_lps_mm", include), ("exclude_lps_mm", exclude)):
            for n, point in enumerate(points):
                index = np.rint(ct.lps_to_index(point))
                if np.any(index < 0) or np.any(index >= np.array(ct.shape)):
                    raise LesionError(
                        f"{name}[{n}] {_rounded(point)} lies outside the image {extent}; "
                        "put it on this CT."
                    )
        for n, point in enumerate(exclude):
            if np.linalg.norm(point - seed) < MIN_EXCLUDE_DISTANCE_MM:
                raise LesionError(
                    f"exclude_lps_mm[{n}] {_rounded(point)} lies within "
                    f"{MIN_EXCLUDE_DISTANCE_MM:g} mm of the seed; put exclude points in the "
                    "tissue the lesion spread into, away from the seed."
                )
        box_lo = box_hi = None
        if box_lps_mm is not None:
            box_lo, box_hi = _checked_box(box_lps_mm, seed, include)
        return cls(
            seed_lps_mm=seed,
            include_lps_mm=include,
            exclude_lps_mm=exclude,
            box_lo_lps_mm=box_lo,
            box_hi_lps_mm=box_hi,
            max_diameter_mm=float(max_diameter_mm),
            seed_index=(int(seed_index[0]), int(seed_index[1]), int(seed_index[2])),
        )

    @property
    def has_cuts(self) -> bool:
        """Whether the user bounded the lesion (a box or exclude points)."""
        return self.box_lo_lps_mm is not None or len(self.exclude_lps_mm) > 0


def _checked_box(
    box_lps_mm: Any, seed: FloatArray, include: FloatArray
) -> tuple[FloatArray, FloatArray]:
    try:
        values = np.asarray(box_lps_mm, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise LesionError(
            f"box_lps_mm must be 6 numbers (x0, y0, z0, x1, y1, z1), two opposite corners in "
            f"LPS mm; got {box_lps_mm!r}."
        ) from err
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        raise LesionError(
            f"box_lps_mm must be 6 finite numbers (x0, y0, z0, x1, y1, z1), two opposite "
            f"corners in LPS mm; got {box_lps_mm!r}."
        )
    lo = np.minimum(values[:3], values[3:])
    hi = np.maximum(values[:3], values[3:])
    flat = [f"{'xyz'[a]} ({hi[a] - lo[a]:g} mm)" for a in range(3) if hi[a] - lo[a] < 1.0]
    if flat:
        raise LesionError(
            f"box_lps_mm {_rounded(values)} is empty: it has no depth along "
            f"{', '.join(flat)}; give two opposite corners of a box around the lesion."
        )
    for name, point in [
        ("the seed", seed),
        *((f"include_lps_mm[{n}]", p) for n, p in enumerate(include)),
    ]:
        if np.any(point < lo) or np.any(point > hi):
            raise LesionError(
                f"{name} {_rounded(point)} lies outside box_lps_mm (from {_rounded(lo)} to "
                f"{_rounded(hi)} mm); draw the box around the lesion, seed inside."
            )
    return lo, hi


class WorkBox:
    """A crop of the CT around the lesion, with the masks and smoothed copies the steps use.

    Parameters
    ----------
    ct : Volume
    centre_index : array_like of int, shape (3,)
        Voxel the box is centred on.
    half_mm : float
        Half-size of the box along each axis, mm (clipped to the image).
    lungs, body, bones : ndarray of bool or None
        Whole-CT masks from the caller.
    refinement : Refinement
    outside_air : OutsideAir
        Shared by the boxes of one segmentation (used when ``body`` is None).
    """

    def __init__(
        self,
        ct: Volume,
        centre_index: npt.ArrayLike,
        half_mm: float,
        lungs: BoolArray | None,
        body: BoolArray | None,
        bones: BoolArray | None,
        refinement: Refinement,
        outside_air: OutsideAir,
    ) -> None:
        self.ct = ct
        self._outside_air = outside_air
        self.spacing: Spacing = ct.spacing_mm
        shape = np.asarray(ct.shape)
        centre = np.asarray(centre_index, dtype=int)
        half = np.ceil(half_mm / np.asarray(self.spacing)).astype(int)
        self.lo = np.maximum(centre - half, 0)
        self.hi = np.minimum(centre + half + 1, shape)
        self.at_image_edge = [
            (bool(self.lo[a] == 0), bool(self.hi[a] == shape[a])) for a in range(3)
        ]
        self.slices = (
            slice(int(self.lo[0]), int(self.hi[0])),
            slice(int(self.lo[1]), int(self.hi[1])),
            slice(int(self.lo[2]), int(self.hi[2])),
        )
        self.half_mm = float(half_mm)
        self.refinement = refinement
        self.hu = np.asarray(ct.array[self.slices], dtype=np.float32)
        self._lungs = lungs
        self._body = body
        self.bones = None if bones is None else np.asarray(bones[self.slices])

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.hu.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    def local(self, index: npt.ArrayLike) -> tuple[int, int, int]:
        """Box index of a CT index (clipped into the box)."""
        local = np.clip(np.asarray(index, dtype=int) - self.lo, 0, np.asarray(self.shape) - 1)
        return (int(local[0]), int(local[1]), int(local[2]))

    def global_index(self, local: npt.ArrayLike) -> FloatArray:
        return np.asarray(local, dtype=np.float64) + self.lo

    def lps_to_mm(self, lps_mm: npt.ArrayLike) -> FloatArray:
        """Box mm of LPS points, shape (..., 3)."""
        index = self.ct.lps_to_index(np.asarray(lps_mm, dtype=np.float64)) - self.lo
        return np.asarray(index * np.asarray(self.spacing), dtype=np.float64)

    def contains(self, index: npt.ArrayLike) -> bool:
        i = np.asarray(index)
        return bool(np.all(i >= self.lo) and np.all(i < self.hi))

    @cached_property
    def outside(self) -> BoolArray:
        """Outside the body: ``body``'s complement, or air connected to its slice's border."""
        if self._body is not None:
            return np.asarray(~self._body[self.slices])
        return self._outside_air.crop(self.slices)

    @cached_property
    def aerated(self) -> BoolArray:
        """Aerated lung (and other air inside the body): below AERATED_HU, in ``lungs``."""
        air = (self.hu < AERATED_HU) & ~self.outside
        if self._lungs is not None:
            air &= self._lungs[self.slices]
        return np.asarray(air)

    @cached_property
    def cut(self) -> BoolArray:
        """Voxels the user cut away: outside ``box_lps_mm``."""
        refinement = self.refinement
        cut = np.zeros(self.shape, dtype=bool)
        if refinement.box_lo_lps_mm is None or refinement.box_hi_lps_mm is None:
            return cut
        grids = np.ogrid[tuple(slice(0, n) for n in self.shape)]
        index = [g + lo for g, lo in zip(grids, self.lo, strict=True)]
        affine = self.ct.affine
        for row in range(3):
            lps = sum(affine[row, c] * index[c] for c in range(3)) + affine[row, 3]
            cut |= (lps < refinement.box_lo_lps_mm[row]) | (lps > refinement.box_hi_lps_mm[row])
        return np.asarray(cut)

    @cached_property
    def smooth_lung(self) -> npt.NDArray[np.float32]:
        return smooth(self.hu, LUNG_SMOOTHING_MM, self.spacing)

    @cached_property
    def smooth_soft(self) -> npt.NDArray[np.float32]:
        return smooth(self.hu, SOFT_TISSUE_SMOOTHING_MM, self.spacing)


class OutsideAir:
    """Air connected to the border of its own axial slice (outside the body).

    Labelled on an in-plane grid of about :data:`OUTSIDE_GRID_MM` (every 2nd voxel of a
    0.7 mm CT: a quarter of the work; the body wall is far thicker), slice by slice on
    first use and kept, so the growing boxes of one segmentation label each slice once.
    """

    def __init__(self, ct: Volume) -> None:
        self.ct = ct
        self.axis = axial_axis(ct.affine)
        spacing = ct.spacing_mm
        self.step = [
            1 if a == self.axis else max(1, int(OUTSIDE_GRID_MM // spacing[a])) for a in range(3)
        ]
        coarse_shape = [-(-n // step) for n, step in zip(ct.shape, self.step, strict=True)]
        self._coarse = np.zeros(coarse_shape, dtype=bool)
        self._done = np.zeros(ct.shape[self.axis], dtype=bool)

    def _label(self, first: int, stop: int) -> None:
        slab: list[slice] = [slice(None, None, n) for n in self.step]
        slab[self.axis] = slice(first, stop)
        air = np.asarray(self.ct.array[tuple(slab)]) < AERATED_HU
        # Slices first and contiguous: scipy labels in-plane neighbours far faster so.
        planes = np.ascontiguousarray(np.moveaxis(air, self.axis, 0))
        in_plane = np.zeros((3, 3, 3), dtype=bool)
        in_plane[1] = True
        labels, n = ndi.label(planes, structure=in_plane)
        touching = np.zeros(n + 1, dtype=bool)
        for edge in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
            touching[edge] = True
        touching[0] = False
        where: list[slice] = [slice(None)] * 3
        where[self.axis] = slice(first, stop)
        self._coarse[tuple(where)] = np.moveaxis(touching[labels], 0, self.axis)
        self._done[first:stop] = True

    def crop(self, slices: tuple[slice, slice, slice]) -> BoolArray:
        """The outside-air mask on a box of the CT."""
        along = slices[self.axis]
        missing = np.flatnonzero(~self._done[along]) + along.start
        if missing.size:
            self._label(int(missing[0]), int(missing[-1]) + 1)
        coarse_box = tuple(
            slice(s.start // n, (s.stop - 1) // n + 1)
            for s, n in zip(slices, self.step, strict=True)
        )
        outside = self._coarse[coarse_box]
        for a, n in enumerate(self.step):
            if n > 1:
                outside = np.repeat(outside, n, axis=a)
        fine = tuple(
            slice(s.start - c.start * n, s.stop - c.start * n)
            for s, c, n in zip(slices, coarse_box, self.step, strict=True)
        )
        return np.asarray(outside[fine] & (np.asarray(self.ct.array[slices]) < AERATED_HU))


def checked_seed(work: WorkBox, seed: tuple[int, int, int]) -> tuple[int, int, int]:
    """The seed, moved to the nearest soft tissue if it sits on a lesion's edge; or raise."""
    hu = work.hu
    where = f"seed_lps_mm {_rounded(work.refinement.seed_lps_mm)}"
    if work.outside[seed]:
        raise LesionError(
            f"{where} lies outside the body (HU {float(hu[seed]):.0f}). Pick a point inside "
            "the lesion."
        )
    near = ball(hu.shape, seed, SEED_SEARCH_MM, work.spacing) & (hu >= SOFT_TISSUE_HU)
    if not near.any():
        raise LesionError(
            f"the seed is in air or aerated lung (HU {float(hu[seed]):.0f}, no soft tissue "
            f"within {SEED_SEARCH_MM:g} mm of {where}); pick a point inside the lesion."
        )
    bones = work.bones
    if bones is not None and np.count_nonzero(bones[near]) > 0.5 * np.count_nonzero(near):
        raise LesionError(
            f"the seed is in bone ({where} lies in the bones mask); pick a point inside the lesion."
        )
    dense_hu = float(np.median(hu[near]))
    if dense_hu > BONE_HU:
        # Contrast-filled blood is uniform (noise only); bone is cortex and marrow.
        spread_hu = 1.4826 * float(np.median(np.abs(hu[near] - dense_hu)))
        uniform = spread_hu < BLOOD_SPREAD_HU and dense_hu < BLOOD_MAX_HU
        kind = "contrast-filled blood (a vessel or the heart)" if uniform else "bone"
        raise LesionError(
            f"the seed is in {kind}: median {dense_hu:.0f} HU > {BONE_HU:.0f} HU around "
            f"{where}, denser than any solid lesion; pick a point inside the lesion "
            "(calcified lesions are not supported)."
        )
    if hu[seed] >= SOFT_TISSUE_HU:
        return seed
    candidates = np.argwhere(near)
    offsets_mm = (candidates - np.asarray(seed)) * np.asarray(work.spacing)
    best = candidates[np.argmin((offsets_mm**2).sum(axis=1))]
    return (int(best[0]), int(best[1]), int(best[2]))


def _ras_hint(ct: Volume, point: npt.NDArray[np.float64]) -> str:
    """A hint when the point, read as RAS (3D Slicer's display), would lie in the image."""
    flipped = point * np.array([-1.0, -1.0, 1.0])
    index = np.rint(ct.lps_to_index(flipped)).astype(int)
    if np.any(index < 0) or np.any(index >= np.array(ct.shape)):
        return ""
    shown = ",".join(f"{v:.1f}" for v in flipped)
    return (
        " Read as RAS (as 3D Slicer shows positions) it would lie inside: if it is RAS, give "
        f"LPS by negating x and y: {shown}."
    )
