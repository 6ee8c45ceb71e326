"""Paired-point rigid registration and its expected error (Fitzpatrick TRE).

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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import linalg

from seldinger.errors import BadInputError
from seldinger.navigation.transforms import apply_transform
from seldinger.plan import PivotCalibrationRecord, RegistrationRecord

__all__ = [
    "COLLINEARITY_RATIO",
    "PointRegistration",
    "RegistrationError",
    "fle_from_fre_mm",
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


class RegistrationError(BadInputError):
    """Point sets that cannot be registered (too few, mismatched, collinear, non-finite)."""


def as_points(points: npt.ArrayLike, name: str, minimum: int = 1) -> Float64Array:
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
    fiducials = as_points(fiducials_mm, "fiducials_mm", minimum=3)
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
        """JSON-ready dict of the result; mm to 1 µm, the matrix to 1e-6."""

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

    def to_record(
        self,
        record_id: str,
        *,
        name: str | None = None,
        moving_frame: Literal["tracker", "reference"] = "tracker",
        source: str | None = None,
        target_source: str | None = None,
        calibration: PivotCalibrationRecord | None = None,
    ) -> RegistrationRecord:
        """The plan's record of a registration whose fixed frame is the CT (LPS mm).

        Parameters
        ----------
        record_id : str
            ``registration-N``.
        name, source, target_source : str, optional
            Label, where the points came from, where the target came from.
        moving_frame : {"tracker", "reference"}
            What the moving points were measured in.
        calibration : PivotCalibrationRecord, optional
            The tool calibration used with it.
        """
        values = self.to_dict()
        target = values.pop("target_mm")
        return RegistrationRecord(
            id=record_id,
            name=name,
            time_utc=datetime.now(UTC),
            moving_frame=moving_frame,
            target_lps_mm=None if target is None else tuple(target),
            source=source,
            target_source=target_source,
            calibration=calibration,
            **values,
        )


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
    fixed = as_points(fixed_mm, "fixed_mm", minimum=3)
    moving = as_points(moving_mm, "moving_mm", minimum=3)
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
