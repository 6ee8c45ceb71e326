"""What a server sends to one client: a bounded queue of packed messages and its writer thread.

A server sends every frame to every client. Sending them one after another on the
caller's thread (``sendall``) lets one client that reads slowly, or not at all, hold up
the frames of all the others until its send times out (5 s): longer than the 0.5 s after
which ``seldinger navigate guide`` calls the tracker silent. So the caller only appends
the packed bytes to each client's :class:`Outbox` and returns at once; each client has
its own writer thread that sends them in order.

Overflow policy: **the client skips the oldest**. An outbox holds at most
``LinkOptions.send_queue_capacity`` messages and ``send_queue_max_bytes`` bytes (one
message is always accepted, however large); beyond that the oldest waiting message is
dropped and counted (``send_skipped``): a client that cannot keep up gets the newest
poses, late, instead of every pose, later and later. A send that makes no progress for
``io_timeout_s`` drops that client (``send_failures``). The bytes of one broadcast
message are shared by every outbox, so a message costs its size once, not per client.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["Outbox", "send_all"]

logger = logging.getLogger(__name__)

_OPEN, _FLUSH, _STOP = "open", "flush", "stop"


def send_all(sock: socket.socket, data: bytes) -> None:
    """Send ``data`` whole; each ``send`` may wait up to the socket's timeout for progress.

    Unlike :meth:`socket.socket.sendall`, whose timeout bounds the whole call, this fails
    only when the peer takes nothing for a whole timeout, so a large image to a slow but
    live client still goes through.

    Raises
    ------
    OSError
        ``TimeoutError`` when no byte could be sent within the timeout, or the error of
        the socket (reset, broken pipe, shut down).
    """
    view = memoryview(data)
    sent = 0
    while sent < len(view):
        sent += sock.send(view[sent:])


class Outbox:
    """Packed messages waiting to go to one client, and the thread that sends them.

    Parameters
    ----------
    sock : socket.socket
        The socket to send on, with its timeout set (the no-progress limit). Only the
        writer thread uses it; the caller closes it after :meth:`join`.
    peer : str
        ``host:port`` of the client, for logs.
    capacity, max_bytes : int
        Most messages and bytes waiting (see the module docstring).
    count : callable
        ``count(counter_name, n)``: adds to the owner's counters (``send_skipped``).
    on_failure : callable
        Called on the writer thread with the error when a send fails or times out; the
        writer then stops.
    """

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        *,
        capacity: int,
        max_bytes: int,
        count: Callable[[str, int], None],
        on_failure: Callable[[OSError], None],
    ) -> None:
        self._sock = sock
        self._peer = peer
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._count = count
        self._on_failure = on_failure
        self._cond = threading.Condition()
        # Guarded by _cond; written by posters (any thread calling IgtlServer.send) and
        # read by the writer thread.
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self._skipped = 0
        self._state = _OPEN
        self._thread = threading.Thread(target=self._run, name=f"igtl-writer-{peer}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def post(self, data: bytes) -> bool:
        """Queue ``data`` for sending without waiting; False once the outbox is closing."""
        with self._cond:
            if self._state != _OPEN:
                return False
            skipped = 0
            while self._items and (
                len(self._items) >= self._capacity or self._bytes + len(data) > self._max_bytes
            ):
                self._bytes -= len(self._items.popleft())
                skipped += 1
            self._items.append(data)
            self._bytes += len(data)
            self._cond.notify()
            before, self._skipped = self._skipped, self._skipped + skipped
        if skipped:
            self._count("send_skipped", skipped)
            if before // 1000 != self._skipped // 1000 or before == 0:
                logger.warning(
                    "%s does not keep up: skipped its %d oldest waiting messages (%d so far)",
                    self._peer,
                    skipped,
                    before + skipped,
                )
        return True

    def finish(self, flush: bool) -> None:
        """Stop taking messages; the writer sends what waits (``flush``) or drops it, then ends."""
        with self._cond:
            if self._state == _OPEN and flush:
                self._state = _FLUSH
            elif not flush:
                self._state = _STOP
            self._cond.notify()

    def join(self, timeout_s: float) -> None:
        """Wait for the writer thread to end (no-op if it never started or is the caller)."""
        thread = self._thread
        if thread.ident is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and self._state == _OPEN:
                    self._cond.wait()
                if self._state == _STOP or not self._items:
                    self._items.clear()
                    self._bytes = 0
                    return
                data = self._items.popleft()
                self._bytes -= len(data)
            try:
                send_all(self._sock, data)
            except OSError as err:
                self._on_failure(err)
                return
