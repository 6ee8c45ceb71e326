"""A series query (C-FIND / QIDO-RS filters), checked before anything is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import PacsInputError

__all__ = ["SeriesQuery", "check_uid"]

#: PS3.5 9.1: digits and dots, no leading zeros in a component, at most 64 characters.
_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_UID_MAX_CHARS = 64
#: VR CS (PS3.5 Table 6.2-1): upper case, digits, space, underscore, at most 16.
_MODALITY_PATTERN = re.compile(r"[A-Z0-9_ ]{1,16}")
_LO_MAX_CHARS = 64


def check_uid(value: str, argument: str) -> str:
    """``value`` stripped, or PacsInputError naming ``argument`` if it is not a UID.

    Examples
    --------
    >>> check_uid(" 1.2.840.113619.2.55 ", "series_uid")
    '1.2.840.113619.2.55'
    """
    uid = value.strip()
    if len(uid) > _UID_MAX_CHARS or not _UID_PATTERN.fullmatch(uid):
        raise PacsInputError(
            f"{argument} must be a DICOM UID (digits and dots, at most {_UID_MAX_CHARS} "
            f"characters); got {value!r}. Copy it from `seldinger pacs find` or "
            "`seldinger info DIR --list-series`."
        )
    return uid


@dataclass(frozen=True)
class SeriesQuery:
    """Which series to list; ``None`` matches everything.

    Parameters
    ----------
    patient_id : str, optional
        Patient ID; ``*`` and ``?`` are wildcards (PS3.4 C.2.2.2.4).
    study_uid, series_uid : str, optional
        Study / Series Instance UID (exact).
    modality : str, optional
        Modality code, e.g. ``CT``, ``SEG``, ``RTSTRUCT`` (upper-cased here).
    """

    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    modality: str | None = None

    def __post_init__(self) -> None:
        if self.study_uid is not None:
            object.__setattr__(self, "study_uid", check_uid(self.study_uid, "study_uid"))
        if self.series_uid is not None:
            object.__setattr__(self, "series_uid", check_uid(self.series_uid, "series_uid"))
        if self.modality is not None:
            modality = self.modality.strip().upper()
            if not _MODALITY_PATTERN.fullmatch(modality):
                raise PacsInputError(
                    f"modality must be a DICOM modality code (letters, digits, underscore, "
                    f"at most 16); got {self.modality!r}, e.g. CT, SEG, RTSTRUCT."
                )
            object.__setattr__(self, "modality", modality)
        if self.patient_id is not None and (
            len(self.patient_id) > _LO_MAX_CHARS or "\\" in self.patient_id
        ):
            raise PacsInputError(
                f"patient_id must be at most {_LO_MAX_CHARS} characters without backslash "
                f"(VR LO); got {self.patient_id!r}."
            )
