"""The ablation zone from the physics (``plan ablation --physics``) instead of the charts.

For the applicators the placement chose, the zone is simulated on the patient's CT
(:mod:`seldinger.physics`): a grid of ``spacing_mm`` around the applicators, each voxel's
tissue from the anatomy (liver, blood in the vessels, the tumour) and the HU (lung, fat,
soft tissue, bone); RF / MW / cryo devices by bioheat with their calibrated sources (vessels
held at 37 °C), IRE probes by the field of every neighbouring pair at 1500 V/cm. For thermal
devices the run is repeated without the heat sink, and for each vessel the placement flagged,
the distance from the zones' centre towards it at which the zone first ends, without and with
the sink, gives the shrinkage in mm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume, VolumeGeometry
from seldinger.physics.ablation import load_catalogue
from seldinger.physics.ablation.catalogue import Modality
from seldinger.physics.electrodes import Electrode
from seldinger.physics.ire import (
    MAX_VOLTAGE_V,
    VOLTAGE_TO_DISTANCE_V_PER_CM,
    ElectrodePair,
    solve_ire,
)
from seldinger.physics.thermal_devices import catalogue_setting, run_device
from seldinger.physics.tissue import TissueProperties, load_tissues, property_maps
from seldinger.plan import ApplicatorRecord, HeatSinkRecord

__all__ = [
    "BLOOD_STRUCTURES",
    "HeatSinkShrinkage",
    "PhysicsZone",
    "TissueGrid",
    "coverage_percent",
    "label_tissues",
    "simulate_physics_zone",
]

#: Blood-filled structures of the anatomy (held at 37 °C in thermal runs: heat sinks).
BLOOD_STRUCTURES = ("vessels", "aorta", "pulmonary_artery", "superior_vena_cava", "heart")
#: HU bounds of the default tissue classes (inside the body, outside labelled organs).
LUNG_MAX_HU, FAT_MAX_HU, BONE_MIN_HU = -300.0, -30.0, 250.0
TISSUE_ORDER = ("muscle", "lung", "fat", "bone", "liver", "blood", "tumour")
#: A shrinkage at least this large is flagged in the margin analysis.
SHRINKAGE_FLAG_MM = 2.0

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class TissueGrid:
    """A simulation grid on a CT: tissue labels, the tissues, the body, the blood."""

    geometry: VolumeGeometry
    labels: npt.NDArray[np.uint8]
    tissues: list[TissueProperties]
    body: BoolArray
    vessels: BoolArray


def label_tissues(
    ct: Volume,
    anatomy: Anatomy,
    lesions: Sequence[Volume],
    geometry: VolumeGeometry,
    extra_vessels: Mapping[str, Volume] | None = None,
    tissue_file: str | None = None,
) -> TissueGrid:
    """Tissue of every cell of ``geometry`` from the CT's HU and its anatomy masks."""
    hu = np.asarray(ct.resample_to(geometry, "linear", fill_value=-1024.0).array)

    def on_grid(volume: Volume) -> BoolArray:
        return np.asarray(volume.resample_to(geometry, "nearest", 0.0).array) > 0

    def mask(name: str) -> BoolArray:
        return on_grid(anatomy[name]) if name in anatomy else np.zeros(geometry.shape, bool)

    body = mask("body") if "body" in anatomy else hu > -500
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    labels[hu <= LUNG_MAX_HU] = 1
    labels[(hu > LUNG_MAX_HU) & (hu <= FAT_MAX_HU)] = 2
    labels[hu >= BONE_MIN_HU] = 3
    labels[mask("liver")] = 4
    vessels = np.zeros(geometry.shape, dtype=bool)
    for name in BLOOD_STRUCTURES:
        vessels |= mask(name)
    for volume in (extra_vessels or {}).values():
        vessels |= on_grid(volume)
    labels[vessels] = 5
    for lesion in lesions:
        labels[on_grid(lesion)] = 6
    tissues = load_tissues(tissue_file)
    return TissueGrid(geometry, labels, [tissues[n] for n in TISSUE_ORDER], body, vessels & body)


@dataclass(frozen=True)
class HeatSinkShrinkage:
    """How much a vessel pulls the simulated zone back on its side."""

    vessel: str
    reach_without_sink_mm: float
    reach_with_sink_mm: float
    flagged: bool

    @property
    def shrinkage_mm(self) -> float:
        return max(0.0, self.reach_without_sink_mm - self.reach_with_sink_mm)


@dataclass(frozen=True, eq=False)
class PhysicsZone:
    """The simulated zone on the CT grid, its heat-sink shrinkage, and notes."""

    zone: Volume
    shrinkage: list[HeatSinkShrinkage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _grid_around(
    points: npt.NDArray[np.float64], margin_mm: float, spacing_mm: float
) -> VolumeGeometry:
    lo = np.floor((points.min(axis=0) - margin_mm) / spacing_mm) * spacing_mm
    hi = points.max(axis=0) + margin_mm
    shape = tuple(int(n) for n in np.floor((hi - lo) / spacing_mm).astype(int) + 1)
    return VolumeGeometry.from_spacing(shape, (spacing_mm,) * 3, tuple(lo))  # type: ignore[arg-type]


def _reach_mm(
    zone: BoolArray,
    geometry: VolumeGeometry,
    origin: npt.NDArray[np.float64],
    towards: npt.NDArray[np.float64],
) -> float:
    """Distance from ``origin`` along the ray to ``towards`` at which the zone first ends
    (the zone may start up to 5 mm out: cooled cells of an applicator are not ablated)."""
    u = towards - origin
    u /= np.linalg.norm(u)
    steps = np.arange(0.0, 150.0, 0.25)
    index = np.rint(geometry.lps_to_index(origin[None, :] + steps[:, None] * u)).astype(int)
    inside = np.all((index >= 0) & (index < np.asarray(geometry.shape)), axis=1)
    hit = np.zeros(steps.size, dtype=bool)
    hit[inside] = zone[tuple(index[inside].T)]
    first = np.flatnonzero(hit[: int(5.0 / 0.25)])  # a cooled applicator: the zone starts off it
    if first.size == 0:
        return 0.0
    gaps = np.flatnonzero(~hit[first[0] :])
    return float(steps[first[0] + gaps[0]]) if gaps.size else float(steps[-1])


def _ire_probes(applicator: ApplicatorRecord) -> tuple[list[Electrode], list[ElectrodePair]]:
    tips = [np.asarray(t) for t in applicator.probes_tip_lps_mm] or [
        np.asarray(applicator.tip_lps_mm)
    ]
    direction = tuple(applicator.direction_lps)
    probes = [Electrode(tuple(t), direction, 20.0, 0.5) for t in tips]  # type: ignore[arg-type]
    gaps = [[math.dist(a, b) for b in tips] for a in tips]
    nearest = min(g for row in gaps for g in row if g > 0) if len(tips) > 1 else 0.0
    pairs = [
        ElectrodePair(n, m, min(MAX_VOLTAGE_V, VOLTAGE_TO_DISTANCE_V_PER_CM * gaps[n][m] / 10))
        for n in range(len(tips))
        for m in range(n + 1, len(tips))
        if gaps[n][m] <= 1.5 * nearest + 1e-6
    ]
    return probes, pairs


def simulate_physics_zone(
    ct: Volume,
    anatomy: Anatomy,
    lesion: Volume,
    device: str,
    applicators: Sequence[ApplicatorRecord],
    heat_sinks: Sequence[HeatSinkRecord] = (),
    extra_vessels: Mapping[str, Volume] | None = None,
    spacing_mm: float = 1.0,
) -> PhysicsZone:
    """The zone of ``applicators`` simulated on the CT (module docstring)."""
    entry = load_catalogue().device(device)
    points = np.array(
        [p for a in applicators for p in (a.tip_lps_mm, a.zone_centre_lps_mm, *a.probes_tip_lps_mm)]
    )
    reach = max(max(a.zone_radii_mm) for a in applicators)
    geometry = _grid_around(points, reach + 15.0, spacing_mm)
    grid = label_tissues(ct, anatomy, [lesion], geometry, extra_vessels)
    maps = property_maps(grid.labels, grid.tissues)
    zone = np.zeros(geometry.shape, dtype=bool)
    unsunk = np.zeros(geometry.shape, dtype=bool)
    notes: list[str] = []
    if entry.modality is Modality.IRE:
        for applicator in applicators:
            probes, pairs = _ire_probes(applicator)
            if len(probes) < 2:
                notes.append("an IRE applicator with one probe has no pair: skipped")
                continue
            result = solve_ire(
                geometry, maps.electrical_conductivity_s_per_m, probes, pairs, active=grid.body
            )
            zone |= result.zone
            notes += result.notes
        unsunk = zone
    else:
        density = np.asarray([t.density_kg_per_m3 for t in grid.tissues])[grid.labels]
        specific = np.asarray([t.specific_heat_j_per_kg_k for t in grid.tissues])[grid.labels]
        for applicator in applicators:
            model, setting = catalogue_setting(device, applicator.setting)
            for vessels, out in ((grid.vessels, zone), (None, unsunk)):
                run = run_device(
                    geometry,
                    maps,
                    density,
                    specific,
                    model,
                    setting,
                    applicator.setting,
                    applicator.tip_lps_mm,
                    applicator.direction_lps,
                    vessels=vessels,
                    active=grid.body,
                )
                out |= run.zone
    shrinkage = []
    for sink in heat_sinks:
        centre = np.mean([a.zone_centre_lps_mm for a in applicators], axis=0)
        towards = np.asarray(sink.closest_lps_mm)
        without = _reach_mm(unsunk, geometry, centre, towards)
        with_sink = _reach_mm(zone, geometry, centre, towards)
        flagged = without - with_sink >= SHRINKAGE_FLAG_MM
        shrinkage.append(
            HeatSinkShrinkage(sink.vessel, round(without, 2), round(with_sink, 2), flagged)
        )
        if flagged:
            notes.append(
                f"heat sink: {sink.vessel} ({sink.diameter_mm:.1f} mm) pulls the simulated zone "
                f"back {without - with_sink:.1f} mm on its side"
            )
    on_ct = Volume(zone.astype(np.uint8), geometry.affine).resample_to(ct, "nearest", 0.0)
    return PhysicsZone(ct.with_array(np.asarray(on_ct.array) > 0), shrinkage, notes)


def coverage_percent(
    zone: Volume, lesion: Volume, margin_mm: float
) -> tuple[float, float, float, float]:
    """(lesion + margin covered %, lesion covered %, zone mL, healthy tissue ablated mL)."""
    from scipy import ndimage

    inside = np.asarray(lesion.array) > 0
    ablated = np.asarray(zone.array) > 0
    distance = ndimage.distance_transform_edt(~inside, sampling=lesion.spacing_mm)
    target = distance <= margin_mm
    voxel_ml = float(np.prod(lesion.spacing_mm)) / 1000.0
    return (
        100.0 * float((target & ablated).sum()) / max(1, int(target.sum())),
        100.0 * float((inside & ablated).sum()) / max(1, int(inside.sum())),
        float(ablated.sum()) * voxel_ml,
        float((ablated & ~inside).sum()) * voxel_ml,
    )
