"""A live guidance session: tracker messages in, guidance states out.

:class:`GuidanceSession` pairs each needle pose with the reference sensor's pose of the same
frame (trackers send one frame's poses with one timestamp), feeds :class:`Guide`, counts
updates, stale episodes and breaches, and reports each event to a listener. The command
line shows the events as a live table or JSON lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from seldinger.navigation.guidance import GuidanceState, Guide, WatchdogStatus
from seldinger.navigation.igtl import Received
from seldinger.navigation.igtl.records import poses_of

__all__ = ["GuidanceListener", "GuidanceSession", "SessionCounts"]


class GuidanceListener(Protocol):
    """What a display does with a session's events."""

    def update(self, state: GuidanceState, item: Received, count: int) -> None:
        """A new guidance state from the pose in ``item`` (the ``count``-th update)."""

    def stale(self, status: WatchdogStatus) -> None:
        """No needle pose came for longer than the watchdog allows (once per episode)."""


@dataclass
class SessionCounts:
    """Running counts of a session."""

    updates: int = 0
    stale_episodes: int = 0
    breaches: int = 0
    rejected_poses: int = 0
    unpaired_poses: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready."""
        return dict(self.__dict__)


class GuidanceSession:
    """Turns received messages into guidance updates (see the module docstring).

    In reference mode a needle pose waits for the reference pose of the same timestamp;
    when none comes, it is paired with the latest reference pose not older than the
    watchdog limit, else dropped (counted as unpaired).
    """

    def __init__(
        self, guide: Guide, tool: str, reference: str | None, listener: GuidanceListener
    ) -> None:
        self.guide, self.tool, self.reference, self.listener = guide, tool, reference, listener
        self.counts = SessionCounts()
        self.first_error: str | None = None
        self.last: GuidanceState | None = None
        self.stale_now = False
        self._pending: tuple[npt.NDArray[np.float64], Received] | None = None
        self._reference: tuple[npt.NDArray[np.float64], float, float] | None = None
        self._started = time.monotonic()

    def receive(self, item: Received) -> None:
        """Use the poses of one received message."""
        poses = poses_of(item)
        stamp = item.message.timestamp_s
        if self.reference is not None and self.reference in poses:
            self._reference = (poses[self.reference], stamp, item.receive_monotonic_s)
            if self._pending is not None and self._pending[1].message.timestamp_s == stamp:
                pose, pending = self._pending
                self._pending = None
                self._update(pose, pending)
        if self.tool in poses:
            if self.reference is None:
                self._update(poses[self.tool], item)
            else:
                self._flush()
                if self._reference is not None and self._reference[1] == stamp:
                    self._update(poses[self.tool], item)
                else:
                    self._pending = (poses[self.tool], item)
        self._watch()

    def idle(self) -> None:
        """Nothing arrived for a while: use a pending pose and check the watchdog."""
        self._flush()
        self._watch()

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and the last state."""
        return {
            **self.counts.to_dict(),
            "last": None if self.last is None else self.last.to_dict(),
        }

    def _flush(self) -> None:
        if self._pending is None:
            return
        pose, item = self._pending
        self._pending = None
        if self._reference is None or (
            item.receive_monotonic_s - self._reference[2] > self.guide.watchdog.stale_after_s
        ):
            self.counts.unpaired_poses += 1
            return
        self._update(pose, item)

    def _update(self, pose: npt.NDArray[np.float64], item: Received) -> None:
        reference = (
            None if self.reference is None or self._reference is None else self._reference[0]
        )
        try:
            state = self.guide.update(
                pose,
                reference,
                timestamp_s=item.receive_monotonic_s,
                tracker_timestamp_s=item.message.timestamp_s,
            )
        except ValueError as err:  # a pose that is not rigid
            self.counts.rejected_poses += 1
            self.first_error = self.first_error or str(err)
            return
        self.counts.updates += 1
        self.counts.breaches += int(
            state.breach and not (self.last is not None and self.last.breach)
        )
        self.last = state
        self.stale_now = False
        self.listener.update(state, item, self.counts.updates)

    def _watch(self) -> None:
        """Report the start of a stale episode (once the first grace period has passed)."""
        status = self.guide.status()
        if self.stale_now or not status.stale:
            return
        if self.last is None and time.monotonic() - self._started <= status.stale_after_s:
            return
        self.stale_now = True
        self.counts.stale_episodes += 1
        self.listener.stale(status)
