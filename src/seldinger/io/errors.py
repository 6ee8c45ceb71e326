"""Errors raised when an input image cannot be read exactly."""

from __future__ import annotations

from seldinger.errors import BadInputError, MissingFileError

__all__ = ["DicomReadError", "ImageReadError", "MissingInputError"]


class ImageReadError(BadInputError):
    """An image file or folder cannot be read without guessing; the message names the fix."""


class DicomReadError(ImageReadError):
    """A DICOM folder or file is missing, broken, ambiguous or not a CT."""


class MissingInputError(MissingFileError, ImageReadError):
    """An input path that does not exist (exit code IO); still an :class:`ImageReadError`."""
