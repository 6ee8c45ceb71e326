"""Risk score of a needle path (log odds from published odds ratios) and the Pareto set.

The evidence: a meta-analysis of CT-guided lung biopsy (Huo et al., Br J Radiol 2020;
93:20190866, 36 studies, 23 104 patients; ../shared/reference/navigation.md section 3.3)
gives pneumothorax odds ratios for bulla crossed 6.13, fissure crossed 3.75, emphysema
3.33, more than one pleural puncture 2.43 and lesion depth >= 3 cm 2.38. Each factor a path
has adds ln(OR) to its score, as it would to the log odds of pneumothorax in a logistic
model with independent factors (an approximation: the odds ratios are unadjusted pooled
estimates). Lesion properties that every path shares (size, pleural contact) are left out:
they do not change the ranking.

Factors without a published odds ratio are small tie-breakers, kept below the weakest
evidence term so they order paths only among those with equal evidence: needle length,
aerated lung traversed, angle to the pleura (its association with pneumothorax is reported
without a pooled estimate: Shiekh et al., Pol J Radiol 2019;84:e73), and vessel margin.

A target in the liver adds one practice rule with no pooled odds ratio either: the needle
should cross at least 1 cm of normal liver before it enters the lesion, so that the
parenchyma tamponades the tract (less capsular bleeding, less tumour seeding along it; a
subcapsular lesion is not entered straight from the capsule). A path with no parenchyma
scores :data:`LIVER_CAPSULE_WEIGHT`, falling linearly to 0 at :data:`LIVER_PARENCHYMA_MM`:
between the fissure and bulla terms, so a path keeping the rule ranks above one breaking it
unless the other is better by a whole evidence factor (a dome lesion reached through the
lung, say).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba as nb
import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = [
    "EVIDENCE_ODDS_RATIOS",
    "LIVER_CAPSULE_WEIGHT",
    "LIVER_PARENCHYMA_MM",
    "RIB_MARGIN_MM",
    "TIE_BREAKERS",
    "pareto_front",
    "risk_terms",
]

#: Pneumothorax odds ratios (Huo et al. 2020) by path factor.
EVIDENCE_ODDS_RATIOS: Mapping[str, float] = {
    "bulla_crossed": 6.13,
    "fissure_crossed": 3.75,
    "emphysema_crossed": 3.33,
    "multiple_pleural_punctures": 2.43,
    "depth_3cm_or_more": 2.38,
}
#: The depth term ramps from 0 to ln(2.38) over this range of aerated-lung depth (mm),
#: centred on the 3 cm cut-off, so that 29 and 31 mm do not rank as different classes.
DEPTH_RAMP_MM = (20.0, 40.0)
#: Tie-breaker weights (score units): per mm of needle, per mm of aerated lung, for a
#: needle tangent to the pleura (0 when perpendicular), for a vessel at the safety
#: distance (falling to 0 at 10 mm beyond it), and for a needle touching a rib where it
#: crosses the chest wall (falling to 0 at :data:`RIB_MARGIN_MM`: the intercostal vessels
#: and nerve run along the ribs, and a needle grazing a rib deflects).
TIE_BREAKERS: Mapping[str, float] = {
    "per_mm_length": 0.001,
    "per_mm_lung": 0.004,
    "pleura_tangent": 0.25,
    "vessel_near": 0.25,
    "rib_near": 0.25,
}
_VESSEL_FADE_MM = 10.0
#: A path this far from the nearest rib at the chest wall has no rib term.
RIB_MARGIN_MM = 5.0
#: Normal liver a path to a liver target should cross before the lesion (mm).
LIVER_PARENCHYMA_MM = 10.0
#: Score of a path entering a liver lesion straight from the capsule (see the module text).
LIVER_CAPSULE_WEIGHT = 1.5


def risk_terms(
    length_mm: npt.NDArray[np.float64],
    lung_mm: npt.NDArray[np.float64],
    crossings: npt.NDArray[np.int32],
    depth_mm: npt.NDArray[np.float64],
    emphysema_mm: npt.NDArray[np.float64],
    bulla: npt.NDArray[np.bool_],
    pleura_angle_deg: npt.NDArray[np.float64],
    vessel_mm: npt.NDArray[np.float64],
    vessel_safety_mm: float,
    fissure_crossings: npt.NDArray[np.int32] | None = None,
    rib_margin_mm: npt.NDArray[np.float64] | None = None,
    liver_mm: npt.NDArray[np.float64] | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Score terms per path (arrays of the same length); their sum is the risk score.

    ``depth_mm`` and ``pleura_angle_deg`` are NaN for paths that do not cross the pleura;
    ``vessel_mm`` is the closest distance to a vessel above the calibre (inf: none);
    ``fissure_crossings`` (None: lobes unknown) adds ln(3.75) to a path crossing a fissure;
    ``rib_margin_mm`` is the closest bone where the path crosses the chest wall;
    ``liver_mm`` (None: the target is not in the liver) is the normal liver crossed before
    the lesion.
    """
    log = {k: math.log(v) for k, v in EVIDENCE_ODDS_RATIOS.items()}
    lo, hi = DEPTH_RAMP_MM
    depth = np.nan_to_num(depth_mm, nan=0.0)
    terms = {
        "bulla_crossed": np.where(bulla, log["bulla_crossed"], 0.0),
        "emphysema_crossed": np.where(emphysema_mm > 0, log["emphysema_crossed"], 0.0),
        "multiple_pleural_punctures": np.where(
            crossings > 1, log["multiple_pleural_punctures"], 0.0
        ),
        "depth_3cm_or_more": log["depth_3cm_or_more"] * np.clip((depth - lo) / (hi - lo), 0, 1),
        "length": TIE_BREAKERS["per_mm_length"] * length_mm,
        "lung_length": TIE_BREAKERS["per_mm_lung"] * lung_mm,
        "pleura_angle": TIE_BREAKERS["pleura_tangent"]
        * (1.0 - np.sin(np.radians(np.nan_to_num(pleura_angle_deg, nan=90.0)))),
        "vessel_margin": TIE_BREAKERS["vessel_near"]
        * np.clip(1.0 - (vessel_mm - vessel_safety_mm) / _VESSEL_FADE_MM, 0.0, 1.0),
    }
    if fissure_crossings is not None:
        terms["fissure_crossed"] = np.where(fissure_crossings > 0, log["fissure_crossed"], 0.0)
    if rib_margin_mm is not None:
        near = np.clip(1.0 - rib_margin_mm / RIB_MARGIN_MM, 0.0, 1.0)
        terms["rib_margin"] = TIE_BREAKERS["rib_near"] * near
    if liver_mm is not None:
        short = np.clip(1.0 - liver_mm / LIVER_PARENCHYMA_MM, 0.0, 1.0)
        terms["liver_capsule"] = LIVER_CAPSULE_WEIGHT * short
    return {k: np.asarray(v, dtype=np.float64) for k, v in terms.items()}


@nb.njit(cache=True)
def _front(objectives: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:  # pragma: no cover
    n, m = objectives.shape
    keep = np.zeros(n, dtype=np.bool_)
    front = np.empty(n, dtype=np.int64)
    size = 0
    # Rows come sorted lexicographically, so a row can only be dominated by an earlier one,
    # and if by any earlier row then by one on the front (dominance is transitive).
    for r in range(n):
        dominated = False
        for f in range(size):
            q = front[f]
            no_worse = True
            for c in range(m):
                if objectives[q, c] > objectives[r, c]:
                    no_worse = False
                    break
            if no_worse:
                # Better somewhere (sorted earlier), or an equal row: keep the first only.
                dominated = True
                break
        if not dominated:
            keep[r] = True
            front[size] = r
            size += 1
    return keep


def pareto_front(objectives: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Rows not dominated by any other (all objectives minimised; duplicates kept once).

    Parameters
    ----------
    objectives : array (n, m)
        One row per path, one column per objective, smaller is better.

    Returns
    -------
    ndarray of bool (n,)
    """
    values = np.asarray(objectives, dtype=np.float64)
    if values.ndim != 2:
        raise BadInputError(
            f"objectives must be 2-D (paths x objectives); got shape {values.shape}."
        )
    if not np.all(np.isfinite(values)):
        raise BadInputError("objectives must be finite; replace NaN/inf (e.g. cap distances).")
    if values.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(values.T[::-1])
    keep_sorted = _front(np.ascontiguousarray(values[order]))
    keep = np.zeros(values.shape[0], dtype=bool)
    keep[order] = keep_sorted
    return keep
