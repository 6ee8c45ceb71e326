"""Seed implant planning (I-125, TG-43 dosimetry): DVH and implant quality indices so far."""

from seldinger.planning.seeds.dvh import (
    DVH,
    cumulative_dvh,
    dose_at_volume_gy,
    implant_indices,
    volume_at_dose_percent,
)

__all__ = [
    "DVH",
    "cumulative_dvh",
    "dose_at_volume_gy",
    "implant_indices",
    "volume_at_dose_percent",
]
