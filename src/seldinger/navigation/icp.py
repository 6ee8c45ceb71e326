"""Surface registration: tracked skin points onto the CT body surface by ICP.

Iterative closest point (Besl & McKay 1992): pair every moving point with the closest
fixed surface point (a k-d tree), fit a rigid step to those pairs, repeat. The trimmed
variant (Chetverikov et al. 2002) drops the worst ``trim_fraction`` of pairs at each
iteration, so points off the CT surface (a breathing excursion, a skin fold, a marker)
do not pull the fit. Point-to-plane (Chen & Medioni 1992) minimises the distance along
the surface normal instead; it is the default, because point-to-point stalls about a
millimetre short on a smooth skin surface (it slides tangentially through curvature only).

ICP is a local method: it needs an initial ``moving_to_fixed`` within its basin of
convergence, e.g. from a paired-point registration of three or four landmarks. For 300
points on the anterior chest of lidc-idri-0001, point-to-plane converged (< 1 mm at the
nodule) from every start up to 30° and 60 mm off, from 16 of 20 at 45° and 80 mm
(``docs/navigation_registration.md``).

References
----------
.. [1] Besl PJ, McKay ND. A method for registration of 3-D shapes. IEEE Trans Pattern
   Anal Mach Intell. 1992;14(2):239-256.
.. [2] Chen Y, Medioni G. Object modelling by registration of multiple range images.
   Image Vis Comput. 1992;10(3):145-155.
.. [3] Chetverikov D, Svirko D, Stepanov D, Krsek P. The trimmed iterative closest point
   algorithm. Proc ICPR 2002;3:545-548.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import linalg, ndimage
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.navigation.registration import RegistrationError, rigid_fit
from seldinger.navigation.transforms import apply_transform, validate_rigid

__all__ = [
    "IcpMethod",
    "IcpResult",
    "icp",
    "surface_normals",
    "surface_points_from_mask",
]

Float64Array = npt.NDArray[np.float64]

#: Neighbours used to estimate a surface normal by local PCA (point-to-plane without
#: given normals): enough to average the staircase of a voxel surface.
_NORMAL_NEIGHBOURS = 12


class IcpMethod(enum.StrEnum):
    """Error metric of each ICP step."""

    POINT_TO_POINT = "point_to_point"
    POINT_TO_PLANE = "point_to_plane"


def surface_points_from_mask(
    mask: Volume, *, step_size: int = 1, smoothing_mm: float = 0.0
) -> Float64Array:
    """Vertices of a mask's boundary surface (e.g. the skin of a body mask), LPS mm.

    The mask is cropped to its bounding box and given to
    :func:`skimage.measure.marching_cubes` at level 0.5 (halfway between inside and outside
    voxel centres). Where the edge of the volume cuts the mask (the first and last slice of
    a CT) no surface is made: the scan's end is not skin.

    Parameters
    ----------
    mask : Volume
        Boolean (or 0/1) mask; any orientation and spacing. Crop it first
        (:meth:`Volume.crop_lps`) to keep only a region such as the anterior chest.
    step_size : int
        Marching-cubes step in voxels (2 gives about a quarter of the vertices).
    smoothing_mm : float
        Gaussian sigma (mm, per axis in voxels from the spacing) applied to the mask
        before marching cubes; 1–2 mm removes the staircase of thick slices.

    Returns
    -------
    ndarray, shape (P, 3)
        Surface points in LPS mm.

    Raises
    ------
    ValueError
        If the mask is empty or full, or the arguments are out of range.
    """
    from skimage.measure import marching_cubes  # heavy import, needed only here

    if step_size < 1 or smoothing_mm < 0:
        raise BadInputError(
            f"step_size must be ≥ 1 and smoothing_mm ≥ 0; got {step_size} and {smoothing_mm}."
        )
    inside = np.asarray(mask.array) > 0
    if not inside.any() or inside.all():
        raise BadInputError(
            "mask must hold both inside and outside voxels to have a surface; got "
            f"{int(inside.sum())} of {inside.size} inside. Pass a body mask (e.g. from "
            "seldinger.anatomy.segment)."
        )
    # Crop to the mask's bounding box grown by one voxel (clipped to the grid), then pad by
    # one voxel repeating the edge: where the box stops inside the grid the edge layer is
    # empty (zero padding); where the grid cuts the mask (the first and last CT slice) the
    # mask runs on, so no cap forms there: the end of the scan is not skin.
    nonzero = np.nonzero(inside)
    shape = np.asarray(mask.shape)
    start = np.array([max(int(n.min()) - 1, 0) for n in nonzero])
    stop = np.minimum([int(n.max()) + 2 for n in nonzero], shape)
    crop = inside[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))]
    field = np.pad(crop.astype(np.float32), 1, mode="edge")
    if smoothing_mm > 0:
        sigma = [smoothing_mm / s for s in mask.spacing_mm]
        field = ndimage.gaussian_filter(field, sigma, mode="nearest")
    vertices = marching_cubes(field, level=0.5, step_size=step_size, allow_degenerate=False)[0]
    ijk = vertices - 1.0 + start  # undo the padding and the crop
    # Drop the walls' continuation into the padding, beyond the scanned slab.
    on_grid = np.all((ijk >= -0.5) & (ijk <= shape - 0.5), axis=1)
    return mask.index_to_lps(ijk[on_grid])


def surface_normals(
    surface_mm: npt.ArrayLike, n_neighbours: int = _NORMAL_NEIGHBOURS
) -> Float64Array:
    """Unit normals of a point-sampled surface by local PCA (sign arbitrary), shape (P, 3).

    The normal at each point is the eigenvector of the smallest eigenvalue of the
    covariance of its ``n_neighbours`` nearest points. Point-to-plane ICP does not need
    a consistent sign.
    """
    points = np.asarray(surface_mm, dtype=np.float64)
    return _pca_normals(points, cKDTree(points), np.arange(len(points)), n_neighbours)


def _pca_normals(
    points: Float64Array,
    tree: cKDTree,
    at: npt.NDArray[np.intp],
    n_neighbours: int = _NORMAL_NEIGHBOURS,
) -> Float64Array:
    k = min(n_neighbours, len(points))
    _, index = tree.query(points[at], k=k)
    neighbours = points[index]
    centred = neighbours - neighbours.mean(axis=1, keepdims=True)
    covariance = np.einsum("pki,pkj->pij", centred, centred)
    _, vectors = np.linalg.eigh(covariance)
    normals: Float64Array = vectors[:, :, 0]
    return normals


def _max_move_mm(points: Float64Array, a: Float64Array, b: Float64Array) -> float:
    """Largest distance between the images of ``points`` under transforms a and b."""
    return float(
        np.linalg.norm(apply_transform(points, a) - apply_transform(points, b), axis=1).max()
    )


@dataclass(frozen=True, eq=False)
class IcpResult:
    """Result of :func:`icp`.

    Attributes
    ----------
    moving_to_fixed : ndarray, shape (4, 4)
        Rigid transform, e.g. ``tracker_to_ct``.
    rms_mm : float
        RMS closest-point distance over the kept (untrimmed) points at the end.
    distances_mm : ndarray, shape (M,)
        Closest-point distance of every moving point after the final transform.
    inliers : ndarray of bool, shape (M,)
        Points kept by the trimming at the last iteration.
    iterations : int
        ICP steps taken.
    converged : bool
        True when the last step moved no point by more than ``tolerance_mm``, or ICP
        returned (within ``tolerance_mm``) to an earlier transform: a cycle through a few
        sets of closest points, of which the member with the lowest trimmed RMS is kept.
    method : str
        ``"point_to_point"`` or ``"point_to_plane"``.
    """

    moving_to_fixed: Float64Array
    rms_mm: float
    distances_mm: Float64Array
    inliers: npt.NDArray[np.bool_]
    iterations: int
    converged: bool
    method: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the Plan's ``navigation.registrations`` entries)."""
        return {
            "method": f"icp_{self.method}",
            "moving_to_fixed": np.round(self.moving_to_fixed, 6).tolist(),
            "rms_mm": round(self.rms_mm, 3),
            "n_points": len(self.distances_mm),
            "n_inliers": int(self.inliers.sum()),
            "max_inlier_distance_mm": round(float(self.distances_mm[self.inliers].max()), 3),
            "iterations": self.iterations,
            "converged": self.converged,
        }


def _plane_step(moving: Float64Array, fixed: Float64Array, normals: Float64Array) -> Float64Array:
    """Rigid step minimising Σ((R p + t − q)·n)², linearised in the rotation.

    With ``R ≈ I + [ω]×`` about the moving points' centroid c, each pair gives
    ``((p − c) × n)·ω + n·t = (q − p)·n``: a 6-unknown linear least-squares problem. The
    centroid keeps the linearisation error (∝ angle² × lever) small and the system well
    conditioned; the exact rotation ``exp([ω]×)`` is used for the step.
    """
    centre = moving.mean(axis=0)
    a = np.hstack([np.cross(moving - centre, normals), normals])
    b = np.einsum("ij,ij->i", fixed - moving, normals)
    x = linalg.lstsq(a, b)[0]
    rotation = Rotation.from_rotvec(x[:3]).as_matrix()
    step = np.eye(4)
    step[:3, :3] = rotation
    step[:3, 3] = centre - rotation @ centre + x[3:]
    return step


def icp(
    fixed_surface_mm: npt.ArrayLike,
    moving_points_mm: npt.ArrayLike,
    initial_moving_to_fixed: npt.ArrayLike | None = None,
    *,
    max_iterations: int = 100,
    tolerance_mm: float = 0.01,
    trim_fraction: float = 0.1,
    method: IcpMethod | str = IcpMethod.POINT_TO_PLANE,
    fixed_normals: npt.ArrayLike | None = None,
) -> IcpResult:
    """Rigidly register points (e.g. tracked skin points) to a surface (e.g. the CT skin).

    Parameters
    ----------
    fixed_surface_mm : array_like, shape (P, 3)
        Densely sampled fixed surface (e.g. :func:`surface_points_from_mask` of the body
        mask, LPS mm). Its sampling limits the accuracy of point-to-point ICP: use vertex
        spacing well below the accuracy wanted, or point-to-plane.
    moving_points_mm : array_like, shape (M, 3)
        Points to register (e.g. tracker frame, mm); M ≥ 6.
    initial_moving_to_fixed : array_like, shape (4, 4), optional
        Starting transform (identity when None). It must lie in ICP's basin of convergence.
    max_iterations : int
        Cap on ICP steps.
    tolerance_mm : float
        Stop when a step moves no moving point by more than this.
    trim_fraction : float
        Fraction (0 ≤ f < 0.5) of the worst-matching pairs ignored at each step.
    method : IcpMethod or str
        ``"point_to_point"`` (Besl–McKay, SVD step) or ``"point_to_plane"``.
    fixed_normals : array_like, shape (P, 3), optional
        Normals of the fixed surface for point-to-plane; estimated by local PCA
        (:func:`surface_normals`) when None.

    Returns
    -------
    IcpResult

    Raises
    ------
    RegistrationError
        For malformed point sets, too few points, or arguments out of range.
    TransformError
        If the initial transform is not rigid.
    """
    fixed = np.asarray(fixed_surface_mm, dtype=np.float64)
    moving = np.asarray(moving_points_mm, dtype=np.float64)
    for name, points, minimum in (("fixed_surface_mm", fixed, 3), ("moving_points_mm", moving, 6)):
        if points.ndim != 2 or points.shape[1] != 3 or len(points) < minimum:
            raise RegistrationError(
                f"{name} must have shape (N, 3) with N ≥ {minimum}; got {points.shape}."
            )
        if not np.isfinite(points).all():
            raise RegistrationError(f"{name} holds NaN or infinite coordinates; remove them.")
    if not 0.0 <= trim_fraction < 0.5:
        raise RegistrationError(
            f"trim_fraction must be in [0, 0.5) (the share of worst pairs ignored); got "
            f"{trim_fraction}."
        )
    if max_iterations < 1 or not tolerance_mm > 0:
        raise RegistrationError(
            f"max_iterations must be ≥ 1 and tolerance_mm > 0; got {max_iterations} and "
            f"{tolerance_mm}."
        )
    try:
        metric = IcpMethod(method)
    except ValueError as err:
        raise RegistrationError(
            f"method must be one of {[m.value for m in IcpMethod]}; got {method!r}."
        ) from err
    current = (
        np.eye(4)
        if initial_moving_to_fixed is None
        else validate_rigid(initial_moving_to_fixed, "initial_moving_to_fixed")
    )
    tree = cKDTree(fixed)
    normals: Float64Array | None = None
    if metric is IcpMethod.POINT_TO_PLANE:
        if fixed_normals is None:
            # Estimated lazily, only at the surface points that get matched: a CT skin has
            # 10⁵–10⁶ vertices but a few hundred moving points touch a few thousand.
            normals = np.full(fixed.shape, np.nan)
        else:
            normals = np.asarray(fixed_normals, dtype=np.float64)
            if normals.shape != fixed.shape:
                raise RegistrationError(
                    f"fixed_normals must match fixed_surface_mm's shape {fixed.shape}; got "
                    f"{normals.shape}."
                )
    n_keep = max(6, int(np.ceil((1.0 - trim_fraction) * len(moving))))
    converged = False
    iterations = 0
    history: list[tuple[Float64Array, float]] = []  # (transform, its trimmed RMS) per step
    while iterations < max_iterations:
        iterations += 1
        mapped = apply_transform(moving, current)
        distances, index = tree.query(mapped)
        keep = np.argsort(distances)[:n_keep]
        history.append((current, float(np.sqrt(np.mean(distances[keep] ** 2)))))
        matched = index[keep]
        if normals is None:
            # Refit the whole transform to the kept pairs (the Besl–McKay step).
            new, _ = rigid_fit(fixed[matched], moving[keep])
        else:
            missing = np.unique(matched[np.isnan(normals[matched, 0])])
            if len(missing):
                normals[missing] = _pca_normals(fixed, tree, missing)
            step = _plane_step(mapped[keep], fixed[matched], normals[matched])
            new = step @ current
        if _max_move_mm(moving, new, current) <= tolerance_mm:
            current, converged = new, True
            break
        # Closest points jump between surface samples, so ICP can end in a cycle through a
        # few transforms a fraction of a millimetre apart (seen with 2 to 8 members on a CT
        # skin). Returning to an earlier transform ends it: keep the cycle's best member.
        cycle_start = next(
            (j for j, (m, _) in enumerate(history) if _max_move_mm(moving, new, m) <= tolerance_mm),
            None,
        )
        if cycle_start is not None:
            cycle = history[cycle_start:]
            current = min(cycle, key=lambda item: item[1])[0]
            converged = True
            break
        current = new
    distances, _ = tree.query(apply_transform(moving, current))
    inliers = np.zeros(len(moving), dtype=bool)
    inliers[np.argsort(distances)[:n_keep]] = True
    current.setflags(write=False)
    distances.setflags(write=False)
    inliers.setflags(write=False)
    return IcpResult(
        moving_to_fixed=current,
        rms_mm=float(np.sqrt(np.mean(distances[inliers] ** 2))),
        distances_mm=distances,
        inliers=inliers,
        iterations=iterations,
        converged=converged,
        method=metric.value,
    )
