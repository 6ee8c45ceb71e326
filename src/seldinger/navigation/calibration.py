"""Tool calibration: pivot (tip offset) and spin (shaft axis) of a tracked needle or stylus.

Input poses are tracker measurements ``tool_to_reference`` (ToolToReference, or
ToolToTracker when no reference sensor is used): 4×4 rigid transforms, translation in mm,
that map points from the tool (sensor) frame into the reference frame.

The algorithms follow IGSIO/PLUS (``vtkIGSIOPivotCalibrationAlgo``,
``vtkIGSIOSpinCalibrationAlgo``); see ``docs/navigation_registration.md``.

References
----------
.. [1] Lasso A et al. PLUS: open-source toolkit for ultrasound-guided intervention
   systems. IEEE Trans Biomed Eng. 2014;61(10):2527-2537.
.. [2] Yaniv Z. Which pivot calibration? Proc SPIE Medical Imaging 2015;9415:941527.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import linalg
from scipy.spatial.transform import Rotation

from seldinger.errors import BadInputError
from seldinger.navigation.transforms import validate_rigid
from seldinger.plan import PivotCalibrationRecord, SpinCalibrationRecord

__all__ = [
    "MIN_PIVOT_POSES",
    "MIN_PIVOT_SPREAD_DEG",
    "MIN_SPIN_ROTATION_DEG",
    "CalibrationError",
    "PivotCalibration",
    "SpinCalibration",
    "pivot_calibration",
    "spin_calibration",
    "tool_tip_to_tool",
]

logger = logging.getLogger(__name__)

Float64Array = npt.NDArray[np.float64]

#: Six unknowns need two poses in theory; four is the least that leaves redundancy to see
#: an outlier and to estimate a residual.
MIN_PIVOT_POSES = 4
#: Least RMS rotation spread (about the worst-excited axis, see :func:`pivot_calibration`).
#: A uniform wobble of ±9° about an axis has an RMS of 5.2°. SlicerIGT asks for ≥ 5° between
#: samples; below this the tip offset along the weak axis is amplified noise.
MIN_PIVOT_SPREAD_DEG = 5.0
#: Least total spin (largest angle between the first pose and any other) for spin calibration.
MIN_SPIN_ROTATION_DEG = 30.0
#: Median of the chi distribution with 3 degrees of freedom: the median 3-D distance of an
#: isotropic Gaussian error of unit per-axis sigma. Converts a median residual to a sigma.
_CHI3_MEDIAN = 1.5381722544550522


class CalibrationError(BadInputError):
    """Poses that cannot give a trustworthy calibration (too few, too little motion, …)."""


def _as_poses(tool_to_reference: npt.ArrayLike, minimum: int) -> Float64Array:
    poses = validate_rigid(tool_to_reference, "tool_to_reference")
    if poses.ndim != 3:
        raise CalibrationError(
            f"tool_to_reference must be a stack of poses, shape (n, 4, 4); got {poses.shape}."
        )
    if poses.shape[0] < minimum:
        raise CalibrationError(
            f"tool_to_reference holds {poses.shape[0]} poses; calibration needs at least "
            f"{minimum}. Record more poses (a few seconds at the tracker rate gives hundreds)."
        )
    return poses


def _spread_deg(rotations: Float64Array) -> float:
    """RMS rotation spread about the worst-excited axis, in degrees.

    ``M = mean (R_i − R̄)ᵀ(R_i − R̄)`` with ``R̄`` the arithmetic mean. For small rotations
    ``M ≈ tr(C) I − C`` where ``C`` is the covariance of the rotation vectors, so
    ``sqrt(λ_min(M))`` is the RMS rotation (rad) about the least-excited direction, and 0
    when every pose rotates about one axis: the case where the tip offset along that
    axis cannot be recovered (``R_i n = n`` puts ``(n, n)`` in the null space of the system).
    """
    centred = rotations - rotations.mean(axis=0)
    m = np.einsum("nji,njk->ik", centred, centred) / len(rotations)
    smallest = float(linalg.eigvalsh(m)[0])
    return float(np.degrees(np.sqrt(max(smallest, 0.0))))


def _solve_pivot(poses: Float64Array) -> tuple[Float64Array, Float64Array]:
    # [R_i  −I] [p_tip; p_pivot] = −t_i, stacked into a 3N×6 least-squares system.
    n = len(poses)
    a = np.empty((3 * n, 6))
    a[:, :3] = poses[:, :3, :3].reshape(3 * n, 3)
    a[:, 3:] = np.tile(-np.eye(3), (n, 1))
    b = -poses[:, :3, 3].reshape(3 * n)
    solution = linalg.lstsq(a, b)[0]
    return solution[:3], solution[3:]


def _pivot_residuals(
    poses: Float64Array, tip_mm: Float64Array, pivot_mm: Float64Array
) -> Float64Array:
    tips = poses[:, :3, :3] @ tip_mm + poses[:, :3, 3]
    return np.linalg.norm(tips - pivot_mm, axis=1)


@dataclass(frozen=True, eq=False)
class PivotCalibration:
    """Result of :func:`pivot_calibration`.

    Attributes
    ----------
    tip_offset_mm : ndarray, shape (3,)
        Tool tip in the tool (sensor) frame, mm.
    pivot_point_mm : ndarray, shape (3,)
        The pivot (divot) point in the reference frame, mm.
    rms_mm, mean_mm, max_mm : float
        RMS (SlicerIGT), mean (IGSIO/PLUS) and largest distance between each used pose's
        reconstructed tip and the pivot point.
    residuals_mm : ndarray, shape (n,)
        That distance for every input pose, rejected ones included.
    rejected : tuple of int
        Indices of the poses rejected as outliers.
    threshold_mm : float
        The final outlier threshold on ``residuals_mm``.
    spread_deg : float
        RMS rotation spread of the used poses about their least-excited axis.
    """

    tip_offset_mm: Float64Array
    pivot_point_mm: Float64Array
    rms_mm: float
    mean_mm: float
    max_mm: float
    residuals_mm: Float64Array
    rejected: tuple[int, ...]
    threshold_mm: float
    spread_deg: float

    @property
    def n_used(self) -> int:
        """Number of poses the final solution used."""
        return len(self.residuals_mm) - len(self.rejected)

    @property
    def tool_tip_to_tool(self) -> Float64Array:
        """ToolTipToTool: origin at the tip, +Z from the tool origin toward the tip.

        See :func:`tool_tip_to_tool`; run :func:`spin_calibration` for a measured shaft axis.
        """
        return tool_tip_to_tool(self.tip_offset_mm)

    def to_record(self, record_id: str | None = None, **labels: Any) -> PivotCalibrationRecord:
        """The plan's record (``labels``: name, tool, reference, source, time_utc)."""
        return PivotCalibrationRecord(id=record_id, **labels, **self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the result; mm to 1 µm."""
        return {
            "method": "pivot_algebraic_one_step",
            "tip_offset_mm": np.round(self.tip_offset_mm, 3).tolist(),
            "pivot_point_mm": np.round(self.pivot_point_mm, 3).tolist(),
            "rms_mm": round(self.rms_mm, 3),
            "mean_mm": round(self.mean_mm, 3),
            "max_mm": round(self.max_mm, 3),
            "n_poses": len(self.residuals_mm),
            "n_used": self.n_used,
            "rejected": list(self.rejected),
            "threshold_mm": round(self.threshold_mm, 3),
            "spread_deg": round(self.spread_deg, 2),
            "residuals_mm": np.round(self.residuals_mm, 3).tolist(),
            "tool_tip_to_tool": np.round(self.tool_tip_to_tool, 6).tolist(),
        }


def pivot_calibration(
    tool_to_reference: npt.ArrayLike,
    *,
    outlier_sigma: float = 3.0,
    outlier_floor_mm: float = 0.5,
    min_spread_deg: float = MIN_PIVOT_SPREAD_DEG,
    max_iterations: int = 20,
) -> PivotCalibration:
    """Tip offset of a tool pivoted about its tip in a divot (algebraic one-step).

    Solves ``R_i p_tip + t_i = p_pivot`` for all poses as the 3N×6 linear least-squares
    system ``[R_i  −I] [p_tip; p_pivot] = −t_i`` (IGSIO/PLUS), then rejects outlier poses
    and solves again until the set of used poses stops changing.

    A pose is an outlier when its residual ``‖R_i p_tip + t_i − p_pivot‖`` exceeds
    ``max(outlier_sigma · s, outlier_floor_mm)``, where ``s = √3 · median(e) / 1.538`` is a
    robust RMS of the used poses' residuals (the median of a 3-D Gaussian error's length is
    1.538 per-axis sigmas). Unlike IGSIO, which drops single rows of the system, whole poses
    are rejected: a bad pose (a slipped tip, a distorted EM reading) is bad in all three axes.
    Rejected poses are re-admitted if a later solution fits them.

    Parameters
    ----------
    tool_to_reference : array_like, shape (n, 4, 4)
        Tool poses (ToolToReference or ToolToTracker), translation in mm; n ≥ 4.
    outlier_sigma : float
        Threshold in robust RMS residuals (3 rejects a Gaussian inlier with p ≈ 1e-5).
    outlier_floor_mm : float
        Never reject a pose closer than this to the pivot (noise-free data has s ≈ 0).
    min_spread_deg : float
        Least RMS rotation about the least-excited axis (see Raises).
    max_iterations : int
        Cap on reject-and-solve rounds.

    Returns
    -------
    PivotCalibration

    Raises
    ------
    CalibrationError
        Fewer than :data:`MIN_PIVOT_POSES` poses (before or after rejection), or rotations
        that do not span the tip offset: the RMS rotation about the least-excited axis is
        below ``min_spread_deg`` (e.g. the tool only spun about one axis, or barely moved).
    TransformError
        A pose is not a rigid transform.

    Examples
    --------
    >>> from scipy.spatial.transform import Rotation
    >>> rotations = Rotation.from_rotvec(np.radians(
    ...     [[20, 0, 0], [-20, 0, 0], [0, 20, 0], [0, -20, 0], [15, 15, 30]]))
    >>> poses = np.tile(np.eye(4), (5, 1, 1))
    >>> poses[:, :3, :3] = rotations.as_matrix()
    >>> poses[:, :3, 3] = [5.0, 5.0, 5.0] - rotations.apply([0.0, 0.0, 100.0])
    >>> result = pivot_calibration(poses)
    >>> (np.round(result.tip_offset_mm, 6) + 0.0).tolist(), np.round(result.pivot_point_mm, 6).tolist()
    ([0.0, 0.0, 100.0], [5.0, 5.0, 5.0])
    """
    poses = _as_poses(tool_to_reference, MIN_PIVOT_POSES)
    if outlier_sigma <= 0 or outlier_floor_mm < 0 or max_iterations < 1:
        raise BadInputError(
            "outlier_sigma must be > 0, outlier_floor_mm ≥ 0 and max_iterations ≥ 1; got "
            f"{outlier_sigma}, {outlier_floor_mm}, {max_iterations}."
        )
    spread = _spread_deg(poses[:, :3, :3])
    if spread < min_spread_deg:
        raise CalibrationError(
            f"tool_to_reference: the poses rotate too little for a pivot calibration (RMS "
            f"rotation about the least-excited axis {spread:.2f}° < {min_spread_deg:g}°). "
            "Keep the tip in the divot and tilt the tool in a cone of ±20–30° in all "
            "directions (not only spinning it about its own axis)."
        )
    used = np.ones(len(poses), dtype=bool)
    threshold = np.inf
    for _ in range(max_iterations):
        tip, pivot = _solve_pivot(poses[used])
        residuals = _pivot_residuals(poses, tip, pivot)
        robust_rms = np.sqrt(3.0) * float(np.median(residuals[used])) / _CHI3_MEDIAN
        threshold = max(outlier_sigma * robust_rms, outlier_floor_mm)
        new_used = residuals <= threshold
        if np.array_equal(new_used, used):
            break
        used = new_used
        if used.sum() < MIN_PIVOT_POSES:
            raise CalibrationError(
                f"tool_to_reference: only {int(used.sum())} of {len(poses)} poses are within "
                f"{threshold:.2f} mm of the pivot; at least {MIN_PIVOT_POSES} are needed. "
                "Check that the tip stayed in the divot, or raise outlier_floor_mm."
            )
    else:
        logger.debug("pivot outlier rejection stopped after %d rounds", max_iterations)
    # The loop leaves `used` as the set the last solution was fitted on, or the set it
    # selected in the final round: re-solve so the solution and the statistics agree.
    tip, pivot = _solve_pivot(poses[used])
    residuals = _pivot_residuals(poses, tip, pivot)
    used_spread = _spread_deg(poses[used, :3, :3])
    if used_spread < min_spread_deg:
        raise CalibrationError(
            f"tool_to_reference: after rejecting {int((~used).sum())} outlier poses the rest "
            f"rotate too little (RMS {used_spread:.2f}° < {min_spread_deg:g}°). Record again, "
            "tilting the tool in all directions."
        )
    inlier = residuals[used]
    rejected = tuple(int(i) for i in np.flatnonzero(~used))
    residuals.setflags(write=False)
    tip.setflags(write=False)
    pivot.setflags(write=False)
    return PivotCalibration(
        tip_offset_mm=tip,
        pivot_point_mm=pivot,
        rms_mm=float(np.sqrt(np.mean(inlier**2))),
        mean_mm=float(inlier.mean()),
        max_mm=float(inlier.max()),
        residuals_mm=residuals,
        rejected=rejected,
        threshold_mm=float(threshold),
        spread_deg=used_spread,
    )


def tool_tip_to_tool(
    tip_offset_mm: npt.ArrayLike, shaft_axis_tool: npt.ArrayLike | None = None
) -> Float64Array:
    """ToolTipToTool transform: a frame at the tool tip whose +Z runs along the shaft.

    PLUS convention: the origin is the tip, −Z points from the tip back toward the tool
    (sensor) origin, so **+Z is the direction of insertion**; X is the tool's X made
    orthogonal to Z (the tool's Y when X is nearly parallel to Z).

    Parameters
    ----------
    tip_offset_mm : array_like, shape (3,)
        Tip in the tool frame, mm (from :func:`pivot_calibration`).
    shaft_axis_tool : array_like, shape (3,), optional
        Shaft direction in the tool frame (from :func:`spin_calibration`). Its sign is
        flipped if needed so that it points from the tool origin toward the tip. Without
        it, +Z is the direction of ``tip_offset_mm`` (PLUS pivot calibration does the same).

    Returns
    -------
    ndarray, shape (4, 4)
        Maps points from the tip frame into the tool frame.

    Examples
    --------
    >>> tool_tip_to_tool([0.0, 0.0, 150.0]).tolist()[2]
    [0.0, 0.0, 1.0, 150.0]
    """
    tip = np.asarray(tip_offset_mm, dtype=np.float64)
    if tip.shape != (3,) or not np.isfinite(tip).all():
        raise BadInputError(f"tip_offset_mm must be 3 finite numbers (mm); got {tip}.")
    if shaft_axis_tool is None:
        length = float(np.linalg.norm(tip))
        if length < 1e-6:
            raise CalibrationError(
                "tip_offset_mm is at the tool origin, so it gives no shaft direction; pass "
                "shaft_axis_tool from spin_calibration."
            )
        z = tip / length
    else:
        axis = np.asarray(shaft_axis_tool, dtype=np.float64)
        norm = float(np.linalg.norm(axis)) if axis.shape == (3,) else 0.0
        if norm == 0.0 or not np.isfinite(norm):
            raise BadInputError(f"shaft_axis_tool must be a non-zero 3-vector; got {axis}.")
        z = axis / norm
        if float(z @ tip) < 0.0:
            z = -z
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    if np.linalg.norm(x) < 0.1:  # tool X nearly along the shaft: use tool Y
        x = np.array([0.0, 1.0, 0.0]) - z[1] * z
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, tip
    return m


@dataclass(frozen=True, eq=False)
class SpinCalibration:
    """Result of :func:`spin_calibration`.

    Attributes
    ----------
    axis_tool : ndarray, shape (3,)
        Unit shaft (spin) axis in the tool frame. Its sign points toward the tip when a tip
        offset was given; otherwise its largest component is positive.
    error : float
        IGSIO's ``sqrt(λ_min / N)``: RMS distance of the unit axis from the ideal
        rotation axis (dimensionless); ``error_deg = arccos(1 − error²/2)``.
    error_deg : float
        The same as an angle, degrees.
    rotation_range_deg : float
        Largest rotation between the first pose and any other.
    n_poses : int
        Number of poses used.
    tool_tip_to_tool : ndarray, shape (4, 4) or None
        ToolTipToTool with +Z along ``axis_tool`` (see :func:`tool_tip_to_tool`), when a tip
        offset was given.
    """

    axis_tool: Float64Array
    error: float
    error_deg: float
    rotation_range_deg: float
    n_poses: int
    tool_tip_to_tool: Float64Array | None

    def to_record(self, record_id: str | None = None, **labels: Any) -> SpinCalibrationRecord:
        """The plan's record (``labels``: name, tool, reference, source, time_utc)."""
        return SpinCalibrationRecord(id=record_id, **labels, **self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the result."""
        return {
            "method": "spin_igsio",
            "axis_tool": np.round(self.axis_tool, 6).tolist(),
            "error": round(self.error, 6),
            "error_deg": round(self.error_deg, 3),
            "rotation_range_deg": round(self.rotation_range_deg, 2),
            "n_poses": self.n_poses,
            "tool_tip_to_tool": (
                None
                if self.tool_tip_to_tool is None
                else np.round(self.tool_tip_to_tool, 6).tolist()
            ),
        }


def spin_calibration(
    tool_to_reference: npt.ArrayLike,
    *,
    tip_offset_mm: npt.ArrayLike | None = None,
    min_rotation_deg: float = MIN_SPIN_ROTATION_DEG,
) -> SpinCalibration:
    """Shaft axis of a needle spun about its own axis (IGSIO spin calibration).

    For consecutive poses the relative rotation ``R_rel = R_iᵀ R_{i−1}`` (the rotation of
    ``T_i⁻¹ T_{i−1}``, expressed in the tool frame) leaves the spin axis fixed, so the axis
    is the eigenvector of the smallest eigenvalue of ``A = Σ (R_rel − I)ᵀ(R_rel − I)``.

    Parameters
    ----------
    tool_to_reference : array_like, shape (n, 4, 4)
        Tool poses while the needle is spun about its shaft (its position may drift).
    tip_offset_mm : array_like, shape (3,), optional
        Tip in the tool frame (from :func:`pivot_calibration`): orients the axis toward the
        tip and gives ``tool_tip_to_tool``.
    min_rotation_deg : float
        The largest rotation from the first pose must reach this.

    Returns
    -------
    SpinCalibration

    Raises
    ------
    CalibrationError
        Fewer than 3 poses, or the tool turned less than ``min_rotation_deg``.
    """
    poses = _as_poses(tool_to_reference, 3)
    rotations = poses[:, :3, :3]
    range_deg = float(
        np.degrees(
            (Rotation.from_matrix(rotations[0]).inv() * Rotation.from_matrix(rotations))
            .magnitude()
            .max()
        )
    )
    if range_deg < min_rotation_deg:
        raise CalibrationError(
            f"tool_to_reference: the tool turned at most {range_deg:.1f}° from its first pose; "
            f"spin calibration needs ≥ {min_rotation_deg:g}°. Roll the needle about its shaft "
            "through at least a quarter turn, back and forth."
        )
    relative = np.swapaxes(rotations[1:], 1, 2) @ rotations[:-1] - np.eye(3)
    a = np.einsum("nji,njk->ik", relative, relative)
    eigenvalues, eigenvectors = linalg.eigh(a)
    axis = eigenvectors[:, 0]
    n_pairs = len(relative)
    error = float(np.sqrt(max(eigenvalues[0], 0.0) / n_pairs))
    error_deg = float(np.degrees(np.arccos(np.clip(1.0 - error**2 / 2.0, -1.0, 1.0))))
    tip_to_tool = None
    if tip_offset_mm is not None:
        tip = np.asarray(tip_offset_mm, dtype=np.float64)
        if float(axis @ tip) < 0.0:
            axis = -axis
        tip_to_tool = tool_tip_to_tool(tip, axis)
        tip_to_tool.setflags(write=False)
    elif axis[np.argmax(np.abs(axis))] < 0.0:
        axis = -axis
    axis = axis / np.linalg.norm(axis)
    axis.setflags(write=False)
    return SpinCalibration(
        axis_tool=axis,
        error=error,
        error_deg=error_deg,
        rotation_range_deg=range_deg,
        n_poses=len(poses),
        tool_tip_to_tool=tip_to_tool,
    )
