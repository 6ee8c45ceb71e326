"""CRC-64/ECMA-182 of OpenIGTLink message bodies (table-driven, slicing-by-8, Numba).

OpenIGTLink puts ``CRC64`` of the message body into the header (OpenIGTLink protocol,
``Documents/Protocol/header.md``): polynomial 0x42F0E1EBA9EA3693 (ECMA-182), initial
value 0, no reflection, no final XOR. This is the catalogue's CRC-64/ECMA-182, whose
check value (the CRC of ``b"123456789"``) is 0x6C40DF5F0B497347.

Speed: a per-byte Python loop does about 5 MB/s, too slow for IMAGE bodies (a 512 x
512 x 300 int16 volume is 157 MB). The kernel below consumes 8 bytes per step with
eight 256-entry tables ("slicing-by-8") and releases the GIL, so a reader thread
checking an image does not stall the others: about 1.8 GB/s here, against 0.4 GB/s for
``crcmod``'s C extension (the one pyigtl uses), and about 1 µs for a TRANSFORM body.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["CRC64_ECMA182_CHECK", "CRC64_ECMA182_POLY", "crc64"]

#: Generator polynomial of CRC-64/ECMA-182 (the x^64 term implied).
CRC64_ECMA182_POLY = 0x42F0E1EBA9EA3693
#: CRC-64/ECMA-182 of the ASCII bytes ``123456789`` (the catalogue's check value).
CRC64_ECMA182_CHECK = 0x6C40DF5F0B497347

_MASK64 = (1 << 64) - 1


def _make_tables() -> npt.NDArray[np.uint64]:
    """Tables ``t[k][b]``: the CRC contribution of byte ``b`` followed by ``k`` zero bytes."""
    tables = np.zeros((8, 256), np.uint64)
    for byte in range(256):
        crc = byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ CRC64_ECMA182_POLY) if crc >> 63 else crc << 1
            crc &= _MASK64
        tables[0, byte] = crc
    for k in range(1, 8):
        for byte in range(256):
            previous = int(tables[k - 1, byte])
            tables[k, byte] = int(tables[0, previous >> 56]) ^ ((previous << 8) & _MASK64)
    return tables


_TABLES = _make_tables()


@nb.njit(cache=True, nogil=True)
def _crc64_kernel(data: npt.NDArray[np.uint8], t: npt.NDArray[np.uint64]) -> np.uint64:
    crc = np.uint64(0)
    n = data.size
    i = 0
    m = np.uint64(0xFF)
    while i + 8 <= n:
        word = (
            (np.uint64(data[i]) << np.uint64(56))
            | (np.uint64(data[i + 1]) << np.uint64(48))
            | (np.uint64(data[i + 2]) << np.uint64(40))
            | (np.uint64(data[i + 3]) << np.uint64(32))
            | (np.uint64(data[i + 4]) << np.uint64(24))
            | (np.uint64(data[i + 5]) << np.uint64(16))
            | (np.uint64(data[i + 6]) << np.uint64(8))
            | np.uint64(data[i + 7])
        )
        x = crc ^ word
        crc = (
            t[7, (x >> np.uint64(56)) & m]
            ^ t[6, (x >> np.uint64(48)) & m]
            ^ t[5, (x >> np.uint64(40)) & m]
            ^ t[4, (x >> np.uint64(32)) & m]
            ^ t[3, (x >> np.uint64(24)) & m]
            ^ t[2, (x >> np.uint64(16)) & m]
            ^ t[1, (x >> np.uint64(8)) & m]
            ^ t[0, x & m]
        )
        i += 8
    while i < n:
        crc = t[0, ((crc >> np.uint64(56)) ^ np.uint64(data[i])) & m] ^ (crc << np.uint64(8))
        i += 1
    return crc


def crc64(data: bytes | bytearray | memoryview) -> int:
    """CRC-64/ECMA-182 of ``data`` as OpenIGTLink computes it over a message body.

    Parameters
    ----------
    data : bytes-like
        The bytes to check (any contiguous buffer; not copied).

    Returns
    -------
    int
        The CRC, 0 <= crc < 2**64; 0 for empty input.

    Examples
    --------
    >>> hex(crc64(b"123456789"))
    '0x6c40df5f0b497347'
    """
    if len(data) == 0:
        return 0
    return int(_crc64_kernel(np.frombuffer(data, np.uint8), _TABLES))
