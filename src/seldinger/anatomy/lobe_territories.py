"""Lobe territories: each lobe grows from its vessel atoms until it meets a neighbour.

Pulmonary vessels do not cross fissures, and on both sides of a fissure the lung holds
only its finest, subpleural vessels: the fissure lies in a vessel-free band. A marker
watershed from the labelled vessel atoms (:mod:`seldinger.anatomy.lobe_seeds`) over the
distance to the nearest vessel floods the vessel-rich lung first, and the lobes meet on
the crests of that distance, in the bands [1]_, [2]_. The distance is capped at 6 mm: the
bands of lidc-idri-0001 lie 2-6 mm from the nearest vessel of its vessel mask, and farther
lung (subpleural rind, emphysema) is no more of a boundary than the band; beyond the cap
the flooding races outwards evenly from every lobe.

References
----------
.. [1] Kuhnigk JM, Dicken V, Zidowitz S, et al. New tools for computer assistance in
   thoracic CT. Part 1. Functional analysis of lungs, lung lobes, and bronchopulmonary
   segments. RadioGraphics 25(2):525-536, 2005.
.. [2] Lassen B, van Rikxoort EM, Schmidt M, Kerkstra S, van Ginneken B, Kuhnigk JM.
   Automatic segmentation of the pulmonary lobes from chest CT scans based on fissures,
   vessels, and bronchi. IEEE Trans Med Imaging 32(2):210-222, 2013.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from seldinger.anatomy.morphology import BoolArray, bounding_slices
from seldinger.anatomy.vesselness import block_any_2, repeat_2

__all__ = ["VESSEL_DISTANCE_CAP_MM", "territories", "vessel_distance_mm"]

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]

#: Distance (mm) to the nearest vessel above which lung counts as equally vessel-free.
VESSEL_DISTANCE_CAP_MM = 6.0


def vessel_distance_mm(vessel: BoolArray, spacing_mm: Sequence[float]) -> FloatArray:
    """Distance (mm) to the nearest vessel voxel, capped at :data:`VESSEL_DISTANCE_CAP_MM`.

    Computed on 2 × 2 × 2 blocks (a block is vessel when any of its voxels is): the cap is
    four to five blocks, halving the grid moves the distances by at most one block (about
    1.3 mm on the lobe grid), and the transform takes 0.2 s instead of 1.7 s on
    lidc-idri-0001.

    Examples
    --------
    >>> v = np.zeros((12, 2, 2), bool); v[0] = True
    >>> vessel_distance_mm(v, (1.0, 1.0, 1.0))[:, 0, 0].tolist()
    [0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0]
    """
    blocks = block_any_2(vessel)
    if blocks.size == 0 or not blocks.any():
        return np.full(vessel.shape, VESSEL_DISTANCE_CAP_MM, np.float32)
    coarse = ndi.distance_transform_edt(~blocks, sampling=[2.0 * s for s in spacing_mm])
    out = repeat_2(np.minimum(coarse, VESSEL_DISTANCE_CAP_MM).astype(np.float32), vessel.shape)
    # planes left over by odd sizes take their neighbours' values
    for axis in range(3):
        n = blocks.shape[axis] * 2
        if n < vessel.shape[axis]:
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            src[axis] = slice(n - 1, n)
            dst[axis] = slice(n, None)
            out[tuple(dst)] = out[tuple(src)]
    return out


def territories(
    markers: IntArray, elevation: FloatArray, lung: BoolArray, codes: Sequence[int]
) -> IntArray:
    """Lobe code of every voxel of one lung: a marker watershed from its lobes' atoms.

    A lobe part the flooding grows from an atom labelled across a fissure ends up cut off
    from the lobe's main body; every part but the largest of each lobe is flooded again
    from the lobes around it.

    Parameters
    ----------
    markers : ndarray of int32
        Lobe codes of the seed voxels (atoms), 0 elsewhere.
    elevation : ndarray of float32
        Flooding level (:func:`vessel_distance_mm`).
    lung : ndarray of bool
        The lung to divide.
    codes : sequence of int
        The lobe codes of this lung; markers of other codes are ignored.

    Returns
    -------
    ndarray of int32
        Lobe codes inside ``lung`` (0 outside it, and in parts no marker reaches).

    Examples
    --------
    >>> lung = np.ones((7, 1, 1), bool)
    >>> seeds = np.array([1, 0, 0, 0, 0, 0, 2], np.int32).reshape(7, 1, 1)
    >>> elev = np.array([0, 1, 2, 5, 2, 1, 0], np.float32).reshape(7, 1, 1)
    >>> territories(seeds, elev, lung, (1, 2)).ravel().tolist()
    [1, 1, 1, 1, 2, 2, 2]
    """
    out = np.zeros(lung.shape, np.int32)
    if not lung.any():
        return out
    box = bounding_slices(lung, pad=1)
    mask = lung[box]
    elev = elevation[box]
    seeds = np.where(mask & np.isin(markers[box], codes), markers[box], 0)
    first = np.asarray(watershed(elev, seeds, mask=mask), dtype=np.int32)
    orphans = np.zeros(mask.shape, bool)
    for code in codes:
        parts, n = ndi.label(first == code)
        if n > 1:
            sizes = np.bincount(parts.ravel())
            sizes[0] = 0
            orphans |= (parts > 0) & (parts != sizes.argmax())
    if orphans.any():
        first[orphans] = 0
        near = ndi.binary_dilation(orphans, iterations=2) & mask
        sub = bounding_slices(near, pad=1)
        again = watershed(elev[sub], np.where(near[sub], first[sub], 0), mask=near[sub])
        first[sub] = np.where(near[sub], again, first[sub])
    out[box] = first
    return out
