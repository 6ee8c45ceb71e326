"""Cross-sections: frames, polygon measures, the sub-voxel isocontour on analytic fields."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.stents.centreline import centreline_from_points, rotation_minimising_frames
from seldinger.stents.sections import RAYS, measure_cross_sections, polygon_measures


def test_polygon_measures_of_a_rectangle_by_hand() -> None:
    rect = np.array([[0, 0], [6, 0], [6, 2], [0, 2]], dtype=float)
    area, dmin, dmax, centre = polygon_measures(rect)
    assert area == pytest.approx(12.0)
    assert dmin == pytest.approx(2.0, abs=1e-9)
    assert dmax == pytest.approx(np.hypot(6, 2), rel=2e-4)  # caliper over 2° steps
    assert centre.tolist() == pytest.approx([3.0, 1.0])


def test_frames_do_not_twist_along_a_helix() -> None:
    t = np.linspace(0, 4 * np.pi, 400)
    pts = np.stack([20 * np.cos(t), 20 * np.sin(t), 10 * t], axis=1)
    tangents = np.gradient(pts, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    u, v = rotation_minimising_frames(pts, tangents)
    assert np.allclose(np.einsum("ij,ij->i", u, tangents), 0, atol=1e-9)
    assert np.allclose(np.cross(u, v), tangents, atol=1e-9)
    # rotation-minimising: u changes no faster than the tangent turns
    assert np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", u[:-1], u[1:]), -1, 1))).max() < 2.0


def test_a_broken_centreline_is_refused() -> None:
    with pytest.raises(BadInputError, match="broken"):
        centreline_from_points([[0, 0, 0], [0, 0, -10], [0, 0, -60]])
    with pytest.raises(BadInputError, match="two distinct points"):
        centreline_from_points([[1, 2, 3], [1, 2, 3]])


def _ellipse_field(a_mm: float, b_mm: float, spacing: tuple[float, float, float]) -> Volume:
    """An elliptic air tube along k with partial volume (4x4 sub-samples in plane)."""
    shape = (int(40 / spacing[0]), int(40 / spacing[1]), int(30 / spacing[2]))
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    i = (np.arange(shape[0])[:, None] + sub[None, :]) * spacing[0] - 20
    j = (np.arange(shape[1])[:, None] + sub[None, :]) * spacing[1] - 20
    inside = (i[:, None, :, None] / a_mm) ** 2 + (j[None, :, None, :] / b_mm) ** 2 <= 1
    fraction = inside.mean(axis=(2, 3))
    hu = 40.0 - 1040.0 * fraction
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-20 + spacing[0] / 2, -20 + spacing[1] / 2, 0]
    return Volume(np.repeat(hu[:, :, None], shape[2], axis=2).astype(np.float32), affine)


def test_sub_voxel_area_and_calipers_of_an_ellipse() -> None:
    ct = _ellipse_field(8.0, 5.0, (0.7, 0.7, 2.5))
    line = centreline_from_points([[0, 0, 25], [0, 0, 5]])
    sections = measure_cross_sections(
        ct, line, edge_level=-500, lumen_below=True, half_width_mm=14, search_radius_mm=3
    )
    ok = sections.status == "ok"
    assert ok.all()
    truth = np.pi * 8 * 5
    # within 2 %: the -500 HU edge sits at 52 % air between -1000 and +40 HU
    assert np.median(sections.area_mm2) == pytest.approx(truth, rel=0.02)
    assert np.median(sections.max_diameter_mm) == pytest.approx(16.0, abs=0.2)
    assert np.median(sections.min_diameter_mm) == pytest.approx(10.0, abs=0.2)
    assert sections.radius_mm.shape == (len(line), RAYS)
    # the polar outline runs 8 mm along u (patient left) and 5 mm along v
    assert np.median(sections.radius_mm[:, 0]) == pytest.approx(8.0, abs=0.2)
    assert np.median(sections.radius_mm[:, RAYS // 4]) == pytest.approx(5.0, abs=0.2)


def test_a_plane_without_lumen_is_an_occlusion() -> None:
    ct = _ellipse_field(8.0, 5.0, (0.7, 0.7, 2.5))
    solid = ct.with_array(np.full(ct.shape, 40.0, dtype=np.float32))
    line = centreline_from_points([[0, 0, 25], [0, 0, 5]])
    sections = measure_cross_sections(
        solid, line, edge_level=-500, lumen_below=True, half_width_mm=14, search_radius_mm=3
    )
    assert sections.occluded.all()
    assert (sections.area_mm2 == 0).all()
