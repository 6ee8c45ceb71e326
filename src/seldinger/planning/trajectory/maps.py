"""Voxel labels, distance maps and skin candidates the trajectory search reads (precomputed).

Everything is in the canonical LPS array order (exact flips and transposes of the anatomy's
masks) and cropped to the body, so that index space and LPS differ by one diagonal affine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy
from seldinger.anatomy.airway_graph import label_airway_voxels
from seldinger.errors import BadInputError
from seldinger.imaging import Volume, reorient, require_same_geometry
from seldinger.planning.trajectory.candidates import skin_candidates
from seldinger.planning.trajectory.constraints import TrajectoryConstraints

__all__ = [
    "BIT_BODY",
    "BIT_BULLA",
    "BIT_EMPHYSEMA",
    "BIT_LESION",
    "BIT_LUNG_LEFT",
    "BIT_LUNG_RIGHT",
    "BULLA_MIN_DIAMETER_MM",
    "DISTANCE_CAP_MM",
    "HARD_SHIFT",
    "RiskMaps",
]

logger = logging.getLogger(__name__)

BIT_BODY = np.uint32(1 << 0)
BIT_LUNG_LEFT = np.uint32(1 << 1)
BIT_LUNG_RIGHT = np.uint32(1 << 2)
BIT_LESION = np.uint32(1 << 3)
BIT_EMPHYSEMA = np.uint32(1 << 4)
BIT_BULLA = np.uint32(1 << 5)
#: Hard structure number n has label bit ``1 << (HARD_SHIFT + n)``.
HARD_SHIFT = 8

#: Distances are stored in hundredths of a millimetre up to this cap: beyond it a structure
#: is "far" for every rule and score here (the vessel rule works at a few mm).
DISTANCE_CAP_MM = 100.0
#: Low-attenuation clusters at least this wide (diameter of the ball of equal volume) are
#: bullae: air spaces >= 1 cm by the Fleischner Society glossary (Hansell et al., Radiology
#: 2008;246:697-722).
BULLA_MIN_DIAMETER_MM = 10.0
#: Sigma of the smoothed lung indicator whose gradient gives the pleural normal.
_PLEURA_SMOOTH_MM = 1.5
#: Extra distance structures (beyond the hard ones) whose closest approach is reported.
_REPORTED = ("vessels", "airways", "emphysema")


@dataclass(frozen=True)
class RiskMaps:
    """What the ray march reads, for one anatomy (and lesion), in LPS order cropped to the body.

    Attributes
    ----------
    labels : ndarray of uint32, (I, J, K)
        Bit set per voxel: body, lungs, lesion, emphysema, bulla and one bit per hard
        structure (:data:`HARD_SHIFT`).
    distances_cmm : ndarray of uint16, (I, J, K, M)
        Distance from each voxel centre to the nearest voxel of each of
        :attr:`distance_names`, in 1/100 mm, capped at :data:`DISTANCE_CAP_MM`.
    distance_names : tuple of str
        Structures with a distance map (hard ones first; ``vessels`` are those above the
        calibre).
    hard_names : tuple of str
        Hard structures present, in bit order.
    body : Volume
        The body mask on the crop (its grid is the crop's grid).
    constraints : TrajectoryConstraints
        The rules the maps were built for (hard structures, vessel calibre).
    lesion_centroid_lps_mm : ndarray (3,), optional
        Centroid of the lesion the maps were built with.
    candidates_lps_mm : ndarray (n, 3)
        Skin entry candidates (:func:`~seldinger.planning.trajectory.candidates.skin_candidates`).
    pleura_field : ndarray of float32, (I, J, K)
        Lung indicator smoothed by :data:`_PLEURA_SMOOTH_MM` (its gradient is the pleural
        normal).
    notes : tuple of str
        Fallbacks taken (missing structures, no vessel radii …).
    seconds : dict of str to float
        Time per precomputation step.
    """

    labels: npt.NDArray[np.uint32]
    distances_cmm: npt.NDArray[np.uint16]
    distance_names: tuple[str, ...]
    hard_names: tuple[str, ...]
    body: Volume
    pleura_field: npt.NDArray[np.float32]
    candidates_lps_mm: npt.NDArray[np.float64]
    constraints: TrajectoryConstraints
    lesion_centroid_lps_mm: npt.NDArray[np.float64] | None = None
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def spacing_mm(self) -> npt.NDArray[np.float64]:
        """Voxel size (mm) along i, j, k (L, P, S)."""
        return np.asarray(self.body.spacing_mm, dtype=np.float64)

    def hard_bit(self, name: str) -> int:
        """Label bit of a hard structure."""
        return 1 << (HARD_SHIFT + self.hard_names.index(name))

    def lps_to_index(self, lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Continuous voxel indices of the crop for LPS points (..., 3)."""
        return self.body.lps_to_index(lps_mm)

    def index_to_lps(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """LPS points (mm) of continuous voxel indices of the crop (..., 3)."""
        return self.body.index_to_lps(ijk)

    @classmethod
    def build(
        cls,
        anatomy: Anatomy,
        constraints: TrajectoryConstraints | None = None,
        lesion: Volume | None = None,
    ) -> RiskMaps:
        """Precompute labels and distance maps from segmented anatomy.

        Parameters
        ----------
        anatomy : Anatomy
            Masks in the CT's geometry (any axis order); ``body`` is required.
        constraints : TrajectoryConstraints, optional
            Which structures are hard and the vessel calibre.
        lesion : Volume, optional
            The target lesion's mask (same grid): it is taken out of every risk structure
            (the needle is meant to reach it) and its voxels count neither as lung nor as
            a pleural crossing.

        Raises
        ------
        ValueError
            If the anatomy has no body, a forbidden structure is missing, or masks differ in
            grid.
        """
        constraints = constraints or TrajectoryConstraints()
        seconds: dict[str, float] = {}
        notes: list[str] = []
        clock = time.perf_counter()
        if "body" not in anatomy:
            raise BadInputError(
                "anatomy has no 'body' mask; the planner needs the skin surface. Segment with "
                "seldinger.anatomy.segment(ct) (it always includes the body)."
            )
        body_full = anatomy["body"]
        for volume in anatomy.masks.values():
            require_same_geometry(body_full, volume)
        if lesion is not None:
            require_same_geometry(body_full, lesion)
        for name in constraints.forbidden:
            if name not in anatomy:
                raise BadInputError(
                    f"forbidden structure {name!r} is not in the anatomy (it has "
                    f"{', '.join(anatomy.masks)}); segment it or drop it from forbidden."
                )

        def lps(volume: Volume) -> Volume:
            return reorient(volume, "LPS")

        body_lps = lps(body_full)
        body_arr = np.asarray(body_lps.array, dtype=bool)
        if not body_arr.any():
            raise BadInputError("the body mask is empty; check the segmentation of this CT.")
        nz = [
            np.flatnonzero(body_arr.any(axis=tuple(a for a in range(3) if a != ax)))
            for ax in range(3)
        ]
        box = tuple(slice(max(int(n[0]) - 1, 0), int(n[-1]) + 2) for n in nz)
        body = body_lps.crop_index(box)
        shape = body.shape
        spacing = body.spacing_mm

        def crop(name: str) -> npt.NDArray[np.bool_]:
            return np.asarray(lps(anatomy[name]).array[box], dtype=bool)

        labels = np.zeros(shape, dtype=np.uint32)
        labels[np.asarray(body.array, dtype=bool)] |= BIT_BODY
        lesion_arr = np.asarray(lps(lesion).array[box], dtype=bool) if lesion is not None else None

        lungs = np.zeros(shape, dtype=bool)
        for name, bit in (("lung_left", BIT_LUNG_LEFT), ("lung_right", BIT_LUNG_RIGHT)):
            if name in anatomy:
                # Vessels and nodules inside a lung are still inside its pleura.
                lung = ndi.binary_fill_holes(crop(name))
                labels[lung] |= bit
                lungs |= lung
        if "emphysema" in anatomy:
            emph = crop("emphysema")
            labels[emph] |= BIT_EMPHYSEMA
            comp, n = ndi.label(emph, np.ones((3, 3, 3), dtype=bool))
            if n:
                size_mm3 = np.bincount(comp.ravel(), minlength=n + 1) * float(np.prod(spacing))
                diameter_mm = np.cbrt(6.0 * size_mm3 / np.pi)
                big = diameter_mm >= BULLA_MIN_DIAMETER_MM
                big[0] = False
                labels[big[comp]] |= BIT_BULLA
        seconds["labels"] = time.perf_counter() - clock

        # Structures: hard ones, then the reported extras.
        masks: dict[str, npt.NDArray[np.bool_]] = {}
        hard_names: list[str] = []
        for name in constraints.all_hard:
            mask = _structure(anatomy, name, box, constraints, notes, lps)
            if mask is None:
                continue
            masks[name] = mask
            hard_names.append(name)
        for name in _REPORTED:
            if name not in masks:
                mask = _structure(anatomy, name, box, constraints, notes, lps)
                if mask is not None:
                    masks[name] = mask
        if "vessels" not in masks:
            notes.append(
                "no pulmonary vessel mask: the vessel safety distance is not applied "
                "(mediastinum and great vessels still are, when segmented)."
            )
        centroid = None
        if lesion_arr is not None:
            where = np.argwhere(lesion_arr)
            if where.size == 0:
                raise BadInputError("the lesion mask is empty; segment the lesion first.")
            centroid = np.asarray(body.index_to_lps(where.mean(axis=0)), dtype=np.float64)
            labels[lesion_arr] |= BIT_LESION
            masks = {name: mask & ~lesion_arr for name, mask in masks.items()}
        for n, name in enumerate(hard_names):
            labels[masks[name]] |= np.uint32(1 << (HARD_SHIFT + n))
        seconds["structures"] = time.perf_counter() - clock - seconds["labels"]

        clock = time.perf_counter()
        names = tuple(masks)
        distances = np.empty((*shape, len(names)), dtype=np.uint16)
        for m, name in enumerate(names):
            distances[..., m] = _distance_cmm(masks[name], spacing)
        seconds["distance_maps"] = time.perf_counter() - clock

        clock = time.perf_counter()
        sigma = [_PLEURA_SMOOTH_MM / s for s in spacing]
        pleura_field = ndi.gaussian_filter(lungs.astype(np.float32), sigma)
        seconds["pleura_field"] = time.perf_counter() - clock
        clock = time.perf_counter()
        candidates = skin_candidates(body)
        seconds["skin_candidates"] = time.perf_counter() - clock
        logger.debug("risk maps %s: %s", shape, seconds)
        return cls(
            labels=labels,
            distances_cmm=distances,
            distance_names=names,
            hard_names=tuple(hard_names),
            body=body,
            pleura_field=pleura_field,
            candidates_lps_mm=candidates,
            constraints=constraints,
            lesion_centroid_lps_mm=centroid,
            notes=tuple(notes),
            seconds=seconds,
        )


def _structure(
    anatomy: Anatomy,
    name: str,
    box: tuple[slice, ...],
    constraints: TrajectoryConstraints,
    notes: list[str],
    to_lps: Callable[[Volume], Volume],
) -> npt.NDArray[np.bool_] | None:
    """One risk structure's mask on the crop (None, with a note, when the anatomy lacks it)."""
    if name == "central_airways":
        if "airways" not in anatomy:
            notes.append("no airway mask: the trachea and main bronchi are not avoided.")
            return None
        airways = to_lps(anatomy["airways"])
        if anatomy.airway_graph is None:
            notes.append(
                "no airway graph: the whole airway tree is treated as trachea/main bronchi."
            )
            return np.asarray(airways.array[box], dtype=bool)
        parts = label_airway_voxels(
            np.asarray(airways.array, dtype=bool), anatomy.airway_graph, airways
        )
        central = np.zeros(airways.shape, dtype=bool)
        for key in ("trachea", "main_bronchus_left", "main_bronchus_right"):
            if key in parts:
                central |= parts[key]
        return np.asarray(central[box])
    if name not in anatomy:
        notes.append(f"no {name!r} mask in the anatomy: it is not avoided.")
        return None
    mask: npt.NDArray[np.bool_] = np.asarray(to_lps(anatomy[name]).array[box], dtype=np.bool_)
    if name == "vessels":
        if anatomy.vessel_radius_mm is None:
            notes.append(
                "no vessel radius map: every segmented vessel is kept at the safety distance."
            )
        else:
            radius = np.asarray(to_lps(anatomy.vessel_radius_mm).array[box])
            mask = mask & (2.0 * radius >= constraints.vessel_calibre_mm)
    return mask


def _distance_cmm(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.uint16]:
    """Distance (1/100 mm, capped) from each voxel centre to the mask; 0 inside it."""
    cap = int(DISTANCE_CAP_MM * 100)
    if not mask.any():
        return np.full(mask.shape, cap, dtype=np.uint16)
    # SimpleITK's Maurer transform: exact Euclidean distances, multi-threaded, float32
    # (scipy's EDT is single-threaded and returns float64: 3x slower on a chest crop).
    image = sitk.GetImageFromArray(np.ascontiguousarray(mask.transpose(2, 1, 0)).astype(np.uint8))
    image.SetSpacing(tuple(float(s) for s in spacing_mm))
    dist = sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    # Outside the mask it is the distance to the nearest mask voxel centre (the nearest
    # mask voxel is always on its boundary); inside it is <= 0.
    out = sitk.GetArrayViewFromImage(dist).transpose(2, 1, 0)
    return np.clip(np.rint(out * 100.0), 0, cap).astype(np.uint16)
