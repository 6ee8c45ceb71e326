"""Interoperability with pyigtl (PyPI ``pyigtl``) as client and as server, both directions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from seldinger.navigation.igtl import (
    IgtlClient,
    IgtlServer,
    ImageMessage,
    Message,
    PointElement,
    PointMessage,
    PositionLayout,
    PositionMessage,
    Received,
    StringMessage,
    TransformMessage,
)

pyigtl = pytest.importorskip("pyigtl")

NEEDLE_TO_TRACKER = np.array(
    [[0.0, -1.0, 0.0, 10.5], [1.0, 0.0, 0.0, -20.25], [0.0, 0.0, 1.0, 30.0], [0.0, 0.0, 0.0, 1.0]]
)
VOXELS_IJK = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
IJK_TO_WORLD = np.array([[0.5, 0, 0, -10.0], [0, 0.75, 0, 20.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1.0]])


def pyigtl_messages() -> list[Any]:
    """One message of each type pyigtl can send, with distinct device names."""
    return [
        pyigtl.TransformMessage(NEEDLE_TO_TRACKER, device_name="NeedleToTracker"),
        pyigtl.StringMessage("hello from pyigtl", device_name="Text"),
        pyigtl.PositionMessage(
            positions=[1.0, 2.0, 3.0], quaternions=[0.0, 0.0, 0.6, 0.8], device_name="Probe"
        ),
        pyigtl.PointMessage(
            positions=[[1.0, 2.0, 3.0]], names=["Nodule"], diameters=[7.5], device_name="Targets"
        ),
        pyigtl.ImageMessage(
            VOXELS_IJK.transpose(2, 1, 0), ijk_to_world_matrix=IJK_TO_WORLD, device_name="CT"
        ),
    ]


def our_messages() -> list[Message]:
    return [
        TransformMessage(device_name="NeedleToTracker", matrix=NEEDLE_TO_TRACKER),
        StringMessage(device_name="Text", text="hello from seldinger"),
        PositionMessage(
            device_name="Probe",
            position_mm=np.array([1.0, 2.0, 3.0]),
            quaternion=np.array([0.0, 0.0, 0.6, 0.8]),
            layout=PositionLayout.PYIGTL,  # pyigtl reads the standard 28-byte POSITION as empty
        ),
        PointMessage(
            device_name="Targets",
            points=[PointElement("Nodule", np.array([1.0, 2.0, 3.0]), diameter_mm=7.5)],
        ),
        ImageMessage(device_name="CT", array=VOXELS_IJK, ijk_to_world=IJK_TO_WORLD),
    ]


def check_ours(received: list[Received]) -> None:
    """What we decoded from pyigtl's messages."""
    assert all(r.ok for r in received), [r.error for r in received]
    by_device = {r.device_name: r.message for r in received}
    transform = by_device["NeedleToTracker"]
    assert isinstance(transform, TransformMessage)
    np.testing.assert_array_equal(transform.matrix, NEEDLE_TO_TRACKER)
    text = by_device["Text"]
    assert isinstance(text, StringMessage) and text.text.startswith("hello from")
    position = by_device["Probe"]
    assert isinstance(position, PositionMessage)
    np.testing.assert_allclose(position.position_mm, [1, 2, 3])
    np.testing.assert_allclose(position.quaternion, [0, 0, 0.6, 0.8], rtol=1e-6)
    points = by_device["Targets"]
    assert isinstance(points, PointMessage)
    assert points.points[0].name == "Nodule" and points.points[0].diameter_mm == 7.5
    image = by_device["CT"]
    assert isinstance(image, ImageMessage)
    np.testing.assert_array_equal(image.array, VOXELS_IJK)
    np.testing.assert_allclose(image.ijk_to_world, IJK_TO_WORLD)


def check_theirs(wait_for_message: Any) -> None:
    """What pyigtl decoded from our messages."""
    transform = wait_for_message("NeedleToTracker", timeout=5)
    np.testing.assert_array_equal(transform.matrix, NEEDLE_TO_TRACKER)
    assert wait_for_message("Text", timeout=5).string == "hello from seldinger"
    position = wait_for_message("Probe", timeout=5)
    np.testing.assert_allclose(position.positions[0], [1, 2, 3])
    np.testing.assert_allclose(position.quaternions[0], [0, 0, 0.6, 0.8], rtol=1e-6)
    points = wait_for_message("Targets", timeout=5)
    assert points.names == ["Nodule"] and points.diameters == [7.5]
    image = wait_for_message("CT", timeout=5)
    np.testing.assert_array_equal(image.image, VOXELS_IJK.transpose(2, 1, 0))
    np.testing.assert_allclose(image.ijk_to_world_matrix, IJK_TO_WORLD)


@pytest.fixture
def our_server() -> Iterator[IgtlServer]:
    with IgtlServer(port=0) as server:
        yield server


@pytest.fixture
def pyigtl_client(our_server: IgtlServer) -> Iterator[Any]:
    client = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=our_server.port)
    try:
        yield client
    finally:
        client.stop()


def test_pyigtl_client_sends_to_our_server(our_server: IgtlServer, pyigtl_client: Any) -> None:
    for message in pyigtl_messages():
        assert pyigtl_client.send_message(message, wait=True)
    check_ours([our_server.receive(timeout_s=5.0) for _ in range(5)])


def test_our_server_sends_to_pyigtl_client(our_server: IgtlServer, pyigtl_client: Any) -> None:
    our_server.wait_for_clients(1)
    for message in our_messages():
        assert our_server.send(message) == 1
    check_theirs(pyigtl_client.wait_for_message)


def test_pyigtl_server_sends_to_our_client(pyigtl_server: Any) -> None:
    with IgtlClient(port=pyigtl_server.server_address[1]) as client:
        for message in pyigtl_messages():
            assert pyigtl_server.send_message(message, wait=True)
        check_ours([client.receive(timeout_s=5.0) for _ in range(5)])


def test_our_client_sends_to_pyigtl_server(pyigtl_server: Any) -> None:
    with IgtlClient(port=pyigtl_server.server_address[1]) as client:
        for message in our_messages():
            client.send(message)
        check_theirs(pyigtl_server.wait_for_message)


def test_standard_position_reaches_pyigtl_empty(our_server: IgtlServer, pyigtl_client: Any) -> None:
    """The gotcha documented in docs/openigtlink.md: pyigtl misreads the protocol's POSITION."""
    our_server.wait_for_clients(1)
    our_server.send(PositionMessage(device_name="Probe", position_mm=np.array([1.0, 2.0, 3.0])))
    assert pyigtl_client.wait_for_message("Probe", timeout=5).positions == []


def test_v3_metadata_both_ways(our_server: IgtlServer, pyigtl_client: Any) -> None:
    theirs = pyigtl.TransformMessage(NEEDLE_TO_TRACKER, device_name="Tool")
    theirs.header_version = 2
    theirs.metadata = {"TransformStatus": "OK"}
    assert pyigtl_client.send_message(theirs, wait=True)
    got = our_server.receive(timeout_s=5.0)
    assert got.header.version == 2 and got.message.metadata == {"TransformStatus": "OK"}
    our_server.send(
        TransformMessage(
            device_name="Back", matrix=np.eye(4), header_version=2, metadata={"Unit": "mm"}
        )
    )
    assert pyigtl_client.wait_for_message("Back", timeout=5).metadata == {"Unit": "mm"}
