"""The PACS client: ``echo``, ``find``, ``pull`` and ``push`` over DIMSE or DICOMweb.

Each function takes a :class:`~seldinger.pacs.node.PacsNode` and picks the protocol from
it. Guarantees:

- ``pull`` writes the series into a temporary folder beside ``out_dir`` and renames it
  only when every instance has arrived: on any failure nothing is left on disk.
- ``push`` reads, checks and de-identifies every file in memory, and checks that each
  encodes, before it opens a connection; over DIMSE it checks that the PACS accepted
  every needed presentation context before it sends the first instance; when a store
  fails mid-way the error lists the instances stored before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from seldinger.errors import SeldingerError, SeldingerIOError
from seldinger.files import atomic_dir, check_overwrite

from .deid import DeidKey
from .deid import deidentify as deidentify_dataset
from .dicomweb import web_echo, web_find, web_get_series, web_store
from .dimse import dimse_echo, dimse_find, dimse_get_series, dimse_store
from .errors import PacsInputError, SeriesNotFoundError
from .local_files import read_instances
from .node import PacsNode, Protocol
from .query import SeriesQuery, check_uid
from .results import EchoResult, ProgressCallback, PullResult, PushResult, SeriesSummary

__all__ = ["DEFAULT_TIMEOUT_S", "echo", "find", "pull", "push"]

logger = logging.getLogger(__name__)

#: Default bound on every network wait (connect, association, each response), seconds.
DEFAULT_TIMEOUT_S = 30.0


def _check_timeout(timeout_s: float) -> None:
    if not timeout_s > 0:
        raise PacsInputError(
            f"timeout_s must be a positive number of seconds; got {timeout_s!r}, e.g. 30."
        )


def echo(node: PacsNode, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> EchoResult:
    """Check that a PACS answers: a C-ECHO (DIMSE) or a one-study QIDO-RS query (DICOMweb).

    Parameters
    ----------
    node : PacsNode
        The PACS.
    timeout_s : float
        Bound on each network wait, in seconds.

    Returns
    -------
    EchoResult
        With the round-trip time in milliseconds.

    Raises
    ------
    PacsPeerError
        The PACS is down, refuses us, times out or answers a failure.
    """
    _check_timeout(timeout_s)
    if node.protocol is Protocol.DIMSE:
        return dimse_echo(node, timeout_s)
    return web_echo(node, timeout_s)


def find(
    node: PacsNode,
    *,
    patient_id: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    modality: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[SeriesSummary]:
    """List the series a PACS holds that match every given filter.

    Parameters
    ----------
    node : PacsNode
        The PACS.
    patient_id : str, optional
        Patient ID (``*`` and ``?`` are wildcards).
    study_uid, series_uid : str, optional
        Study / Series Instance UID.
    modality : str, optional
        ``CT``, ``SEG``, ``RTSTRUCT`` …
    timeout_s : float
        Bound on each network wait, in seconds.

    Returns
    -------
    list of SeriesSummary
        Sorted by study, series number and series UID; empty when nothing matches.

    Raises
    ------
    PacsInputError
        A filter is malformed (e.g. not a UID).
    PacsPeerError
        The PACS is down, refuses us, times out or answers a failure.
    """
    _check_timeout(timeout_s)
    query = SeriesQuery(patient_id, study_uid, series_uid, modality)
    if node.protocol is Protocol.DIMSE:
        found = dimse_find(node, query, timeout_s)
    else:
        found = web_find(node, query, timeout_s)
    return sorted(
        found,
        key=lambda s: (s.study_uid, s.series_number is None, s.series_number or 0, s.series_uid),
    )


def pull(
    node: PacsNode,
    series_uid: str,
    out_dir: str | Path,
    *,
    force: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: ProgressCallback | None = None,
) -> PullResult:
    """Retrieve one series into ``out_dir``, one Part-10 file per instance, all or nothing.

    DIMSE uses C-GET (the instances come back on the same association; no C-MOVE
    destination to configure); DICOMweb uses WADO-RS. Instances arrive in the transfer
    syntax the PACS stores them in.

    Parameters
    ----------
    node : PacsNode
        The PACS.
    series_uid : str
        SeriesInstanceUID (``find`` lists them).
    out_dir : str or Path
        Folder to create; it holds only this series' files, named ``<SOPInstanceUID>.dcm``.
    force : bool
        Replace an existing ``out_dir`` (only once the new series is complete).
    timeout_s : float
        Bound on each network wait, in seconds.
    progress : callable, optional
        Called as ``progress(done, total)`` after each instance (``total`` from the
        PACS's count, 0 if unknown).

    Returns
    -------
    PullResult

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``force`` is false (checked before any network use).
    SeriesNotFoundError
        The PACS holds no such series.
    PacsPeerError
        The PACS is down, refuses us, times out, answers a failure or sends only part of
        the series.
    SeldingerIOError
        The folder cannot be written.
    """
    start_s = time.perf_counter()
    _check_timeout(timeout_s)
    series_uid = check_uid(series_uid, "series_uid")
    target = Path(out_dir)
    check_overwrite(target, force)  # before any network use
    matches = find(node, series_uid=series_uid, timeout_s=timeout_s)
    if not matches:
        raise SeriesNotFoundError(
            f"{node} holds no series {series_uid}. List what it holds with `seldinger pacs "
            "find` (a pushed series has a new, de-identified UID)."
        )
    summary = matches[0]
    get = dimse_get_series if node.protocol is Protocol.DIMSE else web_get_series
    try:
        with atomic_dir(target, force=force) as folder:
            paths, total_bytes = get(
                node,
                summary.study_uid,
                series_uid,
                folder,
                timeout_s,
                expected=summary.number_of_instances or 0,
                progress=progress,
            )
    except SeldingerError:
        raise
    except OSError as err:
        raise SeldingerIOError(
            f"cannot write the series into {target}: {err}. Free disk space or choose "
            "another folder; nothing was kept."
        ) from err
    final = [target / p.name for p in paths]
    logger.info("pulled %d instances of %s from %s", len(final), series_uid, node)
    return PullResult(
        node=str(node),
        series_uid=series_uid,
        out_dir=target,
        paths=tuple(final),
        total_bytes=total_bytes,
        elapsed_s=time.perf_counter() - start_s,
    )


def _check_encodes(dataset: Dataset, path: Path) -> None:
    """Encode once in the file's transfer syntax, so no instance fails after sending began."""
    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        encoded = encode(
            dataset, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
        )
    except Exception as err:  # any failure to encode a local file is bad input
        raise PacsInputError(
            f"{path} cannot be encoded for sending ({type(err).__name__}: {err}). Export it "
            "again, or leave it out."
        ) from err
    if encoded is None:
        raise PacsInputError(
            f"{path} cannot be encoded in its transfer syntax {syntax.name}. Export it "
            "again, or leave it out."
        )


def push(
    node: PacsNode,
    paths: Iterable[str | Path],
    *,
    deidentify: bool = True,
    deid_key: DeidKey | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: ProgressCallback | None = None,
) -> PushResult:
    """Send DICOM files to a PACS, de-identified by default (PS3.15 Basic profile).

    Parameters
    ----------
    node : PacsNode
        The PACS.
    paths : iterable of str or Path
        DICOM Part-10 files, or folders searched recursively (other files in them are
        skipped and reported).
    deidentify : bool
        Apply :func:`seldinger.pacs.deid.deidentify` to every instance before sending.
    deid_key : DeidKey, optional
        Required when ``deidentify``: the secret that makes replacement UIDs and patient
        pseudonyms stable, so objects pushed later reference the same study.
    timeout_s : float
        Bound on each network wait, in seconds.
    progress : callable, optional
        Called as ``progress(done, total)`` after each instance stored.

    Returns
    -------
    PushResult
        Stored SOP Instance UIDs and each series' and study's UID as sent.

    Raises
    ------
    PacsInputError
        No files, a file that is not DICOM or cannot be encoded, burned-in annotation
        with ``deidentify``, duplicate instances, or ``deidentify`` without ``deid_key``.
    SeldingerIOError
        A path does not exist or cannot be read.
    PacsPeerError
        The PACS is down, refuses us, does not accept a SOP class or transfer syntax
        (nothing sent), times out or answers a failure (the error lists what was stored).
    """
    start_s = time.perf_counter()
    _check_timeout(timeout_s)
    if deidentify and deid_key is None:
        raise PacsInputError(
            "deidentify=True needs deid_key (a DeidKey); load it with "
            "seldinger.pacs.load_deid_key(), or pass deidentify=False to send the files as "
            "they are."
        )
    local = read_instances(paths, refuse_burned_in=deidentify)
    series_uids: dict[str, str] = {}
    study_uids: dict[str, str] = {}
    outgoing: list[Dataset] = []
    uid_cache: dict[str, str] = {}
    for instance in local.instances:
        original = instance.dataset
        series_uid, study_uid = str(original.SeriesInstanceUID), str(original.StudyInstanceUID)
        sent = original
        if deid_key is not None and deidentify:
            sent = deidentify_dataset(original, deid_key, uid_cache=uid_cache, in_place=True)
        _check_encodes(sent, instance.path)
        series_uids[series_uid] = str(sent.SeriesInstanceUID)
        study_uids[study_uid] = str(sent.StudyInstanceUID)
        outgoing.append(sent)
    store = dimse_store if node.protocol is Protocol.DIMSE else web_store
    stored = store(node, outgoing, timeout_s, progress=progress)
    logger.info("pushed %d instances to %s", len(stored), node)
    return PushResult(
        node=str(node),
        stored_sop_instance_uids=tuple(stored),
        series_uids=series_uids,
        study_uids=study_uids,
        deidentified=deidentify,
        skipped_paths=tuple(local.skipped),
        notes=tuple(local.notes),
        elapsed_s=time.perf_counter() - start_s,
    )
