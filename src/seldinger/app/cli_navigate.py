"""``seldinger navigate …``: simulate, record, replay, pivot, register, guide.

Thin over :mod:`seldinger.navigation` and :mod:`seldinger.workflow.navigation`. Here: the
command group and the commands that work on files (register, pivot); the commands that
talk to a tracker are in :mod:`seldinger.app.cli_navigate_live`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from seldinger.app.cli_navigate_live import guide, record, replay_log, simulate
from seldinger.app.common import (
    ForceOption,
    JsonOption,
    out_console,
    parse_lps,
    print_json,
)

__all__ = ["MovingFrame", "navigate_app"]

navigate_app = typer.Typer(
    rich_markup_mode="markdown",
    name="navigate",
    help=(
        "Navigation over OpenIGTLink (3D Slicer, PLUS, trackers; port 18944): a simulated "
        "tracker, session recording and replay, pivot calibration, paired-point registration "
        "and live needle guidance along a planned trajectory.\n\n"
        "Registrations and calibrations made with --plan PLAN are stored in the plan "
        "(navigation.registrations / navigation.calibrations), where `navigate guide` "
        "finds them.\n\n"
        "A session on the simulator (two terminals): `seldinger navigate simulate --plan "
        "plan.json --truth-out truth.json`, then `seldinger navigate guide --plan plan.json "
        "--tracker localhost:18944 --tracker-to-ct truth.json --tip-offset-mm 5`."
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
        help="Label of the stored result (with --plan); an existing one of that name is replaced only with --force.",
        show_default=False,
    ),
]
FixedOption = Annotated[
    Path,
    typer.Option(
        "--fixed",
        help="CSV of the fiducials in the CT (LPS mm): header x_mm,y_mm,z_mm, one row each.",
        show_default=False,
    ),
]
MovingOption = Annotated[
    Path,
    typer.Option(
        "--moving",
        help="CSV of the same fiducials, in the same order, touched with the tracked pointer (tracker mm): header x_mm,y_mm,z_mm.",
        show_default=False,
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target-lps-mm",
        help="Target X,Y,Z (LPS mm) for the predicted TRE. Default with --plan: the target of the plan's --trajectory (else its first target's centroid); without: none.",
        show_default=False,
    ),
]
FleOption = Annotated[
    float | None,
    typer.Option(
        "--fle-mm",
        min=0.0,
        help="RMS fiducial localisation error (mm, CT and tracker combined) for the predictions; default: estimated from this registration's FRE.",
        show_default=False,
    ),
]
MovingFrameOption = Annotated[
    MovingFrame,
    typer.Option(
        "--moving-frame",
        help="What the tracker points are relative to: tracker (ToolToTracker poses; the result is tracker_to_ct) or reference (poses relative to a patient reference sensor; the result is reference_to_ct and guidance follows the reference).",
    ),
]
RankOption = Annotated[
    int,
    typer.Option(
        "--trajectory",
        min=1,
        metavar="RANK",
        help="With --plan: the trajectory whose target is the default --target-lps-mm.",
    ),
]
LogArgument = Annotated[
    Path,
    typer.Argument(
        metavar="LOG",
        help="Session log (JSON lines) from `seldinger navigate record`, recorded while the tool pivoted about its tip in a divot.",
        show_default=False,
    ),
]
ToolOption = Annotated[
    str,
    typer.Option(
        "--tool",
        help="Device name (TRANSFORM/POSITION) or TDATA tool name of the pivoted tool, e.g. ToolToTracker.",
        show_default=False,
    ),
]
ReferenceOption = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="A reference tool (phantom or patient sensor): the tool's poses are taken relative to it (ToolToReference), paired by timestamp. Default: as logged.",
        show_default=False,
    ),
]
SkipInvalidOption = Annotated[
    bool,
    typer.Option(
        "--skip-invalid",
        help="Skip malformed lines (e.g. a last line cut by a crash) instead of refusing the log.",
    ),
]


def _matrix_lines(matrix: Any) -> str:
    return "\n".join("  ".join(f"{v:10.4f}" for v in row) for row in matrix)


def _vector(values: Any) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


@navigate_app.command("register")
def register_fiducials(
    fixed: FixedOption,
    moving: MovingOption,
    target_lps_mm: TargetOption = None,
    fle_mm: FleOption = None,
    moving_frame: MovingFrameOption = MovingFrame.tracker,
    plan_path: PlanStoreOption = None,
    trajectory: RankOption = 1,
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
    from seldinger.workflow.navigation import register_step

    record = register_step(
        fixed,
        moving,
        target_lps_mm=None
        if target_lps_mm is None
        else parse_lps(target_lps_mm, "--target-lps-mm"),
        fle_mm=fle_mm,
        moving_frame=moving_frame.value,
        plan_path=plan_path,
        trajectory=trajectory,
        name=name,
        force=force,
    )
    payload = record.model_dump(mode="json")
    if plan_path is not None:
        payload["plan"] = str(plan_path)
    else:
        del payload["id"]  # not stored anywhere
    if as_json:
        print_json(payload)
        return
    transform = f"{record.moving_frame}_to_ct"
    table = Table(title=f"Registration {moving} → {fixed} ({transform})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row(transform, _matrix_lines(record.moving_to_fixed))
    table.add_row("fiducials", str(record.n_fiducials))
    table.add_row("FRE (RMS)", f"{record.fre_mm:.3f} mm")
    table.add_row("residuals", ", ".join(f"{r:.3f}" for r in record.residuals_mm) + " mm")
    if record.fle_mm is not None:
        estimated = " (estimated from FRE)" if record.fle_estimated else ""
        table.add_row("FLE", f"{record.fle_mm:.3f} mm{estimated}")
    if record.predicted_tre_mm is not None:
        table.add_row(
            "predicted TRE",
            f"{record.predicted_tre_mm:.3f} mm at {list(record.target_lps_mm or ())} "
            f"({record.target_source})",
        )
    out_console.print(table)
    if plan_path is not None:
        out_console.print(f"stored as {record.id} in {plan_path}", highlight=False)


@navigate_app.command("pivot")
def pivot(
    log: LogArgument,
    tool: ToolOption,
    reference: ReferenceOption = None,
    plan_path: PlanStoreOption = None,
    name: NameOption = None,
    skip_invalid: SkipInvalidOption = False,
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
    from seldinger.workflow.navigation import pivot_step

    record = pivot_step(
        log,
        tool,
        reference=reference,
        plan_path=plan_path,
        name=name,
        skip_invalid=skip_invalid,
        force=force,
    )
    payload = record.model_dump(mode="json")
    if plan_path is not None:
        payload["plan"] = str(plan_path)
    if as_json:
        print_json(payload)
        return
    table = Table(title=f"Pivot calibration of {tool} ({log})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("tip_offset_mm", _vector(record.tip_offset_mm) + "  (tool frame)")
    table.add_row(
        "pivot_point_mm", _vector(record.pivot_point_mm) + f"  ({reference or 'tracker'} frame)"
    )
    table.add_row("rms_mm / max_mm", f"{record.rms_mm:.3f} / {record.max_mm:.3f}")
    table.add_row(
        "poses used", f"{record.n_used} of {record.n_poses} ({len(record.rejected)} rejected)"
    )
    table.add_row("rotation spread", f"{record.spread_deg:.1f}°")
    out_console.print(table)
    if plan_path is not None:
        out_console.print(f"stored as {record.id} in {plan_path}", highlight=False)


navigate_app.command("simulate")(simulate)
navigate_app.command("record")(record)
navigate_app.command("replay")(replay_log)
navigate_app.command("guide")(guide)
