"""What the ``seldinger`` commands share: consoles, options, progress, JSON, parsing.

Commands parse their options, call one library function and print; errors are
:class:`seldinger.errors.SeldingerError` raised by the library, turned into one line and an
exit code by :func:`seldinger.app.cli.main`.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = [
    "STATE",
    "CtArgument",
    "ForceOption",
    "JsonOption",
    "OfflineOption",
    "PlanArgument",
    "PlanCtOption",
    "ResampleOption",
    "SeriesOption",
    "command_line",
    "err_console",
    "jsonable",
    "name_paths",
    "out_console",
    "parse_box_lps",
    "parse_lps",
    "print_json",
    "print_notes",
    "print_written",
    "progress",
    "stages",
]


@dataclass
class AppState:
    """Settings of the running command (set by the root callback and ``main``)."""

    debug: bool = False
    quiet: bool = False
    argv: list[str] = field(default_factory=list)


#: The running command's settings.
STATE = AppState()
# soft_wrap: a line is never broken at the terminal's width (80 columns when there is no
# terminal), so a path or an error stays one line that scripts and users can copy; tables
# still fit the width.
err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)

CtArgument = Annotated[
    Path,
    typer.Argument(
        help="The CT: a DICOM folder (searched recursively) or file, NIfTI (.nii/.nii.gz), "
        "NRRD (.nrrd/.nhdr) or MetaImage (.mha/.mhd).",
        show_default=False,
    ),
]
PlanArgument = Annotated[
    Path,
    typer.Argument(
        metavar="PLAN", help="A plan (plan.json) written by Seldinger.", show_default=False
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


def command_line() -> str | None:
    """The command being run, as the plan's provenance records it."""
    return shlex.join(["seldinger", *STATE.argv]) if STATE.argv else None


@contextmanager
def progress(description: str, enabled: bool = True) -> Iterator[Any]:
    """A transient Rich progress bar on stderr; yields ``callback(done, total)`` or None.

    Shown only on a terminal (a log file or pipe gets no bar and no blank lines) and not
    with ``--quiet``.
    """
    if not enabled or STATE.quiet or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def stages(enabled: bool = True) -> Any:
    """A :data:`seldinger.workflow.case.Stages` showing each stage as a progress bar."""

    def open_stage(description: str) -> AbstractContextManager[Any]:
        return progress(description, enabled) if enabled else nullcontext(None)

    return open_stage


def print_notes(notes: Iterable[str]) -> None:
    """Each note as one yellow line on stderr (nothing with ``--quiet``)."""
    if STATE.quiet:
        return
    for note in notes:
        err_console.print(f"[yellow]note:[/] {' '.join(note.split())}", highlight=False)


def print_written(paths: Iterable[Path | str | None]) -> None:
    """``wrote PATH`` for each output."""
    for path in paths:
        if path is not None:
            out_console.print(f"wrote {path}", highlight=False)


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as None (strict JSON) and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(payload: Any, *, line: bool = False) -> None:
    """One JSON object on stdout: indented, or one compact flushed line (``line``)."""
    if line:
        sys.stdout.write(json.dumps(jsonable(payload), separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return
    sys.stdout.write(json.dumps(jsonable(payload), indent=2) + "\n")


def parse_box_lps(text: str, option: str) -> tuple[float, float, float, float, float, float]:
    """``X0,Y0,Z0,X1,Y1,Z1`` (two opposite corners, LPS mm) as six finite floats."""
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values: Sequence[float] = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise typer.BadParameter(
            f"expected six numbers X0,Y0,Z0,X1,Y1,Z1 (two opposite corners, finite, LPS mm); "
            f"got {text!r}.",
            param_hint=option,
        )
    return values[0], values[1], values[2], values[3], values[4], values[5]


def parse_lps(text: str, option: str) -> tuple[float, float, float]:
    """``X,Y,Z`` (LPS mm) as three finite floats; a usage error otherwise."""
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values: Sequence[float] = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise typer.BadParameter(
            f"expected three numbers X,Y,Z (finite, LPS mm); got {text!r}.", param_hint=option
        )
    return values[0], values[1], values[2]


def name_paths(items: list[str], option: str) -> dict[str, Path]:
    """``NAME=PATH`` options as a mapping."""
    found: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise typer.BadParameter(
                f"expected NAME=MASK (e.g. portal_vein=portal.nii.gz); got {item!r}.",
                param_hint=option,
            )
        found[name.strip()] = Path(path.strip())
    return found
