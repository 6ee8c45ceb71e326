"""Received messages with their times, and the bounded queue that holds them.

Overflow policy: **drop the oldest**. The socket reader never blocks on a full queue
(blocking would back up TCP and, in the end, stall the tracker that sends to us);
instead the oldest record is discarded and counted (:attr:`FrameQueue.dropped`,
logged at WARNING on the first drop and every 1000th after). Navigation wants the newest
pose, and a logger reading the queue can tell from the count that it has a gap. The
default capacity (10 000) holds 10 s of a 1 kHz stream, so a consumer has to stall for
that long before anything is lost.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from seldinger.errors import BadInputError, PeerError

from .header import Header, ProtocolError
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
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise BadInputError(
                f"capacity must be a positive number of messages; got {capacity!r}."
            )
        self._capacity = capacity
        self._cond = threading.Condition()
        # Guarded by _cond; written by reader threads (put) and consumers (get, drain).
        self._items: deque[Received] = deque()
        self._dropped = 0
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def dropped(self) -> int:
        """Records discarded because the queue was full."""
        with self._cond:
            return self._dropped

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: Received) -> None:
        """Append ``item``, discarding the oldest record if the queue is full."""
        with self._cond:
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self._dropped += 1
                if self._dropped % 1000 == 1:
                    logger.warning(
                        "receive queue full (%d messages): dropped the oldest, %d so far; "
                        "read faster or raise LinkOptions.queue_capacity",
                        self._capacity,
                        self._dropped,
                    )
            self._items.append(item)
            self._cond.notify()

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
            return self._items.popleft()

    def drain(self) -> list[Received]:
        """All records now held, oldest first, without waiting."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        """Wake every waiting reader; :meth:`get` raises once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
