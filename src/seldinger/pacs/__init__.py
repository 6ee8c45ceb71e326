"""PACS client: echo, find, pull and push series over DIMSE (pynetdicom) or DICOMweb.

Quick start::

    from seldinger.pacs import PacsNode, echo, find, pull, push, load_deid_key
    node = PacsNode.parse("ORTHANC@127.0.0.1:4242")    # or "http://127.0.0.1:8042/dicom-web"
    echo(node).round_trip_ms
    result = push(node, ["ct_folder/"], deid_key=load_deid_key()[0])   # de-identified
    series = find(node, series_uid=next(iter(result.series_uids.values())))
    pull(node, series[0].series_uid, "pulled_ct/")
"""

from .client import DEFAULT_TIMEOUT_S, echo, find, pull, push
from .deid import BASIC_PROFILE_CODE, DeidKey, deidentified_uid, deidentify, patient_pseudonym
from .deid_key import DEID_KEY_ENV, default_key_path, load_deid_key
from .errors import PacsInputError, PacsPeerError, SeriesNotFoundError
from .node import DEFAULT_CALLING_AET, PacsNode, Protocol
from .results import EchoResult, PullResult, PushResult, SeriesSummary

__all__ = [
    "BASIC_PROFILE_CODE",
    "DEFAULT_CALLING_AET",
    "DEFAULT_TIMEOUT_S",
    "DEID_KEY_ENV",
    "DeidKey",
    "EchoResult",
    "PacsInputError",
    "PacsNode",
    "PacsPeerError",
    "Protocol",
    "PullResult",
    "PushResult",
    "SeriesNotFoundError",
    "SeriesSummary",
    "default_key_path",
    "deidentified_uid",
    "deidentify",
    "echo",
    "find",
    "load_deid_key",
    "patient_pseudonym",
    "pull",
    "push",
]
