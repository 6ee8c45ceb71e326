"""Inverse planning of a permanent I-125 seed implant along safe needle paths.

1. Planning target (PTV) = lesion + margin; sample points: the PTV's voxel centres (a
   regular subset when there are many) and a shell of normal tissue 2-10 mm outside it.
2. Needles. ``coplanar``: all parallel to the best safe direction of the trajectory
   planner (a 3D-printed coplanar template), on a square grid of :data:`TEMPLATE_PITCH_MM`
   in the template plane covering the PTV's projection; ``free``: the distinct safe
   directions, each needle aimed through a PTV point. Every needle's path from the skin to
   its deepest seed passes the trajectory planner's hard constraints.
3. Candidate seed positions every :data:`SEED_STEP_MM` along each needle inside the PTV.
4. Dose per unit strength from each candidate to every sample point (TG-43, 2-D line
   source, each seed along its needle; permanent implant: D = Ḋ0·τ).
5. For each candidate strength (one thread each): a greedy loading meeting V100 and D90
   within the organ limits, then simulated annealing of the loading
   (:mod:`seldinger.planning.seeds.loading`) against a cost in which the dose goals come
   first (V100, D90, organ limits effectively hard; V150 above its limit next), then the
   numbers of seeds and needles, then homogeneity and conformity. The lowest cost wins.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, InfeasiblePlanError
from seldinger.imaging import Volume
from seldinger.physics.tg43 import (
    SeedData,
    dose_rate_cgy_per_h,
    dose_rate_matrix_per_u,
    mci_to_u,
    total_dose_gy,
    u_to_mci,
)
from seldinger.plan import (
    SeedDoseMetrics,
    SeedGoalsRecord,
    SeedNeedleRecord,
    SeedSection,
    TrajectoryRules,
)
from seldinger.planning.seeds.dvh import implant_indices
from seldinger.planning.seeds.loading import anneal_loading, greedy_loading, loading_cost
from seldinger.planning.target import expand_target
from seldinger.planning.trajectory import (
    NoSafePathError,
    RiskMaps,
    TargetError,
    paths_along,
    plan_trajectories,
)

__all__ = [
    "SEED_STEP_MM",
    "STRENGTHS_MCI",
    "TEMPLATE_PITCH_MM",
    "SeedGoals",
    "SeedNeedle",
    "SeedPlan",
    "SeedPlanError",
    "plan_seeds",
]

#: Hole pitch of a coplanar template (5 mm, as in Wang et al., J Cancer Res Ther 2019).
TEMPLATE_PITCH_MM = 5.0
#: Seed positions along a needle (a 4.5 mm seed and its spacer).
SEED_STEP_MM = 5.0
#: Strengths tried (mCi per seed; 0.4-0.8 mCi is the usual range, physics.md §1.6).
STRENGTHS_MCI: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8)
_MAX_PTV_POINTS = 30000
_MAX_SHELL_POINTS = 3000
_SHELL_MM = (2.0, 10.0)
_FREE_DIRECTIONS = 12
_COPLANAR_DIRECTIONS = 12
#: Largest candidate set of a free template (the dose matrix is candidates x points).
_MAX_CANDIDATES = 1200


class SeedPlanError(InfeasiblePlanError):
    """No loading meets the goals; the message says what fell short and what to change."""


@dataclass(frozen=True)
class SeedGoals:
    """Dose goals of the plan (defaults: physics.md §1.6 and common lung practice)."""

    prescription_gy: float = 120.0
    v100_min_percent: float = 95.0
    v150_max_percent: float = 60.0
    d90_min_fraction: float = 1.0  # D90 >= this x PD
    #: Organs at risk: name -> largest dose (Gy) any of its points may receive (D_max).
    oar_max_gy: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SeedNeedle:
    """One needle: its entry on the skin, direction, and the seeds it leaves (deepest first)."""

    entry_lps_mm: tuple[float, float, float]
    direction_lps: tuple[float, float, float]
    seeds_lps_mm: tuple[tuple[float, float, float], ...]
    template_hole_mm: tuple[float, float] | None  # (u, v) in the template plane (coplanar)

    @property
    def depths_mm(self) -> tuple[float, ...]:
        """Depth of each seed below the skin entry, along the needle."""
        e = np.asarray(self.entry_lps_mm)
        return tuple(float(np.linalg.norm(np.asarray(s) - e)) for s in self.seeds_lps_mm)

    def to_record(self) -> SeedNeedleRecord:
        """The plan's record of this needle (mm to 0.01, depths to 0.1 mm)."""
        return SeedNeedleRecord(
            entry_lps_mm=_rounded(self.entry_lps_mm, 2),
            direction_lps=_rounded(self.direction_lps, 6),
            seeds_lps_mm=[_rounded(s, 2) for s in self.seeds_lps_mm],
            depths_mm=[round(d, 1) for d in self.depths_mm],
            template_hole_mm=None
            if self.template_hole_mm is None
            else (round(self.template_hole_mm[0], 1), round(self.template_hole_mm[1], 1)),
        )


def _rounded(point: Sequence[float], digits: int) -> tuple[float, float, float]:
    return (
        round(float(point[0]), digits),
        round(float(point[1]), digits),
        round(float(point[2]), digits),
    )


@dataclass(frozen=True)
class SeedPlan:
    """The loaded needles, seed strength and the plan's dose metrics."""

    needles: tuple[SeedNeedle, ...]
    strength_u: float
    seed_model: str
    template: str
    metrics: dict[str, float]
    goals: SeedGoals
    margin_mm: float
    n_candidates: int
    template_frame: npt.NDArray[np.float64] | None = None  # rows: origin, x, y, needle axis
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def seeds_lps_mm(self) -> npt.NDArray[np.float64]:
        """All seed positions (n, 3)."""
        return np.array([s for n in self.needles for s in n.seeds_lps_mm]).reshape(-1, 3)

    @property
    def axes_lps(self) -> npt.NDArray[np.float64]:
        """Each seed's axis (its needle's direction), (n, 3)."""
        return np.array([n.direction_lps for n in self.needles for _ in n.seeds_lps_mm]).reshape(
            -1, 3
        )

    @property
    def n_seeds(self) -> int:
        """Number of seeds."""
        return sum(len(n.seeds_lps_mm) for n in self.needles)

    def to_section(
        self, target: str, seed_data: str, rules: TrajectoryRules | None = None
    ) -> SeedSection:
        """The plan's seed section.

        Parameters
        ----------
        target : str
            Name of the plan target implanted.
        seed_data : str
            The TG-43 data used: a built-in model name or the JSON file's path.
        rules : TrajectoryRules, optional
            Path rules the needles obeyed.
        """
        metrics = {k: round(float(v), 3) for k, v in self.metrics.items()}
        organs = {k.removesuffix("_max_gy"): v for k, v in metrics.items() if k.endswith("_max_gy")}
        core = {k: v for k, v in metrics.items() if not k.endswith("_max_gy")}
        goals = self.goals
        return SeedSection(
            target=target,
            seed_data=seed_data,
            seed_model=self.seed_model,
            template=self.template,  # type: ignore[arg-type]
            strength_u=round(self.strength_u, 4),
            strength_mci=round(u_to_mci(self.strength_u), 4),
            goals=SeedGoalsRecord(
                prescription_gy=goals.prescription_gy,
                v100_min_percent=goals.v100_min_percent,
                v150_max_percent=goals.v150_max_percent,
                d90_min_fraction=goals.d90_min_fraction,
                oar_max_gy=dict(goals.oar_max_gy),
            ),
            margin_mm=self.margin_mm,
            rules=rules,
            needles=[n.to_record() for n in self.needles],
            metrics=SeedDoseMetrics(**core, organ_max_gy=organs),
            template_frame_lps=None
            if self.template_frame is None
            else [_rounded(row, 6) for row in self.template_frame],
            n_candidates=self.n_candidates,
            notes=list(self.notes),
            seconds={k: round(v, 3) for k, v in self.seconds.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the seed section with the target and data left blank."""
        return self.to_section("lesion", self.seed_model).model_dump(
            mode="json", exclude={"target", "seed_data"}
        )


def plan_seeds(
    maps: RiskMaps,
    lesion: Volume,
    seed_data: SeedData,
    margin_mm: float = 5.0,
    goals: SeedGoals | None = None,
    template: str = "coplanar",
    strengths_mci: Sequence[float] = STRENGTHS_MCI,
    organs: Mapping[str, Volume] | None = None,
    anneal_iterations: int = 60_000,
) -> SeedPlan:
    """Choose needles, seed positions and one seed strength meeting the dose goals.

    Parameters
    ----------
    maps : RiskMaps
        Trajectory maps built with the lesion (paths may enter it); their hard constraints
        and needle length apply to every needle.
    lesion : Volume
        Target mask on the CT grid.
    seed_data : SeedData
        TG-43 data of the seed model (:func:`seldinger.physics.tg43.load_seed_data`).
    margin_mm : float
        PTV margin around the lesion.
    goals : SeedGoals, optional
        Prescription and DVH goals.
    template : {"coplanar", "free"}
        Parallel needles through a template grid, or individually angled needles.
    strengths_mci : sequence of float
        Seed strengths to try (mCi; 1 mCi = 1.270 U).
    organs : mapping of str to Volume, optional
        Organ-at-risk masks (CT grid) named in ``goals.oar_max_gy``: no loaded seed may
        push any of their voxels (within 30 mm of the PTV) above its limit; the plan
        reports each organ's maximum dose.

    Raises
    ------
    SeedPlanError
        No needle reaches the PTV safely, or no loading meets the goals.
    """
    goals = goals or SeedGoals()
    if template not in ("coplanar", "free"):
        raise BadInputError(f"template must be 'coplanar' or 'free'; got {template!r}.")
    if not 0 <= margin_mm <= 20:
        raise BadInputError(f"margin_mm must lie in [0, 20] mm; got {margin_mm}.")
    if not strengths_mci or any(not s > 0 for s in strengths_mci):
        raise BadInputError(f"strengths_mci must be positive mCi values; got {strengths_mci}.")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    target = expand_target(lesion, margin_mm, pad_mm=_SHELL_MM[1] + 5.0)
    crop, dist, ptv = target.lesion, target.distance_mm, target.ptv
    shell = target.shell(*_SHELL_MM)
    rng = np.random.default_rng(0)
    ptv_pts = _subset(crop.index_to_lps(np.argwhere(ptv)), _MAX_PTV_POINTS, rng)
    shell_pts = _subset(crop.index_to_lps(np.argwhere(shell)), _MAX_SHELL_POINTS, rng)
    seconds["target"] = time.perf_counter() - clock

    clock = time.perf_counter()
    needles, frame = _needles(maps, crop, ptv, template)
    if not needles:
        raise SeedPlanError(
            "no needle reaches the PTV on a safe path (trajectory planner's hard constraints); "
            "check the target, the needle length or try --template free."
        )
    cand_pos, cand_axis, cand_needle = [], [], []
    for k, (entry, u, _) in enumerate(needles):
        ts = np.arange(0.0, 400.0, SEED_STEP_MM)
        line = entry[None, :] + ts[:, None] * u[None, :]
        inside = _inside(crop, ptv, line)
        for p in line[inside]:
            cand_pos.append(p)
            cand_axis.append(u)
            cand_needle.append(k)
    if not cand_pos:
        raise SeedPlanError("no candidate seed position lies inside the PTV along the needles.")
    pos = np.array(cand_pos)
    axis = np.array(cand_axis)
    owner = np.array(cand_needle, dtype=np.int64)
    if template == "free" and len(pos) > _MAX_CANDIDATES:
        # Many directions over a large PTV: every k-th needle (needles are listed direction
        # by direction, so each direction keeps its share), to bound the dose matrix.
        step = math.ceil(len(pos) / _MAX_CANDIDATES)
        keep = owner % step == 0
        pos, axis = pos[keep], axis[keep]
        kept, inverse = np.unique(owner[keep], return_inverse=True)
        owner = inverse.astype(np.int64)
        needles = [needles[int(k)] for k in kept]
    seconds["needles"] = time.perf_counter() - clock

    clock = time.perf_counter()
    oar_pts, oar_owner, oar_names = _organ_points(crop, organs or {}, goals, dist, margin_mm)
    # Permanent-implant dose (Gy) per U of each candidate alone: (candidates, points).
    gy_per_u = float(total_dose_gy(1.0, seed_data))  # Gy per (cGy/h of initial rate)
    per_ptv, per_shell, per_oar = (
        _matrix(p, pos, axis, seed_data, gy_per_u) for p in (ptv_pts, shell_pts, oar_pts)
    )
    seconds["dose_matrix"] = time.perf_counter() - clock

    clock = time.perf_counter()
    oar_limits = np.array([goals.oar_max_gy[oar_names[o]] for o in oar_owner])
    v100_aim = min(goals.v100_min_percent + _V100_SAFETY_PERCENT, 100.0)
    v150_aim = max(goals.v150_max_percent - _V150_SAFETY_PERCENT, 0.0)

    def optimise(s_mci: float) -> tuple[float, float, list[int]] | None:
        """Greedy start then annealing, for one seed strength. The matrices stay per U;
        the dose thresholds are divided by the strength instead (no copies)."""
        s_u = float(mci_to_u(s_mci))
        rx_per_u = goals.prescription_gy / s_u
        limits_per_u = oar_limits / s_u
        start = greedy_loading(
            per_ptv, per_oar, limits_per_u, owner, rx_per_u, goals.d90_min_fraction, v100_aim
        )
        if start is None:
            return None
        args = (per_ptv, per_shell, per_oar, limits_per_u, owner)
        dvh = (rx_per_u, goals.d90_min_fraction, v100_aim, v150_aim)
        loading, cost = start, loading_cost(start, *args, *dvh)
        if anneal_iterations > 0:
            annealed = anneal_loading(start, *args, pos, *dvh, iterations=anneal_iterations)
            annealed_cost = loading_cost(annealed, *args, *dvh)
            if annealed_cost <= cost:
                loading, cost = annealed, annealed_cost
        return cost, s_u, [int(j) for j in np.flatnonzero(loading)]

    # One strength per thread: the annealing kernel releases the GIL.
    with ThreadPoolExecutor(max_workers=min(len(strengths_mci), os.cpu_count() or 1)) as pool:
        results = [r for r in pool.map(optimise, strengths_mci) if r is not None]
    # The lowest cost wins: goals first (V100/D90/organs hard, then V150), then fewer
    # seeds and needles; ties go to the weaker strength (listed first).
    best = min(results, key=lambda r: r[0]) if results else None
    seconds["optimise"] = time.perf_counter() - clock
    if best is None:
        raise SeedPlanError(
            f"no loading of the {len(pos)} candidate positions reaches D90 >= "
            f"{goals.d90_min_fraction * goals.prescription_gy:.0f} Gy and V100 >= "
            f"{goals.v100_min_percent:.0f} % with seeds of {min(strengths_mci)}-"
            f"{max(strengths_mci)} mCi; allow stronger seeds, a smaller margin, or free "
            "(non-coplanar) needles."
        )
    _, s_u, loaded = best

    clock = time.perf_counter()
    grid_pts = crop.index_to_lps(np.argwhere(np.ones(crop.shape, dtype=bool)))
    grid_dose = total_dose_gy(
        dose_rate_cgy_per_h(grid_pts, pos[loaded], axis[loaded], s_u, seed_data, "2d"), seed_data
    ).reshape(crop.shape)
    metrics = implant_indices(grid_dose, ptv, goals.prescription_gy)
    metrics["ptv_volume_ml"] = target.ptv_volume_ml
    if len(oar_pts):
        oar_dose = per_oar[loaded].sum(axis=0, dtype=np.float64) * s_u
        for o, name in enumerate(oar_names):
            mine = oar_dose[oar_owner == o]
            metrics[f"{name}_max_gy"] = float(mine.max()) if mine.size else 0.0
    seconds["evaluate"] = time.perf_counter() - clock
    notes = []
    if metrics["v150_percent"] > goals.v150_max_percent:
        notes.append(
            f"V150 {metrics['v150_percent']:.0f} % exceeds the {goals.v150_max_percent:.0f} % "
            "goal (no loading of the candidates met it); a finer needle grid or a free "
            "template may spread the dose."
        )
    for name, value in (("d90_gy", goals.d90_min_fraction * goals.prescription_gy),):
        if metrics[name] < value:
            notes.append(
                f"on the full grid D90 is {metrics[name]:.1f} Gy, below {value:.0f} Gy (the "
                "loading met it on the sample points)."
            )
    if metrics["v100_percent"] < goals.v100_min_percent:
        notes.append(
            f"on the full grid V100 is {metrics['v100_percent']:.1f} %, below the "
            f"{goals.v100_min_percent:.0f} % goal (met on the sample points)."
        )
    out_needles = []
    for k in sorted(set(owner[loaded].tolist())):
        entry, u, hole = needles[k]
        mine = [int(j) for j in loaded if owner[j] == k]
        mine.sort(key=lambda j: -float(np.dot(pos[j] - entry, u)))  # deepest first
        out_needles.append(
            SeedNeedle(
                entry_lps_mm=_t(entry),
                direction_lps=_t(u),
                seeds_lps_mm=tuple(_t(pos[j]) for j in mine),
                template_hole_mm=hole,
            )
        )
    return SeedPlan(
        needles=tuple(out_needles),
        strength_u=s_u,
        seed_model=seed_data.name,
        template=template,
        metrics=metrics,
        goals=goals,
        margin_mm=margin_mm,
        n_candidates=len(pos),
        template_frame=frame,
        notes=tuple(notes),
        seconds=seconds,
    )


#: Organ points farther than this from the PTV are not constrained (dose there is small).
_ORGAN_REACH_MM = 30.0
#: The loading aims this much above the V100 goal and below the V150 limit on the sample
#: points, so that the full grid (evaluated after) keeps the goals.
_V100_SAFETY_PERCENT = 1.0
_V150_SAFETY_PERCENT = 1.0
_MAX_ORGAN_POINTS = 4000


def _organ_points(
    crop: Volume,
    organs: Mapping[str, Volume],
    goals: SeedGoals,
    dist: npt.NDArray[np.float64],
    margin_mm: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp], list[str]]:
    """LPS points of the limited organs near the PTV, the organ of each, and their names."""
    missing = [name for name in goals.oar_max_gy if name not in organs]
    if missing:
        raise BadInputError(
            f"dose limits given for {', '.join(missing)} but no mask: pass them in organs= "
            "(CLI: the plan's structures)."
        )
    names = list(goals.oar_max_gy)
    pts, owner = [], []
    near = dist <= margin_mm + _ORGAN_REACH_MM
    rng = np.random.default_rng(1)
    for o, name in enumerate(names):
        mask = organs[name]
        ijk = np.argwhere(near)
        lps = crop.index_to_lps(ijk)
        idx = np.rint(mask.lps_to_index(lps)).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(mask.shape)), axis=1)
        inside = np.zeros(len(lps), dtype=bool)
        inside[ok] = np.asarray(mask.array, dtype=bool)[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
        chosen = _subset(lps[inside], _MAX_ORGAN_POINTS, rng)
        pts.append(chosen)
        owner.extend([o] * len(chosen))
    if not pts:
        return np.zeros((0, 3)), np.zeros(0, dtype=np.intp), names
    return np.vstack(pts), np.asarray(owner, dtype=np.intp), names


def _t(p: npt.ArrayLike) -> tuple[float, float, float]:
    a = np.asarray(p, dtype=float)
    return (float(a[0]), float(a[1]), float(a[2]))


def _subset(
    points: npt.NDArray[np.float64], n: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    if len(points) <= n:
        return points
    # Systematic sampling (every k-th point in raster order, random start): an even spread
    # through the volume, so DVH counts on the subset track the full grid closely.
    step = len(points) / n
    start = float(rng.uniform(0.0, step))
    return points[(start + step * np.arange(n)).astype(np.intp)]


def _inside(
    crop: Volume, mask: npt.NDArray[np.bool_], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    idx = np.rint(crop.lps_to_index(points)).astype(int)
    ok = np.all((idx >= 0) & (idx < np.array(mask.shape)), axis=1)
    out = np.zeros(len(points), dtype=bool)
    out[ok] = mask[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return out


def _matrix(
    points: npt.NDArray[np.float64],
    seeds: npt.NDArray[np.float64],
    axes: npt.NDArray[np.float64],
    data: SeedData,
    gy_per_u: float,
) -> npt.NDArray[np.float32]:
    """Permanent-implant dose (Gy) per U at each point from each seed alone, (m, n_points)."""
    out = dose_rate_matrix_per_u(points.reshape(-1, 3), seeds, axes, data, "2d")
    out *= np.float32(gy_per_u)
    return out


def _needles(
    maps: RiskMaps, crop: Volume, ptv: npt.NDArray[np.bool_], template: str
) -> tuple[
    list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], tuple[float, float] | None]],
    npt.NDArray[np.float64] | None,
]:
    """Safe needles (entry, unit direction entry -> target, template hole (x, y) or None)
    and, for a coplanar template, its frame: rows origin (PTV centroid), x, y, needle axis."""
    pts = crop.index_to_lps(np.argwhere(ptv))
    centroid = pts.mean(axis=0)
    try:
        search = plan_trajectories(maps, centroid)
    except (NoSafePathError, TargetError) as err:
        raise SeedPlanError(f"no safe needle path to the PTV centre: {err}") from err
    # Coplanar: of the best safe directions, the one whose template reaches most of the PTV
    # through safe holes (ribs shadow many holes of some directions). Free: all of them.
    per_direction: list[
        tuple[
            int,
            list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], tuple[float, float]]],
            npt.NDArray[np.float64],
        ]
    ] = []
    for path in search.top(_FREE_DIRECTIONS if template == "free" else _COPLANAR_DIRECTIONS):
        u = centroid - np.asarray(path.entry_lps_mm)
        u /= np.linalg.norm(u)
        # Template plane: two unit vectors across the needle.
        a = np.cross(u, [0.0, 0.0, 1.0])
        if np.linalg.norm(a) < 1e-6:
            a = np.cross(u, [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        b = np.cross(u, a)
        rel = pts - centroid
        pu, pv = rel @ a, rel @ b
        depth = rel @ u
        holes = [
            (x, y)
            for x in np.arange(
                np.floor(pu.min() / TEMPLATE_PITCH_MM), np.ceil(pu.max() / TEMPLATE_PITCH_MM) + 1
            )
            * TEMPLATE_PITCH_MM
            for y in np.arange(
                np.floor(pv.min() / TEMPLATE_PITCH_MM), np.ceil(pv.max() / TEMPLATE_PITCH_MM) + 1
            )
            * TEMPLATE_PITCH_MM
        ]
        deepest = centroid + float(depth.max()) * u
        targets = np.array([deepest + x * a + y * b for x, y in holes])
        paths = paths_along(maps, targets, np.repeat(u[None, :], len(targets), axis=0))
        safe = [
            (np.asarray(p.entry_lps_mm, dtype=np.float64), u, (float(x), float(y)))
            for (x, y), p in zip(holes, paths, strict=True)
            if p.safe
        ]
        # PTV voxels within half a pitch of a safe needle: what this template can reach.
        reach = np.zeros(len(pts), dtype=bool)
        for _, _, (x, y) in safe:
            reach |= (np.abs(pu - x) <= TEMPLATE_PITCH_MM / 2) & (
                np.abs(pv - y) <= TEMPLATE_PITCH_MM / 2
            )
        per_direction.append((int(reach.sum()), safe, np.array([centroid, a, b, u])))
    if not per_direction:
        return [], None
    if template == "free":
        return [(e, v, None) for _, safe, _ in per_direction for e, v, _ in safe], None
    reach_max = max(r for r, _, _ in per_direction)
    _, chosen, frame = next(d for d in per_direction if d[0] == reach_max)
    return [(e, v, hole) for e, v, hole in chosen], frame
