"""The planning target: a lesion grown by a margin (PTV), on a crop of the CT's grid.

Ablation placement, seed planning and the seed-dose figures all need the lesion plus a
margin and the distance from the lesion around it; :func:`expand_target` is the one place
that makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError
from seldinger.imaging import Volume

__all__ = ["ExpandedTarget", "TargetMaskError", "expand_target", "lesion_box"]


class TargetMaskError(BadInputError):
    """A lesion mask that cannot be a planning target (empty, or the margin is invalid)."""


@dataclass(frozen=True, eq=False)
class ExpandedTarget:
    """A lesion and its margin on a crop of the lesion's grid.

    Attributes
    ----------
    lesion : Volume
        The lesion mask (bool) cropped around it, padded by the margin and ``pad_mm``.
    distance_mm : ndarray, shape of the crop
        Euclidean distance (mm, anisotropic spacing honoured) from each voxel centre to the
        nearest lesion voxel centre; 0 inside the lesion.
    margin_mm : float
        The margin.
    """

    lesion: Volume
    distance_mm: npt.NDArray[np.float64]
    margin_mm: float

    @property
    def ptv(self) -> npt.NDArray[np.bool_]:
        """The planning target: every voxel within ``margin_mm`` of the lesion."""
        return self.distance_mm <= self.margin_mm + 1e-9

    @property
    def ptv_volume(self) -> Volume:
        """:attr:`ptv` as a bool mask Volume on the crop."""
        return self.lesion.with_array(self.ptv)

    def shell(self, inner_mm: float, outer_mm: float) -> npt.NDArray[np.bool_]:
        """Voxels between ``inner_mm`` and ``outer_mm`` beyond the margin (normal tissue)."""
        beyond = self.distance_mm - self.margin_mm
        return (beyond > inner_mm + 1e-9) & (beyond <= outer_mm + 1e-9)

    @property
    def ptv_volume_ml(self) -> float:
        """Volume of the planning target, mL."""
        return float(self.ptv.sum()) * float(np.prod(self.lesion.spacing_mm)) / 1000.0


def lesion_box(mask: Volume, pad_mm: float) -> tuple[slice, slice, slice]:
    """Index box around a mask's non-zero voxels, widened by ``pad_mm`` plus one voxel.

    Raises
    ------
    TargetMaskError
        If the mask is empty.
    """
    nz = np.nonzero(np.asarray(mask.array, dtype=bool))
    if not nz[0].size:
        raise TargetMaskError(
            "the lesion mask is empty; segment the lesion first (`seldinger lesion CT "
            "--seed-lps-mm X,Y,Z --out MASK`)."
        )
    pads = [math.ceil(pad_mm / s) + 1 for s in mask.spacing_mm]
    i, j, k = (
        slice(max(int(a.min()) - p, 0), min(int(a.max()) + p + 1, n))
        for a, p, n in zip(nz, pads, mask.shape, strict=True)
    )
    return i, j, k


def expand_target(lesion: Volume, margin_mm: float, pad_mm: float = 0.0) -> ExpandedTarget:
    """Grow a lesion mask by ``margin_mm`` on a crop of its grid.

    Parameters
    ----------
    lesion : Volume
        Lesion mask (non-zero inside) on the CT's grid.
    margin_mm : float
        Margin, mm (>= 0).
    pad_mm : float
        Extra room kept around the margin in the crop (for shells, dose grids), mm.

    Returns
    -------
    ExpandedTarget

    Raises
    ------
    TargetMaskError
        If the mask is empty or a distance is negative or not finite.

    Examples
    --------
    >>> mask = np.zeros((9, 9, 9), bool); mask[4, 4, 4] = True
    >>> target = expand_target(Volume(mask, np.eye(4)), margin_mm=1.0)
    >>> int(target.ptv.sum())  # the voxel and its 6 face neighbours
    7
    """
    for name, value in (("margin_mm", margin_mm), ("pad_mm", pad_mm)):
        if not (math.isfinite(value) and value >= 0):
            raise TargetMaskError(f"{name} must be a finite number >= 0 (mm); got {value}.")
    crop = lesion.crop_index(lesion_box(lesion, margin_mm + pad_mm))
    inside = np.asarray(crop.array, dtype=bool)
    distance = ndi.distance_transform_edt(~inside, sampling=crop.spacing_mm)
    return ExpandedTarget(crop.with_array(inside), np.asarray(distance), float(margin_mm))
