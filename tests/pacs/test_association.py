"""The association helper: our workaround of pynetdicom's lost-response race, and sockets."""

from __future__ import annotations

from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from pacs.helpers import node_of
from pacs.orthanc_server import OrthancServer
from seldinger.pacs.association import open_association


def test_a_response_taken_by_the_reactor_goes_back_to_the_queue(orthanc: OrthancServer) -> None:
    # What pynetdicom's reactor does when it wins the race (issue #875): it hands the
    # response meant for the waiting send_* call to _serve_request.
    response = C_ECHO()
    response.MessageIDBeingRespondedTo = 7
    response.AffectedSOPClassUID = Verification
    response.Status = 0x0000
    with open_association(node_of(orthanc, "dimse"), 5.0, [(Verification, None)]) as assoc:
        assert response.is_valid_response
        assoc._serve_request(response, 1)
        assert assoc.dimse.get_msg(block=False) == (1, response)
        assert assoc.send_c_echo().Status == 0x0000  # the association still works
