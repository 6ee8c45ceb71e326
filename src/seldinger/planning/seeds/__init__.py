"""Seed implant planning (I-125, TG-43 dosimetry): DVH, indices, inverse planning, seed detection."""

from seldinger.planning.seeds.delivered import DOSE_REACH_MM, DeliveredDose, delivered_dose
from seldinger.planning.seeds.detect import METAL_HU, DetectedSeeds, detect_seeds
from seldinger.planning.seeds.dvh import (
    DVH,
    cumulative_dvh,
    dose_at_volume_gy,
    implant_indices,
    volume_at_dose_percent,
)
from seldinger.planning.seeds.plan import (
    SEED_STEP_MM,
    STRENGTHS_MCI,
    TEMPLATE_PITCH_MM,
    SeedGoals,
    SeedNeedle,
    SeedPlan,
    SeedPlanError,
    plan_seeds,
)

__all__ = [
    "DOSE_REACH_MM",
    "DVH",
    "METAL_HU",
    "SEED_STEP_MM",
    "STRENGTHS_MCI",
    "TEMPLATE_PITCH_MM",
    "DeliveredDose",
    "DetectedSeeds",
    "SeedGoals",
    "SeedNeedle",
    "SeedPlan",
    "SeedPlanError",
    "cumulative_dvh",
    "delivered_dose",
    "detect_seeds",
    "dose_at_volume_gy",
    "implant_indices",
    "plan_seeds",
    "volume_at_dose_percent",
]
