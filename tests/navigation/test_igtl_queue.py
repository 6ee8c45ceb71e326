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


def frame(index: int) -> Received:
    matrix = np.eye(4)
    matrix[0, 3] = index
    message = TransformMessage(device_name="T", timestamp_s=0.0, matrix=matrix)
    return Received(
        message, Header(1, "TRANSFORM", "T", 0, 48, 0), float(index), float(index), "peer"
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


def test_latency_is_nan_without_sender_timestamp() -> None:
    assert np.isnan(frame(3).latency_s)
