"""Settings and counters of an OpenIGTLink server or client, and what a peer may send.

A peer (tracker, Slicer, robot, or anything else that can open a TCP connection) decides
how many bytes follow each 58-byte header. Nothing it announces is allocated up front:
a body is read into a buffer that grows with the bytes that actually arrive, and a header
announcing more than its type may carry is a protocol error that drops that connection
only. The defaults, and why:

============== =============== ============================================================
type           content limit   why
============== =============== ============================================================
TRANSFORM      48 B            12 float32, always
POSITION       152 B           28 B in the protocol; 152 B is pyigtl's one-element layout
TDATA          64 KiB          936 tools of 70 B (trackers have a handful)
POINT          64 KiB          481 points of 136 B
STATUS         64 KiB          30 B + the message text
STRING         65 539 B        4 B + at most 65 535 bytes of text (the length is a uint16)
IMAGE          256 MiB + 72 B  a 512 × 512 × 512 int16 CT and its image header
anything else  1 MiB           ``unknown_body_limit``: queries, capabilities, small arrays
============== =============== ============================================================

A header-version-2 (v3) body also holds the extended header and the metadata:
``metadata_allowance`` (64 KiB) is added to the type's limit for them. ``max_body_size``
(1 GiB) caps every type whatever the table says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, fields
from types import MappingProxyType

from seldinger.errors import BadInputError

from .image import IMAGE_HEADER_SIZE

__all__ = ["DEFAULT_BODY_LIMITS", "KIB", "MIB", "LinkOptions", "LinkStats"]

KIB, MIB = 1 << 10, 1 << 20

#: Most content bytes (body without the v3 extended header and metadata) accepted per
#: message type; the reasons are in this module's docstring.
DEFAULT_BODY_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "TRANSFORM": 48,
        "POSITION": 152,
        "TDATA": 64 * KIB,
        "POINT": 64 * KIB,
        "STATUS": 64 * KIB,
        "STRING": 4 + 65_535,
        "IMAGE": 256 * MIB + IMAGE_HEADER_SIZE,
    }
)


@dataclass(frozen=True)
class LinkOptions:
    """Settings of a server or client: queue, limits on what a peer sends, time-outs.

    Parameters
    ----------
    queue_capacity : int
        Received messages held before the oldest is dropped (10 000 = 10 s at 1 kHz).
    max_body_size : int
        Largest body of any type, in bytes (default 1 GiB): a ceiling over
        ``body_limits``.
    verify_crc : bool
        Check the CRC-64 of every body (default True). A mismatch is delivered as an
        error record and counted; the connection goes on.
    deliver_unknown : bool
        Put messages of types we do not decode in the queue as
        :class:`~.messages.RawMessage` (default True); False drops them (still counted).
    io_timeout_s : float
        A send that makes no progress, or a message that stops arriving, for this long
        drops the connection (default 5 s). An idle link (between messages) is never
        dropped.
    body_limits : mapping of str to int
        Most content bytes per message type, merged over :data:`DEFAULT_BODY_LIMITS`
        (e.g. ``{"IMAGE": 1 << 30}`` for a 1 GiB volume, ``{"POLYDATA": 16 * MIB}``). A
        header announcing more drops that connection (``oversized``).
    unknown_body_limit : int
        The limit for types not in ``body_limits`` (default 1 MiB).
    metadata_allowance : int
        Bytes added to the limit of a header-version-2 (v3) body for its extended header
        and metadata (default 64 KiB).
    queue_max_bytes : int
        Bytes (header + body) of the received messages held; beyond it the oldest are
        dropped as for ``queue_capacity`` (default 256 MiB). The newest message is always
        kept, even alone above this.
    connection_budget_bytes : int
        Bytes one connection may hold that the application has not read: the message
        being received plus that peer's messages still in the queue (default 384 MiB,
        the largest IMAGE plus 128 MiB). A peer above it is disconnected
        (``over_budget``). A consumer that keeps up never meets it; one that does not
        read at all should set ``keep_incoming=False``.
    keep_incoming : bool
        Queue received messages (default True). False, for a server that only sends (a
        simulator, a replay): what peers send is checked against the limits, counted
        (``discarded``) and thrown away as it arrives; ``on_message`` is still called
        when given.
    message_timeout_s : float
        Time a message may take from its first header byte, extended by one second for
        every ``min_rate_bytes_per_s`` bytes received (the rule of Apache's
        mod_reqtimeout). A peer that starts a message and trickles it (slowloris) is
        disconnected after this (``timeouts``); default 5 s.
    min_rate_bytes_per_s : float
        See ``message_timeout_s`` (default 64 KiB/s: a 256 MiB IMAGE may take 68 min).
    send_queue_capacity : int
        Messages a server holds for one client that has not taken them yet (default
        10 000). When full, that client skips the oldest (``send_skipped``); the others
        are not delayed.
    send_queue_max_bytes : int
        The same in bytes (default 64 MiB); one message is always accepted, however large.
    """

    queue_capacity: int = 10_000
    max_body_size: int = 1 << 30
    verify_crc: bool = True
    deliver_unknown: bool = True
    io_timeout_s: float = 5.0
    _: KW_ONLY
    body_limits: Mapping[str, int] = field(default_factory=dict, hash=False)
    unknown_body_limit: int = 1 * MIB
    metadata_allowance: int = 64 * KIB
    queue_max_bytes: int = 256 * MIB
    connection_budget_bytes: int = 384 * MIB
    keep_incoming: bool = True
    message_timeout_s: float = 5.0
    min_rate_bytes_per_s: float = 64 * KIB
    send_queue_capacity: int = 10_000
    send_queue_max_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        limits = {**DEFAULT_BODY_LIMITS, **self.body_limits}
        object.__setattr__(self, "body_limits", limits)  # a copy: the caller's dict may change
        for name, size in limits.items():
            if not isinstance(size, int) or size < 0:
                raise BadInputError(
                    f"body_limits[{name!r}] must be a number of bytes >= 0; got {size!r}."
                )
        for name in ("max_body_size", "unknown_body_limit", "metadata_allowance"):
            if getattr(self, name) < 0:
                raise BadInputError(f"{name} must be >= 0 bytes; got {getattr(self, name)!r}.")
        for name in (
            "queue_capacity",
            "queue_max_bytes",
            "connection_budget_bytes",
            "send_queue_capacity",
            "send_queue_max_bytes",
        ):
            if getattr(self, name) < 1:
                raise BadInputError(f"{name} must be positive; got {getattr(self, name)!r}.")
        for name in ("io_timeout_s", "message_timeout_s", "min_rate_bytes_per_s"):
            if not getattr(self, name) > 0:
                raise BadInputError(
                    f"{name} must be positive (seconds, or bytes per second); got "
                    f"{getattr(self, name)!r}."
                )

    def body_limit(self, type_name: str, header_version: int = 1) -> int:
        """Most body bytes accepted for a ``type_name`` message with this header version.

        >>> options = LinkOptions()
        >>> options.body_limit("TRANSFORM"), options.body_limit("TRANSFORM", 2)
        (48, 65584)
        >>> options.body_limit("NDARRAY") == options.unknown_body_limit
        True
        """
        limit = self.body_limits.get(type_name, self.unknown_body_limit)
        if header_version >= 2:
            limit += self.metadata_allowance
        return min(limit, self.max_body_size)


@dataclass(frozen=True)
class LinkStats:
    """Counters of a server or client since it started.

    ``received`` counts whole messages, good or bad; ``crc_errors`` and
    ``decode_errors`` those delivered as error records; ``unknown_types`` those of types
    we do not decode; ``dropped`` records discarded by the full queue (messages or
    bytes); ``discarded`` messages not kept because ``keep_incoming`` is False.

    Connections dropped, by reason: ``framing_errors`` (a header that cannot be trusted),
    ``oversized`` (a body larger than its type's limit announced), ``truncated`` (the
    peer closed, or sent nothing for ``io_timeout_s``, in the middle of a message),
    ``timeouts`` (a message not whole within ``message_timeout_s`` and the minimum rate:
    a trickle), ``over_budget`` (more unread bytes than ``connection_budget_bytes``);
    :attr:`refused` is their sum. ``send_failures`` counts clients dropped because a send
    failed or made no progress; ``send_skipped`` messages a slow client skipped.
    """

    received: int = 0
    bytes_received: int = 0
    crc_errors: int = 0
    decode_errors: int = 0
    unknown_types: int = 0
    dropped: int = 0
    framing_errors: int = 0
    truncated: int = 0
    callback_errors: int = 0
    send_failures: int = 0
    connections: int = 0
    oversized: int = 0
    timeouts: int = 0
    over_budget: int = 0
    discarded: int = 0
    send_skipped: int = 0

    @property
    def refused(self) -> int:
        """Connections dropped for breaking the protocol or the limits."""
        return (
            self.framing_errors + self.oversized + self.truncated + self.timeouts + self.over_budget
        )

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> LinkStats:
        return cls(**{f.name: counts.get(f.name, 0) for f in fields(cls)})
