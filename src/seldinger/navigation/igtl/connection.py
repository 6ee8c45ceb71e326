"""One TCP connection per thread: the reader loop shared by server and client.

Why threads and not asyncio
---------------------------
* **Latency.** A message is decoded on the thread that read it, and a waiting
  consumer is woken through a condition variable: no event-loop scheduling, futures or
  callbacks in between. A blocking ``recv_into`` returns as soon as the kernel has the
  bytes; the benchmark (``benchmarks/bench_igtl.py``) measures the whole path.
* **Callers are synchronous.** CLIs, notebooks and the guidance loop want
  ``receive(timeout_s)``; with asyncio we would run a loop in a background thread
  anyway and cross threads on every message.
* **Few peers.** A navigation set-up has a handful of connections (tracker, Slicer,
  robot), so a thread each costs nothing; asyncio's strength, thousands of idle
  sockets, does not matter here.
* **CPU-heavy bodies don't block the others.** The CRC kernel releases the GIL, so
  checking a 150 MB IMAGE on one reader does not stall a 1 kHz tracker on another.
  (On one event loop, that CRC would hold up every connection.)

Threads and what they own: each :class:`Connection` has one reader thread, which owns
the socket's receive side. Sends come from the caller's thread, serialised by the
connection's ``_send_lock``. Received messages go into the endpoint's
:class:`~.queue.FrameQueue` (its own lock), counters into ``_counts`` (``_counts_lock``).
Every blocking call has a timeout (``LinkOptions.io_timeout_s``); closing shuts the
socket down, which wakes a blocked reader at once, and joins the thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from seldinger.errors import BadInputError

from .codec import decode_message
from .crc import crc64
from .header import HEADER_SIZE, BodyError, CrcMismatchError, Header, HeaderError, ProtocolError
from .messages import Message, RawMessage, StatusCode, StatusMessage
from .queue import FrameQueue, LinkClosedError, Received

__all__ = ["DEFAULT_PORT", "LinkOptions", "LinkStats", "MessageCallback"]

logger = logging.getLogger(__name__)

#: The port 3D Slicer's OpenIGTLinkIF and PLUS listen on by default.
DEFAULT_PORT = 18944

MessageCallback = Callable[[Received], None]


@dataclass(frozen=True)
class LinkOptions:
    """Settings of a server or client.

    Parameters
    ----------
    queue_capacity : int
        Received messages held before the oldest is dropped (10 000 = 10 s at 1 kHz).
    max_body_size : int
        Largest body accepted, in bytes (default 1 GiB); a larger BODY_SIZE is taken as a
        broken stream and the connection is dropped.
    verify_crc : bool
        Check the CRC-64 of every body (default True). A mismatch is delivered as an
        error record and counted; the connection goes on.
    deliver_unknown : bool
        Put messages of types we do not decode in the queue as
        :class:`~.messages.RawMessage` (default True); False drops them (still counted).
    io_timeout_s : float
        A send that makes no progress, or a message body that stops arriving, for this
        long drops the connection (default 5 s). An idle link is never dropped.
    """

    queue_capacity: int = 10_000
    max_body_size: int = 1 << 30
    verify_crc: bool = True
    deliver_unknown: bool = True
    io_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.queue_capacity < 1:
            raise BadInputError(f"queue_capacity must be positive; got {self.queue_capacity!r}.")
        if self.max_body_size < 0:
            raise BadInputError(f"max_body_size must be >= 0 bytes; got {self.max_body_size!r}.")
        if not self.io_timeout_s > 0:
            raise BadInputError(
                f"io_timeout_s must be positive (seconds); got {self.io_timeout_s!r}."
            )


@dataclass(frozen=True)
class LinkStats:
    """Counters of a server or client since it started.

    ``received`` counts whole messages, good or bad; ``crc_errors`` and
    ``decode_errors`` those delivered as error records; ``unknown_types`` those of types
    we do not decode; ``dropped`` records discarded by the full queue; ``framing_errors``
    and ``truncated`` connections dropped for an untrustworthy header or for ending
    (or stalling) in the middle of a message.
    """

    received: int = 0
    bytes_received: int = 0
    crc_errors: int = 0
    decode_errors: int = 0
    unknown_types: int = 0
    dropped: int = 0
    framing_errors: int = 0
    truncated: int = 0
    callback_errors: int = 0
    send_failures: int = 0
    connections: int = 0


class _TruncatedError(Exception):
    """The peer closed or stalled in the middle of a message."""


class Endpoint:
    """Receive side shared by server and client: checks, decodes, queues, calls back."""

    def __init__(self, options: LinkOptions | None, on_message: MessageCallback | None) -> None:
        self._options = options if options is not None else LinkOptions()
        self._queue = FrameQueue(self._options.queue_capacity)
        self._on_message = on_message
        self._counts_lock = threading.Lock()
        # Guarded by _counts_lock; written by reader threads and senders.
        self._counts: Counter[str] = Counter()
        self._unknown_seen: set[str] = set()
        crc64(bytes(9))  # compile or load the CRC kernel now, not on the first message

    @property
    def options(self) -> LinkOptions:
        return self._options

    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] += n

    def stats(self) -> LinkStats:
        """A snapshot of the counters."""
        with self._counts_lock:
            counts = dict(self._counts)
        counts["dropped"] = self._queue.dropped
        return LinkStats(**{f.name: counts.get(f.name, 0) for f in fields(LinkStats)})

    def receive(self, timeout_s: float | None = None) -> Received:
        """The oldest received message, waiting up to ``timeout_s`` seconds (None: no limit).

        Raises
        ------
        TimeoutError
            If nothing arrived in time.
        LinkClosedError
            If this endpoint is closed (or, for a client, the server hung up) and every
            message received before has been read.
        """
        return self._queue.get(timeout_s)

    def frames(self, timeout_s: float | None = None) -> Iterator[Received]:
        """Received messages in order; stops when none arrives within ``timeout_s`` or the link closes."""
        while True:
            try:
                yield self._queue.get(timeout_s)
            except (TimeoutError, LinkClosedError):
                return

    def __iter__(self) -> Iterator[Received]:
        return self.frames()

    def drain(self) -> list[Received]:
        """Every message received and not yet read, oldest first, without waiting."""
        return self._queue.drain()

    def _deliver(
        self, header: Header, body: bytearray, peer: str, wall_s: float, mono_s: float
    ) -> None:
        """Check, decode, queue and call back one message (runs on a reader thread)."""
        self._count("received")
        self._count("bytes_received", HEADER_SIZE + len(body))
        error: ProtocolError | None = None
        message: Message
        crc = crc64(body) if self._options.verify_crc else header.crc
        if crc != header.crc:
            error = CrcMismatchError(
                f"CRC-64 of the {header.body_size}-byte {header.type_name} body from "
                f"{header.device_name!r} ({peer}) is {crc:#018x}; the header says "
                f"{header.crc:#018x}. The message was discarded; the connection goes on."
            )
            message = StatusMessage(
                code=StatusCode.CHECKSUM_ERROR,
                error_name="CRC64 mismatch",
                status_string=str(error),
                device_name=header.device_name,
                timestamp_s=header.timestamp_s,
            )
            self._count("crc_errors")
            logger.warning("%s", error)
        else:
            try:
                message = decode_message(header, body)
            except BodyError as err:
                error = err
                message = StatusMessage(
                    code=StatusCode.UNKNOWN_ERROR,
                    error_name="decode error",
                    status_string=str(err),
                    device_name=header.device_name,
                    timestamp_s=header.timestamp_s,
                )
                self._count("decode_errors")
                logger.warning("message from %s discarded: %s", peer, err)
            else:
                if isinstance(message, RawMessage):
                    self._count("unknown_types")
                    with self._counts_lock:
                        first = header.type_name not in self._unknown_seen
                        self._unknown_seen.add(header.type_name)
                    if first:
                        logger.info(
                            "%s sends %s messages, which are not decoded", peer, header.type_name
                        )
                    if not self._options.deliver_unknown:
                        return
        item = Received(message, header, wall_s, mono_s, peer, error)
        self._queue.put(item)
        if self._on_message is not None:
            try:
                self._on_message(item)
            except Exception:
                self._count("callback_errors")
                logger.exception(
                    "on_message callback failed for %s from %s", header.type_name, peer
                )


class Connection:
    """A connected socket with its reader thread."""

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        endpoint: Endpoint,
        on_closed: Callable[[Connection], None],
    ) -> None:
        self.peer = peer
        self._sock = sock
        self._endpoint = endpoint
        self._on_closed = on_closed
        self._timeout_s = endpoint.options.io_timeout_s
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._timeout_s)
        self._send_lock = threading.Lock()  # serialises sendall and the final close
        self._closing = threading.Event()  # set once by whoever closes first
        self._thread = threading.Thread(
            target=self._read_loop, name=f"igtl-reader-{peer}", daemon=True
        )

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def start(self) -> None:
        self._thread.start()

    def send(self, data: bytes) -> None:
        """Send ``data`` whole; ConnectionError (and the connection is dropped) if it cannot."""
        with self._send_lock:
            if self._closing.is_set():
                raise ConnectionError(f"the connection to {self.peer} is closed.")
            try:
                self._sock.sendall(data)
            except OSError as err:
                self._closing.set()
                self._shutdown()
                raise ConnectionError(
                    f"sending to {self.peer} failed ({err!r}); the connection was dropped."
                ) from err

    def close(self) -> None:
        """Shut the socket down, and wait for the reader thread unless called from it."""
        self._closing.set()
        self._shutdown()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(self._timeout_s + 1.0)

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):  # not connected any more
            self._sock.shutdown(socket.SHUT_RDWR)

    def _recv_exact(self, view: memoryview, at_boundary: bool) -> bool:
        """Fill ``view``; False on a clean end of stream between messages."""
        got, size = 0, len(view)
        last_progress_s = time.monotonic()
        while got < size:
            try:
                n = self._sock.recv_into(view[got:], size - got)
            except TimeoutError:
                if self._closing.is_set():
                    return False
                if got == 0 and at_boundary:
                    continue  # an idle link is fine
                if time.monotonic() - last_progress_s >= self._timeout_s:
                    raise _TruncatedError(
                        f"no data for {self._timeout_s} s after {got} of {size} bytes"
                    ) from None
                continue
            if n == 0:
                if got == 0 and at_boundary:
                    return False
                raise _TruncatedError(f"the peer closed after {got} of {size} bytes")
            got += n
            last_progress_s = time.monotonic()
        return True

    def _read_loop(self) -> None:
        endpoint, limit = self._endpoint, self._endpoint.options.max_body_size
        header_bytes = bytearray(HEADER_SIZE)
        header_view = memoryview(header_bytes)
        try:
            while self._recv_exact(header_view, at_boundary=True):
                header = Header.unpack(header_bytes, limit)
                body = bytearray(header.body_size)
                if header.body_size and not self._recv_exact(memoryview(body), at_boundary=False):
                    break  # closed by us mid-message
                endpoint._deliver(header, body, self.peer, time.time(), time.monotonic())
        except HeaderError as err:
            endpoint._count("framing_errors")
            logger.warning("%s sent a bad header (%s); disconnecting it", self.peer, err)
        except _TruncatedError as err:
            if not self._closing.is_set():
                endpoint._count("truncated")
                logger.warning("%s: %s of a message; disconnecting it", self.peer, err)
        except OSError as err:
            if not self._closing.is_set():
                logger.warning("%s: connection lost (%r)", self.peer, err)
        except Exception:  # a bug of ours: keep the server alive, drop this peer
            logger.exception("reading from %s failed; disconnecting it", self.peer)
        finally:
            self._closing.set()
            self._shutdown()
            with self._send_lock:
                self._sock.close()
            logger.info("%s disconnected", self.peer)
            self._on_closed(self)
