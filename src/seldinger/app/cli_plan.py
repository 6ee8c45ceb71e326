"""``seldinger plan …``: planning steps that write and extend a plan (plan.json)."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from seldinger.app._cli_common import (
    CtArgument,
    ForceOption,
    JsonOption,
    ResampleOption,
    SeriesOption,
    _command_line,
    _err,
    _notes,
    _out,
    _parse_lps,
    _print_json,
    _progress,
    _read_ct,
)

if TYPE_CHECKING:
    from seldinger.imaging import Volume
    from seldinger.planning import Plan
    from seldinger.planning.trajectory import NoSafePathError

__all__ = ["EXIT_NO_SAFE_PATH", "TABLE_DIRECTION_LPS", "TableSide", "plan_app"]

#: Exit status of ``seldinger plan trajectory`` when every skin candidate breaks a hard
#: constraint (distinct from 1, other errors, so that scripts can tell the two apart).
EXIT_NO_SAFE_PATH = 3

plan_app = typer.Typer(
    rich_markup_mode="markdown",
    name="plan",
    help=(
        "Planning steps that write and extend a plan (plan.json, the hand-over between "
        "steps, the viewer and later sessions).\n\n"
        "`plan trajectory` finds every safe straight needle path from the skin to a target "
        "and ranks them by risk.\n\n"
        "`plan ablation` places ablation applicators whose predicted zones cover the lesion "
        "and its margin, and checks the margin and heat sinks; `plan devices` lists the "
        "ablation devices.\n\n"
        "Example: `seldinger segment ct.nii.gz --out anatomy && seldinger plan trajectory "
        "ct.nii.gz --anatomy anatomy --lesion nodule.nii.gz --out plan.json && seldinger plan "
        "ablation plan.json --device emprint`."
    ),
    no_args_is_help=True,
)


class TableSide(StrEnum):
    """Side of the patient lying on the table."""

    posterior = "posterior"
    anterior = "anterior"


#: Direction from the patient towards the table (LPS): supine lies on the back (posterior).
TABLE_DIRECTION_LPS: dict[TableSide, tuple[float, float, float]] = {
    TableSide.posterior: (0.0, 1.0, 0.0),
    TableSide.anterior: (0.0, -1.0, 0.0),
}


@plan_app.command("trajectory")
def plan_trajectory(
    ct: CtArgument,
    anatomy_dir: Annotated[
        Path,
        typer.Option(
            "--anatomy",
            help="Anatomy folder of this CT, written by `seldinger segment CT --out DIR`.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Plan to write (plan.json). With --force, an existing plan of the same CT "
            "keeps its structures and targets and gets the new trajectories.",
            show_default=False,
        ),
    ],
    target_lps_mm: Annotated[
        str | None,
        typer.Option(
            "--target-lps-mm",
            help="Where the needle tip aims: X,Y,Z in DICOM patient LPS mm (or give --lesion).",
            show_default=False,
        ),
    ] = None,
    lesion: Annotated[
        Path | None,
        typer.Option(
            "--lesion",
            help="Lesion mask on this CT's grid (e.g. from `seldinger lesion`): the target is "
            "its centroid, and the needle must reach its far side. Added to the plan's targets.",
            show_default=False,
        ),
    ] = None,
    needle_length_mm: Annotated[
        float,
        typer.Option(
            "--needle-length-mm",
            help="Usable needle length in mm: skin to tip (to the lesion's far side with --lesion).",
        ),
    ] = 150.0,
    max_axial_angle_deg: Annotated[
        float | None,
        typer.Option(
            "--max-axial-angle-deg",
            help="Largest angle between the needle and the axial plane, in degrees (in-plane CT "
            "guidance keeps it small); default: no limit.",
            show_default=False,
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            "--top", min=1, help="How many distinct paths (entries >= 10 mm apart) to keep."
        ),
    ] = 5,
    vessel_calibre_mm: Annotated[
        float,
        typer.Option(
            "--vessel-calibre-mm",
            help="Vessels at least this wide (diameter, mm) are kept at --vessel-distance-mm.",
        ),
    ] = 3.0,
    vessel_distance_mm: Annotated[
        float,
        typer.Option(
            "--vessel-distance-mm",
            help="Closest allowed distance from the needle to such a vessel, mm.",
        ),
    ] = 3.0,
    forbid: Annotated[
        list[str] | None,
        typer.Option(
            "--forbid",
            help="Another structure of the anatomy no path may cross, besides bones, "
            "mediastinum, trachea and main bronchi (repeat it or separate names by commas: "
            "--forbid liver).",
            show_default=False,
        ),
    ] = None,
    table_side: Annotated[
        TableSide | None,
        typer.Option(
            "--table-side",
            help="Side the patient lies on: posterior (supine) or anterior (prone); entries "
            "from that side are refused.",
            show_default=False,
        ),
    ] = None,
    ablation_probe_length_mm: Annotated[
        float | None,
        typer.Option(
            "--ablation-probe-length-mm",
            help="Usable length (mm) of an ablation probe meant to share the biopsy tract; each "
            "path then says whether it serves both (dual_use).",
            show_default=False,
        ),
    ] = None,
    figures: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            help="Folder for pictures: paths_axial.png (the ranked paths), needle_1.png … "
            "(views along the 3 best needles) and skin_risk_map.png.",
            show_default=False,
        ),
    ] = None,
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Find every safe straight needle path from the skin to a target; rank them by risk.

    Every skin point within the needle's reach is tried. Paths through bone, mediastinum,
    trachea or main bronchi (or a --forbid structure), near a large vessel, leaving and
    re-entering the body, or breaking --max-axial-angle-deg or --table-side are refused.

    The safe ones are ranked by a risk score: the log odds of pneumothorax from published
    odds ratios (bulla or emphysema crossed, more than one pleural puncture, depth >= 3 cm),
    with needle length, lung length, pleural angle and vessel margin as tie-breakers.
    The best --top distinct paths are stored in the plan (all their metrics, LPS mm).

    Exit status: 0 with safe paths; 3 when no path is safe (the structures blocking the way
    are listed with how many candidates each refused; nothing is written); 1 for other
    errors (target outside the body or in bone, anatomy of another CT …); 2 for usage errors.

    Example: `seldinger plan trajectory ct.nii.gz --anatomy anatomy --lesion nodule.nii.gz
    --out plan.json --figures figures`.
    """
    from seldinger._files import check_overwrite
    from seldinger.anatomy import load_anatomy
    from seldinger.export import NEEDLE_VIEWS, trajectory_figure_names, write_trajectory_figures
    from seldinger.io import read_volume
    from seldinger.planning import StructureRef
    from seldinger.planning.trajectory import (
        NoSafePathError,
        RiskMaps,
        TrajectoryConstraints,
        plan_trajectories,
    )

    if (target_lps_mm is None) == (lesion is None):
        raise typer.BadParameter(
            "give exactly one of --target-lps-mm X,Y,Z (a point, LPS mm) or --lesion MASK (a "
            f"lesion mask); got {'both' if lesion is not None else 'neither'}.",
            param_hint="'--target-lps-mm' / '--lesion'",
        )
    target = None if target_lps_mm is None else _parse_lps(target_lps_mm, "--target-lps-mm")
    forbidden = tuple(
        dict.fromkeys(name.strip() for item in forbid or () for name in item.split(","))
    )
    constraints = TrajectoryConstraints(
        needle_length_mm=needle_length_mm,
        vessel_calibre_mm=vessel_calibre_mm,
        vessel_distance_mm=vessel_distance_mm,
        forbidden=tuple(name for name in forbidden if name),
        max_axial_angle_deg=max_axial_angle_deg,
        table_direction_lps=None if table_side is None else TABLE_DIRECTION_LPS[table_side],
        ablation_probe_length_mm=ablation_probe_length_mm,
    )
    check_overwrite(out, force)
    if figures is not None:
        for name in trajectory_figure_names(top):
            check_overwrite(figures / name, force)

    loaded = _read_ct(ct, series, resample, show_progress=not as_json)
    volume = loaded.volume
    with _progress(f"reading the anatomy in {anatomy_dir}", not as_json):
        anatomy = load_anatomy(anatomy_dir)
    if not anatomy.masks:
        raise ValueError(
            f"the anatomy in {anatomy_dir} holds no masks; segment the CT again: "
            f"`seldinger segment {ct} --out {anatomy_dir} --force`."
        )
    first = next(iter(anatomy.masks))
    _on_grid(
        anatomy[first],
        volume,
        f"the anatomy in {anatomy_dir} ({first}.nii.gz)",
        f"Segment this CT: `seldinger segment {ct} --out DIR`, and pass --anatomy DIR.",
    )
    lesion_mask = None
    if lesion is not None:
        lesion_mask = _on_grid(
            read_volume(lesion),
            anatomy[first],
            f"the lesion mask {lesion}",
            f"Segment the lesion on this CT: `seldinger lesion {ct} --seed-lps-mm X,Y,Z "
            "--out MASK`.",
        )
        lesion_mask = lesion_mask.with_array(lesion_mask.array > 0)

    with _progress("building risk maps", not as_json):
        maps = RiskMaps.build(anatomy, constraints, lesion_mask)
    with _progress("searching paths", not as_json):
        try:
            search = plan_trajectories(maps, target_lps_mm=target, lesion=lesion_mask)
        except NoSafePathError as err:
            _no_safe_path(err, as_json)
    paths = search.top(top)

    parameters: dict[str, Any] = {
        "anatomy": str(anatomy_dir),
        "target_lps_mm": None if target is None else list(target),
        "lesion": None if lesion is None else str(lesion),
        "needle_length_mm": needle_length_mm,
        "max_axial_angle_deg": max_axial_angle_deg,
        "top": top,
        "vessel_calibre_mm": vessel_calibre_mm,
        "vessel_distance_mm": vessel_distance_mm,
        "forbidden": list(constraints.forbidden),
        "table_side": None if table_side is None else table_side.value,
        "ablation_probe_length_mm": ablation_probe_length_mm,
    }
    plan, notes = _plan_for(out, loaded, force, parameters)
    for name in anatomy.masks:
        if name not in plan.structures:
            plan.structures[name] = StructureRef(
                mask_path=_relative(anatomy_dir / f"{name}.nii.gz", out),
                volume_ml=round(anatomy.volume_ml(name), 3),
            )
    if lesion is not None and lesion_mask is not None:
        _add_target(plan, lesion, lesion_mask, out)
    plan.trajectories = [p.to_dict() for p in paths]

    written: list[Path] = []
    drawn: list[Path] = []
    scratch = None
    try:
        if figures is not None:
            parent = figures.absolute().parent
            parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{figures.name}.", suffix=".part", dir=parent))
            with _progress("drawing figures", not as_json):
                drawn = write_trajectory_figures(
                    volume, search, paths, scratch, anatomy, lesion_mask
                )
            figures.mkdir(parents=True, exist_ok=True)
        plan.save(out, force=force)
        if figures is not None:
            for path in drawn:
                os.replace(path, figures / path.name)
                written.append(figures / path.name)
            for n in range(len(paths) + 1, NEEDLE_VIEWS + 1):  # stale views of an earlier run
                (figures / f"needle_{n}.png").unlink(missing_ok=True)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    notes = [*loaded.meta.notes, *search.notes, *notes]
    summary = search.summary()
    summary["seconds"] = {
        **{f"maps_{step}": round(s, 3) for step, s in maps.seconds.items()},
        **summary["seconds"],
    }
    summary = {
        **summary,
        "trajectories": plan.trajectories,
        "plan": str(out),
        "figures": [str(p) for p in written],
        "notes": notes,
    }
    if as_json:
        _print_json(summary)
        return
    _notes(notes)
    _out.print(_paths_table(summary))
    _out.print(_blocked_table(summary["blocked_by"], summary["n_candidates"]))
    _out.print(f"wrote {out}", highlight=False)
    for path in written:
        _out.print(f"wrote {path}", highlight=False)


def _on_grid(volume: Volume, reference: Volume, what: str, fix: str) -> Volume:
    """``volume``'s voxels on ``reference``'s grid (the same grid in any axis order), or raise."""
    from seldinger.imaging import GeometryError, reorient
    from seldinger.planning import AFFINE_ATOL_MM

    if not volume.geometry.same_as(reference.geometry, atol_mm=AFFINE_ATOL_MM):
        given = volume.geometry
        volume = reorient(volume, reference.orientation)
        if not volume.geometry.same_as(reference.geometry, atol_mm=AFFINE_ATOL_MM):
            raise GeometryError(
                f"{what} is not on the CT's grid: {given!r}, CT {reference.geometry!r}. {fix}"
            )
    return reference.with_array(volume.array)


def _no_safe_path(err: NoSafePathError, as_json: bool) -> None:
    """Report a search that found no safe path, then exit with :data:`EXIT_NO_SAFE_PATH`."""
    from seldinger.planning.trajectory import NeedleTooShortError

    message = " ".join(str(err).split())
    if as_json:
        payload: dict[str, Any] = {
            "error": message,
            "blocked_by": dict(err.blocked_by),
            "n_candidates": err.n_candidates,
        }
        if isinstance(err, NeedleTooShortError):
            payload["shallowest_mm"] = round(err.shallowest_mm, 2)
        _print_json(payload)
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if not as_json:
        _err.print(_blocked_table(err.blocked_by, err.n_candidates))
    raise typer.Exit(EXIT_NO_SAFE_PATH)


def _plan_for(
    out: Path, loaded: Any, force: bool, parameters: dict[str, Any]
) -> tuple[Plan, list[str]]:
    """The plan to write: the existing one at ``out`` when it belongs to this CT, else a new one."""
    from seldinger.planning import Plan, PlanCaseMismatchError, PlanFileError

    command = shlex.join(["seldinger", *_command_line]) if _command_line else None
    notes = []
    if force and out.is_file():
        try:
            plan = Plan.load(out, volume=loaded.volume)
        except (PlanFileError, PlanCaseMismatchError) as err:
            notes.append(f"{out} was replaced by a new plan: {' '.join(str(err).split())}")
        else:
            plan.provenance.parameters["trajectory"] = parameters
            if plan.trajectories:
                notes.append(f"replaced the {len(plan.trajectories)} trajectories of {out}.")
            return plan, notes
    plan = Plan.new(
        loaded.volume,
        source_path=loaded.meta.source_path,
        series_uid=loaded.meta.series_uid,
        parameters={"trajectory": parameters},
        command=command,
    )
    return plan, notes


def _relative(path: Path, plan_path: Path) -> str:
    """``path`` relative to the plan file's folder, with forward slashes."""
    return Path(os.path.relpath(path.absolute(), plan_path.absolute().parent)).as_posix()


def _add_target(plan: Plan, source: Path, mask: Volume, plan_path: Path) -> None:
    """Add the lesion mask as a target of ``plan`` (unless a target already uses that file)."""
    import numpy as np

    from seldinger.planning import Target

    mask_path = _relative(source, plan_path)
    if any(t.mask_path == mask_path for t in plan.targets):
        return
    ijk = np.argwhere(mask.array)
    x, y, z = mask.index_to_lps(ijk.mean(axis=0))
    name = source.name.removesuffix(".gz").removesuffix(".nii").removesuffix(".nrrd")
    plan.targets.append(
        Target(
            name=name or "lesion",
            centroid_lps_mm=(round(float(x), 2), round(float(y), 2), round(float(z), 2)),
            volume_ml=round(len(ijk) * float(np.prod(mask.spacing_mm)) / 1000.0, 3),
            mask_path=mask_path,
        )
    )


def _mm(value: float | None) -> str:
    """A distance for the table; None is "far" (beyond the planner's 100 mm cap)."""
    return "> 100" if value is None else f"{value:.1f}"


def _paths_table(summary: dict[str, Any]) -> Table:
    target = ", ".join(f"{v:.1f}" for v in summary["target_lps_mm"])
    table = Table(
        title=f"Best {len(summary['trajectories'])} of {summary['n_safe']} safe paths "
        f"({summary['n_candidates']} skin candidates) to ({target}) LPS mm"
    )
    for column in (
        "rank",
        "length\nmm",
        "lung\nmm",
        "pleural\ncrossings",
        "vessel\nmm",
        "bone\nmm",
        "axial\nangle °",
        "risk",
        "pareto",
    ):
        table.add_column(column, justify="left" if column == "pareto" else "right")
    for path in summary["trajectories"]:
        distance = path["min_distance_mm"]
        table.add_row(
            str(path["rank"]),
            f"{path['length_mm']:.1f}",
            f"{path['lung_length_mm']:.1f}",
            str(path["pleural_crossings"]),
            _mm(distance["vessels"]) if "vessels" in distance else "—",
            _mm(distance["bones"]) if "bones" in distance else "—",
            f"{path['axial_angle_deg']:.1f}",
            f"{path['risk_score']:.3f}",
            "yes" if path["pareto"] else "",
        )
    return table


def _blocked_table(blocked_by: dict[str, int], n_candidates: int) -> Table:
    table = Table(title="Refused skin candidates")
    table.add_column("reason")
    table.add_column(f"candidates (of {n_candidates})", justify="right")
    for reason, count in sorted(blocked_by.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, str(count))
    return table


# --- plan devices / plan ablation ----------------------------------------------------
