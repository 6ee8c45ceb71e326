"""The plan under breathing: targets and paths followed through the phases, and P(hit).

Each phase other than the reference (the plan's own CT) comes with a displacement field
``u`` on the plan's grid: a point ``x`` of the plan's CT lies at ``x + u(x)`` in that phase
(:func:`seldinger.motion.register` from the plan's CT to the phase).

- A **target** moves by the mean of ``u`` over its voxels; its amplitude is the largest
  distance between its positions in any two phases (the reference at zero).
- A **path** is a straight needle from the moved entry to the moved target in each phase.
  The tissue the plan's line ran through follows ``x + u(x)``; the most it strays from the
  straight needle is the path's *lateral deviation*. Its safety is re-checked per phase: the
  straight needle's points ``y`` are mapped back to the plan's CT (``x = y - u(x)``, solved
  by fixed-point iteration) and looked up in the hard structures of the plan's anatomy;
  that is the phase's anatomy without warping any mask.
- **P(hit)** (:func:`seldinger.motion.uncertainty.p_hit`) combines registration TRE, the
  residual motion at the gate and needle deflection.

All positions are LPS millimetres (``docs/conventions.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.imaging import Volume
from seldinger.motion.errors import MotionError
from seldinger.motion.field import DisplacementField
from seldinger.motion.uncertainty import inside_mask
from seldinger.plan import TargetMotion, TargetPhaseDisplacement

__all__ = [
    "TG76_THRESHOLD_MM",
    "PathInPhases",
    "displacement_at",
    "follow_path",
    "gated_residual_rms_mm",
    "invert_points",
    "target_motion",
]

#: AAPM TG-76 (Keall et al., Med Phys 2006;33:3874-3900): respiratory motion management is
#: recommended when a target moves more than 5 mm.
TG76_THRESHOLD_MM = 5.0
#: Spacing of the samples along a needle (mm): finer than the thinnest hard structure the
#: planner keeps (a 1-2 mm cortex is still sampled on 0.7 mm voxels at 0.5 mm).
_STEP_MM = 0.5
#: Fixed-point iterations of ``x = y - u(x)``: the map contracts by |∇u| (< 0.5 for
#: breathing fields), so 8 iterations leave < 0.5⁸ of the first error.
_INVERSE_ITERATIONS = 8

FloatArray = npt.NDArray[np.float64]


def _inside_grid(field: DisplacementField, points: FloatArray) -> FloatArray:
    """``points`` moved onto the field's grid box (index space clipped), LPS mm."""
    grid = field.geometry
    ijk = grid.lps_to_index(points)
    ijk = np.clip(ijk, 0.0, np.asarray(grid.shape, dtype=np.float64) - 1.0)
    clipped: FloatArray = grid.index_to_lps(ijk)
    return clipped


def displacement_at(field: DisplacementField, points_lps_mm: npt.ArrayLike) -> FloatArray:
    """``u`` at points, those outside the grid taking the value at its nearest face."""
    points = np.asarray(points_lps_mm, dtype=np.float64).reshape(-1, 3)
    return field.at_lps(_inside_grid(field, points))


def invert_points(field: DisplacementField, points_lps_mm: npt.ArrayLike) -> FloatArray:
    """Points ``x`` of the reference with ``x + u(x) = y`` for each phase point ``y``."""
    y = np.asarray(points_lps_mm, dtype=np.float64).reshape(-1, 3)
    x = y - displacement_at(field, y)
    for _ in range(_INVERSE_ITERATIONS - 1):
        x = y - displacement_at(field, x)
    return x


def target_motion(
    name: str,
    points_lps_mm: npt.ArrayLike,
    fields: Mapping[str, DisplacementField | None],
    threshold_mm: float = TG76_THRESHOLD_MM,
) -> TargetMotion:
    """A target's displacement in each phase and its amplitude.

    Parameters
    ----------
    name : str
        The target's name in the plan.
    points_lps_mm : array_like, shape (N, 3)
        The target's voxel centres (or its centroid alone), LPS mm.
    fields : mapping of str to DisplacementField or None
        Each phase's field; None for the reference phase.
    threshold_mm : float
        Motion above which management is recommended (TG-76: 5 mm).
    """
    points = np.asarray(points_lps_mm, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        raise MotionError(f"target {name!r} has no voxels; check its mask.")
    records: list[TargetPhaseDisplacement] = []
    positions = []
    for phase, field in fields.items():
        vector = np.zeros(3) if field is None else displacement_at(field, points).mean(axis=0)
        positions.append(vector)
        records.append(
            TargetPhaseDisplacement(
                phase=phase,
                displacement_vector_mm=(
                    round(float(vector[0]), 3),
                    round(float(vector[1]), 3),
                    round(float(vector[2]), 3),
                ),
                distance_mm=round(float(np.linalg.norm(vector)), 3),
            )
        )
    stacked = np.asarray(positions)
    pairwise = np.linalg.norm(stacked[:, None, :] - stacked[None, :, :], axis=-1)
    amplitude = float(pairwise.max())
    spread = stacked.max(axis=0) - stacked.min(axis=0)
    return TargetMotion(
        target=name,
        phases=records,
        amplitude_mm=round(amplitude, 3),
        peak_to_peak_lr_mm=round(float(spread[0]), 3),
        peak_to_peak_ap_mm=round(float(spread[1]), 3),
        peak_to_peak_si_mm=round(float(spread[2]), 3),
        motion_management_recommended=amplitude > threshold_mm,
    )


@dataclass(frozen=True)
class PathInPhases:
    """One straight path followed through the phases.

    Attributes
    ----------
    max_lateral_deviation_mm : float
        Largest distance of the moved planned line from the straight needle, any phase.
    tip_motion_mm : float
        Largest distance between the target's positions in any two phases.
    unsafe_phases : dict of str to list of str
        Per phase, the hard structures the straight needle crosses there.
    entries_lps_mm, targets_lps_mm : dict of str to tuple
        The moved entry and target in each phase.
    """

    max_lateral_deviation_mm: float
    tip_motion_mm: float
    unsafe_phases: dict[str, list[str]]
    entries_lps_mm: dict[str, tuple[float, float, float]]
    targets_lps_mm: dict[str, tuple[float, float, float]]

    @property
    def safe_in_all_phases(self) -> bool:
        """No phase puts a hard structure on the straight needle."""
        return not self.unsafe_phases


def _line(entry: FloatArray, target: FloatArray) -> FloatArray:
    length = float(np.linalg.norm(target - entry))
    n = max(2, math.ceil(length / _STEP_MM) + 1)
    s = np.linspace(0.0, 1.0, n)[:, None]
    points: FloatArray = entry + s * (target - entry)
    return points


def _crossed(hard: Mapping[str, Volume], points_lps_mm: FloatArray) -> list[str]:
    """Names of the hard masks holding any of the points (nearest voxel)."""
    return [name for name, mask in hard.items() if inside_mask(mask, points_lps_mm).any()]


def follow_path(
    entry_lps_mm: Sequence[float],
    target_lps_mm: Sequence[float],
    fields: Mapping[str, DisplacementField | None],
    hard: Mapping[str, Volume],
) -> PathInPhases:
    """Follow a straight path through the phases; re-check its hard structures in each.

    Parameters
    ----------
    entry_lps_mm, target_lps_mm : sequence of 3 float
        The planned path on the reference CT, LPS mm.
    fields : mapping of str to DisplacementField or None
        Each phase's field (None: the reference phase).
    hard : mapping of str to Volume
        Hard structures of the plan's anatomy (boolean masks on the plan's CT grid) that
        no needle may cross.
    """
    entry = np.asarray(entry_lps_mm, dtype=np.float64)
    target = np.asarray(target_lps_mm, dtype=np.float64)
    planned = _line(entry, target)
    deviation = 0.0
    unsafe: dict[str, list[str]] = {}
    entries: dict[str, tuple[float, float, float]] = {}
    targets: dict[str, tuple[float, float, float]] = {}
    tips = []
    for phase, field in fields.items():
        if field is None:
            moved = planned
        else:
            moved = planned + displacement_at(field, planned)
        start, end = moved[0], moved[-1]
        entries[phase] = (float(start[0]), float(start[1]), float(start[2]))
        targets[phase] = (float(end[0]), float(end[1]), float(end[2]))
        tips.append(end)
        axis = end - start
        axis /= max(float(np.linalg.norm(axis)), 1e-9)
        offset = moved - start
        lateral = offset - np.outer(offset @ axis, axis)
        deviation = max(deviation, float(np.linalg.norm(lateral, axis=1).max()))
        needle = _line(start, end)
        at_reference = needle if field is None else invert_points(field, needle)
        crossed = _crossed(hard, at_reference)
        if crossed:
            unsafe[phase] = crossed
    stacked = np.asarray(tips)
    tip_motion = float(np.linalg.norm(stacked[:, None] - stacked[None, :], axis=-1).max())
    return PathInPhases(
        max_lateral_deviation_mm=deviation,
        tip_motion_mm=tip_motion,
        unsafe_phases=unsafe,
        entries_lps_mm=entries,
        targets_lps_mm=targets,
    )


def gated_residual_rms_mm(amplitude_mm: float, window: tuple[float, float]) -> float:
    """RMS of the target's motion left inside a gating window (3-D, mm).

    Gated at a window spanning a fraction ``w`` of the amplitude, the target lies anywhere
    in a stretch ``w · A`` long; taken as uniform there, its RMS about the stretch's middle
    is ``w · A / √12``. An ungated needle (window (0, 1)) keeps ``A / √12``.
    """
    low, high = window
    if not 0.0 <= low < high <= 1.0:
        raise MotionError(
            f"gate window must satisfy 0 <= low < high <= 1 (fractions of the amplitude); "
            f"got {window}."
        )
    return float((high - low) * max(amplitude_mm, 0.0) / math.sqrt(12.0))
