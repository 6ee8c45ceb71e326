"""``plan trajectory`` as a library step: CT + anatomy folder + target -> a plan with paths.

Reads the CT, the anatomy folder (``seldinger segment``) and the lesion mask, builds the
risk maps, searches every skin entry, and writes the plan (a new one, or the existing plan
of the same CT with ``force``: its structures and targets are kept) and the figures, all
or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.anatomy import Anatomy, load_anatomy, map_masks
from seldinger.anatomy.measure import lesion_measurements
from seldinger.anatomy.table import Position
from seldinger.errors import BadInputError
from seldinger.files import check_outputs, staged_outputs
from seldinger.imaging import Volume
from seldinger.io import Ct, read_ct, read_volume
from seldinger.plan import (
    Plan,
    PlanCaseMismatchError,
    PlanFileError,
    StructureRef,
    Target,
    TrajectoryRules,
    TrajectorySection,
)
from seldinger.planning.trajectory import (
    RiskMaps,
    TrajectoryConstraints,
    TrajectorySearch,
    plan_trajectories,
)
from seldinger.planning.trajectory.drawn import DrawnPath, score_drawn_path
from seldinger.planning.trajectory.maps import BIT_LUNG_LEFT, BIT_LUNG_RIGHT
from seldinger.workflow.case import Stages, on_grid, quiet_stages, relative_to_plan
from seldinger.workflow.position import PatientSetup, TableSideChoice, resolve_position

__all__ = ["TrajectoryOutcome", "TrajectoryRequest", "lesion_target", "plan_trajectory_step"]


@dataclass(frozen=True)
class TrajectoryRequest:
    """What ``seldinger plan trajectory`` was asked (see its ``--help``).

    Exactly one of ``target_lps_mm`` and ``lesion_path`` is given.
    """

    ct_path: Path
    anatomy_dir: Path
    out: Path
    target_lps_mm: tuple[float, float, float] | None = None
    lesion_path: Path | None = None
    rules: TrajectoryRules = field(default_factory=TrajectoryRules)
    top: int = 5
    figures_dir: Path | None = None
    series_uid: str | None = None
    resample: bool = False
    force: bool = False
    command: str | None = None
    position: Position | None = None
    table_side: TableSideChoice | None = None
    entry_lps_mm: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if (self.target_lps_mm is None) == (self.lesion_path is None):
            raise BadInputError(
                "give exactly one of a target point (--target-lps-mm X,Y,Z, LPS mm) or a "
                f"lesion mask (--lesion MASK); got {'both' if self.lesion_path else 'neither'}."
            )
        if self.top < 1:
            raise BadInputError(f"top must be at least 1 path; got {self.top}.")

    def parameters(self) -> dict[str, Any]:
        """The request as the plan's provenance records it."""
        return {
            "ct": str(self.ct_path),
            "anatomy": str(self.anatomy_dir),
            "target_lps_mm": None if self.target_lps_mm is None else list(self.target_lps_mm),
            "lesion": None if self.lesion_path is None else str(self.lesion_path),
            "top": self.top,
            "figures": None if self.figures_dir is None else str(self.figures_dir.absolute()),
            **self.rules.model_dump(mode="json"),
            "position_given": self.position,
            "table_side_given": self.table_side,
            "entry_lps_mm": None if self.entry_lps_mm is None else list(self.entry_lps_mm),
        }


@dataclass
class TrajectoryOutcome:
    """What the step made: the plan (saved), its section, the search, figures and notes."""

    plan: Plan
    section: TrajectorySection
    search: TrajectorySearch
    maps: RiskMaps
    figures: list[Path]
    notes: list[str]
    setup: PatientSetup | None = None
    drawn: DrawnPath | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the section, the search's counts and timings, files, notes."""
        search = self.search.summary()
        return {
            **search,
            "seconds": {
                **{f"maps_{step}": round(s, 3) for step, s in self.maps.seconds.items()},
                **search["seconds"],
            },
            "trajectories": self.section.model_dump(mode="json")["paths"],
            "position": None if self.setup is None else self.setup.position,
            "position_source": None if self.setup is None else self.setup.source,
            "table_side": self.section.rules.table_side,
            "drawn": None if self.drawn is None else self.drawn.to_dict(),
            "figures": [str(p) for p in self.figures],
            "notes": self.notes,
        }


def lesion_target(name: str, mask: Volume, mask_path: str, seed_lps_mm: Any = None) -> Target:
    """A plan target from a lesion mask: volume, centroid and diameters measured on it."""
    found = lesion_measurements(mask)
    x, y, z = (round(float(v), 2) for v in found["centroid_lps_mm"])
    return Target(
        name=name,
        centroid_lps_mm=(x, y, z),
        volume_ml=round(float(found["volume_ml"]), 3),
        mask_path=mask_path,
        seed_lps_mm=None if seed_lps_mm is None else tuple(seed_lps_mm),
        recist_diameter_mm=round(float(found["recist_diameter_mm"]), 2),
        max_diameter_mm=round(float(found["max_diameter_mm"]), 2),
    )


def _target_name(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        stem = stem.removesuffix(suffix)
    return stem or "lesion"


def plan_trajectory_step(
    request: TrajectoryRequest,
    stages: Stages = quiet_stages,
    *,
    ct: Ct | None = None,
    anatomy: Anatomy | None = None,
) -> TrajectoryOutcome:
    """Plan needle paths and write the plan and figures (see the module docstring).

    Parameters
    ----------
    request : TrajectoryRequest
    stages : Stages
        Progress display.
    ct, anatomy : optional
        The CT and anatomy already read from ``request.ct_path`` / ``request.anatomy_dir``
        (the demo passes them to skip reading them again).

    Raises
    ------
    NoSafePathError
        When no path is safe (its ``blocked_by`` says why); nothing is written.
    OutputExistsError, SeldingerIOError, GeometryError, TargetError, PlanFileError
        Bad outputs or inputs; nothing is written.
    """
    figure_names = []
    if request.figures_dir is not None:  # matplotlib: imported only to draw
        from seldinger.export.trajectory_figures import trajectory_figure_names

        figure_names = trajectory_figure_names(request.top)
    check_outputs(
        [request.out, *(request.figures_dir / n for n in figure_names if request.figures_dir)],
        request.force,
    )
    ct, anatomy, lesion = _read_inputs(request, stages, ct, anatomy)
    volume = ct.volume
    setup = resolve_position(ct, anatomy["body"], request.position, request.table_side)
    rules = request.rules.model_copy(
        update={"position": setup.position, "table_side": setup.table_side}
    )
    constraints = TrajectoryConstraints.from_rules(rules)
    with stages("building risk maps"):
        maps = RiskMaps.build(anatomy, constraints, lesion)
    with stages("searching paths"):
        search = plan_trajectories(maps, target_lps_mm=request.target_lps_mm, lesion=lesion)
    drawn = None
    if request.entry_lps_mm is not None:
        drawn = score_drawn_path(maps, search, request.entry_lps_mm)

    plan, notes = _plan_for(request, ct)
    vessel_notes = _vessel_notes(maps, search.target_lps_mm)
    notes.extend(vessel_notes)
    for name in anatomy.masks:
        if name not in plan.structures:
            plan.structures[name] = StructureRef(
                mask_path=relative_to_plan(request.anatomy_dir / f"{name}.nii.gz", request.out),
                volume_ml=round(anatomy.volume_ml(name), 3),
            )
    target_name = None
    if request.lesion_path is not None and lesion is not None:
        mask_path = relative_to_plan(request.lesion_path, request.out)
        existing = [t for t in plan.targets if t.mask_path == mask_path]
        if existing:
            target_name = existing[0].name
        else:
            target_name = _unique_name(plan, _target_name(request.lesion_path))
            plan.targets.append(lesion_target(target_name, lesion, mask_path))
    section = search.to_section(request.top, target_name)
    section.rules = section.rules.model_copy(update={"position": setup.position})
    # Kept with the paths, for the report: what the planner assumed or could not check.
    section.notes = [*ct.meta.notes, *setup.notes, *search.notes, *vessel_notes]
    if drawn is not None:
        section.paths = [drawn.trajectory.to_record()]
    if plan.trajectories is not None:
        notes.append(f"replaced the {len(plan.trajectories.paths)} trajectories of {request.out}.")
    plan.trajectories = section
    used = {"position": setup.position, "table_side": setup.table_side}
    plan.provenance.record("trajectory", {**request.parameters(), **used}, request.command)

    figures: list[Path] = []
    with staged_outputs(request.force) as stage:
        if request.figures_dir is not None:
            from seldinger.export.trajectory_figures import (
                NEEDLE_VIEWS,
                write_trajectory_figures,
            )

            scratch = stage.scratch(request.figures_dir)
            with stages("drawing figures"):
                shown = [drawn.trajectory] if drawn is not None else search.top(request.top)
                written = write_trajectory_figures(volume, search, shown, scratch, anatomy, lesion)
            figures = [stage.adopt(path, request.figures_dir / path.name) for path in written]
            for n in range(len(section.paths) + 1, NEEDLE_VIEWS + 1):  # an earlier run's
                stage.remove(request.figures_dir / f"needle_{n}.png")
        plan.save(stage.path(request.out), force=True)
    return TrajectoryOutcome(
        plan=plan,
        section=section,
        search=search,
        maps=maps,
        figures=figures,
        notes=[*ct.meta.notes, *setup.notes, *search.notes, *notes],
        setup=setup,
        drawn=drawn,
    )


def _read_inputs(
    request: TrajectoryRequest, stages: Stages, ct: Ct | None, anatomy: Anatomy | None
) -> tuple[Ct, Anatomy, Volume | None]:
    """The CT, the anatomy on its grid and the lesion mask (bool), read unless given."""
    if ct is None:
        with stages(f"reading {request.ct_path.name}") as callback:
            ct = read_ct(
                request.ct_path,
                series_uid=request.series_uid,
                resample=request.resample,
                progress=callback,
            )
    if anatomy is None:
        with stages(f"reading the anatomy in {request.anatomy_dir}"):
            anatomy = load_anatomy(request.anatomy_dir)
    anatomy = _on_ct_grid(anatomy, ct.volume, request)
    lesion = None
    if request.lesion_path is not None:
        mask = on_grid(
            read_volume(request.lesion_path),
            ct.volume,
            f"the lesion mask {request.lesion_path}",
            f"Segment the lesion on this CT: `seldinger lesion {request.ct_path} --seed-lps-mm "
            "X,Y,Z --out MASK`.",
        )
        lesion = mask.with_array(mask.array > 0)
    return ct, anatomy, lesion


def _unique_name(plan: Plan, name: str) -> str:
    taken = {t.name for t in plan.targets}
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} {n}", n + 1
    return candidate


def _on_ct_grid(anatomy: Anatomy, volume: Volume, request: TrajectoryRequest) -> Anatomy:
    if not anatomy.masks:
        raise BadInputError(
            f"the anatomy in {request.anatomy_dir} holds no masks; segment the CT again: "
            f"`seldinger segment {request.ct_path} --out {request.anatomy_dir} --force`."
        )
    fix = (
        f"Segment this CT: `seldinger segment {request.ct_path} --out DIR`, and pass --anatomy DIR."
    )
    return replace(
        anatomy,
        masks=map_masks(
            anatomy.masks,
            lambda name, mask: on_grid(
                mask, volume, f"the anatomy in {request.anatomy_dir} ({name})", fix
            ),
        ),
        volumes=map_masks(
            anatomy.volumes,
            lambda name, map_: on_grid(
                map_, volume, f"the {name} map in {request.anatomy_dir}", fix
            ),
        ),
    )


def _vessel_notes(maps: RiskMaps, target_lps_mm: npt.ArrayLike) -> list[str]:
    """A note when the target lies outside the lungs: the vessel mask is pulmonary only."""
    if "vessels" not in maps.distance_names:
        return []
    index = np.rint(maps.body.lps_to_index(np.asarray(target_lps_mm, dtype=float))).astype(int)
    if np.any(index < 0) or np.any(index >= np.asarray(maps.labels.shape)):
        return []
    label = maps.labels[int(index[0]), int(index[1]), int(index[2])]
    if label & (BIT_LUNG_LEFT | BIT_LUNG_RIGHT):
        return []
    return [
        "the target lies outside the lungs: the vessel mask holds pulmonary vessels only, so "
        "the vessels around it (e.g. the liver's portal and hepatic veins) are not avoided "
        "and the vessel column does not measure them; check the paths on a contrast phase."
    ]


def _plan_for(request: TrajectoryRequest, ct: Ct) -> tuple[Plan, list[str]]:
    """The plan to write: the existing one at ``out`` when it belongs to this CT, else new."""
    notes: list[str] = []
    if request.force and request.out.is_file():
        try:
            return Plan.load(request.out, volume=ct.volume), notes
        except (PlanFileError, PlanCaseMismatchError) as err:
            notes.append(f"{request.out} was replaced by a new plan: {' '.join(str(err).split())}")
    return Plan.for_ct(ct, command=request.command), notes
