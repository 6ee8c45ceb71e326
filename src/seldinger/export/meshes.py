"""Triangle meshes of masks in LPS millimetres, written as STL or PLY (3D Slicer, printing).

Two surfaces, both closed and with normals pointing out of the structure:

- ``"voxel"`` (default): marching cubes (``skimage.measure.marching_cubes``) at level 0.5 of
  the mask, the boundary a viewer draws around the voxels, vertices mapped to LPS by the
  Volume's affine. Fast enough for every organ of a chest CT.
- ``"smooth"``: the sub-voxel surface of :mod:`seldinger.imaging.surface` (the one the
  margin assessment measures on, via :func:`seldinger.planning.margin.tumour_surface_mesh`):
  within ~0.15 mm of a sphere's true surface on 0.7 × 0.7 × 2.5 mm voxels, slower; for
  lesions, ablation zones and PTVs.

Winding: marching cubes (``gradient_direction="ascent"``) gives triangles counter-clockwise
seen from outside in index space.
An affine with negative determinant (e.g. an LPI- or RAS-ordered array: one axis flipped
against LPS) mirrors the mesh and so reverses every triangle; the faces are then reversed
back. The smooth surface is wound in its array frame; its signed volume decides whether
its faces are reversed.

Files are LPS millimetres: load them in 3D Slicer with coordinate system "LPS" (Slicer's
default for STL/PLY since version 4.11 is LPS as well).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import trimesh
from skimage.measure import marching_cubes

from seldinger.errors import BadInputError
from seldinger.files import atomic_path
from seldinger.imaging import Volume
from seldinger.planning.margin import tumour_surface_mesh

__all__ = [
    "MESH_FORMATS",
    "MESH_METHODS",
    "MeshError",
    "mask_mesh",
    "write_mask_mesh",
    "write_mesh",
]

#: File suffix → trimesh file type.
MESH_FORMATS = {".stl": "stl", ".ply": "ply"}
#: Surface methods of :func:`mask_mesh`.
MESH_METHODS = ("voxel", "smooth")


class MeshError(BadInputError):
    """A mask cannot be meshed, or a mesh written, as asked; the message names the fix."""


def _bounds(array: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First and last index (i, j, k) of the set voxels of a non-empty mask.

    (The same box as ``seldinger.export.dicom.structures.bounding_box``: two passes over
    the array, the first along the contiguous k axis.)
    """
    ij = np.asarray(array.any(axis=2))
    i = np.flatnonzero(ij.any(axis=1))
    j = np.flatnonzero(ij.any(axis=0))
    k = np.flatnonzero(array[i[0] : i[-1] + 1, j[0] : j[-1] + 1].any(axis=(0, 1)))
    return np.array([i[0], j[0], k[0]]), np.array([i[-1], j[-1], k[-1]])


def _voxel_surface(mask: Volume) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    array = np.asarray(mask.array)
    if array.dtype != np.bool_:
        array = array != 0
    lo, hi = _bounds(array)
    box = array[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
    field = np.pad(box, 1).astype(np.float32)  # zero border: every surface closes
    # "ascent" winds the triangles counter-clockwise seen from outside (positive signed
    # volume) in index space; skimage's default "descent" winds them the other way
    verts, faces, _, _ = marching_cubes(field, level=0.5, gradient_direction="ascent")
    faces = faces.astype(np.int64)
    if np.linalg.det(mask.affine[:3, :3]) < 0:
        faces = faces[:, ::-1]  # the affine mirrors: keep normals outward
    return mask.index_to_lps(verts + (lo - 1)), faces


def mask_mesh(mask: Volume, method: str = "voxel", name: str = "mask") -> trimesh.Trimesh:
    """A closed triangle mesh of a mask's surface in LPS mm, normals outward.

    Parameters
    ----------
    mask : Volume
        Non-zero inside; any orthogonal grid and axis order.
    method : {"voxel", "smooth"}
        Marching cubes at the voxel boundary, or the sub-voxel surface (module docstring).
    name : str
        The structure's name, for error messages.

    Returns
    -------
    trimesh.Trimesh
        Vertices in LPS mm; watertight; positive volume (mm³).

    Raises
    ------
    MeshError
        If the mask is empty or ``method`` is unknown.

    Examples
    --------
    >>> cube = Volume(np.pad(np.ones((4, 4, 4), bool), 1), np.diag([-1.0, 1.0, 2.0, 1.0]))
    >>> mesh = mask_mesh(cube)
    >>> bool(mesh.is_watertight), round(float(mesh.volume))  # 4x4x8 mm less the cut corners
    (True, 117)
    """
    if method not in MESH_METHODS:
        raise MeshError(f"method must be one of {MESH_METHODS}; got {method!r}.")
    if not np.any(mask.array):
        raise MeshError(
            f"mask {name!r} is empty (no voxel set), so it has no surface. Leave it out of "
            "the export, or check its segmentation."
        )
    if method == "voxel":
        verts, faces = _voxel_surface(mask)  # outward by construction (det rule)
    else:
        verts, faces = tumour_surface_mesh(mask)
        if _signed_volume_mm3(verts, faces) < 0:  # wound in the array frame: mirrored
            faces = faces[:, ::-1]
    # marching cubes shares its vertices already: no merging pass (seconds on the lungs)
    return trimesh.Trimesh(verts, faces, process=False)


def _signed_volume_mm3(verts: npt.NDArray[np.float64], faces: npt.NDArray[np.int64]) -> float:
    """Enclosed volume, positive when the triangles wind counter-clockwise seen from outside."""
    a, b, c = (verts[faces[:, n]] - verts.mean(axis=0) for n in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def write_mesh(mesh: trimesh.Trimesh, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write a mesh as binary STL or PLY (by suffix), atomically.

    Raises
    ------
    MeshError
        If the suffix is not ``.stl`` or ``.ply``.
    FileExistsError
        If ``path`` exists and ``force`` is not set.
    """
    target = Path(path)
    file_type = MESH_FORMATS.get(target.suffix.lower())
    if file_type is None:
        raise MeshError(
            f"cannot write {target}: the name must end in one of {', '.join(MESH_FORMATS)}."
        )
    with atomic_path(target, force=force) as tmp:
        data = mesh.export(file_type=file_type)
        if not isinstance(data, bytes):  # binary STL/PLY are bytes; anything else is a bug
            raise TypeError(f"trimesh returned {type(data).__name__} for a binary {file_type}")
        tmp.write_bytes(data)
    return target


def write_mask_mesh(
    mask: Volume,
    path: str | os.PathLike[str],
    *,
    method: str = "voxel",
    name: str = "mask",
    force: bool = False,
) -> Path:
    """:func:`mask_mesh` then :func:`write_mesh`: a mask's surface as an STL/PLY file."""
    return write_mesh(mask_mesh(mask, method=method, name=name), path, force=force)
