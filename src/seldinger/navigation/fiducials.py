"""CT-visible spherical skin markers: find them in a CT, and put synthetic ones into a CT.

Small dense spheres (typically 2–5 mm, 1 000–3 000 HU) stuck on the skin before the
planning CT are the fiducials of paired-point image-to-tracker registration (the
vPad-like patient tracker of Veran SPiN, ``docs/navigation_guidance.md``). Detection
(:func:`detect_skin_markers`):

1. **Bright components.** Voxels at or above ``min_hu`` (default
   :data:`MARKER_MIN_HU` = 600 HU) are labelled (26-connected). 600 HU lies above soft
   tissue, fat, blood and contrast-enhanced vessels (≤ about 500 HU), and well below the
   lowest peak a 4 mm, 1 500 HU marker can show on 2.5 mm slices: centred on a slice
   boundary, in air, its brightest voxels hold 80 % marker, 0.8·1500 + 0.2·(−1000) =
   1 000 HU. Bone cortex is as bright as a marker, so HU alone cannot tell them apart:
   the next rules do.
2. **Size gate.** Components whose thresholded volume is far from the sphere's
   (:data:`_COARSE_VOLUME_RANGE` × 4/3 π r³) are dropped: noise specks below, bones,
   hardware and cables above. They are counted, not listed.
3. **At the skin.** The signed distance of the component from the body surface (positive
   outside) must lie within ``r + surface_tolerance_mm`` on either side: a marker rests
   on the skin (centre ≈ r outside the body mask of a marker-free segmentation) or sits
   in a body mask that includes it (centre ≈ r inside). Ribs, sternum and calcifications
   lie deeper; the lungs do not count as outside (the body mask is filled slice by
   slice). Without a ``body`` mask the body is every voxel above
   :data:`BODY_MIN_HU` with the holes of each axial slice filled and pieces under
   10 cm² (a marker off the skin, cables) left out.
4. **Background.** The shell 3 mm thick beyond ``r + 1 mm`` around the marker is fitted
   (robust least squares) by a two-phase model: air on one side of a plane, skin on the
   other, a logistic edge, every voxel averaged over its box (the thick slab axis sampled
   seven times). That is the partial-volume mix of air and skin a 2.5 mm slab shows under
   an oblique skin. A nearly uniform shell (5th–95th percentile span < 200 HU) is one
   tissue, its median. The model gives every voxel under the marker the value ``b`` it
   would have without the marker.
5. **Sub-voxel centre.** Partial-volume weights ``f = clip((HU − b)/(m − b), 0, 1)``, the
   fraction of each voxel filled by the marker, are summed in a sphere of radius
   ``r + 1 mm`` about the current centre, with ``m = max(marker_hu, peak HU)``. Their
   centroid over the voxel centres, iterated three times, is the centre. With exact
   fractions it is unbiased up to the midpoint rule (≤ 0.06 mm for a 4 mm sphere on
   2.5 mm slices), and a symmetric scanner blur does not move it. A simpler background,
   the nearest voxel outside the marker, reads air where a slab under a resting marker
   holds skin: on oblique-skin phantoms that biased the centre by up to 0.45 mm (0.9 mm
   half-embedded); the fitted model keeps it under 0.07 mm.
6. **Shape, then volume.** The moment sphericity is ``√(λ_min/λ_max)`` of the weights'
   covariance after removing each voxel axis's box variance ``s²/12`` (1 for a sphere,
   0.8–0.95 for a 4 mm sphere on 2.5 mm slices, ≈ 0.3 for a rod or rib fragment).
   ``Σ f`` × voxel volume is the marker's volume; it must lie within
   ``volume_tolerance`` of 4/3 π r³.

A CT without markers gives an empty :class:`MarkerDetection` (``markers == ()``), not an
error: "no marker here" is a valid answer, and the registration step that needs three
or more points says so itself. Every candidate that passed the size gate and was refused is in
``rejected`` with its reason.

References
----------
.. [1] Wang MY, Maurer CR, Fitzpatrick JM, Maciunas RJ. An automatic technique for
   finding and localizing externally attached markers in CT and MR volume images of the
   head. IEEE Trans Biomed Eng 1996;43(6):627–637 (intensity-weighted centroids of
   fiducial markers after background subtraction).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError
from seldinger.imaging import Volume, require_same_geometry
from seldinger.navigation.marker_fit import MIN_CONTRAST_HU, localise

__all__ = [
    "BODY_MIN_HU",
    "MARKER_DIAMETER_MM",
    "MARKER_HU",
    "MARKER_MIN_HU",
    "MarkerDetection",
    "MarkerQuality",
    "RejectReason",
    "RejectedCandidate",
    "SkinMarker",
    "detect_skin_markers",
    "insert_spherical_markers",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Nominal diameter of the skin markers, mm (multi-modality fiducials are 1.5–5 mm).
MARKER_DIAMETER_MM = 4.0
#: Nominal CT number of the marker material, HU (ceramic / doped-polymer beads).
MARKER_HU = 1500.0
#: Voxels at or above this seed marker components; see the module docstring, step 1.
MARKER_MIN_HU = 600.0
#: Without a body mask, voxels above this are body (air −1000, lung −850…−500, fat −100).
BODY_MIN_HU = -500.0
#: Without a body mask, pieces of an axial slice smaller than this (mm²) are not body.
_MIN_BODY_AREA_MM2 = 1000.0
#: A candidate's thresholded volume must lie in this range of the sphere's volume.
_COARSE_VOLUME_RANGE = (0.25, 4.0)
#: "good" markers are within these of the nominal volume ratio and sphericity.
_GOOD_VOLUME_TOLERANCE = 0.25
_GOOD_SPHERICITY = 0.8
_GOOD_BACKGROUND_RMS_HU = 100.0


class MarkerQuality(StrEnum):
    """How well a detected marker matches the nominal sphere."""

    GOOD = "good"  # volume within 25 % of nominal, sphericity ≥ 0.8, background fits
    DOUBTFUL = "doubtful"  # accepted, but check it (partly hidden, merged, odd size)


class RejectReason(StrEnum):
    """Why a bright component of about a marker's size was not taken."""

    INSIDE_BODY = "inside_body"  # deeper under the skin than a resting marker can be
    OFF_BODY = "off_body"  # farther from the body than a resting marker can be
    VOLUME = "volume"  # partial-volume volume outside the tolerance
    SHAPE = "shape"  # not round enough (rib fragment, cable, clip)
    EDGE = "edge"  # cut by the edge of the scanned volume


@dataclass(frozen=True)
class SkinMarker:
    """One marker found in a CT.

    Attributes
    ----------
    centre_lps_mm : tuple of float
        Sub-voxel centre (LPS, mm).
    diameter_mm : float
        Diameter of the sphere with the measured volume.
    volume_mm3 : float
        Marker volume from the partial-volume weights, mm³.
    sphericity : float
        Moment sphericity ``√(λ_min/λ_max)`` (1 for a sphere; module docstring, step 5).
    peak_hu : float
        Brightest voxel of the marker.
    background_rms_hu : float
        RMS misfit of the background model around the marker (air | skin plane, or one
        tissue); about the image noise when the model holds, large when the marker sits
        in a fold, on a cable or next to another marker.
    surface_distance_mm : float
        Signed distance of the centre from the body surface (positive outside the body
        mask), to the nearest voxel centre.
    quality : MarkerQuality
        ``good`` or ``doubtful``.
    """

    centre_lps_mm: tuple[float, float, float]
    diameter_mm: float
    volume_mm3: float
    sphericity: float
    peak_hu: float
    background_rms_hu: float
    surface_distance_mm: float
    quality: MarkerQuality

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (mm, mm³, HU)."""
        return {
            "centre_lps_mm": [round(v, 3) for v in self.centre_lps_mm],
            "diameter_mm": round(self.diameter_mm, 3),
            "volume_mm3": round(self.volume_mm3, 2),
            "sphericity": round(self.sphericity, 3),
            "peak_hu": round(self.peak_hu, 1),
            "background_rms_hu": round(self.background_rms_hu, 1),
            "surface_distance_mm": round(self.surface_distance_mm, 2),
            "quality": self.quality.value,
        }


@dataclass(frozen=True)
class RejectedCandidate:
    """A bright component of about a marker's size that was not taken, and why."""

    centre_lps_mm: tuple[float, float, float]
    reason: RejectReason
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "centre_lps_mm": [round(v, 2) for v in self.centre_lps_mm],
            "reason": self.reason.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class MarkerDetection:
    """Skin markers found in a CT, those refused, and the settings used.

    ``markers`` are sorted by their centre's S, then P, then L coordinate (ascending,
    rounded to 0.01 mm), so two runs on the same CT list them in the same order.
    """

    markers: tuple[SkinMarker, ...]
    rejected: tuple[RejectedCandidate, ...]
    diameter_mm: float
    min_hu: float
    marker_hu: float
    dropped_small: int = 0  # bright components far smaller than a marker (noise)
    dropped_large: int = 0  # far larger (bone, hardware, cables)
    notes: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        """Number of markers found."""
        return len(self.markers)

    @property
    def centres_lps_mm(self) -> FloatArray:
        """Marker centres, shape (n, 3), LPS mm (n may be 0)."""
        return np.array([m.centre_lps_mm for m in self.markers], dtype=np.float64).reshape(-1, 3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; candidates refused as inside the body are only counted."""
        deep = [r for r in self.rejected if r.reason is RejectReason.INSIDE_BODY]
        return {
            "markers": [m.to_dict() for m in self.markers],
            "rejected": [
                r.to_dict() for r in self.rejected if r.reason is not RejectReason.INSIDE_BODY
            ],
            "rejected_inside_body": len(deep),
            "dropped_small": self.dropped_small,
            "dropped_large": self.dropped_large,
            "diameter_mm": self.diameter_mm,
            "min_hu": self.min_hu,
            "marker_hu": self.marker_hu,
            "notes": list(self.notes),
        }


def detect_skin_markers(
    ct: Volume,
    body: Volume | None = None,
    diameter_mm: float = MARKER_DIAMETER_MM,
    min_hu: float = MARKER_MIN_HU,
    marker_hu: float = MARKER_HU,
    *,
    surface_tolerance_mm: float = 3.0,
    volume_tolerance: float = 0.5,
    min_sphericity: float = 0.6,
) -> MarkerDetection:
    """Find CT-visible spherical skin markers and their sub-voxel centres.

    Parameters
    ----------
    ct : Volume
        CT in HU, any axis order (the axial slices are found from the affine).
    body : Volume, optional
        Bool body mask on the CT's grid, lungs included (``segment(ct)["body"]``). With or
        without the markers in it. Default: every voxel above :data:`BODY_MIN_HU`, holes
        of each axial slice filled, pieces under 10 cm² left out (the table and thick
        clothing may then count as body).
    diameter_mm : float
        Nominal marker diameter, mm.
    min_hu : float
        Voxels at or above this seed the candidates; must be below the marker's
        partial-volume peak (module docstring, step 1) and above soft tissue.
    marker_hu : float
        Nominal CT number of the marker material; a brighter marker's own peak is used
        instead. A value below the real one saturates the weights of the core, and the
        volume comes out small.
    surface_tolerance_mm : float
        A marker's centre lies within ``diameter_mm / 2 + surface_tolerance_mm`` of the
        body surface, on either side.
    volume_tolerance : float
        Accepted relative deviation of the measured volume from 4/3 π r³ (0.5: from 50 %
        to 150 %).
    min_sphericity : float
        Lowest accepted moment sphericity (0–1).

    Returns
    -------
    MarkerDetection
        Markers sorted by their S, then P, then L coordinate (ascending); empty when the
        CT shows none.

    Raises
    ------
    ValueError
        If a parameter is out of range, or ``body`` is not on the CT's grid.

    Notes
    -----
    About 1–2 s on a 512 × 512 × 133 CT: labelling the bright voxels and filling the
    axial body slices dominate; each candidate at the skin adds ~40 ms (background fit).
    """
    _check_positive(diameter_mm, "diameter_mm", "the marker diameter in mm, e.g. 4.0")
    _check_positive(surface_tolerance_mm, "surface_tolerance_mm", "e.g. 3.0 mm")
    if not 0.0 < volume_tolerance < 1.0:
        raise BadInputError(
            f"volume_tolerance must lie in (0, 1) (relative deviation from the sphere's "
            f"volume); got {volume_tolerance!r}. Use e.g. 0.5 for 50–150 %."
        )
    if not 0.0 <= min_sphericity <= 1.0:
        raise BadInputError(f"min_sphericity must lie in [0, 1]; got {min_sphericity!r}.")
    if marker_hu - min_hu < MIN_CONTRAST_HU:
        raise BadInputError(
            f"marker_hu ({marker_hu}) must exceed min_hu ({min_hu}) by at least "
            f"{MIN_CONTRAST_HU:.0f} HU; lower min_hu or give the marker's real CT number."
        )
    if body is not None:
        require_same_geometry(ct, body)
    hu = np.asarray(ct.array)
    spacing = np.asarray(ct.spacing_mm, dtype=np.float64)
    voxel_mm3 = float(np.prod(spacing))
    radius_mm = diameter_mm / 2.0
    sphere_mm3 = 4.0 / 3.0 * math.pi * radius_mm**3
    axial = _axial_axis(ct)

    bright = hu >= min_hu
    labels, boxes = _label_26(bright)
    counts = np.bincount(labels[bright], minlength=len(boxes) + 1)
    counts[0] = 0
    volumes_mm3 = counts * voxel_mm3
    lo, hi = (f * sphere_mm3 for f in _COARSE_VOLUME_RANGE)
    nonzero = counts > 0
    small = int(np.count_nonzero(nonzero & (volumes_mm3 < lo)))
    large = int(np.count_nonzero(nonzero & (volumes_mm3 > hi)))
    keep = np.flatnonzero(nonzero & (volumes_mm3 >= lo) & (volumes_mm3 <= hi))

    inside = _BodyLookup(hu, body, axial, spacing)
    markers: list[SkinMarker] = []
    rejected: list[RejectedCandidate] = []
    reach_mm = radius_mm + surface_tolerance_mm
    for label in keep:
        box = boxes[label - 1]
        if box is None:  # pragma: no cover - find_objects lists every counted label
            continue
        local = labels[box] == label
        ijk = np.argwhere(local) + np.array([s.start for s in box])
        w = hu[tuple(ijk.T)].astype(np.float64) - min_hu + 1.0
        start_ijk = (ijk * w[:, None]).sum(axis=0) / w.sum()
        start_lps = _lps_tuple(ct, start_ijk)

        signed_mm = inside.signed_distance_mm(start_ijk, spacing, reach_mm + 2.0)
        if signed_mm < -reach_mm:
            rejected.append(
                RejectedCandidate(
                    start_lps,
                    RejectReason.INSIDE_BODY,
                    f"{-signed_mm:.1f} mm inside the body (limit {reach_mm:.1f} mm)",
                )
            )
            continue
        if signed_mm > reach_mm:
            rejected.append(
                RejectedCandidate(
                    start_lps,
                    RejectReason.OFF_BODY,
                    f"{signed_mm:.1f} mm outside the body (limit {reach_mm:.1f} mm)",
                )
            )
            continue
        fit = localise(hu, spacing, start_ijk, radius_mm, marker_hu)
        if fit is None:
            rejected.append(
                RejectedCandidate(start_lps, RejectReason.EDGE, "cut by the edge of the scan")
            )
            continue
        sphericity = fit.sphericity
        centre_lps = _lps_tuple(ct, fit.centre_ijk)
        volume_mm3 = fit.weight_sum * voxel_mm3
        ratio = volume_mm3 / sphere_mm3
        if sphericity < min_sphericity:
            rejected.append(
                RejectedCandidate(
                    centre_lps,
                    RejectReason.SHAPE,
                    f"sphericity {sphericity:.2f} < {min_sphericity:.2f}",
                )
            )
            continue
        if abs(ratio - 1.0) > volume_tolerance:
            rejected.append(
                RejectedCandidate(
                    centre_lps,
                    RejectReason.VOLUME,
                    f"volume {volume_mm3:.1f} mm³ is {ratio:.0%} of the {sphere_mm3:.1f} mm³ "
                    f"sphere (accepted {1 - volume_tolerance:.0%}–{1 + volume_tolerance:.0%})",
                )
            )
            continue
        good = (
            abs(ratio - 1.0) <= _GOOD_VOLUME_TOLERANCE
            and sphericity >= _GOOD_SPHERICITY
            and fit.background_rms_hu <= _GOOD_BACKGROUND_RMS_HU
        )
        markers.append(
            SkinMarker(
                centre_lps_mm=centre_lps,
                diameter_mm=float((6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0)),
                volume_mm3=volume_mm3,
                sphericity=sphericity,
                peak_hu=fit.peak_hu,
                background_rms_hu=fit.background_rms_hu,
                surface_distance_mm=inside.signed_distance_mm(
                    fit.centre_ijk, spacing, reach_mm + 2.0
                ),
                quality=MarkerQuality.GOOD if good else MarkerQuality.DOUBTFUL,
            )
        )
    markers.sort(key=lambda m: tuple(round(c, 2) for c in m.centre_lps_mm[::-1]))
    notes: list[str] = []
    if not markers:
        notes.append(
            f"no skin marker found (bright components ≥ {min_hu:.0f} HU of about "
            f"{sphere_mm3:.0f} mm³ at the skin): check diameter_mm and min_hu, and that "
            "the markers were on the patient during this CT."
        )
    logger.debug(
        "skin markers: %d found, %d refused, %d small and %d large components dropped",
        len(markers),
        len(rejected),
        small,
        large,
    )
    return MarkerDetection(
        markers=tuple(markers),
        rejected=tuple(rejected),
        diameter_mm=float(diameter_mm),
        min_hu=float(min_hu),
        marker_hu=float(marker_hu),
        dropped_small=small,
        dropped_large=large,
        notes=tuple(notes),
    )


def insert_spherical_markers(
    ct: Volume,
    centres_lps_mm: npt.ArrayLike,
    diameter_mm: float = MARKER_DIAMETER_MM,
    hu: float = MARKER_HU,
    supersample: int = 5,
) -> Volume:
    """Copy of a CT with dense spheres blended in, partial-volume correct (phantoms, demos).

    Each voxel gets ``HU = f·hu + (1 − f)·HU_original``, ``f`` the fraction of the voxel's
    box inside the sphere, estimated on ``supersample³`` evenly spaced sub-voxel points.

    Parameters
    ----------
    ct : Volume
        CT in HU.
    centres_lps_mm : array_like, shape (n, 3) or (3,)
        Sphere centres, LPS mm.
    diameter_mm : float
        Sphere diameter, mm.
    hu : float
        CT number of the sphere material.
    supersample : int
        Sub-voxel points per axis (≥ 1; 5 gives fractions in steps of 1/125).

    Returns
    -------
    Volume
        Same grid and dtype (integers rounded and clipped to the dtype's range).

    Raises
    ------
    ValueError
        If a centre is not finite or its sphere misses the CT.

    Examples
    --------
    A 4 mm sphere of 1000 HU in water on a 1 mm grid holds 4/3 π 2³ = 33.5 mm³:

    >>> ct = Volume(np.zeros((9, 9, 9), np.float32), np.eye(4))
    >>> out = insert_spherical_markers(ct, [4.0, 4.0, 4.0], diameter_mm=4.0, hu=1000.0)
    >>> float(out.array[4, 4, 4]), round(float(out.array.sum()) / 1000.0, 1)
    (1000.0, 33.3)
    """
    _check_positive(diameter_mm, "diameter_mm", "the sphere diameter in mm, e.g. 4.0")
    if int(supersample) != supersample or supersample < 1:
        raise BadInputError(f"supersample must be a positive integer; got {supersample!r}.")
    centres = np.asarray(centres_lps_mm, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(centres)):
        raise BadInputError(f"centres_lps_mm must be finite; got {centres.tolist()}.")
    out = np.array(ct.array, copy=True)
    dtype = out.dtype
    spacing = np.asarray(ct.spacing_mm, dtype=np.float64)
    radius_mm = diameter_mm / 2.0
    shape = np.asarray(ct.shape)
    steps = (np.arange(supersample) + 0.5) / supersample - 0.5
    sub = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    for centre in centres:
        c_ijk = ct.lps_to_index(centre)
        half = radius_mm / spacing + 1.0
        start = np.maximum(np.floor(c_ijk - half), 0).astype(int)
        stop = np.minimum(np.ceil(c_ijk + half) + 1, shape).astype(int)
        if np.any(stop <= start):
            lo, hi = ct.geometry.bounds_lps_mm()
            raise BadInputError(
                f"centres_lps_mm {centre.tolist()} puts the sphere outside the CT (LPS "
                f"extent {np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm); "
                "choose centres inside the scanned volume."
            )
        grid = np.stack(
            np.meshgrid(
                *[np.arange(a, b) for a, b in zip(start, stop, strict=True)], indexing="ij"
            ),
            axis=-1,
        )
        points = grid[..., None, :] + sub  # (..., S³, 3) sub-voxel indices
        lps = ct.index_to_lps(points)
        fraction = (np.sum((lps - centre) ** 2, axis=-1) <= radius_mm**2).mean(axis=-1)
        box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        blended = fraction * hu + (1.0 - fraction) * out[box].astype(np.float64)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            blended = np.clip(np.rint(blended), info.min, info.max)
        out[box] = blended.astype(dtype)
    return ct.with_array(out)


# --- internals ------------------------------------------------------------------------


def _check_positive(value: float, name: str, hint: str) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise BadInputError(f"{name} must be a positive finite number; got {value!r}. Give {hint}.")


def _lps_tuple(ct: Volume, ijk: FloatArray) -> tuple[float, float, float]:
    p = ct.index_to_lps(ijk)
    return (float(p[0]), float(p[1]), float(p[2]))


def _label_26(
    mask: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int32], list[tuple[slice, ...] | None]]:
    """26-connected labels and their bounding boxes.

    Computed in the array's memory order: a reoriented CT is often Fortran-ordered, which
    makes :func:`scipy.ndimage.label` and ``find_objects`` several times slower.
    """
    order = np.argsort([-abs(s) for s in mask.strides], kind="stable")
    labels, _ = ndi.label(mask.transpose(order), structure=np.ones((3, 3, 3), dtype=bool))
    back = np.argsort(order)
    boxes = [
        None if box is None else tuple(box[a] for a in back) for box in ndi.find_objects(labels)
    ]
    return labels.transpose(back), boxes


def _axial_axis(ct: Volume) -> int:
    """Index axis closest to the patient's S–I direction (the slice axis of an axial CT)."""
    return int(np.argmax(np.abs(ct.direction[2, :])))


def _body_slice(plane: npt.NDArray[np.bool_], pixel_mm2: float) -> npt.NDArray[np.bool_]:
    """Body of one axial slice: holes filled (lungs), pieces under :data:`_MIN_BODY_AREA_MM2`
    dropped (markers off the skin, cables, blanket folds; the trunk and arms stay)."""
    labels, n = ndi.label(~plane)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    outside = np.zeros(n + 1, dtype=bool)
    outside[border] = True
    outside[0] = False
    filled = ~outside[labels]
    pieces, m = ndi.label(filled)
    area_mm2 = np.bincount(pieces.ravel(), minlength=m + 1) * pixel_mm2
    keep = area_mm2 >= _MIN_BODY_AREA_MM2
    keep[0] = False
    return np.asarray(keep[pieces])


class _BodyLookup:
    """Body mask around candidates: the caller's, or axial slices filled on first use."""

    def __init__(
        self, hu: npt.NDArray[Any], body: Volume | None, axial: int, spacing: FloatArray
    ) -> None:
        self._hu = hu
        self._pixel_mm2 = float(np.prod(np.delete(spacing, axial)))
        self._body = None if body is None else np.asarray(body.array, dtype=bool)
        self._axial = axial
        self._slices: dict[int, npt.NDArray[np.bool_]] = {}

    def _slice(self, k: int) -> npt.NDArray[np.bool_]:
        cached = self._slices.get(k)
        if cached is None:
            index = tuple(k if a == self._axial else slice(None) for a in range(3))
            cached = _body_slice(self._hu[index] > BODY_MIN_HU, self._pixel_mm2)
            self._slices[k] = cached
        return cached

    def crop(self, box: tuple[slice, ...]) -> npt.NDArray[np.bool_]:
        if self._body is not None:
            return self._body[box]
        ks = range(*box[self._axial].indices(self._hu.shape[self._axial]))
        in_plane = tuple(s for a, s in enumerate(box) if a != self._axial)
        return np.stack([self._slice(k)[in_plane] for k in ks], axis=self._axial)

    def signed_distance_mm(self, ijk: FloatArray, spacing: FloatArray, reach_mm: float) -> float:
        """Distance (mm) from the voxel nearest ``ijk`` to the body surface, + outside.

        Looked at within ``reach_mm``: farther surfaces give ±inf.
        """
        shape = np.asarray(self._hu.shape)
        centre = np.clip(np.rint(ijk).astype(int), 0, shape - 1)
        half = np.ceil(reach_mm / spacing).astype(int)
        start = np.maximum(centre - half, 0)
        stop = np.minimum(centre + half + 1, shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        if self._body is None and not np.any(self._hu[box] <= BODY_MIN_HU):
            return -math.inf  # no air of any kind (outside, lung) within reach
        mask = self.crop(box)
        at = tuple(int(v) for v in centre - start)
        if mask[at]:
            if mask.all():
                return -math.inf
            return -float(ndi.distance_transform_edt(mask, sampling=spacing)[at])
        if not mask.any():
            return math.inf
        return float(ndi.distance_transform_edt(~mask, sampling=spacing)[at])
