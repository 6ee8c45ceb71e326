"""Dose-volume histograms and the implant quality indices of seed brachytherapy.

Definitions (``../shared/reference/physics.md`` §1.6, after ICRU/ABS usage), with the
prescription dose PD:

- D_x: the minimum dose received by the hottest x % of the structure (D90, D100);
- V_x: the percentage of the structure receiving at least x % of PD (V100, V150, V200);
- conformity index CI = (V_T,ref / V_T) · (V_T,ref / V_ref), with V_T the target volume,
  V_ref the volume of the whole grid (body) receiving >= PD and V_T,ref its part in the
  target (1 = the PD isodose is the target);
- external index EI = (V_ref − V_T,ref) / V_T (normal tissue inside the PD isodose);
- homogeneity index HI = (V_T,100 − V_T,150) / V_T,100.

Voxels count with their volume; every voxel of a structure holds the dose at its centre.
D_x of N voxels is the dose of the ceil(x·N/100)-th hottest voxel (the smallest dose of the
hottest x %); V_x counts voxels with dose >= x % of PD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = [
    "DVH",
    "cumulative_dvh",
    "dose_at_volume_gy",
    "implant_indices",
    "volume_at_dose_percent",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DVH:
    """Cumulative DVH: percentage of the structure receiving at least each dose."""

    name: str
    dose_gy: FloatArray  # increasing bin edges, from 0
    volume_percent: FloatArray  # same length, non-increasing, 100 at 0 Gy
    volume_ml: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (rounded)."""
        return {
            "name": self.name,
            "volume_ml": round(self.volume_ml, 3),
            "dose_gy": np.round(self.dose_gy, 3).tolist(),
            "volume_percent": np.round(self.volume_percent, 3).tolist(),
        }


def _values(dose_gy: npt.ArrayLike, mask: npt.ArrayLike) -> FloatArray:
    dose = np.asarray(dose_gy, dtype=np.float64)
    inside = np.asarray(mask, dtype=bool)
    if dose.shape != inside.shape:
        raise BadInputError(
            f"dose and mask must have the same shape (one grid); got {dose.shape} and "
            f"{inside.shape}. Compute the dose on the structure's grid."
        )
    if not inside.any():
        raise BadInputError("the structure mask is empty; a DVH needs at least one voxel.")
    values = dose[inside]
    if not np.all(np.isfinite(values)):
        raise BadInputError(
            "the dose holds NaN or infinite values inside the structure (a point inside a "
            "seed?); resolve them before the DVH."
        )
    return values


def dose_at_volume_gy(dose_gy: npt.ArrayLike, mask: npt.ArrayLike, percent: float) -> float:
    """D_x: the smallest dose of the hottest ``percent`` % of the structure (Gy)."""
    if not 0 < percent <= 100:
        raise BadInputError(f"percent must lie in (0, 100]; got {percent}.")
    values = np.sort(_values(dose_gy, mask))[::-1]
    k = max(1, math.ceil(percent * values.size / 100.0 - 1e-9))
    return float(values[k - 1])


def volume_at_dose_percent(dose_gy: npt.ArrayLike, mask: npt.ArrayLike, level_gy: float) -> float:
    """V: the percentage of the structure receiving at least ``level_gy``."""
    values = _values(dose_gy, mask)
    return 100.0 * float(np.count_nonzero(values >= level_gy)) / values.size


def cumulative_dvh(
    dose_gy: npt.ArrayLike,
    mask: npt.ArrayLike,
    voxel_ml: float,
    name: str = "structure",
    bin_gy: float | None = None,
    max_gy: float | None = None,
) -> DVH:
    """Cumulative DVH of one structure.

    Parameters
    ----------
    dose_gy, mask : arrays of one shape
        Dose per voxel and the structure.
    voxel_ml : float
        Volume of one voxel (mL).
    bin_gy, max_gy : float, optional
        Dose step and last dose (default: 1/200 of the maximum, up to the maximum).
    """
    if not voxel_ml > 0:
        raise BadInputError(f"voxel_ml must be > 0; got {voxel_ml}.")
    values = _values(dose_gy, mask)
    top = float(max_gy if max_gy is not None else values.max())
    step = float(bin_gy if bin_gy is not None else max(top, 1e-9) / 200.0)
    if not step > 0:
        raise BadInputError(f"bin_gy must be > 0; got {bin_gy}.")
    edges = np.arange(0.0, top + step, step)
    ordered = np.sort(values)
    at_least = ordered.size - np.searchsorted(ordered, edges, side="left")
    return DVH(
        name=name,
        dose_gy=edges,
        volume_percent=100.0 * at_least / ordered.size,
        volume_ml=float(values.size) * voxel_ml,
    )


def implant_indices(
    dose_gy: npt.ArrayLike,
    target: npt.ArrayLike,
    prescription_gy: float,
    body: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """D90, D100, V100, V150, V200 of the target, and CI, EI, HI.

    ``body`` (default: the whole grid) is where V_ref, the volume receiving >= PD, is
    counted; the grid must hold the whole PD isodose for CI and EI to be right.
    """
    if not prescription_gy > 0:
        raise BadInputError(f"prescription_gy must be > 0; got {prescription_gy}.")
    dose = np.asarray(dose_gy, dtype=np.float64)
    tgt = np.asarray(target, dtype=bool)
    region = np.ones(dose.shape, dtype=bool) if body is None else np.asarray(body, dtype=bool)
    values = _values(dose, tgt)
    v_t = float(values.size)
    v_t_ref = float(np.count_nonzero(values >= prescription_gy))
    v_ref = float(np.count_nonzero(region & (dose >= prescription_gy)))
    v_t_150 = float(np.count_nonzero(values >= 1.5 * prescription_gy))
    return {
        "d90_gy": dose_at_volume_gy(dose, tgt, 90.0),
        "d100_gy": dose_at_volume_gy(dose, tgt, 100.0),
        "v100_percent": 100.0 * v_t_ref / v_t,
        "v150_percent": 100.0 * v_t_150 / v_t,
        "v200_percent": 100.0 * float(np.count_nonzero(values >= 2.0 * prescription_gy)) / v_t,
        "conformity_index": (v_t_ref / v_t) * (v_t_ref / v_ref) if v_ref else 0.0,
        "external_index": (v_ref - v_t_ref) / v_t,
        "homogeneity_index": (v_t_ref - v_t_150) / v_t_ref if v_t_ref else 0.0,
    }
