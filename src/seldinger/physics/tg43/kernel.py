"""Superposition of TG-43U1 seed dose rates at many points (Numba, parallel over points).

Each (point, seed) pair repeats, operation for operation, the NumPy per-seed evaluation
of ``dose.py`` (capsule clamp, G_L, g_L, F or φ_an), so both give the same numbers to
rounding; ``tests/physics/test_tg43_superposition.py`` compares them.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["MODEL_1D_LINE", "MODEL_1D_POINT", "MODEL_2D", "superpose"]

MODEL_2D, MODEL_1D_LINE, MODEL_1D_POINT = 0, 1, 2


@nb.njit(cache=True, nogil=True, inline="always")
def _interval(grid: npt.NDArray[np.float64], x: float) -> int:
    """Index i with grid[i] <= x < grid[i+1], clamped to 0 .. len(grid) - 2 (binary search)."""
    lo = 0
    hi = grid.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if grid[mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo


@nb.njit(cache=True, nogil=True, inline="always")
def _linear_held(grid: npt.NDArray[np.float64], values: npt.NDArray[np.float64], x: float) -> float:
    """Linear interpolation, the end values held outside the grid."""
    n = grid.shape[0]
    if x <= grid[0] or n == 1:
        return values[0]
    if x >= grid[n - 1]:
        return values[n - 1]
    i = _interval(grid, x)
    return values[i] + (x - grid[i]) * (values[i + 1] - values[i]) / (grid[i + 1] - grid[i])


@nb.njit(cache=True, nogil=True, inline="always")
def _geometry(z: float, y: float, length: float) -> float:
    half = 0.5 * length
    denom = y * y + z * z - half * half
    if y > 0.0:
        ly = length * y
        return math.atan2(ly, denom) / ly
    return 1.0 / denom


@nb.njit(cache=True, nogil=True, inline="always")
def pair_dose_per_u(
    z: float,
    y: float,
    model: int,
    params: npt.NDArray[np.float64],
    g_r: npt.NDArray[np.float64],
    g_v: npt.NDArray[np.float64],
    f_r: npt.NDArray[np.float64],
    f_t: npt.NDArray[np.float64],
    f_v: npt.NDArray[np.float64],
    p_r: npt.NDArray[np.float64],
    p_v: npt.NDArray[np.float64],
) -> float:
    """Dose rate per U (cGy/h/U) at (z, y) cm in one seed's frame; see ``dose._pair_numpy``."""
    lam = params[0]
    length = params[1]
    half_capsule = params[2]
    radius_capsule = params[3]
    r0 = params[4]
    cos0 = params[5]
    sin0 = params[6]
    g0 = params[7]
    slope = params[8]
    symmetric = params[9] > 0.0
    if z == 0.0 and y == 0.0:  # the seed centre: take the transverse direction
        y = radius_capsule
    az = abs(z)
    to_end = half_capsule / az if az > 0.0 else np.inf
    to_side = radius_capsule / y if y > 0.0 else np.inf
    scale = max(1.0, min(to_end, to_side))
    z = z * scale
    y = y * scale
    az = az * scale
    r = math.sqrt(z * z + y * y)
    n_g = g_r.shape[0]
    if r > g_r[n_g - 1]:
        g = g_v[n_g - 1] * math.exp(slope * (r - g_r[n_g - 1]))
    else:
        g = _linear_held(g_r, g_v, r)
    if model == 0:
        geometry = _geometry(z, y, length)
        theta = math.degrees(math.atan2(y, az if symmetric else z))
        n_r = f_r.shape[0]
        rc = min(max(r, f_r[0]), f_r[n_r - 1])
        if n_r == 1:
            i = 0
            i1 = 0
            u = 0.0
        else:
            i = _interval(f_r, rc)
            i1 = i + 1
            u = (rc - f_r[i]) / (f_r[i1] - f_r[i])
        n_t = f_t.shape[0]
        tc = min(max(theta, f_t[0]), f_t[n_t - 1])
        k = _interval(f_t, tc)
        t = (tc - f_t[k]) / (f_t[k + 1] - f_t[k])
        low = f_v[k, i] + u * (f_v[k, i1] - f_v[k, i])
        high = f_v[k + 1, i] + u * (f_v[k + 1, i1] - f_v[k + 1, i])
        anisotropy = low + t * (high - low)
        return lam * (geometry / g0) * g * anisotropy
    geometry = _geometry(r * cos0, r * sin0, length)
    phi = _linear_held(p_r, p_v, r)
    if model == 1:
        return lam * (geometry / g0) * g * phi
    g_point = g * (geometry * r * r) / (g0 * r0 * r0)
    return lam * ((r0 * r0) / (r * r)) * g_point * phi


@nb.njit(cache=True, nogil=True, inline="always")
def _seed_frame(
    points_cm: npt.NDArray[np.float64],
    p: int,
    seeds_cm: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    s: int,
) -> tuple[float, float]:
    """Point ``p`` in seed ``s``'s frame: distance along its axis and away from it (cm)."""
    dx = points_cm[p, 0] - seeds_cm[s, 0]
    dy = points_cm[p, 1] - seeds_cm[s, 1]
    dz = points_cm[p, 2] - seeds_cm[s, 2]
    ax = axes[s, 0]
    ay = axes[s, 1]
    az = axes[s, 2]
    cx = dy * az - dz * ay
    cy = dz * ax - dx * az
    cz = dx * ay - dy * ax
    return dx * ax + dy * ay + dz * az, math.sqrt(cx * cx + cy * cy + cz * cz)


@nb.njit(cache=True, nogil=True, parallel=True)
def superpose(
    points_cm: npt.NDArray[np.float64],
    seeds_cm: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    sk_u: npt.NDArray[np.float64],
    model: int,
    params: npt.NDArray[np.float64],
    g_r: npt.NDArray[np.float64],
    g_v: npt.NDArray[np.float64],
    f_r: npt.NDArray[np.float64],
    f_t: npt.NDArray[np.float64],
    f_v: npt.NDArray[np.float64],
    p_r: npt.NDArray[np.float64],
    p_v: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Σ over seeds of S_K · (dose rate per U), cGy/h, at each point (parallel over points)."""
    n = points_cm.shape[0]
    m = seeds_cm.shape[0]
    out = np.zeros(n)
    for p in nb.prange(n):
        total = 0.0
        for s in range(m):
            along, away = _seed_frame(points_cm, p, seeds_cm, axes, s)
            total += sk_u[s] * pair_dose_per_u(
                along, away, model, params, g_r, g_v, f_r, f_t, f_v, p_r, p_v
            )
        out[p] = total
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def pair_matrix(
    points_cm: npt.NDArray[np.float64],
    seeds_cm: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    model: int,
    params: npt.NDArray[np.float64],
    g_r: npt.NDArray[np.float64],
    g_v: npt.NDArray[np.float64],
    f_r: npt.NDArray[np.float64],
    f_t: npt.NDArray[np.float64],
    f_v: npt.NDArray[np.float64],
    p_r: npt.NDArray[np.float64],
    p_v: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """Dose rate per U (cGy/h/U) of each seed alone at each point, (seeds, points), float32."""
    n = points_cm.shape[0]
    m = seeds_cm.shape[0]
    out = np.empty((m, n), dtype=np.float32)
    for s in nb.prange(m):
        for p in range(n):
            along, away = _seed_frame(points_cm, p, seeds_cm, axes, s)
            out[s, p] = pair_dose_per_u(
                along, away, model, params, g_r, g_v, f_r, f_t, f_v, p_r, p_v
            )
    return out


# Fast-math flags that reorder and contract arithmetic (measured: same values to 1e-12
# here); not "nnan"/"ninf", which the exact fallback needs (it uses inf as "no limit").
@nb.njit(
    cache=True, nogil=True, parallel=True, fastmath={"contract", "arcp", "nsz", "reassoc", "afn"}
)
def superpose_tabulated(
    points_cm: npt.NDArray[np.float64],
    seeds_cm: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    sk_u: npt.NDArray[np.float64],
    table: npt.NDArray[np.float64],
    step: npt.NDArray[np.float64],
    model: int,
    params: npt.NDArray[np.float64],
    g_r: npt.NDArray[np.float64],
    g_v: npt.NDArray[np.float64],
    f_r: npt.NDArray[np.float64],
    f_t: npt.NDArray[np.float64],
    f_v: npt.NDArray[np.float64],
    p_r: npt.NDArray[np.float64],
    p_v: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """:func:`superpose` with r²·dose-rate read from a polar table where it is smooth.

    ``table[i, j]`` holds r²·Ḋ per U at r = i·step[0] cm and q = j·step[1], where
    q = sqrt(1 − |cos θ|) (fine near the seed axis, where F changes fastest); pairs closer
    than ``step[2]`` cm or beyond the table fall back to the exact :func:`pair_dose_per_u`.
    """
    n = points_cm.shape[0]
    m = seeds_cm.shape[0]
    nr, nq = table.shape
    hr, hq, r_min = step[0], step[1], step[2]
    r_max = hr * (nr - 1)
    out = np.zeros(n)
    for p in nb.prange(n):
        total = 0.0
        for s in range(m):
            dx = points_cm[p, 0] - seeds_cm[s, 0]
            dy = points_cm[p, 1] - seeds_cm[s, 1]
            dz = points_cm[p, 2] - seeds_cm[s, 2]
            along = dx * axes[s, 0] + dy * axes[s, 1] + dz * axes[s, 2]
            r2 = dx * dx + dy * dy + dz * dz
            r = math.sqrt(r2)
            if r < r_min or r >= r_max:
                away = math.sqrt(max(r2 - along * along, 0.0))
                total += sk_u[s] * pair_dose_per_u(
                    along, away, model, params, g_r, g_v, f_r, f_t, f_v, p_r, p_v
                )
                continue
            q = math.sqrt(max(1.0 - abs(along) / r, 0.0))
            fr = r / hr
            fq = q / hq
            i = min(int(fr), nr - 2)
            j = min(int(fq), nq - 2)
            u = fr - i
            t = fq - j
            low = table[i, j] + t * (table[i, j + 1] - table[i, j])
            high = table[i + 1, j] + t * (table[i + 1, j + 1] - table[i + 1, j])
            total += sk_u[s] * (low + u * (high - low)) / r2
        out[p] = total
    return out
