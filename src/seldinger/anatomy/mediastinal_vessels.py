"""Superior vena cava and pulmonary artery: tubes found beside the ascending aorta.

Both are looked for slice by slice in windows placed relative to the ascending aorta's
centre (:class:`~.great_vessels.Aorta`), as circles linked into a chain (see
:mod:`.mediastinal_tubes`); the pulmonary trunk's branches are then tracked to the lungs.
Masks are cut at each vessel's own blood level on a contrast CT (a vein may hold undiluted
contrast or unenhanced blood), at the fat edge without contrast.

Frame and units follow ``docs/conventions.md``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from seldinger.anatomy.great_vessels import (
    Aorta,
    Blood,
    Vessel,
    measure_blood,
    refine_chain,
    vessel_mask,
    wall_edge_hu,
)
from seldinger.anatomy.mediastinal_context import MediastinalContext
from seldinger.anatomy.mediastinal_tubes import (
    Circles,
    TubeTrack,
    axial_circles,
    link_circles,
    slice_windows,
    track_tube,
)
from seldinger.anatomy.morphology import BoolArray

__all__ = ["segment_pulmonary_artery", "segment_superior_vena_cava"]

F64 = npt.NDArray[np.float64]

# As for the descending aorta (great_vessels.py): a tube's centre reads this far above the
# fat-tissue edge; a slice joins a chain with half a circle's outline, and starting or ending
# a chain costs three.
_CONTENT_ABOVE_FAT_EDGE_HU = 20.0
_MIN_CIRCLE_SCORE = 0.5
_CHAIN_START_COST = 3.0

# Windows relative to the ascending aorta's centre in each slice (mm; + = left, + = posterior):
# the superior vena cava lies to its right and behind (lidc-idri-0001: 15-21 mm right, 10-23
# mm behind; the right pulmonary artery, further behind, must stay out of the window), the
# pulmonary trunk to its left and level or in front (25-40 mm left).
_SVC_LEFT_MM = (-35.0, -8.0)
_SVC_BACK_MM = (0.0, 28.0)
_SVC_RADII_MM = np.arange(6.0, 13.1, 1.0)
_PA_LEFT_MM = (10.0, 55.0)
_PA_BACK_MM = (-30.0, 20.0)
_PA_RADII_MM = np.arange(8.0, 17.1, 1.5)
# The superior vena cava is looked for up to this far above the highest slice of the
# ascending aorta (it joins the brachiocephalic veins above the arch) and the pulmonary trunk
# up to this far below the carina (it bifurcates 1-2 cm below it).
_SVC_ABOVE_MM = 25.0
_PA_BELOW_CARINA_MM = 60.0
# The main pulmonary arteries are followed from the trunk's top to the hila (the tracking
# stops in the lung); the right one leaves towards the patient's right, slightly back.
_RIGHT_PA_DIRECTION = np.array([-1.0, 0.3, -0.1])
# The pulmonary bifurcation lies this far (mm) below the carina.
_BIFURCATION_MM = (5.0, 30.0)
# The trunk runs up, back and left at about 45°: its axial sections are elongated and their
# centres move up to 2 mm per mm between slices.
_PA_MOVE_MM_PER_MM = 2.0
_PA_TRACK_MM = 80.0


def _reference_windows(
    context: MediastinalContext,
    reference_mm: F64,
    left_mm: tuple[float, float],
    back_mm: tuple[float, float],
    slices: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.intp], tuple[int, int], BoolArray, float]:
    """Per-slice windows around ``reference_mm + offsets`` (see :func:`slice_windows`)."""
    sp = context.spacing_mm
    reach = 20.0
    lo = np.column_stack(
        [
            np.where(slices, reference_mm[:, 0] + left_mm[0] - reach, 0.0) / sp[0],
            np.where(slices, reference_mm[:, 1] + back_mm[0] - reach, 0.0) / sp[1],
        ]
    )
    origin = np.floor(np.nan_to_num(lo)).astype(np.intp)
    size = (
        int(np.ceil((left_mm[1] - left_mm[0] + 2 * reach) / sp[0])) + 1,
        int(np.ceil((back_mm[1] - back_mm[0] + 2 * reach) / sp[1])) + 1,
    )
    wi = (np.arange(size[0])[:, None, None] + origin[None, None, :, 0]) * sp[0]
    wj = (np.arange(size[1])[None, :, None] + origin[None, None, :, 1]) * sp[1]
    di = wi - reference_mm[None, None, :, 0]
    dj = wj - reference_mm[None, None, :, 1]
    with np.errstate(invalid="ignore"):
        allowed = (di >= left_mm[0]) & (di <= left_mm[1]) & (dj >= back_mm[0]) & (dj <= back_mm[1])
    allowed &= slices[None, None, :]
    return origin, size, np.asarray(allowed), reach


def _chain_near(
    context: MediastinalContext,
    reference_mm: F64,
    left_mm: tuple[float, float],
    back_mm: tuple[float, float],
    slices: npt.NDArray[np.bool_],
    radii_mm: F64,
    others: BoolArray,
    move_mm_per_mm: float = 1.0,
) -> tuple[F64, F64]:
    """Axial circle chain in windows placed relative to ``reference_mm`` in each slice."""
    sp = context.spacing_mm
    nk = context.hu.shape[2]
    levels = context.levels
    origin, size, allowed, _ = _reference_windows(context, reference_mm, left_mm, back_mm, slices)
    content = context.hu > levels.fat_edge_hu + _CONTENT_ABOVE_FAT_EDGE_HU
    content &= ~(context.lungs | context.bones | context.airways | others)
    circles = axial_circles(
        slice_windows(context.hu, origin, size, levels.fat_hu),
        allowed & slice_windows(content, origin, size, False),
        sp,
        radii_mm,
        levels.tissue_hu - levels.fat_hu,
    )
    shift = origin[:, None, :] * np.asarray(sp[:2])
    circles = Circles(circles.centre_mm + shift, circles.radius_mm, circles.score)
    centre, radius = link_circles(
        circles, sp[2], _MIN_CIRCLE_SCORE, _CHAIN_START_COST, move_mm_per_mm=move_mm_per_mm
    )
    out = np.column_stack([centre, np.arange(nk) * sp[2]])
    out[~np.isfinite(radius)] = np.nan
    return out, radius


def _filled_reference(reference_mm: F64, above_slices: int) -> tuple[F64, npt.NDArray[np.bool_]]:
    """``reference_mm`` with gaps interpolated and its top carried ``above_slices`` higher."""
    out = reference_mm.copy()
    rows = np.flatnonzero(np.isfinite(out[:, 0]))
    slices = np.zeros(len(out), dtype=bool)
    if rows.size == 0:
        return out, slices
    top = min(int(rows[-1]) + above_slices, len(out) - 1)
    span = np.arange(rows[0], top + 1)
    for axis in range(2):
        out[span, axis] = np.interp(span, rows, reference_mm[rows, axis])
    slices[span] = True
    return out, slices


def _own_blood(context: MediastinalContext, centres: F64, radii: F64, aorta: Aorta) -> Blood:
    """The vessel's own blood level (a vein may be unenhanced, or hold undiluted contrast)."""
    own = measure_blood(context, centres, radii)
    if not aorta.blood.contrast:
        return Blood(own.blood_hu, False)
    return own


def segment_superior_vena_cava(context: MediastinalContext, aorta: Aorta) -> Vessel:
    """Segment the superior vena cava: the round tube right of the ascending aorta.

    It is looked for slice by slice in a window to the right of (and level with or behind)
    the ascending aorta, from :data:`_SVC_ABOVE_MM` above the aorta's highest ascending slice
    down, and the circles are linked into one chain as for the descending aorta.
    """
    empty = np.zeros(context.ct.shape, dtype=bool)
    above = round(_SVC_ABOVE_MM / context.spacing_mm[2])
    reference, slices = _filled_reference(aorta.ascending_mm, above)
    if not slices.any():
        note = "superior_vena_cava: not looked for (no ascending aorta found)"
        return Vessel(empty, np.zeros((0, 3)), np.zeros(0), (note,))
    aorta_w = context.grid.coarse(aorta.vessel.mask)
    centres, radii = _chain_near(
        context, reference, _SVC_LEFT_MM, _SVC_BACK_MM, slices, _SVC_RADII_MM, aorta_w
    )
    if not np.isfinite(radii).any():
        note = "superior_vena_cava: no round vein found right of the ascending aorta"
        return Vessel(empty, np.zeros((0, 3)), np.zeros(0), (note,))
    blood = _own_blood(context, centres, radii, aorta)
    points, rad = refine_chain(context, centres, radii, wall_edge_hu(context, blood))
    mask = vessel_mask(context, points, rad, blood) & ~aorta.vessel.mask
    return Vessel(mask, context.to_lps(points[::-1]), rad[::-1])


def _right_pulmonary_artery(
    context: MediastinalContext, trunk: F64, radius_mm: float, edge_hu: float
) -> TubeTrack | None:
    """The right pulmonary artery: tracked towards the right hilum from the trunk.

    It leaves the trunk's right side at the bifurcation, 5-30 mm below the carina, and runs
    behind the ascending aorta; tracks start from each trunk point in that range, and the
    longest that reaches the right lung is kept.
    """
    carina = context.carina_mm
    if carina is None:
        return None
    direction = _RIGHT_PA_DIRECTION / np.linalg.norm(_RIGHT_PA_DIRECTION)
    best: TubeTrack | None = None
    for point in trunk:
        if not carina[2] - _BIFURCATION_MM[1] <= point[2] <= carina[2] - _BIFURCATION_MM[0]:
            continue
        track = track_tube(
            context.hu,
            context.spacing_mm,
            point + radius_mm * direction,
            direction,
            radius_mm,
            edge_hu,
            max_length_mm=_PA_TRACK_MM,
            stop_mask=context.lung_right,
        )
        reached = track.stop == "entered the stop mask"
        if reached and (best is None or len(track.points_mm) > len(best.points_mm)):
            best = track
    return best


def segment_pulmonary_artery(context: MediastinalContext, aorta: Aorta) -> Vessel:
    """Segment the pulmonary trunk and the main pulmonary arteries to the hila.

    The trunk is the round tube left of the ascending aorta below the carina (window
    :data:`_PA_LEFT_MM`, :data:`_PA_BACK_MM`), linked through the slices; from its top the
    left pulmonary artery (continuing the trunk's direction) and the right one (towards the
    patient's right, behind the ascending aorta) are tracked until they enter the lungs.
    """
    empty = np.zeros(context.ct.shape, dtype=bool)
    sp = context.spacing_mm
    carina = context.carina_mm
    reference, slices = _filled_reference(aorta.ascending_mm, 0)
    if carina is None or not slices.any():
        note = "pulmonary_artery: not looked for (needs the carina and the ascending aorta)"
        return Vessel(empty, np.zeros((0, 3)), np.zeros(0), (note,))
    z = np.arange(len(slices)) * sp[2]
    slices &= (z <= carina[2]) & (z >= carina[2] - _PA_BELOW_CARINA_MM)
    aorta_w = context.grid.coarse(aorta.vessel.mask)
    centres, radii = _chain_near(
        context,
        reference,
        _PA_LEFT_MM,
        _PA_BACK_MM,
        slices,
        _PA_RADII_MM,
        aorta_w,
        move_mm_per_mm=_PA_MOVE_MM_PER_MM,
    )
    if not np.isfinite(radii).any():
        note = "pulmonary_artery: no pulmonary trunk found left of the ascending aorta"
        return Vessel(empty, np.zeros((0, 3)), np.zeros(0), (note,))
    blood = _own_blood(context, centres, radii, aorta)
    edge = wall_edge_hu(context, blood)
    trunk, trunk_r = refine_chain(context, centres, radii, edge)
    parts, part_r = [trunk], [trunk_r]
    radius = float(np.median(trunk_r))
    up = trunk[-1] - trunk[max(len(trunk) - 4, 0)]
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 0 else np.array([0.0, 0.0, 1.0])
    left = track_tube(
        context.hu,
        sp,
        trunk[-1],
        up,
        0.8 * radius,
        edge,
        max_length_mm=_PA_TRACK_MM,
        stop_mask=context.lungs,
    )
    parts.append(left.points_mm[1:])
    part_r.append(left.radius_mm[1:])
    right = _right_pulmonary_artery(context, trunk, 0.8 * radius, edge)
    if right is not None:
        parts.append(right.points_mm)
        part_r.append(right.radius_mm)
    points = np.concatenate(parts)
    rad = np.concatenate(part_r)
    mask = np.zeros(context.ct.shape, dtype=bool)
    for pts, r in zip(parts, part_r, strict=True):
        if len(pts):
            mask |= vessel_mask(context, pts, r, blood)
    mask &= ~aorta.vessel.mask
    return Vessel(mask, context.to_lps(points), rad)
