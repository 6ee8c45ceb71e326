"""One call from anatomy + lesion to an ablation plan: placement, zone, margin, heat sinks."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume, require_same_geometry
from seldinger.physics.ablation import Catalogue, load_catalogue
from seldinger.plan import AblationSection, TrajectoryRules
from seldinger.planning.ablation.heatsink import HeatSink, heat_sinks
from seldinger.planning.ablation.placement import (
    DEFAULT_CRITICAL,
    Applicator,
    PlacementResult,
    place_applicators,
)
from seldinger.planning.margin import MarginReport, assess_margin
from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

__all__ = ["AblationPlan", "plan_ablation"]


@dataclass(frozen=True)
class AblationPlan:
    """Placement, the predicted zone on the CT grid, its margin and heat-sink flags."""

    device: str
    modality: str
    settings: tuple[str, ...]
    placement: PlacementResult
    zone: Volume
    margin: MarginReport
    heat_sinks: tuple[HeatSink, ...]
    provenance: str
    source: str
    seconds: dict[str, float] = field(default_factory=dict)

    def to_section(
        self,
        target: str,
        zone_mask_path: str | None = None,
        rules: TrajectoryRules | None = None,
    ) -> AblationSection:
        """The plan's ablation section.

        Parameters
        ----------
        target : str
            Name of the plan target ablated.
        zone_mask_path : str, optional
            The zone mask beside the plan (relative path).
        rules : TrajectoryRules, optional
            Path rules the probes obeyed.
        """
        placement = self.placement
        return AblationSection(
            target=target,
            device=self.device,
            modality=self.modality,
            settings=list(self.settings),
            device_provenance=self.provenance,
            device_source=self.source,
            margin_mm=placement.margin_mm,
            rules=rules,
            applicators=[a.to_record() for a in placement.applicators],
            target_coverage_percent=round(placement.target_coverage_percent, 2),
            lesion_coverage_percent=round(placement.lesion_coverage_percent, 2),
            healthy_ablated_ml=round(placement.healthy_ablated_ml, 2),
            zone_volume_ml=round(placement.zone_volume_ml, 2),
            margin=self.margin.to_record(),
            heat_sinks=[h.to_record() for h in self.heat_sinks],
            zone_mask_path=zone_mask_path,
            n_candidates=placement.n_candidates,
            notes=list(placement.notes),
            seconds={k: round(v, 3) for k, v in {**placement.seconds, **self.seconds}.items()},
        )


def plan_ablation(
    anatomy: Anatomy,
    lesion: Volume,
    device: str,
    settings: Sequence[str] | None = None,
    margin_mm: float = 5.0,
    max_probes: int = 3,
    constraints: TrajectoryConstraints | None = None,
    critical: Sequence[str] = DEFAULT_CRITICAL,
    vessels: Mapping[str, Volume] | None = None,
    catalogue: Catalogue | None = None,
    maps: RiskMaps | None = None,
    fixed: Sequence[Applicator] = (),
) -> AblationPlan:
    """Plan an ablation of ``lesion`` with ``device`` and check it.

    Parameters
    ----------
    anatomy : Anatomy
        Segmented structures of the CT (:func:`seldinger.anatomy.segment`).
    lesion : Volume
        Tumour mask on the CT grid.
    device : str
        Catalogue name (:func:`seldinger.physics.ablation.load_catalogue`).
    settings : sequence of str, optional
        Allowed settings (default: all of the device's).
    margin_mm, max_probes : float, int
        See :func:`~seldinger.planning.ablation.place_applicators`.
    constraints : TrajectoryConstraints, optional
        Path rules; the needle length defaults to the device's usable length.
    critical : sequence of str
        Structures no zone may include.
    vessels : mapping of str to Volume, optional
        Extra vessel masks (e.g. a portal vein) checked for heat sink, beside the anatomy's
        ``vessels`` (with its radius map) for thermal devices.
    catalogue : Catalogue, optional
        Default: the shipped catalogue plus ``SELDINGER_DEVICE_CATALOGUE``.
    maps : RiskMaps, optional
        Prebuilt maps (with this lesion and constraints).
    fixed : sequence of Applicator
        Applicators already in place (re-planning from where a probe really is,
        :func:`~seldinger.planning.ablation.applicator_at`); the rest is placed around them.
    """
    seconds: dict[str, float] = {}
    dev = (catalogue or load_catalogue()).device(device)
    require_same_geometry(anatomy["body"], lesion)
    if maps is None:
        if constraints is None:
            constraints = TrajectoryConstraints(
                needle_length_mm=dev.usable_length_mm or TrajectoryConstraints.needle_length_mm
            )
        clock = time.perf_counter()
        maps = RiskMaps.build(anatomy, constraints, lesion)
        seconds["maps"] = time.perf_counter() - clock
    clock = time.perf_counter()
    placement = place_applicators(
        maps,
        lesion,
        dev,
        settings,
        margin_mm=margin_mm,
        max_probes=max_probes,
        critical=critical,
        fixed=fixed,
    )
    seconds["placement"] = time.perf_counter() - clock
    clock = time.perf_counter()
    zone = placement.zone(lesion)
    margin = assess_margin(lesion, zone)
    seconds["margin"] = time.perf_counter() - clock
    sinks: list[HeatSink] = []
    if dev.thermal:
        clock = time.perf_counter()
        pool: dict[str, Volume] = dict(vessels or {})
        radius: dict[str, Volume] = {}
        if "vessels" in anatomy and "vessels" not in pool:
            pool["vessels"] = anatomy["vessels"]
            if anatomy.vessel_radius_mm is not None:
                radius["vessels"] = anatomy.vessel_radius_mm
        sinks = heat_sinks(zone, pool, radius)
        seconds["heat_sink"] = time.perf_counter() - clock
    used = tuple(dict.fromkeys(a.setting for a in placement.applicators))
    return AblationPlan(
        device=dev.name,
        modality=str(dev.modality),
        settings=used,
        placement=placement,
        zone=zone,
        margin=margin,
        heat_sinks=tuple(sinks),
        provenance=dev.provenance,
        source=dev.source,
        seconds=seconds,
    )
