"""Meshes of masks: watertight, LPS millimetres, normals outward whatever the affine."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from seldinger.export.meshes import MeshError, mask_mesh, write_mask_mesh, write_mesh
from seldinger.imaging import Volume, reorient

SPACING_MM = (0.7, 0.7, 2.5)


def _sphere(radius_mm: float, centre_lps_mm: tuple[float, float, float]) -> Volume:
    shape = (60, 60, 24)
    affine = np.diag([*SPACING_MM, 1.0])
    affine[:3, 3] = np.asarray(centre_lps_mm) - np.array(shape) / 2 * SPACING_MM
    volume = Volume(np.zeros(shape, bool), affine)
    lps = volume.index_to_lps(np.argwhere(np.ones(shape, bool))).reshape(*shape, 3)
    return volume.with_array(np.linalg.norm(lps - centre_lps_mm, axis=-1) <= radius_mm)


def _outward(mesh: trimesh.Trimesh) -> float:
    """Share of faces whose normal points away from the mesh's centre."""
    away = mesh.triangles_center - mesh.centroid
    return float(np.mean(np.einsum("ij,ij->i", away, mesh.face_normals) > 0))


@pytest.mark.parametrize("code", ["LPS", "RAS", "LPI", "PIR"])
def test_mesh_is_watertight_outward_and_in_lps_for_any_axis_order(code) -> None:
    sphere = _sphere(12.0, (56.4, 86.3, -116.0))
    mask = reorient(sphere, code)  # same voxels, other array order (det < 0 for LPI)
    mesh = mask_mesh(mask)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0 and _outward(mesh) > 0.99
    voxel_volume_mm3 = np.count_nonzero(mask.array) * np.prod(SPACING_MM)
    assert mesh.volume == pytest.approx(voxel_volume_mm3, rel=0.05)
    np.testing.assert_allclose(mesh.centroid, (56.4, 86.3, -116.0), atol=0.3)
    reference = mask_mesh(sphere)
    np.testing.assert_allclose(mesh.bounds, reference.bounds, atol=1e-6)


def test_smooth_mesh_is_close_to_the_true_sphere() -> None:
    mesh = mask_mesh(_sphere(10.0, (0.0, 0.0, 0.0)), method="smooth")
    assert mesh.is_watertight and mesh.volume > 0 and _outward(mesh) > 0.99
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radius - 10.0).max() < 0.5


@pytest.mark.parametrize("suffix", [".stl", ".ply"])
def test_write_and_read_back(tmp_path, suffix) -> None:  # type: ignore[no-untyped-def]
    mask = _sphere(8.0, (10.0, -20.0, 30.0))
    path = write_mask_mesh(mask, tmp_path / f"nodule{suffix}", name="nodule")
    back = trimesh.load(path, force="mesh")
    assert back.is_watertight
    np.testing.assert_allclose(back.bounds, mask_mesh(mask).bounds, atol=1e-4)
    with pytest.raises(FileExistsError):
        write_mask_mesh(mask, path)


def test_bad_inputs_are_refused_and_nothing_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = Volume(np.zeros((4, 4, 4), bool), np.eye(4))
    with pytest.raises(MeshError, match="mask 'ptv' is empty"):
        write_mask_mesh(empty, tmp_path / "ptv.stl", name="ptv")
    with pytest.raises(MeshError, match="method must be one of"):
        mask_mesh(_sphere(5.0, (0, 0, 0)), method="fancy")
    with pytest.raises(MeshError, match=r"must end in one of \.stl, \.ply"):
        write_mesh(mask_mesh(_sphere(5.0, (0, 0, 0))), tmp_path / "a.obj")
    assert list(tmp_path.iterdir()) == []
