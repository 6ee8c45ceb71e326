"""``seldinger simulate …``: ablation physics on a plan's CT or on a phantom, written to a folder.

Each simulation runs on a grid of ``spacing_mm`` (isotropic, along L, P, S): in phantom mode
a cube of one tissue centred at LPS (0, 0, 0); in plan mode the plan's CT cropped around
the applicators, resampled, and labelled by tissue from its anatomy masks (liver, vessels →
blood, targets → tumour) and its HU (lung, fat, soft tissue, bone), with no flow of current
or heat out of the body. The folder receives NIfTI volumes on that grid and
``summary.json`` (zone volume and extents, currents, properties used), all or nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.files import atomic_dir
from seldinger.imaging import Volume, VolumeGeometry
from seldinger.io import write_volume
from seldinger.physics.electrodes import Electrode
from seldinger.physics.tissue import TissueProperties, load_tissues, property_maps
from seldinger.planning.ablation.physics_zone import label_tissues
from seldinger.workflow.case import Stages, load_plan_case, quiet_stages

__all__ = [
    "CryoRequest",
    "IreRequest",
    "SimulationDomain",
    "ThermalRequest",
    "phantom_domain",
    "plan_domain",
    "read_probes",
    "simulate_cryo_files",
    "simulate_ire_files",
    "simulate_thermal_files",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
MAX_GRID_CELLS = 8_000_000


@dataclass(frozen=True, eq=False)
class SimulationDomain:
    """The grid, its tissue labels and the tissues they index, the body, the vessels."""

    geometry: VolumeGeometry
    labels: npt.NDArray[np.uint8]
    tissues: list[TissueProperties]
    active: BoolArray
    vessels: BoolArray
    description: str

    def tissue_summary(self) -> list[dict[str, Any]]:
        counts = np.bincount(self.labels[self.active].ravel(), minlength=len(self.tissues))
        voxel_ml = float(np.prod(self.geometry.spacing_mm)) / 1000.0
        return [
            {**t.summary(), "volume_ml": round(float(c) * voxel_ml, 3)}
            for t, c in zip(self.tissues, counts, strict=True)
            if c > 0
        ]


def _check_spacing(spacing_mm: float) -> None:
    if not (math.isfinite(spacing_mm) and spacing_mm > 0):
        raise BadInputError(
            f"--spacing-mm must be a positive length (e.g. 1.0); got {spacing_mm!r}."
        )


def _grid(lo_lps_mm: FloatArray, hi_lps_mm: FloatArray, spacing_mm: float) -> VolumeGeometry:
    _check_spacing(spacing_mm)
    shape = tuple(int(n) for n in np.floor((hi_lps_mm - lo_lps_mm) / spacing_mm).astype(int) + 1)
    if int(np.prod(shape)) > MAX_GRID_CELLS:
        raise BadInputError(
            f"The simulation grid would have {int(np.prod(shape)):,} cells (more than "
            f"{MAX_GRID_CELLS:,}); use a larger --spacing-mm or a smaller region."
        )
    return VolumeGeometry.from_spacing(shape, (spacing_mm,) * 3, tuple(lo_lps_mm))  # type: ignore[arg-type]


def phantom_domain(
    side_mm: float, tissue: str, spacing_mm: float, tissue_file: Path | None = None
) -> SimulationDomain:
    """A cube of one tissue, ``side_mm`` wide, centred at LPS (0, 0, 0)."""
    _check_spacing(spacing_mm)
    if not (math.isfinite(side_mm) and side_mm >= 4 * spacing_mm):
        raise BadInputError(
            f"--phantom-mm must be at least 4 cells wide ({4 * spacing_mm} mm); got {side_mm!r}."
        )
    tissues = load_tissues(tissue_file)
    if tissue.lower() not in tissues:
        raise BadInputError(f"--tissue {tissue!r} is not known; tissues are {sorted(tissues)}.")
    n = round(side_mm / spacing_mm) // 2 * 2 + 1
    half = (n // 2) * spacing_mm
    geometry = _grid(np.full(3, -half), np.full(3, half), spacing_mm)
    shape = geometry.shape
    return SimulationDomain(
        geometry,
        np.zeros(shape, dtype=np.uint8),
        [tissues[tissue.lower()]],
        np.ones(shape, dtype=bool),
        np.zeros(shape, dtype=bool),
        f"phantom: {n * spacing_mm:g} mm cube of {tissue.lower()}",
    )


def plan_domain(
    plan_path: Path,
    points_lps_mm: FloatArray,
    spacing_mm: float,
    *,
    margin_mm: float = 35.0,
    tissue_file: Path | None = None,
    ct_path: Path | None = None,
    stages: Stages = quiet_stages,
) -> SimulationDomain:
    """The plan's CT around ``points_lps_mm`` (± ``margin_mm``), labelled by tissue."""
    _check_spacing(spacing_mm)
    case = load_plan_case(plan_path, ct_path, stages=stages)
    lo = np.floor((points_lps_mm.min(axis=0) - margin_mm) / spacing_mm) * spacing_mm
    hi = lo + np.ceil((points_lps_mm.max(axis=0) + margin_mm - lo) / spacing_mm) * spacing_mm
    geometry = _grid(lo, hi, spacing_mm)
    with stages("labelling tissues"):
        lesions = [case.target_mask(t) for t in case.plan.targets if t.mask_path is not None]
        grid = label_tissues(
            case.volume,
            case.anatomy(),
            lesions,
            geometry,
            tissue_file=None if tissue_file is None else str(tissue_file),
        )
    return SimulationDomain(
        geometry,
        grid.labels,
        grid.tissues,
        grid.body,
        grid.vessels,
        f"plan {plan_path} (CT {case.ct_path.name}), {spacing_mm:g} mm grid",
    )


def read_probes(path: Path) -> tuple[list[Electrode], list[Any]]:
    """PROBES.json: ``probes`` (tip_lps_mm, direction, exposure_mm, radius_mm), ``pairs``."""
    from seldinger.physics.ire import ElectrodePair

    if not path.is_file():
        raise BadInputError(f"--probes {path} does not exist; give a PROBES.json file.")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        probes = [
            Electrode(
                tuple(float(v) for v in p["tip_lps_mm"]),  # type: ignore[arg-type]
                tuple(float(v) for v in p["direction"]),  # type: ignore[arg-type]
                float(p["exposure_mm"]),
                float(p.get("radius_mm", 0.5)),
            )
            for p in document["probes"]
        ]
        pairs = [
            ElectrodePair(int(p["anode"]), int(p["cathode"]), float(p["voltage_v"]))
            for p in document.get("pairs", [])
        ]
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, BadInputError):
            raise BadInputError(f"{path}: {err}") from None
        raise BadInputError(
            f"{path}: expected {{'probes': [{{'tip_lps_mm', 'direction', 'exposure_mm', "
            f"'radius_mm'}}], 'pairs': [{{'anode', 'cathode', 'voltage_v'}}]}}; {err!r}."
        ) from None
    return probes, pairs


def _probe_points(probes: list[Electrode]) -> FloatArray:
    return np.array([p for e in probes for p in (e.tip_lps_mm, tuple(e.back_lps_mm))])


def _domain(
    plan_path: Path | None,
    phantom_mm: float | None,
    tissue: str | None,
    spacing_mm: float,
    tissue_file: Path | None,
    points: FloatArray,
    stages: Stages,
    margin_mm: float = 35.0,
) -> SimulationDomain:
    if (plan_path is None) == (phantom_mm is None):
        raise BadInputError("Give either a PLAN or --phantom-mm L with --tissue NAME, not both.")
    if phantom_mm is not None:
        return phantom_domain(phantom_mm, tissue or "liver", spacing_mm, tissue_file)
    assert plan_path is not None
    return plan_domain(
        plan_path, points, spacing_mm, margin_mm=margin_mm, tissue_file=tissue_file, stages=stages
    )


def _extents_mm(zone: BoolArray, geometry: VolumeGeometry) -> dict[str, float]:
    if not zone.any():
        return {"x": 0.0, "y": 0.0, "z": 0.0}
    points = geometry.index_to_lps(np.argwhere(zone))
    size = points.max(axis=0) - points.min(axis=0) + np.asarray(geometry.spacing_mm)
    return {axis: round(float(v), 2) for axis, v in zip("xyz", size, strict=True)}


def _zone_summary(zone: BoolArray, geometry: VolumeGeometry) -> dict[str, Any]:
    voxel_ml = float(np.prod(geometry.spacing_mm)) / 1000.0
    return {
        "zone_volume_ml": round(float(zone.sum()) * voxel_ml, 3),
        "zone_extents_mm": _extents_mm(zone, geometry),
    }


def _write(
    out: Path,
    force: bool,
    geometry: VolumeGeometry,
    volumes: dict[str, Any],
    summary: dict[str, Any],
) -> list[Path]:
    written = []
    with atomic_dir(out, force=force) as folder:
        for name, array in volumes.items():
            write_volume(Volume(np.asarray(array), geometry.affine), folder / name)
            written.append(out / name)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        written.append(out / "summary.json")
    return written


@dataclass(frozen=True)
class IreRequest:
    """Options of ``simulate ire``."""

    probes_path: Path
    out: Path
    plan_path: Path | None = None
    phantom_mm: float | None = None
    tissue: str | None = None
    threshold_v_per_cm: float | None = None
    sigma_model: str = "constant"
    spacing_mm: float = 1.0
    n_pulses: int = 90
    pulse_width_us: float = 100.0
    tissue_file: Path | None = None
    force: bool = False


def simulate_ire_files(
    request: IreRequest, stages: Stages = quiet_stages
) -> tuple[dict[str, Any], list[Path]]:
    """Run ``simulate ire``; return the summary and the files written."""
    from seldinger.physics.ire import (
        ElectroporationModel,
        garcia_threshold_v_per_cm,
        joule_heating_c,
        solve_ire,
        summary_of,
    )

    if request.sigma_model not in ("constant", "electroporation"):
        raise BadInputError(
            f"--sigma-model must be constant or electroporation; got {request.sigma_model!r}."
        )
    probes, pairs = read_probes(request.probes_path)
    domain = _domain(
        request.plan_path,
        request.phantom_mm,
        request.tissue,
        request.spacing_mm,
        request.tissue_file,
        _probe_points(probes),
        stages,
    )
    maps = property_maps(domain.labels, domain.tissues)
    threshold = request.threshold_v_per_cm or garcia_threshold_v_per_cm(request.n_pulses)
    model = ElectroporationModel() if request.sigma_model == "electroporation" else None
    with stages(f"IRE field, {len(pairs)} pair(s) on {domain.geometry.shape} cells"):
        result = solve_ire(
            domain.geometry,
            maps.electrical_conductivity_s_per_m,
            probes,
            pairs,
            threshold_v_per_cm=threshold,
            model=model,
            active=domain.active,
        )
    rise = joule_heating_c(
        result.max_field_v_per_cm,
        result.conductivity_s_per_m,
        maps.heat_capacity_j_per_m3_k,
        request.n_pulses,
        request.pulse_width_us * 1e-6,
    )
    summary = {
        "domain": domain.description,
        "sigma_model": request.sigma_model,
        **summary_of(result),
        **_zone_summary(result.zone, domain.geometry),
        "n_pulses": request.n_pulses,
        "joule_heating_max_k": round(float(rise[domain.active].max()), 2),
        "joule_heating_p99_k": round(float(np.percentile(rise[result.zone], 99)), 2)
        if result.zone.any()
        else 0.0,
        "probes": [p.summary() for p in probes],
        "tissues": domain.tissue_summary(),
    }
    volumes = {
        "field_v_per_cm.nii.gz": result.max_field_v_per_cm.astype(np.float32),
        "zone.nii.gz": result.zone.astype(np.uint8),
    }
    return summary, _write(request.out, request.force, domain.geometry, volumes, summary)


@dataclass(frozen=True)
class ThermalRequest:
    """Options of ``simulate thermal``."""

    out: Path
    duration_s: float | None = None
    plan_path: Path | None = None
    phantom_mm: float | None = None
    tissue: str | None = None
    device: str | None = None
    setting: str | None = None
    point_source_w: float | None = None
    tip_lps_mm: tuple[float, float, float] | None = None
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    linear: bool = False
    spacing_mm: float = 1.0
    tissue_file: Path | None = None
    force: bool = False


def simulate_thermal_files(
    request: ThermalRequest, stages: Stages = quiet_stages
) -> tuple[dict[str, Any], list[Path]]:
    """Run ``simulate thermal``; return the summary and the files written."""
    from seldinger.physics.bioheat import ThermalGrid, simulate_pennes
    from seldinger.physics.heat_sources import point_source_heat_w
    from seldinger.physics.thermal_devices import catalogue_setting, run_device

    if (request.device is None) == (request.point_source_w is None):
        raise BadInputError("Give either --device NAME --setting S or --point-source-w P.")
    tip = np.zeros(3) if request.tip_lps_mm is None else np.asarray(request.tip_lps_mm)
    direction = np.asarray(request.direction, dtype=np.float64)
    placed: dict[str, Any] = {}
    if request.plan_path is not None and request.tip_lps_mm is None:
        tip, direction, placed = _plan_applicator(request.plan_path)
    if request.device is not None:
        if request.setting is None:
            raise BadInputError(
                f"--device {request.device} needs --setting (see `seldinger devices`)."
            )
        model, setting = catalogue_setting(request.device, request.setting)
        if request.tip_lps_mm is None and not placed:  # the catalogue zone centred on the phantom
            tip = -setting.zone.centre_offset_mm * direction / np.linalg.norm(direction)
        points = np.array([tip, tip - model.exposure_mm * direction, tip + 10 * direction])
        margin = 0.75 * max(setting.zone.diameters_mm) + 12.0
    else:
        points = tip[None, :]
        margin = 35.0
    domain = _domain(
        request.plan_path,
        request.phantom_mm,
        request.tissue,
        request.spacing_mm,
        request.tissue_file,
        points,
        stages,
        margin,
    )
    maps = property_maps(domain.labels, domain.tissues)
    density = np.asarray([t.density_kg_per_m3 for t in domain.tissues])[domain.labels]
    specific = np.asarray([t.specific_heat_j_per_kg_k for t in domain.tissues])[domain.labels]
    with stages("bioheat"):
        if request.device is not None:
            run = run_device(
                domain.geometry,
                maps,
                density,
                specific,
                model,
                setting,
                request.setting or "",
                tip,
                direction,
                vessels=domain.vessels,
                active=domain.active,
                linear=request.linear,
                duration_s=request.duration_s,
            )
            temperature, omega, zone = run.temperature_c, run.damage_omega, run.zone
            peak = run.heat_result.peak_temperature_c if run.heat_result else temperature
            used = {"device": model.name, "setting": setting.name, **run.setting.__dict__}
        else:
            if request.duration_s is None or not request.duration_s > 0:
                raise BadInputError("--point-source-w needs --duration-s T (T > 0 s).")
            grid = ThermalGrid.from_maps(
                domain.geometry.spacing_mm,
                maps.thermal_conductivity_w_per_m_k,
                maps.heat_capacity_j_per_m3_k,
                maps.perfusion_w_per_m3_k,
                domain.vessels,
                domain.active,
            )
            heat = point_source_heat_w(domain.geometry, tip, float(request.point_source_w or 0))
            result = simulate_pennes(grid, 37.0, heat, request.duration_s, linear=request.linear)
            temperature, omega, zone = result.temperature_c, result.damage_omega, result.lethal
            peak = result.peak_temperature_c
            used = {"point_source_w": request.point_source_w, "duration_s": request.duration_s}
    summary = {
        "domain": domain.description,
        "linear": request.linear,
        **placed,
        **used,
        **_zone_summary(zone, domain.geometry),
        "isotherm_50c_ml": _zone_summary(peak >= 50.0, domain.geometry)["zone_volume_ml"],
        "isotherm_60c_ml": _zone_summary(peak >= 60.0, domain.geometry)["zone_volume_ml"],
        "max_temperature_c": round(float(peak.max()), 2),
        "tissues": domain.tissue_summary(),
    }
    volumes = {
        "temperature_c.nii.gz": temperature.astype(np.float32),
        "damage_omega.nii.gz": np.minimum(
            omega if omega is not None else 0 * temperature, 1e6
        ).astype(np.float32),
        "zone.nii.gz": zone.astype(np.uint8),
    }
    return summary, _write(request.out, request.force, domain.geometry, volumes, summary)


def _plan_applicator(plan_path: Path) -> tuple[FloatArray, FloatArray, dict[str, Any]]:
    """Applicator 1 of the plan's ablation: its tip, insertion direction, and a record."""
    from seldinger.plan import Plan

    plan = Plan.load(plan_path)
    if plan.ablation is None or not plan.ablation.applicators:
        raise BadInputError(
            f"{plan_path} has no ablation applicator to simulate: give --tip-lps-mm X,Y,Z and "
            f"--direction X,Y,Z, or plan the ablation first (`seldinger plan ablation "
            f"{plan_path} --device NAME --setting S`)."
        )
    applicators = plan.ablation.applicators
    first = applicators[0]
    record: dict[str, Any] = {
        "applicator": {
            "source": f"applicator 1 of {len(applicators)} in {plan_path.name}",
            "tip_lps_mm": list(first.tip_lps_mm),
            "direction_lps": list(first.direction_lps),
        }
    }
    return np.asarray(first.tip_lps_mm), np.asarray(first.direction_lps), record


@dataclass(frozen=True)
class CryoRequest:
    """Options of ``simulate cryo``."""

    probes_path: Path
    out: Path
    duration_s: float
    plan_path: Path | None = None
    phantom_mm: float | None = None
    tissue: str | None = None
    probe_c: float = -140.0
    isotherm_c: float = -40.0
    spacing_mm: float = 1.0
    tissue_file: Path | None = None
    force: bool = False


def simulate_cryo_files(
    request: CryoRequest, stages: Stages = quiet_stages
) -> tuple[dict[str, Any], list[Path]]:
    """Run ``simulate cryo``; return the summary and the files written."""
    from seldinger.physics.cryo import CRYO_ISOTHERMS_C, simulate_cryo
    from seldinger.physics.electrodes import (
        apply_well_factor,
        check_no_crossing,
        rasterise_electrode,
    )

    probes, _ = read_probes(request.probes_path)
    check_no_crossing(probes)
    domain = _domain(
        request.plan_path,
        request.phantom_mm,
        request.tissue,
        request.spacing_mm,
        request.tissue_file,
        _probe_points(probes),
        stages,
    )
    geometry = domain.geometry
    maps = property_maps(domain.labels, domain.tissues)
    probe_cells = np.zeros(geometry.shape, dtype=bool)
    factors = [
        np.ones(tuple(n - (a == axis) for a, n in enumerate(geometry.shape))) for axis in range(3)
    ]
    for n, probe in enumerate(probes):
        raster = rasterise_electrode(probe, geometry, domain.active, n)
        probe_cells[tuple(raster.cells.T)] = True
        apply_well_factor(factors, raster)
    density = np.asarray([t.density_kg_per_m3 for t in domain.tissues])[domain.labels]
    specific = np.asarray([t.specific_heat_j_per_kg_k for t in domain.tissues])[domain.labels]
    with stages(f"freezing {request.duration_s:g} s"):
        result = simulate_cryo(
            geometry.spacing_mm,
            maps.thermal_conductivity_w_per_m_k,
            density,
            specific,
            maps.perfusion_w_per_m3_k,
            probe_cells,
            request.probe_c,
            request.duration_s,
            fixed=domain.vessels,
            active=domain.active,
            face_factors=factors,
        )
    zone = result.isotherm(request.isotherm_c)
    summary = {
        "domain": domain.description,
        "probe_c": request.probe_c,
        "duration_s": request.duration_s,
        "isotherm_c": request.isotherm_c,
        **_zone_summary(zone, geometry),
        "isotherms": {
            f"{t:g}c": _zone_summary(result.isotherm(t), geometry) for t in CRYO_ISOTHERMS_C
        },
        "time_step_s": result.time_step_s,
        "probes": [p.summary() for p in probes],
        "tissues": domain.tissue_summary(),
    }
    volumes = {
        "temperature_c.nii.gz": result.temperature_c.astype(np.float32),
        "coldest_c.nii.gz": result.coldest_c.astype(np.float32),
        "zone.nii.gz": zone.astype(np.uint8),
    }
    return summary, _write(request.out, request.force, geometry, volumes, summary)
