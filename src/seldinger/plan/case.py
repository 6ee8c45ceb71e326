"""The CT a plan belongs to: its identity (path, UIDs, voxel hash, grid) and the voxel hash.

A plan refuses to load against any other CT (:meth:`CaseIdentity.mismatches`). The hash is
orientation-independent, so the same CT read in another axis order still matches.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, Field, model_validator

from seldinger.imaging import Volume, VolumeGeometry, reorient
from seldinger.plan.fields import PlanModel

__all__ = ["AFFINE_ATOL_MM", "CaseIdentity", "voxel_sha256"]

#: Largest difference (mm) between two affines' entries that still counts as the same grid:
#: above the float32 rounding of NIfTI headers (~3e-5 mm at 500 mm) and of DICOM decimal
#: strings, far below any voxel size.
AFFINE_ATOL_MM = 1e-3


def voxel_sha256(volume: Volume) -> str:
    """SHA-256 of a volume's voxels in a canonical, orientation-independent form.

    The volume is reoriented to ``"LPS"`` (exact: transposes and flips only), then
    the hash is taken over the shape (three little-endian int64) followed by the
    voxel values as little-endian float32, one k-slice at a time, each slice in C
    order (i slowest). The same CT stored in another axis order or with flipped
    axes therefore gets the same hash; a single changed voxel changes it.

    Parameters
    ----------
    volume : Volume
        Any orientation and numeric dtype. Values are converted to float32, which
        is exact for CT integers (int16/uint16) and for masks.

    Returns
    -------
    str
        64 lower-case hexadecimal characters.

    Notes
    -----
    Only one slice is converted at a time, so the extra memory is one float32
    slice (1 MiB for 512×512), not a copy of the volume.

    Examples
    --------
    >>> ct = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    >>> voxel_sha256(ct) == voxel_sha256(reorient(ct, "RAI"))
    True
    """
    canonical = reorient(volume, "LPS")  # views only: no voxel copy
    array = canonical.array
    digest = hashlib.sha256()
    digest.update(np.asarray(array.shape, dtype="<i8").tobytes())
    for k in range(array.shape[2]):
        digest.update(np.ascontiguousarray(array[:, :, k], dtype="<f4").tobytes())
    return digest.hexdigest()


def _lps_grid(
    shape: tuple[int, int, int], affine: npt.ArrayLike
) -> tuple[tuple[int, int, int], npt.NDArray[np.float64]]:
    """Shape and affine of a grid after :func:`reorient` to ``"LPS"`` (no voxels needed)."""
    # A zero-stride array stands in for the voxels: reorient only transposes and flips.
    placeholder = np.broadcast_to(np.zeros((), dtype=np.uint8), shape)
    canonical = reorient(Volume(placeholder, np.asarray(affine, dtype=np.float64)), "LPS")
    return canonical.shape, canonical.affine


class CaseIdentity(PlanModel):
    """The CT a plan belongs to.

    Parameters
    ----------
    source_path : str
        Where the CT was read from (DICOM folder or image file), as given by the user.
    source_format : str or None
        ``"dicom"``, ``"nifti"``, ``"nrrd"`` or ``"metaimage"``.
    study_uid : str or None
        DICOM StudyInstanceUID, when the CT came from DICOM.
    series_uid : str or None
        DICOM SeriesInstanceUID, when the CT came from DICOM.
    voxel_sha256 : str
        :func:`voxel_sha256` of the voxels.
    shape : tuple of int
        Voxels along (i, j, k), in the array order the CT was given in.
    affine : list of list of float, shape (4, 4)
        Index-to-LPS (mm) affine, as given.
    dtype : str
        NumPy dtype name of the voxels, e.g. ``"int16"``.
    """

    model_config = ConfigDict(frozen=True, validate_assignment=False)

    source_path: str = Field(min_length=1)
    source_format: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    voxel_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    shape: tuple[int, int, int]
    affine: list[list[float]]
    dtype: str

    @model_validator(mode="after")
    def _valid_grid(self) -> CaseIdentity:
        # VolumeGeometry checks shape > 0, 4x4, last row, spacing, orthonormality.
        VolumeGeometry(self.shape, np.asarray(self.affine, dtype=np.float64))
        return self

    @classmethod
    def from_volume(
        cls,
        volume: Volume,
        source_path: str | os.PathLike[str],
        series_uid: str | None = None,
        *,
        study_uid: str | None = None,
        source_format: str | None = None,
    ) -> CaseIdentity:
        """Identity of ``volume`` (hashes its voxels: about a second for a 512×512×600 CT).

        Parameters
        ----------
        volume : Volume
            The CT (HU), in whatever orientation it was read.
        source_path : str or PathLike
            Where it was read from.
        series_uid, study_uid : str, optional
            DICOM SeriesInstanceUID and StudyInstanceUID.
        source_format : str, optional
            ``"dicom"``, ``"nifti"``, ``"nrrd"`` or ``"metaimage"``.

        Returns
        -------
        CaseIdentity
        """
        return cls(
            source_path=str(source_path),
            source_format=source_format,
            study_uid=study_uid,
            series_uid=series_uid,
            voxel_sha256=voxel_sha256(volume),
            shape=volume.shape,
            affine=volume.affine.tolist(),
            dtype=str(volume.array.dtype),
        )

    @property
    def geometry(self) -> VolumeGeometry:
        """The CT's grid (shape and index-to-LPS affine), without voxels."""
        return VolumeGeometry(self.shape, np.asarray(self.affine, dtype=np.float64))

    def lps_bounds_mm(self, pad_mm: float = 0.0) -> tuple[npt.NDArray[np.float64], ...]:
        """Lowest and highest LPS corner (mm) of the CT's voxel boxes, widened by ``pad_mm``.

        Examples
        --------
        >>> case = CaseIdentity(source_path="ct.nii.gz", voxel_sha256="0" * 64,
        ...                     shape=(10, 10, 4), affine=np.diag([1.0, 1.0, 2.5, 1.0]).tolist(),
        ...                     dtype="int16")
        >>> [b.tolist() for b in case.lps_bounds_mm()]
        [[-0.5, -0.5, -1.25], [9.5, 9.5, 8.75]]
        """
        affine = np.asarray(self.affine, dtype=np.float64)
        corners = np.array(
            [
                [i, j, k, 1.0]
                for i in (-0.5, self.shape[0] - 0.5)
                for j in (-0.5, self.shape[1] - 0.5)
                for k in (-0.5, self.shape[2] - 0.5)
            ]
        )
        lps = (affine @ corners.T).T[:, :3]
        return lps.min(axis=0) - pad_mm, lps.max(axis=0) + pad_mm

    def mismatches(self, volume: Volume) -> list[str]:
        """Descriptions of what differs between this case and ``volume`` (empty: same CT).

        Shape and affine are compared after reorienting both grids to ``"LPS"``,
        so the same CT read in another axis order still matches; the affine with
        an absolute tolerance of :data:`AFFINE_ATOL_MM`. The voxel hash is only
        computed when the grids agree.
        """
        problems = []
        plan_shape, plan_affine = _lps_grid(self.shape, self.affine)
        ct_shape, ct_affine = _lps_grid(volume.shape, volume.affine)
        if plan_shape != ct_shape:
            problems.append(f"shape differs: plan {self.shape}, CT {volume.shape}")
        elif not np.allclose(plan_affine, ct_affine, rtol=0.0, atol=AFFINE_ATOL_MM):
            worst = float(np.abs(plan_affine - ct_affine).max())
            problems.append(
                f"affine differs by up to {worst:.4g} mm (tolerance {AFFINE_ATOL_MM:g} mm): "
                f"plan {np.round(np.asarray(self.affine), 4).tolist()}, "
                f"CT {np.round(volume.affine, 4).tolist()}"
            )
        else:
            ct_hash = voxel_sha256(volume)
            if ct_hash != self.voxel_sha256:
                problems.append(
                    f"voxel_sha256 differs: plan {self.voxel_sha256[:12]}…, CT {ct_hash[:12]}… "
                    "(same grid, different voxel values)"
                )
        return problems
