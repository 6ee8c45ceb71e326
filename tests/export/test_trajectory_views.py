"""Tests of seldinger.export.trajectory_views: reslice geometry, orientation, files, inputs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from scipy import ndimage

from seldinger.export import (
    render_needle_views,
    render_paths_axial,
    render_skin_risk_map,
)
from seldinger.imaging import Volume, reorient
from seldinger.imaging.reslice import (
    needle_frame,
    needle_view_planes,
    oblique_plane,
    skin_azimuth_deg,
)
from shared_paths import LIDC, NODULE_CENTROID_LPS_MM

# Linear field of the synthetic CTs: value = a·L + b·P + c·S + d (LPS mm).
FIELD = np.array([2.0, -3.0, 0.5])
FIELD_OFFSET = 7.0


def _field(lps_mm: np.ndarray) -> np.ndarray:
    return lps_mm @ FIELD + FIELD_OFFSET


def _linear_volume(direction: np.ndarray | None = None) -> Volume:
    """Voxel values equal to the linear field at each voxel's LPS position."""
    spacing = np.array([1.5, 1.0, 2.0])
    affine = np.eye(4)
    affine[:3, :3] = (np.eye(3) if direction is None else direction) * spacing
    affine[:3, 3] = [-10.0, 5.0, -30.0]
    grid = Volume(np.zeros((20, 24, 16)), affine)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), axis=-1)
    return grid.with_array(_field(grid.index_to_lps(ijk)))


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues rotation matrix about a unit axis."""
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * kx + (1 - np.cos(angle_rad)) * kx @ kx


def _trilinear(volume: Volume, lps_mm: np.ndarray) -> float:
    """Reference: trilinear interpolation written out over the 8 neighbouring voxels."""
    index = volume.lps_to_index(lps_mm)
    base = np.floor(index).astype(int)
    frac = index - base
    total = 0.0
    for corner in np.ndindex(2, 2, 2):
        weight = np.prod([f if c else 1 - f for f, c in zip(frac, corner, strict=True)])
        total += weight * float(volume.array[tuple(base + np.array(corner))])
    return total


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


# --- oblique_plane ---------------------------------------------------------------------


@pytest.mark.parametrize("code", ["LPS", "RAS", "PIR", "IAL"])
def test_oblique_plane_samples_linear_field_in_any_axis_order(code: str) -> None:
    ct = reorient(_linear_volume(), code)
    assert ct.orientation == code
    rng = np.random.default_rng(20240611)
    u, v = np.linalg.qr(rng.normal(size=(3, 3)))[0][:, :2].T
    lo, hi = ct.geometry.bounds_lps_mm()
    origin = (lo + hi) / 2
    plane = oblique_plane(ct, origin, u, v, 5.0, 4.0, 0.7)
    assert plane.image.shape == (2 * round(4.0 / 0.7) + 1, 2 * round(5.0 / 0.7) + 1)
    np.testing.assert_allclose(
        plane.lps_mm()[plane.image.shape[0] // 2, plane.image.shape[1] // 2], origin
    )
    corner = origin + plane.u_mm[0] * u + plane.v_mm[-1] * v  # row -1, column 0
    np.testing.assert_allclose(plane.lps_mm()[-1, 0], corner)
    np.testing.assert_allclose(plane.image, _field(plane.lps_mm()), atol=1e-6)


def test_oblique_plane_on_obliquely_acquired_ct() -> None:
    direction = _rotation(np.array([1.0, 2.0, 0.5]), 0.4)
    ct = _linear_volume(direction)
    lo, hi = ct.geometry.bounds_lps_mm()
    centre = ct.index_to_lps((np.array(ct.shape) - 1) / 2)
    assert np.all((centre > lo) & (centre < hi))
    plane = oblique_plane(ct, centre, [0, 0, 1], [1, 0, 0], 4.0, 4.0, 0.5)
    np.testing.assert_allclose(plane.image, _field(plane.lps_mm()), atol=1e-6)


def test_oblique_plane_fills_outside_with_air_or_zero() -> None:
    ct = reorient(_linear_volume(), "PIR")
    mask = ct.with_array(np.ones(ct.shape, dtype=bool))
    lo, hi = ct.geometry.bounds_lps_mm()
    # plane at the superior edge, reaching 20 mm beyond it along +L
    origin = np.array([hi[0], (lo[1] + hi[1]) / 2, hi[2]])
    image = oblique_plane(ct, origin, [1, 0, 0], [0, 1, 0], 20.0, 2.0, 1.0).image
    centre_col = image.shape[1] // 2
    assert image[2, -1] == -1024.0  # 20 mm outside along L
    assert image[2, centre_col] == pytest.approx(_field(origin))  # the edge voxel itself
    masked = oblique_plane(mask, origin, [1, 0, 0], [0, 1, 0], 20.0, 2.0, 1.0, order=0).image
    assert masked[2, -1] == 0.0 and masked[2, centre_col] == 1.0
    assert oblique_plane(ct, origin, [1, 0, 0], [0, 1, 0], 20.0, 2.0, 1.0, fill_value=-5).image[
        2, -1
    ] == pytest.approx(-5.0)


# --- needle geometry -------------------------------------------------------------------


def test_needle_frame_hand_computed() -> None:
    # from the patient's right towards the left, in an axial plane
    u, v, w, length_mm = needle_frame([-40.0, 0.0, 10.0], [0.0, 0.0, 10.0])
    assert length_mm == pytest.approx(40.0, abs=1e-9)
    np.testing.assert_allclose([u, v, w], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    # vertical needle: S × u vanishes, v falls back to L
    u, v, w, _ = needle_frame([0.0, 0.0, 50.0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose([u, v, w], [[0, 0, -1], [1, 0, 0], [0, -1, 0]])
    u, v, w, _ = needle_frame([3.0, -7.0, 11.0], [-20.0, 15.0, -4.0])
    np.testing.assert_allclose(np.array([u, v, w]) @ np.array([u, v, w]).T, np.eye(3), atol=1e-12)
    assert v[2] == pytest.approx(0.0, abs=1e-9)  # v is horizontal


def test_needles_eye_centre_is_ct_value_at_target() -> None:
    rng = np.random.default_rng(20240612)
    lps = Volume(rng.normal(0.0, 300.0, (30, 30, 20)), np.diag([1.2, 1.2, 2.5, 1.0]))
    ct = reorient(lps, "PIR")
    target = np.array([17.3, 14.9, 23.1])
    entry = target + np.array([-25.0, 30.0, 12.0])
    planes = needle_view_planes(ct, entry, target, pixel_mm=0.5, eye_half_mm=5.0)
    eye = planes["needles_eye"]
    rows, cols = eye.image.shape
    np.testing.assert_allclose(eye.lps_mm()[rows // 2, cols // 2], target, atol=1e-12)
    assert eye.image[rows // 2, cols // 2] == pytest.approx(_trilinear(lps, target), abs=1e-9)
    # looking along the needle: screen right × screen down = needle direction (not mirrored)
    u, v, w, _ = needle_frame(entry, target)
    np.testing.assert_allclose(np.cross(eye.u, eye.v), u, atol=1e-12)
    # both needle planes contain entry and target; their normals are ±w and ±v
    for name, normal in (("in_plane", w), ("orthogonal", v)):
        plane = planes[name]
        assert abs(plane.normal @ normal) == pytest.approx(1.0)
        np.testing.assert_allclose(plane.to_plane_mm([entry, target])[:, 2], 0.0, atol=1e-9)


def test_in_plane_view_of_axial_needle_is_the_axial_slice() -> None:
    rng = np.random.default_rng(20240613)
    lps = Volume(rng.normal(0.0, 300.0, (60, 50, 9)), np.diag([1.0, 1.0, 2.5, 1.0]))
    ct = reorient(lps, "RAI")
    # axial needle from the left-posterior towards the right-anterior, on slice k = 4
    entry = lps.index_to_lps([40, 30, 4])
    target = lps.index_to_lps([20, 16, 4])
    plane = needle_view_planes(ct, entry, target, pixel_mm=1.0, beyond_mm=0.0, side_mm=5.0)[
        "in_plane"
    ]
    # radiological axial: columns run from patient right to left, rows anterior to posterior
    np.testing.assert_allclose(plane.u, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(plane.v, [0, 1, 0], atol=1e-12)
    rows, cols = plane.image.shape
    i0, j0 = 30 - cols // 2, 23 - rows // 2  # midpoint (30, 23) at the centre pixel
    assert i0 >= 0 and j0 >= 0 and i0 + cols <= 60 and j0 + rows <= 50
    expected = lps.array[i0 : i0 + cols, j0 : j0 + rows, 4].T
    np.testing.assert_allclose(plane.image, expected, atol=1e-6)


def test_orientation_letters_of_screen_directions() -> None:
    from seldinger.export.trajectory_views import _direction_letters

    assert _direction_letters(np.array([1.0, 0.0, 0.0])) == "L"
    assert _direction_letters(np.array([-0.8, -0.6, 0.0])) == "RA"  # strongest first
    assert _direction_letters(np.array([0.2, 0.0, -0.98])) == "I"  # small parts left out


def test_oblique_plane_of_one_pixel_keeps_its_size() -> None:
    plane = oblique_plane(_linear_volume(), [0.0, 10.0, -20.0], [1, 0, 0], [0, 0, 1], 0.2, 0.2, 1.0)
    assert plane.image.shape == (1, 1)
    assert plane.extent_mm == (-0.5, 0.5, -0.5, 0.5)
    assert plane.image[0, 0] == pytest.approx(_field(np.array([0.0, 10.0, -20.0])))


def test_skin_azimuth_convention() -> None:
    centre = [10.0, 20.0, -5.0]
    points = np.array([[10, 0, 0], [30, 20, 0], [10, 40, 99], [-10, 20, 0], [30, 0, 0]])
    np.testing.assert_allclose(
        skin_azimuth_deg(points, centre), [0.0, 90.0, 180.0, -90.0, 45.0], atol=1e-12
    )


# --- pictures --------------------------------------------------------------------------


def _blob_ct() -> tuple[Volume, np.ndarray]:
    """0 HU box stored RAS, with a 1000 HU ball in the anterior-left quadrant of the centre."""
    lps = Volume(np.zeros((100, 100, 5), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]))
    centre = lps.index_to_lps([49.5, 49.5, 2])
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in lps.shape], indexing="ij"), axis=-1)
    ball = (
        np.linalg.norm(lps.index_to_lps(ijk) - (centre + np.array([25.0, -25.0, 0.0])), axis=-1)
        < 15
    )
    return reorient(lps.with_array(np.where(ball, 1000, 0).astype(np.int16)), "RAS"), centre


def test_axial_picture_is_radiological_not_mirrored(tmp_path: Path) -> None:
    ct, centre = _blob_ct()
    entry = centre + np.array([-30.0, 30.0, 0.0])  # right-posterior, away from the ball
    out = render_paths_axial(ct, [entry], [centre], tmp_path / "axial.png", window=(0, 1000))
    rgb = imread(out)[..., :3]
    grey = np.all(np.abs(rgb - 0.5) < 0.05, axis=-1)  # 0 HU in this window
    rows, cols = np.nonzero(grey)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    white = np.all(rgb > 0.97, axis=-1)
    white[: top + 1], white[bottom:], white[:, : left + 1], white[:, right:] = (False,) * 4
    labels, n = ndimage.label(white)
    assert n >= 1
    ball = labels == 1 + np.argmax(ndimage.sum(white, labels, range(1, n + 1)))
    ball_row, ball_col = ndimage.center_of_mass(ball)
    # patient left → image right, anterior → image top
    assert ball_col > (left + right) / 2 + 20
    assert ball_row < (top + bottom) / 2 - 20


def test_pictures_refuse_overwrite_and_leave_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct, centre = _blob_ct()
    entry = centre + np.array([-30.0, 30.0, 5.0])
    out = render_needle_views(ct, entry, centre, tmp_path / "needle.png")
    assert _png_size(out) == (1800, 740)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="force=True"):
        render_needle_views(ct, entry, centre, out, safety_radius_mm=None)
    assert out.read_bytes() == before
    render_needle_views(ct, entry, centre, out, safety_radius_mm=None, force=True)
    assert out.read_bytes() != before

    def broken_savefig(self: Figure, fname: Path, **kwargs: object) -> None:
        Path(fname).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        render_paths_axial(ct, [entry], [centre], tmp_path / "axial.png")
    with pytest.raises(OSError, match="disk full"):
        render_skin_risk_map([entry], [1.0], tmp_path / "risk.png", centre)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["needle.png"]


def test_skin_risk_map_many_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(20240614)
    n = 200_000
    azimuth = rng.uniform(-np.pi, np.pi, n)
    points = np.stack(
        [120 * np.sin(azimuth), -90 * np.cos(azimuth), rng.uniform(-200, -50, n)], axis=1
    )
    risk = rng.random(n)
    blocked = rng.random(n) < 0.2
    risk[blocked] = np.nan
    reason = np.where(blocked, np.where(points[:, 1] > 0, "bone", "vessel"), "")
    out = render_skin_risk_map(
        points, risk, tmp_path / "risk.png", [0, 0, -120], points[:3], blocked_reason=reason
    )
    assert _png_size(out) == (1300, 650)
    assert out.stat().st_size > 50_000


# --- bad input -------------------------------------------------------------------------

_P0 = np.array([10.0, 20.0, 0.0])
_P1 = np.array([30.0, 30.0, 0.0])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ct, out: render_needle_views(ct, _P0, _P0, out), "coincide"),
        (lambda ct, out: render_needle_views(ct, [np.nan, 0, 0], _P0, out), "entry_lps_mm.*finite"),
        (lambda ct, out: render_needle_views(ct, _P0[:2], _P1, out), "entry_lps_mm.*shape"),
        (lambda ct, out: render_needle_views(ct, _P0, _P1, out, safety_radius_mm=-1), "safety"),
        (lambda ct, out: render_needle_views(ct, _P0, _P1, out, window="foo"), "window"),
        (lambda ct, out: render_paths_axial(ct, [_P0, _P1], [_P1], out), "same number"),
        (lambda ct, out: render_paths_axial(ct, [_P0, _P1], [_P1, _P1], out), "path 2.*entry"),
        (lambda ct, out: render_paths_axial(ct, [[0, 1]], [[0, 2]], out), r"entries.*\(n, 3\)"),
        (lambda ct, out: render_paths_axial(ct, [_P0], [[np.nan, 0, 0]], out), "targets.*row 0"),
        (lambda ct, out: render_paths_axial(ct, [_P0], [_P1], out, labels=["a", "b"]), "labels"),
        (lambda ct, out: render_skin_risk_map([_P0, _P1], [1.0], out, _P0), "risk.*one score"),
        (lambda ct, out: render_skin_risk_map([_P0], [np.inf], out, _P0), "inf"),
        (
            lambda ct, out: render_skin_risk_map([_P0], [np.nan], out, _P0, blocked_reason=[]),
            "blocked_reason",
        ),
        (lambda ct, out: render_skin_risk_map([_P0], [1.0], out, [0, 0]), "centre_lps_mm"),
        (lambda ct, out: oblique_plane(ct, _P0, [1, 0, 0], [1, 1, 0], 5, 5, 1), "orthogonal"),
        (lambda ct, out: oblique_plane(ct, _P0, [0, 0, 0], [0, 1, 0], 5, 5, 1), "non-zero"),
        (lambda ct, out: oblique_plane(ct, _P0, [1, 0, 0], [0, 1, 0], 5, 5, 0), "pixel_mm"),
        (lambda ct, out: oblique_plane(ct, _P0, [1, 0, 0], [0, 1, 0], -5, 5, 1), "half_u_mm"),
        (lambda ct, out: oblique_plane(ct, _P0, [1, 0, 0], [0, 1, 0], 5, 5, 1, order=3), "order"),
        (lambda ct, out: oblique_plane(ct, _P0, [1, 0, 0], [0, 1, 0], 1e4, 5, 0.1), "pixels"),
    ],
)
def test_bad_input_raises_clear_value_error(call, match: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ct, _ = _blob_ct()
    out = tmp_path / "x.png"
    with pytest.raises(ValueError, match=match):
        call(ct, out)
    assert not out.exists()


# --- the real CT -----------------------------------------------------------------------


@pytest.mark.skipif(not LIDC.is_dir(), reason="../shared/data is absent")
def test_all_three_pictures_on_lidc(lidc_ct, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from seldinger.anatomy.body import segment_body
    from seldinger.io import read_volume

    ct = lidc_ct.volume
    nodule = read_volume(LIDC / "nodule_consensus.nii.gz")
    target = nodule.index_to_lps(np.argwhere(nodule.array > 0).mean(axis=0))
    np.testing.assert_allclose(target, NODULE_CENTROID_LPS_MM, atol=0.1)
    assert ct.value_at_lps(target) > -300  # a solid nodule, inside the lung

    # skin entries: the last body voxel on rays from the nodule (posterior, lateral, oblique)
    slab = reorient(ct, "LPS").crop_lps([-250, -250, target[2] - 20], [250, 250, target[2] + 20])
    body = slab.with_array(segment_body(slab))
    entries = []
    for direction in ([0.3, 1.0, 0.0], [1.0, 0.4, 0.0], [0.15, 1.0, 0.25]):
        ray = target + np.arange(0.0, 250.0, 0.5)[:, None] * (direction / np.linalg.norm(direction))
        inside = ndimage.map_coordinates(
            body.array.view(np.uint8), body.lps_to_index(ray).T, order=0
        )
        entries.append(ray[np.nonzero(inside)[0][-1]])
    entries_lps_mm = np.array(entries)
    assert np.all(body.value_at_lps(entries_lps_mm))  # entries on the body, not the table
    assert np.all(ct.value_at_lps(entries_lps_mm) > -300)

    masks = {"body": body, "lesion": nodule.with_array(nodule.array > 0)}
    targets_lps_mm = np.repeat(target[None], len(entries_lps_mm), axis=0)
    axial = render_paths_axial(ct, entries_lps_mm, targets_lps_mm, tmp_path / "a.png", masks=masks)
    needle = render_needle_views(ct, entries_lps_mm[0], target, tmp_path / "n.png", masks=masks)
    planes = needle_view_planes(ct, entries_lps_mm[0], target)
    eye = planes["needles_eye"].resample(masks["lesion"], order=0)
    assert eye.image[eye.image.shape[0] // 2, eye.image.shape[1] // 2] == 1.0  # tip in the lesion

    azimuth = np.radians(np.arange(-180.0, 180.0, 10.0))
    candidates = target + 120 * np.stack(
        [np.sin(azimuth), -np.cos(azimuth), np.zeros_like(azimuth)], axis=1
    )
    risk = np.where(np.cos(azimuth) < 0, np.abs(azimuth), np.nan)  # front half blocked
    risk_map = render_skin_risk_map(
        candidates, risk, tmp_path / "r.png", target, entries_lps_mm, ["bone"] * len(risk)
    )
    assert _png_size(axial) == (900, 960)
    assert _png_size(needle) == (1800, 740)
    assert _png_size(risk_map) == (1300, 650)
    for out in (axial, needle, risk_map):
        assert out.stat().st_size > 30_000


def test_the_picture_window_follows_the_target_lung_or_soft_tissue() -> None:
    """A target in aerated lung is drawn in the lung window; one in the liver (or any solid
    organ) in the soft-tissue window, by a lesion mask or by the target point alone."""
    from seldinger.export.views import picture_window

    array = np.full((60, 60, 30), 50, dtype=np.int16)  # soft tissue
    array[:30] = -850  # lung on the low-i half
    ct = Volume(array, np.diag([1.0, 1.0, 2.0, 1.0]))
    assert picture_window(ct, point_lps_mm=(12.0, 30.0, 30.0)) == "lung"
    assert picture_window(ct, point_lps_mm=(48.0, 30.0, 30.0)) == "soft_tissue"
    nodule = np.zeros(array.shape, dtype=bool)
    nodule[10:16, 28:34, 13:17] = True
    assert picture_window(ct, ct.with_array(nodule)) == "lung"
    assert picture_window(ct, ct.with_array(np.roll(nodule, 35, axis=0))) == "soft_tissue"
    assert picture_window(ct) == "soft_tissue"  # nothing to judge by
