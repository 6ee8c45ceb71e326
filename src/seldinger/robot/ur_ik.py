"""Closed-form kinematics of UR-type arms (UR3/UR5/UR10 DH geometry), vectorised.

roboticstoolbox gives the UR5's DH parameters and an iterative IK (``ik_LM``, ~10 ms a
call); checking every candidate skin entry (a few thousand, each with several rolls of the
needle about its axis) that way takes minutes. The UR geometry has a closed-form inverse
with up to eight solutions (Hawkins [1]_; shoulder left/right × wrist up/down × elbow
up/down), written here as compiled loops over arrays of poses so that thousands of poses
take milliseconds.
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
    "ur_forward_many",
    "ur_geometry",
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


# --- compiled loops: thousands of poses in milliseconds, no (N, 4, 4) temporaries ---------


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
) -> Float64Array:  # pragma: no cover - compiled
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


def ur_inverse_many(
    geometry: UrGeometry, flange_to_base: npt.ArrayLike, first_only: bool = False
) -> Float64Array:
    """Every closed-form solution for each flange pose: (N, 8, 6) radians in (-π, π],
    NaN where a branch has no real solution (out of reach) or is singular (wrist:
    sin θ5 ≈ 0, where θ6 is free; such poses are rare among needle paths and reported as
    unreachable rather than guessed). ``first_only`` fills branch 0 only (shoulder, wrist
    and elbow signs +; the others NaN)."""
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
) -> Float64Array:  # pragma: no cover - compiled
    n = q.shape[0]
    out = np.empty((n, 7, 4, 4))
    for p in nb.prange(n):
        step = np.empty((4, 4))
        out[p, 0] = np.eye(4)
        for i in range(6):
            _dh_into(q[p, i], d[i], a[i], alpha[i], step)
            _mul_into(out[p, i], step, out[p, i + 1])
    return out


def ur_forward_many(geometry: UrGeometry, q: npt.ArrayLike) -> Float64Array:
    """Frames 0..6 of each joint vector (M, 6) radians: (M, 7, 4, 4), frame 0 the base
    (identity), frame 6 the flange."""
    joints = np.ascontiguousarray(np.asarray(q, dtype=np.float64).reshape(-1, 6))
    return np.asarray(
        _frames_loop(
            joints,
            np.asarray(geometry.d, dtype=np.float64),
            np.asarray(geometry.a, dtype=np.float64),
            np.asarray(geometry.alpha, dtype=np.float64),
        )
    )
