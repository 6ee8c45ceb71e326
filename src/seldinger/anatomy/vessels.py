"""Pulmonary vessels inside the lungs: multi-scale Hessian vesselness, radius per voxel.

A needle path keeps a safety distance from vessels above a calibre, so the result is a
mask with a radius at every voxel (:meth:`PulmonaryVessels.above_calibre`).
:func:`segment_pulmonary_vessels` finds tube centre lines by a multi-scale Frangi
vesselness (Frangi et al. 1998) made blob- and plate-proof, takes the dense voxels around
them, and measures the radius with in-plane distance maps (:func:`tube_radius_mm`).
Checked on synthetic tubes of 1 to 5 mm radius on 0.7 x 0.7 x 2.5 mm voxels and on
lidc-idri-0001 (tests/anatomy/test_vessels.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy._morph import BoolArray, bounding_slices
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.imaging import Volume

__all__ = [
    "DEFAULT_SCALES_MM",
    "VESSEL_MIN_HU",
    "PulmonaryVessels",
    "hessian_eigenvalues",
    "segment_pulmonary_vessels",
    "tube_radius_mm",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

#: Vessel wall edge: halfway between aerated lung (about -850 HU) and unenhanced blood
#: (+40 HU) lies at -405 HU; -500 HU keeps the edge of partial-volumed small vessels and
#: errs by about 0.1 mm to the outside (conservative for a safety margin).
VESSEL_MIN_HU = -500.0

#: Gaussian scales (mm) of the vesselness. A bright cylinder of radius R answers best at
#: sigma = R / sqrt(2) (sigma^2-normalised second derivative of a disk, Lindeberg 1998), so
#: these cover radii of about 1.2 to 9 mm: small peripheral vessels to lobar arteries.
DEFAULT_SCALES_MM = (0.9, 1.4, 2.2, 3.5, 5.5)

# Frangi et al. 1998, eq. 13: alpha weighs the plate measure R_A, beta the blob measure R_B
# (their usual 0.5), c the structureness S, in HU as the sigma^2-normalised Hessian is: the
# centre of a vessel 900 HU brighter than lung gives S of about 470 HU at its best scale
# (sqrt(2) * 900 / e), a partial-volumed 2-3 mm vessel lying in a 2.5 mm slice about
# 100 HU (measured on lidc-idri-0001).
_ALPHA = 0.5
_BETA = 0.5
_C_HU = 100.0
# Damping of responses whose intensity changes along the tube axis (see
# _vesselness_at_scale), and the response below which it is not worth computing.
_KAPPA = 0.25
_MIN_RESPONSE = 0.02
# A tube answering at scale sigma has a radius of about sqrt(2) sigma; its cross-section
# must be closed (down to aerated lung) this far from the centre (_closed_cross_section).
_PROBE_SIGMA = 1.41
_PROBE_EXTRA_MM = 1.5
_PROBE_DENSE_HU = -600.0
# Voxels whose smoothed value is below this are not even candidates (saves the eigen work).
_CANDIDATE_MIN_HU = -780.0
# Working grids of the vesselness: about 1.4 mm for the small scales (2 x 2 CT voxels
# in-plane, 2.5 mm slices split in two), twice that from _COARSE_FROM_SCALE_MM.
_FINE_MM = 1.3
_COARSE_FROM_SCALE_MM = 2.0
# The response covers the inner part of a tube; voxels up to this many sigma (plus a
# margin, mm) from a responding voxel are vessel when they are dense enough.
_REACH_SIGMA = 1.6
_REACH_EXTRA_MM = 1.5
# A seed component must be this many times its largest scale long (see _long_seeds).
_MIN_LENGTH_SIGMA = 3.0
# Half-maximum edge of partial-volumed vessels (see _dense_enough): the peak is sought
# within this in-plane distance (mm), against this lung background (HU), down to this floor.
_PEAK_WINDOW_MM = 2.0
_LUNG_BACKGROUND_HU = -860.0
_EDGE_FLOOR_HU = -700.0
# Hilum (see _hilum_extension): vessels leaving the lungs are followed through voxels
# denser than this (HU; blood, not fat).
_HILUM_MIN_HU = 0.0
# Margin (mm) around the lungs' bounding box kept in the working crop.
_CROP_PAD_MM = 3.0


@dataclass(frozen=True)
class PulmonaryVessels:
    """Pulmonary vessels inside the lungs, with an estimated radius at every voxel.

    Parameters
    ----------
    mask : ndarray of bool, the CT's shape
        Vessel voxels inside the lungs (and, at the hilum, just beyond them).
    radius_mm : ndarray of float32, the CT's shape
        Radius (mm) of the vessel each voxel belongs to; 0 outside ``mask``.

    Examples
    --------
    >>> mask = np.zeros((3, 1, 1), bool); mask[:2] = True
    >>> v = PulmonaryVessels(mask, np.array([2.0, 1.0, 0.0], np.float32).reshape(3, 1, 1))
    >>> v.above_calibre(3.0).ravel().tolist()
    [True, False, False]
    """

    mask: BoolArray
    radius_mm: FloatArray

    def above_calibre(self, min_diameter_mm: float) -> BoolArray:
        """Voxels of vessels whose diameter (2 × radius) is at least ``min_diameter_mm``."""
        if min_diameter_mm < 0:
            raise ValueError(
                f"min_diameter_mm must be >= 0 (a vessel diameter in mm); got {min_diameter_mm}."
            )
        return np.asarray(self.mask & (2.0 * self.radius_mm >= min_diameter_mm))


def hessian_eigenvalues(
    hii: FloatArray,
    hjj: FloatArray,
    hkk: FloatArray,
    hij: FloatArray,
    hik: FloatArray,
    hjk: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Eigenvalues of symmetric 3 × 3 matrices given by their six entries, ascending.

    Closed form (trigonometric solution of the characteristic cubic, Smith 1961): about
    20 array operations, several times faster than ``numpy.linalg.eigvalsh`` on stacked
    matrices and without its (N, 3, 3) copy.

    Parameters
    ----------
    hii, hjj, hkk, hij, hik, hjk : ndarray, shape (N,)
        Entries of the matrices.

    Returns
    -------
    tuple of ndarray, shape (N,)
        Eigenvalues ``e0 <= e1 <= e2``.

    References
    ----------
    .. [1] Smith OK. Eigenvalues of a symmetric 3 × 3 matrix. Commun ACM 4(4):168, 1961.

    Examples
    --------
    >>> one = lambda v: np.array([v], np.float32)
    >>> e = hessian_eigenvalues(one(2), one(2), one(5), one(1), one(0), one(0))
    >>> np.round(np.concatenate(e), 4).tolist()
    [1.0, 3.0, 5.0]
    """
    q = (hii + hjj + hkk) / 3.0
    off2 = hij * hij + hik * hik + hjk * hjk
    a = hii - q
    b = hjj - q
    c = hkk - q
    p = np.sqrt((a * a + b * b + c * c + 2.0 * off2) / 6.0)
    safe = np.where(p > 1e-12, p, 1.0)
    # det(A - qI) / (2 p^3), the cosine of three times the angle
    det = a * (b * c - hjk * hjk) - hij * (hij * c - hjk * hik) + hik * (hij * hjk - b * hik)
    r = np.clip(det / (2.0 * safe**3), -1.0, 1.0)
    phi = np.arccos(r) / 3.0
    e2 = q + 2.0 * p * np.cos(phi)
    e0 = q + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    e1 = 3.0 * q - e0 - e2
    return e0.astype(np.float32), e1.astype(np.float32), e2.astype(np.float32)


def _frangi(e0: FloatArray, e1: FloatArray, e2: FloatArray) -> FloatArray:
    """Frangi vesselness of bright tubes from ascending, sigma²-normalised eigenvalues."""
    # Bright tube: two strongly negative eigenvalues (e0 <= e1 < 0) and one near zero, |e2|
    # the smallest in magnitude. Ordered by magnitude: l1 = e2, l2 = e1, l3 = e0.
    tube = (e1 < 0) & (e2 <= -e1)
    l1 = np.abs(e2)
    l2 = np.abs(e1)
    l3 = np.maximum(np.abs(e0), 1e-6)
    ra2 = (l2 / l3) ** 2
    rb2 = l1 * l1 / np.maximum(l2 * l3, 1e-12)
    s2 = l1 * l1 + l2 * l2 + l3 * l3
    v = (
        (1.0 - np.exp(-ra2 / (2 * _ALPHA**2)))
        * np.exp(-rb2 / (2 * _BETA**2))
        * (1.0 - np.exp(-s2 / (2 * _C_HU**2)))
    )
    return np.where(tube, v, 0.0).astype(np.float32)


def _eigenvector(
    h: Sequence[FloatArray], eigenvalue: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Unit eigenvector (i, j, k components) of symmetric 3 × 3 matrices for an eigenvalue.

    ``h`` holds the entries (ii, jj, kk, ij, ik, jk). The eigenvector is orthogonal to the
    rows of H - eigenvalue * I: the largest cross product of two of them.
    """
    hii, hjj, hkk, hij, hik, hjk = h
    r0 = (hii - eigenvalue, hij, hik)
    r1 = (hij, hjj - eigenvalue, hjk)
    r2 = (hik, hjk, hkk - eigenvalue)
    best = [np.zeros_like(hii), np.zeros_like(hii), np.zeros_like(hii)]
    best_norm = np.zeros_like(hii)
    for a, b in ((r0, r1), (r0, r2), (r1, r2)):
        c = (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])
        norm = c[0] * c[0] + c[1] * c[1] + c[2] * c[2]
        larger = norm > best_norm
        best = [np.where(larger, ci, bi) for ci, bi in zip(c, best, strict=True)]
        best_norm = np.where(larger, norm, best_norm)
    scale = (1.0 / np.sqrt(np.maximum(best_norm, 1e-30))).astype(np.float32)
    return (
        np.asarray(best[0] * scale, np.float32),
        np.asarray(best[1] * scale, np.float32),
        np.asarray(best[2] * scale, np.float32),
    )


def _vesselness_at_scale(
    image_hu: FloatArray,
    spacing_mm: Sequence[float],
    sigma_mm: float,
    region: BoolArray,
    threshold: float,
) -> FloatArray:
    """Vesselness of tube centre lines at one scale (0 outside ``region`` and at the border).

    Frangi's measure, times exp(-(g / |l2|)^2 / (2 kappa^2)) where g is the
    sigma-normalised gradient along the tube's axis (the eigenvector of the smallest
    eigenvalue). Frangi's measure alone also answers on the shell of a blob (a nodule):
    there the radial second derivative passes through zero and the two tangential ones
    are negative, which looks like a tube running radially, but the intensity changes
    fast along that "axis". Along a real tube it does not, wherever the voxel lies in the
    cross-section (so voxels between grid points of a thin tube are not penalised).
    Responses above ``threshold`` must also pass :func:`_closed_cross_section`.
    """
    sigma_vox = [sigma_mm / s for s in spacing_mm]
    smooth = ndi.gaussian_filter(image_hu, sigma_vox, mode="nearest", truncate=3.0)
    cand = region & (smooth > _CANDIDATE_MIN_HU)
    cand[[0, -1]] = False
    cand[:, [0, -1]] = False
    cand[:, :, [0, -1]] = False
    idx = np.flatnonzero(cand)
    out = np.zeros(image_hu.shape, np.float32)
    if idx.size == 0:
        return out
    # Derivatives of the smoothed image by central differences at the candidates only (a
    # gather per stencil point instead of nine full Gaussian-derivative filters),
    # normalised by sigma (first) and sigma^2 (second; Lindeberg's gamma = 2) so that
    # scales compare.
    flat = smooth.ravel()
    strides = [image_hu.shape[1] * image_hu.shape[2], image_hu.shape[2], 1]

    def second(at: npt.NDArray[np.intp], ax: int) -> FloatArray:
        d = strides[ax]
        value = flat[at + d] - 2.0 * flat[at] + flat[at - d]
        return np.asarray(value * (sigma_mm * sigma_mm / spacing_mm[ax] ** 2))

    def mixed(at: npt.NDArray[np.intp], ax: int, bx: int) -> FloatArray:
        d, e = strides[ax], strides[bx]
        value = flat[at + d + e] - flat[at + d - e] - flat[at - d + e] + flat[at - d - e]
        return np.asarray(value * (0.25 * sigma_mm * sigma_mm / (spacing_mm[ax] * spacing_mm[bx])))

    def first(at: npt.NDArray[np.intp], ax: int) -> FloatArray:
        d = strides[ax]
        return np.asarray((flat[at + d] - flat[at - d]) * (0.5 * sigma_mm / spacing_mm[ax]))

    h = [second(idx, 0), second(idx, 1), second(idx, 2)]
    h += [mixed(idx, 0, 1), mixed(idx, 0, 2), mixed(idx, 1, 2)]
    e0, e1, e2 = hessian_eigenvalues(*h)
    v = _frangi(e0, e1, e2)
    # the axial gradient only where the response matters (a few % of the candidates)
    keep = np.flatnonzero(v > _MIN_RESPONSE)
    at = idx[keep]
    axis = _eigenvector([x[keep] for x in h], e2[keep])
    along = np.abs(sum(first(at, ax) * axis[ax] for ax in range(3)))
    damping = np.exp(-((along / np.maximum(np.abs(e1[keep]), 1e-6)) ** 2) / (2 * _KAPPA**2))
    v = v[keep] * damping
    strong = np.flatnonzero(v > threshold)
    tube = _closed_cross_section(
        image_hu,
        spacing_mm,
        at[strong],
        [x[strong] for x in axis],
        _PROBE_SIGMA * sigma_mm + _PROBE_EXTRA_MM,
    )
    v[strong[~tube]] = 0.0
    out.ravel()[at] = v
    return out


def _closed_cross_section(
    image_hu: FloatArray,
    spacing_mm: Sequence[float],
    at: npt.NDArray[np.intp],
    axis: Sequence[FloatArray],
    distance_mm: float,
) -> BoolArray:
    """Whether each voxel ``at`` is the centre of a bright tube of radius < ``distance_mm``.

    The voxel must be denser than _EDGE_FLOOR_HU (a bronchus, a bright ring around air, is
    not), and in its cross-section (the plane normal to ``axis``) the image must fall to
    _PROBE_DENSE_HU or below at ``distance_mm`` on at least one side in each of four
    directions 45 degrees apart. Inside a nodule (even a heterogeneous one: hence a level
    below the vessel edge), a plate (bronchial wall, fissure) or a large dense region the
    image stays high on both sides in some direction. A vessel running along another one,
    or along a bronchial wall, is still open on its other side.
    """
    shape = np.asarray(image_hu.shape)
    ijk = np.column_stack(np.unravel_index(at, image_hu.shape)).astype(np.float32)
    a = np.column_stack(axis)
    # u: axis x the coordinate axis least aligned with it; w = axis x u
    helper = np.eye(3, dtype=np.float32)[np.argmin(np.abs(a), axis=1)]
    u = np.cross(a, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = np.cross(a, u)
    flat = image_hu.ravel()
    closed = flat[at] <= _EDGE_FLOOR_HU
    step = distance_mm / np.asarray(spacing_mm, np.float32)
    for d in (u, w, (u + w) / np.sqrt(2.0), (u - w) / np.sqrt(2.0)):
        both = np.ones(len(at), bool)
        for sign in (1.0, -1.0):
            p = np.rint(ijk + sign * d * step).astype(np.intp)
            p = np.clip(p, 0, shape - 1)
            both &= flat[np.ravel_multi_index(p.T, image_hu.shape)] > _PROBE_DENSE_HU
        closed |= both
    return np.asarray(~closed)


def _block_mean_inplane(a: npt.NDArray[Any], step: int) -> FloatArray:
    """Mean over step × step in-plane blocks (trailing rows that fill no block are dropped)."""
    ni, nj = a.shape[0] // step, a.shape[1] // step
    total = np.zeros((ni, nj, a.shape[2]), np.float32)
    for di in range(step):
        for dj in range(step):
            total += a[di : ni * step : step, dj : nj * step : step]
    return np.asarray(total / (step * step), np.float32)


def _upsample_k(a: FloatArray, factor: int) -> FloatArray:
    """Linear interpolation along k by an integer factor (slice n maps to n * factor)."""
    if factor == 1:
        return a
    nk = a.shape[2]
    out = np.empty((*a.shape[:2], (nk - 1) * factor + 1), np.float32)
    out[:, :, ::factor] = a
    for t in range(1, factor):
        w = t / factor
        out[:, :, t::factor] = (1.0 - w) * a[:, :, :-1] + w * a[:, :, 1:]
    return out


def _block_mean_2(a: FloatArray) -> FloatArray:
    """Mean over 2 × 2 × 2 blocks (odd trailing planes dropped)."""
    n = [s // 2 * 2 for s in a.shape]
    b = a[: n[0], : n[1], : n[2]].reshape(n[0] // 2, 2, n[1] // 2, 2, n[2] // 2, 2)
    return np.asarray(b.mean(axis=(1, 3, 5), dtype=np.float32))


def _block_any_2(a: BoolArray) -> BoolArray:
    """Any over 2 × 2 × 2 blocks (odd trailing planes dropped)."""
    n = [s // 2 * 2 for s in a.shape]
    b = a[: n[0], : n[1], : n[2]].reshape(n[0] // 2, 2, n[1] // 2, 2, n[2] // 2, 2)
    return np.asarray(b.any(axis=(1, 3, 5)))


def _repeat_2(a: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """A 2 × 2 × 2 block array back on the finer grid ``shape`` (zero where it was cut)."""
    out = np.zeros(shape, a.dtype)
    r = a.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    out[: r.shape[0], : r.shape[1], : r.shape[2]] = r
    return out


def tube_radius_mm(mask: BoolArray, spacing_mm: Sequence[float]) -> FloatArray:
    """Radius of the tube each voxel of ``mask`` belongs to, from in-plane distance maps.

    Every axial plane cuts a cylinder of radius R in an ellipse (or a band) whose smaller
    half-width is R whatever the cylinder's direction. So in each (i, j) plane: the
    Euclidean distance to the background (mm), its ridge (voxels not exceeded by an
    in-plane neighbour: the centres of the cross-sections), and for each voxel the value at
    its nearest ridge voxel. Working in-plane keeps the 0.7 mm resolution that a 3-D map on
    2.5 mm slices would lose. A tube lying in a slice is also seen, narrower, in the slices
    next to it; a voxel takes the larger radius of a voxel up to that radius away along k
    (through the mask), as the largest inscribed ball containing it would.

    Parameters
    ----------
    mask : ndarray of bool, shape (I, J, K)
        Tubular structures.
    spacing_mm : sequence of 3 float
        Voxel size along (i, j, k) in mm.

    Returns
    -------
    ndarray of float32, shape (I, J, K)
        Radius in mm; 0 outside ``mask``.

    Examples
    --------
    A rod of radius 4.2 pixels of 0.5 mm (2.1 mm) through two slices:

    >>> disk = np.hypot(*np.mgrid[-6:7, -6:7]) <= 4.2
    >>> r = tube_radius_mm(np.repeat(disk[:, :, None], 2, axis=2), (0.5, 0.5, 1.0))
    >>> round(float(r[6, 6, 0]), 2), round(float(r[6, 2, 1]), 2), float(r[0, 0, 0])
    (2.12, 2.12, 0.0)
    """
    out = np.zeros(mask.shape, np.float32)
    footprint = np.ones((3, 3), bool)
    for k in range(mask.shape[2]):
        plane = mask[:, :, k]
        if not plane.any():
            continue
        rows = np.flatnonzero(plane.any(axis=1))
        cols = np.flatnonzero(plane.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        m = np.pad(plane[box], 1)
        dist = ndi.distance_transform_edt(m, sampling=spacing_mm[:2])
        ridge = m & (dist >= ndi.maximum_filter(dist, footprint=footprint) - 1e-6)
        near = ndi.distance_transform_edt(~ridge, return_distances=False, return_indices=True)
        # No half-pixel correction: the background pixel nearest a centre lies beyond the
        # edge (+), the centre pixel off the true centre (-); the two nearly cancel on the
        # synthetic tubes of tests/anatomy/test_vessels.py.
        radius = np.where(m, dist[near[0], near[1]], 0.0)
        out[box[0], box[1], k] = radius[1:-1, 1:-1]
    # along k: a voxel dk slices from one of radius >= dk * spacing lies in its ball
    step_k = float(spacing_mm[2])
    source = np.flatnonzero(out >= step_k)
    nk = mask.shape[2]
    flat_out = out.ravel()
    flat_mask = mask.ravel()
    for sign in (1, -1):
        k_src = source % nk
        chain = np.ones(source.size, bool)
        for dk in range(1, int(np.ceil(float(out.max(initial=0.0)) / step_k)) + 1):
            value = flat_out[source]
            k_dst = k_src + sign * dk
            inside = (k_dst >= 0) & (k_dst < nk)
            target = np.where(inside, source + sign * dk, source)
            chain &= inside & flat_mask[target] & (value >= dk * step_k)
            if not chain.any():
                break
            t = target[chain]
            flat_out[t] = np.maximum(flat_out[t], value[chain])
    return out


def segment_pulmonary_vessels(
    ct: Volume,
    lungs: BoolArray,
    *,
    scales_mm: Sequence[float] = DEFAULT_SCALES_MM,
    threshold: float = 0.15,
    hilum_margin_mm: float = 5.0,
) -> PulmonaryVessels:
    """Segment the pulmonary vessels inside the lungs and estimate their radius.

    1. Multi-scale vesselness on a near-isotropic grid of about 1.4 mm cut to the lungs
       (2.8 mm for the scales from 2 mm): Frangi's measure of bright tubes, damped where
       the intensity changes along the tube axis (blob shells), kept above ``threshold``
       only where the cross-section is closed (not inside a nodule, plate or dense
       region). These voxels are seeds; seed components shorter than three times their
       largest scale are dropped.
    2. Each seed reaches 1.6 sigma + 1.5 mm (the radius of the tube it answers for, with a
       margin); reached lung voxels denser than the vessel edge level are vessel. The edge
       level is :data:`VESSEL_MIN_HU`, lowered to the half maximum between the local peak
       and aerated lung for small vessels thinned by the partial volume of thick slices.
    3. At the hilum, vessels that leave the lung mask are followed up to
       ``hilum_margin_mm`` into the mediastinum through blood-dense voxels.
    4. Radius per voxel from in-plane distance maps (:func:`tube_radius_mm`).

    The Hessian is computed by central differences of a Gaussian-smoothed image at the
    candidate voxels only (smoothed value above -780 HU, about a quarter of the lung) and
    diagonalised in closed form (:func:`hessian_eigenvalues`): on lidc-idri-0001
    (512 x 512 x 133) the whole function takes about 1.5 s on one core, while
    ``skimage.filters.frangi`` (full Gaussian-derivative filters and an eigen-decomposition
    of every voxel) took 30 s for the two small scales alone on the same working grid, and
    gives no axis direction.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (:func:`seldinger.anatomy.checks.require_canonical`).
    lungs : ndarray of bool, the CT's shape
        Both lungs, holes filled (vessels inside), airways removed.
    scales_mm : sequence of float
        Gaussian scales (mm) of the vesselness; see :data:`DEFAULT_SCALES_MM`.
    threshold : float
        Vesselness (0 to 1) above which a voxel seeds a vessel; lower finds fainter
        vessels, and more that are not.
    hilum_margin_mm : float
        How far (mm) vessels leaving the lungs between the lungs (at the hilum) are
        followed outside ``lungs``; 0 keeps the mask inside ``lungs``.

    Returns
    -------
    PulmonaryVessels
        Mask and radius on the CT's grid: inside ``lungs``, and at the hilum up to
        ``hilum_margin_mm`` beyond them.

    Raises
    ------
    AnatomyError
        ``lungs`` does not match the CT or is empty.
    ValueError
        A scale is not positive, ``threshold`` is not in (0, 1) or the margin is negative.

    Notes
    -----
    Vessels thinner than about 1.5 mm peak below -700 HU on 2.5 mm slices and are mostly
    missed; on lidc-idri-0001 the mask is about 2 % of the lungs. Vessels of 3 mm and more
    are what the planner needs (:meth:`PulmonaryVessels.above_calibre`). A nodule touching
    vessels keeps the vessels' ends within a seed's reach (a few mm) of its surface.

    References
    ----------
    .. [1] Frangi AF, Niessen WJ, Vincken KL, Viergever MA. Multiscale vessel enhancement
       filtering. MICCAI 1998, LNCS 1496:130-137 (eq. 13).
    .. [2] Lindeberg T. Edge detection and ridge detection with automatic scale selection.
       Int J Comput Vis 30(2):117-156, 1998 (sigma^2 normalisation, ridge condition).
    """
    require_canonical(ct)
    lungs = np.asarray(lungs, dtype=bool)
    if lungs.shape != ct.shape:
        raise AnatomyError(
            f"lungs must be a mask of the CT's shape {ct.shape}; got {lungs.shape}. "
            "Pass the lung mask segmented from this CT (seldinger.anatomy.lungs)."
        )
    if not scales_mm or min(scales_mm) <= 0:
        raise ValueError(
            f"scales_mm must be positive Gaussian scales in mm; got {tuple(scales_mm)}."
        )
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a vesselness in (0, 1); got {threshold}.")
    if hilum_margin_mm < 0:
        raise ValueError(f"hilum_margin_mm must be >= 0 (mm); got {hilum_margin_mm}.")
    spacing = ct.spacing_mm
    pad_mm = max(_CROP_PAD_MM, hilum_margin_mm + 1.0)
    box = bounding_slices(lungs, pad=[int(np.ceil(pad_mm / s)) for s in spacing])
    if not lungs[box].any():
        raise AnatomyError(
            "the lung mask is empty, so there are no pulmonary vessels to find. Check the "
            "lung segmentation (seldinger.anatomy.lungs) of this CT."
        )
    hu = ct.array[box]
    lung = np.asarray(lungs[box])
    scales = sorted(float(x) for x in scales_mm)

    # Working grid near-isotropic at about _FINE_MM: block means in-plane (also a noise
    # filter), linear interpolation along k; scales from _COARSE_FROM_SCALE_MM run on a
    # grid twice as coarse (8 times fewer voxels).
    step = max(1, round(_FINE_MM / spacing[0]))
    up = max(1, round(spacing[2] / _FINE_MM))
    fine = _upsample_k(_block_mean_inplane(hu, step), up)
    fine_spacing = (spacing[0] * step, spacing[1] * step, spacing[2] / up)
    fine_lung = _upsample_k(_block_mean_inplane(lung, step), up) > 0
    # Seeds one working voxel inside the lungs: the chest wall is a bright half-space whose
    # corners (rib notches, costophrenic angles) can answer like tubes.
    best, best_scale = _multiscale_vesselness(
        fine, fine_spacing, ndi.binary_erosion(fine_lung), scales, threshold
    )
    seeds = _long_seeds(best > threshold, best_scale, scales, fine_spacing)

    reach = np.zeros(hu.shape, bool)
    for n, sigma in enumerate(scales):
        fine_ijk = np.argwhere(seeds & (best_scale == n)).astype(np.float64)
        if sigma >= _COARSE_FROM_SCALE_MM:
            # coarse results were repeated 2 x 2 x 2: one seed per coarse voxel, at the
            # centre of its block
            fine_ijk = np.unique(fine_ijk // 2, axis=0) * 2 + 0.5
        # fine voxel (a, b, c) is the block of CT voxels a * step ... a * step + step - 1
        # in-plane, on CT slice c / up
        centres = np.column_stack(
            [
                fine_ijk[:, 0] * step + (step - 1) / 2,
                fine_ijk[:, 1] * step + (step - 1) / 2,
                fine_ijk[:, 2] / up,
            ]
        )
        _paint_balls(reach, centres, _REACH_SIGMA * sigma + _REACH_EXTRA_MM, spacing)
    vessel = _dense_enough(hu, reach & lung, spacing)
    radius = tube_radius_mm(vessel, spacing)
    if hilum_margin_mm > 0:
        hilum = _hilum_extension(hu, lung, vessel, hilum_margin_mm, spacing)
        if hilum.any():
            vessel |= hilum
            radius = tube_radius_mm(vessel, spacing)
    mask = np.zeros(ct.shape, bool)
    mask[box] = vessel
    radius_mm = np.zeros(ct.shape, np.float32)
    radius_mm[box] = radius
    logger.debug(
        "pulmonary vessels: %d seeds, %.1f mL, %.1f %% of the lungs",
        int(seeds.sum()),
        vessel.sum() * float(np.prod(spacing)) / 1000.0,
        100.0 * vessel.sum() / max(int(lung.sum()), 1),
    )
    return PulmonaryVessels(mask=mask, radius_mm=radius_mm)


def _multiscale_vesselness(
    fine: FloatArray,
    fine_spacing: tuple[float, float, float],
    region: BoolArray,
    scales: Sequence[float],
    threshold: float,
) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Largest vesselness over ``scales`` on the fine grid, and the index of its scale."""
    coarse = _block_mean_2(fine)
    coarse_spacing = (2 * fine_spacing[0], 2 * fine_spacing[1], 2 * fine_spacing[2])
    coarse_region = _block_any_2(region)
    best = np.zeros(fine.shape, np.float32)
    best_scale = np.zeros(fine.shape, np.int8)
    for n, sigma in enumerate(scales):
        if sigma >= _COARSE_FROM_SCALE_MM:
            v = _repeat_2(
                _vesselness_at_scale(coarse, coarse_spacing, sigma, coarse_region, threshold),
                fine.shape,
            )
        else:
            v = _vesselness_at_scale(fine, fine_spacing, sigma, region, threshold)
        better = v > best
        best[better] = v[better]
        best_scale[better] = n
    return best, best_scale


def _long_seeds(
    seeds: BoolArray,
    scale_index: npt.NDArray[np.int8],
    scales: Sequence[float],
    spacing_mm: Sequence[float],
) -> BoolArray:
    """Seed components whose extent is at least _MIN_LENGTH_SIGMA times their largest scale.

    A tube's centre line answers along its length; an elongated or lobulated nodule
    answers at a few voxels near its middle, at the scale of its width.
    """
    labels, n = ndi.label(seeds, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return seeds
    largest = np.zeros(n + 1, np.float32)
    np.maximum.at(largest, labels[seeds], np.asarray(scales, np.float32)[scale_index[seeds]])
    extent = np.zeros(n + 1, np.float32)
    for label, obj in enumerate(ndi.find_objects(labels), start=1):
        if obj is not None:
            extent[label] = np.sqrt(
                sum(((o.stop - o.start) * s) ** 2 for o, s in zip(obj, spacing_mm, strict=True))
            )
    keep = extent >= _MIN_LENGTH_SIGMA * largest
    keep[0] = False
    return np.asarray(keep[labels])


def _paint_balls(
    out: BoolArray,
    centres: npt.NDArray[np.float64],
    radius_mm: float,
    spacing_mm: Sequence[float],
) -> None:
    """Set ``out`` True within ``radius_mm`` of each centre (fractional index rows), in place.

    Seeds are a few thousand voxels, so writing a ball around each (a few hundred offsets)
    costs far less than a morphological dilation of the whole grid with the same ball.
    """
    base = np.floor(centres).astype(np.intp)
    fraction = np.round(centres - base, 2)
    spacing = np.asarray(spacing_mm)
    half = np.ceil(radius_mm / spacing).astype(int) + 1
    grid = np.stack(
        np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    shape = np.asarray(out.shape)
    flat = out.ravel()
    # one ball per sub-voxel position of the centres (a handful: block centres, half slices)
    for f in np.unique(fraction, axis=0):
        offsets = grid[np.sum(((grid - f) * spacing) ** 2, axis=1) <= radius_mm**2]
        group = base[np.all(fraction == f, axis=1)]
        for chunk in range(0, len(group), 2048):
            points = (group[chunk : chunk + 2048, None, :] + offsets[None, :, :]).reshape(-1, 3)
            points = points[np.all((points >= 0) & (points < shape), axis=1)]
            flat[np.ravel_multi_index(points.T, out.shape)] = True


def _dense_enough(
    hu: npt.NDArray[np.number[Any]], where: BoolArray, spacing_mm: Sequence[float]
) -> BoolArray:
    """Voxels of ``where`` above the vessel edge level (see segment_pulmonary_vessels).

    Above :data:`VESSEL_MIN_HU` a voxel is vessel. Between _EDGE_FLOOR_HU and that, it is
    when it exceeds the half maximum between the highest voxel within _PEAK_WINDOW_MM
    in-plane and aerated lung (_LUNG_BACKGROUND_HU): the edge of a small vessel thinned
    by the partial volume of a thick slice.
    """
    out = where & (hu > VESSEL_MIN_HU)
    faint = np.flatnonzero(where & (hu > _EDGE_FLOOR_HU) & ~out)
    if faint.size == 0:
        return out
    i, j, k = np.unravel_index(faint, hu.shape)
    flat = hu.ravel()
    peak = flat[faint].astype(np.float32)
    ri, rj = (round(_PEAK_WINDOW_MM / s) for s in spacing_mm[:2])
    for di in range(-ri, ri + 1):
        ii = np.clip(i + di, 0, hu.shape[0] - 1)
        for dj in range(-rj, rj + 1):
            if (di * spacing_mm[0]) ** 2 + (dj * spacing_mm[1]) ** 2 > _PEAK_WINDOW_MM**2:
                continue
            jj = np.clip(j + dj, 0, hu.shape[1] - 1)
            np.maximum(peak, flat[(ii * hu.shape[1] + jj) * hu.shape[2] + k], out=peak)
    edge = 0.5 * (peak + _LUNG_BACKGROUND_HU)
    out.ravel()[faint[flat[faint] > edge]] = True
    return out


def _hilum_extension(
    hu: npt.NDArray[np.number[Any]],
    lung: BoolArray,
    vessel: BoolArray,
    margin_mm: float,
    spacing_mm: Sequence[float],
) -> BoolArray:
    """Blood-dense voxels between the lungs continuing a vessel that leaves them.

    A lung mask made by filling holes slice by slice leaves the hilar vessels, open
    towards the mediastinum, outside. Mediastinal voxels here are those with lung on both
    sides along i in their row (the chest wall has lung on one side only). From the
    vessel voxels touching such voxels above _HILUM_MIN_HU (blood; fat stays out), grow
    in-plane, 4-connected (so never farther than ``margin_mm`` in a straight line),
    through them for ``margin_mm``.
    """
    lung_before = np.logical_or.accumulate(lung, axis=0)
    lung_after = np.logical_or.accumulate(lung[::-1], axis=0)[::-1]
    mediastinal = lung_before & lung_after & ~lung & (hu > _HILUM_MIN_HU)
    cross = np.zeros((3, 3, 3), bool)
    cross[1, :, 1] = cross[:, 1, 1] = True
    start = vessel & ndi.binary_dilation(mediastinal, cross)
    if not start.any():
        return np.zeros_like(vessel)
    steps = int(margin_mm // min(spacing_mm[0], spacing_mm[1]))
    grown = ndi.binary_dilation(start, cross, iterations=steps, mask=mediastinal | start)
    return np.asarray(grown & mediastinal)
