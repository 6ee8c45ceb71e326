"""PacsNode: the two node strings, and the errors for everything else."""

from __future__ import annotations

import dataclasses

import pytest

from seldinger.errors import ExitCode
from seldinger.pacs import PacsInputError, PacsNode, Protocol


def test_dimse_node_string() -> None:
    node = PacsNode.parse(" ORTHANC@127.0.0.1:4242 ", calling_aet="CT_PLANNER")
    assert (node.protocol, node.called_aet, node.host, node.port) == (
        Protocol.DIMSE,
        "ORTHANC",
        "127.0.0.1",
        4242,
    )
    assert node.calling_aet == "CT_PLANNER"
    assert str(node) == "ORTHANC@127.0.0.1:4242"
    assert PacsNode.parse(str(node), calling_aet="CT_PLANNER") == node


def test_ipv6_and_host_names() -> None:
    node = PacsNode.parse("PACS@[::1]:104")
    assert node.host == "::1" and str(node) == "PACS@[::1]:104"
    assert PacsNode.parse("MY PACS@pacs.example.org:11112").called_aet == "MY PACS"


def test_dicomweb_node_string() -> None:
    node = PacsNode.parse("https://pacs.example.org/dicom-web/")
    assert node.protocol is Protocol.DICOMWEB and node.url == "https://pacs.example.org/dicom-web"
    assert str(node) == node.url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ORTHANC@127.0.0.1", "cannot read the PACS node"),
        ("127.0.0.1:4242", "cannot read the PACS node"),
        ("ORTHANC@127.0.0.1:0", "port must be 1 to 65535; got 0"),
        ("ORTHANC@127.0.0.1:70000", "port must be 1 to 65535; got 70000"),
        ("A_VERY_LONG_AE_TITLE@127.0.0.1:104", "called_aet must be 1 to 16 characters"),
        ("BAD\\AET@127.0.0.1:104", "except backslash"),
        ("   @127.0.0.1:104", "cannot read the PACS node"),
        ("ftp://127.0.0.1/dicom-web", "must start with http:// or https://"),
        ("http://alice:secret@127.0.0.1:8042/dicom-web", "must not hold a user name or password"),
        ("http://127.0.0.1:8042/dicom-web?x=1", "without \\?query"),
    ],
)
def test_bad_node_strings_say_what_to_give(text: str, message: str) -> None:
    with pytest.raises(PacsInputError, match=message) as caught:
        PacsNode.parse(text)
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert "secret" not in str(caught.value)


def test_calling_aet_is_checked_and_node_is_frozen() -> None:
    with pytest.raises(PacsInputError, match="called_aet must be 1 to 16"):
        PacsNode.dimse("    ", "127.0.0.1", 104)
    with pytest.raises(PacsInputError, match="calling_aet must be 1 to 16"):
        PacsNode.parse("ORTHANC@127.0.0.1:4242", calling_aet="")
    node = PacsNode.parse("ORTHANC@127.0.0.1:4242")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.port = 1  # type: ignore[misc]
