"""Scripted motion for the tracker simulator: needle insertion, pivoting, spinning, breathing.

Everything here is deterministic given its parameters (the breathing irregularity given a
seeded generator) and vectorised over time. Positions are LPS millimetres in the CT frame
(``docs/conventions.md``); the tracker, its noise and distortion live in
:mod:`seldinger.navigation.simulate`.

Tool frame
----------
The needle sensor's frame (the *tool* frame) has its **+Z axis along the shaft, pointing
toward the tip** (the direction of insertion), as PLUS's StylusTip convention; the tip lies
on that axis at ``(0, 0, tip_offset_mm)``. A motion gives the tip position and the tool's
rotation in the CT frame; the simulator places the sensor behind the tip.

Breathing
---------
Lujan et al. (Med Phys 1999;26(5):715-720) model tumour position as
``z(t) = z0 − b·cos^{2n}(πt/τ − φ)``: ``z0`` the exhale position, ``b`` the peak-to-peak
amplitude, ``τ`` the period, ``n`` the shape (larger ``n`` dwells longer at exhale). We use
that shape cycle by cycle, each cycle (exhale to exhale) with its own length and amplitude
drawn log-normally around ``τ`` and ``b``, plus a linear baseline drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = [
    "STAGES",
    "BreathingModel",
    "BreathingTrace",
    "MotionSample",
    "NeedleInsertion",
    "PivotMotion",
    "SpinMotion",
    "rotation_from_rotvec",
]

FloatArray = npt.NDArray[np.float64]

#: Stage names indexed by :attr:`MotionSample.stage`.
STAGES = ("approach", "pause", "insertion", "hold", "pivot", "spin")

_CYCLES_PER_DRAW = 64  # breathing cycles drawn at a time: the realisation is query-independent


def _point(value: npt.ArrayLike, name: str) -> FloatArray:
    point = np.array(value, dtype=np.float64)
    if point.shape != (3,) or not np.isfinite(point).all():
        raise BadInputError(f"{name} must be 3 finite LPS coordinates in mm; got {value!r}.")
    point.setflags(write=False)
    return point


def _unit(value: npt.ArrayLike, name: str) -> FloatArray:
    vector = np.array(value, dtype=np.float64)
    norm = float(np.linalg.norm(vector)) if vector.shape == (3,) else math.nan
    if not (math.isfinite(norm) and norm > 1e-9):
        raise BadInputError(
            f"{name} must be a non-zero, finite LPS direction of 3 components; got {value!r}."
        )
    unit = vector / norm
    unit.setflags(write=False)
    return unit


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise BadInputError(message)


def _finite_at_least(value: float, name: str, low: float, fix: str) -> None:
    _check(
        math.isfinite(value) and value >= low,
        f"{name} must be a finite number ≥ {low}; got {value!r}. {fix}",
    )


def rotation_from_rotvec(rotvec_rad: npt.ArrayLike) -> FloatArray:
    """Rotation matrices from rotation vectors (axis × angle in radians), Rodrigues' formula.

    Parameters
    ----------
    rotvec_rad : array_like, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3, 3)

    Examples
    --------
    >>> (np.round(rotation_from_rotvec([0.0, 0.0, np.pi / 2]) @ [1.0, 0.0, 0.0], 12) + 0.0).tolist()
    [0.0, 1.0, 0.0]
    """
    v = np.asarray(rotvec_rad, dtype=np.float64)
    theta2 = np.einsum("...i,...i->...", v, v)
    theta = np.sqrt(theta2)
    small = theta < 1e-4
    safe = np.where(small, 1.0, theta)
    # R = I + a [v]x + b [v]x², a = sin θ / θ, b = (1 − cos θ) / θ² (series near 0)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    k = np.zeros((*v.shape[:-1], 3, 3))
    k[..., 0, 1], k[..., 0, 2] = -v[..., 2], v[..., 1]
    k[..., 1, 0], k[..., 1, 2] = v[..., 2], -v[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -v[..., 1], v[..., 0]
    result: FloatArray = np.eye(3) + a[..., None, None] * k + b[..., None, None] * (k @ k)
    return result


def _frame_from_axis(z: FloatArray, roll_rad: float = 0.0) -> FloatArray:
    """A rotation whose third column is the unit vector ``z``, rolled about it by ``roll_rad``.

    X starts as the LPS axis least aligned with ``z``, made orthogonal to it.
    """
    helper = np.zeros(3)
    helper[int(np.argmin(np.abs(z)))] = 1.0
    x = helper - (helper @ z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    x, y = (
        math.cos(roll_rad) * x + math.sin(roll_rad) * y,
        -math.sin(roll_rad) * x + math.cos(roll_rad) * y,
    )
    return np.column_stack([x, y, z])


def _smoothstep(u: FloatArray) -> FloatArray:
    u = np.clip(u, 0.0, 1.0)
    result: FloatArray = u * u * (3.0 - 2.0 * u)
    return result


@dataclass(frozen=True, eq=False)
class MotionSample:
    """Where a motion puts the needle at given times (before breathing), CT frame.

    Attributes
    ----------
    tip_lps_mm : ndarray, shape (n, 3)
        Needle tip, relative to the static (exhale) anatomy.
    rotation : ndarray, shape (n, 3, 3)
        Tool axes in the CT frame (columns X, Y, Z; +Z along the shaft toward the tip).
    skin_weight : ndarray, shape (n,)
        0 while the needle is off the patient, 1 once it touches the skin: how much the
        needle follows breathing.
    depth_fraction : ndarray, shape (n,)
        Inserted depth over planned depth, 0..1: the needle moves with the skin at 0 and
        with the target at 1 (linear in between).
    insertion_depth_mm : ndarray, shape (n,)
    stage : ndarray of int, shape (n,)
        Index into :data:`STAGES`.
    """

    tip_lps_mm: FloatArray
    rotation: FloatArray
    skin_weight: FloatArray
    depth_fraction: FloatArray
    insertion_depth_mm: FloatArray
    stage: npt.NDArray[np.int_]


@dataclass(frozen=True, eq=False)
class NeedleInsertion:
    """Approach the entry point, pause on the skin, insert at constant speed, hold.

    Parameters
    ----------
    entry_lps_mm, target_lps_mm : array_like, shape (3,)
        The planned path (skin entry and target), LPS mm.
    approach_s : float
        Time to bring the tip from ``approach_distance_mm`` behind the entry (along the
        actual path) onto the entry, easing in and out. Default 2 s.
    approach_distance_mm : float
        Default 50 mm.
    approach_tilt_deg : float
        The shaft starts tilted by this angle about the tool X axis and straightens during
        the approach. Default 20°.
    pause_s : float
        Time on the skin before insertion. Default 1 s.
    insertion_speed_mm_per_s : float
        Default 5 mm/s.
    angle_error_deg : float
        Deliberate error: the actual path is tilted by this angle from the plan, toward the
        direction ``error_azimuth_deg`` (0 = the tool's X axis at ``roll_deg`` = 0, 90 =
        its Y axis). The inserted depth stays the planned one. Default 0.
    lateral_error_mm : float
        Deliberate error: the actual entry is shifted this far from the planned one, across
        the path toward ``error_azimuth_deg``. Default 0.
    error_azimuth_deg : float
    roll_deg : float
        Roll of the tool about its shaft. Default 0.

    Notes
    -----
    The tip ends at ``entry' + depth · d'`` where ``entry'`` and ``d'`` are the shifted
    entry and tilted direction; with no errors that is the target.
    """

    entry_lps_mm: FloatArray
    target_lps_mm: FloatArray
    approach_s: float = 2.0
    approach_distance_mm: float = 50.0
    approach_tilt_deg: float = 20.0
    pause_s: float = 1.0
    insertion_speed_mm_per_s: float = 5.0
    angle_error_deg: float = 0.0
    lateral_error_mm: float = 0.0
    error_azimuth_deg: float = 0.0
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        entry = _point(self.entry_lps_mm, "NeedleInsertion.entry_lps_mm")
        target = _point(self.target_lps_mm, "NeedleInsertion.target_lps_mm")
        _check(
            float(np.linalg.norm(target - entry)) >= 1.0,
            f"NeedleInsertion.target_lps_mm must lie at least 1 mm from entry_lps_mm; got "
            f"entry {entry.tolist()} and target {target.tolist()}. Give two distinct points.",
        )
        object.__setattr__(self, "entry_lps_mm", entry)
        object.__setattr__(self, "target_lps_mm", target)
        for name in ("approach_s", "approach_distance_mm", "pause_s", "lateral_error_mm"):
            _finite_at_least(
                getattr(self, name), f"NeedleInsertion.{name}", 0.0, "Use 0 to skip it."
            )
        _check(
            math.isfinite(self.insertion_speed_mm_per_s) and self.insertion_speed_mm_per_s > 0,
            f"NeedleInsertion.insertion_speed_mm_per_s must be positive; got "
            f"{self.insertion_speed_mm_per_s!r}. Typical manual insertion is 2-10 mm/s.",
        )
        for name in ("approach_tilt_deg", "angle_error_deg"):
            value = getattr(self, name)
            _check(
                math.isfinite(value) and abs(value) < 90.0,
                f"NeedleInsertion.{name} must lie in (-90, 90) degrees; got {value!r}.",
            )
        for name in ("error_azimuth_deg", "roll_deg"):
            _check(
                math.isfinite(getattr(self, name)),
                f"NeedleInsertion.{name} must be finite (degrees); got {getattr(self, name)!r}.",
            )

    @property
    def planned_depth_mm(self) -> float:
        """Entry-to-target distance, which is also the inserted depth."""
        return float(np.linalg.norm(self.target_lps_mm - self.entry_lps_mm))

    @property
    def duration_s(self) -> float:
        """End of the insertion; the needle holds still afterwards."""
        return (
            self.approach_s + self.pause_s + self.planned_depth_mm / self.insertion_speed_mm_per_s
        )

    @property
    def anchor_lps_mm(self) -> FloatArray:
        """Middle of the planned path (placed at the tracker's working-volume centre)."""
        result: FloatArray = 0.5 * (self.entry_lps_mm + self.target_lps_mm)
        return result

    @property
    def skin_lps_mm(self) -> FloatArray:
        """The planned entry (the default chest reference is placed beside it)."""
        return self.entry_lps_mm

    @property
    def axis_lps(self) -> FloatArray:
        result: FloatArray = (self.target_lps_mm - self.entry_lps_mm) / self.planned_depth_mm
        return result

    @property
    def in_patient(self) -> bool:
        return True

    def actual_path(self) -> tuple[FloatArray, FloatArray]:
        """The entry actually used and the unit direction actually followed (with errors)."""
        planned = _frame_from_axis(self.axis_lps, math.radians(self.roll_deg))
        azimuth = math.radians(self.error_azimuth_deg)
        across = math.cos(azimuth) * planned[:, 0] + math.sin(azimuth) * planned[:, 1]
        tilt = math.radians(self.angle_error_deg)
        direction = math.cos(tilt) * self.axis_lps + math.sin(tilt) * across
        return self.entry_lps_mm + self.lateral_error_mm * across, direction

    def sample(self, t_s: FloatArray) -> MotionSample:
        """Needle tip and orientation at times ``t_s`` (s from the start), shape (n,)."""
        t = np.asarray(t_s, dtype=np.float64)
        entry, direction = self.actual_path()
        final = _frame_from_axis(direction, math.radians(self.roll_deg))
        eased = _smoothstep(t / self.approach_s) if self.approach_s > 0 else np.ones_like(t)
        start_insert = self.approach_s + self.pause_s
        depth = np.clip((t - start_insert) * self.insertion_speed_mm_per_s, 0.0, None)
        depth = np.minimum(depth, self.planned_depth_mm)
        back_mm = self.approach_distance_mm * (1.0 - eased)
        tip = entry + (depth - back_mm)[:, None] * direction
        tilt = np.radians(self.approach_tilt_deg) * (1.0 - eased)
        rotation = rotation_from_rotvec(tilt[:, None] * final[:, 0]) @ final
        stage = np.select(
            [t < self.approach_s, t < start_insert, depth < self.planned_depth_mm],
            [0, 1, 2],
            default=3,
        )
        return MotionSample(
            tip_lps_mm=tip,
            rotation=rotation,
            skin_weight=eased,
            depth_fraction=depth / self.planned_depth_mm,
            insertion_depth_mm=depth,
            stage=stage,
        )


@dataclass(frozen=True, eq=False)
class PivotMotion:
    """The tip rests in a divot while the shaft sweeps a cone around ``axis_lps`` (calibration).

    The tilt from the axis oscillates between ``min_angle_deg`` and ``max_angle_deg``
    (period ``1.618 · sweep_period_s``) while its azimuth turns once per ``sweep_period_s``;
    the tool also rolls ±``roll_amplitude_deg`` about its shaft (period ``1.414 ·
    sweep_period_s``). On a calibration phantom: nothing breathes, the reference included.

    Parameters
    ----------
    pivot_lps_mm : array_like, shape (3,)
        The fixed tip position (the divot), LPS mm.
    axis_lps : array_like, shape (3,)
        Cone axis: the shaft direction toward the tip at zero tilt. Default (0, 1, 0), the
        needle pointing posterior (down, for a supine patient).
    min_angle_deg, max_angle_deg : float
        Default 10° and 30°.
    sweep_period_s : float
        Default 4 s.
    roll_amplitude_deg : float
        Default 20°.
    """

    pivot_lps_mm: FloatArray
    axis_lps: FloatArray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    min_angle_deg: float = 10.0
    max_angle_deg: float = 30.0
    sweep_period_s: float = 4.0
    roll_amplitude_deg: float = 20.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "pivot_lps_mm", _point(self.pivot_lps_mm, "PivotMotion.pivot_lps_mm")
        )
        object.__setattr__(self, "axis_lps", _unit(self.axis_lps, "PivotMotion.axis_lps"))
        _check(
            0.0 <= self.min_angle_deg <= self.max_angle_deg < 90.0,
            f"PivotMotion needs 0 ≤ min_angle_deg ≤ max_angle_deg < 90; got "
            f"{self.min_angle_deg!r} and {self.max_angle_deg!r}. A ±30° cone is usual.",
        )
        _check(
            math.isfinite(self.sweep_period_s) and self.sweep_period_s > 0,
            f"PivotMotion.sweep_period_s must be positive; got {self.sweep_period_s!r}.",
        )
        _check(
            math.isfinite(self.roll_amplitude_deg),
            f"PivotMotion.roll_amplitude_deg must be finite; got {self.roll_amplitude_deg!r}.",
        )

    @property
    def duration_s(self) -> float:
        return 0.0

    @property
    def anchor_lps_mm(self) -> FloatArray:
        return self.pivot_lps_mm

    @property
    def skin_lps_mm(self) -> FloatArray:
        return self.pivot_lps_mm

    @property
    def target_lps_mm(self) -> FloatArray:
        """The pivot: where the tip should stay."""
        return self.pivot_lps_mm

    @property
    def in_patient(self) -> bool:
        return False

    def sample(self, t_s: FloatArray) -> MotionSample:
        """Tip (fixed) and orientation at times ``t_s``, shape (n,)."""
        t = np.asarray(t_s, dtype=np.float64)
        base = _frame_from_axis(self.axis_lps)
        period = self.sweep_period_s
        middle = 0.5 * (self.min_angle_deg + self.max_angle_deg)
        half = 0.5 * (self.max_angle_deg - self.min_angle_deg)
        tilt = np.radians(middle + half * np.sin(2 * np.pi * t / (1.618 * period)))
        azimuth = 2 * np.pi * t / period
        # rotating the axis about z × u by +tilt moves it toward u = cos φ x + sin φ y
        about = np.cos(azimuth)[:, None] * base[:, 1] - np.sin(azimuth)[:, None] * base[:, 0]
        roll = np.radians(self.roll_amplitude_deg) * np.sin(2 * np.pi * t / (1.414 * period))
        spin = rotation_from_rotvec(roll[:, None] * np.array([0.0, 0.0, 1.0]))
        rotation = rotation_from_rotvec(tilt[:, None] * about) @ base @ spin
        n = t.shape[0]
        zeros = np.zeros(n)
        return MotionSample(
            tip_lps_mm=np.broadcast_to(self.pivot_lps_mm, (n, 3)).copy(),
            rotation=rotation,
            skin_weight=zeros,
            depth_fraction=zeros,
            insertion_depth_mm=zeros,
            stage=np.full(n, STAGES.index("pivot")),
        )


@dataclass(frozen=True, eq=False)
class SpinMotion:
    """The needle spins about its own shaft with the tip fixed (spin calibration).

    Parameters
    ----------
    tip_lps_mm : array_like, shape (3,)
    axis_lps : array_like, shape (3,)
        Shaft direction toward the tip. Default (0, 1, 0).
    spin_rate_deg_per_s : float
        Default 90°/s.
    """

    tip_lps_mm: FloatArray
    axis_lps: FloatArray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    spin_rate_deg_per_s: float = 90.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tip_lps_mm", _point(self.tip_lps_mm, "SpinMotion.tip_lps_mm"))
        object.__setattr__(self, "axis_lps", _unit(self.axis_lps, "SpinMotion.axis_lps"))
        _check(
            math.isfinite(self.spin_rate_deg_per_s),
            f"SpinMotion.spin_rate_deg_per_s must be finite; got {self.spin_rate_deg_per_s!r}.",
        )

    @property
    def duration_s(self) -> float:
        return 0.0

    @property
    def anchor_lps_mm(self) -> FloatArray:
        return self.tip_lps_mm

    @property
    def skin_lps_mm(self) -> FloatArray:
        return self.tip_lps_mm

    @property
    def target_lps_mm(self) -> FloatArray:
        return self.tip_lps_mm

    @property
    def in_patient(self) -> bool:
        return False

    def sample(self, t_s: FloatArray) -> MotionSample:
        """Tip (fixed) and orientation at times ``t_s``, shape (n,)."""
        t = np.asarray(t_s, dtype=np.float64)
        angle = np.radians(self.spin_rate_deg_per_s) * t
        spin = rotation_from_rotvec(angle[:, None] * np.array([0.0, 0.0, 1.0]))
        n = t.shape[0]
        zeros = np.zeros(n)
        return MotionSample(
            tip_lps_mm=np.broadcast_to(self.tip_lps_mm, (n, 3)).copy(),
            rotation=_frame_from_axis(self.axis_lps) @ spin,
            skin_weight=zeros,
            depth_fraction=zeros,
            insertion_depth_mm=zeros,
            stage=np.full(n, STAGES.index("spin")),
        )


Motion = NeedleInsertion | PivotMotion | SpinMotion


@dataclass(frozen=True)
class BreathingModel:
    """Respiratory motion of the patient (Lujan et al. 1999 shape, irregular cycles).

    Amplitudes are peak-to-peak (exhale to inhale) in mm along a unit LPS direction: the
    displacement is ``signal(t) · amplitude_mm · direction`` with ``signal`` 0 at nominal
    exhale and 1 at nominal inhale.

    Parameters
    ----------
    period_s : float
        Mean cycle length. Default 4 s (15 breaths/min).
    shape_n : int
        Lujan's ``n`` in ``cos^{2n}``: 1 is sinusoidal; larger dwells longer at exhale.
        Default 2.
    target_amplitude_mm : float
        Motion of the target (and of the needle in tissue). Default 10 mm.
    target_direction_lps : tuple of float
        Inhale direction of the target. Default (0, 0, −1): inferior (diaphragm descends).
    chest_amplitude_mm : float
        Motion of the chest wall, where the reference sensor and skin entry sit. Default 5 mm.
    chest_direction_lps : tuple of float
        Default (0, −1, 0): anterior (the chest rises).
    period_variation, amplitude_variation : float
        Cycle-to-cycle coefficient of variation of length and amplitude (log-normal,
        mean preserved). Default 0.1 each; 0 makes breathing strictly periodic.
    baseline_drift_mm_per_min : float
        Linear drift of the target's exhale position along its direction (the chest drifts
        in proportion to its amplitude). Default 0.
    start_phase : float or None
        Phase at t = 0 (see :class:`BreathingTrace`); None draws it from the seed.
    """

    period_s: float = 4.0
    shape_n: int = 2
    target_amplitude_mm: float = 10.0
    target_direction_lps: tuple[float, float, float] = (0.0, 0.0, -1.0)
    chest_amplitude_mm: float = 5.0
    chest_direction_lps: tuple[float, float, float] = (0.0, -1.0, 0.0)
    period_variation: float = 0.1
    amplitude_variation: float = 0.1
    baseline_drift_mm_per_min: float = 0.0
    start_phase: float | None = None

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.period_s) and self.period_s >= 0.5,
            f"BreathingModel.period_s must be at least 0.5 s; got {self.period_s!r}. "
            "Adults breathe every 3-6 s.",
        )
        _check(
            isinstance(self.shape_n, int) and 1 <= self.shape_n <= 10,
            f"BreathingModel.shape_n must be an integer from 1 to 10; got {self.shape_n!r}.",
        )
        for name in ("target_amplitude_mm", "chest_amplitude_mm"):
            _finite_at_least(
                getattr(self, name), f"BreathingModel.{name}", 0.0, "Use 0 for no motion."
            )
        for name in ("period_variation", "amplitude_variation"):
            value = getattr(self, name)
            _check(
                math.isfinite(value) and 0.0 <= value <= 1.0,
                f"BreathingModel.{name} must lie in [0, 1] (a coefficient of variation); "
                f"got {value!r}. 0.1 is a typical irregular breather.",
            )
        _unit(self.target_direction_lps, "BreathingModel.target_direction_lps")
        _unit(self.chest_direction_lps, "BreathingModel.chest_direction_lps")
        _check(
            math.isfinite(self.baseline_drift_mm_per_min),
            f"BreathingModel.baseline_drift_mm_per_min must be finite; got "
            f"{self.baseline_drift_mm_per_min!r}.",
        )
        _check(
            self.baseline_drift_mm_per_min == 0.0 or self.target_amplitude_mm > 0.0,
            "BreathingModel.baseline_drift_mm_per_min needs target_amplitude_mm > 0 (drift is "
            f"scaled by it); got amplitude {self.target_amplitude_mm!r}.",
        )
        _check(
            self.start_phase is None or (0.0 <= self.start_phase < 1.0),
            f"BreathingModel.start_phase must lie in [0, 1) or be None; got {self.start_phase!r}.",
        )


class BreathingTrace:
    """One realisation of a :class:`BreathingModel`, reproducible from ``rng``.

    Phase convention (as 4D-CT binning): phase 0 is end-inhale, 0.5 end-exhale; the
    normalised signal within a cycle is ``a_k · cos^{2n}(π · phase)``. Cycles run from one
    exhale to the next, so a change of amplitude between cycles is continuous.

    Not thread-safe: cycles are drawn lazily (in fixed batches, so the trace does not depend
    on the order of queries) by whoever calls :meth:`state`.
    """

    def __init__(self, model: BreathingModel, rng: np.random.Generator) -> None:
        self.model = model
        self._rng = rng
        start = float(rng.random()) if model.start_phase is None else model.start_phase
        # fraction of the exhale-to-exhale cycle at t = 0
        self._start_fraction = (start + 0.5) % 1.0
        self._bounds_s = np.zeros(1)  # cycle starts (exhale), then its end
        self._amplitudes = np.zeros(0)
        self._first_period_s: float | None = None

    def _draw(self) -> None:
        m = self.model
        normal = self._rng.standard_normal((2, _CYCLES_PER_DRAW))
        sp = math.sqrt(math.log1p(m.period_variation**2))
        sa = math.sqrt(math.log1p(m.amplitude_variation**2))
        periods = m.period_s * np.exp(sp * normal[0] - 0.5 * sp * sp)
        amplitudes = np.exp(sa * normal[1] - 0.5 * sa * sa)
        if self._first_period_s is None:
            self._first_period_s = float(periods[0])
            self._bounds_s[0] = -self._start_fraction * periods[0]
        self._bounds_s = np.concatenate([self._bounds_s, self._bounds_s[-1] + np.cumsum(periods)])
        self._amplitudes = np.concatenate([self._amplitudes, amplitudes])

    def state(self, t_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Breathing phase (0 end-inhale, 0.5 end-exhale) and normalised signal at ``t_s``.

        Parameters
        ----------
        t_s : array_like, shape (n,)
            Seconds from the start of the simulation, ≥ 0.

        Returns
        -------
        phase : ndarray, shape (n,)
            In [0, 1).
        signal : ndarray, shape (n,)
            0 at nominal exhale, about 1 at nominal inhale (cycle amplitude and drift included).
        """
        t = np.asarray(t_s, dtype=np.float64)
        t_max_s = float(t.max()) if t.size else 0.0
        while not self._amplitudes.size or self._bounds_s[-1] <= t_max_s:
            self._draw()
        k = np.clip(np.searchsorted(self._bounds_s, t, side="right") - 1, 0, None)
        start = self._bounds_s[k]
        fraction = (t - start) / (self._bounds_s[k + 1] - start)
        phase = (fraction + 0.5) % 1.0
        signal = self._amplitudes[k] * np.cos(np.pi * phase) ** (2 * self.model.shape_n)
        if self.model.baseline_drift_mm_per_min:
            signal = signal + (
                self.model.baseline_drift_mm_per_min / self.model.target_amplitude_mm * t / 60.0
            )
        return phase, signal

    def displacements_lps_mm(self, signal: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Target and chest displacement (n, 3) in LPS mm for a normalised ``signal`` (n,)."""
        m = self.model
        target = _unit(m.target_direction_lps, "target_direction_lps") * m.target_amplitude_mm
        chest = _unit(m.chest_direction_lps, "chest_direction_lps") * m.chest_amplitude_mm
        return signal[:, None] * target, signal[:, None] * chest
