"""A simulated EM tracker for a plan's needle path (``seldinger navigate simulate``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seldinger.errors import BadInputError
from seldinger.navigation.calibration import tool_tip_to_tool
from seldinger.navigation.motion import BreathingModel, NeedleInsertion, PivotMotion
from seldinger.navigation.simulate import NoiseModel, TrackerSimConfig, TrackerSimulator
from seldinger.navigation.transforms import invert_rigid
from seldinger.plan import Plan
from seldinger.workflow.navigation import plan_path_of

__all__ = ["CONVENTIONS", "SimulationRequest", "make_simulation"]

#: Frame conventions, printed by ``simulate`` and stored in its ground truth.
CONVENTIONS = (
    "Matrices are 4x4, row-major, mm; a_to_b maps points from frame a into frame b "
    "(ToolToTracker: tool sensor -> tracker). CT frame: DICOM patient LPS mm. Tool frame: "
    "+Z along the shaft toward the tip, the tip at (0, 0, tip_offset_mm); "
    "tool_tip_to_tool has its origin at the tip and +Z the direction of insertion (PLUS)."
)


@dataclass(frozen=True)
class SimulationRequest:
    """What ``seldinger navigate simulate`` was asked (see its ``--help``)."""

    plan_path: Path | None = None
    trajectory: int = 1
    motion: str = "insertion"  # or "pivot"
    hz: float = 40.0
    seed: int = 0
    seconds: float | None = None
    noise_mm: float = 0.5
    noise_deg: float = 0.3
    breathing: bool = True
    tip_offset_mm: float = 5.0
    angle_error_deg: float = 0.0
    lateral_error_mm: float = 0.0
    tdata: bool = False

    def __post_init__(self) -> None:
        if self.motion not in ("insertion", "pivot"):
            raise BadInputError(f"motion must be insertion or pivot; got {self.motion!r}.")


def make_simulation(request: SimulationRequest) -> tuple[TrackerSimulator, dict[str, Any]]:
    """The simulator and its ground truth (JSON-ready: ``ct_to_tracker``, ``tracker_to_ct``,
    ``reference_to_ct``, the tip, the path, the conventions).

    Raises
    ------
    BadInputError
        An insertion without a plan.
    PlanContentError
        A plan without the trajectory asked for.
    """
    info: dict[str, Any] = {"type": "start", "motion": request.motion}
    anchor = np.zeros(3)
    entry = anchor
    if request.plan_path is not None:
        chosen = plan_path_of(Plan.load(request.plan_path), request.plan_path, request.trajectory)
        entry, anchor = np.asarray(chosen.entry_lps_mm), np.asarray(chosen.target_lps_mm)
        info |= {"plan": str(request.plan_path), "trajectory": request.trajectory}
    elif request.motion == "insertion":
        raise BadInputError(
            "--motion insertion follows a planned trajectory; give --plan PLAN (or use "
            "--motion pivot)."
        )
    path: NeedleInsertion | PivotMotion
    if request.motion == "insertion":
        path = NeedleInsertion(
            entry,
            anchor,
            angle_error_deg=request.angle_error_deg,
            lateral_error_mm=request.lateral_error_mm,
        )
        info |= {"entry_lps_mm": entry.tolist(), "target_lps_mm": anchor.tolist()}
        info |= {"angle_error_deg": request.angle_error_deg}
        info |= {"lateral_error_mm": request.lateral_error_mm}
    else:
        path = PivotMotion(anchor)
        info["pivot_lps_mm"] = anchor.tolist()
    sim = TrackerSimulator(
        TrackerSimConfig(
            path,
            rate_hz=request.hz,
            tip_offset_mm=request.tip_offset_mm,
            noise=NoiseModel(request.noise_mm, request.noise_deg),
            breathing=BreathingModel() if request.breathing else None,
        ),
        rng=request.seed,
    )
    tip = tool_tip_to_tool([0.0, 0.0, request.tip_offset_mm], [0.0, 0.0, 1.0])
    info |= {
        "motion_duration_s": path.duration_s if request.motion == "insertion" else None,
        "rate_hz": request.hz,
        "seed": request.seed,
        "seconds": request.seconds,
        "messages": "TDATA" if request.tdata else "TRANSFORM",
        "tool": sim.config.tool_name,
        "reference": sim.config.reference_name,
        "tip_offset_mm": request.tip_offset_mm,
        "tool_tip_to_tool": tip.tolist(),
        "ct_to_tracker": sim.ct_to_tracker.tolist(),
        "tracker_to_ct": invert_rigid(sim.ct_to_tracker).tolist(),
        "reference_to_ct": sim.reference_to_ct.tolist(),
        "noise": {"translation_rms_mm": request.noise_mm, "rotation_rms_deg": request.noise_deg},
        "breathing": request.breathing,
        "conventions": CONVENTIONS,
    }
    return sim, info
