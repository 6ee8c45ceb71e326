"""DICOM SEG: one binary segment per structure, coded, on the CT's slices, read back exactly."""

from __future__ import annotations

from datetime import datetime

import highdicom as hd
import numpy as np
import pydicom
import pytest

from seldinger.export.dicom import DicomExportError, write_ct_series, write_seg
from seldinger.imaging import Volume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def _read_masks(path, series) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Each segment as an (i, j, k) boolean array on the series grid."""
    seg = hd.seg.segread(path)
    numbers = list(seg.segment_numbers)
    stack = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=list(series.sop_instance_uids),
        segment_numbers=numbers,
        combine_segments=False,
    )  # (k, rows = j, columns = i, segment)
    labels = [seg.get_segment_description(n).SegmentLabel for n in numbers]
    return {label: stack[..., n].transpose(2, 1, 0) > 0 for n, label in enumerate(labels)}


@pytest.mark.parametrize("case_name", ["dicom_case", "nifti_case"])
def test_seg_round_trip_and_references(case_name, request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    case = request.getfixturevalue(case_name)
    path = write_seg(case.masks, case.series, tmp_path / "seg.dcm")
    read = _read_masks(path, case.series)
    labels = {
        "lung_left": "Lung, left",
        "lung_right": "Lung, right",
        "heart": "Heart",
        "nodule": "Nodule",
    }
    for name, mask in case.masks.items():
        if not mask.array.any():
            continue
        assert dice(read[labels[name]], mask.array) >= 0.99, name
    ds = pydicom.dcmread(path)
    reference = case.series.reference
    assert ds.StudyInstanceUID == reference.StudyInstanceUID
    assert ds.FrameOfReferenceUID == reference.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != reference.SeriesInstanceUID
    assert ds.PatientID == reference.PatientID and ds.Manufacturer == "Seldinger"
    # empty frames are omitted: one frame per (slice, segment) that holds something
    expected = sum(int(np.count_nonzero(m.array.any(axis=(0, 1)))) for m in case.masks.values())
    assert int(ds.NumberOfFrames) == expected
    sources = {
        item.SourceImageSequence[0].ReferencedSOPInstanceUID
        for frame in ds.PerFrameFunctionalGroupsSequence
        for item in frame.DerivationImageSequence
    }
    assert sources <= set(case.series.sop_instance_uids)


def test_seg_codes(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    masks = dict(dicom_case.masks)
    masks["my_region"] = masks["heart"]  # unknown name: generic code, own label
    moment = datetime(2024, 6, 11, 14, 25, 30)
    ds = pydicom.dcmread(write_seg(masks, dicom_case.series, tmp_path / "seg.dcm", moment=moment))
    assert (ds.ContentDate, ds.ContentTime[:6]) == ("20240611", "142530")
    by_label = {s.SegmentLabel: s for s in ds.SegmentSequence}
    lung = by_label["Lung, left"].SegmentedPropertyTypeCodeSequence[0]
    assert (lung.CodeValue, lung.CodingSchemeDesignator) == ("39607008", "SCT")
    assert lung.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "7771000"  # Left
    nodule = by_label["Nodule"]
    assert nodule.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert nodule.SegmentedPropertyTypeCodeSequence[0].CodeValue == "27925004"
    generic = by_label["my_region"].SegmentedPropertyTypeCodeSequence[0]
    assert generic.CodeValue == "91723000"  # Anatomical Structure


def test_overlapping_segments_keep_every_voxel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    ct = Volume(np.zeros((20, 24, 6), np.int16), affine)
    series = write_ct_series(ct, tmp_path / "ct")
    lesion = np.zeros(ct.shape, bool)
    lesion[5:10, 6:12, 1:4] = True
    ptv = np.zeros(ct.shape, bool)
    ptv[3:12, 4:14, 1:5] = True  # contains the lesion
    masks = {"lesion": ct.with_array(lesion), "ptv": ct.with_array(ptv)}
    read = _read_masks(write_seg(masks, series, tmp_path / "seg.dcm"), series)
    np.testing.assert_array_equal(read["Lesion"], lesion)
    np.testing.assert_array_equal(read["PTV"], ptv)


def test_bad_masks_are_refused_and_nothing_written(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    heart = dicom_case.masks["heart"]
    out = tmp_path / "seg.dcm"
    with pytest.raises(DicomExportError, match="mask 'ablation_zone' is empty"):
        write_seg(
            {"heart": heart, "ablation_zone": heart.with_array(np.zeros(heart.shape, bool))},
            dicom_case.series,
            out,
        )
    cropped = heart.crop_index((slice(0, 500), slice(0, 512), slice(0, 16)))
    with pytest.raises(DicomExportError, match="mask 'heart' is on another grid"):
        write_seg({"heart": cropped}, dicom_case.series, out)
    assert list(tmp_path.iterdir()) == []
