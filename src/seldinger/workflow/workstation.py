"""The browser workstation's work as library calls (``seldinger serve``; docs/workstation.md).

A :class:`Workstation` holds one plan with its CT in memory and answers what the page asks:
the CT and the masks as NIfTI, the plan's overlays as JSON, a path re-scored from a clicked
entry or target, the Pareto set, an applicator moved, and the approved plan written. The
web server only routes requests here, so the same calls work from a notebook::

    ws = open_workstation("plan.json")
    ws.rescore(entry_lps_mm=(80.0, 120.0, -116.0))["path"]["risk_score"]
    ws.move_applicator(0, tip_lps_mm=(57.0, 86.0, -114.0))["margin"]["min_margin_mm"]
    ws.approve(command="seldinger serve")
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from seldinger.errors import BadInputError, InfeasiblePlanError
from seldinger.files import staged_outputs
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.physics.ablation.zones import Ellipsoid, zone_mask
from seldinger.plan import ApplicatorRecord, Target, TrajectoryRecord
from seldinger.planning.margin import assess_margin
from seldinger.planning.trajectory import (
    RiskMaps,
    TrajectoryConstraints,
    TrajectorySearch,
    evaluate_path,
    plan_trajectories,
)
from seldinger.planning.trajectory.drawn import (
    DrawnPath,
    UnsafeDrawnPathError,
    score_drawn_path,
)
from seldinger.workflow.ablation import zone_mask_name
from seldinger.workflow.case import PlanCase, load_plan_case

__all__ = [
    "LABELS",
    "WINDOW_PRESETS_HU",
    "ScoringNotReadyError",
    "Workstation",
    "open_workstation",
    "volume_nifti",
]

#: Window presets (centre, width) in HU, as CT consoles name them.
WINDOW_PRESETS_HU: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "soft tissue": (50.0, 350.0),
    "bone": (400.0, 1800.0),
}
#: Structures drawn in the label overlay, lowest priority first (a later one wins a voxel),
#: with their RGB colour; ``lesion`` is every plan target's mask.
LABELS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("lung_left", (90, 140, 220)),
    ("lung_right", (90, 180, 220)),
    ("mediastinum", (200, 170, 120)),
    ("liver", (170, 90, 60)),
    ("emphysema", (120, 220, 120)),
    ("bones", (240, 240, 210)),
    ("airways", (80, 230, 230)),
    ("vessels", (230, 50, 50)),
    ("lesion", (255, 200, 0)),
)
#: Isodose levels drawn, in % of the seed plan's prescription.
ISODOSE_PERCENT = (50, 100, 150, 200)
#: Grid of the isodose overlay (mm) and how far beyond the seeds it reaches.
DOSE_SPACING_MM = 1.5
DOSE_PAD_MM = 20.0
#: Room kept around the lesion and the zones in the cropped zone overlay, mm.
ZONE_PAD_MM = 5.0


class ScoringNotReadyError(InfeasiblePlanError):
    """The risk maps are still being built; ask again in a moment."""


def volume_nifti(volume: Volume, name: str = "volume.nii") -> bytes:
    """``volume`` as the bytes of a NIfTI file (``name`` ending ``.nii`` or ``.nii.gz``)."""
    with tempfile.TemporaryDirectory(prefix="seldinger-nifti-") as folder:
        path = write_volume(volume, Path(folder) / name)
        return path.read_bytes()


def coarser(volume: Volume, step: int, how: str = "mean") -> Volume:
    """``volume`` on a grid ``step`` times coarser along the axes finer than 1 mm.

    ``how`` is ``"mean"`` (intensities, rounded to the input's integer type) or ``"max"`` (labels whose
    larger values win, as :data:`LABELS`). A trailing partial block is dropped. The new voxel
    centres are the blocks' centres, so the volume keeps its place in LPS.
    """
    spacing = np.asarray(volume.spacing_mm)
    steps = [step if (s < 1.0 and step > 1) else 1 for s in spacing]
    if steps == [1, 1, 1]:
        return volume
    array = np.asarray(volume.array)
    shape = [n // f * f for n, f in zip(array.shape, steps, strict=True)]
    array = array[: shape[0], : shape[1], : shape[2]]
    # The block's voxels as strided views, one per offset in the block: summed (or maxed) in
    # the array's own memory order (a 6-D reshape of a Fortran-ordered CT is 5-10x slower).
    parts = [array[i :: steps[0], j :: steps[1], k :: steps[2]]
             for i in range(steps[0]) for j in range(steps[1]) for k in range(steps[2])]  # fmt: skip
    if how == "mean" and np.issubdtype(array.dtype, np.integer):
        total = parts[0].astype(np.int32)
        for part in parts[1:]:
            total += part
        reduced = np.rint(total / float(np.prod(steps))).astype(array.dtype)
    elif how == "mean":
        blocks = array.reshape(shape[0] // steps[0], steps[0], shape[1] // steps[1], steps[1],
                               shape[2] // steps[2], steps[2])  # fmt: skip
        reduced = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    else:
        reduced = parts[0].copy()
        for part in parts[1:]:
            np.maximum(reduced, part, out=reduced)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_lps((np.asarray(steps, dtype=np.float64) - 1.0) / 2.0)
    affine[:3, :3] = volume.affine[:3, :3] * np.asarray(steps, dtype=np.float64)
    return Volume(np.ascontiguousarray(reduced), affine)


def png_gray(image: npt.NDArray[np.uint8]) -> bytes:
    """An 8-bit grayscale PNG of a 2-D array (rows top to bottom)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows, cols = image.shape
    raw = np.hstack([np.zeros((rows, 1), np.uint8), np.ascontiguousarray(image, np.uint8)])
    header = struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 1))
        + chunk(b"IEND", b"")
    )


def axial_preview(volume: Volume, z_mm: float, window_hu: tuple[float, float]) -> bytes:
    """The axial slice at ``z_mm`` (LPS) as a PNG in the radiological convention (patient's
    right on the left, anterior at the top), windowed (centre, width in HU), nearest voxel."""
    corners = volume.index_to_lps(
        np.array([[i, j, k] for i in (0, volume.shape[0] - 1) for j in (0, volume.shape[1] - 1)
                  for k in (0, volume.shape[2] - 1)], dtype=np.float64)
    )  # fmt: skip
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    step = float(min(volume.spacing_mm))
    x = np.arange(lo[0], hi[0] + step / 2, step)  # columns: towards the patient's left
    y = np.arange(lo[1], hi[1] + step / 2, step)  # rows: anterior to posterior
    columns, rows = np.meshgrid(x, y, indexing="xy")
    grid = np.stack([columns, rows, np.full(rows.shape, z_mm)], axis=-1)
    ijk = np.rint(volume.lps_to_index(grid.reshape(-1, 3))).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(volume.shape)), axis=1)
    values = np.full(len(ijk), -1024.0)
    picked = ijk[inside]
    values[inside] = np.asarray(volume.array)[picked[:, 0], picked[:, 1], picked[:, 2]]
    centre, width = window_hu
    scaled = np.clip((values - (centre - width / 2)) / width * 255.0, 0, 255)
    return png_gray(scaled.reshape(y.size, x.size).astype(np.uint8))


def _point(value: Any, name: str) -> npt.NDArray[np.float64]:
    point = np.asarray(value, dtype=np.float64)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise BadInputError(f"{name} must be 3 finite LPS coordinates in mm; got {value!r}.")
    return point


def _round3(p: npt.ArrayLike) -> tuple[float, float, float]:
    x, y, z = (round(float(v), 2) for v in np.asarray(p, dtype=np.float64))
    return (x, y, z)


def _axes_of(record: ApplicatorRecord) -> npt.NDArray[np.float64]:
    """The zone's semi-axis directions (rows), completed from the applicator's direction."""
    if record.zone_axes_lps is not None:  # stored to 6 decimals: made orthonormal again
        u, _, vt = np.linalg.svd(np.asarray(record.zone_axes_lps, dtype=np.float64))
        return np.asarray(u @ vt, dtype=np.float64)
    first = np.asarray(record.direction_lps, dtype=np.float64)
    first = first / np.linalg.norm(first)
    helper = np.array([0.0, 0.0, 1.0]) if abs(first[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    second = np.cross(first, helper)
    second /= np.linalg.norm(second)
    return np.stack([first, second, np.cross(first, second)])


def ellipsoids_of(records: list[ApplicatorRecord]) -> list[Ellipsoid]:
    """The predicted zones of a plan's applicators."""
    return [
        Ellipsoid(
            np.asarray(r.zone_centre_lps_mm, dtype=np.float64),
            _axes_of(r),
            np.maximum(np.asarray(r.zone_radii_mm, dtype=np.float64), 1e-3),
        )
        for r in records
    ]


def crop_around(
    reference: Volume, lo_lps_mm: Any, hi_lps_mm: Any
) -> tuple[Volume, tuple[slice, slice, slice]]:
    """An empty (bool) Volume on ``reference``'s grid cut to the box between two LPS points,
    and the box's index slices in ``reference``."""
    corners = np.array(
        [
            [a, b, c]
            for a in (lo_lps_mm[0], hi_lps_mm[0])
            for b in (lo_lps_mm[1], hi_lps_mm[1])
            for c in (lo_lps_mm[2], hi_lps_mm[2])
        ]
    )
    ijk = reference.lps_to_index(corners)
    shape = np.asarray(reference.shape)
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, shape - 1)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, lo + 1, shape)
    affine = reference.affine.copy()
    affine[:3, 3] = reference.index_to_lps(lo)
    size = tuple(int(n) for n in hi - lo)
    box = (
        slice(int(lo[0]), int(hi[0])),
        slice(int(lo[1]), int(hi[1])),
        slice(int(lo[2]), int(hi[2])),
    )
    return Volume(np.zeros(size, dtype=bool), affine), box


@dataclass
class Scoring:
    """The risk maps and the search of the plan's target, built once per session."""

    maps: RiskMaps
    search: TrajectorySearch
    seconds: float


@dataclass(eq=False)
class Workstation:
    """One plan under review (see the module docstring). Thread-safe for one user."""

    case: PlanCase
    target: Target | None
    lesion: Volume | None
    selected: TrajectoryRecord | None
    applicators: list[ApplicatorRecord]
    notes: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    scoring: Scoring | None = None
    scoring_error: str | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _files_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _files: dict[str, bytes] = field(default_factory=dict, repr=False)
    _scoring_thread: threading.Thread | None = field(default=None, repr=False)
    _scoring_queued: bool = field(default=False, repr=False)

    # --- what the page shows -------------------------------------------------------------

    @property
    def volume(self) -> Volume:
        """The CT (HU, LPS mm)."""
        return self.case.volume

    def nifti(self, name: str, step: int = 1) -> bytes:
        """One of :meth:`volume_names` as NIfTI bytes (built on first use, then kept).

        ``step`` 2 gives the CT and labels on a grid twice as coarse in-plane
        (:func:`coarser`): a quarter of the voxels, for software WebGL; ``step`` 4 (the CT
        only) a sixteenth, the page's first, quick upload there.
        """
        if step not in (1, 2, 4) or (step == 4 and name != "ct"):
            raise BadInputError(
                f"step must be 1 or 2 (in-plane coarsening; 4 for the CT); got {step}."
            )
        builders = {
            "ct": lambda: volume_nifti(coarser(self.volume, step), "ct.nii"),
            "labels": lambda: volume_nifti(
                coarser(self.label_volume(), step, "max"), "labels.nii.gz"
            ),
            "zone": lambda: volume_nifti(self.zone_volume(), "zone.nii.gz"),
            "dose": lambda: volume_nifti(self.isodose_volume(), "dose.nii.gz"),
        }
        if name not in builders or name not in self.volume_names():
            raise BadInputError(f"no volume {name!r}; this plan has {self.volume_names()}.")
        if min(self.volume.spacing_mm) >= 1.0:
            step = 1  # nothing finer than 1 mm to coarsen: the same bytes, kept once
        key = name if step == 1 or name not in ("ct", "labels") else f"{name}@{step}"
        built = self._files.get(key)
        if built is not None:  # built already: no wait behind the prefetch
            return built
        with self._files_lock:  # not the state's lock: building a volume blocks no click
            if key not in self._files:
                self._files[key] = builders[name]()
            return self._files[key]

    def prefetch(self, then_score: bool = False) -> None:
        """Build the page's first volumes now (the preview, the CT and the labels at half then
        at full in-plane resolution), then (``then_score``) start building the risk maps: on a
        shared machine the page's first slice waits for every core it can get."""
        try:
            self.preview()
            for name, step in (("ct", 4), ("ct", 2), ("labels", 2), ("ct", 1), ("labels", 1)):
                self.nifti(name, step)
        except (OSError, ValueError) as err:  # the request will report it
            self.notes.append(f"volumes not prepared: {err}")
        finally:
            if then_score:
                self.start_scoring()

    def preview(self) -> bytes:
        """The axial slice through the target in the lung window, as a PNG (kept): the page
        shows it while the viewer starts."""
        built = self._files.get("preview")
        if built is None:
            section = self.case.plan.trajectories
            if section is not None:
                z_mm = section.target_lps_mm[2]
            else:
                z_mm = float(self.volume.index_to_lps((np.asarray(self.volume.shape) - 1) / 2)[2])
            built = axial_preview(self.volume, z_mm, WINDOW_PRESETS_HU["lung"])
            self._files["preview"] = built
        return built

    def volume_names(self) -> list[str]:
        """The volumes this plan offers: the CT, the labels, the zone and isodoses if any."""
        names = ["ct", "labels"]
        if self.applicators:
            names.append("zone")
        if self.case.plan.seeds is not None:
            names.append("dose")
        return names

    def label_volume(self) -> Volume:
        """The plan's structures and lesions as one uint8 label volume (ids of :data:`LABELS`)."""
        # In the CT's memory order (the masks share it): a boolean assignment across orders is
        # several times slower.
        labels = np.zeros_like(np.asarray(self.volume.array), dtype=np.uint8)
        plan = self.case.plan
        for value, (name, _) in enumerate(LABELS, start=1):
            masks: list[Volume] = []
            if name == "lesion":
                masks = [self.case.target_mask(t) for t in plan.targets if t.mask_path]
            elif name in plan.structures:
                try:
                    masks = [self.case.structure_mask(name)]
                except (OSError, ValueError) as err:
                    self.notes.append(f"the {name} mask is not shown: {err}")
            for mask in masks:
                np.copyto(labels, value, where=np.asarray(mask.array, dtype=bool))
        return self.volume.with_array(labels)

    def zone_volume(self) -> Volume:
        """The union of the (possibly moved) ablation zones on a crop of the CT's grid."""
        zones = ellipsoids_of(self.applicators)
        lows = [z.bounds_lps_mm()[0] for z in zones]
        highs = [z.bounds_lps_mm()[1] for z in zones]
        crop, _ = crop_around(
            self.volume,
            np.min(lows, axis=0) - ZONE_PAD_MM,
            np.max(highs, axis=0) + ZONE_PAD_MM,
        )
        return crop.with_array(np.asarray(zone_mask(crop, zones).array, dtype=np.uint8))

    def isodose_volume(self) -> Volume:
        """Isodose bands of the seed plan (1..4: ≥ 50, 100, 150, 200 % of the prescription)."""
        from seldinger.physics.tg43 import dose_on_grid, load_seed_data, total_dose_gy

        seeds = self.case.plan.seeds
        if seeds is None:
            raise BadInputError("the plan has no seed section; run `seldinger plan seeds`.")
        points = np.array([p for n in seeds.needles for p in n.seeds_lps_mm], dtype=np.float64)
        axes = np.array(
            [n.direction_lps for n in seeds.needles for _ in n.seeds_lps_mm], dtype=np.float64
        )
        lo, hi = points.min(axis=0) - DOSE_PAD_MM, points.max(axis=0) + DOSE_PAD_MM
        shape = tuple(int(n) for n in np.ceil((hi - lo) / DOSE_SPACING_MM) + 1)
        affine = np.diag([DOSE_SPACING_MM] * 3 + [1.0])
        affine[:3, 3] = lo
        grid = Volume(np.zeros(shape, dtype=np.float32), affine)
        rate = dose_on_grid(grid, points, axes, seeds.strength_u, load_seed_data(seeds.seed_data))
        dose_gy = np.asarray(total_dose_gy(np.asarray(rate.array)), dtype=np.float64)
        percent = 100.0 * dose_gy / seeds.goals.prescription_gy
        bands = np.zeros(shape, dtype=np.uint8)
        for value, level in enumerate(ISODOSE_PERCENT, start=1):
            bands[percent >= level] = value
        return grid.with_array(bands)

    def overlays(self) -> dict[str, Any]:
        """The plan's overlays as JSON: geometry, windows, labels, paths, zones, seeds.

        Positions are LPS mm; the page converts them to NIfTI's RAS for the viewer. No
        patient name, identifier or file path is included.
        """
        plan = self.case.plan
        volume = self.volume
        seeds = plan.seeds
        section = plan.trajectories
        return {
            "case": {
                "shape": list(volume.shape),
                "spacing_mm": [round(s, 4) for s in volume.spacing_mm],
                "orientation": volume.orientation,
            },
            "volumes": self.volume_names(),
            "window_presets_hu": {k: list(v) for k, v in WINDOW_PRESETS_HU.items()},
            "labels": [
                {"id": n, "name": name, "rgb": list(rgb)}
                for n, (name, rgb) in enumerate(LABELS, start=1)
            ],
            "targets": [t.model_dump(mode="json", exclude={"mask_path"}) for t in plan.targets],
            "target_lps_mm": None if section is None else list(section.target_lps_mm),
            "trajectories": []
            if section is None
            else [p.model_dump(mode="json") for p in section.paths],
            "selected": None if self.selected is None else self.selected.model_dump(mode="json"),
            "applicators": [a.model_dump(mode="json", exclude={"path"}) for a in self.applicators],
            "ablation": None
            if plan.ablation is None
            else {
                "device": plan.ablation.device,
                "margin_mm": plan.ablation.margin_mm,
                "target_coverage_percent": plan.ablation.target_coverage_percent,
                "margin": plan.ablation.margin.model_dump(mode="json"),
            },
            "seeds": None
            if seeds is None
            else {
                "positions_lps_mm": [list(p) for n in seeds.needles for p in n.seeds_lps_mm],
                "needles": [
                    {
                        "entry_lps_mm": list(n.entry_lps_mm),
                        "deepest_lps_mm": list(n.seeds_lps_mm[0]),
                    }
                    for n in seeds.needles
                ],
                "prescription_gy": seeds.goals.prescription_gy,
                "isodose_percent": list(ISODOSE_PERCENT),
            },
            "scoring": self.scoring_status(),
            "changes": list(self.changes),
        }

    # --- re-scoring -------------------------------------------------------------------------

    def start_scoring(self) -> None:
        """Build the risk maps and search in a background thread (see :meth:`prepare_scoring`)."""
        with self._lock:
            if self._scoring_thread is not None or self.case.plan.trajectories is None:
                return
            self._scoring_thread = threading.Thread(
                target=self._score_quietly, name="seldinger-risk-maps", daemon=True
            )
            self._scoring_thread.start()

    def _score_quietly(self) -> None:
        try:
            self.prepare_scoring()
        except (OSError, ValueError) as err:
            self.scoring_error = " ".join(str(err).split())

    def prepare_scoring(self) -> Scoring:
        """The risk maps of the plan's rules and lesion (cached beside the anatomy) and the
        search to its target; seconds on a chest CT the first time, fast afterwards."""
        if self.scoring is not None:
            return self.scoring
        section = self.case.plan.trajectories
        if section is None:
            raise BadInputError(
                f"{self.case.plan_path} has no trajectories; run `seldinger plan trajectory`."
            )
        started = time.perf_counter()
        constraints = TrajectoryConstraints.from_rules(section.rules)
        maps = RiskMaps.build(self.case.anatomy(), constraints, self.lesion)
        search = plan_trajectories(maps, target_lps_mm=section.target_lps_mm, lesion=self.lesion)
        scoring = Scoring(maps, search, time.perf_counter() - started)
        self.scoring = scoring
        return scoring

    def scoring_status(self) -> dict[str, Any]:
        """Whether re-scoring is ready, and how long the maps took."""
        if self.scoring is not None:
            return {"ready": True, "seconds": round(self.scoring.seconds, 3), "error": None}
        return {"ready": False, "seconds": None, "error": self.scoring_error}

    def _ready_scoring(self, wait_s: float) -> Scoring:
        if self._scoring_thread is None and self._scoring_queued:
            self.start_scoring()  # asked for before the prefetch that would have started it
        thread = self._scoring_thread
        if self.scoring is None and thread is not None:
            thread.join(wait_s)
        if self.scoring is None:
            if self.scoring_error is not None:
                raise BadInputError(f"paths cannot be re-scored: {self.scoring_error}")
            if thread is None:
                return self.prepare_scoring()
            raise ScoringNotReadyError("the risk maps are still being built; try again shortly.")
        return self.scoring

    def rescore(
        self,
        entry_lps_mm: Any = None,
        target_lps_mm: Any = None,
        *,
        wait_s: float = 0.0,
    ) -> dict[str, Any]:
        """Score the path from a clicked entry (or to a clicked target) and select it.

        The missing end is the selected path's. With the plan's target, the path is ranked
        among the search's safe paths as ``seldinger plan trajectory --entry-lps-mm`` does;
        a path to another target gets its metrics and verdicts only.

        Returns
        -------
        dict
            ``path`` (the plan's record), ``safe``, ``broken_rules``, ``rank_among_safe``,
            ``best_risk_score`` and ``seconds`` (server time).
        """
        started = time.perf_counter()
        scoring = self._ready_scoring(wait_s)
        current = self.selected
        entry = _point(
            entry_lps_mm if entry_lps_mm is not None else _current(current, "entry_lps_mm"),
            "entry_lps_mm",
        )
        target = _point(
            target_lps_mm if target_lps_mm is not None else _current(current, "target_lps_mm"),
            "target_lps_mm",
        )
        same_target = bool(np.allclose(target, scoring.search.target_lps_mm, atol=0.05))
        drawn: DrawnPath | None = None
        if same_target:
            try:
                drawn = score_drawn_path(scoring.maps, scoring.search, entry)
            except UnsafeDrawnPathError as err:
                drawn = err.drawn
            record = drawn.trajectory.to_record()
        else:
            trajectory = evaluate_path(scoring.maps, entry, target)
            record = trajectory.to_record().model_copy(
                update={"rank": 1 if trajectory.safe else None}
            )
        with self._lock:
            self.selected = record
            self.changes.append("path re-scored from a clicked point")
        return {
            "path": record.model_dump(mode="json"),
            "safe": record.safe,
            "broken_rules": [] if drawn is None else list(drawn.broken),
            "rank_among_safe": None if drawn is None else drawn.rank_among_safe,
            "best_risk_score": None
            if drawn is None or math.isnan(drawn.best_risk_score)
            else round(drawn.best_risk_score, 4),
            "seconds": round(time.perf_counter() - started, 4),
        }

    def pareto(self, *, wait_s: float = 0.0, limit: int = 40) -> list[dict[str, Any]]:
        """The Pareto-optimal safe paths of the search (best risk first), at most ``limit``."""
        scoring = self._ready_scoring(wait_s)
        ranked = scoring.search.ranked
        picked = np.flatnonzero(np.asarray(ranked.pareto))[:limit]
        return [ranked.trajectory(int(k)).to_record().model_dump(mode="json") for k in picked]

    def choose(self, entry_lps_mm: Any) -> dict[str, Any]:
        """Select a path of the Pareto set (or of the plan) by its entry point."""
        entry = _point(entry_lps_mm, "entry_lps_mm")
        section = self.case.plan.trajectories
        known = [] if section is None else list(section.paths)
        if self.scoring is not None:
            known += [TrajectoryRecord.model_validate(p) for p in self.pareto()]
        for record in known:
            if np.allclose(record.entry_lps_mm, entry, atol=0.05):
                with self._lock:
                    self.selected = record.model_copy(update={"rank": 1})
                    self.changes.append("path chosen from the Pareto set")
                return record.model_dump(mode="json")
        raise BadInputError(
            f"no planned or Pareto path enters at {_round3(entry)} LPS mm; choose one listed."
        )

    # --- ablation -------------------------------------------------------------------------

    def move_applicator(self, index: int, tip_lps_mm: Any) -> dict[str, Any]:
        """Move applicator ``index`` (tip, entry and zone together) and measure the result.

        Returns coverage of the lesion and of lesion + margin by the union of the zones, and
        the minimal ablative margin (:func:`~seldinger.planning.margin.assess_margin`).
        """
        started = time.perf_counter()
        ablation = self.case.plan.ablation
        if ablation is None or not 0 <= index < len(self.applicators):
            raise BadInputError(
                f"applicator {index} does not exist; the plan has {len(self.applicators)}."
            )
        tip = _point(tip_lps_mm, "tip_lps_mm")
        with self._lock:
            old = self.applicators[index]
            delta = tip - np.asarray(old.tip_lps_mm, dtype=np.float64)

            def moved(p: Any) -> tuple[float, float, float]:
                return _round3(np.asarray(p, dtype=np.float64) + delta)

            self.applicators[index] = old.model_copy(
                update={
                    "tip_lps_mm": moved(old.tip_lps_mm),
                    "entry_lps_mm": moved(old.entry_lps_mm),
                    "zone_centre_lps_mm": moved(old.zone_centre_lps_mm),
                    "probes_tip_lps_mm": [moved(p) for p in old.probes_tip_lps_mm],
                    "probes_entry_lps_mm": [moved(p) for p in old.probes_entry_lps_mm],
                }
            )
            with self._files_lock:
                self._files.pop("zone", None)
            self.changes.append(f"applicator {index + 1} moved")
        return {**self.ablation_metrics(), "seconds": round(time.perf_counter() - started, 4)}

    def ablation_metrics(self) -> dict[str, Any]:
        """Coverage (%) of the lesion and of lesion + margin, zone volumes, margin record."""
        ablation = self.case.plan.ablation
        if ablation is None or self.lesion is None:
            raise BadInputError("the plan has no ablation (or its target has no lesion mask).")
        zones = ellipsoids_of(self.applicators)
        lesion_idx = np.argwhere(np.asarray(self.lesion.array))
        lesion_lps = self.volume.index_to_lps(lesion_idx)
        pad = ablation.margin_mm + ZONE_PAD_MM
        lows = [lesion_lps.min(axis=0) - pad] + [z.bounds_lps_mm()[0] for z in zones]
        highs = [lesion_lps.max(axis=0) + pad] + [z.bounds_lps_mm()[1] for z in zones]
        crop, box = crop_around(self.volume, np.min(lows, axis=0), np.max(highs, axis=0))
        lesion = np.asarray(self.lesion.array, dtype=bool)[box]
        outside = ndimage.distance_transform_edt(~lesion, sampling=crop.spacing_mm)
        goal = outside <= ablation.margin_mm
        zone = np.asarray(zone_mask(crop, zones).array, dtype=bool)
        voxel_ml = float(np.prod(crop.spacing_mm)) / 1000.0
        report = assess_margin(crop.with_array(lesion), crop.with_array(zone))
        return {
            "target_coverage_percent": round(100.0 * float((zone & goal).sum()) / goal.sum(), 2),
            "lesion_coverage_percent": round(
                100.0 * float((zone & lesion).sum()) / lesion.sum(), 2
            ),
            "zone_volume_ml": round(float(zone.sum()) * voxel_ml, 2),
            "healthy_ablated_ml": round(float((zone & ~lesion).sum()) * voxel_ml, 2),
            "margin": report.to_record().model_dump(mode="json"),
            "applicators": [a.model_dump(mode="json", exclude={"path"}) for a in self.applicators],
        }

    # --- approval -------------------------------------------------------------------------

    def approve(self, out: Path | None = None, command: str | None = None) -> Path:
        """Write the reviewed plan (selected path first, moved applicators) atomically.

        The plan file (``out``, default the plan's own path) and, when applicators moved,
        the zone mask beside it appear together or not at all; the plan's provenance gets a
        ``workstation`` step with what was changed.
        """
        plan = self.case.plan.model_copy(deep=True)
        out = self.case.plan_path if out is None else Path(out)
        parameters: dict[str, Any] = {"changes": list(self.changes)}
        section = plan.trajectories
        if section is not None and self.selected is not None:
            chosen = self.selected.model_copy(update={"rank": 1})
            others = [
                p
                for p in section.paths
                if not np.allclose(p.entry_lps_mm, chosen.entry_lps_mm, atol=0.05)
            ]
            others = [p.model_copy(update={"rank": n}) for n, p in enumerate(others, start=2)]
            plan.trajectories = section.model_copy(update={"paths": [chosen, *others]})
            parameters["selected_entry_lps_mm"] = list(chosen.entry_lps_mm)
        zone: Volume | None = None
        if plan.ablation is not None and self.applicators != plan.ablation.applicators:
            metrics = self.ablation_metrics()
            zone = self.volume.with_array(
                np.asarray(zone_mask(self.volume, ellipsoids_of(self.applicators)).array, np.uint8)
            )
            plan.ablation = plan.ablation.model_copy(
                update={
                    "applicators": list(self.applicators),
                    "target_coverage_percent": metrics["target_coverage_percent"],
                    "lesion_coverage_percent": metrics["lesion_coverage_percent"],
                    "zone_volume_ml": metrics["zone_volume_ml"],
                    "healthy_ablated_ml": metrics["healthy_ablated_ml"],
                    "margin": type(plan.ablation.margin).model_validate(metrics["margin"]),
                    "zone_mask_path": zone_mask_name(out),
                }
            )
            parameters["applicators_moved"] = True
        plan.provenance.record("workstation", parameters, command)
        with staged_outputs(force=True) as stage:
            if zone is not None:
                write_volume(zone, stage.path(out.parent / zone_mask_name(out)), force=True)
            plan.save(stage.path(out), force=True)
        with self._lock:
            self.case.plan = plan
            self.changes = []
        return out


def _current(record: TrajectoryRecord | None, name: str) -> tuple[float, float, float]:
    if record is None:
        raise BadInputError(f"no path is selected: give {name} as well.")
    value: tuple[float, float, float] = getattr(record, name)
    return value


def open_workstation(
    plan_path: str | Path,
    ct_path: str | Path | None = None,
    *,
    score: bool = True,
    prefetch: bool = True,
) -> Workstation:
    """Read a plan with its CT (checked to belong together) for review.

    Parameters
    ----------
    plan_path : str or Path
    ct_path : str or Path, optional
        The CT when it no longer lies where the plan says.
    score : bool
        Start building the risk maps for re-scoring in the background (after the prefetch).
    prefetch : bool
        Build the volumes the page loads first (the preview, the CT and the labels at both
        resolutions) in the background.

    Raises
    ------
    SeldingerIOError, PlanCaseMismatchError, PlanFileError
        As :func:`~seldinger.workflow.case.load_plan_case`.
    """
    case = load_plan_case(plan_path, ct_path)
    plan = case.plan
    target = None
    lesion = None
    named = plan.trajectories.target if plan.trajectories is not None else None
    candidates = [t for t in plan.targets if t.mask_path and (named is None or t.name == named)]
    if candidates:
        target = candidates[0]
        lesion = case.target_mask(target)
    selected = None
    if plan.trajectories is not None and plan.trajectories.paths:
        selected = plan.trajectories.paths[0]
    applicators = [] if plan.ablation is None else list(plan.ablation.applicators)
    ws = Workstation(case, target, lesion, selected, applicators)
    if prefetch:
        ws._scoring_queued = score
        threading.Thread(
            target=ws.prefetch, args=(score,), name="seldinger-volumes", daemon=True
        ).start()
    elif score:
        ws.start_scoring()
    return ws
