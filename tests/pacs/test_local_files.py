"""Bad local input for push: refused with one line before any network use."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from pacs.helpers import TEST_KEY
from pacs.orthanc_server import free_port
from seldinger.errors import ExitCode, SeldingerIOError
from seldinger.pacs import PacsInputError, PacsNode, push
from seldinger.pacs.local_files import read_instances


@pytest.fixture
def down() -> PacsNode:
    """A node nothing listens on: reaching the network would raise PacsPeerError instead."""
    return PacsNode.parse(f"ORTHANC@127.0.0.1:{free_port()}")


def refused(down: PacsNode, paths: list[Path], match: str, **options: object) -> str:
    with pytest.raises(PacsInputError, match=match) as caught:
        push(down, paths, deid_key=TEST_KEY, **options)  # type: ignore[arg-type]
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_folder_without_dicom(down: PacsNode, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not DICOM")
    refused(down, [tmp_path], "holds no DICOM Part-10 file \\(1 files looked at")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(down, [empty], "holds no DICOM Part-10 file \\(0 files")
    refused(down, [], "no files to push")


def test_a_named_file_that_is_not_dicom(down: PacsNode, tmp_path: Path) -> None:
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(200))
    refused(down, [path], "ct.nii.gz is not a DICOM Part-10 file")


def test_a_missing_path_is_an_io_error(down: PacsNode, tmp_path: Path) -> None:
    with pytest.raises(SeldingerIOError, match="does not exist") as caught:
        push(down, [tmp_path / "missing"], deid_key=TEST_KEY)
    assert caught.value.exit_code is ExitCode.IO


def test_truncated_and_duplicate_files(down: PacsNode, lidc_copy: Path, tmp_path: Path) -> None:
    first = sorted(lidc_copy.iterdir())[0]
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(first.read_bytes()[:3000])
    refused(down, [truncated], "holds 824 bytes of pixel data where its header needs 524288")
    refused(down, [lidc_copy, first], "have the same SOP Instance UID")


def test_burned_in_annotation_is_refused_only_when_deidentifying(
    down: PacsNode, lidc_copy: Path
) -> None:
    path = sorted(lidc_copy.iterdir())[2]
    dataset = pydicom.dcmread(path)
    dataset.BurnedInAnnotation = "YES"
    dataset.save_as(path)
    refused(down, [lidc_copy], "declares burned-in annotation")
    assert len(read_instances([lidc_copy], refuse_burned_in=False).instances) == 16


def test_deidentify_needs_a_key(down: PacsNode, lidc_dicom: Path) -> None:
    with pytest.raises(PacsInputError, match="needs deid_key"):
        push(down, [lidc_dicom])


def test_other_files_in_a_folder_are_skipped(lidc_copy: Path) -> None:
    (lidc_copy / "README.txt").write_text("exported by a viewer")
    found = read_instances([lidc_copy])
    assert len(found.instances) == 16
    assert found.skipped == [lidc_copy / "README.txt"]


def test_emptied_uids_are_repaired_and_noted(abdomen_dicom: Path) -> None:
    found = read_instances([abdomen_dicom])
    datasets = [i.dataset for i in found.instances]
    assert {d.SOPInstanceUID for d in datasets} == {
        d.file_meta.MediaStorageSOPInstanceUID for d in datasets
    }
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert (
        read_instances([abdomen_dicom]).instances[0].dataset.SeriesInstanceUID
        == datasets[0].SeriesInstanceUID
    )
    assert [n.split(" had")[0] for n in found.notes] == ["20 files"] * 2
