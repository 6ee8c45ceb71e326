"""The loops that talk to a tracker over OpenIGTLink: record, serve a simulation, replay a log.

Each runs until its time is up, the peer hangs up or Ctrl-C (which ends it normally: the
summary is still returned), and reports progress through an optional callback. The
command line prints what they return.

The two serving loops (:func:`stream_simulation`, :func:`replay_session`) only send. What
clients send them is not kept: give the server ``LinkOptions(keep_incoming=False)`` and it
is thrown away as it arrives; a server made without it is drained at every frame, so its
queue never holds more than what arrives between two frames (and never more than its
byte bound).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import seldinger
from seldinger.errors import PeerError
from seldinger.navigation.igtl import (
    IgtlClient,
    IgtlServer,
    LinkClosedError,
    StatusMessage,
    TrackingDataMessage,
    TrackingElement,
    TransformMessage,
)
from seldinger.navigation.igtl.records import received_to_record, record_to_message
from seldinger.navigation.log_records import SessionHeader
from seldinger.navigation.recording import SessionLogWriter, replay
from seldinger.navigation.simulate import TrackerSimulator

__all__ = [
    "POLL_S",
    "RecordSummary",
    "StreamSummary",
    "follow_guidance",
    "record_session",
    "replay_session",
    "stream_simulation",
]

#: Longest wait (s) for a message before the clock and the stop conditions are checked.
POLL_S = 0.1


@dataclass
class RecordSummary:
    """What :func:`record_session` received and wrote."""

    output: str
    tracker: str
    seconds: float = 0.0
    written: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_device: Counter[str] = field(default_factory=Counter)
    crc_errors: int = 0
    decode_errors: int = 0
    unknown_types: int = 0
    dropped: int = 0
    not_written: list[str] = field(default_factory=list)
    ended_by: str = "time"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the notes a user should read."""
        return {
            "output": self.output,
            "tracker": self.tracker,
            "seconds": round(self.seconds, 3),
            "messages": sum(self.by_type.values()),
            "written": self.written,
            "by_type": dict(sorted(self.by_type.items())),
            "by_device": dict(sorted(self.by_device.items())),
            "crc_errors": self.crc_errors,
            "decode_errors": self.decode_errors,
            "unknown_types": self.unknown_types,
            "dropped": self.dropped,
            "not_written": len(self.not_written),
            "ended_by": self.ended_by,
            "notes": self.notes(),
        }

    def notes(self) -> list[str]:
        """Gaps and errors a user must know about."""
        notes = []
        if self.not_written:
            notes.append(
                f"{len(self.not_written)} message(s) could not be logged; the first: "
                f"{self.not_written[0]}"
            )
        if self.ended_by == "tracker":
            notes.append(f"the tracker at {self.tracker} closed the connection.")
        if self.dropped:
            notes.append(f"{self.dropped} message(s) were dropped: the log has gaps.")
        return notes


def record_session(
    host: str,
    port: int,
    out: str | os.PathLike[str],
    *,
    seconds: float | None = None,
    connect_timeout_s: float = 5.0,
    on_progress: Callable[[int], None] | None = None,
) -> RecordSummary:
    """Write every message from an OpenIGTLink server into a session log (JSON lines).

    Parameters
    ----------
    host, port : str, int
        The server.
    out : str or PathLike
        The log; replaced if it exists (check before calling). Each line is flushed as
        received, so a crash leaves every line before it.
    seconds : float, optional
        How long to record (default: until the server hangs up or Ctrl-C).
    connect_timeout_s : float
        How long to try to connect.
    on_progress : callable, optional
        Called about twice a second with the number of messages written.

    Raises
    ------
    PeerError
        If no server answers at ``host:port``.
    """
    path = Path(out)
    summary = RecordSummary(output=str(path), tracker=f"{host}:{port}")
    header = SessionHeader(
        timestamp_s=time.time(),
        software_version=seldinger.__version__,
        description=f"seldinger navigate record --tracker {host}:{port}",
    )
    with IgtlClient(host, port, connect_timeout_s=connect_timeout_s) as client:
        path.parent.mkdir(parents=True, exist_ok=True)
        with SessionLogWriter(
            path, header=header, mode="overwrite" if path.exists() else "create"
        ) as writer:
            started = shown = time.monotonic()
            try:
                while (left := _left(seconds, started)) is None or left > 0:
                    try:
                        item = client.receive(POLL_S if left is None else min(POLL_S, left))
                    except TimeoutError:
                        continue
                    except LinkClosedError:
                        _raise_if_refused(client)
                        summary.ended_by = "tracker"
                        break
                    summary.by_type[item.header.type_name if item.ok else "errors"] += 1
                    summary.by_device[item.device_name] += 1
                    try:
                        writer.write(received_to_record(item))
                    except ValueError as err:
                        name = f"{item.header.type_name} {item.device_name!r}"
                        summary.not_written.append(f"{name}: {err}")
                    if on_progress is not None and time.monotonic() - shown > 0.5:
                        shown = time.monotonic()
                        on_progress(writer.records_written)
            except KeyboardInterrupt:
                summary.ended_by = "interrupt"
            summary.seconds = time.monotonic() - started
            summary.written = writer.records_written
        stats = client.stats()
    summary.crc_errors, summary.decode_errors = stats.crc_errors, stats.decode_errors
    summary.unknown_types, summary.dropped = stats.unknown_types, stats.dropped
    return summary


def _left(seconds: float | None, started: float) -> float | None:
    return None if seconds is None else seconds - (time.monotonic() - started)


@dataclass
class StreamSummary:
    """What a server loop sent."""

    frames: int = 0
    messages: int = 0
    skipped: int = 0
    clients: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    ignored: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``ignored``: messages clients sent, read and thrown away)."""
        return {
            "frames": self.frames,
            "messages": self.messages,
            "skipped": self.skipped,
            "ignored": self.ignored,
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
        }


def _wait_for_client(
    server: IgtlServer, on_wait: Callable[[], None] | None, summary: StreamSummary
) -> None:
    if on_wait is not None:
        on_wait()
    while not server.clients:
        with contextlib.suppress(TimeoutError):
            server.wait_for_clients(1, timeout_s=1.0)
        _ignore_incoming(server, summary)


def _ignore_incoming(server: IgtlServer, summary: StreamSummary) -> None:
    """Throw away what clients sent to a server that only sends (bounds its memory)."""
    if server.options.keep_incoming:
        summary.ignored += len(server.drain())


def _finish(server: IgtlServer, summary: StreamSummary) -> None:
    _ignore_incoming(server, summary)
    summary.ignored += server.stats().discarded


def stream_simulation(
    server: IgtlServer,
    sim: TrackerSimulator,
    *,
    seconds: float | None = None,
    tdata: bool = False,
    wait_client: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> StreamSummary:
    """Send the simulator's frames in real time; greet each new client with STATUS OK.

    Frames go out as TRANSFORM messages (one per tool) or one TDATA message per frame.
    What clients send is not kept (see the module docstring; counted in ``ignored``).
    """
    summary = StreamSummary()
    greeted: set[str] = set()
    started = time.monotonic()
    try:
        if wait_client:
            _wait_for_client(server, on_wait, summary)
        start_mono, start_unix = time.monotonic(), time.time()
        for frame in sim.frames(seconds):
            _ignore_incoming(server, summary)
            delay = start_mono + frame.index / sim.config.rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for peer in server.clients:
                if peer not in greeted:
                    greeted.add(peer)
                    hello = StatusMessage(device_name="Tracker", status_string="simulated tracker")
                    with contextlib.suppress(KeyError):  # gone again
                        server.send(hello, peer=peer)
            stamp = start_unix + frame.timestamp_s
            if tdata:
                elements = [TrackingElement(n, m) for n, m in frame.transforms.items()]
                server.send(
                    TrackingDataMessage(elements=elements, device_name="Tracker", timestamp_s=stamp)
                )
                summary.messages += 1
            else:
                for name, matrix in frame.transforms.items():
                    server.send(
                        TransformMessage(matrix=matrix, device_name=name, timestamp_s=stamp)
                    )
                    summary.messages += 1
            summary.frames += 1
    except KeyboardInterrupt:
        summary.interrupted = True
    _finish(server, summary)
    summary.clients = len(greeted)
    summary.seconds = time.monotonic() - started
    return summary


def replay_session(
    server: IgtlServer,
    records: Iterable[Any],
    *,
    speed: float | None = 1.0,
    keep_timestamps: bool = False,
    wait_client: bool = False,
) -> StreamSummary:
    """Send a session log's messages at their logged time offsets (divided by ``speed``;
    None: as fast as possible), restamped now unless ``keep_timestamps``.

    Message types the log keeps without their bodies are skipped (counted). What clients
    send is not kept (see the module docstring; counted in ``ignored``).
    """
    summary = StreamSummary()
    started = time.monotonic()
    try:
        if wait_client:
            _wait_for_client(server, None, summary)
        for item in replay(list(records), speed=speed):
            _ignore_incoming(server, summary)
            message = record_to_message(item.record, None if keep_timestamps else time.time())
            if message is None:
                summary.skipped += 1
                continue
            server.send(message)
            summary.messages += 1
    except KeyboardInterrupt:
        summary.interrupted = True
    _finish(server, summary)
    summary.clients = len(server.clients)
    summary.seconds = time.monotonic() - started
    return summary


def _raise_if_refused(client: IgtlClient) -> None:
    """Raise when the link ended because the tracker broke the protocol, not by hanging up."""
    reason = client.last_refusal
    if reason is not None:
        raise PeerError(
            f"the tracker at {client.peer} was disconnected: {reason}. Check that HOST:PORT is "
            "an OpenIGTLink server (PLUS, 3D Slicer's OpenIGTLinkIF, a tracker's own server)."
        )


def follow_guidance(
    client: IgtlClient,
    session: Any,
    *,
    seconds: float | None = None,
    on_idle: Callable[[], None] | None = None,
) -> str:
    """Feed a :class:`~seldinger.navigation.guide_session.GuidanceSession` from a tracker.

    Runs until ``seconds`` have passed, the tracker hangs up, or Ctrl-C; calls ``on_idle``
    whenever no message came for :data:`POLL_S`. Returns why it ended: ``"time"``,
    ``"tracker"`` or ``"interrupt"``.
    """
    started = time.monotonic()
    try:
        while (left := _left(seconds, started)) is None or left > 0:
            try:
                item = client.receive(POLL_S if left is None else min(POLL_S, left))
            except TimeoutError:
                session.idle()
                if on_idle is not None:
                    on_idle()
                continue
            except LinkClosedError:
                _raise_if_refused(client)
                return "tracker"
            session.receive(item)
        session.idle()
    except KeyboardInterrupt:
        return "interrupt"
    return "time"
