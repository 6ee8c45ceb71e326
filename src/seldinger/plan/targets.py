"""Segmented structures (mask files beside the plan) and target lesions."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from seldinger.plan.fields import NonNegativeFloat, PlanModel, Point3

__all__ = ["StructureRef", "Target", "relative_mask_path"]


def relative_mask_path(value: str) -> str:
    """Check a mask path is relative to the plan's folder (forward slashes); return it."""
    if not value or Path(value).is_absolute() or value.startswith(("/", "\\")):
        raise ValueError(
            f"a mask path must be non-empty and relative to the plan file's folder; got "
            f"{value!r}. Save the mask beside the plan and store its relative path."
        )
    return value


class StructureRef(PlanModel):
    """A segmented structure saved as a mask file next to the plan.

    Parameters
    ----------
    mask_path : str
        Mask file (NIfTI in the CT's geometry), relative to the plan file's folder,
        with forward slashes.
    volume_ml : float
        Volume of the structure in millilitres.
    """

    mask_path: str
    volume_ml: NonNegativeFloat

    @field_validator("mask_path")
    @classmethod
    def _relative_mask(cls, value: str) -> str:
        return relative_mask_path(value)

    def resolve(self, plan_path: str | os.PathLike[str]) -> Path:
        """Absolute path of the mask file for a plan saved at ``plan_path``."""
        return (Path(plan_path).parent / self.mask_path).resolve()


class Target(PlanModel):
    """A lesion to treat.

    Parameters
    ----------
    name : str
        Label, e.g. ``"nodule 1"``; unique within the plan.
    centroid_lps_mm : tuple of float
        Centre of mass in LPS mm.
    volume_ml : float
        Lesion volume in millilitres.
    diameters_mm : tuple of float, optional
        Principal diameters in mm, longest first.
    mask_path : str, optional
        Lesion mask next to the plan (relative path, forward slashes).
    seed_lps_mm : tuple of float, optional
        The point the lesion was segmented from.
    recist_diameter_mm : float, optional
        Longest diameter in one axial slice (RECIST 1.1), mm.
    max_diameter_mm : float, optional
        Longest 3-D diameter, mm.
    """

    name: str = Field(min_length=1)
    centroid_lps_mm: Point3
    volume_ml: NonNegativeFloat
    diameters_mm: tuple[NonNegativeFloat, ...] | None = None
    mask_path: str | None = None
    seed_lps_mm: Point3 | None = None
    recist_diameter_mm: NonNegativeFloat | None = None
    max_diameter_mm: NonNegativeFloat | None = None

    @field_validator("mask_path")
    @classmethod
    def _relative_mask(cls, value: str | None) -> str | None:
        return None if value is None else relative_mask_path(value)

    def resolve(self, plan_path: str | os.PathLike[str]) -> Path | None:
        """Absolute path of the lesion mask for a plan saved at ``plan_path`` (None: no mask)."""
        return (
            None if self.mask_path is None else (Path(plan_path).parent / self.mask_path).resolve()
        )
