"""What an ablation zone reaches beyond its target: other organs, and the end of the scan.

The placement keeps the zone out of the critical structures (the mediastinum, the central
airways, and what the plan's rules forbid). Everything else a zone may burn is only
counted as "healthy tissue ablated"; a tester's liver-dome zone held 2.5 mL of lung, one by
the gallbladder 0.3 mL of it and a subcapsular one 0.6 mL of rib, all without a word. This
names each segmented structure the zone reaches, except the body, the vessels (flagged as
heat sinks) and the organ the lesion lies in, and says when the zone runs off the CT.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from seldinger.anatomy import Anatomy
from seldinger.anatomy.morphology import bounding_slices, dilate_mm
from seldinger.imaging import Volume, reorient

__all__ = ["HOST_SHARE", "MIN_REACH_ML", "zone_reach_notes"]

#: A structure holding at least this share of the tissue within 3 mm of the lesion is the
#: lesion's own organ: the zone is meant to burn it (a lung lesion's lung, a liver lesion's
#: liver). A liver-dome lesion has the diaphragm between it and the lung, far less.
HOST_SHARE = 0.25
#: Overlaps smaller than this (mL) are not named: a few voxels of partial volume.
MIN_REACH_ML = 0.1
_SHELL_MM = 3.0
#: Never named: the whole body, the vessels (the heat-sink check names those) and the
#: masks that only restate others (lobes and fissures restate the lungs).
_SKIPPED = ("body", "vessels", "emphysema")
_RESTATED = ("lung_upper", "lung_middle", "lung_lower", "fissure")


def zone_reach_notes(zone: Volume, lesion: Volume, anatomy: Anatomy) -> list[str]:
    """Notes naming what the zone reaches beyond the lesion's organ, and the scan's end.

    Parameters
    ----------
    zone, lesion : Volume
        The predicted ablation zone and the lesion, on the CT's grid.
    anatomy : Anatomy
        The segmented structures (same grid).

    Returns
    -------
    list of str
        Empty when the zone stays in the lesion's organ and inside the CT.
    """
    inside = np.asarray(zone.array, dtype=bool)
    if not inside.any():
        return []
    lesion_arr = np.asarray(_on(lesion, zone).array, dtype=bool)
    voxel_ml = float(np.prod(zone.spacing_mm)) / 1000.0
    # The lesion's own organ, from the tissue within 3 mm of it, on the lesion's box.
    pad = [int(np.ceil(_SHELL_MM / s)) + 1 for s in zone.spacing_mm]
    near = bounding_slices(lesion_arr if lesion_arr.any() else inside, pad=pad)
    shell = dilate_mm(lesion_arr[near], _SHELL_MM, zone.spacing_mm) & ~lesion_arr[near]
    lungs = np.zeros(shell.shape, dtype=bool)
    for name in ("lung_left", "lung_right"):
        if name in anatomy:
            lungs |= _mask(anatomy, name, zone)[near]
    host = {"lungs": _share(lungs, shell)}
    if "liver" in anatomy:
        host["liver"] = _share(_mask(anatomy, "liver", zone)[near], shell)
    reached: list[str] = []
    own = {"lung_left", "lung_right"} if host["lungs"] >= HOST_SHARE else set()
    if host.get("liver", 0.0) >= HOST_SHARE:
        own.add("liver")
    box = bounding_slices(inside)  # the zone's own box: a few cm³ of a 512² x 133 grid
    burnt = inside[box] & ~lesion_arr[box]
    for name in anatomy.masks:
        if name in _SKIPPED or name in own or name.startswith(_RESTATED):
            continue
        overlap = np.count_nonzero(burnt & _mask(anatomy, name, zone)[box]) * voxel_ml
        if overlap >= MIN_REACH_ML:
            reached.append(f"{name} {overlap:.1f} mL")
    notes = []
    if reached:
        notes.append(
            f"the zone reaches beyond the lesion's organ into: {', '.join(reached)}; check "
            "that this is meant (thermal injury), or move or shorten the applicator."
        )
    edges = _edges(inside, zone.orientation)
    if edges:
        notes.append(
            f"the zone reaches the {' and '.join(edges)} end of the CT: part of it is not "
            "imaged, and what lies there is not checked; plan on a CT covering it."
        )
    return notes


def _on(volume: Volume, reference: Volume) -> Volume:
    """``volume`` in ``reference``'s axis order (a view when it is already: no copy)."""
    if volume.orientation == reference.orientation:
        return volume
    return reorient(volume, reference.orientation)


def _mask(anatomy: Anatomy, name: str, reference: Volume) -> npt.NDArray[np.bool_]:
    return np.asarray(_on(anatomy[name], reference).array, dtype=bool)


def _share(mask: npt.NDArray[np.bool_], shell: npt.NDArray[np.bool_]) -> float:
    total = np.count_nonzero(shell)
    return float(np.count_nonzero(mask & shell) / total) if total else 0.0


def _edges(inside: npt.NDArray[np.bool_], orientation: str) -> list[str]:
    """The faces of the grid the zone touches, named by the patient directions of the
    array's axes (``orientation``: the letters the axes point to, e.g. ``LPS``)."""
    names = {"L": "left", "R": "right", "P": "posterior", "A": "anterior", "S": "superior",
             "I": "inferior"}  # fmt: skip
    opposite = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}
    out = []
    for axis, letter in enumerate(orientation):
        first = tuple(0 if a == axis else slice(None) for a in range(3))
        last = tuple(-1 if a == axis else slice(None) for a in range(3))
        if inside[first].any():  # basic indexing: a view (ndarray.take copied, 0.35 s a face)
            out.append(names[opposite[letter]])
        if inside[last].any():
            out.append(names[letter])
    return out
