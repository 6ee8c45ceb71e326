"""The ablation section: applicators, their predicted zones, coverage, margin, heat sinks."""

from __future__ import annotations

from pydantic import Field

from seldinger.plan.fields import Direction, NonNegativeFloat, Percent, PlanModel, Point3
from seldinger.plan.targets import relative_mask_path
from seldinger.plan.trajectories import TrajectoryRecord, TrajectoryRules

__all__ = [
    "AblationSection",
    "ApplicatorRecord",
    "HeatSinkRecord",
    "HeatSinkShrinkageRecord",
    "MarginMetrics",
    "PhysicsZoneRecord",
]


class ApplicatorRecord(PlanModel):
    """One applicator (or one cryo/IRE cluster) and its predicted zone.

    ``tip_lps_mm``/``entry_lps_mm`` are the (central) probe's; ``probes_*`` every probe of a
    cluster. The zone is an ellipsoid centred at ``zone_centre_lps_mm`` with semi-axes
    ``zone_radii_mm`` (along the probe, across it, across both) along the unit vectors
    ``zone_axes_lps`` (rows, LPS). ``coverage_percent_alone``:
    share of lesion + margin this applicator covers by itself.
    """

    device: str = Field(min_length=1)
    setting: str = Field(min_length=1)
    tip_lps_mm: Point3
    direction_lps: Direction
    entry_lps_mm: Point3
    insertion_depth_mm: NonNegativeFloat
    zone_centre_lps_mm: Point3
    zone_radii_mm: tuple[NonNegativeFloat, NonNegativeFloat, NonNegativeFloat]
    zone_axes_lps: tuple[Direction, Direction, Direction] | None = None
    zone_volume_ml: NonNegativeFloat
    probes_tip_lps_mm: list[Point3] = Field(default_factory=list)
    probes_entry_lps_mm: list[Point3] = Field(default_factory=list)
    coverage_percent_alone: Percent
    path: TrajectoryRecord


class MarginMetrics(PlanModel):
    """Minimal ablative margin and the tumour surface by margin (QAM), mm and %."""

    min_margin_mm: float
    coverage_percent: Percent
    surface_below_0_percent: Percent
    surface_0_to_5_percent: Percent
    surface_at_least_5_percent: Percent
    mean_margin_mm: float
    median_margin_mm: float
    thresholds_mm: tuple[float, float] = (0.0, 5.0)
    surface_excluded_percent: Percent = 0.0
    tumour_volume_ml: NonNegativeFloat
    n_surface_points: int = Field(ge=0)


class HeatSinkRecord(PlanModel):
    """A vessel wide enough to cool the zone, and how close it runs (<= 0: through it)."""

    vessel: str
    distance_mm: float
    diameter_mm: NonNegativeFloat
    closest_lps_mm: Point3


class HeatSinkShrinkageRecord(PlanModel):
    """A vessel's pull on the simulated zone: its reach towards the vessel without and with
    the vessel held at blood temperature (``plan ablation --physics``)."""

    vessel: str
    reach_without_sink_mm: float
    reach_with_sink_mm: float
    shrinkage_mm: NonNegativeFloat
    flagged: bool


class PhysicsZoneRecord(PlanModel):
    """The zone simulated by ``plan ablation --physics`` (coverage and margin use it), with
    the chart zone's figures it replaced and the heat-sink shrinkage per vessel."""

    engine: str = "seldinger.physics"
    spacing_mm: NonNegativeFloat
    chart_target_coverage_percent: Percent
    chart_zone_volume_ml: NonNegativeFloat
    chart_min_margin_mm: float
    heat_sink_shrinkage: list[HeatSinkShrinkageRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class AblationSection(PlanModel):
    """The ablation step's result.

    Parameters
    ----------
    target : str
        Name of the plan target ablated.
    device, modality : str
        Catalogue device and its modality (``microwave``, ``radiofrequency``, ``cryo``, ``ire``).
    settings : list of str
        Settings used by the applicators.
    device_provenance, device_source : str
        Where the zone sizes come from (e.g. ``manufacturer chart``) and the citation.
    margin_mm : float
        Margin around the lesion the zones had to cover.
    rules : TrajectoryRules
        Path rules every probe obeyed (needle length = the applicator's usable length).
    applicators : list of ApplicatorRecord
    target_coverage_percent, lesion_coverage_percent : float
        Share of lesion + margin, and of the lesion, inside the union of the zones.
    healthy_ablated_ml, zone_volume_ml : float
        Zone volume outside the lesion, and in all.
    margin : MarginMetrics
    heat_sinks : list of HeatSinkRecord
    zone_mask_path : str or None
        The zone mask beside the plan (relative path).
    n_candidates : int
        Candidate applicators the placement weighed.
    notes : list of str
    seconds : dict of str to float
        Time per stage.
    physics : PhysicsZoneRecord or None
        Set by ``plan ablation --physics``: coverage, margin and zone volume above come from
        the simulated zone; this record keeps the chart zone's figures and the heat-sink
        shrinkage. ``None`` (and absent from older plans): the chart zone.
    """

    target: str = Field(min_length=1)
    device: str = Field(min_length=1)
    modality: str
    settings: list[str] = Field(default_factory=list)
    device_provenance: str = ""
    device_source: str = ""
    margin_mm: NonNegativeFloat
    rules: TrajectoryRules | None = None
    applicators: list[ApplicatorRecord] = Field(min_length=1)
    target_coverage_percent: Percent
    lesion_coverage_percent: Percent
    healthy_ablated_ml: NonNegativeFloat
    zone_volume_ml: NonNegativeFloat
    margin: MarginMetrics
    heat_sinks: list[HeatSinkRecord] = Field(default_factory=list)
    zone_mask_path: str | None = None
    n_candidates: int = Field(default=0, ge=0)
    notes: list[str] = Field(default_factory=list)
    seconds: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    physics: PhysicsZoneRecord | None = None

    def model_post_init(self, context: object, /) -> None:
        if self.zone_mask_path is not None:
            relative_mask_path(self.zone_mask_path)

    @property
    def n_applicators(self) -> int:
        """Number of applicators (a cluster counts as one)."""
        return len(self.applicators)
