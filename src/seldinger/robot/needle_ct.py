"""The needle found in a confirmation CT: its tip and axis, near the planned line.

A steel needle is the brightest thing in a CT (several thousand HU, with streaks). The
search stays within ``radius_mm`` of the planned line (from the entry to ``beyond_mm``
past the planned tip): voxels above ``metal_hu`` there, their largest connected piece
(pieces a voxel apart joined; streak artefacts and bone fragments are smaller or
elsewhere), its principal axis (SVD
of the voxel centres), and the tip as the deepest voxel centre along the insertion
direction, projected on the axis (to within about a voxel: slice thickness limits it). The
confirmation CT must be in the plan's frame (taken without moving the patient, or
resampled onto the plan's CT after a rigid registration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError
from seldinger.imaging import Volume

__all__ = ["METAL_HU", "NeedleInCt", "NeedleNotFoundError", "needle_in_ct"]

#: Voxels above this are metal (needles reach 3 000 HU and more; cortical bone ~1 900).
METAL_HU = 2500.0

Float64Array = npt.NDArray[np.float64]


class NeedleNotFoundError(BadInputError):
    """No needle near the planned line in the confirmation CT."""


@dataclass(frozen=True)
class NeedleInCt:
    """The needle found: tip and unit axis (entry → tip) in LPS mm, and how many voxels."""

    tip_lps_mm: tuple[float, float, float]
    axis_lps: tuple[float, float, float]
    n_voxels: int
    length_mm: float


def needle_in_ct(
    ct: Volume,
    entry_lps_mm: npt.ArrayLike,
    planned_tip_lps_mm: npt.ArrayLike,
    *,
    radius_mm: float = 12.0,
    beyond_mm: float = 30.0,
    metal_hu: float = METAL_HU,
) -> NeedleInCt:
    """Find the needle near the planned line (module docstring).

    Raises
    ------
    NeedleNotFoundError
        Nothing above ``metal_hu`` near the line, or too little of it to be a needle.
    """
    entry = np.asarray(entry_lps_mm, dtype=float)
    tip = np.asarray(planned_tip_lps_mm, dtype=float)
    length = float(np.linalg.norm(tip - entry))
    if not length > 0:
        raise BadInputError("the planned tip must differ from the entry.")
    axis = (tip - entry) / length
    # The box around the line, in voxel indices.
    ends = np.array([entry - radius_mm * axis, tip + beyond_mm * axis])
    corners = ends[:, None, :] + radius_mm * np.array([[-1, -1, -1], [1, 1, 1]])[None]
    index = np.asarray(ct.lps_to_index(corners.reshape(-1, 3)))
    lo = np.clip(np.floor(index.min(axis=0)).astype(int), 0, np.array(ct.shape) - 1)
    hi = np.clip(np.ceil(index.max(axis=0)).astype(int) + 1, 1, np.array(ct.shape))
    box = np.asarray(ct.array)[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    ijk = np.argwhere(box > metal_hu) + lo
    if len(ijk):
        points = np.asarray(ct.index_to_lps(ijk))
        rel = points - entry
        along = rel @ axis
        off = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        keep = (off <= radius_mm) & (along >= -radius_mm) & (along <= length + beyond_mm)
        ijk = ijk[keep]
    if len(ijk) < 3:
        raise NeedleNotFoundError(
            f"no needle (voxels above {metal_hu:g} HU) within {radius_mm:g} mm of the planned "
            "line in the confirmation CT; check it covers the needle and lies in the plan's "
            "frame (same position, or registered and resampled onto the plan's CT)."
        )
    mask = np.zeros(hi - lo, dtype=bool)
    local = ijk - lo
    mask[local[:, 0], local[:, 1], local[:, 2]] = True
    # Pieces a voxel apart are one needle (an oblique needle on thick slices breaks up).
    bridged = ndi.binary_dilation(mask, structure=np.ones((3, 3, 3), dtype=bool))
    labels, _ = ndi.label(bridged, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels[mask])
    sizes[0] = 0
    biggest = int(np.argmax(sizes))
    points = np.asarray(ct.index_to_lps(np.argwhere(mask & (labels == biggest)) + lo))
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    direction = vt[0] if float(np.dot(vt[0], axis)) >= 0 else -vt[0]
    along = (points - centre) @ direction
    extent = float(along.max() - along.min())
    if extent < 3.0 * max(ct.spacing_mm):
        raise NeedleNotFoundError(
            f"the metal near the planned line is {extent:.1f} mm long: not a needle (a clip "
            "or a seed?). Check the confirmation CT."
        )
    # The deepest voxel centre on the axis: a tip inside the last voxel lies within half a
    # voxel of it (the slice thickness bounds what a CT can say about the tip).
    found = centre + along.max() * direction
    return NeedleInCt(
        tip_lps_mm=(float(found[0]), float(found[1]), float(found[2])),
        axis_lps=(float(direction[0]), float(direction[1]), float(direction[2])),
        n_voxels=len(points),
        length_mm=extent,
    )
