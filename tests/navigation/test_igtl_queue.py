"""The bounded receive queue: drop-oldest overflow, timeouts, closing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from seldinger.navigation.igtl import (
    FrameQueue,
    Header,
    LinkClosedError,
    Received,
    TransformMessage,
)


def frame(index: int, body_size: int = 48, peer: str = "peer") -> Received:
    """A TRANSFORM record whose header claims ``body_size`` (what the queue counts)."""
    matrix = np.eye(4)
    matrix[0, 3] = index
    message = TransformMessage(device_name="T", timestamp_s=0.0, matrix=matrix)
    return Received(
        message, Header(1, "TRANSFORM", "T", 0, body_size, 0), float(index), float(index), peer
    )


def index_of(item: Received) -> int:
    assert isinstance(item.message, TransformMessage)
    return int(item.message.matrix[0, 3])


def test_fifo_order() -> None:
    queue = FrameQueue(10)
    for i in range(5):
        queue.put(frame(i))
    assert len(queue) == 5
    assert [index_of(queue.get(0.0)) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_overflow_drops_the_oldest_and_counts() -> None:
    queue = FrameQueue(3)
    for i in range(7):
        queue.put(frame(i))
    assert queue.dropped == 4
    assert [index_of(item) for item in queue.drain()] == [4, 5, 6]
    assert len(queue) == 0


def test_overflow_in_bytes_drops_the_oldest_and_counts() -> None:
    queue = FrameQueue(100, max_bytes=3 * (58 + 942))  # three 1000-byte records
    for i in range(5):
        queue.put(frame(i, body_size=942))
    assert (queue.dropped, queue.dropped_bytes, queue.queued_bytes()) == (2, 2000, 3000)
    queue.put(frame(5, body_size=1942))  # 2000 bytes: two must go
    assert [index_of(item) for item in queue.drain()] == [4, 5]
    assert (queue.dropped, queue.queued_bytes()) == (4, 0)


def test_newest_record_is_kept_even_above_the_byte_bound() -> None:
    queue = FrameQueue(10, max_bytes=1000)
    queue.put(frame(1))
    queue.put(frame(2, body_size=5000))
    assert len(queue) == 1 and queue.queued_bytes() == 5058 and queue.dropped == 1
    assert index_of(queue.get(0.0)) == 2 and queue.queued_bytes() == 0


def test_bytes_are_counted_per_peer() -> None:
    queue = FrameQueue(10)
    queue.put(frame(1, peer="tracker"))
    queue.put(frame(2, body_size=942, peer="slicer"))
    queue.put(frame(3, peer="tracker"))
    assert (queue.queued_bytes("tracker"), queue.queued_bytes("slicer")) == (212, 1000)
    queue.get(0.0)
    assert (queue.queued_bytes("tracker"), queue.queued_bytes("nobody")) == (106, 0)
    assert queue.queued_bytes() == 1106


def test_get_times_out() -> None:
    with pytest.raises(TimeoutError, match=r"within 0\.01 s"):
        FrameQueue(1).get(timeout_s=0.01)


def test_closed_queue_yields_what_it_holds_then_raises() -> None:
    queue = FrameQueue(4)
    queue.put(frame(1))
    queue.close()
    assert index_of(queue.get(1.0)) == 1
    with pytest.raises(LinkClosedError):
        queue.get(1.0)


def test_close_wakes_a_waiting_reader() -> None:
    queue = FrameQueue(4)
    raised = threading.Event()

    def reader() -> None:
        try:
            queue.get(timeout_s=10.0)
        except LinkClosedError:
            raised.set()

    thread = threading.Thread(target=reader)
    thread.start()
    queue.close()
    thread.join(5.0)
    assert raised.is_set()


def test_concurrent_producer_consumer_loses_nothing_when_not_full() -> None:
    queue = FrameQueue(100_000)
    count = 20_000

    def produce() -> None:
        for i in range(count):
            queue.put(frame(i))

    producer = threading.Thread(target=produce)
    producer.start()
    got = [index_of(queue.get(5.0)) for _ in range(count)]
    producer.join(5.0)
    assert got == list(range(count))
    assert queue.dropped == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be a positive"):
        FrameQueue(0)
    with pytest.raises(ValueError, match="max_bytes must be a positive"):
        FrameQueue(1, max_bytes=0)


def test_latency_is_nan_without_sender_timestamp() -> None:
    assert np.isnan(frame(3).latency_s)
