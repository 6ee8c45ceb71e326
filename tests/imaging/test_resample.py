import numpy as np
import pytest

from seldinger.imaging import GeometryError, Volume, VolumeGeometry, reorient, resample

RNG_SEED = 20240611


def _ct(shape=(12, 10, 8)):
    rng = np.random.default_rng(RNG_SEED)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = [-5.0, 3.0, -100.0]
    return Volume(rng.integers(-1000, 1000, shape).astype(np.int16), affine)


def test_identity_resample_is_exact():
    ct = _ct()
    for interpolation in ("linear", "nearest"):
        out = resample(ct, ct.geometry, interpolation=interpolation)
        assert np.array_equal(out.array, ct.array)
    assert resample(ct, ct.geometry, "nearest").array.dtype == np.int16
    assert resample(ct, ct.geometry, "linear").array.dtype == np.float32


def test_linear_midpoints_hand_computed():
    ct = Volume(np.arange(8, dtype=np.float64).reshape(2, 2, 2), np.eye(4))
    target = VolumeGeometry(
        (1, 1, 1), np.array([[1, 0, 0, 0.5], [0, 1, 0, 0.5], [0, 0, 1, 0.5], [0, 0, 0, 1.0]])
    )
    assert resample(ct, target).array[0, 0, 0] == pytest.approx(3.5)


def test_outside_gets_fill_value():
    ct = _ct()
    shifted = ct.affine.copy()
    shifted[0, 3] += 100.0
    out = resample(ct, VolumeGeometry(ct.shape, shifted), fill_value=-1024)
    assert np.all(out.array == -1024)


def test_upsample_downsample_round_trip_nearest():
    ct = _ct()
    fine = VolumeGeometry.from_spacing(
        (24, 20, 16), (0.35, 0.35, 1.25), tuple(ct.origin_lps_mm - [0.175, 0.175, 0.625])
    )
    up = resample(ct, fine, "nearest")
    back = resample(up, ct.geometry, "nearest")
    assert np.array_equal(back.array, ct.array)


def test_resample_to_reoriented_grid_matches_reorient():
    ct = _ct()
    for code in ("RAI", "SLP", "IAR"):
        flipped = reorient(ct, code)
        assert flipped.orientation == code
        out = ct.resample_to(flipped, interpolation="linear")
        assert np.array_equal(out.array, flipped.array.astype(np.float32))


def test_mask_resample_keeps_bool():
    ct = _ct()
    mask = ct.with_array(ct.array > 0)
    out = resample(mask, ct.geometry, "nearest")
    assert out.array.dtype == bool and np.array_equal(out.array, mask.array)


def test_all_48_orientations_round_trip():
    ct = _ct((5, 6, 7))
    for code in _all_codes():
        back = reorient(reorient(ct, code), "LPS")
        assert np.array_equal(back.array, ct.array)
        assert np.allclose(back.affine, ct.affine)


def test_bad_code_and_interpolation():
    with pytest.raises(GeometryError, match="each patient axis once"):
        reorient(_ct(), "LLS")
    with pytest.raises(ValueError, match="interpolation"):
        resample(_ct(), _ct().geometry, interpolation="cubic")


def _all_codes():
    from itertools import permutations, product

    codes = []
    for perm in permutations(range(3)):
        for signs in product((0, 1), repeat=3):
            codes.append(
                "".join(("RL", "AP", "IS")[a][s] for a, s in zip(perm, signs, strict=True))
            )
    assert len(set(codes)) == 48
    return codes
