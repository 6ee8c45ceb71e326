"""The two-part mould for casting a designed stent in silicone, with its core.

The shell is a block around the stent with the stent's outer solid (studs included) as its
cavity, split in two halves by the plane that best contains the stent's axis (the plane
through the axis points' centroid whose normal is their direction of least spread), so each
half releases the cast. The core is the stent's lumen, longer than the stent at every open
end; where it leaves the cavity it runs through the shell (a core print), so the halves
hold it in place. Silicone fills cavity minus core: exactly the stent. A sprue (pour hole)
and a vent run up from the cavity's two highest points (10 mm apart at least) in the
parting plane to the block's top face.

Frame and units follow ``docs/conventions.md``: LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.stents.design import StentDesign
from seldinger.stents.meshes import Mesh, from_manifold

__all__ = ["Mould", "make_mould"]

FloatArray = npt.NDArray[np.float64]

#: Shell thickness around the stent, mm.
MARGIN_MM = 5.0
#: Diameter of the sprue and the vent, mm.
SPRUE_DIAMETER_MM = 3.0
#: Pieces of a mould part smaller than this (mm³) are slivers of the cut, not parts.
MIN_PART_MM3 = 1.0


@dataclass(frozen=True, eq=False)
class Mould:
    """Two shell halves and the core, as meshes (LPS mm), and the parting plane."""

    half_a: Mesh
    half_b: Mesh
    core: Mesh
    parting_normal: FloatArray
    parting_point_lps_mm: FloatArray
    watertight: bool
    channels_mm3: float = 0.0  # volume of the sprue and vent inside the block

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "parts": ["half_a", "half_b", "core"],
            "parting_normal": np.round(self.parting_normal, 4).tolist(),
            "parting_point_lps_mm": np.round(self.parting_point_lps_mm, 2).tolist(),
            "volumes_mm3": {
                "half_a": round(self.half_a.volume_mm3, 1),
                "half_b": round(self.half_b.volume_mm3, 1),
                "core": round(self.core.volume_mm3, 1),
            },
            "watertight": self.watertight,
        }


def _parting_plane(axis_lps_mm: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Centroid and unit normal of the plane that best contains the axis points.

    For a straight stent every plane through its axis fits: the one also containing the
    LPS y (anteroposterior) direction is taken.
    """
    centre = axis_lps_mm.mean(axis=0)
    _, spread, vt = np.linalg.svd(axis_lps_mm - centre, full_matrices=False)
    if spread[1] > 0.05 * spread[0]:
        normal = vt[-1]
    else:
        normal = np.cross(vt[0], [0.0, 1.0, 0.0])
        if np.linalg.norm(normal) < 1e-6:
            normal = np.cross(vt[0], [1.0, 0.0, 0.0])
    return centre, normal / np.linalg.norm(normal)


def make_mould(design: StentDesign) -> Mould:
    """The mould of a designed stent: two shell halves and the core.

    Parameters
    ----------
    design : StentDesign
        From :func:`~seldinger.stents.design.design_stent`.

    Returns
    -------
    Mould
    """
    import manifold3d  # type: ignore[import-not-found,unused-ignore]
    import trimesh

    outer = design.outer
    core_full = design.inner  # longer than the stent at every open end
    lo, hi = _bounds(outer)
    block_lo = lo - MARGIN_MM
    block_hi = hi + MARGIN_MM
    block = manifold3d.Manifold.cube(tuple(block_hi - block_lo)).translate(tuple(block_lo))
    core = core_full ^ block  # the core prints end inside the shell's walls
    centre, normal = _parting_plane(design.axis_lps_mm)
    sprues = _sprues(outer, centre, normal, block_hi)
    shell = block - outer - core - sprues
    channels = float((sprues ^ block).volume() - (sprues ^ outer).volume())
    half_a, half_b = shell.split_by_plane(tuple(normal), float(normal @ centre))
    meshes = [from_manifold(_without_slivers(m)) for m in (half_a, half_b, core)]
    watertight = all(
        trimesh.Trimesh(m.vertices_lps_mm, m.faces, process=True).is_watertight for m in meshes
    )
    return Mould(meshes[0], meshes[1], meshes[2], normal, centre, watertight, channels)


def _without_slivers(solid: Any) -> Any:
    """``solid`` less its pieces of no volume (the cut can leave a flat sliver of a few
    triangles where the parting plane grazes a sprue: an extra, empty shell in the STL)."""
    import manifold3d  # type: ignore[import-not-found,unused-ignore]

    parts = solid.decompose()
    kept = [part for part in parts if part.volume() >= MIN_PART_MM3]
    if len(kept) == len(parts) or not kept:
        return solid
    return manifold3d.Manifold.compose(kept)


def _bounds(solid: Any) -> tuple[FloatArray, FloatArray]:
    mesh = from_manifold(solid)
    return mesh.vertices_lps_mm.min(axis=0), mesh.vertices_lps_mm.max(axis=0)


def _sprues(outer: Any, centre: FloatArray, normal: FloatArray, block_hi: FloatArray) -> Any:
    """Two vertical channels (LPS +z up) in the parting plane, from the cavity's highest
    point (the sprue) and its highest point 10 mm or more away (the vent) to the top face."""
    import manifold3d  # type: ignore[import-not-found,unused-ignore]

    vertices = from_manifold(outer).vertices_lps_mm
    in_plane = np.abs((vertices - centre) @ normal) < 1.0
    pts = vertices[in_plane] if in_plane.any() else vertices
    channels = []
    top = pts[np.argmax(pts[:, 2])]
    away = pts[np.linalg.norm(pts - top, axis=1) >= 10.0]
    points = [top] + ([away[np.argmax(away[:, 2])]] if len(away) else [])
    for p in points:
        base = p - np.array([0.0, 0.0, 1.0])  # reach 1 mm into the cavity
        height = float(block_hi[2] - base[2] + 1.0)
        cylinder = manifold3d.Manifold.cylinder(
            height, SPRUE_DIAMETER_MM / 2, SPRUE_DIAMETER_MM / 2, 24
        )
        channels.append(cylinder.translate(tuple(base)))
    return manifold3d.Manifold.batch_boolean(channels, manifold3d.OpType.Add)
