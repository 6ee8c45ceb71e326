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

Checks 1-2 and the guide's inverse kinematics are vectorised over all paths; the arm runs
a reach-sphere pre-check, then numerical IK per remaining path. The predicted error is the
root-sum-square of the registration TRE, the robot's repeatability and the needle's
deflection (:data:`NEEDLE_DEFLECTION_MM_PER_100MM` of the insertion depth).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.imaging import Volume
from seldinger.motion.uncertainty import DEFAULT_DEFLECTION_MM_PER_100MM, DEFAULT_TRE_MM
from seldinger.robot.kinematics import (
    M_PER_MM,
    arm_robot,
    frames_from_axes,
    guide_poses_many,
    inverse,
    inverse_guide_many,
)
from seldinger.robot.models import CT_BORE_DIAMETER_MM, MountSide, RobotKind, RobotModel

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


def _inside(mask: Volume, points_lps_mm: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.bool_]:
    """Mask value at points (..., 3), nearest voxel; False outside the grid."""
    inv = np.linalg.inv(mask.affine).astype(points_lps_mm.dtype)
    ijk = np.rint(points_lps_mm @ inv[:3, :3].T + inv[:3, 3]).astype(np.intp)
    shape = np.array(mask.array.shape)
    valid = np.all((ijk >= 0) & (ijk < shape), axis=-1)
    clipped = np.clip(ijk, 0, shape - 1)
    values = np.asarray(mask.array)[clipped[..., 0], clipped[..., 1], clipped[..., 2]]
    return valid & values.astype(bool)


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
    # The guide's body along the axis, outward from the skin: (N, S, 3).
    start_mm = model.standoff_mm + GUIDE_CLEARANCE_MM
    offsets = np.arange(start_mm, model.standoff_mm + model.guide_length_mm + 1e-9, SAMPLE_STEP_MM)
    # float32: positions to ~0.01 mm at 400 mm, far below a voxel, at half the memory
    guide = (entries[:, None, :] - offsets[None, :, None] * directions[:, None, :]).astype(
        np.float32
    )
    if model.in_bore:
        radius = np.hypot(
            guide[..., 0] - bore_axis_xy_lps_mm[0], guide[..., 1] - bore_axis_xy_lps_mm[1]
        )
        reasons[(radius > CT_BORE_DIAMETER_MM / 2.0).any(axis=1)] = "bore"
    if body is not None:
        reasons[_inside(body, guide).any(axis=1)] = "collision_body"
    joints = np.full((n, len(model.joints)), np.nan)
    poses = frames_from_axes(directions, entries - model.standoff_mm * directions)
    todo = np.flatnonzero(reasons == None)  # noqa: E711 (elementwise on an object array)
    if model.kind is RobotKind.NEEDLE_GUIDE_5DOF:
        q, ik_reasons = inverse_guide_many(model, entries[todo], targets[todo], base_to_ct)
        joints[todo] = q
        reasons[todo] = ik_reasons
        done = todo[ik_reasons == None]  # noqa: E711
        poses[done] = guide_poses_many(joints[done], base_to_ct)
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
                and _inside(body, _arm_links_lps_mm(model, list(result.joints), base_to_ct)).any()
            ):
                reasons[index] = "collision_body"
    errors = predicted_error_mm(lengths, tre_mm, model.repeatability_mm)
    out = []
    for i in range(n):
        ok = reasons[i] is None
        out.append(
            PathReach(
                reachable=ok,
                reason=reasons[i],
                joints=np.round(joints[i], 4).tolist() if ok else None,
                guide_pose=poses[i],
                predicted_error_mm=float(errors[i]),
            )
        )
    return out


def summarise(results: list[PathReach]) -> dict[str, Any]:
    """Counts: paths, reachable, fraction reachable, and each reason's count."""
    reachable = sum(r.reachable for r in results)
    return {
        "paths": len(results),
        "reachable": reachable,
        "fraction_reachable": reachable / len(results) if results else 0.0,
        "reasons": dict(Counter(r.reason for r in results if r.reason is not None)),
    }
