"""Search every straight needle path from the skin to a target; rank the safe ones.

Steps: skin candidates (precomputed with the maps), a length pre-check, one ray march per
candidate from the target outwards (:mod:`._kernel`: every voxel the path touches), hard
constraints, metrics, the risk score (:mod:`.score`) and the Pareto set.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy
from seldinger.errors import BadInputError, InfeasiblePlanError
from seldinger.imaging import Volume
from seldinger.plan import TrajectoryRecord, TrajectorySection
from seldinger.planning.trajectory.constraints import REASONS, TrajectoryConstraints
from seldinger.planning.trajectory.kernel import march_rays
from seldinger.planning.trajectory.maps import (
    BIT_BODY,
    BIT_BULLA,
    BIT_EMPHYSEMA,
    BIT_LESION,
    BIT_LIVER,
    BIT_LUNG_LEFT,
    BIT_LUNG_RIGHT,
    DISTANCE_CAP_MM,
    LIVER_LESION_SHARE,
    LOBE_SHIFT,
    LOBES,
    RiskMaps,
)
from seldinger.planning.trajectory.score import LIVER_PARENCHYMA_MM, pareto_front, risk_terms

__all__ = [
    "NeedleTooShortError",
    "NoSafePathError",
    "TargetError",
    "Trajectory",
    "TrajectorySearch",
    "evaluate_path",
    "evaluate_paths",
    "paths_along",
    "plan_trajectories",
]

logger = logging.getLogger(__name__)

#: The ray of a candidate runs this far beyond the skin sample, so that it leaves the body
#: at the skin of the CT's own grid (the samples sit on a coarser grid).
_BEYOND_SKIN_MM = 5.0
#: Leaving the body more than this before reaching the skin sample means the straight line
#: crosses air (between arm and chest, a skin fold): the sample is not a direct entry.
_AIR_GAP_MM = 3.0
#: Vessel distances in the Pareto objectives are capped here (farther is equally good).
_PARETO_VESSEL_CAP_MM = 20.0
#: Default spacing between the entries of the paths listed as alternatives.
MIN_SEPARATION_MM = 10.0


class TargetError(BadInputError):
    """The target cannot be planned to (outside the CT or body, inside a hard structure)."""


class NoSafePathError(InfeasiblePlanError):
    """Every candidate breaks a hard constraint; ``blocked_by`` counts each reason."""

    def __init__(self, message: str, blocked_by: Mapping[str, int], n_candidates: int) -> None:
        super().__init__(message)
        self.blocked_by = dict(blocked_by)
        self.n_candidates = n_candidates

    def details(self) -> dict[str, Any]:
        """Candidates refused per reason, of how many."""
        return {"blocked_by": dict(self.blocked_by), "n_candidates": self.n_candidates}


class NeedleTooShortError(NoSafePathError):
    """The needle cannot reach the target from any point of the skin."""

    def __init__(self, message: str, shallowest_mm: float, n_candidates: int) -> None:
        super().__init__(message, {"too_long": n_candidates}, n_candidates)
        self.shallowest_mm = shallowest_mm

    def details(self) -> dict[str, Any]:
        """As :class:`NoSafePathError`, with the shallowest insertion depth (mm)."""
        return {**super().details(), "shallowest_mm": round(self.shallowest_mm, 2)}


@dataclass(frozen=True)
class Trajectory:
    """One straight needle path with every metric the planner weighs (LPS mm, degrees)."""

    entry_lps_mm: tuple[float, float, float]
    target_lps_mm: tuple[float, float, float]
    length_mm: float
    lung_length_mm: float
    pleural_crossings: int
    emphysema_length_mm: float
    crosses_bulla: bool
    min_distance_mm: dict[str, float]
    axial_angle_deg: float
    pleura_angle_deg: float | None
    target_depth_mm: float | None
    far_side_lps_mm: tuple[float, float, float] | None
    depth_to_far_side_mm: float
    risk_score: float
    risk_terms: dict[str, float]
    safe: bool
    blocked_by: tuple[str, ...] = ()
    pareto: bool = False
    dual_use: bool | None = None
    rank: int | None = None
    fissure_crossings: int | None = None
    rib_margin_mm: float | None = None
    liver_parenchyma_mm: float | None = None

    def to_record(self) -> TrajectoryRecord:
        """The plan's record of this path (mm to 0.01, risk to 1e-4)."""

        def r(x: float) -> float:
            return round(float(x), 2)

        def point(p: Sequence[float]) -> tuple[float, float, float]:
            return (r(p[0]), r(p[1]), r(p[2]))

        return TrajectoryRecord(
            rank=self.rank,
            entry_lps_mm=point(self.entry_lps_mm),
            target_lps_mm=point(self.target_lps_mm),
            far_side_lps_mm=None if self.far_side_lps_mm is None else point(self.far_side_lps_mm),
            length_mm=r(self.length_mm),
            depth_to_far_side_mm=r(self.depth_to_far_side_mm),
            lung_length_mm=r(self.lung_length_mm),
            pleural_crossings=int(self.pleural_crossings),
            fissure_crossings=self.fissure_crossings,
            rib_margin_mm=None
            if self.rib_margin_mm is None or math.isinf(self.rib_margin_mm)
            else r(self.rib_margin_mm),
            liver_parenchyma_mm=None
            if self.liver_parenchyma_mm is None
            else r(self.liver_parenchyma_mm),
            emphysema_length_mm=r(self.emphysema_length_mm),
            crosses_bulla=bool(self.crosses_bulla),
            min_distance_mm={
                k: (None if math.isinf(v) else r(v)) for k, v in self.min_distance_mm.items()
            },
            axial_angle_deg=r(self.axial_angle_deg),
            pleura_angle_deg=None if self.pleura_angle_deg is None else r(self.pleura_angle_deg),
            target_depth_mm=None if self.target_depth_mm is None else r(self.target_depth_mm),
            risk_score=round(float(self.risk_score), 4),
            risk_terms={k: round(float(v), 4) for k, v in self.risk_terms.items()},
            safe=bool(self.safe),
            blocked_by=list(self.blocked_by),
            pareto=bool(self.pareto),
            dual_use=self.dual_use,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: :meth:`to_record` dumped."""
        return self.to_record().model_dump(mode="json")


@dataclass(frozen=True)
class _Rays:
    """Per-ray metrics (arrays of length n)."""

    entry_lps_mm: npt.NDArray[np.float64]
    length_mm: npt.NDArray[np.float64]
    far_lps_mm: npt.NDArray[np.float64]
    far_mm: npt.NDArray[np.float64]
    lung_mm: npt.NDArray[np.float64]
    crossings: npt.NDArray[np.int32]
    emphysema_mm: npt.NDArray[np.float64]
    bulla: npt.NDArray[np.bool_]
    min_distance_mm: npt.NDArray[np.float64]  # (n, M)
    axial_deg: npt.NDArray[np.float64]
    pleura_deg: npt.NDArray[np.float64]
    depth_mm: npt.NDArray[np.float64]
    reasons: npt.NDArray[np.uint32]  # bit r: reason_names[r]
    fissures: npt.NDArray[np.int32] | None  # None: the lobes are not all known
    rib_margin_mm: npt.NDArray[np.float64]  # inf: no bone map
    liver_mm: npt.NDArray[np.float64] | None  # None: the target is not in the liver


@dataclass(frozen=True)
class TrajectorySearch:
    """All skin candidates for one target, which are safe, and the ranked safe paths.

    Attributes
    ----------
    target_lps_mm : ndarray (3,)
    candidates_lps_mm : ndarray (N, 3)
        Skin samples.
    entries_lps_mm : ndarray (N, 3)
        Where each candidate's path leaves the body (NaN for candidates beyond the
        needle's reach, which are not marched).
    safe : ndarray of bool (N,)
    risk_score : ndarray (N,)
        NaN where not safe.
    reasons : ndarray of uint32 (N,)
        Bit r set when reason ``reason_names[r]`` refuses the candidate.
    reason_names : tuple of str
    blocked_by : dict of str to int
        Candidates refused per reason (one candidate may count under several).
    trajectories : tuple of Trajectory
        Every safe path, best first (built on first use: :meth:`top` and :attr:`best` build
        only what they return).
    """

    target_lps_mm: npt.NDArray[np.float64]
    candidates_lps_mm: npt.NDArray[np.float64]
    entries_lps_mm: npt.NDArray[np.float64]
    safe: npt.NDArray[np.bool_]
    risk_score: npt.NDArray[np.float64]
    reasons: npt.NDArray[np.uint32]
    reason_names: tuple[str, ...]
    blocked_by: dict[str, int]
    ranked: _Ranked = field(repr=False)
    constraints: TrajectoryConstraints
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def trajectories(self) -> tuple[Trajectory, ...]:
        """Every safe path, best first."""
        return tuple(self.ranked.trajectory(k) for k in range(len(self.ranked)))

    @property
    def n_pareto(self) -> int:
        """Number of Pareto-optimal safe paths."""
        return int(self.ranked.pareto.sum())

    @property
    def n_candidates(self) -> int:
        """Number of skin samples examined."""
        return int(self.candidates_lps_mm.shape[0])

    @property
    def best(self) -> Trajectory:
        """The lowest-risk safe path."""
        return self.ranked.trajectory(0)

    def top(self, n: int = 5, min_separation_mm: float = MIN_SEPARATION_MM) -> list[Trajectory]:
        """The ``n`` best safe paths whose entries lie at least ``min_separation_mm`` apart.

        Neighbouring skin samples give nearly the same path; this lists real alternatives.
        Pareto-optimal paths keep their flag; ranks are renumbered 1..n.
        """
        if n < 1:
            raise BadInputError(f"n must be >= 1; got {n}.")
        ranked = self.ranked
        entries = ranked.rays.entry_lps_mm[ranked.rays_index]
        chosen: list[int] = []
        for k in range(len(ranked)):
            if (
                not chosen
                or np.min(np.linalg.norm(entries[chosen] - entries[k], axis=1)) >= min_separation_mm
            ):
                chosen.append(k)
                if len(chosen) == n:
                    break
        return [replace(ranked.trajectory(k), rank=i + 1) for i, k in enumerate(chosen)]

    def reason_labels(self) -> list[str]:
        """Why each candidate is refused: the name of its first reason, or ``"safe"``.

        The first reason in :attr:`reason_names` order (:data:`REASONS`, then the hard
        structures); one label per candidate, e.g. to colour a skin map.
        """
        labels = np.full(self.n_candidates, "safe", dtype=object)
        # Last reason first, so that the first set reason is written last and wins.
        for bit in reversed(range(len(self.reason_names))):
            labels[(self.reasons & np.uint32(1 << bit)) != 0] = self.reason_names[bit]
        return [str(label) for label in labels]

    def to_section(self, top: int, target: str | None = None) -> TrajectorySection:
        """The plan's trajectory section: rules, counts and the ``top`` distinct best paths.

        Parameters
        ----------
        top : int
            How many distinct paths to keep (:meth:`top`).
        target : str, optional
            Name of the plan target aimed at.
        """
        return TrajectorySection(
            target=target,
            target_lps_mm=(
                round(float(self.target_lps_mm[0]), 2),
                round(float(self.target_lps_mm[1]), 2),
                round(float(self.target_lps_mm[2]), 2),
            ),
            rules=self.constraints.to_rules(),
            n_candidates=self.n_candidates,
            n_safe=int(self.safe.sum()),
            blocked_by=dict(self.blocked_by),
            notes=list(self.notes),
            paths=[path.to_record() for path in self.top(top)],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and timings."""
        return {
            "target_lps_mm": [round(float(v), 2) for v in self.target_lps_mm],
            "n_candidates": self.n_candidates,
            "n_safe": int(self.safe.sum()),
            "n_pareto": self.n_pareto,
            "blocked_by": dict(self.blocked_by),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": list(self.notes),
        }


def plan_trajectories(
    anatomy: Anatomy | RiskMaps,
    target_lps_mm: npt.ArrayLike | None = None,
    lesion: Volume | None = None,
    constraints: TrajectoryConstraints | None = None,
) -> TrajectorySearch:
    """Find and rank every safe straight path from the skin to a target.

    Parameters
    ----------
    anatomy : Anatomy or RiskMaps
        Segmented structures (the maps are built from them), or maps built before (with
        the lesion and constraints) to plan several targets without rebuilding; with maps,
        the lesion is the one they were built with.
    target_lps_mm : array (3,), optional
        The needle tip's aim (LPS mm). Default: the lesion's centroid.
    lesion : Volume, optional
        The lesion's mask. Each path also reports where it leaves the lesion beyond the
        target (``far_side_lps_mm``): the needle must reach it, and that depth is what is
        checked against the needle length.
    constraints : TrajectoryConstraints, optional
        Needle length, vessel rule, hard and forbidden structures, angle limits.

    Returns
    -------
    TrajectorySearch

    Raises
    ------
    TargetError
        Target outside the CT or the body, or inside a hard structure.
    NeedleTooShortError
        No skin point is within the needle's reach.
    NoSafePathError
        Every candidate breaks a hard constraint (``blocked_by`` counts each reason).
    """
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    if isinstance(anatomy, RiskMaps):
        maps = anatomy
        if lesion is not None and maps.lesion_centroid_lps_mm is None:
            raise BadInputError(
                "these RiskMaps were built without a lesion; build them with it "
                "(RiskMaps.build(anatomy, constraints, lesion)) to plan to a lesion."
            )
        if constraints is not None and constraints != maps.constraints:
            raise BadInputError(
                "constraints differ from those the RiskMaps were built with; build the maps "
                "with these constraints (RiskMaps.build(anatomy, constraints, lesion))."
            )
    else:
        maps = RiskMaps.build(anatomy, constraints, lesion)
        seconds.update({f"maps_{k}": v for k, v in maps.seconds.items()})
    constraints = maps.constraints
    clock = time.perf_counter()
    target = _target(maps, target_lps_mm)
    candidates = maps.candidates_lps_mm
    n = candidates.shape[0]
    reach_mm = np.linalg.norm(candidates - target, axis=1)
    reason_names = REASONS + tuple(maps.hard_names)
    reasons = np.zeros(n, dtype=np.uint32)
    far = reach_mm - _BEYOND_SKIN_MM > constraints.needle_length_mm
    reasons[far] |= np.uint32(1 << reason_names.index("too_long"))
    if far.all():
        shallowest = float(reach_mm.min()) if n else float("inf")
        raise NeedleTooShortError(
            f"the needle's usable length ({constraints.needle_length_mm:.0f} mm) is shorter "
            f"than the shallowest path: the nearest skin is {shallowest:.1f} mm from the "
            f"target. Use a needle of at least {math.ceil(shallowest + 10):d} mm "
            "(needle_length_mm / --needle-length-mm).",
            shallowest,
            n,
        )
    near = np.flatnonzero(~far)
    seconds["prepare"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rays = _march(
        maps,
        target,
        candidates[near],
        beyond_mm=_BEYOND_SKIN_MM,
        gap_mm=_AIR_GAP_MM,
        stop_at_hard=True,
    )
    seconds["march"] = time.perf_counter() - clock
    clock = time.perf_counter()
    reasons[near] |= rays.reasons
    entries = np.full((n, 3), np.nan)
    entries[near] = rays.entry_lps_mm
    safe = reasons == 0
    blocked_by = {
        name: int(np.count_nonzero(reasons & np.uint32(1 << r)))
        for r, name in enumerate(reason_names)
    }
    blocked_by = {k: v for k, v in blocked_by.items() if v}
    if not safe.any():
        shown = ", ".join(f"{k} {v}" for k, v in sorted(blocked_by.items(), key=lambda kv: -kv[1]))
        raise NoSafePathError(
            f"no safe path to the target at {_fmt(target)} LPS mm: all {n} skin candidates "
            f"break a hard constraint (candidates refused per reason: {shown}). Check the "
            "target, relax a constraint (needle length, angle limit, table side, vessel "
            "distance) or plan to another point of the lesion.",
            blocked_by,
            n,
        )
    safe_near = safe[near]
    ranked = _rank(maps, target, rays, safe_near, constraints)
    risk = np.full(n, np.nan)
    risk[near[ranked.rays_index]] = ranked.score
    seconds["rank"] = time.perf_counter() - clock
    logger.debug("trajectory search: %d candidates, %d safe, %s", n, int(safe.sum()), seconds)
    return TrajectorySearch(
        target_lps_mm=target,
        candidates_lps_mm=candidates,
        entries_lps_mm=entries,
        safe=safe,
        risk_score=risk,
        reasons=reasons,
        reason_names=reason_names,
        blocked_by=blocked_by,
        ranked=ranked,
        constraints=constraints,
        notes=maps.notes + _liver_notes(ranked),
        seconds=seconds,
    )


def _liver_notes(ranked: _Ranked) -> tuple[str, ...]:
    """A note when a liver target's paths cannot keep, or the best one does not keep, the
    rule of crossing normal liver before the lesion."""
    liver = ranked.rays.liver_mm
    if liver is None or len(ranked) == 0:
        return ()
    safe = liver[ranked.rays_index]
    rule = f"{LIVER_PARENCHYMA_MM:.0f} mm"
    if safe.max() < LIVER_PARENCHYMA_MM:
        return (
            f"no safe path crosses {rule} of normal liver before the lesion (the most is "
            f"{safe.max():.1f} mm): the tract enters the lesion close to the capsule, with "
            "more risk of bleeding and of seeding along it.",
        )
    if safe[0] < LIVER_PARENCHYMA_MM:
        return (
            f"the best-ranked path crosses {safe[0]:.1f} mm of normal liver before the lesion, "
            f"less than {rule}; {int(np.count_nonzero(safe >= LIVER_PARENCHYMA_MM))} safe "
            "paths cross more but score worse on the other terms.",
        )
    return ()


def evaluate_path(
    maps: RiskMaps,
    entry_lps_mm: npt.ArrayLike,
    target_lps_mm: npt.ArrayLike,
    reach_far_side: bool = True,
) -> Trajectory:
    """Every metric and hard-constraint verdict for one given path (e.g. drawn by hand).

    The path is the segment from ``entry_lps_mm`` to ``target_lps_mm`` as given: its
    length is their distance, and it is examined from the target up to the entry. With
    ``reach_far_side`` (a biopsy needle aimed at a lesion) the needle length must also
    reach the lesion's far side; an ablation probe whose tip is placed by the planner
    passes False.
    """
    entry = _point(entry_lps_mm, "entry_lps_mm")
    target = _point(target_lps_mm, "target_lps_mm")
    return evaluate_paths(maps, entry[None, :], target[None, :], reach_far_side)[0]


def evaluate_paths(
    maps: RiskMaps,
    entries_lps_mm: npt.ArrayLike,
    targets_lps_mm: npt.ArrayLike,
    reach_far_side: bool = True,
) -> list[Trajectory]:
    """:func:`evaluate_path` for many paths at once (arrays of shape (n, 3)); one march."""
    entries = np.asarray(entries_lps_mm, dtype=np.float64)
    targets = np.asarray(targets_lps_mm, dtype=np.float64)
    if entries.ndim != 2 or entries.shape[1:] != (3,) or targets.shape != entries.shape:
        raise BadInputError(
            "entries_lps_mm and targets_lps_mm must both have shape (n, 3) (LPS mm); got "
            f"{entries.shape} and {targets.shape}."
        )
    if not (np.all(np.isfinite(entries)) and np.all(np.isfinite(targets))):
        raise BadInputError("entries_lps_mm and targets_lps_mm must be finite LPS coordinates.")
    length = np.linalg.norm(entries - targets, axis=1)
    if np.any(length < 1e-6):
        raise BadInputError(
            f"path {int(np.argmin(length))}: entry and target are the same point; give two points."
        )
    rays = _march(maps, targets, entries, beyond_mm=0.0, gap_mm=0.0, stop_at_hard=False)
    reasons = rays.reasons.astype(np.int64)
    # The march measured the length to where the path leaves the body; a given path's
    # length is its own, whatever lies beyond the skin.
    reasons &= ~(1 << REASONS.index("too_long"))
    depth = length + (rays.far_mm if reach_far_side else 0.0)
    reasons[depth > maps.constraints.needle_length_mm] |= 1 << REASONS.index("too_long")
    out = []
    for k, (t, why) in enumerate(_verdicts(maps, targets, rays, reasons)):
        out.append(
            replace(
                t,
                entry_lps_mm=_tuple(entries[k]),
                length_mm=float(length[k]),
                depth_to_far_side_mm=float(length[k] + rays.far_mm[k]),
                safe=not why,
                blocked_by=why,
            )
        )
    return out


def paths_along(
    maps: RiskMaps,
    targets_lps_mm: npt.ArrayLike,
    directions_lps: npt.ArrayLike,
    reach_far_side: bool = False,
) -> list[Trajectory]:
    """The straight path to each target that arrives along each direction (entry -> target).

    The entry is where the line, followed back from the target against the direction,
    leaves the body (within the needle's usable length + 10 mm; beyond that the path is
    ``too_long``); a line that leaves the body and enters it again (an arm) is refused as
    ``outside_body``. Used to try one approach direction at many tip positions (parallel
    probes, ablation zone centres) with one march.
    """
    targets = np.asarray(targets_lps_mm, dtype=np.float64)
    units = np.asarray(directions_lps, dtype=np.float64)
    if targets.ndim != 2 or targets.shape[1:] != (3,) or units.shape != targets.shape:
        raise BadInputError(
            "targets_lps_mm and directions_lps must both have shape (n, 3); got "
            f"{targets.shape} and {units.shape}."
        )
    norm = np.linalg.norm(units, axis=1)
    if not np.all(np.isfinite(norm)) or np.any(norm < 1e-12):
        raise BadInputError("directions_lps must be finite, non-zero LPS vectors.")
    units = units / norm[:, None]
    reach = maps.constraints.needle_length_mm + 10.0
    far = targets - reach * units
    rays = _march(maps, targets, far, beyond_mm=0.0, gap_mm=0.0, stop_at_hard=False)
    reasons = rays.reasons.astype(np.int64) & ~(1 << REASONS.index("too_long"))
    inside = ~np.isfinite(rays.length_mm) | (rays.length_mm >= reach - 1e-6)
    reasons[inside] |= 1 << REASONS.index("too_long")
    depth = rays.length_mm + (rays.far_mm if reach_far_side else 0.0)
    reasons[depth > maps.constraints.needle_length_mm] |= 1 << REASONS.index("too_long")
    return [
        replace(t, safe=not why, blocked_by=why)
        for t, why in _verdicts(maps, targets, rays, reasons)
    ]


def _verdicts(
    maps: RiskMaps,
    targets: npt.NDArray[np.float64],
    rays: _Rays,
    reasons: npt.NDArray[np.int64],
) -> list[tuple[Trajectory, tuple[str, ...]]]:
    """Each ray's Trajectory (unranked, in order) and the names of its refusal reasons."""
    names = REASONS + tuple(maps.hard_names)
    ranked = _rank(
        maps,
        targets,
        rays,
        np.ones(len(targets), dtype=bool),
        maps.constraints,
        skip_pareto=True,
        keep_order=True,
    )
    return [
        (
            replace(ranked.trajectory(k), rank=None),
            tuple(name for r, name in enumerate(names) if reasons[k] & (1 << r)),
        )
        for k in range(len(targets))
    ]


def _point(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    p = np.asarray(value, dtype=np.float64)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise BadInputError(f"{name} must be 3 finite LPS coordinates in mm; got {value!r}.")
    return p


def _tuple(p: npt.ArrayLike) -> tuple[float, float, float]:
    a = np.asarray(p, dtype=float)
    return (float(a[0]), float(a[1]), float(a[2]))


def _fmt(p: npt.ArrayLike) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in np.asarray(p, dtype=float)) + ")"


def _target(maps: RiskMaps, target_lps_mm: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
    """Check the target (or take the lesion's centroid) and return it."""
    if target_lps_mm is None:
        if maps.lesion_centroid_lps_mm is None:
            raise TargetError("give a target point (target_lps_mm) or a lesion mask (lesion).")
        target = maps.lesion_centroid_lps_mm
    else:
        target = _point(target_lps_mm, "target_lps_mm")
    idx = np.floor(maps.lps_to_index(target) + 0.5).astype(int)
    shape = np.asarray(maps.labels.shape)
    if np.any(idx < 0) or np.any(idx >= shape):
        raise TargetError(
            f"target {_fmt(target)} LPS mm lies outside the body's extent in this CT; give a "
            "point inside the patient (LPS mm, as `seldinger info` and the viewer show)."
        )
    label = int(maps.labels[tuple(idx)])
    if not label & int(BIT_BODY):
        raise TargetError(
            f"target {_fmt(target)} LPS mm lies outside the body (in air); give a point "
            "inside the patient."
        )
    inside = [name for name in maps.hard_names if label & maps.hard_bit(name)]
    if inside:
        raise TargetError(
            f"target {_fmt(target)} LPS mm lies inside {', '.join(inside)}, which no needle may "
            "cross; move the target, or plan without that structure as a hard constraint."
        )
    return target


def _march(
    maps: RiskMaps,
    target: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    beyond_mm: float,
    gap_mm: float,
    stop_at_hard: bool,
) -> _Rays:
    """March from the target to each point (extended by ``beyond_mm``) and derive metrics.

    With ``stop_at_hard`` a ray stops at its first hard structure: it is refused for the
    reasons met up to there, its length is NaN, and its pleura angle is not measured (the
    angle is measured for refused rays only without ``stop_at_hard``).
    """
    constraints = maps.constraints
    spacing = maps.spacing_mm
    target = np.broadcast_to(target, points.shape)
    direction = points - target
    dist = np.linalg.norm(direction, axis=1)
    unit = direction / dist[:, None]
    ends_lps = points + beyond_mm * unit
    total = dist + beyond_mm
    starts = np.ascontiguousarray(maps.lps_to_index(target), dtype=np.float64)
    ends = np.ascontiguousarray(maps.lps_to_index(ends_lps), dtype=np.float64)
    hard_mask = np.uint32(sum(maps.hard_bit(name) for name in maps.hard_names))
    (
        blocked,
        t_exit,
        air_gap,
        lung_mm,
        crossings,
        t_pleura,
        emphysema_mm,
        bulla,
        t_lesion,
        min_cmm,
        t_far,
        fissures,
        wall_cmm,
        liver_mm,
    ) = march_rays(
        maps.labels,
        maps.distances_cmm,
        spacing,
        starts,
        ends,
        dist / total,
        gap_mm / total,
        hard_mask,
        BIT_BODY,
        BIT_LUNG_LEFT,
        BIT_LUNG_RIGHT,
        BIT_LESION,
        BIT_EMPHYSEMA,
        BIT_BULLA,
        BIT_LIVER,
        stop_at_hard,
        LOBE_SHIFT,
        maps.distance_names.index("bones") if "bones" in maps.distance_names else -1,
    )
    length = t_exit * total
    entry = target + unit * length[:, None]
    far_mm = t_far * total
    far_lps = target - unit * far_mm[:, None]
    min_mm = min_cmm.astype(np.float64) / 100.0
    min_mm[min_mm >= DISTANCE_CAP_MM] = np.inf
    wall_mm = wall_cmm.astype(np.float64) / 100.0
    wall_mm[wall_mm >= DISTANCE_CAP_MM] = np.inf
    axial = np.degrees(np.arcsin(np.clip(np.abs(unit[:, 2]), 0.0, 1.0)))
    has_pleura = t_pleura >= 0
    depth = np.where(has_pleura, (t_pleura - t_lesion) * total, np.nan)
    # Reasons (bits as in REASONS + hard names).
    names = REASONS + tuple(maps.hard_names)
    reasons = np.zeros(len(points), dtype=np.uint32)
    for name in maps.hard_names:
        hit = (blocked & np.uint32(maps.hard_bit(name))) != 0
        reasons[hit] |= np.uint32(1 << names.index(name))
    reasons[(length + far_mm) > constraints.needle_length_mm] |= np.uint32(
        1 << names.index("too_long")
    )
    reasons[air_gap] |= np.uint32(1 << names.index("outside_body"))
    if "vessels" in maps.distance_names:
        vessel = min_mm[:, maps.distance_names.index("vessels")]
        reasons[vessel < constraints.vessel_distance_mm] |= np.uint32(1 << names.index("vessel"))
    if constraints.table_direction_lps is not None:
        table = np.asarray(constraints.table_direction_lps, dtype=float)
        table /= np.linalg.norm(table)
        toward = unit @ table >= math.cos(math.radians(constraints.table_cone_deg))
        reasons[toward] |= np.uint32(1 << names.index("table_side"))
    if constraints.max_axial_angle_deg is not None:
        reasons[axial > constraints.max_axial_angle_deg + 1e-9] |= np.uint32(
            1 << names.index("axial_angle")
        )
    if constraints.reachable is not None:
        ok = np.asarray(constraints.reachable(entry, np.array(target)), dtype=bool)
        if ok.shape != (len(points),):
            raise BadInputError(
                f"constraints.reachable must return one bool per path ({len(points)}); got "
                f"shape {ok.shape}."
            )
        reasons[~ok] |= np.uint32(1 << names.index("unreachable"))
    # Angle to the pleura at the outermost puncture (for the paths that may be kept).
    pleura = np.full(len(points), np.nan)
    measure = has_pleura & ((reasons == 0) | (not stop_at_hard))
    if measure.any():
        where = starts[measure] + (ends[measure] - starts[measure]) * t_pleura[measure, None]
        normal = _gradient(maps.pleura_field, where) / spacing
        norm = np.linalg.norm(normal, axis=1)
        cosine = np.abs(np.einsum("ij,ij->i", normal, unit[measure])) / np.maximum(norm, 1e-12)
        pleura[measure] = np.where(
            norm > 0, np.degrees(np.arcsin(np.clip(cosine, 0.0, 1.0))), np.nan
        )
    return _Rays(
        entry_lps_mm=entry,
        length_mm=length,
        far_lps_mm=far_lps,
        far_mm=far_mm,
        lung_mm=lung_mm,
        crossings=crossings,
        emphysema_mm=emphysema_mm,
        bulla=bulla,
        min_distance_mm=min_mm,
        axial_deg=axial,
        pleura_deg=pleura,
        depth_mm=depth,
        reasons=reasons,
        fissures=fissures if len(maps.lobes) == len(LOBES) else None,
        rib_margin_mm=wall_mm,
        liver_mm=liver_mm if len(points) and _liver_target(maps, starts[0]) else None,
    )


def _liver_target(maps: RiskMaps, target_index: npt.NDArray[np.float64]) -> bool:
    """Whether the target is a liver lesion (its shell mostly liver) or a point in the liver."""
    if maps.lesion_liver_share is not None:
        return maps.lesion_liver_share >= LIVER_LESION_SHARE
    idx = np.clip(np.rint(target_index).astype(int), 0, np.array(maps.labels.shape) - 1)
    return bool(int(maps.labels[tuple(idx)]) & int(BIT_LIVER))


def _gradient(
    field: npt.NDArray[np.float32], where: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Central-difference gradient (per voxel index) of ``field`` at points (n, 3)."""
    grad = np.empty(where.shape)
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = 1.0
        hi = ndi.map_coordinates(field, (where + step).T, order=1, mode="nearest")
        lo = ndi.map_coordinates(field, (where - step).T, order=1, mode="nearest")
        grad[:, axis] = (hi - lo) / 2.0
    return grad


@dataclass(frozen=True)
class _Ranked:
    """Scores of the safe rays, best first, and what it takes to build their Trajectories."""

    rays: _Rays
    rays_index: npt.NDArray[np.intp]  # ray of each ranked path, best first
    score: npt.NDArray[np.float64]  # sorted
    terms: dict[str, npt.NDArray[np.float64]]  # sorted like score
    pareto: npt.NDArray[np.bool_]
    dual: npt.NDArray[np.bool_] | None
    target: npt.NDArray[np.float64]  # (3,) or one per ray (n, 3)
    distance_names: tuple[str, ...]
    has_lesion: bool

    def __len__(self) -> int:
        return int(self.rays_index.size)

    def trajectory(self, k: int) -> Trajectory:
        """The path ranked ``k + 1``."""
        rays, r = self.rays, int(self.rays_index[k])
        pleura = float(rays.pleura_deg[r])
        depth = float(rays.depth_mm[r])
        return Trajectory(
            entry_lps_mm=_tuple(rays.entry_lps_mm[r]),
            target_lps_mm=_tuple(self.target[r] if self.target.ndim == 2 else self.target),
            length_mm=float(rays.length_mm[r]),
            lung_length_mm=float(rays.lung_mm[r]),
            pleural_crossings=int(rays.crossings[r]),
            emphysema_length_mm=float(rays.emphysema_mm[r]),
            crosses_bulla=bool(rays.bulla[r]),
            min_distance_mm={
                name: float(rays.min_distance_mm[r, m])
                for m, name in enumerate(self.distance_names)
            },
            axial_angle_deg=float(rays.axial_deg[r]),
            fissure_crossings=None if rays.fissures is None else int(rays.fissures[r]),
            rib_margin_mm=float(rays.rib_margin_mm[r]),
            liver_parenchyma_mm=None if rays.liver_mm is None else float(rays.liver_mm[r]),
            pleura_angle_deg=None if math.isnan(pleura) else pleura,
            target_depth_mm=None if math.isnan(depth) else depth,
            far_side_lps_mm=_tuple(rays.far_lps_mm[r]) if self.has_lesion else None,
            depth_to_far_side_mm=float(rays.length_mm[r] + rays.far_mm[r]),
            risk_score=float(self.score[k]),
            risk_terms={name: float(v[k]) for name, v in self.terms.items()},
            safe=True,
            pareto=bool(self.pareto[k]),
            dual_use=None if self.dual is None else bool(self.dual[k]),
            rank=k + 1,
        )


def _rank(
    maps: RiskMaps,
    target: npt.NDArray[np.float64],
    rays: _Rays,
    safe: npt.NDArray[np.bool_],
    constraints: TrajectoryConstraints,
    skip_pareto: bool = False,
    keep_order: bool = False,
) -> _Ranked:
    """Score the safe rays, flag the Pareto set, and order them best first (or keep it)."""
    idx = np.flatnonzero(safe)
    vessel = (
        rays.min_distance_mm[idx, maps.distance_names.index("vessels")]
        if "vessels" in maps.distance_names
        else np.full(idx.size, np.inf)
    )
    terms = risk_terms(
        rays.length_mm[idx],
        rays.lung_mm[idx],
        rays.crossings[idx],
        rays.depth_mm[idx],
        rays.emphysema_mm[idx],
        rays.bulla[idx],
        rays.pleura_deg[idx],
        vessel,
        constraints.vessel_distance_mm,
        fissure_crossings=None if rays.fissures is None else rays.fissures[idx],
        rib_margin_mm=rays.rib_margin_mm[idx],
        liver_mm=None if rays.liver_mm is None else rays.liver_mm[idx],
    )
    score = np.sum(np.stack(list(terms.values())), axis=0)
    if skip_pareto:
        pareto = np.zeros(idx.size, dtype=bool)
    else:
        objectives = np.column_stack(
            [
                rays.length_mm[idx],
                rays.lung_mm[idx],
                rays.crossings[idx],
                rays.emphysema_mm[idx],
                rays.bulla[idx],
                -np.minimum(vessel, _PARETO_VESSEL_CAP_MM),
                90.0 - np.nan_to_num(rays.pleura_deg[idx], nan=90.0),
                np.zeros(idx.size) if rays.fissures is None else rays.fissures[idx],
                -np.minimum(rays.rib_margin_mm[idx], _PARETO_VESSEL_CAP_MM),
                np.zeros(idx.size)
                if rays.liver_mm is None
                else -np.minimum(rays.liver_mm[idx], LIVER_PARENCHYMA_MM),
            ]
        )
        pareto = pareto_front(objectives)
    dual: npt.NDArray[np.bool_] | None = None
    if constraints.ablation_probe_length_mm is not None:
        reach = rays.length_mm[idx] + rays.far_mm[idx]
        dual = (reach <= constraints.ablation_probe_length_mm) & (
            vessel >= constraints.ablation_vessel_distance_mm
        )
    order = np.arange(score.size) if keep_order else np.argsort(score, kind="stable")
    return _Ranked(
        rays=rays,
        rays_index=idx[order],
        score=score[order],
        terms={k: v[order] for k, v in terms.items()},
        pareto=pareto[order],
        dual=None if dual is None else dual[order],
        target=target,
        distance_names=maps.distance_names,
        has_lesion=bool(np.any(rays.far_mm[idx] > 0)),
    )
