"""One DIMSE association with pynetdicom, and the one-line errors of everything that fails.

Every wait is bounded by ``timeout_s``: the TCP connect, the association request, each
DIMSE response and network silence.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association

from .errors import PacsPeerError
from .node import PacsNode

__all__ = ["failure", "no_answer", "open_association", "silence", "status_code"]

logger = logging.getLogger(__name__)

#: Largest P-DATA PDU we accept (sent as our Maximum Length, PS3.8 D.1): large PDUs cut
#: the per-PDU overhead of image transfers (a 133-slice C-GET: 1.3 s -> 0.9 s).
_MAX_PDU_BYTES = 4 * 1024 * 1024
_FIX_CONNECT = "Is the PACS running, and are host, port and AE title right?"


def _fail(node: PacsNode, reason: str, fix: str) -> PacsPeerError:
    return PacsPeerError(f"no DICOM association with {node}: {reason}. {fix}")


def _reach(node: PacsNode, timeout_s: float) -> str:
    """The node's IP address, after one TCP connect to it (closed at once).

    pynetdicom 3.0 neither says why a connection failed (refused, timed out, no route)
    nor closes its socket when it does (a ResourceWarning); one plain connect first gives
    the reason and leaves pynetdicom only hosts that answer.
    """
    try:
        # create_connection tries every address of the name (IPv6 and IPv4 for localhost)
        with socket.create_connection((node.host, node.port), timeout=timeout_s) as sock:
            address = str(sock.getpeername()[0])
    except socket.gaierror as err:
        raise _fail(
            node, f"cannot resolve host {node.host!r} ({err.strerror})", "Check the host name."
        ) from err
    except ConnectionRefusedError as err:
        raise _fail(node, "connection refused", _FIX_CONNECT) from err
    except TimeoutError as err:
        raise _fail(
            node,
            f"no answer within {timeout_s:g} s",
            "Is the host reachable (firewall, VPN)? On a slow network raise --timeout-s.",
        ) from err
    except OSError as err:
        raise _fail(node, err.strerror or str(err), _FIX_CONNECT) from err
    return address


def _not_established(node: PacsNode, assoc: Association, timeout_s: float) -> PacsPeerError:
    answer = assoc.acceptor.primitive
    if assoc.is_rejected and answer is not None:
        return _fail(
            node,
            f"the PACS rejected it ({answer.reason_str.lower()}, {answer.result_str.lower()})",
            f"Check the called AE title {node.called_aet!r}, and that the PACS lists our AE "
            f"title {node.calling_aet!r} (--calling-aet) for this host.",
        )
    if answer is not None and answer.result == 0:
        return _fail(
            node,
            "the PACS accepted none of the requested services",
            f"Ask its administrator to allow them for AE title {node.calling_aet!r}.",
        )
    return _fail(
        node,
        f"no answer to the association request within {timeout_s:g} s, or the connection "
        "was closed",
        f"Is port {node.port} the PACS's DICOM port (not its web port)? On a slow network "
        "raise --timeout-s.",
    )


def _closed_early(assoc: Association, elapsed_s: float, timeout_s: float) -> bool:
    """Whether the request ended quickly with neither an acceptance nor a rejection.

    A peer that rejects an association sends A-ASSOCIATE-RJ and closes at once; pynetdicom
    3.0 can see the close before it reads the reply (then an A-P-ABORT, or nothing) and
    report no answer: seen once in a few hundred against Orthanc on a loaded machine. Such a
    request is made once more, so that the user hears the peer's reason rather than a
    timeout that never happened; a real abort or silence is reported after the second.
    """
    answered = assoc.is_established or assoc.is_rejected
    return not answered and elapsed_s < 0.5 * timeout_s


def _return_stolen_responses(assoc: Association) -> None:
    """Work around a race in pynetdicom 3.0 that loses responses to fast peers.

    A ``send_*`` call pauses the association's reactor thread before sending, but it can
    read a stale "paused" flag; the reactor then takes the response off the DIMSE queue,
    logs "Received unexpected C-FIND service message", drops it, and the request waits
    for its timeout (pynetdicom issue #875; one C-FIND in a few hundred against a local
    Orthanc). We are the requestor here: every response belongs to the call that waits,
    so the reactor puts it back at the head of the queue instead.
    """
    serve_request = assoc._serve_request
    messages = assoc.dimse.msg_queue

    def serve_or_return(message: Any, context_id: int) -> None:
        if message.is_valid_response:
            logger.debug("returned a %s the reactor took to the DIMSE queue", message.msg_type)
            with messages.mutex:
                messages.queue.appendleft((context_id, message))
                messages.not_empty.notify()
            return
        serve_request(message, context_id)

    setattr(assoc, "_serve_request", serve_or_return)  # noqa: B010 (mypy: method-assign)


@contextmanager
def open_association(
    node: PacsNode,
    timeout_s: float,
    contexts: Sequence[tuple[str, Sequence[str] | None]],
    *,
    roles: Sequence[Any] = (),
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = (),
) -> Iterator[Association]:
    """An established association with ``contexts`` ((abstract syntax, transfer syntaxes))."""
    address = _reach(node, timeout_s)
    ae = AE(ae_title=node.calling_aet)
    ae.connection_timeout = timeout_s
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    for abstract_syntax, transfer_syntaxes in contexts:
        ae.add_requested_context(abstract_syntax, transfer_syntaxes)
    # pynetdicom 3.0 skips close() when shutdown() fails, as it does once the peer has
    # aborted: keep the socket and close it ourselves (close() is idempotent).
    sockets: list[socket.socket] = []

    def keep_socket(event: Any) -> None:
        sock = event.assoc.dul.socket.socket
        # Nagle's algorithm holds back the small last PDU of each message until the
        # peer's delayed ACK (~40 ms per C-STORE); DIMSE is request/response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets.append(sock)

    def associate() -> Association:
        return ae.associate(
            address,
            node.port,
            ae_title=node.called_aet,
            max_pdu=_MAX_PDU_BYTES,
            ext_neg=list(roles) or None,
            evt_handlers=[(evt.EVT_CONN_OPEN, keep_socket), *handlers],
        )

    started = time.monotonic()
    assoc = associate()
    if _closed_early(assoc, time.monotonic() - started, timeout_s):
        assoc = associate()
    try:
        if not assoc.is_established:
            raise _not_established(node, assoc, timeout_s)
        _return_stolen_responses(assoc)
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        for sock in sockets:
            sock.close()


def status_code(status: Dataset) -> int | None:
    """The status code of a DIMSE response; None when none came (timeout or abort)."""
    return int(status.Status) if "Status" in status else None


def failure(node: PacsNode, what: str, status: Dataset, fix: str) -> PacsPeerError:
    code = status_code(status)
    comment = str(status.get("ErrorComment", "") or "").strip()
    detail = f"status 0x{code:04X}" + (f" ({comment})" if comment else "")
    return PacsPeerError(f"{what} on {node} failed: {detail}. {fix}")


def no_answer(waited_s: float, timeout_s: float) -> str:
    """Why a DIMSE request got no response: our timeout, or the peer closed first."""
    if waited_s < 0.9 * timeout_s:
        return f"the PACS closed the association after {waited_s:.2g} s instead of answering"
    return f"no answer within {timeout_s:g} s"


def silence(node: PacsNode, what: str, waited_s: float, timeout_s: float) -> PacsPeerError:
    return PacsPeerError(
        f"{what} on {node} failed: {no_answer(waited_s, timeout_s)}. Check that the PACS "
        f"allows {what} for our AE title {node.calling_aet!r} (its log says why); on a slow "
        "network or a busy PACS raise --timeout-s."
    )
