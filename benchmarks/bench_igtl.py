"""OpenIGTLink receive path: a 1000 Hz TRANSFORM stream over loopback for 10 s.

A separate process (this script with ``--send``) streams TRANSFORM messages at
``--rate-hz``, each stamped with ``time.time()`` just before it is packed and carrying its
sequence number in the x translation. It streams twice, in the same run:

1. to ``seldinger.navigation.igtl.IgtlServer``: every frame runs the guidance step on the
   reader thread (the ``on_message`` hook: ``seldinger.navigation.Guide.update`` against a
   planned path, with a critical-structure distance map, the way ``seldinger navigate
   guide`` does), and the main thread also reads every frame from the queue with
   ``server.receive()``;
2. to ``pyigtl.OpenIGTLinkServer`` (baseline), read the way pyigtl offers it:
   ``wait_for_message(device, timeout)`` in a loop (it keeps only the latest message).

For each it prints frames lost (goal: none), latency from the sender's timestamp to the
end of receipt + decode (+ guidance step) — median, p99 (goal <= 2 ms) and max — and
the receiving process's CPU use (process time / wall time, all its threads; the sender
is another process).

Then the attack scenario (``run_attack`` of ``tests/navigation/test_igtl_attacks.py``,
here with the default ``LinkOptions``): the server streams TRANSFORM at 40 Hz to a good
client, first unattacked, then while two clients announce 1 GiB IMAGE bodies and trickle
them, one sends 30 messages of 20 MB of an unknown type, 50 connect and reset
mid-message and a slowloris trickles a header and then a body (cut after
``message_timeout_s``, 5 s, each). It prints frames/s, the largest gap between frames
(goal <= 0.1 s), and the rise of the server's resident memory during (goal <= 100 MB) and
after (goal <= 20 MB) the attack; then the attack again without freezing the objects made
before it out of the garbage collector's reach (see ``_GcWatch`` there). Run from the
project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_igtl.py [--seconds 10] [--rate-hz 1000]
                                              [--scenario all|latency|attack]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GOAL_P99_MS = 2.0
GOAL_GAP_S, GOAL_RSS_DURING_MB, GOAL_RSS_AFTER_MB = 0.1, 100.0, 20.0
TESTS_NAVIGATION = Path(__file__).resolve().parents[1] / "tests" / "navigation"
DEVICE = "NeedleToTracker"
NEEDLE_TIP_TOOL = np.array([0.0, 0.0, 150.0, 1.0])  # a 15 cm needle along the tool's z axis


def guidance_step() -> Callable[[Any], None]:
    """The real guidance step: ``Guide.update`` on each frame (registration identity, a
    100 mm path, a 100^3 distance map to critical structures for the breach check)."""
    from seldinger.imaging import Volume
    from seldinger.navigation import Guide, PlannedPath, tool_tip_to_tool

    distance = Volume(
        np.full((100, 100, 100), 20.0, dtype=np.float32), np.diag([2.0, 2.0, 2.0, 1.0])
    )
    guide = Guide(
        PlannedPath((0.0, 0.0, 0.0), (0.0, 0.0, 100.0)),
        tool_tip_to_tool(NEEDLE_TIP_TOOL[:3]),
        tracker_to_ct=np.eye(4),
        critical_distance=distance,
    )

    def step(received: Any) -> None:
        guide.update(received.message.matrix, timestamp_s=received.receive_monotonic_s)

    return step


def send(port: int, seconds: float, rate_hz: float) -> int:
    """Sender process: stream TRANSFORMs to 127.0.0.1:port on a fixed schedule, print the count."""
    from seldinger.navigation.igtl import TransformMessage

    sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    matrix = np.eye(4)
    TransformMessage(device_name=DEVICE, matrix=matrix).pack()  # load the CRC kernel first
    count = int(seconds * rate_hz)
    start = time.monotonic() + 0.2
    for i in range(count):
        delay = start + i / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        matrix[0, 3] = i
        message = TransformMessage(device_name=DEVICE, timestamp_s=time.time(), matrix=matrix)
        sock.sendall(message.pack())
    time.sleep(0.2)  # let the last frames be read before this process's exit competes for CPU
    sock.close()
    print(count, flush=True)
    return 0


def start_sender(port: int, seconds: float, rate_hz: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--send",
            str(port),
            "--seconds",
            str(seconds),
            "--rate-hz",
            str(rate_hz),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


@dataclass
class Result:
    sent: int
    received: int
    latencies_ms: dict[str, np.ndarray]
    cpu_fraction: float
    note: str = ""


def run_seldinger(seconds: float, rate_hz: float, guidance_step: Callable[[Any], None]) -> Result:
    from seldinger.navigation.igtl import IgtlServer

    count = int(seconds * rate_hz)
    hook_ms = np.full(count, np.nan)
    queue_ms = np.full(count, np.nan)

    def on_message(received: Any) -> None:  # reader thread
        guidance_step(received)
        hook_ms[int(received.message.matrix[0, 3])] = (
            time.time() - received.message.timestamp_s
        ) * 1e3

    with IgtlServer(port=0, on_message=on_message) as server:
        sender = start_sender(server.port, seconds, rate_hz)
        server.wait_for_clients(1, timeout_s=30.0)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for item in server.frames(timeout_s=2.0):
            message: Any = item.message  # only TRANSFORMs in this stream
            queue_ms[int(message.matrix[0, 3])] = (time.time() - message.timestamp_s) * 1e3
        wall, cpu = time.perf_counter() - wall0 - 2.0, time.process_time() - cpu0
        stats = server.stats()
    out, _ = sender.communicate(timeout=30)
    received = int(np.count_nonzero(~np.isnan(hook_ms)))
    note = f"queue dropped {stats.dropped}, CRC errors {stats.crc_errors}"
    return Result(
        int(out), received, {"hook + guidance": hook_ms, "receive()": queue_ms}, cpu / wall, note
    )


def run_pyigtl(seconds: float, rate_hz: float) -> Result:
    import pyigtl  # type: ignore[import-untyped]

    count = int(seconds * rate_hz)
    latency_ms = np.full(count, np.nan)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = pyigtl.OpenIGTLinkServer(port=0, start_now=False)
    for sig, handler in handlers.items():  # pyigtl installs its own; keep ours
        signal.signal(sig, handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        sender = start_sender(server.server_address[1], seconds, rate_hz)
        while not server.is_connected():
            time.sleep(0.001)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            message = server.wait_for_message(DEVICE, timeout=0.5)
            if message is not None:
                latency_ms[int(message.matrix[0, 3])] = (time.time() - message.timestamp) * 1e3
                idle_since = time.monotonic()
        wall, cpu = time.perf_counter() - wall0 - 2.0, time.process_time() - cpu0
        out, _ = sender.communicate(timeout=30)
    finally:
        server.stop()
        thread.join(10.0)
    received = int(np.count_nonzero(~np.isnan(latency_ms)))
    note = "keeps the latest message per device; wait_for_message polls every 10 ms"
    return Result(int(out), received, {"wait_for_message()": latency_ms}, cpu / wall, note)


def run_attack_scenario(rate_hz: float) -> int:
    """The unattacked 40 Hz stream and the attacked one, one after the other; prints both."""
    sys.path.insert(0, str(TESTS_NAVIGATION))
    from test_igtl_attacks import run_attack  # type: ignore[import-not-found]

    from seldinger.navigation.igtl import LinkOptions

    logging.getLogger("seldinger").setLevel(logging.ERROR)  # one WARNING per refused peer
    attacked = run_attack(options=LinkOptions(), rate_hz=rate_hz)
    baseline = run_attack(
        attack=False, seconds=attacked.seconds, options=LinkOptions(), rate_hz=rate_hz
    )
    unfrozen = run_attack(options=LinkOptions(), rate_hz=rate_hz, freeze_gc=False)
    print(
        f"\nattack scenario: TRANSFORM at {rate_hz:g} Hz to a good client; 2 clients "
        "announcing 1 GiB IMAGEs and trickling, 30 x 20 MB of an unknown type, 50 resets "
        "mid-message, a slowloris (default LinkOptions)"
    )
    print(
        f"{'':<22}{'seconds':>8}{'frames':>9}{'frames/s':>10}{'max gap ms':>12}"
        f"{'latency ms':>12}{'GC ms':>7}{'RSS MB':>8}{'rise MB':>9}{'after MB':>10}"
    )
    failed = False
    rows = (
        ("unattacked", baseline),
        ("attacked", attacked),
        ("attacked, GC as is", unfrozen),
    )
    for name, result in rows:
        ok = (
            result.frames_received >= result.frames_sent - 1
            and result.max_gap_s <= GOAL_GAP_S
            and result.rss_peak_rise_mb <= GOAL_RSS_DURING_MB
            and result.rss_after_rise_mb <= GOAL_RSS_AFTER_MB
        )
        failed |= not ok
        print(
            f"{name:<22}{result.seconds:>8.2f}{result.frames_received:>5}/{result.frames_sent:<3}"
            f"{result.frames_per_s:>10.1f}{1e3 * result.max_gap_s:>12.1f}"
            f"{1e3 * result.max_latency_s:>12.1f}{1e3 * result.max_gc_pause_s:>7.1f}"
            f"{result.rss_baseline_mb:>8.0f}{result.rss_peak_rise_mb:>9.1f}"
            f"{result.rss_after_rise_mb:>10.1f}  {'ok' if ok else 'MISSED'}"
        )
    stats = attacked.stats
    print(
        f"  (refused {stats.refused} connections: oversized {stats.oversized}, timeouts "
        f"{stats.timeouts}, truncated {stats.truncated}, framing {stats.framing_errors}, over "
        f"budget {stats.over_budget}; {stats.connections} connections; attackers: "
        f"{dict(attacked.tally)}{'; errors ' + str(attacked.errors) if attacked.errors else ''})"
    )
    print(
        f"goal: every frame, largest gap <= {GOAL_GAP_S * 1e3:.0f} ms, RSS rise <= "
        f"{GOAL_RSS_DURING_MB:.0f} MB during and <= {GOAL_RSS_AFTER_MB:.0f} MB after. Latency: "
        "frame stamped to received; GC: the longest garbage-collector pause (the first two "
        "rows freeze the objects made before the attack, gc.freeze; the last does not)"
    )
    return int(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each stream (s)")
    parser.add_argument("--rate-hz", type=float, default=1000.0, help="frames per second")
    parser.add_argument("--send", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--skip-pyigtl", action="store_true", help="measure only seldinger")
    parser.add_argument(
        "--scenario",
        choices=["all", "latency", "attack"],
        default="all",
        help="the 1 kHz latency stream, the 40 Hz stream under attack, or both",
    )
    parser.add_argument(
        "--attack-rate-hz", type=float, default=40.0, help="frame rate of the attack scenario"
    )
    args = parser.parse_args(argv)
    if args.send is not None:
        return send(args.send, args.seconds, args.rate_hz)
    if args.scenario == "attack":
        return run_attack_scenario(args.attack_rate_hz)

    import numba

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"numba {numba.__version__}; {args.rate_hz:.0f} Hz TRANSFORM for {args.seconds:g} s over loopback; "
        f"load average {os.getloadavg()[0]:.2f} (other processes inflate the tail)"
    )
    results = {"seldinger": run_seldinger(args.seconds, args.rate_hz, guidance_step())}
    if not args.skip_pyigtl:
        try:
            results["pyigtl"] = run_pyigtl(args.seconds, args.rate_hz)
        except ImportError:
            print("pyigtl is not installed: no baseline (pip install pyigtl)")
    print(f"{'':<34}{'sent':>7}{'lost':>7}{'median ms':>11}{'p99 ms':>9}{'max ms':>9}{'CPU %':>7}")
    for name, result in results.items():
        for path, latency in result.latencies_ms.items():
            got = latency[~np.isnan(latency)]
            lost = result.sent - got.size
            median, p99, peak = np.percentile(got, [50, 99, 100]) if got.size else (np.nan,) * 3
            verdict = "ok" if lost == 0 and p99 <= GOAL_P99_MS else "MISSED"
            print(
                f"{name + ' ' + path:<34}{result.sent:>7}{lost:>7}{median:>11.3f}{p99:>9.3f}{peak:>9.2f}"
                f"{100 * result.cpu_fraction:>7.1f}  {verdict}"
            )
        print(f"  ({result.note})")
    print(
        f"goal: no frame lost, p99 <= {GOAL_P99_MS} ms (CPU: process time / wall time of the receiver)"
    )
    if args.scenario == "all":
        return run_attack_scenario(args.attack_rate_hz)
    return 0


if __name__ == "__main__":
    sys.exit(main())
