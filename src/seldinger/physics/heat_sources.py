"""Heat sources of the thermal devices on the voxel grid: point, RF electrode, MW antenna.

* **Point source** (the analytic checks): all the power in the cell holding the point.
* **RF electrode** (Cool-tip type): Q = σ|∇φ|² with ∇·(σ∇φ) = 0, the exposed electrode at a
  fixed potential and the grid's outer layer grounded (the return pads are far away);
  the dissipation of every face, G·Δφ², goes to its tissue cells, then Q is scaled so that
  ΣQ = the delivered power. An internally cooled electrode holds its cells at the coolant
  temperature.
* **MW antenna**: a SAR pattern instead of Maxwell's equations, of the separable form used
  by look-up MWA planners: cylindrical spreading with the attenuation of 2.45 GHz fields in
  liver and a Gaussian along the antenna centred on the feed gap,

      SAR ∝ exp(−2 α ρ) / max(ρ, ρ₀) · exp(−(s − s_feed)² / (2 ℓ²)),

  with ρ the distance from the antenna axis and s the position along it. α = 48 Np/m follows
  from ε_r = 43.03, σ = 1.69 S/m (physics.md §2.2, [S]); ρ₀ is the antenna radius; s_feed and
  ℓ are per device (data/thermal_devices.json). The form is a modelling choice [U]; the power
  reaching tissue is calibrated against the catalogue zones (``efficiency``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import VolumeGeometry
from seldinger.physics.electrodes import (
    Electrode,
    RasterisedElectrode,
    apply_well_factor,
    rasterise_electrode,
)
from seldinger.physics.solvers import SpdSolver, assemble_diffusion, face_conductances

__all__ = [
    "MW_ATTENUATION_NP_PER_M",
    "attenuation_np_per_m",
    "mw_antenna_heat_w",
    "point_source_heat_w",
    "rf_electrode_heat_w",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
VACUUM_PERMITTIVITY_F_PER_M = 8.8541878128e-12
VACUUM_PERMEABILITY_H_PER_M = 4e-7 * math.pi


def attenuation_np_per_m(
    frequency_hz: float, relative_permittivity: float, conductivity_s_per_m: float
) -> float:
    """Field attenuation constant α (Np/m) of a plane wave in a lossy dielectric.

    >>> round(attenuation_np_per_m(2.45e9, 43.03, 1.69), 1)
    48.0
    """
    omega = 2 * math.pi * frequency_hz
    eps = relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
    loss = conductivity_s_per_m / (omega * eps)
    return (
        omega
        * math.sqrt(VACUUM_PERMEABILITY_H_PER_M * eps / 2)
        * math.sqrt(math.sqrt(1 + loss * loss) - 1)
    )


#: Liver at 2.45 GHz (physics.md §2.2: ε_r 43.03, σ 1.69 S/m; COMSOL MWA model [S]).
MW_ATTENUATION_NP_PER_M = attenuation_np_per_m(2.45e9, 43.03, 1.69)


def point_source_heat_w(
    geometry: VolumeGeometry, point_lps_mm: npt.ArrayLike, power_w: float
) -> FloatArray:
    """``power_w`` in the cell nearest ``point_lps_mm``."""
    index = np.rint(geometry.lps_to_index(np.asarray(point_lps_mm, dtype=np.float64))).astype(int)
    if np.any(index < 0) or np.any(index >= np.asarray(geometry.shape)):
        raise BadInputError(
            f"The point source {np.asarray(point_lps_mm).tolist()} LPS mm lies outside the grid."
        )
    heat = np.zeros(geometry.shape)
    heat[tuple(index)] = power_w
    return heat


def rf_electrode_heat_w(
    geometry: VolumeGeometry,
    conductivity_s_per_m: FloatArray,
    electrodes: Sequence[Electrode],
    power_w: float,
    active: BoolArray | None = None,
) -> tuple[FloatArray, BoolArray, list[RasterisedElectrode]]:
    """Joule heat (W per cell) of monopolar RF electrodes (driven together) giving ``power_w``.

    Returns the heat, the electrodes' cells and their rasters.
    """
    if not (math.isfinite(power_w) and power_w > 0):
        raise BadInputError(f"power_w must be positive; got {power_w!r}.")
    rasters = [rasterise_electrode(e, geometry, active, n) for n, e in enumerate(electrodes)]
    shape = geometry.shape
    spacing_m = [s / 1000.0 for s in geometry.spacing_mm]
    cells = np.zeros(shape, dtype=bool)
    for raster in rasters:
        cells[tuple(raster.cells.T)] = True
    ground = np.ones(shape, dtype=bool)
    ground[1:-1, 1:-1, 1:-1] = False
    fixed = cells | (ground & ~cells)
    values = np.where(cells, 1.0, 0.0)
    faces = face_conductances(conductivity_s_per_m, spacing_m, active)
    for raster in rasters:
        apply_well_factor(faces, raster)
    problem = assemble_diffusion(faces, fixed, values, active=active)
    potential = problem.expand(SpdSolver("amg", 1e-8).solve(problem.matrix, problem.rhs))
    heat = np.zeros(shape)
    for axis, g in enumerate(faces):
        n = shape[axis]
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, n - 1)
        hi[axis] = slice(1, n)
        drop = np.take(potential, np.arange(1, n), axis=axis) - np.take(
            potential, np.arange(n - 1), axis=axis
        )
        power = g * drop * drop
        c_lo, c_hi = cells[tuple(lo)], cells[tuple(hi)]
        share_lo = np.where(c_lo, 0.0, np.where(c_hi, 1.0, 0.5))
        share_hi = np.where(c_hi, 0.0, np.where(c_lo, 1.0, 0.5))
        heat[tuple(lo)] += power * share_lo
        heat[tuple(hi)] += power * share_hi
    heat[ground] = 0.0
    total = heat.sum()
    if total <= 0:
        raise BadInputError("The RF electrode delivers no power: is it inside conducting tissue?")
    return heat * (power_w / total), cells, rasters


def mw_antenna_heat_w(
    geometry: VolumeGeometry,
    antenna: Electrode,
    power_w: float,
    *,
    feed_offset_mm: float,
    axial_sd_mm: float,
    attenuation_per_m: float = MW_ATTENUATION_NP_PER_M,
    active: BoolArray | None = None,
) -> FloatArray:
    """SAR-pattern heat (W per cell) of a MW antenna, summing to ``power_w`` in tissue.

    ``feed_offset_mm``: signed position of the feed gap along the insertion direction from
    the tip (negative: behind the tip).
    """
    if not (math.isfinite(power_w) and power_w > 0):
        raise BadInputError(f"power_w must be positive; got {power_w!r}.")
    ii, jj, kk = np.indices(geometry.shape, dtype=np.float64)
    pts = (
        geometry.affine[:3, :3] @ np.stack([ii.ravel(), jj.ravel(), kk.ravel()])
        + geometry.affine[:3, 3:4]
    )
    rel = pts - np.asarray(antenna.tip_lps_mm)[:, None]
    d = np.asarray(antenna.direction)
    along = d @ rel  # mm, positive beyond the tip
    radial = np.linalg.norm(rel - np.outer(d, along), axis=0)
    rho = np.maximum(radial, antenna.radius_mm)
    s = along - feed_offset_mm
    axial = np.exp(-0.5 * (s / axial_sd_mm) ** 2)
    # the shaft does not radiate far beyond the tip: fall off past the tip over ℓ/2
    axial *= np.where(along > 0, np.exp(-0.5 * (along / (0.5 * axial_sd_mm)) ** 2), 1.0)
    sar = np.exp(-2.0 * attenuation_per_m * rho / 1000.0) / rho * axial
    sar = sar.reshape(geometry.shape)
    if active is not None:
        sar = np.where(active, sar, 0.0)
    return np.asarray(sar * (power_w / sar.sum()), dtype=np.float64)
