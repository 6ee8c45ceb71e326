"""TG-43U1 ingredients of one seed in its own frame: G_L, g_L, F, φ_an (NumPy).

Coordinates of a point relative to one seed: ``z_cm`` along the seed axis from its centre
(signed) and ``y_cm`` (>= 0) the distance from the axis; r = hypot(z, y), θ = atan2(y, z).
These functions are the per-seed reference; the Numba kernel in ``_kernel.py`` repeats
them operation for operation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from seldinger.physics.tg43.data import SeedData

__all__ = [
    "PHI_AN_QUADRATURE_STEPS",
    "anisotropy_function",
    "capsule_scale",
    "geometry_line_per_cm2",
    "phi_an_from_f",
    "phi_an_function",
    "radial_dose_function",
]

FloatArray = npt.NDArray[np.float64]

#: θ steps over 0-180° of the solid-angle integral of F (0.01°; converged to 1e-7).
PHI_AN_QUADRATURE_STEPS = 18000


def geometry_line_per_cm2(z_cm: npt.ArrayLike, y_cm: npt.ArrayLike, length_cm: float) -> FloatArray:
    """Line-source geometry function G_L(r, θ) = β / (L r sin θ), cm⁻² (TG-43U1 eq. 4).

    β, the angle the active length subtends at the point, is computed as the angle between
    the vectors to the two ends, ``atan2(L·y, r² − L²/4)`` (cross and dot product), which
    stays accurate near the axis; on the axis (y = 0) the limit 1/(r² − L²/4) is used.

    Examples
    --------
    >>> round(float(geometry_line_per_cm2(0.0, 1.0, 0.3)), 6)  # r = 1 cm, θ = 90°
    0.9926
    >>> round(float(geometry_line_per_cm2(1.0, 0.0, 0.3)), 6)  # on the axis
    1.023018
    """
    z = np.asarray(z_cm, dtype=np.float64)
    y = np.asarray(y_cm, dtype=np.float64)
    half = 0.5 * length_cm
    denom = y * y + z * z - half * half
    ly = length_cm * y
    with np.errstate(divide="ignore", invalid="ignore"):
        off_axis = np.arctan2(ly, denom) / ly
        on_axis = 1.0 / denom
    return np.asarray(np.where(y > 0.0, off_axis, on_axis), dtype=np.float64)


def radial_dose_function(r_cm: npt.ArrayLike, data: SeedData) -> FloatArray:
    """g_L(r): linear inside the table, held below it, log-linear beyond it.

    Beyond the last radius the last two points are extrapolated exponentially
    (linearly in ln g); below the first radius g_L(r_min) is held (docs/tg43.md).

    Examples
    --------
    >>> from seldinger.physics.tg43 import load_seed_data
    >>> d = load_seed_data("6711")
    >>> [round(float(g), 4) for g in radial_dose_function([0.05, 1.25, 11.0], d)]
    [1.055, 0.954, 0.0592]
    """
    r = np.asarray(r_cm, dtype=np.float64)
    rr, gg = data.radial_r_cm, data.radial_g
    inside = np.interp(r, rr, gg)
    slope = np.log(gg[-1] / gg[-2]) / (rr[-1] - rr[-2])
    beyond = gg[-1] * np.exp(slope * (r - rr[-1]))
    return np.asarray(np.where(r > rr[-1], beyond, inside), dtype=np.float64)


def _fold_theta_deg(z_cm: FloatArray, y_cm: FloatArray, data: SeedData) -> FloatArray:
    """θ in degrees, folded onto 0-90° when F is tabulated only there."""
    z = np.abs(z_cm) if data.theta_symmetric else z_cm
    return np.asarray(np.degrees(np.arctan2(y_cm, z)), dtype=np.float64)


def anisotropy_function(
    r_cm: npt.ArrayLike, theta_deg: npt.ArrayLike, data: SeedData
) -> FloatArray:
    """F(r, θ): bilinear in (r, θ); r outside the table takes the nearest tabulated column.

    Examples
    --------
    >>> from seldinger.physics.tg43 import load_seed_data
    >>> d = load_seed_data("6711")
    >>> [round(float(f), 4) for f in anisotropy_function([0.5, 1.5, 9.0], [0.0, 15.0, 175.0], d)]
    [0.333, 0.6372, 0.587]
    """
    r = np.asarray(r_cm, dtype=np.float64)
    theta = np.asarray(theta_deg, dtype=np.float64)
    if data.theta_symmetric:
        theta = np.where(theta > 90.0, 180.0 - theta, theta)
    return _bilinear(r, theta, data)


def _bilinear(r: FloatArray, theta: FloatArray, data: SeedData) -> FloatArray:
    rg, tg, table = data.anisotropy_r_cm, data.anisotropy_theta_deg, data.anisotropy_f
    r = np.clip(r, rg[0], rg[-1])
    theta = np.clip(theta, tg[0], tg[-1])
    if len(rg) == 1:
        i, u = np.zeros(r.shape, np.intp), np.zeros(r.shape)
        i1 = i
    else:
        i = np.clip(np.searchsorted(rg, r, side="right") - 1, 0, len(rg) - 2)
        u = (r - rg[i]) / (rg[i + 1] - rg[i])
        i1 = i + 1
    k = np.clip(np.searchsorted(tg, theta, side="right") - 1, 0, len(tg) - 2)
    t = (theta - tg[k]) / (tg[k + 1] - tg[k])
    low = table[k, i] + u * (table[k, i1] - table[k, i])
    high = table[k + 1, i] + u * (table[k + 1, i1] - table[k + 1, i])
    return np.asarray(low + t * (high - low), dtype=np.float64)


def phi_an_from_f(r_cm: npt.ArrayLike, data: SeedData) -> FloatArray:
    """φ_an(r) by integrating F over solid angle, weighted by the dose (TG-43U1 eq. 10).

    φ_an(r) = ∫₀^π F(r,θ) G_L(r,θ) sin θ dθ / (2 G_L(r,θ0)), by the trapezoidal rule on
    :data:`PHI_AN_QUADRATURE_STEPS` steps.

    Examples
    --------
    >>> from seldinger.physics.tg43 import load_seed_data
    >>> [round(float(p), 4) for p in phi_an_from_f([1.0, 5.0], load_seed_data("6711"))]
    [0.945, 0.9449]
    """
    r = np.atleast_1d(np.asarray(r_cm, dtype=np.float64))
    theta = np.linspace(0.0, np.pi, PHI_AN_QUADRATURE_STEPS + 1)
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    z, y = rr * np.cos(tt), rr * np.sin(tt)
    y[:, -1] = y[:, 0] = 0.0
    integrand = (
        anisotropy_function(rr, np.degrees(tt), data)
        * geometry_line_per_cm2(z, y, data.length_cm)
        * np.sin(tt)
    )
    integral = np.trapezoid(integrand, theta, axis=1)
    t0 = np.radians(data.theta0_deg)
    g0 = geometry_line_per_cm2(r * np.cos(t0), r * np.sin(t0), data.length_cm)
    out = integral / (2.0 * g0)
    return out.reshape(np.shape(r_cm))


def phi_an_table(data: SeedData) -> tuple[FloatArray, FloatArray]:
    """The φ_an(r) table the 1-D models use: the data's own, else F integrated on F's r grid."""
    if data.phi_an_r_cm is not None and data.phi_an is not None:
        return data.phi_an_r_cm, data.phi_an
    return data.anisotropy_r_cm, phi_an_from_f(data.anisotropy_r_cm, data)


def phi_an_function(r_cm: npt.ArrayLike, data: SeedData) -> FloatArray:
    """φ_an(r): linear inside its table, the nearest tabulated value outside."""
    rr, pp = phi_an_table(data)
    return np.asarray(np.interp(np.asarray(r_cm, dtype=np.float64), rr, pp), dtype=np.float64)


def capsule_scale(z_cm: npt.ArrayLike, y_cm: npt.ArrayLike, data: SeedData) -> FloatArray:
    """Factor (>= 1) that moves a point inside the seed capsule out onto its surface.

    The capsule is the cylinder of length ``capsule_length_cm`` and diameter
    ``capsule_diameter_cm`` about the seed centre. A point inside it is moved radially
    (same θ) to the capsule surface; a point outside keeps its place (factor 1).
    """
    z = np.abs(np.asarray(z_cm, dtype=np.float64))
    y = np.asarray(y_cm, dtype=np.float64)
    with np.errstate(divide="ignore"):
        to_end = np.where(z > 0.0, 0.5 * data.capsule_length_cm / z, np.inf)
        to_side = np.where(y > 0.0, 0.5 * data.capsule_diameter_cm / y, np.inf)
    return np.asarray(np.maximum(1.0, np.minimum(to_end, to_side)), dtype=np.float64)
