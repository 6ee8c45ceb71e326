"""Received messages with their times, and the bounded queue that holds them.

Overflow policy: **drop the oldest**. The queue is bounded in messages *and* in bytes
(header + body of each record). The socket reader never blocks on a full queue
(blocking would back up TCP and, in the end, stall the tracker that sends to us);
instead the oldest records are discarded and counted (:attr:`FrameQueue.dropped`,
logged at WARNING on the first drop and every 1000th after). Navigation wants the newest
pose, and a logger reading the queue can tell from the count that it has a gap. The
default capacity (10 000) holds 10 s of a 1 kHz stream, so a consumer has to stall for
that long before anything is lost; the byte bound (256 MiB by default) keeps a peer that
sends large messages nobody reads from filling the memory. The newest record is always
kept, even if alone it is larger than the byte bound.

The queue also knows how many bytes each peer has in it (:meth:`FrameQueue.queued_bytes`):
the connection's byte budget counts them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from seldinger.errors import BadInputError, PeerError

from .header import HEADER_SIZE, Header, ProtocolError
from .messages import Message

__all__ = ["FrameQueue", "LinkClosedError", "Received"]

logger = logging.getLogger(__name__)


class LinkClosedError(PeerError):
    """The connection (or server) is closed and every message it received has been read."""


@dataclass(frozen=True, eq=False)
class Received:
    """One message as it arrived.

    Parameters
    ----------
    message : Message
        The decoded message. When ``error`` is set it is a :class:`~.messages.StatusMessage`
        made here (code CHECKSUM_ERROR for a CRC mismatch, UNKNOWN_ERROR for a body
        that does not decode) carrying the sender's device name and timestamp.
    header : Header
        The header as received (type, device, timestamp, sizes, CRC).
    receive_time_s : float
        ``time.time()`` when the last body byte was read: same clock as message
        timestamps, for latency when the sender's clock is synchronised.
    receive_monotonic_s : float
        ``time.monotonic()`` at the same moment, for intervals between frames.
    peer : str
        ``host:port`` of the sender.
    error : ProtocolError or None
        What was wrong with the message, if anything.
    """

    message: Message
    header: Header
    receive_time_s: float
    receive_monotonic_s: float
    peer: str
    error: ProtocolError | None = None

    @property
    def ok(self) -> bool:
        """True when the message passed its CRC check and decoded."""
        return self.error is None

    @property
    def device_name(self) -> str:
        return self.header.device_name

    @property
    def size_bytes(self) -> int:
        """Bytes the message took on the wire (header + body), as the queue counts them."""
        return HEADER_SIZE + self.header.body_size

    @property
    def latency_s(self) -> float:
        """Receive time minus the sender's timestamp (NaN when the sender left it unset)."""
        if self.header.timestamp == 0:
            return math.nan
        return self.receive_time_s - self.header.timestamp_s


class FrameQueue:
    """Bounded FIFO of :class:`Received`, thread-safe, dropping the oldest when full.

    Parameters
    ----------
    capacity : int
        Most records held; must be positive.
    max_bytes : int, optional
        Most bytes held (:attr:`Received.size_bytes` summed); default: no byte bound.
        The newest record is always kept.

    Examples
    --------
    >>> queue = FrameQueue(capacity=100, max_bytes=1000)
    >>> queue.capacity, queue.max_bytes, queue.queued_bytes()
    (100, 1000, 0)
    """

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        if capacity < 1:
            raise BadInputError(
                f"capacity must be a positive number of messages; got {capacity!r}."
            )
        if max_bytes is not None and max_bytes < 1:
            raise BadInputError(
                f"max_bytes must be a positive number of bytes (or None); got {max_bytes!r}."
            )
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._cond = threading.Condition()
        # Guarded by _cond; written by reader threads (put) and consumers (get, drain).
        self._items: deque[Received] = deque()
        self._bytes = 0
        self._bytes_by_peer: dict[str, int] = {}
        self._dropped = 0
        self._dropped_bytes = 0
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def max_bytes(self) -> int | None:
        return self._max_bytes

    @property
    def dropped(self) -> int:
        """Records discarded because the queue was full."""
        with self._cond:
            return self._dropped

    @property
    def dropped_bytes(self) -> int:
        """Bytes of the records discarded because the queue was full."""
        with self._cond:
            return self._dropped_bytes

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def queued_bytes(self, peer: str | None = None) -> int:
        """Bytes held now: in all, or of the records from ``peer``."""
        with self._cond:
            return self._bytes if peer is None else self._bytes_by_peer.get(peer, 0)

    def put(self, item: Received) -> None:
        """Append ``item``, discarding the oldest records while the queue is over a bound."""
        size = item.size_bytes
        with self._cond:
            first_drop = self._dropped
            while self._items and (
                len(self._items) >= self._capacity
                or (self._max_bytes is not None and self._bytes + size > self._max_bytes)
            ):
                old = self._pop_locked()
                self._dropped += 1
                self._dropped_bytes += old.size_bytes
            if (
                self._dropped != first_drop
                and (self._dropped - 1) // 1000 != (first_drop - 1) // 1000
            ):
                logger.warning(
                    "receive queue full (at most %d messages, %s bytes): dropped the oldest, "
                    "%d so far; read faster or raise LinkOptions.queue_capacity or "
                    "queue_max_bytes",
                    self._capacity,
                    self._max_bytes,
                    self._dropped,
                )
            self._items.append(item)
            self._bytes += size
            self._bytes_by_peer[item.peer] = self._bytes_by_peer.get(item.peer, 0) + size
            self._cond.notify()

    def _pop_locked(self) -> Received:
        item = self._items.popleft()
        size = item.size_bytes
        self._bytes -= size
        left = self._bytes_by_peer[item.peer] - size
        if left:
            self._bytes_by_peer[item.peer] = left
        else:
            del self._bytes_by_peer[item.peer]
        return item

    def get(self, timeout_s: float | None = None) -> Received:
        """The oldest record, waiting up to ``timeout_s`` seconds (None: no limit).

        Raises
        ------
        TimeoutError
            If nothing arrived in time.
        LinkClosedError
            If the queue is closed and empty.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._items:
                if self._closed:
                    raise LinkClosedError("the link is closed and all received messages were read.")
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no OpenIGTLink message within {timeout_s} s.")
                self._cond.wait(remaining)
            return self._pop_locked()

    def drain(self) -> list[Received]:
        """All records now held, oldest first, without waiting."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self._bytes_by_peer.clear()
            return items

    def close(self) -> None:
        """Wake every waiting reader; :meth:`get` raises once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
