"""De-identification before a push: PS3.15 Annex E Basic profile with keyed, stable UIDs.

Every attribute of PS3.15 Table E.1-1 present in a dataset, at any depth of its
sequences, gets the table's action (E.3.1):

==========  ================================================================================
``X``       removed
``Z``       emptied (a sequence loses its items)
``D``       a dummy value of its VR (``ANONYMIZED``, ``19000101``, ``000000``, ``0``); in a
            sequence every value of every item is replaced so
``U``       a new UID (below)
``X/Z/U*``  a sequence of references: kept, its items cleaned by the same table
==========  ================================================================================

Where the table offers a choice (``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``) the *last* option
is taken: it keeps every IOD conformant without per-IOD type tables (e.g. Device Serial
Number is Type 1 in the Enhanced General Equipment module of a SEG). Private attributes
are removed. Patient ID and Patient's Name become one pseudonym (a dummy value, as ``Z``
and ``Z/D`` allow). Pixel data are untouched: files that declare burned-in annotation
are refused by :func:`seldinger.pacs.push`.

UIDs: each UID in an attribute with action ``U`` (Study, Series, SOP Instance, Frame of
Reference UIDs, and the UIDs that refer to them, such as Referenced SOP Instance UID and
Referenced Frame of Reference UID in sequences) becomes ``2.25.<n>``, where ``n`` is a
UUID (RFC 9562 version 8) made of the first 128 bits of HMAC-SHA-256(key, UID). The map
depends only on the key and the original UID, so a CT pushed today and its SEG or RT
Structure Set pushed next month land in the same de-identified study and still reference
each other. UIDs defined by the standard (root ``1.2.840.10008``) are kept.

References
----------
.. [1] DICOM PS3.15 2026c, Annex E "Attribute Confidentiality Profiles", Table E.1-1,
   E.3.1 (actions), E.3.10 (UIDs).
.. [2] RFC 9562, section 5.8 (UUID version 8) and appendix B.2 (a name-based UUIDv8 with
   SHA-256).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from .annex_e import ANNEX_E_EDITION, Code, action_codes
from .errors import PacsInputError

__all__ = [
    "BASIC_PROFILE_CODE",
    "DeidKey",
    "deidentified_uid",
    "deidentify",
    "patient_pseudonym",
]

logger = logging.getLogger(__name__)

#: DCM code of the Basic Application Confidentiality Profile (PS3.16 CID 7050).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
#: Shortest key accepted, bytes (128 bits, the length of the UIDs' hash).
MIN_KEY_BYTES = 16
#: Root of the UIDs the standard itself defines (SOP classes, transfer syntaxes, …).
_DICOM_ROOT = "1.2.840.10008."
_METHOD = f"SELDINGER PS3.15 E.1 Basic ({ANNEX_E_EDITION}); UIDs HMAC-SHA256 2.25"
_PSEUDONYM_PREFIX = "SLD-"
#: File meta elements kept: version, SOP class and instance, transfer syntax (PS3.10 7.1).
_FILE_META_KEPT = frozenset((0x00020001, 0x00020002, 0x00020003, 0x00020010))

#: Dummy values for ``D`` by VR (E.3.1: "a non-zero length value that may be a dummy
#: value and consistent with the VR").
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY: dict[str, Any] = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "UR": "http://anonymized.invalid",
    "IS": "0",
    "DS": "0",
    **dict.fromkeys(("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"), 0),
    **dict.fromkeys(("OB", "OW", "OF", "OD", "OL", "OV", "UN"), b"\x00\x00"),
}


@dataclass(frozen=True)
class DeidKey:
    """The secret that makes replacement UIDs and pseudonyms stable and unguessable.

    Whoever holds it can test whether a given original UID or patient ID was pushed;
    keep it like a password. Losing it means later pushes no longer land in the
    de-identified studies made with it.

    Parameters
    ----------
    secret : bytes
        At least 16 bytes.

    Examples
    --------
    >>> DeidKey.from_text("correct horse battery staple")
    DeidKey(<secret, 28 bytes>)
    """

    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_KEY_BYTES:
            size = len(self.secret) if isinstance(self.secret, bytes) else type(self.secret)
            raise PacsInputError(
                f"the de-identification key must be at least {MIN_KEY_BYTES} bytes; got "
                f"{size}. Use a long random string, e.g. `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`."
            )

    @classmethod
    def from_text(cls, text: str) -> DeidKey:
        """The key from a string (its UTF-8 bytes, surrounding whitespace stripped)."""
        return cls(text.strip().encode("utf-8"))

    def __repr__(self) -> str:
        return f"DeidKey(<secret, {len(self.secret)} bytes>)"


def _digest(key: DeidKey, domain: bytes, value: str) -> bytes:
    return hmac.new(key.secret, domain + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()


def deidentified_uid(uid: str, key: DeidKey) -> str:
    """The replacement of ``uid`` under ``key``: ``2.25.`` + a SHA-256-based UUIDv8.

    Parameters
    ----------
    uid : str
        An original UID (trailing NUL or spaces ignored).
    key : DeidKey
        The de-identification key.

    Returns
    -------
    str
        At most 44 characters; equal inputs give equal outputs. UIDs under the DICOM
        root ``1.2.840.10008`` (defined by the standard) are returned unchanged.

    Examples
    --------
    >>> key = DeidKey.from_text("an example key, not a secret one")
    >>> new = deidentified_uid("1.2.3.4", key)
    >>> new.startswith("2.25."), new == deidentified_uid("1.2.3.4", key)
    (True, True)
    """
    uid = uid.strip(" \x00")
    if not uid or uid.startswith(_DICOM_ROOT):
        return uid
    raw = bytearray(_digest(key, b"uid", uid)[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (RFC 9562 section 5.8)
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10xx
    return f"2.25.{int.from_bytes(raw, 'big')}"


def patient_pseudonym(patient_id: str, key: DeidKey) -> str:
    """The replacement Patient ID (and Patient's Name) for ``patient_id`` under ``key``.

    Examples
    --------
    >>> key = DeidKey.from_text("an example key, not a secret one")
    >>> len(patient_pseudonym("LIDC-IDRI-0001", key)), patient_pseudonym("", key)[:4]
    (20, 'SLD-')
    """
    return _PSEUDONYM_PREFIX + _digest(key, b"patient", patient_id.strip()).hex()[:16].upper()


def _code_of(tag: int) -> Code | None:
    exact, masked = action_codes()
    code = exact.get(tag)
    if code is not None:
        return code
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, g_mask, e_mask, masked_code in masked:
        if group & g_mask == g & g_mask and element & e_mask == e & e_mask:
            return masked_code
    return None


class _Cleaner:
    """Applies Table E.1-1 to one dataset tree; ``uids`` caches this push's UID map."""

    def __init__(self, key: DeidKey, uids: dict[str, str]) -> None:
        self.key = key
        self.uids = uids
        self.uid_tags = {tag for tag, code in action_codes()[0].items() if code is Code.U}

    def uid(self, value: str) -> str:
        new = self.uids.get(value)
        if new is None:
            new = self.uids[value] = deidentified_uid(value, self.key)
        return new

    def remap(self, element: DataElement) -> None:
        if isinstance(element.value, MultiValue | list):
            element.value = [self.uid(v) for v in element.value]
        elif element.value:
            element.value = self.uid(str(element.value))

    def dummy(self, element: DataElement) -> None:
        if element.VR == "SQ":
            for item in element.value:
                for tag in list(item.keys()):
                    self.dummy(item[tag])
        elif element.VR == "UI":
            if element.tag in self.uid_tags:
                self.remap(element)  # a reference in a dummied sequence stays consistent
        elif element.value not in (None, "", b""):
            element.value = _DUMMY.get(element.VR, _DUMMY_TEXT)

    def clean(self, dataset: Dataset) -> None:
        for tag in list(dataset.keys()):
            element = dataset[tag]
            code = _code_of(int(tag))
            is_sequence = element.VR == "SQ"
            if code is None:
                if is_sequence:
                    for item in element.value:
                        self.clean(item)
                continue
            if code is Code.X:
                del dataset[tag]
            elif code is Code.U or (code is Code.X_Z_U and element.VR == "UI"):
                self.remap(element)
            elif code is Code.X_Z_U and is_sequence:
                for item in element.value:
                    self.clean(item)
            elif code.value.endswith("Z") or code is Code.X_Z_U:
                element.value = Sequence() if is_sequence else None
            else:  # D, Z/D, X/D, X/Z/D: the last option, a dummy
                self.dummy(element)


def deidentify(
    dataset: Dataset,
    key: DeidKey,
    *,
    uid_cache: dict[str, str] | None = None,
    in_place: bool = False,
) -> Dataset:
    """A de-identified copy of ``dataset`` (PS3.15 Basic profile; see the module notes).

    Parameters
    ----------
    dataset : pydicom.Dataset
        A DICOM instance, with or without ``file_meta``; not modified unless ``in_place``.
    key : DeidKey
        The secret behind the replacement UIDs and the patient pseudonym.
    uid_cache : dict of str to str, optional
        Original UID -> replacement, shared across the instances of one push to save
        hashing; filled as a side effect.
    in_place : bool
        Change ``dataset`` itself instead of a copy (saves copying the pixel data when
        the original is not needed any more).

    Returns
    -------
    pydicom.Dataset
        The copy, with PatientIdentityRemoved ``YES``, the Seldinger method appended to
        DeidentificationMethod and code 113100 (DCM) in DeidentificationMethodCodeSequence,
        and ``file_meta.MediaStorageSOPInstanceUID`` equal to the new SOP Instance UID.
    """
    patient_id = str(dataset.get("PatientID", "") or "")
    methods = [str(m) for m in _as_list(dataset.get("DeidentificationMethod")) if m]
    out = dataset if in_place else copy.deepcopy(dataset)
    cleaner = _Cleaner(key, {} if uid_cache is None else uid_cache)
    cleaner.clean(out)
    out.remove_private_tags()
    pseudonym = patient_pseudonym(patient_id, key)
    out.PatientID = pseudonym
    out.PatientName = pseudonym
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = [*methods, _METHOD] if methods else _METHOD
    codes = Sequence(list(out.get("DeidentificationMethodCodeSequence", [])))
    if not any(str(item.get("CodeValue", "")) == BASIC_PROFILE_CODE[0] for item in codes):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = BASIC_PROFILE_CODE
        codes.append(item)
    out.DeidentificationMethodCodeSequence = codes
    meta = getattr(out, "file_meta", None)
    if meta is not None:
        # Keep what identifies the encoding, drop what names the sender (Source AE title,
        # implementation of whoever wrote the file); pydicom adds its own on writing.
        for tag in list(meta.keys()):
            if int(tag) not in _FILE_META_KEPT:
                del meta[tag]
        if "SOPInstanceUID" in out:
            meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    logger.debug("de-identified %s", out.get("SOPInstanceUID", "?"))
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list):
        return list(value)
    return [value]
