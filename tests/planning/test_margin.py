"""Ablation margin: voxelised-sphere oracles (physics.md §5.2), errors, exclusion, real CT."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from seldinger.imaging import Volume, reorient
from seldinger.planning.margin import MarginReport, assess_margin, tumour_surface_mesh
from shared_paths import LIDC, requires_shared

SPACING_MM = (0.7, 0.7, 2.5)
#: Required accuracy (issue brief): minimal margin and coverage on voxelised spheres.
MARGIN_TOL_MM = 0.5
COVERAGE_TOL_PP = 0.5


def spheres(
    tumour_r_mm: float,
    zone_r_mm: float,
    offset_mm: npt.ArrayLike = (0.0, 0.0, 0.0),
    shift_mm: npt.ArrayLike = (0.0, 0.0, 0.0),
    spacing_mm: tuple[float, float, float] = SPACING_MM,
) -> tuple[Volume, Volume, npt.NDArray[np.float64]]:
    """Tumour and zone masks (voxel centre inside the sphere); the tumour centre in LPS mm."""
    shift = np.asarray(shift_mm, dtype=np.float64)
    extent_mm = max(tumour_r_mm, zone_r_mm + np.linalg.norm(shift)) + 8.0
    shape = tuple(int(np.ceil(2 * extent_mm / s)) for s in spacing_mm)
    affine = np.diag([*spacing_mm, 1.0])
    affine[:3, 3] = (-30.0, 12.0, -200.0)  # an arbitrary origin
    grid = Volume(np.zeros(shape, dtype=bool), affine)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    lps = grid.index_to_lps(ijk)
    centre = grid.index_to_lps(np.array(shape) / 2.0) + np.asarray(offset_mm)
    tumour = np.linalg.norm(lps - centre, axis=-1) <= tumour_r_mm
    zone = np.linalg.norm(lps - centre - shift, axis=-1) <= zone_r_mm
    return grid.with_array(tumour), grid.with_array(zone), centre


def concentric_coverage_percent(tumour_r_mm: float, zone_r_mm: float) -> float:
    return min(100.0, 100.0 * (zone_r_mm / tumour_r_mm) ** 3)


OFFSETS_MM = np.random.default_rng(20240611).uniform(0.0, 1.0, (3, 3)) * SPACING_MM


@pytest.mark.parametrize("zone_r_mm, margin_mm", [(20, 10), (15, 5), (10, 0), (5, -5)])
@pytest.mark.parametrize("offset", range(len(OFFSETS_MM)))
def test_concentric_spheres_sub_voxel(zone_r_mm: float, margin_mm: float, offset: int) -> None:
    tumour, zone, _ = spheres(10.0, zone_r_mm, OFFSETS_MM[offset])
    report = assess_margin(tumour, zone)
    assert report.min_margin_mm == pytest.approx(margin_mm, abs=MARGIN_TOL_MM)
    expected = concentric_coverage_percent(10.0, zone_r_mm)
    assert report.coverage_percent == pytest.approx(expected, abs=COVERAGE_TOL_PP)
    # the whole distribution sits at the analytic margin, not only its minimum
    assert report.median_margin_mm == pytest.approx(margin_mm, abs=0.2)
    assert report.tumour_volume_ml == pytest.approx(4.0 / 3.0 * np.pi * 10.0**3 / 1e3, rel=0.01)


def test_surface_points_lie_on_the_sphere() -> None:
    tumour, zone, centre = spheres(10.0, 15.0, OFFSETS_MM[0])
    report = assess_margin(tumour, zone)
    radius = np.linalg.norm(report.surface_points_lps_mm - centre, axis=1)
    assert np.abs(radius - 10.0).max() < 0.3


def test_plain_voxel_distance_is_a_slice_off() -> None:
    """Why sub-voxel surfaces: QAM's voxel-EDT margin misses by more than our tolerance."""
    tumour, zone, _ = spheres(10.0, 20.0, OFFSETS_MM[0])
    t, z = tumour.array, zone.array
    border_t = t ^ ndimage.binary_erosion(t)
    border_z = z ^ ndimage.binary_erosion(z)
    edt = ndimage.distance_transform_edt(~border_z, sampling=tumour.spacing_mm)
    assert abs(edt[border_t].min() - 10.0) > 1.0
    assert assess_margin(tumour, zone).min_margin_mm == pytest.approx(10.0, abs=MARGIN_TOL_MM)


@pytest.mark.parametrize("shift_mm", [(5, 0, 0), (0, 5, 0), (0, 0, 5), (3.5355, 3.5355, 0)])
def test_shifted_spheres_touch(shift_mm: tuple[float, float, float]) -> None:
    """QAM cases 06-09: tumour r 5 inside zone r 10 shifted 5 mm: margin 0 on one side."""
    tumour, zone, _ = spheres(5.0, 10.0, OFFSETS_MM[1], shift_mm)
    report = assess_margin(tumour, zone)
    assert report.min_margin_mm == pytest.approx(0.0, abs=MARGIN_TOL_MM)
    assert report.coverage_percent == pytest.approx(100.0, abs=COVERAGE_TOL_PP)
    # mean over the tumour sphere of 10 − |p − c|, |c| = r = 5: 10 − 4r/3
    assert report.mean_margin_mm == pytest.approx(10.0 - 20.0 / 3.0, abs=0.2)


def test_fully_outside() -> None:
    """QAM case 01: zone r 5 20 mm away; every margin negative, nothing covered."""
    tumour, zone, _ = spheres(5.0, 5.0, OFFSETS_MM[2], (20, 0, 0))
    report = assess_margin(tumour, zone)
    assert report.surface_below_0_percent == pytest.approx(100.0, abs=1e-9)
    assert report.coverage_percent == pytest.approx(0.0, abs=1e-9)
    assert report.min_margin_mm == pytest.approx(-20.0, abs=MARGIN_TOL_MM)  # −(20 + 5 − 5)
    assert report.surface_margin_mm.max() == pytest.approx(
        -10.0, abs=MARGIN_TOL_MM
    )  # −(20 − 5 − 5)


def test_same_result_in_another_axis_order() -> None:
    tumour, zone, _ = spheres(10.0, 15.0, OFFSETS_MM[2], (1.0, -2.0, 1.5))
    lps = assess_margin(tumour, zone)
    ras = assess_margin(reorient(tumour, "RAS"), reorient(zone, "RAS"))
    pir = assess_margin(reorient(tumour, "PIR"), reorient(zone, "PIR"))
    for other in (ras, pir):
        assert other.min_margin_mm == pytest.approx(lps.min_margin_mm, abs=0.1)
        assert other.coverage_percent == pytest.approx(lps.coverage_percent, abs=0.1)
        assert other.mean_margin_mm == pytest.approx(lps.mean_margin_mm, abs=0.05)
        lo, hi = other.surface_points_lps_mm.min(axis=0), other.surface_points_lps_mm.max(axis=0)
        np.testing.assert_allclose(lo, lps.surface_points_lps_mm.min(axis=0), atol=0.2)
        np.testing.assert_allclose(hi, lps.surface_points_lps_mm.max(axis=0), atol=0.2)


def test_thresholds_split_the_surface() -> None:
    tumour, zone, _ = spheres(10.0, 20.0, OFFSETS_MM[0])
    report = assess_margin(tumour, zone, thresholds_mm=(0.0, 12.0))
    assert report.thresholds_mm == (0.0, 12.0)
    assert report.surface_0_to_5_percent == pytest.approx(100.0)
    report = assess_margin(tumour, zone, thresholds_mm=(-1.0, 8.0))
    assert report.surface_at_least_5_percent == pytest.approx(100.0)
    with pytest.raises(ValueError, match=r"thresholds_mm.*increasing"):
        assess_margin(tumour, zone, thresholds_mm=(5.0, 0.0))


def test_different_grids_are_refused() -> None:
    tumour, zone, _ = spheres(5.0, 10.0)
    affine = zone.affine.copy()
    affine[0, 3] += 1.0  # the same voxels 1 mm to the left
    moved = Volume(zone.array, affine)
    with pytest.raises(ValueError, match=r"zone is on another grid.*VolumeGeometry.*resample"):
        assess_margin(tumour, moved)
    with pytest.raises(ValueError, match="exclude is on another grid"):
        assess_margin(tumour, zone, exclude=moved)


def test_empty_tumour_is_refused() -> None:
    tumour, zone, _ = spheres(5.0, 10.0)
    with pytest.raises(ValueError, match="tumour mask is empty"):
        assess_margin(tumour.with_array(np.zeros(tumour.shape, bool)), zone)


def test_empty_zone_is_a_point_at_the_centroid() -> None:
    tumour, zone, _ = spheres(10.0, 10.0, OFFSETS_MM[0])
    report = assess_margin(tumour, zone.with_array(np.zeros(zone.shape, bool)))
    assert report.coverage_percent == pytest.approx(0.0, abs=1e-9)
    assert report.surface_below_0_percent == pytest.approx(100.0, abs=1e-9)
    # as a zone shrunk to a point at the tumour's centre: minus the radius everywhere
    assert report.min_margin_mm == pytest.approx(-10.0, abs=MARGIN_TOL_MM)
    assert report.median_margin_mm == pytest.approx(-10.0, abs=0.2)
    json.dumps(report.to_dict())


def test_exclusion_drops_surface_near_the_capsule() -> None:
    tumour, zone, centre = spheres(10.0, 15.0, OFFSETS_MM[0])
    lps = tumour.index_to_lps(np.argwhere(np.ones(tumour.shape, bool))).reshape((*tumour.shape, 3))
    outside = tumour.with_array(lps[..., 0] > centre[0] + 8.0)  # capsule 8 mm from centre
    full = assess_margin(tumour, zone)
    report = assess_margin(tumour, zone, exclude=outside, exclusion_mm=5.0)
    # points within 5 mm of an outside voxel centre (x > c + 8) are gone: x < c + 3 + a voxel
    assert report.surface_points_lps_mm[:, 0].max() < centre[0] + 3.0 + 0.7
    assert 0 < len(report.surface_margin_mm) < len(full.surface_margin_mm)
    # a cap of height 7 of a sphere r 10 is 35 % of its area
    assert report.surface_excluded_percent == pytest.approx(35.0, abs=2.0)
    assert report.coverage_percent == full.coverage_percent  # volume is not excluded
    with pytest.raises(ValueError, match="exclude leaves no tumour surface"):
        assess_margin(tumour, zone, exclude=outside, exclusion_mm=30.0)


def test_to_dict_is_json_ready() -> None:
    tumour, zone, _ = spheres(5.0, 8.0)
    report = assess_margin(tumour, zone)
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {
        "min_margin_mm",
        "coverage_percent",
        "surface_below_0_percent",
        "surface_0_to_5_percent",
        "surface_at_least_5_percent",
        "mean_margin_mm",
        "median_margin_mm",
        "thresholds_mm",
    }
    assert "surface_points_lps_mm" not in data
    assert data["n_surface_points"] == len(report.surface_margin_mm)
    total = (
        report.surface_below_0_percent
        + report.surface_0_to_5_percent
        + report.surface_at_least_5_percent
    )
    assert total == pytest.approx(100.0)
    assert isinstance(report, MarginReport)


def test_tumour_surface_mesh_is_closed_and_outward() -> None:
    tumour, _, centre = spheres(6.0, 6.0, OFFSETS_MM[1])
    verts, faces = tumour_surface_mesh(tumour)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, count = np.unique(edges, axis=0, return_counts=True)
    assert np.all(count == 2)  # closed manifold
    tri = verts[faces] - centre
    volume_mm3 = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert volume_mm3 == pytest.approx(4.0 / 3.0 * np.pi * 6.0**3, rel=0.02)


@requires_shared
def test_lidc_nodule_dilated_by_5_mm() -> None:
    """A zone = the nodule dilated by 5 mm (voxel centres within 5 mm of one of its centres).

    On 2.5 mm slices a 5 mm dilation is two slices: above the nodule's flat top slice
    (k 93) the zone ends between k 95 and 96 and the nodule between k 93 and 94, so the
    masks allow anything from 2.5 to 7.5 mm straight up, and the zone's shoulder there is
    sampled by three contours only. Measured: minimum 2.1 mm, at those caps (QAM's voxel
    EDT: 2.6 mm); median 4.8 mm; coverage 100 %. The test holds the median to 0.5 mm of
    5 mm and the minimum to the feasible interval widened by the 0.5 mm accuracy.
    """
    from seldinger.io import read_volume

    nodule = read_volume(LIDC / "nodule_consensus.nii.gz")
    tumour = nodule.with_array(nodule.array > 0)
    distance = ndimage.distance_transform_edt(~tumour.array, sampling=tumour.spacing_mm)
    zone = tumour.with_array(distance <= 5.0)
    report = assess_margin(tumour, zone)
    assert report.coverage_percent == pytest.approx(100.0, abs=0.1)
    assert report.surface_below_0_percent == pytest.approx(0.0, abs=1e-9)
    assert report.median_margin_mm == pytest.approx(5.0, abs=0.5)
    assert 2.5 - 0.5 <= report.min_margin_mm <= 5.0 + 0.5
    assert report.tumour_volume_ml == pytest.approx(
        tumour.array.sum() * 0.7031**2 * 2.5e-3, rel=0.05
    )
