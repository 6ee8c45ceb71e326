"""The error the DICOM exporters raise for inputs they cannot turn into a valid object."""

from __future__ import annotations

from seldinger.errors import BadInputError

__all__ = ["DicomExportError"]


class DicomExportError(BadInputError):
    """An input cannot be exported as DICOM as given (empty mask, other grid, non-rigid matrix,
    non-finite dose, slices that do not match the CT); the message names the input and the fix.

    Nothing is written when it is raised.
    """
