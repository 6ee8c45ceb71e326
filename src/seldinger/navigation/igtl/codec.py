"""Bytes to messages: which class decodes which TYPE, and the one decode entry point."""

from __future__ import annotations

from struct import error as struct_error
from typing import Any

from .crc import crc64
from .header import HEADER_SIZE, BodyError, CrcMismatchError, Header, HeaderError, split_body
from .image import ImageMessage
from .messages import Message, RawMessage, StatusMessage, StringMessage
from .poses import PointMessage, PositionMessage, TrackingDataMessage, TransformMessage

__all__ = ["MESSAGE_TYPES", "decode_message", "unpack_message"]

#: The message classes by header TYPE; any other TYPE decodes to :class:`RawMessage`.
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE_NAME: cls
    for cls in (
        TransformMessage,
        PositionMessage,
        TrackingDataMessage,
        PointMessage,
        StatusMessage,
        StringMessage,
        ImageMessage,
    )
}


def decode_message(header: Header, body: bytes | bytearray | memoryview) -> Message:
    """The message that ``header`` and ``body`` carry (the CRC is checked elsewhere).

    Parameters
    ----------
    header : Header
        The parsed 58-byte header.
    body : bytes-like
        Exactly ``header.body_size`` bytes.

    Returns
    -------
    Message
        An instance of the class registered for ``header.type_name`` in
        :data:`MESSAGE_TYPES`, else a :class:`RawMessage` holding the content bytes.

    Raises
    ------
    BodyError
        If the body does not have the layout of its type (the stream framing is intact,
        so the caller can go on with the next message).
    """
    if len(body) != header.body_size:
        raise BodyError(f"body has {len(body)} bytes; the header says {header.body_size}.")
    content, metadata, message_id = split_body(body, header.version)
    common: dict[str, Any] = {
        "device_name": header.device_name,
        "timestamp_s": header.timestamp_s,
        "header_version": header.version,
        "metadata": metadata,
        "message_id": message_id,
    }
    cls = MESSAGE_TYPES.get(header.type_name)
    try:
        if cls is None:
            return RawMessage(message_type=header.type_name, content=bytes(content), **common)
        return cls.unpack_content(content, **common)
    except BodyError:
        raise
    except (ValueError, struct_error) as err:
        raise BodyError(
            f"{header.type_name} from {header.device_name!r} does not decode: {err}"
        ) from err


def unpack_message(data: bytes | bytearray | memoryview, verify_crc: bool = True) -> Message:
    """The message in ``data``: exactly one whole message, header and body (e.g. from a recording).

    Raises
    ------
    HeaderError
        If the header cannot be trusted or ``data`` is not header + BODY_SIZE bytes.
    CrcMismatchError
        If ``verify_crc`` and the body's CRC-64 differs from the header's.
    BodyError
        If the body does not decode.

    Examples
    --------
    >>> import numpy as np
    >>> data = TransformMessage(device_name="Needle", matrix=np.eye(4)).pack()
    >>> unpack_message(data).matrix[3].tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    view = memoryview(data)
    header = Header.unpack(view[:HEADER_SIZE], max_body_size=len(view))
    if len(view) != HEADER_SIZE + header.body_size:
        raise HeaderError(
            f"the header announces {header.body_size} body bytes; {len(view) - HEADER_SIZE} follow."
        )
    body = view[HEADER_SIZE:]
    if verify_crc and crc64(body) != header.crc:
        raise CrcMismatchError(
            f"CRC-64 of the {header.type_name} body is {crc64(body):#018x}; the header says "
            f"{header.crc:#018x}."
        )
    return decode_message(header, body)
