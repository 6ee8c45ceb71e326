"""Errors of the PACS client: the peer failed (exit code PEER) or a local input is unusable.

Both derive from the project's bases in :mod:`seldinger.errors`, so the command line maps
them to one documented exit code, and a caller's ``except ConnectionError`` /
``except ValueError`` still catches them.
"""

from __future__ import annotations

from typing import Any

from seldinger.errors import BadInputError, PeerError

__all__ = ["PacsInputError", "PacsPeerError", "SeriesNotFoundError"]


class PacsPeerError(PeerError):
    """A PACS is down, refuses the association or request, times out, or answers a failure.

    Parameters
    ----------
    message : str
        One line naming the node, what failed and the fix.
    stored_sop_instance_uids : tuple of str
        SOP Instance UIDs (as sent, so de-identified when they were) that the PACS had
        confirmed as stored before a push failed; empty for every other failure.
    """

    def __init__(self, message: str, *, stored_sop_instance_uids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.stored_sop_instance_uids = stored_sop_instance_uids

    def details(self) -> dict[str, Any]:
        """The instances the PACS had stored before the failure."""
        return {"stored_sop_instance_uids": list(self.stored_sop_instance_uids)}


class PacsInputError(BadInputError):
    """A local input cannot be used: a node string, a file that is not DICOM, an empty folder."""


class SeriesNotFoundError(PacsInputError):
    """The PACS answered, but it holds no series with the requested SeriesInstanceUID."""
