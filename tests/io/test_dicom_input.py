"""Real-world DICOM input: every defect gets a clear error naming the file and the fix,
and every valid variant (renamed, nested, compressed, multi-frame, with scouts and
reports) reads voxel for voxel like the original LIDC-IDRI-0001 slices."""

import dicom_cases as cases
import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.io import DicomReadError, read_ct

pytestmark = pytest.mark.usefixtures("lidc_dicom_dir")


@pytest.fixture(scope="module")
def reference():
    return cases.lidc_reference()


def _same_as_reference(ct, reference):
    array, affine = reference
    assert np.array_equal(ct.volume.array, array)
    assert np.allclose(ct.volume.affine, affine, atol=1e-4)


def test_renamed_nested_shuffled_instance_numbers(tmp_path, reference):
    case = cases.copy_lidc(tmp_path / "case")
    _same_as_reference(read_ct(case.folder), reference)


@pytest.mark.parametrize("syntax", ["rle", "jpeg2000", "jpeg_lossless"])
def test_compressed_transfer_syntaxes(tmp_path, reference, syntax):
    case = cases.compressed(tmp_path / "case", syntax)
    _same_as_reference(read_ct(case.folder), reference)


def test_enhanced_multiframe_with_scout_and_dose_report(tmp_path, reference):
    case = cases.enhanced_multiframe(tmp_path / "case")
    ct = read_ct(case.folder)
    _same_as_reference(ct, reference)
    # the multi-frame file alone reads too
    _same_as_reference(read_ct(case.facts["multiframe"]), reference)


def test_scouts_reports_and_other_files_skipped_with_notes(tmp_path, reference):
    case = cases.with_scout_and_dose_report(tmp_path / "case")
    ct = read_ct(case.folder)
    _same_as_reference(ct, reference)
    notes = " ".join(ct.meta.notes)
    assert "localizer" in notes and "not an image" in notes and "non-DICOM" in notes


def test_two_series_largest_chosen_or_by_uid(tmp_path, reference):
    case = cases.two_series_mixed_sizes(tmp_path / "case")
    ct = read_ct(case.folder)
    _same_as_reference(ct, reference)
    assert any("2 series" in note and "--series" in note for note in ct.meta.notes)
    other = read_ct(case.folder, series_uid=case.facts["other_series_uid"])
    assert other.volume.shape[2] == case.facts["other_n_slices"]
    with pytest.raises(DicomReadError, match=r"not in .*Series found"):
        read_ct(case.folder, series_uid="1.2.3.4")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (cases.empty_folder, "holds no files"),
        (cases.non_dicom_only, "no DICOM image.*README.txt"),
        (cases.truncated_slice, "truncated|damaged"),
        (cases.two_series_mixed, "ambiguous.*--series"),
        (cases.duplicate_positions, "duplicate slice position.*Remove one"),
        (cases.missing_slice, r"missing slice\(s\).*-117\.500.*-112\.500.*--resample"),
        (cases.uneven_spacing, "uneven slice spacing.*--resample"),
        (cases.differing_orientation, "differing orientation"),
        (cases.gantry_tilt, "gantry tilt.*GantryDetectorTilt 15.*--resample"),
        (cases.non_ct_modality, "modality MR.*CT in Hounsfield units"),
        (
            cases.undecodable_transfer_syntax,
            r"cannot decode transfer syntax 1\.2\.840\.10008\.1\.2\.4\.92.*convert",
        ),
    ],
)
def test_bad_input_clear_error_and_no_output(tmp_path, capsys, make, match):
    case = make(tmp_path / "case")
    with pytest.raises(DicomReadError, match=match) as info:
        read_ct(case.folder)
    message = str(info.value)
    named = [f for f in case.offending if f.suffix in (".dcm", "")]
    if named and make not in (cases.non_dicom_only, cases.non_ct_modality):
        assert any(f.name in message for f in named)  # the message names the file(s)
    else:
        assert str(case.folder) in message  # ... or the folder
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(case.folder), str(out)]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


def test_missing_slice_resampled_on_request(tmp_path, reference):
    case = cases.missing_slice(tmp_path / "case")
    ct = read_ct(case.folder, resample=True)
    array, affine = reference
    assert ct.volume.shape == array.shape
    assert np.allclose(ct.volume.affine, affine, atol=1e-4)
    gap = 7  # z = -115.0 is slice 7; it is the mean of its neighbours
    expected = (array[:, :, gap - 1].astype(np.float32) + array[:, :, gap + 1]) / 2
    assert np.allclose(ct.volume.array[:, :, gap], expected, atol=1e-3)
    others = [k for k in range(16) if k != gap]
    assert np.array_equal(ct.volume.array[:, :, others], array[:, :, others].astype(np.float32))
    assert any("resampled" in note for note in ct.meta.notes)


def test_uneven_spacing_resampled_on_request(tmp_path):
    case = cases.uneven_spacing(tmp_path / "case")
    ct = read_ct(case.folder, resample=True)
    z = case.facts["z_mm"]
    lo, hi = ct.volume.geometry.bounds_lps_mm()
    assert lo[2] == pytest.approx(min(z)) and hi[2] == pytest.approx(max(z))
    spacing = ct.volume.spacing_mm[2]
    assert ct.volume.shape[2] == round((max(z) - min(z)) / spacing) + 1


def test_gantry_tilt_resampled_to_true_positions(tmp_path, reference):
    """After resampling a tilted stack, each slice's pixels sit at the LPS positions the
    tilted headers gave them (checked on the first and last slice, no interpolation
    needed along the normal there)."""
    case = cases.gantry_tilt(tmp_path / "case")
    ct = read_ct(case.folder, resample=True)
    v = ct.volume
    assert v.orientation[:2] == "LP"
    array, _ = reference
    # the last source slice's pixel (i=200, j=300) is at IPP_last + 200*row*dx + 300*col*dy
    t = np.deg2rad(case.facts["tilt_deg"])
    col = np.array([0.0, np.cos(t), -np.sin(t)])
    step = np.asarray(case.facts["slice_step_lps_mm"])
    first_ipp = v.index_to_lps([0, 0, 0])
    for k_src in (0, 15):
        point = (
            first_ipp + k_src * step + 200 * 0.703125 * np.array([1.0, 0, 0]) + 300 * 0.703125 * col
        )
        ijk = v.lps_to_index(point)
        assert ijk[2] == pytest.approx(round(ijk[2]), abs=1e-6)
        value = v.array[200, round(ijk[1]), round(ijk[2])]
        # in-plane interpolation only: value lies between neighbouring source pixels
        neighbours = array[200, 299:302, k_src].astype(np.float32)
        assert neighbours.min() - 1 <= value <= neighbours.max() + 1
