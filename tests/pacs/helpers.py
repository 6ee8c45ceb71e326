"""What several PACS test modules share (imported as ``pacs.helpers``)."""

from __future__ import annotations

from pacs.orthanc_server import OrthancServer
from seldinger.pacs import DeidKey, PacsNode

#: A fixed key, so that the de-identified UIDs of a test run are reproducible.
TEST_KEY = DeidKey.from_text("seldinger-tests: a fixed key, not a secret one")
PROTOCOLS = ("dimse", "dicomweb")


def node_of(server: OrthancServer, protocol: str, *, calling_aet: str = "SELDINGER") -> PacsNode:
    """The server as a DIMSE or DICOMweb node."""
    if protocol == "dimse":
        return PacsNode.parse(server.dimse, calling_aet=calling_aet)
    return PacsNode.parse(server.dicomweb)
