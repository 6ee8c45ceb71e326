"""Dense displacement fields between respiratory phases: Jacobian, sampling, warping, files.

A :class:`DisplacementField` lives on the FIXED phase's voxel grid. At each voxel centre
``x`` (LPS mm) it holds the vector ``u(x)`` (LPS mm) that moves ``x`` to its position in the
MOVING phase: ``x_moving = x + u(x)``. This is elastix's convention (the transform maps the
fixed image domain into the moving one) and ITK's, so fields go to and from ITK unchanged.
See ``docs/conventions.md`` for the frame and ``docs/motion.md`` for the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from scipy import ndimage

from seldinger.errors import MissingFileError
from seldinger.files import atomic_path
from seldinger.imaging import Volume, VolumeGeometry
from seldinger.motion.errors import FoldingError, MotionError

__all__ = [
    "DISPLACEMENT_FILE",
    "JACOBIAN_FILE",
    "DisplacementField",
    "check_no_folding",
    "jacobian_determinant",
    "read_displacement_nifti",
    "warp",
    "write_displacement_nifti",
    "write_jacobian_nifti",
]

#: File names written by ``seldinger motion register`` (issue 17).
DISPLACEMENT_FILE = "displacement_lps_mm.nii.gz"
JACOBIAN_FILE = "jacobian.nii.gz"

#: NIfTI ``descrip`` of a displacement file (ITK writes it from the ``ITK_FileNotes`` key).
_DESCRIPTION = "u(x) LPS mm: fixed voxel x -> moving x+u; components L,P,S"


@dataclass(frozen=True, eq=False)
class DisplacementField:
    """Vectors on the FIXED grid that move each voxel centre to its MOVING position.

    Parameters
    ----------
    geometry : VolumeGeometry
        The FIXED phase's grid (index → LPS mm).
    vectors_lps_mm : ndarray, shape (I, J, K, 3), float32
        ``u`` at each voxel centre, components (x, y, z) in LPS mm.

    Examples
    --------
    >>> grid = VolumeGeometry.from_spacing((4, 4, 4), (1.0, 1.0, 2.0))
    >>> field = DisplacementField.constant(grid, (0.0, 0.0, -5.0))
    >>> field.at_lps([[1.5, 1.5, 3.0]]).tolist()
    [[0.0, 0.0, -5.0]]
    """

    geometry: VolumeGeometry
    vectors_lps_mm: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors_lps_mm, dtype=np.float32)
        if vectors.shape != (*self.geometry.shape, 3):
            raise MotionError(
                f"vectors_lps_mm must have shape {(*self.geometry.shape, 3)} (the grid's I, J, K "
                f"and 3 LPS components); got {vectors.shape}."
            )
        if not np.isfinite(vectors).all():
            raise MotionError(
                "vectors_lps_mm holds NaN or infinite values; a displacement field must be finite "
                "everywhere. Recompute it, or fill the gaps (e.g. with 0) first."
            )
        vectors.setflags(write=False)
        object.__setattr__(self, "vectors_lps_mm", vectors)

    @classmethod
    def constant(
        cls, geometry: VolumeGeometry, vector_lps_mm: tuple[float, float, float]
    ) -> DisplacementField:
        """The same vector everywhere (a translation): a baseline and a test case."""
        vectors = np.empty((*geometry.shape, 3), np.float32)
        vectors[...] = np.asarray(vector_lps_mm, np.float32)
        return cls(geometry, vectors)

    @property
    def magnitude_mm(self) -> npt.NDArray[np.float32]:
        """|u| at each voxel, shape (I, J, K), mm."""
        return np.asarray(np.sqrt(np.sum(np.square(self.vectors_lps_mm), axis=-1)), np.float32)

    def at_lps(self, points_lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``u`` at LPS points by trilinear interpolation, shape (..., 3) → (..., 3), mm.

        Raises
        ------
        MotionError
            If a point lies outside the field's grid.
        """
        points = np.asarray(points_lps_mm, dtype=np.float64)
        ijk = self.geometry.lps_to_index(points).reshape(-1, 3)
        upper = np.asarray(self.geometry.shape) - 1
        outside = np.any((ijk < -1e-6) | (ijk > upper + 1e-6), axis=1)
        if outside.any():
            lo, hi = self.geometry.bounds_lps_mm()
            first = points.reshape(-1, 3)[int(np.argmax(outside))]
            raise MotionError(
                f"points_lps_mm {np.round(first, 2).tolist()} lies outside the displacement "
                f"field (LPS {np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm); "
                "ask for points inside the FIXED phase's grid."
            )
        out = np.stack(
            [
                ndimage.map_coordinates(self.vectors_lps_mm[..., c], ijk.T, order=1, mode="nearest")
                for c in range(3)
            ],
            axis=-1,
        )
        return out.reshape(points.shape)

    def to_sitk(self, dtype: Any = np.float64) -> sitk.Image:
        """The field as a SimpleITK vector image (LPS; float64 for DisplacementFieldTransform)."""
        array = np.ascontiguousarray(np.asarray(self.vectors_lps_mm, dtype).transpose(2, 1, 0, 3))
        image = sitk.GetImageFromArray(array, isVector=True)
        _set_sitk_geometry(image, self.geometry)
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> DisplacementField:
        """A field from a SimpleITK 3-D image of 3-vectors (LPS physical space, mm)."""
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 3:
            raise MotionError(
                "a displacement field must be a 3-D image of 3-vectors; got a "
                f"{image.GetDimension()}-D image with {image.GetNumberOfComponentsPerPixel()} "
                "component(s) per voxel."
            )
        array = sitk.GetArrayFromImage(image).transpose(2, 1, 0, 3)
        return cls(_sitk_geometry(image), np.asarray(array, np.float32))


def _set_sitk_geometry(image: sitk.Image, geometry: VolumeGeometry) -> None:
    image.SetOrigin(tuple(float(c) for c in geometry.origin_lps_mm))
    image.SetSpacing(geometry.spacing_mm)
    image.SetDirection(tuple(float(c) for c in geometry.direction.ravel()))


def _sitk_geometry(image: sitk.Image) -> VolumeGeometry:
    size = image.GetSize()
    return VolumeGeometry.from_spacing(
        (int(size[0]), int(size[1]), int(size[2])),
        image.GetSpacing(),
        image.GetOrigin(),
        np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3),
    )


def jacobian_determinant(field: DisplacementField) -> Volume:
    """det(I + ∂u/∂x) at each voxel of the field's grid (float32 Volume, no unit).

    1 means the local volume is kept, < 1 compressed, > 1 expanded; ≤ 0 means the
    mapping folds (two fixed points land on one moving point). Computed by ITK's
    ``DisplacementFieldJacobianDeterminantFilter`` (central differences in mm).
    """
    det = sitk.DisplacementFieldJacobianDeterminant(field.to_sitk(np.float32), True)
    array = sitk.GetArrayFromImage(det).transpose(2, 1, 0)
    return Volume(np.asarray(array, np.float32), field.geometry.affine)


def check_no_folding(jacobian: Volume, region: npt.NDArray[np.bool_] | None = None) -> float:
    """The smallest Jacobian determinant in ``region`` (all voxels by default); refuse ≤ 0.

    Raises
    ------
    FoldingError
        If any determinant in the region is ≤ 0.
    """
    values = jacobian.array if region is None else jacobian.array[np.asarray(region, bool)]
    if values.size == 0:
        raise MotionError("check_no_folding: the region holds no voxel; give a non-empty mask.")
    smallest = float(values.min())
    if smallest <= 0.0:
        n_folded = int(np.count_nonzero(values <= 0.0))
        where = "inside the mask" if region is not None else "in the field"
        masked = jacobian.array if region is None else np.where(region, jacobian.array, np.inf)
        worst = np.unravel_index(int(np.argmin(masked)), jacobian.shape)
        at = np.round(jacobian.index_to_lps(np.asarray(worst, np.float64)), 1).tolist()
        raise FoldingError(
            f"displacement field folds: Jacobian determinant down to {smallest:.3g} at LPS "
            f"{at} mm ({n_folded} voxels ≤ 0 {where}); a breathing motion keeps det > 0. Register with "
            "a stronger bending-energy penalty or a coarser B-spline grid, or check the phases.",
            min_jacobian=smallest,
            n_folded_voxels=n_folded,
        )
    return smallest


def warp(
    image: Volume,
    field: DisplacementField,
    interpolation: str = "linear",
    fill_value: float = -1024.0,
) -> Volume:
    """Resample ``image`` through ``field``: the output at FIXED voxel ``x`` is ``image(x + u(x))``.

    With a field from :func:`seldinger.motion.register` (FIXED → MOVING), ``warp(moving,
    field)`` brings the MOVING phase onto the FIXED one, voxel for voxel. The output lies
    on the field's grid and keeps the image's dtype (values rounded for integer CTs).

    Parameters
    ----------
    image : Volume
        A CT (HU) or a mask in the MOVING phase (any grid that covers ``x + u(x)``).
    field : DisplacementField
        FIXED → MOVING displacement.
    interpolation : {"linear", "nearest", "bspline"}
        "nearest" for masks and labels.
    fill_value : float
        Value where ``x + u(x)`` falls outside ``image`` (−1024 HU: air; use 0 for masks).
    """
    interpolators = {
        "linear": sitk.sitkLinear,
        "nearest": sitk.sitkNearestNeighbor,
        "bspline": sitk.sitkBSpline,
    }
    if interpolation not in interpolators:
        raise MotionError(
            f"interpolation must be one of {sorted(interpolators)}; got {interpolation!r}."
        )
    source = np.asarray(image.array)
    as_float = source.dtype == bool or source.dtype.kind in "iu"
    pixels = source.astype(np.float32) if as_float else source
    moving = sitk.GetImageFromArray(np.ascontiguousarray(pixels.transpose(2, 1, 0)))
    _set_sitk_geometry(moving, image.geometry)
    transform = sitk.DisplacementFieldTransform(field.to_sitk(np.float64))
    reference = sitk.Image(*field.geometry.shape, moving.GetPixelID())
    _set_sitk_geometry(reference, field.geometry)
    out = sitk.Resample(moving, reference, transform, interpolators[interpolation], fill_value)
    array = sitk.GetArrayFromImage(out).transpose(2, 1, 0)
    if source.dtype == bool:
        result = np.asarray(array) >= 0.5
    elif source.dtype.kind in "iu":
        info = np.iinfo(source.dtype)
        result = np.clip(np.rint(array), info.min, info.max).astype(source.dtype)
    else:
        result = np.asarray(array, source.dtype)
    return Volume(result, field.geometry.affine)


def write_displacement_nifti(
    field: DisplacementField, path: str | Path, force: bool = False
) -> Path:
    """Write ``field`` as a NIfTI vector image (intent VECTOR, float32, 5-D: I, J, K, 1, 3).

    The grid (qform/sform) is converted to NIfTI's RAS by ITK as for any image; the vector
    components are stored **as they are: LPS mm**, the convention of ITK and ANTs
    displacement files, and the header's description says so
    (``"u(x) LPS mm: fixed voxel x -> moving x+u; components L,P,S"``). Read it back with
    :func:`read_displacement_nifti`, or in ITK/SimpleITK as a displacement field.
    """
    image = field.to_sitk(np.float32)
    image.SetMetaData("ITK_FileNotes", _DESCRIPTION)
    target = Path(path)
    with atomic_path(target, force=force) as tmp:
        sitk.WriteImage(image, str(tmp), True)
    return target


def read_displacement_nifti(path: str | Path) -> DisplacementField:
    """Read a field written by :func:`write_displacement_nifti` (or by ITK/ANTs, LPS vectors)."""
    source = Path(path)
    if not source.is_file():
        raise MissingFileError(f"displacement field {source} does not exist.")
    try:
        image = sitk.ReadImage(str(source), sitk.sitkVectorFloat32)
    except RuntimeError as err:
        raise MotionError(
            f"{source}: cannot be read as a displacement field ({str(err).strip().splitlines()[-1]})."
        ) from err
    return DisplacementField.from_sitk(image)


def write_jacobian_nifti(jacobian: Volume, path: str | Path, force: bool = False) -> Path:
    """Write the Jacobian determinant (float32, FIXED grid) as NIfTI."""
    from seldinger.io import write_nifti  # io owns the RAS↔LPS conversion of plain volumes

    return write_nifti(jacobian.with_array(np.asarray(jacobian.array, np.float32)), path, force)
