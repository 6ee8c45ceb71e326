"""The lesion's outline in a box of CT: the tissue model, its rays, the hull, the refinements.

Steps 3-5 of :func:`seldinger.anatomy.lesion.segment_lesion` (see its module docstring):
label the box with the lung model, or the soft-tissue model when too few rays from the
core end in aerated lung (:mod:`.lesion_regions`); cast rays from the core and from each
include point and keep the edges that join without a jump (:mod:`.lesion_rays`); take
the lesion-like voxels inside the convex hull of those edges, connected to the core;
split off the tissue of the exclude points; cut vessels off by an opening; fill holes.

Conventions (``docs/conventions.md``): arrays are crops of the CT in its own index order;
"box mm" are millimetres along the array axes from the box's first voxel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from seldinger.anatomy.errors import LesionError
from seldinger.anatomy.lesion_inputs import WorkBox
from seldinger.anatomy.lesion_rays import (
    EXIT_AIR,
    EXIT_CUT,
    EXIT_DENSE,
    EXIT_LOW,
    EXIT_OPEN,
    EXIT_OUTSIDE,
    Rays,
    cast_rays,
    continuous_edges,
    fibonacci_directions,
    inside_hull,
)
from seldinger.anatomy.lesion_regions import (
    SEED_BALL_MM,
    ball,
    bounding_box,
    component_at,
    distance_mm,
    inscribed_ball,
    lung_labels,
    nearest_component,
    nearest_voxel,
    separate,
    soft_tissue_labels,
    surroundings,
)

__all__ = [
    "EXCLUDE_MARKER_MM",
    "MIN_CONTRAST_HU",
    "MIN_LUNG_BORDER_FRACTION",
    "OPENING_FRACTION",
    "OPENING_MM_RANGE",
    "LesionModel",
    "Outline",
    "lesion_model",
    "outline",
    "soft_tissue_model",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
Index = tuple[int, int, int]

#: A lung lesion has at least this fraction of the rays from its core ending in aerated
#: lung (a mass on the diaphragm: about half); a liver lesion has none.
MIN_LUNG_BORDER_FRACTION = 0.25
#: The opening radius is this fraction of the lesion's inscribed radius, within
#: :data:`OPENING_MM_RANGE`: large enough to cut vessels (1-3 mm radius) off a nodule,
#: small enough to keep its lobulations.
OPENING_FRACTION = 0.35
OPENING_MM_RANGE = (1.0, 5.0)
#: Radius (mm) of the marker ball around an exclude point in the watershed.
EXCLUDE_MARKER_MM = 2.0
#: The HU difference between lesion and surroundings below which no edge can be found.
MIN_CONTRAST_HU = 15.0

#: Ray directions: 1500, about 5° apart.
_DIRECTIONS = fibonacci_directions(1500)
#: The stops that count as the lesion's own edge: for a lung lesion aerated lung (and the
#: user's cuts), for a soft-tissue lesion any edge.
_VALID_LUNG = (EXIT_AIR, EXIT_CUT)
_VALID_SOFT = (EXIT_AIR, EXIT_LOW, EXIT_DENSE, EXIT_OUTSIDE, EXIT_CUT)


@dataclass
class LesionModel:
    """The labelled box and the rays cast through it (see :mod:`.lesion_regions`).

    ``rays`` and ``accepted`` are those from the core; ``edges_mm`` the accepted edge
    points from the core and from each include point (box mm).
    """

    tissue: str
    why: npt.NDArray[np.int8]
    rays: Rays
    accepted: BoolArray
    edges_mm: FloatArray
    smooth_hu: npt.NDArray[np.float32]
    lesion_hu: float
    background_hu: float = float("nan")

    @property
    def open_fraction(self) -> float:
        """Fraction of the rays that found no edge (nor the box's border) in the search."""
        return self.rays.fraction(EXIT_OPEN)

    @property
    def reach_mm(self) -> float:
        """Distance of the farthest accepted edge from the core's centre."""
        return float(self.rays.radius_mm[self.accepted].max()) if self.accepted.any() else 0.0


@dataclass
class Outline:
    """The lesion found in the box (``region``) and the model that found it."""

    region: BoolArray
    model: LesionModel


def lesion_model(
    work: WorkBox, centre: Index, lesion_hu: float, core_mm: float = 0.0
) -> LesionModel:
    """The lung model if enough rays from the core end in aerated lung, else soft tissue.

    ``core_mm`` is the radius of the lesion's core about ``centre``: the soft-tissue
    model's first region holds it, so that the surroundings are sampled outside the core
    even when the lesion's texture leaves the band of its value patchy.
    """
    centre_mm = np.asarray(centre, dtype=np.float64) * np.asarray(work.spacing)
    aerated = work.aerated
    if np.count_nonzero(aerated) >= 100:
        lung_hu = float(np.median(work.hu[aerated]))
        why, threshold_hu = lung_labels(
            work.smooth_lung, aerated, work.outside, work.cut, lesion_hu, lung_hu, work.spacing
        )
        if work.bones is not None:
            why[work.bones & (why == 0)] = EXIT_DENSE
        rays = cast_rays(why, centre_mm, work.spacing, work.half_mm, _DIRECTIONS)
        air = rays.fraction(EXIT_AIR)
        logger.debug(
            "lung model: threshold %.0f HU, %.0f %% of rays end in air", threshold_hu, 100 * air
        )
        if air >= MIN_LUNG_BORDER_FRACTION:
            accepted, edges_mm = _edges(work, why, rays, _VALID_LUNG)
            return LesionModel("lung", why, rays, accepted, edges_mm, work.smooth_lung, lesion_hu)
    smooth_hu = work.smooth_soft
    allowed = ~work.outside & ~work.cut
    lesion_hu = float(np.median(smooth_hu[ball(work.shape, centre, SEED_BALL_MM, work.spacing)]))
    nearby = smooth_hu[ball(work.shape, centre, 2 * SEED_BALL_MM, work.spacing)]
    spread_hu = 1.4826 * float(np.median(np.abs(nearby - np.median(nearby))))
    tight = np.abs(smooth_hu - lesion_hu) <= max(2.5 * spread_hu, 0.5 * MIN_CONTRAST_HU)
    region = nearest_component(tight & allowed, centre, work.spacing)
    if core_mm > 0:
        region |= ball(work.shape, centre, core_mm, work.spacing) & allowed
    return soft_tissue_model(work, centre, region, lesion_hu)


def soft_tissue_model(
    work: WorkBox, centre: Index, region: BoolArray, lesion_hu: float
) -> LesionModel:
    """The halfway band between the lesion and the shell around ``region``, and its rays."""
    smooth_hu = work.smooth_soft
    if not region.any():
        region = np.zeros(work.shape, dtype=bool)
        region[centre] = True
    # Beyond the blur of the smoothing and one voxel of partial volume: the shell then
    # samples the surroundings, not the lesion's ramp.
    gap_mm = 4.0 + max(work.spacing)
    allowed = ~work.outside & ~work.cut
    around = surroundings(smooth_hu, region, allowed, gap_mm, 4.0, work.spacing, lesion_hu)
    background_hu, other_side_hu = (lesion_hu, None) if around is None else around
    logger.debug(
        "soft tissue: lesion %.0f HU, surroundings %.0f HU (other side %s)",
        lesion_hu,
        background_hu,
        "none" if other_side_hu is None else f"{other_side_hu:.0f} HU",
    )
    if abs(background_hu - lesion_hu) < MIN_CONTRAST_HU:
        raise LesionError(
            f"the lesion ({lesion_hu:.0f} HU at the seed) has no contrast with its "
            f"surroundings ({background_hu:.0f} HU; less than {MIN_CONTRAST_HU:.0f} HU "
            "apart), so its edge cannot be found. Check that the seed is inside the "
            "lesion, or use a contrast-enhanced phase in which the lesion shows."
        )
    why = soft_tissue_labels(
        smooth_hu, work.outside, work.cut, lesion_hu, background_hu, other_side_hu
    )
    if work.bones is not None:
        why[work.bones & (why == 0)] = EXIT_DENSE
    centre_mm = np.asarray(centre, dtype=np.float64) * np.asarray(work.spacing)
    rays = cast_rays(why, centre_mm, work.spacing, work.half_mm, _DIRECTIONS)
    accepted, edges_mm = _edges(work, why, rays, _VALID_SOFT)
    return LesionModel(
        "soft_tissue", why, rays, accepted, edges_mm, smooth_hu, lesion_hu, background_hu
    )


def _edges(
    work: WorkBox, why: npt.NDArray[np.int8], rays: Rays, valid: tuple[int, ...]
) -> tuple[BoolArray, FloatArray]:
    """The core's accepted rays, and the accepted edges seen from the core and includes."""
    accepted = continuous_edges(rays, np.isin(rays.code, valid))
    edges = [rays.points_mm(accepted)]
    for point in work.refinement.include_lps_mm:
        origin_mm = work.lps_to_mm(point)
        more = cast_rays(why, origin_mm, work.spacing, work.half_mm, _DIRECTIONS)
        edges.append(more.points_mm(continuous_edges(more, np.isin(more.code, valid))))
        edges.append(origin_mm[None])
    return accepted, np.concatenate(edges)


def outline(work: WorkBox, model: LesionModel, centre: Index, core_mm: float) -> Outline:
    """The lesion-like voxels inside the hull; a soft-tissue model re-estimated once."""
    region = _without_excluded(work, _hull_region(work, model, centre), centre, core_mm)
    if model.tissue == "soft_tissue" and region.any():
        lesion_hu = float(np.median(model.smooth_hu[region]))
        try:
            again = soft_tissue_model(work, centre, region, lesion_hu)
        except LesionError:
            # Around this first outline the tissue reads as the lesion (it took in a
            # neighbour of the lesion's density): the first estimate stands.
            logger.debug("soft tissue: no contrast around the first outline; kept")
        else:
            model = again
            region = _without_excluded(work, _hull_region(work, model, centre), centre, core_mm)
    if region.any():
        box = bounding_box(region, pad=2)
        sub = region[box]
        lo = np.array([s.start for s in box])
        local = tuple(int(v) for v in np.asarray(centre) - lo)
        keep = [
            tuple(int(v) for v in np.rint(work.lps_to_mm(p) / np.asarray(work.spacing)) - lo)
            for p in work.refinement.include_lps_mm
        ]
        keep = [k for k in keep if all(0 <= v < n for v, n in zip(k, sub.shape, strict=True))]
        if all(0 <= v < n for v, n in zip(local, sub.shape, strict=True)) and sub[local]:
            core, radius_mm = inscribed_ball(distance_mm(sub, work.spacing), local, work.spacing)
            sub = separate(
                sub, core, radius_mm, work.spacing, OPENING_FRACTION, OPENING_MM_RANGE, keep
            )
        region = np.zeros_like(region)
        region[box] = ndi.binary_fill_holes(sub)
    return Outline(region, model)


def _hull_region(work: WorkBox, model: LesionModel, centre: Index) -> BoolArray:
    """Lesion-like voxels inside the hull of the accepted edges, connected to the core."""
    includes = [work.lps_to_mm(p) for p in work.refinement.include_lps_mm]
    points = model.edges_mm
    region = np.zeros(work.shape, dtype=bool)
    if len(points) < 4:
        return region
    spacing = np.asarray(work.spacing)
    lo = np.clip(np.floor(points.min(axis=0) / spacing).astype(int) - 1, 0, None)
    hi = np.minimum(np.ceil(points.max(axis=0) / spacing).astype(int) + 2, work.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    candidates = np.argwhere(model.why[box] == 0)
    inside = inside_hull(points, (candidates + lo) * spacing)
    if inside is None:
        return region
    kept = candidates[inside]
    sub = np.zeros(tuple(int(b - a) for a, b in zip(lo, hi, strict=True)), dtype=bool)
    sub[kept[:, 0], kept[:, 1], kept[:, 2]] = True
    seeds = [
        nearest_voxel(
            sub, np.clip(np.rint(p / spacing) - lo, 0, np.asarray(sub.shape) - 1), spacing
        )
        for p in [np.asarray(centre) * spacing, *includes]
    ]
    region[box] = component_at(sub, *[s for s in seeds if s is not None])
    return region


def _without_excluded(work: WorkBox, region: BoolArray, centre: Index, core_mm: float) -> BoolArray:
    """The region less the tissue of the exclude points, split off at the narrowest joint.

    A watershed of the region's distance map (Euclidean, mm) from two sets of markers:
    the core's ball and the include points (the lesion), balls around the exclude points
    (the rest). The two meet at the neck between the lesion and the excluded tissue, or
    halfway along the distance map where there is none.
    """
    if not len(work.refinement.exclude_lps_mm) or not region.any():
        return region
    spacing = np.asarray(work.spacing)
    shape = np.asarray(work.shape)
    excluded = []
    for point in work.refinement.exclude_lps_mm:
        index = np.rint(work.lps_to_mm(point) / spacing).astype(int)
        if np.all(index >= 0) and np.all(index < shape):
            at = nearest_voxel(region, index, spacing)
            if at is not None:
                excluded.append(at)
    if not excluded:
        return region
    box = bounding_box(region, pad=1)
    sub = region[box]
    lo = np.array([s.start for s in box])
    markers = np.zeros(sub.shape, dtype=np.int32)
    keep = [np.asarray(centre) - lo] + [
        np.rint(work.lps_to_mm(p) / spacing).astype(int) - lo
        for p in work.refinement.include_lps_mm
    ]
    for index in keep:
        if np.all(index >= 0) and np.all(index < sub.shape):
            near = nearest_voxel(sub, index, spacing)
            if near is not None:
                markers[ball(sub.shape, near, min(core_mm, SEED_BALL_MM), work.spacing) & sub] = 1
    for at in excluded:
        local = (at[0] - lo[0], at[1] - lo[1], at[2] - lo[2])
        markers[ball(sub.shape, local, EXCLUDE_MARKER_MM, work.spacing) & sub] = 2
    labels = watershed(-distance_mm(sub, work.spacing), markers, mask=sub)
    kept = np.zeros_like(region)
    kept[box] = labels == 1
    return kept
