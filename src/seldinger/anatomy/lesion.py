"""Lesions: a lung nodule or mass, or a soft-tissue (e.g. liver) lesion, from one seed point.

The method is classical and local, for solid lesions up to :data:`DEFAULT_MAX_DIAMETER_MM`
(10 cm) across, in whatever orientation the CT is stored (spacing and affine are used,
never assumed), on anisotropic grids (distances in millimetres). The full account, with
the accuracy measured, is ``docs/anatomy_lesion.md``.

1. **Seed checks.** The seed must lie in the image, inside the body (``body``, or: not in
   air connected to the border of its axial slice), not in air or aerated lung (a seed on
   a lesion's edge moves to the nearest soft tissue within 3 mm), not in bone (``bones``,
   or denser than 300 HU) nor contrast-filled blood.
2. **Core.** The voxels near the seed's value (a band of HU on a smoothed CT) give the
   lesion's core: their largest inscribed ball near the seed. Rays start at its centre;
   its radius sets the first search radius, grown while the outline reaches it, up to
   ``max_diameter_mm`` minus the core's radius (no fixed cap).
3. **Model** (:mod:`.lesion_regions`, :mod:`.lesion_outline`). Lesion-like voxels: the
   lung model (above 30 % of the way from parenchyma to lesion, below contrast-filled
   blood, not fat) when at least a quarter of the rays from the core end in aerated lung;
   else the soft-tissue model (the halfway band against the surroundings, re-estimated).
4. **Outline** (:mod:`.lesion_rays`). Rays from the core stop at the first voxel that is
   not lesion-like. The lesion's own edges are those joined to the nearest edge without a
   jump over the sphere of directions (aerated lung for a lung lesion, any edge for a
   soft-tissue one, the user's box); a ray that meets no edge (a contact with the
   mediastinum, chest wall, diaphragm) or jumps far out (a leak: the region would grow
   suddenly through it) is bridged by the convex hull of the accepted edges. The lesion
   is the lesion-like voxels inside that hull, connected to the core.
5. **Refinement and clean-up.** Include points add rays and edges of their own; the
   tissue of exclude points is split off at its narrowest joint (a watershed); an opening
   of 35 % of the lesion's inscribed radius (1-5 mm) cuts vessels off; holes are filled.
6. **Checks and confidence** (:mod:`.lesion_quality`). An outline with edges in fewer than
   :data:`MIN_EDGE_RAYS_FRACTION` of the directions has no boundary; one much longer than
   wide and elongated along one axis is a piece of vessel; one larger than
   ``max_diameter_mm`` has leaked: each raises :class:`LesionError` naming the refinement
   that helps. The HU step across the outline is returned as the confidence figure.

Conventions (``docs/conventions.md``): positions are LPS mm, arrays are indexed
``(i, j, k)``. RECIST diameters are measured in the axial plane, i.e. in slices of the
array axis within 1° of the patient's z axis; oblique grids raise :class:`LesionError`
(resample them onto an axial grid first).

References
----------
.. [1] Kostis WJ, Reeves AP, Yankelevitz DF, Henschke CI. Three-dimensional segmentation
   and growth-rate estimation of small pulmonary nodules in helical CT images. IEEE Trans
   Med Imaging 22(10):1259-1274, 2003 (threshold, opening adapted to nodule size).
.. [2] Kuhnigk JM et al. Morphological segmentation and partial volume analysis for
   volumetry of solid pulmonary lesions in thoracic CT scans. IEEE Trans Med Imaging
   25(4):417-434, 2006 (large lesions interconnected with the chest wall and vessels).
.. [3] Pu J et al. Adaptive border marching algorithm: automatic lung segmentation on chest
   CT images. Comput Med Imaging Graph 32(6), 2008, doi:10.1016/j.compmedimag.2008.04.005
   (closing a lesion's contact with the pleura geometrically, not by density).
.. [4] Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
   RECIST guideline (version 1.1). Eur J Cancer 45:228-247, 2009 (a lesion's longest
   diameter in the plane of measurement, axial for CT).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.errors import LesionError
from seldinger.anatomy.lesion_inputs import (
    SOFT_TISSUE_HU,
    OutsideAir,
    Refinement,
    WorkBox,
    checked_seed,
)
from seldinger.anatomy.lesion_outline import (
    MIN_CONTRAST_HU,
    Outline,
    lesion_model,
    outline,
)
from seldinger.anatomy.lesion_quality import CLEAR_EDGE_HU, boundary_contrast, looks_like_tube
from seldinger.anatomy.lesion_regions import (
    SEED_BALL_MM,
    SEED_SEARCH_MM,
    ball,
    bounding_box,
    distance_mm,
    inscribed_ball,
    nearest_component,
)
from seldinger.anatomy.measure import axial_axis, lesion_measurements
from seldinger.imaging import Volume

__all__ = [
    "CLEAR_EDGE_WARNING",
    "DEFAULT_MAX_DIAMETER_MM",
    "Lesion",
    "LesionError",
    "axial_axis",
    "lesion_measurements",
    "segment_lesion",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
Index = tuple[int, int, int]

#: The largest lesion accepted by default (mm, longest 3-D diameter): the largest masses a
#: percutaneous procedure is planned on. Larger ones need ``max_diameter_mm``.
DEFAULT_MAX_DIAMETER_MM = 100.0
#: An outline with a clear edge on less than this share of it gets a warning
#: (:meth:`Lesion.warnings`).
CLEAR_EDGE_WARNING = 0.6
#: The core is the voxels within this many robust sigmas of the seed's tissue value
#: (smoothed CT), and at least MIN_CORE_BAND_HU: lesions are textured (±10-20 HU) beyond
#: the noise. The value and sigma come from the solid voxels within CORE_NEIGHBOURHOOD_MM.
CORE_BAND_SIGMAS = 2.5
MIN_CORE_BAND_HU = 15.0
CORE_NEIGHBOURHOOD_MM = 5.0
#: In-plane grid (mm) on which the core is found.
CORE_GRID_MM = 1.4
#: The lesion's value is the median of the core's inner ball of this fraction of its radius.
CORE_VALUE_FRACTION = 0.6
#: The core is looked for in a box of this half-size (mm) around the seed, grown while the
#: core's ball reaches it.
PROBE_MM = 30.0
#: The first search box: this many core radii around the core (lobulated masses reach
#: about 2.1), at least MIN_SEARCH_MM ...
SEARCH_FACTOR = 2.8
MIN_SEARCH_MM = 35.0
#: ... grown by GROWTH_FACTOR while an accepted edge lies beyond ENLARGE_FRACTION of it,
#: or more than MAX_OPEN_FRACTION of the rays find no edge in it.
ENLARGE_FRACTION = 0.8
MAX_OPEN_FRACTION = 0.5
GROWTH_FACTOR = 1.6
#: A click below this reads as aerated lung (a seed there moves to the nearest tissue).
AERATED_HU = -500.0
#: An outline needs edges of its own in at least this fraction of the directions; below,
#: there is no boundary (a click in an organ or a large vessel).
MIN_EDGE_RAYS_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Lesion:
    """A segmented lesion, its measurements and how clear its outline is.

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
        The model used: a lesion bordered by aerated lung, or one in soft tissue.
    boundary_contrast_hu : float
        Median HU step across the outline (smoothed CT, 2.5 mm inside vs outside): about
        900 for a nodule in aerated lung, the lesion's contrast for a liver lesion.
    edge_fraction : float
        Fraction of the outline with a clear edge (step ≥ 30 HU); the rest is where the
        lesion lies against tissue of its own density and the outline is the method's
        closure. Print it with the result: 1.0 is an outline seen all round.
    """

    mask: Volume
    seed_lps_mm: tuple[float, float, float]
    volume_ml: float
    centroid_lps_mm: tuple[float, float, float]
    recist_diameter_mm: float
    max_diameter_mm: float
    tissue: str
    boundary_contrast_hu: float = float("nan")
    edge_fraction: float = float("nan")

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
            "boundary_contrast_hu": self.boundary_contrast_hu,
            "edge_fraction": self.edge_fraction,
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        """What the user should check before planning on this outline (empty: nothing).

        An outline with a clear edge on less than :data:`CLEAR_EDGE_WARNING` of it lies
        mostly against tissue of the lesion's own density: a neighbour of that density (the
        liver's own parenchyma, bowel, the chest wall) may be inside it. A tester's liver
        lesion by the bowel grew to 15 mL, 53 mm across, with 18 % of its edge clear (the
        lesion: 4.4 mL, 20 mm); clean outlines showed 95-100 %.
        """
        if not self.edge_fraction < CLEAR_EDGE_WARNING:  # NaN: not measured
            return []
        return [
            f"only {100 * self.edge_fraction:.0f} % of the outline is a clear edge: the rest "
            "lies against tissue of the lesion's own density, which may be inside it (a "
            f"{self.max_diameter_mm:.0f} mm outline). Look at it (--figure) before planning; "
            "refine with --box-lps-mm or --exclude-lps-mm."
        ]

    def confidence(self) -> str:
        """One line for the user: how clear the outline is, e.g. for the CLI."""
        return (
            f"boundary contrast {self.boundary_contrast_hu:.0f} HU (median step across the "
            f"outline); clear edge on {100 * self.edge_fraction:.0f} % of it"
        )


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
    bones: npt.NDArray[Any] | None = None,
    max_diameter_mm: float = DEFAULT_MAX_DIAMETER_MM,
    include_lps_mm: npt.ArrayLike = (),
    exclude_lps_mm: npt.ArrayLike = (),
    box_lps_mm: npt.ArrayLike | None = None,
    max_radius_mm: float | None = None,
) -> Lesion:
    """Segment the lung nodule or mass, or soft-tissue lesion, that contains a seed point.

    See the module docstring for the method and ``docs/anatomy_lesion.md`` for its
    accuracy.

    Parameters
    ----------
    ct : Volume
        CT in HU, any orientation with an axial axis (see :func:`axial_axis`).
    seed_lps_mm : array_like, shape (3,)
        A point inside the lesion, LPS mm (any point a few millimetres inside works).
    lungs : ndarray of bool, the CT's shape, optional
        Lung mask. When given, aerated lung is taken inside it only.
    body : ndarray of bool, the CT's shape, optional
        Body mask. When given the lesion stays inside it (else: air connected to the
        border of each axial slice is outside).
    bones : ndarray of bool, the CT's shape, optional
        Bone mask. When given, a seed in it is refused and the lesion stops at it (else
        bone is told by density: cortex, and marrow denser than the lesion).
    max_diameter_mm : float
        The largest lesion accepted (longest 3-D diameter, mm); it also bounds the search
        around the seed. Raise it for a larger lesion.
    include_lps_mm : array_like, shape (3,) or (n, 3)
        Points on the lesion that the outline must contain (a lobe cut off, a part that
        bulges into the mediastinum): rays are cast from each too, and the hull spans
        their edges and the points.
    exclude_lps_mm : array_like, shape (3,) or (n, 3)
        Points in tissue joined to the lesion that is not the lesion (a neighbouring
        lesion, the organ it leaked into): that tissue is split off at the narrowest
        joint (a watershed of the distance map between the core and these points).
    box_lps_mm : array_like, shape (6,), optional
        ``(x0, y0, z0, x1, y1, z1)``: two opposite corners, in any order, of a box in LPS
        mm that holds the lesion; it is cut at the box's faces.
    max_radius_mm : float, optional
        Round-1 name: the same as ``max_diameter_mm = 2 * max_radius_mm``.

    Returns
    -------
    Lesion
        The mask on the CT's grid, its measurements (:func:`lesion_measurements`) and the
        boundary contrast (the confidence figure to print with it).

    Raises
    ------
    LesionError
        If the seed is outside the image or the body, in air or aerated lung, in bone or
        contrast-filled blood, or in a vessel; if the lesion has no contrast with its
        surroundings or no boundary, or is larger than ``max_diameter_mm``; if a
        refinement is invalid (a flat box, a box without the seed, an exclude point at
        the seed, a point outside the image), a mask has the wrong shape or the grid is
        oblique. Each message names the refinement that helps.

    Notes
    -----
    Made for solid lesions. A lung lesion's outline follows the readers' convention of the
    outer partial-volume rim; ground-glass components fainter than about -580 HU are left
    out. Where a lesion lies against tissue of its own density, the outline is the flat
    face spanning the rim of its free surface: a lesion that bulges into the mediastinum
    or wraps around a structure loses that part (add include points). Without ``body``,
    lung that touches the image border counts as outside air: pass ``body`` then.

    On LIDC-IDRI-0001 (512 × 512 × 133) a 2.5 cm nodule takes about 0.4 s of CPU, a 7 cm
    mass about 1.5 s, a 10 cm mass about 3 s (``docs/anatomy_lesion.md``).
    """
    if max_radius_mm is not None:
        if not np.isfinite(max_radius_mm) or max_radius_mm <= 0:
            raise LesionError(
                f"max_radius_mm must be a positive number of mm; got {max_radius_mm!r}."
            )
        max_diameter_mm = 2.0 * float(max_radius_mm)
    refinement = Refinement.from_arguments(
        ct,
        seed_lps_mm,
        max_diameter_mm=max_diameter_mm,
        include_lps_mm=include_lps_mm,
        exclude_lps_mm=exclude_lps_mm,
        box_lps_mm=box_lps_mm,
    )
    axial_axis(ct.affine)  # refuse an oblique grid before any work
    lungs_mask = _check_mask("lungs", lungs, ct.shape)
    body_mask = _check_mask("body", body, ct.shape)
    bones_mask = _check_mask("bones", bones, ct.shape)

    outside_air = OutsideAir(ct)

    def box(centre_index: Index, half_mm: float) -> WorkBox:
        return WorkBox(
            ct, centre_index, half_mm, lungs_mask, body_mask, bones_mask, refinement, outside_air
        )

    core_index, core_mm, lesion_hu = _find_core(box, refinement)
    # Every point of a lesion no wider than max_diameter_mm lies within max_diameter_mm
    # minus the core's radius of the core's centre (the core is inside the lesion).
    limit_mm = max(refinement.max_diameter_mm - core_mm, core_mm + SEED_SEARCH_MM)
    core_lps_mm = ct.index_to_lps(np.asarray(core_index, dtype=np.float64))
    include_mm = [float(np.linalg.norm(core_lps_mm - p)) for p in refinement.include_lps_mm]
    half_mm = min(
        limit_mm, max([MIN_SEARCH_MM, SEARCH_FACTOR * core_mm, *(d + 5.0 for d in include_mm)])
    )
    while True:
        work = box(core_index, half_mm)
        model = lesion_model(work, work.local(core_index), lesion_hu, core_mm)
        near_edge = model.reach_mm > ENLARGE_FRACTION * half_mm
        if not (near_edge or model.open_fraction > MAX_OPEN_FRACTION) or half_mm >= limit_mm:
            break
        half_mm = min(limit_mm, GROWTH_FACTOR * half_mm)
        logger.debug("edges reach %.0f mm: search box grown to %.0f mm", model.reach_mm, half_mm)
    found = outline(work, model, work.local(core_index), core_mm)
    return _finish(ct, work, found, refinement, capped=half_mm >= limit_mm)


# --- step 2: the core ----------------------------------------------------------------------


def _find_core(
    box: Callable[[Index, float], WorkBox], refinement: Refinement
) -> tuple[Index, float, float]:
    """Centre (CT index), radius (mm) and value (HU) of the lesion's core."""
    half_mm = min(PROBE_MM, refinement.max_diameter_mm)
    work = box(refinement.seed_index, half_mm)
    moved = work.global_index(checked_seed(work, work.local(refinement.seed_index)))
    seed_index = (int(moved[0]), int(moved[1]), int(moved[2]))
    while True:
        seed = work.local(seed_index)
        centre, radius_mm = _core_ball(work, seed)
        offset_mm = np.abs(np.subtract(centre, seed)) * np.asarray(work.spacing)
        room_mm = half_mm - float(offset_mm.max())
        if radius_mm < 0.8 * room_mm or half_mm >= refinement.max_diameter_mm:
            break
        # The ball reaches the box: a larger core; room for a ball half as large again.
        needed_mm = float(offset_mm.max()) + 1.5 * radius_mm / 0.8
        half_mm = min(refinement.max_diameter_mm, max(needed_mm, 1.5 * half_mm))
        work = box(seed_index, half_mm)
    # The lesion's value: the inner part of the core (a solid lesion's rim is darker).
    core = ball(
        work.shape, centre, max(CORE_VALUE_FRACTION * radius_mm, SEED_BALL_MM), work.spacing
    )
    core &= (work.smooth_lung >= SOFT_TISSUE_HU) & ~work.cut
    lesion_hu = float(np.median(work.smooth_lung[core])) if core.any() else float(work.hu[seed])
    index = work.global_index(centre)
    logger.debug("core: radius %.1f mm, %.0f HU", radius_mm, lesion_hu)
    return (int(index[0]), int(index[1]), int(index[2])), max(radius_mm, SEED_BALL_MM), lesion_hu


def _core_ball(work: WorkBox, seed: Index) -> tuple[Index, float]:
    """Largest inscribed ball, near the seed, of the voxels in the band of the seed's tissue.

    The tissue's value is the median of the solid voxels within
    :data:`CORE_NEIGHBOURHOOD_MM` of the seed; the band is :data:`CORE_BAND_SIGMAS`
    robust sigmas of them wide (a seed in a nodule's partial-volume rim sees a wide
    spread, so its band reaches the core), at least :data:`MIN_CORE_BAND_HU`. Fat and
    contrast-filled blood beside a mass fall outside it, so the core does not wander into
    the mediastinum. Found on a grid of about :data:`CORE_GRID_MM` in-plane (a quarter of
    the voxels of a 0.7 mm CT; the ball's radius is good to that).
    """
    step = tuple(max(1, int(CORE_GRID_MM // s)) for s in work.spacing)
    grid = tuple(slice(None, None, n) for n in step)
    spacing = (work.spacing[0] * step[0], work.spacing[1] * step[1], work.spacing[2] * step[2])
    smooth_hu = work.smooth_soft[grid]
    solid = work.smooth_lung[grid] >= SOFT_TISSUE_HU
    at = (seed[0] // step[0], seed[1] // step[1], seed[2] // step[2])
    near = ball(smooth_hu.shape, at, CORE_NEIGHBOURHOOD_MM, spacing)
    values = smooth_hu[near & solid]
    if values.size == 0:
        return seed, 0.0
    tissue_hu = float(np.median(values))
    spread_hu = 1.4826 * float(np.median(np.abs(values - tissue_hu)))
    band_hu = max(CORE_BAND_SIGMAS * spread_hu, MIN_CORE_BAND_HU)
    tight = (np.abs(smooth_hu - tissue_hu) <= band_hu) & ~work.outside[grid] & ~work.cut[grid]
    # Holes (necrosis, texture beyond the band, a bronchus) do not limit the core.
    region = ndi.binary_fill_holes(nearest_component(tight, at, spacing))
    if not region.any():
        return seed, 0.0
    centre, radius_mm = inscribed_ball(distance_mm(region, spacing), at, spacing)
    full = [min(c * n, size - 1) for c, n, size in zip(centre, step, work.shape, strict=True)]
    return (full[0], full[1], full[2]), radius_mm


# --- step 6: checks, measurements, confidence ---------------------------------------------


def _finish(
    ct: Volume, work: WorkBox, found: Outline, refinement: Refinement, *, capped: bool
) -> Lesion:
    seed = refinement.seed_lps_mm
    where = f"seed_lps_mm {np.round(seed, 1).tolist()}"
    fix = (
        "pass box_lps_mm around the lesion, exclude_lps_mm points where it spreads, or a "
        "larger max_diameter_mm"
    )
    edges = float(found.model.accepted.mean())
    if edges < MIN_EDGE_RAYS_FRACTION:
        allows = (
            f", as far as max_diameter_mm={refinement.max_diameter_mm:g} allows" if capped else ""
        )
        larger = "the lesion is larger, or " if capped else ""
        raise LesionError(
            f"no boundary around {where}: only {100 * edges:.0f} % of the directions from it meet "
            f"an edge within {work.half_mm:.0f} mm{allows} ({larger}the click is in an organ, "
            f"the heart or a large vessel, or in a lesion without a visible edge); {fix}."
        )
    if not found.region.any():
        raise LesionError(
            f"no lesion voxels at {where}: the tissue there does not stand out from its "
            "surroundings as a lesion does; click well inside the lesion, or pass include_lps_mm "
            "points on it."
        )
    for axis in range(3):
        for face, at_edge in zip((0, -1), work.at_image_edge[axis], strict=True):
            if at_edge and found.region.take(face, axis=axis).any() and not refinement.has_cuts:
                raise LesionError(
                    f"the region grown from {where} reaches the edge of the image: the lesion "
                    "is not fully scanned, or the region leaked into adjacent tissue of its "
                    "density (a click in normal liver, fat or bowel grows into the organ); "
                    "pass box_lps_mm around the lesion or exclude_lps_mm points where it leaks."
                )
    full = np.zeros(ct.shape, dtype=bool)
    full[work.slices] = found.region
    mask = ct.with_array(full)
    metrics = lesion_measurements(mask)
    if not refinement.has_cuts and looks_like_tube(
        found.region, work.spacing, metrics["max_diameter_mm"]
    ):
        seed_hu = float(ct.array[refinement.seed_index])
        moved = (
            f" (the click itself is in aerated lung, {seed_hu:.0f} HU; the nearest tissue "
            f"within {SEED_SEARCH_MM:g} mm of it is a vessel)"
            if seed_hu < AERATED_HU
            else ""
        )
        raise LesionError(
            f"{where} is in a vessel{moved} (the outline found is a tube "
            f"{metrics['max_diameter_mm']:.0f} mm long), not a lesion; click inside the lesion, "
            "or pass box_lps_mm around an elongated lesion."
        )
    if metrics["max_diameter_mm"] > refinement.max_diameter_mm:
        raise LesionError(
            f"the lesion at {where} measures {metrics['max_diameter_mm']:.0f} mm, more than "
            f"max_diameter_mm={refinement.max_diameter_mm:g}: it leaked into adjacent tissue, "
            f"is larger, or there is no lesion at the click (normal tissue grows into its "
            f"organ); {fix}."
        )
    box = bounding_box(found.region, pad=4)
    model = found.model
    clear_edge_hu = (
        CLEAR_EDGE_HU
        if model.tissue == "lung"
        else max(MIN_CONTRAST_HU, 0.5 * abs(model.background_hu - model.lesion_hu))
    )
    step_hu, edge_fraction = boundary_contrast(
        model.smooth_hu[box], found.region[box], work.spacing, clear_edge_hu
    )
    return Lesion(
        mask=mask,
        seed_lps_mm=(float(seed[0]), float(seed[1]), float(seed[2])),
        volume_ml=metrics["volume_ml"],
        centroid_lps_mm=tuple(metrics["centroid_lps_mm"]),
        recist_diameter_mm=metrics["recist_diameter_mm"],
        max_diameter_mm=metrics["max_diameter_mm"],
        tissue=found.model.tissue,
        boundary_contrast_hu=step_hu,
        edge_fraction=edge_fraction,
    )
