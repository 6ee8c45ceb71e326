"""The one image type of Seldinger: voxels on a regular grid in the patient frame.

Conventions (see ``docs/conventions.md``): positions are DICOM patient **LPS**
coordinates in millimetres; arrays are indexed ``(i, j, k)``; the 4×4 ``affine``
maps ``[i, j, k, 1]`` to ``[x, y, z, 1]`` in LPS mm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = [
    "GeometryError",
    "Volume",
    "VolumeGeometry",
    "orientation_code",
    "require_same_geometry",
]

#: Tolerance on |dᵢ·dⱼ − δᵢⱼ| for the direction cosines. DICOM stores them as
#: decimal strings of ≤ 16 characters, so 1e-4 admits real headers and still
#: rejects any shear a user could see (1e-4 rad ≈ 0.006°).
ORTHONORMAL_TOLERANCE = 1e-4

# Letters name the patient direction in which an index *increases*
# ("LPS": i → left, j → posterior, k → superior), the convention of
# SimpleITK's DICOMOrient and nibabel's aff2axcodes (there for RAS).
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


class GeometryError(BadInputError):
    """A Volume's affine or two Volumes' grids break a geometric rule."""


def _as_affine(affine: npt.ArrayLike) -> npt.NDArray[np.float64]:
    matrix = np.array(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise GeometryError(f"affine must be a 4x4 matrix; got shape {matrix.shape}.")
    if not np.all(np.isfinite(matrix)):
        raise GeometryError(f"affine must contain only finite numbers; got\n{matrix}")
    if not np.array_equal(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise GeometryError(f"affine's last row must be [0, 0, 0, 1]; got {matrix[3].tolist()}.")
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    if np.any(spacing <= 0.0):
        raise GeometryError(
            f"affine has a zero-length axis (spacing_mm {spacing.tolist()}); every voxel "
            "axis needs a positive spacing. The input's header is corrupt or singular."
        )
    direction = matrix[:3, :3] / spacing
    error = np.abs(direction.T @ direction - np.eye(3)).max()
    if error > ORTHONORMAL_TOLERANCE:
        raise GeometryError(
            "affine's direction cosines are not orthonormal (max |dᵢ·dⱼ − δᵢⱼ| = "
            f"{error:.2e} > {ORTHONORMAL_TOLERANCE:g}); the grid is sheared or skewed. "
            "Resample it onto an orthogonal grid first (e.g. `seldinger convert --resample`)."
        )
    matrix.setflags(write=False)
    return matrix


def orientation_code(affine: npt.ArrayLike) -> str:
    """Three-letter code of the patient directions in which i, j and k increase.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Index-to-LPS affine.

    Returns
    -------
    str
        For example ``"LPS"`` for the DICOM default axial stack and ``"RAI"``
        for an array whose i runs right, j anterior and k inferior. Oblique axes
        get the letter of their dominant component.

    Examples
    --------
    >>> orientation_code(np.eye(4))
    'LPS'
    >>> orientation_code(np.diag([-1.0, -1.0, -1.0, 1.0]))
    'RAI'
    """
    matrix = np.asarray(affine, dtype=np.float64)[:3, :3]
    letters = []
    for column in matrix.T:
        axis = int(np.argmax(np.abs(column)))
        letters.append(_AXIS_LETTERS[axis][int(column[axis] > 0)])
    code = "".join(letters)
    if len(set(code.replace("R", "L").replace("A", "P").replace("I", "S"))) != 3:
        raise GeometryError(f"affine axes do not span three patient directions: {code}.")
    return code


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """A regular grid in the patient frame, without voxels (a planning or dose grid).

    Parameters
    ----------
    shape : tuple of int
        Number of voxels along (i, j, k).
    affine : ndarray, shape (4, 4)
        Maps ``[i, j, k, 1]`` to LPS mm.
    """

    shape: tuple[int, int, int]
    affine: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GeometryError(f"shape must be three positive integers (i, j, k); got {shape}.")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", _as_affine(self.affine))

    @classmethod
    def from_spacing(
        cls,
        shape: tuple[int, int, int],
        spacing_mm: tuple[float, float, float],
        origin_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
        direction: npt.ArrayLike | None = None,
    ) -> VolumeGeometry:
        """Grid from spacing, origin (centre of voxel (0, 0, 0)) and direction columns."""
        cosines = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
        affine = np.eye(4)
        affine[:3, :3] = cosines * np.asarray(spacing_mm, dtype=np.float64)
        affine[:3, 3] = origin_lps_mm
        return cls(shape, affine)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along (i, j, k) in mm."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def direction(self) -> npt.NDArray[np.float64]:
        """3×3 matrix whose columns are the unit LPS directions of i, j and k."""
        return self.affine[:3, :3] / np.asarray(self.spacing_mm)

    @property
    def origin_lps_mm(self) -> npt.NDArray[np.float64]:
        """LPS position of the centre of voxel (0, 0, 0), in mm."""
        return self.affine[:3, 3].copy()

    @property
    def orientation(self) -> str:
        """Orientation code, e.g. ``"LPS"`` (see :func:`orientation_code`)."""
        return orientation_code(self.affine)

    def index_to_lps(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """LPS mm of (fractional) voxel indices, shape (..., 3) → (..., 3)."""
        points = np.asarray(ijk, dtype=np.float64)
        if points.shape[-1] != 3:
            raise BadInputError(f"ijk must have shape (..., 3); got {points.shape}.")
        return points @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Fractional voxel indices of LPS points, shape (..., 3) → (..., 3)."""
        points = np.asarray(lps_mm, dtype=np.float64)
        if points.shape[-1] != 3:
            raise BadInputError(f"lps_mm must have shape (..., 3); got {points.shape}.")
        inverse = np.linalg.inv(self.affine)
        return points @ inverse[:3, :3].T + inverse[:3, 3]

    def bounds_lps_mm(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(lowest, highest) LPS corner over the voxel centres of the grid."""
        corners = np.array(np.meshgrid(*[[0, n - 1] for n in self.shape], indexing="ij"))
        lps = self.index_to_lps(corners.reshape(3, -1).T)
        return lps.min(axis=0), lps.max(axis=0)

    def same_as(self, other: VolumeGeometry, atol_mm: float = 1e-4) -> bool:
        """True when both grids have the same shape and the same voxel positions."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, rtol=0.0, atol=atol_mm)
        )

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        origin = ", ".join(f"{c:.2f}" for c in self.origin_lps_mm)
        return (
            f"VolumeGeometry(shape={self.shape}, spacing_mm=({spacing}), "
            f"orientation={self.orientation!r}, origin_lps_mm=({origin}))"
        )


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxel data on a regular grid in the patient frame (LPS, mm).

    CTs (HU), masks (bool or label), dose grids (Gy) and temperature maps (°C)
    are all Volumes; whoever returns one states what its values mean.

    Parameters
    ----------
    array : ndarray, shape (I, J, K)
        Voxel values indexed (i, j, k). Stored as a read-only view; use
        :meth:`with_array` for new values on the same grid.
    affine : array_like, shape (4, 4)
        Maps a voxel index to an LPS position in mm: ``lps_mm = affine @ [i, j, k, 1]``.
        Validated on construction: finite, last row ``[0, 0, 0, 1]``, positive
        spacing, orthonormal direction cosines.

    Raises
    ------
    GeometryError
        If the affine breaks one of those rules.
    ValueError
        If the array is not 3-D or holds non-finite floating-point values.

    Examples
    --------
    >>> ct = Volume(np.zeros((4, 4, 2), np.int16), np.diag([0.5, 0.5, 2.0, 1.0]))
    >>> ct.spacing_mm
    (0.5, 0.5, 2.0)
    >>> ct.index_to_lps([1, 2, 1]).tolist()
    [0.5, 1.0, 2.0]
    """

    array: npt.NDArray[Any]
    affine: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise BadInputError(
                f"Volume.array must be 3-D, indexed (i, j, k); got shape {array.shape}. "
                "Add a singleton axis for a single slice (array[:, :, None])."
            )
        if 0 in array.shape:
            raise BadInputError(f"Volume.array must not be empty; got shape {array.shape}.")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise BadInputError(
                "Volume.array holds NaN or infinite values; replace them (e.g. with the "
                "background value) before building a Volume."
            )
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Volume.array must be numeric or bool; got dtype {array.dtype}.")
        view = array.view()
        view.setflags(write=False)
        object.__setattr__(self, "array", view)
        object.__setattr__(self, "affine", _as_affine(self.affine))

    # --- geometry -------------------------------------------------------------------
    @property
    def geometry(self) -> VolumeGeometry:
        """The grid without its voxels."""
        shape = self.array.shape
        return VolumeGeometry((shape[0], shape[1], shape[2]), self.affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of voxels along (i, j, k)."""
        return self.geometry.shape

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along (i, j, k) in mm."""
        return self.geometry.spacing_mm

    @property
    def direction(self) -> npt.NDArray[np.float64]:
        """Columns: unit LPS direction of the i, j and k axes."""
        return self.geometry.direction

    @property
    def origin_lps_mm(self) -> npt.NDArray[np.float64]:
        """LPS position of the centre of voxel (0, 0, 0), in mm."""
        return self.geometry.origin_lps_mm

    @property
    def orientation(self) -> str:
        """Orientation code, e.g. ``"LPS"`` or ``"RAI"`` (see :func:`orientation_code`)."""
        return orientation_code(self.affine)

    def index_to_lps(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """LPS mm of (fractional) voxel indices, shape (..., 3) → (..., 3)."""
        return self.geometry.index_to_lps(ijk)

    def lps_to_index(self, lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Fractional voxel indices of LPS points, shape (..., 3) → (..., 3)."""
        return self.geometry.lps_to_index(lps_mm)

    def value_at_lps(self, lps_mm: npt.ArrayLike) -> npt.NDArray[Any]:
        """Nearest-voxel values at LPS points; raises if a point is outside the grid."""
        index = np.rint(self.lps_to_index(lps_mm)).astype(np.int64)
        flat = index.reshape(-1, 3)
        outside = np.any((flat < 0) | (flat >= np.asarray(self.shape)), axis=1)
        if outside.any():
            first = np.asarray(lps_mm, dtype=np.float64).reshape(-1, 3)[np.argmax(outside)]
            lo, hi = self.geometry.bounds_lps_mm()
            raise BadInputError(
                f"lps_mm {first.tolist()} lies outside the volume (LPS extent "
                f"{np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm)."
            )
        values = self.array[flat[:, 0], flat[:, 1], flat[:, 2]]
        return values.reshape(index.shape[:-1])

    # --- derived volumes ------------------------------------------------------------
    def with_array(self, array: npt.ArrayLike) -> Volume:
        """Same geometry, new voxels (a mask, dose or temperature computed on this grid)."""
        new = np.asarray(array)
        if new.shape != self.array.shape:
            raise BadInputError(
                f"with_array needs an array of shape {self.array.shape}; got {new.shape}. "
                "Resample to this grid first (Volume.resample_to)."
            )
        return replace(self, array=new)

    def resample_to(
        self,
        geometry: VolumeGeometry | Volume,
        interpolation: str = "linear",
        fill_value: float = 0.0,
        dtype: npt.DTypeLike | None = None,
    ) -> Volume:
        """Values of this volume on another grid (see :func:`seldinger.imaging.resample`)."""
        from seldinger.imaging.resample import resample  # local: resample imports Volume

        return resample(
            self, geometry, interpolation=interpolation, fill_value=fill_value, dtype=dtype
        )

    def crop_lps(self, lo_lps_mm: npt.ArrayLike, hi_lps_mm: npt.ArrayLike) -> Volume:
        """Sub-volume holding every voxel centre inside an LPS box.

        Parameters
        ----------
        lo_lps_mm, hi_lps_mm : array_like, shape (3,)
            Opposite corners of the box in LPS mm (any order per axis).

        Returns
        -------
        Volume
            A view of this volume's voxels with the affine's origin moved.

        Raises
        ------
        ValueError
            If the box holds no voxel centre of this volume.
        """
        a = np.asarray(lo_lps_mm, dtype=np.float64)
        b = np.asarray(hi_lps_mm, dtype=np.float64)
        box_lo, box_hi = np.minimum(a, b), np.maximum(a, b)
        corners = np.array(np.meshgrid(*zip(box_lo, box_hi, strict=True), indexing="ij"))
        index = self.lps_to_index(corners.reshape(3, -1).T)
        tol = 1e-6
        start = np.maximum(np.ceil(index.min(axis=0) - tol), 0).astype(int)
        stop = np.minimum(np.floor(index.max(axis=0) + tol) + 1, self.shape).astype(int)
        if np.any(stop <= start):
            lo, hi = self.geometry.bounds_lps_mm()
            raise BadInputError(
                f"crop box {box_lo.tolist()} to {box_hi.tolist()} mm holds no voxel of the "
                f"volume (LPS extent {np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm)."
            )
        return self.crop_index(
            tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        )

    def crop_index(self, box: tuple[slice, ...]) -> Volume:
        """Sub-volume of the voxels ``array[box]`` (unit-step slices), origin moved to match.

        >>> v = Volume(np.zeros((4, 4, 4)), np.eye(4))
        >>> v.crop_index((slice(1, 3), slice(0, 4), slice(2, 4))).origin_lps_mm.tolist()
        [1.0, 0.0, 2.0]
        """
        if len(box) != 3 or any(s.step not in (None, 1) for s in box):
            raise BadInputError(f"crop_index takes three unit-step slices; got {box!r}.")
        start = [s.indices(n)[0] for s, n in zip(box, self.shape, strict=True)]
        affine = self.affine.copy()
        affine[:3, 3] = self.index_to_lps(start)
        return Volume(self.array[box], affine)

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        origin = ", ".join(f"{c:.2f}" for c in self.origin_lps_mm)
        return (
            f"Volume(shape={self.shape}, spacing_mm=({spacing}), orientation={self.orientation!r}, "
            f"origin_lps_mm=({origin}), dtype={self.array.dtype})"
        )


def require_same_geometry(*volumes: Volume | VolumeGeometry, atol_mm: float = 1e-4) -> None:
    """Raise :class:`GeometryError` naming the first volume whose grid differs from the first."""
    if not volumes:
        return
    first = volumes[0] if isinstance(volumes[0], VolumeGeometry) else volumes[0].geometry
    for n, item in enumerate(volumes[1:], start=1):
        geometry = item if isinstance(item, VolumeGeometry) else item.geometry
        if not first.same_as(geometry, atol_mm=atol_mm):
            raise GeometryError(
                f"volume #{n} is on another grid: {geometry!r} vs {first!r}. "
                "Resample it onto the first (Volume.resample_to) before combining them."
            )
