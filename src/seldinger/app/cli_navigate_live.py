"""``seldinger navigate record``, and what every command that talks to a tracker shares.

Shared: the exit status for unusable input, the tracker address and its options, JSON
lines. ``guide`` is in :mod:`seldinger.app.cli_navigate_guide`, ``simulate`` and
``replay`` in :mod:`seldinger.app.cli_navigate_sim`; all are added to the ``navigate``
group by :mod:`seldinger.app.cli_navigate`. Ctrl-C ends ``record`` normally (the summary
is still printed, exit status 0).
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from seldinger.app._cli_common import (
    ForceOption,
    JsonOption,
    _err,
    _notes,
    _out,
    _print_json,
    _state,
)

if TYPE_CHECKING:
    pass

__all__ = ["EXIT_BAD_INPUT", "parse_tracker_address", "record"]

#: Exit status for input that cannot be used (bad CSV or log contents, points that cannot be
#: registered, a missing registration): the usage-error status, so scripts can tell it
#: from 1 (no tracker at the address, an output that exists without --force …).
EXIT_BAD_INPUT = 2
_DEFAULT_PORT = 18944  # seldinger.navigation.igtl.DEFAULT_PORT (not imported: --help stays fast)
_POLL_S = 0.1  # longest wait for a message before the watchdog and the clock are checked


TrackerOption = Annotated[
    str,
    typer.Option(
        "--tracker",
        metavar="HOST:PORT",
        help="OpenIGTLink server to connect to: HOST:PORT (localhost:18944, [::1]:18944) or "
        "a port on this machine.",
        show_default=False,
    ),
]
ConnectTimeoutOption = Annotated[
    float,
    typer.Option("--connect-timeout-s", min=0.1, help="How long to try to connect, seconds."),
]


def _bad_input(message: str) -> NoReturn:
    """Print a one-line error and exit with :data:`EXIT_BAD_INPUT`."""
    _err.print(
        f"[bold red]error:[/] {escape(' '.join(message.split()))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(EXIT_BAD_INPUT)


def _jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as None (strict JSON) and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _emit(payload: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed (a reader sees it at once)."""
    sys.stdout.write(json.dumps(_jsonable(payload), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def parse_tracker_address(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` (port 18944) or ``PORT``."""
    value = text.strip()
    match = re.fullmatch(
        r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<host>[^:\s]*)(?::(?P<port>\d+))?", value
    )
    if value.isdigit():
        host, port = "127.0.0.1", int(value)
    elif match and (match["v6"] or match["host"]):
        host = match["v6"] or match["host"]
        port = int(match["p6"] or match["port"] or _DEFAULT_PORT)
    else:
        host, port = "", -1
    if not host or not 0 < port < 65536:
        raise typer.BadParameter(
            f"expected HOST:PORT (e.g. localhost:18944 or [::1]:18944) or a port; got {text!r}.",
            param_hint="--tracker",
        )
    return host, port


# --- navigate record -------------------------------------------------------------------


def record(
    tracker: TrackerOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Session log to write: JSON lines, one per message, flushed as received (a "
            "crash leaves every line before it).",
            show_default=False,
        ),
    ],
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            min=0.0,
            help="Record this long (default: until Ctrl-C or the tracker hangs up).",
            show_default=False,
        ),
    ] = None,
    connect_timeout_s: ConnectTimeoutOption = 5.0,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Record every message from an OpenIGTLink server into a session log (JSON lines).

    Line 1 is a SESSION header; then one line per message: type, device, timestamp_s (the
    sender's), received_s (local), and matrix (TRANSFORM, 4x4 mm), tools (TDATA),
    position_mm + quaternion (POSITION, x y z w), code/message (STATUS) or text (STRING).
    A message that failed its CRC check is logged as the STATUS error made for it. Prints
    a summary: messages per type and device, CRC and decode errors, messages dropped.

    Example: `seldinger navigate record --tracker localhost:18944 --seconds 20 --out
    pivot.jsonl`.
    """
    import seldinger
    from seldinger._files import check_overwrite
    from seldinger.navigation.igtl import IgtlClient, LinkClosedError
    from seldinger.navigation.igtl.records import received_to_record
    from seldinger.navigation.recording import SessionHeader, SessionLogWriter

    host, port = parse_tracker_address(tracker)
    check_overwrite(out, force)
    by_type: Counter[str] = Counter()
    by_device: Counter[str] = Counter()
    not_written: list[str] = []
    ended_by = "time"
    header = SessionHeader(
        timestamp_s=time.time(),
        software_version=seldinger.__version__,
        description=f"seldinger navigate record --tracker {host}:{port}",
    )
    with IgtlClient(host, port, connect_timeout_s=connect_timeout_s) as client:
        out.parent.mkdir(parents=True, exist_ok=True)
        with SessionLogWriter(
            out, header=header, mode="overwrite" if out.exists() else "create"
        ) as writer:
            started = time.monotonic()
            quiet = as_json or _state.get("quiet")
            status = None if quiet else _err.status(f"recording {host}:{port} into {out} …")
            if status is not None:
                status.start()
            shown = started
            try:
                while True:
                    left = None if seconds is None else seconds - (time.monotonic() - started)
                    if left is not None and left <= 0:
                        break
                    try:
                        item = client.receive(_POLL_S if left is None else min(_POLL_S, left))
                    except TimeoutError:
                        continue
                    except LinkClosedError:
                        ended_by = "tracker"
                        break
                    by_type[item.header.type_name if item.ok else "errors"] += 1
                    by_device[item.device_name] += 1
                    try:
                        writer.write(received_to_record(item))
                    except ValueError as err:
                        not_written.append(f"{item.header.type_name} {item.device_name!r}: {err}")
                    if status is not None and time.monotonic() - shown > 0.5:
                        shown = time.monotonic()
                        status.update(f"recording into {out}: {writer.records_written} messages")
            except KeyboardInterrupt:
                ended_by = "interrupt"
            finally:
                if status is not None:
                    status.stop()
            elapsed = time.monotonic() - started
            written = writer.records_written
        stats = client.stats()
    summary: dict[str, Any] = {
        "output": str(out),
        "tracker": f"{host}:{port}",
        "seconds": round(elapsed, 3),
        "messages": sum(by_type.values()),
        "written": written,
        "by_type": dict(sorted(by_type.items())),
        "by_device": dict(sorted(by_device.items())),
        "crc_errors": stats.crc_errors,
        "decode_errors": stats.decode_errors,
        "unknown_types": stats.unknown_types,
        "dropped": stats.dropped,
        "not_written": len(not_written),
        "ended_by": ended_by,
    }
    notes = []
    if not_written:
        notes.append(
            f"{len(not_written)} message(s) could not be logged; the first: {not_written[0]}"
        )
    if ended_by == "tracker":
        notes.append(f"the tracker at {host}:{port} closed the connection.")
    if stats.dropped:
        notes.append(f"{stats.dropped} message(s) were dropped: the log has gaps.")
    if as_json:
        _print_json(_jsonable({**summary, "notes": notes}))
        return
    _notes(notes)
    from rich.table import Table

    table = Table(title=f"Recorded {tracker} → {out} ({summary['seconds']:.1f} s)")
    table.add_column("type")
    table.add_column("messages", justify="right")
    for name, count in summary["by_type"].items():
        table.add_row(name, str(count))
    _out.print(table)
    _out.print(
        f"devices: {', '.join(f'{d} ({n})' for d, n in summary['by_device'].items()) or 'none'}; "
        f"CRC errors {stats.crc_errors}, decode errors {stats.decode_errors}, dropped "
        f"{stats.dropped}",
        highlight=False,
    )
    _out.print(f"wrote {out} ({written} messages)", highlight=False)
