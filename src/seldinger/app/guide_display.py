"""How ``navigate guide`` and ``navigate simulate`` show themselves: a live table or JSON lines."""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from seldinger.app.common import out_console, print_json, print_notes, print_written

if TYPE_CHECKING:
    from seldinger.navigation.guidance import GuidanceState, Guide, WatchdogStatus
    from seldinger.navigation.guide_session import GuidanceSession
    from seldinger.navigation.igtl import Received

__all__ = [
    "DISPLAY_PERIOD_S",
    "GuideDisplay",
    "print_simulation_start",
    "simulation_table",
    "sparkline",
]

#: The live table is redrawn at most 10 times a second.
DISPLAY_PERIOD_S = 0.1
#: The breathing trace (``guide --motion``): one point per 0.2 s, the last 12 s.
TRACE_STEP_S = 0.2
TRACE_POINTS = 60
_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(fractions: Iterable[float]) -> str:
    """A text trace of amplitude fractions (0 expiration ▁, 1 inspiration █; clipped).

    Examples
    --------
    >>> sparkline([0.0, 0.5, 1.0, 2.0])
    '▁▅██'
    """
    top = len(_BLOCKS) - 1
    return "".join(_BLOCKS[min(top, max(0, round(f * top)))] for f in fractions)


def _matrix_lines(matrix: Any) -> str:
    return "\n".join("  ".join(f"{v:10.4f}" for v in row) for row in matrix)


def simulation_table(info: dict[str, Any]) -> Table:
    """The simulated tracker's start information (ground truth)."""
    table = Table(title=f"Simulated tracker on {info['host']}:{info['port']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("motion", "entry_lps_mm", "target_lps_mm", "pivot_lps_mm", "rate_hz", "seed"):
        if key in info:
            table.add_row(key, str(info[key]))
    if "breathing_field" in info:
        field, model = info["breathing_field"], info["model"]
        table.add_row(
            "breathing field",
            f"target {field['target_si_mm']:g} mm SI, chest {field['ap_mm']:g} mm AP, "
            f"period {field['period_s']:g} s; model: target {model['target_motion_mm']:.1f} mm, "
            f"residual {model['residual_rms_mm']:.2f} mm RMS",
        )
    table.add_row("tools", f"{info['tool']}, {info['reference']} ({info['messages']})")
    table.add_row("tip_offset_mm", f"{info['tip_offset_mm']:g} (tool +Z)")
    for key in ("tracker_to_ct", "reference_to_ct"):
        table.add_row(key, _matrix_lines(info[key]))
    return table


def print_simulation_start(info: dict[str, Any], truth_out: Path | None, as_json: bool) -> None:
    """The simulated tracker's start: one JSON line, or the table and the conventions."""
    if as_json:
        print_json(info, line=True)
        return
    from seldinger.workflow.simulation import CONVENTIONS

    out_console.print(simulation_table(info))
    out_console.print(CONVENTIONS, highlight=False)
    print_written([truth_out, info.get("model", {}).get("path")])
    out_console.print("streaming; Ctrl-C stops", highlight=False)


class GuideDisplay:
    """A :class:`~seldinger.navigation.guide_session.GuidanceListener` that prints."""

    def __init__(self, info: dict[str, Any], guide: Guide, as_json: bool) -> None:
        self.info, self.guide, self.as_json = info, guide, as_json
        self.session: GuidanceSession | None = None
        self._live: Any = None
        self._shown = 0.0
        self._trace: deque[float] = deque(maxlen=TRACE_POINTS)
        self._traced_s = -math.inf

    def start(self, session: GuidanceSession) -> None:
        """Print the start line (JSON) or the registration, calibration and notes."""
        self.session = session
        if self.as_json:
            print_json(self.info, line=True)
            return
        print_notes(self.info["notes"])
        registration = self.info["registration"]
        key = "tracker_to_ct" if "tracker_to_ct" in registration else "reference_to_ct"
        out_console.print(
            f"registration: {registration['source']} ({key}); calibration: "
            f"{self.info['calibration']['source']}; critical: "
            f"{', '.join(self.info['critical']) or 'none'}",
            highlight=False,
        )

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        """While open, the live table is shown and redrawn (nothing with --json)."""
        if self.as_json:
            yield
            return
        from rich.live import Live

        try:
            with Live(self._table(), console=out_console, auto_refresh=False) as live:
                self._live = live
                try:
                    yield
                finally:
                    live.update(self._table())  # the final state, whatever the throttle skipped
        finally:
            self._live = None
            if not out_console.is_terminal:  # Live leaves the cursor after the table there
                out_console.line()

    def update(self, state: GuidanceState, item: Received, count: int) -> None:
        fraction = getattr(state, "amplitude_fraction", None)
        t = getattr(state, "sample_time_s", 0.0)
        if fraction is not None and t - self._traced_s >= TRACE_STEP_S:
            self._traced_s = t
            self._trace.append(fraction)
        if self.as_json:
            print_json(
                {
                    "type": "update",
                    "update": count,
                    "tracker_timestamp_s": item.message.timestamp_s,
                    "received_s": item.receive_time_s,
                    **state.to_dict(),
                },
                line=True,
            )
        else:
            self.refresh()

    def stale(self, status: WatchdogStatus) -> None:
        if self.as_json:
            print_json({"type": "stale", **status.to_dict()}, line=True)
        else:
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Redraw the table (at most every :data:`DISPLAY_PERIOD_S` unless ``force``)."""
        now = time.monotonic()
        stale = self.session is not None and self.session.stale_now
        if self._live is None or (not (force or stale) and now - self._shown < DISPLAY_PERIOD_S):
            return
        self._shown = now
        self._live.update(self._table(), refresh=True)

    def end(self, session: GuidanceSession, seconds: float, ended_by: str) -> None:
        """Print the summary (JSON line, or one line and the rejected-pose note)."""
        summary = {"type": "end", "seconds": seconds, "ended_by": ended_by, **session.summary()}
        if self.as_json:
            print_json(summary, line=True)
            return
        counts = session.counts
        line = (
            f"{counts.updates} updates in {seconds:.1f} s; stale episodes "
            f"{counts.stale_episodes}, breaches {counts.breaches}"
        )
        if ended_by == "tracker":
            line += f"; the tracker at {self.info['tracker']} closed the connection"
        out_console.print(line, highlight=False)
        if session.first_error is not None:
            print_notes(
                [f"{counts.rejected_poses} pose(s) rejected; the first: {session.first_error}"]
            )

    def _table(self) -> Table:
        info = self.info
        state = None if self.session is None else self.session.last
        table = Table(
            title=f"Guidance: trajectory {info['trajectory']} of {info['plan']} ({info['tracker']})",
            show_header=False,
        )
        table.add_column("quantity", style="bold")
        table.add_column("value", justify="right")
        status = self.guide.status()
        if state is None:
            unpaired = self.session is not None and self.session.counts.unpaired_poses
            waiting = info["tool"] if not unpaired else f"{info['reference']} (with {info['tool']})"
            table.add_row("status", f"[yellow]waiting for {waiting}[/]")
            return table
        if status.stale:
            flag = f"[bold yellow]STALE ({status.age_s:.1f} s)[/]"
        elif state.breach:
            flag = "[bold red]BREACH[/]"
        else:
            flag = "[green]tracking[/]"
        table.add_row("status", flag)
        table.add_row("tip → target", f"{state.tip_to_target_mm:.1f} mm")
        table.add_row("lateral deviation", f"{state.lateral_deviation_mm:.1f} mm")
        table.add_row("angle error", f"{state.angle_error_deg:.1f}°")
        depth = state.remaining_depth_mm
        table.add_row(
            "remaining depth",
            f"{depth:.1f} mm" if depth >= 0 else f"[bold red]past target by {-depth:.1f} mm[/]",
        )
        table.add_row("progress", f"{100.0 * state.progress:.0f} %")
        if not info["critical"]:
            text = "— (no map)"
        elif state.outside_critical_map:
            text = "— (outside the map)"
        else:
            text = f"{state.distance_to_critical_mm:.1f} mm"
            if state.breach:
                text = f"[bold red]{text} < {state.breach_threshold_mm:g}[/]"
        table.add_row(f"to {', '.join(info['critical']) or 'critical'}", text)
        if hasattr(state, "gate_on"):
            self._motion_rows(table, state)
        return table

    def _motion_rows(self, table: Table, state: Any) -> None:
        """Breathing trace, phase, gating light and target shift (``guide --motion``)."""
        low, high = self.info["motion"]["gate_window"]
        light = "[bold green]● GATE ON[/]" if state.gate_on else "[bold red]○ gate off[/]"
        table.add_row("gating", f"{light} (window {100 * low:.0f}-{100 * high:.0f} %)")
        table.add_row("breathing", f"{state.phase} {100 * state.amplitude_fraction:.0f} %")
        table.add_row("trace", sparkline(self._trace))
        table.add_row("target shift", f"{state.target_shift_mm:.1f} mm (compensated)")
