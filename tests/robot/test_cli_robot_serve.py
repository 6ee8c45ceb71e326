"""`seldinger robot serve` as a separate process, driven by the controller over loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from seldinger.navigation.igtl import StatusCode
from seldinger.robot.protocol import RobotController, RobotState


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_the_controller_and_refuses_illegal_moves() -> None:
    port = _free_port()
    script = str(Path(sys.executable).parent / "seldinger")
    server = subprocess.Popen(
        [
            script,
            "robot",
            "serve",
            "--robot",
            "guide_5dof",
            "--port",
            str(port),
            "--seconds",
            "6",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20.0
        while True:
            try:
                controller = RobotController(port=port, connect_timeout_s=0.5)
                break
            except ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr
                time.sleep(0.2)
        with controller:
            assert controller.command(RobotState.PLANNING).code == StatusCode.OK
            refused = controller.command(RobotState.MOVE_TO_TARGET, check=False)
            assert refused.error_name == "IllegalTransition"  # no target yet
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err
    summary = json.loads(out)
    assert summary["robot"] == "guide_5dof" and summary["port"] == port
    assert summary["state"] in {state.value for state in RobotState}
