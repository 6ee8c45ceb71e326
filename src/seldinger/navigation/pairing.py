"""Automatic pairing of unordered fiducial sets: which tracked point is which CT marker.

Rigid-invariant distance signatures matched by assignment, verified by registration
residuals, with an exhaustive triangle search when signatures are ambiguous. See
``docs/navigation_registration.md``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from seldinger.navigation.registration import (
    PointRegistration,
    RegistrationError,
    as_points,
    register_points,
    rigid_fit,
)
from seldinger.navigation.transforms import apply_transform

__all__ = ["PairingError", "PointPairing", "pair_points"]

Float64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class PairingError(RegistrationError):
    """Unordered point sets that cannot be paired unambiguously within the tolerance."""


@dataclass(frozen=True, eq=False)
class PointPairing:
    """Result of :func:`pair_points`: which CT point each tracker point is.

    Attributes
    ----------
    ct_index, tracker_index : ndarray of int, shape (K,)
        Matched pairs: ``ct_points_mm[ct_index[k]]`` ↔ ``tracker_points_mm[tracker_index[k]]``,
        sorted by ``ct_index``.
    registration : PointRegistration
        Rigid registration of the matched pairs, fixed = CT, moving = tracker.
    unmatched_ct, unmatched_tracker : tuple of int
        Points left without a partner (at most one, in one of the sets).
    method : str
        ``"signatures"`` (distance signatures + assignment) or ``"triplets"`` (exhaustive
        search over congruent triangles, used when signatures fail or tie).
    """

    ct_index: IntArray
    tracker_index: IntArray
    registration: PointRegistration
    unmatched_ct: tuple[int, ...]
    unmatched_tracker: tuple[int, ...]
    method: str

    @property
    def tracker_to_ct(self) -> Float64Array:
        """The registration's ``moving_to_fixed``."""
        return self.registration.moving_to_fixed

    @property
    def permutation(self) -> IntArray:
        """For each tracker point, the index of its CT partner (−1 when unmatched)."""
        n = len(self.ct_index) + len(self.unmatched_tracker)
        out = np.full(n, -1, dtype=np.intp)
        out[self.tracker_index] = self.ct_index
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "pairs": [
                [int(c), int(t)] for c, t in zip(self.ct_index, self.tracker_index, strict=True)
            ],
            "unmatched_ct": list(self.unmatched_ct),
            "unmatched_tracker": list(self.unmatched_tracker),
            "method": self.method,
            "registration": self.registration.to_dict(),
        }


def _signatures(points: Float64Array) -> Float64Array:
    """Each point's sorted distances to the others (rigid-invariant), shape (N, N−1)."""
    d = cdist(points, points)
    return np.sort(d, axis=1)[:, 1:]


def _signature_cost(a: Float64Array, b: Float64Array) -> Float64Array:
    """Mean |difference| between signature rows; one element of the longer rows dropped.

    a: (n, L), b: (m, L) or (m, L + 1) (or the reverse). Returns (n, m).
    """
    if a.shape[1] == b.shape[1]:
        return np.mean(np.abs(a[:, None, :] - b[None, :, :]), axis=2)
    if a.shape[1] > b.shape[1]:
        return _signature_cost(b, a).T
    length = a.shape[1]
    # Dropping b[k]: a[:k] pairs with b[:k] and a[k:] with b[k+1:]; prefix sums give
    # every k at once.
    head = np.abs(a[:, None, :] - b[None, :, :-1])
    tail = np.abs(a[:, None, :] - b[None, :, 1:])
    zeros = np.zeros((*head.shape[:2], 1))
    head_sum = np.concatenate([zeros, np.cumsum(head, axis=2)], axis=2)  # Σ_{j<k}
    tail_sum = np.concatenate([np.cumsum(tail[:, :, ::-1], axis=2)[:, :, ::-1], zeros], axis=2)
    return np.min(head_sum + tail_sum, axis=2) / length


def _verified(
    ct: Float64Array, tracker: Float64Array, ct_index: IntArray, tracker_index: IntArray, tol: float
) -> PointRegistration | None:
    if len(ct_index) < 3:
        return None
    try:
        result = register_points(ct[ct_index], tracker[tracker_index])
    except RegistrationError:  # a wrong pairing may pick collinear subsets
        return None
    return result if float(result.residuals_mm.max()) <= tol else None


def _triplet_solutions(
    ct: Float64Array, tracker: Float64Array, tol: float
) -> dict[tuple[tuple[int, int], ...], PointRegistration]:
    """Every pairing of all min(n_ct, n_tracker) points that registers within ``tol``.

    Exhaustive over the ordered tracker triplets congruent to one anchor triangle of CT
    points, so that a symmetric layout shows all its pairings. When the counts differ by
    one, each point of the larger set is left out in turn.
    """
    solutions: dict[tuple[tuple[int, int], ...], PointRegistration] = {}
    if len(ct) != len(tracker):
        larger_is_ct = len(ct) > len(tracker)
        for left_out in range(max(len(ct), len(tracker))):
            keep = np.delete(np.arange(max(len(ct), len(tracker))), left_out)
            if larger_is_ct:
                sub = _triplet_solutions(ct[keep], tracker, tol)
            else:
                sub = _triplet_solutions(ct, tracker[keep], tol)
            for pairs, result in sub.items():
                mapped = tuple(
                    (int(keep[c]), t) if larger_is_ct else (c, int(keep[t])) for c, t in pairs
                )
                solutions[mapped] = result
        return solutions
    d_ct, d_tr = cdist(ct, ct), cdist(tracker, tracker)
    # Anchor: the CT triangle of largest area (best conditioned for a 3-point fit).
    best_area, anchor = -1.0, (0, 1, 2)
    for a, b, c in itertools.combinations(range(len(ct)), 3):
        area = float(np.linalg.norm(np.cross(ct[b] - ct[a], ct[c] - ct[a])))
        if area > best_area:
            best_area, anchor = area, (a, b, c)
    a, b, c = anchor
    for p, q, r in itertools.permutations(range(len(tracker)), 3):
        if (
            abs(d_tr[p, q] - d_ct[a, b]) > 2 * tol
            or abs(d_tr[p, r] - d_ct[a, c]) > 2 * tol
            or abs(d_tr[q, r] - d_ct[b, c]) > 2 * tol
        ):
            continue
        guess, _ = rigid_fit(ct[[a, b, c]], tracker[[p, q, r]])
        rows, cols = linear_sum_assignment(cdist(ct, apply_transform(tracker, guess)))
        found = _verified(ct, tracker, rows, cols, tol)
        if found is not None:
            solutions[tuple((int(i), int(j)) for i, j in zip(rows, cols, strict=True))] = found
    return solutions


def pair_points(
    ct_points_mm: npt.ArrayLike, tracker_points_mm: npt.ArrayLike, tolerance_mm: float
) -> PointPairing:
    """Pair unordered fiducials found in the CT and touched with the tracker, and register.

    1. Each point's sorted distances to the others (a rigid-invariant signature) are
       compared across the sets and paired by optimal assignment
       (:func:`scipy.optimize.linear_sum_assignment`); the pairing is accepted when the
       registration of the pairs leaves every residual ≤ ``tolerance_mm`` and no point's
       signature ties with another's within ``tolerance_mm``.
    2. Otherwise every tracker triangle congruent (within ``2 · tolerance_mm`` per side)
       to an anchor CT triangle seeds a registration; all points are then assigned by
       nearest position and verified the same way. Exactly one distinct pairing must pass.

    One point more or fewer in either set is allowed (a fiducial the tracker missed or
    one too many found in the CT).

    Parameters
    ----------
    ct_points_mm : array_like, shape (N, 3)
        Fiducials in the CT (fixed frame, LPS mm), any order.
    tracker_points_mm : array_like, shape (M, 3)
        Fiducials measured with the tracker (moving frame, mm), any order; |N − M| ≤ 1.
    tolerance_mm : float
        Largest accepted residual of a pair after registration (set it to about 3 × the
        RMS FLE).

    Returns
    -------
    PointPairing

    Raises
    ------
    PairingError
        No pairing fits within the tolerance, counts differ by more than one, or the
        layout is (nearly) symmetric so that several pairings fit: the message says how
        many. Make the layout asymmetric, touch the fiducials in CT order, or lower
        the tolerance if the measurement is better than it.
    """
    ct = as_points(ct_points_mm, "ct_points_mm", minimum=3)
    tracker = as_points(tracker_points_mm, "tracker_points_mm", minimum=3)
    if not np.isfinite(tolerance_mm) or tolerance_mm <= 0:
        raise PairingError(f"tolerance_mm must be a positive length (mm); got {tolerance_mm}.")
    if abs(len(ct) - len(tracker)) > 1:
        raise PairingError(
            f"ct_points_mm has {len(ct)} points and tracker_points_mm {len(tracker)}; automatic "
            "pairing allows at most one extra or missing point. Remove the spurious ones or "
            "pair them by hand (register_points)."
        )
    cost = _signature_cost(_signatures(ct), _signatures(tracker))
    rows, cols = linear_sum_assignment(cost)
    result = _verified(ct, tracker, rows, cols, tolerance_mm)
    # A tie: some CT point's signature is as close to another tracker point's as to its own
    # partner's, so a symmetric alternative may exist that the assignment did not show.
    second = np.sort(cost, axis=1)[:, 1] if cost.shape[1] > 1 else np.full(len(cost), np.inf)
    tied = bool(np.any(second[rows] - cost[rows, cols] <= tolerance_mm))
    method = "signatures"
    if result is None or tied:
        method = "triplets"
        solutions = _triplet_solutions(ct, tracker, tolerance_mm)
        if not solutions:
            raise PairingError(
                f"no pairing of the {len(ct)} CT and {len(tracker)} tracker points registers "
                f"with every residual ≤ tolerance_mm = {tolerance_mm:g} mm. Check that both "
                "sets hold the same fiducials, or raise tolerance_mm to about 3 × the FLE."
            )
        if len(solutions) > 1:
            fres = sorted(r.fre_mm for r in solutions.values())
            raise PairingError(
                f"the fiducial layout is ambiguous: {len(solutions)} different pairings "
                f"register within tolerance_mm = {tolerance_mm:g} mm (FRE {fres[0]:.2f}–"
                f"{fres[-1]:.2f} mm); a (nearly) symmetric layout, such as a regular polygon. "
                "Touch the fiducials in CT order and use register_points, or place them "
                "asymmetrically."
            )
        ((pairs, result),) = solutions.items()
        rows = np.array([c for c, _ in pairs], dtype=np.intp)
        cols = np.array([t for _, t in pairs], dtype=np.intp)
    return _pairing(rows, cols, result, len(ct), len(tracker), method)


def _pairing(
    rows: IntArray,
    cols: IntArray,
    result: PointRegistration,
    n_ct: int,
    n_tracker: int,
    method: str,
) -> PointPairing:
    # linear_sum_assignment returns rows in ascending order, so the registration's
    # residuals already follow ct_index.
    order = np.argsort(rows)
    ct_index, tracker_index = rows[order].astype(np.intp), cols[order].astype(np.intp)
    ct_index.setflags(write=False)
    tracker_index.setflags(write=False)
    return PointPairing(
        ct_index=ct_index,
        tracker_index=tracker_index,
        registration=result,
        unmatched_ct=tuple(sorted(set(range(n_ct)) - set(ct_index.tolist()))),
        unmatched_tracker=tuple(sorted(set(range(n_tracker)) - set(tracker_index.tolist()))),
        method=method,
    )
