"""Displacement fields: sampling, Jacobian and folding, warping, the NIfTI files."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.imaging import Volume, VolumeGeometry
from seldinger.motion import (
    DisplacementField,
    FoldingError,
    MotionError,
    check_no_folding,
    jacobian_determinant,
    read_displacement_nifti,
    warp,
    write_displacement_nifti,
    write_jacobian_nifti,
)

GRID = VolumeGeometry.from_spacing((10, 12, 8), (1.0, 1.5, 2.5), (-5.0, 10.0, -100.0))


def _lps(geometry: VolumeGeometry) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in geometry.shape], indexing="ij"), -1)
    return geometry.index_to_lps(ijk)


def test_a_linear_field_has_the_hand_computed_jacobian() -> None:
    # u = (0.1 x, 0, -0.2 z): det(I + du/dx) = 1.1 * 1 * 0.8 = 0.88 everywhere.
    lps = _lps(GRID)
    vectors = np.zeros((*GRID.shape, 3), np.float32)
    vectors[..., 0] = 0.1 * lps[..., 0]
    vectors[..., 2] = -0.2 * lps[..., 2]
    jacobian = jacobian_determinant(DisplacementField(GRID, vectors))
    assert jacobian.shape == GRID.shape
    np.testing.assert_allclose(jacobian.array[1:-1, 1:-1, 1:-1], 0.88, rtol=1e-4)
    interior = np.zeros(GRID.shape, bool)
    interior[1:-1, 1:-1, 1:-1] = True  # ITK's one-sided border differences halve the slope
    assert check_no_folding(jacobian, interior) == pytest.approx(0.88, rel=1e-3)


def test_a_folded_field_is_refused_in_one_line() -> None:
    # u_z = -1.5 z: det = 1 - 1.5 < 0, the mapping turns the volume inside out.
    vectors = np.zeros((*GRID.shape, 3), np.float32)
    vectors[..., 2] = -1.5 * _lps(GRID)[..., 2]
    jacobian = jacobian_determinant(DisplacementField(GRID, vectors))
    with pytest.raises(FoldingError, match=r"folds: Jacobian determinant down to -0.5") as err:
        check_no_folding(jacobian)
    assert err.value.details()["min_jacobian"] == pytest.approx(-0.5, abs=1e-3)
    assert isinstance(err.value, BadInputError) and "\n" not in str(err.value)


def test_folding_outside_the_region_is_not_counted() -> None:
    jacobian = Volume(np.ones(GRID.shape, np.float32), GRID.affine)
    array = np.array(jacobian.array)
    array[0] = -1.0
    region = np.zeros(GRID.shape, bool)
    region[3:6] = True
    assert check_no_folding(jacobian.with_array(array), region) == 1.0
    with pytest.raises(FoldingError, match=r"\(96 voxels ≤ 0 in the field\)"):
        check_no_folding(jacobian.with_array(array))


def test_at_lps_interpolates_and_refuses_points_outside() -> None:
    field = DisplacementField.constant(GRID, (1.0, -2.0, 3.0))
    np.testing.assert_allclose(field.at_lps([[0.0, 12.0, -95.0]]), [[1.0, -2.0, 3.0]])
    with pytest.raises(MotionError, match="outside the displacement field"):
        field.at_lps([0.0, 0.0, 0.0])


def test_a_field_of_the_wrong_shape_or_with_nan_is_refused() -> None:
    with pytest.raises(MotionError, match=r"must have shape \(10, 12, 8, 3\)"):
        DisplacementField(GRID, np.zeros((10, 12, 8), np.float32))
    bad = np.zeros((*GRID.shape, 3), np.float32)
    bad[1, 1, 1, 0] = np.nan
    with pytest.raises(MotionError, match="NaN"):
        DisplacementField(GRID, bad)


def test_warp_samples_the_image_at_x_plus_u() -> None:
    # image = z (LPS mm); u = (0, 0, +5 mm) → warped(x) = z + 5 (one voxel and 2.5 mm more).
    grid = VolumeGeometry.from_spacing((6, 6, 12), (1.0, 1.0, 2.5))
    image = Volume(_lps(grid)[..., 2].astype(np.float32), grid.affine)
    warped = warp(image, DisplacementField.constant(grid, (0.0, 0.0, 5.0)), fill_value=-1.0)
    np.testing.assert_allclose(warped.array[:, :, :10], image.array[:, :, :10] + 5.0, atol=1e-4)
    assert (warped.array[:, :, 10:] == -1.0).all()  # x + u leaves the image


def test_warp_keeps_integer_and_mask_types() -> None:
    grid = VolumeGeometry.from_spacing((6, 6, 6), (1.0, 1.0, 1.0))
    ct = Volume(np.full(grid.shape, 40, np.int16), grid.affine)
    mask = ct.with_array(np.ones(grid.shape, bool))
    field = DisplacementField.constant(grid, (0.5, 0.0, 0.0))
    assert warp(ct, field).array.dtype == np.int16
    out = warp(mask, field, interpolation="nearest", fill_value=0)
    assert out.array.dtype == bool and out.array[:4].all()
    with pytest.raises(MotionError, match="interpolation must be one of"):
        warp(ct, field, interpolation="cubic")


def test_displacement_nifti_keeps_lps_components_and_says_so(tmp_path: Path) -> None:
    lps = _lps(GRID)
    vectors = np.stack([lps[..., 0] * 0.01, np.full(GRID.shape, -2.0), lps[..., 2] * 0.02], -1)
    field = DisplacementField(GRID, vectors.astype(np.float32))
    path = write_displacement_nifti(field, tmp_path / "displacement_lps_mm.nii.gz")
    image = nibabel.load(path)
    assert image.shape == (10, 12, 8, 1, 3)  # NIfTI vector: 5-D, components last
    assert image.header.get_intent()[0] == "vector"
    assert b"LPS mm" in image.header["descrip"].tobytes()
    # Grid in RAS (x and y flipped), vector components untouched (LPS).
    np.testing.assert_allclose(image.affine[:3, 3], [5.0, -10.0, -100.0])
    np.testing.assert_allclose(np.asarray(image.dataobj)[2, 3, 4, 0], vectors[2, 3, 4], atol=1e-6)
    back = read_displacement_nifti(path)
    assert back.geometry.same_as(GRID)
    np.testing.assert_array_equal(back.vectors_lps_mm, field.vectors_lps_mm)
    with pytest.raises(FileExistsError):
        write_displacement_nifti(field, path)


def test_jacobian_nifti_round_trip(tmp_path: Path) -> None:
    from seldinger.io import read_nifti

    jacobian = jacobian_determinant(DisplacementField.constant(GRID, (1.0, 1.0, 1.0)))
    path = write_jacobian_nifti(jacobian, tmp_path / "jacobian.nii.gz")
    back = read_nifti(path)
    np.testing.assert_allclose(back.affine, GRID.affine)
    np.testing.assert_allclose(back.array, 1.0)


def test_reading_a_missing_or_scalar_file_is_one_clear_error(tmp_path: Path) -> None:
    from seldinger.io import write_nifti

    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_displacement_nifti(tmp_path / "none.nii.gz")
    scalar = write_nifti(
        Volume(np.zeros(GRID.shape, np.float32), GRID.affine), tmp_path / "s.nii.gz"
    )
    with pytest.raises(MotionError, match="3-D image of 3-vectors"):
        read_displacement_nifti(scalar)
