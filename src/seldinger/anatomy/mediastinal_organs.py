"""Mediastinal organs at risk in one call: heart, great vessels, oesophagus, spinal canal.

:func:`segment_mediastinal_organs` takes the CT and the masks the pipeline already has (on
the pipeline's canonical, body-cropped grid) and returns one bool mask per organ, named as
TotalSegmentator names them, with the oesophagus's centreline, notes and timings. The steps
run in this order, each using the ones before:

=====================  ==========================================  =====================
structure              found from                                  module
=====================  ==========================================  =====================
``spinal_cord``        body, bones (the spinal *canal*)            :mod:`.spinal_canal`
``aorta``              spine, lungs (blood level measured in it)   :mod:`.great_vessels`
``heart``              lungs, liver, carina, aorta                 :mod:`.heart`
``esophagus``          trachea, aorta, heart, spine                :mod:`.oesophagus`
``superior_vena_cava`` ascending aorta                             :mod:`.mediastinal_vessels`
``pulmonary_artery``   ascending aorta, carina, lungs              :mod:`.mediastinal_vessels`
=====================  ==========================================  =====================

The heart is then cut where the oesophagus and the vessels lie. Organs the CT does not show
are absent from the result, with a note (an abdominal CT has no arch, no heart).
``docs/anatomy_mediastinum.md`` has the method and the accuracy measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from seldinger.anatomy.airway_tree import AirwayGraph
from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.great_vessels import Blood, segment_aorta
from seldinger.anatomy.heart import segment_heart
from seldinger.anatomy.mediastinal_context import MediastinalContext, mediastinal_context
from seldinger.anatomy.mediastinal_vessels import (
    segment_pulmonary_artery,
    segment_superior_vena_cava,
)
from seldinger.anatomy.morphology import BoolArray, bounding_slices, dilate_mm
from seldinger.anatomy.oesophagus import OesophagusCentreline, segment_oesophagus
from seldinger.anatomy.spinal_canal import segment_spinal_canal
from seldinger.imaging import Volume

__all__ = ["MEDIASTINAL_ORGANS", "MediastinalOrgans", "segment_mediastinal_organs"]

#: The organs :func:`segment_mediastinal_organs` can return, as TotalSegmentator names them.
MEDIASTINAL_ORGANS: tuple[str, ...] = (
    "heart",
    "aorta",
    "pulmonary_artery",
    "superior_vena_cava",
    "esophagus",
    "spinal_cord",
)

# Other structures are kept out of the heart with their partial-volume rim.
_RIM_MM = 1.5
# The heart and the thoracic oesophagus are looked for only when both lungs show this much
# (the pipeline's rule for the mediastinum: an abdominal CT's lung bases hold 40-75 mL).
_MIN_LUNG_ML = 150.0
# A heart smaller than this is not a heart (a CT that shows only the apex under the lungs).
_MIN_HEART_ML = 50.0


@dataclass(frozen=True, eq=False)
class MediastinalOrgans:
    """Mediastinal organs of one CT (masks on the grid of the CT they were found in).

    Attributes
    ----------
    masks : dict of str to ndarray of bool
        Organ masks keyed by :data:`MEDIASTINAL_ORGANS` names; an organ the CT does not show
        is absent. ``spinal_cord`` is the whole spinal canal (cord, CSF, epidural space).
    esophagus_centreline : OesophagusCentreline or None
        From the thoracic inlet to the hiatus, LPS mm, with the radii along it.
    blood : Blood or None
        Blood attenuation measured in the aorta, and whether the CT is contrast-enhanced.
    notes : tuple of str
    seconds : dict of str to float
        Wall time per step (the shared preparation is under ``"context"``).
    """

    masks: dict[str, BoolArray]
    esophagus_centreline: OesophagusCentreline | None = None
    blood: Blood | None = None
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)


def segment_mediastinal_organs(
    ct: Volume,
    body: npt.ArrayLike,
    lung_left: npt.ArrayLike,
    lung_right: npt.ArrayLike,
    bones: npt.ArrayLike,
    *,
    airways: npt.ArrayLike | None = None,
    airway_graph: AirwayGraph | None = None,
    liver: npt.ArrayLike | None = None,
    structures: Iterable[str] | None = None,
) -> MediastinalOrgans:
    """Segment the mediastinal organs at risk of ``ct`` (see the module docstring).

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (the pipeline's body-cropped ``_Run.ct``), with or without
        contrast.
    body, lung_left, lung_right, bones : array_like of bool, the CT's shape
        The pipeline's masks of this CT.
    airways : array_like of bool, optional
        Airway lumen (absent on a CT without the trachea).
    airway_graph : AirwayGraph, optional
        The airway graph: its trachea gives the carina and the oesophagus's upper course.
    liver : array_like of bool, optional
        Liver when in view: the heart stops at the diaphragm over it.
    structures : iterable of str, optional
        Organs wanted (default all :data:`MEDIASTINAL_ORGANS`); the ones they are found from
        are computed too but not returned.

    Returns
    -------
    MediastinalOrgans
    """
    wanted = list(MEDIASTINAL_ORGANS) if structures is None else list(structures)
    unknown = sorted(set(wanted) - set(MEDIASTINAL_ORGANS))
    if unknown:
        raise AnatomyError(
            f"unknown mediastinal organ(s) {unknown}; choose from {', '.join(MEDIASTINAL_ORGANS)}."
        )
    seconds: dict[str, float] = {}
    notes: list[str] = []
    masks: dict[str, BoolArray] = {}
    t0 = time.perf_counter()
    context = mediastinal_context(
        ct,
        body,
        lung_left,
        lung_right,
        bones,
        airways=airways,
        airway_graph=airway_graph,
        liver=liver,
    )
    seconds["context"] = time.perf_counter() - t0
    if "spinal_cord" in wanted:
        t0 = time.perf_counter()
        canal = segment_spinal_canal(ct, body, bones, spine=context.spine)
        if canal.any():
            masks["spinal_cord"] = canal
        else:
            notes.append("spinal_cord: no spinal canal found (no spine in view)")
        seconds["spinal_cord"] = time.perf_counter() - t0
    if not set(wanted) - {"spinal_cord"}:
        return MediastinalOrgans(masks, notes=tuple(notes), seconds=seconds)
    return _soft_organs(context, wanted, masks, notes, seconds)


def _dilated(
    mask: BoolArray, radius_mm: float, spacing_mm: tuple[float, float, float]
) -> BoolArray:
    """``mask`` dilated by ``radius_mm``, computed inside its bounding box only."""
    out = np.zeros_like(mask)
    if not mask.any():
        return out
    pad = [int(np.ceil(radius_mm / s)) + 1 for s in spacing_mm]
    box = bounding_slices(mask, pad=pad)
    out[box] = dilate_mm(mask[box], radius_mm, spacing_mm)
    return out


def _shows_chest(context: MediastinalContext) -> bool:
    """Whether both lungs are in view beyond their bases (as the pipeline's mediastinum)."""
    voxel_ml = context.grid.voxel_ml
    smaller_ml = min(int(context.lung_left.sum()), int(context.lung_right.sum())) * voxel_ml
    return smaller_ml >= _MIN_LUNG_ML


def _soft_organs(
    context: MediastinalContext,
    wanted: list[str],
    masks: dict[str, BoolArray],
    notes: list[str],
    seconds: dict[str, float],
) -> MediastinalOrgans:
    """The aorta, heart, oesophagus and veins/arteries (in dependency order)."""
    grid, sp = context.grid, context.spacing_mm
    chest = _shows_chest(context)
    t0 = time.perf_counter()
    aorta = segment_aorta(context)
    notes.extend(aorta.vessel.notes)
    seconds["aorta"] = time.perf_counter() - t0
    aorta_w = _dilated(grid.coarse(aorta.vessel.mask), _RIM_MM, sp)
    empty = np.zeros(context.ct.shape, dtype=bool)
    t0 = time.perf_counter()
    heart = segment_heart(context, aorta_w) if chest else empty.copy()
    heart_w = grid.coarse(heart)
    seconds["heart"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    line = None
    if chest:
        eso, line, eso_notes = segment_oesophagus(
            context, aorta_w | heart_w, aorta.descending_mm, contrast=aorta.blood.contrast
        )
        notes.extend(eso_notes)
    else:
        eso = empty
        notes.append(
            "esophagus: not segmented, the CT does not show the chest (its thoracic course "
            "lies between the lungs)"
        )
    seconds["esophagus"] = time.perf_counter() - t0
    vessels = {}
    for name, step in (
        ("superior_vena_cava", segment_superior_vena_cava),
        ("pulmonary_artery", segment_pulmonary_artery),
    ):
        if name not in wanted:
            continue
        t0 = time.perf_counter()
        vessel = step(context, aorta)
        notes.extend(vessel.notes)
        vessels[name] = vessel.mask
        seconds[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # The heart ends where the oesophagus, the veins and the pulmonary artery begin (see the
    # order below); unenhanced, the aorta's outline (found against fat) gives the oesophagus
    # back where they touch.
    for other in (eso, *vessels.values()):
        heart &= ~other
    voxel_ml = float(np.prod(context.ct.spacing_mm)) / 1000.0
    if not chest:
        notes.append("heart: not segmented, the CT does not show the chest")
    elif np.count_nonzero(heart) * voxel_ml < _MIN_HEART_ML:
        heart[:] = False
        notes.append("heart: not in the CT's field of view (no mediastinum between two lungs)")
    seconds["heart"] += time.perf_counter() - t0
    found = {
        "aorta": aorta.vessel.mask,
        **vessels,
        "esophagus": eso,
        "heart": heart,
    }
    # Each voxel belongs to one organ: the vessels (their lumen is the sharpest edge) first,
    # then the oesophagus, then the heart (unenhanced, the oesophagus before the aorta).
    order = (
        list(found)
        if aorta.blood.contrast
        else ["esophagus", *(n for n in found if n != "esophagus")]
    )
    taken = np.zeros(context.ct.shape, dtype=bool)
    for name in order:
        found[name] = found[name] & ~taken
        taken |= found[name]
    for name, mask in found.items():
        if name in wanted and mask.any():
            masks[name] = mask
        elif name in wanted and not any(note.startswith(f"{name}:") for note in notes):
            notes.append(f"{name}: not found")
    if "esophagus" not in masks:
        line = None
    blood = aorta.blood if aorta.vessel.mask.any() else None
    return MediastinalOrgans(masks, line, blood, tuple(dict.fromkeys(notes)), seconds)
