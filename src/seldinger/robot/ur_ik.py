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
import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = [
    "UrGeometry",
    "ur_forward_fast",
    "ur_forward_many",
    "ur_geometry",
    "ur_inverse_fast",
    "ur_inverse_many",
]

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


# --- the same in compiled loops (what reachability calls: thousands of poses) -------------


@nb.njit(cache=True, nogil=True, inline="always")
def _dh_into(theta: float, d: float, a: float, alpha: float, out: Float64Array) -> None:
    ct, st = math.cos(theta), math.sin(theta)
    ca, sa = math.cos(alpha), math.sin(alpha)
    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = ct, -st * ca, st * sa, a * ct
    out[1, 0], out[1, 1], out[1, 2], out[1, 3] = st, ct * ca, -ct * sa, a * st
    out[2, 0], out[2, 1], out[2, 2], out[2, 3] = 0.0, sa, ca, d
    out[3, 0], out[3, 1], out[3, 2], out[3, 3] = 0.0, 0.0, 0.0, 1.0


@nb.njit(cache=True, nogil=True, inline="always")
def _mul_into(x: Float64Array, y: Float64Array, out: Float64Array) -> None:
    for i in range(4):
        for j in range(4):
            s = 0.0
            for k in range(4):
                s += x[i, k] * y[k, j]
            out[i, j] = s


@nb.njit(cache=True, nogil=True, inline="always")
def _rigid_inverse_into(t: Float64Array, out: Float64Array) -> None:
    for i in range(3):
        for j in range(3):
            out[i, j] = t[j, i]
        out[i, 3] = -(t[0, i] * t[0, 3] + t[1, i] * t[1, 3] + t[2, i] * t[2, 3])
    out[3, 0], out[3, 1], out[3, 2], out[3, 3] = 0.0, 0.0, 0.0, 1.0


@nb.njit(cache=True, nogil=True, parallel=True)
def _inverse_loop(
    t: Float64Array, d: Float64Array, a: Float64Array, alpha: Float64Array, first_only: bool
) -> Float64Array:  # pragma: no cover - compiled; checked against ur_inverse_many
    n = t.shape[0]
    out = np.full((n, 8, 6), np.nan)
    for p in nb.prange(n):
        _inverse_one(t[p], d, a, alpha, out[p], 1 if first_only else 2)
    return out


@nb.njit(cache=True, nogil=True)
def _inverse_one(
    tp: Float64Array,
    d: Float64Array,
    a: Float64Array,
    alpha: Float64Array,
    out: Float64Array,
    signs: int,
) -> None:  # pragma: no cover - compiled
    """The branches of one flange pose into ``out`` (8, 6), NaN rows left as they are:
    all eight with ``signs`` 2, the first only with 1."""
    m = np.empty((14, 4, 4))  # one allocation for every 4x4 of the pose
    inv, t01, t01i, t45, t56, t46, t46i = m[0], m[1], m[2], m[3], m[4], m[5], m[6]
    tmp, t14, t12, t23, t13, t13i, t34 = m[7], m[8], m[9], m[10], m[11], m[12], m[13]
    two_pi = 2.0 * math.pi
    p05x = tp[0, 3] - d[5] * tp[0, 2]
    p05y = tp[1, 3] - d[5] * tp[1, 2]
    radius = math.hypot(p05x, p05y)
    if radius < abs(d[3]):
        return
    phi = math.acos(d[3] / radius)
    psi = math.atan2(p05y, p05x)
    _rigid_inverse_into(tp, inv)
    for i1 in range(signs):
        th1 = psi + (phi if i1 == 0 else -phi) + math.pi / 2.0
        c1, s1 = math.cos(th1), math.sin(th1)
        cos5 = (tp[0, 3] * s1 - tp[1, 3] * c1 - d[3]) / d[5]
        if abs(cos5) > 1.0:
            continue
        _dh_into(th1, d[0], 0.0, alpha[0], t01)
        _rigid_inverse_into(t01, t01i)
        for i5 in range(signs):
            th5 = math.acos(cos5) * (1.0 if i5 == 0 else -1.0)
            s5 = math.sin(th5)
            if abs(s5) <= 1e-9:
                continue
            th6 = math.atan2(
                (-inv[1, 0] * s1 + inv[1, 1] * c1) / s5, (inv[0, 0] * s1 - inv[0, 1] * c1) / s5
            )
            _dh_into(th5, d[4], 0.0, alpha[4], t45)
            _dh_into(th6, d[5], 0.0, alpha[5], t56)
            _mul_into(t45, t56, t46)
            _rigid_inverse_into(t46, t46i)
            _mul_into(t01i, tp, tmp)
            _mul_into(tmp, t46i, t14)
            x, y = t14[0, 3], t14[1, 3]
            cos3 = (x * x + y * y - a[1] * a[1] - a[2] * a[2]) / (2.0 * a[1] * a[2])
            if abs(cos3) > 1.0:
                continue
            for i3 in range(signs):
                th3 = math.acos(cos3) * (1.0 if i3 == 0 else -1.0)
                th2 = math.atan2(y, x) - math.atan2(
                    a[2] * math.sin(th3), a[1] + a[2] * math.cos(th3)
                )
                _dh_into(th2, 0.0, a[1], alpha[1], t12)
                _dh_into(th3, 0.0, a[2], alpha[2], t23)
                _mul_into(t12, t23, t13)
                _rigid_inverse_into(t13, t13i)
                _mul_into(t13i, t14, t34)
                th4 = math.atan2(t34[1, 0], t34[0, 0])
                k = 4 * i1 + 2 * i5 + i3
                out[k, 0], out[k, 1], out[k, 2] = th1, th2, th3
                out[k, 3], out[k, 4], out[k, 5] = th4, th5, th6
                for j in range(6):  # wrap to (-pi, pi]
                    out[k, j] = -((-out[k, j] + math.pi) % two_pi - math.pi)


def ur_inverse_fast(
    geometry: UrGeometry, flange_to_base: npt.ArrayLike, first_only: bool = False
) -> Float64Array:
    """:func:`ur_inverse_many` in compiled loops (same answers, a few times faster on
    thousands of poses). Out-of-reach branches are NaN, as there; ``first_only`` fills
    branch 0 only (shoulder, wrist and elbow signs +; the others NaN)."""
    t = np.ascontiguousarray(np.asarray(flange_to_base, dtype=np.float64).reshape(-1, 4, 4))
    return np.asarray(
        _inverse_loop(
            t,
            np.asarray(geometry.d, dtype=np.float64),
            np.asarray(geometry.a, dtype=np.float64),
            np.asarray(geometry.alpha, dtype=np.float64),
            first_only,
        )
    )


@nb.njit(cache=True, nogil=True, parallel=True)
def _frames_loop(
    q: Float64Array, d: Float64Array, a: Float64Array, alpha: Float64Array
) -> Float64Array:  # pragma: no cover - compiled; checked against ur_forward_many
    n = q.shape[0]
    out = np.empty((n, 7, 4, 4))
    for p in nb.prange(n):
        step = np.empty((4, 4))
        out[p, 0] = np.eye(4)
        for i in range(6):
            _dh_into(q[p, i], d[i], a[i], alpha[i], step)
            _mul_into(out[p, i], step, out[p, i + 1])
    return out


def ur_forward_fast(geometry: UrGeometry, q: npt.ArrayLike) -> Float64Array:
    """:func:`ur_forward_many` in compiled loops for (M, 6) joint vectors: (M, 7, 4, 4)."""
    joints = np.ascontiguousarray(np.asarray(q, dtype=np.float64).reshape(-1, 6))
    return np.asarray(
        _frames_loop(
            joints,
            np.asarray(geometry.d, dtype=np.float64),
            np.asarray(geometry.a, dtype=np.float64),
            np.asarray(geometry.alpha, dtype=np.float64),
        )
    )
