"""The report's robot section: reachability by the robot and each robot session."""

from __future__ import annotations

from seldinger.export.report import Report
from seldinger.plan import RobotSection

__all__ = ["robot_section"]


def robot_section(report: Report, section: RobotSection) -> None:
    """Reachability (per path, with the robot's ranking) and every session: each needle's
    planned and confirmed tip errors, adjustments, and the re-plans after confirmation."""
    report.add_section(
        "Robot",
        f"Robot {section.robot}"
        + (f", standing on the {section.side} side" if section.side else "")
        + (f"; registration TRE {section.tre_mm:g} mm" if section.tre_mm is not None else "")
        + ". Predicted targeting error = registration TRE ⊕ robot repeatability ⊕ needle "
        "deflection. The robot's ranking puts reachable paths first, then the planner's rank "
        "within 0.5 mm steps of predicted error.",
    )
    if section.reach:
        report.add_table(
            [
                {
                    "rank": r.rank,
                    "robot rank": r.robot_rank,
                    "reachable": "yes" if r.reachable else f"no: {r.reason}",
                    "predicted error (mm)": r.predicted_error_mm,
                }
                for r in section.reach
            ],
            caption="Reachability of the planned paths",
        )
    for number, session in enumerate(section.sessions, start=1):
        report.add_text(
            f"Session {number} ({session.started_utc}, calibration: "
            f"{session.calibration_source}; {'gated at end-exhale' if session.gated else 'not gated'}"
            f"): {session.outcome}. Log: {session.log_path}."
        )
        report.add_table(
            [
                {
                    "needle": n.name,
                    "error (mm)": n.error_mm,
                    "lateral (mm)": n.lateral_error_mm,
                    "depth (mm)": n.depth_error_mm,
                    "adjustments": n.adjustments,
                    "time (s)": n.seconds,
                }
                for n in session.needles
            ],
            caption=f"Session {number}: needles placed, confirmed tip against the plan",
        )
        if session.replans:
            report.add_table(
                [
                    {
                        "after": r.after,
                        "in place covers (%)": r.placed_coverage_percent,
                        "re-planned coverage (%)": r.target_coverage_percent,
                        "min margin (mm)": r.min_margin_mm,
                        "applicators": r.n_applicators,
                        "note": r.reason or "",
                    }
                    for r in session.replans
                ],
                caption=f"Session {number}: ablation re-planned from the confirmed needles",
            )
