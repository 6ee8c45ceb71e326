"""``seldinger pacs …``: echo, find, pull and push series with a PACS (DIMSE or DICOMweb).

Thin over :mod:`seldinger.pacs`: each command parses its options, calls one library
function and prints the result. Errors reach :func:`seldinger.app.cli.main`, which prints
one line and exits with the code of :class:`seldinger.errors.ExitCode` (6 PEER: the PACS is
down, refuses or fails; 3 BAD_INPUT: a node string, a file or a UID cannot be used; 5 IO:
an output exists).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from seldinger.app.common import (
    STATE,
    ForceOption,
    JsonOption,
    out_console,
    print_json,
    print_notes,
    progress,
)

if TYPE_CHECKING:
    from seldinger.pacs import PacsNode

__all__ = ["pacs_app"]

pacs_app = typer.Typer(
    rich_markup_mode="markdown",
    name="pacs",
    help=(
        "Talk to a PACS over DIMSE (C-ECHO, C-FIND, C-GET, C-STORE) or DICOMweb (QIDO-RS, "
        "WADO-RS, STOW-RS): check it answers, list series, pull a series into a folder, push "
        "files (de-identified by default: DICOM PS3.15 Basic profile, keyed stable UIDs).\n\n"
        "Name the PACS with `--dimse AET@HOST:PORT` (its AE title, host and DICOM port; the "
        "PACS must know our AE title, `--calling-aet`) or `--dicomweb URL`.\n\n"
        "Example: `seldinger pacs echo --dimse ORTHANC@127.0.0.1:4242`, then `seldinger pacs "
        "push ct_folder/ --dimse ORTHANC@127.0.0.1:4242`.\n\n"
        "Exit status: 0 done; 3 an input cannot be used (node, files, UID); 5 the output "
        "exists (use --force); 6 the PACS is down, refuses, times out or fails."
    ),
    no_args_is_help=True,
)

DimseOption = Annotated[
    str | None,
    typer.Option(
        "--dimse",
        metavar="AET@HOST:PORT",
        help="A DIMSE PACS: its AE title, host and DICOM port, e.g. ORTHANC@127.0.0.1:4242.",
        show_default=False,
    ),
]
DicomwebOption = Annotated[
    str | None,
    typer.Option(
        "--dicomweb",
        metavar="URL",
        help="A DICOMweb PACS: its base URL, e.g. http://127.0.0.1:8042/dicom-web.",
        show_default=False,
    ),
]
CallingAetOption = Annotated[
    str,
    typer.Option(
        "--calling-aet", help="Our AE title for DIMSE, as registered on the PACS (1-16 chars)."
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout-s",
        min=0.001,
        help="Seconds to wait for each network step (connect, association, each answer).",
    ),
]


def _quiet_libraries() -> None:
    """pynetdicom and dicomweb-client log each failure themselves; our error says it once."""
    level = logging.DEBUG if STATE.debug else logging.CRITICAL
    for name in ("pynetdicom", "dicomweb_client"):
        logging.getLogger(name).setLevel(level)


def _node(dimse: str | None, dicomweb: str | None, calling_aet: str) -> PacsNode:
    from seldinger.pacs import PacsNode

    if (dimse is None) == (dicomweb is None):
        raise typer.BadParameter(
            "give exactly one PACS: --dimse AET@HOST:PORT or --dicomweb URL.",
            param_hint="--dimse / --dicomweb",
        )
    _quiet_libraries()
    if dimse is not None:
        return PacsNode.parse(dimse, calling_aet=calling_aet)
    return PacsNode.dicomweb(str(dicomweb))


def _progress_callback(callback: Any) -> Callable[[int, int], None] | None:
    """The bar's ``callback(done, total)``, with an unknown total (0) shown as ``done``."""
    if callback is None:
        return None
    return lambda done, total: callback(done, max(total, done))


@pacs_app.command()
def echo(
    dimse: DimseOption = None,
    dicomweb: DicomwebOption = None,
    calling_aet: CallingAetOption = "SELDINGER",
    timeout_s: TimeoutOption = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Check that a PACS answers: a C-ECHO (DIMSE) or a one-study QIDO-RS query (DICOMweb).

    Example: `seldinger pacs echo --dimse ORTHANC@127.0.0.1:4242 --json`.
    """
    from seldinger.pacs import echo as pacs_echo

    result = pacs_echo(_node(dimse, dicomweb, calling_aet), timeout_s=timeout_s)
    if as_json:
        print_json(result.to_dict())
        return
    extra = f" (association {result.connect_ms:.1f} ms)" if result.protocol == "dimse" else ""
    out_console.print(
        f"{result.node} answers: {result.round_trip_ms:.1f} ms{extra}",
        highlight=False,
        markup=False,
    )


@pacs_app.command()
def find(
    dimse: DimseOption = None,
    dicomweb: DicomwebOption = None,
    patient_id: Annotated[
        str | None,
        typer.Option(
            "--patient-id", help="Patient ID (* and ? are wildcards).", show_default=False
        ),
    ] = None,
    study_uid: Annotated[
        str | None, typer.Option("--study-uid", help="Study Instance UID.", show_default=False)
    ] = None,
    series_uid: Annotated[
        str | None, typer.Option("--series-uid", help="Series Instance UID.", show_default=False)
    ] = None,
    modality: Annotated[
        str | None,
        typer.Option("--modality", help="Modality: CT, SEG, RTSTRUCT …", show_default=False),
    ] = None,
    calling_aet: CallingAetOption = "SELDINGER",
    timeout_s: TimeoutOption = 30.0,
    as_json: JsonOption = False,
) -> None:
    """List the series a PACS holds (C-FIND, Study Root; or QIDO-RS), filtered by the options.

    Example: `seldinger pacs find --dicomweb http://127.0.0.1:8042/dicom-web --modality CT`.
    """
    from seldinger.pacs import find as pacs_find

    node = _node(dimse, dicomweb, calling_aet)
    found = pacs_find(
        node,
        patient_id=patient_id,
        study_uid=study_uid,
        series_uid=series_uid,
        modality=modality,
        timeout_s=timeout_s,
    )
    if as_json:
        print_json({"node": str(node), "series": [s.to_dict() for s in found]})
        return
    table = Table(title=escape(f"{len(found)} series on {node}"))
    for column in ("patient_id", "study_uid", "series_uid", "modality", "images", "description"):
        table.add_column(column)
    for s in found:
        images = "" if s.number_of_instances is None else str(s.number_of_instances)
        cells = (s.patient_id, s.study_uid, s.series_uid, s.modality, images, s.series_description)
        table.add_row(*(escape(c) for c in cells))
    out_console.print(table)


@pacs_app.command()
def pull(
    series_uid: Annotated[
        str, typer.Argument(help="Series Instance UID (`seldinger pacs find` lists them).")
    ],
    out_dir: Annotated[
        Path,
        typer.Argument(help="Folder to create, one DICOM file per instance.", show_default=False),
    ],
    dimse: DimseOption = None,
    dicomweb: DicomwebOption = None,
    calling_aet: CallingAetOption = "SELDINGER",
    timeout_s: TimeoutOption = 30.0,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Retrieve one series into a new folder (C-GET or WADO-RS); all of it or nothing.

    The files arrive as the PACS stores them and appear only when the series is complete.

    Example: `seldinger pacs pull 2.25.4753… ct_pulled/ --dimse ORTHANC@127.0.0.1:4242`.
    """
    from seldinger.pacs import pull as pacs_pull

    with progress("pulling", not as_json) as callback:
        result = pacs_pull(
            _node(dimse, dicomweb, calling_aet),
            series_uid,
            out_dir,
            force=force,
            timeout_s=timeout_s,
            progress=_progress_callback(callback),
        )
    if as_json:
        print_json(result.to_dict())
        return
    megabytes = result.total_bytes / 1e6
    out_console.print(
        f"wrote {len(result.paths)} files ({megabytes:.1f} MB) to {result.out_dir} in "
        f"{result.elapsed_s:.2f} s",
        highlight=False,
        markup=False,
    )


@pacs_app.command()
def push(
    paths: Annotated[
        list[Path],
        typer.Argument(help="DICOM files, or folders searched recursively.", show_default=False),
    ],
    dimse: DimseOption = None,
    dicomweb: DicomwebOption = None,
    no_deidentify: Annotated[
        bool,
        typer.Option(
            "--no-deidentify",
            help="Send the files as they are, patient data included (only to a PACS allowed "
            "to hold it).",
        ),
    ] = False,
    calling_aet: CallingAetOption = "SELDINGER",
    timeout_s: TimeoutOption = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Send DICOM files to a PACS (C-STORE or STOW-RS), de-identified by default.

    De-identification follows DICOM PS3.15 Annex E (Basic profile): names, IDs, dates,
    institutions and free text removed or replaced, private tags removed, pixel data
    untouched. UIDs are replaced by keyed hashes, so a CT pushed today and its SEG or RT
    objects pushed later share one de-identified study. The key is `$SELDINGER_DEID_KEY`,
    else a random key made once in `~/.config/seldinger/deid-key` (keep it: a new key
    means new UIDs).

    Example: `seldinger pacs push ct_folder/ --dimse ORTHANC@127.0.0.1:4242 --json`.
    """
    from seldinger.pacs import load_deid_key
    from seldinger.pacs import push as pacs_push

    with progress("pushing", not as_json) as callback:
        node = _node(dimse, dicomweb, calling_aet)
        key, key_source = (None, "") if no_deidentify else load_deid_key()
        result = pacs_push(
            node,
            paths,
            deidentify=not no_deidentify,
            deid_key=key,
            timeout_s=timeout_s,
            progress=_progress_callback(callback),
        )
    if as_json:
        print_json({**result.to_dict(), "deid_key_source": key_source})
        return
    print_notes(result.notes)
    how = f"de-identified (key: {key_source})" if result.deidentified else "as they were"
    out_console.print(
        f"stored {len(result.stored_sop_instance_uids)} instances on {result.node}, {how}, "
        f"in {result.elapsed_s:.2f} s",
        highlight=False,
        markup=False,
    )
    for original, sent in result.series_uids.items():
        out_console.print(f"series {original} -> {sent}", highlight=False, markup=False)
    if result.skipped_paths:
        print_notes([f"skipped {len(result.skipped_paths)} files that are not DICOM"])
