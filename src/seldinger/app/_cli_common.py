"""What the ``seldinger`` commands share: consoles, state, options, progress, parsing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

_state: dict[str, bool] = {"debug": False}
#: The command line being run (``main`` sets it), recorded in the plans it writes.
_command_line: list[str] = []
_err = Console(stderr=True)
_out = Console()

CtArgument = Annotated[
    Path,
    typer.Argument(
        help="The CT: a DICOM folder (searched recursively) or file, NIfTI (.nii/.nii.gz), "
        "NRRD (.nrrd/.nhdr) or MetaImage (.mha/.mhd).",
        show_default=False,
    ),
]
SeriesOption = Annotated[
    str | None,
    typer.Option(
        "--series",
        help="SeriesInstanceUID to read when a DICOM folder holds several series "
        "(default: the largest axial CT series). `seldinger info DIR --list-series` lists them.",
    ),
]
ResampleOption = Annotated[
    bool,
    typer.Option(
        "--resample",
        help="Resample DICOM stacks with missing slices, uneven spacing or gantry tilt onto a "
        "uniform orthogonal grid (linear) instead of refusing them.",
    ),
]
PlanCtOption = Annotated[
    Path | None,
    typer.Option(
        "--ct",
        help="The plan's CT, when it no longer lies where the plan says (case.source_path).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object (for machines).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace existing output.")]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Do not download; use the synthetic thorax phantom.")
]


@contextmanager
def _progress(description: str, enabled: bool) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a ``callback(done, total)`` (or None)."""
    if not enabled or _state.get("quiet"):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _read_ct(path: Path, series: str | None, resample: bool, show_progress: bool) -> Any:
    from seldinger.io import read_ct

    with _progress(f"reading {path.name}", show_progress) as callback:
        return read_ct(path, series_uid=series, resample=resample, progress=callback)


def _notes(notes: Sequence[str]) -> None:
    if _state.get("quiet"):
        return
    for note in notes:
        _err.print(f"[yellow]note:[/] {note}", highlight=False)


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


def _parse_lps(text: str, option: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise typer.BadParameter(
            f"expected three numbers X,Y,Z in LPS mm; got {text!r}.", param_hint=option
        )
    return values[0], values[1], values[2]
