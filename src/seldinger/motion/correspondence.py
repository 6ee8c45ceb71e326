"""Surrogate → target correspondence model, live prediction and the gating light.

A chest reference sensor (the *surrogate*) is tracked live; the target inside the patient is
not. From the respiratory phases of a 4-D CT — in each phase the target position (from the
images or the deformable registration) and the reference sensor's position (the skin
markers the CT sees) — :func:`fit_correspondence` fits a linear model

``target(t) = t₀ + a · u(t) + b · u̇(t)``

where ``u`` is the surrogate's displacement along its principal direction of motion (mm)
and ``u̇`` its velocity (mm/s). The velocity term is the *phase term* that separates the
inhale and the exhale paths (hysteresis): it is the "tidal volume and airflow" model of
Low et al. [1]_, in the taxonomy of McClelland et al. [2]_ a linear correspondence model
with a two-dimensional surrogate (value and derivative); Ruan et al. [3]_ show why the
derivative is needed to infer hysteretic tumour motion from an external surrogate.

:class:`LivePredictor` keeps the last samples of the live sensor, estimates ``u̇`` by a
trailing least-squares slope (:func:`surrogate_velocity_mm_per_s` does the same on a whole
trace), and predicts the target frame by frame. :func:`gating_light` says whether the
surrogate lies in the gating window (default: end-expiration, the lowest 25 % of the
amplitude seen in the phases [4]_).

Frames and units follow ``docs/conventions.md``: LPS millimetres, seconds.

References
----------
.. [1] Low DA, Parikh PJ, Lu W, et al. Novel breathing motion model for radiotherapy.
   Int J Radiat Oncol Biol Phys. 2005;63(3):921-929.
.. [2] McClelland JR, Hawkes DJ, Schaeffter T, King AP. Respiratory motion models: a review.
   Med Image Anal. 2013;17(1):19-42 (section 4, correspondence models).
.. [3] Ruan D, Fessler JA, Balter JM, Berbeco RI, Nishioka S, Shirato H. Inference of
   hysteretic respiratory tumor motion from external surrogates: a state augmentation
   approach. Phys Med Biol. 2008;53(11):2923-2936.
.. [4] Keall PJ, Mageras GS, Balter JM, et al. The management of respiratory motion in
   radiation oncology (AAPM TG-76). Med Phys. 2006;33(10):3874-3900 (gating, duty cycle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = [
    "DEFAULT_VELOCITY_WINDOW_S",
    "MIN_SURROGATE_RANGE_MM",
    "CorrespondenceError",
    "CorrespondenceModel",
    "GatingWindow",
    "LiveEstimate",
    "LivePredictor",
    "fit_correspondence",
    "gating_light",
    "surrogate_velocity_mm_per_s",
]

FloatArray = npt.NDArray[np.float64]

#: The surrogate must move at least this far (mm, along its principal direction, between
#: the phases) for a model: EM sensor jitter is 0.1-0.2 mm RMS (navigation.md §2.6), so a
#: smaller range is noise.
MIN_SURROGATE_RANGE_MM = 0.5
#: Trailing window of the live velocity estimate: long enough to average EM jitter at
#: 40 Hz (16 samples), short against a 3-6 s breathing cycle. Our choice.
DEFAULT_VELOCITY_WINDOW_S = 0.4
#: A velocity needs samples spanning at least this fraction of the window (else 0, the
#: prediction without hysteresis): two samples 25 ms apart turn 0.15 mm of jitter into
#: 8 mm/s. This covers the start of tracking and drop-outs.
_MIN_SPAN_FRACTION = 0.5
#: Smallest singular value, relative to the largest, of the standardised design matrix
#: ``[1, u, u̇]``: below it the velocity does not separate inhale from exhale.
_MIN_DESIGN_CONDITION = 1e-3


class CorrespondenceError(BadInputError):
    """Phases that cannot give a surrogate → target model (too few, degenerate, mismatched)."""


def _surrogate_rows(surrogate_lps_mm: npt.ArrayLike, name: str) -> FloatArray:
    """(n, 3) or (n, K, 3) positions → (n, 3K) rows; checks finiteness."""
    s = np.asarray(surrogate_lps_mm, dtype=np.float64)
    if s.ndim not in (2, 3) or s.shape[-1] != 3:
        raise CorrespondenceError(
            f"{name} must have shape (n, 3) or (n, K, 3) (K reference sensors), LPS mm; got "
            f"{s.shape}."
        )
    rows = s.reshape(len(s), -1)
    if not np.isfinite(rows).all():
        bad = int(np.argmax(~np.isfinite(rows).all(axis=1)))
        raise CorrespondenceError(
            f"{name}[{bad}] is not finite; drop the frames the tracker did not measure."
        )
    return rows


@dataclass(frozen=True, eq=False)
class CorrespondenceModel:
    """``target = t₀ + a · u + b · u̇`` with ``u`` the surrogate's principal displacement.

    Build it with :func:`fit_correspondence`.

    Attributes
    ----------
    surrogate_mean_mm : ndarray, shape (3K,)
        Mean reference-sensor position(s) over the phases, LPS mm (sensors concatenated).
    surrogate_axis : ndarray, shape (3K,)
        Unit principal direction of the surrogate's motion, oriented so that ``u`` grows
        from expiration to inspiration.
    target_ref_lps_mm : ndarray, shape (3,)
        ``t₀``: the target where ``u = 0`` and ``u̇ = 0``, LPS mm.
    coef_amplitude : ndarray, shape (3,)
        ``a``: target mm per surrogate mm.
    coef_velocity_s : ndarray, shape (3,)
        ``b``: target mm per surrogate mm/s (zero without hysteresis).
    surrogate_range_mm : tuple of float
        ``(u_min, u_max)`` over the phases: end-expiration and end-inspiration.
    residual_rms_mm, residual_max_mm : float
        3-D residual of the fit over the phases (0 when the fit is exactly determined).
    residuals_mm : tuple of float
        3-D residual per phase, in the order given.
    n_phases, degrees_of_freedom : int
        Phases used; phases minus parameters per coordinate.
    hysteresis : bool
        Whether the velocity term was fitted.
    """

    surrogate_mean_mm: FloatArray
    surrogate_axis: FloatArray
    target_ref_lps_mm: FloatArray
    coef_amplitude: FloatArray
    coef_velocity_s: FloatArray
    surrogate_range_mm: tuple[float, float]
    residual_rms_mm: float
    residual_max_mm: float
    residuals_mm: tuple[float, ...]
    n_phases: int
    degrees_of_freedom: int
    hysteresis: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (lists and Python floats), read back by :meth:`from_dict`."""
        return {
            "surrogate_mean_mm": self.surrogate_mean_mm.tolist(),
            "surrogate_axis": self.surrogate_axis.tolist(),
            "target_ref_lps_mm": self.target_ref_lps_mm.tolist(),
            "coef_amplitude": self.coef_amplitude.tolist(),
            "coef_velocity_s": self.coef_velocity_s.tolist(),
            "surrogate_range_mm": list(self.surrogate_range_mm),
            "residual_rms_mm": self.residual_rms_mm,
            "residual_max_mm": self.residual_max_mm,
            "residuals_mm": list(self.residuals_mm),
            "n_phases": self.n_phases,
            "degrees_of_freedom": self.degrees_of_freedom,
            "hysteresis": self.hysteresis,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorrespondenceModel:
        """The model saved by :meth:`to_dict`; checks shapes and finiteness."""
        try:
            axis = np.asarray(data["surrogate_axis"], dtype=np.float64)
            model = cls(
                surrogate_mean_mm=np.asarray(data["surrogate_mean_mm"], dtype=np.float64),
                surrogate_axis=axis,
                target_ref_lps_mm=np.asarray(data["target_ref_lps_mm"], dtype=np.float64),
                coef_amplitude=np.asarray(data["coef_amplitude"], dtype=np.float64),
                coef_velocity_s=np.asarray(data["coef_velocity_s"], dtype=np.float64),
                surrogate_range_mm=(
                    float(data["surrogate_range_mm"][0]),
                    float(data["surrogate_range_mm"][1]),
                ),
                residual_rms_mm=float(data["residual_rms_mm"]),
                residual_max_mm=float(data["residual_max_mm"]),
                residuals_mm=tuple(float(r) for r in data["residuals_mm"]),
                n_phases=int(data["n_phases"]),
                degrees_of_freedom=int(data["degrees_of_freedom"]),
                hysteresis=bool(data["hysteresis"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise CorrespondenceError(
                f"A saved correspondence model is incomplete or malformed ({err!r}); refit it "
                "from the phases."
            ) from err
        vectors = (model.target_ref_lps_mm, model.coef_amplitude, model.coef_velocity_s)
        lo, hi = model.surrogate_range_mm
        if (
            axis.ndim != 1
            or axis.size % 3
            or model.surrogate_mean_mm.shape != axis.shape
            or any(v.shape != (3,) for v in vectors)
            or not all(np.isfinite(v).all() for v in (axis, model.surrogate_mean_mm, *vectors))
            or not hi - lo > 0.0
        ):
            raise CorrespondenceError(
                "A saved correspondence model has inconsistent shapes or values (surrogate "
                "vectors of 3K, target vectors of 3, an increasing surrogate range); refit it."
            )
        return model

    @property
    def n_sensors(self) -> int:
        """Number of reference sensors the model reads (K)."""
        return len(self.surrogate_axis) // 3

    @property
    def amplitude_mm(self) -> float:
        """Surrogate amplitude between the phases, ``u_max − u_min`` (mm)."""
        return self.surrogate_range_mm[1] - self.surrogate_range_mm[0]

    @property
    def target_motion_mm(self) -> float:
        """3-D target motion the model spans between end-expiration and end-inspiration."""
        return float(np.linalg.norm(self.coef_amplitude) * self.amplitude_mm)

    def surrogate_displacement_mm(self, surrogate_lps_mm: npt.ArrayLike) -> FloatArray:
        """``u``: principal displacement (mm) of sensor positions, shape (n, [K,] 3) → (n,)."""
        rows = np.asarray(surrogate_lps_mm, dtype=np.float64).reshape(-1, len(self.surrogate_axis))
        result: FloatArray = (rows - self.surrogate_mean_mm) @ self.surrogate_axis
        return result

    def amplitude_fraction(self, u_mm: npt.ArrayLike) -> FloatArray:
        """``(u − u_min) / (u_max − u_min)``: 0 at end-expiration, 1 at end-inspiration."""
        lo, hi = self.surrogate_range_mm
        result: FloatArray = (np.asarray(u_mm, dtype=np.float64) - lo) / (hi - lo)
        return result

    def predict_from_displacement(
        self, u_mm: npt.ArrayLike, velocity_mm_per_s: npt.ArrayLike = 0.0
    ) -> FloatArray:
        """Target LPS mm from ``u`` (n,) and ``u̇`` (n,) → (n, 3) (scalars → (3,))."""
        u = np.asarray(u_mm, dtype=np.float64)
        v = np.asarray(velocity_mm_per_s, dtype=np.float64)
        result: FloatArray = (
            self.target_ref_lps_mm
            + u[..., None] * self.coef_amplitude
            + v[..., None] * self.coef_velocity_s
        )
        return result

    def predict(
        self, surrogate_lps_mm: npt.ArrayLike, velocity_mm_per_s: npt.ArrayLike = 0.0
    ) -> FloatArray:
        """Target position from the live reference sensor(s).

        Parameters
        ----------
        surrogate_lps_mm : array_like, shape (n, 3) or (n, K, 3)
            Reference sensor position(s), LPS mm, in the CT frame (after the
            image-to-tracker registration).
        velocity_mm_per_s : array_like, shape (n,) or scalar
            ``u̇``, e.g. from :func:`surrogate_velocity_mm_per_s`; ignored without
            hysteresis. Default 0.

        Returns
        -------
        ndarray, shape (n, 3)
            Predicted target, LPS mm.
        """
        return self.predict_from_displacement(
            self.surrogate_displacement_mm(surrogate_lps_mm), velocity_mm_per_s
        )


def fit_correspondence(
    surrogate_lps_mm: npt.ArrayLike,
    target_lps_mm: npt.ArrayLike,
    surrogate_velocity_mm_per_s: npt.ArrayLike | None = None,
    *,
    expiration_index: int | None = None,
) -> CorrespondenceModel:
    """Least-squares surrogate → target model from the phases of a 4-D CT.

    Parameters
    ----------
    surrogate_lps_mm : array_like, shape (P, 3) or (P, K, 3)
        Reference sensor position(s) in each of the P phases, LPS mm.
    target_lps_mm : array_like, shape (P, 3)
        Target position in each phase, LPS mm.
    surrogate_velocity_mm_per_s : array_like, shape (P,) or that of surrogate_lps_mm, optional
        Velocity in each phase of the surrogate's principal displacement ``u`` (mm/s,
        positive while inhaling), or of the sensor positions themselves (projected onto
        ``u``'s direction), e.g. from the respiratory trace recorded with the 4-D CT
        through :func:`surrogate_velocity_mm_per_s`. Given, the model has the hysteresis
        term ``b · u̇`` and needs P ≥ 3; omitted, P ≥ 2 suffice.
    expiration_index : int, optional
        Index of the end-expiration phase: orients ``u`` to grow toward inspiration. By
        default the chest is taken to rise on inspiration (supine patient): ``u`` grows as
        the sensors move anterior (LPS −y).

    Returns
    -------
    CorrespondenceModel

    Raises
    ------
    CorrespondenceError
        Mismatched shapes, non-finite values, too few phases, a surrogate that moves less
        than :data:`MIN_SURROGATE_RANGE_MM`, or velocities that do not separate the paths.

    Examples
    --------
    >>> u = np.array([0.0, 2.0, 4.0, 2.0])
    >>> chest = np.c_[np.zeros(4), -u, np.zeros(4)]
    >>> target = np.c_[np.zeros(4), np.zeros(4), -3.0 * u]
    >>> model = fit_correspondence(chest, target)
    >>> model.predict([[0.0, -1.0, 0.0]]).round(6).tolist()
    [[0.0, 0.0, -3.0]]
    """
    rows = _surrogate_rows(surrogate_lps_mm, "surrogate_lps_mm")
    target = np.asarray(target_lps_mm, dtype=np.float64)
    n = len(rows)
    if target.shape != (n, 3) or not np.isfinite(target).all():
        raise CorrespondenceError(
            f"target_lps_mm must be finite with shape ({n}, 3), one target per phase of "
            f"surrogate_lps_mm; got shape {target.shape}."
        )
    hysteresis = surrogate_velocity_mm_per_s is not None
    needed = 3 if hysteresis else 2
    if n < needed:
        raise CorrespondenceError(
            f"A correspondence model {'with' if hysteresis else 'without'} hysteresis needs at "
            f"least {needed} phases; got {n}. Give inspiration and expiration CTs (and an "
            "intermediate phase for the hysteresis term), or omit surrogate_velocity_mm_per_s."
        )
    mean = rows.mean(axis=0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    axis = vt[0]
    u = (rows - mean) @ axis
    if expiration_index is not None:
        if not -n <= expiration_index < n:
            raise CorrespondenceError(
                f"expiration_index must index one of the {n} phases; got {expiration_index}."
            )
        flip = u[expiration_index] > u.mean()
    else:
        flip = float(np.sum(axis[1::3])) > 0.0  # inspiration moves the chest anterior (−y)
    if flip:
        axis, u = -axis, -u
    spread = float(u.max() - u.min())
    if spread < MIN_SURROGATE_RANGE_MM:
        raise CorrespondenceError(
            f"The reference sensor moves only {spread:.3g} mm between the phases "
            f"(< {MIN_SURROGATE_RANGE_MM} mm): it cannot tell the breathing phase. Place it "
            "where the chest or abdomen rises, or check that the phases differ."
        )
    columns = [np.ones(n), u]
    if hysteresis:
        v = np.asarray(surrogate_velocity_mm_per_s, dtype=np.float64)
        if v.shape == np.shape(surrogate_lps_mm) and v.shape != (n,):
            v = v.reshape(n, -1) @ axis  # sensor velocity vectors → velocity of u
        if v.shape != (n,) or not np.isfinite(v).all():
            raise CorrespondenceError(
                f"surrogate_velocity_mm_per_s must be finite with shape ({n},) (mm/s of u) or "
                f"the shape of surrogate_lps_mm (sensor velocities); got shape {v.shape}."
            )
        columns.append(v)
    design = np.column_stack(columns)
    scale = np.abs(design).max(axis=0)
    scale[scale == 0.0] = 1.0
    sv = np.linalg.svd(design / scale, compute_uv=False)
    if sv[-1] < _MIN_DESIGN_CONDITION * sv[0]:
        raise CorrespondenceError(
            "surrogate_velocity_mm_per_s does not separate inhale from exhale (it is constant "
            "or proportional to the displacement over the phases). Give phases from both the "
            "inhale and the exhale half of the cycle, or fit without hysteresis."
        )
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    residuals = np.linalg.norm(design @ coef - target, axis=1)
    coef_velocity = coef[2] if hysteresis else np.zeros(3)
    return CorrespondenceModel(
        surrogate_mean_mm=mean,
        surrogate_axis=axis,
        target_ref_lps_mm=coef[0],
        coef_amplitude=coef[1],
        coef_velocity_s=coef_velocity,
        surrogate_range_mm=(float(u.min()), float(u.max())),
        residual_rms_mm=float(np.sqrt(np.mean(residuals**2))),
        residual_max_mm=float(residuals.max()),
        residuals_mm=tuple(float(r) for r in residuals),
        n_phases=n,
        degrees_of_freedom=n - design.shape[1],
        hysteresis=hysteresis,
    )


def surrogate_velocity_mm_per_s(
    t_s: npt.ArrayLike, u_mm: npt.ArrayLike, window_s: float = DEFAULT_VELOCITY_WINDOW_S
) -> FloatArray:
    """Causal velocity of a surrogate trace: least-squares slope over a trailing window.

    At sample ``i`` the slope of the line fitted to the samples ``j`` with
    ``t_i − window_s < t_j ≤ t_i``; 0 until those samples span half the window (start of
    tracking, drop-outs), where too few samples would turn jitter into speed. It estimates
    the velocity about ``window_s / 2`` in the past; :class:`LivePredictor` computes the
    same online.

    Parameters
    ----------
    t_s : array_like, shape (n,)
        Increasing sample times, s.
    u_mm : array_like, shape (n,)
        Surrogate displacement, mm.
    window_s : float
        Trailing window, s. Default :data:`DEFAULT_VELOCITY_WINDOW_S`.

    Returns
    -------
    ndarray, shape (n,)
        mm/s.

    Examples
    --------
    >>> t = np.arange(10) * 0.025
    >>> surrogate_velocity_mm_per_s(t, 3.0 * t, 0.1).round(9).tolist()[:4]
    [0.0, 0.0, 3.0, 3.0]
    """
    t = np.asarray(t_s, dtype=np.float64)
    u = np.asarray(u_mm, dtype=np.float64)
    if t.ndim != 1 or u.shape != t.shape:
        raise CorrespondenceError(
            f"t_s and u_mm must be 1-D of the same length; got {t.shape} and {u.shape}."
        )
    if not (math.isfinite(window_s) and window_s > 0):
        raise CorrespondenceError(
            f"window_s must be a positive number of seconds; got {window_s!r}."
        )
    if t.size > 1 and not (np.diff(t) > 0).all():
        raise CorrespondenceError("t_s must increase strictly (one sample per time stamp).")
    if t.size == 0:
        return np.zeros(0)
    tc = t - t[0]
    uc = u - u[0]
    zero = np.zeros(1)
    c1 = np.concatenate([zero, np.cumsum(np.ones_like(tc))])
    ct = np.concatenate([zero, np.cumsum(tc)])
    cu = np.concatenate([zero, np.cumsum(uc)])
    ctt = np.concatenate([zero, np.cumsum(tc * tc)])
    ctu = np.concatenate([zero, np.cumsum(tc * uc)])
    end = np.arange(1, t.size + 1)
    start = np.searchsorted(t, t - window_s, side="right")
    m = c1[end] - c1[start]
    st, su = ct[end] - ct[start], cu[end] - cu[start]
    stt, stu = ctt[end] - ctt[start], ctu[end] - ctu[start]
    denominator = m * stt - st * st
    span = t - t[np.minimum(start, t.size - 1)]
    ok = (
        (m >= 2)
        & (span >= _MIN_SPAN_FRACTION * window_s)
        & (denominator > 1e-12 * np.maximum(m * stt, 1e-300))
    )
    slope = np.zeros(t.size)
    slope[ok] = (m[ok] * stu[ok] - st[ok] * su[ok]) / denominator[ok]
    return slope


@dataclass(frozen=True)
class GatingWindow:
    """Amplitude window of the gating light, as fractions of the model's surrogate range.

    0 is end-expiration (``u_min`` of the phases), 1 end-inspiration. The default,
    ``[0, 0.25]``, is end-expiration with 25 % of the amplitude: the longest quiescent
    part of the cycle, a duty cycle of roughly 25-50 % (TG-76 [4]_).
    """

    lower_fraction: float = 0.0
    upper_fraction: float = 0.25

    def __post_init__(self) -> None:
        if not (
            math.isfinite(self.lower_fraction)
            and math.isfinite(self.upper_fraction)
            and self.lower_fraction < self.upper_fraction
        ):
            raise CorrespondenceError(
                "GatingWindow needs finite lower_fraction < upper_fraction (fractions of the "
                f"amplitude, 0 expiration, 1 inspiration); got {self.lower_fraction!r} and "
                f"{self.upper_fraction!r}. End-expiration gating is (0, 0.25)."
            )


@dataclass(frozen=True, eq=False)
class LiveEstimate:
    """One frame of :meth:`LivePredictor.update` (Python floats and bools).

    Attributes
    ----------
    target_lps_mm : ndarray, shape (3,)
        Predicted (compensated) target, LPS mm.
    surrogate_mm : float
        ``u``, the surrogate's principal displacement, mm.
    velocity_mm_per_s : float
        ``u̇`` (0 until the window holds enough samples).
    amplitude_fraction : float
        0 at end-expiration, 1 at end-inspiration of the phases (may leave [0, 1]).
    inhaling : bool
        ``u̇ > 0``: the breathing phase is on its inhale half.
    gate_on : bool
        The gating light: the surrogate is inside the gating window.
    """

    target_lps_mm: FloatArray
    surrogate_mm: float
    velocity_mm_per_s: float
    amplitude_fraction: float
    inhaling: bool
    gate_on: bool


class LivePredictor:
    """Frame-by-frame target prediction from the live reference sensor.

    Keeps the last samples of ``u`` within ``window_s`` (a fixed ring buffer) to estimate
    ``u̇`` exactly as :func:`surrogate_velocity_mm_per_s` does. Not thread-safe: one
    tracking thread owns it.

    Parameters
    ----------
    model : CorrespondenceModel
    window_s : float
        Velocity window, s. Default :data:`DEFAULT_VELOCITY_WINDOW_S`.
    max_rate_hz : float
        Highest frame rate expected (sizes the buffer). Default 1000 Hz.
    gating : GatingWindow, optional
        Window of the gating light; default end-expiration, 25 % of the amplitude.
    """

    def __init__(
        self,
        model: CorrespondenceModel,
        window_s: float = DEFAULT_VELOCITY_WINDOW_S,
        max_rate_hz: float = 1000.0,
        gating: GatingWindow | None = None,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise CorrespondenceError(f"window_s must be positive (s); got {window_s!r}.")
        if not (math.isfinite(max_rate_hz) and max_rate_hz > 0):
            raise CorrespondenceError(f"max_rate_hz must be positive (Hz); got {max_rate_hz!r}.")
        self.model = model
        self.window_s = window_s
        self.gating = gating or GatingWindow()
        size = math.ceil(window_s * max_rate_hz) + 2
        self._t = np.zeros(size)
        self._u = np.zeros(size)
        self._count = 0
        self._next = 0

    def update(self, t_s: float, surrogate_lps_mm: npt.ArrayLike) -> LiveEstimate:
        """Take one frame of the reference sensor(s) and predict the target.

        Parameters
        ----------
        t_s : float
            Frame time, s; must increase from call to call.
        surrogate_lps_mm : array_like, shape (3,) or (K, 3)
            Reference sensor position(s), LPS mm (CT frame).

        Returns
        -------
        LiveEstimate
        """
        model = self.model
        s = np.asarray(surrogate_lps_mm, dtype=np.float64).reshape(-1)
        u = float((s - model.surrogate_mean_mm) @ model.surrogate_axis)
        size = self._t.size
        self._t[self._next] = t_s
        self._u[self._next] = u
        self._next = (self._next + 1) % size
        self._count = min(self._count + 1, size)
        tt = self._t if self._count == size else self._t[: self._count]
        uu = self._u if self._count == size else self._u[: self._count]
        keep = tt > t_s - self.window_s
        velocity = 0.0
        tk = tt[keep] - t_s
        if tk.size >= 2 and -tk.min() >= _MIN_SPAN_FRACTION * self.window_s:
            uk = uu[keep] - u
            tm = tk.mean()
            dt = tk - tm
            denominator = float(dt @ dt)
            if denominator > 0.0:
                velocity = float(dt @ uk) / denominator
        target = (
            model.target_ref_lps_mm + u * model.coef_amplitude + velocity * model.coef_velocity_s
        )
        lo, hi = model.surrogate_range_mm
        fraction = (u - lo) / (hi - lo)
        return LiveEstimate(
            target_lps_mm=target,
            surrogate_mm=u,
            velocity_mm_per_s=velocity,
            amplitude_fraction=fraction,
            inhaling=velocity > 0.0,
            gate_on=_in_window(fraction, self.gating),
        )


def _in_window(fraction: float, window: GatingWindow) -> bool:
    """Scalar form of :func:`gating_light`'s rule (open ends at 0 and 1)."""
    return (window.lower_fraction <= 0.0 or fraction >= window.lower_fraction) and (
        window.upper_fraction >= 1.0 or fraction <= window.upper_fraction
    )


def gating_light(
    model: CorrespondenceModel,
    surrogate_lps_mm: npt.ArrayLike,
    window: GatingWindow | None = None,
) -> npt.NDArray[np.bool_]:
    """Whether the live surrogate lies in the gating window (light on), per frame.

    The window's lower bound 0 is open below (deeper expiration than in the CT still
    counts as end-expiration), as is an upper bound of 1 above.

    Parameters
    ----------
    model : CorrespondenceModel
    surrogate_lps_mm : array_like, shape (n, 3) or (n, K, 3)
    window : GatingWindow, optional
        Default end-expiration, 25 % of the amplitude.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    w = window or GatingWindow()
    fraction = model.amplitude_fraction(model.surrogate_displacement_mm(surrogate_lps_mm))
    lower_ok = fraction >= w.lower_fraction if w.lower_fraction > 0.0 else True
    upper_ok = fraction <= w.upper_fraction if w.upper_fraction < 1.0 else True
    result: npt.NDArray[np.bool_] = np.logical_and(lower_ok, upper_ok) & np.ones(
        fraction.shape, dtype=bool
    )
    return result
