"""Respiratory motion steps: register two phases, warp a CT, and the plan under breathing.

``seldinger motion register``, ``motion warp`` and ``motion plan`` call these; each reads
its inputs, calls the library (:mod:`seldinger.motion`) and writes all its outputs or none.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.anatomy.body import segment_body
from seldinger.errors import BadInputError
from seldinger.files import check_outputs, staged_outputs
from seldinger.imaging import Volume
from seldinger.io import Ct, read_ct, write_volume
from seldinger.io.dicom import list_series
from seldinger.motion import (
    DISPLACEMENT_FILE,
    JACOBIAN_FILE,
    DisplacementField,
    Registration,
    RegistrationMethod,
    RegistrationSettings,
    phases_from_cts,
    read_displacement_nifti,
    register,
    warp,
    write_displacement_nifti,
    write_jacobian_nifti,
)
from seldinger.motion.correspondence import CorrespondenceModel, fit_correspondence
from seldinger.motion.plan_motion import (
    TG76_THRESHOLD_MM,
    follow_path,
    gated_residual_rms_mm,
    target_motion,
)
from seldinger.motion.uncertainty import (
    DEFAULT_DEFLECTION_MM_PER_100MM,
    DEFAULT_TRE_MM,
    SphereLesion,
    p_hit,
    p_margin,
    placement_error,
)
from seldinger.navigation.fiducials import detect_skin_markers
from seldinger.physics.ablation.zones import Ellipsoid
from seldinger.plan import MotionSection, PhaseRecord, Plan, TargetMotion, TrajectoryMotion
from seldinger.planning.trajectory.constraints import DEFAULT_HARD
from seldinger.workflow.case import (
    PlanCase,
    Stages,
    load_plan_case,
    quiet_stages,
    read_mask,
    relative_to_plan,
)
from seldinger.workflow.motion_guidance import write_motion_model

__all__ = [
    "DEFAULT_TRE_MM",
    "MotionPlanOutcome",
    "MotionPlanRequest",
    "plan_motion",
    "register_files",
    "study_phases",
    "warp_file",
]

#: What a phase name may hold (it names the phase's folder beside the plan).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_%-][A-Za-z0-9_.%-]*")
#: Monte Carlo samples for P(hit) (standard error ≤ 0.35 percentage points).
DEFAULT_SAMPLES = 20_000


def _read_phase(path: Path, what: str, series_uid: str | None = None) -> Ct:
    if not Path(path).exists():
        raise BadInputError(f"{what} {path} does not exist; give a CT file or DICOM folder.")
    return read_ct(path, series_uid=series_uid)


def _slug(text: str) -> str:
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return "-".join(words) or "phase"


def study_phases(
    folder: str | os.PathLike[str], exclude_series_uid: str | None = None
) -> list[tuple[str, Path, str | None]]:
    """The CT series of a DICOM folder as phases ``(name, folder, series_uid)``.

    Names come from each series' description (``"Insp 0%"`` → ``insp-0``), numbered when
    two are alike; the series ``exclude_series_uid`` (the plan's own CT) is left out.

    Raises
    ------
    BadInputError
        If the folder holds no other CT series.
    """
    path = Path(folder)
    if not path.is_dir():
        raise BadInputError(f"--study {path} is not a folder; give the 4-D CT's DICOM folder.")
    found = [
        s
        for s in list_series(path)
        if s.series_uid != exclude_series_uid and s.modality in (None, "CT")
    ]
    if not found:
        raise BadInputError(
            f"--study {path} holds no CT series besides the plan's own; give a folder with "
            "the other breathing phases, or name them with --phase NAME=CT."
        )
    phases: list[tuple[str, Path, str | None]] = []
    taken: set[str] = set()
    for series in sorted(found, key=lambda s: (s.number is None, s.number or 0)):
        base = _slug(series.description or f"series {series.number or len(phases) + 1}")
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        phases.append((name, path, series.series_uid))
    return phases


def _lung_mask(fixed: Volume, mask_path: Path | None) -> Volume | None:
    if mask_path is None:
        return None
    return read_mask(
        mask_path,
        fixed,
        "--mask",
        "Give a mask on FIXED's grid (e.g. lungs from `seldinger segment FIXED`).",
    )


def register_files(
    fixed_path: str | os.PathLike[str],
    moving_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    mask_path: str | os.PathLike[str] | None = None,
    *,
    method: str = RegistrationMethod.LUNG.value,
    force: bool = False,
    stages: Stages = quiet_stages,
) -> tuple[Registration, list[Path]]:
    """Register FIXED to MOVING; write the displacement field and its Jacobian to ``out_dir``.

    Returns the registration and the files written
    (``displacement_lps_mm.nii.gz``, ``jacobian.nii.gz``).
    """
    out = Path(out_dir)
    finals = [out / DISPLACEMENT_FILE, out / JACOBIAN_FILE]
    check_outputs(finals, force)
    with stages("reading the phases"):
        fixed = _read_phase(Path(fixed_path), "FIXED")
        moving = _read_phase(Path(moving_path), "MOVING")
        phases_from_cts([("fixed", fixed), ("moving", moving)])
    mask = _lung_mask(fixed.volume, None if mask_path is None else Path(mask_path))
    with stages(f"registering ({method})"):
        result = register(fixed.volume, moving.volume, mask, method=method)
    with staged_outputs(force) as stage:
        write_displacement_nifti(result.field, stage.path(finals[0]), force=True)
        write_jacobian_nifti(result.jacobian, stage.path(finals[1]), force=True)
    return result, finals


def warp_file(
    ct_path: str | os.PathLike[str],
    field_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    force: bool = False,
) -> Volume:
    """Apply a displacement field (``motion register``'s) to a CT; write the warped CT."""
    check_outputs([out_path], force)
    ct = _read_phase(Path(ct_path), "CT")
    displacement = read_displacement_nifti(Path(field_path))
    warped = warp(ct.volume, displacement)
    write_volume(warped, Path(out_path), force=force)
    return warped


@dataclass
class MotionPlanRequest:
    """What ``seldinger motion plan`` was asked.

    Parameters
    ----------
    plan_path : Path
        The plan (its CT is the reference phase).
    phases : list of (str, Path)
        Other phases: ``--phase NAME=CT``.
    study : Path or None
        A DICOM folder whose CT series are the phases (``--study DIR``): every series but
        the plan's own, named from its series description.
    reference_name : str
        The name of the plan CT's phase.
    out : Path or None
        Where to write the plan (default: in place).
    gate_window : (float, float)
        Gating window as fractions of the amplitude (end-expiration 25 %).
    tre_mm : float or None
        Registration TRE; default the plan's latest predicted TRE, else
        :data:`DEFAULT_TRE_MM`.
    deflection_mm_per_100mm : float
    n_samples, seed : int
    rank_by_p_hit : bool
        Re-rank the trajectories: safe in every phase first, then by P(hit).
    method : str
        Registration method (``lung``, ``affine``, ``elastix-default``).
    settings : RegistrationSettings or None
    model_out : Path or None
        Fit the surrogate → target model from the skin markers every phase shows and write
        it here (``navigate guide --motion`` reads it).
    force : bool
    """

    plan_path: Path
    phases: list[tuple[str, Path]]
    reference_name: str = "reference"
    study: Path | None = None
    out: Path | None = None
    ct_path: Path | None = None
    gate_window: tuple[float, float] = (0.0, 0.25)
    tre_mm: float | None = None
    deflection_mm_per_100mm: float = DEFAULT_DEFLECTION_MM_PER_100MM
    n_samples: int = DEFAULT_SAMPLES
    seed: int = 0
    rank_by_p_hit: bool = False
    method: str = RegistrationMethod.LUNG.value
    settings: RegistrationSettings | None = None
    model_out: Path | None = None
    force: bool = False
    command: str | None = None

    def parameters(self) -> dict[str, Any]:
        """The request as recorded in the plan's provenance."""
        return {
            "phases": {name: str(path) for name, path in self.phases},
            "study": None if self.study is None else str(self.study),
            "reference": self.reference_name,
            "gate_window": list(self.gate_window),
            "tre_mm": self.tre_mm,
            "deflection_mm_per_100mm": self.deflection_mm_per_100mm,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "rank_by_p_hit": self.rank_by_p_hit,
            "method": self.method,
            "model_out": None if self.model_out is None else str(self.model_out),
        }


@dataclass
class MotionPlanOutcome:
    """The plan with its motion section, and the files written."""

    plan: Plan
    section: MotionSection
    written: list[Path]
    notes: list[str]


def _tre(case: PlanCase, request: MotionPlanRequest) -> tuple[float, str]:
    if request.tre_mm is not None:
        if not np.isfinite(request.tre_mm) or request.tre_mm < 0:
            raise BadInputError(f"--tre-mm must be a finite number ≥ 0; got {request.tre_mm}.")
        return float(request.tre_mm), "given (--tre-mm)"
    navigation = case.plan.navigation
    records = [] if navigation is None else navigation.registrations
    predicted = [r for r in records if r.predicted_tre_mm is not None]
    if predicted:
        record = predicted[-1]
        assert record.predicted_tre_mm is not None
        return float(record.predicted_tre_mm), f"predicted TRE of registration {record.id!r}"
    return DEFAULT_TRE_MM, "assumed (no registration in the plan; set it with --tre-mm)"


def _hard_masks(case: PlanCase) -> dict[str, Volume]:
    rules = case.plan.trajectories.rules if case.plan.trajectories else None
    names = list(DEFAULT_HARD) + ([] if rules is None else list(rules.forbidden))
    hard = {}
    for name in dict.fromkeys(names):
        if name in case.plan.structures:
            hard[name] = case.structure_mask(name)
    return hard


def _lungs(case: PlanCase) -> Volume | None:
    names = [n for n in ("lung_left", "lung_right") if n in case.plan.structures]
    if not names:
        return None
    masks = [np.asarray(case.structure_mask(n).array, dtype=bool) for n in names]
    return case.volume.with_array(np.logical_or.reduce(masks))


def _requested_phases(
    case: PlanCase, request: MotionPlanRequest
) -> list[tuple[str, Path, str | None]]:
    phases: list[tuple[str, Path, str | None]] = [(n, p, None) for n, p in request.phases]
    if request.study is not None:
        phases += study_phases(request.study, case.plan.case.series_uid)
    return phases


def _register_phases(
    case: PlanCase,
    request: MotionPlanRequest,
    requested: list[tuple[str, Path, str | None]],
    stages: Stages,
) -> tuple[
    dict[str, DisplacementField | None], list[PhaseRecord], list[Registration], list[Volume]
]:
    """Each phase's field from the plan's CT (None for the reference)."""
    cts = [(request.reference_name, case.ct)]
    for name, path, series_uid in requested:
        with stages(f"reading phase {name}"):
            cts.append((name, _read_phase(path, f"--phase {name}", series_uid)))
    phases_from_cts(cts)
    lungs = _lungs(case)
    fields: dict[str, DisplacementField | None] = {request.reference_name: None}
    records = [
        PhaseRecord(
            name=request.reference_name,
            source_path=case.plan.case.source_path,
            series_uid=case.plan.case.series_uid,
            reference=True,
        )
    ]
    results = []
    reference_voxels = np.asarray(case.volume.array)
    for (name, ct), (_, path, _) in zip(cts[1:], requested, strict=True):
        if np.array_equal(np.asarray(ct.volume.array), reference_voxels):
            raise BadInputError(
                f"--phase {name}={path} is the plan's own CT (the reference phase "
                f"{request.reference_name!r}); give the other phases only."
            )
        with stages(f"registering {request.reference_name} → {name}"):
            result = register(
                case.volume, ct.volume, lungs, method=request.method, settings=request.settings
            )
        fields[name] = result.field
        results.append(result)
        records.append(
            PhaseRecord(
                name=name,
                source_path=str(path),
                series_uid=getattr(ct.meta, "series_uid", None),
                method=result.method,
                mean_displacement_mm=round(result.mean_displacement_mm, 3),
                max_displacement_mm=round(result.max_displacement_mm, 3),
                min_jacobian=round(result.min_jacobian, 4),
                seconds=round(result.seconds, 2),
            )
        )
    return fields, records, results, [ct.volume for _, ct in cts]


#: Largest distance (mm) a skin marker moves between phases: breathing lifts the chest wall
#: 5-15 mm; markers are placed several centimetres apart, so the nearest one is the same.
_MARKER_PAIRING_MM = 25.0


def _marker_positions(volumes: list[Volume], names: list[str]) -> npt.NDArray[np.float64]:
    """The skin markers every phase shows, paired with the reference's: (P, K, 3) LPS mm."""
    found = []
    for volume, name in zip(volumes, names, strict=True):
        body = volume.with_array(segment_body(volume))
        detection = detect_skin_markers(volume, body)
        centres = np.asarray([m.centre_lps_mm for m in detection.markers], dtype=np.float64)
        if len(centres) == 0:
            raise BadInputError(
                f"no skin marker found in phase {name!r}: the correspondence model needs the "
                "chest markers (or the reference sensor) visible in every phase. Scan with "
                "the markers on, or leave out --write-model."
            )
        found.append(centres.reshape(-1, 3))
    reference = found[0]
    paired = [reference]
    for centres, name in zip(found[1:], names[1:], strict=True):
        gaps = np.linalg.norm(reference[:, None, :] - centres[None, :, :], axis=2)
        nearest = gaps.argmin(axis=1)
        if np.any(gaps[np.arange(len(reference)), nearest] > _MARKER_PAIRING_MM) or len(
            set(nearest.tolist())
        ) < len(reference):
            raise BadInputError(
                f"the skin markers of phase {name!r} do not pair one to one with those of "
                f"phase {names[0]!r} within {_MARKER_PAIRING_MM:g} mm ({len(centres)} vs "
                f"{len(reference)} found); check that the same markers are in every phase."
            )
        paired.append(centres[nearest])
    return np.stack(paired)


def _fit_model(
    case: PlanCase,
    request: MotionPlanRequest,
    volumes: list[Volume],
    names: list[str],
    targets: list[TargetMotion],
) -> CorrespondenceModel | None:
    if request.model_out is None:
        return None
    target = next((t for t in targets if t.target == _planned_target(case)), None)
    if target is None:
        raise BadInputError(
            "--write-model needs the plan's target (plan a trajectory to a lesion first)."
        )
    centroid = np.asarray(
        next(t.centroid_lps_mm for t in case.plan.targets if t.name == target.target)
    )
    moved = {d.phase: np.asarray(d.displacement_vector_mm) for d in target.phases}
    positions = np.stack([centroid + moved[name] for name in names])
    return fit_correspondence(_marker_positions(volumes, names), positions)


def _planned_target(case: PlanCase) -> str | None:
    plan = case.plan
    if plan.trajectories is not None and plan.trajectories.target is not None:
        return plan.trajectories.target
    return plan.targets[0].name if plan.targets else None


def _trajectory_motion(
    case: PlanCase,
    request: MotionPlanRequest,
    fields: dict[str, DisplacementField | None],
    residual_mm: float,
    tre_mm: float,
) -> list[TrajectoryMotion]:
    plan = case.plan
    if plan.trajectories is None or not plan.trajectories.paths:
        return []
    hard = _hard_masks(case)
    target = next((t for t in plan.targets if t.name == plan.trajectories.target), None)
    lesion: Volume | SphereLesion | None = None
    if target is not None and target.mask_path is not None:
        lesion = case.target_mask(target)
    elif target is not None and target.volume_ml is not None:  # a sphere of its volume
        radius_mm = (3.0 * target.volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
        lesion = SphereLesion(np.asarray(target.centroid_lps_mm), radius_mm)
    records = []
    for index, path in enumerate(plan.trajectories.paths):
        followed = follow_path(path.entry_lps_mm, path.target_lps_mm, fields, hard)
        entry, aim = np.asarray(path.entry_lps_mm), np.asarray(path.target_lps_mm)
        error = placement_error(
            tre_rms_mm=tre_mm,
            model_residual_rms_mm=residual_mm,
            needle_direction_lps=aim - entry,
            insertion_depth_mm=float(np.linalg.norm(aim - entry)),
            deflection_mm_per_100mm=request.deflection_mm_per_100mm,
        )
        rng = np.random.default_rng([request.seed, index])
        hit = None if lesion is None else p_hit(aim, lesion, error, rng, request.n_samples)
        records.append(
            TrajectoryMotion(
                rank=path.rank if path.rank is not None else index + 1,
                max_lateral_deviation_mm=round(followed.max_lateral_deviation_mm, 3),
                tip_motion_mm=round(followed.tip_motion_mm, 3),
                safe_in_all_phases=followed.safe_in_all_phases,
                unsafe_phases=followed.unsafe_phases,
                p_hit=None if hit is None else round(hit.p_hit, 4),
                p_hit_standard_error=None if hit is None else round(hit.standard_error, 4),
                placement_rms_mm=round(error.rms_mm, 3),
            )
        )
    return records


def _ablation_margin(
    case: PlanCase, request: MotionPlanRequest, residual_mm: float, tre_mm: float
) -> tuple[float | None, float | None, list[str]]:
    ablation = case.plan.ablation
    if ablation is None:
        return None, None, []
    if len(ablation.applicators) != 1:
        return (
            None,
            None,
            [
                f"P(margin ≥ 5 mm) is computed for one-applicator plans; this one has "
                f"{len(ablation.applicators)} (the zones would move independently)."
            ],
        )
    applicator = ablation.applicators[0]
    target = next((t for t in case.plan.targets if t.name == ablation.target), None)
    if target is None or target.mask_path is None or applicator.zone_axes_lps is None:
        return None, None, ["P(margin ≥ 5 mm) needs the ablation target's mask and zone axes."]
    zone = Ellipsoid(
        np.asarray(applicator.zone_centre_lps_mm),
        np.asarray(applicator.zone_axes_lps),
        np.asarray(applicator.zone_radii_mm),
    )
    tip, entry = np.asarray(applicator.tip_lps_mm), np.asarray(applicator.entry_lps_mm)
    error = placement_error(
        tre_rms_mm=tre_mm,
        model_residual_rms_mm=residual_mm,
        needle_direction_lps=tip - entry,
        insertion_depth_mm=float(np.linalg.norm(tip - entry)),
        deflection_mm_per_100mm=request.deflection_mm_per_100mm,
    )
    rng = np.random.default_rng([request.seed, 1_000_003])
    result = p_margin(zone, case.target_mask(target), error, rng, request.n_samples)
    return round(result.p_margin, 4), round(result.nominal_min_margin_mm, 3), []


def _rerank(plan: Plan, motion: list[TrajectoryMotion]) -> list[TrajectoryMotion]:
    """Paths safe in every phase first, then by P(hit); ranks renumbered in both lists."""
    assert plan.trajectories is not None
    order = sorted(
        range(len(motion)),
        key=lambda i: (not motion[i].safe_in_all_phases, -(motion[i].p_hit or 0.0)),
    )
    paths = [plan.trajectories.paths[i] for i in order]
    reranked = [motion[i] for i in order]
    for rank, (path, record) in enumerate(zip(paths, reranked, strict=True), start=1):
        path.rank = rank
        record.rank = rank
    plan.trajectories.paths = paths
    return reranked


def plan_motion(request: MotionPlanRequest, stages: Stages = quiet_stages) -> MotionPlanOutcome:
    """Register the phases, follow targets and paths through them, and store it in the plan.

    Writes each phase's displacement field and Jacobian beside the plan
    (``motion/<phase>/``) and the plan with its ``motion`` section, all or nothing.
    """
    out = request.out or request.plan_path
    if not request.phases and request.study is None:
        raise BadInputError(
            "motion plan needs at least one other phase: --phase NAME=CT (e.g. "
            "--phase inspiration=insp.nii.gz) or --study DIR; the plan's CT is the reference."
        )
    case = load_plan_case(request.plan_path, request.ct_path, stages=stages)
    requested = _requested_phases(case, request)
    names = [name for name, _, _ in requested]
    unsafe = [n for n in names if not _SAFE_NAME.fullmatch(n)]
    if unsafe:
        raise BadInputError(
            f"phase names become folder names: use letters, digits, '.', '_', '%' and '-' "
            f"(not starting with '.'); got {unsafe}."
        )
    if len(set(names)) != len(names) or request.reference_name in names:
        raise BadInputError(
            f"phase names must be unique and differ from the reference "
            f"{request.reference_name!r}; got {names}."
        )
    folder = out.parent / "motion"
    finals = {n: (folder / n / DISPLACEMENT_FILE, folder / n / JACOBIAN_FILE) for n in names}
    check_outputs([out, *(p for pair in finals.values() for p in pair)], True)
    check_outputs([request.model_out], request.force)
    tre_mm, tre_source = _tre(case, request)
    fields, phase_records, results, volumes = _register_phases(case, request, requested, stages)
    targets = []
    for target in case.plan.targets:
        if target.mask_path is not None:
            mask = case.target_mask(target)
            points = mask.index_to_lps(np.argwhere(np.asarray(mask.array)))
        else:
            points = np.asarray([target.centroid_lps_mm])
        targets.append(target_motion(target.name, points, fields, TG76_THRESHOLD_MM))
    amplitude = max((t.amplitude_mm for t in targets), default=0.0)
    residual_mm = gated_residual_rms_mm(amplitude, request.gate_window)
    with stages("following the paths through the phases"):
        trajectories = _trajectory_motion(case, request, fields, residual_mm, tre_mm)
    if request.rank_by_p_hit and trajectories:
        trajectories = _rerank(case.plan, trajectories)
    p_margin_5mm, nominal_margin, notes = _ablation_margin(case, request, residual_mm, tre_mm)
    with stages("fitting the surrogate → target model"):
        model = _fit_model(case, request, volumes, [request.reference_name, *names], targets)
    for record in phase_records:
        if not record.reference:
            record.field_path = relative_to_plan(finals[record.name][0], out)
    section = MotionSection(
        reference_phase=request.reference_name,
        phases=phase_records,
        targets=targets,
        trajectories=trajectories,
        threshold_mm=TG76_THRESHOLD_MM,
        tre_mm=round(tre_mm, 3),
        tre_source=tre_source,
        residual_rms_mm=round(residual_mm, 3),
        gate_window=request.gate_window,
        deflection_mm_per_100mm=request.deflection_mm_per_100mm,
        n_samples=request.n_samples,
        seed=request.seed,
        ranked_by_p_hit=request.rank_by_p_hit,
        ablation_p_margin_5mm=p_margin_5mm,
        ablation_nominal_min_margin_mm=nominal_margin,
        model_path=None if model is None or request.model_out is None else str(request.model_out),
        model_residual_rms_mm=None if model is None else round(model.residual_rms_mm, 3),
        notes=notes,
    )
    plan = case.plan
    plan.motion = section
    plan.provenance.record("motion", request.parameters(), request.command)
    with staged_outputs(True) as stage:
        for result, name in zip(results, names, strict=True):
            write_displacement_nifti(result.field, stage.path(finals[name][0]), force=True)
            write_jacobian_nifti(result.jacobian, stage.path(finals[name][1]), force=True)
        if model is not None and request.model_out is not None:
            write_motion_model(
                stage.path(request.model_out),
                model,
                {"plan": str(out), "phases": [request.reference_name, *names]},
                force=True,
            )
        plan.save(stage.path(out), force=True)
    written = [out, *(p for pair in finals.values() for p in pair)]
    if model is not None and request.model_out is not None:
        written.append(request.model_out)
    return MotionPlanOutcome(plan=plan, section=section, written=written, notes=notes)
