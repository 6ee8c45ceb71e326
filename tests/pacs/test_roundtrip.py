"""push -> find -> pull against a real Orthanc, over DIMSE and DICOMweb, with real CTs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from pacs.helpers import PROTOCOLS, TEST_KEY, node_of
from pacs.orthanc_server import OrthancServer
from seldinger.io import read_ct
from seldinger.pacs import echo, find, pull, push

KEY = TEST_KEY


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_echo_answers_with_a_round_trip_time(orthanc: OrthancServer, protocol: str) -> None:
    result = echo(node_of(orthanc, protocol), timeout_s=5.0)
    assert result.protocol == protocol
    assert 0.0 < result.round_trip_ms < 5000.0


def assert_same_ct(original: Path, pulled: Path) -> None:
    """Voxels exactly, affines to 1e-6 mm, and Rows, Columns and pixel bytes per slice."""
    a, b = read_ct(original), read_ct(pulled)
    assert a.volume.array.shape == b.volume.array.shape
    assert np.array_equal(a.volume.array, b.volume.array)
    np.testing.assert_allclose(b.volume.affine, a.volume.affine, rtol=0, atol=1e-6)

    def by_position(folder: Path) -> dict[float, pydicom.Dataset]:
        datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
        return {float(d.ImagePositionPatient[2]): d for d in datasets}

    before, after = by_position(original), by_position(pulled)
    assert sorted(before) == sorted(after)
    for z, dataset in before.items():
        assert (after[z].Rows, after[z].Columns) == (dataset.Rows, dataset.Columns)
        assert after[z].PixelData == dataset.PixelData
        assert after[z].file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", ["lidc_dicom", "abdomen_dicom"])
def test_push_find_pull_returns_the_same_ct(
    orthanc: OrthancServer,
    protocol: str,
    case: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    folder: Path = request.getfixturevalue(case)
    node = node_of(orthanc, protocol)
    pushed = push(node, [folder], deid_key=KEY, timeout_s=20.0)
    count = len(list(folder.iterdir()))
    assert len(pushed.stored_sop_instance_uids) == count == orthanc.instance_count()
    assert pushed.deidentified
    [(original_series, sent_series)] = pushed.series_uids.items()
    assert sent_series.startswith("2.25.") and sent_series != original_series

    found = find(node, series_uid=sent_series)
    assert [s.series_uid for s in found] == [sent_series]
    assert found[0].number_of_instances == count
    assert found[0].patient_id.startswith("SLD-")
    assert found[0].modality == "CT"
    assert found[0].study_uid == next(iter(pushed.study_uids.values()))

    out = tmp_path / "pulled"
    result = pull(node, sent_series, out, timeout_s=20.0)
    assert result.out_dir == out and len(result.paths) == count
    assert sorted(out.iterdir()) == sorted(result.paths)
    assert result.total_bytes == sum(p.stat().st_size for p in result.paths)
    assert [p.name for p in tmp_path.iterdir()] == ["pulled"]  # no temporary folder left
    assert_same_ct(folder, out)
    sample = pydicom.dcmread(result.paths[0])
    assert sample.PatientIdentityRemoved == "YES"
    assert sample.SeriesInstanceUID == sent_series


def test_find_filters_by_patient_modality_and_study(
    orthanc: OrthancServer, lidc_dicom: Path, abdomen_dicom: Path
) -> None:
    dimse, web = node_of(orthanc, "dimse"), node_of(orthanc, "dicomweb")
    lidc = push(dimse, [lidc_dicom], deid_key=KEY)
    abdomen = push(web, [abdomen_dicom], deid_key=KEY)
    for node in (dimse, web):
        everything = find(node)
        assert len(everything) == 2
        lidc_series = next(iter(lidc.series_uids.values()))
        patient = next(s.patient_id for s in everything if s.series_uid == lidc_series)
        assert [s.series_uid for s in find(node, patient_id=patient)] == [lidc_series]
        assert [s.series_uid for s in find(node, patient_id="SLD-*", modality="ct")] == [
            s.series_uid for s in everything
        ]
        study = next(iter(abdomen.study_uids.values()))
        assert [s.study_uid for s in find(node, study_uid=study)] == [study]
        assert find(node, modality="SEG") == []


def test_push_twice_lands_in_the_same_deidentified_series(
    orthanc: OrthancServer, lidc_dicom: Path
) -> None:
    first = push(node_of(orthanc, "dimse"), [lidc_dicom], deid_key=KEY)
    second = push(node_of(orthanc, "dicomweb"), [lidc_dicom], deid_key=KEY)
    assert first.series_uids == second.series_uids
    assert first.stored_sop_instance_uids == second.stored_sop_instance_uids
    assert orthanc.instance_count() == 16


def test_push_without_deidentification_keeps_the_uids(
    orthanc: OrthancServer, lidc_dicom: Path
) -> None:
    pushed = push(node_of(orthanc, "dimse"), [lidc_dicom], deidentify=False)
    [(original, sent)] = pushed.series_uids.items()
    assert original == sent
    assert [s.patient_id for s in find(node_of(orthanc, "dicomweb"))] == ["LIDC-IDRI-0001"]
