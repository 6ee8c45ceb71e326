"""How much to trust a lesion's outline: the HU step across it, and whether it is a tube.

The confidence figure is the contrast across the outline. At each surface voxel the
smoothed CT is sampled :data:`EDGE_PROBE_MM` plus half the largest voxel size inside and
outside along the outline's normal (beyond the partial-volume ramp and the smoothing);
the difference is the HU step there. A lung nodule's free surface steps by about 900 HU
(solid to aerated lung), a liver lesion's by its 20-60 HU contrast, and where a lesion
lies against tissue of its own density (a mass on the mediastinum or the diaphragm) the
step is near 0: there the outline is the method's closure, not an edge in the image.
Reported: the median step (HU) and the fraction of the outline whose step is a clear
edge (at least ``clear_edge_hu``: :data:`CLEAR_EDGE_HU` for a lesion in lung, half the
lesion's contrast for one in soft tissue).

A click in a vessel gives a piece of the vessel: :func:`looks_like_tube` tells it from a
lesion by its shape.

Conventions: ``docs/conventions.md`` (arrays in the CT's index order, mm along the axes).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.lesion_regions import distance_mm

__all__ = ["CLEAR_EDGE_HU", "EDGE_PROBE_MM", "boundary_contrast", "looks_like_tube"]

BoolArray = npt.NDArray[np.bool_]
Spacing = tuple[float, float, float]

#: Distance (mm) inside and outside the outline at which the CT is sampled, plus half the
#: largest voxel size: beyond the partial-volume ramp and the smoothing.
EDGE_PROBE_MM = 2.5
#: For a lesion in lung, a step of at least this many HU counts as a clear edge (a fat
#: plane: ~140 HU; muscle or the heart wall beside a mass: < 30 HU): twice the smallest
#: contrast a soft-tissue lesion is segmented at (15 HU), well above the smoothed noise.
CLEAR_EDGE_HU = 30.0
#: A tube: its longest diameter is at least this many times the width of its inscribed
#: ball (lesions on LIDC-IDRI-0001 and the inserted masses: 1.4-1.5; clicks in 8 lung
#: vessels: 3.2-9.5) ...
TUBE_LENGTH_RATIO = 2.5
#: ... and its longest principal axis this many times its second (lesions 1.0-1.1;
#: vessels 2.1-5.1).
TUBE_ELONGATION = 1.8


def boundary_contrast(
    smooth_hu: npt.NDArray[np.float32],
    mask: BoolArray,
    spacing_mm: Spacing,
    clear_edge_hu: float = CLEAR_EDGE_HU,
) -> tuple[float, float]:
    """Median HU step across the outline of ``mask`` and the fraction that is a clear edge.

    Parameters
    ----------
    smooth_hu : ndarray of float32
        The CT around the lesion, lightly smoothed; same shape as ``mask``.
    mask : ndarray of bool
        The lesion.
    spacing_mm : tuple of float
        Voxel size along the array axes.
    clear_edge_hu : float
        The step that counts as a clear edge.

    Returns
    -------
    (float, float)
        ``(median |step| in HU, fraction of surface voxels with |step| >= clear_edge_hu)``;
        ``(0.0, 0.0)`` for an empty mask.
    """
    surface = mask & ~ndi.binary_erosion(mask, border_value=0)
    if not surface.any():
        return 0.0, 0.0
    spacing = np.asarray(spacing_mm)
    soft = ndi.gaussian_filter(mask.astype(np.float32), sigma=1.0 / spacing)
    gradient = np.stack(np.gradient(soft, *spacing), axis=-1)[surface]  # points inward
    norm = np.linalg.norm(gradient, axis=1)
    ok = norm > 1e-6
    where = np.argwhere(surface)[ok].astype(np.float64)
    inward_mm = gradient[ok] / norm[ok, None]
    offset = (EDGE_PROBE_MM + 0.5 * float(spacing.max())) * inward_mm / spacing
    inside = ndi.map_coordinates(smooth_hu, (where + offset).T, order=1, mode="nearest")
    outside = ndi.map_coordinates(smooth_hu, (where - offset).T, order=1, mode="nearest")
    step = np.abs(inside - outside)
    if step.size == 0:
        return 0.0, 0.0
    return float(np.median(step)), float(np.mean(step >= clear_edge_hu))


def looks_like_tube(mask: BoolArray, spacing_mm: Spacing, max_diameter_mm: float) -> bool:
    """Whether the lesion is a piece of a vessel: long, thin and elongated along one axis.

    A lesion, round or lobulated, is about 1.5 times longer (its longest diameter) than
    its inscribed ball is wide, and its principal axes are within a factor of about 1.2;
    a piece of vessel, followed along its lumen, is 3-10 times longer than wide and twice
    as long along one axis as along the next. A flat (perifissural) nodule is thin but
    long along two axes, so it is not a tube.
    """
    box = ndi.find_objects(mask.astype(np.int8))
    if not box or box[0] is None:
        return False
    sub = np.pad(mask[box[0]], 1)
    inscribed_mm = float(distance_mm(sub, spacing_mm).max())
    if max_diameter_mm < TUBE_LENGTH_RATIO * 2.0 * inscribed_mm:
        return False
    points = np.argwhere(sub) * np.asarray(spacing_mm)
    if len(points) < 10:
        return False
    eigenvalues = np.linalg.eigvalsh(np.cov(points.T))
    return bool(eigenvalues[1] > 0 and np.sqrt(eigenvalues[2] / eigenvalues[1]) >= TUBE_ELONGATION)
