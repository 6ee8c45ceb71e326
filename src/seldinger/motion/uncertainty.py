"""Probability of a hit (biopsy) and of a sufficient ablation margin, by seeded Monte Carlo.

The needle tip lands at the aimed point plus a Gaussian placement error, the sum of three
independent parts:

- **registration**: the target registration error of the image-to-tracker registration,
  anisotropic as Fitzpatrick and West give it [1]_ (:func:`tre_covariance_mm2`) or
  isotropic from the RMS of Fitzpatrick et al. [2]_
  (:func:`seldinger.navigation.registration.predicted_tre_mm`);
- **motion model**: the residual of the surrogate → target model
  (:attr:`~seldinger.motion.correspondence.CorrespondenceModel.residual_rms_mm`),
  isotropic;
- **needle deflection**: lateral to the needle, growing with the inserted depth
  (:data:`DEFAULT_DEFLECTION_MM_PER_100MM`).

:func:`p_hit` is the probability that the tip falls in the lesion (a sphere or a mask
:class:`~seldinger.imaging.Volume`); :func:`p_margin` the probability that an ablation zone
(an :class:`~seldinger.physics.ablation.Ellipsoid`, moved by the same error) covers the
lesion with a minimal margin of at least 5 mm, from the exact signed distance of each
lesion surface point to the shifted ellipsoid. The placement error moves the zone rigidly
(translation only; an angular error of the applicator is not modelled).

References
----------
.. [1] Fitzpatrick JM, West JB. The distribution of target registration error in
   rigid-body point-based registration. IEEE Trans Med Imaging. 2001;20(9):917-927.
.. [2] Fitzpatrick JM, West JB, Maurer CR Jr. Predicting error in rigid-body point-based
   registration. IEEE Trans Med Imaging. 1998;17(5):694-702 (eq. 46).
.. [3] Eberly D. Distance from a point to an ellipse, an ellipsoid, or a hyperellipsoid.
   Geometric Tools, 2013 (the root of F(t) used by :func:`ellipsoid_signed_distance_mm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.physics.ablation import Ellipsoid
from seldinger.planning import tumour_surface_mesh

__all__ = [
    "DEFAULT_DEFLECTION_MM_PER_100MM",
    "DEFAULT_N_SAMPLES",
    "DEFAULT_REQUIRED_MARGIN_MM",
    "DEFAULT_TRE_MM",
    "HitProbability",
    "MarginProbability",
    "PlacementError",
    "SphereLesion",
    "ellipsoid_signed_distance_mm",
    "inside_mask",
    "p_hit",
    "p_margin",
    "placement_error",
    "tre_covariance_mm2",
]

FloatArray = npt.NDArray[np.float64]

#: TRE assumed when a plan holds no registration (mm, 3-D RMS): EM-navigated lung biopsy
#: with skin fiducials reaches 2-4 mm in phantoms (navigation.md §2.5), as does a
#: fiducial-based CT-to-robot registration; a plan registered with ``seldinger navigate
#: register`` uses its own predicted TRE instead, and every output says which it used.
DEFAULT_TRE_MM = 3.0

#: RMS lateral deflection of the tip per 100 mm of insertion for an 18G bevel-tip needle.
#: An assumption in the 1-2 mm / 10 cm range quoted for 18G needles in soft tissue; bevel
#: needles in phantoms deflect by millimetres over 40-80 mm (Rand et al., Anesth Pain Med
#: 2016;6(3):e36607), and placement errors of a few mm are the rule for straight needles
#: (van de Berg et al., Med Devices 2018;11:259-265). Set it from your needle.
DEFAULT_DEFLECTION_MM_PER_100MM = 1.5
#: Monte Carlo samples: the standard error of a probability is ≤ 0.35 percentage points.
DEFAULT_N_SAMPLES = 20_000
#: Minimal ablation margin sought around the lesion, mm (the usual 5 mm ablative margin).
DEFAULT_REQUIRED_MARGIN_MM = 5.0
_MAX_SURFACE_POINTS = 600
_CHUNK_ELEMENTS = 2_000_000  # sample × surface pairs per chunk (memory ~100 MB)


def _point(value: npt.ArrayLike, name: str) -> FloatArray:
    p = np.asarray(value, dtype=np.float64)
    if p.shape != (3,) or not np.isfinite(p).all():
        raise BadInputError(f"{name} must be 3 finite LPS coordinates in mm; got {value!r}.")
    return p


def _non_negative(value: float, name: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
        raise BadInputError(f"{name} must be a finite number ≥ 0; got {value!r}.")
    return float(value)


def tre_covariance_mm2(
    fiducials_mm: npt.ArrayLike, target_mm: npt.ArrayLike, fle_rms_mm: float
) -> FloatArray:
    """Covariance of the target registration error at a target (Fitzpatrick & West 2001).

    To first order, with independent isotropic fiducial localisation error of variance
    ``σ² = ⟨FLE²⟩ / 3`` per axis and N fiducials ``x_k`` (centred), the error at ``r``
    (from the centroid) is ``τ + ω × r`` with ``Cov τ = σ²/N · I`` and ``Cov ω = σ² M⁻¹``,
    ``M = Σ_k (|x_k|² I − x_k x_kᵀ)``; so ``Σ_TRE = σ² (I/N + [r]ₓ M⁻¹ [r]ₓᵀ)``. Its trace is
    Fitzpatrick's ``⟨TRE²⟩`` (eq. 46 of [2]_).

    Parameters
    ----------
    fiducials_mm : array_like, shape (N, 3)
        Fiducial configuration, mm (N ≥ 3, not collinear).
    target_mm : array_like, shape (3,)
        Target in the same frame, mm.
    fle_rms_mm : float
        3-D RMS fiducial localisation error, mm.

    Returns
    -------
    ndarray, shape (3, 3)
        mm², in the frame of the points.

    Examples
    --------
    >>> angles = np.radians(np.arange(6) * 60.0)
    >>> hexagon = np.c_[60 * np.cos(angles), 60 * np.sin(angles), np.zeros(6)]
    >>> round(float(np.sqrt(np.trace(tre_covariance_mm2(hexagon, [0.0, 0.0, 120.0], 1.0)))), 3)
    1.027
    """
    x = np.asarray(fiducials_mm, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) < 3 or not np.isfinite(x).all():
        raise BadInputError(
            f"fiducials_mm must be at least 3 finite points of shape (N, 3), mm; got {x.shape}."
        )
    fle = _non_negative(fle_rms_mm, "fle_rms_mm")
    centroid = x.mean(axis=0)
    xc = x - centroid
    m = np.sum(xc * xc) * np.eye(3) - xc.T @ xc
    if np.linalg.cond(m) > 1e8:
        raise BadInputError(
            "fiducials_mm are (nearly) collinear: the rotation about their line is "
            "undetermined, so is the TRE. Add fiducials off that line."
        )
    r = _point(target_mm, "target_mm") - centroid
    rx = np.array([[0.0, -r[2], r[1]], [r[2], 0.0, -r[0]], [-r[1], r[0], 0.0]])
    sigma2 = fle * fle / 3.0
    result: FloatArray = sigma2 * (np.eye(3) / len(x) + rx @ np.linalg.solve(m, rx.T))
    return result


@dataclass(frozen=True, eq=False)
class PlacementError:
    """Gaussian error of the needle tip (or applicator) position, LPS mm.

    Attributes
    ----------
    covariance_mm2 : ndarray, shape (3, 3)
        Total covariance, mm².
    mean_mm : ndarray, shape (3,)
        Systematic offset (bias), mm; zero unless known.
    registration_rms_mm, model_residual_rms_mm, deflection_rms_mm : float
        3-D RMS of each part (for the report).
    """

    covariance_mm2: FloatArray
    mean_mm: FloatArray
    registration_rms_mm: float
    model_residual_rms_mm: float
    deflection_rms_mm: float

    @property
    def rms_mm(self) -> float:
        """3-D RMS of the whole error, ``sqrt(trace Σ + |μ|²)``."""
        return float(math.sqrt(np.trace(self.covariance_mm2) + self.mean_mm @ self.mean_mm))

    def sample_mm(self, rng: np.random.Generator, n_samples: int) -> FloatArray:
        """``n_samples`` draws of the error, shape (n, 3), mm."""
        w, v = np.linalg.eigh(self.covariance_mm2)
        root = v * np.sqrt(np.clip(w, 0.0, None))
        result: FloatArray = self.mean_mm + rng.standard_normal((n_samples, 3)) @ root.T
        return result


def placement_error(
    *,
    tre_rms_mm: float = 0.0,
    tre_covariance: npt.ArrayLike | None = None,
    model_residual_rms_mm: float = 0.0,
    needle_direction_lps: npt.ArrayLike | None = None,
    insertion_depth_mm: float = 0.0,
    deflection_mm_per_100mm: float = DEFAULT_DEFLECTION_MM_PER_100MM,
    mean_mm: npt.ArrayLike | None = None,
) -> PlacementError:
    """Combine registration, motion-model and deflection errors as independent Gaussians.

    Parameters
    ----------
    tre_rms_mm : float
        3-D RMS TRE (isotropic: ``σ² = TRE²/3`` per axis), e.g. from
        :func:`seldinger.navigation.registration.predicted_tre_mm`. Ignored when
        ``tre_covariance`` is given.
    tre_covariance : array_like, shape (3, 3), optional
        Anisotropic TRE covariance in LPS mm² (:func:`tre_covariance_mm2`).
    model_residual_rms_mm : float
        3-D RMS residual of the surrogate → target model (isotropic).
    needle_direction_lps : array_like, shape (3,), optional
        Needle direction; needed when there is deflection.
    insertion_depth_mm : float
        Depth inserted to the tip, mm.
    deflection_mm_per_100mm : float
        RMS lateral (2-D) deflection per 100 mm of depth; split equally over the two axes
        across the needle. Default :data:`DEFAULT_DEFLECTION_MM_PER_100MM`.
    mean_mm : array_like, shape (3,), optional
        Known bias, mm.

    Returns
    -------
    PlacementError
    """
    covariance = np.zeros((3, 3))
    if tre_covariance is not None:
        tre_cov = np.asarray(tre_covariance, dtype=np.float64)
        if (
            tre_cov.shape != (3, 3)
            or not np.isfinite(tre_cov).all()
            or not np.allclose(tre_cov, tre_cov.T)
            or np.linalg.eigvalsh(tre_cov).min() < -1e-9
        ):
            raise BadInputError(
                "tre_covariance must be a finite symmetric positive semi-definite 3x3 matrix "
                f"(mm²); got\n{tre_cov}"
            )
        registration_rms = float(math.sqrt(max(np.trace(tre_cov), 0.0)))
        covariance += tre_cov
    else:
        registration_rms = _non_negative(tre_rms_mm, "tre_rms_mm")
        covariance += registration_rms**2 / 3.0 * np.eye(3)
    residual = _non_negative(model_residual_rms_mm, "model_residual_rms_mm")
    covariance += residual**2 / 3.0 * np.eye(3)
    depth = _non_negative(insertion_depth_mm, "insertion_depth_mm")
    rate = _non_negative(deflection_mm_per_100mm, "deflection_mm_per_100mm")
    deflection = rate * depth / 100.0
    if deflection > 0.0:
        if needle_direction_lps is None:
            raise BadInputError(
                "needle_direction_lps is needed for a needle deflection (insertion_depth_mm > 0 "
                "and deflection_mm_per_100mm > 0): deflection is across the needle. Give the "
                "trajectory's direction, or deflection_mm_per_100mm=0."
            )
        d = np.asarray(needle_direction_lps, dtype=np.float64)
        norm = float(np.linalg.norm(d)) if d.shape == (3,) else math.nan
        if not (math.isfinite(norm) and norm > 1e-9):
            raise BadInputError(
                f"needle_direction_lps must be a non-zero finite LPS vector; got {d.tolist()}."
            )
        d = d / norm
        covariance += deflection**2 / 2.0 * (np.eye(3) - np.outer(d, d))
    mean = np.zeros(3) if mean_mm is None else _point(mean_mm, "mean_mm")
    return PlacementError(
        covariance_mm2=covariance,
        mean_mm=mean,
        registration_rms_mm=registration_rms,
        model_residual_rms_mm=residual,
        deflection_rms_mm=float(deflection),
    )


@dataclass(frozen=True, eq=False)
class SphereLesion:
    """A spherical lesion: centre (LPS mm) and radius (mm)."""

    centre_lps_mm: FloatArray
    radius_mm: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "centre_lps_mm", _point(self.centre_lps_mm, "SphereLesion.centre_lps_mm")
        )
        if not (math.isfinite(self.radius_mm) and self.radius_mm > 0):
            raise BadInputError(
                f"SphereLesion.radius_mm must be positive (mm); got {self.radius_mm!r}."
            )

    def surface_points_lps_mm(self, n_points: int = 400) -> FloatArray:
        """Near-uniform points on the sphere (Fibonacci lattice), shape (n, 3)."""
        k = np.arange(n_points) + 0.5
        z = 1.0 - 2.0 * k / n_points
        azimuth = math.pi * (1.0 + math.sqrt(5.0)) * k
        ring = np.sqrt(1.0 - z * z)
        unit = np.c_[ring * np.cos(azimuth), ring * np.sin(azimuth), z]
        result: FloatArray = self.centre_lps_mm + self.radius_mm * unit
        return result


Lesion = SphereLesion | Volume


@dataclass(frozen=True)
class HitProbability:
    """Result of :func:`p_hit` (Python floats)."""

    p_hit: float
    standard_error: float
    n_samples: int
    placement_rms_mm: float


@dataclass(frozen=True)
class MarginProbability:
    """Result of :func:`p_margin` (Python floats; margins positive inside the zone).

    Attributes
    ----------
    p_margin : float
        P(minimal margin ≥ ``required_margin_mm``).
    required_margin_mm : float
    nominal_min_margin_mm : float
        Minimal margin without placement error.
    min_margin_percentiles_mm : tuple of float
        5th, 50th and 95th percentiles of the minimal margin over the samples.
    standard_error : float
    n_samples : int
    n_surface_points : int
        Lesion surface points used; 0 for a sphere (exact from its centre).
    placement_rms_mm : float
    """

    p_margin: float
    required_margin_mm: float
    nominal_min_margin_mm: float
    min_margin_percentiles_mm: tuple[float, float, float]
    standard_error: float
    n_samples: int
    n_surface_points: int
    placement_rms_mm: float


def _check_samples(n_samples: int) -> None:
    if not (isinstance(n_samples, int) and n_samples >= 100):
        raise BadInputError(
            f"n_samples must be an integer ≥ 100; got {n_samples!r}. "
            f"{DEFAULT_N_SAMPLES} gives a standard error ≤ 0.35 percentage points."
        )


def inside_mask(mask: Volume, points_lps_mm: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether each point lies in the mask (nearest voxel > 0); points off the grid do not."""
    ijk = np.rint(mask.lps_to_index(points_lps_mm)).astype(np.intp)
    shape = np.asarray(mask.shape)
    valid = np.all((ijk >= 0) & (ijk < shape), axis=1)
    inside = np.zeros(len(points_lps_mm), dtype=bool)
    good = ijk[valid]
    inside[valid] = np.asarray(mask.array)[good[:, 0], good[:, 1], good[:, 2]] > 0
    return inside


def p_hit(
    aim_lps_mm: npt.ArrayLike,
    lesion: Lesion,
    error: PlacementError,
    rng: np.random.Generator,
    n_samples: int = DEFAULT_N_SAMPLES,
) -> HitProbability:
    """Probability that the needle tip lands inside the lesion.

    Parameters
    ----------
    aim_lps_mm : array_like, shape (3,)
        Planned tip position (the trajectory's target), LPS mm.
    lesion : SphereLesion or Volume
        A sphere, or a mask (values > 0 inside; voxel of the nearest centre decides).
    error : PlacementError
    rng : numpy.random.Generator
    n_samples : int
        Default :data:`DEFAULT_N_SAMPLES`.

    Returns
    -------
    HitProbability
    """
    aim = _point(aim_lps_mm, "aim_lps_mm")
    _check_samples(n_samples)
    tips = aim + error.sample_mm(rng, n_samples)
    if isinstance(lesion, SphereLesion):
        offset = tips - lesion.centre_lps_mm
        hits = np.einsum("ij,ij->i", offset, offset) <= lesion.radius_mm**2
    elif isinstance(lesion, Volume):
        hits = inside_mask(lesion, tips)
    else:
        raise BadInputError(
            f"lesion must be a SphereLesion or a mask Volume; got {type(lesion).__name__}."
        )
    p = float(hits.mean())
    return HitProbability(
        p_hit=p,
        standard_error=float(math.sqrt(p * (1.0 - p) / n_samples)),
        n_samples=n_samples,
        placement_rms_mm=error.rms_mm,
    )


def ellipsoid_signed_distance_mm(
    points_local_mm: npt.ArrayLike, radii_mm: npt.ArrayLike
) -> FloatArray:
    """Exact signed distance to an axis-aligned ellipsoid's surface, positive inside.

    The closest surface point of ``y`` (first octant by symmetry) is
    ``x_i = e_i² y_i / (t + e_i²)`` with ``t`` the root of
    ``F(t) = Σ (e_i y_i / (t + e_i²))² − 1`` on ``t > −min e_i²`` [3]_. ``F`` is convex and
    decreasing there, so Newton's method started left of the root (at
    ``max_i (e_i y_i − e_i²)``, where ``F ≥ 0``) rises to it monotonically. Accurate to
    about 1e-9 of the largest semi-axis.

    Parameters
    ----------
    points_local_mm : array_like, shape (n, 3)
        Points in the ellipsoid's frame (centre at the origin, semi-axes along x, y, z).
    radii_mm : array_like, shape (3,)
        Semi-axes, mm.

    Returns
    -------
    ndarray, shape (n,)
        mm; positive inside.

    Examples
    --------
    >>> d = ellipsoid_signed_distance_mm([[0, 0, 0], [25, 0, 0], [0, 0, 12]], [20, 15, 10])
    >>> d.round(6).tolist()
    [10.0, -5.0, -2.0]
    """
    e = np.asarray(radii_mm, dtype=np.float64)
    y = np.abs(np.asarray(points_local_mm, dtype=np.float64))
    if e.max() - e.min() <= 1e-12 * e.max():
        result: FloatArray = e[0] - np.linalg.norm(y, axis=1)
        return result
    # a point on a medial plane is nudged off it: the distance is continuous there
    y = np.maximum(y, 1e-9 * e.max())
    # in s = t + min e_i² the root stays representable to full relative precision even
    # next to the pole s = 0 (points near the smallest axis' medial plane)
    shift = e * e - np.min(e * e)
    s_root = np.max(e * y - shift, axis=1)
    active = np.arange(len(y))
    for _ in range(200):
        ya, sa = y[active], s_root[active]
        denominator = sa[:, None] + shift
        a = e * ya / denominator
        a2 = a * a
        step = (a2.sum(axis=1) - 1.0) / (-2.0 * (a2 / denominator).sum(axis=1))
        s_root[active] = sa - step
        active = active[np.abs(step) > 1e-13 * sa]
        if active.size == 0:
            break
    closest = e * e * y / (s_root[:, None] + shift)
    distance = np.linalg.norm(y - closest, axis=1)
    inside = np.sum((y / e) ** 2, axis=1) <= 1.0
    signed: FloatArray = np.where(inside, distance, -distance)
    return signed


def _surface_points(lesion: Lesion, n_points: int) -> FloatArray:
    if isinstance(lesion, SphereLesion):
        return lesion.surface_points_lps_mm(n_points)
    if isinstance(lesion, Volume):
        if not (np.asarray(lesion.array) > 0).any():
            raise BadInputError("The lesion mask is empty: segment the lesion first.")
        # the sub-voxel surface of the margin assessment, not the border voxel centres
        # (those lie up to half a voxel inside and would flatter the margin)
        verts, _ = tumour_surface_mesh(lesion.with_array(np.asarray(lesion.array) > 0))
        stride = max(1, math.ceil(len(verts) / n_points))
        result: FloatArray = verts[::stride]
        return result
    raise BadInputError(
        f"lesion must be a SphereLesion or a mask Volume; got {type(lesion).__name__}."
    )


def _min_margin_mm(
    zone: Ellipsoid, surface_local: FloatArray, shifts_local: FloatArray
) -> FloatArray:
    """Minimal signed distance over the surface points, per shift of the zone (local frame).

    Exact: per shift, the exact distance at the point the first-order estimate
    ``g / |∇g|`` (``g = 1 − Σ (y_i / e_i)²``) ranks lowest bounds the minimum from above;
    the exact distance is then needed only where the rigorous lower bound
    ``(1 − q) · e_min`` (``q`` the normalised radius; ``(1 − q) · e_max`` outside) does not
    exceed it.
    """
    e = zone.radii_mm
    out = np.empty(len(shifts_local))
    chunk = max(1, _CHUNK_ELEMENTS // len(surface_local))
    rows = np.arange(chunk)
    for start in range(0, len(shifts_local), chunk):
        shift = shifts_local[start : start + chunk]
        y = surface_local[None, :, :] - shift[:, None, :]  # the zone moves by the shift
        scaled = y / e
        q2 = np.einsum("...i,...i->...", scaled, scaled)
        gradient = scaled / e
        first_order = (1.0 - q2) / (
            2.0 * np.sqrt(np.einsum("...i,...i->...", gradient, gradient)) + 1e-300
        )
        best = np.argmin(first_order, axis=1)
        n = len(shift)
        upper = ellipsoid_signed_distance_mm(y[rows[:n], best], e)
        q = np.sqrt(q2)
        lower = np.where(q <= 1.0, (1.0 - q) * e.min(), (1.0 - q) * e.max())
        candidate = lower < upper[:, None]
        distance = np.full(q.shape, np.inf)
        distance[candidate] = ellipsoid_signed_distance_mm(y[candidate], e)
        out[start : start + chunk] = np.minimum(distance.min(axis=1), upper)
    return out


def p_margin(
    zone: Ellipsoid,
    lesion: Lesion,
    error: PlacementError,
    rng: np.random.Generator,
    n_samples: int = DEFAULT_N_SAMPLES,
    required_margin_mm: float = DEFAULT_REQUIRED_MARGIN_MM,
    n_surface_points: int = 400,
) -> MarginProbability:
    """Probability that the ablation zone covers the lesion with a margin ≥ the required.

    Each sample moves the zone by a placement error; its minimal margin is the smallest
    signed distance (positive inside the zone) from the lesion's surface to the zone's
    surface, computed exactly (:func:`ellipsoid_signed_distance_mm`): for a sphere from its
    centre, for a mask over the vertices of its sub-voxel surface
    (:func:`seldinger.planning.tumour_surface_mesh`).

    Parameters
    ----------
    zone : Ellipsoid
        Planned ablation zone, LPS mm.
    lesion : SphereLesion or Volume
        The lesion; for a mask the vertices of its sub-voxel surface (at most
        ``n_surface_points``, evenly strided) stand for the surface; 20 000 samples take
        about 0.5 s for a mask, milliseconds for a sphere.
    error : PlacementError
        Error of the applicator's position (moves the zone).
    rng : numpy.random.Generator
    n_samples : int
    required_margin_mm : float
        Default 5 mm.
    n_surface_points : int
        Surface points of a sphere, or the most taken from a mask. Default 400.

    Returns
    -------
    MarginProbability
    """
    _check_samples(n_samples)
    required = _non_negative(required_margin_mm, "required_margin_mm")
    if not (isinstance(n_surface_points, int) and 10 <= n_surface_points <= _MAX_SURFACE_POINTS):
        raise BadInputError(
            f"n_surface_points must be an integer from 10 to {_MAX_SURFACE_POINTS}; got "
            f"{n_surface_points!r}."
        )
    shifts = np.vstack([np.zeros((1, 3)), error.sample_mm(rng, n_samples) @ zone.axes.T])
    if isinstance(lesion, SphereLesion):
        # exact: the signed distance to a convex body's surface is 1-Lipschitz and falls by
        # exactly R from the centre along the normal through the closest point, so the
        # minimum over the sphere is sd(centre) − R
        centre_local = (lesion.centre_lps_mm - zone.centre_lps_mm) @ zone.axes.T
        margins = ellipsoid_signed_distance_mm(centre_local - shifts, zone.radii_mm)
        margins = margins - lesion.radius_mm
        n_points = 0
    else:
        surface = _surface_points(lesion, n_surface_points)
        surface_local = (surface - zone.centre_lps_mm) @ zone.axes.T
        margins = _min_margin_mm(zone, surface_local, shifts)
        n_points = len(surface)
    nominal, sampled = float(margins[0]), margins[1:]
    p = float(np.mean(sampled >= required))
    p5, p50, p95 = (float(v) for v in np.percentile(sampled, [5.0, 50.0, 95.0]))
    return MarginProbability(
        p_margin=p,
        required_margin_mm=required,
        nominal_min_margin_mm=nominal,
        min_margin_percentiles_mm=(p5, p50, p95),
        standard_error=float(math.sqrt(p * (1.0 - p) / n_samples)),
        n_samples=n_samples,
        n_surface_points=n_points,
        placement_rms_mm=error.rms_mm,
    )
