"""A simulated electromagnetic tracker: a needle sensor and a chest reference, with truth.

:class:`TrackerSimulator` produces frames at ``rate_hz`` of ``ToolToTracker`` (the needle
sensor) and ``ReferenceToTracker`` (the patient reference on the chest) with the errors of a
real EM tracker — noise, drop-outs, a smooth field distortion — while the patient breathes,
and keeps the ground truth of every frame so that registration, calibration, motion
compensation and guidance can be checked against it. Pure: no sockets, no clocks.

Frames: the truth is in the CT frame (LPS mm); ``ct_to_tracker`` places the field
generator. The tool frame has +Z along the shaft toward the tip, the tip at
``(0, 0, tip_offset_mm)`` (see :mod:`seldinger.navigation.motion`). Measured poses are
``noise ∘ distortion ∘ (ct_to_tracker @ truth)``. Details and defaults:
``docs/navigation_simulation.md``.

References
----------
.. [1] Lujan AE et al. A method for incorporating organ motion due to breathing into 3D
   dose calculations. Med Phys 1999;26(5):715-720 (breathing shape).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.navigation.motion import (
    STAGES,
    BreathingModel,
    BreathingTrace,
    NeedleInsertion,
    PivotMotion,
    SpinMotion,
    rotation_from_rotvec,
)

__all__ = [
    "MAX_RATE_HZ",
    "REFERENCE_NAME",
    "TOOL_NAME",
    "WORKING_VOLUME_CENTRE_TRACKER_MM",
    "DistortionField",
    "DistortionModel",
    "DropoutModel",
    "FrameTruth",
    "NoiseModel",
    "PatientMotion",
    "SeriesTruth",
    "TrackerFrame",
    "TrackerSeries",
    "TrackerSimConfig",
    "TrackerSimulator",
    "default_ct_to_tracker",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

TOOL_NAME = "ToolToTracker"
REFERENCE_NAME = "ReferenceToTracker"
#: Highest frame rate; OpenIGTLink carries tracking at ~1000 Hz (Tokuda 2009).
MAX_RATE_HZ = 1000.0
#: Centre of the simulated working volume in the tracker frame (origin at the field
#: generator, +Z into the volume), mm. Our convention, not a vendor's.
WORKING_VOLUME_CENTRE_TRACKER_MM = (0.0, 0.0, 250.0)

_BLOCK_FRAMES = 1024  # random draws are made per block of frames: frame(i) needs only its block
_KEY_BREATHING, _KEY_DISTORTION, _KEY_NOISE, _KEY_BURSTS = range(4)
_RIGID_ATOL = 1e-6
_DEVICE_NAME_BYTES = 20  # OpenIGTLink DEVICE_NAME field


def default_ct_to_tracker(anchor_lps_mm: npt.ArrayLike) -> FloatArray:
    """A plausible field-generator placement that puts ``anchor_lps_mm`` mid-volume.

    A tabletop generator under the patient: its +Z (into the working volume) points
    anterior (LPS −y), and it is turned 20° about that axis. The translation maps the
    anchor onto :data:`WORKING_VOLUME_CENTRE_TRACKER_MM`.

    Examples
    --------
    >>> m = default_ct_to_tracker([10.0, -20.0, 30.0])
    >>> np.allclose(m @ [10.0, -20.0, 30.0, 1.0], [0.0, 0.0, 250.0, 1.0])
    True
    """
    anchor = np.asarray(anchor_lps_mm, dtype=np.float64)
    turn = rotation_from_rotvec([0.0, 0.0, math.radians(20.0)])
    under = rotation_from_rotvec([math.radians(-90.0), 0.0, 0.0])  # −y (anterior) → +z
    m = np.eye(4)
    m[:3, :3] = turn @ under
    m[:3, 3] = np.asarray(WORKING_VOLUME_CENTRE_TRACKER_MM) - m[:3, :3] @ anchor
    return m


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise BadInputError(message)


def _non_negative(value: float, name: str, fix: str) -> None:
    _check(
        isinstance(value, int | float) and math.isfinite(value) and value >= 0,
        f"{name} must be a finite number ≥ 0; got {value!r}. {fix}",
    )


def _rigid(value: npt.ArrayLike, name: str) -> FloatArray:
    m = np.array(value, dtype=np.float64)
    ok = m.shape == (4, 4) and bool(np.isfinite(m).all())
    if ok:
        r = m[:3, :3]
        ok = (
            np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=_RIGID_ATOL)
            and np.allclose(r.T @ r, np.eye(3), atol=_RIGID_ATOL)
            and np.linalg.det(r) > 0
        )
    if not ok:
        raise BadInputError(
            f"{name} must be a 4x4 rigid transform (orthonormal rotation with det +1, last row "
            f"[0, 0, 0, 1], translation in mm); got\n{value!r}"
        )
    m.setflags(write=False)
    return m


@dataclass(frozen=True)
class NoiseModel:
    """Gaussian measurement noise of each pose, independent between frames and tools.

    Both figures are **3-D RMS**: the translation error of the sensor origin is isotropic
    Gaussian with ``σ = translation_rms_mm / √3`` per axis, so ``sqrt(E|e|²)`` is
    ``translation_rms_mm``; the rotation error is ``exp([ω]×)`` with ``ω`` isotropic
    Gaussian, ``σ = rotation_rms_deg / √3`` per axis, so the RMS error *angle* is
    ``rotation_rms_deg``. The rotation error is applied in the tracker frame, about the
    sensor origin. Defaults 0.5 mm and 0.3° (Aurora-like; navigation.md §2.6).
    """

    translation_rms_mm: float = 0.5
    rotation_rms_deg: float = 0.3

    def __post_init__(self) -> None:
        _non_negative(self.translation_rms_mm, "NoiseModel.translation_rms_mm", "Use 0 for none.")
        _non_negative(self.rotation_rms_deg, "NoiseModel.rotation_rms_deg", "Use 0 for none.")


@dataclass(frozen=True)
class DropoutModel:
    """Frames in which a tool is missing (absent from the frame, as TDATA omits it).

    Two independent causes, per tool: each frame is lost with ``probability``; and bursts
    (a sensor near metal, out of the volume) start at random (Poisson, ``burst_rate_hz``
    per second) and last ``burst_duration_s`` × U(0.5, 1.5). Default: no drop-outs.
    """

    probability: float = 0.0
    burst_rate_hz: float = 0.0
    burst_duration_s: float = 0.5

    def __post_init__(self) -> None:
        _check(
            isinstance(self.probability, int | float) and 0.0 <= self.probability <= 1.0,
            f"DropoutModel.probability must lie in [0, 1] (per frame and tool); got "
            f"{self.probability!r}.",
        )
        _non_negative(self.burst_rate_hz, "DropoutModel.burst_rate_hz", "Use 0 for no bursts.")
        _non_negative(self.burst_duration_s, "DropoutModel.burst_duration_s", "e.g. 0.5 s.")


@dataclass(frozen=True)
class DistortionModel:
    """A smooth, static field distortion (see :class:`DistortionField`). Default: none.

    ``max_displacement_mm`` is the largest position error on the sphere of
    ``field_radius_mm`` around the working-volume centre (zero at the centre, growing
    quadratically); a few mm is realistic near metal.
    """

    max_displacement_mm: float = 0.0
    field_radius_mm: float = 250.0

    def __post_init__(self) -> None:
        _non_negative(self.max_displacement_mm, "DistortionModel.max_displacement_mm", "0: none.")
        _check(
            math.isfinite(self.field_radius_mm) and self.field_radius_mm > 0,
            f"DistortionModel.field_radius_mm must be positive; got {self.field_radius_mm!r}.",
        )


Motion = NeedleInsertion | PivotMotion | SpinMotion


class PatientMotion(Protocol):
    """Breathing motion of the patient given from outside (e.g. a CT-derived field).

    A hook for models that navigation does not own (:mod:`seldinger.motion`'s breathing
    field): called with the frame times and the points that move with the patient, it
    returns the breathing phase and signal (as :meth:`BreathingTrace.state`) and each
    point's displacement from end-expiration, so that the target, the skin entry and the
    chest reference sensor move consistently.
    """

    def __call__(
        self, t_s: FloatArray, points_lps_mm: FloatArray, /
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``phase`` (n,), ``signal`` (n,) and displacements (n, m, 3) LPS mm of the
        ``points_lps_mm`` (m, 3), given at end-expiration, at the times ``t_s`` (n,) s."""
        ...


@dataclass(frozen=True, eq=False)
class TrackerSimConfig:
    """Everything that defines a simulated tracking session (the seed excepted).

    Parameters
    ----------
    motion : NeedleInsertion, PivotMotion or SpinMotion
        What the needle does (:mod:`seldinger.navigation.motion`).
    rate_hz : float
        Frame rate, 0 < rate ≤ 1000 Hz. Default 40 Hz (NDI Aurora).
    tip_offset_mm : float
        Tip position along the tool's +Z axis from the sensor origin, ≥ 0. Default 5 mm.
    noise, dropout, distortion : NoiseModel, DropoutModel, DistortionModel
    breathing : BreathingModel or None
        None: the patient does not move. Default :class:`BreathingModel` (). Ignored by the
        pivot and spin motions, which happen on a still calibration phantom (reference
        included).
    ct_to_tracker : ndarray, shape (4, 4), optional
        Rigid CT → tracker transform. Default :func:`default_ct_to_tracker` of the
        motion's anchor (the middle of the path, or the pivot).
    reference_to_ct : ndarray, shape (4, 4), optional
        Reference sensor pose on the chest at exhale. Default: axes parallel to the CT's,
        60 mm from the skin entry across the needle.
    tool_name, reference_name : str
        Device names, at most 20 ASCII characters. Default ``ToolToTracker`` and
        ``ReferenceToTracker``.
    start_time_s : float
        Timestamp of frame 0 (e.g. Unix time when streaming). Default 0.
    patient_motion : PatientMotion, optional
        Breathing from outside (replaces ``breathing``): the target, the skin entry and the
        reference sensor move by its displacements at their positions. Default None.
    """

    motion: Motion
    rate_hz: float = 40.0
    tip_offset_mm: float = 5.0
    noise: NoiseModel = field(default_factory=NoiseModel)
    dropout: DropoutModel = field(default_factory=DropoutModel)
    distortion: DistortionModel = field(default_factory=DistortionModel)
    breathing: BreathingModel | None = field(default_factory=BreathingModel)
    ct_to_tracker: FloatArray | None = None
    reference_to_ct: FloatArray | None = None
    tool_name: str = TOOL_NAME
    reference_name: str = REFERENCE_NAME
    start_time_s: float = 0.0
    patient_motion: PatientMotion | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.motion, NeedleInsertion | PivotMotion | SpinMotion):
            raise TypeError(
                "TrackerSimConfig.motion must be a NeedleInsertion, PivotMotion or SpinMotion; "
                f"got {type(self.motion).__name__}."
            )
        _check(
            isinstance(self.rate_hz, int | float)
            and math.isfinite(self.rate_hz)
            and 0 < self.rate_hz <= MAX_RATE_HZ,
            f"TrackerSimConfig.rate_hz must lie in (0, {MAX_RATE_HZ:g}] Hz; got "
            f"{self.rate_hz!r}. EM trackers run at 40-250 Hz.",
        )
        _non_negative(self.tip_offset_mm, "TrackerSimConfig.tip_offset_mm", "0: sensor at tip.")
        _non_negative(self.start_time_s, "TrackerSimConfig.start_time_s", "e.g. time.time().")
        for name in ("ct_to_tracker", "reference_to_ct"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _rigid(getattr(self, name), name))
        names = (self.tool_name, self.reference_name)
        for name in names:
            _check(
                isinstance(name, str)
                and 0 < len(name) <= _DEVICE_NAME_BYTES
                and name.isascii()
                and name.isprintable(),
                f"tool and reference names must be 1-{_DEVICE_NAME_BYTES} printable ASCII "
                f"characters (an OpenIGTLink device name); got {name!r}.",
            )
        _check(names[0] != names[1], f"tool_name and reference_name must differ; got {names}.")


class DistortionField:
    """A smooth static distortion of measured poses in the tracker frame.

    Position error ``d(p) = A · q(u)``, ``u = (p − c) / R`` (``c`` the working-volume
    centre, ``R`` ``field_radius_mm``), ``q`` the six quadratic monomials of ``u`` and
    ``A`` a 3×6 matrix drawn from the seed and scaled so that ``max |d| =
    max_displacement_mm`` on ``|u| = 1``. The matching rotation error is the local rotation
    of that displacement field, ``ω = ½ ∇ × d`` (radians), applied as ``exp([ω]×) @ R``.
    """

    def __init__(self, model: DistortionModel, rng: np.random.Generator) -> None:
        self.model = model
        self.centre_tracker_mm = np.asarray(WORKING_VOLUME_CENTRE_TRACKER_MM, dtype=np.float64)
        coefficients = rng.standard_normal((3, 6))
        golden = math.pi * (3.0 - math.sqrt(5.0))
        k = np.arange(2000)
        z = 1.0 - 2.0 * (k + 0.5) / k.size  # Fibonacci points on the unit sphere
        r = np.sqrt(1.0 - z * z)
        sphere = np.column_stack([r * np.cos(golden * k), r * np.sin(golden * k), z])
        peak = float(np.linalg.norm(_quadratic(sphere) @ coefficients.T, axis=1).max())
        self.coefficients_mm = coefficients * (model.max_displacement_mm / peak)

    def displacement_mm(self, points_tracker_mm: FloatArray) -> FloatArray:
        """Position error (n, 3) in mm at tracker-frame points (n, 3)."""
        u = (points_tracker_mm - self.centre_tracker_mm) / self.model.field_radius_mm
        result: FloatArray = _quadratic(u) @ self.coefficients_mm.T
        return result

    def rotation_rad(self, points_tracker_mm: FloatArray) -> FloatArray:
        """Rotation-error vectors (n, 3), radians: half the curl of the displacement."""
        u = (points_tracker_mm - self.centre_tracker_mm) / self.model.field_radius_mm
        x, y, z = u[:, 0], u[:, 1], u[:, 2]
        zero = np.zeros_like(x)
        # ∂q_m/∂u_j for q = (x², y², z², xy, xz, yz): shape (n, 6, 3)
        dq = np.stack(
            [
                np.stack([2 * x, zero, zero], -1),
                np.stack([zero, 2 * y, zero], -1),
                np.stack([zero, zero, 2 * z], -1),
                np.stack([y, x, zero], -1),
                np.stack([z, zero, x], -1),
                np.stack([zero, z, y], -1),
            ],
            axis=1,
        )
        jac = np.einsum("im,nmj->nij", self.coefficients_mm, dq) / self.model.field_radius_mm
        curl = np.stack(
            [jac[:, 2, 1] - jac[:, 1, 2], jac[:, 0, 2] - jac[:, 2, 0], jac[:, 1, 0] - jac[:, 0, 1]],
            axis=-1,
        )
        result: FloatArray = 0.5 * curl
        return result

    def apply(self, poses: FloatArray) -> FloatArray:
        """Distorted copies of tracker-frame poses (n, 4, 4)."""
        out = poses.copy()
        p = poses[:, :3, 3]
        out[:, :3, 3] = p + self.displacement_mm(p)
        out[:, :3, :3] = rotation_from_rotvec(self.rotation_rad(p)) @ poses[:, :3, :3]
        return out


def _quadratic(u: FloatArray) -> FloatArray:
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    return np.stack([x * x, y * y, z * z, x * y, x * z, y * z], axis=-1)


@dataclass(frozen=True, eq=False)
class FrameTruth:
    """Ground truth of one frame (noise-free, distortion-free).

    Attributes
    ----------
    tool_to_ct, reference_to_ct, tool_to_tracker, reference_to_tracker : ndarray (4, 4)
        True sensor poses, breathing included.
    tip_lps_mm : ndarray (3,)
        True needle tip in the CT frame, breathing included.
    tip_tracker_mm : ndarray (3,)
        The same point in the tracker frame (``ct_to_tracker @ tip``).
    target_lps_mm : ndarray (3,)
        Where the target is now (planned target + its breathing displacement); the pivot
        or spin point for the calibration motions.
    target_displacement_lps_mm, chest_displacement_lps_mm : ndarray (3,)
        Breathing displacement of the target and of the chest wall (the reference sensor)
        from exhale.
    breathing_phase : float
        0 end-inhale, 0.5 end-exhale; NaN without breathing (and for pivot and spin).
    breathing_signal : float
        0 at nominal exhale, about 1 at nominal inhale.
    insertion_depth_mm : float
        Depth inserted along the actual path.
    stage : str
        One of ``approach``, ``pause``, ``insertion``, ``hold``, ``pivot``, ``spin``.
    """

    tool_to_ct: FloatArray
    reference_to_ct: FloatArray
    tool_to_tracker: FloatArray
    reference_to_tracker: FloatArray
    tip_lps_mm: FloatArray
    tip_tracker_mm: FloatArray
    target_lps_mm: FloatArray
    target_displacement_lps_mm: FloatArray
    chest_displacement_lps_mm: FloatArray
    breathing_phase: float
    breathing_signal: float
    insertion_depth_mm: float
    stage: str


@dataclass(frozen=True, eq=False)
class SeriesTruth:
    """:class:`FrameTruth` of many frames: the same attributes with a leading axis (n,).

    ``stage`` is an int array indexing :data:`seldinger.navigation.motion.STAGES`.
    """

    tool_to_ct: FloatArray
    reference_to_ct: FloatArray
    tool_to_tracker: FloatArray
    reference_to_tracker: FloatArray
    tip_lps_mm: FloatArray
    tip_tracker_mm: FloatArray
    target_lps_mm: FloatArray
    target_displacement_lps_mm: FloatArray
    chest_displacement_lps_mm: FloatArray
    breathing_phase: FloatArray
    breathing_signal: FloatArray
    insertion_depth_mm: FloatArray
    stage: npt.NDArray[np.int_]

    def at(self, i: int) -> FrameTruth:
        """Truth of frame ``i`` of the series."""
        return FrameTruth(
            tool_to_ct=self.tool_to_ct[i],
            reference_to_ct=self.reference_to_ct[i],
            tool_to_tracker=self.tool_to_tracker[i],
            reference_to_tracker=self.reference_to_tracker[i],
            tip_lps_mm=self.tip_lps_mm[i],
            tip_tracker_mm=self.tip_tracker_mm[i],
            target_lps_mm=self.target_lps_mm[i],
            target_displacement_lps_mm=self.target_displacement_lps_mm[i],
            chest_displacement_lps_mm=self.chest_displacement_lps_mm[i],
            breathing_phase=float(self.breathing_phase[i]),
            breathing_signal=float(self.breathing_signal[i]),
            insertion_depth_mm=float(self.insertion_depth_mm[i]),
            stage=STAGES[int(self.stage[i])],
        )


@dataclass(frozen=True, eq=False)
class TrackerFrame:
    """One tracker frame.

    Attributes
    ----------
    index : int
        Frame number from the start of the session.
    timestamp_s : float
        Acquisition time, seconds (``start_time_s + index / rate_hz`` when simulated).
    transforms : dict of str to ndarray (4, 4)
        Measured pose of each *visible* tool (``ToolToTracker``, ``ReferenceToTracker``);
        a dropped tool is absent.
    truth : FrameTruth or None
        Ground truth when simulated; None for frames read back from a log.
    """

    index: int
    timestamp_s: float
    transforms: dict[str, FloatArray]
    truth: FrameTruth | None = None


@dataclass(frozen=True, eq=False)
class TrackerSeries:
    """Many frames as arrays (what :meth:`TrackerSimulator.simulate` returns).

    Attributes
    ----------
    indices : ndarray of int, shape (n,)
    timestamps_s : ndarray, shape (n,)
    measured : dict of str to ndarray (n, 4, 4)
        Measured poses per tool; NaN where the tool was dropped.
    visible : dict of str to ndarray of bool (n,)
    truth : SeriesTruth
    """

    indices: npt.NDArray[np.int_]
    timestamps_s: FloatArray
    measured: dict[str, FloatArray]
    visible: dict[str, npt.NDArray[np.bool_]]
    truth: SeriesTruth

    def __len__(self) -> int:
        return int(self.timestamps_s.shape[0])

    def frame(self, i: int) -> TrackerFrame:
        """The ``i``-th frame of this series (not the session frame number)."""
        return TrackerFrame(
            index=int(self.indices[i]),
            timestamp_s=float(self.timestamps_s[i]),
            transforms={name: m[i] for name, m in self.measured.items() if self.visible[name][i]},
            truth=self.truth.at(i),
        )

    def frames(self) -> Iterator[TrackerFrame]:
        for i in range(len(self)):
            yield self.frame(i)


def _entropy(rng: int | np.random.Generator) -> int | list[int]:
    if isinstance(rng, np.random.Generator):
        return [int(v) for v in rng.integers(0, 2**32, size=4, dtype=np.uint64)]
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    raise TypeError(
        f"rng must be a numpy.random.Generator or a non-negative int seed; got {rng!r}. "
        "Pass e.g. 20240611 for a reproducible session."
    )


class TrackerSimulator:
    """Simulated EM tracker frames, reproducible from a seed.

    Parameters
    ----------
    config : TrackerSimConfig
    rng : numpy.random.Generator or int
        Seed. The same config and seed give the same frames; a Generator is consumed once
        to derive the seed.

    Notes
    -----
    Random draws are made per block of 1024 frames from a generator keyed by the block,
    so :meth:`frame`, :meth:`series` and :meth:`frames` agree whatever the order of calls.
    Not thread-safe (the breathing trace is drawn lazily); give each thread its own.

    Examples
    --------
    >>> sim = TrackerSimulator(
    ...     TrackerSimConfig(NeedleInsertion([0.0, 0.0, 0.0], [0.0, 80.0, 0.0])), rng=7
    ... )
    >>> frame = sim.frame(0)
    >>> sorted(frame.transforms)
    ['ReferenceToTracker', 'ToolToTracker']
    """

    def __init__(self, config: TrackerSimConfig, rng: int | np.random.Generator) -> None:
        if not isinstance(config, TrackerSimConfig):
            raise TypeError(f"config must be a TrackerSimConfig; got {type(config).__name__}.")
        self.config = config
        self._entropy = _entropy(rng)
        motion = config.motion
        self.ct_to_tracker: FloatArray = (
            config.ct_to_tracker
            if config.ct_to_tracker is not None
            else _rigid(default_ct_to_tracker(motion.anchor_lps_mm), "ct_to_tracker")
        )
        if config.reference_to_ct is not None:
            self.reference_to_ct: FloatArray = config.reference_to_ct
        else:
            axis = motion.axis_lps
            across = np.array([1.0, 0.0, 0.0]) - axis[0] * axis
            if np.linalg.norm(across) < 0.3:
                across = np.array([0.0, 0.0, 1.0]) - axis[2] * axis
            reference = np.eye(4)
            reference[:3, 3] = motion.skin_lps_mm + 60.0 * across / np.linalg.norm(across)
            self.reference_to_ct = _rigid(reference, "reference_to_ct")
        #: Tip position in the tool frame, mm.
        self.tip_tool_mm = np.array([0.0, 0.0, config.tip_offset_mm])
        self._breathing = (
            None
            if config.breathing is None
            else BreathingTrace(config.breathing, self._generator(_KEY_BREATHING))
        )
        self.distortion = (
            DistortionField(config.distortion, self._generator(_KEY_DISTORTION))
            if config.distortion.max_displacement_mm > 0
            else None
        )

    def _generator(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))

    @property
    def tool_names(self) -> tuple[str, str]:
        return (self.config.tool_name, self.config.reference_name)

    def frame_count(self, duration_s: float) -> int:
        """Frames in ``duration_s`` seconds (frame ``i`` is at ``i / rate_hz``)."""
        _non_negative(duration_s, "duration_s", "Give the simulated time in seconds.")
        return math.floor(duration_s * self.config.rate_hz + 1e-9)

    def simulate(self, duration_s: float) -> TrackerSeries:
        """All frames of the first ``duration_s`` seconds, as arrays."""
        return self.series(0, self.frame_count(duration_s))

    def frame(self, index: int) -> TrackerFrame:
        """Frame number ``index`` (≥ 0)."""
        return self.series(index, 1).frame(0)

    def frame_at(self, t_s: float) -> TrackerFrame:
        """The last frame at or before ``t_s`` seconds after the start."""
        return self.frame(self.frame_count(t_s + 1.0 / self.config.rate_hz) - 1)

    def frames(self, duration_s: float | None = None) -> Iterator[TrackerFrame]:
        """Frames one by one for ``duration_s`` seconds, or forever when None."""
        total = None if duration_s is None else self.frame_count(duration_s)
        first = 0
        while total is None or first < total:
            count = _BLOCK_FRAMES if total is None else min(_BLOCK_FRAMES, total - first)
            yield from self.series(first, count).frames()
            first += count

    def series(self, first_index: int, count: int) -> TrackerSeries:
        """Frames ``first_index`` … ``first_index + count − 1`` as arrays."""
        _check(
            isinstance(first_index, int | np.integer) and first_index >= 0,
            f"first_index must be an int ≥ 0; got {first_index!r}.",
        )
        _check(
            isinstance(count, int | np.integer) and count >= 0,
            f"count must be an int ≥ 0; got {count!r}.",
        )
        cfg = self.config
        indices = np.arange(first_index, first_index + count)
        t_s = indices / cfg.rate_hz
        sample = cfg.motion.sample(t_s)
        skin_disp = None
        if cfg.motion.in_patient and cfg.patient_motion is not None:
            points = np.stack(
                [cfg.motion.target_lps_mm, cfg.motion.skin_lps_mm, self.reference_to_ct[:3, 3]]
            )
            phase, signal, moved = cfg.patient_motion(t_s, points)
            target_disp, skin_disp, chest_disp = moved[:, 0], moved[:, 1], moved[:, 2]
        elif cfg.motion.in_patient and self._breathing is not None:
            phase, signal = self._breathing.state(t_s)
            target_disp, chest_disp = self._breathing.displacements_lps_mm(signal)
        else:  # calibration: on a still phantom; or no breathing
            phase = np.full(count, np.nan)
            signal = np.zeros(count)
            target_disp = chest_disp = np.zeros((count, 3))
        if cfg.motion.in_patient:
            f = sample.depth_fraction[:, None]
            skin = chest_disp if skin_disp is None else skin_disp
            needle_disp = sample.skin_weight[:, None] * ((1.0 - f) * skin + f * target_disp)
            target = cfg.motion.target_lps_mm + target_disp
        else:
            needle_disp = np.zeros((count, 3))
            target = np.broadcast_to(cfg.motion.target_lps_mm, (count, 3)).copy()
        tip = sample.tip_lps_mm + needle_disp
        tool_to_ct = np.zeros((count, 4, 4))
        tool_to_ct[:, 3, 3] = 1.0
        tool_to_ct[:, :3, :3] = sample.rotation
        tool_to_ct[:, :3, 3] = tip - sample.rotation @ self.tip_tool_mm
        reference_to_ct = np.broadcast_to(self.reference_to_ct, (count, 4, 4)).copy()
        reference_to_ct[:, :3, 3] += chest_disp
        true_tracker = {
            cfg.tool_name: self.ct_to_tracker @ tool_to_ct,
            cfg.reference_name: self.ct_to_tracker @ reference_to_ct,
        }
        measured, visible = self._measure(indices, true_tracker)
        truth = SeriesTruth(
            tool_to_ct=tool_to_ct,
            reference_to_ct=reference_to_ct,
            tool_to_tracker=true_tracker[cfg.tool_name],
            reference_to_tracker=true_tracker[cfg.reference_name],
            tip_lps_mm=tip,
            tip_tracker_mm=tip @ self.ct_to_tracker[:3, :3].T + self.ct_to_tracker[:3, 3],
            target_lps_mm=target,
            target_displacement_lps_mm=target_disp,
            chest_displacement_lps_mm=chest_disp,
            breathing_phase=phase,
            breathing_signal=signal,
            insertion_depth_mm=sample.insertion_depth_mm,
            stage=sample.stage,
        )
        return TrackerSeries(
            indices=indices,
            timestamps_s=cfg.start_time_s + t_s,
            measured=measured,
            visible=visible,
            truth=truth,
        )

    def _measure(
        self, indices: npt.NDArray[np.int_], true_tracker: Mapping[str, FloatArray]
    ) -> tuple[dict[str, FloatArray], dict[str, npt.NDArray[np.bool_]]]:
        cfg = self.config
        count = indices.shape[0]
        normal = np.empty((2, count, 6))
        uniform = np.empty((2, count))
        if count:
            first_block, last_block = indices[0] // _BLOCK_FRAMES, indices[-1] // _BLOCK_FRAMES
            blocks = [self._block_draws(b) for b in range(first_block, last_block + 1)]
            offset = indices - first_block * _BLOCK_FRAMES
            normal = np.concatenate([b[0] for b in blocks], axis=1)[:, offset]
            uniform = np.concatenate([b[1] for b in blocks], axis=1)[:, offset]
        sigma_mm = cfg.noise.translation_rms_mm / math.sqrt(3.0)
        sigma_rad = math.radians(cfg.noise.rotation_rms_deg) / math.sqrt(3.0)
        measured: dict[str, FloatArray] = {}
        visible: dict[str, npt.NDArray[np.bool_]] = {}
        for k, name in enumerate(self.tool_names):
            poses = true_tracker[name]
            if self.distortion is not None:
                poses = self.distortion.apply(poses)
            else:
                poses = poses.copy()
            poses[:, :3, 3] += sigma_mm * normal[k, :, :3]
            poses[:, :3, :3] = rotation_from_rotvec(sigma_rad * normal[k, :, 3:]) @ poses[:, :3, :3]
            seen = (uniform[k] >= cfg.dropout.probability) & ~self._in_burst(k, indices)
            poses[~seen] = np.nan
            measured[name], visible[name] = poses, seen
        return measured, visible

    def _block_draws(self, block: int) -> tuple[FloatArray, FloatArray]:
        rng = self._generator(_KEY_NOISE, block)
        return rng.standard_normal((2, _BLOCK_FRAMES, 6)), rng.random((2, _BLOCK_FRAMES))

    def _bursts(self, tool: int, block: int) -> tuple[FloatArray, FloatArray]:
        """Start and end times (s) of the drop-out bursts starting in ``block``."""
        dropout = self.config.dropout
        span_s = _BLOCK_FRAMES / self.config.rate_hz
        rng = self._generator(_KEY_BURSTS, tool, block)
        n = int(rng.poisson(dropout.burst_rate_hz * span_s))
        start = (block + rng.random(n)) * span_s
        return start, start + dropout.burst_duration_s * rng.uniform(0.5, 1.5, n)

    def _in_burst(self, tool: int, indices: npt.NDArray[np.int_]) -> npt.NDArray[np.bool_]:
        dropout = self.config.dropout
        dropped = np.zeros(indices.shape[0], dtype=bool)
        if dropout.burst_rate_hz == 0 or dropout.burst_duration_s == 0 or not indices.size:
            return dropped
        t = indices / self.config.rate_hz
        span_s = _BLOCK_FRAMES / self.config.rate_hz
        look_back = math.ceil(1.5 * dropout.burst_duration_s / span_s)
        first = max(0, int(indices[0]) // _BLOCK_FRAMES - look_back)
        for block in range(first, int(indices[-1]) // _BLOCK_FRAMES + 1):
            for start, end in zip(*self._bursts(tool, block), strict=True):
                dropped |= (t >= start) & (t < end)
        return dropped
