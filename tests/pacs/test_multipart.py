"""Splitting multipart/related answers: every chunking gives the same parts."""

from __future__ import annotations

import pytest

from seldinger.pacs.multipart import MultipartError, boundary_of, iter_parts

BOUNDARY = b"0f3cf5c0-70e0-41ef"
PARTS = [b"DICM" + bytes(range(256)) * 3, b"", b"\r\n--0f3cf5c0 almost a boundary\r\n", b"last"]


def message(parts: list[bytes], *, preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    body = preamble
    for index, part in enumerate(parts):
        body += (b"\r\n" if index or preamble else b"") + b"--" + BOUNDARY + b"\r\n"
        body += b"Content-Type: application/dicom\r\nContent-Length: %d\r\n\r\n" % len(part) + part
    return body + b"\r\n--" + BOUNDARY + b"--" + epilogue


@pytest.mark.parametrize("size", [1, 2, 3, 7, 25, 64, 1000, 10**6])
def test_every_chunk_size_gives_the_same_parts(size: int) -> None:
    body = message(PARTS)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert list(iter_parts(chunks, BOUNDARY)) == PARTS


def test_a_delimiter_split_at_every_offset() -> None:
    body = message(PARTS, preamble=b"a preamble to ignore")
    for cut in range(len(body)):
        assert list(iter_parts([body[:cut], body[cut:]], BOUNDARY)) == PARTS


def test_no_parts_and_truncation() -> None:
    assert list(iter_parts([b"--" + BOUNDARY + b"--\r\n"], BOUNDARY)) == []
    body = message(PARTS)
    with pytest.raises(MultipartError, match="ended before its close delimiter"):
        list(iter_parts([body[: len(body) // 2]], BOUNDARY))
    with pytest.raises(MultipartError, match="no empty line"):
        list(iter_parts([b"--b\r\nno end of headers\r\n--b--"], b"b"))


def test_boundary_of_content_type() -> None:
    assert boundary_of('multipart/related; type="application/dicom"; boundary=abc') == b"abc"
    with pytest.raises(MultipartError, match="expected multipart/related"):
        boundary_of("application/dicom")
    with pytest.raises(MultipartError, match="no boundary"):
        boundary_of('multipart/related; type="application/dicom"')
