"""The workstation's live needle view: a tracker stream relayed to the browser.

:class:`LiveRelay` follows an OpenIGTLink tracker exactly as ``seldinger navigate guide``
does (the same :class:`~seldinger.workflow.navigation.GuidanceSetup` and
:class:`~seldinger.navigation.guide_session.GuidanceSession`, with the motion model when one
is given) on a thread of its own, keeps the latest guidance frame and calls its subscribers
at once, so the web server can push every frame over a WebSocket. The page reports when it
drew each frame; :meth:`LiveRelay.stats` gives the tracker → screen latency from those
timestamps (tracker time stamps and the page's clock are both Unix time on this machine).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from seldinger.errors import PeerError
from seldinger.navigation.guidance import GuidanceState, WatchdogStatus
from seldinger.navigation.guide_session import GuidanceSession
from seldinger.navigation.igtl import IgtlClient, Received
from seldinger.navigation.live import follow_guidance
from seldinger.workflow.navigation import GuidanceSetup

__all__ = ["LATENCY_WINDOW", "LiveRelay"]

#: Latencies kept for the statistics (the last ones), and the seconds between reconnections.
LATENCY_WINDOW = 2000
RECONNECT_S = 1.0
#: Each follow_guidance call runs this long, so that stop() is heard within it.
FOLLOW_SLICE_S = 0.25

Subscriber = Callable[[], None]


class LiveRelay:
    """A tracker followed on a background thread; the latest frame for the page.

    Parameters
    ----------
    setup : GuidanceSetup
        The guide of the plan's path (``setup_guidance`` or ``setup_motion_guidance``).
    host, port : str, int
        The tracker's OpenIGTLink server (e.g. ``seldinger navigate simulate``).
    tool, reference : str
        Device names of the needle and of the patient reference sensor (``reference`` is
        paired with the needle only in reference mode or with a motion model).
    """

    def __init__(
        self,
        setup: GuidanceSetup,
        host: str,
        port: int,
        *,
        tool: str = "ToolToTracker",
        reference: str | None = None,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self.setup, self.host, self.port = setup, host, port
        self.tool, self.reference = tool, reference
        self.connect_timeout_s = connect_timeout_s
        self.seq = 0
        self.latest: dict[str, Any] | None = None
        self.connected = False
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribers: list[Subscriber] = []
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._drawn_unix_s: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._thread: threading.Thread | None = None

    @property
    def motion(self) -> bool:
        """Whether the guide follows a breathing model (gating light and trace)."""
        return "motion" in self.setup.info

    def info(self) -> dict[str, Any]:
        """What the page needs once: the planned path, the thresholds, the motion model."""
        info = self.setup.info
        return {
            "entry_lps_mm": info.get("entry_lps_mm"),
            "target_lps_mm": info.get("target_lps_mm"),
            "breach_threshold_mm": info.get("breach_threshold_mm"),
            "stale_after_s": info.get("stale_after_s"),
            "motion": info.get("motion") is not None,
            "gate_window": (info.get("motion") or {}).get("gate_window"),
        }

    # --- the tracker side (GuidanceListener) -----------------------------------------------

    def update(self, state: GuidanceState, item: Received, count: int) -> None:
        """A guidance update: keep it as the latest frame and wake the subscribers."""
        frame = {
            "type": "frame",
            "seq": count,
            "tracker_timestamp_s": item.message.timestamp_s,
            "received_unix_s": time.time(),
            "state": state.to_dict(),
        }
        with self._lock:
            self.seq = count
            self.latest = frame
            subscribers = list(self._subscribers)
        for notify in subscribers:
            notify()

    def stale(self, status: WatchdogStatus) -> None:
        """A stale episode began: wake the subscribers (they read :meth:`status`)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for notify in subscribers:
            notify()

    def status(self) -> dict[str, Any]:
        """The stale-data alarm: whether poses stopped coming, and for how long."""
        watch = self.setup.guide.status()
        age = watch.age_s
        return {
            "type": "status",
            "connected": self.connected,
            "stale": bool(watch.stale),
            "age_s": None if age is None or not math.isfinite(age) else round(age, 3),
            "stale_after_s": watch.stale_after_s,
            "error": self.error,
        }

    # --- subscribers -------------------------------------------------------------------

    def subscribe(self, notify: Subscriber) -> Callable[[], None]:
        """Call ``notify()`` (on the relay's thread) after every frame; returns the undo."""
        with self._lock:
            self._subscribers.append(notify)

        def unsubscribe() -> None:
            with self._lock:
                if notify in self._subscribers:
                    self._subscribers.remove(notify)

        return unsubscribe

    def drawn(self, seq: int, latency_ms: float) -> None:
        """The page drew frame ``seq`` ``latency_ms`` after the tracker stamped it."""
        if math.isfinite(latency_ms) and seq > 0:
            with self._lock:
                self._latency_ms.append(float(latency_ms))
                self._drawn_unix_s.append(time.time())

    def stats(self) -> dict[str, Any]:
        """Tracker → screen latency (ms: p50, p95, max) and frames drawn per second."""
        with self._lock:
            latency = np.array(self._latency_ms, dtype=np.float64)
            drawn = np.array(self._drawn_unix_s, dtype=np.float64)
        recent = drawn[drawn >= time.time() - 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        if latency.size == 0:
            return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "fps": 0.0}
        return {
            "n": int(latency.size),
            "p50_ms": round(float(np.percentile(latency, 50)), 2),
            "p95_ms": round(float(np.percentile(latency, 95)), 2),
            "max_ms": round(float(latency.max()), 2),
            "fps": round(float(fps), 1),
            "frames_received": self.seq,
        }

    # --- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Follow the tracker on a daemon thread (reconnecting when it goes away)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="seldinger-live", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop following and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        session = GuidanceSession(self.setup.guide, self.tool, self.reference, self)
        while not self._stop.is_set():
            try:
                with IgtlClient(
                    self.host, self.port, connect_timeout_s=self.connect_timeout_s
                ) as client:
                    self.connected, self.error = True, None
                    while not self._stop.is_set():
                        ended = follow_guidance(client, session, seconds=FOLLOW_SLICE_S)
                        if ended != "time":
                            break
            except (PeerError, OSError) as err:
                self.error = " ".join(str(err).split())
            self.connected = False
            self._stop.wait(RECONNECT_S)
