"""The motion section: respiratory phases, how the targets and paths move, P(hit).

Written by ``seldinger motion plan`` (:func:`seldinger.workflow.motion.plan_motion`). The
plan's own CT is the *reference* phase; every other phase was registered from it, so a
displacement here is the vector (LPS mm) that carries a point of the plan's CT to where it
lies in that phase.
"""

from __future__ import annotations

from pydantic import Field

from seldinger.plan.fields import NonNegativeFloat, PlanModel, Point3

__all__ = [
    "MotionSection",
    "PhaseRecord",
    "TargetMotion",
    "TargetPhaseDisplacement",
    "TrajectoryMotion",
]


class PhaseRecord(PlanModel):
    """One respiratory phase and the registration that maps the plan's CT onto it.

    ``reference`` marks the plan's own CT (no registration: zero displacement).
    """

    name: str = Field(min_length=1)
    source_path: str | None = None
    series_uid: str | None = None
    reference: bool = False
    method: str | None = None
    mean_displacement_mm: NonNegativeFloat = 0.0
    max_displacement_mm: NonNegativeFloat = 0.0
    min_jacobian: float | None = Field(default=None, gt=0.0)
    seconds: NonNegativeFloat = 0.0
    field_path: str | None = None


class TargetPhaseDisplacement(PlanModel):
    """Where a target lies in one phase, relative to the plan's CT (a vector, LPS mm)."""

    phase: str
    displacement_vector_mm: Point3
    distance_mm: NonNegativeFloat


class TargetMotion(PlanModel):
    """A target's motion over the phases (mean displacement of its voxels).

    ``amplitude_mm`` is the largest distance between its positions in any two phases;
    ``peak_to_peak_lr_mm`` etc. the same along each patient axis. TG-76 (Keall et al.,
    Med Phys 2006;33:3874) recommends motion management above 5 mm:
    ``motion_management_recommended``.
    """

    target: str
    phases: list[TargetPhaseDisplacement]
    amplitude_mm: NonNegativeFloat
    peak_to_peak_lr_mm: NonNegativeFloat
    peak_to_peak_ap_mm: NonNegativeFloat
    peak_to_peak_si_mm: NonNegativeFloat
    motion_management_recommended: bool


class TrajectoryMotion(PlanModel):
    """How one planned path fares in every phase, and the chance that its tip hits.

    ``max_lateral_deviation_mm``: the most the tissue along the planned line strays from a
    straight needle between the path's moved entry and target, over the phases.
    ``unsafe_phases`` maps a phase to the hard structures the straight needle crosses in
    it. ``p_hit``: probability that the tip lands in the lesion (seeded Monte Carlo of
    registration TRE ⊕ residual motion ⊕ needle deflection, ``placement_rms_mm`` in all; None when the
    plan's target has neither a mask nor a volume).
    """

    rank: int = Field(ge=1)
    max_lateral_deviation_mm: NonNegativeFloat
    tip_motion_mm: NonNegativeFloat
    safe_in_all_phases: bool
    unsafe_phases: dict[str, list[str]] = Field(default_factory=dict)
    p_hit: float | None = Field(default=None, ge=0.0, le=1.0)
    p_hit_standard_error: NonNegativeFloat | None = None
    placement_rms_mm: NonNegativeFloat


class MotionSection(PlanModel):
    """Respiratory motion of the plan (``seldinger motion plan``).

    Parameters
    ----------
    reference_phase : str
        The phase the plan's CT shows.
    phases : list of PhaseRecord
    targets : list of TargetMotion
    trajectories : list of TrajectoryMotion
        One per ranked trajectory.
    threshold_mm : float
        TG-76's motion level above which management is recommended (5 mm).
    tre_mm, residual_rms_mm, deflection_mm_per_100mm : float
        The error budget P(hit) used: registration TRE (RMS, 3-D), residual motion at
        the gate (RMS), needle deflection per 100 mm of depth.
    n_samples, seed : int
        The Monte Carlo's size and seed (results are reproducible).
    ablation_p_margin_5mm : float or None
        Probability that the plan's ablation zone, moved by the same placement error, keeps
        a margin ≥ 5 mm around the lesion everywhere (one-applicator plans; None otherwise).
    ablation_nominal_min_margin_mm : float or None
        The zone's minimal margin as planned (no error).
    model_path, model_residual_rms_mm : str or None, float or None
        The surrogate → target model fitted from the skin markers of the phases
        (``motion plan --write-model``) and its residual over the phases.
    """

    reference_phase: str
    phases: list[PhaseRecord]
    targets: list[TargetMotion] = Field(default_factory=list)
    trajectories: list[TrajectoryMotion] = Field(default_factory=list)
    threshold_mm: NonNegativeFloat = 5.0
    tre_mm: NonNegativeFloat
    tre_source: str
    residual_rms_mm: NonNegativeFloat
    gate_window: tuple[float, float] = (0.0, 0.25)
    deflection_mm_per_100mm: NonNegativeFloat
    n_samples: int = Field(ge=100)
    seed: int
    ranked_by_p_hit: bool = False
    ablation_p_margin_5mm: float | None = Field(default=None, ge=0.0, le=1.0)
    ablation_nominal_min_margin_mm: float | None = None
    model_path: str | None = None
    model_residual_rms_mm: NonNegativeFloat | None = None
    notes: list[str] = Field(default_factory=list)
