"""Reachability of needle paths by a robot, with the reason when not, and the predicted
targeting error.

Checks, in this order (the first that fails is the reason):

1. ``collision_body``: the guide, a segment along the needle axis from
   ``standoff_mm + GUIDE_CLEARANCE_MM`` outside the entry outward for ``guide_length_mm``,
   must stay outside the body mask (for an arm, its links too, once its joints are known).
2. ``bore``: an in-bore robot (``in_bore``) must keep the guide within the CT bore, a
   cylinder of :data:`~seldinger.robot.models.CT_BORE_DIAMETER_MM` along LPS z on the
   body's centre line. Robots that work with the table out of the gantry skip it.
3. ``workspace``: the guide's pose lies out of the robot's reach.
4. ``joint_limit``: the pose is reached only beyond a joint's limit.

Checks 1-2 and the inverse kinematics are vectorised over all paths: the guide's in closed
form, a UR-type arm's by all closed-form solutions (:mod:`.ur_ik`) with its links checked
against the body solution by solution; other arms run numerical IK per path. The predicted error is the
root-sum-square of the registration TRE, the robot's repeatability and the needle's
deflection (:data:`NEEDLE_DEFLECTION_MM_PER_100MM` of the insertion depth).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from seldinger.imaging import Volume
from seldinger.motion.uncertainty import (
    DEFAULT_DEFLECTION_MM_PER_100MM,
    DEFAULT_TRE_MM,
    inside_mask,
)
from seldinger.robot.kinematics import (
    ARM_ROLLS_DEG,
    M_PER_MM,
    arm_candidates_many,
    arm_joint_origins_many,
    arm_robot,
    frames_from_axes,
    guide_poses_many,
    inverse,
    inverse_guide_many,
)
from seldinger.robot.models import CT_BORE_DIAMETER_MM, MountSide, RobotKind, RobotModel
from seldinger.robot.ur_ik import ur_forward_many, ur_geometry

__all__ = [
    "DEFAULT_TRE_MM",
    "GUIDE_CLEARANCE_MM",
    "NEEDLE_DEFLECTION_MM_PER_100MM",
    "PathReach",
    "bore_axis_lps_mm",
    "mount_side_for",
    "predicted_error_mm",
    "reach_paths",
    "summarise",
]

#: Needle deflection per 100 mm of insertion, mm: the error budget's rate
#: (:data:`seldinger.motion.uncertainty.DEFAULT_DEFLECTION_MM_PER_100MM`).
NEEDLE_DEFLECTION_MM_PER_100MM = DEFAULT_DEFLECTION_MM_PER_100MM
#: Gap kept between the skin and the first point of the guide checked for collision, mm
#: (the entry voxel itself is skin).
GUIDE_CLEARANCE_MM = 3.0
#: Spacing of the points checked along the guide and along the arm's links, mm.
SAMPLE_STEP_MM = 2.0


@dataclass(frozen=True, eq=False)
class PathReach:
    """One path's answer (``guide_pose``: 4x4 guide_to_ct, LPS mm; joints mm / degrees)."""

    reachable: bool
    reason: str | None
    joints: list[float] | None
    guide_pose: npt.NDArray[np.float64]
    predicted_error_mm: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "reachable": self.reachable,
            "reason": self.reason,
            "joints": self.joints,
            "guide_pose": np.round(self.guide_pose, 6).tolist(),
            "predicted_error_mm": round(self.predicted_error_mm, 3),
        }


def predicted_error_mm(
    depth_mm: npt.ArrayLike, tre_mm: float, repeatability_mm: float
) -> npt.NDArray[np.float64]:
    """TRE ⊕ repeatability ⊕ needle deflection (root-sum-square), mm.

    Examples
    --------
    >>> float(predicted_error_mm(100.0, 3.0, 0.5).round(3))
    3.391
    """
    deflection = np.asarray(depth_mm, dtype=float) * NEEDLE_DEFLECTION_MM_PER_100MM / 100.0
    return np.sqrt(tre_mm**2 + repeatability_mm**2 + deflection**2)


def bore_axis_lps_mm(body: Volume, step: int = 4) -> tuple[float, float]:
    """The body's centre line (x, y LPS mm): mean of every ``step``-th body voxel."""
    ijk = np.argwhere(np.asarray(body.array)[::step, ::step, ::step]) * step
    if len(ijk) == 0:
        return float(body.affine[0, 3]), float(body.affine[1, 3])
    lps = ijk @ body.affine[:3, :3].T + body.affine[:3, 3]
    return float(lps[:, 0].mean()), float(lps[:, 1].mean())


def mount_side_for(entry_lps_mm: npt.ArrayLike, target_lps_mm: npt.ArrayLike) -> MountSide:
    """The side of the patient a needle comes from: the larger of the x and y parts of
    target -> entry (the robot stands there).

    Examples
    --------
    >>> mount_side_for([120.0, 20.0, 0.0], [50.0, 0.0, 10.0]).value
    'left'
    """
    outward = np.asarray(entry_lps_mm, dtype=float) - np.asarray(target_lps_mm, dtype=float)
    if abs(outward[0]) > abs(outward[1]):
        return MountSide.LEFT if outward[0] > 0 else MountSide.RIGHT
    return MountSide.POSTERIOR if outward[1] > 0 else MountSide.ANTERIOR


def _arm_links_lps_mm(
    model: RobotModel, joints_deg: list[float], base_to_ct: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Points along the arm's links (joint origins joined by straight segments), LPS mm."""
    assert model.rtb_model is not None
    frames = arm_robot(model.rtb_model).fkine_all(np.radians(joints_deg))
    origins_m = np.array([np.asarray(f.A)[:3, 3] for f in frames])
    origins = origins_m / M_PER_MM @ base_to_ct[:3, :3].T + base_to_ct[:3, 3]
    points = [origins[:1]]
    for a, b in itertools.pairwise(origins):
        n = max(2, math.ceil(np.linalg.norm(b - a) / SAMPLE_STEP_MM) + 1)
        points.append(a + np.linspace(0.0, 1.0, n)[1:, None] * (b - a))
    return np.concatenate(points)


def reach_paths(
    model: RobotModel,
    entries_lps_mm: npt.ArrayLike,
    targets_lps_mm: npt.ArrayLike,
    base_to_ct: npt.NDArray[np.float64],
    *,
    body: Volume | None = None,
    bore_axis_xy_lps_mm: tuple[float, float] = (0.0, 0.0),
    tre_mm: float = DEFAULT_TRE_MM,
) -> list[PathReach]:
    """Reachability of N paths by ``model`` standing at ``base_to_ct``.

    Parameters
    ----------
    model : RobotModel
    entries_lps_mm, targets_lps_mm : array-like, shape (N, 3)
        Skin entries and targets, LPS mm.
    base_to_ct : ndarray, shape (4, 4)
        The robot's base in the CT (``mount_to_ct(...) @ model.base_to_mount``).
    body : Volume, optional
        Body mask (bool); without it the body-collision check is skipped.
    bore_axis_xy_lps_mm : tuple of float
        The bore's axis (x, y LPS mm; along z), usually :func:`bore_axis_lps_mm` of the body.
    tre_mm : float
        Registration TRE for the predicted error, mm.

    Returns
    -------
    list of PathReach
        One per path, in order (see the module docstring for the reasons).
    """
    entries = np.atleast_2d(np.asarray(entries_lps_mm, dtype=float))
    targets = np.atleast_2d(np.asarray(targets_lps_mm, dtype=float))
    lengths = np.linalg.norm(targets - entries, axis=1)
    directions = (targets - entries) / lengths[:, None]
    n = len(entries)
    reasons = np.full(n, None, dtype=object)
    # The guide's body: a segment along the axis, outward from the skin, (N, 2, 3).
    near_mm = model.standoff_mm + GUIDE_CLEARANCE_MM
    far_mm = model.standoff_mm + model.guide_length_mm
    guide = entries[:, None, :] - np.array([near_mm, far_mm])[None, :, None] * directions[:, None]
    if model.in_bore:
        # The distance from the bore's axis is convex along a segment: its ends decide.
        radius = np.hypot(
            guide[..., 0] - bore_axis_xy_lps_mm[0], guide[..., 1] - bore_axis_xy_lps_mm[1]
        )
        reasons[(radius > CT_BORE_DIAMETER_MM / 2.0).any(axis=1)] = "bore"
    if body is not None:
        to_index = np.asarray(np.linalg.inv(body.affine), dtype=np.float64)
        hit = _links_hit(guide, to_index, _mask_u8(body), SAMPLE_STEP_MM)
        reasons[hit] = "collision_body"
    joints = np.full((n, len(model.joints)), np.nan)
    poses = frames_from_axes(directions, entries - model.standoff_mm * directions)
    todo = np.flatnonzero(reasons == None)  # noqa: E711 (elementwise on an object array)
    if model.kind is RobotKind.NEEDLE_GUIDE_5DOF:
        q, ik_reasons = inverse_guide_many(model, entries[todo], targets[todo], base_to_ct)
        joints[todo] = q
        reasons[todo] = ik_reasons
        done = todo[ik_reasons == None]  # noqa: E711
        poses[done] = guide_poses_many(joints[done], base_to_ct)
    elif _closed_form(model):
        _reach_arm_closed_form(model, todo, poses, joints, reasons, base_to_ct, body)
    else:
        previous = None  # the last solution seeds the next path's IK (neighbours are alike)
        for index in todo:
            result = inverse(model, entries[index], targets[index], base_to_ct, previous)
            poses[index] = result.guide_pose
            if result.joints is None:
                reasons[index] = result.reason
                continue
            joints[index] = previous = result.joints
            if (
                body is not None
                and inside_mask(
                    body, _arm_links_lps_mm(model, list(result.joints), base_to_ct)
                ).any()
            ):
                reasons[index] = "collision_body"
    errors = predicted_error_mm(lengths, tre_mm, model.repeatability_mm).tolist()
    rounded = np.round(joints, 4).tolist()
    return [
        PathReach(
            reachable=reasons[i] is None,
            reason=reasons[i],
            joints=rounded[i] if reasons[i] is None else None,
            guide_pose=poses[i],
            predicted_error_mm=errors[i],
        )
        for i in range(n)
    ]


def _closed_form(model: RobotModel) -> bool:
    """Whether the arm is of the UR form (closed-form IK), else numerical IK per path."""
    assert model.rtb_model is not None
    try:
        ur_geometry(arm_robot(model.rtb_model))
    except ValueError:
        return False
    return True


def _mask_u8(mask: Volume) -> npt.NDArray[np.uint8]:
    """The mask as uint8 for the kernel: a view of a bool array (no copy of a whole CT)."""
    array = np.asarray(mask.array)
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    return np.ascontiguousarray(array, dtype=np.uint8)


@nb.njit(cache=True, nogil=True, inline="always")
def _voxel(
    ct_to_index: npt.NDArray[np.float64], axis: int, x: float, y: float, z: float
) -> int:  # pragma: no cover - compiled
    """The nearest voxel index along ``axis`` of the LPS point (x, y, z)."""
    m = ct_to_index
    return int(np.rint(m[axis, 0] * x + m[axis, 1] * y + m[axis, 2] * z + m[axis, 3]))


@nb.njit(cache=True, nogil=True)
def _links_hit(
    origins: npt.NDArray[np.float64],
    ct_to_index: npt.NDArray[np.float64],
    mask: npt.NDArray[np.uint8],
    step_mm: float,
) -> npt.NDArray[np.bool_]:  # pragma: no cover - compiled
    """Whether any point every ``step_mm`` along the segments joining ``origins`` (M, K, 3)
    lies in ``mask`` (nearest voxel; ``ct_to_index`` the inverse affine). Written as a loop
    that stops at the first hit: the vectorised form held every link point of every
    candidate pose in memory (hundreds of MB for the few thousand skin entries)."""
    m, k = origins.shape[0], origins.shape[1]
    ni, nj, nk = mask.shape
    hit = np.zeros(m, dtype=np.bool_)
    for c in range(m):
        for s in range(k - 1):
            dx = origins[c, s + 1, 0] - origins[c, s, 0]
            dy = origins[c, s + 1, 1] - origins[c, s, 1]
            dz = origins[c, s + 1, 2] - origins[c, s, 2]
            n = int(np.ceil(np.sqrt(dx * dx + dy * dy + dz * dz) / step_mm)) + 1
            for q in range(n):
                t = q / max(n - 1, 1)
                x = origins[c, s, 0] + t * dx
                y = origins[c, s, 1] + t * dy
                z = origins[c, s, 2] + t * dz
                i = _voxel(ct_to_index, 0, x, y, z)
                j = _voxel(ct_to_index, 1, x, y, z)
                kk = _voxel(ct_to_index, 2, x, y, z)
                if 0 <= i < ni and 0 <= j < nj and 0 <= kk < nk and mask[i, j, kk]:
                    hit[c] = True
                    break
            if hit[c]:
                break
    return hit


def _reach_arm_closed_form(
    model: RobotModel,
    todo: npt.NDArray[np.intp],
    poses: npt.NDArray[np.float64],
    joints: npt.NDArray[np.float64],
    reasons: npt.NDArray[np.object_],
    base_to_ct: npt.NDArray[np.float64],
    body: Volume | None,
) -> None:
    """The arm's reachability for every path at once (fills ``joints``, ``reasons`` and
    ``poses`` in place): roll by roll, only for the paths still without a solution, all
    eight closed-form branches, each branch's links checked against the body in turn."""
    mask = None
    if body is not None:
        mask = _mask_u8(body)
        ct_to_index = np.asarray(np.linalg.inv(body.affine), dtype=np.float64)
    pending = np.asarray(todo, dtype=np.intp)
    solved = np.zeros(len(poses), dtype=bool)
    in_limits = np.zeros(len(poses), dtype=bool)
    # Most paths take the first branch at the first roll: try that alone for every path,
    # then all eight branches of each roll for the paths still without a solution.
    for roll, first_only in [(ARM_ROLLS_DEG[0], True)] + [(r, False) for r in ARM_ROLLS_DEG]:
        if not len(pending):
            break
        candidates, inside = arm_candidates_many(
            model, poses[pending], base_to_ct, (roll,), first_only
        )
        solved[pending] |= np.any(np.all(np.isfinite(candidates), axis=2), axis=1)
        in_limits[pending] |= inside.any(axis=1)
        found = np.zeros(len(pending), dtype=bool)
        for branch in range(candidates.shape[1]):
            trying = np.flatnonzero(~found & inside[:, branch])
            if not len(trying):
                continue
            q = candidates[trying, branch]
            clear = np.ones(len(trying), dtype=bool)
            if mask is not None:
                origins = arm_joint_origins_many(model, q, base_to_ct)
                clear = ~_links_hit(origins, ct_to_index, mask, SAMPLE_STEP_MM)
            joints[pending[trying[clear]]] = q[clear]
            found[trying[clear]] = True
        pending = pending[~found]
    reasons[pending[~solved[pending]]] = "workspace"
    reasons[pending[solved[pending] & ~in_limits[pending]]] = "joint_limit"
    reasons[pending[in_limits[pending]]] = "collision_body"
    done = np.setdiff1d(todo, pending)
    if len(done):
        poses[done] = _arm_poses(model, joints[done], base_to_ct)


def _arm_poses(
    model: RobotModel, joints_deg: npt.NDArray[np.float64], base_to_ct: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Guide poses of the arm at joints (M, 6) degrees, by the closed-form forward model."""
    assert model.rtb_model is not None and model.tool_to_flange is not None
    frames = ur_forward_many(ur_geometry(arm_robot(model.rtb_model)), np.radians(joints_deg))
    flange = frames[:, 6].copy()
    flange[:, :3, 3] /= M_PER_MM
    return np.asarray(base_to_ct @ flange @ model.tool_to_flange)


def summarise(results: list[PathReach]) -> dict[str, Any]:
    """Counts: paths, reachable, fraction reachable, and each reason's count."""
    reachable = sum(r.reachable for r in results)
    return {
        "paths": len(results),
        "reachable": reachable,
        "fraction_reachable": reachable / len(results) if results else 0.0,
        "reasons": dict(Counter(r.reason for r in results if r.reason is not None)),
    }
