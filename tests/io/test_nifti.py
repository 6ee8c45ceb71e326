import gzip
from itertools import permutations, product

import nibabel
import numpy as np
import pytest

from seldinger.imaging import Volume, reorient
from seldinger.io import ImageReadError, read_ct, read_nifti, read_volume, write_volume


def test_read_nifti_converts_ras_to_lps(tmp_path):
    ras_affine = np.eye(4)
    ras_affine[:3, 3] = [10.0, 11.0, 12.0]
    nibabel.save(
        nibabel.Nifti1Image(np.zeros((2, 2, 2), np.int16), ras_affine), tmp_path / "ct.nii.gz"
    )
    volume = read_nifti(tmp_path / "ct.nii.gz")
    assert volume.affine[:3, 3].tolist() == [-10.0, -11.0, 12.0]
    # i runs towards +x RAS = patient right
    assert volume.orientation == "RAS"


def test_ras_to_lps_hand_computed_point(tmp_path):
    ras_affine = np.array(
        [[-0.5, 0, 0, 100.0], [0, 0, 2.0, -50.0], [0, 0.8, 0, 20.0], [0, 0, 0, 1.0]]
    )
    nibabel.save(
        nibabel.Nifti1Image(np.zeros((3, 3, 3), np.float32), ras_affine), tmp_path / "a.nii"
    )
    v = read_nifti(tmp_path / "a.nii")
    # voxel (2, 1, 1): RAS = (100 - 1.0, -50 + 2.0, 20 + 0.8) -> LPS = (-99, 48, 20.8)
    assert v.index_to_lps([2, 1, 1]).tolist() == pytest.approx([-99.0, 48.0, 20.8])
    assert v.orientation == "LSA"


def test_singular_affine_refused_naming_file(tmp_path):
    raw = tmp_path / "bad.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), raw)
    with raw.open("rb") as handle:
        header = nibabel.Nifti1Header.from_fileobj(handle)
    header["srow_z"] = [0.0, 0.0, 0.0, 0.0]  # third axis collapsed: det = 0
    header["qform_code"] = 0
    data = raw.read_bytes()
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + data[348:]))
    with pytest.raises(ImageReadError, match=r"bad\.nii\.gz.*zero-length.*Fix the header"):
        read_nifti(path)


def test_no_orientation_refused(tmp_path):
    path = tmp_path / "noform.nii"
    image = nibabel.Nifti1Image(np.zeros((2, 2, 2), np.int16), None)
    image.header.set_sform(None, code=0)
    image.header.set_qform(None, code=0)
    nibabel.save(image, path)
    with pytest.raises(ImageReadError, match="neither sform nor qform"):
        read_nifti(path)


def test_not_3d_and_not_nifti(tmp_path):
    path = tmp_path / "four.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2, 3), np.int16), np.eye(4)), path)
    with pytest.raises(ImageReadError, match="3-D"):
        read_nifti(path)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not a nifti at all")
    with pytest.raises(ImageReadError, match=r"junk\.nii\.gz"):
        read_ct(junk)
    with pytest.raises(ImageReadError, match="unknown image format"):
        read_ct(tmp_path / "four.nii.gz").volume if False else read_ct(_touch(tmp_path / "x.png"))


def _touch(path):
    path.write_bytes(b"\x89PNG")
    return path


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_write_read_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(20240611)
    affine = np.diag([-0.7, 0.7, -2.5, 1.0])
    affine[:3, 3] = [12.0, -30.5, 80.0]
    v = Volume(rng.integers(-1024, 3000, (6, 5, 4)).astype(np.int16), affine)
    path = write_volume(v, tmp_path / f"ct{suffix}")
    back = read_volume(path)
    assert np.array_equal(back.array, v.array)
    assert np.allclose(back.affine, v.affine, atol=1e-5)
    with pytest.raises(FileExistsError, match="--force"):
        write_volume(v, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ct{suffix}"]  # no temporaries left


def test_write_refuses_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="must end in one of"):
        write_volume(Volume(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "ct.png")


def _all_codes():
    return [
        "".join(("RL", "AP", "IS")[a][s] for a, s in zip(perm, signs, strict=True))
        for perm in permutations(range(3))
        for signs in product((0, 1), repeat=3)
    ]


def test_48_axis_orders_read_back_with_identical_landmarks(tmp_path, lidc_ct):
    """The same CT written in all 48 axis permutations/flips reads back with the same LPS
    positions of landmarks (three voxels marked with unique values)."""
    ct = lidc_ct.volume.crop_lps([40.0, 70.0, -125.0], [70.0, 100.0, -105.0])
    array = np.array(ct.array, dtype=np.int16)
    landmarks_ijk = [(1, 2, 3), (20, 5, 1), (7, 30, 6)]
    for value, ijk in zip((30001, 30002, 30003), landmarks_ijk, strict=True):
        array[ijk] = value
    ct = ct.with_array(array)
    expected = {
        v: ct.index_to_lps(ijk) for v, ijk in zip((30001, 30002, 30003), landmarks_ijk, strict=True)
    }
    codes = _all_codes()
    assert len(set(codes)) == 48
    for n, code in enumerate(codes):
        suffix = (".nii.gz", ".nrrd", ".mha")[n % 3]
        path = write_volume(reorient(ct, code), tmp_path / f"{code}{suffix}")
        back = read_volume(path)
        assert back.orientation == code
        for value, lps in expected.items():
            found = np.argwhere(back.array == value)
            assert len(found) == 1
            assert back.index_to_lps(found[0]) == pytest.approx(lps, abs=1e-3), (code, value)


def test_integer_scaling_stays_integer(tmp_path):
    raw = np.array([[[0, 1000], [2000, 4095]]] * 2, dtype=np.int16)
    image = nibabel.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(1.0, -1024.0)
    nibabel.save(image, tmp_path / "scaled.nii.gz")
    v = read_nifti(tmp_path / "scaled.nii.gz")
    assert v.array.dtype == np.int16
    assert np.array_equal(v.array, raw.astype(np.int32) - 1024)
    image.header.set_slope_inter(0.5, 0.25)
    nibabel.save(image, tmp_path / "float.nii.gz")
    f = read_nifti(tmp_path / "float.nii.gz")
    assert f.array.dtype == np.float32
    assert np.allclose(f.array, raw * 0.5 + 0.25)
