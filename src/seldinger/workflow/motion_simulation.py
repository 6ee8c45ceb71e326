"""A simulated tracker on a breathing patient, with its correspondence model
(``seldinger navigate simulate --motion-si-mm …``).

The needle follows the plan's path (as ``navigate simulate``) while the patient breathes
with the analytic field of :mod:`seldinger.motion.breathing_field`, laid on a thorax around
the target: a lower-lobe target on the diaphragm's level, so that it moves the full
superior–inferior amplitude; the skin entry outside the lungs (it moves with the chest
wall); a chest reference sensor on the anterior chest wall over the target. The target,
the needle in tissue and the reference sensor all move with that one field, driven by one
breathing trace (its chest and lagged internal signals), so the truth is known at every
frame.

The correspondence model is fitted as it would be in the clinic: from a simulated 4-D CT
(another minute of breathing of the same patient, sorted into phase bins) — the reference
sensor's and the target's mean position in each bin and the sensor's velocity — not from
the streamed frames. ``navigate guide --motion`` reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.files import check_overwrite
from seldinger.motion.breathing_field import (
    BreathingSimConfig,
    ThoraxShape,
    breathing_positions_lps_mm,
    simulate_breathing,
    simulated_4dct_phases,
)
from seldinger.motion.correspondence import (
    CorrespondenceModel,
    GatingWindow,
    LivePredictor,
    fit_correspondence,
)
from seldinger.navigation.motion import BreathingModel, BreathingTrace
from seldinger.navigation.simulate import TrackerSimulator
from seldinger.navigation.transforms import invert_rigid
from seldinger.workflow.motion_guidance import write_motion_model
from seldinger.workflow.simulation import SimulationRequest, make_simulation

__all__ = [
    "BreathingFieldRequest",
    "CompensationCheck",
    "FieldBreathing",
    "breathing_sim_config",
    "check_compensation",
    "fit_simulated_model",
    "make_motion_simulation",
    "thorax_around",
    "tracker_simulation",
]

FloatArray = npt.NDArray[np.float64]

#: Length (s) and rate (Hz) of the simulated 4-D CT acquisition the model is fitted from:
#: 15 cycles of 4 s, so that cycle-to-cycle irregularity averages out in each phase bin.
FOURD_CT_DURATION_S = 60.0
FOURD_CT_RATE_HZ = 25.0
#: The lungs' boundary lies this far inside the skin entry (mm), the reference sensor this
#: far outside it on the anterior chest wall: both move with the chest wall, not the lung.
_WALL_MM = 10.0
_REFERENCE_OUTSIDE_MM = 15.0
_MIN_LUNG_RADIUS_MM = 20.0
_LUNG_HEIGHT_MM = 200.0
# SeedSequence spawn keys: the streamed breathing and the 4-D CT are two realisations
_KEY_LIVE, _KEY_4DCT = 101, 102


@dataclass(frozen=True)
class BreathingFieldRequest:
    """The breathing-field options of ``navigate simulate`` (see its ``--help``); no field
    when ``target_si_mm`` is None."""

    target_si_mm: float | None = None
    ap_mm: float = 5.0
    period_s: float = 4.0
    internal_lag_s: float = 0.25
    n_phases: int = 10
    write_model: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if self.target_si_mm is None:
            if self.write_model is not None:
                raise BadInputError(
                    "--write-model writes the correspondence model of a breathing-field "
                    "simulation; add --motion-si-mm MM (e.g. 15)."
                )
            return
        if not (math.isfinite(self.target_si_mm) and self.target_si_mm > 0.0):
            raise BadInputError(
                f"--motion-si-mm must be a positive length (mm, end-expiration to "
                f"end-inspiration); got {self.target_si_mm!r}. Lung nodules move 10-25 mm."
            )
        if not (math.isfinite(self.ap_mm) and self.ap_mm > 0.0):
            raise BadInputError(
                f"--motion-ap-mm must be a positive length (mm): the chest reference sensor "
                f"must move for a model; got {self.ap_mm!r}."
            )


class FieldBreathing:
    """A :class:`~seldinger.navigation.simulate.PatientMotion`: the analytic breathing field
    driven by one breathing trace (the chest signal, and the internal signal lagging it).

    Parameters
    ----------
    config : BreathingSimConfig
        Field, thorax, breathing signal and lag (its ``sensor_noise_mm`` is unused: the
        tracker adds its own noise).
    rng : numpy.random.Generator
        Draws the breathing irregularity (once, lazily, in fixed batches).
    """

    def __init__(self, config: BreathingSimConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.trace = BreathingTrace(config.breathing, rng)

    def __call__(
        self, t_s: FloatArray, points_lps_mm: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Phase and chest signal (n,), and the displacements (n, m, 3) of the points."""
        cfg = self.config
        t = np.asarray(t_s, dtype=np.float64)
        # as simulate_breathing: the trace starts internal_lag_s early for the lagged signal
        _, lagged = self.trace.state(t)
        phase, signal = self.trace.state(t + cfg.internal_lag_s)
        points = np.atleast_2d(np.asarray(points_lps_mm, dtype=np.float64))
        moved = breathing_positions_lps_mm(
            points, lagged, signal, cfg.amplitude_si_mm, cfg.amplitude_ap_mm, cfg.thorax
        )
        return phase, signal, moved - points


def thorax_around(
    target_lps_mm: npt.ArrayLike, entry_lps_mm: npt.ArrayLike
) -> tuple[ThoraxShape, FloatArray]:
    """The simulated thorax for a path, and the chest reference sensor's position (LPS mm).

    The diaphragm at the target's level (full SI motion), the lungs a circular cylinder
    around the target whose boundary lies 10 mm inside the skin entry (at least 20 mm
    radius), the reference sensor 15 mm outside it, anterior of the target.
    """
    target = np.asarray(target_lps_mm, dtype=np.float64)
    entry = np.asarray(entry_lps_mm, dtype=np.float64)
    radius = max(_MIN_LUNG_RADIUS_MM, float(np.hypot(*(entry - target)[:2])) - _WALL_MM)
    thorax = ThoraxShape(
        diaphragm_z_mm=float(target[2]),
        apex_z_mm=float(target[2]) + _LUNG_HEIGHT_MM,
        centre_xy_lps_mm=(float(target[0]), float(target[1])),
        half_width_mm=(radius, radius),
    )
    reference = target + np.array([0.0, -(radius + _REFERENCE_OUTSIDE_MM), 0.0])
    return thorax, reference


def breathing_sim_config(request: BreathingFieldRequest, thorax: ThoraxShape) -> BreathingSimConfig:
    """The field simulator's configuration for the request, on ``thorax``."""
    return BreathingSimConfig(
        amplitude_si_mm=request.target_si_mm or 0.0,
        amplitude_ap_mm=request.ap_mm,
        thorax=thorax,
        breathing=BreathingModel(period_s=request.period_s),
        internal_lag_s=request.internal_lag_s,
    )


def fit_simulated_model(
    config: BreathingSimConfig,
    target_lps_mm: npt.ArrayLike,
    reference_lps_mm: npt.ArrayLike,
    rng: np.random.Generator,
    n_phases: int = 10,
) -> CorrespondenceModel:
    """The correspondence model of a simulated 4-D CT (one minute, ``n_phases`` bins), with
    the hysteresis term."""
    acquisition = simulate_breathing(
        target_lps_mm, reference_lps_mm, FOURD_CT_DURATION_S, FOURD_CT_RATE_HZ, rng, config
    )
    phases = simulated_4dct_phases(acquisition, n_phases)
    return fit_correspondence(
        phases.chest_lps_mm,
        phases.target_lps_mm,
        phases.chest_velocity_mm_per_s,
        expiration_index=phases.expiration_index,
    )


def make_motion_simulation(
    request: SimulationRequest, field: BreathingFieldRequest
) -> tuple[TrackerSimulator, dict[str, Any], CorrespondenceModel]:
    """The simulator of ``navigate simulate`` on a breathing patient, its ground truth
    (JSON-ready, as :func:`make_simulation`'s plus ``breathing_field`` and ``model``) and
    the correspondence model, written to ``field.write_model`` when given.

    Raises
    ------
    BadInputError
        Not an insertion (the pivot happens on a still phantom), or bad field options.
    OutputExistsError
        ``field.write_model`` exists and ``field.force`` is not set.
    """
    if request.motion != "insertion":
        raise BadInputError(
            "--motion-si-mm breathes a patient during an insertion; --motion pivot happens on "
            "a still phantom. Use --motion insertion --plan PLAN."
        )
    if field.write_model is not None:
        check_overwrite(field.write_model, field.force)
    plain, info = make_simulation(replace(request, breathing=False))
    path = plain.config.motion
    thorax, reference = thorax_around(path.target_lps_mm, path.skin_lps_mm)
    config = breathing_sim_config(field, thorax)
    reference_to_ct = np.eye(4)
    reference_to_ct[:3, 3] = reference
    seeds = np.random.SeedSequence(request.seed)
    live = np.random.default_rng(np.random.SeedSequence(seeds.entropy, spawn_key=(_KEY_LIVE,)))
    fourd = np.random.default_rng(np.random.SeedSequence(seeds.entropy, spawn_key=(_KEY_4DCT,)))
    sim = TrackerSimulator(
        replace(
            plain.config,
            patient_motion=FieldBreathing(config, live),
            reference_to_ct=reference_to_ct,
        ),
        rng=request.seed,
    )
    model = fit_simulated_model(config, path.target_lps_mm, reference, fourd, field.n_phases)
    summary = {
        "target_motion_mm": model.target_motion_mm,
        "surrogate_amplitude_mm": model.amplitude_mm,
        "residual_rms_mm": model.residual_rms_mm,
        "n_phases": model.n_phases,
        "hysteresis": model.hysteresis,
        "path": None if field.write_model is None else str(field.write_model),
    }
    info |= {
        "breathing": "field",
        "breathing_field": {
            "target_si_mm": field.target_si_mm,
            "ap_mm": field.ap_mm,
            "period_s": field.period_s,
            "internal_lag_s": field.internal_lag_s,
            "diaphragm_z_mm": thorax.diaphragm_z_mm,
            "lung_radius_mm": thorax.half_width_mm[0],
        },
        "reference_to_ct": reference_to_ct.tolist(),
        "model": summary,
    }
    if field.write_model is not None:
        provenance = {"simulation": {k: info[k] for k in ("plan", "trajectory", "seed")}}
        provenance |= {"breathing_field": info["breathing_field"]}
        write_motion_model(field.write_model, model, provenance, force=field.force)
    return sim, info, model


def tracker_simulation(
    request: SimulationRequest, field: BreathingFieldRequest
) -> tuple[TrackerSimulator, dict[str, Any]]:
    """``navigate simulate``: :func:`make_motion_simulation` when ``field`` asks for a
    breathing field, else :func:`~seldinger.workflow.simulation.make_simulation`."""
    if field.target_si_mm is None:
        return make_simulation(request)
    sim, info, _ = make_motion_simulation(request, field)
    return sim, info


@dataclass(frozen=True)
class CompensationCheck:
    """How well a model follows a simulated target (:func:`check_compensation`).

    Attributes
    ----------
    compensated_rms_mm, compensated_max_mm : float
        3-D error of the predicted target against the true one.
    uncompensated_rms_mm, uncompensated_max_mm : float
        3-D error of the planned (static) target: the whole motion.
    duty_cycle : float
        Fraction of frames with the gating light on.
    true_duty_cycle : float
        Fraction of frames whose true (noise-free) reference sensor lies in the window.
    gate_agreement : float
        Fraction of frames where the light agrees with the truth.
    frames : int
    """

    compensated_rms_mm: float
    compensated_max_mm: float
    uncompensated_rms_mm: float
    uncompensated_max_mm: float
    duty_cycle: float
    true_duty_cycle: float
    gate_agreement: float
    frames: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


def check_compensation(
    sim: TrackerSimulator,
    model: CorrespondenceModel,
    seconds: float,
    gating: GatingWindow | None = None,
) -> CompensationCheck:
    """Run the live predictor on ``seconds`` of simulated frames (measured reference poses
    through the true registration) and compare with the truth; no network."""
    series = sim.simulate(seconds)
    tracker_to_ct = invert_rigid(sim.ct_to_tracker)
    name = sim.config.reference_name
    seen = series.visible[name]
    measured = series.measured[name][seen][:, :3, 3] @ tracker_to_ct[:3, :3].T
    measured += tracker_to_ct[:3, 3]
    predictor = LivePredictor(model, gating=gating)
    estimates = [
        predictor.update(float(t), p)
        for t, p in zip(series.timestamps_s[seen], measured, strict=True)
    ]
    predicted = np.array([e.target_lps_mm for e in estimates])
    truth = series.truth.target_lps_mm[seen]
    planned = np.asarray(sim.config.motion.target_lps_mm)
    compensated = np.linalg.norm(predicted - truth, axis=1)
    uncompensated = np.linalg.norm(truth - planned, axis=1)
    light = np.array([e.gate_on for e in estimates])
    true_reference = series.truth.reference_to_ct[seen][:, :3, 3]
    window = predictor.gating
    fraction = model.amplitude_fraction(model.surrogate_displacement_mm(true_reference))
    in_window = (window.lower_fraction <= 0.0) | (fraction >= window.lower_fraction)
    in_window &= (window.upper_fraction >= 1.0) | (fraction <= window.upper_fraction)
    return CompensationCheck(
        compensated_rms_mm=float(np.sqrt(np.mean(compensated**2))),
        compensated_max_mm=float(compensated.max()),
        uncompensated_rms_mm=float(np.sqrt(np.mean(uncompensated**2))),
        uncompensated_max_mm=float(uncompensated.max()),
        duty_cycle=float(light.mean()),
        true_duty_cycle=float(in_window.mean()),
        gate_agreement=float((light == in_window).mean()),
        frames=int(seen.sum()),
    )
