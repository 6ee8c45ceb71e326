"""Rigid 4×4 transforms: validation, inversion, application, quaternions.

Conventions (``docs/conventions.md``): a transform named ``a_to_b`` maps points from
frame *a* into frame *b* as ``[x_b, 1] = a_to_b @ [x_a, 1]``; transforms compose right
to left (``tool_to_ct = tracker_to_ct @ tool_to_tracker``). Translations are in mm.
Quaternions are scalar-last ``(x, y, z, w)``, the order of SciPy's ``Rotation`` and of
the OpenIGTLink QTRANS message.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from seldinger.errors import BadInputError

__all__ = [
    "RIGID_TOLERANCE",
    "TransformError",
    "apply_transform",
    "invert_rigid",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "rigid_matrix",
    "rotation_angle_deg",
    "validate_rigid",
]

#: Default tolerance on max |RᵀR − I| and on |det R − 1|. Tracker poses travel as float32
#: (OpenIGTLink TRANSFORM, 4-byte floats), whose rounding leaves ~1e-7; 1e-5 admits them and
#: still rejects any scale or shear that matters (1e-5 of 500 mm is 5 µm).
RIGID_TOLERANCE = 1e-5

Float64Array = npt.NDArray[np.float64]


class TransformError(BadInputError):
    """A matrix that should be a rigid transform is not one."""


def validate_rigid(
    matrix: npt.ArrayLike, name: str = "matrix", tol: float = RIGID_TOLERANCE
) -> Float64Array:
    """Check that ``matrix`` is a rigid transform (or a stack of them) and return it.

    Parameters
    ----------
    matrix : array_like, shape (4, 4) or (n, 4, 4)
        Homogeneous transform(s): rotation in ``[:3, :3]``, translation (mm) in ``[:3, 3]``.
    name : str
        Argument name used in error messages (e.g. ``"tool_to_tracker"``).
    tol : float
        Tolerance on max |RᵀR − I|, on |det R − 1| and on the last row.

    Returns
    -------
    ndarray of float64, the input's shape
        A new array (the input is never modified).

    Raises
    ------
    TransformError
        For a wrong shape, non-finite entries, a last row other than ``[0, 0, 0, 1]``,
        a singular or reflecting (det < 0) rotation block, or one that scales or shears.
        For a stack the message names the first bad index.

    Examples
    --------
    >>> validate_rigid(np.eye(4)).shape
    (4, 4)
    >>> validate_rigid(np.diag([1.0, 1.0, -1.0, 1.0]), "tracker_to_ct")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seldinger.navigation.transforms.TransformError: tracker_to_ct is a reflection (det R = -1); ...
    """
    m = np.array(matrix, dtype=np.float64)
    if m.ndim not in (2, 3) or m.shape[-2:] != (4, 4):
        raise TransformError(
            f"{name} must have shape (4, 4) or (n, 4, 4); got {m.shape}. Pass homogeneous "
            "4x4 matrices (rotation in [:3, :3], translation in mm in [:3, 3])."
        )
    stack = m.reshape(-1, 4, 4)

    def where(bad: npt.ArrayLike) -> str:
        index = int(np.argmax(np.asarray(bad)))
        return name if m.ndim == 2 else f"{name}[{index}]"

    finite = np.isfinite(stack).all(axis=(1, 2))
    if not finite.all():
        raise TransformError(
            f"{where(~finite)} holds NaN or infinite entries; drop poses the tracker "
            "flagged invalid before using them."
        )
    row_error = np.abs(stack[:, 3, :] - [0.0, 0.0, 0.0, 1.0]).max(axis=1)
    if (row_error > tol).any():
        i = int(np.argmax(row_error > tol))
        raise TransformError(
            f"{where(row_error > tol)} must have last row [0, 0, 0, 1]; got "
            f"{stack[i, 3].tolist()}. Projective matrices are not rigid transforms."
        )
    rotation = stack[:, :3, :3]
    det = np.linalg.det(rotation)
    singular = np.abs(det) < tol
    if singular.any():
        raise TransformError(
            f"{where(singular)} is not invertible (det R = {det[np.argmax(singular)]:.3g}); "
            "its rotation block is singular. Check that the full matrix was received."
        )
    reflection = det < 0
    if reflection.any():
        raise TransformError(
            f"{where(reflection)} is a reflection (det R = {det[np.argmax(reflection)]:.3g}); "
            "a rigid transform has det R = +1. A handedness flip (e.g. RAS vs LPS, "
            "diag(-1, -1, 1)) is missing or applied twice."
        )
    ortho_error = np.abs(np.swapaxes(rotation, 1, 2) @ rotation - np.eye(3)).max(axis=(1, 2))
    not_rigid = ortho_error > tol
    if not_rigid.any():
        raise TransformError(
            f"{where(not_rigid)} is not rigid: max |RᵀR − I| = "
            f"{ortho_error[np.argmax(not_rigid)]:.3g} > {tol:g} (scale or shear). Use a "
            "rigid registration, or re-orthonormalise the rotation (its nearest rotation: "
            "U Vᵀ from the SVD R = U S Vᵀ)."
        )
    return m


def rigid_matrix(
    rotation: npt.ArrayLike | None = None, translation_mm: npt.ArrayLike | None = None
) -> Float64Array:
    """4×4 transform from a 3×3 rotation (default identity) and a translation in mm.

    >>> rigid_matrix(translation_mm=[1.0, 2.0, 3.0])[:3, 3].tolist()
    [1.0, 2.0, 3.0]
    """
    m = np.eye(4)
    if rotation is not None:
        m[:3, :3] = np.asarray(rotation, dtype=np.float64)
    if translation_mm is not None:
        m[:3, 3] = np.asarray(translation_mm, dtype=np.float64)
    return m


def invert_rigid(matrix: npt.ArrayLike) -> Float64Array:
    """Inverse of a rigid transform (or a stack), ``b_to_a`` from ``a_to_b``.

    Uses ``[Rᵀ, −Rᵀt]``, exact for rigid matrices and cheaper and better conditioned than
    a general inverse. The input is validated with :func:`validate_rigid`.

    >>> m = rigid_matrix(translation_mm=[10.0, 0.0, 0.0])
    >>> invert_rigid(m)[:3, 3].tolist()
    [-10.0, -0.0, -0.0]
    """
    m = validate_rigid(matrix, "matrix")
    inverse = np.zeros_like(m)
    r_t = np.swapaxes(m[..., :3, :3], -1, -2)
    inverse[..., :3, :3] = r_t
    inverse[..., :3, 3] = -(r_t @ m[..., :3, 3, None])[..., 0]
    inverse[..., 3, 3] = 1.0
    return inverse


def apply_transform(points_mm: npt.ArrayLike, matrix: npt.ArrayLike) -> Float64Array:
    """Map points through a 4×4 transform: shape (..., 3) → (..., 3).

    The matrix is used as given (no rigidity check), so similarity transforms work too.

    >>> apply_transform([[1.0, 0.0, 0.0]], rigid_matrix(translation_mm=[0.0, 5.0, 0.0])).tolist()
    [[1.0, 5.0, 0.0]]
    """
    points = np.asarray(points_mm, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if points.shape[-1:] != (3,):
        raise TransformError(f"points_mm must have shape (..., 3); got {points.shape}.")
    if m.shape != (4, 4):
        raise TransformError(f"matrix must have shape (4, 4); got {m.shape}.")
    return points @ m[:3, :3].T + m[:3, 3]


def rotation_angle_deg(matrix: npt.ArrayLike) -> float:
    """Angle of the rotation part of a rigid transform, in degrees (0–180).

    >>> round(rotation_angle_deg(quaternion_to_matrix([0.0, 0.0, np.sin(0.25), np.cos(0.25)])), 6)
    28.64789
    """
    m = validate_rigid(matrix, "matrix")
    if m.ndim != 2:
        raise TransformError(f"matrix must have shape (4, 4); got {m.shape}.")
    return float(np.degrees(Rotation.from_matrix(m[:3, :3]).magnitude()))


def quaternion_to_matrix(
    quaternion_xyzw: npt.ArrayLike, translation_mm: npt.ArrayLike | None = None
) -> Float64Array:
    """4×4 rigid transform from a unit quaternion ``(x, y, z, w)`` and a translation in mm.

    The quaternion is normalised (SciPy does so); a zero quaternion raises ValueError.
    """
    q = np.asarray(quaternion_xyzw, dtype=np.float64)
    if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) == 0.0:
        raise TransformError(
            f"quaternion_xyzw must be 4 finite numbers (x, y, z, w), not all zero; got {q}."
        )
    return rigid_matrix(Rotation.from_quat(q).as_matrix(), translation_mm)


def matrix_to_quaternion(matrix: npt.ArrayLike) -> Float64Array:
    """Unit quaternion ``(x, y, z, w)`` of a rigid transform's rotation, with ``w ≥ 0``.

    >>> matrix_to_quaternion(np.eye(4)).tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    m = validate_rigid(matrix, "matrix")
    if m.ndim != 2:
        raise TransformError(f"matrix must have shape (4, 4); got {m.shape}.")
    q = Rotation.from_matrix(m[:3, :3]).as_quat(canonical=True)
    return np.asarray(q, dtype=np.float64)
