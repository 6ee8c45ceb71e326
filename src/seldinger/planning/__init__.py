"""Planning: the Plan document, targets, trajectories and treatment geometry."""

from seldinger.planning.margin import MarginReport, assess_margin, tumour_surface_mesh
from seldinger.planning.plan import (
    AFFINE_ATOL_MM,
    SCHEMA_VERSION,
    CaseIdentity,
    Plan,
    PlanCaseMismatchError,
    PlanFileError,
    Provenance,
    StructureRef,
    Target,
    voxel_sha256,
)

__all__ = [
    "AFFINE_ATOL_MM",
    "SCHEMA_VERSION",
    "CaseIdentity",
    "MarginReport",
    "Plan",
    "PlanCaseMismatchError",
    "PlanFileError",
    "Provenance",
    "StructureRef",
    "Target",
    "assess_margin",
    "tumour_surface_mesh",
    "voxel_sha256",
]
