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
the socket's receive side, and a server's connections also have a writer thread
(:class:`~.outbox.Outbox`) that owns a duplicate of the socket for sending, so that a
client that reads slowly never delays another client's frames. A client's sends come from
the caller's thread, serialised by ``_send_lock``. Received messages go into the
endpoint's :class:`~.queue.FrameQueue` (its own lock), counters into ``_counts``
(``_counts_lock``). No lock is held while waiting for a peer. Every blocking call has a
timeout; closing shuts the socket down, which wakes a blocked reader at once, and joins
the threads.

What a peer may make us hold (:mod:`.options`): a header announcing more than its type's
limit drops the connection before a byte of the body is read; a body is read into a
buffer that grows with the bytes that arrive, never allocated from the announced size; a
message must arrive whole within ``message_timeout_s`` plus one second per
``min_rate_bytes_per_s`` bytes (a trickle is cut); a connection whose unread bytes (the
message in progress plus its messages still queued) exceed ``connection_budget_bytes``
is cut.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .codec import decode_message
from .crc import crc64
from .header import (
    HEADER_SIZE,
    BodyError,
    BodyTooLargeError,
    CrcMismatchError,
    Header,
    HeaderError,
    ProtocolError,
)
from .messages import Message, RawMessage, StatusCode, StatusMessage
from .options import LinkOptions, LinkStats
from .outbox import Outbox, send_all
from .queue import FrameQueue, LinkClosedError, Received

__all__ = ["DEFAULT_PORT", "LinkOptions", "LinkStats", "MessageCallback"]

logger = logging.getLogger(__name__)

#: The port 3D Slicer's OpenIGTLinkIF and PLUS listen on by default.
DEFAULT_PORT = 18944

MessageCallback = Callable[[Received], None]


#: Bytes read from the socket at a time into a body (the body grows by what arrives).
RECV_CHUNK = 64 * 1024
#: A refused peer is logged at WARNING at most this often per reason (DEBUG otherwise).
REFUSAL_LOG_INTERVAL_S = 1.0


class _Cut(Exception):  # noqa: N818 (not an error of the caller: a reason to disconnect)
    """Why a peer is disconnected mid-message: the counter to add to and the log text."""

    def __init__(self, counter: str, text: str) -> None:
        super().__init__(text)
        self.counter = counter


class _Closed(Exception):  # noqa: N818
    """We closed the connection while its reader was waiting."""


@dataclass
class _Progress:
    """The message being received: when its first byte came, bytes so far, last progress."""

    started_s: float
    received: int = 0
    last_s: float = 0.0


class Endpoint:
    """Receive side shared by server and client: checks, decodes, queues, calls back."""

    def __init__(self, options: LinkOptions | None, on_message: MessageCallback | None) -> None:
        self._options = options if options is not None else LinkOptions()
        self._queue = FrameQueue(self._options.queue_capacity, self._options.queue_max_bytes)
        self._on_message = on_message
        self._counts_lock = threading.Lock()
        # Guarded by _counts_lock; written by reader threads and senders.
        self._counts: Counter[str] = Counter()
        self._unknown_seen: set[str] = set()
        # Guarded by _counts_lock: when each kind of refusal was last logged at WARNING,
        # and how many were not since.
        self._last_warning_s: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()
        # Guarded by _counts_lock: why the last peer was dropped (None: none was).
        self._last_refusal: str | None = None
        crc64(bytes(9))  # compile or load the CRC kernel now, not on the first message

    @property
    def options(self) -> LinkOptions:
        return self._options

    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] += n

    def _refuse(self, counter: str, peer: str, reason: object) -> None:
        """Count a peer dropped for ``counter`` and log it: at WARNING at most once a second
        per reason (an attack makes hundreds a second), at DEBUG otherwise."""
        now = time.monotonic()
        with self._counts_lock:
            self._counts[counter] += 1
            self._last_refusal = f"{counter.replace('_', ' ')}: {reason}"
            quiet = now - self._last_warning_s.get(counter, -math.inf) < REFUSAL_LOG_INTERVAL_S
            if not quiet:
                self._last_warning_s[counter] = now
                since, self._unlogged[counter] = self._unlogged[counter], 0
            else:
                self._unlogged[counter] += 1
        if quiet:
            logger.debug("disconnected %s (%s): %s", peer, counter, reason)
        else:
            more = f" ({since} more {counter} in the last second)" if since else ""
            logger.warning("disconnected %s (%s): %s%s", peer, counter, reason, more)

    @property
    def last_refusal(self) -> str | None:
        """Why the last peer was dropped (framing, size, CRC …), or None when none was."""
        with self._counts_lock:
            return self._last_refusal

    def stats(self) -> LinkStats:
        """A snapshot of the counters."""
        with self._counts_lock:
            counts = dict(self._counts)
        counts["dropped"] = self._queue.dropped
        return LinkStats.from_counts(counts)

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

    @property
    def _discarding(self) -> bool:
        """True when received bodies are neither queued nor given to a callback."""
        return not self._options.keep_incoming and self._on_message is None

    def _discard(self, header: Header) -> None:
        """Count a message whose body was read and thrown away (``keep_incoming=False``)."""
        with self._counts_lock:
            self._counts["received"] += 1
            self._counts["bytes_received"] += HEADER_SIZE + header.body_size
            self._counts["discarded"] += 1

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
        if self._options.keep_incoming:
            self._queue.put(item)
        else:
            self._count("discarded")
        if self._on_message is not None:
            try:
                self._on_message(item)
            except Exception:
                self._count("callback_errors")
                logger.exception(
                    "on_message callback failed for %s from %s", header.type_name, peer
                )


class Connection:
    """A connected socket with its reader thread (and, on a server, its writer thread).

    Parameters
    ----------
    sock : socket.socket
        The connected socket; the connection owns and closes it.
    peer : str
        ``host:port`` of the other side.
    endpoint : Endpoint
        Where received messages go, the options and the counters.
    on_closed : callable
        Called once, on the reader thread, after the sockets are closed.
    outbox : bool
        Send through a bounded queue and a writer thread (:meth:`post`; a server) instead
        of on the caller's thread (:meth:`send`; a client).
    """

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        endpoint: Endpoint,
        on_closed: Callable[[Connection], None],
        *,
        outbox: bool = False,
    ) -> None:
        options = endpoint.options
        self.peer = peer
        self._endpoint = endpoint
        self._options = options
        self._on_closed = on_closed
        self._timeout_s = options.io_timeout_s
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._timeout_s)
        self._sock = sock  # receive side: the reader thread sets its timeout per recv
        # Send side: a duplicate descriptor, so that its timeout (io_timeout_s, the
        # no-progress limit) is not the reader's. Closed with _sock by the reader.
        self._wsock = sock.dup()
        self._wsock.settimeout(self._timeout_s)
        self._send_lock = threading.Lock()  # serialises direct sends and the final close
        self._closing = threading.Event()  # set once by whoever closes first
        self._scratch: bytearray | None = None  # reader thread only: RECV_CHUNK bytes
        self._outbox = (
            Outbox(
                self._wsock,
                peer,
                capacity=options.send_queue_capacity,
                max_bytes=options.send_queue_max_bytes,
                count=endpoint._count,
                on_failure=self._send_failed,
            )
            if outbox
            else None
        )
        self._thread = threading.Thread(
            target=self._read_loop, name=f"igtl-reader-{peer}", daemon=True
        )

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def start(self) -> None:
        if self._outbox is not None:
            self._outbox.start()
        self._thread.start()

    def discard(self) -> None:
        """Close a connection whose reader never started (its sockets, its writer)."""
        self._closing.set()
        self._shutdown()
        if self._outbox is not None:
            self._outbox.finish(flush=False)
            self._outbox.join(self._timeout_s + 1.0)
        with self._send_lock:
            self._wsock.close()
            self._sock.close()

    def send(self, data: bytes) -> None:
        """Send ``data`` whole on the caller's thread; ConnectionError (and the connection
        is dropped) if it fails or makes no progress for ``io_timeout_s``."""
        with self._send_lock:
            if self._closing.is_set():
                raise ConnectionError(f"the connection to {self.peer} is closed.")
            try:
                send_all(self._wsock, data)
            except OSError as err:
                self._closing.set()
                self._shutdown()
                raise ConnectionError(
                    f"sending to {self.peer} failed ({err!r}); the connection was dropped."
                ) from err

    def post(self, data: bytes) -> bool:
        """Queue ``data`` for the writer thread without waiting; False if closed (or no outbox)."""
        if self._outbox is None or self._closing.is_set():
            return False
        return self._outbox.post(data)

    def _send_failed(self, err: OSError) -> None:
        """The writer thread could not send: drop this client (the others go on)."""
        if self._closing.is_set():
            return  # we were closing anyway
        self._endpoint._count("send_failures")
        logger.warning(
            "sending to %s failed or made no progress for %s s (%r); disconnecting it",
            self.peer,
            self._timeout_s,
            err,
        )
        self._closing.set()
        self._shutdown()

    def begin_close(self) -> None:
        """Start closing without waiting: a server connection first sends what waits."""
        if self._outbox is not None and not self._closing.is_set():
            self._outbox.finish(flush=True)
        else:
            self._closing.set()
            self._shutdown()

    def close(self) -> None:
        """Close (see :meth:`begin_close`) and wait for the threads unless called from one.

        Waits at most about ``io_timeout_s`` for queued messages to go out.
        """
        self.begin_close()
        if self._outbox is not None:
            self._outbox.join(self._timeout_s + 1.0)
        self._closing.set()
        self._shutdown()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(self._timeout_s + 1.0)

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):  # not connected any more
            self._sock.shutdown(socket.SHUT_RDWR)

    # --- receiving (reader thread) ----------------------------------------------------

    def _recv(self, view: memoryview, progress: _Progress | None) -> int:
        """One ``recv_into(view)``: its byte count, 0 at end of stream.

        Between messages (``progress`` None) it waits for ever, waking every
        ``io_timeout_s`` to see whether we are closing. Within a message it raises
        :class:`_Cut` when nothing came for ``io_timeout_s`` (``truncated``) or the
        message's deadline has passed (``timeouts``).
        """
        options = self._options
        while True:
            if progress is None:
                timeout_s = self._timeout_s
            else:
                now = time.monotonic()
                deadline = (
                    progress.started_s
                    + options.message_timeout_s
                    + progress.received / options.min_rate_bytes_per_s
                )
                stalled = progress.last_s + self._timeout_s
                if now >= stalled:
                    raise _Cut(
                        "truncated",
                        f"no data for {self._timeout_s} s after {progress.received} bytes of "
                        "a message",
                    )
                if now >= deadline:
                    raise _Cut(
                        "timeouts",
                        f"{progress.received} bytes of a message in "
                        f"{now - progress.started_s:.1f} s: slower than message_timeout_s "
                        f"({options.message_timeout_s} s) plus 1 s per "
                        f"{options.min_rate_bytes_per_s:.0f} bytes (LinkOptions)",
                    )
                timeout_s = min(deadline, stalled) - now
            self._sock.settimeout(timeout_s)
            try:
                return self._sock.recv_into(view)
            except TimeoutError:
                if self._closing.is_set():
                    raise _Closed from None
            except ConnectionResetError as err:
                if progress is None:
                    raise
                raise _Cut(
                    "truncated", f"reset by the peer after {progress.received} bytes of a message"
                ) from err

    def _read_header(self, view: memoryview) -> _Progress | None:
        """Fill the 58-byte ``view``; None on a clean end of stream before its first byte."""
        got, progress = 0, None
        while got < HEADER_SIZE:
            n = self._recv(view[got:], progress)
            if n == 0:
                if progress is None:
                    return None
                raise _Cut(
                    "truncated", f"the peer closed after {got} of {HEADER_SIZE} header bytes"
                )
            now = time.monotonic()
            if progress is None:
                progress = _Progress(now)
            got += n
            progress.received += n
            progress.last_s = now
        return progress

    def _read_body(self, header: Header, progress: _Progress, keep: bool) -> bytearray:
        """The body, read in chunks into a buffer that grows as bytes arrive.

        With ``keep`` False the bytes are read and thrown away (an empty buffer is
        returned). Raises :class:`_Cut` when the peer closes or stalls, the deadline
        passes, or the connection's unread bytes exceed its budget.
        """
        body = bytearray()
        size, budget = header.body_size, self._options.connection_budget_bytes
        if size == 0:
            return body
        if self._scratch is None:
            self._scratch = bytearray(RECV_CHUNK)
        scratch = memoryview(self._scratch)
        queue = self._endpoint._queue
        got = 0
        while got < size:
            n = self._recv(scratch[: min(RECV_CHUNK, size - got)], progress)
            if n == 0:
                raise _Cut("truncated", f"the peer closed after {got} of {size} body bytes")
            got += n
            progress.received += n
            progress.last_s = time.monotonic()
            if keep:
                body += scratch[:n]
                unread = got + queue.queued_bytes(self.peer)
                if unread > budget:
                    raise _Cut(
                        "over_budget",
                        f"{unread} bytes unread ({got} of a {size}-byte {header.type_name} "
                        "and its messages still in the queue) exceed "
                        f"LinkOptions.connection_budget_bytes ({budget}); read the queue "
                        "faster, or set keep_incoming=False on a server that only sends",
                    )
        return body

    def _check_limits(self, header: Header) -> None:
        limit = self._options.body_limit(header.type_name, header.version)
        if header.body_size > limit:
            raise BodyTooLargeError(
                f"BODY_SIZE {header.body_size} of a header-version-{header.version} "
                f"{header.type_name} message exceeds its limit of {limit} bytes; nothing of "
                "it was read. If the peer is trusted and the message genuine, raise "
                f"LinkOptions.body_limits[{header.type_name!r}] (or unknown_body_limit)."
            )
        budget = self._options.connection_budget_bytes
        if header.body_size > budget:
            raise _Cut(
                "over_budget",
                f"a {header.body_size}-byte {header.type_name} body exceeds "
                f"LinkOptions.connection_budget_bytes ({budget}); nothing of it was read",
            )

    def _read_loop(self) -> None:
        endpoint = self._endpoint
        header_bytes = bytearray(HEADER_SIZE)
        header_view = memoryview(header_bytes)
        try:
            while (progress := self._read_header(header_view)) is not None:
                header = Header.unpack(header_bytes, self._options.max_body_size)
                self._check_limits(header)
                keep = not endpoint._discarding
                body = self._read_body(header, progress, keep)
                if keep:
                    endpoint._deliver(header, body, self.peer, time.time(), time.monotonic())
                else:
                    endpoint._discard(header)
                del body
        except BodyTooLargeError as err:
            endpoint._refuse("oversized", self.peer, err)
        except HeaderError as err:
            endpoint._refuse("framing_errors", self.peer, err)
        except _Cut as cut:
            if not self._closing.is_set():
                endpoint._refuse(cut.counter, self.peer, cut)
        except _Closed:
            pass
        except OSError as err:
            if not self._closing.is_set():
                logger.warning("%s: connection lost (%r)", self.peer, err)
        except Exception:  # a bug of ours: keep the server alive, drop this peer
            logger.exception("reading from %s failed; disconnecting it", self.peer)
        finally:
            self._closing.set()
            self._shutdown()
            if self._outbox is not None:
                self._outbox.finish(flush=False)
                self._outbox.join(self._timeout_s + 1.0)
            with self._send_lock:
                self._wsock.close()
                self._sock.close()
            self._scratch = None
            logger.info("%s disconnected", self.peer)
            self._on_closed(self)
