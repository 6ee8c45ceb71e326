"""Work grid and per-scan attenuation levels shared by the mediastinal organ steps.

The heart, great vessels, oesophagus and spinal canal are found on a block-averaged work grid
of about 1.4 mm in-plane and 2.5 mm between slices: the structures are 10 mm or more across,
and averaging 2 × 2 voxels of a 0.7 mm CT halves its noise. Levels (fat, soft tissue) are
measured in each scan, never fixed, because contrast phase, kernel and patient shift them.

Frame and units follow ``docs/conventions.md``: arrays are LPS-ordered (i → left,
j → posterior, k → superior), sizes in millimetres, attenuation in HU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.morphology import BoolArray

__all__ = ["Levels", "WorkGrid", "checked_mask", "measure_levels"]

FloatArray = npt.NDArray[np.float32]
Spacing = tuple[float, float, float]

# In-plane spacing of the work grid: the smallest structure wanted (the collapsed oesophagus,
# 8-10 mm thick) still spans 6 voxels, and a 0.7 mm CT is averaged over 2 × 2 voxels.
_WORK_IN_PLANE_MM = 1.4
# Between slices: the usual 2.5 mm of a chest CT; thinner slices are averaged up to about it.
_WORK_SLICE_MM = 2.5
# Smoothing of the work grid before thresholds and gradients (the residual noise of 1.4 mm
# blocks is 8-15 HU; 1 mm keeps the 2-3 mm fat planes between organs).
_SMOOTH_MM = 1.0

# Adipose tissue reads -150 to -50 HU and soft tissue (muscle, unenhanced organs and blood)
# -20 to 120 HU; the histogram mode in each range is the scan's level. Contrast moves organs
# above 120 HU only partly (liver 70-130 HU), muscle stays in the range.
_FAT_RANGE_HU = (-200.0, -40.0)
_TISSUE_RANGE_HU = (-20.0, 120.0)
# Histogram bins for the modes, HU.
_BIN_HU = 5.0
# Aerated lung and air: never fat nor tissue.
_AIR_HU = -400.0


def checked_mask(name: str, mask: npt.ArrayLike | None, shape: tuple[int, ...]) -> BoolArray:
    """``mask`` as a bool array of ``shape``; AnatomyError naming the mask otherwise."""
    if mask is None:
        return np.zeros(shape, dtype=bool)
    array = np.asarray(mask, dtype=bool)
    if array.shape != shape:
        raise AnatomyError(
            f"the {name} mask has shape {array.shape} but the CT has {shape}: pass the {name} "
            "segmented from this CT (seldinger.anatomy.segment), on the same grid."
        )
    return array


@dataclass(frozen=True)
class WorkGrid:
    """Block factors from the CT's grid to the work grid, and the work grid's spacing (mm)."""

    factors: tuple[int, int, int]
    spacing_mm: Spacing
    shape: tuple[int, int, int]
    full_shape: tuple[int, int, int]

    @classmethod
    def for_ct(cls, full_shape: tuple[int, ...], spacing_mm: Spacing) -> WorkGrid:
        targets = (_WORK_IN_PLANE_MM, _WORK_IN_PLANE_MM, _WORK_SLICE_MM)
        f = tuple(max(1, round(t / s)) for t, s in zip(targets, spacing_mm, strict=True))
        fi, fj, fk = (int(x) for x in f)
        spacing = (spacing_mm[0] * fi, spacing_mm[1] * fj, spacing_mm[2] * fk)
        ni, nj, nk = (int(n) for n in full_shape)
        shape = (-(-ni // fi), -(-nj // fj), -(-nk // fk))
        return cls((fi, fj, fk), spacing, shape, (ni, nj, nk))

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0

    def mean(self, array: npt.NDArray[Any]) -> FloatArray:
        """Block mean onto the work grid (the last, incomplete block of an axis: edge copies)."""
        out = np.asarray(array)
        pad = [(0, n * f - m) for n, f, m in zip(self.shape, self.factors, out.shape, strict=True)]
        if any(after for _, after in pad):
            out = np.pad(out, pad, mode="edge")
        # Strided sums (in float32 from the first axis on) are several times faster than a
        # reshaped mean over interleaved axes.
        for axis, f in enumerate(self.factors):
            if f == 1:
                continue
            lead = (slice(None),) * axis
            total = out[(*lead, slice(0, None, f))].astype(np.float32)
            for r in range(1, f):
                total += out[(*lead, slice(r, None, f))]
            out = total
        scale = np.float32(1.0 / float(np.prod(self.factors)))
        return np.asarray(out, dtype=np.float32) * scale

    def fraction(self, mask: BoolArray) -> FloatArray:
        """Share of each work voxel covered by ``mask`` (0 to 1)."""
        return self.mean(mask)

    def coarse(self, mask: BoolArray) -> BoolArray:
        """A full-grid mask on the work grid: work voxels at least half covered."""
        return np.asarray(self.fraction(mask) >= 0.5)

    def full(self, mask: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """A work-grid array repeated onto the CT's grid (nearest neighbour)."""
        out = mask
        for axis, f in enumerate(self.factors):
            if f > 1:
                out = np.repeat(out, f, axis=axis)
        ni, nj, nk = self.full_shape
        return np.asarray(out[:ni, :nj, :nk])

    def full_linear(self, values: FloatArray) -> FloatArray:
        """Linear interpolation of a work-grid array at the CT's voxel centres (edges clamped)."""
        out = values
        for axis, f in enumerate(self.factors):
            if f == 1:
                continue
            n = out.shape[axis]
            u = np.arange(self.full_shape[axis], dtype=np.float32)
            u = np.clip((u - (f - 1) / 2.0) / f, 0.0, n - 1)
            i0 = np.floor(u).astype(np.intp)
            i1 = np.minimum(i0 + 1, n - 1)
            w = (u - i0).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
            out = np.take(out, i0, axis=axis) * (1 - w) + np.take(out, i1, axis=axis) * w
        return np.asarray(out, dtype=np.float32)

    def smooth(self, hu: FloatArray) -> FloatArray:
        """Gaussian smoothing of a work-grid HU array by :data:`_SMOOTH_MM`."""
        sigma = [_SMOOTH_MM / s for s in self.spacing_mm]
        return np.asarray(ndi.gaussian_filter(hu, sigma), dtype=np.float32)


@dataclass(frozen=True)
class Levels:
    """Attenuation levels measured in one scan (HU).

    Attributes
    ----------
    fat_hu : float
        Mode of adipose tissue.
    tissue_hu : float
        Mode of soft tissue (muscle, unenhanced organs).
    noise_hu : float
        Standard deviation of the work grid inside homogeneous soft tissue.
    """

    fat_hu: float
    tissue_hu: float
    noise_hu: float

    @property
    def fat_edge_hu(self) -> float:
        """Half-way between fat and soft tissue: the edge of an organ against fat."""
        return 0.5 * (self.fat_hu + self.tissue_hu)


def _mode(values: FloatArray, lo: float, hi: float) -> float:
    edges = np.arange(lo, hi + _BIN_HU, _BIN_HU)
    counts, _ = np.histogram(values, bins=edges)
    counts = ndi.uniform_filter1d(counts.astype(np.float64), 3)
    return float(edges[int(np.argmax(counts))] + _BIN_HU / 2.0)


def measure_levels(hu: FloatArray, body: BoolArray) -> Levels:
    """Fat and soft-tissue levels of a work-grid CT (``hu``) inside ``body``.

    Raises AnatomyError when the body holds neither fat nor soft tissue (not a CT in HU).
    """
    sample = hu[::2, ::2][body[::2, ::2]]
    sample = sample[sample > _AIR_HU]
    fat = sample[(sample > _FAT_RANGE_HU[0]) & (sample < _FAT_RANGE_HU[1])]
    tissue = sample[(sample > _TISSUE_RANGE_HU[0]) & (sample < _TISSUE_RANGE_HU[1])]
    if fat.size < 100 or tissue.size < 100:
        raise AnatomyError(
            "the body holds too little fat (-200 to -40 HU) or soft tissue (-20 to 120 HU) to "
            "measure their levels: pass a CT in Hounsfield units that shows the chest or abdomen."
        )
    fat_hu = _mode(fat, *_FAT_RANGE_HU)
    tissue_hu = _mode(tissue, *_TISSUE_RANGE_HU)
    # Noise: spread of soft tissue around its mode, from the half-width of the peak's core
    # (the 25th-75th percentile of the voxels within 40 HU of the mode, / 1.35 for a Gaussian).
    near = tissue[np.abs(tissue - tissue_hu) < 40.0]
    q25, q75 = np.percentile(near, [25.0, 75.0])
    noise_hu = max(float(q75 - q25) / 1.35, 1.0)
    return Levels(fat_hu, tissue_hu, noise_hu)
