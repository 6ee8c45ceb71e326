"""Emphysema and bullae: low-attenuation lung (LAA, < -950 HU) as risk structures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.morphology import BoolArray, bounding_slices, components_above
from seldinger.imaging import Volume

__all__ = ["LAA_THRESHOLD_HU", "Emphysema", "segment_emphysema"]

#: The standard emphysema index threshold for inspiratory CT (LAA-950; Gevenois et al.,
#: Am J Respir Crit Care Med 1996; Fleischner Society 2015).
LAA_THRESHOLD_HU = -950.0
# Clusters below this volume are noise and single-voxel LAA; 65 mm³ is a 5 mm sphere, the
# low end of a bulla a needle should avoid (bullae are > 1 cm by definition).
_MIN_CLUSTER_MM3 = 65.0


@dataclass(frozen=True)
class Emphysema:
    """Low-attenuation regions of the lungs.

    Attributes
    ----------
    mask : ndarray of bool
        Clusters of LAA voxels of at least 65 mm³ (risk structures for needle paths).
    laa_percent : float
        Percentage of lung voxels below -950 HU on the unsmoothed CT (the emphysema index,
        LAA%-950).
    """

    mask: BoolArray
    laa_percent: float


def segment_emphysema(ct: Volume, lungs: BoolArray, airways: BoolArray | None = None) -> Emphysema:
    """Find low-attenuation lung (< :data:`LAA_THRESHOLD_HU`) and its clusters.

    The clusters come from the CT smoothed with a 3×3 in-plane median (thin-slice noise
    otherwise makes single-voxel LAA in normal lung); LAA% is counted on the raw CT as the
    index is defined. Airway lumen is excluded from both.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered.
    lungs : ndarray of bool
        Both lungs.
    airways : ndarray of bool, optional
        Airway lumen to exclude (intrapulmonary bronchi are air too).
    """
    require_canonical(ct)
    mask = np.zeros(ct.shape, dtype=bool)
    if not lungs.any():
        return Emphysema(mask=mask, laa_percent=0.0)
    sl = bounding_slices(lungs)
    lung = lungs[sl] if airways is None else lungs[sl] & ~airways[sl]
    raw = ct.array[sl] < LAA_THRESHOLD_HU
    raw_low = lung & raw
    laa_percent = 100.0 * float(raw_low.sum()) / max(int(lung.sum()), 1)
    # The 3×3 median is below the threshold exactly when at least 5 of the 9 values are:
    # a box count of the thresholded slice is the same filter, several times faster.
    count = ndi.uniform_filter(raw.astype(np.float32), size=(3, 3, 1)) * 9.0
    low = lung & (count > 4.5)
    min_voxels = int(np.ceil(_MIN_CLUSTER_MM3 / float(np.prod(ct.spacing_mm))))
    mask[sl] = components_above(low, min_voxels)
    return Emphysema(mask=mask, laa_percent=laa_percent)
