"""OpenIGTLink: message types, CRC-64, and a threaded server and client (protocol v1-v3)."""

from .client import IgtlClient
from .codec import MESSAGE_TYPES, decode_message, unpack_message
from .connection import DEFAULT_PORT, MessageCallback
from .crc import crc64
from .header import (
    HEADER_SIZE,
    BodyError,
    BodyTooLargeError,
    CrcMismatchError,
    Header,
    HeaderError,
    ProtocolError,
    seconds_from_timestamp,
    timestamp_from_seconds,
)
from .image import CoordinateSystem, ImageMessage
from .messages import Message, RawMessage, StatusCode, StatusMessage, StringMessage
from .options import DEFAULT_BODY_LIMITS, LinkOptions, LinkStats
from .poses import (
    InstrumentType,
    PointElement,
    PointMessage,
    PositionLayout,
    PositionMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
)
from .queue import FrameQueue, LinkClosedError, Received
from .server import IgtlServer

__all__ = [
    "DEFAULT_BODY_LIMITS",
    "DEFAULT_PORT",
    "HEADER_SIZE",
    "MESSAGE_TYPES",
    "BodyError",
    "BodyTooLargeError",
    "CoordinateSystem",
    "CrcMismatchError",
    "FrameQueue",
    "Header",
    "HeaderError",
    "IgtlClient",
    "IgtlServer",
    "ImageMessage",
    "InstrumentType",
    "LinkClosedError",
    "LinkOptions",
    "LinkStats",
    "Message",
    "MessageCallback",
    "PointElement",
    "PointMessage",
    "PositionLayout",
    "PositionMessage",
    "ProtocolError",
    "RawMessage",
    "Received",
    "StatusCode",
    "StatusMessage",
    "StringMessage",
    "TrackingDataMessage",
    "TrackingElement",
    "TransformMessage",
    "crc64",
    "decode_message",
    "seconds_from_timestamp",
    "timestamp_from_seconds",
    "unpack_message",
]
