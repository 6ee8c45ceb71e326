"""DICOM RTSTRUCT: contours on the CT's slices, read back (even–odd) onto the same masks."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from seldinger.export.dicom import (
    DicomExportError,
    plane_contours,
    rasterise_contours,
    read_rtstruct,
    write_ct_series,
    write_rtstruct,
)
from seldinger.imaging import Volume, reorient
from shared_paths import NODULE_CENTROID_LPS_MM

#: Acceptance bounds of the round trip (the exporter reaches Dice 1 and 0 mm on these).
MIN_DICE = 0.97
MAX_CENTROID_SHIFT_MM = 0.5


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def centroid_lps_mm(mask: Volume) -> np.ndarray:
    return mask.index_to_lps(np.argwhere(np.asarray(mask.array)).mean(axis=0))


def test_real_lungs_and_nodule_round_trip(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_rtstruct(dicom_case.masks, dicom_case.series, tmp_path / "rs.dcm")
    read = read_rtstruct(path, dicom_case.series)
    names = {
        "lung_left": "Lung, left",
        "lung_right": "Lung, right",
        "heart": "Heart",
        "nodule": "Nodule",
    }
    for name, mask in dicom_case.masks.items():
        back = read[names[name]]
        assert dice(back.array, mask.array) >= MIN_DICE, name
        shift = np.linalg.norm(centroid_lps_mm(back) - centroid_lps_mm(mask))
        assert shift <= MAX_CENTROID_SHIFT_MM, name
    # the consensus nodule: 6 282 voxels, centroid (56.4, 86.3, -116.0) mm (shared/README)
    assert np.count_nonzero(read["Nodule"].array) == 6282
    np.testing.assert_allclose(centroid_lps_mm(read["Nodule"]), NODULE_CENTROID_LPS_MM, atol=0.1)


def test_contours_reference_their_slices_and_the_study(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    masks = {"nodule": dicom_case.masks["nodule"], "lung_left": dicom_case.masks["lung_left"]}
    ds = pydicom.dcmread(write_rtstruct(masks, dicom_case.series, tmp_path / "rs.dcm"))
    series = dicom_case.series
    z_of = {str(s.SOPInstanceUID): float(s.ImagePositionPatient[2]) for s in series.datasets}
    for roi in ds.ROIContourSequence:
        for contour in roi.ContourSequence:
            uid = contour.ContourImageSequence[0].ReferencedSOPInstanceUID
            points = np.asarray(contour.ContourData, float).reshape(-1, 3)
            assert len(points) == contour.NumberOfContourPoints
            np.testing.assert_allclose(points[:, 2], z_of[uid], atol=1e-3)
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == series.frame_of_reference_uid == ds.FrameOfReferenceUID
    study = frame.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == series.study_uid == ds.StudyInstanceUID
    images = study.RTReferencedSeriesSequence[0].ContourImageSequence
    assert [i.ReferencedSOPInstanceUID for i in images] == list(series.sop_instance_uids)
    types = {o.ReferencedROINumber: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence}
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    assert {names[n]: t for n, t in types.items()} == {"Nodule": "GTV", "Lung, left": "ORGAN"}
    colours = [tuple(r.ROIDisplayColor) for r in ds.ROIContourSequence]
    assert len(set(colours)) == 2


def _shapes(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    r = np.hypot(i - 20.0, j - 18.0)
    ring = (r <= 12) & (r > 5)  # a hole
    islands = (np.hypot(i - 8.0, j - 8.0) <= 3) | (np.hypot(i - 32.0, j - 30.0) <= 4)
    target = ring | ((r <= 2.5) & (k % 2 == 0))  # an island inside the hole, every other slice
    line = np.zeros(shape, bool)
    line[5:35, 34, :] = True  # one pixel wide
    checker = np.zeros(shape, bool)
    checker[2:4, 2:4, 1] = [[True, False], [False, True]]  # diagonal neighbours only
    return {
        "ring": ring & (k > 0),
        "islands": islands,
        "ring_island": target,
        "line": line,
        "checker": checker,
    }


@pytest.mark.parametrize("affine_diag", [(0.8, 0.9, 2.0), (-0.8, 0.9, -2.0)])
def test_synthetic_holes_and_islands_round_trip_exactly(affine_diag, tmp_path) -> None:  # type: ignore[no-untyped-def]
    affine = np.diag([*affine_diag, 1.0])
    affine[:3, 3] = [12.0, -30.0, 40.0]
    shape = (40, 38, 5)
    ct = Volume(np.zeros(shape, np.int16), affine)
    series = write_ct_series(ct, tmp_path / "ct")  # k reversed when the grid is left-handed
    masks = {name: ct.with_array(a) for name, a in _shapes(shape).items()}
    read = read_rtstruct(write_rtstruct(masks, series, tmp_path / "rs.dcm"), series)
    for name, mask in masks.items():
        expected = series.mask_array(mask, name)
        np.testing.assert_array_equal(read[name].array, expected, err_msg=name)
        np.testing.assert_allclose(read[name].affine, series.geometry.affine)
    # and back in the masks' own axis order
    np.testing.assert_array_equal(reorient(read["ring"], ct.orientation).array, masks["ring"].array)


def test_plane_contours_give_outer_and_hole_loops() -> None:
    plane = np.zeros((9, 9), bool)
    plane[1:8, 1:8] = True
    plane[3:6, 3:6] = False
    loops = plane_contours(plane)
    assert len(loops) == 2
    np.testing.assert_array_equal(rasterise_contours(loops, plane.shape), plane)
    assert plane_contours(np.zeros((3, 3), bool)) == []


def test_bad_masks_are_refused_and_nothing_written(dicom_case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    nodule = dicom_case.masks["nodule"]
    out = tmp_path / "rs.dcm"
    with pytest.raises(DicomExportError, match="mask 'ptv' is empty"):
        write_rtstruct(
            {"nodule": nodule, "ptv": nodule.with_array(np.zeros(nodule.shape, bool))},
            dicom_case.series,
            out,
        )
    other = Volume(nodule.array, nodule.affine @ np.diag([1.0, 1.0, 1.0001, 1.0]))
    with pytest.raises(DicomExportError, match="mask 'nodule' is on another grid"):
        write_rtstruct({"nodule": other}, dicom_case.series, out)
    with pytest.raises(DicomExportError, match="masks is empty"):
        write_rtstruct({}, dicom_case.series, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_lobes_and_added_abdominal_organs_are_named_and_coded(  # type: ignore[no-untyped-def]
    dicom_case, tmp_path, dciodvfy_errors
) -> None:
    """A tester's RTSTRUCT carried lung_lower_lobe_left under its raw name with no type;
    lobes and the organs `segment --add` brings (gallbladder, portal vein …) are coded now."""
    from seldinger.export.dicom import write_seg

    left = dicom_case.masks["lung_left"]
    masks = {
        "lung_upper_lobe_left": left,
        "gallbladder": dicom_case.masks["heart"],
        "portal_vein": dicom_case.masks["nodule"],
    }
    path = write_rtstruct(masks, dicom_case.series, tmp_path / "rs.dcm")
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    names = [roi.ROIName for roi in ds.StructureSetROISequence]
    assert names == ["Lung, upper lobe, left", "Gallbladder", "Portal vein"]
    observations = {o.ReferencedROINumber: o for o in ds.RTROIObservationsSequence}
    kinds = [observations[roi.ROINumber].RTROIInterpretedType for roi in ds.StructureSetROISequence]
    assert kinds == ["ORGAN", "ORGAN", "AVOIDANCE"]
    codes = [observations[roi.ROINumber].RTROIIdentificationCodeSequence[0].CodeValue
             for roi in ds.StructureSetROISequence]  # fmt: skip
    assert codes == ["45653009", "28231008", "32764006"]
    seg = pydicom.dcmread(write_seg(masks, dicom_case.series, tmp_path / "seg.dcm"))
    lobe = seg.SegmentSequence[0]
    assert lobe.SegmentedPropertyTypeCodeSequence[0].CodeValue == "45653009"
    modifier = lobe.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence
    assert modifier[0].CodeMeaning == "Left"
