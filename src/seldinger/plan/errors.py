"""Errors of the plan document: a damaged or invalid file, another CT, a missing section."""

from __future__ import annotations

from seldinger.errors import BadInputError

__all__ = ["PlanCaseMismatchError", "PlanContentError", "PlanFileError", "PlanVersionError"]


class PlanFileError(BadInputError):
    """A plan file is not valid JSON, not a plan, or breaks the schema; the field is named."""


class PlanVersionError(PlanFileError):
    """A plan of another schema version: an older one is migrated, a newer one needs a newer
    Seldinger."""


class PlanCaseMismatchError(BadInputError):
    """A plan was paired with a CT other than the one it was made on."""


class PlanContentError(BadInputError):
    """A plan lacks what a step needs (no trajectories, no target with a mask, …)."""
