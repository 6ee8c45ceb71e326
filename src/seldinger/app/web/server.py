"""HTTP and WebSocket routes of the workstation; the work is in ``workflow.workstation``.

Every request needs the session token (query ``?token=``, an ``Authorization: Bearer``
header, or the HttpOnly cookie the page gets when opened with the token); every response
carries a content-security policy that lets the page load nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from seldinger.errors import BadInputError, SeldingerError
from seldinger.workflow.workstation import ScoringNotReadyError, Workstation
from seldinger.workflow.workstation_live import LiveRelay

__all__ = ["COOKIE", "CSP", "check_bind", "create_app", "listening_socket", "new_token"]

STATIC = Path(__file__).parent / "static"
COOKIE = "seldinger_token"
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
#: How long ``GET /api/pareto`` waits for the risk maps before answering 503, s.
PARETO_WAIT_S = 30.0
#: The live WebSocket sends the stale-data status at least this often, s.
STATUS_EVERY_S = 0.1
Scope = MutableMapping[str, Any]
Asgi = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


def new_token() -> str:
    """A random session token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without an explicit token (and short tokens)."""
    if token is not None and len(token) < 16:
        raise BadInputError("--token must be at least 16 characters; use a random one.")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and token is None:
        raise BadInputError(
            f"--host {host} is not a loopback address: other machines could reach the "
            "workstation. Pass --token with a secret of at least 16 characters as well."
        )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


class TokenGate:
    """ASGI middleware: the token on every request and WebSocket, and the security headers."""

    def __init__(self, app: Asgi, token: str) -> None:
        self.app, self.token = app, token

    def _given(self, scope: Scope) -> tuple[str | None, bool]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0], True
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        morsel = SimpleCookie(headers.get("cookie", "")).get(COOKIE)
        if scope["type"] == "websocket":
            origin, host = headers.get("origin"), headers.get("host", "")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return None, False  # another site's page: refused whatever it carries
        return (None if morsel is None else morsel.value), False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given, in_query = self._given(scope)
        if given is None or not secrets.compare_digest(given.encode(), self.token.encode()):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            refused = PlainTextResponse(
                "401 Unauthorized: open the URL with ?token=… that `seldinger serve` printed.",
                status_code=401,
            )
            refused.headers.update({k.decode(): v.decode() for k, v in HEADERS})
            await refused(scope, receive, send)
            return

        async def send_secured(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
                if in_query:
                    cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    message["headers"].append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_secured)


class PointBody(BaseModel):
    """A clicked point (LPS mm)."""

    entry_lps_mm: tuple[float, float, float] | None = None
    target_lps_mm: tuple[float, float, float] | None = None


class TipBody(BaseModel):
    """An applicator's new tip (LPS mm)."""

    tip_lps_mm: tuple[float, float, float]


def create_app(ws: Workstation, token: str, live: LiveRelay | None = None) -> Asgi:
    """The workstation's ASGI app: ``ws``'s plan, ``live``'s tracker, behind ``token``."""
    app = FastAPI(title="Seldinger workstation", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SeldingerError)
    async def refused(request: Request, err: Exception) -> JSONResponse:
        code = 503 if isinstance(err, ScoringNotReadyError) else 422
        code = code if isinstance(err, ValueError) else 500
        return JSONResponse({"error": " ".join(str(err).split())}, status_code=code)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/overlays")
    def overlays() -> dict[str, Any]:
        return {**ws.overlays(), "live": None if live is None else live.info()}

    @app.get("/api/preview.png")
    def preview() -> Response:
        return Response(ws.preview(), media_type="image/png")

    @app.get("/api/volumes/{filename}")
    def volume(filename: str, step: int = 1) -> Response:
        name = filename.removesuffix(".gz").removesuffix(".nii")
        return Response(ws.nifti(name, step), media_type="application/octet-stream")

    @app.post("/api/rescore")
    def rescore(body: PointBody) -> dict[str, Any]:
        return ws.rescore(body.entry_lps_mm, body.target_lps_mm, wait_s=0.5)

    @app.get("/api/pareto")
    def pareto() -> list[dict[str, Any]]:
        # The page asks once it is drawn, which can be before the risk maps (built after the
        # page's volumes): waiting here spares it a 503 (a console error) and a retry.
        return ws.pareto(wait_s=PARETO_WAIT_S)

    @app.post("/api/choose")
    def choose(body: PointBody) -> dict[str, Any]:
        return ws.choose(body.entry_lps_mm)

    @app.post("/api/applicators/{index}")
    def move(index: int, body: TipBody) -> dict[str, Any]:
        return ws.move_applicator(index, body.tip_lps_mm)

    @app.post("/api/approve")
    def approve() -> dict[str, Any]:
        written = ws.approve(command="seldinger serve")
        return {"written": written.name, "steps": len(ws.case.plan.provenance.steps)}

    @app.get("/api/live/stats")
    def live_stats() -> dict[str, Any]:
        return {"live": False} if live is None else {"live": True, **live.stats(), **live.status()}

    @app.websocket("/api/live")
    async def live_socket(socket: WebSocket) -> None:
        await socket.accept()
        if live is None:
            await socket.send_json({"type": "status", "error": "no tracker (--tracker)"})
            await socket.close()
            return
        await relay_frames(socket, live)

    return TokenGate(app, token)


async def relay_frames(socket: WebSocket, live: LiveRelay) -> None:
    """Push every new frame of ``live`` to ``socket``, the status every 0.1 s; read acks."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def notify() -> None:
        loop.call_soon_threadsafe(wake.set)

    unsubscribe = live.subscribe(notify)

    async def acks() -> None:
        while True:
            message = json.loads(await socket.receive_text())
            if message.get("type") == "drawn":
                live.drawn(int(message.get("seq", 0)), float(message.get("latency_ms", "nan")))

    reader = asyncio.create_task(acks())
    sent, status_at = 0, 0.0
    try:
        await socket.send_json({"type": "info", **live.info()})
        while not reader.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), STATUS_EVERY_S)
            wake.clear()
            frame = live.latest
            if frame is not None and frame["seq"] != sent:
                sent = frame["seq"]
                await socket.send_text(json.dumps({**frame, "sent_unix_s": time.time()}))
            if time.monotonic() - status_at >= STATUS_EVERY_S:
                status_at = time.monotonic()
                await socket.send_json(live.status())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        unsubscribe()
        reader.cancel()
        with contextlib.suppress(
            asyncio.CancelledError, WebSocketDisconnect, RuntimeError, ValueError
        ):
            await reader
