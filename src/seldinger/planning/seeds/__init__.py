"""Seed implant planning (I-125, TG-43 dosimetry): DVH, implant indices, seed detection so far."""

from seldinger.planning.seeds.detect import METAL_HU, DetectedSeeds, detect_seeds
from seldinger.planning.seeds.dvh import (
    DVH,
    cumulative_dvh,
    dose_at_volume_gy,
    implant_indices,
    volume_at_dose_percent,
)

__all__ = [
    "DVH",
    "METAL_HU",
    "DetectedSeeds",
    "cumulative_dvh",
    "detect_seeds",
    "dose_at_volume_gy",
    "implant_indices",
    "volume_at_dose_percent",
]
