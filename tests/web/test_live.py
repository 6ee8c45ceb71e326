"""The live needle view over the WebSocket, fed by the tracker simulator of `navigate
simulate` (40 Hz, OpenIGTLink over loopback) as `navigate guide` is."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldinger.app.web.server import create_app, listening_socket
from seldinger.app.web.serving import BackgroundServer
from seldinger.navigation.igtl import IgtlServer, LinkOptions
from seldinger.navigation.live import stream_simulation
from seldinger.workflow.motion_guidance import setup_motion_guidance
from seldinger.workflow.motion_simulation import BreathingFieldRequest, tracker_simulation
from seldinger.workflow.navigation import GuidanceRequest, setup_guidance
from seldinger.workflow.simulation import SimulationRequest
from seldinger.workflow.workstation_live import LiveRelay
from web.conftest import TOKEN


@dataclass
class Tracker:
    port: int
    truth: Path
    model: Path | None
    done: threading.Event


@contextlib.contextmanager
def simulated_tracker(plan: Path, seconds: float, motion: bool = False) -> Iterator[Tracker]:
    """`navigate simulate --plan PLAN --hz 40` on a thread (with a breathing field)."""
    model = plan.parent / "model.json" if motion else None
    field = BreathingFieldRequest(15.0 if motion else None, write_model=model, force=True)
    request = SimulationRequest(plan, hz=40.0, seconds=seconds, breathing=not motion)
    sim, info = tracker_simulation(request, field)
    truth = plan.parent / "truth.json"
    truth.write_text(json.dumps(info), encoding="utf-8")
    done = threading.Event()
    with IgtlServer("127.0.0.1", 0, options=LinkOptions(keep_incoming=False)) as server:

        def run() -> None:
            stream_simulation(server, sim, seconds=seconds, wait_client=True)
            done.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield Tracker(server.port, truth, model, done)
        thread.join(seconds + 10)


def relay_for(plan: Path, tracker: Tracker) -> LiveRelay:
    request = GuidanceRequest(plan, tracker_to_ct=str(tracker.truth), tip_offset_mm=5.0)
    if tracker.model is None:
        return LiveRelay(setup_guidance(request), "127.0.0.1", tracker.port)
    setup = setup_motion_guidance(request, tracker.model)
    return LiveRelay(setup, "127.0.0.1", tracker.port, reference="ReferenceToTracker")


def read_frames(url: str, seconds: float) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    """Frames and status messages of ``seconds``, each acknowledged as drawn on arrival."""
    from websockets.sync.client import connect

    frames, statuses = [], []
    cookie = {"cookie": f"seldinger_token={TOKEN}"}
    with connect(url.replace("http://", "ws://") + "/api/live", additional_headers=cookie) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = json.loads(ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            if message["type"] == "frame":
                frames.append(message)
                latency_ms = 1000 * (time.time() - message["tracker_timestamp_s"])
                ws.send(
                    json.dumps({"type": "drawn", "seq": message["seq"], "latency_ms": latency_ms})
                )
            elif message["type"] == "status":
                statuses.append(message)
    return frames, statuses


def test_the_needle_streams_at_the_tracker_rate_and_goes_stale(
    chest_plan: Path, workstation
) -> None:  # type: ignore[no-untyped-def]
    with simulated_tracker(chest_plan, seconds=3.0) as tracker:
        relay = relay_for(chest_plan, tracker)
        relay.start()
        app = create_app(workstation, TOKEN, relay)
        try:
            with BackgroundServer(app, listening_socket("127.0.0.1", 0)) as server:
                frames, statuses = read_frames(server.url, 2.0)
                assert tracker.done.wait(10)
                _, after = read_frames(server.url, 1.2)
                stats = relay.stats()
        finally:
            relay.stop()
    assert len(frames) >= 60  # 40 Hz for 2 s, the first frames may precede the socket
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    tips = np.array([f["state"]["tip_lps_mm"] for f in frames])
    assert np.linalg.norm(tips[-1] - tips[0]) > 5.0  # the needle advances
    assert frames[-1]["state"]["progress"] > frames[0]["state"]["progress"]
    assert not any(s["stale"] for s in statuses[2:])
    assert after and after[-1]["stale"] is True and after[-1]["age_s"] > 0.5
    assert stats["n"] >= 60 and stats["p95_ms"] < 100.0


def test_a_breathing_model_adds_the_gating_light(chest_plan: Path, workstation) -> None:  # type: ignore[no-untyped-def]
    with simulated_tracker(chest_plan, seconds=4.0, motion=True) as tracker:
        relay = relay_for(chest_plan, tracker)
        relay.start()
        try:
            with BackgroundServer(
                create_app(workstation, TOKEN, relay), listening_socket("127.0.0.1", 0)
            ) as server:
                frames, _ = read_frames(server.url, 3.0)
        finally:
            relay.stop()
    assert relay.info()["motion"] is True and relay.info()["gate_window"] == [0.0, 0.25]
    assert len(frames) > 60
    amplitude = [f["state"]["amplitude_fraction"] for f in frames]
    assert max(amplitude) - min(amplitude) > 0.3  # a breath in 3 s of a 4 s period
    assert {f["state"]["gate_on"] for f in frames} == {True, False}


def test_the_relay_reports_a_missing_tracker(chest_plan: Path) -> None:
    identity = json.dumps(np.eye(4).tolist())
    request = GuidanceRequest(chest_plan, tracker_to_ct=identity, tip_offset_mm=5.0)
    relay = LiveRelay(setup_guidance(request), "127.0.0.1", 9, connect_timeout_s=0.2)
    relay.start()
    try:
        time.sleep(0.4)
        status = relay.status()
    finally:
        relay.stop()
    assert status["connected"] is False and status["error"] and status["stale"] is True
