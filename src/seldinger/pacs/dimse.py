"""DIMSE with pynetdicom: C-ECHO, C-FIND (Study Root), C-GET of one series, C-STORE.

One association per call, every wait bounded by ``timeout_s`` (TCP connect, association
request, each DIMSE response, network silence). Failures raise
:class:`~seldinger.pacs.errors.PacsPeerError` with one line: the node, what failed, the fix.

References
----------
.. [1] DICOM PS3.4 C.4 (Query/Retrieve: C-FIND, C-GET), B (Storage), A (Verification).
.. [2] DICOM PS3.7 D.3.3.4 (SCP/SCU role selection, needed by C-GET's C-STORE sub-operations).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    RTDoseStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    SegmentationStorage,
    SpatialRegistrationStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from .association import failure, no_answer, open_association, silence, status_code
from .errors import PacsInputError, PacsPeerError
from .node import PacsNode
from .query import SeriesQuery
from .results import EchoResult, ProgressCallback, SeriesSummary

__all__ = ["GET_STORAGE_CLASSES", "dimse_echo", "dimse_find", "dimse_get_series", "dimse_store"]

logger = logging.getLogger(__name__)

#: SOP classes a C-GET accepts (we take the SCP role for them): the CT and what Seldinger
#: writes beside it.
GET_STORAGE_CLASSES = (
    CTImageStorage,
    SegmentationStorage,
    RTStructureSetStorage,
    RTPlanStorage,
    RTDoseStorage,
    SpatialRegistrationStorage,
)
#: Offered for each of them, one presentation context per transfer syntax, so that the
#: PACS can send each instance as it stores it (no transcoding, nothing lost).
_GET_TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLossless,
    JPEGLSLossless,
    RLELossless,
    JPEG2000,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)
#: At most 128 presentation contexts in one association (PS3.8 9.3.2.2: odd IDs 1-255).
_MAX_CONTEXTS = 128
_PENDING = (0xFF00, 0xFF01)
#: Storage warnings (PS3.4 B.2.3): stored, with coercion or elements discarded.
_STORE_WARNINGS = (0xB000, 0xB006, 0xB007)
_SAFE_UID = re.compile(r"[0-9.]{1,64}")


def dimse_echo(node: PacsNode, timeout_s: float) -> EchoResult:
    """C-ECHO: open an association, verify, release; times in milliseconds."""
    start_s = time.perf_counter()
    with open_association(node, timeout_s, [(Verification, None)]) as assoc:
        sent_s = time.perf_counter()
        status = assoc.send_c_echo()
        answered_s = time.perf_counter()
        code = status_code(status)
        if code is None:
            raise silence(node, "C-ECHO", answered_s - sent_s, timeout_s)
        if code != 0x0000:
            raise failure(node, "C-ECHO", status, "Check the PACS's log.")
    return EchoResult(
        node=str(node),
        protocol="dimse",
        round_trip_ms=(answered_s - sent_s) * 1e3,
        connect_ms=(sent_s - start_s) * 1e3,
    )


def _c_find(
    assoc: Association, node: PacsNode, identifier: Dataset, timeout_s: float
) -> list[Dataset]:
    found: list[Dataset] = []
    waited_from_s = time.perf_counter()
    for status, answer in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
        code = status_code(status)
        if code is None:
            raise silence(node, "C-FIND", time.perf_counter() - waited_from_s, timeout_s)
        waited_from_s = time.perf_counter()
        if code in _PENDING:
            if answer is not None:
                found.append(answer)
        elif code == 0x0000:
            break
        else:
            raise failure(node, "C-FIND", status, "Check the query values and the PACS's log.")
    return found


def _identifier(level: str, **keys: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def dimse_find(node: PacsNode, query: SeriesQuery, timeout_s: float) -> list[SeriesSummary]:
    """C-FIND in the Study Root model: studies first, then each study's series.

    Two hierarchical queries (PS3.4 C.4.1.3.1) rather than one relational series query,
    which PACS need not support.
    """
    summaries: list[SeriesSummary] = []
    contexts = [(StudyRootQueryRetrieveInformationModelFind, None)]
    with open_association(node, timeout_s, contexts) as assoc:
        studies = _c_find(
            assoc,
            node,
            _identifier(
                "STUDY",
                StudyInstanceUID=query.study_uid or "",
                PatientID=query.patient_id or "",
                StudyDate="",
            ),
            timeout_s,
        )
        for study in studies:
            study_uid = str(study.get("StudyInstanceUID", "") or "")
            if not study_uid:
                continue
            series_keys = _identifier(
                "SERIES",
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=query.series_uid or "",
                Modality=query.modality or "",
                SeriesDescription="",
                SeriesNumber="",
                NumberOfSeriesRelatedInstances="",
            )
            for series in _c_find(assoc, node, series_keys, timeout_s):
                summaries.append(
                    SeriesSummary(
                        study_uid=study_uid,
                        series_uid=str(series.get("SeriesInstanceUID", "") or ""),
                        patient_id=str(study.get("PatientID", "") or ""),
                        modality=str(series.get("Modality", "") or ""),
                        series_description=str(series.get("SeriesDescription", "") or ""),
                        series_number=_int_or_none(series.get("SeriesNumber")),
                        number_of_instances=_int_or_none(
                            series.get("NumberOfSeriesRelatedInstances")
                        ),
                        study_date=str(study.get("StudyDate", "") or ""),
                    )
                )
    return summaries


class _SeriesWriter:
    """Writes each C-STORE sub-operation of a C-GET to ``folder`` as it arrives.

    Thread ownership: :meth:`handle` runs on the association's thread while the main
    thread waits in ``send_c_get``; the main thread reads the fields only after that
    returns, so no lock is needed.
    """

    def __init__(self, folder: Path, expected: int, progress: ProgressCallback | None) -> None:
        self.folder = folder
        self.expected = expected
        self.progress = progress
        self.paths: dict[str, Path] = {}
        self.total_bytes = 0
        self.error: Exception | None = None

    def handle(self, event: Any) -> int:
        try:
            uid = str(event.request.AffectedSOPInstanceUID)
            if not _SAFE_UID.fullmatch(uid):
                raise PacsPeerError(f"the PACS sent an instance with an invalid UID {uid!r}")
            data = event.encoded_dataset(include_meta=True)
            path = self.folder / f"{uid}.dcm"
            path.write_bytes(data)
        except Exception as err:  # the handler's boundary: keep it for the main thread
            self.error = self.error or err
            return 0xA700  # Refused: out of resources (PS3.4 B.2.3)
        if uid not in self.paths:
            self.total_bytes += len(data)
        self.paths[uid] = path
        if self.progress is not None:
            self.progress(len(self.paths), self.expected)
        return 0x0000


def dimse_get_series(
    node: PacsNode,
    study_uid: str,
    series_uid: str,
    folder: Path,
    timeout_s: float,
    *,
    expected: int = 0,
    progress: ProgressCallback | None = None,
) -> tuple[list[Path], int]:
    """C-GET one series into ``folder`` (which the caller discards on any error).

    Returns
    -------
    paths : list of Path
        The files written, one per instance, named ``<SOPInstanceUID>.dcm``.
    total_bytes : int
        Their total size.
    """
    writer = _SeriesWriter(folder, expected, progress)
    contexts: list[tuple[str, Sequence[str] | None]] = [
        (StudyRootQueryRetrieveInformationModelGet, None)
    ]
    contexts += [(c, [ts]) for c in GET_STORAGE_CLASSES for ts in _GET_TRANSFER_SYNTAXES]
    roles = [build_role(c, scp_role=True) for c in GET_STORAGE_CLASSES]
    identifier = _identifier("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid)
    final: Dataset | None = None
    with open_association(
        node, timeout_s, contexts, roles=roles, handlers=[(evt.EVT_C_STORE, writer.handle)]
    ) as assoc:
        waited_from_s = time.perf_counter()
        for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
            code = status_code(status)
            if code is None:
                raise silence(node, "C-GET", time.perf_counter() - waited_from_s, timeout_s)
            waited_from_s = time.perf_counter()
            if code not in _PENDING:
                final = status
    if writer.error is not None:
        if isinstance(writer.error, PacsPeerError):
            raise PacsPeerError(f"C-GET on {node} failed: {writer.error}.") from writer.error
        raise PacsPeerError(
            f"C-GET on {node} stopped: cannot write into {folder.parent}: {writer.error}. "
            "Free disk space or choose another output folder; nothing was kept."
        ) from writer.error
    if final is None:
        raise PacsPeerError(f"C-GET on {node} failed: the PACS sent no final status. Retry.")
    code = status_code(final)
    failed = _int_or_none(final.get("NumberOfFailedSuboperations")) or 0
    if code == 0xB000 or failed:
        classes = ", ".join(UID(c).name for c in GET_STORAGE_CLASSES)
        raise PacsPeerError(
            f"C-GET on {node} was incomplete: {len(writer.paths)} instances received, "
            f"{failed} not sent (status 0x{code or 0:04X}); nothing was kept. We accept "
            f"{classes}; does the series hold another kind of object?"
        )
    if code != 0x0000:
        raise failure(node, "C-GET", final, "Check that the PACS allows C-GET for our AE title.")
    if expected and 0 < len(writer.paths) < expected:
        raise PacsPeerError(
            f"C-GET on {node} was incomplete: {len(writer.paths)} of {expected} instances "
            "arrived; nothing was kept. Retry, or check the PACS's log."
        )
    if not writer.paths:
        raise PacsPeerError(
            f"C-GET on {node} returned no instance of series {series_uid}. Does the PACS "
            "allow C-GET (some offer only C-MOVE)? Try its DICOMweb URL instead."
        )
    return sorted(writer.paths.values()), writer.total_bytes


def dimse_store(
    node: PacsNode,
    datasets: Sequence[Dataset],
    timeout_s: float,
    *,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """C-STORE every dataset on one association; returns the SOP Instance UIDs stored.

    Every (SOP class, transfer syntax) pair must be accepted before the first instance
    is sent. On a failure mid-way the error lists the instances stored before it.
    """
    needed = sorted({(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets})
    if len(needed) > _MAX_CONTEXTS:
        raise PacsInputError(
            f"the files need {len(needed)} presentation contexts (SOP class x transfer "
            f"syntax); one association holds at most {_MAX_CONTEXTS}. Push them in parts."
        )
    stored: list[str] = []
    with open_association(node, timeout_s, [(c, [ts]) for c, ts in needed]) as assoc:
        accepted = {
            (str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts
        }
        missing = [
            f"{UID(c).name} in {UID(ts).name}" for c, ts in needed if (c, ts) not in accepted
        ]
        if missing:
            raise PacsPeerError(
                f"C-STORE on {node}: the PACS does not accept {'; '.join(missing)}; nothing was "
                "sent. Ask its administrator to accept them, or convert the files (e.g. to "
                "Explicit VR Little Endian)."
            )
        for index, dataset in enumerate(datasets):
            sent_s = time.perf_counter()
            status = assoc.send_c_store(dataset)
            code = status_code(status)
            if code == 0x0000 or code in _STORE_WARNINGS:
                stored.append(str(dataset.SOPInstanceUID))
                if progress is not None:
                    progress(len(stored), len(datasets))
                continue
            what = (
                no_answer(time.perf_counter() - sent_s, timeout_s)
                if code is None
                else f"status 0x{code:04X} {str(status.get('ErrorComment', '') or '').strip()}".strip()
            )
            maybe = " The PACS may also hold the one it did not answer for." if code is None else ""
            raise PacsPeerError(
                f"C-STORE on {node} failed at instance {index + 1} of {len(datasets)} "
                f"({dataset.SOPInstanceUID}): {what}. Check that the PACS allows C-STORE for our AE "
                f"title {node.calling_aet!r} (its log says why), then retry: a PACS keeps one "
                f"copy of each instance.{maybe} Stored before the failure "
                f"({len(stored)}): {', '.join(stored) or 'none'}",
                stored_sop_instance_uids=tuple(stored),
            )
    return stored
