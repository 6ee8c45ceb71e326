"""Server and client over loopback: both directions, several clients, misbehaving peers."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

import numpy as np
import pytest

from seldinger.navigation.igtl import (
    Header,
    IgtlClient,
    IgtlServer,
    ImageMessage,
    LinkClosedError,
    LinkOptions,
    RawMessage,
    Received,
    StatusCode,
    StatusMessage,
    StringMessage,
    TrackingDataMessage,
    TransformMessage,
    crc64,
)
from seldinger.navigation.igtl.header import CrcMismatchError

Connect = Callable[[int], socket.socket]


def pose(index: float) -> TransformMessage:
    matrix = np.eye(4)
    matrix[:3, 3] = [index, 2 * index, 3 * index]
    return TransformMessage(device_name="NeedleToTracker", matrix=matrix)


def index_of(item: Received) -> float:
    assert isinstance(item.message, TransformMessage), item
    return float(item.message.matrix[0, 3])


def raw_message(type_name: str, content: bytes, crc: int | None = None) -> bytes:
    header = Header(1, type_name, "Raw", 0, len(content), crc64(content) if crc is None else crc)
    return header.pack() + content


def assert_closed_by_peer(sock: socket.socket) -> None:
    """The server dropped this connection: reading gives end-of-stream (or a reset)."""
    sock.settimeout(5.0)
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""


def test_client_to_server_and_back() -> None:
    with IgtlServer(port=0) as server, IgtlClient(port=server.port) as client:
        for i in range(100):
            client.send(pose(i))
        received = [server.receive(timeout_s=5.0) for _ in range(100)]
        assert [index_of(r) for r in received] == list(range(100))  # every frame, in order
        assert all(r.ok and r.peer in server.clients for r in received)
        assert all(r.receive_monotonic_s > 0 and r.latency_s < 5.0 for r in received)
        assert server.send(StringMessage(device_name="Planner", text="target set")) == 1
        reply = client.receive(timeout_s=5.0)
        assert isinstance(reply.message, StringMessage) and reply.message.text == "target set"
        stats = server.stats()
        assert (stats.received, stats.dropped, stats.crc_errors, stats.connections) == (
            100,
            0,
            0,
            1,
        )


def test_server_serves_several_clients_and_sends_to_one() -> None:
    with (
        IgtlServer(port=0) as server,
        IgtlClient(port=server.port) as a,
        IgtlClient(port=server.port) as b,
    ):
        peers = server.wait_for_clients(2, timeout_s=5.0)
        a.send(pose(1))
        from_a = server.receive(timeout_s=5.0)
        b.send(pose(2))
        from_b = server.receive(timeout_s=5.0)
        assert (index_of(from_a), index_of(from_b)) == (1, 2)
        assert {from_a.peer, from_b.peer} == set(peers)
        assert server.send(pose(7)) == 2
        assert index_of(a.receive(5.0)) == index_of(b.receive(5.0)) == 7
        assert server.send(pose(8), peer=from_a.peer) == 1
        assert index_of(a.receive(5.0)) == 8
        with pytest.raises(TimeoutError):
            b.receive(timeout_s=0.05)
        with pytest.raises(KeyError, match="no client 'nobody:1'"):
            server.send(pose(9), peer="nobody:1")


def test_bad_crc_is_reported_and_the_connection_survives(
    raw_socket: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    with IgtlServer(port=0) as server:
        sock = raw_socket(server.port)
        good = pose(5).pack()
        bad = bytearray(pose(4).pack())
        bad[-1] ^= 0xFF  # corrupt the body; the header's CRC no longer matches
        with caplog.at_level(logging.WARNING):
            sock.sendall(bytes(bad) + good)
            first = server.receive(timeout_s=5.0)
            second = server.receive(timeout_s=5.0)
        assert not first.ok and isinstance(first.error, CrcMismatchError)
        assert isinstance(first.message, StatusMessage)
        assert first.message.code is StatusCode.CHECKSUM_ERROR
        assert first.message.device_name == "NeedleToTracker"
        assert second.ok and index_of(second) == 5
        assert server.stats().crc_errors == 1
        assert len(server.clients) == 1
        assert "CRC-64" in caplog.text


def test_undecodable_body_is_reported_and_the_connection_survives(raw_socket: Connect) -> None:
    with IgtlServer(port=0) as server:
        sock = raw_socket(server.port)
        sock.sendall(raw_message("TRANSFORM", b"\0" * 40) + pose(6).pack())
        bad = server.receive(timeout_s=5.0)
        assert (
            isinstance(bad.message, StatusMessage) and bad.message.code is StatusCode.UNKNOWN_ERROR
        )
        assert "48 bytes; got 40" in bad.message.status_string
        assert index_of(server.receive(timeout_s=5.0)) == 6
        assert server.stats().decode_errors == 1


def test_malformed_header_drops_that_client_only(
    raw_socket: Connect, eventually: Callable[..., None]
) -> None:
    with IgtlServer(port=0) as server, IgtlClient(port=server.port) as good:
        server.wait_for_clients(1)
        sock = raw_socket(server.port)
        server.wait_for_clients(2)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".ljust(58, b"\0"))
        assert_closed_by_peer(sock)
        eventually(lambda: len(server.clients) == 1)
        good.send(pose(3))
        assert index_of(server.receive(timeout_s=5.0)) == 3
        assert server.stats().framing_errors == 1


def test_oversized_body_drops_that_client(raw_socket: Connect) -> None:
    with IgtlServer(port=0, options=LinkOptions(max_body_size=1000)) as server:
        sock = raw_socket(server.port)
        sock.sendall(Header(1, "IMAGE", "Huge", 0, 10**12, 0).pack())
        assert_closed_by_peer(sock)
        stats = server.stats()
        assert (stats.oversized, stats.framing_errors, stats.refused) == (1, 0, 1)


def test_disconnect_mid_message_leaves_other_clients_served(
    raw_socket: Connect, eventually: Callable[..., None]
) -> None:
    with IgtlServer(port=0) as server, IgtlClient(port=server.port) as good:
        sock = raw_socket(server.port)
        server.wait_for_clients(2)
        data = pose(1).pack()
        sock.sendall(data[:70])  # header and 12 of 48 body bytes
        sock.close()
        eventually(lambda: server.stats().truncated == 1 and len(server.clients) == 1)
        good.send(pose(2))
        assert index_of(server.receive(timeout_s=5.0)) == 2
        with pytest.raises(TimeoutError):
            server.receive(timeout_s=0.05)  # nothing of the partial message was delivered


def test_stalled_body_times_out(raw_socket: Connect, eventually: Callable[..., None]) -> None:
    with IgtlServer(port=0, options=LinkOptions(io_timeout_s=0.2)) as server:
        sock = raw_socket(server.port)
        sock.sendall(pose(1).pack()[:60])
        assert_closed_by_peer(sock)
        eventually(lambda: server.stats().truncated == 1)


def test_message_split_into_single_bytes_arrives(raw_socket: Connect) -> None:
    with IgtlServer(port=0) as server:
        sock = raw_socket(server.port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in pose(9).pack():
            sock.sendall(bytes([byte]))
        assert index_of(server.receive(timeout_s=5.0)) == 9


def test_unknown_type_is_delivered_raw_or_dropped(raw_socket: Connect) -> None:
    with IgtlServer(port=0) as server:
        sock = raw_socket(server.port)
        sock.sendall(
            raw_message("GET_TDATA", b"") + raw_message("NDARRAY", b"\1\2\3") + pose(1).pack()
        )
        first, second, third = (server.receive(timeout_s=5.0) for _ in range(3))
        assert isinstance(first.message, RawMessage) and first.message.type_name == "GET_TDATA"
        assert isinstance(second.message, RawMessage) and second.message.content == b"\1\2\3"
        assert index_of(third) == 1
    with IgtlServer(port=0, options=LinkOptions(deliver_unknown=False)) as server:
        sock = raw_socket(server.port)
        sock.sendall(raw_message("NDARRAY", b"\1\2\3") + pose(2).pack())
        assert index_of(server.receive(timeout_s=5.0)) == 2
        assert server.stats().unknown_types == 1


def test_zero_length_bodies_over_the_wire(raw_socket: Connect) -> None:
    with IgtlServer(port=0) as server:
        sock = raw_socket(server.port)
        sock.sendall(
            TrackingDataMessage(device_name="Tracker").pack()
            + raw_message("IMAGE", b"")
            + pose(1).pack()
        )
        empty = server.receive(timeout_s=5.0)
        assert isinstance(empty.message, TrackingDataMessage) and empty.message.elements == ()
        image = server.receive(timeout_s=5.0)  # the C++ example hangs here (OpenIGTLink #268)
        assert not image.ok and "72-byte image header" in str(image.error)
        assert index_of(server.receive(timeout_s=5.0)) == 1


def test_queue_overflow_drops_oldest_frames() -> None:
    end = threading.Event()

    def watch(item: Received) -> None:  # runs after the item is queued
        if isinstance(item.message, StringMessage):
            end.set()

    options = LinkOptions(queue_capacity=10)
    with (
        IgtlServer(port=0, options=options, on_message=watch) as server,
        IgtlClient(port=server.port) as client,
    ):
        for i in range(50):
            client.send(pose(i))
        client.send(StringMessage(text="end"))
        assert end.wait(5.0)
        items = server.drain()
        assert [index_of(item) for item in items[:-1]] == list(range(41, 50))  # the 9 newest
        assert server.stats().dropped == 41


def test_callback_runs_on_every_frame_and_its_errors_are_contained() -> None:
    seen: list[float] = []
    done = threading.Event()

    def consumer(item: Received) -> None:
        seen.append(index_of(item))
        if len(seen) == 3:
            done.set()
        if len(seen) == 2:
            raise RuntimeError("guidance step failed")

    with IgtlServer(port=0, on_message=consumer) as server, IgtlClient(port=server.port) as client:
        for i in range(3):
            client.send(pose(i))
        assert done.wait(5.0)
        assert seen == [0, 1, 2]
        assert server.stats().callback_errors == 1
        assert len(server.drain()) == 3


def test_large_image_over_the_wire() -> None:
    voxels = np.random.default_rng(20240611).integers(-1024, 3000, (256, 256, 40)).astype(np.int16)
    message = ImageMessage(
        device_name="CT", array=voxels, ijk_to_world=np.diag([0.7, 0.7, 2.5, 1.0])
    )
    with IgtlServer(port=0) as server, IgtlClient(port=server.port) as client:
        sender = threading.Thread(target=server.send, args=(message,))
        server.wait_for_clients(1)
        sender.start()
        got = client.receive(timeout_s=10.0)
        sender.join(10.0)
    assert got.ok and isinstance(got.message, ImageMessage)
    np.testing.assert_array_equal(got.message.array, voxels)


def test_client_sees_the_server_close() -> None:
    server = IgtlServer(port=0)
    with IgtlClient(port=server.port) as client:
        server.wait_for_clients(1)
        server.send(pose(1))
        server.close()
        assert index_of(client.receive(timeout_s=5.0)) == 1
        with pytest.raises(LinkClosedError):
            client.receive(timeout_s=5.0)
        assert not client.connected
        with pytest.raises(ConnectionError, match="closed"):
            client.send(pose(2))
        assert list(client.frames(timeout_s=0.1)) == []
    server.close()  # idempotent


def test_frames_iterator_stops_on_timeout() -> None:
    with IgtlServer(port=0) as server, IgtlClient(port=server.port) as client:
        for i in range(3):
            client.send(pose(i))
        assert [index_of(r) for r in server.frames(timeout_s=0.5)] == [0, 1, 2]


def test_client_cannot_connect_says_what_to_do() -> None:
    with IgtlServer(port=0) as server:
        port = server.port
    with pytest.raises(ConnectionError, match="Start the server first"):
        IgtlClient(port=port, connect_timeout_s=1.0)


def test_port_in_use_says_what_to_do() -> None:
    with (
        IgtlServer(port=0) as server,
        pytest.raises(OSError, match="port=0 for a free one"),
    ):
        IgtlServer(port=server.port)


def test_wait_for_clients_times_out() -> None:
    with IgtlServer(port=0) as server, pytest.raises(TimeoutError, match="0 of 1 clients"):
        server.wait_for_clients(1, timeout_s=0.05)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="queue_capacity"):
        LinkOptions(queue_capacity=0)
    with pytest.raises(ValueError, match="io_timeout_s"):
        LinkOptions(io_timeout_s=0.0)


def test_no_threads_left_after_close() -> None:
    before = set(threading.enumerate())
    with IgtlServer(port=0) as server, IgtlClient(port=server.port) as client:
        server.wait_for_clients(1)
        client.send(pose(1))
        server.receive(timeout_s=5.0)
    assert set(threading.enumerate()) <= before
