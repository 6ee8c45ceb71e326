"""Lesions: a lung nodule or a soft-tissue (e.g. liver) lesion segmented from one seed point.

The method is classical and local: it works in a box of ``±max_radius_mm`` around the
seed, in whatever orientation the CT is stored (spacing and affine are used, never
assumed), on anisotropic grids (all morphology is Euclidean in millimetres through
distance transforms with ``sampling=spacing_mm``).

1. **Seed checks.** The seed must lie in the image, inside the body (``body``, or: not in
   air connected to the border of its axial slice), not in air or aerated lung (a seed
   on a lesion's edge moves to the nearest soft tissue within 3 mm), not in bone.
2. **Lung nodule?** The *lung envelope* is the aerated lung (``lungs``, or HU below
   -500 inside the body) closed with a ball. The closing fills nodules, juxta-pleural
   ones included, but not the chest wall; its radius is 1.5 × the nodule's inscribed
   radius, so it does not fill folds of the chest wall either. A seed inside the envelope
   whose grown blob is bordered mostly by aerated lung is a lung nodule.
3. **Growing.** Lung: voxels inside the envelope (this cuts a juxta-pleural nodule from
   the chest wall along the pleura) above a threshold 30 % of the way from the lung
   parenchyma (median of the aerated voxels) to the lesion (median of the nodule's core).
   Soft tissue (e.g. a liver lesion): the surroundings' value is the median of a shell
   around a tight first grow; the lesion is the band of HU from its own value to halfway
   towards the surroundings, i.e. the halfway threshold; re-estimated twice.
4. **Separation.** A Euclidean opening with a radius of 35 % of the lesion's inscribed
   radius (1-5 mm) cuts vessels and bridges; the component holding the lesion's core is
   grown back inside the grown region (a geodesic reconstruction limited to the radius).
5. **Clean-up.** Holes are filled; a result that reaches the box (``max_radius_mm``) is a
   leak and raises :class:`LesionError` rather than return a wrong volume.

Conventions (``docs/conventions.md``): positions are LPS mm, arrays are indexed
``(i, j, k)``. RECIST diameters are measured in the axial plane, i.e. in slices of the
array axis within 1° of the patient's z axis; oblique grids raise :class:`LesionError`
(resample them onto an axial grid first).

References
----------
.. [1] Kostis WJ, Reeves AP, Yankelevitz DF, Henschke CI. Three-dimensional segmentation
   and growth-rate estimation of small pulmonary nodules in helical CT images. IEEE Trans
   Med Imaging 22(10):1259-1274, 2003 (threshold, opening adapted to nodule size,
   pleural separation).
.. [2] Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
   RECIST guideline (version 1.1). Eur J Cancer 45:228-247, 2009 (a lesion's longest
   diameter in the plane of measurement, axial for CT).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.errors import LesionError
from seldinger.anatomy.measure import axial_axis, lesion_measurements
from seldinger.anatomy.morphology import close_mm, dilate_mm
from seldinger.imaging import Volume

__all__ = ["Lesion", "LesionError", "axial_axis", "lesion_measurements", "segment_lesion"]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

#: Aerated lung parenchyma reads about -950 to -700 HU; below this a voxel counts as air
#: or aerated lung (outside air, lung, airways, bowel gas).
AERATED_HU = -500.0
#: Soft tissue, fat and solid lesions read above this; the seed needs some within
#: :data:`SEED_SEARCH_MM`.
SOFT_TISSUE_HU = -300.0
#: Above this the seed sits in cortical bone (or a dense calcification). Cancellous bone
#: (about 150-300 HU) overlaps enhancing soft tissue and cannot be told apart by HU.
BONE_HU = 300.0
#: A seed on the very edge of a lesion is moved to the nearest soft-tissue voxel within
#: this distance (mm); farther means the seed is in air or lung.
SEED_SEARCH_MM = 3.0
#: Radius (mm) of the ball around the seed whose median HU is the lesion's value.
SEED_BALL_MM = 3.0
#: Lung-nodule threshold: this fraction of the way from the lung parenchyma's HU to the
#: lesion's. Readers outline the outer edge of the partial-volume rim: on the
#: LIDC-IDRI-0001 consensus (7.8 mL) the halfway point (0.5, about -390 HU) gave 5.5 mL and
#: Dice 0.83, 0.4 gave 6.3 mL / 0.89, 0.3 (about -580 HU) 7.25 mL / 0.92.
LUNG_THRESHOLD_FRACTION = 0.3
#: Gaussian pre-smoothing (sigma, mm) before thresholding. In lung the contrast is ~900 HU
#: and 1 mm only removes single noisy voxels; in soft tissue contrasts of 30-50 HU sit
#: within 3-4 noise sigmas, and the noise must go down to keep the lesion from leaking.
LUNG_SMOOTHING_MM = 1.0
SOFT_TISSUE_SMOOTHING_MM = 2.0
#: The opening radius is this fraction of the lesion's inscribed radius, within
#: :data:`OPENING_MM_RANGE`: large enough to cut vessels (1-3 mm radius) off a nodule,
#: small enough to keep the nodule's lobulations.
OPENING_FRACTION = 0.35
OPENING_MM_RANGE = (1.0, 5.0)
#: The lung envelope is the aerated lung closed with a ball of this many times the nodule's
#: inscribed radius (at least MIN_ENVELOPE_MM): enough to fill the nodule and the pleural
#: corner it sits in, not the folds of the chest wall. On LIDC-IDRI-0001 (inscribed radius
#: 9 mm) factors 1.2-2 gave the same nodule; 2.5 and more (a 20 mm ball) added a pleural
#: thickening beside it, and a fixed 30 mm ball let it leak into the chest wall.
ENVELOPE_FACTOR = 1.5
MIN_ENVELOPE_MM = 10.0
#: A lung nodule's blob must have at least this fraction of its outer shell in aerated lung.
MIN_LUNG_BORDER_FRACTION = 0.3
#: The HU difference between lesion and surroundings below which no edge can be found.
MIN_CONTRAST_HU = 15.0

_MAX_BALL_STEPS = 20


@dataclass(frozen=True, eq=False)
class Lesion:
    """A segmented lesion and its measurements.

    Parameters
    ----------
    mask : Volume
        Boolean mask on the CT's grid (True inside the lesion).
    seed_lps_mm : tuple of float
        The seed point as given, LPS mm.
    volume_ml : float
        Voxel count times voxel volume, millilitres.
    centroid_lps_mm : tuple of float
        Mean position of the lesion's voxel centres, LPS mm.
    recist_diameter_mm : float
        Longest in-plane distance between voxel centres of one axial slice (RECIST 1.1).
    max_diameter_mm : float
        Longest 3-D distance between voxel centres of the lesion.
    tissue : {"lung", "soft_tissue"}
        The growing model used: a nodule in aerated lung, or a lesion in soft tissue.
    """

    mask: Volume
    seed_lps_mm: tuple[float, float, float]
    volume_ml: float
    centroid_lps_mm: tuple[float, float, float]
    recist_diameter_mm: float
    max_diameter_mm: float
    tissue: str

    def summary(self) -> dict[str, Any]:
        """JSON-ready measurements (plain floats, lists and str)."""
        return {
            "volume_ml": self.volume_ml,
            "centroid_lps_mm": list(self.centroid_lps_mm),
            "recist_diameter_mm": self.recist_diameter_mm,
            "max_diameter_mm": self.max_diameter_mm,
            "seed_lps_mm": list(self.seed_lps_mm),
            "tissue": self.tissue,
            "voxels": int(np.count_nonzero(self.mask.array)),
        }


# --- morphology in millimetres ------------------------------------------------------------


def _distance_mm(mask: BoolArray, spacing_mm: tuple[float, float, float]) -> FloatArray:
    """Distance (mm) from each voxel of ``mask`` to the nearest voxel outside it."""
    return np.asarray(ndi.distance_transform_edt(mask, sampling=spacing_mm), dtype=np.float64)


def _smooth(
    hu: npt.NDArray[np.float32], sigma_mm: float, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float32]:
    return np.asarray(
        ndi.gaussian_filter(hu, sigma=[sigma_mm / s for s in spacing_mm], mode="nearest")
    )


def _component_at(mask: BoolArray, index: tuple[int, ...]) -> BoolArray:
    """The 26-connected component of ``mask`` holding ``index`` (empty if it is not in it)."""
    if not mask[index]:
        return np.zeros_like(mask)
    labels, _ = ndi.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    return np.asarray(labels == labels[index])


def _ball(
    shape: tuple[int, ...], centre: tuple[int, ...], radius_mm: float, spacing_mm: tuple[float, ...]
) -> BoolArray:
    grids = np.ogrid[tuple(slice(-c, n - c) for c, n in zip(centre, shape, strict=True))]
    d2 = sum((g * s) ** 2 for g, s in zip(grids, spacing_mm, strict=True))
    return np.asarray(d2 <= radius_mm**2 + 1e-9)


def _inscribed_ball(
    distance_mm: FloatArray, seed: tuple[int, ...], spacing_mm: tuple[float, float, float]
) -> tuple[tuple[int, ...], float]:
    """Centre and radius (mm) of the lesion's core: the largest inscribed ball near ``seed``.

    ``distance_mm`` is the region's distance map; a voxel v is the centre of an inscribed
    ball of radius ``distance_mm[v]``. Starting from the seed, take the largest inscribed
    ball that covers the current point and move to its centre, until the ball stops
    growing. From a seed in a nodule's lobulation or rim this walks into the nodule's
    core, not along a vessel. Returns radius 0 when no ball covers the seed.
    """
    centre, radius_mm = seed, -1.0
    for _ in range(_MAX_BALL_STEPS):
        grids = np.ogrid[
            tuple(slice(-c, n - c) for c, n in zip(centre, distance_mm.shape, strict=True))
        ]
        to_centre2 = sum((g * s) ** 2 for g, s in zip(grids, spacing_mm, strict=True))
        reach = np.where(distance_mm**2 >= to_centre2, distance_mm, 0.0)
        best = tuple(int(v) for v in np.unravel_index(int(np.argmax(reach)), reach.shape))
        if float(reach[best]) <= radius_mm:
            break
        centre, radius_mm = best, float(reach[best])
    return centre, max(radius_mm, 0.0)


def _separate(
    region: BoolArray, seed: tuple[int, ...], spacing_mm: tuple[float, float, float]
) -> BoolArray:
    """Cut thin attachments (vessels, bridges) off the blob at ``seed`` by an adapted opening."""
    distance = _distance_mm(region, spacing_mm)
    centre, radius_mm = _inscribed_ball(distance, seed, spacing_mm)
    opening_mm = float(np.clip(OPENING_FRACTION * radius_mm, *OPENING_MM_RANGE))
    if radius_mm <= opening_mm:  # thinner than the opening everywhere: nothing to cut
        return region
    core = _component_at(distance > opening_mm, centre)
    return np.asarray(dilate_mm(core, opening_mm, spacing_mm) & region)


# --- the segmentation ---------------------------------------------------------------------


def _outside_air(slab_hu: npt.NDArray[Any], axis: int) -> BoolArray:
    """Air connected to the border of its own slice across ``axis`` (outside the body)."""
    air = slab_hu < AERATED_HU
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[tuple(slice(None) if a != axis else 1 for a in range(3))] = True
    labels, _ = ndi.label(air, structure=in_plane)
    border = [labels.take(end, axis=a).ravel() for a in range(3) if a != axis for end in (0, -1)]
    touching = np.unique(np.concatenate(border))
    return np.asarray(np.isin(labels, touching[touching > 0]))


def _check_mask(name: str, mask: npt.ArrayLike | None, shape: tuple[int, ...]) -> BoolArray | None:
    if mask is None:
        return None
    array = np.asarray(mask)
    if array.shape != shape:
        raise LesionError(
            f"{name} must be a boolean array of the CT's shape {shape}; got shape {array.shape}. "
            f"Pass the {name} mask computed on this CT's grid (or resample it there)."
        )
    return np.asarray(array != 0)


def segment_lesion(
    ct: Volume,
    seed_lps_mm: npt.ArrayLike,
    *,
    lungs: npt.NDArray[Any] | None = None,
    body: npt.NDArray[Any] | None = None,
    max_radius_mm: float = 40.0,
) -> Lesion:
    """Segment the lung nodule or soft-tissue lesion that contains a seed point.

    See the module docstring for the method.

    Parameters
    ----------
    ct : Volume
        CT in HU, any orientation with an axial axis (see :func:`axial_axis`).
    seed_lps_mm : array_like, shape (3,)
        A point inside the lesion, LPS mm (the centre works best; any point at least a
        couple of millimetres inside works).
    lungs : ndarray of bool, the CT's shape, optional
        Lung mask. When given it defines the aerated lung (else: HU below
        :data:`AERATED_HU` inside the body).
    body : ndarray of bool, the CT's shape, optional
        Body mask. When given the lesion stays inside it (else: air connected to the
        border of each axial slice is outside).
    max_radius_mm : float
        Half-size of the search box around the seed, mm. A lesion that reaches it has
        leaked into its surroundings (or is larger) and raises :class:`LesionError`.

    Returns
    -------
    Lesion
        The mask on the CT's grid and its measurements (:func:`lesion_measurements`).

    Raises
    ------
    LesionError
        If the seed is outside the image or the body, in air or aerated lung, or in bone;
        if the lesion has no contrast with its surroundings, cannot be separated from
        them within ``max_radius_mm``, or comes out empty; if a mask has the wrong shape
        or the grid is oblique.

    Notes
    -----
    Made for solid lesions. A lung nodule's outline follows the readers' convention of the
    outer partial-volume rim (:data:`LUNG_THRESHOLD_FRACTION`); ground-glass components
    fainter than about -580 HU are left out. A broad-based pleural mass loses a thin lens
    along the pleura (the closing does not quite reach a flat wall). Calcified lesions and
    seeds in dense bone are refused; cancellous bone (below :data:`BONE_HU`) is not
    recognised as bone. Without ``body``, lung that touches the image border (a phantom,
    a tight field of view) counts as outside air: pass ``body`` then.

    On LIDC-IDRI-0001 (512 × 512 × 133) a call takes about 0.5 s, most of it distance
    transforms of the ±40 mm box and labelling the outside air of its slices.
    """
    if not np.isfinite(max_radius_mm) or max_radius_mm <= 0:
        raise LesionError(f"max_radius_mm must be a positive number of mm; got {max_radius_mm!r}.")
    seed = np.asarray(seed_lps_mm, dtype=np.float64)
    if seed.shape != (3,) or not np.all(np.isfinite(seed)):
        raise LesionError(
            f"seed_lps_mm must be 3 finite LPS coordinates in mm; got {seed_lps_mm!r}."
        )
    seed_tuple = (float(seed[0]), float(seed[1]), float(seed[2]))
    shape = ct.shape
    axis = axial_axis(ct.affine)
    lungs_mask = _check_mask("lungs", lungs, shape)
    body_mask = _check_mask("body", body, shape)

    seed_index = np.rint(ct.lps_to_index(seed)).astype(int)
    if np.any(seed_index < 0) or np.any(seed_index >= np.array(shape)):
        lo, hi = ct.geometry.bounds_lps_mm()
        raise LesionError(
            f"seed_lps_mm {np.round(seed, 1).tolist()} lies outside the image (LPS extent "
            f"{np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm). Pick a point "
            "inside the lesion on this CT."
        )

    spacing = ct.spacing_mm
    half = np.ceil(max_radius_mm / np.asarray(spacing)).astype(int)
    lo = np.maximum(seed_index - half, 0)
    hi = np.minimum(seed_index + half + 1, shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    hu = np.asarray(ct.array[box], dtype=np.float32)
    if body_mask is not None:
        outside = ~body_mask[box]
    else:  # label whole slices: the body's outline only shows there
        slab = tuple(box[a] if a == axis else slice(None) for a in range(3))
        in_plane_box = tuple(slice(None) if a == axis else box[a] for a in range(3))
        outside = _outside_air(np.asarray(ct.array[slab]), axis)[in_plane_box]
    local_seed = _checked_seed(hu, outside, tuple(int(v) for v in seed_index - lo), spacing, seed)

    aerated = lungs_mask[box] if lungs_mask is not None else (hu < AERATED_HU) & ~outside
    region: BoolArray | None = None
    tissue = "lung"
    if aerated.any():
        grown = _grow_lung(hu, aerated, ~outside, local_seed, spacing, max_radius_mm)
        if grown is not None:
            region = _separate(grown, local_seed, spacing)
            if _border_fraction(region, aerated, spacing) < MIN_LUNG_BORDER_FRACTION:
                region = None  # soft tissue that happens to lie in a fold of the lung
    if region is None:
        tissue = "soft_tissue"
        grown = _grow_soft_tissue(hu, ~outside, local_seed, spacing, max_radius_mm)
        region = _separate(grown, local_seed, spacing)
    region = np.asarray(ndi.binary_fill_holes(region))
    if not region.any():
        raise LesionError(
            f"no lesion voxels were found at seed_lps_mm {np.round(seed, 1).tolist()} (HU "
            f"{float(hu[local_seed]):.0f}). Pick a point well inside the lesion."
        )
    _check_leak(region, lo, hi, shape, max_radius_mm, seed)

    full = np.zeros(shape, dtype=bool)
    full[box] = region
    mask = ct.with_array(full)
    metrics = lesion_measurements(mask)
    return Lesion(
        mask=mask,
        seed_lps_mm=seed_tuple,
        volume_ml=metrics["volume_ml"],
        centroid_lps_mm=tuple(metrics["centroid_lps_mm"]),
        recist_diameter_mm=metrics["recist_diameter_mm"],
        max_diameter_mm=metrics["max_diameter_mm"],
        tissue=tissue,
    )


def _checked_seed(
    hu: npt.NDArray[np.float32],
    outside: BoolArray,
    seed: tuple[int, ...],
    spacing_mm: tuple[float, float, float],
    seed_lps_mm: FloatArray,
) -> tuple[int, ...]:
    """The seed, moved to the nearest soft tissue if it sits on a lesion's edge; or raise."""
    where = f"seed_lps_mm {np.round(seed_lps_mm, 1).tolist()}"
    if outside[seed]:
        raise LesionError(
            f"{where} lies outside the body (HU {float(hu[seed]):.0f}). Pick a point inside "
            "the lesion."
        )
    near = _ball(hu.shape, seed, SEED_SEARCH_MM, spacing_mm) & (hu >= SOFT_TISSUE_HU)
    if not near.any():
        raise LesionError(
            f"the seed is in air or aerated lung (HU {float(hu[seed]):.0f}, no soft tissue "
            f"within {SEED_SEARCH_MM:g} mm of {where}); pick a point inside the lesion."
        )
    dense_hu = float(np.median(hu[near]))
    if dense_hu > BONE_HU:
        raise LesionError(
            f"the seed is in bone (median {dense_hu:.0f} HU > {BONE_HU:.0f} HU around {where}); "
            "pick a point inside the lesion (calcified lesions are not supported)."
        )
    if hu[seed] >= SOFT_TISSUE_HU:
        return seed
    candidates = np.argwhere(near)
    offsets_mm = (candidates - np.asarray(seed)) * np.asarray(spacing_mm)
    return tuple(int(v) for v in candidates[np.argmin((offsets_mm**2).sum(axis=1))])


def _nearest_component(
    mask: BoolArray, seed: tuple[int, ...], spacing_mm: tuple[float, float, float]
) -> BoolArray:
    """Component of ``mask`` at ``seed``, or at the nearest voxel within SEED_SEARCH_MM."""
    if not mask[seed]:
        near = np.argwhere(mask & _ball(mask.shape, seed, SEED_SEARCH_MM, spacing_mm))
        if len(near) == 0:
            return np.zeros_like(mask)
        offsets_mm = (near - np.asarray(seed)) * np.asarray(spacing_mm)
        seed = tuple(int(v) for v in near[np.argmin((offsets_mm**2).sum(axis=1))])
    return _component_at(mask, seed)


def _grow_lung(
    hu: npt.NDArray[np.float32],
    aerated: BoolArray,
    allowed: BoolArray,
    seed: tuple[int, ...],
    spacing_mm: tuple[float, float, float],
    max_radius_mm: float,
) -> BoolArray | None:
    """Nodule voxels: above the lung-to-lesion threshold, inside the lung envelope.

    Returns None when the seed is not inside the lung envelope (not a lung nodule).
    """
    envelope, closing_mm = None, 0.0
    for closing_mm in (0.5 * max_radius_mm, max_radius_mm):
        closed = close_mm(aerated, max(closing_mm, MIN_ENVELOPE_MM), spacing_mm) & allowed
        if closed[seed]:
            envelope = closed
            break
    if envelope is None:
        return None
    smooth = _smooth(hu, LUNG_SMOOTHING_MM, spacing_mm)
    # The nodule's core: the largest inscribed soft-tissue ball near the seed (which may sit
    # in the partial-volume rim or a lobulation).
    solid = _nearest_component((smooth >= SOFT_TISSUE_HU) & envelope, seed, spacing_mm)
    centre, core_mm = _inscribed_ball(_distance_mm(solid, spacing_mm), seed, spacing_mm)
    if core_mm == 0.0:
        centre, core_mm = seed, SEED_BALL_MM
    # A ball a little larger than the nodule fills it (and the pleural corner it sits in)
    # into the envelope; a larger one would also fill folds of the chest wall and mediastinum.
    tight_mm = max(ENVELOPE_FACTOR * core_mm, MIN_ENVELOPE_MM)
    if tight_mm < closing_mm:
        tight = close_mm(aerated, tight_mm, spacing_mm) & allowed
        if tight[seed] and tight[centre]:
            envelope = tight
    core = _ball(hu.shape, centre, max(core_mm, SEED_BALL_MM), spacing_mm) & (hu >= SOFT_TISSUE_HU)
    lesion_hu = float(np.median(hu[core])) if core.any() else float(hu[seed])
    lung_hu = float(np.median(hu[aerated]))
    threshold_hu = lung_hu + LUNG_THRESHOLD_FRACTION * (lesion_hu - lung_hu)
    logger.debug(
        "lung nodule: core radius %.1f mm, lesion %.0f HU, lung %.0f HU, threshold %.0f HU",
        core_mm,
        lesion_hu,
        lung_hu,
        threshold_hu,
    )
    return _nearest_component((smooth > threshold_hu) & envelope, seed, spacing_mm)


def _grow_soft_tissue(
    hu: npt.NDArray[np.float32],
    allowed: BoolArray,
    seed: tuple[int, ...],
    spacing_mm: tuple[float, float, float],
    max_radius_mm: float,
) -> BoolArray:
    """Lesion voxels: HU closer to the lesion's value than to its surroundings'.

    A tight grow around the seed's value gives a first region; the median of a shell a few
    mm beyond it is the surroundings' value, and the lesion is the band from halfway
    towards the surroundings to a full contrast away from them (which keeps fat or air out
    of a hypodense lesion, vessels and bone out of a hyperdense one). Twice, each time with
    the values re-estimated from the previous region.
    """
    smooth = _smooth(hu, SOFT_TISSUE_SMOOTHING_MM, spacing_mm)
    lesion_hu = float(np.median(smooth[_ball(smooth.shape, seed, SEED_BALL_MM, spacing_mm)]))
    neighbourhood = smooth[_ball(smooth.shape, seed, 2 * SEED_BALL_MM, spacing_mm)]
    spread_hu = 1.4826 * float(np.median(np.abs(neighbourhood - np.median(neighbourhood))))
    local = allowed & _ball(smooth.shape, seed, 0.5 * max_radius_mm, spacing_mm)
    tight = np.abs(smooth - lesion_hu) <= max(2.5 * spread_hu, 0.5 * MIN_CONTRAST_HU)
    region = _nearest_component(tight & local, seed, spacing_mm)
    # Beyond the blur of the smoothing and one voxel of partial volume: the shell then
    # samples the surroundings, not the lesion's ramp.
    gap_mm = 2.0 * SOFT_TISSUE_SMOOTHING_MM + max(spacing_mm)
    for _ in range(2):
        if not region.any():
            region = np.zeros_like(allowed)
            region[seed] = True
        distance_mm = _distance_mm(~region, spacing_mm)
        shell = (distance_mm >= gap_mm) & (distance_mm <= gap_mm + 4.0) & allowed
        background_hu = float(np.median(smooth[shell])) if shell.any() else lesion_hu
        contrast_hu = background_hu - lesion_hu
        logger.debug("soft tissue: lesion %.0f HU, surroundings %.0f HU", lesion_hu, background_hu)
        if abs(contrast_hu) < MIN_CONTRAST_HU:
            raise LesionError(
                f"the lesion ({lesion_hu:.0f} HU at the seed) has no contrast with its "
                f"surroundings ({background_hu:.0f} HU; less than {MIN_CONTRAST_HU:.0f} HU "
                "apart), so its edge cannot be found. Check that the seed is inside the "
                "lesion, or use a contrast-enhanced phase in which the lesion shows."
            )
        towards_hu = (smooth - lesion_hu) * np.sign(contrast_hu)
        band = (towards_hu < 0.5 * abs(contrast_hu)) & (towards_hu > -abs(contrast_hu))
        region = _nearest_component(band & allowed, seed, spacing_mm)
        if region.any():
            lesion_hu = float(np.median(smooth[region]))
    return region


def _border_fraction(
    region: BoolArray, aerated: BoolArray, spacing_mm: tuple[float, float, float]
) -> float:
    """Fraction of the 2 mm shell around ``region`` that is aerated lung (0 when empty)."""
    if not region.any():
        return 0.0
    shell = dilate_mm(region, 2.0, spacing_mm) & ~region
    fraction = float(np.count_nonzero(shell & aerated)) / max(1, int(np.count_nonzero(shell)))
    logger.debug("aerated fraction of the lesion's border: %.2f", fraction)
    return fraction


def _check_leak(
    region: BoolArray,
    lo: npt.NDArray[np.int_],
    hi: npt.NDArray[np.int_],
    shape: tuple[int, int, int],
    max_radius_mm: float,
    seed_lps_mm: FloatArray,
) -> None:
    """Raise when the region reaches a face of the search box (a leak, or a cut lesion)."""
    for axis in range(3):
        for face, at_image_edge in ((0, lo[axis] == 0), (-1, hi[axis] == shape[axis])):
            if not region.take(face, axis=axis).any():
                continue
            where = (
                "the edge of the image: the lesion is not fully scanned, or"
                if at_image_edge
                else f"max_radius_mm={max_radius_mm:g} from the seed: the lesion is larger, or"
            )
            raise LesionError(
                f"could not separate the lesion at seed_lps_mm "
                f"{np.round(seed_lps_mm, 1).tolist()} from its surroundings: the grown region "
                f"reaches {where} it leaked into adjacent tissue of similar density. Move the "
                "seed to the lesion's centre, pass lungs=/body= masks, or increase "
                "max_radius_mm for a larger lesion."
            )
