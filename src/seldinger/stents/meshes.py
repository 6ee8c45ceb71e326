"""Watertight meshes for stents: swept tubes, booleans (manifold3d), STL and 3MF files.

A tube is swept along a centreline: at every station a ring of vertices at the radius the
lumen has in each direction of the station's frame (``cos a u + sin a v``), consecutive
rings joined by triangles, the ends closed by fans. Such a closed tube is a manifold solid;
stents and moulds are booleans of them (Manifold3D [1]_), which return manifold solids
again. Vertices are LPS millimetres (``docs/conventions.md``), and so are the files.

References
----------
.. [1] Lague E et al. Manifold: a geometry library for topological robustness.
   https://github.com/elalish/manifold (exact, guaranteed-manifold mesh booleans).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from seldinger.files import atomic_path

__all__ = ["Mesh", "from_manifold", "swept_tube", "to_manifold", "write_3mf", "write_stl"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Mesh:
    """Triangles in LPS mm.

    Parameters
    ----------
    vertices_lps_mm : ndarray, shape (V, 3)
    faces : ndarray of int, shape (F, 3)
        Counter-clockwise seen from outside (outward normals).
    """

    vertices_lps_mm: FloatArray
    faces: IntArray

    @property
    def volume_mm3(self) -> float:
        """Signed volume (divergence theorem), mm³; positive for outward faces."""
        tri = self.vertices_lps_mm[self.faces]
        return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def swept_tube(
    centres_lps_mm: FloatArray, u: FloatArray, v: FloatArray, radius_mm: FloatArray
) -> Mesh:
    """A closed tube: rings of ``radius_mm[k, j]`` around ``centres_lps_mm[k]``.

    Parameters
    ----------
    centres_lps_mm : ndarray, shape (K, 3)
        Ring centres along the tube, K >= 2.
    u, v : ndarray, shape (K, 3)
        Unit vectors spanning each ring's plane (``u × v`` along the tube).
    radius_mm : ndarray, shape (K, M)
        Radius in direction ``cos(a_j) u + sin(a_j) v``, ``a_j = 2 pi j / M``.

    Returns
    -------
    Mesh
        Closed and outward-oriented (K M + 2 vertices).

    Examples
    --------
    >>> k = np.linspace(0.0, 10.0, 3)
    >>> centres = np.stack([0 * k, 0 * k, k], axis=1)
    >>> u = np.tile([1.0, 0, 0], (3, 1)); v = np.tile([0, 1.0, 0], (3, 1))
    >>> tube = swept_tube(centres, u, v, np.full((3, 256), 2.0))
    >>> round(tube.volume_mm3 / (np.pi * 4 * 10), 3)
    1.0
    """
    k, m = radius_mm.shape
    angle = 2.0 * np.pi * np.arange(m) / m
    direction = (
        np.cos(angle)[None, :, None] * u[:, None, :] + np.sin(angle)[None, :, None] * v[:, None, :]
    )
    rings = centres_lps_mm[:, None, :] + radius_mm[:, :, None] * direction
    vertices = np.concatenate([rings.reshape(-1, 3), centres_lps_mm[[0, -1]]])
    idx = np.arange(k * m).reshape(k, m)
    a = idx[:-1, :]
    b = idx[:-1, np.r_[1:m, 0]]
    c = idx[1:, :]
    d = idx[1:, np.r_[1:m, 0]]
    # u x v points along the tube (from ring 0 to ring K-1); rings run counter-clockwise
    # about it, so (a, b, d) and (a, d, c) face outwards.
    sides = np.concatenate(
        [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    )
    first, last = k * m, k * m + 1
    ring0 = idx[0]
    ringk = idx[-1]
    cap0 = np.stack([np.full(m, first), ring0[np.r_[1:m, 0]], ring0], -1)
    capk = np.stack([np.full(m, last), ringk, ringk[np.r_[1:m, 0]]], -1)
    faces = np.concatenate([sides, cap0, capk]).astype(np.int64)
    mesh = Mesh(vertices, faces)
    if mesh.volume_mm3 < 0:  # a left-handed frame: flip
        mesh = Mesh(vertices, faces[:, ::-1].copy())
    return mesh


def to_manifold(mesh: Mesh):  # type: ignore[no-untyped-def]
    """A ``manifold3d.Manifold`` of the mesh (ValueError if it is not a closed manifold)."""
    import manifold3d  # type: ignore[import-not-found,unused-ignore]

    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.ascontiguousarray(mesh.vertices_lps_mm, dtype=np.float64),
            tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
        )
    )
    if solid.status() != manifold3d.Error.NoError:
        raise ValueError(f"the mesh is not a closed manifold: {solid.status()}.")
    return solid


def from_manifold(solid) -> Mesh:  # type: ignore[no-untyped-def]
    """The triangles of a ``manifold3d.Manifold``."""
    mesh = solid.to_mesh64()
    return Mesh(
        np.asarray(mesh.vert_properties[:, :3], dtype=np.float64),
        np.asarray(mesh.tri_verts, dtype=np.int64),
    )


def write_stl(mesh: Mesh, path: str | os.PathLike[str], *, force: bool = True) -> Path:
    """Binary STL (LPS mm; STL has no unit field: millimetres by convention)."""
    import trimesh

    out = Path(path)
    data = trimesh.Trimesh(mesh.vertices_lps_mm, mesh.faces, process=False).export(file_type="stl")
    with atomic_path(out, force=force) as tmp:
        tmp.write_bytes(data if isinstance(data, bytes) else str(data).encode())
    return out


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" '
    'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)


def write_3mf(
    mesh: Mesh, path: str | os.PathLike[str], *, name: str = "stent", force: bool = True
) -> Path:
    """3MF (3D Manufacturing Format core specification 1.x): one object, unit millimetre.

    The coordinates are LPS mm, written as they are (a slicer places the part on its bed).
    """
    verts = "".join(
        f'<vertex x="{x:.4f}" y="{y:.4f}" z="{z:.4f}"/>' for x, y, z in mesh.vertices_lps_mm
    )
    tris = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in mesh.faces)
    model = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<model unit="millimeter" xml:lang="en-US" '
        'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
        f'<metadata name="Title">{name}</metadata>'
        '<metadata name="Description">LPS patient coordinates (DICOM), millimetres</metadata>'
        f'<resources><object id="1" type="model" name="{name}"><mesh>'
        f"<vertices>{verts}</vertices><triangles>{tris}</triangles>"
        '</mesh></object></resources><build><item objectid="1"/></build></model>'
    )
    out = Path(path)
    with (
        atomic_path(out, force=force) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("3D/3dmodel.model", model)
    return out
