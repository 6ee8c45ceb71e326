"""Which voxels look like the lesion: the lung and soft-tissue models, the core, separation.

Each model labels the voxels of a box around the lesion: 0 where a voxel looks like the
lesion, else the reason it does not (an ``EXIT_*`` code of
:mod:`seldinger.anatomy.lesion_rays`), so that rays can tell an edge against aerated lung
from one against fat or contrast-filled blood.

- **Lung** (a nodule or mass bordered by aerated lung): lesion-like means above a
  threshold 30 % of the way from the lung parenchyma to the lesion (readers outline the
  outer edge of the partial-volume rim) and below the lesion plus
  :data:`DENSE_STEP_HU` (contrast-filled vessels, heart chambers, bone). Fat is darker
  than the lesion by more than its partial-volume rim would be: below halfway to
  :data:`FAT_HU` it counts as fat unless it lies within :data:`PARTIAL_VOLUME_MM` of
  aerated lung.
- **Soft tissue** (e.g. a liver lesion): the band from the lesion's value to halfway
  towards its surroundings (estimated from a shell around the lesion), on a CT smoothed
  more, because contrasts of 30-50 HU sit within a few noise sigmas.

Conventions: arrays are crops of the CT in its own index order; millimetres along the
array axes (``docs/conventions.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from scipy import ndimage as ndi

from seldinger.anatomy.lesion_rays import (
    EXIT_AIR,
    EXIT_CUT,
    EXIT_DENSE,
    EXIT_LOW,
    EXIT_OUTSIDE,
)

__all__ = [
    "DENSE_STEP_HU",
    "FAT_HU",
    "LUNG_THRESHOLD_FRACTION",
    "PARTIAL_VOLUME_MM",
    "SEED_BALL_MM",
    "SEED_SEARCH_MM",
    "ball",
    "bounding_box",
    "component_at",
    "distance_mm",
    "inscribed_ball",
    "lung_labels",
    "nearest_component",
    "nearest_voxel",
    "separate",
    "smooth",
    "soft_tissue_labels",
    "surroundings",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
Int8Array = npt.NDArray[np.int8]
Spacing = tuple[float, float, float]

#: Search radius (mm) around a point for the nearest voxel of a mask: a seed on the very
#: edge of a lesion moves this far at most.
SEED_SEARCH_MM = 3.0
#: Radius (mm) of the ball around a point whose median HU is the value there.
SEED_BALL_MM = 3.0
#: Lung threshold: this fraction of the way from the lung parenchyma's HU to the lesion's.
#: Readers outline the outer edge of the partial-volume rim: on the LIDC-IDRI-0001
#: consensus (7.8 mL) the halfway point (0.5, about -390 HU) gave 5.5 mL and Dice 0.83,
#: 0.4 gave 6.3 mL / 0.89, 0.3 (about -580 HU) 7.25 mL / 0.92.
LUNG_THRESHOLD_FRACTION = 0.3
#: Contrast-enhanced blood (150-500 HU in arterial and portal phases) and bone read at
#: least this much above a solid lesion (0-100 HU); denser voxels are not the lesion. A
#: lesion cannot be told from unenhanced blood or muscle by density at all.
DENSE_STEP_HU = 100.0
#: Fat, about -100 HU (-120 to -80): halfway between it and the lesion is the fat edge.
FAT_HU = -100.0
#: Around a soft-tissue lesion, voxels below this are air or aerated lung: an edge of their
#: own, never the background the lesion stands out from.
AIR_EXIT_HU = -500.0
#: Around a soft-tissue lesion the tissues it stands out from are fat (about -100 HU) and
#: denser: darker voxels are air, lung or their partial-volume rim (an edge of their own).
SHELL_MIN_HU = FAT_HU - 50.0
#: Tissue on the other side of the lesion's value counts when it holds this share of the
#: shell around the lesion and lies this far from the lesion (HU).
OTHER_SIDE_FRACTION = 0.15
OTHER_SIDE_MIN_HU = 15.0
#: Voxels this close to aerated lung (mm) may be the lesion's partial-volume rim whatever
#: their HU: about one slice of a 2.5 mm CT plus the smoothing.
PARTIAL_VOLUME_MM = 3.5

_MAX_BALL_STEPS = 20


# --- small helpers in millimetres --------------------------------------------------------


def distance_mm(mask: BoolArray, spacing_mm: Spacing) -> FloatArray:
    """Distance (mm) from each voxel of ``mask`` to the nearest voxel centre outside it.

    The same exact Euclidean distances as ``scipy.ndimage.distance_transform_edt`` (0
    outside the mask), by SimpleITK's Maurer transform: multi-threaded and about twice as
    fast on one core. With no voxel outside the mask, the distances are infinite.
    """
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.float64)
    if mask.all():
        return np.full(mask.shape, np.inf)
    # SimpleITK indexes (x, y, z) = (k, j, i) of a C-ordered array: transpose in and out.
    image = sitk.GetImageFromArray(np.ascontiguousarray((~mask).astype(np.uint8).T))
    image.SetSpacing([float(s) for s in spacing_mm])
    distance = sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return np.where(mask, sitk.GetArrayViewFromImage(distance).T, 0.0)


def smooth(hu: Float32Array, sigma_mm: float, spacing_mm: Spacing) -> Float32Array:
    """Gaussian smoothing with a sigma in millimetres on an anisotropic grid."""
    return np.asarray(
        ndi.gaussian_filter(hu, sigma=[sigma_mm / s for s in spacing_mm], mode="nearest"),
        dtype=np.float32,
    )


def component_at(mask: BoolArray, *indices: tuple[int, ...]) -> BoolArray:
    """The 26-connected components of ``mask`` holding any of ``indices``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    wanted = np.zeros(n + 1, dtype=bool)
    for index in indices:
        wanted[labels[index]] = True
    wanted[0] = False
    return np.asarray(wanted[labels])


def ball(
    shape: tuple[int, ...], centre: tuple[int, ...], radius_mm: float, spacing_mm: Spacing
) -> BoolArray:
    """Voxels within ``radius_mm`` of the voxel ``centre``."""
    grids = np.ogrid[tuple(slice(-c, n - c) for c, n in zip(centre, shape, strict=True))]
    d2 = sum((g * s) ** 2 for g, s in zip(grids, spacing_mm, strict=True))
    return np.asarray(d2 <= radius_mm**2 + 1e-9)


def inscribed_ball(
    distance: FloatArray, seed: tuple[int, ...], spacing_mm: Spacing
) -> tuple[tuple[int, ...], float]:
    """Centre and radius (mm) of the lesion's core: the largest inscribed ball near ``seed``.

    ``distance`` is the region's distance map; a voxel v is the centre of an inscribed
    ball of radius ``distance[v]``. Starting from the seed, take the largest inscribed
    ball that covers the current point and move to its centre, until the ball stops
    growing. From a seed in a lesion's lobulation or rim this walks into its core, not
    along a vessel. Returns radius 0 when no ball covers the seed.
    """
    centre, radius_mm = seed, -1.0
    for _ in range(_MAX_BALL_STEPS):
        grids = np.ogrid[
            tuple(slice(-c, n - c) for c, n in zip(centre, distance.shape, strict=True))
        ]
        to_centre2 = sum((g * s) ** 2 for g, s in zip(grids, spacing_mm, strict=True))
        reach = np.where(distance**2 >= to_centre2, distance, 0.0)
        best = tuple(int(v) for v in np.unravel_index(int(np.argmax(reach)), reach.shape))
        if float(reach[best]) <= radius_mm:
            break
        centre, radius_mm = best, float(reach[best])
    return centre, max(radius_mm, 0.0)


def separate(
    region: BoolArray,
    centre: tuple[int, ...],
    radius_mm: float,
    spacing_mm: Spacing,
    fraction: float,
    opening_mm_range: tuple[float, float],
    keep: Sequence[tuple[int, ...]] = (),
) -> BoolArray:
    """Cut thin attachments (vessels, bridges) off the lesion by an opening adapted to it.

    The opening's radius is ``fraction`` of the lesion's inscribed radius, within
    ``opening_mm_range``; the components of the opened region at ``centre`` and at the
    ``keep`` voxels are grown back inside ``region`` (a reconstruction limited to that
    radius).
    """
    opening_mm = float(np.clip(fraction * radius_mm, *opening_mm_range))
    if radius_mm <= opening_mm or not region[centre]:
        return region
    opened = distance_mm(region, spacing_mm) > opening_mm
    core = component_at(opened, centre, *keep)
    if not core.any():
        return region
    return np.asarray((distance_mm(~core, spacing_mm) <= opening_mm) & region)


def nearest_component(
    mask: BoolArray, seed: tuple[int, int, int], spacing_mm: Spacing
) -> BoolArray:
    """Component of ``mask`` at ``seed``, or at the nearest voxel within SEED_SEARCH_MM."""
    if not mask[seed]:
        near = np.argwhere(mask & ball(mask.shape, seed, SEED_SEARCH_MM, spacing_mm))
        if len(near) == 0:
            return np.zeros_like(mask)
        offsets_mm = (near - np.asarray(seed)) * np.asarray(spacing_mm)
        best = near[np.argmin((offsets_mm**2).sum(axis=1))]
        seed = (int(best[0]), int(best[1]), int(best[2]))
    return component_at(mask, seed)


def nearest_voxel(
    mask: BoolArray, index: npt.ArrayLike, spacing: FloatArray
) -> tuple[int, int, int] | None:
    """``index`` if it is in ``mask``, else the nearest voxel of it within SEED_SEARCH_MM."""
    at = tuple(int(v) for v in np.asarray(index))
    if mask[at]:
        return (at[0], at[1], at[2])
    near = np.argwhere(mask & ball(mask.shape, at, SEED_SEARCH_MM, tuple(spacing.tolist())))
    if len(near) == 0:
        return None
    best = near[np.argmin((((near - np.asarray(at)) * spacing) ** 2).sum(axis=1))]
    return (int(best[0]), int(best[1]), int(best[2]))


def bounding_box(mask: BoolArray, pad: int) -> tuple[slice, slice, slice]:
    """The bounding box of ``mask``, grown by ``pad`` voxels and clipped to the array."""
    where = np.argwhere(mask)
    lo = np.maximum(where.min(axis=0) - pad, 0)
    hi = np.minimum(where.max(axis=0) + pad + 1, mask.shape)
    return (
        slice(int(lo[0]), int(hi[0])),
        slice(int(lo[1]), int(hi[1])),
        slice(int(lo[2]), int(hi[2])),
    )


# --- the two models ------------------------------------------------------------------------


def lung_labels(
    smooth_hu: Float32Array,
    aerated: BoolArray,
    outside: BoolArray,
    cut: BoolArray,
    lesion_hu: float,
    lung_hu: float,
    spacing_mm: Spacing,
) -> tuple[Int8Array, float]:
    """Label the box for a lesion in aerated lung; also return the lung threshold (HU).

    Parameters
    ----------
    smooth_hu : ndarray of float32
        The CT box, lightly smoothed.
    aerated, outside, cut : ndarray of bool
        Aerated lung; outside the body; cut away by the user (box, exclude points).
    lesion_hu, lung_hu : float
        The lesion's core value and the parenchyma's (medians).
    """
    threshold_hu = lung_hu + LUNG_THRESHOLD_FRACTION * (lesion_hu - lung_hu)
    fat_edge_hu = 0.5 * (lesion_hu + FAT_HU)
    reach = [2 * int(np.ceil(PARTIAL_VOLUME_MM / s)) + 1 for s in spacing_mm]
    near_air = ndi.maximum_filter(aerated, size=reach)
    why = np.zeros(smooth_hu.shape, dtype=np.int8)
    why[(smooth_hu < fat_edge_hu) & ~near_air] = EXIT_LOW
    why[smooth_hu <= threshold_hu] = EXIT_AIR
    why[smooth_hu > lesion_hu + DENSE_STEP_HU] = EXIT_DENSE
    why[outside] = EXIT_OUTSIDE
    why[cut] = EXIT_CUT
    return why, threshold_hu


def soft_tissue_labels(
    smooth_hu: Float32Array,
    outside: BoolArray,
    cut: BoolArray,
    lesion_hu: float,
    background_hu: float,
    other_side_hu: float | None = None,
) -> Int8Array:
    """Label the box for a lesion in soft tissue: the band from the lesion halfway out.

    The band runs from the lesion's value to halfway towards the surroundings
    (``background_hu``), and as far again on the other side (which keeps fat or air out of
    a hypodense lesion, vessels and bone out of a hyperdense one), or only halfway to
    ``other_side_hu`` when tissue on that side is nearer (a liver lesion under the
    diaphragm: liver on one side, the lung's partial-volume rim and fat on the other).
    """
    contrast_hu = background_hu - lesion_hu
    towards_hu = (smooth_hu - lesion_hu) * np.sign(contrast_hu)
    behind_hu = abs(contrast_hu)
    if other_side_hu is not None:
        behind_hu = min(behind_hu, 0.5 * abs(other_side_hu - lesion_hu))
    why = np.zeros(smooth_hu.shape, dtype=np.int8)
    beyond = towards_hu >= 0.5 * abs(contrast_hu)
    behind = towards_hu <= -behind_hu
    # The sides in HU: darker than the band is "low", denser is "dense".
    why[beyond] = EXIT_DENSE if contrast_hu > 0 else EXIT_LOW
    why[behind] = EXIT_LOW if contrast_hu > 0 else EXIT_DENSE
    why[smooth_hu < AIR_EXIT_HU] = EXIT_AIR
    why[outside] = EXIT_OUTSIDE
    why[cut] = EXIT_CUT
    return why


def surroundings(
    smooth_hu: Float32Array,
    region: BoolArray,
    allowed: BoolArray,
    gap_mm: float,
    width_mm: float,
    spacing_mm: Spacing,
    lesion_hu: float,
) -> tuple[float, float | None] | None:
    """The tissue around ``region``: its main value and, if any, the other side's (HU).

    The shell from ``gap_mm`` to ``gap_mm + width_mm`` around ``region`` is split at the
    lesion's value: the side holding more of the shell is the background the lesion
    stands out from (its median); the other side counts when it holds at least
    :data:`OTHER_SIDE_FRACTION` of the shell and lies :data:`OTHER_SIDE_MIN_HU` or more
    from the lesion. Air, aerated lung and their partial-volume rim (below
    :data:`SHELL_MIN_HU`) are left out, being an edge of their own, unless the tissue left
    has the lesion's own density: then the whole shell's median is the background. None
    when the shell is empty.
    """
    outside_distance = distance_mm(~region, spacing_mm)
    shell = (outside_distance >= gap_mm) & (outside_distance <= gap_mm + width_mm) & allowed
    if not shell.any():
        return None
    values = smooth_hu[shell & (smooth_hu >= SHELL_MIN_HU)]
    if values.size == 0 or abs(float(np.median(values)) - lesion_hu) < OTHER_SIDE_MIN_HU:
        # Tissue of the lesion's own density all round (a nodule in a small search box
        # against the chest wall): the lesion stands out from the air, if from anything.
        return float(np.median(smooth_hu[shell])), None
    above = values > lesion_hu
    main, other = (values[above], values[~above])
    if main.size < other.size:
        main, other = other, main
    main_hu = float(np.median(main))
    if other.size < OTHER_SIDE_FRACTION * values.size:
        return main_hu, None
    other_hu = float(np.median(other))
    return main_hu, (other_hu if abs(other_hu - lesion_hu) >= OTHER_SIDE_MIN_HU else None)
