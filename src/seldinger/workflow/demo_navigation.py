"""The demo's navigation step: a simulated EM-navigated insertion along the best path.

Six 4 mm, 1500 HU markers are put on the skin around the planned entry (inserted into a
copy of the CT, partial-volume correct) and found again by the detector; a simulated
tracker touches them (0.3 mm pointer error, in shuffled order), they are paired and
registered (FRE, predicted TRE); the needle's tip offset comes from a simulated pivot
calibration; then the needle is inserted along the plan with a small deliberate error,
through the tracker's noise and the patient's breathing, and the guidance is compared
with the simulator's truth. Everything here is simulation: it shows the chain works on
this CT and what its errors are, not what a real tracker in a real room will do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError
from seldinger.export import Report, render_views
from seldinger.imaging import Volume
from seldinger.navigation import (
    BreathingModel,
    Guide,
    NeedleInsertion,
    PivotMotion,
    PlannedPath,
    TrackerSimConfig,
    TrackerSimulator,
    detect_skin_markers,
    insert_spherical_markers,
    pair_points,
    pivot_calibration,
    register_points,
    tool_tip_to_tool,
)
from seldinger.navigation.simulate import REFERENCE_NAME, TOOL_NAME
from seldinger.navigation.transforms import apply_transform
from seldinger.plan import RegistrationRecord

__all__ = ["Navigated", "navigation_section", "simulate_navigation"]

#: Markers: how many, their ring around the entry on the skin (mm), gap off the skin (mm).
N_MARKERS = 6
MARKER_RING_MM = (40.0, 90.0)
MARKER_GAP_MM = 2.0
#: Least distance of a marker from the CT's first and last voxels in each axis (mm).
MARKER_EDGE_ROOM_MM = 10.0
#: The pointer's localisation error when touching a marker, RMS per axis (mm).
POINTER_FLE_MM = 0.3
#: Deliberate needle errors of the simulated insertion.
LATERAL_ERROR_MM = 1.5
ANGLE_ERROR_DEG = 2.0
TIP_OFFSET_MM = 5.0


@dataclass
class Navigated:
    """What the navigation step measured, its figures, or why it did not run."""

    summary: dict[str, Any] = field(default_factory=dict)
    markers: list[dict[str, Any]] = field(default_factory=list)
    registration: RegistrationRecord | None = None
    figures: list[Path] = field(default_factory=list)
    error: str | None = None


def _marker_sites(body: Volume, entry_lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Six points ``MARKER_GAP_MM`` off the skin, 40-90 mm from the entry, spread out."""
    entry = np.asarray(entry_lps_mm, dtype=np.float64)
    reach = MARKER_RING_MM[1] + 10.0
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    corners = entry + reach * signs
    ijk = body.lps_to_index(corners)
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, np.array(body.shape) - 1)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 1, np.array(body.shape))
    crop = body.crop_index(tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)))
    inside = np.asarray(crop.array, dtype=bool)
    outside_mm = ndi.distance_transform_edt(~inside, sampling=crop.spacing_mm)
    shell = (outside_mm >= MARKER_GAP_MM - 0.5) & (outside_mm <= MARKER_GAP_MM + 0.5)
    index = np.argwhere(shell) + lo
    # A marker must lie wholly in the scanned range, with room to spare: the detector needs
    # the sphere and the skin around it (one 2 mm from the last slice was missed).
    room = np.ceil(MARKER_EDGE_ROOM_MM / np.asarray(body.spacing_mm)).astype(int)
    index = index[np.all((index >= room) & (index < np.array(body.shape) - room), axis=1)]
    points = body.index_to_lps(index)
    distance = np.linalg.norm(points - entry, axis=1)
    points = points[(distance >= MARKER_RING_MM[0]) & (distance <= MARKER_RING_MM[1])]
    if len(points) < N_MARKERS:
        raise BadInputError(
            f"only {len(points)} skin points lie {MARKER_RING_MM[0]:g}-{MARKER_RING_MM[1]:g} mm "
            "from the entry; the markers need a patch of skin around it."
        )
    # Farthest-point sampling from the point nearest the ring's middle: a spread layout.
    chosen = [int(np.argmin(np.abs(np.linalg.norm(points - entry, axis=1) - 65.0)))]
    nearest = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(N_MARKERS - 1):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return points[chosen]


def simulate_navigation(
    ct: Volume,
    body: Volume,
    entry_lps_mm: npt.ArrayLike,
    target_lps_mm: npt.ArrayLike,
    figures_dir: Path,
) -> Navigated:
    """Run the simulated navigation chain on ``ct`` for the planned path; draw its figures."""
    entry = np.asarray(entry_lps_mm, dtype=np.float64)
    target = np.asarray(target_lps_mm, dtype=np.float64)
    path = PlannedPath(
        (float(entry[0]), float(entry[1]), float(entry[2])),
        (float(target[0]), float(target[1]), float(target[2])),
    )
    rng = np.random.default_rng(7)
    truth = _marker_sites(body, entry)
    marked = insert_spherical_markers(ct, truth, diameter_mm=4.0, hu=1500.0)
    detection = detect_skin_markers(marked, body=body)
    found = detection.centres_lps_mm
    if len(found) < 3:
        return Navigated(error=f"only {len(found)} of {N_MARKERS} skin markers were found.")
    errors = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2)
    markers: list[dict[str, Any]] = [
        {
            "marker": k + 1,
            "true_lps_mm": [round(float(v), 2) for v in truth[k]],
            "found": bool(errors[k].min() <= 2.0),
            "error_mm": round(float(errors[k].min()), 3),
        }
        for k in range(len(truth))
    ]

    insertion = NeedleInsertion(
        entry,
        target,
        lateral_error_mm=LATERAL_ERROR_MM,
        angle_error_deg=ANGLE_ERROR_DEG,
        insertion_speed_mm_per_s=10.0,
    )
    config = TrackerSimConfig(insertion, tip_offset_mm=TIP_OFFSET_MM, breathing=BreathingModel())
    sim = TrackerSimulator(config, rng=3)
    touched = apply_transform(truth, sim.ct_to_tracker) + rng.normal(0, POINTER_FLE_MM, truth.shape)
    shuffled = touched[rng.permutation(len(truth))]
    pairing = pair_points(found, shuffled, tolerance_mm=2.0)
    # The paired points registered again with the target and the pointer's FLE (3-D RMS),
    # for the predicted TRE at the target (Fitzpatrick 1998, eq. 46).
    registration = register_points(
        found[pairing.ct_index],
        shuffled[pairing.tracker_index],
        target_mm=target,
        fle_mm=float(np.sqrt(3.0) * POINTER_FLE_MM),
    )
    tracker_to_ct = registration.moving_to_fixed
    back = apply_transform(apply_transform(target, sim.ct_to_tracker), tracker_to_ct)
    tre_actual = float(np.linalg.norm(back - target))

    pivot_config = TrackerSimConfig(PivotMotion(entry), tip_offset_mm=TIP_OFFSET_MM, breathing=None)
    pivot_series = TrackerSimulator(pivot_config, rng=5).simulate(10.0)
    seen = pivot_series.visible[TOOL_NAME]
    pivot = pivot_calibration(pivot_series.measured[TOOL_NAME][seen])

    series = sim.simulate(insertion.duration_s + 2.0)
    reference_to_ct = tracker_to_ct @ series.frame(0).transforms[REFERENCE_NAME]
    guide = Guide(path, tool_tip_to_tool(pivot.tip_offset_mm), reference_to_ct=reference_to_ct)
    rows: list[tuple[float, float, float, float, float, float]] = []
    for i in range(len(series)):
        frame = series.frame(i)
        if frame.truth is None or frame.truth.stage not in ("insertion", "hold"):
            continue
        if TOOL_NAME not in frame.transforms or REFERENCE_NAME not in frame.transforms:
            continue
        state = guide.update(
            frame.transforms[TOOL_NAME], frame.transforms[REFERENCE_NAME], frame.timestamp_s
        )
        offset = frame.truth.tip_lps_mm - entry
        u = np.asarray(path.direction_lps)
        lateral_true = float(np.linalg.norm(offset - float(np.dot(offset, u)) * u))
        rows.append(
            (
                frame.timestamp_s,
                state.tip_to_target_mm,
                float(np.linalg.norm(target - frame.truth.tip_lps_mm)),
                state.lateral_deviation_mm,
                lateral_true,
                frame.truth.breathing_signal,
            )
        )
    trace = np.asarray(rows)
    summary = {
        "markers found": f"{sum(m['found'] for m in markers)} of {len(markers)}",
        "marker localisation error, max (mm)": round(max(m["error_mm"] for m in markers), 3),
        "registration FRE (mm)": round(registration.fre_mm, 3),
        "predicted TRE at the target (mm)": round(float(registration.predicted_tre_mm or 0.0), 3),
        "actual registration error at the target (mm)": round(tre_actual, 3),
        "pivot calibration: tip offset (mm)": [round(v, 2) for v in pivot.tip_offset_mm],
        "pivot calibration: RMS (mm)": round(pivot.rms_mm, 3),
        "guidance updates": len(trace),
        "final tip-to-target, guidance / truth (mm)": [
            round(float(trace[-1, 1]), 2),
            round(float(trace[-1, 2]), 2),
        ],
        "final lateral deviation, guidance / truth (mm)": [
            round(float(trace[-1, 3]), 2),
            round(float(trace[-1, 4]), 2),
        ],
        "tip-to-target error vs truth, RMS (mm)": round(
            float(np.sqrt(np.mean((trace[:, 1] - trace[:, 2]) ** 2))), 2
        ),
    }
    record = registration.to_record(
        "registration-1",
        name="demo: 6 skin markers, simulated tracker",
        source="seldinger demo: markers detected in the CT, simulated tracker points",
        target_source="trajectory 1 of the plan",
        calibration=pivot.to_record("calibration-1", name="demo: simulated pivot"),
    )
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = [
        _marker_view(marked, truth, found, figures_dir / "navigation_markers.png"),
        _trace_figure(trace, figures_dir / "navigation_guidance.png"),
    ]
    return Navigated(summary, markers, record, figures)


def _marker_view(
    marked: Volume, truth: npt.NDArray[np.float64], found: npt.NDArray[np.float64], out: Path
) -> Path:
    """Three views through the first marker, 70 mm around it: true centre and detection."""
    points = {"true centre 1": truth[0]}
    nearest = int(np.argmin(np.linalg.norm(found - truth[0], axis=1)))
    points["detected 1"] = found[nearest]
    render_views(
        marked.crop_lps(truth[0] - 35.0, truth[0] + 35.0),
        truth[0],
        points=points,
        window=(200.0, 2000.0),
        out_png=out,
        title="Skin marker 1 (4 mm, 1500 HU) inserted in the CT, and its detection",
        force=True,
    )
    return out


def _trace_figure(trace: npt.NDArray[np.float64], out: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from seldinger.files import atomic_path

    t = trace[:, 0] - trace[0, 0]
    figure = Figure(figsize=(8.0, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(t, trace[:, 1], color="#0a84ff", label="guidance")
    top.plot(t, trace[:, 2], color="black", linestyle="--", label="truth")
    top.set_ylabel("tip to target (mm)")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    bottom.plot(t, trace[:, 3], color="#ff9f0a", label="guidance")
    bottom.plot(t, trace[:, 4], color="black", linestyle="--", label="truth")
    ax2 = bottom.twinx()
    ax2.plot(t, trace[:, 5], color="#8e8e93", alpha=0.5, label="breathing")
    ax2.set_ylabel("breathing (0 exhale, 1 inhale)")
    bottom.set_ylabel("lateral deviation (mm)")
    bottom.set_xlabel("time from the start of insertion (s)")
    bottom.legend(loc="upper left")
    bottom.grid(alpha=0.3)
    figure.suptitle("Simulated navigated insertion: guidance against the simulator's truth")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_path(out, force=True) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return out


def navigation_section(report: Report, navigated: Navigated) -> None:
    """The report's "Navigation (simulated)" section."""
    report.add_section(
        "Navigation (simulated)",
        f"A simulated EM-navigated insertion along path 1. {N_MARKERS} skin markers (4 mm, "
        f"1500 HU) were put into a copy of the CT {MARKER_RING_MM[0]:g}-{MARKER_RING_MM[1]:g} "
        "mm around the entry and found by the detector; a simulated tracker touched them "
        f"({POINTER_FLE_MM:g} mm pointer error per axis, in shuffled order) and they were "
        "paired and registered. The tip offset came from a simulated pivot calibration. The "
        f"needle went in with a deliberate {LATERAL_ERROR_MM:g} mm / {ANGLE_ERROR_DEG:g}° "
        "error, through 0.5 mm / 0.3° tracker noise and breathing (10 mm at the target, 5 mm "
        "at the chest sensor). Guidance tracks the needle relative to the chest sensor; the "
        "target's own breathing motion is not compensated. This is a simulation, not a "
        "measurement of any tracker.",
    )
    if navigated.error is not None:
        report.add_text(f"No navigation simulation: {navigated.error}")
        return
    report.add_table(navigated.summary, caption="Registration, calibration and guidance")
    report.add_table(navigated.markers, caption="Skin markers: detection error (mm)")
    for png, caption in zip(
        navigated.figures,
        (
            "Marker 1 in the CT, 70 mm around it (window W 2000 / L 200 HU, scale bar in mm), with its "
            "true centre and its detection.",
            "Tip-to-target distance and lateral deviation reported by the guidance (colour) "
            "and true (dashed) during the insertion (mm against s), with the breathing signal.",
        ),
        strict=True,
    ):
        report.add_image(png, caption=caption)
