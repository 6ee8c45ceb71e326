"""What ``echo``, ``find``, ``pull`` and ``push`` return; each has a JSON-ready ``to_dict``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EchoResult", "ProgressCallback", "PullResult", "PushResult", "SeriesSummary"]

#: ``progress(done, total)``: called after each instance pulled or pushed (total 0: unknown).
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class EchoResult:
    """A PACS answered.

    Parameters
    ----------
    node : str
        The node, as in :class:`~seldinger.pacs.PacsNode` ``str()``.
    protocol : str
        ``"dimse"`` (a C-ECHO) or ``"dicomweb"`` (a QIDO-RS query for one study).
    round_trip_ms : float
        Time from sending the request to its answer, in milliseconds (DIMSE: the C-ECHO
        on an open association; DICOMweb: the HTTP request).
    connect_ms : float
        DIMSE: time to open the association (TCP connect and A-ASSOCIATE); DICOMweb: 0.
    """

    node: str
    protocol: str
    round_trip_ms: float
    connect_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SeriesSummary:
    """One series held by a PACS (a C-FIND or QIDO-RS answer)."""

    study_uid: str
    series_uid: str
    patient_id: str
    modality: str
    series_description: str
    series_number: int | None
    number_of_instances: int | None
    study_date: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PullResult:
    """A series written as one folder.

    Parameters
    ----------
    node, series_uid : str
        Where from, and which series.
    out_dir : Path
        The folder; it holds exactly ``paths``, one Part-10 file per instance, named by
        SOP Instance UID.
    paths : tuple of Path
        The files, sorted by name.
    total_bytes : int
        Their size in bytes.
    elapsed_s : float
        Wall time of the whole pull (query, transfer, writing) in seconds.
    """

    node: str
    series_uid: str
    out_dir: Path
    paths: tuple[Path, ...]
    total_bytes: int
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "series_uid": self.series_uid,
            "out_dir": str(self.out_dir),
            "files": len(self.paths),
            "total_bytes": self.total_bytes,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class PushResult:
    """Instances stored by a PACS.

    Parameters
    ----------
    node : str
        Where to.
    stored_sop_instance_uids : tuple of str
        SOP Instance UIDs as sent (de-identified ones when ``deidentified``).
    series_uids : dict of str to str
        Each pushed series: original SeriesInstanceUID -> SeriesInstanceUID as sent
        (equal when not de-identified). Pull it back with the second.
    study_uids : dict of str to str
        The same for StudyInstanceUID.
    deidentified : bool
        Whether the PS3.15 Basic profile was applied before sending.
    skipped_paths : tuple of Path
        Files in the given folders that were not DICOM Part-10 files and were not sent.
    notes : tuple of str
        Repairs made to the files before sending (e.g. an emptied Series Instance UID).
    elapsed_s : float
        Wall time in seconds (reading, de-identification, transfer).
    """

    node: str
    stored_sop_instance_uids: tuple[str, ...]
    series_uids: dict[str, str] = field(default_factory=dict)
    study_uids: dict[str, str] = field(default_factory=dict)
    deidentified: bool = True
    skipped_paths: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "stored": len(self.stored_sop_instance_uids),
            "stored_sop_instance_uids": list(self.stored_sop_instance_uids),
            "deidentified": self.deidentified,
            "series_uids": dict(self.series_uids),
            "study_uids": dict(self.study_uids),
            "skipped_paths": [str(p) for p in self.skipped_paths],
            "notes": list(self.notes),
            "elapsed_s": round(self.elapsed_s, 3),
        }
