"""The five lung lobes and the fissures between them, from the airway and vessel trees.

:func:`segment_lobes` splits each lung into its lobes without a model:

1. **Working grid.** The lungs' box on a near-isotropic grid of about 1.3 mm (2 × 2 CT
   voxels in-plane, 2.5 mm slices split in two): every distance below is in millimetres
   on that grid, so anisotropic voxels are honoured.
2. **Seeds** (:mod:`~seldinger.anatomy.lobe_seeds`). The lobar bronchi of the airway graph
   and their subtrees; the pulmonary vessels cut at the hilum into components ("atoms")
   that each lie in one lobe, each labelled by its nearest lobar centreline.
3. **Territories.** A marker watershed per lung from the labelled atoms over the distance
   to the nearest vessel (capped at 6 mm): lobes grow along their vessel trees and meet
   in the avascular bands, which is where the fissures lie (Kuhnigk et al. 2005, Lassen et
   al. 2013). Parts of a lobe cut off from its main body (an atom labelled across a
   fissure) are handed back to their neighbours.
4. **Fissure surfaces** (:mod:`~seldinger.anatomy.lobe_surfaces`). Each fissure is a
   height field over the axial plane (the lobes of a lung are stacked lower, middle,
   upper in every column), fitted semi-globally to the territories with a penalty on
   steps between columns and, for the oblique fissures, a pull towards the vessel-free
   band. This smooths the boundaries, bridges incomplete fissures, and makes the result
   a partition of each lung by construction.
5. The lobe masks on the CT grid follow from the surfaces interpolated to every CT
   column; the fissures are the boundary voxels (:func:`~seldinger.anatomy.fissures.fissure_masks`).

Lobe codes (:data:`LOBE_CODES`) are TotalSegmentator's ids minus 9, so a lobe label
volume (:func:`lobe_labels`) is a uint8 array a ray marcher can sample:
:func:`fissure_crossings` counts the fissures a straight needle path crosses.

Frame and units: ``docs/conventions.md`` (LPS-ordered arrays, positions in LPS mm).

References
----------
.. [1] Kuhnigk JM, Dicken V, Zidowitz S, et al. New tools for computer assistance in
   thoracic CT. Part 1. Functional analysis of lungs, lung lobes, and bronchopulmonary
   segments. RadioGraphics 25(2):525-536, 2005.
.. [2] Lassen B, van Rikxoort EM, Schmidt M, Kerkstra S, van Ginneken B, Kuhnigk JM.
   Automatic segmentation of the pulmonary lobes from chest CT scans based on fissures,
   vessels, and bronchi. IEEE Trans Med Imaging 32(2):210-222, 2013.
.. [3] Doel T, Gavaghan DJ, Grau V. Review of automatic pulmonary lobe segmentation
   methods from CT. Comput Med Imaging Graph 40:13-29, 2015.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.airway_tree import AirwayGraph
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.fissures import FISSURE_NAMES, fissure_masks
from seldinger.anatomy.lobe_seeds import (
    ATOM_EROSION_MM,
    LOBAR_BRONCHI,
    WorkGrid,
    bronchus_seeds,
    lobar_centrelines,
    vessel_atoms,
)
from seldinger.anatomy.lobe_surfaces import HORIZONTAL_PENALTIES, OBLIQUE_PENALTIES, height_field
from seldinger.anatomy.lobe_territories import territories, vessel_distance_mm
from seldinger.anatomy.morphology import BoolArray, bounding_slices
from seldinger.imaging import Volume

__all__ = [
    "FISSURE_NAMES",
    "LOBE_CODES",
    "LOBE_NAMES",
    "Lobes",
    "fissure_crossings",
    "lobe_labels",
    "segment_lobes",
]

#: The lobes, named as TotalSegmentator names them.
LOBE_NAMES: tuple[str, ...] = (
    "lung_upper_lobe_left",
    "lung_lower_lobe_left",
    "lung_upper_lobe_right",
    "lung_middle_lobe_right",
    "lung_lower_lobe_right",
)
#: Code of each lobe in a lobe label volume (TotalSegmentator's id minus 9; 0 = no lung).
LOBE_CODES: Mapping[str, int] = {name: code for code, name in enumerate(LOBE_NAMES, start=1)}
_LEFT: tuple[int, ...] = (1, 2)
_RIGHT: tuple[int, ...] = (3, 4, 5)
# Lung side of each code (index = code): 0 none, 1 left, 2 right.
_SIDE = np.array([0, 1, 1, 2, 2, 2], np.uint8)

# Share of a working voxel that must be vessel for the voxel to count as vessel.
_VESSEL_FRACTION = 0.25
# Gaussian scale (mm) of the local vessel fraction that pulls the oblique fissures.
_BAND_SIGMA_MM = 1.5


@dataclass(frozen=True, eq=False)
class Lobes:
    """The five lung lobes (a partition of each lung) and the fissures, on the CT grid.

    Every voxel of ``lung_left`` lies in exactly one of the two left lobes, every voxel of
    ``lung_right`` in exactly one of the three right lobes (the middle lobe is empty when
    it cannot be found; :attr:`notes` says so).

    Attributes
    ----------
    lung_upper_lobe_left, lung_lower_lobe_left, lung_upper_lobe_right,
    lung_middle_lobe_right, lung_lower_lobe_right : ndarray of bool, the CT's shape
        Lobe masks, named as TotalSegmentator names them.
    fissure_left_oblique, fissure_right_oblique, fissure_right_horizontal : ndarray of bool
        Fissure surfaces, one voxel thick: the voxels of the lower-side lobe (the lower
        lobe, or the middle lobe for the horizontal fissure) that touch the other side.
        Interpolated where the CT shows no fissure, so never broken.
    notes : tuple of str
        What the user should know: lobes that could not be found, fallbacks taken.
    seconds : float
        Wall time of :func:`segment_lobes`.
    """

    lung_upper_lobe_left: BoolArray
    lung_lower_lobe_left: BoolArray
    lung_upper_lobe_right: BoolArray
    lung_middle_lobe_right: BoolArray
    lung_lower_lobe_right: BoolArray
    fissure_left_oblique: BoolArray
    fissure_right_oblique: BoolArray
    fissure_right_horizontal: BoolArray
    notes: tuple[str, ...] = field(default=())
    seconds: float = 0.0

    @property
    def masks(self) -> dict[str, BoolArray]:
        """The five lobe masks by name (:data:`LOBE_NAMES`)."""
        return {name: getattr(self, name) for name in LOBE_NAMES}

    @property
    def fissures(self) -> dict[str, BoolArray]:
        """The three fissure masks by name (:data:`FISSURE_NAMES`)."""
        return {name: getattr(self, name) for name in FISSURE_NAMES}

    def labels(self) -> npt.NDArray[np.uint8]:
        """Lobe label volume: :data:`LOBE_CODES` per voxel, 0 outside the lungs."""
        return lobe_labels(self.masks)

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={int(np.count_nonzero(m))}" for name, m in self.masks.items())
        return f"Lobes(voxels: {counts}; {len(self.notes)} notes; {self.seconds:.2f} s)"


def lobe_labels(masks: Mapping[str, npt.ArrayLike | Volume]) -> npt.NDArray[np.uint8]:
    """A uint8 lobe label volume from lobe masks (arrays or Volumes of one shape).

    Codes are :data:`LOBE_CODES` (TotalSegmentator id minus 9); voxels in no lobe are 0.
    Lobes missing from ``masks`` are simply absent. This is the volume
    :func:`fissure_crossings` samples.

    Examples
    --------
    >>> m = np.array([[[True, False]]])
    >>> lobe_labels({"lung_middle_lobe_right": m}).ravel().tolist()
    [4, 0]
    """
    out: npt.NDArray[np.uint8] | None = None
    for name, mask in masks.items():
        if name not in LOBE_CODES:
            raise AnatomyError(
                f"{name!r} is not a lobe; lobe masks are named {', '.join(LOBE_NAMES)}."
            )
        array = np.asarray(mask.array if isinstance(mask, Volume) else mask, dtype=bool)
        if out is None:
            out = np.zeros(array.shape, np.uint8)
        elif array.shape != out.shape:
            raise AnatomyError(
                f"lobe mask {name!r} has shape {array.shape}, the others {out.shape}; "
                "pass masks of one CT grid."
            )
        out[array] = LOBE_CODES[name]
    if out is None:
        raise AnatomyError("no lobe masks given; pass the masks segment_lobes returned.")
    return out


def fissure_crossings(
    labels: Volume, points_lps_mm: npt.ArrayLike, max_gap_samples: int = 2
) -> npt.NDArray[np.int64]:
    """Number of fissures each sampled path crosses: lobe changes within one lung.

    Each point samples the nearest voxel of ``labels`` (0 outside the volume). Along
    a path, a sample in a lobe that differs from the previous in-lobe sample of the same
    lung counts one crossing, when at most ``max_gap_samples`` samples outside every lobe
    lie between them (an airway lumen or a bulla the lung mask leaves out). A path leaving
    one lung into the other, or leaving the lung for longer and coming back into another
    lobe, crosses pleura, not a fissure, and is not counted. Samples 1 mm apart are enough:
    a step can only jump over a lobe thinner than itself, which happens near the lines
    where three lobes meet.

    Cost: one gather and a few array passes over all samples: thousands of rays of a few
    hundred samples take milliseconds.

    Parameters
    ----------
    labels : Volume
        uint8 lobe codes (:func:`lobe_labels`, :meth:`Lobes.labels`) with the CT's affine.
    points_lps_mm : array_like, shape (..., S, 3)
        Sample points along each path, in order, LPS mm; any leading batch shape.
    max_gap_samples : int
        Longest run of outside-lung samples between two lobes still read as one fissure.

    Returns
    -------
    ndarray of int64, shape (...)
        Fissure crossings per path (a 0-d array for a single path: ``int(...)``).

    Examples
    --------
    >>> lab = Volume(np.array([0, 1, 1, 2, 2, 0, 3, 4], np.uint8).reshape(8, 1, 1), np.eye(4))
    >>> path = np.column_stack([np.arange(8.0), np.zeros(8), np.zeros(8)])
    >>> int(fissure_crossings(lab, path))
    2
    """
    points = np.asarray(points_lps_mm, dtype=np.float64)
    if points.ndim < 2 or points.shape[-1] != 3:
        raise AnatomyError(
            f"points_lps_mm must have shape (..., S, 3) (paths of S samples, LPS mm); "
            f"got {points.shape}."
        )
    if max_gap_samples < 0:
        raise AnatomyError(f"max_gap_samples must be >= 0; got {max_gap_samples}.")
    volume = np.asarray(labels.array)
    flat_points = points.reshape(-1, 3)
    ijk = np.rint(labels.lps_to_index(flat_points)).astype(np.intp)
    inside = np.all((ijk >= 0) & (ijk < np.array(volume.shape)), axis=1)
    sampled = np.zeros(len(flat_points), np.uint8)
    sampled[inside] = volume[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]]
    codes: npt.NDArray[np.uint8] = np.minimum(sampled, len(_SIDE) - 1).reshape(points.shape[:-1])
    n = points.shape[-2]
    position = np.broadcast_to(np.arange(n), codes.shape)
    in_lobe = codes > 0
    # index of the last in-lobe sample up to each position (-1 before the first)
    last = np.maximum.accumulate(np.where(in_lobe, position, -1), axis=-1)
    prev_index = np.concatenate([np.full((*codes.shape[:-1], 1), -1), last[..., :-1]], axis=-1)
    prev_code = np.take_along_axis(codes, np.maximum(prev_index, 0), axis=-1)
    prev_code = np.where(prev_index >= 0, prev_code, 0)
    side = _SIDE[codes]
    crossing = (
        in_lobe
        & (prev_code > 0)
        & (prev_code != codes)
        & (_SIDE[prev_code] == side)
        & (position - prev_index - 1 <= max_gap_samples)
    )
    return np.asarray(crossing.sum(axis=-1), dtype=np.int64)


# --------------------------------------------------------------------------- segmentation


def segment_lobes(
    ct: Volume,
    lung_left: BoolArray,
    lung_right: BoolArray,
    airways: BoolArray,
    graph: AirwayGraph | None,
    vessels: BoolArray | None = None,
) -> Lobes:
    """Split the lungs into their five lobes and find the three fissures.

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (as the anatomy pipeline holds it; the body crop or the
        whole CT).
    lung_left, lung_right : ndarray of bool, the CT's shape
        The lungs (:func:`seldinger.anatomy.lungs.segment_lungs`). Every voxel of each
        ends up in exactly one lobe of its side (a voxel in both counts as left).
    airways : ndarray of bool, the CT's shape
        Airway lumen: a lobe whose vessels the vessel mask misses is seeded in the lung
        beside its bronchi (:func:`~seldinger.anatomy.lobe_seeds.bronchus_seeds`).
    graph : AirwayGraph or None
        Airway centreline tree with the lobar bronchi labelled
        (:func:`seldinger.anatomy.airway_graph.airway_graph`); None when the CT shows no
        airways (an abdominal CT): each lung then goes whole to its lower lobe, with a
        note.
    vessels : ndarray of bool, optional
        Pulmonary vessels (:func:`seldinger.anatomy.vessels.segment_pulmonary_vessels`);
        segmented here when not given.

    Returns
    -------
    Lobes

    Raises
    ------
    AnatomyError
        The CT is not LPS-ordered, a mask has another shape, or both lungs are empty.
    """
    t0 = time.perf_counter()
    require_canonical(ct)
    masks_in = {"lung_left": lung_left, "lung_right": lung_right, "airways": airways}
    if vessels is not None:
        masks_in["vessels"] = vessels
    for name, mask in masks_in.items():
        if np.shape(mask) != ct.shape:
            raise AnatomyError(
                f"{name} mask shape {np.shape(mask)} differs from the CT's {ct.shape}; pass "
                "the masks segmented from this CT (same crop)."
            )
    left = np.asarray(lung_left, dtype=bool)
    right = np.asarray(lung_right, dtype=bool) & ~left
    lungs = left | right
    if not lungs.any():
        raise AnatomyError(
            "both lung masks are empty: there is nothing to split into lobes. Segment the "
            "lungs first (seldinger.anatomy.segment(ct, ['lung_left', 'lung_right']))."
        )
    notes: list[str] = []
    centrelines = lobar_centrelines(graph)
    split = _lobes_to_find(centrelines, bool(left.any()), bool(right.any()), graph, notes)
    box = bounding_slices(lungs, pad=1)
    labels = np.zeros(ct.shape, np.uint8)
    crop = labels[box]
    for side, lung in ((_LEFT, left), (_RIGHT, right)):
        if len(split[side]) == 1:
            crop[lung[box]] = split[side][0]
    if any(len(codes) > 1 for codes in split.values()):
        if vessels is None:
            from seldinger.anatomy.vessels import segment_pulmonary_vessels

            vessels = segment_pulmonary_vessels(ct, lungs).mask
        grid = WorkGrid.around(lungs, ct)
        heights = _fissure_heights(
            ct, grid, (left, right, airways, vessels), centrelines, split, notes
        )
        for side, lung in ((_LEFT, left), (_RIGHT, right)):
            if len(split[side]) > 1:
                _label_from_heights(labels, lung, split[side], heights, grid)
    for side, lung in ((_LEFT, left), (_RIGHT, right)):
        for code in split[side] if lung.any() else ():
            if not (crop == code).any():
                notes.append(f"lobes: {LOBE_NAMES[code - 1]} came out empty (no lung reached it)")
    fissures = {name: np.zeros(ct.shape, bool) for name in FISSURE_NAMES}
    for name, mask in fissure_masks(crop).items():
        fissures[name][box] = mask
    return Lobes(
        **{name: np.asarray(labels == code) for name, code in LOBE_CODES.items()},
        **fissures,
        notes=tuple(notes),
        seconds=time.perf_counter() - t0,
    )


def _lobes_to_find(
    centrelines: Mapping[int, npt.NDArray[np.float64]],
    has_left: bool,
    has_right: bool,
    graph: AirwayGraph | None,
    notes: list[str],
) -> dict[tuple[int, ...], tuple[int, ...]]:
    """The lobe codes each lung is split into, with a note for every lobe left out."""
    why = (
        "the CT shows no airway tree (no trachea: an abdominal CT?)"
        if graph is None
        else "the airway tree has no {bronchus} (check the airway segmentation)"
    )
    out: dict[tuple[int, ...], tuple[int, ...]] = {}
    for side, present, name in ((_LEFT, has_left, "left"), (_RIGHT, has_right, "right")):
        upper, lower = side[0], side[-1]
        missing = [c for c in (upper, lower) if c not in centrelines]
        if not present:
            out[side] = (lower,)
        elif missing:
            reason = why.format(bronchus=" or ".join(LOBAR_BRONCHI[c] for c in missing))
            notes.append(
                f"lobes: the {name} lung is not split into lobes because {reason}; it is all "
                f"given to {LOBE_NAMES[lower - 1]}, the lobe that forms the lung base"
            )
            out[side] = (lower,)
        elif name == "right" and 4 not in centrelines:
            notes.append(
                "lobes: lung_middle_lobe_right not found because "
                + why.format(bronchus=LOBAR_BRONCHI[4])
                + "; the right lung is split into upper and lower lobes only"
            )
            out[side] = (upper, lower)
        else:
            out[side] = side
    return out


def _fissure_heights(
    ct: Volume,
    grid: WorkGrid,
    masks: tuple[BoolArray, BoolArray, BoolArray, BoolArray],
    centrelines: Mapping[int, npt.NDArray[np.float64]],
    split: Mapping[tuple[int, ...], tuple[int, ...]],
    notes: list[str],
) -> dict[int, npt.NDArray[np.float32]]:
    """Fissure heights (working slices) per working column, keyed by the lower-side code.

    ``masks`` are the left lung, right lung, airways and vessels on the CT grid. Key 2:
    left oblique, 5: right oblique, 4: horizontal (heights above the right oblique).
    """
    left, right, airways, vessels = masks
    side_masks: dict[tuple[int, ...], BoolArray] = {_LEFT: grid.mask(left)}
    side_masks[_RIGHT] = grid.mask(right) & ~side_masks[_LEFT]
    vessel = grid.mask(vessels, _VESSEL_FRACTION)
    wanted = [c for codes in split.values() if len(codes) > 1 for c in codes]
    seeds = {c: grid.index_of_lps(ct, centrelines[c]) for c in wanted}
    atoms, depth_mm = vessel_atoms(
        vessel,
        side_masks[_LEFT] | side_masks[_RIGHT],
        np.concatenate([seeds[c] for c in wanted]),
        [c for c in wanted for _ in range(len(seeds[c]))],
        grid.spacing_mm,
    )
    if depth_mm > ATOM_EROSION_MM[0]:
        notes.append(
            f"lobes: the vessel trees of two lobes stay joined {ATOM_EROSION_MM[0]:.0f} mm under "
            f"the hilum; they were cut {depth_mm:.0f} mm deep"
        )
    lung_w = side_masks[_LEFT] | side_masks[_RIGHT]
    for c in wanted:
        if not (atoms == c).any():
            airway_w = grid.mask(airways, _VESSEL_FRACTION)
            atoms[bronchus_seeds(airway_w, lung_w, seeds[c], grid.spacing_mm) & (atoms == 0)] = c
            notes.append(
                f"lobes: {LOBE_NAMES[c - 1]} has no vessel of its own in the vessel mask; it "
                "grows from its bronchi alone and its fissures are less certain"
            )
    elevation = vessel_distance_mm(vessel, grid.spacing_mm)
    band = ndi.gaussian_filter(
        vessel.astype(np.float32), [_BAND_SIGMA_MM / s for s in grid.spacing_mm], truncate=2.5
    )
    above_of = np.arange(grid.shape[2], dtype=np.float32)[None, None, :]
    heights: dict[int, npt.NDArray[np.float32]] = {}
    for side, mask in side_masks.items():
        codes = split[side]
        if len(codes) < 2:
            continue
        lobe = territories(atoms, elevation, mask, codes)
        lower = codes[-1]
        heights[lower] = height_field(
            lobe == lower, mask & (lobe != lower), mask, OBLIQUE_PENALTIES, band
        )
        if len(codes) == 3:
            rest = mask & (above_of >= heights[lower][:, :, None])
            heights[4] = height_field(
                rest & (lobe == 4), rest & (lobe == codes[0]), rest, HORIZONTAL_PENALTIES
            )
    return heights


def _label_from_heights(
    labels: npt.NDArray[np.uint8],
    lung: BoolArray,
    codes: tuple[int, ...],
    heights: Mapping[int, npt.NDArray[np.float32]],
    grid: WorkGrid,
) -> None:
    """Write the lobe codes of one lung's voxels into ``labels`` (CT grid) from the heights."""
    box = grid.box
    sub = labels[box]
    mask = lung[box]
    n0, n1, n2 = mask.shape
    half = (grid.step - 1) / 2.0
    # CT column c lies at working column (c - half) / step; CT slice k at working k * up
    columns = np.meshgrid(
        (np.arange(n0) - half) / grid.step, (np.arange(n1) - half) / grid.step, indexing="ij"
    )
    k_working = np.arange(n2, dtype=np.float32)[None, None, :] * grid.up

    def below(code: int) -> BoolArray:
        h = ndi.map_coordinates(heights[code], columns, order=1, mode="nearest")
        return np.asarray(k_working < h[:, :, None].astype(np.float32))

    lower = codes[-1]
    under_oblique = below(lower)
    sub[mask & under_oblique] = lower
    if len(codes) == 3:
        under_horizontal = below(4)
        sub[mask & ~under_oblique & under_horizontal] = 4
        sub[mask & ~under_oblique & ~under_horizontal] = codes[0]
    else:
        sub[mask & ~under_oblique] = codes[0]
