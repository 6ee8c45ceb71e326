"""OpenIGTLink messages as session-log records (recording), records as messages (replay).

The bridge between the link (:mod:`seldinger.navigation.igtl`) and the session log
(:mod:`seldinger.navigation.recording`): what ``seldinger navigate record`` writes and what
``navigate guide`` tracks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seldinger.navigation.igtl.messages import Message, StatusCode, StatusMessage, StringMessage
from seldinger.navigation.igtl.poses import (
    InstrumentType,
    PositionMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
)
from seldinger.navigation.igtl.queue import Received
from seldinger.navigation.recording import (
    GenericRecord,
    PositionRecord,
    Record,
    StatusRecord,
    StringRecord,
    TrackedTool,
    TrackingDataRecord,
    TransformRecord,
)

__all__ = ["poses_of", "received_to_record", "record_to_message"]


def received_to_record(item: Received) -> Record:
    """The session-log record of a received OpenIGTLink message.

    TRANSFORM → :class:`TransformRecord`, TDATA → :class:`TrackingDataRecord`, POSITION →
    :class:`PositionRecord`, STATUS, STRING; other types → :class:`GenericRecord` with the
    body size. A message that failed its CRC check or did not decode becomes the STATUS
    record the link made for it (code 9 or 2, the reason in ``message``). ``timestamp_s``
    is the sender's, ``received_s`` the local Unix receive time.

    Raises
    ------
    SessionLogError
        If the message cannot be logged (e.g. a non-finite matrix).
    """
    message = item.message
    device, received = item.device_name, item.receive_time_s
    timestamp = max(float(message.timestamp_s), 0.0)
    if isinstance(message, TransformMessage):
        return TransformRecord.from_matrix(device, timestamp, message.matrix, received)
    if isinstance(message, PositionMessage):
        x, y, z = (float(v) for v in message.position_mm)
        qx, qy, qz, qw = (float(v) for v in message.quaternion)
        return PositionRecord(device, timestamp, (x, y, z), (qx, qy, qz, qw), received)
    if isinstance(message, TrackingDataMessage):
        tools = tuple(
            TrackedTool(e.name, int(e.instrument_type), _matrix44(e.matrix))
            for e in message.elements
        )
        return TrackingDataRecord(device, timestamp, tools, received)
    if isinstance(message, StatusMessage):
        return StatusRecord(
            device,
            timestamp,
            code=int(message.code),
            subcode=int(message.subcode),
            error_name=message.error_name,
            message=message.status_string,
            received_s=received,
        )
    if isinstance(message, StringMessage):
        return StringRecord(device, timestamp, text=message.text, received_s=received)
    return GenericRecord(
        device,
        timestamp,
        message_type=item.header.type_name,
        fields={"body_size": item.header.body_size},
        received_s=received,
    )


def _matrix44(matrix: Any) -> tuple[tuple[float, float, float, float], ...]:
    return tuple((r[0], r[1], r[2], r[3]) for r in matrix.tolist())


def poses_of(item: Received) -> dict[str, Any]:
    """Tool name → 4x4 pose of a TRANSFORM, POSITION or TDATA message (empty otherwise)."""
    message = item.message
    if not item.ok:
        return {}
    if isinstance(message, TransformMessage | PositionMessage):
        return {item.device_name: message.matrix}
    if isinstance(message, TrackingDataMessage):
        return {e.name: e.matrix for e in message.elements}
    return {}


def record_to_message(record: Record, timestamp_s: float | None = None) -> Message | None:
    """The OpenIGTLink message a session-log record came from (replay), or None.

    TRANSFORM, POSITION, TDATA, STATUS and STRING records become their messages, stamped
    ``timestamp_s`` (default: the record's own); other types (logged as
    :class:`GenericRecord`, without their bodies) cannot be rebuilt and give None.
    """
    stamp = record.timestamp_s if timestamp_s is None else float(timestamp_s)
    common: dict[str, Any] = {"device_name": record.device, "timestamp_s": stamp}
    if isinstance(record, TransformRecord):
        return TransformMessage(matrix=record.to_matrix(), **common)
    if isinstance(record, PositionRecord):
        return PositionMessage(
            position_mm=np.asarray(record.position_mm, dtype=np.float64),
            quaternion=np.asarray(record.quaternion, dtype=np.float64),
            **common,
        )
    if isinstance(record, TrackingDataRecord):
        elements = [
            TrackingElement(tool.name, tool.to_matrix(), InstrumentType(tool.tool_type))
            for tool in record.tools
        ]
        return TrackingDataMessage(elements=elements, **common)
    if isinstance(record, StatusRecord):
        return StatusMessage(
            code=StatusCode(record.code),
            subcode=record.subcode,
            error_name=record.error_name,
            status_string=record.message,
            **common,
        )
    if isinstance(record, StringRecord):
        return StringMessage(text=record.text, **common)
    return None
