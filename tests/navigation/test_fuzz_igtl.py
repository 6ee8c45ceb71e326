"""Fuzzing the OpenIGTLink decoder: mutated messages of every type give a message or a
project error (a peer that breaks the protocol), never a foreign exception or a hang."""

from __future__ import annotations

import time

import numpy as np
import pytest

from seldinger.errors import SeldingerError
from seldinger.navigation.igtl import (
    PositionMessage,
    StatusMessage,
    StringMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
)
from seldinger.navigation.igtl.codec import unpack_message
from seldinger.navigation.igtl.image import ImageMessage

#: Mutations per seed message in the default run (a longer run: the `slow` marker).
DEFAULT_MUTATIONS = 400
LONG_MUTATIONS = 20_000
#: The decoder must answer each input within this time (a hang is a failure).
PER_INPUT_S = 0.5


def _seed_messages() -> list[bytes]:
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 2.0, 3.0]
    messages = [
        TransformMessage(matrix=pose, device_name="ToolToTracker", timestamp_s=1.5),
        PositionMessage(position_mm=[4.0, 5.0, 6.0], quaternion=[0.0, 0.0, 0.0, 1.0], device_name="Probe"),
        TrackingDataMessage(elements=[TrackingElement("A", pose), TrackingElement("B", np.eye(4))], device_name="Tracker"),
        StatusMessage(device_name="Tracker", status_string="ready"),
        StringMessage(device_name="Console", text="insert the needle"),
        ImageMessage(array=np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2), ijk_to_world=np.diag([0.7, 0.7, 2.5, 1.0]), device_name="CT"),
    ]  # fmt: skip
    packed = [m.pack() for m in messages]
    packed += [
        TransformMessage(
            matrix=pose, device_name="V2", header_version=2, metadata={"k": "v"}
        ).pack()
    ]
    return packed


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    raw = bytearray(data)
    kind = int(rng.integers(0, 4))
    if kind == 0:  # bit flips
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(0, len(raw)))
            raw[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # byte overwrites, biased to the 58-byte header
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(0, min(len(raw), 70) if rng.random() < 0.7 else len(raw)))
            raw[i] = int(rng.integers(0, 256))
    elif kind == 2:  # truncation
        raw = raw[: int(rng.integers(0, len(raw)))]
    else:  # extension with junk
        raw += bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
    return bytes(raw)


def _fuzz(count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    decoded = refused = 0
    for data in _seed_messages():
        unpack_message(data)  # the seed itself decodes
        for _ in range(count):
            mutant = _mutate(data, rng)
            started = time.perf_counter()
            for verify in (True, False):
                try:
                    unpack_message(mutant, verify_crc=verify)
                    decoded += 1
                except SeldingerError:
                    refused += 1
                except Exception as err:
                    raise AssertionError(
                        f"{type(err).__name__} escaped the decoder for {mutant[:80]!r}…: {err}"
                    ) from err
            assert time.perf_counter() - started < PER_INPUT_S, mutant[:80]
    assert decoded > 0 and refused > 0


def test_mutated_messages_give_only_project_errors() -> None:
    _fuzz(DEFAULT_MUTATIONS, seed=20261206)


@pytest.mark.slow
def test_mutated_messages_long_run() -> None:
    _fuzz(LONG_MUTATIONS, seed=20261207)
