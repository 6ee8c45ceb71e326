"""``seldinger navigate …``: tracker simulation, recording, calibration, registration, guidance.

Thin over :mod:`seldinger.navigation`. Here: the command group, the plan helpers, and
``register`` and ``pivot``; ``simulate`` (an OpenIGTLink server) is in
:mod:`seldinger.app.cli_navigate_sim`, and the commands that connect to a tracker
(``record``, ``guide``) in :mod:`seldinger.app.cli_navigate_live`. Registrations and
calibrations can be stored in a plan (``plan.navigation``), where ``guide`` finds them.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from seldinger.app._cli_common import (
    ForceOption,
    JsonOption,
    _out,
    _parse_lps,
    _print_json,
)
from seldinger.app.cli_navigate_guide import guide
from seldinger.app.cli_navigate_live import (
    EXIT_BAD_INPUT,
    _bad_input,
    _jsonable,
    record,
)
from seldinger.app.cli_navigate_sim import CONVENTIONS, SimMotion, replay_log, simulate

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from seldinger.planning import Plan

__all__ = [
    "CONVENTIONS",
    "EXIT_BAD_INPUT",
    "MovingFrame",
    "SimMotion",
    "navigate_app",
    "read_points_csv",
]

#: Plan ``navigation`` keys and the id prefix of their entries.
_KINDS = {"registrations": "registration", "calibrations": "calibration"}
_POINT_COLUMNS = ("x_mm", "y_mm", "z_mm")

navigate_app = typer.Typer(
    rich_markup_mode="markdown",
    name="navigate",
    help=(
        "Navigation over OpenIGTLink (3D Slicer, PLUS, trackers; port 18944): a simulated "
        "tracker, session recording, pivot calibration, paired-point registration and live "
        "needle guidance along a planned trajectory.\n\n"
        "Registrations and calibrations made with --plan PLAN are stored in the plan "
        "(navigation.registrations / navigation.calibrations), where `navigate guide` "
        "finds them.\n\n"
        "A session on the simulator (two terminals): `seldinger navigate simulate --plan "
        "plan.json --truth-out truth.json`, then `seldinger navigate guide --plan plan.json "
        "--tracker localhost:18944 --tracker-to-ct truth.json --tip-offset-mm 5`.\n\n"
        "Exit status: 0 done; 2 input that cannot be used (options, CSV or log contents, "
        "points that cannot be registered, no registration or calibration); 1 other errors "
        "(no tracker at HOST:PORT, an existing output without --force …)."
    ),
    no_args_is_help=True,
)


class MovingFrame(StrEnum):
    """What the tracker points of a registration were measured in."""

    tracker = "tracker"
    reference = "reference"


PlanStoreOption = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        help="Also store the result in this plan (navigation section) for `navigate guide`.",
        show_default=False,
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Label of the stored result (with --plan); an existing one of that name is "
        "replaced only with --force.",
        show_default=False,
    ),
]


# --- shared by the navigate commands ---------------------------------------------------


def _load_plan(plan_path: Path) -> Plan:
    """The plan at ``plan_path``; a missing or invalid file exits with a one-line error."""
    from seldinger.planning import Plan, PlanFileError

    if not plan_path.is_file():
        _bad_input(
            f"--plan {plan_path} does not exist. Make a plan with `seldinger plan trajectory "
            f"CT --anatomy DIR --lesion MASK --out {plan_path}`."
        )
    try:
        return Plan.load(plan_path)
    except PlanFileError as err:
        _bad_input(str(err))


def _plan_trajectory(plan: Plan, plan_path: Path, rank: int) -> dict[str, Any]:
    """The plan's trajectory of ``rank`` (1 = best), with entry_lps_mm and target_lps_mm."""
    if not plan.trajectories:
        _bad_input(
            f"{plan_path} holds no trajectories; run `seldinger plan trajectory CT --anatomy "
            f"DIR --lesion MASK --out {plan_path} --force` first."
        )
    ranked = [t for t in plan.trajectories if t.get("rank") == rank]
    if ranked:
        chosen = ranked[0]
    elif 1 <= rank <= len(plan.trajectories):
        chosen = plan.trajectories[rank - 1]
    else:
        _bad_input(
            f"{plan_path} has {len(plan.trajectories)} trajectories; --trajectory {rank} is "
            f"not one of them (ranks 1-{len(plan.trajectories)})."
        )
    for key in ("entry_lps_mm", "target_lps_mm"):
        point = chosen.get(key)
        if not (isinstance(point, list) and len(point) == 3):
            _bad_input(f"trajectory {rank} of {plan_path} has no {key} (3 numbers, LPS mm).")
    return chosen


def _entries(plan: Plan, kind: str) -> list[dict[str, Any]]:
    """The plan's ``navigation[kind]`` list (``registrations`` or ``calibrations``)."""
    stored = (plan.navigation or {}).get(kind) or []
    return [e for e in stored if isinstance(e, dict)] if isinstance(stored, list) else []


def _check_name(plan: Plan, plan_path: Path, kind: str, name: str | None, force: bool) -> None:
    """Refuse (before any work) to replace a stored result of that name without --force."""
    if name is None or force:
        return
    for entry in _entries(plan, kind):
        if entry.get("name") == name:
            raise FileExistsError(
                f"{plan_path} already holds a {_KINDS[kind]} named {name!r} ({entry.get('id')}); "
                "pass --force to replace it, or choose another --name."
            )


def _store(plan: Plan, plan_path: Path, kind: str, entry: dict[str, Any]) -> str:
    """Add ``entry`` to ``plan.navigation[kind]`` (replacing one of the same name); save.

    Returns the entry's id (``registration-N`` / ``calibration-N``).
    """
    prefix = _KINDS[kind]
    entries = _entries(plan, kind)
    numbers = [
        int(str(e.get("id", "")).rpartition("-")[2])
        for e in entries
        if str(e.get("id", "")).rpartition("-")[2].isdigit()
    ]
    entry_id = f"{prefix}-{max(numbers, default=0) + 1}"
    stored = {"id": entry_id, **entry}
    name = entry.get("name")
    kept = [e for e in entries if name is None or e.get("name") != name]
    navigation = dict(plan.navigation or {})
    navigation[kind] = [*kept, stored]
    plan.navigation = navigation
    plan.save(plan_path, force=True)
    return entry_id


def _now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_points_csv(path: Path, option: str) -> npt.NDArray[np.float64]:
    """Points (N, 3) in mm from a CSV whose header names x_mm, y_mm, z_mm (other columns ignored).

    Bad input exits with a one-line error naming the file, line and column.
    """
    import numpy as np

    if not path.is_file():
        _bad_input(f"{option} {path} does not exist.")
    rows: list[list[float]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header: list[str] | None = None
        where: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                missing = [c for c in _POINT_COLUMNS if c not in header]
                if missing:
                    _bad_input(
                        f"{option} {path}, line {line}: missing column "
                        f"{', '.join(missing)}; the header must name x_mm,y_mm,z_mm (LPS mm for "
                        f"CT points, tracker mm for tracker points); got {','.join(header)!r}."
                    )
                where = {c: header.index(c) for c in _POINT_COLUMNS}
                continue
            values = []
            for column in _POINT_COLUMNS:
                text = row[where[column]].strip() if where[column] < len(row) else ""
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    _bad_input(
                        f"{option} {path}, line {line}, column {column}: expected a finite "
                        f"number (mm); got {text!r}."
                    )
                values.append(value)
            rows.append(values)
    if header is None:
        _bad_input(f"{option} {path} is empty; it needs a header x_mm,y_mm,z_mm and one row each.")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def _matrix_lines(matrix: Any) -> str:
    return "\n".join("  ".join(f"{v:10.4f}" for v in row) for row in matrix)


# --- navigate register -----------------------------------------------------------------


def register_fiducials(
    fixed: Annotated[
        Path,
        typer.Option(
            "--fixed",
            help="CSV of the fiducials in the CT (LPS mm): header x_mm,y_mm,z_mm, one row each.",
            show_default=False,
        ),
    ],
    moving: Annotated[
        Path,
        typer.Option(
            "--moving",
            help="CSV of the same fiducials, in the same order, touched with the tracked "
            "pointer (tracker mm): header x_mm,y_mm,z_mm.",
            show_default=False,
        ),
    ],
    target_lps_mm: Annotated[
        str | None,
        typer.Option(
            "--target-lps-mm",
            help="Target X,Y,Z (LPS mm) for the predicted TRE. Default with --plan: the target "
            "of the plan's --trajectory (else its first target's centroid); without: none.",
            show_default=False,
        ),
    ] = None,
    fle_mm: Annotated[
        float | None,
        typer.Option(
            "--fle-mm",
            min=0.0,
            help="RMS fiducial localisation error (mm, CT and tracker combined) for the "
            "predictions; default: estimated from this registration's FRE.",
            show_default=False,
        ),
    ] = None,
    moving_frame: Annotated[
        MovingFrame,
        typer.Option(
            "--moving-frame",
            help="What the tracker points are relative to: tracker (ToolToTracker poses; the "
            "result is tracker_to_ct) or reference (poses relative to a patient reference "
            "sensor; the result is reference_to_ct and guidance follows the reference).",
        ),
    ] = MovingFrame.tracker,
    plan_path: PlanStoreOption = None,
    trajectory: Annotated[
        int,
        typer.Option(
            "--trajectory",
            min=1,
            metavar="RANK",
            help="With --plan: the trajectory whose target is the default --target-lps-mm.",
        ),
    ] = 1,
    name: NameOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Paired-point rigid registration of tracker points to CT points (FRE, predicted TRE).

    Rows of the two CSVs are paired by order (at least 3 fiducials, not on one line; 4-6
    spread around the target are better). Prints moving_to_fixed (4x4: tracker → CT, or
    reference → CT), the FRE (RMS), each fiducial's residual, and the predicted TRE at the
    target (Fitzpatrick 1998). With --plan the registration is stored in the plan as
    registration-N, which `navigate guide` uses (the latest by default).

    Example: `seldinger navigate register --fixed ct_points.csv --moving tracker_points.csv
    --plan plan.json`.
    """
    from seldinger.navigation.registration import RegistrationError, register_points

    target = None if target_lps_mm is None else _parse_lps(target_lps_mm, "--target-lps-mm")
    plan = None
    target_source = "--target-lps-mm" if target is not None else None
    if plan_path is not None:
        plan = _load_plan(plan_path)
        _check_name(plan, plan_path, "registrations", name, force)
        if target is None:
            if plan.trajectories:
                point = _plan_trajectory(plan, plan_path, trajectory)["target_lps_mm"]
                target = (float(point[0]), float(point[1]), float(point[2]))
                target_source = f"trajectory {trajectory} of the plan"
            elif plan.targets:
                target = plan.targets[0].centroid_lps_mm
                target_source = f"centroid of target {plan.targets[0].name!r} of the plan"
    fixed_mm = read_points_csv(fixed, "--fixed")
    moving_mm = read_points_csv(moving, "--moving")
    if len(fixed_mm) != len(moving_mm):
        _bad_input(
            f"--fixed {fixed} has {len(fixed_mm)} points and --moving {moving} has "
            f"{len(moving_mm)}; rows are paired by order, so give the same fiducials in both."
        )
    if len(fixed_mm) < 3:
        _bad_input(
            f"--fixed {fixed} and --moving {moving} hold {len(fixed_mm)} point pair(s); a rigid "
            "registration needs at least 3 fiducials not on one line (4-6 spread around the "
            "target are better)."
        )
    try:
        result = register_points(fixed_mm, moving_mm, target_mm=target, fle_mm=fle_mm)
    except RegistrationError as err:
        text = (
            str(err)
            .replace("fixed_mm", f"--fixed {fixed}")
            .replace("moving_mm", f"--moving {moving}")
        )
        _bad_input(f"cannot register: {text}")
    payload: dict[str, Any] = {
        "name": name,
        "time_utc": _now_utc(),
        "source": {"fixed": str(fixed), "moving": str(moving)},
        "fixed_frame": "ct",
        "moving_frame": moving_frame.value,
        "target_source": target_source,
        **result.to_dict(),
    }
    if plan is not None and plan_path is not None:
        payload = {"id": _store(plan, plan_path, "registrations", payload), **payload}
        payload["plan"] = str(plan_path)
    if as_json:
        _print_json(_jsonable(payload))
        return
    transform = f"{moving_frame.value}_to_ct"
    table = Table(title=f"Registration {moving} → {fixed} ({transform})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row(transform, _matrix_lines(payload["moving_to_fixed"]))
    table.add_row("fiducials", str(payload["n_fiducials"]))
    table.add_row("FRE (RMS)", f"{payload['fre_mm']:.3f} mm")
    table.add_row("residuals", ", ".join(f"{r:.3f}" for r in payload["residuals_mm"]) + " mm")
    fle = payload["fle_mm"]
    if fle is not None:
        table.add_row(
            "FLE", f"{fle:.3f} mm" + (" (estimated from FRE)" if result.fle_estimated else "")
        )
    if payload["predicted_tre_mm"] is not None:
        table.add_row(
            "predicted TRE",
            f"{payload['predicted_tre_mm']:.3f} mm at {payload['target_mm']} ({target_source})",
        )
    _out.print(table)
    if "id" in payload:
        _out.print(f"stored as {payload['id']} in {plan_path}", highlight=False)


# --- navigate pivot --------------------------------------------------------------------


def pivot(
    log: Annotated[
        Path,
        typer.Argument(
            metavar="LOG",
            help="Session log (JSON lines) from `seldinger navigate record`, recorded while "
            "the tool pivoted about its tip in a divot.",
            show_default=False,
        ),
    ],
    tool: Annotated[
        str,
        typer.Option(
            "--tool",
            help="Device name (TRANSFORM/POSITION) or TDATA tool name of the pivoted tool, "
            "e.g. ToolToTracker.",
            show_default=False,
        ),
    ],
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="A reference tool (phantom or patient sensor): the tool's poses are taken "
            "relative to it (ToolToReference), paired by timestamp. Default: as logged.",
            show_default=False,
        ),
    ] = None,
    plan_path: PlanStoreOption = None,
    name: NameOption = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Skip malformed lines (e.g. a last line cut by a crash) instead of refusing "
            "the log.",
        ),
    ] = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Pivot calibration: where a tool's tip is, from poses pivoting about the tip.

    Solves R_i·tip + t_i = pivot for all poses (algebraic one-step, as PLUS), rejecting
    outlier poses. Prints tip_offset_mm (the tip in the tool's sensor frame), pivot_point_mm
    (in the tracker or reference frame), rms_mm and max_mm (distance of each used pose's tip
    from the pivot) and the rejected poses. Tilt the tool ±20-30° in all directions with the
    tip in the divot for 10-20 s. With --plan the calibration is stored as calibration-N
    for `navigate guide --tool NAME`.

    Example: `seldinger navigate record --tracker localhost:18944 --seconds 20 --out
    pivot.jsonl && seldinger navigate pivot pivot.jsonl --tool ToolToTracker --plan plan.json`.
    """
    from seldinger.navigation.calibration import pivot_calibration

    plan = None
    if plan_path is not None:
        plan = _load_plan(plan_path)
        _check_name(plan, plan_path, "calibrations", name, force)
    poses = _pivot_poses(log, tool, reference, skip_invalid)
    try:
        result = pivot_calibration(poses)
    except ValueError as err:  # CalibrationError, TransformError
        _bad_input(f"{log}: pivot calibration of {tool!r} failed: {err}")
    payload: dict[str, Any] = {
        "name": name,
        "time_utc": _now_utc(),
        "tool": tool,
        "reference": reference,
        "source": {"log": str(log), "poses": len(poses)},
        **result.to_dict(),
    }
    if plan is not None and plan_path is not None:
        payload = {"id": _store(plan, plan_path, "calibrations", payload), **payload}
        payload["plan"] = str(plan_path)
    if as_json:
        _print_json(_jsonable(payload))
        return
    frame = reference or "tracker"
    table = Table(title=f"Pivot calibration of {tool} ({log})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("tip_offset_mm", _vector(payload["tip_offset_mm"]) + "  (tool frame)")
    table.add_row("pivot_point_mm", _vector(payload["pivot_point_mm"]) + f"  ({frame} frame)")
    table.add_row("rms_mm / max_mm", f"{payload['rms_mm']:.3f} / {payload['max_mm']:.3f}")
    table.add_row(
        "poses used",
        f"{payload['n_used']} of {payload['n_poses']} ({len(payload['rejected'])} rejected)",
    )
    table.add_row("rotation spread", f"{payload['spread_deg']:.1f}°")
    _out.print(table)
    if "id" in payload:
        _out.print(f"stored as {payload['id']} in {plan_path}", highlight=False)


def _vector(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def _pivot_poses(
    log: Path, tool: str, reference: str | None, skip_invalid: bool
) -> npt.NDArray[np.float64]:
    """The tool's poses in the log (relative to ``reference`` when given), shape (n, 4, 4)."""
    import numpy as np

    from seldinger.navigation.recording import SessionLogError, pose_series, read_session_log
    from seldinger.navigation.transforms import invert_rigid

    if not log.is_file():
        _bad_input(f"the log {log} does not exist; record one with `seldinger navigate record`.")
    try:
        records = read_session_log(log, skip_invalid=skip_invalid).records
    except SessionLogError as err:
        _bad_input(f"{log}, {err} (--skip-invalid skips such lines)")
    try:
        times, poses = pose_series(records, tool)
        if reference is None:
            return poses
        ref_times, ref_poses = pose_series(records, reference)
    except ValueError as err:
        _bad_input(f"{log}: {err}")
    by_time = {round(float(t), 6): m for t, m in zip(ref_times, ref_poses, strict=True)}
    paired = [
        (by_time[round(float(t), 6)], m)
        for t, m in zip(times, poses, strict=True)
        if round(float(t), 6) in by_time
    ]
    if not paired:
        _bad_input(
            f"{log}: no pose of {reference!r} shares a timestamp with one of {tool!r}; record "
            "both tools from the same tracker, or leave out --reference."
        )
    try:
        return np.stack([invert_rigid(ref) @ m for ref, m in paired])
    except ValueError as err:
        _bad_input(f"{log}: a pose of {reference!r} is not rigid: {err}")


# --- navigate simulate -----------------------------------------------------------------


navigate_app.command("simulate")(simulate)
navigate_app.command("record")(record)
navigate_app.command("replay")(replay_log)
navigate_app.command("pivot")(pivot)
navigate_app.command("register")(register_fiducials)
navigate_app.command("guide")(guide)
