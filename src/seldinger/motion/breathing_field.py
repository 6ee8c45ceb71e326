"""A simulator of breathing internal motion with known truth at every frame.

An analytic, smooth displacement field (:func:`breathing_displacement_lps_mm`) is laid on a
simple thorax (:class:`ThoraxShape`): superior–inferior (SI) motion up to
``amplitude_si_mm`` at the diaphragm fading to zero at the lung apex, anterior–posterior
(AP) motion up to ``amplitude_ap_mm`` at the anterior wall fading posteriorly, and
*sliding* at the chest wall: the SI component drops to zero across a thin layer at the
lung boundary, so the skin moves AP while the lung beneath it slides SI, as the pleura
allows.

The field is scaled in time by the breathing signal of
:class:`seldinger.navigation.motion.BreathingTrace` (Lujan's ``cos^{2n}`` shape, cycle-to-cycle
period and amplitude irregularity, baseline drift): the AP part by ``s(t)``, the SI part
by ``s(t − internal_lag_s)``. The lag makes the internal path differ between inhale and
exhale (hysteresis: 1-5 mm loops in about half of lung tumours, Seppenwoolde et al. [1]_)
and puts a phase shift between the chest surface and the target, as TG-76 describes for
external surrogates [2]_. Positions are Lagrangian: a point at ``x`` at end-expiration
(``s = 0``) is at ``x + s_si · D_si(x) + s_ap · D_ap(x)``.

:func:`simulate_breathing` returns the true target and the chest sensor (the same field at
the skin, plus optional EM jitter) at every frame, a pure function of its arguments and the
seeded generator. Frames and units: ``docs/conventions.md`` (LPS mm, seconds).

References
----------
.. [1] Seppenwoolde Y, Shirato H, Kitamura K, et al. Precise and real-time measurement of
   3D tumor motion in lung due to breathing and heartbeat, measured during radiotherapy.
   Int J Radiat Oncol Biol Phys. 2002;53(4):822-834.
.. [2] Keall PJ, Mageras GS, Balter JM, et al. The management of respiratory motion in
   radiation oncology (AAPM TG-76). Med Phys. 2006;33(10):3874-3900.
.. [3] Lujan AE, Larsen EW, Balter JM, Ten Haken RK. A method for incorporating organ
   motion due to breathing into 3D dose calculations. Med Phys. 1999;26(5):715-720.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import Volume, VolumeGeometry
from seldinger.motion.correspondence import surrogate_velocity_mm_per_s
from seldinger.navigation.motion import BreathingModel, BreathingTrace

__all__ = [
    "BreathingSimConfig",
    "BreathingSimulation",
    "SimulatedPhases",
    "ThoraxShape",
    "breathing_displacement_lps_mm",
    "breathing_positions_lps_mm",
    "simulate_breathing",
    "simulated_4dct_phases",
]

FloatArray = npt.NDArray[np.float64]


def _smoothstep(x: FloatArray) -> FloatArray:
    x = np.clip(x, 0.0, 1.0)
    result: FloatArray = x * x * (3.0 - 2.0 * x)
    return result


@dataclass(frozen=True)
class ThoraxShape:
    """Where the analytic breathing field is laid: lungs as an elliptic cylinder, LPS mm.

    Parameters
    ----------
    diaphragm_z_mm : float
        LPS z (superior positive) of the diaphragm at end-expiration: full SI amplitude
        here and below.
    apex_z_mm : float
        LPS z of the lung apex: no SI motion here and above. Must exceed the diaphragm.
    centre_xy_lps_mm : tuple of float
        LPS (x, y) of the thorax axis.
    half_width_mm : tuple of float
        Semi-axes of the lungs' axial cross-section, left-right and anterior-posterior
        (inside the chest wall).
    sliding_width_mm : float
        Thickness of the layer at the lung boundary across which the SI motion drops to
        zero (the pleural sliding). Default 5 mm.
    """

    diaphragm_z_mm: float = -150.0
    apex_z_mm: float = 50.0
    centre_xy_lps_mm: tuple[float, float] = (0.0, 0.0)
    half_width_mm: tuple[float, float] = (140.0, 90.0)
    sliding_width_mm: float = 5.0

    def __post_init__(self) -> None:
        numbers = (
            self.diaphragm_z_mm,
            self.apex_z_mm,
            *self.centre_xy_lps_mm,
            *self.half_width_mm,
            self.sliding_width_mm,
        )
        if not all(math.isfinite(v) for v in numbers):
            raise BadInputError(f"ThoraxShape needs finite numbers (mm); got {self!r}.")
        if self.apex_z_mm - self.diaphragm_z_mm < 10.0:
            raise BadInputError(
                f"ThoraxShape.apex_z_mm ({self.apex_z_mm}) must lie at least 10 mm above "
                f"diaphragm_z_mm ({self.diaphragm_z_mm}) (LPS z grows superior)."
            )
        if min(self.half_width_mm) <= 0.0 or self.sliding_width_mm <= 0.0:
            raise BadInputError(
                "ThoraxShape.half_width_mm and sliding_width_mm must be positive (mm); got "
                f"{self.half_width_mm} and {self.sliding_width_mm}."
            )

    @classmethod
    def from_lung_mask(cls, lungs: Volume, sliding_width_mm: float = 5.0) -> ThoraxShape:
        """The bounding box of a lung mask (both lungs): diaphragm at its lowest z.

        Parameters
        ----------
        lungs : Volume
            Boolean (or label > 0) lung mask.
        sliding_width_mm : float
            See the class.
        """
        ijk = np.argwhere(np.asarray(lungs.array) > 0)
        if len(ijk) == 0:
            raise BadInputError(
                "ThoraxShape.from_lung_mask got an empty lung mask; segment the lungs first "
                "(seldinger segment)."
            )
        corners = np.array([ijk.min(axis=0), ijk.max(axis=0)], dtype=np.float64)
        grid = np.array(np.meshgrid(*corners.T, indexing="ij")).reshape(3, -1).T
        lps = lungs.index_to_lps(grid)
        lo, hi = lps.min(axis=0), lps.max(axis=0)
        return cls(
            diaphragm_z_mm=float(lo[2]),
            apex_z_mm=float(hi[2]),
            centre_xy_lps_mm=(float(0.5 * (lo[0] + hi[0])), float(0.5 * (lo[1] + hi[1]))),
            half_width_mm=(float(0.5 * (hi[0] - lo[0])), float(0.5 * (hi[1] - lo[1]))),
            sliding_width_mm=sliding_width_mm,
        )


def _components(
    points: FloatArray, amplitude_si_mm: float, amplitude_ap_mm: float, thorax: ThoraxShape
) -> tuple[FloatArray, FloatArray]:
    """SI displacement (LPS z) and AP displacement (LPS y) at signal 1, points (..., 3)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    height = thorax.apex_z_mm - thorax.diaphragm_z_mm
    u = np.clip((z - thorax.diaphragm_z_mm) / height, 0.0, 1.0)
    fade = np.cos(0.5 * np.pi * u) ** 2  # 1 at the diaphragm, 0 at the apex, flat at both
    cx, cy = thorax.centre_xy_lps_mm
    hx, hy = thorax.half_width_mm
    rho = np.sqrt(((x - cx) / hx) ** 2 + ((y - cy) / hy) ** 2)
    outward_mm = (rho - 1.0) * min(hx, hy)  # ≈ distance outside the lung boundary
    inside = 1.0 - _smoothstep(outward_mm / thorax.sliding_width_mm + 0.5)
    # the chest rises on inspiration (LPS −y); the back rests on the table
    anterior = np.clip(0.5 - (y - cy) / (2.0 * hy), 0.0, 1.0)
    si: FloatArray = -amplitude_si_mm * fade * inside
    ap: FloatArray = -amplitude_ap_mm * (0.5 + 0.5 * fade) * anterior
    return si, ap


def _check_amplitudes(amplitude_si_mm: float, amplitude_ap_mm: float) -> None:
    for name, value in (("amplitude_si_mm", amplitude_si_mm), ("amplitude_ap_mm", amplitude_ap_mm)):
        if not (math.isfinite(value) and value >= 0.0):
            raise BadInputError(
                f"{name} must be a finite length ≥ 0 (mm, end-expiration to end-inspiration); "
                f"got {value!r}. Lung tumours move 5-25 mm SI."
            )


def breathing_displacement_lps_mm(
    geometry_or_points: VolumeGeometry | Volume | npt.ArrayLike,
    amplitude_si_mm: float,
    amplitude_ap_mm: float,
    thorax: ThoraxShape | None = None,
    *,
    dtype: npt.DTypeLike | None = None,
) -> npt.NDArray[np.floating]:
    """The analytic breathing displacement from end-expiration to end-inspiration, LPS mm.

    For a point at ``x`` at end-expiration, ``x + D(x)`` is its position at
    end-inspiration (signal 1):

    - SI (LPS z): ``−amplitude_si_mm · cos²(π/2 · u) · w_in`` with ``u`` the height above
      the diaphragm over the lung height (clipped to [0, 1]) and ``w_in`` 1 inside the
      lungs' elliptic cross-section, 0 outside it, a smoothstep across
      ``thorax.sliding_width_mm`` at the boundary (sliding at the chest wall);
    - AP (LPS y): ``−amplitude_ap_mm · (1 + cos²(π/2 · u)) / 2 · w_ant`` with ``w_ant``
      1 at the anterior lung boundary and beyond, 0 at the posterior one (linear);
    - LR (LPS x): 0.

    The field is smooth (C¹ inside and outside the sliding layer) and, for amplitudes of
    lung breathing, invertible: its Jacobian determinant stays positive.

    Parameters
    ----------
    geometry_or_points : VolumeGeometry, Volume or array_like, shape (..., 3)
        A grid (the field at every voxel centre) or LPS points in mm.
    amplitude_si_mm, amplitude_ap_mm : float
        Peak motion (≥ 0), SI at the diaphragm and AP at the anterior wall.
    thorax : ThoraxShape, optional
        Where the lungs are; default :class:`ThoraxShape` (a 200 mm tall, 280 × 180 mm
        thorax around the LPS origin). For a CT, :meth:`ThoraxShape.from_lung_mask`.
    dtype : numpy dtype, optional
        Of the result; default float32 for a grid (a 512×512×133 field is 418 MB) and
        float64 for points.

    Returns
    -------
    ndarray, shape (I, J, K, 3) for a grid, else (..., 3)
        Displacement vectors, LPS mm: the vector that moves each (voxel-centre) point from
        its end-expiration position to its end-inspiration position.

    Examples
    --------
    >>> thorax = ThoraxShape(diaphragm_z_mm=0.0, apex_z_mm=200.0)
    >>> d = breathing_displacement_lps_mm([[0.0, 0.0, 0.0], [0.0, 0.0, 200.0]], 15.0, 5.0, thorax)
    >>> d.round(3).tolist()
    [[0.0, -2.5, -15.0], [0.0, -1.25, -0.0]]
    """
    _check_amplitudes(amplitude_si_mm, amplitude_ap_mm)
    shape_thorax = thorax or ThoraxShape()
    if isinstance(geometry_or_points, Volume):
        geometry_or_points = geometry_or_points.geometry
    if isinstance(geometry_or_points, VolumeGeometry):
        geometry = geometry_or_points
        out = np.zeros((*geometry.shape, 3), dtype=np.float32 if dtype is None else dtype)
        ni, nj, _ = geometry.shape
        ij = np.stack(np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij"), axis=-1)
        plane = np.concatenate([ij, np.zeros((ni, nj, 1))], axis=-1).astype(np.float64)
        for k in range(geometry.shape[2]):  # one k-plane at a time: memory of one plane
            plane[..., 2] = k
            si, ap = _components(
                geometry.index_to_lps(plane), amplitude_si_mm, amplitude_ap_mm, shape_thorax
            )
            out[:, :, k, 1] = ap
            out[:, :, k, 2] = si
        return out
    points = np.asarray(geometry_or_points, dtype=np.float64)
    if points.shape[-1:] != (3,) or not np.isfinite(points).all():
        raise BadInputError(
            "geometry_or_points must be a VolumeGeometry, a Volume or finite LPS points of "
            f"shape (..., 3) in mm; got shape {points.shape}."
        )
    si, ap = _components(points, amplitude_si_mm, amplitude_ap_mm, shape_thorax)
    result = np.zeros(points.shape, dtype=np.float64 if dtype is None else dtype)
    result[..., 1] = ap
    result[..., 2] = si
    return result


def breathing_positions_lps_mm(
    points_lps_mm: npt.ArrayLike,
    signal_si: npt.ArrayLike,
    signal_ap: npt.ArrayLike,
    amplitude_si_mm: float,
    amplitude_ap_mm: float,
    thorax: ThoraxShape | None = None,
) -> FloatArray:
    """Positions over time of points given at end-expiration.

    Parameters
    ----------
    points_lps_mm : array_like, shape (m, 3)
        End-expiration positions, LPS mm.
    signal_si, signal_ap : array_like, shape (n,)
        Breathing signal driving the SI and the AP component (0 expiration, 1 inspiration).

    Returns
    -------
    ndarray, shape (n, m, 3)
        LPS mm.
    """
    points = np.atleast_2d(np.asarray(points_lps_mm, dtype=np.float64))
    d = breathing_displacement_lps_mm(points, amplitude_si_mm, amplitude_ap_mm, thorax)
    s_si = np.asarray(signal_si, dtype=np.float64)[:, None]
    s_ap = np.asarray(signal_ap, dtype=np.float64)[:, None]
    result: FloatArray = np.broadcast_to(points, (len(s_si), *points.shape)).copy()
    result[..., 1] += s_ap * d[:, 1]
    result[..., 2] += s_si * d[:, 2]
    return result


@dataclass(frozen=True)
class BreathingSimConfig:
    """Parameters of :func:`simulate_breathing`.

    Parameters
    ----------
    amplitude_si_mm, amplitude_ap_mm : float
        Field amplitudes (see :func:`breathing_displacement_lps_mm`). Default 15 and 5 mm.
    thorax : ThoraxShape
    breathing : BreathingModel
        Period, Lujan shape, irregularity and start phase of the signal (its displacement
        fields are not used: only the normalised signal). ``baseline_drift_mm_per_min`` is
        read as SI drift at full amplitude. Default: 4 s, n = 2, 10 % period and amplitude
        variation.
    internal_lag_s : float
        Delay of the SI (internal) component behind the AP (chest) one: the hysteresis.
        Default 0.25 s.
    sensor_noise_mm : float
        RMS per-axis jitter of the measured chest sensor (EM trackers: 0.1-0.2 mm,
        navigation.md §2.6). Default 0.
    """

    amplitude_si_mm: float = 15.0
    amplitude_ap_mm: float = 5.0
    thorax: ThoraxShape = field(default_factory=ThoraxShape)
    breathing: BreathingModel = field(default_factory=BreathingModel)
    internal_lag_s: float = 0.25
    sensor_noise_mm: float = 0.0

    def __post_init__(self) -> None:
        _check_amplitudes(self.amplitude_si_mm, self.amplitude_ap_mm)
        for name in ("internal_lag_s", "sensor_noise_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise BadInputError(
                    f"BreathingSimConfig.{name} must be a finite number ≥ 0; got {value!r}."
                )


@dataclass(frozen=True, eq=False)
class BreathingSimulation:
    """Truth and measurement of :func:`simulate_breathing`, one row per frame.

    Attributes
    ----------
    t_s : ndarray, shape (n,)
    phase : ndarray, shape (n,)
        Breathing phase of the chest (0 end-inspiration, 0.5 end-expiration, as 4D-CT
        binning).
    signal : ndarray, shape (n,)
        Breathing signal of the chest (AP component), ~0 expiration to ~1 inspiration.
    signal_internal : ndarray, shape (n,)
        The lagged signal driving the SI component.
    target_lps_mm : ndarray, shape (n, 3)
        True target position.
    chest_true_lps_mm : ndarray, shape (n, K, 3)
        True chest sensor position(s).
    chest_lps_mm : ndarray, shape (n, K, 3)
        Measured chest sensor position(s) (with jitter).
    """

    t_s: FloatArray
    phase: FloatArray
    signal: FloatArray
    signal_internal: FloatArray
    target_lps_mm: FloatArray
    chest_true_lps_mm: FloatArray
    chest_lps_mm: FloatArray


def simulate_breathing(
    target_lps_mm: npt.ArrayLike,
    chest_lps_mm: npt.ArrayLike,
    duration_s: float,
    rate_hz: float,
    rng: np.random.Generator,
    config: BreathingSimConfig | None = None,
) -> BreathingSimulation:
    """Breathe a target and chest sensor(s) for ``duration_s`` at ``rate_hz``.

    Parameters
    ----------
    target_lps_mm : array_like, shape (3,)
        Target at end-expiration (as planned on an expiration CT), LPS mm.
    chest_lps_mm : array_like, shape (3,) or (K, 3)
        Reference sensor(s) on the skin at end-expiration, LPS mm.
    duration_s, rate_hz : float
        Frames at ``t = i / rate_hz`` for ``0 ≤ t < duration_s``.
    rng : numpy.random.Generator
        Draws the breathing irregularity, then the sensor jitter.
    config : BreathingSimConfig, optional

    Returns
    -------
    BreathingSimulation
    """
    cfg = config or BreathingSimConfig()
    target = np.asarray(target_lps_mm, dtype=np.float64)
    chest = np.atleast_2d(np.asarray(chest_lps_mm, dtype=np.float64))
    if target.shape != (3,) or chest.ndim != 2 or chest.shape[1] != 3:
        raise BadInputError(
            f"target_lps_mm must have shape (3,) and chest_lps_mm (3,) or (K, 3), LPS mm; got "
            f"{target.shape} and {chest.shape}."
        )
    if not (np.isfinite(target).all() and np.isfinite(chest).all()):
        raise BadInputError("target_lps_mm and chest_lps_mm must be finite (LPS mm).")
    if not (math.isfinite(rate_hz) and rate_hz > 0 and math.isfinite(duration_s)):
        raise BadInputError(
            f"rate_hz must be positive and duration_s finite; got {rate_hz!r} and {duration_s!r}."
        )
    n = math.ceil(duration_s * rate_hz - 1e-9)
    if n < 1:
        raise BadInputError(
            f"duration_s × rate_hz must give at least one frame; got {duration_s} s at "
            f"{rate_hz} Hz."
        )
    t = np.arange(n) / rate_hz
    model = cfg.breathing
    if model.baseline_drift_mm_per_min and model.target_amplitude_mm != cfg.amplitude_si_mm:
        # BreathingTrace scales drift by the model's amplitude: read drift as SI mm
        model = replace(model, target_amplitude_mm=max(cfg.amplitude_si_mm, 1e-9))
    trace = BreathingTrace(model, rng)
    # trace time starts internal_lag_s early so the lagged signal exists at t = 0
    _, lagged = trace.state(t)
    phase, signal = trace.state(t + cfg.internal_lag_s)
    target_path = breathing_positions_lps_mm(
        target, lagged, signal, cfg.amplitude_si_mm, cfg.amplitude_ap_mm, cfg.thorax
    )[:, 0]
    chest_true = breathing_positions_lps_mm(
        chest, lagged, signal, cfg.amplitude_si_mm, cfg.amplitude_ap_mm, cfg.thorax
    )
    measured = chest_true
    if cfg.sensor_noise_mm > 0.0:
        measured = chest_true + rng.normal(0.0, cfg.sensor_noise_mm, chest_true.shape)
    return BreathingSimulation(
        t_s=t,
        phase=phase,
        signal=signal,
        signal_internal=lagged,
        target_lps_mm=target_path,
        chest_true_lps_mm=chest_true,
        chest_lps_mm=measured,
    )


@dataclass(frozen=True, eq=False)
class SimulatedPhases:
    """What a phase-sorted 4-D CT of a :class:`BreathingSimulation` would give.

    Attributes
    ----------
    phase : ndarray, shape (P,)
        Centre of each phase bin, ``k / P`` (0 end-inspiration, 0.5 end-expiration); bin
        ``k`` holds the frames with phase within ``1 / (2P)`` of it.
    chest_lps_mm : ndarray, shape (P, K, 3)
        Mean measured chest sensor position(s) in each bin (the skin markers the CT sees).
    chest_velocity_mm_per_s : ndarray, shape (P, K, 3)
        Mean chest sensor velocity in each bin (from the respiratory trace recorded with
        the CT, by :func:`~seldinger.motion.correspondence.surrogate_velocity_mm_per_s`).
    target_lps_mm : ndarray, shape (P, 3)
        Mean true target position in each bin (what the images or the registration give).
    """

    phase: FloatArray
    chest_lps_mm: FloatArray
    chest_velocity_mm_per_s: FloatArray
    target_lps_mm: FloatArray

    @property
    def expiration_index(self) -> int:
        """The bin nearest end-expiration (phase 0.5)."""
        return int(np.argmin(np.abs(self.phase - 0.5)))


def simulated_4dct_phases(
    simulation: BreathingSimulation, n_phases: int = 10, velocity_window_s: float = 0.4
) -> SimulatedPhases:
    """Sort a simulation into ``n_phases`` equal phase bins, as a 4-D CT is reconstructed.

    Parameters
    ----------
    simulation : BreathingSimulation
        Should span several breathing cycles (a 4-D CT acquisition takes about one cycle
        per couch position; amplitude irregularity averages out over the bins).
    n_phases : int
        Default 10 (0 %, 10 %, … 90 %).
    velocity_window_s : float
        Trailing window of the velocity estimate, s (use the live predictor's).

    Returns
    -------
    SimulatedPhases
    """
    if not (isinstance(n_phases, int) and n_phases >= 2):
        raise BadInputError(f"n_phases must be an integer ≥ 2; got {n_phases!r}.")
    bins = np.rint(simulation.phase * n_phases).astype(np.intp) % n_phases
    counts = np.bincount(bins, minlength=n_phases)
    if (counts == 0).any():
        raise BadInputError(
            f"Phase bin {int(np.argmin(counts))} of {n_phases} holds no frame: simulate longer "
            "or at a higher rate_hz, or use fewer phases."
        )
    chest = simulation.chest_lps_mm
    flat = chest.reshape(len(chest), -1)
    velocity = np.stack(
        [
            surrogate_velocity_mm_per_s(simulation.t_s, flat[:, c], velocity_window_s)
            for c in range(flat.shape[1])
        ],
        axis=1,
    ).reshape(chest.shape)

    def bin_means(values: FloatArray) -> FloatArray:
        sums = np.zeros((n_phases, *values.shape[1:]))
        np.add.at(sums, bins, values)
        result: FloatArray = sums / counts.reshape(-1, *([1] * (values.ndim - 1)))
        return result

    return SimulatedPhases(
        phase=np.arange(n_phases) / n_phases,
        chest_lps_mm=bin_means(chest),
        chest_velocity_mm_per_s=bin_means(velocity),
        target_lps_mm=bin_means(simulation.target_lps_mm),
    )
