"""Robot protocol over loopback OpenIGTLink: command → acknowledgement latency.

A simulated robot (:class:`seldinger.robot.sim_server.SimulatedRobot`, no added latency)
and the controller (:class:`seldinger.robot.protocol.RobotController`) in one process,
over a real TCP socket on 127.0.0.1. Times ``--n`` STRING commands, each until its STATUS
acknowledgement has been read, beside a baseline in the same run: a bare OpenIGTLink
STRING echo over the same kind of link (the project's own server and client, no state
machine), which is the floor the protocol adds to. Goal (issue 18): p99 ≤ 5 ms.

    .venv/bin/python benchmarks/bench_robot_protocol.py [--n 2000]
"""

from __future__ import annotations

import argparse
import platform
import threading
import time

import numpy as np

from seldinger.navigation.igtl import IgtlClient, IgtlServer, StringMessage
from seldinger.robot.protocol import RobotController, RobotState
from seldinger.robot.sim_server import SimulatedRobot, SimulatedRobotSettings

GOAL_P99_MS = 5.0


def _percentiles(samples_ms: list[float]) -> str:
    p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
    return f"p50 {p50:6.3f}  p90 {p90:6.3f}  p99 {p99:6.3f}  max {max(samples_ms):6.3f}"


def _protocol(n: int) -> list[float]:
    settings = SimulatedRobotSettings(latency_s=0.0)
    with SimulatedRobot(settings=settings) as robot, RobotController(port=robot.port) as ctl:
        for _ in range(50):  # warm up: threads, sockets, allocations
            ctl.command(RobotState.START_UP)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            ctl.command(RobotState.START_UP)
            samples.append((time.perf_counter() - start) * 1e3)
    return samples


def _echo(n: int) -> list[float]:
    server = IgtlServer("127.0.0.1", 0)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                server.receive(timeout_s=0.1)
            except TimeoutError:
                continue
            server.send(StringMessage(device_name="ECHO", text="ok"))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    samples = []
    try:
        with IgtlClient("127.0.0.1", server.port) as client:
            for i in range(n + 50):
                start = time.perf_counter()
                client.send(StringMessage(device_name="PING", text="x"))
                client.receive(timeout_s=1.0)
                if i >= 50:
                    samples.append((time.perf_counter() - start) * 1e3)
    finally:
        stop.set()
        thread.join(2.0)
        server.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="round trips timed")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    echo = _echo(args.n)
    print(f"baseline: bare STRING echo (ms)    {_percentiles(echo)}")
    protocol = _protocol(args.n)
    print(f"robot command -> STATUS ack (ms)   {_percentiles(protocol)}")
    p99 = float(np.percentile(protocol, 99))
    verdict = "ok" if p99 <= GOAL_P99_MS else "MISSED"
    print(f"p99 {p99:.3f} ms, goal <= {GOAL_P99_MS} ms: {verdict}")


if __name__ == "__main__":
    main()
