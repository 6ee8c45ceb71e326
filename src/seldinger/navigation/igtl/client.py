"""OpenIGTLink client: one connection, a reader thread, the same receive API as the server.

There is no automatic reconnection: when the server hangs up, :meth:`IgtlClient.receive`
returns what had arrived and then raises :class:`~.queue.LinkClosedError`; make a new
client to connect again. Why threads and not asyncio: see :mod:`.connection`.
"""

from __future__ import annotations

import logging
import socket

from seldinger.errors import PeerError

from .connection import DEFAULT_PORT, Connection, Endpoint, LinkOptions, MessageCallback
from .messages import Message

__all__ = ["IgtlClient"]

logger = logging.getLogger(__name__)


class IgtlClient(Endpoint):
    """Connect to an OpenIGTLink server (Slicer's OpenIGTLinkIF, PlusServer, a tracker).

    The connection is open when the constructor returns; use the client as a context
    manager or call :meth:`close`.

    Parameters
    ----------
    host : str
        Server address (default ``"127.0.0.1"``).
    port : int
        Server port (default 18944, Slicer's and PLUS's).
    connect_timeout_s : float
        How long to try to connect.
    options : LinkOptions, optional
        Queue bounds, limits on what the peer may send, CRC check, time-outs
        (:mod:`.options`).
    on_message : callable, optional
        Called with each :class:`~.queue.Received` on the reader thread right after it
        is queued; exceptions are logged and counted, never propagated.

    Raises
    ------
    ConnectionError
        If no server accepts the connection in time.

    Notes
    -----
    Slicer does not send header-version-2 (v3) messages to a client until it has
    received one from it: send ``StatusMessage(header_version=2)`` after connecting if
    you want v3 metadata from Slicer.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        connect_timeout_s: float = 5.0,
        options: LinkOptions | None = None,
        on_message: MessageCallback | None = None,
    ) -> None:
        super().__init__(options, on_message)
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        except OSError as err:
            raise PeerError(
                f"cannot connect to an OpenIGTLink server at {host}:{port} ({err}). Start "
                "the server first (Slicer: OpenIGTLinkIF module, a server connector on port "
                "18944; PLUS: PlusServer) or check host and port."
            ) from err
        self._peer = f"{host}:{port}"
        self._count("connections")
        try:
            self._connection = Connection(sock, self._peer, self, self._lost)
        except OSError:
            sock.close()
            raise
        self._connection.start()
        logger.info("connected to %s", self._peer)

    @property
    def connected(self) -> bool:
        """False once either side has closed the connection."""
        return not self._connection.closed

    @property
    def peer(self) -> str:
        """``host:port`` of the server."""
        return self._peer

    def send(self, message: Message) -> None:
        """Send ``message``; ConnectionError if the connection is (or becomes) closed."""
        try:
            self._connection.send(message.pack())
        except ConnectionError:
            self._count("send_failures")
            raise

    def close(self) -> None:
        """Disconnect and join the reader thread (idempotent)."""
        self._connection.close()
        self._queue.close()

    def __enter__(self) -> IgtlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _lost(self, connection: Connection) -> None:
        self._queue.close()
