"""The real CTs in ../shared/data read with correct LPS geometry."""

import numpy as np
import pydicom
import pytest

from seldinger.io import read_ct, read_volume
from shared_paths import ABDOMEN, LIDC, NODULE_CENTROID_LPS_MM, requires_shared

pytestmark = requires_shared


def test_lidc_dicom_and_nifti_agree_voxel_for_voxel(lidc_ct):
    dicom = read_ct(LIDC / "dicom")
    nifti = lidc_ct.volume
    assert dicom.volume.shape == (512, 512, 16)
    assert dicom.volume.spacing_mm == pytest.approx((0.703125, 0.703125, 2.5))
    # the first DICOM slice is z = -132.5 mm, slice 83 of the NIfTI
    start = nifti.lps_to_index(dicom.volume.index_to_lps([0, 0, 0]))
    assert start == pytest.approx([0, 0, 83], abs=1e-4)
    assert np.array_equal(dicom.volume.array, nifti.array[:, :, 83:99])
    for ijk in [(0, 0, 0), (511, 0, 15), (0, 511, 7), (300, 350, 10)]:
        k = ijk[2] + 83
        assert dicom.volume.index_to_lps(ijk) == pytest.approx(
            nifti.index_to_lps((ijk[0], ijk[1], k)), abs=1e-3
        )


def test_lidc_metadata_kept():
    meta = read_ct(LIDC / "dicom").meta
    assert meta.modality == "CT"
    assert meta.series_uid == "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192"
    assert meta.study_uid.endswith("298806137288633453246975630178")
    assert meta.kvp == 120.0
    assert meta.kernel == "STANDARD"
    assert meta.slice_thickness_mm == 2.5
    assert meta.manufacturer == "GE MEDICAL SYSTEMS"
    assert meta.model == "LightSpeed Plus"


def test_lidc_nodule_centroid_through_volume():
    mask = read_volume(LIDC / "nodule_consensus.nii.gz")
    ijk = np.argwhere(mask.array > 0)
    assert len(ijk) == 6282
    centroid = mask.index_to_lps(ijk).mean(axis=0)
    assert centroid == pytest.approx(NODULE_CENTROID_LPS_MM, abs=0.1)
    # the nodule is in the LEFT lung: +x in LPS, lung-density surroundings
    assert centroid[0] > 0


def test_lidc_nodule_sits_in_soft_tissue_inside_lung(lidc_ct):
    hu = lidc_ct.volume.value_at_lps(NODULE_CENTROID_LPS_MM)
    assert -200 < hu < 200
    # 25 mm anterior and 25 mm superior are aerated lung ...
    assert lidc_ct.volume.value_at_lps([56.4, 86.3 - 25.0, -116.0]) < -700
    assert lidc_ct.volume.value_at_lps([56.4, 86.3, -116.0 + 25.0]) < -700
    # ... and 25 mm towards the patient's left is the chest wall of this sub-pleural nodule
    assert lidc_ct.volume.value_at_lps([56.4 + 25.0, 86.3, -116.0]) > -200


def test_abdomen_nifti_geometry():
    ct = read_ct(ABDOMEN / "ct.nii.gz").volume
    # RAS header diag (+3, +3, +3): in LPS the i and j axes run towards right and anterior
    assert ct.orientation == "RAS"
    assert np.allclose(ct.direction, np.diag([-1.0, -1.0, 1.0]))
    assert ct.origin_lps_mm == pytest.approx([177.95632935, -11.31900024, 94.30175781])
    _check_anatomy(ct)


def test_abdomen_dicom_geometry_matches_headers():
    ct = read_ct(ABDOMEN / "dicom")
    v = ct.volume
    assert v.shape == (512, 512, 20)
    headers = [
        pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((ABDOMEN / "dicom").iterdir())
    ]
    z = sorted(float(h.ImagePositionPatient[2]) for h in headers)
    first = next(h for h in headers if float(h.ImagePositionPatient[2]) == z[0])
    assert v.origin_lps_mm == pytest.approx([float(x) for x in first.ImagePositionPatient])
    assert v.spacing_mm == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert v.orientation == "LPS"
    assert ct.meta.kernel is not None and "Br38f" in ct.meta.kernel
    assert ct.meta.manufacturer == "SIEMENS"
    # JPEG 2000 decoded: real HU range
    assert v.array.min() >= -1024 and v.array.max() > 300
    _check_anatomy(v)


def _check_anatomy(ct):
    """Independent of array order: the bony spine lies posterior to the body's centre,
    near the left-right midline of the body."""
    array = np.asarray(ct.array)
    body = np.argwhere(array > -300)
    bone = np.argwhere(array > 250)
    body_lps = ct.index_to_lps(body[:: max(1, len(body) // 200000)]).mean(axis=0)
    bone_lps = ct.index_to_lps(bone[:: max(1, len(bone) // 200000)]).mean(axis=0)
    assert bone_lps[1] > body_lps[1] + 10.0  # posterior = +y in LPS
    assert abs(bone_lps[0] - body_lps[0]) < 40.0


def test_gdcm_fallback_decodes_like_pydicom():
    """The SimpleITK/GDCM fallback gives the same stored values as pydicom's plugins on the
    real Siemens JPEG 2000 slices."""
    from seldinger.io.dicom_pixels import _gdcm_stored, read_stored_pixels

    path = sorted((ABDOMEN / "dicom").iterdir())[0]
    header = pydicom.dcmread(path)
    assert np.array_equal(_gdcm_stored(path, header), read_stored_pixels(path))
