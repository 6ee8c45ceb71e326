"""CRC-64/ECMA-182 against the catalogue check value, a bitwise reference and crcmod."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.navigation.igtl import crc64
from seldinger.navigation.igtl.crc import CRC64_ECMA182_CHECK, CRC64_ECMA182_POLY


def crc64_bitwise(data: bytes) -> int:
    """Obviously-correct CRC: one bit at a time, MSB first, init 0, no reflection, xorout 0."""
    crc = 0
    for byte in data:
        crc ^= byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ CRC64_ECMA182_POLY) if crc & (1 << 63) else crc << 1
            crc &= (1 << 64) - 1
    return crc


def test_check_value_of_123456789() -> None:
    assert crc64(b"123456789") == CRC64_ECMA182_CHECK == 0x6C40DF5F0B497347


def test_empty_input_is_zero() -> None:
    assert crc64(b"") == 0


def test_single_bytes_are_the_polynomial_multiples() -> None:
    # CRC of one byte 0x01 is the polynomial shifted through 8 zero bits' worth of division.
    assert crc64(b"\x00") == 0
    assert crc64(b"\x01") == crc64_bitwise(b"\x01")
    assert crc64(b"\x80") == crc64_bitwise(b"\x80")


@pytest.mark.parametrize("size", [*range(0, 20), 47, 48, 63, 64, 65, 1000])
def test_matches_bitwise_reference(size: int) -> None:
    data = np.random.default_rng(20240611 + size).integers(0, 256, size, np.uint8).tobytes()
    assert crc64(data) == crc64_bitwise(data)


def test_matches_crcmod_as_pyigtl_uses_it_on_a_large_body() -> None:
    crcmod = pytest.importorskip("crcmod")
    reference = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, rev=False, initCrc=0, xorOut=0)
    data = np.random.default_rng(20240611).integers(0, 256, 1_000_003, np.uint8).tobytes()
    assert crc64(data) == reference(data)


def test_accepts_bytearray_and_memoryview() -> None:
    data = bytearray(b"xx123456789")
    assert crc64(memoryview(data)[2:]) == CRC64_ECMA182_CHECK
    assert crc64(data[2:]) == CRC64_ECMA182_CHECK
