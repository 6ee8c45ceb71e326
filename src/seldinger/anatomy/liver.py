"""Liver: classical (no neural network) segmentation from a position prior and an intensity model.

The liver fills the right upper quadrant under the right hemidiaphragm. Its attenuation is
homogeneous but depends on the contrast phase (about 50-65 HU without contrast, 90-130 HU in
the portal venous phase), so the intensity model is estimated on each CT from the region
where the liver must be, then grown, cut from its neighbours by an opening and closed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy._morph import IN_PLANE_8, BoolArray, fill_holes_per_slice, largest_component
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.imaging import Volume

__all__ = ["LIVER_MIN_ML", "segment_liver"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
Spacing = tuple[float, float, float]

#: Smallest liver (mL) reported as present. A whole adult liver is 1-2 L; a CT that shows
#: less than this under the right lung base (a chest CT cut at the dome) gets ``None``.
LIVER_MIN_ML = 100.0

# Work grid: about this in-plane spacing (the slices are kept unless much finer).
_COARSE_MM = 2.0
# Lungs without a caller's mask: air inside the body below this ...
_AIR_HU = -400.0
# ... in components of at least this volume whose median is above this: lung parenchyma
# (-900 to -750 HU with its vessels) versus bowel gas (about -1000 HU), seen on both test CTs.
_LUNG_MIN_ML = 20.0
_LUNG_MEDIAN_MIN_HU = -940.0
# Bones without a caller's mask (cortical bone; contrast-filled vessels reach it too, but
# they are only used near the skin, where the ribs are).
_BONE_HU = 250.0
# Ribs are bone within this depth from the skin, mm.
_RIB_DEPTH_MM = 60.0
# The lung base: the lowest slice of the chest, where the right lung covers at least this
# fraction of its largest cross-section relative to the right half-body.
_CHEST_FRACTION_OF_MAX = 0.5
# The liver's top is at most this far above the right hemidiaphragm's apex, mm.
_DOME_MARGIN_MM = 10.0
# Craniocaudal extent of the prior region below the lung base, and of the search below it, mm.
_PRIOR_DEPTH_MM = 80.0
_SEARCH_DEPTH_MM = 300.0
# The prior region keeps this far from the skin and from the midline, mm.
_PRIOR_SKIN_MM = 20.0
_PRIOR_MIDLINE_MM = 30.0
# Liver voxels keep this far from the lungs, mm (the diaphragm is 3-5 mm thick).
_LUNG_MARGIN_MM = 2.0
# The liver keeps this far from the skin, mm (skin, fat and abdominal wall muscle).
_SKIN_MARGIN_MM = 6.0
# Near a rib, the liver lies deeper than the rib by at least this, mm.
_RIB_MARGIN_MM = 3.0
_RIB_REACH_MM = 25.0
# Gaussian smoothing of the work grid, mm.
_SMOOTH_MM = 1.5
# Soft tissue range searched for the liver's mode, HU.
_MODE_RANGE_HU = (0.0, 250.0)
# Acceptance band around the mode, in units of the estimated spread, and spread bounds, HU.
_BAND_LOW_SIGMA = 2.5
_BAND_HIGH_SIGMA = 2.5
_SIGMA_RANGE_HU = (8.0, 25.0)
# Opening that cuts bridges to neighbours, closing that restores the surface, mm.
_OPENING_MM = 6.0
_CLOSING_MM = 6.0
# In-plane-only distance: a k sampling this large keeps the nearest voxel in the same slice.
_FAR_MM = 1.0e4


@dataclass(frozen=True)
class _Grid:
    """Block-averaging factors from the CT grid to the work grid."""

    factors: tuple[int, int, int]
    spacing_mm: Spacing

    @classmethod
    def for_spacing(cls, spacing_mm: Spacing) -> _Grid:
        fi, fj, fk = (max(1, int(round(_COARSE_MM / s))) for s in spacing_mm)
        coarse = (spacing_mm[0] * fi, spacing_mm[1] * fj, spacing_mm[2] * fk)
        return cls((fi, fj, fk), coarse)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0


def _block_mean(array: npt.NDArray[np.generic], factors: tuple[int, int, int]) -> FloatArray:
    """Mean over blocks of ``factors`` voxels; the remainder at the end of each axis is dropped."""
    out: npt.NDArray[np.generic] = array
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        n = out.shape[axis] // f
        lead = (slice(None),) * axis
        parts = [out[lead + (slice(r, n * f, f),)] for r in range(f)]
        total = parts[0].astype(np.float32)
        for part in parts[1:]:
            total += part
        out = total / np.float32(f)
    return np.asarray(out, dtype=np.float32)


def _dilate_mm(mask: BoolArray, radius_mm: float, spacing_mm: Spacing) -> BoolArray:
    """Dilation by a ball of ``radius_mm`` (exact, through a Euclidean distance transform)."""
    if not mask.any():
        return mask.copy()
    return np.asarray(ndi.distance_transform_edt(~mask, sampling=spacing_mm) <= radius_mm)


def _erode_mm(mask: BoolArray, radius_mm: float, spacing_mm: Spacing) -> BoolArray:
    """Erosion by a ball of ``radius_mm`` (exact, through a Euclidean distance transform)."""
    return np.asarray(ndi.distance_transform_edt(mask, sampling=spacing_mm) > radius_mm)


def _crude_lungs(hu: FloatArray, body: BoolArray, voxel_ml: float) -> BoolArray:
    """Lung parenchyma without a lungs mask: large air components that are not bowel gas."""
    air = body & (hu < _AIR_HU)
    labels, n = ndi.label(air)
    if n == 0:
        return np.zeros_like(air)
    sizes = np.bincount(labels.ravel())
    keep = np.zeros(n + 1, dtype=bool)
    for label in np.flatnonzero(sizes * voxel_ml >= _LUNG_MIN_ML):
        if label > 0 and float(np.median(hu[labels == label])) > _LUNG_MEDIAN_MIN_HU:
            keep[label] = True
    return np.asarray(keep[labels])


@dataclass(frozen=True)
class _Landmarks:
    """Where the liver can be, on the work grid: midline, lung base, top of the search."""

    i_mid: int  # first i index on the patient's left of the midline
    k_base: int  # the lung base: lowest slice of the chest (number of slices if no chest)
    k_top: int  # nothing of the liver at or above this slice


def _landmarks(body: BoolArray, lungs: BoolArray, spacing_mm: Spacing) -> _Landmarks:
    ni, _, nk = body.shape
    counts = body.sum(axis=1)  # (i, k)
    area = counts.sum(axis=0)
    slices = area > 0
    if not slices.any():
        raise AnatomyError("the body mask is empty: segment the body of this CT first.")
    centroid_i = (counts[:, slices] * np.arange(ni)[:, None]).sum(axis=0) / area[slices]
    i_mid = int(round(float(np.median(centroid_i))))
    right_lung = lungs[:i_mid]
    fraction = right_lung.sum(axis=(0, 1)) / np.maximum(body[:i_mid].sum(axis=(0, 1)), 1)
    k_base = nk
    if fraction.max() > 0.05:
        chest = fraction >= _CHEST_FRACTION_OF_MAX * fraction.max()
        k_peak = int(fraction.argmax())
        k_base = k_peak
        while k_base > 0 and chest[k_base - 1]:
            k_base -= 1
    # The right hemidiaphragm: the lowest lung voxel of each column of the right lung that has
    # tissue below it in the CT; its apex (a high percentile, robust to the lung that rests on
    # the heart) limits the liver's top.
    has_lung = right_lung.any(axis=2)
    floor = np.argmax(right_lung, axis=2)
    real = has_lung & (floor > 0)
    k_top = nk
    if real.sum() * spacing_mm[0] * spacing_mm[1] > 1000.0:  # at least 10 cm² of diaphragm
        apex = float(np.percentile(floor[real], 90))
        k_top = min(nk, int(apex + _DOME_MARGIN_MM / spacing_mm[2]) + 1)
    return _Landmarks(i_mid, k_base, k_top)


def _in_plane_distance(mask: BoolArray, spacing_mm: Spacing) -> npt.NDArray[np.float64]:
    """Distance (mm) of each voxel of ``mask`` to the nearest voxel outside it in its slice."""
    sampling = (spacing_mm[0], spacing_mm[1], _FAR_MM)
    return np.asarray(ndi.distance_transform_edt(mask, sampling=sampling))


def _outside_ribs(body: BoolArray, bones: BoolArray, spacing_mm: Spacing) -> BoolArray:
    """Voxels of the body wall: near a rib and not deeper than it from the skin (in-plane)."""
    depth = _in_plane_distance(body, spacing_mm)
    ribs = bones & (depth < _RIB_DEPTH_MM)
    if not ribs.any():
        return np.zeros_like(body)
    sampling = (spacing_mm[0], spacing_mm[1], _FAR_MM)
    dist, index = ndi.distance_transform_edt(~ribs, sampling=sampling, return_indices=True)
    rib_depth = depth[index[0], index[1], index[2]]
    return np.asarray((dist < _RIB_REACH_MM) & (depth < rib_depth + _RIB_MARGIN_MM))


# The aorta, the inferior vena cava and the diaphragm's crura run in front of the spine: blobs
# of an axial slice smaller than this (mm²) centred in this box around the spine's front (mm:
# to the right, to the left, in front, behind) are cut from the liver's candidates.
_VESSEL_MAX_AREA_MM2 = 1500.0
_VESSEL_BOX_MM = (55.0, 45.0, 55.0, 10.0)
# Nothing of the liver lies within this half-width of the spine's centre and less than this in
# front of the vertebral body (aorta, crura, the back of the IVC), mm.
_SPINE_RIGHT_MM = 20.0
_SPINE_LEFT_MM = 35.0
_SPINE_FRONT_MM = 30.0
# The spine is searched this far from the body's midline, mm; its bone blobs are at least this
# large in a slice, mm².
_SPINE_SEARCH_MM = 45.0
_SPINE_MIN_AREA_MM2 = 100.0
_SPINE_MIN_HU = 90.0
_SPINE_ABOVE_SIGMA = 3.0
_SPINE_OPENING_MM = 3.0
_VERTEBRA_MM = 25.0


@dataclass(frozen=True)
class _Spine:
    """Per slice of the work grid: the spine's centre (i) and the front of its body (j)."""

    centre_i: npt.NDArray[np.float64]
    front_j: npt.NDArray[np.float64]

    @classmethod
    def locate(cls, dense: BoolArray, i_mid: int, spacing_mm: Spacing) -> _Spine | None:
        """The spine in ``dense`` (bone, cancellous included): per slice, of the blobs near the
        midline, the one that reaches furthest back (the spinous process), not the aorta."""
        ni, nj, nk = dense.shape
        sp = spacing_mm
        half = int(round(_SPINE_SEARCH_MM / sp[0]))
        i0 = max(i_mid - half, 0)
        strip = fill_holes_per_slice(dense[i0 : i_mid + half])
        # Detach what touches the vertebral body (the aorta, the crura) before labelling.
        in_plane = (sp[0], sp[1], _FAR_MM)
        strip = _dilate_mm(_erode_mm(strip, _SPINE_OPENING_MM, in_plane), _SPINE_OPENING_MM, in_plane)
        labels, n = ndi.label(strip, structure=IN_PLANE_8)
        if n == 0:
            return None
        flat = labels.ravel()
        ii, jj, kk = (g.ravel() for g in np.indices(strip.shape))
        count = np.bincount(flat, minlength=n + 1).astype(float)
        big = count * sp[0] * sp[1] >= _SPINE_MIN_AREA_MM2
        big[0] = False
        safe = np.maximum(count, 1.0)
        ci = np.bincount(flat, ii, minlength=n + 1) / safe + i0
        ck = np.round(np.bincount(flat, kk, minlength=n + 1) / safe).astype(int)
        front = np.full(n + 1, np.inf)
        np.minimum.at(front, flat, jj.astype(float))
        back = np.full(n + 1, -np.inf)
        np.maximum.at(back, flat, jj.astype(float))
        centre_i = np.full(nk, np.nan)
        front_j = np.full(nk, np.nan)
        best = np.full(nk, -np.inf)
        for label in np.flatnonzero(big):
            k = ck[label]
            if back[label] > best[k]:
                best[k] = back[label]
                centre_i[k] = ci[label]
                front_j[k] = front[label]
        has = ~np.isnan(front_j)
        if not has.any():
            return None
        ks = np.arange(nk)
        centre_i = np.interp(ks, ks[has], centre_i[has])
        front_j = np.interp(ks, ks[has], front_j[has])
        # Median over about a vertebra's height: a slice through a disc shows only the arch.
        size = 2 * int(round(_VERTEBRA_MM / sp[2] / 2)) + 1
        return cls(
            ndi.median_filter(centre_i, size=size, mode="nearest"),
            ndi.median_filter(front_j, size=size, mode="nearest"),
        )

    def prevertebral(self, shape: tuple[int, ...], spacing_mm: Spacing) -> BoolArray:
        """The box in front of and behind the vertebral body where the liver never lies."""
        i = np.arange(shape[0])[:, None, None]
        j = np.arange(shape[1])[None, :, None]
        di_mm = (i - self.centre_i[None, None, :]) * spacing_mm[0]
        dj_mm = (j - self.front_j[None, None, :]) * spacing_mm[1]
        return np.asarray(
            (di_mm > -_SPINE_RIGHT_MM) & (di_mm < _SPINE_LEFT_MM) & (dj_mm > -_SPINE_FRONT_MM)
        )

    def great_vessels(self, mask: BoolArray, spacing_mm: Spacing) -> BoolArray:
        """Small blobs of ``mask`` in each slice in front of the spine (aorta, IVC, crura)."""
        sp = spacing_mm
        labels, n = ndi.label(mask, structure=IN_PLANE_8)
        if n == 0:
            return np.zeros_like(mask)
        flat = labels.ravel()
        ii, jj, kk = (g.ravel() for g in np.indices(mask.shape))
        count = np.bincount(flat, minlength=n + 1).astype(float)
        safe = np.maximum(count, 1.0)
        ci = np.bincount(flat, ii, minlength=n + 1) / safe
        cj = np.bincount(flat, jj, minlength=n + 1) / safe
        ck = np.clip(np.round(np.bincount(flat, kk, minlength=n + 1) / safe).astype(int), 0, None)
        ck = np.minimum(ck, mask.shape[2] - 1)
        right_mm, left_mm, front_mm, back_mm = _VESSEL_BOX_MM
        di_mm = (ci - self.centre_i[ck]) * sp[0]
        dj_mm = (cj - self.front_j[ck]) * sp[1]
        vessel = (
            (count * sp[0] * sp[1] < _VESSEL_MAX_AREA_MM2)
            & (di_mm > -right_mm)
            & (di_mm < left_mm)
            & (dj_mm > -front_mm)
            & (dj_mm < back_mm)
        )
        vessel[0] = False
        return np.asarray(vessel[labels])


@dataclass(frozen=True)
class _IntensityModel:
    """The liver's attenuation on the smoothed work grid: mode and spread, HU."""

    mode_hu: float
    sigma_hu: float

    @classmethod
    def from_values(cls, values_hu: FloatArray) -> _IntensityModel:
        """Dominant peak of the soft-tissue histogram and its half width at half maximum."""
        lo, hi = _MODE_RANGE_HU
        bin_hu = 2.0
        edges = np.arange(lo, hi + bin_hu, bin_hu)
        hist, _ = np.histogram(values_hu, bins=edges)
        smooth = ndi.gaussian_filter1d(hist.astype(float), 2.0)
        peak = int(smooth.argmax())
        above = smooth >= smooth[peak] / 2
        left = peak
        while left > 0 and above[left - 1]:
            left -= 1
        right = peak
        while right < above.size - 1 and above[right + 1]:
            right += 1
        fwhm_hu = (right - left + 1) * bin_hu
        sigma = float(np.clip(fwhm_hu / 2.355, *_SIGMA_RANGE_HU))
        return cls(float(edges[peak] + bin_hu / 2), sigma)

    def band(
        self, smooth_hu: FloatArray, low_sigma: float = 2.5, high_sigma: float = 2.5
    ) -> BoolArray:
        lo = self.mode_hu - low_sigma * self.sigma_hu
        hi = self.mode_hu + high_sigma * self.sigma_hu
        return np.asarray((smooth_hu >= lo) & (smooth_hu <= hi))


def _segment_coarse(
    hu: FloatArray,
    body: BoolArray,
    lungs: BoolArray,
    bones: BoolArray,
    marks: _Landmarks,
    spacing_mm: Spacing,
) -> tuple[BoolArray, _IntensityModel, BoolArray] | None:
    """The liver on the work grid (cropped to the search range), or None if it is absent."""
    sp = spacing_mm
    voxel_ml = float(np.prod(sp)) / 1000.0
    smooth = ndi.gaussian_filter(hu, sigma=[_SMOOTH_MM / s for s in sp])
    above_lung = np.logical_or.accumulate(lungs, axis=2)
    walls = bones | _outside_ribs(body, bones, sp)
    walls[:, :, marks.k_top :] = True
    excluded = above_lung | _dilate_mm(lungs, _LUNG_MARGIN_MM, sp) | walls
    inner = _erode_mm(body, _SKIN_MARGIN_MM, sp)

    prior = _erode_mm(body, _PRIOR_SKIN_MM, sp) & ~excluded
    prior[max(marks.i_mid - int(round(_PRIOR_MIDLINE_MM / sp[0])), 0) :] = False
    prior[:, :, marks.k_base :] = False
    prior[:, :, : max(marks.k_base - int(round(_PRIOR_DEPTH_MM / sp[2])), 0)] = False
    values = smooth[prior]
    values = values[(values >= _MODE_RANGE_HU[0]) & (values <= _MODE_RANGE_HU[1])]
    if values.size * voxel_ml < LIVER_MIN_ML:
        logger.info(
            "no liver: %.0f mL of soft tissue below the right lung base (< %.0f mL)",
            values.size * voxel_ml,
            LIVER_MIN_ML,
        )
        return None
    model = _IntensityModel.from_values(values)
    logger.debug("liver intensity mode %.1f HU, sigma %.1f HU", model.mode_hu, model.sigma_hu)

    # The vertebral bodies are denser than the liver (cancellous bone >= 100 HU) in most CTs.
    spine_hu = max(_SPINE_MIN_HU, model.mode_hu + _SPINE_ABOVE_SIGMA * model.sigma_hu)
    spine = _Spine.locate(bones | (smooth > spine_hu), marks.i_mid, sp)
    if spine is not None:
        walls |= spine.prevertebral(body.shape, sp)
        excluded |= walls
    candidate = model.band(smooth, _BAND_LOW_SIGMA, _BAND_HIGH_SIGMA) & inner & ~excluded
    opened = _dilate_mm(_erode_mm(candidate, _OPENING_MM, sp), _OPENING_MM, sp)
    if spine is not None:
        opened &= ~spine.great_vessels(opened, sp)
    depth = np.asarray(ndi.distance_transform_edt(opened & prior, sampling=sp))
    if depth.max() <= 0:
        return None
    seed = np.unravel_index(int(depth.argmax()), depth.shape)
    labels, _ = ndi.label(opened)
    core = labels == labels[seed]
    grown = candidate & _dilate_mm(core, _OPENING_MM, sp)
    closed = _erode_mm(_dilate_mm(grown, _CLOSING_MM, sp), _CLOSING_MM, sp) | grown
    liver = fill_holes_per_slice(np.asarray(ndi.binary_fill_holes(closed)))
    liver &= body & ~excluded
    if _TIPS:
        liver |= _thin_parts(candidate, liver, sp)
    _DEBUG.update(locals())  # TEMP
    return liver, model, (walls if _REFINE_WALLS_ONLY else excluded)


# Thin parts (the tip of the left lobe) that the opening cut off come back when a finer opening
# joins them to the liver and they are small, mL.
_TIP_OPENING_MM = 4.0
_TIP_MAX_ML = 40.0
_TIPS = True


def _thin_parts(candidate: BoolArray, liver: BoolArray, spacing_mm: Spacing) -> BoolArray:
    """Small pieces of the finely opened candidates that touch the liver."""
    sp = spacing_mm
    fine = _dilate_mm(_erode_mm(candidate, _TIP_OPENING_MM, sp), _TIP_OPENING_MM, sp) & ~liver
    labels, n = ndi.label(fine)
    if n == 0:
        return np.zeros_like(liver)
    sizes = np.bincount(labels.ravel()) * (float(np.prod(sp)) / 1000.0)
    touching = np.zeros(n + 1, dtype=bool)
    touching[np.unique(labels[ndi.binary_dilation(liver) & fine])] = True
    keep = touching & (sizes <= _TIP_MAX_ML)
    keep[0] = False
    return np.asarray(keep[labels])


def segment_liver(
    ct: Volume,
    body: BoolArray,
    *,
    lungs: BoolArray | None = None,
    bones: BoolArray | None = None,
) -> BoolArray | None:
    require_canonical(ct)
    for name, mask in (("body", body), ("lungs", lungs), ("bones", bones)):
        if mask is not None and np.shape(mask) != ct.shape:
            raise AnatomyError(
                f"{name} mask has shape {np.shape(mask)}, the CT {ct.shape}: pass the mask "
                "segmented from this CT."
            )
    grid = _Grid.for_spacing(ct.spacing_mm)
    sp = grid.spacing_mm
    hu = _block_mean(ct.array, grid.factors)
    body_c = _block_mean(body, grid.factors) >= 0.5
    if lungs is not None:
        lungs_c = _block_mean(lungs, grid.factors) >= 0.5
    else:
        lungs_c = _crude_lungs(hu, body_c, grid.voxel_ml)
    if bones is not None:
        bones_c = _block_mean(bones, grid.factors) > 0.0
    else:
        bones_c = hu > _BONE_HU
    marks = _landmarks(body_c, lungs_c, sp)
    logger.debug("landmarks %s", marks)
    k_lo = max(0, min(marks.k_base, marks.k_top) - int(round(_SEARCH_DEPTH_MM / sp[2])))
    box = (*(slice(s.start, s.stop) for s in _bbox2d(body_c)), slice(k_lo, marks.k_top))
    local = _Landmarks(marks.i_mid - box[0].start, marks.k_base - k_lo, marks.k_top - k_lo)
    result = _segment_coarse(hu[box], body_c[box], lungs_c[box], bones_c[box], local, sp)
    if result is None:
        return None
    liver_c, model, excluded_c = result
    volume_ml = float(liver_c.sum()) * grid.voxel_ml
    if volume_ml < LIVER_MIN_ML:
        logger.info("no liver: %.0f mL found (< %.0f mL)", volume_ml, LIVER_MIN_ML)
        return None
    f = grid.factors
    lo = [box[a].start * f[a] for a in range(3)]
    hi = [min(box[a].stop * f[a], ct.shape[a]) for a in range(3)]
    full_box = tuple(slice(lo[a], hi[a]) for a in range(3))
    liver = _refine_full(
        liver_c,
        excluded_c,
        np.asarray(ct.array[full_box]),
        np.asarray(body[full_box]),
        grid,
        model,
    )
    full = np.zeros(ct.shape, dtype=bool)
    full[full_box] = liver
    return full


def _bbox2d(mask: BoolArray) -> tuple[slice, slice]:
    i = np.flatnonzero(mask.any(axis=(1, 2)))
    j = np.flatnonzero(mask.any(axis=(0, 2)))
    return slice(int(i[0]), int(i[-1]) + 1), slice(int(j[0]), int(j[-1]) + 1)


def _upsample_linear(
    coarse: FloatArray, factors: tuple[int, int, int], shape: tuple[int, ...]
) -> FloatArray:
    """Trilinear interpolation of a block-averaged grid back to the voxels (clamped at edges)."""
    out = coarse
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        n = out.shape[axis]
        u = (np.arange(shape[axis], dtype=np.float32) - (f - 1) / 2.0) / f
        u = np.clip(u, 0.0, n - 1)
        i0 = np.floor(u).astype(np.intp)
        i1 = np.minimum(i0 + 1, n - 1)
        w = (u - i0).astype(np.float32)
        wshape = [1, 1, 1]
        wshape[axis] = -1
        w = w.reshape(wshape)
        out = np.take(out, i0, axis=axis) * (1 - w) + np.take(out, i1, axis=axis) * w
    return np.asarray(out, dtype=np.float32)


# Full-resolution refinement: the coarse surface is trusted this far inside, and may move this
# far outside where the voxels are in the liver's band, mm.
_REFINE_INNER_MM = 2.0
_REFINE_OUTER_MM = 3.0
_REFINE_SMOOTH_MM = 0.7
_REFINE_LOW_SIGMA = 2.5
_REFINE_HIGH_SIGMA = 2.5
_REFINE_EDGE_FRACTION: float | None = 0.4
_FAT_HU = -100.0
_REFINE_WALLS_ONLY = False


def _refine_full(
    liver_c: BoolArray,
    excluded_c: BoolArray,
    ct_hu: npt.NDArray[np.generic],
    body: BoolArray,
    grid: _Grid,
    model: _IntensityModel,
) -> BoolArray:
    """Map the coarse liver to the CT's voxels, moving its surface to the intensity band."""
    sp = grid.spacing_mm
    signed = ndi.distance_transform_edt(~liver_c, sampling=sp) - ndi.distance_transform_edt(
        liver_c, sampling=sp
    )
    signed_full = _upsample_linear(signed.astype(np.float32), grid.factors, ct_hu.shape)
    full_sp = tuple(s / f for s, f in zip(sp, grid.factors, strict=True))
    smooth = ndi.gaussian_filter(
        ct_hu.astype(np.float32), sigma=[_REFINE_SMOOTH_MM / s for s in full_sp]
    )
    interior = signed_full <= -_REFINE_INNER_MM
    shell = (signed_full > -_REFINE_INNER_MM) & (signed_full <= _REFINE_OUTER_MM)
    fine = _IntensityModel.from_values(smooth[interior])
    _DEBUG.update(fine=fine)
    excluded = _upsample_linear(excluded_c.astype(np.float32), grid.factors, ct_hu.shape) > 0.5
    low_sigma = _REFINE_LOW_SIGMA
    if _REFINE_EDGE_FRACTION is not None:
        low_sigma = _REFINE_EDGE_FRACTION * (fine.mode_hu - _FAT_HU) / fine.sigma_hu
    in_band = fine.band(smooth, low_sigma, _REFINE_HIGH_SIGMA)
    liver = interior | (shell & in_band & body & ~excluded)
    liver = largest_component(liver)
    return fill_holes_per_slice(liver)


_DEBUG: dict = {}  # TEMP
