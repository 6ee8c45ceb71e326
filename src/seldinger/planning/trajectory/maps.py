"""Voxel labels, distance maps and skin candidates the trajectory search reads (precomputed).

Everything is in the canonical LPS array order (exact flips and transposes of the anatomy's
masks) and cropped to the body, so that index space and LPS differ by one diagonal affine.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy
from seldinger.anatomy.airway_graph import label_airway_voxels
from seldinger.anatomy.morphology import dilate_mm
from seldinger.errors import BadInputError
from seldinger.imaging import Volume, reorient, require_same_geometry
from seldinger.planning.trajectory.candidates import skin_candidates
from seldinger.planning.trajectory.constraints import TrajectoryConstraints
from seldinger.planning.trajectory.map_cache import MapCache

__all__ = [
    "BIT_BODY",
    "BIT_BULLA",
    "BIT_EMPHYSEMA",
    "BIT_LESION",
    "BIT_LIVER",
    "BIT_LUNG_LEFT",
    "BIT_LUNG_RIGHT",
    "BULLA_MIN_DIAMETER_MM",
    "DISTANCE_CAP_MM",
    "HARD_SHIFT",
    "LIVER_LESION_SHARE",
    "LIVER_SHELL_MM",
    "LOBES",
    "LOBE_SHIFT",
    "RiskMaps",
]

logger = logging.getLogger(__name__)

BIT_BODY = np.uint32(1 << 0)
BIT_LUNG_LEFT = np.uint32(1 << 1)
BIT_LUNG_RIGHT = np.uint32(1 << 2)
BIT_LESION = np.uint32(1 << 3)
BIT_EMPHYSEMA = np.uint32(1 << 4)
BIT_BULLA = np.uint32(1 << 5)
#: The lobe of a lung voxel (1-5: :data:`LOBES`; 0 unknown) in label bits 6-8.
LOBE_SHIFT = 6
#: The liver (when segmented): a liver target's paths measure the normal parenchyma crossed.
BIT_LIVER = np.uint32(1 << 9)
#: Width of the shell around a lesion whose liver share tells a liver lesion (mm): a few
#: voxels, so that a liver mask leaving a rim around the lesion out still counts.
LIVER_SHELL_MM = 3.0
#: A lesion whose shell is at least this share liver is a liver lesion (a dome or
#: exophytic lesion has liver on one side only; a lung lesion on the diaphragm far less).
LIVER_LESION_SHARE = 0.4
#: Lobe masks (TotalSegmentator's names), coded 1-5 in this order.
LOBES: tuple[str, ...] = (
    "lung_upper_lobe_left",
    "lung_lower_lobe_left",
    "lung_upper_lobe_right",
    "lung_middle_lobe_right",
    "lung_lower_lobe_right",
)
#: Hard structure number n has label bit ``1 << (HARD_SHIFT + n)``.
HARD_SHIFT = 12

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
        Bit set per voxel: body, lungs, lesion, emphysema, bulla, the lobe
        (:data:`LOBE_SHIFT`), the liver and one bit per hard structure (:data:`HARD_SHIFT`).
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
    lobes : tuple of str
        The lobes (:data:`LOBES`) whose masks coded the labels; fissure crossings are
        counted only with all five.
    lesion_liver_share : float, optional
        Share of the tissue within :data:`LIVER_SHELL_MM` around the lesion that is liver
        (None: no lesion, or no liver mask): at :data:`LIVER_LESION_SHARE` or more the
        lesion is a liver lesion, and its paths measure the normal liver they cross.
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
    lobes: tuple[str, ...] = ()
    lesion_liver_share: float | None = None

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
        *,
        cache: bool = True,
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
        cache : bool
            For an anatomy read from a folder (:func:`seldinger.anatomy.load_anatomy`),
            keep what does not depend on the lesion — the crop, labels, pleural field, skin
            candidates and each structure's distance map — in ``<folder>/cache`` and reuse
            it while the masks it came from are unchanged (:mod:`.map_cache`). The lesion is
            applied afterwards: only the distance maps of structures it overlaps are made
            again.

        Raises
        ------
        BadInputError
            If the anatomy has no body, a forbidden structure is missing, or masks differ in
            grid.
        """
        constraints = constraints or TrajectoryConstraints()
        _check_inputs(anatomy, constraints, lesion)
        store = MapCache.for_anatomy(anatomy) if cache else None
        base_key = _base_key(anatomy, store)
        final = _FinalEntry.find(anatomy, constraints, lesion, store, base_key)
        if final is not None:
            found = final.load(cls, anatomy, constraints)
            if found is not None:
                return found
        base = _Base.cached(anatomy, store, base_key)
        seconds, notes = dict(base.seconds), list(base.notes)
        clock = time.perf_counter()
        distances_by_name, hard_names = _structure_distances(
            anatomy, constraints, base, store, notes
        )
        seconds["structures_and_distances"] = time.perf_counter() - clock
        centroid, liver_share = None, None
        if lesion is not None:
            clock = time.perf_counter()
            centroid, sub = _apply_lesion(
                anatomy, constraints, lesion, base, distances_by_name, store
            )
            if "liver" in anatomy:
                liver_share = _liver_share(base.labels, sub, base.body.spacing_mm)
            seconds["lesion"] = time.perf_counter() - clock
        labels = base.labels  # the base is made for this call: its labels are ours to mark
        for n, name in enumerate(hard_names):
            bit = np.uint32(1 << (HARD_SHIFT + n))
            np.bitwise_or(labels, bit, out=labels, where=distances_by_name[name] == 0)
        names = tuple(distances_by_name)
        distances = np.empty((*labels.shape, len(names)), dtype=np.uint16)
        for m, name in enumerate(names):
            distances[..., m] = distances_by_name[name]
        logger.debug("risk maps %s: %s", labels.shape, seconds)
        maps = cls(
            labels=labels,
            distances_cmm=distances,
            distance_names=names,
            hard_names=tuple(hard_names),
            body=base.body,
            pleura_field=base.pleura_field,
            candidates_lps_mm=base.candidates,
            constraints=constraints,
            lesion_centroid_lps_mm=centroid,
            notes=tuple(notes),
            seconds=seconds,
            lobes=tuple(name for name in LOBES if name in anatomy),
            lesion_liver_share=liver_share,
        )
        if final is None:  # the base was made just now: its box is in the cache from here on
            final = _FinalEntry.find(anatomy, constraints, lesion, store, base_key)
        if final is not None:
            final.save(maps)
        return maps


def _check_inputs(
    anatomy: Anatomy, constraints: TrajectoryConstraints, lesion: Volume | None
) -> None:
    if "body" not in anatomy:
        raise BadInputError(
            "anatomy has no 'body' mask; the planner needs the skin surface. Segment with "
            "seldinger.anatomy.segment(ct) (it always includes the body)."
        )
    if lesion is not None:
        require_same_geometry(anatomy["body"], lesion)
    for name in constraints.forbidden:
        if name not in anatomy:
            raise BadInputError(
                f"forbidden structure {name!r} is not in the anatomy (it has "
                f"{', '.join(anatomy.masks)}); segment it, or add a mask of it made elsewhere "
                "(`seldinger segment CT --out ANATOMY --add NAME=MASK`), or drop it from "
                "forbidden."
            )


def _structure_distances(
    anatomy: Anatomy,
    constraints: TrajectoryConstraints,
    base: _Base,
    store: MapCache | None,
    notes: list[str],
) -> tuple[dict[str, npt.NDArray[np.uint16]], list[str]]:
    """Each hard and reported structure's distance map (cached or made), and the hard ones
    present, in order."""
    distances: dict[str, npt.NDArray[np.uint16]] = {}
    hard_names: list[str] = []
    for name in (*constraints.all_hard, *_REPORTED):
        if name in distances:
            continue
        key = _structure_key(anatomy, name, constraints)
        found = None if store is None or key is None else store.load(f"dist-{name}", key)
        if found is not None:
            notes.extend(_fallback_notes(anatomy, name))
        else:
            mask = _structure(anatomy, name, base.box, constraints, notes, _lps)
            if mask is None:
                continue
            found = _distance_cmm(mask, base.body.spacing_mm)
            if store is not None and key is not None:
                store.save(f"dist-{name}", key, found)
        distances[name] = found
        if name in constraints.all_hard:
            hard_names.append(name)
    if "vessels" not in distances:
        notes.append(
            "no pulmonary vessel mask: the vessel safety distance is not applied "
            "(mediastinum and great vessels still are, when segmented)."
        )
    _merge_missing(notes)
    return distances, hard_names


def _merge_missing(notes: list[str]) -> None:
    """One note naming every structure the anatomy lacks, instead of one note each."""
    missing = [n for n in notes if n.startswith(_MISSING_PREFIX) and n.endswith(_MISSING_SUFFIX)]
    if len(missing) < 2:
        return
    names = [n[len(_MISSING_PREFIX) : -len(_MISSING_SUFFIX)].strip("'") for n in missing]
    first = notes.index(missing[0])
    kept = [n for n in notes if n not in missing]
    kept.insert(first, f"not in the anatomy, so not avoided: {', '.join(names)}.")
    notes[:] = kept


def _apply_lesion(
    anatomy: Anatomy,
    constraints: TrajectoryConstraints,
    lesion: Volume,
    base: _Base,
    distances: dict[str, npt.NDArray[np.uint16]],
    store: MapCache | None,
) -> tuple[npt.NDArray[np.float64], tuple[slice, slice, slice]]:
    """Mark the lesion in the labels, take it out of every structure reaching into it (their
    maps made again, or read from the cache), and return its centroid (LPS mm) and box."""
    lesion_arr, sub, inside = _lesion_crop(lesion, base.box)
    where = np.argwhere(inside) + [s.start for s in sub]
    centroid = np.asarray(base.body.index_to_lps(where.mean(axis=0)), dtype=np.float64)
    base.labels[sub][inside] |= BIT_LESION
    lesion_key = _lesion_digest(sub, inside)
    for name, distance in distances.items():
        if not (distance[sub][inside] == 0).any():
            continue  # the structure does not reach into the lesion
        key = _structure_key(anatomy, name, constraints)
        parts = None if key is None else [*key, lesion_key]
        found = None if store is None or parts is None else store.load(f"lesion-{name}", parts)
        if found is None:
            found = _distance_cmm((distance == 0) & ~lesion_arr, base.body.spacing_mm)
            if store is not None and parts is not None:
                store.save(f"lesion-{name}", parts, found)
        distances[name] = found
    return centroid, sub


def _liver_share(
    labels: npt.NDArray[np.uint32], sub: tuple[slice, slice, slice], spacing_mm: Sequence[float]
) -> float | None:
    """Share of the body voxels within :data:`LIVER_SHELL_MM` of the lesion (box ``sub``)
    that are liver; None when there are none. A shell, not the lesion's own voxels: a liver
    mask may leave out a large lesion, or hold it."""
    pad = [max(1, int(np.ceil(LIVER_SHELL_MM / s))) for s in spacing_mm]
    box = tuple(
        slice(max(s.start - p, 0), min(s.stop + p, n))
        for s, p, n in zip(sub, pad, labels.shape, strict=True)
    )
    local = labels[box]
    lesion = (local & BIT_LESION) != 0
    shell = dilate_mm(lesion, LIVER_SHELL_MM, spacing_mm) & ~lesion & ((local & BIT_BODY) != 0)
    if not shell.any():
        return None
    return float(np.count_nonzero(local[shell] & BIT_LIVER) / np.count_nonzero(shell))


def _lps(volume: Volume) -> Volume:
    return reorient(volume, "LPS")


def _lesion_crop(
    lesion: Volume, box: tuple[slice, slice, slice]
) -> tuple[npt.NDArray[np.bool_], tuple[slice, slice, slice], npt.NDArray[np.bool_]]:
    """The lesion on the crop, its bounding box there and its voxels in that box."""
    lesion_arr = np.asarray(_lps(lesion).array[box], dtype=bool)
    sub = _bounding_box(lesion_arr)
    if sub is None:
        raise BadInputError("the lesion mask is empty; segment the lesion first.")
    return lesion_arr, sub, lesion_arr[sub]


def _base_key(anatomy: Anatomy, store: MapCache | None) -> str | None:
    """Cache key of the base maps (None: no cache)."""
    if store is None:
        return None
    parts = [anatomy.fingerprints.get(n) if n in anatomy else "absent" for n in _BASE_STRUCTURES]
    return store.key("base", parts)


@dataclass(frozen=True)
class _FinalEntry:
    """The finished maps of one anatomy, rule set and lesion in the cache: a planner run
    again on them (another drawn path, another output, a figure) maps them and is done."""

    store: MapCache
    parts: list[str]
    box: tuple[slice, slice, slice]

    @classmethod
    def find(
        cls,
        anatomy: Anatomy,
        constraints: TrajectoryConstraints,
        lesion: Volume | None,
        store: MapCache | None,
        base_key: str | None,
    ) -> _FinalEntry | None:
        if store is None or base_key is None:
            return None
        box = store.load_box(base_key)
        if box is None:
            return None
        lesion_part = "no lesion"
        if lesion is not None:
            _, sub, inside = _lesion_crop(lesion, box)
            lesion_part = _lesion_digest(sub, inside)
        names = (*constraints.all_hard, *_REPORTED)
        parts = [
            base_key,
            lesion_part,
            repr(constraints.all_hard),
            repr(constraints.vessel_calibre_mm),
            *(repr(_structure_key(anatomy, name, constraints)) for name in names),
        ]
        return cls(store, parts, box)

    def load(
        self, maps_type: type[RiskMaps], anatomy: Anatomy, constraints: TrajectoryConstraints
    ) -> RiskMaps | None:
        clock = time.perf_counter()
        found = self.store.load_final(self.parts)
        if found is None:
            return None
        labels, distances, pleura, candidates, manifest = found
        body = _lps(anatomy["body"]).crop_index(self.box)
        if labels.shape != body.shape:
            return None
        centroid = manifest.get("lesion_centroid_lps_mm")
        return maps_type(
            labels=labels,
            distances_cmm=distances,
            distance_names=tuple(manifest["distance_names"]),
            hard_names=tuple(manifest["hard_names"]),
            body=body,
            pleura_field=pleura,
            candidates_lps_mm=candidates,
            constraints=constraints,
            lesion_centroid_lps_mm=None if centroid is None else np.asarray(centroid, float),
            notes=tuple(manifest["notes"]),
            seconds={"maps_cached": time.perf_counter() - clock},
            lobes=tuple(manifest["lobes"]),
            lesion_liver_share=manifest.get("lesion_liver_share"),
        )

    def save(self, maps: RiskMaps) -> None:
        centroid = maps.lesion_centroid_lps_mm
        manifest = {
            "distance_names": list(maps.distance_names),
            "hard_names": list(maps.hard_names),
            "notes": list(maps.notes),
            "lobes": list(maps.lobes),
            "lesion_centroid_lps_mm": None if centroid is None else centroid.tolist(),
            "lesion_liver_share": maps.lesion_liver_share,
        }
        self.store.save_final(self.parts, maps.labels, maps.distances_cmm, manifest)


@dataclass(frozen=True, eq=False)
class _Base:
    """What the maps share whatever the rules and the lesion: the crop to the body, the
    body/lung/emphysema/bulla/liver labels, the pleural field and the skin candidates."""

    box: tuple[slice, slice, slice]
    body: Volume
    labels: npt.NDArray[np.uint32]
    pleura_field: npt.NDArray[np.float32]
    candidates: npt.NDArray[np.float64]
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def cached(cls, anatomy: Anatomy, store: MapCache | None, key: str | None) -> _Base:
        if store is not None and key is not None:
            found = store.load_base(key, anatomy["body"])
            if found is not None:
                box, body, labels, pleura, candidates = found
                return cls(box, body, labels, pleura, candidates, seconds={"base_cached": 0.0})
        base = cls.compute(anatomy)
        if store is not None and key is not None:
            store.save_base(key, base.box, base.labels, base.pleura_field, base.candidates)
        return base

    @classmethod
    def compute(cls, anatomy: Anatomy) -> _Base:
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        body_lps = reorient(anatomy["body"], "LPS")
        body_arr = np.asarray(body_lps.array, dtype=bool)
        if not body_arr.any():
            raise BadInputError("the body mask is empty; check the segmentation of this CT.")
        nz = [
            np.flatnonzero(body_arr.any(axis=tuple(a for a in range(3) if a != ax)))
            for ax in range(3)
        ]
        i, j, k = (slice(max(int(n[0]) - 1, 0), int(n[-1]) + 2) for n in nz)
        box = (i, j, k)
        body = body_lps.crop_index(box)
        shape = body.shape
        spacing = body.spacing_mm

        def crop(name: str) -> npt.NDArray[np.bool_]:
            return np.asarray(reorient(_mask(anatomy, name), "LPS").array[box], dtype=bool)

        labels = np.zeros(shape, dtype=np.uint32)
        labels[np.asarray(body.array, dtype=bool)] |= BIT_BODY
        lungs = np.zeros(shape, dtype=bool)
        for name, bit in (("lung_left", BIT_LUNG_LEFT), ("lung_right", BIT_LUNG_RIGHT)):
            if name in anatomy:
                # Vessels and nodules inside a lung are still inside its pleura.
                lung = ndi.binary_fill_holes(crop(name))
                labels[lung] |= bit
                lungs |= lung
        for code, name in enumerate(LOBES, start=1):
            if name in anatomy:
                labels[crop(name) & lungs] |= np.uint32(code << LOBE_SHIFT)
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
        if "liver" in anatomy:
            labels[crop("liver")] |= BIT_LIVER
        seconds["labels"] = time.perf_counter() - clock
        clock = time.perf_counter()
        sigma = [_PLEURA_SMOOTH_MM / s for s in spacing]
        pleura_field = ndi.gaussian_filter(lungs.astype(np.float32), sigma)
        seconds["pleura_field"] = time.perf_counter() - clock
        clock = time.perf_counter()
        candidates = skin_candidates(body)
        seconds["skin_candidates"] = time.perf_counter() - clock
        return cls(box, body, labels, pleura_field, candidates, seconds=seconds)


#: The structures the base labels are made of.
_BASE_STRUCTURES = ("body", "lung_left", "lung_right", "emphysema", "liver", *LOBES)


def _structure_key(
    anatomy: Anatomy, name: str, constraints: TrajectoryConstraints
) -> list[str | None] | None:
    """What a structure's distance map depends on (None: not cacheable)."""
    if not anatomy.fingerprints:
        return None
    body = anatomy.fingerprints.get("body")
    if name == "central_airways":
        parts = [anatomy.fingerprints.get("airways"), anatomy.fingerprints.get("airway_graph")]
    elif name == "vessels":
        parts = [
            anatomy.fingerprints.get("vessels"),
            anatomy.fingerprints.get("vessel_radius"),
            f"calibre {constraints.vessel_calibre_mm!r}",
        ]
    else:
        parts = [anatomy.fingerprints.get(name)]
    if parts[0] is None:
        return None
    return [body, *parts]


def _structure(
    anatomy: Anatomy,
    name: str,
    box: tuple[slice, ...],
    constraints: TrajectoryConstraints,
    notes: list[str],
    to_lps: Callable[[Volume], Volume],
) -> npt.NDArray[np.bool_] | None:
    """One risk structure's mask on the crop (None, with a note, when the anatomy lacks it)."""
    notes.extend(_fallback_notes(anatomy, name))
    if name == "central_airways":
        if "airways" not in anatomy:
            return None
        airways = to_lps(_mask(anatomy, "airways"))
        if anatomy.airway_graph is None:
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
        return None
    mask: npt.NDArray[np.bool_] = np.asarray(
        to_lps(_mask(anatomy, name)).array[box], dtype=np.bool_
    )
    if name == "vessels" and anatomy.vessel_radius_mm is not None:
        require_same_geometry(anatomy["body"], anatomy.vessel_radius_mm)
        radius = np.asarray(to_lps(anatomy.vessel_radius_mm).array[box])
        mask = mask & (2.0 * radius >= constraints.vessel_calibre_mm)
    return mask


def _mask(anatomy: Anatomy, name: str) -> Volume:
    """A mask of the anatomy, checked to lie on the body's grid (masks may be read lazily,
    so each is checked when it is first used)."""
    mask = anatomy[name]
    require_same_geometry(anatomy["body"], mask)
    return mask


def _bounding_box(mask: npt.NDArray[np.bool_]) -> tuple[slice, slice, slice] | None:
    """The smallest box holding a mask's voxels (None if empty), from its projections."""
    spans = []
    for axis in range(3):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if hits.size == 0:
            return None
        spans.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return spans[0], spans[1], spans[2]


def _lesion_digest(box: tuple[slice, slice, slice], inside: npt.NDArray[np.bool_]) -> str:
    """A digest of a lesion mask on the crop (its box and voxels)."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(repr([(s.start, s.stop) for s in box]).encode())
    digest.update(np.packbits(inside).tobytes())
    return f"lesion {digest.hexdigest()}"


_MISSING_PREFIX = "no "
_MISSING_SUFFIX = " mask in the anatomy: it is not avoided."


def _fallback_notes(anatomy: Anatomy, name: str) -> list[str]:
    """What the planner says when a structure is missing or only partly known."""
    if name == "central_airways":
        if "airways" not in anatomy:
            return ["no airway mask: the trachea and main bronchi are not avoided."]
        if anatomy.airway_graph is None:
            return ["no airway graph: the whole airway tree is treated as trachea/main bronchi."]
        return []
    if name not in anatomy:
        return [f"{_MISSING_PREFIX}{name!r}{_MISSING_SUFFIX}"]
    if name == "vessels" and anatomy.vessel_radius_mm is None:
        return ["no vessel radius map: every segmented vessel is kept at the safety distance."]
    return []


def _distance_cmm(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.uint16]:
    """Distance (1/100 mm, capped) from each voxel centre to the mask; 0 inside it."""
    cap = int(DISTANCE_CAP_MM * 100)
    if not mask.any():
        return np.full(mask.shape, cap, dtype=np.uint16)
    import SimpleITK as sitk  # only when a map is built: a cached run never loads it

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
