"""Errors of the anatomy step: each names what is wrong with the input and the fix."""

from __future__ import annotations

from seldinger.errors import BadInputError


class AnatomyError(BadInputError):
    """The image cannot be segmented as asked (not a CT in HU, anatomy out of view, …)."""


class EngineUnavailableError(AnatomyError):
    """An optional segmentation back-end (TotalSegmentator, MONAI) is not installed."""


class LesionError(AnatomyError):
    """The seed or the image does not allow a lesion to be segmented; the message says why."""
