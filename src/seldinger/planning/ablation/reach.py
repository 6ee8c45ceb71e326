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
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy
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
_FACES = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))


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
    zone_lps = reorient(zone, "LPS")
    inside = np.asarray(zone_lps.array, dtype=bool)
    if not inside.any():
        return []
    lesion_arr = np.asarray(reorient(lesion, "LPS").array, dtype=bool)
    voxel_ml = float(np.prod(zone_lps.spacing_mm)) / 1000.0
    shell = _shell(lesion_arr, zone_lps.spacing_mm)
    lungs = np.zeros_like(inside)
    for name in ("lung_left", "lung_right"):
        if name in anatomy:
            lungs |= _mask(anatomy, name)  # whole: the shell is checked on its own box
    host = {"lungs": _share(lungs, shell)}
    if "liver" in anatomy:
        host["liver"] = _share(_mask(anatomy, "liver"), shell)
    reached: list[str] = []
    own = {"lung_left", "lung_right"} if host["lungs"] >= HOST_SHARE else set()
    if host.get("liver", 0.0) >= HOST_SHARE:
        own.add("liver")
    box = _box(inside)  # the zone's own box: a few cm³ of a 512² x 133 grid
    burnt = inside[box] & ~lesion_arr[box]
    for name in anatomy.masks:
        if name in _SKIPPED or name in own or name.startswith(_RESTATED):
            continue
        overlap = np.count_nonzero(burnt & _mask(anatomy, name)[box]) * voxel_ml
        if overlap >= MIN_REACH_ML:
            reached.append(f"{name} {overlap:.1f} mL")
    notes = []
    if reached:
        notes.append(
            f"the zone reaches beyond the lesion's organ into: {', '.join(reached)}; check "
            "that this is meant (thermal injury), or move or shorten the applicator."
        )
    edges = _edges(inside)
    if edges:
        notes.append(
            f"the zone reaches the {' and '.join(edges)} end of the CT: part of it is not "
            "imaged, and what lies there is not checked; plan on a CT covering it."
        )
    return notes


def _mask(anatomy: Anatomy, name: str) -> npt.NDArray[np.bool_]:
    return np.asarray(reorient(anatomy[name], "LPS").array, dtype=bool)


def _box(mask: npt.NDArray[np.bool_]) -> tuple[slice, slice, slice]:
    """The smallest box holding the mask's voxels (the mask is not empty)."""
    where = np.argwhere(mask)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))


def _shell(lesion: npt.NDArray[np.bool_], spacing_mm: tuple[float, ...]) -> npt.NDArray[np.bool_]:
    """The voxels within :data:`_SHELL_MM` of the lesion (on a box around it)."""
    shell = np.zeros_like(lesion)
    where = np.argwhere(lesion)
    if where.size == 0:
        return shell
    pad = [int(np.ceil(_SHELL_MM / s)) + 1 for s in spacing_mm]
    box = tuple(
        slice(max(int(lo) - p, 0), min(int(hi) + p + 1, n))
        for lo, hi, p, n in zip(where.min(0), where.max(0), pad, lesion.shape, strict=True)
    )
    outside = ndi.distance_transform_edt(~lesion[box], sampling=spacing_mm)
    shell[box] = (outside > 0) & (outside <= _SHELL_MM)
    return shell


def _share(mask: npt.NDArray[np.bool_], shell: npt.NDArray[np.bool_]) -> float:
    total = np.count_nonzero(shell)
    return float(np.count_nonzero(mask & shell) / total) if total else 0.0


def _edges(inside: npt.NDArray[np.bool_]) -> list[str]:
    """The faces of the LPS-ordered grid the zone touches, by name."""
    out = []
    for axis, (low, high) in enumerate(_FACES):
        if inside.take(0, axis=axis).any():
            out.append(low)
        if inside.take(-1, axis=axis).any():
            out.append(high)
    return out
