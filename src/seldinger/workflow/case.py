"""A saved plan with what it points to: its CT, its anatomy masks, its target lesions.

Every step that extends a plan (ablation, seeds, report, export) starts here: the plan is
read and checked against its CT (same grid and voxels), masks are read and put on the CT's
grid (the same grid in another axis order is accepted; any other grid is refused).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seldinger.anatomy import ANATOMY_JSON, STRUCTURES, Anatomy, load_anatomy, map_masks
from seldinger.errors import MissingFileError
from seldinger.imaging import GeometryError, Volume, reorient
from seldinger.io import Ct, read_ct, read_volume
from seldinger.plan import AFFINE_ATOL_MM, Plan, PlanCaseMismatchError, PlanContentError, Target

__all__ = [
    "PlanCase",
    "ProgressCallback",
    "Stages",
    "load_plan_case",
    "on_grid",
    "open_target",
    "quiet_stages",
    "read_mask",
    "relative_to_plan",
]

#: ``callback(done, total)`` for a progress bar.
ProgressCallback = Callable[[int, int], None]
#: ``stages("what is being done")`` opens a stage (a progress bar in the CLI) and yields a
#: :data:`ProgressCallback` or None.
Stages = Callable[[str], AbstractContextManager[ProgressCallback | None]]


def quiet_stages(description: str) -> AbstractContextManager[ProgressCallback | None]:
    """A :data:`Stages` that shows nothing."""
    return nullcontext(None)


def on_grid(volume: Volume, reference: Volume, what: str, fix: str) -> Volume:
    """``volume``'s voxels on ``reference``'s grid (the same grid in any axis order), or raise.

    Raises
    ------
    GeometryError
        If ``volume`` lies on another grid; the message names ``what``, both grids and ``fix``.
    """
    if not volume.geometry.same_as(reference.geometry, atol_mm=AFFINE_ATOL_MM):
        given = volume.geometry
        volume = reorient(volume, reference.orientation)
        if not volume.geometry.same_as(reference.geometry, atol_mm=AFFINE_ATOL_MM):
            raise GeometryError(
                f"{what} is not on the CT's grid: {given!r}, CT {reference.geometry!r}. {fix}"
            )
    return reference.with_array(volume.array)


def read_mask(path: str | os.PathLike[str], ct: Volume, what: str, fix: str) -> Volume:
    """A bool mask read from ``path`` and put on the CT's grid.

    Raises
    ------
    SeldingerIOError
        If the file is missing.
    GeometryError
        If it lies on another grid.
    """
    file = Path(path)
    if not file.is_file():
        raise MissingFileError(f"the mask of {what} is missing: {file}. {fix}")
    mask = on_grid(read_volume(file), ct, f"the mask of {what} ({file})", fix)
    return mask.with_array(np.asarray(mask.array) > 0)


def relative_to_plan(path: str | os.PathLike[str], plan_path: str | os.PathLike[str]) -> str:
    """``path`` relative to the plan file's folder, with forward slashes (as plans store it)."""
    return Path(
        os.path.relpath(Path(path).absolute(), Path(plan_path).absolute().parent)
    ).as_posix()


@dataclass(eq=False)
class PlanCase:
    """A plan, where it is saved, and its CT; masks are read on first use.

    Attributes
    ----------
    plan : Plan
    plan_path : Path
    ct : Ct
        The plan's CT (checked against the plan's case identity).
    ct_path : Path
        Where the CT was read from.
    """

    plan: Plan
    plan_path: Path
    ct: Ct
    ct_path: Path
    _anatomy: Anatomy | None = field(default=None, repr=False)

    @property
    def volume(self) -> Volume:
        """The CT's voxels (HU, LPS mm)."""
        return self.ct.volume

    def target_mask(self, target: Target) -> Volume:
        """The target's lesion mask on the CT's grid (bool)."""
        if target.mask_path is None:
            raise PlanContentError(
                f"target {target.name!r} of {self.plan_path} has no lesion mask; plan the "
                "trajectory with --lesion MASK to add one."
            )
        return read_mask(
            self.plan_path.parent / target.mask_path,
            self.volume,
            f"target {target.name!r}",
            "Keep the masks where the plan points (paths relative to the plan file).",
        )

    def structure_mask(self, name: str) -> Volume:
        """A structure of the plan on the CT's grid (bool)."""
        ref = self.plan.structures.get(name)
        if ref is None:
            raise PlanContentError(
                f"{self.plan_path} has no structure {name!r}; it has {sorted(self.plan.structures)}."
            )
        return read_mask(
            ref.resolve(self.plan_path),
            self.volume,
            f"structure {name!r}",
            "Keep the masks where the plan points (paths relative to the plan file).",
        )

    def anatomy(self) -> Anatomy:
        """The plan's anatomy on the CT's grid (with the airway graph and vessel radii of its
        anatomy folder, when all its structures come from one).

        Raises
        ------
        PlanContentError
            If the plan has no body mask (no anatomy was added).
        """
        if self._anatomy is None:
            self._anatomy = self._read_anatomy()
        return self._anatomy

    def _read_anatomy(self) -> Anatomy:
        plan, ct = self.plan, self.volume
        names = [name for name in plan.structures if name in STRUCTURES]
        folders = {plan.structures[name].resolve(self.plan_path).parent for name in names}
        fix = "Segment this CT (`seldinger segment CT --out DIR`) and plan again."
        if len(folders) == 1 and (next(iter(folders)) / ANATOMY_JSON).is_file():
            folder = next(iter(folders))
            stored = load_anatomy(folder)
            return Anatomy(
                masks=map_masks(
                    stored.masks,
                    lambda name, mask: on_grid(mask, ct, f"the anatomy mask {folder / name}", fix),
                ),
                engine=stored.engine,
                notes=stored.notes,
                airway_graph=stored.airway_graph,
                volumes=map_masks(
                    stored.volumes,
                    lambda name, volume: on_grid(volume, ct, f"the {name} map in {folder}", fix),
                ),
                fingerprints=stored.fingerprints,
                folder=stored.folder,
                voxel_counts=stored.voxel_counts,
            )
        if "body" not in names:
            raise PlanContentError(
                f"the structures of {self.plan_path} have no body mask; run `seldinger plan "
                "trajectory` first (with an anatomy folder from `seldinger segment`)."
            )
        return Anatomy(masks={name: self.structure_mask(name) for name in names})


def plan_ct_path(plan: Plan, plan_path: Path, given: Path | None) -> Path:
    """Where the plan's CT is: ``given``, the recorded path, or that path beside the plan.

    Raises
    ------
    SeldingerIOError
        If none exists; the message says to pass ``--ct``.
    """
    if given is not None:
        if not given.exists():
            raise MissingFileError(f"--ct {given} does not exist.")
        return given
    recorded = Path(plan.case.source_path)
    # Where it was; beside the plan as recorded (relative paths of older plans); beside the
    # plan by name (a case folder moved whole). The voxel digest is checked afterwards.
    for candidate in (recorded, plan_path.parent / recorded, plan_path.parent / recorded.name):
        if candidate.exists():
            return candidate
    raise MissingFileError(
        f"the plan's CT {plan.case.source_path} (case.source_path of {plan_path}) is not there "
        "any more; pass its new location with --ct PATH."
    )


def load_plan_case(
    plan_path: str | os.PathLike[str],
    ct_path: str | os.PathLike[str] | None = None,
    *,
    resample: bool = False,
    stages: Stages = quiet_stages,
    plan: Plan | None = None,
) -> PlanCase:
    """Read a plan and its CT, and check they belong together.

    Parameters
    ----------
    plan_path : str or PathLike
        The plan file.
    ct_path : str or PathLike, optional
        The CT, when it no longer lies where the plan says (``case.source_path``).
    resample : bool
        Resample an irregular DICOM stack (as when the plan was made).
    stages : Stages
        Progress display.
    plan : Plan, optional
        The plan already read from ``plan_path``.

    Raises
    ------
    SeldingerIOError
        If the plan or its CT is missing.
    PlanCaseMismatchError
        If the CT is not the plan's (the message says to pass ``--ct``).
    """
    path = Path(plan_path)
    loaded = Plan.load(path) if plan is None else plan
    source = plan_ct_path(loaded, path, None if ct_path is None else Path(ct_path))
    with stages(f"reading {source.name}") as callback:
        ct = read_ct(
            source, series_uid=loaded.case.series_uid, resample=resample, progress=callback
        )
    try:
        loaded.check_case(ct.volume)
    except PlanCaseMismatchError as err:
        advice = (
            f"The CT given with --ct ({source}) is not the plan's: pass the one the plan was "
            "made on, or plan again on this CT."
            if ct_path is not None
            else f"The CT at {source} has changed since the plan was made: pass the plan's CT "
            "with --ct PATH, or plan again on this CT."
        )
        raise PlanCaseMismatchError(f"{' '.join(str(err).split())} {advice}") from err
    return PlanCase(loaded, path, ct, source)


def open_target(
    plan_path: Path,
    plan: Plan,
    target_name: str | None,
    ct_path: Path | None,
    resample: bool,
    stages: Stages,
    case: PlanCase | None = None,
) -> tuple[PlanCase, Target, Anatomy, Volume]:
    """What a treatment step works on: the plan's case, its target (by name, else the first
    with a mask), the anatomy and the target's lesion mask on the CT's grid.

    The target is checked before the CT is read, so a wrong name fails at once.
    """
    target = plan.target(target_name, with_mask=True)
    if case is None:
        case = load_plan_case(plan_path, ct_path, resample=resample, stages=stages, plan=plan)
    with stages("reading the anatomy and lesion"):
        anatomy = case.anatomy()
        lesion = case.target_mask(target)
    return case, target, anatomy, lesion
