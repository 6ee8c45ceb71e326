"""Received OpenIGTLink messages as session-log records and as tool poses.

The bridge between the link (:mod:`seldinger.navigation.igtl`) and the session log
(:mod:`seldinger.navigation.recording`): what ``seldinger navigate record`` writes and what
``navigate guide`` tracks.
"""

from __future__ import annotations

from typing import Any

from seldinger.navigation.igtl.messages import StatusMessage, StringMessage
from seldinger.navigation.igtl.poses import PositionMessage, TrackingDataMessage, TransformMessage
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

__all__ = ["poses_of", "received_to_record"]


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
