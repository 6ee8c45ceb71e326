import numpy as np
import pytest

from seldinger.imaging import GeometryError, Volume, VolumeGeometry, orientation_code


def _volume(affine=None, shape=(4, 5, 6), dtype=np.int16):
    array = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    return Volume(array, np.diag([0.5, 0.7, 2.5, 1.0]) if affine is None else affine)


def test_index_to_lps_hand_computed():
    affine = np.array(
        [[0.0, 0.0, -2.0, 10.0], [0.7, 0.0, 0.0, -20.0], [0.0, -0.5, 0.0, 30.0], [0, 0, 0, 1]]
    )
    v = _volume(affine)
    # i runs +P, j runs -S (inferior), k runs -L (right)
    assert v.orientation == "PIR"
    assert v.spacing_mm == pytest.approx((0.7, 0.5, 2.0))
    assert v.index_to_lps([1, 2, 3]).tolist() == pytest.approx([10 - 6.0, -20 + 0.7, 30 - 1.0])
    assert v.lps_to_index(v.index_to_lps([[1.25, 2, 3], [0, 0, 0]])) == pytest.approx(
        np.array([[1.25, 2, 3], [0, 0, 0]])
    )


@pytest.mark.parametrize(
    ("diag", "code"),
    [((1, 1, 1), "LPS"), ((-1, -1, 1), "RAS"), ((-1, -1, -1), "RAI"), ((1, -1, -1), "LAI")],
)
def test_orientation_codes(diag, code):
    assert orientation_code(np.diag([*diag, 1.0])) == code


def test_volume_is_frozen_and_read_only():
    v = _volume()
    with pytest.raises(AttributeError):
        v.array = np.zeros((1, 1, 1))  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        v.array[0, 0, 0] = 7


def test_with_array_keeps_geometry_and_checks_shape():
    v = _volume()
    mask = v.with_array(v.array > 10)
    assert mask.array.dtype == bool
    assert np.array_equal(mask.affine, v.affine)
    with pytest.raises(ValueError, match=r"shape \(4, 5, 6\)"):
        v.with_array(np.zeros((4, 5, 7)))


@pytest.mark.parametrize(
    ("affine", "match"),
    [
        (np.diag([1.0, 0.0, 1.0, 1.0]), "zero-length axis"),
        (np.diag([1.0, -0.0, 1.0, 1.0]) + np.eye(4) * 0, "zero-length"),
        (np.array([[1, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "orthonormal"),
        (np.diag([1.0, 1.0, np.nan, 1.0]), "finite"),
        (np.eye(3), "4x4"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1.0]]), "last row"),
    ],
)
def test_invalid_affines_are_refused(affine, match):
    with pytest.raises(GeometryError, match=match):
        Volume(np.zeros((2, 2, 2)), affine)


def test_invalid_arrays_are_refused():
    with pytest.raises(ValueError, match="3-D"):
        Volume(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        Volume(np.full((2, 2, 2), np.nan), np.eye(4))
    with pytest.raises(TypeError, match="numeric"):
        Volume(np.array([[["a"]]]), np.eye(4))


def test_repr_shows_what_matters():
    text = repr(_volume())
    for part in ("shape=(4, 5, 6)", "spacing_mm=(0.5, 0.7, 2.5)", "'LPS'", "int16"):
        assert part in text


def test_crop_lps_box():
    v = _volume()
    lo = v.index_to_lps([1, 1, 2])
    hi = v.index_to_lps([2, 3, 4])
    sub = v.crop_lps(hi, lo)  # corners in any order
    assert sub.shape == (2, 3, 3)
    assert np.array_equal(sub.array, v.array[1:3, 1:4, 2:5])
    assert np.allclose(sub.index_to_lps([0, 0, 0]), lo)
    with pytest.raises(ValueError, match="holds no voxel"):
        v.crop_lps([100, 100, 100], [200, 200, 200])


def test_crop_lps_on_flipped_grid_keeps_positions():
    affine = np.diag([-0.5, -0.7, 2.5, 1.0])
    affine[:3, 3] = [10, 20, -5]
    v = _volume(affine)
    sub = v.crop_lps([8.4, 17.0, 0.0], [9.6, 19.4, 5.0])
    for ijk in np.ndindex(sub.shape):
        lps = sub.index_to_lps(ijk)
        assert v.value_at_lps(lps) == sub.array[ijk]


def test_value_at_lps_outside_names_extent():
    with pytest.raises(ValueError, match="outside the volume"):
        _volume().value_at_lps([100.0, 0.0, 0.0])


def test_geometry_from_spacing_and_bounds():
    g = VolumeGeometry.from_spacing((3, 4, 5), (1.0, 2.0, 3.0), (10.0, 0.0, -5.0))
    lo, hi = g.bounds_lps_mm()
    assert lo.tolist() == [10.0, 0.0, -5.0]
    assert hi.tolist() == [12.0, 6.0, 7.0]
    assert "VolumeGeometry(shape=(3, 4, 5)" in repr(g)
