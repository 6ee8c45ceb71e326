"""OpenIGTLink server: accepts several clients, one reader thread each.

A client that breaks the protocol or the limits (a header that cannot be trusted, a body
larger than its type allows, a message that stops half-way or trickles, more unread
bytes than its budget) is logged, counted and disconnected; the others keep being served.
Messages from all clients go into one bounded queue, each tagged with its peer. What the
server sends goes through a bounded queue per client (:mod:`.outbox`), so a client that
reads slowly never delays another's frames. Why threads and not asyncio: see
:mod:`.connection`; the limits and their defaults: :mod:`.options`.

Examples
--------
>>> import numpy as np
>>> from seldinger.navigation.igtl import IgtlClient, IgtlServer, TransformMessage
>>> with IgtlServer(port=0) as server, IgtlClient(port=server.port) as client:
...     client.send(TransformMessage(device_name="NeedleToTracker", matrix=np.eye(4)))
...     frame = server.receive(timeout_s=5.0)
>>> frame.message.device_name, frame.ok
('NeedleToTracker', True)
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time

from seldinger.errors import SeldingerIOError

from .connection import DEFAULT_PORT, Connection, Endpoint, LinkOptions, MessageCallback
from .messages import Message

__all__ = ["IgtlServer"]

logger = logging.getLogger(__name__)


class IgtlServer(Endpoint):
    """Listen for OpenIGTLink clients (trackers, Slicer, PLUS, robots) and exchange messages.

    The server is listening when the constructor returns; use it as a context manager
    or call :meth:`close`.

    Parameters
    ----------
    host : str
        Interface to listen on: ``"127.0.0.1"`` (default, this machine only),
        ``"0.0.0.0"`` for every IPv4 interface, or an IPv6 address such as ``"::1"``.
    port : int
        TCP port; default 18944 (Slicer's and PLUS's); 0 picks a free one (see :attr:`port`).
    options : LinkOptions, optional
        Queue bounds, limits on what the peer may send, CRC check, time-outs
        (:mod:`.options`).
    on_message : callable, optional
        Called with each :class:`~.queue.Received` on the reader thread of its client,
        right after it is queued. Keep it short; with several clients it runs on several
        threads at once. Exceptions are logged and counted, never propagated.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        options: LinkOptions | None = None,
        on_message: MessageCallback | None = None,
    ) -> None:
        super().__init__(options, on_message)
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._listener = socket.create_server((host, port), family=family)
        except OSError as err:
            raise SeldingerIOError(
                f"cannot listen on {host}:{port} ({err}). Is another server (Slicer, PLUS) "
                "using the port? Pass another port, or port=0 for a free one."
            ) from err
        self._port = int(self._listener.getsockname()[1])
        self._wake_receive, self._wake_send = socket.socketpair()
        self._lock = threading.Condition()
        # Guarded by _lock (notified on every change); written by the accept thread and,
        # on disconnect, by reader threads.
        self._connections: dict[str, Connection] = {}
        self._closed = False
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="igtl-accept", daemon=True
        )
        self._accept_thread.start()
        logger.info("OpenIGTLink server listening on %s:%d", host, self.port)

    @property
    def port(self) -> int:
        """The TCP port listened on (the one picked when constructed with port 0)."""
        return self._port

    @property
    def clients(self) -> list[str]:
        """``host:port`` of each connected client."""
        with self._lock:
            return list(self._connections)

    def wait_for_clients(self, count: int = 1, timeout_s: float = 5.0) -> list[str]:
        """Wait until at least ``count`` clients are connected; TimeoutError if they are not."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self._connections) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(self._connections)} of {count} clients connected to port "
                        f"{self.port} within {timeout_s} s."
                    )
                self._lock.wait(remaining)
            return list(self._connections)

    def send(self, message: Message, peer: str | None = None) -> int:
        """Send ``message`` to every client, or to ``peer`` only; returns how many it was
        queued for.

        Never waits for a client: the packed message is put in each client's outgoing
        queue and its writer thread sends it, in order. A client whose queue is full skips
        its oldest waiting messages (``send_skipped``); one whose socket fails, or takes
        nothing for ``io_timeout_s``, is disconnected, logged and counted in
        ``send_failures``. The others are not delayed by either.

        Raises
        ------
        KeyError
            If ``peer`` is given and not connected.
        """
        data = message.pack()
        with self._lock:
            if peer is None:
                targets = list(self._connections.values())
            elif peer in self._connections:
                targets = [self._connections[peer]]
            else:
                raise KeyError(
                    f"no client {peer!r} is connected; clients: {list(self._connections)}."
                )
        return sum(connection.post(data) for connection in targets)

    def close(self) -> None:
        """Stop listening, send what waits, disconnect every client and join all threads
        (idempotent). Waits at most about ``io_timeout_s`` for a client that takes nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake_send.send(b"\0")
        self._accept_thread.join()
        self._listener.close()
        self._wake_send.close()
        self._wake_receive.close()
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.begin_close()  # all flush at once
        for connection in connections:
            connection.close()
        self._queue.close()
        logger.info("OpenIGTLink server on port %d closed", self._port)

    def __enter__(self) -> IgtlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_receive, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_receive:
                        return
                    self._accept_one()

    def _accept_one(self) -> None:
        try:
            sock, address = self._listener.accept()
        except OSError as err:  # e.g. the client gave up before we accepted
            logger.debug("accept failed: %r", err)
            return
        peer = f"{address[0]}:{address[1]}"
        try:
            connection = Connection(sock, peer, self, self._forget, outbox=True)
        except OSError as err:  # out of descriptors
            sock.close()
            logger.warning("cannot serve %s (%r); disconnected it", peer, err)
            return
        with self._lock:
            if self._closed:
                connection.discard()
                return
            self._connections[peer] = connection
            self._lock.notify_all()
        # Started outside the lock, which IgtlServer.send needs: starting threads can take
        # milliseconds under load. close() joins this thread before it closes connections.
        self._count("connections")
        logger.info("client %s connected", peer)
        try:
            connection.start()
        except RuntimeError as err:  # out of threads
            logger.warning("cannot serve %s (%r); disconnected it", peer, err)
            connection.discard()
            self._forget(connection)

    def _forget(self, connection: Connection) -> None:
        with self._lock:
            if self._connections.get(connection.peer) is connection:
                del self._connections[connection.peer]
            self._lock.notify_all()
