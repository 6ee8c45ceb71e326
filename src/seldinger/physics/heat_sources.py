"""Heat sources of the thermal devices on the voxel grid: point, RF electrode, MW antenna.

* **Point source** (the analytic checks): all the power in the cell holding the point.
* **RF electrode** (Cool-tip type): Q = σ|∇φ|² with ∇·(σ∇φ) = 0, the exposed electrode at a
  fixed potential and the grid's outer layer grounded (the return pads are far away);
  the dissipation of every face, G·Δφ², goes to its tissue cells, then Q is scaled so that
  ΣQ = the delivered power. An internally cooled electrode holds its cells at the coolant
  temperature.
* **MW antenna**: Q = ½σ|E|² of the antenna in homogeneous tissue, solved from Maxwell's
  equations in the antenna's axisymmetric (r, z) plane by :mod:`seldinger.physics.mw_antenna`
  (TM finite elements in u = r·H_φ, TEM port, PEC conductors, absorbing outer boundary; the
  coaxial slot antenna of Saito et al. 2000 / the COMSOL "Microwave Cancer Therapy" model
  unless a device names another design). The pattern per watt is mapped onto the voxels by
  the voxel's distance ρ from the antenna axis and position s along it (bilinear
  interpolation of the cell-averaged Q(r, z); voxels near the axis average 3×3×3 sub-points
  because Q falls as ~1/ρ² there), then scaled so that ΣQ = the delivered power in tissue
  (the setting's calibrated, effective power; the antenna's S11 is reported, not applied).
  The tissue is taken as homogeneous with the dielectric properties of the tissue at the
  antenna (liver at 2.45 GHz by default: ε_r 43.03, σ 1.69 S/m, physics.md §2.2):
  heterogeneity inside the near field (vessels, a tumour with other ε_r, σ) is not modelled.
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
from seldinger.physics.mw_antenna import (
    LIVER_2450MHZ,
    SAITO_SLOT_ANTENNA,
    CoaxialSlotAntenna,
    TissueDielectric,
    antenna_sar,
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
    design: CoaxialSlotAntenna = SAITO_SLOT_ANTENNA,
    tissue: TissueDielectric = LIVER_2450MHZ,
    active: BoolArray | None = None,
) -> FloatArray:
    """Maxwell-solved heat (W per cell) of a MW antenna, summing to ``power_w`` in tissue.

    ``antenna.tip_lps_mm`` is the antenna's (catheter's) tip and ``antenna.direction`` the
    insertion direction; ``design`` and ``tissue`` select the cached axisymmetric solution.
    """
    if not (math.isfinite(power_w) and power_w > 0):
        raise BadInputError(f"power_w must be positive; got {power_w!r}.")
    pattern = antenna_sar(design, tissue).interpolator()
    shape = geometry.shape
    tip = np.asarray(antenna.tip_lps_mm)
    d = np.asarray(antenna.direction)
    ii, jj, kk = np.indices(shape, dtype=np.float64)
    index = np.stack([ii.ravel(), jj.ravel(), kk.ravel()])
    linear = geometry.affine[:3, :3]
    rel = linear @ index + (geometry.affine[:3, 3] - tip)[:, None]
    along = d @ rel  # mm, positive beyond the tip
    radial = np.linalg.norm(rel - np.outer(d, along), axis=0)
    q = pattern(np.stack([radial, along], axis=1))
    # near the axis Q varies as ~1/ρ² within a voxel: average 3×3×3 sub-points there
    near = np.nonzero(radial < 1.5 * max(geometry.spacing_mm))[0]
    if near.size:
        sub = (np.arange(3) - 1.0) / 3.0
        offsets = np.stack(np.meshgrid(sub, sub, sub, indexing="ij"), -1).reshape(-1, 3)
        rel_sub = rel[:, near][:, None, :] + (linear @ offsets.T)[:, :, None]
        along_sub = np.einsum("i,ijk->jk", d, rel_sub)
        radial_sub = np.linalg.norm(rel_sub - d[:, None, None] * along_sub[None], axis=0)
        q_sub = pattern(np.stack([radial_sub.ravel(), along_sub.ravel()], axis=1))
        q[near] = q_sub.reshape(offsets.shape[0], near.size).mean(axis=0)
    heat = q.reshape(shape)
    if active is not None:
        heat = np.where(active, heat, 0.0)
    total = float(heat.sum())
    if total <= 0:
        raise BadInputError("The MW antenna lies outside the grid: no power reaches its cells.")
    return np.asarray(heat * (power_w / total), dtype=np.float64)
