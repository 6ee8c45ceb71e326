"""Ablation probe placement: fewest applicators whose zones cover the tumour and its margin.

The problem (Ren et al., IEEE JBHI 2014;18:920, ../shared/reference/navigation.md §3.2: a
set cover with the number of ablations first and healthy tissue second):

1. Target = the lesion and every voxel within ``margin_mm`` of it (planning target).
2. Candidate zone centres: the lesion's centroid and a 5 mm grid of points inside it.
3. Approach directions: those of the distinct safe paths to the centroid
   (:func:`~seldinger.planning.trajectory.plan_trajectories` on prebuilt maps). For each
   centre and direction the applicator's tip goes where the device's zone is centred on
   that point (the zone centre lies ``centre_offset_mm`` from the tip along the needle),
   and the path from the skin to that tip — and to each probe tip of a cryo or IRE
   cluster, parallel to it — must itself pass every hard constraint
   (:func:`~seldinger.planning.trajectory.paths_along`, one march for all) and be within
   the applicator's usable length.
4. Each candidate's zone (an ellipsoid, :mod:`seldinger.physics.ablation`) is tested
   against the target's voxel centres and the critical structures (no critical voxel may
   lie in a zone) by :mod:`~seldinger.planning.ablation.kernel`: the points sorted into
   4 mm cells, each zone visiting the cells of its bounding box, so the work grows with
   the zone's volume and only a count per candidate is kept (no candidate x point
   matrix: a 5 cm lesion has ~10^4 candidates and ~10^5 target points).
5. A bound first: no ``k`` applicators cover more than the ``k`` largest single
   coverages added up; when that falls short of ``coverage_goal`` with ``max_probes``,
   the plan is refused at once, and the message says whether the cap of
   :data:`MAX_PROBES` could help. Then an exhaustive search over sets of 1, 2, …
   ``max_probes`` candidates among the best (sizes the bound rules out are skipped;
   bit-packed coverage, drawn for the pool alone: one OR and one population count per
   set): the first size that covers >= ``coverage_goal`` of the target wins; among
   those, the least healthy tissue (a 2 mm grid of the neighbourhood, in steps of
   0.5 mL), then the most of a 3 mm shell beyond the margin (zones centred on the
   tumour: a larger minimal margin), then the lowest summed path risk. Multi-applicator
   sets keep the spacing rules of their modality (IRE 10-25 mm and near-parallel within
   10°; cryo 15-20 mm).

Written here rather than taken from a library: the coverage tests are ellipsoid
membership of 10^4-10^5 points, counted per zone in a small Numba kernel, and the set
search is over at most a few thousand bit vectors, which NumPy does directly; an
integer-programming solver would add a dependency for no gain at these sizes.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, InfeasiblePlanError
from seldinger.imaging import Volume
from seldinger.physics.ablation import (
    Device,
    Ellipsoid,
    Modality,
    Setting,
    probe_tips_lps_mm,
    zone_ellipsoid,
    zone_mask,
)
from seldinger.plan import ApplicatorRecord
from seldinger.planning.ablation.kernel import (
    PointCells,
    Zones,
    zone_any,
    zone_counts,
    zone_members,
)
from seldinger.planning.target import expand_target
from seldinger.planning.trajectory import (
    NoSafePathError,
    RiskMaps,
    TargetError,
    Trajectory,
    paths_along,
    plan_trajectories,
)

__all__ = [
    "DEFAULT_CRITICAL",
    "MAX_PROBES",
    "SPACING_RULES",
    "Applicator",
    "PlacementError",
    "PlacementResult",
    "applicator_at",
    "place_applicators",
]

logger = logging.getLogger(__name__)

#: Structures no ablation zone may include (names in the anatomy / RiskMaps).
DEFAULT_CRITICAL: tuple[str, ...] = ("mediastinum", "central_airways")
#: Spacing between the probes of different applicators of one plan, by modality:
#: (min mm, max mm, max angle between probes in degrees or None). IRE: 1.0-2.5 cm and
#: near-parallel (NanoKnife practice, physics.md §3.1); cryo: 1.5-2 cm (Littrup 2009).
SPACING_RULES: dict[Modality, tuple[float, float, float | None]] = {
    Modality.IRE: (10.0, 25.0, 10.0),
    Modality.CRYO: (15.0, 20.0, None),
}
#: Most applicators one placement considers (``max_probes``; the CLI's --max-probes cap).
MAX_PROBES = 4
#: Applicators of other modalities keep their tips at least this far apart.
_MIN_TIP_SEPARATION_MM = 5.0
#: Grid step of the candidate zone centres inside the target, and of the healthy-tissue
#: sample grid.
_CENTRE_STEP_MM = 5.0
_HEALTHY_STEP_MM = 2.0
#: Healthy volumes closer than this count as equal (then the margin shell decides).
_HEALTHY_TIE_ML = 0.5
#: Width of the shell beyond the margin whose coverage breaks ties (a larger margin).
_SHELL_MM = 3.0
#: Approach directions tried (distinct safe paths to the centroid, entries >= 10 mm apart).
_DIRECTIONS = 12
#: Candidates kept (best single coverage first) for the 2- and 3-applicator searches.
_POOL = {2: 80, 3: 30}
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


class PlacementError(InfeasiblePlanError):
    """No placement meets the goal; the message says what fell short and what to change."""


@dataclass(frozen=True)
class Applicator:
    """One applicator (a single probe, or a cryo/IRE cluster of parallel probes)."""

    device: str
    setting: str
    tip_lps_mm: tuple[float, float, float]
    direction_lps: tuple[float, float, float]  # unit, entry -> tip
    entry_lps_mm: tuple[float, float, float]
    zone: Ellipsoid
    probes_tip_lps_mm: tuple[tuple[float, float, float], ...]
    probes_entry_lps_mm: tuple[tuple[float, float, float], ...]
    path: Trajectory  # the (central) probe's path metrics
    coverage_percent: float  # of the planning target, this applicator alone

    def to_record(self) -> ApplicatorRecord:
        """The plan's record of this applicator (mm to 0.01, directions to 1e-4)."""

        def pt(p: npt.ArrayLike) -> tuple[float, float, float]:
            x, y, z = (round(float(v), 2) for v in np.asarray(p, dtype=float))
            return (x, y, z)

        direction = np.asarray(self.direction_lps, dtype=float)
        direction = direction / np.linalg.norm(direction)
        return ApplicatorRecord(
            device=self.device,
            setting=self.setting,
            tip_lps_mm=pt(self.tip_lps_mm),
            direction_lps=(
                round(float(direction[0]), 6),
                round(float(direction[1]), 6),
                round(float(direction[2]), 6),
            ),
            entry_lps_mm=pt(self.entry_lps_mm),
            insertion_depth_mm=round(
                float(np.linalg.norm(np.subtract(self.tip_lps_mm, self.entry_lps_mm))), 2
            ),
            zone_centre_lps_mm=pt(self.zone.centre_lps_mm),
            zone_radii_mm=pt(self.zone.radii_mm),
            zone_axes_lps=tuple(  # type: ignore[arg-type]
                tuple(round(float(v), 6) for v in row) for row in np.asarray(self.zone.axes)
            ),
            zone_volume_ml=round(float(self.zone.volume_ml), 2),
            probes_tip_lps_mm=[pt(p) for p in self.probes_tip_lps_mm],
            probes_entry_lps_mm=[pt(p) for p in self.probes_entry_lps_mm],
            coverage_percent_alone=round(self.coverage_percent, 2),
            path=self.path.to_record(),
        )


@dataclass(frozen=True)
class PlacementResult:
    """The chosen applicators and what they achieve."""

    applicators: tuple[Applicator, ...]
    margin_mm: float
    target_coverage_percent: float  # of lesion + margin (planning target)
    lesion_coverage_percent: float
    healthy_ablated_ml: float  # zone volume outside the lesion
    zone_volume_ml: float
    n_candidates: int
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def zone(self, reference: Volume) -> Volume:
        """The union of the zones as a bool mask on ``reference``'s grid."""
        return zone_mask(reference, [a.zone for a in self.applicators])


@dataclass
class _Candidates:
    """Candidate applicators as arrays, one row each; :meth:`applicator` builds the object.

    Candidate ``i`` has its tip (on the cluster axis) at ``tips[i]``, comes along
    ``units[i]`` with setting ``settings[setting[i]]``, has the zone ``zones`` row ``i``
    and the probe paths ``paths[starts[i]:starts[i + 1]]``; ``covered[i]`` target points
    lie in its zone. No candidate x sample-point matrix is kept: membership is counted by
    :mod:`seldinger.planning.ablation.kernel` and drawn only for the few sets searched.
    """

    device: Device
    settings: list[Setting]
    n_target: int
    setting: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    tips: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    units: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    zones: Zones = field(
        default_factory=lambda: Zones(
            np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros((0, 3, 3)), np.zeros((0, 3))
        )
    )
    paths: list[Trajectory] = field(default_factory=list)
    starts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, np.int64))
    risk: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    covered: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    _built: dict[int, Applicator] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tips)

    def probe_tips(self, i: int) -> npt.NDArray[np.float64]:
        """Tips of candidate ``i``'s probes (its paths' targets), LPS mm, shape (n, 3)."""
        return np.array([p.target_lps_mm for p in self.paths[self.starts[i] : self.starts[i + 1]]])

    def applicator(self, i: int) -> Applicator:
        """Candidate ``i`` as an :class:`Applicator` (built once)."""
        if i not in self._built:
            setting = self.settings[int(self.setting[i])]
            tip, u = self.tips[i], self.units[i]
            mine = self.paths[self.starts[i] : self.starts[i + 1]]
            self._built[i] = _applicator_on(
                self.device.name,
                setting,
                tip,
                u,
                mine,
                coverage_percent=100.0 * float(self.covered[i]) / self.n_target,
            )
        return self._built[i]

    def extend(
        self,
        setting: int,
        tips: npt.NDArray[np.float64],
        units: npt.NDArray[np.float64],
        zones: Zones,
        paths: Sequence[Sequence[Trajectory]],
        covered: npt.NDArray[np.int64],
    ) -> None:
        """Append candidates of one setting (``paths``: each one's probe paths)."""
        n = len(tips)
        frame = zones.frame + len(self.zones.axes)
        self.setting = np.concatenate([self.setting, np.full(n, setting, dtype=np.int64)])
        self.tips = np.concatenate([self.tips, tips])
        self.units = np.concatenate([self.units, units])
        self.zones = Zones(
            np.concatenate([self.zones.centres, zones.centres]),
            np.concatenate([self.zones.frame, frame]),
            np.concatenate([self.zones.axes, zones.axes]),
            np.concatenate([self.zones.radii, zones.radii]),
        )
        sizes = np.array([len(p) for p in paths], dtype=np.int64)
        self.starts = np.concatenate([self.starts, self.starts[-1] + np.cumsum(sizes)])
        self.paths.extend(p for probe_paths in paths for p in probe_paths)
        risk = [float(sum(p.risk_score for p in probe_paths)) for probe_paths in paths]
        self.risk = np.concatenate([self.risk, np.asarray(risk, dtype=np.float64)])
        self.covered = np.concatenate([self.covered, covered])


def place_applicators(
    maps: RiskMaps,
    lesion: Volume,
    device: Device,
    settings: Sequence[str] | None = None,
    margin_mm: float = 5.0,
    max_probes: int = 3,
    coverage_goal: float = 0.99,
    critical: Sequence[str] = DEFAULT_CRITICAL,
    fixed: Sequence[Applicator] = (),
) -> PlacementResult:
    """Choose applicators whose zones cover the lesion plus margin with the fewest probes.

    Parameters
    ----------
    maps : RiskMaps
        Trajectory maps built with the lesion (``RiskMaps.build(anatomy, constraints,
        lesion)``); their constraints (needle length = the applicator's usable length,
        vessel rule, hard structures) apply to every probe path.
    lesion : Volume
        The tumour mask (any axis order).
    device : Device
        From :func:`seldinger.physics.ablation.load_catalogue`.
    settings : sequence of str, optional
        Allowed settings (default: all of the device's).
    margin_mm : float
        Ablative margin around the lesion to cover.
    max_probes : int
        Most applicators to consider (1-4).
    coverage_goal : float
        Fraction of the planning target's voxels the zones must cover.
    critical : sequence of str
        Hard structures of the maps no zone may include (those present are used).
    fixed : sequence of Applicator
        Applicators already in place (re-planning after a probe landed off its plan, see
        :func:`applicator_at`): they count toward the coverage and ``max_probes``, new
        ones keep the spacing rules with them, and they are listed first in the result.

    Raises
    ------
    PlacementError
        No set of up to ``max_probes`` applicators reaches the goal (the message gives the
        best coverage found), or no safe path reaches the lesion.
    """
    seconds: dict[str, float] = {}
    notes: list[str] = []
    if not 0 <= margin_mm <= 30:
        raise BadInputError(f"margin_mm must lie in [0, 30] mm; got {margin_mm}.")
    if not 1 <= max_probes <= MAX_PROBES:
        raise BadInputError(f"max_probes must be 1 to {MAX_PROBES}; got {max_probes}.")
    if len(fixed) > max_probes:
        raise BadInputError(
            f"{len(fixed)} applicators are already placed but max_probes is {max_probes}."
        )
    if not 0 < coverage_goal <= 1:
        raise BadInputError(f"coverage_goal must lie in (0, 1]; got {coverage_goal}.")
    prepared = _prepare(maps, lesion, device, settings, margin_mm, critical)
    crop, target_arr, cands = prepared.crop, prepared.target, prepared.cands
    seconds.update(prepared.seconds)

    # 5. Set search (with the applicators already in place, if any), after a bound: no
    # k applicators cover more than the k largest single coverages together.
    clock = time.perf_counter()
    placed = _placed(prepared, fixed, device.modality)
    gain = _gains(prepared, placed)
    free = max_probes - len(fixed)
    need = math.ceil(coverage_goal * cands.n_target - 1e-9)
    bounded = _most_covered(gain, placed, free) < need
    best = None if bounded else _search(prepared, device, max_probes, coverage_goal, placed, gain)
    seconds["search"] = time.perf_counter() - clock
    if best is None:
        raise PlacementError(
            _shortfall(
                prepared, device, settings, margin_mm, max_probes, coverage_goal, placed, gain
            )
        )
    picks = list(placed.applicators) + [cands.applicator(i) for i in best]
    notes.extend(placed.notes)
    zone_arr = np.asarray(zone_mask(crop, [a.zone for a in picks]).array, dtype=bool)
    lesion_crop = np.asarray(crop.array, dtype=bool)
    voxel_ml = float(np.prod(crop.spacing_mm)) / 1000.0
    if device.modality in (Modality.IRE, Modality.CRYO):
        notes.append(
            f"{device.name}: zones are the published combined zones of each probe cluster."
        )
    return PlacementResult(
        applicators=tuple(picks),
        margin_mm=margin_mm,
        target_coverage_percent=100.0 * float(zone_arr[target_arr].mean()),
        lesion_coverage_percent=100.0 * float(zone_arr[lesion_crop].mean()),
        healthy_ablated_ml=float(np.count_nonzero(zone_arr & ~lesion_crop)) * voxel_ml,
        zone_volume_ml=float(np.count_nonzero(zone_arr)) * voxel_ml,
        n_candidates=len(cands),
        seconds=seconds,
        notes=tuple(notes) + maps.notes,
    )


@dataclass(frozen=True)
class _Prepared:
    """Planning target, sample points and candidates of one placement problem."""

    crop: Volume
    target: npt.NDArray[np.bool_]
    cands: _Candidates
    cell_ml: float
    seconds: dict[str, float]
    # LPS points: planning target, healthy grid, shell beyond the margin, critical voxels
    samples: tuple[npt.NDArray[np.float64], ...] = ()
    cells: tuple[PointCells, ...] = ()  # the same points sorted into cells


@dataclass(frozen=True)
class _Placed:
    """Applicators already in place: their union's bits and which candidates fit beside them."""

    applicators: tuple[Applicator, ...]
    covers: npt.NDArray[np.bool_]  # union over the target points
    healthy: npt.NDArray[np.bool_]
    shell: npt.NDArray[np.bool_]
    compatible: npt.NDArray[np.bool_]  # per candidate: spacing rules kept with every one
    notes: tuple[str, ...]


def _placed(prepared: _Prepared, fixed: Sequence[Applicator], modality: Modality) -> _Placed:
    """Bits of the applicators in place on the problem's sample points, and their notes."""
    target_pts, healthy_pts, shell_pts, critical_pts = prepared.samples
    covers = np.zeros(len(target_pts), dtype=bool)
    healthy = np.zeros(len(healthy_pts), dtype=bool)
    shell = np.zeros(len(shell_pts), dtype=bool)
    notes = []
    kept = []
    for a in fixed:
        alone = a.zone.contains(target_pts)
        covers |= alone
        healthy |= a.zone.contains(healthy_pts)
        shell |= a.zone.contains(shell_pts)
        kept.append(replace(a, coverage_percent=100.0 * float(alone.mean())))
        if len(critical_pts) and a.zone.contains(critical_pts).any():
            notes.append(
                f"the applicator in place at {np.round(a.tip_lps_mm, 1).tolist()} has a "
                "critical structure inside its zone: reposition it rather than ablate there."
            )
    cands = prepared.cands
    compatible = np.ones(len(cands), dtype=bool)
    for a in fixed:
        tips, u = np.asarray(a.probes_tip_lps_mm), np.asarray(a.direction_lps)
        for i in np.flatnonzero(compatible):
            compatible[i] = _spacing_ok_tips(
                cands.probe_tips(int(i)), cands.units[i], tips, u, modality
            )
    return _Placed(tuple(kept), covers, healthy, shell, compatible, tuple(notes))


def applicator_at(
    maps: RiskMaps,
    device: Device,
    setting: str,
    tip_lps_mm: npt.ArrayLike,
    direction_lps: npt.ArrayLike,
) -> Applicator:
    """The applicator of ``device`` at ``setting`` whose probe lies where it really is.

    For re-planning (:func:`place_applicators` with ``fixed``): the tip and the insertion
    direction come from the confirmation (tracked needle or control CT), the zone follows
    them, the path is scored on ``maps`` (its safety and metrics as for a planned one).
    ``coverage_percent`` is filled in by the placement.
    """
    chosen = device.setting(setting)
    tip = np.asarray(tip_lps_mm, dtype=np.float64)
    u = np.asarray(direction_lps, dtype=np.float64)
    norm = float(np.linalg.norm(u))
    if tip.shape != (3,) or u.shape != (3,) or not np.isfinite([*tip, *u]).all() or norm == 0:
        raise BadInputError(
            "the applicator in place needs a finite tip (x, y, z LPS mm) and a non-zero "
            f"insertion direction; got tip {tip.tolist()}, direction {u.tolist()}."
        )
    u = u / norm
    probe_tips = probe_tips_lps_mm(tip, u, chosen)
    paths = paths_along(maps, np.asarray(probe_tips), np.repeat(u[None, :], len(probe_tips), 0))
    return _applicator_on(device.name, chosen, tip, u, paths, coverage_percent=0.0)


def _applicator_on(
    device_name: str,
    setting: Setting,
    tip: npt.NDArray[np.float64],
    u: npt.NDArray[np.float64],
    paths: Sequence[Trajectory],
    coverage_percent: float,
) -> Applicator:
    """The applicator whose probes run along ``paths`` (their targets are the probe tips);
    its own path is the one whose tip lies nearest ``tip`` (a cluster's central probe)."""
    tips = np.array([p.target_lps_mm for p in paths])
    central = paths[int(np.argmin(np.linalg.norm(tips - tip, axis=1)))]
    return Applicator(
        device=device_name,
        setting=setting.name,
        tip_lps_mm=_t(tip),
        direction_lps=_t(u),
        entry_lps_mm=central.entry_lps_mm,
        zone=zone_ellipsoid(tip, u, setting.zone),
        probes_tip_lps_mm=tuple(_t(p) for p in tips),
        probes_entry_lps_mm=tuple(p.entry_lps_mm for p in paths),
        path=central,
        coverage_percent=coverage_percent,
    )


def _prepare(
    maps: RiskMaps,
    lesion: Volume,
    device: Device,
    settings: Sequence[str] | None,
    margin_mm: float,
    critical: Sequence[str],
) -> _Prepared:
    """Steps 1-4 of :func:`place_applicators`: target, samples, candidate applicators."""
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    chosen = [device.setting(name) for name in (settings or list(device.settings))]
    if maps.lesion_centroid_lps_mm is None:
        raise BadInputError(
            "the RiskMaps were built without the lesion; build them with it "
            "(RiskMaps.build(anatomy, constraints, lesion)) so probe paths may enter it."
        )

    # 1. Planning target and sample points (LPS).
    reach_mm = margin_mm + max(
        0.5 * max(s.zone.length_mm, s.zone.width_mm) + abs(s.zone.centre_offset_mm) + 5.0
        for s in chosen
    )
    target = expand_target(lesion, margin_mm, pad_mm=reach_mm - margin_mm)
    crop, target_arr = target.lesion, target.ptv
    target_pts = crop.index_to_lps(np.argwhere(target_arr))
    healthy_pts = _healthy_grid(crop, target_arr)
    shell_arr = target.shell(0.0, _SHELL_MM)
    shell_pts = crop.index_to_lps(np.argwhere(shell_arr))
    critical_pts = _structure_points(maps, [c for c in critical if c in maps.hard_names], crop)
    cells = tuple(PointCells.build(p) for p in (target_pts, healthy_pts, shell_pts, critical_pts))
    seconds["target"] = time.perf_counter() - clock

    # 2-4. Candidates.
    clock = time.perf_counter()
    centres = _centres(crop, target_arr)
    seconds["n_centres"] = float(len(centres))
    cands = _Candidates(device, chosen, len(target_pts))
    _add_candidates(cands, maps, centres, cells[0], cells[3])
    seconds["candidates"] = time.perf_counter() - clock
    if not len(cands):
        raise PlacementError(
            f"no applicator of {device.name} can be placed: no safe path of usable length "
            f"({maps.constraints.needle_length_mm:.0f} mm) reaches a zone centre in the "
            "lesion without its zone touching a critical structure. Check the trajectory "
            "constraints or choose another device."
        )

    step = [max(1, round(_HEALTHY_STEP_MM / sp)) for sp in crop.spacing_mm]
    cell_ml = float(np.prod(np.multiply(step, crop.spacing_mm))) / 1000.0
    samples = (target_pts, healthy_pts, shell_pts, critical_pts)
    return _Prepared(crop, target_arr, cands, cell_ml, seconds, samples, cells)


def _healthy_grid(crop: Volume, target: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Points of a ~2 mm grid over the crop outside the planning target (LPS)."""
    step = [max(1, round(_HEALTHY_STEP_MM / s)) for s in crop.spacing_mm]
    grid = np.zeros(crop.shape, dtype=bool)
    grid[:: step[0], :: step[1], :: step[2]] = True
    return np.asarray(crop.index_to_lps(np.argwhere(grid & ~target)), dtype=np.float64)


def _structure_points(
    maps: RiskMaps, names: Sequence[str], crop: Volume
) -> npt.NDArray[np.float64]:
    """LPS points of the named hard structures inside the crop's extent."""
    if not names:
        return np.zeros((0, 3))
    bits = sum(maps.hard_bit(n) for n in names)
    lo, hi = crop.geometry.bounds_lps_mm()
    ilo = np.floor(maps.lps_to_index(lo)).astype(int)
    ihi = np.ceil(maps.lps_to_index(hi)).astype(int)
    a, b = np.minimum(ilo, ihi), np.maximum(ilo, ihi)
    a = np.clip(a, 0, np.array(maps.labels.shape) - 1)
    b = np.clip(b + 1, 0, np.array(maps.labels.shape))
    sub = maps.labels[a[0] : b[0], a[1] : b[1], a[2] : b[2]]
    where = np.argwhere((sub & np.uint32(bits)) != 0) + a
    return np.asarray(maps.index_to_lps(where), dtype=np.float64)


def _centres(crop: Volume, target: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Candidate zone centres: the lesion's centroid, then a grid inside the lesion.

    Zones centred outside the tumour cover it less and burn more healthy tissue; the grid
    step (:data:`_CENTRE_STEP_MM`) trades the placement's resolution for time.
    """
    lesion = np.asarray(crop.array, dtype=bool)
    centroid = crop.index_to_lps(np.argwhere(lesion).mean(axis=0))
    step = [max(1, round(_CENTRE_STEP_MM / s)) for s in crop.spacing_mm]
    grid = np.zeros(crop.shape, dtype=bool)
    grid[:: step[0], :: step[1], :: step[2]] = True
    pts = np.argwhere(lesion & grid)
    return np.vstack([centroid[None, :], crop.index_to_lps(pts)]) if pts.size else centroid[None, :]


def _directions(maps: RiskMaps, centre: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Unit approach directions (entry -> centre) of the distinct safe paths to the centre."""
    try:
        search = plan_trajectories(maps, centre)
    except (NoSafePathError, TargetError):
        return np.zeros((0, 3))
    entries = np.array([p.entry_lps_mm for p in search.top(_DIRECTIONS)])
    units = centre - entries
    return np.asarray(units / np.linalg.norm(units, axis=1)[:, None], dtype=np.float64)


def _add_candidates(
    cands: _Candidates,
    maps: RiskMaps,
    centres: npt.NDArray[np.float64],
    target: PointCells,
    critical: PointCells,
) -> None:
    """Applicators for every centre x approach direction x setting whose paths are safe.

    ``target`` and ``critical``: the points of the planning target and of the critical
    structures (LPS). A candidate is kept when all its probe paths are safe and within the
    usable length, no critical point lies in its zone and it covers some of the target.

    The approach directions are those of the distinct safe paths to the lesion's centroid
    (the first centre); every other centre is tried along the same directions, and every
    probe of a cluster along its own parallel line, all in one march (settings whose
    probes sit at the same points share it).
    """
    units = _directions(maps, centres[0])
    if not len(units):
        return
    marched: dict[bytes, list[Trajectory]] = {}
    for index, setting in enumerate(cands.settings):
        spec = setting.zone
        # Per direction: the zone's frame and the probes' offsets from the tip (as
        # zone_ellipsoid and probe_tips_lps_mm compute them for each candidate).
        frames = [zone_ellipsoid(np.zeros(3), u, spec) for u in units]
        axes = np.array([f.axes for f in frames])
        offsets = np.array([probe_tips_lps_mm(np.zeros(3), u, setting) for u in units])
        n_probes = offsets.shape[1]
        # The zone centre lies `centre_offset_mm` from the tip along the needle.
        tips = (centres[:, None, :] - (spec.centre_offset_mm * units)[None, :, :]).reshape(-1, 3)
        dirs = np.tile(units, (len(centres), 1))
        frame = np.tile(np.arange(len(units), dtype=np.int64), len(centres))
        probes = (tips[:, None, :] + offsets[frame]).reshape(-1, 3)
        key = probes.tobytes()
        if key not in marched:
            marched[key] = paths_along(maps, probes, np.repeat(dirs, n_probes, axis=0))
        paths = marched[key]
        safe = np.array([p.safe for p in paths], dtype=bool).reshape(-1, n_probes).all(axis=1)
        length = np.array([p.length_mm for p in paths]).reshape(-1, n_probes)
        targets = np.array([p.target_lps_mm for p in paths]).reshape(-1, n_probes, 3)
        central = np.argmin(np.linalg.norm(targets - tips[:, None, :], axis=2), axis=1)
        usable = cands.device.usable_length_mm
        if usable is not None:
            safe &= length[np.arange(len(tips)), central] <= usable
        keep = np.flatnonzero(safe)
        zones = Zones(
            tips[keep] + spec.centre_offset_mm * axes[frame[keep], 0],
            frame[keep],
            axes,
            np.repeat(
                np.asarray(spec.diameters_mm, dtype=np.float64)[None, :] / 2.0, len(units), 0
            ),
        )
        touches = zone_any(critical, zones)
        covered, _ = zone_counts(target, zones)
        ok = ~touches & (covered > 0)
        keep, zones = keep[ok], zones.subset(ok)
        cands.extend(
            index,
            tips[keep],
            dirs[keep],
            zones,
            [paths[k * n_probes : (k + 1) * n_probes] for k in keep],
            covered[ok],
        )


def _t(p: npt.ArrayLike) -> tuple[float, float, float]:
    a = np.asarray(p, dtype=float)
    return (float(a[0]), float(a[1]), float(a[2]))


def _spacing_ok(a: Applicator, b: Applicator, modality: Modality) -> bool:
    """Whether two applicators of one plan keep their modality's spacing rule."""
    return _spacing_ok_tips(
        np.asarray(a.probes_tip_lps_mm),
        np.asarray(a.direction_lps),
        np.asarray(b.probes_tip_lps_mm),
        np.asarray(b.direction_lps),
        modality,
    )


def _spacing_ok_tips(
    tips_a: npt.NDArray[np.float64],
    direction_a: npt.NDArray[np.float64],
    tips_b: npt.NDArray[np.float64],
    direction_b: npt.NDArray[np.float64],
    modality: Modality,
) -> bool:
    """:func:`_spacing_ok` on the probe tips (LPS mm) and unit directions of two applicators."""
    gap = float(np.min(np.linalg.norm(tips_a[:, None, :] - tips_b[None, :, :], axis=2)))
    rule = SPACING_RULES.get(modality)
    if rule is None:
        return gap >= _MIN_TIP_SEPARATION_MM
    lo, hi, max_angle = rule
    if not lo <= gap <= hi:
        return False
    if max_angle is not None:
        cos = abs(float(np.dot(direction_a, direction_b)))
        if math.degrees(math.acos(min(1.0, cos))) > max_angle:
            return False
    return True


def _gains(prepared: _Prepared, placed: _Placed) -> npt.NDArray[np.int64]:
    """Per candidate: target points it covers beyond those in place; -1 if it cannot join."""
    cands = prepared.cands
    if placed.applicators:
        _, gain = zone_counts(prepared.cells[0], cands.zones, placed.covers)
    else:
        gain = cands.covered.copy()
    gain[~placed.compatible] = -1
    return np.asarray(gain, dtype=np.int64)


def _most_covered(gain: npt.NDArray[np.int64], placed: _Placed, k: int) -> int:
    """Most target points any ``k`` more applicators could cover with those in place.

    A union is at most the sum of its parts: the points in place plus the ``k`` largest
    gains (:func:`_gains`), an upper bound that needs no set to be formed.
    """
    usable = np.sort(gain[gain > 0])[::-1]
    return int(np.count_nonzero(placed.covers)) + int(usable[: max(k, 0)].sum())


def _search(
    prepared: _Prepared,
    device: Device,
    max_probes: int,
    goal: float,
    placed: _Placed,
    gain: npt.NDArray[np.int64],
) -> tuple[int, ...] | None:
    """The best set of new applicators: fewest reaching the goal together with those in
    place, then least healthy tissue, then the widest shell, then the least path risk.

    Set sizes whose bound (:func:`_most_covered`) falls short of the goal are skipped.
    Healthy-tissue and shell counts are computed only for the candidates that reach the
    goal alone, membership bits only for the pool of each larger size.
    """
    cands, cell_ml = prepared.cands, prepared.cell_ml
    target_cells, healthy_cells, shell_cells = prepared.cells[:3]
    n_target = cands.n_target
    need = math.ceil(goal * n_target - 1e-9)
    n_placed = int(np.count_nonzero(placed.covers))
    # Counts of each candidate's union with the applicators in place (-1: cannot join).
    count = np.where(gain >= 0, gain + n_placed, -1)
    hstep = max(1, round(_HEALTHY_TIE_ML / cell_ml))
    n_fixed = len(placed.applicators)
    if n_fixed and n_placed >= need:
        return ()
    for k in range(1, max_probes - n_fixed + 1):
        if _most_covered(gain, placed, k) < need:
            continue
        if k == 1:
            ok = np.flatnonzero(count >= need)
            if ok.size:
                zones = cands.zones.subset(ok)
                _, h_new = zone_counts(healthy_cells, zones, placed.healthy)
                _, s_new = zone_counts(shell_cells, zones, placed.shell)
                hcount = (int(np.count_nonzero(placed.healthy)) + h_new) // hstep
                scount = int(np.count_nonzero(placed.shell)) + s_new
                order = np.lexsort((cands.risk[ok], -scount, hcount))
                return (int(ok[order[0]]),)
            continue
        pool = np.argsort(-count, kind="stable")[: _POOL.get(k, 20)]
        pool = pool[count[pool] >= 0]
        zones = cands.zones.subset(pool)
        covers = np.packbits(zone_members(target_cells, zones) | placed.covers, axis=1)
        healthy = np.packbits(zone_members(healthy_cells, zones) | placed.healthy, axis=1)
        shell = np.packbits(zone_members(shell_cells, zones) | placed.shell, axis=1)
        risk = cands.risk[pool]
        best: tuple[int, ...] | None = None
        best_key: tuple[int, int, float] | None = None
        for combo in itertools.combinations(range(len(pool)), k):
            rows = list(combo)
            union = np.bitwise_or.reduce(covers[rows], axis=0)
            if _POPCOUNT[union].sum() < need:
                continue
            if not all(
                _spacing_ok(
                    cands.applicator(int(pool[a])), cands.applicator(int(pool[b])), device.modality
                )
                for a, b in itertools.combinations(combo, 2)
            ):
                continue
            h = int(_POPCOUNT[np.bitwise_or.reduce(healthy[rows], axis=0)].sum()) // hstep
            sh = int(_POPCOUNT[np.bitwise_or.reduce(shell[rows], axis=0)].sum())
            key = (h, -sh, float(risk[rows].sum()))
            if best_key is None or key < best_key:
                best, best_key = tuple(int(pool[i]) for i in combo), key
        if best is not None:
            return best
    return None


def _shortfall(
    prepared: _Prepared,
    device: Device,
    settings: Sequence[str] | None,
    margin_mm: float,
    max_probes: int,
    goal: float,
    placed: _Placed,
    gain: npt.NDArray[np.int64],
) -> str:
    """Why no set reaches the goal, and what to change (the :class:`PlacementError` text).

    When even the largest single coverages added up (:func:`_most_covered`) fall short, the
    message says so: no search could succeed with that many applicators. More probes are
    suggested only while ``--max-probes`` may grow and the bound leaves room at its cap.
    """
    cands = prepared.cands
    n_target, n_fixed = cands.n_target, len(placed.applicators)
    need = math.ceil(goal * n_target - 1e-9)
    top = 100.0 * float(cands.covered.max()) / n_target
    already = (
        f" with the {n_fixed} applicator(s) in place (covering "
        f"{100.0 * placed.covers.mean():.1f} % alone)"
        if n_fixed
        else ""
    )
    bound = _most_covered(gain, placed, max_probes - n_fixed)
    why = f"one applicator covers at most {top:.1f} %"
    if bound < need and max_probes - n_fixed > 1:
        why += (
            f", so {max_probes - n_fixed} together cover at most "
            f"{100.0 * bound / n_target:.1f} % even without overlap"
        )
    text = (
        f"no set of up to {max_probes} {device.name} applicators{already} covers "
        f"{100 * goal:.0f} % of the lesion plus {margin_mm:g} mm ({why})."
    )
    larger = (
        "the device's other settings (without --setting), "
        if settings and set(settings) != set(device.settings)
        else ""
    )
    remedy = (
        f"{larger}a device with larger zones (seldinger plan devices), a smaller margin "
        "(--margin-mm), or treatment in stages."
    )
    at_cap = _most_covered(gain, placed, MAX_PROBES - n_fixed)
    if max_probes < MAX_PROBES and at_cap >= need:
        return f"{text} Allow more probes (--max-probes, at most {MAX_PROBES}), or choose {remedy}"
    if max_probes < MAX_PROBES:
        return (
            f"{text} Even {MAX_PROBES} applicators, the most --max-probes allows, would cover "
            f"at most {100.0 * at_cap / n_target:.1f} %: choose {remedy}"
        )
    return f"{text} {MAX_PROBES} applicators are the most --max-probes allows: choose {remedy}"
