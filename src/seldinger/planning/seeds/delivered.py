"""Delivered dose of an implant: seeds found in a post-implant CT, TG-43 dose on its grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seldinger.imaging import Volume, require_same_geometry
from seldinger.physics.tg43 import SeedData, dose_on_grid, total_dose_gy
from seldinger.planning.seeds.detect import DetectedSeeds, detect_seeds

__all__ = ["DOSE_REACH_MM", "DeliveredDose", "delivered_dose"]

#: Dose is computed within this distance (mm, per axis) of the seeds' bounding box; beyond
#: it an I-125 seed's dose is below 1 % of its dose at 1 cm.
DOSE_REACH_MM = 50.0


@dataclass(frozen=True, eq=False)
class DeliveredDose:
    """The seeds found and the total dose (Gy, complete decay) on the CT's grid."""

    seeds: DetectedSeeds
    dose_gy: Volume


def delivered_dose(ct: Volume, region: Volume, sk_u: float, data: SeedData) -> DeliveredDose:
    """Find the seeds in ``region`` of a post-implant CT and compute their dose on its grid.

    Parameters
    ----------
    ct : Volume
        Post-implant CT (HU).
    region : Volume
        Mask on the CT's grid of where seeds may be (the organ with a few cm around it).
    sk_u : float
        Air-kerma strength of each seed, U.
    data : SeedData
        TG-43 data of the seed model.

    Returns
    -------
    DeliveredDose
        Dose 0 farther than :data:`DOSE_REACH_MM` from the seeds' box.
    """
    require_same_geometry(ct, region)
    found = detect_seeds(ct, region.with_array(np.asarray(region.array) > 0))
    seeds = found.positions_lps_mm
    spacing = np.abs(np.asarray(ct.spacing_mm))
    ijk = ct.lps_to_index(seeds)
    lo = np.floor(ijk.min(axis=0) - DOSE_REACH_MM / spacing)
    hi = np.ceil(ijk.max(axis=0) + DOSE_REACH_MM / spacing)
    i, j, k = (
        slice(max(int(a), 0), min(int(b) + 1, n))
        for a, b, n in zip(np.minimum(lo, hi), np.maximum(lo, hi), ct.shape, strict=True)
    )
    crop = ct.crop_index((i, j, k))
    rate = dose_on_grid(crop, seeds, found.axes_lps, sk_u, data)
    dose = np.zeros(ct.shape, dtype=np.float32)
    dose[i, j, k] = total_dose_gy(np.asarray(rate.array, dtype=np.float64), data)
    return DeliveredDose(found, ct.with_array(dose))
