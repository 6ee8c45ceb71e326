"""Respiratory motion: phases, deformable registration between them (elastix), fields.

Quick start::

    from seldinger.io import read_ct
    from seldinger.motion import register, write_displacement_nifti
    fixed, moving = read_ct("expiration/").volume, read_ct("inspiration/").volume
    result = register(fixed, moving, mask=lungs)            # FIXED → MOVING, LPS mm
    write_displacement_nifti(result.field, "out/displacement_lps_mm.nii.gz")
"""

from seldinger.motion.errors import FoldingError, MotionError, PhaseError, RegistrationError
from seldinger.motion.field import (
    DISPLACEMENT_FILE,
    JACOBIAN_FILE,
    DisplacementField,
    check_no_folding,
    jacobian_determinant,
    read_displacement_nifti,
    warp,
    write_displacement_nifti,
    write_jacobian_nifti,
)
from seldinger.motion.phases import Phase, check_phases, phases_from_cts
from seldinger.motion.registration import (
    Registration,
    RegistrationMethod,
    RegistrationSettings,
    default_bspline_parameter_maps,
    lung_parameter_maps,
    register,
)

__all__ = [
    "DISPLACEMENT_FILE",
    "JACOBIAN_FILE",
    "DisplacementField",
    "FoldingError",
    "MotionError",
    "Phase",
    "PhaseError",
    "Registration",
    "RegistrationError",
    "RegistrationMethod",
    "RegistrationSettings",
    "check_no_folding",
    "check_phases",
    "default_bspline_parameter_maps",
    "jacobian_determinant",
    "lung_parameter_maps",
    "phases_from_cts",
    "read_displacement_nifti",
    "register",
    "warp",
    "write_displacement_nifti",
    "write_jacobian_nifti",
]
