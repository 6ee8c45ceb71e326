"""Interoperability with the OpenIGTLink C++ reference library (Debian libopenigtlink-dev 1.11).

``cpp/igtl_peer.cxx`` and the library's own ``ReceiveClient`` example are built once per
session (fixture ``igtl_cpp``); the C++ side checks every CRC (``Unpack(1)``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from seldinger.navigation.igtl import (
    IgtlClient,
    IgtlServer,
    InstrumentType,
    LinkClosedError,
    Message,
    PointElement,
    PointMessage,
    PositionMessage,
    RawMessage,
    StatusCode,
    StatusMessage,
    StringMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
)

N_FRAMES = 200
QUARTER_TURN_Z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def cpp_pose(i: int) -> np.ndarray:
    """The transform igtl_peer sends as frame i (its TestMatrix)."""
    matrix = np.eye(4)
    matrix[:3, :3] = QUARTER_TURN_Z
    matrix[:3, 3] = [i, 2 * i, 3 * i]
    return matrix


def our_messages() -> list[Message]:
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 2.0, 3.0]
    return [
        TransformMessage(device_name="Needle", matrix=pose),
        TrackingDataMessage(
            device_name="Frame",
            elements=[
                TrackingElement("Tool", pose),
                TrackingElement("Ref", np.eye(4), InstrumentType.TRACKER),
            ],
        ),
        PositionMessage(
            device_name="Probe",
            position_mm=np.array([1.0, 2.0, 3.0]),
            quaternion=np.array([0, 0, 0.6, 0.8]),
        ),
        StatusMessage(
            device_name="Robot",
            code=StatusCode.BUSY,
            subcode=-5,
            error_name="Moving",
            status_string="axis 2",
        ),
        StringMessage(device_name="Text", text="héllo"),
        PointMessage(
            device_name="Targets",
            points=[PointElement("Nodule", np.array([56.5, 86.25, -116.0]), diameter_mm=7.5)],
        ),
    ]


def test_cpp_tracker_streams_to_our_server(igtl_cpp: dict[str, Path]) -> None:
    with IgtlServer(port=0) as server:
        start_s = time.time()
        done = subprocess.run(
            [str(igtl_cpp["peer"]), "send", "127.0.0.1", str(server.port), str(N_FRAMES)],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        received = [server.receive(timeout_s=5.0) for _ in range(N_FRAMES + 5)]
        end_s = time.time()
        stats = server.stats()
    assert all(r.ok for r in received), [str(r.error) for r in received if not r.ok]
    frames, (tdata, position, status, text, points) = received[:N_FRAMES], received[N_FRAMES:]
    for i, frame in enumerate(frames):  # every frame, in order, values exact
        assert isinstance(frame.message, TransformMessage) and frame.device_name == "Tracker"
        np.testing.assert_array_equal(frame.message.matrix, cpp_pose(i))
        assert start_s - 1.0 <= frame.message.timestamp_s <= end_s + 1.0  # the C++ clock
    assert isinstance(tdata.message, TrackingDataMessage)
    needle, reference = tdata.message.elements
    assert (needle.name, needle.instrument_type, reference.name, reference.instrument_type) == (
        "Needle",
        InstrumentType.INSTRUMENT_6D,
        "Reference",
        InstrumentType.TRACKER,
    )
    np.testing.assert_array_equal(needle.matrix, cpp_pose(10))
    np.testing.assert_array_equal(tdata.message.find("Reference").matrix, cpp_pose(11))
    assert isinstance(position.message, PositionMessage)
    np.testing.assert_allclose(position.message.position_mm, [1.5, -2.5, 3.25])
    np.testing.assert_allclose(position.message.quaternion, [0, 0, 0.6, 0.8], rtol=1e-6)
    assert isinstance(status.message, StatusMessage)
    assert (status.message.code, status.message.subcode, status.message.error_name) == (
        StatusCode.NOT_READY,
        -42,
        "Homing",
    )
    assert status.message.status_string == "axis 3 not homed"
    assert isinstance(text.message, StringMessage) and text.message.text == "hello from C++"
    assert isinstance(points.message, PointMessage)
    nodule = points.message.points[0]
    assert (nodule.name, nodule.group, nodule.rgba, nodule.owner) == (
        "Nodule",
        "Target",
        (255, 0, 0, 255),
        "CT",
    )
    np.testing.assert_allclose(nodule.position_mm, [56.4, 86.3, -116.0], rtol=1e-6)
    assert nodule.diameter_mm == 7.5  # the C++ library calls this field "radius"
    assert (stats.dropped, stats.crc_errors, stats.decode_errors) == (0, 0, 0)


def parse_peer_lines(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


def test_cpp_client_receives_from_our_server(igtl_cpp: dict[str, Path]) -> None:
    messages = our_messages()
    with IgtlServer(port=0) as server:
        peer = subprocess.Popen(
            [str(igtl_cpp["peer"]), "recv", "127.0.0.1", str(server.port), str(len(messages))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            server.wait_for_clients(1)
            for message in messages:
                assert server.send(message) == 1
            stdout, stderr = peer.communicate(timeout=10)
        finally:
            if peer.poll() is None:
                peer.kill()
                peer.communicate()
    assert peer.returncode == 0, stderr
    lines = stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["TRANSFORM", "Needle", "crc=ok"],
        ["TDATA", "Frame", "crc=ok"],
        ["POSITION", "Probe", "crc=ok"],
        ["STATUS", "Robot", "crc=ok"],
        ["STRING", "Text", "crc=ok"],
        ["POINT", "Targets", "crc=ok"],
    ]
    fields = [line.split(" ", 4)[4] for line in lines]  # after "TYPE DEVICE crc ts"
    assert fields[0] == "1 0 0 1 0 1 0 2 0 0 1 3"  # rows of the 3x4 matrix
    assert fields[1] == "| Tool 2 1 0 0 1 0 1 0 2 0 0 1 3 | Ref 1 1 0 0 0 0 1 0 0 0 0 1 0"
    assert fields[2] == "1 2 3 0 0 0.6 0.8"
    assert fields[3] == "6 -5 Moving|axis 2"
    assert fields[4] == "106 héllo"
    assert fields[5] == "| Nodule  255 255 0 255 56.5 86.25 -116 7.5 "
    sent_s = float(lines[0].split()[3].removeprefix("ts="))
    assert sent_s == pytest.approx(messages[0].timestamp_s, abs=1e-6)


def test_cpp_reference_example_receive_client(igtl_cpp: dict[str, Path]) -> None:
    """The library's unmodified ReceiveClient example prints what it decoded (CRC checked)."""
    if "ReceiveClient" not in igtl_cpp:
        pytest.skip("openigtlink-examples is not installed (ReceiveClient.cxx)")
    server = IgtlServer(port=0)
    try:
        example = subprocess.Popen(
            [str(igtl_cpp["ReceiveClient"]), "127.0.0.1", str(server.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.wait_for_clients(1)
        for message in [*our_messages()[:5], RawMessage(message_type="NDARRAY", content=b"\1\2")]:
            server.send(message)
    finally:
        server.close()  # the example exits when the server hangs up
    stdout, stderr = example.communicate(timeout=10)
    assert example.returncode == 0
    # PrintMatrix (stdout) runs only when the CRC check passed: the TRANSFORM and the TDATA element.
    assert stdout.count("1, 0, 0, 1\n0, 1, 0, 2\n0, 0, 1, 3\n0, 0, 0, 1") == 2
    for expected in [
        "Receiving TRANSFORM data type.",
        " Name       : Tool",
        " Name       : Ref",
        "position   = (1, 2, 3)",
        "quaternion = (0, 0, 0.6, 0.8)",
        " Code      : 6",
        " SubCode   : -5",
        " Error Name: Moving",
        " Status    : axis 2",
        "Encoding: 106; String: héllo",
        "Receiving : NDARRAY",  # unknown types are skipped by the example
    ]:
        assert expected in stderr


def test_cpp_checks_crc_so_a_corrupted_message_is_caught(igtl_cpp: dict[str, Path]) -> None:
    """Control for the tests above: the C++ side does reject a wrong CRC we send."""
    good = TransformMessage(device_name="Good", matrix=np.eye(4)).pack()
    bad = bytearray(TransformMessage(device_name="Bad", matrix=np.eye(4)).pack())
    bad[-1] ^= 0x01
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = subprocess.Popen(
            [str(igtl_cpp["peer"]), "recv", "127.0.0.1", str(listener.getsockname()[1]), "2"],
            stdout=subprocess.PIPE,
            text=True,
        )
        listener.settimeout(10.0)
        connection, _ = listener.accept()
        with connection:
            connection.sendall(bytes(bad) + good)
            stdout, _ = peer.communicate(timeout=10)
    assert [line.split()[:3] for line in stdout.splitlines()] == [
        ["TRANSFORM", "Bad", "crc=bad"],
        ["TRANSFORM", "Good", "crc=ok"],
    ]


def test_our_client_with_cpp_server(igtl_cpp: dict[str, Path]) -> None:
    server = subprocess.Popen(
        [str(igtl_cpp["peer"]), "server", "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        with IgtlClient(port=port) as client:
            client.send(TransformMessage(device_name="Needle", matrix=cpp_pose(4)))
            client.send(StatusMessage(device_name="Seldinger", status_string="ready"))
            replies = [client.receive(timeout_s=10.0) for _ in range(3)]
            with pytest.raises(LinkClosedError):
                client.receive(timeout_s=10.0)  # the C++ server hung up after replying
        stdout, _ = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0
    assert [r.message.type_name for r in replies] == ["TRANSFORM", "TDATA", "STATUS"]
    assert all(r.ok for r in replies)
    first = replies[0].message
    assert isinstance(first, TransformMessage) and first.device_name == "FromCpp"
    np.testing.assert_array_equal(first.matrix, cpp_pose(0))
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["TRANSFORM", "Needle", "crc=ok"]
    assert lines[0].split(" ", 4)[4] == "0 -1 0 4 1 0 0 8 0 0 1 12"
    assert lines[1].split()[:3] == ["STATUS", "Seldinger", "crc=ok"]
