"""Forward and inverse kinematics of the robot models, in CT LPS millimetres.

The **guide pose** of a robot is a 4x4 ``guide_to_ct``: its third column is the unit needle
direction (from entry toward target), its translation the guide's tip, on the needle line
(``standoff_mm`` outside the entry). Joints are mm (prismatic) and degrees (revolute).

- ``needle_guide_5dof``: written here in closed form. No library ships a model of a
  remote-centre-of-motion needle guide, and its kinematics are simple: three prismatic axes
  along the base x, y, z place the RCM, then ``Rz(azimuth) @ Ry(elevation)`` tilts the
  guide's axis (base z at zero) about it.
- ``serial_arm_guide``: roboticstoolbox's DH model (``rtb.models.DH.UR5``, metres) for
  forward kinematics; the inverse in closed form for UR-type arms (:mod:`.ur_ik`, all
  eight branches, vectorised), else roboticstoolbox's Levenberg-Marquardt ``ik_LM`` from
  several seeds. The needle's roll about its own axis is free, so several rolls are tried.

See docs/conventions.md for frames and names, docs/robot.md for the models.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.robot.models import RobotKind, RobotModel
from seldinger.robot.ur_ik import ur_forward_many, ur_geometry, ur_inverse_many

__all__ = [
    "IK_ANGLE_TOL_DEG",
    "IK_DISTANCE_TOL_MM",
    "IkResult",
    "arm_candidates_many",
    "arm_joint_origins_many",
    "arm_robot",
    "axis_errors",
    "forward",
    "frame_from_axis",
    "frames_from_axes",
    "guide_poses_many",
    "inverse",
    "inverse_guide_many",
]

#: Acceptance of an IK solution (issue 18): the guide axis passes within this of the entry
#: and the target, and is this parallel to entry -> target.
IK_DISTANCE_TOL_MM = 0.1
IK_ANGLE_TOL_DEG = 0.05
#: Rolls of the guide about the needle axis tried for the arm, degrees (the roll is free).
ARM_ROLLS_DEG = (0.0, 90.0, 180.0, 270.0, 45.0, 135.0, 225.0, 315.0)
#: Seeds for the arm's IK, degrees: elbow-up poses reaching forward and down.
ARM_SEEDS_DEG = (
    (0.0, -90.0, 90.0, -90.0, -90.0, 0.0),
    (0.0, -60.0, -90.0, -120.0, 90.0, 0.0),
    (180.0, -120.0, 90.0, -60.0, -90.0, 0.0),
    (90.0, -90.0, 90.0, 0.0, 90.0, 0.0),
    (-90.0, -90.0, -90.0, 0.0, -90.0, 0.0),
)
M_PER_MM = 1e-3

Matrix44 = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class IkResult:
    """An inverse-kinematics answer: ``joints`` (None when not reachable) and why not.

    ``reason`` is None when reachable, else ``"workspace"`` (the pose lies out of the
    robot's reach) or ``"joint_limit"`` (reached only beyond a joint's limit).
    """

    joints: npt.NDArray[np.float64] | None
    reason: str | None
    guide_pose: Matrix44


def _unit(vector: npt.ArrayLike, what: str) -> npt.NDArray[np.float64]:
    v = np.asarray(vector, dtype=float)
    norm = float(np.linalg.norm(v))
    if not norm > 1e-9:
        raise BadInputError(f"{what} must be a non-zero vector; got {v.tolist()}.")
    return v / norm


def frames_from_axes(
    directions: npt.ArrayLike, origins_lps_mm: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Rigid 4x4s, shape (N, 4, 4), whose z columns are ``directions`` (N, 3; normalised)
    and translations ``origins_lps_mm`` (N, 3); x is perpendicular to z and to LPS x (or y)."""
    z = np.atleast_2d(np.asarray(directions, dtype=float))
    norms = np.linalg.norm(z, axis=1)
    if np.any(~(norms > 1e-9)):
        raise BadInputError("each direction must be a non-zero vector.")
    z = z / norms[:, None]
    helper = np.zeros_like(z)
    use_x = np.abs(z[:, 0]) < 0.9
    helper[use_x, 0] = 1.0
    helper[~use_x, 1] = 1.0
    x = np.cross(helper, z)
    x /= np.linalg.norm(x, axis=1)[:, None]
    frames = np.zeros((len(z), 4, 4))
    frames[:, :3, 0], frames[:, :3, 1], frames[:, :3, 2] = x, np.cross(z, x), z
    frames[:, :3, 3] = np.atleast_2d(np.asarray(origins_lps_mm, dtype=float))
    frames[:, 3, 3] = 1.0
    return frames


def frame_from_axis(direction: npt.ArrayLike, origin_lps_mm: npt.ArrayLike) -> Matrix44:
    """A rigid 4x4 whose z column is ``direction`` (normalised) and translation ``origin``.

    Examples
    --------
    >>> f = frame_from_axis([0.0, 0.0, 2.0], [1.0, 2.0, 3.0])
    >>> f[:3, 2].tolist(), f[:3, 3].tolist()
    ([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])
    """
    return frames_from_axes(
        np.asarray(direction, dtype=float)[None], np.asarray(origin_lps_mm, dtype=float)[None]
    )[0]


def axis_errors(
    guide_pose: Matrix44, entry_lps_mm: npt.ArrayLike, target_lps_mm: npt.ArrayLike
) -> tuple[float, float, float]:
    """How far a guide's axis misses a path: (entry distance mm, target distance mm, angle deg).

    The distances are from each point to the line through the pose's translation along its
    z column; the angle is between that column and entry -> target.
    """
    entry, target = np.asarray(entry_lps_mm, float), np.asarray(target_lps_mm, float)
    axis, origin = guide_pose[:3, 2], guide_pose[:3, 3]

    def miss(point: npt.NDArray[np.float64]) -> float:
        return float(np.linalg.norm(np.cross(point - origin, axis)))

    cosine = float(np.dot(axis, _unit(target - entry, "target_lps_mm - entry_lps_mm")))
    return miss(entry), miss(target), math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


# --- the 5-DOF guide, closed form ------------------------------------------------------------


def guide_poses_many(joints: npt.ArrayLike, base_to_ct: Matrix44) -> npt.NDArray[np.float64]:
    """The 5-DOF guide's poses (N, 4, 4) at joints (N, 5): x, y, z mm, azimuth, elevation deg."""
    q = np.atleast_2d(np.asarray(joints, dtype=float))
    az, el = np.radians(q[:, 3]), np.radians(q[:, 4])
    ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(el), np.sin(el)
    rcm_to_base = np.zeros((len(q), 4, 4))
    # Rz(azimuth) @ Ry(elevation), then the RCM's translation
    rcm_to_base[:, 0, :] = np.column_stack([ca * ce, -sa, ca * se, q[:, 0]])
    rcm_to_base[:, 1, :] = np.column_stack([sa * ce, ca, sa * se, q[:, 1]])
    rcm_to_base[:, 2, :] = np.column_stack([-se, np.zeros_like(se), ce, q[:, 2]])
    rcm_to_base[:, 3, 3] = 1.0
    return np.asarray(np.einsum("ij,njk->nik", base_to_ct, rcm_to_base))


def _guide_forward(joints: npt.NDArray[np.float64], base_to_ct: Matrix44) -> Matrix44:
    return guide_poses_many(joints[None], base_to_ct)[0]


def inverse_guide_many(
    model: RobotModel,
    entries_lps_mm: npt.ArrayLike,
    targets_lps_mm: npt.ArrayLike,
    base_to_ct: Matrix44,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.object_]]:
    """Closed-form IK of the 5-DOF guide for N paths at once (RCM at each entry).

    Parameters
    ----------
    entries_lps_mm, targets_lps_mm : array-like, shape (N, 3)
    base_to_ct : ndarray, shape (4, 4)

    Returns
    -------
    joints : ndarray, shape (N, 5)
        x, y, z (mm), azimuth, elevation (degrees), whether within limits or not.
    reasons : ndarray of object, shape (N,)
        None (reachable), "workspace" (a prismatic axis out of range: the RCM cannot be put
        at the entry) or "joint_limit" (the guide cannot tilt that far).
    """
    entries = np.atleast_2d(np.asarray(entries_lps_mm, dtype=float))
    directions = np.atleast_2d(np.asarray(targets_lps_mm, dtype=float)) - entries
    norms = np.linalg.norm(directions, axis=1)
    if np.any(norms < 1e-9):
        raise BadInputError("each target_lps_mm must differ from its entry_lps_mm.")
    ct_to_base = np.linalg.inv(base_to_ct)
    rcm = entries @ ct_to_base[:3, :3].T + ct_to_base[:3, 3]
    d = (directions / norms[:, None]) @ ct_to_base[:3, :3].T
    elevation = np.degrees(np.arccos(np.clip(d[:, 2], -1.0, 1.0)))
    flat = np.hypot(d[:, 0], d[:, 1]) < 1e-12  # along base z: azimuth is free, take 0
    azimuth = np.where(flat, 0.0, np.degrees(np.arctan2(d[:, 1], d[:, 0])))
    joints = np.column_stack([rcm, azimuth, elevation])
    outside = (joints < model.lower) | (joints > model.upper)
    reasons = np.full(len(joints), None, dtype=object)
    reasons[outside[:, 3:].any(axis=1)] = "joint_limit"
    reasons[outside[:, :3].any(axis=1)] = "workspace"
    return joints, reasons


# --- the serial arm, roboticstoolbox ---------------------------------------------------------


@functools.lru_cache(maxsize=4)
def arm_robot(rtb_model: str) -> Any:
    """roboticstoolbox's DH model ``rtb.models.DH.<rtb_model>`` (metres, radians), cached."""
    import roboticstoolbox as rtb

    factory = getattr(rtb.models.DH, rtb_model, None)
    if factory is None:
        raise BadInputError(
            f"rtb_model {rtb_model!r} is not a roboticstoolbox DH model; use one of "
            "rtb.models.DH (e.g. 'UR5')."
        )
    return factory()


def _arm_forward(
    model: RobotModel, joints: npt.NDArray[np.float64], base_to_ct: Matrix44
) -> Matrix44:
    assert model.rtb_model is not None and model.tool_to_flange is not None  # by model_from_dict
    flange_to_base = np.array(arm_robot(model.rtb_model).fkine(np.radians(joints)).A)
    flange_to_base[:3, 3] /= M_PER_MM
    return base_to_ct @ flange_to_base @ model.tool_to_flange


def arm_candidates_many(
    model: RobotModel,
    guide_poses: npt.ArrayLike,
    base_to_ct: Matrix44,
    rolls_deg: tuple[float, ...] = ARM_ROLLS_DEG,
    first_only: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Every closed-form joint solution of a UR-type arm for N guide poses, over the rolls
    ``rolls_deg`` (the needle's roll is free): ``(N, 8·rolls, 6)`` degrees (NaN: no
    solution on that branch) and whether each is within the joint limits. ``first_only``:
    branch 0 of each roll only (the others NaN), when most poses are expected to take it.

    Raises
    ------
    ValueError
        If the model's arm is not of the UR form (then :func:`inverse` iterates instead).
    """
    assert model.rtb_model is not None and model.tool_to_flange is not None
    geometry = ur_geometry(arm_robot(model.rtb_model))
    poses = np.asarray(guide_poses, dtype=float).reshape(-1, 4, 4)
    ct_to_base = np.linalg.inv(base_to_ct)
    flange_to_tool = np.linalg.inv(model.tool_to_flange)
    out = []
    # ct_to_base @ pose: one (4N x 4) product rather than N small ones
    in_base = (poses.transpose(0, 2, 1).reshape(-1, 4) @ ct_to_base.T).reshape(-1, 4, 4)
    in_base = in_base.transpose(0, 2, 1)
    for roll in rolls_deg:
        c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        rolled = np.eye(4)
        rolled[:2, :2] = [[c, -s], [s, c]]
        flange = (in_base.reshape(-1, 4) @ (rolled @ flange_to_tool)).reshape(-1, 4, 4)
        flange[:, :3, 3] *= M_PER_MM
        out.append(np.degrees(ur_inverse_many(geometry, flange, first_only)))
    joints = np.concatenate(out, axis=1)
    with np.errstate(invalid="ignore"):
        inside = np.all((joints >= model.lower) & (joints <= model.upper), axis=2)
    return joints, inside


def arm_joint_origins_many(
    model: RobotModel, joints_deg: npt.ArrayLike, base_to_ct: Matrix44
) -> npt.NDArray[np.float64]:
    """The base and the six joint frames' origins of a UR-type arm for M joint vectors:
    (M, 7, 3) CT LPS mm (straight segments between them outline the links)."""
    assert model.rtb_model is not None
    geometry = ur_geometry(arm_robot(model.rtb_model))
    frames = ur_forward_many(geometry, np.radians(np.asarray(joints_deg, dtype=float)))
    return np.asarray(frames[..., :3, 3] / M_PER_MM @ base_to_ct[:3, :3].T + base_to_ct[:3, 3])


def _arm_closed_form(
    model: RobotModel, guide_pose: Matrix44, base_to_ct: Matrix44, q0_deg: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.float64] | None, str | None]:
    joints, inside = arm_candidates_many(model, guide_pose[None], base_to_ct)
    if not inside[0].any():
        return None, "joint_limit" if np.isfinite(joints[0]).all(axis=1).any() else "workspace"
    valid = joints[0][inside[0]]
    if q0_deg is None:
        return valid[0], None
    wrapped = (valid - np.asarray(q0_deg, dtype=float) + 180.0) % 360.0 - 180.0
    return valid[int(np.argmin(np.abs(wrapped).sum(axis=1)))], None


def _arm_inverse(
    model: RobotModel,
    guide_pose: Matrix44,
    base_to_ct: Matrix44,
    seeds_deg: tuple[tuple[float, ...], ...] = ARM_SEEDS_DEG,
) -> tuple[npt.NDArray[np.float64] | None, str | None]:
    assert model.rtb_model is not None and model.tool_to_flange is not None
    robot = arm_robot(model.rtb_model)
    flange_to_tool = np.linalg.inv(model.tool_to_flange)
    ct_to_base = np.linalg.inv(base_to_ct)
    lower, upper = np.radians(model.lower), np.radians(model.upper)
    robot.qlim = np.vstack([lower, upper])
    reach_m = float(sum(abs(link.a) + abs(link.d) for link in robot.links[1:]))
    shoulder_m = np.array([0.0, 0.0, robot.links[0].d])
    any_solution = False
    for roll in ARM_ROLLS_DEG:
        c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        rolled = np.eye(4)
        rolled[:2, :2] = [[c, -s], [s, c]]
        flange = ct_to_base @ guide_pose @ rolled @ flange_to_tool
        flange[:3, 3] *= M_PER_MM
        if np.linalg.norm(flange[:3, 3] - shoulder_m) > reach_m:
            return None, "workspace"  # the flange's place is the same for every roll
        for seed in seeds_deg:
            solution = robot.ik_LM(
                flange, q0=np.radians(seed), ilimit=60, slimit=1, tol=1e-14, joint_limits=False
            )
            if not solution.success:
                continue
            any_solution = True
            q = (np.asarray(solution.q) + math.pi) % (2.0 * math.pi) - math.pi  # wrap to [-pi, pi)
            if np.all(q >= lower) and np.all(q <= upper):
                return np.degrees(q), None
    return None, "joint_limit" if any_solution else "workspace"


# --- public ---------------------------------------------------------------------------------


def forward(
    model: RobotModel, joints: npt.ArrayLike, base_to_ct: Matrix44 | None = None
) -> Matrix44:
    """The guide pose ``guide_to_ct`` (4x4, LPS mm) at ``joints`` (mm / degrees).

    ``base_to_ct`` defaults to the model's ``base_to_mount`` (the mount frame taken as CT).

    Examples
    --------
    >>> from seldinger.robot.models import load_model
    >>> pose = forward(load_model("guide_5dof"), [0.0, 0.0, 100.0, 0.0, 0.0])
    >>> pose[:3, 2].round(6).tolist(), pose[:3, 3].round(6).tolist()
    ([0.0, 1.0, 0.0], [0.0, -150.0, 0.0])
    """
    q = np.asarray(joints, dtype=float)
    if q.shape != (len(model.joints),):
        raise BadInputError(
            f"joints must have {len(model.joints)} values for robot {model.name!r}; "
            f"got shape {q.shape}."
        )
    base = model.base_to_mount if base_to_ct is None else np.asarray(base_to_ct, dtype=float)
    if model.kind is RobotKind.NEEDLE_GUIDE_5DOF:
        return _guide_forward(q, base)
    return _arm_forward(model, q, base)


def inverse(
    model: RobotModel,
    entry_lps_mm: npt.ArrayLike,
    target_lps_mm: npt.ArrayLike,
    base_to_ct: Matrix44 | None = None,
    q0_deg: npt.ArrayLike | None = None,
) -> IkResult:
    """Joints that put the guide's axis through entry and target (the guide's tip
    ``standoff_mm`` outside the entry), or the reason there are none.

    ``q0_deg``: for an arm, joints tried first as the IK's seed (e.g. a neighbouring path's
    solution), before :data:`ARM_SEEDS_DEG`.

    Examples
    --------
    >>> from seldinger.robot.models import load_model
    >>> result = inverse(load_model("guide_5dof"), [0.0, -150.0, 0.0], [0.0, -50.0, 0.0])
    >>> result.reason is None, result.joints.round(6).tolist()
    (True, [0.0, 0.0, 100.0, 0.0, 0.0])
    """
    entry = np.asarray(entry_lps_mm, dtype=float)
    target = np.asarray(target_lps_mm, dtype=float)
    base = model.base_to_mount if base_to_ct is None else np.asarray(base_to_ct, dtype=float)
    direction = _unit(target - entry, "target_lps_mm - entry_lps_mm")
    if model.kind is RobotKind.NEEDLE_GUIDE_5DOF:
        joints, reasons = inverse_guide_many(model, entry[None], target[None], base)
        pose = _guide_forward(joints[0], base)
        reason = reasons[0]
        return IkResult(None if reason else joints[0], reason, pose)
    pose = frame_from_axis(direction, entry - model.standoff_mm * direction)
    try:
        q, reason = _arm_closed_form(model, pose, base, q0_deg)
    except ValueError:  # not a UR-type arm: numerical IK from seeds
        seeds: tuple[tuple[float, ...], ...] = ARM_SEEDS_DEG
        if q0_deg is not None:
            seeds = (tuple(float(v) for v in np.asarray(q0_deg, dtype=float)), *ARM_SEEDS_DEG)
        q, reason = _arm_inverse(model, pose, base, seeds)
    if q is not None:
        pose = _arm_forward(model, q, base)
    return IkResult(q, reason, pose)
