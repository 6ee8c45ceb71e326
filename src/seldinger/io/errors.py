"""Errors raised when an input image cannot be read exactly."""

from __future__ import annotations

from seldinger.errors import BadInputError

__all__ = ["DicomReadError", "ImageReadError"]


class ImageReadError(BadInputError):
    """An image file or folder cannot be read without guessing; the message names the fix."""


class DicomReadError(ImageReadError):
    """A DICOM folder or file is missing, broken, ambiguous or not a CT."""
