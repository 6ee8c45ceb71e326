"""Closed-form kinematics of UR-type arms (UR3/UR5/UR10 DH geometry), vectorised.

roboticstoolbox gives the UR5's DH parameters and an iterative IK (``ik_LM``, ~10 ms a
call); checking every candidate skin entry (a few thousand, each with several rolls of the
needle about its axis) that way takes minutes. The UR geometry has a closed-form inverse
with up to eight solutions (Hawkins [1]_; shoulder left/right × wrist up/down × elbow
up/down), written here for arrays of poses so that thousands of poses take milliseconds.
The DH parameters are read from roboticstoolbox's model; the tests check every solution
against roboticstoolbox's forward kinematics.

Frames: standard DH, ``T_{i-1,i} = Rz(θ_i) Tz(d_i) Tx(a_i) Rx(α_i)``, metres and radians
(as roboticstoolbox); callers convert to mm and degrees.

References
----------
.. [1] Hawkins KP. Analytic inverse kinematics for the Universal Robots UR-5/UR-10 arms.
   Georgia Institute of Technology technical report, 2013. http://hdl.handle.net/1853/50782
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["UrGeometry", "ur_forward_many", "ur_geometry", "ur_inverse_many"]

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class UrGeometry:
    """DH parameters of a UR-type arm (metres, radians)."""

    d: tuple[float, ...]
    a: tuple[float, ...]
    alpha: tuple[float, ...]


@functools.lru_cache(maxsize=4)
def ur_geometry(robot: Any) -> UrGeometry:
    """The DH parameters of a roboticstoolbox DH robot (checked to be of the UR form)."""
    links = robot.links
    geometry = UrGeometry(
        d=tuple(float(link.d) for link in links),
        a=tuple(float(link.a) for link in links),
        alpha=tuple(float(link.alpha) for link in links),
    )
    ur_form = (
        len(links) == 6
        and np.allclose(geometry.alpha, [np.pi / 2, 0, 0, np.pi / 2, -np.pi / 2, 0])
        and geometry.a[0] == geometry.a[3] == geometry.a[4] == geometry.a[5] == 0.0
        and geometry.d[1] == geometry.d[2] == 0.0
        and all(float(link.offset) == 0.0 for link in links)
    )
    if not ur_form:
        raise ValueError(f"{robot.name} is not a UR-type arm; its IK is not closed-form here.")
    return geometry


def _dh(theta: Float64Array, d: float, a: float, alpha: float) -> Float64Array:
    """Stacked DH transforms (..., 4, 4) for joint angles ``theta`` (...)."""
    ct, st = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    out = np.zeros((*theta.shape, 4, 4))
    out[..., 0, 0], out[..., 0, 1], out[..., 0, 2], out[..., 0, 3] = ct, -st * ca, st * sa, a * ct
    out[..., 1, 0], out[..., 1, 1], out[..., 1, 2], out[..., 1, 3] = st, ct * ca, -ct * sa, a * st
    out[..., 2, 1], out[..., 2, 2], out[..., 2, 3] = sa, ca, d
    out[..., 3, 3] = 1.0
    return out


def _rigid_inverse(t: Float64Array) -> Float64Array:
    """Inverse of stacked rigid transforms (..., 4, 4): [Rᵀ, −Rᵀp] (exact, and ~10× faster
    than a general inverse for many small matrices)."""
    out = np.zeros_like(t)
    rt = np.swapaxes(t[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, t[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def ur_forward_many(geometry: UrGeometry, q: npt.ArrayLike) -> Float64Array:
    """Frames 0..6 of each joint vector: (..., 7, 4, 4), frame 0 the base (identity).

    ``q`` (..., 6) radians. Frame 6 is the flange.
    """
    joints = np.asarray(q, dtype=float)
    frames = np.zeros((*joints.shape[:-1], 7, 4, 4))
    frames[..., 0, :, :] = np.eye(4)
    for i in range(6):
        step = _dh(joints[..., i], geometry.d[i], geometry.a[i], geometry.alpha[i])
        frames[..., i + 1, :, :] = frames[..., i, :, :] @ step
    return frames


def ur_inverse_many(geometry: UrGeometry, flange_to_base: npt.ArrayLike) -> Float64Array:
    """Every closed-form solution for each flange pose: (N, 8, 6) radians in (-π, π],
    NaN where a branch has no real solution (out of reach) or is singular (wrist:
    sin θ5 ≈ 0, where θ6 is free; such poses are rare among needle paths and reported as
    unreachable rather than guessed).
    """
    t = np.asarray(flange_to_base, dtype=float).reshape(-1, 4, 4)
    d1, _, _, d4, d5, d6 = geometry.d
    a2, a3 = geometry.a[1], geometry.a[2]
    n = len(t)
    out = np.full((n, 8, 6), np.nan)
    p05 = t[:, :3, 3] - d6 * t[:, :3, 2]
    radius = np.hypot(p05[:, 0], p05[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.arccos(d4 / radius)
        psi = np.arctan2(p05[:, 1], p05[:, 0])
        inverse = _rigid_inverse(t)
        for i1, s1sign in enumerate((1.0, -1.0)):
            th1 = psi + s1sign * phi + np.pi / 2.0
            c1, s1 = np.cos(th1), np.sin(th1)
            cos5 = (t[:, 0, 3] * s1 - t[:, 1, 3] * c1 - d4) / d6
            for i5, s5sign in enumerate((1.0, -1.0)):
                th5 = s5sign * np.arccos(cos5)
                s5 = np.sin(th5)
                th6 = np.arctan2(
                    (-inverse[:, 1, 0] * s1 + inverse[:, 1, 1] * c1) / s5,
                    (inverse[:, 0, 0] * s1 - inverse[:, 0, 1] * c1) / s5,
                )
                t01 = _dh(th1, d1, 0.0, geometry.alpha[0])
                t45 = _dh(th5, d5, 0.0, geometry.alpha[4])
                t56 = _dh(th6, d6, 0.0, geometry.alpha[5])
                t14 = _rigid_inverse(t01) @ t @ _rigid_inverse(t45 @ t56)
                # Joints 2-4 are parallel (along z1): a planar two-link arm in frame 1's x-y
                # plane reaches frame 4's origin, x + iy = e^{iθ2} (a2 + a3 e^{iθ3}).
                p14x, p14y = t14[:, 0, 3], t14[:, 1, 3]
                cos3 = (p14x**2 + p14y**2 - a2**2 - a3**2) / (2.0 * a2 * a3)
                for i3, s3sign in enumerate((1.0, -1.0)):
                    th3 = s3sign * np.arccos(cos3)
                    th2 = np.arctan2(p14y, p14x) - np.arctan2(
                        a3 * np.sin(th3), a2 + a3 * np.cos(th3)
                    )
                    t12 = _dh(th2, 0.0, a2, geometry.alpha[1])
                    t23 = _dh(th3, 0.0, a3, geometry.alpha[2])
                    t34 = _rigid_inverse(t12 @ t23) @ t14
                    th4 = np.arctan2(t34[:, 1, 0], t34[:, 0, 0])
                    k = 4 * i1 + 2 * i5 + i3
                    q = np.stack([th1, th2, th3, th4, th5, th6], axis=1)
                    out[:, k, :] = np.where(np.abs(s5)[:, None] > 1e-9, q, np.nan)
    wrapped = np.asarray(-((-out + np.pi) % (2.0 * np.pi) - np.pi), dtype=float)
    return wrapped
