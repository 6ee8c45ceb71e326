"""Errors of the motion step: each names what is wrong with the phases or field, and the fix."""

from __future__ import annotations

from typing import Any

from seldinger.errors import BadInputError

__all__ = ["FoldingError", "MotionError", "PhaseError", "RegistrationError"]


class MotionError(BadInputError):
    """Respiratory phases, a displacement field or a registration cannot be used as given."""


class PhaseError(MotionError):
    """The phases do not form one 4-D series: too few, or of another patient, frame or grid.

    ``rule`` names the broken rule: ``"count"``, ``"name"``, ``"patient"``,
    ``"frame_of_reference"`` or ``"field_of_view"``.
    """

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule

    def details(self) -> dict[str, Any]:
        """The broken rule, for ``--json``."""
        return {"rule": self.rule}


class FoldingError(MotionError):
    """A displacement field folds (Jacobian determinant ≤ 0): it is not a physical motion."""

    def __init__(self, message: str, min_jacobian: float, n_folded_voxels: int) -> None:
        super().__init__(message)
        self.min_jacobian = min_jacobian
        self.n_folded_voxels = n_folded_voxels

    def details(self) -> dict[str, Any]:
        """The smallest determinant and the number of folded voxels, for ``--json``."""
        return {"min_jacobian": self.min_jacobian, "n_folded_voxels": self.n_folded_voxels}


class RegistrationError(MotionError):
    """elastix could not register the phases (too little image inside the mask, no overlap)."""
