"""Ablation planning: applicator placement covering tumour + margin, heat-sink flags."""

from seldinger.planning.ablation.heatsink import (
    HEAT_SINK_CALIBRE_MM,
    HEAT_SINK_DISTANCE_MM,
    HeatSink,
    heat_sinks,
)
from seldinger.planning.ablation.placement import (
    DEFAULT_CRITICAL,
    SPACING_RULES,
    Applicator,
    PlacementError,
    PlacementResult,
    applicator_at,
    place_applicators,
)
from seldinger.planning.ablation.reach import zone_reach_notes
from seldinger.planning.ablation.run import AblationPlan, plan_ablation

__all__ = [
    "DEFAULT_CRITICAL",
    "HEAT_SINK_CALIBRE_MM",
    "HEAT_SINK_DISTANCE_MM",
    "SPACING_RULES",
    "AblationPlan",
    "Applicator",
    "HeatSink",
    "PlacementError",
    "PlacementResult",
    "applicator_at",
    "heat_sinks",
    "place_applicators",
    "plan_ablation",
    "zone_reach_notes",
]
