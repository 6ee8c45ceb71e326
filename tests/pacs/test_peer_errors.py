"""Every way the peer can fail, provoked for real: one clear line, exit code PEER, nothing
partial on disk (pull) or in the PACS (push)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from pacs.helpers import PROTOCOLS, TEST_KEY, node_of
from pacs.orthanc_server import (
    READONLY_AET,
    REJECT_COMMENT,
    REJECT_PATIENT_ID,
    OrthancServer,
    free_port,
)
from seldinger.errors import ExitCode, OutputExistsError, PeerError
from seldinger.pacs import (
    PacsNode,
    PacsPeerError,
    SeriesNotFoundError,
    echo,
    find,
    pull,
    push,
)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    assert isinstance(err, PeerError) and err.exit_code is ExitCode.PEER
    return text


def node_at(protocol: str, port: int, aet: str = "ORTHANC") -> PacsNode:
    if protocol == "dimse":
        return PacsNode.parse(f"{aet}@127.0.0.1:{port}")
    return PacsNode.parse(f"http://127.0.0.1:{port}/dicom-web")


def assert_nothing_written(parent: Path) -> None:
    assert list(parent.iterdir()) == [], "no output folder and no temporary folder"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_pacs_that_is_down_gives_one_clear_line(
    protocol: str, lidc_dicom: Path, tmp_path: Path
) -> None:
    node = node_at(protocol, free_port())
    out = tmp_path / "out"
    out.mkdir()
    calls = [
        lambda: echo(node, timeout_s=2.0),
        lambda: find(node, timeout_s=2.0),
        lambda: pull(node, "1.2.3.4", out / "series", timeout_s=2.0),
        lambda: push(node, [lidc_dicom], deid_key=TEST_KEY, timeout_s=2.0),
    ]
    for call in calls:
        with pytest.raises(PacsPeerError) as caught:
            call()
        text = one_line(caught.value)
        assert str(node) in text and "connection refused" in text
        assert "Is the PACS running" in text
    assert_nothing_written(out)


def test_down_message_reads_as_documented() -> None:
    port = free_port()
    with pytest.raises(PacsPeerError) as caught:
        echo(PacsNode.parse(f"ORTHANC@127.0.0.1:{port}"), timeout_s=2.0)
    assert str(caught.value) == (
        f"no DICOM association with ORTHANC@127.0.0.1:{port}: connection refused. Is the "
        "PACS running, and are host, port and AE title right?"
    )


@pytest.mark.parametrize(
    ("called", "calling", "reason"),
    [
        ("WRONG", "SELDINGER", "called ae title not recognised"),
        ("ORTHANC", "INTRUDER", "calling ae title not recognised"),
    ],
)
def test_a_refused_association_sends_and_writes_nothing(
    orthanc: OrthancServer,
    lidc_dicom: Path,
    tmp_path: Path,
    called: str,
    calling: str,
    reason: str,
) -> None:
    node = PacsNode.parse(f"{called}@127.0.0.1:{orthanc.dicom_port}", calling_aet=calling)
    for call in (
        lambda: echo(node, timeout_s=5.0),
        lambda: push(node, [lidc_dicom], deid_key=TEST_KEY, timeout_s=5.0),
        lambda: pull(node, "1.2.3.4", tmp_path / "series", timeout_s=5.0),
    ):
        with pytest.raises(PacsPeerError, match=f"rejected it \\({reason}") as caught:
            call()
        text = one_line(caught.value)
        assert text.startswith(f"no DICOM association with {node}: the PACS rejected it")
        assert f"{called!r}" in text and f"{calling!r}" in text
    assert orthanc.instance_count() == 0
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_silent_peer_times_out(protocol: str, silent_port: int, tmp_path: Path) -> None:
    node = node_at(protocol, silent_port)
    with pytest.raises(PacsPeerError, match=r"within 0\.5 s") as caught:
        echo(node, timeout_s=0.5)
    assert str(node) in one_line(caught.value)
    with pytest.raises(PacsPeerError, match=r"within 0\.5 s"):
        pull(node, "1.2.3.4", tmp_path / "series", timeout_s=0.5)
    assert_nothing_written(tmp_path)


def test_a_pacs_that_refuses_storage_gets_nothing(orthanc: OrthancServer, lidc_dicom: Path) -> None:
    node = node_of(orthanc, "dimse", calling_aet=READONLY_AET)
    assert echo(node).protocol == "dimse"  # the association itself is allowed
    with pytest.raises(PacsPeerError) as caught:
        push(node, [lidc_dicom], deid_key=TEST_KEY, timeout_s=5.0)
    text = one_line(caught.value)
    assert "failed at instance 1 of 16" in text and "closed the association" in text
    assert "allows C-STORE for our AE title 'READONLY'" in text
    assert text.endswith("Stored before the failure (0): none")
    assert orthanc.instance_count() == 0


def test_an_unaccepted_transfer_syntax_stops_the_push_before_anything_is_sent(
    orthanc: OrthancServer, lidc_copy: Path
) -> None:
    # One file of 16 in a transfer syntax this Orthanc refuses: the other 15 would go, but
    # the check of the accepted presentation contexts comes first.
    path = lidc_copy / "07.dcm"
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    dataset.save_as(path, enforce_file_format=True)
    with pytest.raises(PacsPeerError) as caught:
        push(node_of(orthanc, "dimse"), [lidc_copy], deid_key=TEST_KEY, timeout_s=10.0)
    assert one_line(caught.value).startswith(
        f"C-STORE on {orthanc.dimse}: the PACS does not accept CT Image Storage in Deflated "
        "Explicit VR Little Endian; nothing was sent."
    )
    assert caught.value.stored_sop_instance_uids == ()
    assert orthanc.instance_count() == 0


def mark_for_rejection(folder: Path, reject: str) -> list[str]:
    """Give every file the filter's patient ID, mark ``reject`` for refusal; the UIDs in order."""
    uids = []
    for path in sorted(folder.iterdir()):
        dataset = pydicom.dcmread(path)
        dataset.PatientID = REJECT_PATIENT_ID
        if path.name == reject:
            dataset.ImageComments = REJECT_COMMENT
        dataset.save_as(path)
        uids.append(str(dataset.SOPInstanceUID))
    return uids


def test_a_store_failing_midway_lists_what_was_stored(
    orthanc: OrthancServer, lidc_copy: Path
) -> None:
    uids = mark_for_rejection(lidc_copy, "05.dcm")
    with pytest.raises(PacsPeerError, match="failed at instance 6 of 16") as caught:
        push(node_of(orthanc, "dimse"), [lidc_copy], deidentify=False, timeout_s=10.0)
    text = one_line(caught.value)
    assert caught.value.stored_sop_instance_uids == tuple(uids[:5])
    assert text.endswith("Stored before the failure (5): " + ", ".join(uids[:5]))
    held = orthanc.rest("/instances?expand")
    assert {i["MainDicomTags"]["SOPInstanceUID"] for i in held} == set(uids[:5])


def test_stow_failing_midway_lists_what_was_stored(orthanc: OrthancServer, lidc_copy: Path) -> None:
    uids = mark_for_rejection(lidc_copy, "05.dcm")
    with pytest.raises(PacsPeerError, match=r"STOW-RS store on .* failed: HTTP 500") as caught:
        push(node_of(orthanc, "dicomweb"), [lidc_copy], deidentify=False, timeout_s=10.0)
    text = one_line(caught.value)
    assert caught.value.stored_sop_instance_uids == tuple(uids[:5])
    assert text.endswith("Stored before the failure (5): " + ", ".join(uids[:5]))
    assert orthanc.instance_count() == 5


def test_pull_of_a_series_with_an_unaccepted_sop_class_keeps_nothing(
    orthanc: OrthancServer, lidc_copy: Path, tmp_path: Path
) -> None:
    # One instance becomes Secondary Capture, a class a C-GET of ours does not accept.
    odd = lidc_copy / "03.dcm"
    dataset = pydicom.dcmread(odd)
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = (
        pydicom.uid.SecondaryCaptureImageStorage
    )
    dataset.save_as(odd)
    pushed = push(node_of(orthanc, "dimse"), [lidc_copy], deid_key=TEST_KEY)
    series = next(iter(pushed.series_uids.values()))
    out = tmp_path / "pulled"
    with pytest.raises(PacsPeerError, match=r"incomplete: \d+ instances received, 1 not sent"):
        pull(node_of(orthanc, "dimse"), series, out, timeout_s=10.0)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lidc"]
    # DICOMweb sends any class: the same series arrives whole that way.
    assert len(pull(node_of(orthanc, "dicomweb"), series, out).paths) == 16


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pull_of_an_unknown_series_is_bad_input(
    orthanc: OrthancServer, protocol: str, tmp_path: Path
) -> None:
    with pytest.raises(SeriesNotFoundError, match=r"holds no series 1\.2\.3\.4") as caught:
        pull(node_of(orthanc, protocol), "1.2.3.4", tmp_path / "series")
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert_nothing_written(tmp_path)


def test_pull_refuses_an_existing_folder_before_any_network_use(tmp_path: Path) -> None:
    out = tmp_path / "series"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    down = node_at("dimse", free_port())
    with pytest.raises(OutputExistsError, match="--force"):
        pull(down, "1.2.3.4", out)
    assert (out / "keep.txt").read_text() == "mine"


def test_pull_with_force_replaces_the_folder_only_when_complete(
    orthanc: OrthancServer, lidc_dicom: Path, tmp_path: Path
) -> None:
    pushed = push(node_of(orthanc, "dicomweb"), [lidc_dicom], deid_key=TEST_KEY)
    series = next(iter(pushed.series_uids.values()))
    out = tmp_path / "series"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(SeriesNotFoundError):
        pull(node_of(orthanc, "dimse"), "1.2.3.4", out, force=True)
    assert (out / "old.txt").exists()
    result = pull(node_of(orthanc, "dimse"), series, out, force=True)
    assert sorted(out.iterdir()) == sorted(result.paths) and len(result.paths) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]
