"""Hand–eye calibration (AX = XB) and robot-base registration from fiducials.

The set-up of a tracked robot: the tracker stands in the room, a marker rides on the
robot's flange (or needle guide). For each pose *i* the robot reports
``flange_to_base[i]`` (its forward kinematics) and the tracker ``marker_to_tracker[i]``.
Two transforms are constant and unknown: ``marker_to_flange`` (X, where the marker sits on
the flange) and ``base_to_tracker`` (where the robot stands in the tracker frame)::

    marker_to_tracker[i] = base_to_tracker @ flange_to_base[i] @ marker_to_flange

For two poses i, j, ``A = flange_to_base[i]⁻¹ flange_to_base[j]`` (flange motion) and
``B = marker_to_tracker[i]⁻¹ marker_to_tracker[j]`` (marker motion) satisfy ``A X = X B``.
Rotation by Park & Martin [1]_ (closed form over all pairs), then both translations (X's and
``base_to_tracker``'s) by one linear least-squares fit over the poses. No OpenCV needed; the tests compare with ``cv2.calibrateHandEye`` [2]_
(eye-in-hand form with ``gripper2base = flange_to_base`` and
``target2cam = tracker_to_marker``).

Frames and names follow ``docs/conventions.md`` (``a_to_b``, mm).

References
----------
.. [1] Park FC, Martin BJ. Robot sensor calibration: solving AX = XB on the Euclidean
   group. IEEE Trans Robot Autom. 1994;10(5):717-721 (eqs. 10-15).
.. [2] Tsai RY, Lenz RK. A new technique for fully autonomous and efficient 3D robotics
   hand/eye calibration. IEEE Trans Robot Autom. 1989;5(3):345-358.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from seldinger.errors import BadInputError
from seldinger.navigation.registration import PointRegistration, register_points
from seldinger.navigation.transforms import invert_rigid, validate_rigid

__all__ = [
    "MIN_AXIS_SPREAD",
    "MIN_MOTION_DEG",
    "HandEyeCalibration",
    "HandEyeError",
    "hand_eye_calibration",
    "register_robot_base",
]

Float64Array = npt.NDArray[np.float64]

#: Relative motions whose rotation is smaller than this (degrees) carry no axis information
#: and are left out of the rotation fit (their axis is set by the noise).
MIN_MOTION_DEG = 2.0

#: Second / first singular value of the stacked rotation vectors below which the rotation
#: axes are called parallel: AX = XB then leaves X's rotation about that axis (and the
#: translation along it) undetermined [1]_. 0.05 is ~3° of axis spread at equal angles.
MIN_AXIS_SPREAD = 0.05


class HandEyeError(BadInputError):
    """Poses that cannot determine the hand–eye transform (too few, mismatched, one axis)."""


@dataclass(frozen=True, eq=False)
class HandEyeCalibration:
    """Result of :func:`hand_eye_calibration`.

    Attributes
    ----------
    marker_to_flange : ndarray, shape (4, 4)
        X of ``AX = XB``: the tracked marker in the robot flange frame (mm).
    base_to_tracker : ndarray, shape (4, 4)
        The robot base in the tracker frame (mm), fitted with X over all poses.
    rotation_residuals_deg : ndarray, shape (M,)
        Angle of ``(A X)⁻¹ (X B)`` for each of the M relative motions used.
    translation_residuals_mm : ndarray, shape (M,)
        Length of the translation of ``A X − X B`` for each relative motion.
    pose_residuals_mm : ndarray, shape (N,)
        Distance between the tracked marker origin and its prediction
        ``base_to_tracker @ flange_to_base[i] @ marker_to_flange`` for each pose.
    """

    marker_to_flange: Float64Array
    base_to_tracker: Float64Array
    rotation_residuals_deg: Float64Array
    translation_residuals_mm: Float64Array
    pose_residuals_mm: Float64Array

    @property
    def rms_pose_residual_mm(self) -> float:
        """RMS of :attr:`pose_residuals_mm`."""
        return float(np.sqrt(np.mean(self.pose_residuals_mm**2)))


def _as_poses(poses: npt.ArrayLike, name: str) -> Float64Array:
    array = np.asarray(poses, dtype=np.float64)
    if array.ndim != 3 or array.shape[1:] != (4, 4):
        raise HandEyeError(f"{name} must have shape (N, 4, 4); got {array.shape}.")
    try:
        return validate_rigid(array, name)
    except BadInputError as err:
        raise HandEyeError(str(err)) from err


def _nearest_rotation(matrix: Float64Array) -> Float64Array:
    u, _, vt = np.linalg.svd(matrix)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    return np.asarray(u @ d @ vt, dtype=np.float64)


def hand_eye_calibration(
    flange_to_base: npt.ArrayLike, marker_to_tracker: npt.ArrayLike
) -> HandEyeCalibration:
    """Solve ``A X = X B`` for the marker on the flange, and place the robot base.

    Parameters
    ----------
    flange_to_base : array_like, shape (N, 4, 4)
        Robot flange poses from the robot's kinematics, mm; N ≥ 3.
    marker_to_tracker : array_like, shape (N, 4, 4)
        The tracked marker at the same instants, mm.

    Returns
    -------
    HandEyeCalibration

    Raises
    ------
    HandEyeError
        Fewer than 3 poses, different counts, a matrix that is not rigid, or motions whose
        rotation axes are all (nearly) parallel (see :data:`MIN_AXIS_SPREAD`).

    Notes
    -----
    Rotation (Park & Martin, eqs. 10–15): with ``α = log R_A``, ``β = log R_B`` over all
    pairs ``i < j``, ``M = Σ β αᵀ`` and ``R_X = (MᵀM)^(-1/2) Mᵀ``; here computed as the
    nearest rotation to ``Σ α βᵀ`` (the same orthogonal Procrustes solution, and robust to
    noise). Translation: ``(R_A − I) t_X = R_X t_B − t_A`` stacked and solved by least
    squares. Use poses that rotate about at least two well-separated axes by 20° or more;
    translation error grows as the rotations shrink.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> x = np.eye(4); x[:3, 3] = [10.0, 0.0, 50.0]
    >>> y = np.eye(4); y[:3, 3] = [0.0, 0.0, 1500.0]
    >>> flange = np.stack([np.eye(4)] * 4)
    >>> flange[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.5, (4, 3))).as_matrix()
    >>> flange[:, :3, 3] = rng.normal(0, 100, (4, 3))
    >>> result = hand_eye_calibration(flange, y @ flange @ x)
    >>> (np.round(result.marker_to_flange[:3, 3], 6) + 0.0).tolist()
    [10.0, 0.0, 50.0]
    """
    f = _as_poses(flange_to_base, "flange_to_base")
    m = _as_poses(marker_to_tracker, "marker_to_tracker")
    if len(f) != len(m):
        raise HandEyeError(
            f"flange_to_base and marker_to_tracker must pair up pose for pose; got {len(f)} "
            f"and {len(m)}. Record the tracker at each robot pose."
        )
    if len(f) < 3:
        raise HandEyeError(
            f"hand-eye calibration needs at least 3 poses (2 motions about different axes); "
            f"got {len(f)}. Record 10-20 poses rotating about several axes."
        )
    f_inv, m_inv = invert_rigid(f), invert_rigid(m)
    i, j = np.triu_indices(len(f), k=1)
    a = f_inv[i] @ f[j]
    b = m_inv[i] @ m[j]
    alpha = Rotation.from_matrix(a[:, :3, :3]).as_rotvec()
    beta = Rotation.from_matrix(b[:, :3, :3]).as_rotvec()
    used = np.linalg.norm(alpha, axis=1) >= np.radians(MIN_MOTION_DEG)
    singular = np.linalg.svd(alpha[used], compute_uv=False) if used.sum() >= 2 else np.zeros(3)
    if singular[0] == 0.0 or singular[1] < MIN_AXIS_SPREAD * singular[0]:
        spread = 0.0 if singular[0] == 0.0 else singular[1] / singular[0]
        raise HandEyeError(
            "the robot motions rotate about (nearly) one axis: second/first singular value "
            f"of the rotation vectors {spread:.3g} < {MIN_AXIS_SPREAD:g} "
            f"({int(used.sum())} motions of ≥ {MIN_MOTION_DEG:g}°), so AX = XB leaves the "
            "rotation about that axis undetermined. Add poses that rotate about a second, "
            "well-separated axis (e.g. tilt the flange as well as turning it)."
        )
    rotation = _nearest_rotation(alpha[used].T @ beta[used])
    # base_to_tracker's rotation: chordal mean of R_M[i] R_Xᵀ R_F[i]ᵀ over the poses.
    y_rotation = _nearest_rotation(
        np.sum(m[:, :3, :3] @ rotation.T @ np.swapaxes(f[:, :3, :3], 1, 2), axis=0)
    )
    # Both translations at once from the poses themselves (less noise than pair differences):
    # t_M[i] = R_Y R_F[i] t_X + t_Y + R_Y t_F[i].
    n = len(f)
    lhs = np.zeros((3 * n, 6))
    lhs[:, :3] = (y_rotation @ f[:, :3, :3]).reshape(-1, 3)
    lhs[:, 3:] = np.tile(np.eye(3), (n, 1))
    rhs = (m[:, :3, 3] - f[:, :3, 3] @ y_rotation.T).reshape(-1)
    solution = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    x = np.eye(4)
    x[:3, :3], x[:3, 3] = rotation, solution[:3]
    y = np.eye(4)
    y[:3, :3], y[:3, 3] = y_rotation, solution[3:]
    ax, xb = a @ x, x @ b
    rotation_residuals = np.degrees(
        Rotation.from_matrix(np.swapaxes(ax[:, :3, :3], 1, 2) @ xb[:, :3, :3]).magnitude()
    )
    translation_residuals = np.linalg.norm(ax[:, :3, 3] - xb[:, :3, 3], axis=1)
    predicted = y @ f @ x
    pose_residuals = np.linalg.norm(predicted[:, :3, 3] - m[:, :3, 3], axis=1)
    for array in (x, y, rotation_residuals, translation_residuals, pose_residuals):
        array.setflags(write=False)
    return HandEyeCalibration(
        marker_to_flange=x,
        base_to_tracker=y,
        rotation_residuals_deg=rotation_residuals,
        translation_residuals_mm=translation_residuals,
        pose_residuals_mm=pose_residuals,
    )


def register_robot_base(
    fiducials_ct_lps_mm: npt.ArrayLike,
    fiducials_robot_mm: npt.ArrayLike,
    *,
    target_lps_mm: npt.ArrayLike | None = None,
    fle_mm: float | None = None,
) -> PointRegistration:
    """``robot_to_ct`` from fiducials on the robot base or guide, with FRE and predicted TRE.

    A thin wrapper of :func:`seldinger.navigation.registration.register_points` (Arun /
    Umeyama rigid fit; Fitzpatrick's predicted TRE at ``target_lps_mm``).

    Parameters
    ----------
    fiducials_ct_lps_mm : array_like, shape (N, 3)
        The fiducials picked on the CT, LPS mm; N ≥ 3, not collinear.
    fiducials_robot_mm : array_like, shape (N, 3)
        The same fiducials, same order, in the robot base frame (from its model), mm.
    target_lps_mm : array_like, shape (3,), optional
        Target for the predicted TRE.
    fle_mm : float, optional
        RMS fiducial localisation error (both frames combined); estimated from FRE if None.

    Returns
    -------
    PointRegistration
        ``moving_to_fixed`` is ``robot_to_ct``.

    Raises
    ------
    RegistrationError
        Too few, mismatched, non-finite or collinear fiducials (a :class:`BadInputError`).

    Examples
    --------
    >>> ct = np.array([[0, 0, 0], [100, 0, 0], [0, 80, 0], [0, 0, 60]], dtype=float)
    >>> registration = register_robot_base(ct, ct - [0.0, 0.0, 200.0])
    >>> (np.round(registration.moving_to_fixed[:3, 3], 9) + 0.0).tolist()
    [0.0, 0.0, 200.0]
    """
    return register_points(
        fiducials_ct_lps_mm, fiducials_robot_mm, target_mm=target_lps_mm, fle_mm=fle_mm
    )
