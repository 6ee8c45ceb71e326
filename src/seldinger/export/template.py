"""A printable coplanar template plate (STL) with the holes of the planned needles.

The plate lies across the needles, against the skin at the most superficial entry of the
used needles (plus ``standoff_mm``), and holds one through-hole per used needle at its
template position (a 5 mm grid), every hole along the needle direction. Its mesh is made
on a fine voxel grid (plate minus holes) by marching cubes and written in LPS millimetres,
so that it lies on the patient in any viewer that reads the CT in LPS (3D Slicer: load the
STL with coordinate system LPS).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import trimesh
from skimage.measure import marching_cubes

from seldinger.errors import BadInputError
from seldinger.files import atomic_path
from seldinger.plan import SeedSection

__all__ = [
    "HOLE_DIAMETER_MM",
    "PLATE_THICKNESS_MM",
    "seed_template_plate",
    "template_plate",
    "write_template_stl",
]

#: An 18 G needle is 1.27 mm wide; the hole leaves 0.23 mm clearance for printing.
HOLE_DIAMETER_MM = 1.5
#: Plate thickness (the holes guide the needle over this length).
PLATE_THICKNESS_MM = 10.0
_BORDER_MM = 10.0
_VOXEL_MM = 0.25


def template_plate(
    frame_lps: npt.ArrayLike,
    holes_mm: Sequence[tuple[float, float]],
    entries_lps_mm: npt.ArrayLike,
    standoff_mm: float = 0.0,
    thickness_mm: float = PLATE_THICKNESS_MM,
    hole_diameter_mm: float = HOLE_DIAMETER_MM,
) -> trimesh.Trimesh:
    """The plate's mesh in LPS mm.

    Parameters
    ----------
    frame_lps : array (4, 3)
        Template frame: origin (LPS mm), x and y (unit, across the needles), needle axis
        (unit, skin to target) — ``SeedPlan.template_frame``.
    holes_mm : sequence of (x, y)
        Hole centres in the template plane (mm from the origin along x and y).
    entries_lps_mm : array (n, 3)
        Skin entries of the needles (the plate's skin side touches the most superficial).
    standoff_mm : float
        Gap between that entry and the plate.
    """
    frame = np.asarray(frame_lps, dtype=np.float64)
    if frame.shape != (4, 3):
        raise BadInputError(
            f"frame_lps must have shape (4, 3) (origin, x, y, axis); got {frame.shape}."
        )
    origin, ex, ey, axis = frame
    holes = np.asarray(holes_mm, dtype=np.float64).reshape(-1, 2)
    if len(holes) == 0:
        raise BadInputError("holes_mm is empty; a template needs at least one needle hole.")
    if not (thickness_mm > 0 and hole_diameter_mm > 0 and standoff_mm >= 0):
        raise BadInputError("thickness_mm and hole_diameter_mm must be > 0, standoff_mm >= 0.")
    entries = np.asarray(entries_lps_mm, dtype=np.float64).reshape(-1, 3)
    skin_w = float(((entries - origin) @ axis).min()) - standoff_mm  # plate's skin side
    lo = holes.min(axis=0) - _BORDER_MM
    hi = holes.max(axis=0) + _BORDER_MM
    n = np.ceil((np.append(hi - lo, thickness_mm)) / _VOXEL_MM).astype(int) + 1
    x = lo[0] + np.arange(n[0]) * _VOXEL_MM
    y = lo[1] + np.arange(n[1]) * _VOXEL_MM
    solid = np.ones((n[0], n[1]), dtype=bool)
    r2 = (hole_diameter_mm / 2.0) ** 2
    for hx, hy in holes:
        solid &= (x[:, None] - hx) ** 2 + (y[None, :] - hy) ** 2 > r2
    volume = np.zeros((n[0] + 2, n[1] + 2, n[2] + 2), dtype=np.float32)
    volume[1:-1, 1:-1, 1:-1] = solid[:, :, None]
    verts, faces, _, _ = marching_cubes(volume, 0.5, spacing=(_VOXEL_MM,) * 3)
    local = verts - _VOXEL_MM + np.array([lo[0], lo[1], 0.0])
    # w runs from the skin side (w = skin_w) away from the patient (against the needle).
    lps = origin + local[:, :1] * ex + local[:, 1:2] * ey + (skin_w - local[:, 2:3]) * axis
    mesh = trimesh.Trimesh(lps, faces[:, ::-1], process=True)
    mesh.fix_normals()
    return mesh


def write_template_stl(
    path: str | os.PathLike[str], mesh: trimesh.Trimesh, force: bool = False
) -> Path:
    """Write the plate as binary STL (LPS mm), atomically."""
    out = Path(path)
    with atomic_path(out, force=force) as tmp:
        data = mesh.export(file_type="stl")
        if not isinstance(data, bytes):  # binary STL is bytes; anything else is a bug
            raise TypeError(f"trimesh returned {type(data).__name__} for a binary STL")
        tmp.write_bytes(data)
    return out


def seed_template_plate(seeds: SeedSection) -> trimesh.Trimesh:
    """The printable template plate of a coplanar seed implant (LPS mm).

    Raises
    ------
    BadInputError
        If the implant has no template (free needles).
    """
    holes = [n.template_hole_mm for n in seeds.needles]
    if seeds.template_frame_lps is None or any(h is None for h in holes):
        raise BadInputError(
            "the implant has no template frame (free needles); only a coplanar implant has a "
            "plate to print (--template coplanar)."
        )
    return template_plate(
        seeds.template_frame_lps,
        [h for h in holes if h is not None],
        [n.entry_lps_mm for n in seeds.needles],
    )
