"""DICOMweb: QIDO-RS (find, echo) and STOW-RS with dicomweb-client, WADO-RS streamed.

Every request is bounded by ``timeout_s`` (connect and each read) and is not retried
(dicomweb-client's default retries up to five times with back-off, which would hide a
PACS that is down for a minute). Failures raise
:class:`~seldinger.pacs.errors.PacsPeerError` naming the URL, what failed and the fix.

References
----------
.. [1] DICOM PS3.18 10.4 (Retrieve, WADO-RS), 10.5 (Store, STOW-RS), 10.6 (Search, QIDO-RS).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.dataset import Dataset

from .errors import PacsPeerError
from .multipart import MultipartError, boundary_of, iter_parts
from .node import PacsNode
from .query import SeriesQuery
from .results import EchoResult, ProgressCallback, SeriesSummary

__all__ = ["web_echo", "web_find", "web_get_series", "web_store"]

logger = logging.getLogger(__name__)

#: Ask for each instance in the transfer syntax it is stored in (PS3.18 8.7.3.5.2): no
#: transcoding by the server, nothing lost.
_ACCEPT_AS_STORED = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
#: Read size of a streamed answer.
_CHUNK_BYTES = 1 << 20
_PREAMBLE_BYTES = 128
_UID_CHARS = re.compile(r"[0-9.]{1,64}")
_SERIES_FIELDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientID",
    "StudyDate",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
)
_HTTP_FIXES = {
    401: "The server wants a login, which this client does not send; use a PACS node that "
    "answers without one (e.g. on loopback or a VPN).",
    403: "The server refuses this client; ask its administrator for access.",
    404: "Is the base URL right (Orthanc: http://HOST:8042/dicom-web) and DICOMweb enabled?",
}


def _client(node: PacsNode, timeout_s: float) -> DICOMwebClient:
    client = DICOMwebClient(node.url, timeout=(timeout_s, timeout_s))
    client.set_http_retry_params(retry=False)
    return client


@contextmanager
def _http_errors(node: PacsNode, what: str, timeout_s: float) -> Iterator[None]:
    """Turn requests' and dicomweb-client's exceptions into one-line PacsPeerErrors."""
    try:
        yield
    except requests.exceptions.Timeout as err:
        raise PacsPeerError(
            f"{what} on {node} failed: no answer within {timeout_s:g} s. Is the server up "
            "and reachable? On a slow network or a busy PACS raise --timeout-s."
        ) from err
    except requests.exceptions.ConnectionError as err:
        reason = "connection refused" if "refused" in str(err).lower() else "no connection"
        raise PacsPeerError(
            f"no DICOMweb answer from {node}: {reason}. Is the PACS running, and are host, "
            "port and path right?"
        ) from err
    except requests.exceptions.HTTPError as err:
        status = err.response.status_code if err.response is not None else 0
        fix = _HTTP_FIXES.get(
            status,
            "Check the server's log." if status >= 500 else "Check the request values.",
        )
        raise PacsPeerError(f"{what} on {node} failed: HTTP {status}. {fix}") from err
    except requests.exceptions.RequestException as err:
        raise PacsPeerError(f"{what} on {node} failed: {err}. Check the URL.") from err
    except (ValueError, KeyError) as err:  # dicomweb-client: an answer it cannot parse
        raise PacsPeerError(
            f"{what} on {node} failed: unexpected answer ({err}). Is this a DICOMweb "
            "service (QIDO-RS, WADO-RS, STOW-RS)?"
        ) from err


def web_echo(node: PacsNode, timeout_s: float) -> EchoResult:
    """A QIDO-RS search for one study: the DICOMweb stand-in for C-ECHO."""
    client = _client(node, timeout_s)
    with _http_errors(node, "QIDO-RS echo", timeout_s):
        sent_s = time.perf_counter()
        client.search_for_studies(limit=1, fields=["StudyInstanceUID"])
        answered_s = time.perf_counter()
    return EchoResult(
        node=str(node), protocol="dicomweb", round_trip_ms=(answered_s - sent_s) * 1e3
    )


def _text(dataset: Dataset, keyword: str) -> str:
    return str(dataset.get(keyword, "") or "")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _wildcard_pattern(value: str) -> re.Pattern[str]:
    """PS3.4 C.2.2.2.4 wildcard matching: ``*`` any run of characters, ``?`` one."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    )


def web_find(node: PacsNode, query: SeriesQuery, timeout_s: float) -> list[SeriesSummary]:
    """QIDO-RS ``/series`` (or ``/studies/{uid}/series``) with the query's filters."""
    # A wildcard Patient ID is matched here, not by the server: dicomweb-client sends "*"
    # and "?" percent-encoded, which Orthanc 1.10 (DICOMweb plugin 1.7) does not decode.
    wildcard = bool(query.patient_id) and any(c in str(query.patient_id) for c in "*?")
    filters = {
        key: value
        for key, value in (
            ("PatientID", None if wildcard else query.patient_id),
            ("SeriesInstanceUID", query.series_uid),
            ("Modality", query.modality),
        )
        if value
    }
    client = _client(node, timeout_s)
    with _http_errors(node, "QIDO-RS search", timeout_s):
        answers = client.search_for_series(
            study_instance_uid=query.study_uid,
            search_filters=filters,
            fields=list(_SERIES_FIELDS),
            get_remaining=True,
        )
        datasets = [Dataset.from_json(answer) for answer in answers]
    if wildcard:
        pattern = _wildcard_pattern(str(query.patient_id))
        datasets = [d for d in datasets if pattern.fullmatch(_text(d, "PatientID"))]
    return [
        SeriesSummary(
            study_uid=_text(d, "StudyInstanceUID") or (query.study_uid or ""),
            series_uid=_text(d, "SeriesInstanceUID"),
            patient_id=_text(d, "PatientID"),
            modality=_text(d, "Modality"),
            series_description=_text(d, "SeriesDescription"),
            series_number=_int_or_none(d.get("SeriesNumber")),
            number_of_instances=_int_or_none(d.get("NumberOfSeriesRelatedInstances")),
            study_date=_text(d, "StudyDate"),
        )
        for d in datasets
    ]


def _sop_instance_uid(content: bytes, node: PacsNode) -> str:
    """The SOP Instance UID of a Part-10 file in memory (file meta, else the dataset)."""
    if content[_PREAMBLE_BYTES : _PREAMBLE_BYTES + 4] != b"DICM":
        raise PacsPeerError(
            f"WADO-RS retrieve on {node} failed: a part of the answer is not a DICOM file. "
            "Is this a DICOMweb service?"
        )
    header = dcmread(BytesIO(content), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
    uid = str(header.file_meta.get("MediaStorageSOPInstanceUID", "") or "")
    uid = uid or str(header.get("SOPInstanceUID", "") or "")
    if not _UID_CHARS.fullmatch(uid):
        raise PacsPeerError(
            f"WADO-RS retrieve on {node} failed: an instance has an invalid SOP Instance UID "
            f"{uid!r}. Report it to the PACS administrator."
        )
    return uid


def web_get_series(
    node: PacsNode,
    study_uid: str,
    series_uid: str,
    folder: Path,
    timeout_s: float,
    *,
    expected: int = 0,
    progress: ProgressCallback | None = None,
) -> tuple[list[Path], int]:
    """WADO-RS one series into ``folder`` (which the caller discards on any error).

    The answer is streamed and each part written as it arrives, byte for byte as the
    server sends it (see :mod:`seldinger.pacs.multipart`).

    Returns
    -------
    paths : list of Path
        One Part-10 file per instance, named ``<SOPInstanceUID>.dcm``, as stored.
    total_bytes : int
        Their total size.
    """
    url = f"{node.url}/studies/{study_uid}/series/{series_uid}"
    paths: dict[str, Path] = {}
    total_bytes = 0
    with (
        _http_errors(node, "WADO-RS retrieve", timeout_s),
        requests.Session() as session,
        session.get(url, headers=_ACCEPT_AS_STORED, stream=True, timeout=timeout_s) as answer,
    ):
        answer.raise_for_status()
        try:
            boundary = boundary_of(answer.headers.get("Content-Type", ""))
            for content in iter_parts(answer.iter_content(_CHUNK_BYTES), boundary):
                uid = _sop_instance_uid(content, node)
                path = folder / f"{uid}.dcm"
                path.write_bytes(content)
                if uid not in paths:
                    total_bytes += len(content)
                paths[uid] = path
                if progress is not None:
                    progress(len(paths), expected)
        except MultipartError as err:
            raise PacsPeerError(
                f"WADO-RS retrieve on {node} failed: {err}. Retry; nothing was kept."
            ) from err
    if not paths:
        raise PacsPeerError(
            f"WADO-RS retrieve on {node} returned no instance of series {series_uid}. Check "
            "the server's log."
        )
    if expected and len(paths) < expected:
        raise PacsPeerError(
            f"WADO-RS retrieve on {node} was incomplete: {len(paths)} of {expected} instances "
            "arrived; nothing was kept. Retry, or check the server's log."
        )
    return sorted(paths.values()), total_bytes


def web_store(
    node: PacsNode,
    datasets: Sequence[Dataset],
    timeout_s: float,
    *,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """STOW-RS every dataset in one request; returns the SOP Instance UIDs stored.

    A QIDO-RS request first checks that the service answers, so a server that is down
    gets nothing. When the server stores only some instances, the error lists them.
    """
    web_echo(node, timeout_s)
    client = _client(node, timeout_s)
    try:
        with _http_errors(node, "STOW-RS store", timeout_s):
            answer = client.store_instances(list(datasets))
    except PacsPeerError as err:
        held = _held_by_server(client, node, datasets, timeout_s)
        if held is None:
            raise PacsPeerError(
                f"{err} Which instances it stored before failing is unknown (it did not "
                "answer a query about them either); list them with `seldinger pacs find`."
            ) from err
        raise PacsPeerError(
            f"{err} Stored before the failure ({len(held)}): {', '.join(held) or 'none'}",
            stored_sop_instance_uids=tuple(held),
        ) from err
    stored = [
        str(item.ReferencedSOPInstanceUID) for item in answer.get("ReferencedSOPSequence", [])
    ]
    failed = [str(item.ReferencedSOPInstanceUID) for item in answer.get("FailedSOPSequence", [])]
    expected = {str(d.SOPInstanceUID) for d in datasets}
    if failed or set(stored) != expected:
        not_stored = failed or sorted(expected - set(stored))
        raise PacsPeerError(
            f"STOW-RS store on {node} stored {len(stored)} of {len(datasets)} instances; not "
            f"stored: {', '.join(not_stored)}. Check the server's log. Stored "
            f"({len(stored)}): {', '.join(stored) or 'none'}",
            stored_sop_instance_uids=tuple(stored),
        )
    if progress is not None:
        progress(len(stored), len(datasets))
    return stored


def _held_by_server(
    client: DICOMwebClient, node: PacsNode, datasets: Sequence[Dataset], timeout_s: float
) -> list[str] | None:
    """Which of ``datasets`` the server holds now (QIDO-RS per series); None if it won't say.

    A failed STOW-RS request says nothing reliable about the instances it carried: Orthanc,
    for one, stores them one by one and answers HTTP 500 at the first it cannot store.
    """
    series = {(str(d.StudyInstanceUID), str(d.SeriesInstanceUID)) for d in datasets}
    held: set[str] = set()
    try:
        with _http_errors(node, "QIDO-RS search", timeout_s):
            for study_uid, series_uid in sorted(series):
                answers = client.search_for_instances(
                    study_instance_uid=study_uid,
                    series_instance_uid=series_uid,
                    fields=["SOPInstanceUID"],
                    get_remaining=True,
                )
                held.update(_text(Dataset.from_json(a), "SOPInstanceUID") for a in answers)
    except PacsPeerError:
        return None
    return [str(d.SOPInstanceUID) for d in datasets if str(d.SOPInstanceUID) in held]
