"""``seldinger navigate guide``: live needle guidance from a tracker against the plan.

Added to the ``navigate`` group by :mod:`seldinger.app.cli_navigate`, whose plan helpers it
imports inside the command (no import cycle at load time). With ``--json`` it prints JSON
lines: one compact object per line, each with a ``type`` (``start``, ``update``,
``stale``, ``end``), flushed as written. Ctrl-C ends it normally (the summary is still
printed, exit status 0).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seldinger.app._cli_common import (
    JsonOption,
    _notes,
    _out,
    _progress,
)
from seldinger.app.cli_navigate_live import (
    _POLL_S,
    ConnectTimeoutOption,
    TrackerOption,
    _bad_input,
    _emit,
    parse_tracker_address,
)

if TYPE_CHECKING:
    from rich.table import Table

    from seldinger.navigation.guidance import GuidanceState, Guide
    from seldinger.navigation.igtl import Received

__all__ = ["guide"]

#: Margin (mm) around the planned path's box in which the critical-distance map is made:
#: covers the simulated approach, which starts 50 mm behind the entry.
_CRITICAL_BOX_MARGIN_MM = 60.0
_DISPLAY_PERIOD_S = 0.1  # the live table is redrawn at most 10 times a second


def guide(
    plan_path: Annotated[
        Path,
        typer.Option(
            "--plan",
            help="Plan with trajectories (`seldinger plan trajectory`), and the registrations "
            "and calibrations stored by `navigate register/pivot --plan`.",
            show_default=False,
        ),
    ],
    tracker: TrackerOption,
    trajectory: Annotated[
        int,
        typer.Option("--trajectory", min=1, metavar="RANK", help="The plan's trajectory, by rank."),
    ] = 1,
    registration: Annotated[
        str | None,
        typer.Option(
            "--registration",
            metavar="ID|latest",
            help="The plan's registration to use, by id (registration-2) or name; default: the "
            "latest, unless --tracker-to-ct or --reference-to-ct is given.",
            show_default=False,
        ),
    ] = None,
    tracker_to_ct: Annotated[
        str | None,
        typer.Option(
            "--tracker-to-ct",
            metavar="MATRIX",
            help="Registration as a 4x4 JSON matrix, inline ('[[1,0,0,0],…]') or a JSON file "
            "holding one (or an object with tracker_to_ct, e.g. `simulate --truth-out`).",
            show_default=False,
        ),
    ] = None,
    reference_to_ct: Annotated[
        str | None,
        typer.Option(
            "--reference-to-ct",
            metavar="MATRIX",
            help="Registration of the patient reference sensor (4x4 JSON, inline or a file): "
            "the needle is then followed relative to the --reference tool.",
            show_default=False,
        ),
    ] = None,
    tip_offset_mm: Annotated[
        float | None,
        typer.Option(
            "--tip-offset-mm",
            min=0.0,
            help="Needle tip along the tool sensor's +Z axis, mm (instead of a stored pivot "
            "calibration).",
            show_default=False,
        ),
    ] = None,
    calibration: Annotated[
        str | None,
        typer.Option(
            "--calibration",
            metavar="ID|latest",
            help="The plan's tool calibration, by id or name; default: the latest of --tool.",
            show_default=False,
        ),
    ] = None,
    tool: Annotated[
        str, typer.Option("--tool", help="Device (or TDATA tool) name of the needle sensor.")
    ] = "ToolToTracker",
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            help="Device name of the patient reference sensor (used with a reference "
            "registration).",
        ),
    ] = "ReferenceToTracker",
    critical: Annotated[
        str,
        typer.Option(
            "--critical",
            help="Structures of the plan to keep away from (comma-separated), or none.",
        ),
    ] = "bones,vessels,airways",
    breach_mm: Annotated[
        float,
        typer.Option("--breach-mm", min=0.0, help="Breach warning below this distance, mm."),
    ] = 5.0,
    stale_s: Annotated[
        float,
        typer.Option(
            "--stale-s", min=0.01, help="Warn (STALE) after this long without a needle pose, s."
        ),
    ] = 0.5,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            min=0.0,
            help="Stop after this long (default: until Ctrl-C or the tracker hangs up).",
            show_default=False,
        ),
    ] = None,
    connect_timeout_s: ConnectTimeoutOption = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Live needle guidance along a planned trajectory, from a tracker's poses.

    For every needle pose: tip-to-target distance, lateral deviation from the planned line,
    angle error, remaining depth, progress (0 entry, 1 target), and the distance to the
    nearest critical structure of the plan (bones, vessels, airways: BREACH below
    --breach-mm). STALE when no pose came for --stale-s. A live table, or with --json one
    JSON line per update (type update), per stale episode (type stale), and at start and end.

    The registration (tracker → CT, or reference → CT) comes from the plan (latest, or
    --registration) or from --tracker-to-ct / --reference-to-ct; the tip from the plan's
    pivot calibration of --tool or --tip-offset-mm.

    Example: `seldinger navigate guide --plan plan.json --tracker localhost:18944`.
    """
    from seldinger.app.cli_navigate import _load_plan, _plan_trajectory
    from seldinger.navigation.guidance import Guide, PlannedPath
    from seldinger.navigation.igtl import IgtlClient, LinkClosedError

    host, port = parse_tracker_address(tracker)
    plan = _load_plan(plan_path)
    chosen = _plan_trajectory(plan, plan_path, trajectory)
    path = PlannedPath(tuple(chosen["entry_lps_mm"]), tuple(chosen["target_lps_mm"]))
    frame, matrix, registration_source = _guide_registration(
        plan, plan_path, registration, tracker_to_ct, reference_to_ct
    )
    tip_to_tool, calibration_source = _guide_calibration(
        plan, plan_path, tool, calibration, tip_offset_mm
    )
    names = (
        []
        if critical.strip().lower() == "none"
        else [n.strip() for n in critical.split(",") if n.strip()]
    )
    with _progress("building the critical-distance map", bool(names) and not as_json):
        distance, used, notes = _critical_map(plan, plan_path, names, path)
    registration_key = "tracker_to_ct" if frame == "tracker" else "reference_to_ct"
    steer = Guide(
        path,
        tip_to_tool,
        **{registration_key: matrix},
        critical_distance=distance,
        breach_threshold_mm=breach_mm,
        stale_after_s=stale_s,
    )
    info: dict[str, Any] = {
        "type": "start",
        "tracker": f"{host}:{port}",
        "plan": str(plan_path),
        "trajectory": trajectory,
        **path.to_dict(),
        "registration": {"source": registration_source, registration_key: matrix.tolist()},
        "calibration": {"source": calibration_source, "tool_tip_to_tool": tip_to_tool.tolist()},
        "tool": tool,
        "reference": reference if frame == "reference" else None,
        "critical": used,
        "breach_threshold_mm": breach_mm,
        "stale_after_s": stale_s,
        "notes": notes,
    }
    with IgtlClient(host, port, connect_timeout_s=connect_timeout_s) as client:
        session = _GuideSession(
            steer, tool, reference if frame == "reference" else None, info, as_json
        )
        if as_json:
            _emit(info)
        else:
            _notes(notes)
            _out.print(
                f"registration: {registration_source} ({registration_key}); calibration: "
                f"{calibration_source}; critical: {', '.join(used) or 'none'}",
                highlight=False,
            )
        ended_by = "time"
        started = time.monotonic()
        try:
            with session.display():
                while True:
                    left = None if seconds is None else seconds - (time.monotonic() - started)
                    if left is not None and left <= 0:
                        break
                    try:
                        item = client.receive(_POLL_S if left is None else min(_POLL_S, left))
                    except TimeoutError:
                        session.idle()
                        continue
                    except LinkClosedError:
                        ended_by = "tracker"
                        break
                    session.receive(item)
                session.idle()
        except KeyboardInterrupt:
            ended_by = "interrupt"
    summary = {
        "type": "end",
        "seconds": round(time.monotonic() - started, 3),
        "ended_by": ended_by,
        **session.counts(),
    }
    if as_json:
        _emit(summary)
        return
    line = (
        f"{summary['updates']} updates in {summary['seconds']:.1f} s; stale episodes "
        f"{summary['stale_episodes']}, breaches {summary['breaches']}"
    )
    if ended_by == "tracker":
        line += f"; the tracker at {host}:{port} closed the connection"
    _out.print(line, highlight=False)
    if session.first_error is not None:
        _notes([f"{summary['rejected_poses']} pose(s) rejected; the first: {session.first_error}"])


def _read_matrix(text: str, option: str, key: str) -> Any:
    """A rigid 4x4 from inline JSON or a JSON file (a matrix, or an object holding ``key``)."""
    from seldinger.navigation.transforms import validate_rigid

    source = text.strip()
    if not source.startswith("["):
        file = Path(source)
        if not file.is_file():
            _bad_input(f"{option} {text}: not a JSON matrix ('[[...], ...]') nor an existing file.")
        source = file.read_text(encoding="utf-8")
    try:
        value = json.loads(source)
    except json.JSONDecodeError as err:
        _bad_input(f"{option} {text}: not valid JSON ({err.msg} at line {err.lineno}).")
    if isinstance(value, dict):
        for candidate in (key, "moving_to_fixed", "matrix"):
            if candidate in value:
                value = value[candidate]
                break
        else:
            _bad_input(
                f"{option} {text}: a JSON object needs a {key}, moving_to_fixed or matrix key; "
                f"got keys {sorted(value)[:10]}."
            )
    try:
        return validate_rigid(value, key)
    except (ValueError, TypeError) as err:
        _bad_input(f"{option} {text}: {err}")


def _pick(
    entries: list[dict[str, Any]], wanted: str, what: str, plan_path: Path, fix: str
) -> dict[str, Any]:
    """The entry whose id or name is ``wanted``, or the last one for ``latest``."""
    if not entries:
        _bad_input(f"{plan_path} holds no {what}; {fix}")
    if wanted == "latest":
        return entries[-1]
    for entry in reversed(entries):
        if wanted in (entry.get("id"), entry.get("name")):
            return entry
    known = ", ".join(str(e.get("name") or e.get("id")) for e in entries)
    _bad_input(f"{plan_path} has no {what} {wanted!r}; it has: {known}.")


def _guide_registration(
    plan: Any,
    plan_path: Path,
    wanted: str | None,
    tracker_text: str | None,
    reference_text: str | None,
) -> tuple[str, Any, str]:
    """(``tracker`` or ``reference``, the 4x4, where it came from)."""
    from seldinger.app.cli_navigate import _entries

    given = [
        o
        for o, v in (
            ("--registration", wanted),
            ("--tracker-to-ct", tracker_text),
            ("--reference-to-ct", reference_text),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise typer.BadParameter(
            f"give one registration; got {' and '.join(given)}.", param_hint=given[0]
        )
    if tracker_text is not None:
        return (
            "tracker",
            _read_matrix(tracker_text, "--tracker-to-ct", "tracker_to_ct"),
            "--tracker-to-ct",
        )
    if reference_text is not None:
        matrix = _read_matrix(reference_text, "--reference-to-ct", "reference_to_ct")
        return "reference", matrix, "--reference-to-ct"
    entry = _pick(
        _entries(plan, "registrations"),
        wanted or "latest",
        "registration",
        plan_path,
        f"register first (`seldinger navigate register --fixed CT.csv --moving TRACKER.csv "
        f"--plan {plan_path}`) or pass --tracker-to-ct MATRIX.",
    )
    label = str(entry.get("id") or entry.get("name"))
    if float(entry.get("scale", 1.0)) != 1.0:
        _bad_input(f"registration {label} of {plan_path} scales; guidance needs a rigid one.")
    frame = str(entry.get("moving_frame", "tracker"))
    if frame not in ("tracker", "reference"):
        _bad_input(f"registration {label} of {plan_path} has moving_frame {frame!r}.")
    from seldinger.navigation.transforms import validate_rigid

    try:
        matrix = validate_rigid(entry["moving_to_fixed"], f"{label}.moving_to_fixed")
    except (KeyError, ValueError, TypeError) as err:
        _bad_input(f"registration {label} of {plan_path} is unusable: {err!s}")
    return frame, matrix, f"{label} of {plan_path}"


def _guide_calibration(
    plan: Any, plan_path: Path, tool: str, wanted: str | None, tip_offset_mm: float | None
) -> tuple[Any, str]:
    """(tool_tip_to_tool, where it came from)."""
    from seldinger.app.cli_navigate import _entries
    from seldinger.navigation.calibration import tool_tip_to_tool
    from seldinger.navigation.transforms import validate_rigid

    if tip_offset_mm is not None:
        if wanted is not None:
            raise typer.BadParameter(
                "give --tip-offset-mm or --calibration, not both.", param_hint="--calibration"
            )
        return tool_tip_to_tool([0.0, 0.0, tip_offset_mm], [0.0, 0.0, 1.0]), "--tip-offset-mm"
    entries = _entries(plan, "calibrations")
    if wanted is None or wanted == "latest":
        entries = [e for e in entries if e.get("tool") == tool] or entries[:0]
    entry = _pick(
        entries,
        wanted or "latest",
        f"calibration of {tool!r}" if wanted in (None, "latest") else "calibration",
        plan_path,
        f"calibrate (`seldinger navigate pivot LOG --tool {tool} --plan {plan_path}`) or pass "
        "--tip-offset-mm D.",
    )
    label = str(entry.get("id") or entry.get("name"))
    try:
        if "tool_tip_to_tool" in entry:
            return validate_rigid(entry["tool_tip_to_tool"], f"{label}.tool_tip_to_tool"), label
        return tool_tip_to_tool(entry["tip_offset_mm"]), label
    except (KeyError, ValueError, TypeError) as err:
        _bad_input(f"calibration {label} of {plan_path} is unusable: {err}")


def _critical_map(
    plan: Any, plan_path: Path, names: list[str], path: Any
) -> tuple[Any, list[str], list[str]]:
    """Distance map to the plan's critical structures around the path, names used, notes."""
    import numpy as np

    from seldinger.io import read_volume
    from seldinger.navigation.guidance import critical_distance_map

    notes: list[str] = []
    missing = [n for n in names if n not in plan.structures]
    if names and missing:
        notes.append(
            f"the plan has no {', '.join(missing)} mask: the distance to critical structures "
            "leaves them out."
        )
    masks = {}
    for name in (n for n in names if n in plan.structures):
        file = plan.structures[name].resolve(plan_path)
        try:
            mask = read_volume(file)
        except (OSError, ValueError) as err:
            notes.append(f"the {name} mask {file} cannot be read ({err}); left out.")
            continue
        masks[name] = mask.with_array(np.asarray(mask.array) > 0)
    if not masks:
        notes.append(
            "no critical-structure mask: guidance runs without a distance to critical "
            "structures or breach warnings."
        )
        return None, [], notes
    ends = np.array([path.entry_lps_mm, path.target_lps_mm])
    box = (ends.min(axis=0) - _CRITICAL_BOX_MARGIN_MM, ends.max(axis=0) + _CRITICAL_BOX_MARGIN_MM)
    try:
        distance = critical_distance_map(masks, list(masks), box_lps_mm=box)
    except ValueError as err:
        notes.append(f"no critical-distance map ({err}); guidance runs without breach warnings.")
        return None, [], notes
    return distance, list(masks), notes


class _GuideSession:
    """Turns received messages into guidance updates and shows them (JSON lines or a table).

    In reference mode the needle pose is paired with the reference pose of the same
    timestamp (trackers send one frame's poses with one timestamp); when none comes, with
    the latest reference pose not older than the watchdog limit.
    """

    def __init__(
        self, steer: Guide, tool: str, reference: str | None, info: dict[str, Any], as_json: bool
    ) -> None:
        self.steer, self.tool, self.reference = steer, tool, reference
        self.info, self.as_json = info, as_json
        self.updates = self.rejected = self.unpaired = self.stale_episodes = self.breaches = 0
        self.first_error: str | None = None
        self.last: GuidanceState | None = None
        self._pending: tuple[Any, Received] | None = None  # needle pose awaiting its reference
        self._reference: tuple[Any, float, float] | None = None  # pose, sender time, receive time
        self._stale = False
        self._started = time.monotonic()
        self._shown = 0.0
        self._live: Any = None

    @contextlib.contextmanager
    def display(self) -> Iterator[None]:
        """While open, the live table is shown and redrawn (nothing with --json)."""
        if self.as_json:
            yield
            return
        from rich.live import Live

        try:
            with Live(self._table(), console=_out, auto_refresh=False) as live:
                self._live = live
                try:
                    yield
                finally:
                    live.update(self._table())  # the final state, whatever the throttle skipped
        finally:
            self._live = None
            if not _out.is_terminal:  # Live leaves the cursor after the table there
                _out.line()

    def receive(self, item: Received) -> None:
        from seldinger.navigation.igtl.records import poses_of

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
        """Nothing arrived for a while: use a pending pose, check the watchdog, redraw."""
        self._flush()
        self._watch()
        self._show(force=self._stale)

    def counts(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "stale_episodes": self.stale_episodes,
            "breaches": self.breaches,
            "rejected_poses": self.rejected,
            "unpaired_poses": self.unpaired,
            "last": None if self.last is None else self.last.to_dict(),
        }

    def _flush(self) -> None:
        if self._pending is None:
            return
        pose, item = self._pending
        self._pending = None
        if self._reference is None or (
            item.receive_monotonic_s - self._reference[2] > self.steer.watchdog.stale_after_s
        ):
            self.unpaired += 1
            return
        self._update(pose, item)

    def _update(self, pose: Any, item: Received) -> None:
        reference = (
            None if self.reference is None or self._reference is None else self._reference[0]
        )
        try:
            state = self.steer.update(pose, reference, timestamp_s=item.receive_monotonic_s)
        except ValueError as err:  # a pose that is not rigid
            self.rejected += 1
            self.first_error = self.first_error or str(err)
            return
        self.updates += 1
        self.breaches += int(state.breach and not (self.last is not None and self.last.breach))
        self.last = state
        self._stale = False
        if self.as_json:
            _emit(
                {
                    "type": "update",
                    "update": self.updates,
                    "tracker_timestamp_s": item.message.timestamp_s,
                    "received_s": item.receive_time_s,
                    **state.to_dict(),
                }
            )
        else:
            self._show()

    def _watch(self) -> None:
        """Report the start of a stale episode (once the first grace period has passed)."""
        status = self.steer.status()
        if self._stale or not status.stale:
            return
        if self.last is None and time.monotonic() - self._started <= status.stale_after_s:
            return
        self._stale = True
        self.stale_episodes += 1
        if self.as_json:
            _emit({"type": "stale", **status.to_dict()})
        else:
            self._show(force=True)

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._live is None or (not force and now - self._shown < _DISPLAY_PERIOD_S):
            return
        self._shown = now
        self._live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        from rich.table import Table

        info, state = self.info, self.last
        table = Table(
            title=f"Guidance: trajectory {info['trajectory']} of {info['plan']} "
            f"({info['tracker']})",
            show_header=False,
        )
        table.add_column("quantity", style="bold")
        table.add_column("value", justify="right")
        status = self.steer.status()
        if state is None:
            waiting = self.tool if not self.unpaired else f"{self.reference} (with {self.tool})"
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
        critical = state.distance_to_critical_mm
        if not info["critical"]:
            text = "— (no map)"
        elif state.outside_critical_map:
            text = "— (outside the map)"
        else:
            text = f"{critical:.1f} mm"
            if state.breach:
                text = f"[bold red]{text} < {state.breach_threshold_mm:g}[/]"
        table.add_row(f"to {', '.join(info['critical']) or 'critical'}", text)
        return table
