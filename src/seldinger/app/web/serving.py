"""Running the workstation's ASGI app with uvicorn: in the foreground, or on a thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["BackgroundServer", "serve_forever"]


def _config(app: Any) -> uvicorn.Config:
    # No access log: URLs may carry the token; the page never puts patient data in them.
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )


def serve_forever(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on the listening ``sock`` until Ctrl-C; closes the socket."""
    try:
        uvicorn.Server(_config(app)).run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """``app`` served on a thread, on ``sock`` (tests, benchmarks, notebooks)::

    with BackgroundServer(app, listening_socket("127.0.0.1", 0)) as server:
        httpx.get(f"{server.url}/api/overlays?token=…")
    """

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        self.server = uvicorn.Server(_config(app))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 10.0
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(10.0)
        self.sock.close()
