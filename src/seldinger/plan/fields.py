"""Field types shared by every section of the plan: finite numbers, LPS points, unit vectors,
rigid matrices, and the strict base model.

Every model of the plan derives from :class:`PlanModel`: unknown keys are refused (a key
with the wrong unit, ``entry_lps_cm``, is an error naming the field), NaN and infinity are
refused, and assignments are validated. Units and frames are in the field names
(``docs/conventions.md``): ``*_lps_mm`` is a point in the CT's DICOM patient frame, and
:meth:`seldinger.plan.Plan.check_points` refuses such points outside the CT.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "DIRECTION_TOLERANCE",
    "RIGID_TOLERANCE",
    "Direction",
    "Matrix4",
    "NonNegativeFloat",
    "Percent",
    "PlanModel",
    "Point3",
    "RigidMatrix",
    "rigid_error",
]

#: Largest | |d| - 1 | of a stored unit vector (directions are written to 4-6 decimals).
DIRECTION_TOLERANCE = 1e-3
#: Largest |RᵀR/s² − I| and |det R/s³ − 1| of a stored rigid (or similarity) transform:
#: matrices are written to 6 decimals, so a rotation read back is orthonormal to ~1e-6.
RIGID_TOLERANCE = 1e-5


class PlanModel(BaseModel):
    """Base of every plan model: strict keys, finite numbers, validated assignment."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, validate_assignment=True, ser_json_inf_nan="null"
    )


def _unit(value: tuple[float, float, float]) -> tuple[float, float, float]:
    norm = math.sqrt(sum(v * v for v in value))
    if abs(norm - 1.0) > DIRECTION_TOLERANCE:
        raise ValueError(
            f"a direction must be a unit vector (length 1 ± {DIRECTION_TOLERANCE:g}); got "
            f"{list(value)} of length {norm:.6g}. Normalise it."
        )
    return value


def rigid_error(matrix: Any, scale: float = 1.0) -> str | None:
    """Why ``matrix`` is not a rigid (``scale`` 1) or similarity transform, or None if it is.

    Parameters
    ----------
    matrix : array_like, shape (4, 4)
        Homogeneous transform.
    scale : float
        Its isotropic scale (1 for rigid).

    Returns
    -------
    str or None

    Examples
    --------
    >>> rigid_error(np.eye(4)) is None
    True
    >>> rigid_error(np.diag([1.0, 1.0, -1.0, 1.0]))
    'its rotation part is a reflection (determinant -1)'
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        return f"it must be 4x4; got shape {m.shape}"
    if not np.all(np.isfinite(m)):
        return "it holds NaN or infinity"
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=RIGID_TOLERANCE, rtol=0.0):
        return f"its last row must be [0, 0, 0, 1]; got {m[3].tolist()}"
    if not scale > 0.0:
        return f"its scale must be positive; got {scale}"
    rotation = m[:3, :3] / scale
    error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    if error > RIGID_TOLERANCE:
        return (
            f"its rotation part is not orthonormal (max |RᵀR − I| = {error:.2e} > "
            f"{RIGID_TOLERANCE:g}): it shears or scales"
            + ("" if scale == 1.0 else f" by other than its scale {scale:g}")
        )
    determinant = float(np.linalg.det(rotation))
    if determinant < 0.0:
        return f"its rotation part is a reflection (determinant {determinant:.0f})"
    return None


def _rigid(value: list[list[float]]) -> list[list[float]]:
    problem = rigid_error(value)
    if problem is not None:
        raise ValueError(f"a rigid transform is needed: {problem}.")
    return value


def _matrix4(value: list[list[float]]) -> list[list[float]]:
    if len(value) != 4 or any(len(row) != 4 for row in value):
        raise ValueError(
            f"a 4x4 matrix (4 rows of 4 numbers) is needed; got rows of lengths "
            f"{[len(row) for row in value]}."
        )
    if value[3] != [0.0, 0.0, 0.0, 1.0]:
        raise ValueError(f"a homogeneous matrix's last row is [0, 0, 0, 1]; got {value[3]}.")
    return value


#: A finite number >= 0.
NonNegativeFloat = Annotated[float, Field(ge=0.0)]
#: A percentage, 0-100.
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
#: Three finite numbers: a point or vector (the field name says its frame and unit).
Point3 = tuple[float, float, float]
#: A unit vector (a needle's direction in LPS).
Direction = Annotated[tuple[float, float, float], AfterValidator(_unit)]
#: A homogeneous 4x4 matrix, rows first.
Matrix4 = Annotated[list[list[float]], AfterValidator(_matrix4)]
#: A rigid 4x4 transform (rotation + translation, no scaling, shear or reflection), rows first.
RigidMatrix = Annotated[list[list[float]], AfterValidator(_matrix4), AfterValidator(_rigid)]
