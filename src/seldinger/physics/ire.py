"""Irreversible electroporation: the electric field of NanoKnife-type electrode pairs.

For each pair (anode at +V, cathode at 0) the steady potential solves ∇·(σ∇φ) = 0 on the
voxel grid (finite volumes, :mod:`seldinger.physics.solvers`), with the needles as sub-grid
Dirichlet lines (:mod:`seldinger.physics.electrodes`) and no current through the outside of
the body (or phantom). With the electroporation model, σ rises with |E| (Sel et al., IEEE
TBME 52:816, 2005: σ₀ below E_rev, σ₁ above E_irr, a smooth ramp between) and the problem is
iterated to a fixed point (under-relaxed). The lethal zone is where the largest |E| over all
pairs reaches the threshold; by default Garcia's pulse-number model (PLoS ONE 2014; the
Go-Smart constants, physics.md §3.2): E_c(n) = E₀·e^(−k₁ n) — 268.6 V/cm for 90 pulses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import VolumeGeometry
from seldinger.physics.electrodes import (
    Electrode,
    apply_well_factor,
    check_no_crossing,
    rasterise_electrode,
)
from seldinger.physics.solvers import (
    SolverMethod,
    SpdSolver,
    assemble_diffusion,
    face_conductances,
)

__all__ = [
    "GARCIA_A0_V_PER_CM",
    "GARCIA_E0_V_PER_CM",
    "MAX_CURRENT_A",
    "MAX_VOLTAGE_V",
    "VOLTAGE_TO_DISTANCE_V_PER_CM",
    "ElectrodePair",
    "ElectroporationModel",
    "IreResult",
    "PairResult",
    "field_magnitude_v_per_cm",
    "garcia_threshold_v_per_cm",
    "joule_heating_c",
    "parallel_probes",
    "solve_ire",
    "summary_of",
]

logger = logging.getLogger(__name__)

#: NanoKnife generator limits (physics.md §3.1: 3000 V maximum output; 50 A current limit).
MAX_VOLTAGE_V = 3000.0
MAX_CURRENT_A = 50.0
#: Garcia et al. PLoS ONE 2014 pulse-number model, Go-Smart `NumaIRE/MaxESolver.f90` [S].
GARCIA_E0_V_PER_CM = 3996.0
GARCIA_A0_V_PER_CM = 1441.0
GARCIA_K1 = 0.03
GARCIA_K2 = 0.06
#: The "1500 V/cm" voltage-to-distance rule of the NanoKnife protocol (physics.md §3.1).
VOLTAGE_TO_DISTANCE_V_PER_CM = 1500.0

FloatArray = npt.NDArray[np.float64]


def garcia_threshold_v_per_cm(n_pulses: int = 90, survival: float = 0.5) -> float:
    """Field (V/cm) at which a fraction ``survival`` of cells survive ``n_pulses`` pulses.

    S = 1/(1 + exp((E − E_c(n))/A(n))), E_c = E₀e^(−k₁n), A = A₀e^(−k₂n); survival 0.5
    gives E_c itself.

    >>> round(garcia_threshold_v_per_cm(90), 1), round(garcia_threshold_v_per_cm(90, 0.01), 1)
    (268.6, 298.5)
    """
    if not 0 < survival < 1:
        raise BadInputError(f"survival must lie in (0, 1); got {survival!r}.")
    if n_pulses < 1:
        raise BadInputError(f"n_pulses must be at least 1; got {n_pulses!r}.")
    e_c = GARCIA_E0_V_PER_CM * math.exp(-GARCIA_K1 * n_pulses)
    a = GARCIA_A0_V_PER_CM * math.exp(-GARCIA_K2 * n_pulses)
    return e_c + a * math.log(1.0 / survival - 1.0)


@dataclass(frozen=True)
class ElectrodePair:
    """One pulsed pair: probe indices and the voltage between them."""

    anode: int
    cathode: int
    voltage_v: float

    def __post_init__(self) -> None:
        if self.anode == self.cathode:
            raise BadInputError(
                f"A pair needs two different probes; got anode = cathode = {self.anode}."
            )
        if not (math.isfinite(self.voltage_v) and 0 < self.voltage_v <= MAX_VOLTAGE_V):
            raise BadInputError(
                f"Pair {self.anode}-{self.cathode}: voltage_v must be in (0, {MAX_VOLTAGE_V:.0f}] V "
                f"(the generator's maximum); got {self.voltage_v!r}."
            )


@dataclass(frozen=True)
class ElectroporationModel:
    """σ(E): σ₀ up to E_rev, σ₀·ratio from E_irr on, a smooth (C¹) ramp between.

    Defaults: rabbit liver thresholds 362 / 637 V/cm (Miklavčič et al. 2000, as used by Sel
    et al. 2005, [U]) and a 3.6-fold rise (Sel et al. 2005 fit σ₀ 0.067 → σ₁ 0.241 S/m, [U]).
    ``ratio = 1`` is the constant-σ model.
    """

    reversible_v_per_cm: float = 362.0
    irreversible_v_per_cm: float = 637.0
    ratio: float = 3.6

    def factor(self, field_v_per_cm: FloatArray) -> FloatArray:
        """σ/σ₀ at each field value."""
        span = self.irreversible_v_per_cm - self.reversible_v_per_cm
        x = np.clip((field_v_per_cm - self.reversible_v_per_cm) / span, 0.0, 1.0)
        smooth = x * x * (3.0 - 2.0 * x)
        return np.asarray(1.0 + (self.ratio - 1.0) * smooth, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class PairResult:
    """The field of one pair."""

    pair: ElectrodePair
    field_v_per_cm: FloatArray
    current_a: float
    iterations: int
    solver_iterations: list[int]
    anode_current_a: FloatArray  # grid-shaped: the current leaving each anode cell


@dataclass(frozen=True, eq=False)
class IreResult:
    """All pairs: the largest field over pairs and the lethal zone."""

    geometry: VolumeGeometry
    pairs: list[PairResult]
    max_field_v_per_cm: FloatArray
    threshold_v_per_cm: float
    conductivity_s_per_m: FloatArray  # of the last pair (after the σ(E) iterations)
    notes: list[str] = field(default_factory=list)

    @property
    def zone(self) -> npt.NDArray[np.bool_]:
        """Lethal zone: max |E| ≥ threshold."""
        return np.asarray(self.max_field_v_per_cm >= self.threshold_v_per_cm)


def field_magnitude_v_per_cm(
    potential_v: FloatArray, spacing_m: Sequence[float], electrode_cells: npt.NDArray[np.bool_]
) -> FloatArray:
    """|∇φ| in V/cm by central differences; electrode cells take their neighbours' maximum."""
    squared = np.zeros_like(potential_v)
    for axis, step in enumerate(spacing_m):
        if potential_v.shape[axis] > 1:
            squared += np.gradient(potential_v, step, axis=axis) ** 2
    magnitude = np.sqrt(squared) / 100.0
    if electrode_cells.any():
        from scipy import ndimage

        grown = ndimage.maximum_filter(np.where(electrode_cells, 0.0, magnitude), size=3)
        magnitude = np.where(electrode_cells, grown, magnitude)
    return np.asarray(magnitude, dtype=np.float64)


def solve_ire(
    geometry: VolumeGeometry,
    conductivity_s_per_m: FloatArray,
    electrodes: Sequence[Electrode],
    pairs: Sequence[ElectrodePair],
    *,
    threshold_v_per_cm: float | None = None,
    model: ElectroporationModel | None = None,
    active: npt.NDArray[np.bool_] | None = None,
    method: SolverMethod = "amg",
    rtol: float = 1e-6,
    max_iterations: int = 30,
    tolerance: float = 2e-3,
    relaxation: float = 0.5,
) -> IreResult:
    """The field of every pair on ``geometry``, the max over pairs and the lethal zone.

    Parameters
    ----------
    conductivity_s_per_m : ndarray
        Baseline σ₀ per voxel.
    model : ElectroporationModel, optional
        σ(E); ``None`` keeps σ constant.
    threshold_v_per_cm : float, optional
        Lethal field; default Garcia's E_c for 90 pulses (268.6 V/cm).
    active : bool ndarray, optional
        The body; outside it no current flows.
    tolerance : float
        Stop the σ(E) iterations when the pair current changes by less than this fraction.
    """
    if len(electrodes) < 2:
        raise BadInputError(f"IRE needs at least 2 probes; got {len(electrodes)}.")
    if len(electrodes) > 6:
        raise BadInputError(f"The NanoKnife drives 2 to 6 probes; got {len(electrodes)}.")
    if not pairs:
        raise BadInputError("IRE needs at least one pair (anode, cathode, voltage_v).")
    for pair in pairs:
        for end in (pair.anode, pair.cathode):
            if not 0 <= end < len(electrodes):
                raise BadInputError(
                    f"Pair {pair.anode}-{pair.cathode} names probe {end}, but probes are "
                    f"numbered 0..{len(electrodes) - 1}."
                )
    check_no_crossing(electrodes)
    threshold = garcia_threshold_v_per_cm(90) if threshold_v_per_cm is None else threshold_v_per_cm
    if not (math.isfinite(threshold) and threshold > 0):
        raise BadInputError(f"threshold_v_per_cm must be positive; got {threshold!r}.")
    spacing_m = [s / 1000.0 for s in geometry.spacing_mm]
    shape = geometry.shape
    sigma0 = np.asarray(conductivity_s_per_m, dtype=np.float64)
    rasters = [rasterise_electrode(e, geometry, active, n) for n, e in enumerate(electrodes)]
    results: list[PairResult] = []
    max_field = np.zeros(shape)
    notes: list[str] = []
    sigma = sigma0
    for pair in pairs:
        anode, cathode = rasters[pair.anode], rasters[pair.cathode]
        fixed = np.zeros(shape, dtype=bool)
        values = np.zeros(shape)
        anode_mask = np.zeros(shape, dtype=bool)
        anode_mask[tuple(anode.cells.T)] = True
        cathode_mask = np.zeros(shape, dtype=bool)
        cathode_mask[tuple(cathode.cells.T)] = True
        if (anode_mask & cathode_mask).any():
            raise BadInputError(
                f"Probes {pair.anode} and {pair.cathode} share voxels at this spacing; "
                "move them apart or use a finer --spacing-mm."
            )
        fixed |= anode_mask | cathode_mask
        values[anode_mask] = pair.voltage_v
        electrode_cells = anode_mask | cathode_mask
        solver = SpdSolver(method, rtol)
        sigma = sigma0.copy()
        potential: FloatArray | None = None
        current = math.nan
        iterations = 0
        outflow = np.zeros(shape)
        for iterations in range(1, max_iterations + 1):
            faces = face_conductances(sigma, spacing_m, active)
            apply_well_factor(faces, anode)
            apply_well_factor(faces, cathode)
            problem = assemble_diffusion(faces, fixed, values, active=active)
            guess = None if potential is None else potential.reshape(-1)[problem.free_index]
            potential = problem.expand(solver.solve(problem.matrix, problem.rhs, guess))
            outflow = problem.cell_outflow(potential, anode_mask)
            new_current = float(outflow.sum())
            field_v_per_cm = field_magnitude_v_per_cm(potential, spacing_m, electrode_cells)
            converged = abs(new_current - current) <= tolerance * abs(new_current)
            logger.debug("pair %s iteration %d current %.4f A", pair, iterations, new_current)
            current = new_current
            if model is None or model.ratio == 1.0 or converged:
                break
            target = sigma0 * model.factor(field_v_per_cm)
            sigma = sigma + relaxation * (target - sigma)  # (under-relaxed) fixed point
        else:
            notes.append(
                f"pair {pair.anode}-{pair.cathode}: σ(E) not converged in {max_iterations} "
                "iterations"
            )
        if current > MAX_CURRENT_A:
            note = (
                f"pair {pair.anode}-{pair.cathode}: current {current:.1f} A exceeds the "
                f"generator's {MAX_CURRENT_A:.0f} A; lower the voltage or the exposure"
            )
            logger.warning(note)
            notes.append(note)
        max_field = np.maximum(max_field, field_v_per_cm)
        results.append(
            PairResult(
                pair, field_v_per_cm, float(current), iterations, list(solver.iterations), outflow
            )
        )
    return IreResult(geometry, results, max_field, float(threshold), sigma, notes)


def joule_heating_c(
    field_v_per_cm: FloatArray,
    conductivity_s_per_m: FloatArray,
    heat_capacity_j_per_m3_k: FloatArray | float,
    n_pulses: int = 90,
    pulse_width_s: float = 100e-6,
) -> FloatArray:
    """Adiabatic temperature rise (K) of a pulse train: σ|E|²·n·τ/(ρc) (an upper bound)."""
    e_v_per_m = np.asarray(field_v_per_cm) * 100.0
    return np.asarray(
        conductivity_s_per_m * e_v_per_m**2 * n_pulses * pulse_width_s / heat_capacity_j_per_m3_k,
        dtype=np.float64,
    )


def parallel_probes(
    centre_lps_mm: Sequence[float],
    direction: Sequence[float],
    lesion_diameter_mm: float,
    *,
    spacing_mm: float | None = None,
    n_probes: int | None = None,
    exposure_mm: float | None = None,
    radius_mm: float = 0.5,
) -> tuple[list[Electrode], list[ElectrodePair]]:
    """Parallel probes around a lesion, NanoKnife style (physics.md §3.1).

    2 probes below 15 mm, 3 (triangle) up to 20 mm, 4 (square) up to 30 mm, 5 (square and
    centre) and 6 (2 × 3) above; spacing 15 mm, growing to 20 mm with the lesion; exposure
    covers the lesion plus 5 mm each side (10–25 mm), centred on it. Every pair of probes at
    most 1.5 × spacing apart is pulsed, at 1500 V/cm × distance (≤ 3000 V).

    >>> probes, pairs = parallel_probes((0, 0, 0), (0, 0, -1), 20.0)
    >>> len(probes), len(pairs), pairs[0].voltage_v
    (3, 3, 2250.0)
    """
    if not (math.isfinite(lesion_diameter_mm) and lesion_diameter_mm > 0):
        raise BadInputError(f"lesion_diameter_mm must be positive; got {lesion_diameter_mm!r}.")
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    if n_probes is None:
        n_probes = (
            2
            if lesion_diameter_mm < 15
            else 3
            if lesion_diameter_mm <= 20
            else (4 if lesion_diameter_mm <= 30 else 5 if lesion_diameter_mm <= 35 else 6)
        )
    if not 2 <= n_probes <= 6:
        raise BadInputError(f"n_probes must be 2 to 6; got {n_probes}.")
    if spacing_mm is None:
        spacing_mm = float(np.clip(lesion_diameter_mm * 0.75, 15.0, 20.0))
    if not 0 < spacing_mm <= 25:
        raise BadInputError(f"spacing_mm must be in (0, 25] mm; got {spacing_mm!r}.")
    if exposure_mm is None:
        exposure_mm = float(np.clip(lesion_diameter_mm + 10.0, 10.0, 25.0))
    u = np.cross(d, [1.0, 0, 0] if abs(d[0]) < 0.9 else [0, 1.0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    s = spacing_mm
    if n_probes <= 4:
        radius = s / (2 * math.sin(math.pi / n_probes))
        angles = [2 * math.pi * k / n_probes for k in range(n_probes)]
        offsets = [(radius * math.cos(a), radius * math.sin(a)) for a in angles]
    elif n_probes == 5:
        half = s / 2
        offsets = [(-half, -half), (half, -half), (half, half), (-half, half), (0.0, 0.0)]
    else:
        offsets = [(x * s, y * s) for y in (-0.5, 0.5) for x in (-1.0, 0.0, 1.0)]
    centre = np.asarray(centre_lps_mm, dtype=np.float64)
    tip_centre = centre + d * exposure_mm / 2
    probes = [
        Electrode(tuple(tip_centre + a * u + b * v), tuple(d), exposure_mm, radius_mm)
        for a, b in offsets
    ]
    pairs = []
    for n in range(n_probes):
        for m in range(n + 1, n_probes):
            gap = math.dist(offsets[n], offsets[m])
            if gap <= 1.5 * s + 1e-6:
                volts = min(MAX_VOLTAGE_V, VOLTAGE_TO_DISTANCE_V_PER_CM * gap / 10.0)
                pairs.append(ElectrodePair(n, m, round(volts, 1)))
    return probes, pairs


def summary_of(result: IreResult) -> dict[str, Any]:
    """JSON-ready: currents per pair, iterations, threshold, zone volume."""
    voxel_ml = float(np.prod(result.geometry.spacing_mm)) / 1000.0
    return {
        "threshold_v_per_cm": result.threshold_v_per_cm,
        "zone_volume_ml": float(result.zone.sum()) * voxel_ml,
        "pairs": [
            {
                "anode": p.pair.anode,
                "cathode": p.pair.cathode,
                "voltage_v": p.pair.voltage_v,
                "current_a": p.current_a,
                "sigma_iterations": p.iterations,
            }
            for p in result.pairs
        ],
        "notes": result.notes,
    }
