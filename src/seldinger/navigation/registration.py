"""Paired-point rigid registration, its expected error (Fitzpatrick TRE), automatic pairing.

Points are in mm. ``fixed`` is usually the CT (LPS mm) and ``moving`` the tracker, so the
result ``moving_to_fixed`` is ``tracker_to_ct``. See ``docs/navigation_registration.md``.

References
----------
.. [1] Arun KS, Huang TS, Blostein SD. Least-squares fitting of two 3-D point sets.
   IEEE Trans Pattern Anal Mach Intell. 1987;9(5):698-700.
.. [2] Umeyama S. Least-squares estimation of transformation parameters between two
   point patterns. IEEE Trans Pattern Anal Mach Intell. 1991;13(4):376-380.
.. [3] Fitzpatrick JM, West JB, Maurer CR Jr. Predicting error in rigid-body point-based
   registration. IEEE Trans Med Imaging. 1998;17(5):694-702 (eqs. 10 and 46).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import linalg
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from seldinger.navigation.transforms import apply_transform

__all__ = [
    "COLLINEARITY_RATIO",
    "PairingError",
    "PointPairing",
    "PointRegistration",
    "RegistrationError",
    "fle_from_fre_mm",
    "pair_points",
    "predicted_fre_mm",
    "predicted_tre_mm",
    "register_points",
    "rigid_fit",
]

Float64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: A configuration whose second singular value (centred) is below this fraction of the
#: first is treated as collinear: the rotation about its line is then set by the noise.
#: At 1 % a 100 mm line needs about 1 mm of sideways spread; eq. 46 quantifies the cost of
#: anything near it (small f_k).
COLLINEARITY_RATIO = 0.01


class RegistrationError(ValueError):
    """Point sets that cannot be registered (too few, mismatched, collinear, non-finite)."""


class PairingError(RegistrationError):
    """Unordered point sets that cannot be paired unambiguously within the tolerance."""


def _as_points(points: npt.ArrayLike, name: str, minimum: int = 1) -> Float64Array:
    p = np.array(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise RegistrationError(f"{name} must have shape (N, 3) in mm; got {p.shape}.")
    if not np.isfinite(p).all():
        bad = int(np.argmax(~np.isfinite(p).all(axis=1)))
        raise RegistrationError(
            f"{name}[{bad}] = {p[bad].tolist()} is not finite; remove points the tracker "
            "or the CT picking did not measure."
        )
    if len(p) < minimum:
        raise RegistrationError(
            f"{name} holds {len(p)} points; rigid registration needs at least {minimum} "
            "non-collinear fiducials (use 4–6 spread around the target)."
        )
    return p


def _require_spread(points: Float64Array, name: str) -> None:
    singular = linalg.svdvals(points - points.mean(axis=0))
    if singular[0] == 0.0 or singular[1] < COLLINEARITY_RATIO * singular[0]:
        ratio = 0.0 if singular[0] == 0.0 else singular[1] / singular[0]
        raise RegistrationError(
            f"{name} is (nearly) collinear: second/first singular value of the centred "
            f"points {ratio:.2g} < {COLLINEARITY_RATIO:g}, so the rotation about their line is "
            "undetermined. Add fiducials off that line (spread them in 2-D or 3-D)."
        )


def rigid_fit(
    fixed_mm: Float64Array, moving_mm: Float64Array, allow_scaling: bool = False
) -> tuple[Float64Array, float]:
    """Least-squares ``moving_to_fixed`` (4×4) and scale for paired points (no checks).

    Arun/Umeyama SVD: ``H = Σ (y_i − ȳ)(x_i − x̄)ᵀ = U S Vᵀ``, ``R = V D Uᵀ`` with
    ``D = diag(1, 1, sign det(V Uᵀ))`` so that R is a rotation, never a reflection
    (Umeyama's fix; needed for planar or very noisy configurations). With
    ``allow_scaling`` the similarity scale is ``s = tr(S D) / Σ‖y_i − ȳ‖²``.
    """
    # Hand-written rather than scipy's Rotation.align_vectors because the similarity scale
    # needs the singular values, and the reflection guard should be visible; the tests
    # check it against align_vectors.
    x_mean, y_mean = fixed_mm.mean(axis=0), moving_mm.mean(axis=0)
    xc, yc = fixed_mm - x_mean, moving_mm - y_mean
    u, s, vt = linalg.svd(yc.T @ xc)
    d = np.ones(3)
    d[2] = np.sign(linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag(d) @ u.T
    scale = float(s @ d / np.sum(yc**2)) if allow_scaling else 1.0
    m = np.eye(4)
    m[:3, :3] = scale * rotation
    m[:3, 3] = x_mean - scale * rotation @ y_mean
    return m, scale


def _tre_factor(fiducials_mm: Float64Array, target_mm: Float64Array) -> float:
    """``1 + (1/3) Σ_k d_k² / f_k²`` of eq. 46 for one target."""
    centred = fiducials_mm - fiducials_mm.mean(axis=0)
    # Principal axes: eigenvectors of the fiducial scatter matrix, through the centroid.
    _, axes = linalg.eigh(centred.T @ centred)
    along_f = centred @ axes  # (N, 3): coordinates along each principal axis
    # Squared distance from axis k = |x|² − (x·u_k)².
    f2 = np.mean(np.sum(along_f**2, axis=1)[:, None] - along_f**2, axis=0)
    r = (target_mm - fiducials_mm.mean(axis=0)) @ axes
    d2 = np.sum(r**2) - r**2
    return float(1.0 + np.sum(d2 / f2) / 3.0)


def predicted_tre_mm(
    fiducials_mm: npt.ArrayLike, target_mm: npt.ArrayLike, fle_rms_mm: float
) -> float:
    """Expected RMS target registration error at a target (Fitzpatrick eq. 46).

    ``⟨TRE²⟩ ≈ ⟨FLE²⟩/N · (1 + (1/3) Σ_k d_k²/f_k²)``, with ``d_k`` the distance of the
    target from the k-th principal axis of the fiducial configuration (axes through the
    centroid) and ``f_k`` the RMS distance of the fiducials from that axis.

    Parameters
    ----------
    fiducials_mm : array_like, shape (N, 3)
        Fiducial positions (either space; the configuration is what matters), mm.
    target_mm : array_like, shape (3,)
        Target in the same frame, mm.
    fle_rms_mm : float
        RMS length of the 3-D fiducial localisation error, ``sqrt⟨FLE²⟩`` (isotropic,
        independent, identical). When both spaces localise with error, combine them in
        quadrature: ``sqrt(fle_ct² + fle_tracker²)``.

    Returns
    -------
    float
        ``sqrt⟨TRE²⟩`` in mm (first-order: valid while FLE ≪ the fiducial spread).

    Examples
    --------
    The worked example of ``docs/navigation_registration.md``: a hexagon of radius 60 mm,
    FLE 1 mm, target 120 mm below its centre.

    >>> angles = np.radians(np.arange(6) * 60.0)
    >>> hexagon = np.c_[60 * np.cos(angles), 60 * np.sin(angles), np.zeros(6)]
    >>> round(predicted_tre_mm(hexagon, [0.0, 0.0, 120.0], 1.0), 3)
    1.027
    """
    fiducials = _as_points(fiducials_mm, "fiducials_mm", minimum=3)
    _require_spread(fiducials, "fiducials_mm")
    target = np.asarray(target_mm, dtype=np.float64)
    if target.shape != (3,) or not np.isfinite(target).all():
        raise RegistrationError(f"target_mm must be 3 finite numbers (mm); got {target}.")
    if not np.isfinite(fle_rms_mm) or fle_rms_mm < 0:
        raise RegistrationError(f"fle_rms_mm must be a finite length ≥ 0 (mm); got {fle_rms_mm}.")
    return float(fle_rms_mm * np.sqrt(_tre_factor(fiducials, target) / len(fiducials)))


def predicted_fre_mm(n_fiducials: int, fle_rms_mm: float) -> float:
    """Expected RMS fiducial registration error, ``sqrt((1 − 2/N) ⟨FLE²⟩)`` (eq. 10).

    >>> round(predicted_fre_mm(6, 1.0), 3)
    0.816
    """
    if n_fiducials < 3:
        raise RegistrationError(f"n_fiducials must be ≥ 3; got {n_fiducials}.")
    return float(fle_rms_mm * np.sqrt(1.0 - 2.0 / n_fiducials))


def fle_from_fre_mm(fre_mm: float, n_fiducials: int) -> float:
    """RMS FLE estimated from one registration's FRE by inverting eq. 10.

    ``FLE ≈ FRE · sqrt(N / (N − 2))``. A single FRE has only ``3N − 6`` degrees of freedom,
    so the estimate is rough for few fiducials (N = 4: ±40 % at one sigma); prefer an FLE
    measured for the tracker and the CT picking.

    >>> round(fle_from_fre_mm(0.816497, 6), 3)
    1.0
    """
    if n_fiducials < 3:
        raise RegistrationError(f"n_fiducials must be ≥ 3 to estimate FLE; got {n_fiducials}.")
    return float(fre_mm * np.sqrt(n_fiducials / (n_fiducials - 2.0)))


@dataclass(frozen=True, eq=False)
class PointRegistration:
    """Result of :func:`register_points`.

    Attributes
    ----------
    moving_to_fixed : ndarray, shape (4, 4)
        Maps moving points (e.g. tracker) into the fixed frame (e.g. CT LPS mm). Rigid
        unless ``scale != 1``.
    scale : float
        Similarity scale (1.0 for the default rigid fit).
    fre_mm : float
        RMS fiducial registration error over the N fiducials.
    residuals_mm : ndarray, shape (N,)
        Distance of each mapped moving fiducial from its fixed partner.
    fle_mm : float or None
        RMS 3-D FLE used for the predictions: as given, or estimated from the FRE.
    fle_estimated : bool
        True when ``fle_mm`` was estimated from this registration's FRE (eq. 10 inverted).
    predicted_fre_mm : float or None
        Eq. 10 with a given FLE (None when FLE was estimated from FRE: it would echo FRE).
    target_mm : ndarray, shape (3,) or None
        Target in the fixed frame.
    predicted_tre_mm : float or None
        Eq. 46 at the target (None without a target, or with scaling).
    """

    moving_to_fixed: Float64Array
    scale: float
    fre_mm: float
    residuals_mm: Float64Array
    fle_mm: float | None
    fle_estimated: bool
    predicted_fre_mm: float | None
    target_mm: Float64Array | None
    predicted_tre_mm: float | None

    @property
    def n_fiducials(self) -> int:
        """Number of fiducial pairs."""
        return len(self.residuals_mm)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the Plan's ``navigation.registrations`` entries); mm to 1 µm."""

        def mm(x: float | None) -> float | None:
            return None if x is None else round(float(x), 3)

        return {
            "method": "paired_point_similarity" if self.scale != 1.0 else "paired_point_rigid",
            "moving_to_fixed": np.round(self.moving_to_fixed, 6).tolist(),
            "scale": round(self.scale, 6),
            "n_fiducials": self.n_fiducials,
            "fre_mm": mm(self.fre_mm),
            "residuals_mm": np.round(self.residuals_mm, 3).tolist(),
            "fle_mm": mm(self.fle_mm),
            "fle_estimated": self.fle_estimated,
            "predicted_fre_mm": mm(self.predicted_fre_mm),
            "target_mm": None if self.target_mm is None else np.round(self.target_mm, 3).tolist(),
            "predicted_tre_mm": mm(self.predicted_tre_mm),
        }


def register_points(
    fixed_mm: npt.ArrayLike,
    moving_mm: npt.ArrayLike,
    *,
    target_mm: npt.ArrayLike | None = None,
    fle_mm: float | None = None,
    allow_scaling: bool = False,
) -> PointRegistration:
    """Rigid (optionally similarity) registration of paired points, with expected errors.

    Minimises ``Σ ‖R y_i + t − x_i‖²`` over rotations R (never reflections) and
    translations t by Arun/Umeyama SVD (see :func:`rigid_fit`).

    Parameters
    ----------
    fixed_mm : array_like, shape (N, 3)
        Fiducials in the fixed frame (e.g. picked on the CT, LPS mm); N ≥ 3.
    moving_mm : array_like, shape (N, 3)
        The same fiducials, same order, in the moving frame (e.g. touched with a tracked
        pointer, tracker mm).
    target_mm : array_like, shape (3,), optional
        Target in the fixed frame, for ``predicted_tre_mm``.
    fle_mm : float, optional
        RMS 3-D fiducial localisation error (both spaces combined in quadrature). When
        None and N > 2 it is estimated from this registration's FRE by eq. 10 inverted
        (:func:`fle_from_fre_mm`) and ``fle_estimated`` is set: the TRE prediction is then
        only as good as that rough estimate.
    allow_scaling : bool
        Fit an isotropic scale too (Umeyama similarity); predictions are then None.

    Returns
    -------
    PointRegistration

    Raises
    ------
    RegistrationError
        Fewer than 3 fiducials, different counts, non-finite points, or a (nearly)
        collinear configuration in either frame (see :data:`COLLINEARITY_RATIO`).

    Examples
    --------
    >>> fixed = np.array([[0, 0, 0], [100, 0, 0], [0, 80, 0], [0, 0, 60]], dtype=float)
    >>> result = register_points(fixed, fixed - [10.0, 0.0, 0.0])
    >>> (np.round(result.moving_to_fixed[:3, 3], 9) + 0.0).tolist(), round(result.fre_mm, 9)
    ([10.0, 0.0, 0.0], 0.0)
    """
    fixed = _as_points(fixed_mm, "fixed_mm", minimum=3)
    moving = _as_points(moving_mm, "moving_mm", minimum=3)
    if fixed.shape != moving.shape:
        raise RegistrationError(
            f"fixed_mm and moving_mm must pair up point for point; got {len(fixed)} and "
            f"{len(moving)} points. Use pair_points for unordered or incomplete sets."
        )
    _require_spread(fixed, "fixed_mm")
    _require_spread(moving, "moving_mm")
    if fle_mm is not None and (not np.isfinite(fle_mm) or fle_mm < 0):
        raise RegistrationError(f"fle_mm must be a finite length ≥ 0 (mm) or None; got {fle_mm}.")
    matrix, scale = rigid_fit(fixed, moving, allow_scaling)
    residuals = np.linalg.norm(apply_transform(moving, matrix) - fixed, axis=1)
    fre = float(np.sqrt(np.mean(residuals**2)))
    n = len(fixed)
    fle_estimated = fle_mm is None
    fle = fle_from_fre_mm(fre, n) if fle_mm is None else float(fle_mm)
    target = None
    tre = None
    if target_mm is not None:
        target = np.asarray(target_mm, dtype=np.float64)
        if target.shape != (3,) or not np.isfinite(target).all():
            raise RegistrationError(f"target_mm must be 3 finite numbers (mm); got {target}.")
        target.setflags(write=False)
        if not allow_scaling:
            tre = float(fle * np.sqrt(_tre_factor(fixed, target) / n))
    matrix.setflags(write=False)
    residuals.setflags(write=False)
    return PointRegistration(
        moving_to_fixed=matrix,
        scale=scale,
        fre_mm=fre,
        residuals_mm=residuals,
        fle_mm=None if allow_scaling else fle,
        fle_estimated=fle_estimated and not allow_scaling,
        predicted_fre_mm=(
            None if fle_estimated or allow_scaling else predicted_fre_mm(n, float(fle))
        ),
        target_mm=target,
        predicted_tre_mm=tre,
    )


# --- automatic pairing --------------------------------------------------------------------


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
    ct = _as_points(ct_points_mm, "ct_points_mm", minimum=3)
    tracker = _as_points(tracker_points_mm, "tracker_points_mm", minimum=3)
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
