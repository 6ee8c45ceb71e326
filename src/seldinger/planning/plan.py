"""The Plan document: the versioned JSON hand-over between planning steps, CLI and viewer.

A plan belongs to one CT. :class:`CaseIdentity` records which one (path, DICOM
SeriesInstanceUID, SHA-256 of the voxels, shape, affine) and :meth:`Plan.load`
refuses to pair a plan with any other CT. Positions are LPS millimetres, as
everywhere in Seldinger (see ``docs/conventions.md``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError

import seldinger
from seldinger._files import atomic_path
from seldinger.imaging import Volume, VolumeGeometry, reorient

__all__ = [
    "AFFINE_ATOL_MM",
    "SCHEMA_VERSION",
    "CaseIdentity",
    "Plan",
    "PlanCaseMismatchError",
    "PlanFileError",
    "Provenance",
    "StructureRef",
    "Target",
    "voxel_sha256",
]

logger = logging.getLogger(__name__)

#: Version of the JSON layout written by this code; bump it on any incompatible change.
SCHEMA_VERSION = "1"

#: Largest difference (mm) between two affines' entries that still counts as the same grid:
#: above the float32 rounding of NIfTI headers (~3e-5 mm at 500 mm) and of DICOM decimal
#: strings, far below any voxel size.
AFFINE_ATOL_MM = 1e-3


class PlanCaseMismatchError(ValueError):
    """A plan was paired with a CT other than the one it was made on."""


class PlanFileError(ValueError):
    """A plan file is not valid JSON, not a plan, or of an unsupported schema version."""


# --- the voxel fingerprint ------------------------------------------------------------


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


# --- the document ---------------------------------------------------------------------


class CaseIdentity(BaseModel):
    """The CT a plan belongs to.

    Parameters
    ----------
    source_path : str
        Where the CT was read from (DICOM folder or image file), as given by the user.
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

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_path: str
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
        cls, volume: Volume, source_path: str | os.PathLike[str], series_uid: str | None = None
    ) -> CaseIdentity:
        """Identity of ``volume`` (hashes its voxels: about a second for a 512×512×600 CT).

        Parameters
        ----------
        volume : Volume
            The CT (HU), in whatever orientation it was read.
        source_path : str or PathLike
            Where it was read from.
        series_uid : str, optional
            DICOM SeriesInstanceUID.

        Returns
        -------
        CaseIdentity
        """
        return cls(
            source_path=str(source_path),
            series_uid=series_uid,
            voxel_sha256=voxel_sha256(volume),
            shape=volume.shape,
            affine=volume.affine.tolist(),
            dtype=str(volume.array.dtype),
        )

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


class Provenance(BaseModel):
    """Who made a plan, when, and with which settings.

    Parameters
    ----------
    software_version : str
        ``seldinger.__version__`` of the writer.
    created_utc : datetime
        Creation time, timezone-aware; stored as ISO 8601.
    parameters : dict
        The settings used (JSON-serialisable values).
    command : str or None
        The command line that made the plan, when there was one.
    """

    model_config = ConfigDict(extra="forbid")

    software_version: str
    created_utc: AwareDatetime
    parameters: dict[str, Any] = Field(default_factory=dict)
    command: str | None = None


class StructureRef(BaseModel):
    """A segmented structure saved as a mask file next to the plan.

    Parameters
    ----------
    mask_path : str
        Mask file (NIfTI in the CT's geometry), relative to the plan file's folder,
        with forward slashes.
    volume_ml : float
        Volume of the structure in millilitres.
    """

    model_config = ConfigDict(extra="forbid")

    mask_path: str
    volume_ml: float = Field(ge=0.0)

    @field_validator("mask_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not value or Path(value).is_absolute() or value.startswith(("/", "\\")):
            raise ValueError(
                f"mask_path must be a non-empty path relative to the plan file's folder; "
                f"got {value!r}. Save the mask beside the plan and store its relative path."
            )
        return value

    def resolve(self, plan_path: str | os.PathLike[str]) -> Path:
        """Absolute path of the mask file for a plan saved at ``plan_path``."""
        return (Path(plan_path).parent / self.mask_path).resolve()


class Target(BaseModel):
    """A lesion to treat.

    Parameters
    ----------
    name : str
        Label, e.g. ``"nodule 1"``.
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

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    centroid_lps_mm: tuple[float, float, float]
    volume_ml: float = Field(ge=0.0)
    diameters_mm: tuple[float, ...] | None = None
    mask_path: str | None = None
    seed_lps_mm: tuple[float, float, float] | None = None
    recist_diameter_mm: float | None = Field(default=None, ge=0.0)
    max_diameter_mm: float | None = Field(default=None, ge=0.0)


class Plan(BaseModel):
    """A treatment plan for one CT, saved as human-readable JSON.

    Parameters
    ----------
    schema_version : str
        Layout version; only :data:`SCHEMA_VERSION` is accepted.
    case : CaseIdentity
        The CT this plan belongs to.
    provenance : Provenance
        Software version, time, parameters, command.
    structures : dict of str to StructureRef
        Segmented structures by name.
    targets : list of Target
        Lesions.
    trajectories : list of dict
        Needle paths (filled by the trajectory planner).
    ablation : dict, optional
        Ablation plan: device, setting, applicators (tip, direction, entry, zone), coverage,
        margin and heat-sink flags (filled by the ablation planner).
    seeds : dict, optional
        Seed implant: needles, seeds, strength and dose metrics (filled by the seed planner).
    navigation : dict, optional
        Navigation records: ``registrations`` and ``calibrations``, each a list of results
        (transform, errors, inputs, time) as written by ``seldinger navigate``.
    notes : list of str
        Free-text remarks.

    Examples
    --------
    >>> ct = Volume(np.zeros((4, 4, 2), np.int16), np.diag([0.7, 0.7, 2.5, 1.0]))
    >>> plan = Plan.new(ct, "ct.nii.gz", parameters={"margin_mm": 5.0})
    >>> plan.case.shape, plan.provenance.parameters
    ((4, 4, 2), {'margin_mm': 5.0})
    >>> plan.check_case(ct)  # same CT: no error
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: str = SCHEMA_VERSION
    case: CaseIdentity
    provenance: Provenance
    structures: dict[str, StructureRef] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)
    trajectories: list[dict[str, Any]] = Field(default_factory=list)
    ablation: dict[str, Any] | None = None
    seeds: dict[str, Any] | None = None
    navigation: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {value!r} is not supported by Seldinger "
                f"{seldinger.__version__} (it reads {SCHEMA_VERSION!r}); use the Seldinger "
                "version that wrote the plan, or make a new plan."
            )
        return value

    @classmethod
    def new(
        cls,
        volume: Volume,
        source_path: str | os.PathLike[str],
        series_uid: str | None = None,
        parameters: dict[str, Any] | None = None,
        command: str | None = None,
    ) -> Plan:
        """An empty plan for ``volume``, stamped with the software version and UTC time.

        Parameters
        ----------
        volume : Volume
            The CT (HU).
        source_path : str or PathLike
            Where the CT was read from.
        series_uid : str, optional
            DICOM SeriesInstanceUID.
        parameters : dict, optional
            Settings to record (JSON-serialisable values).
        command : str, optional
            Command line that made the plan.

        Returns
        -------
        Plan
        """
        return cls(
            case=CaseIdentity.from_volume(volume, source_path, series_uid),
            provenance=Provenance(
                software_version=seldinger.__version__,
                created_utc=datetime.now(UTC),
                parameters=dict(parameters or {}),
                command=command,
            ),
        )

    def check_case(self, volume: Volume) -> None:
        """Raise unless ``volume`` is the CT this plan was made on.

        Parameters
        ----------
        volume : Volume
            A CT, in any axis order.

        Raises
        ------
        PlanCaseMismatchError
            If shape, affine (tolerance :data:`AFFINE_ATOL_MM`) or voxel hash differ;
            the message names each difference and both values.
        """
        problems = self.case.mismatches(volume)
        if problems:
            raise PlanCaseMismatchError(
                "this plan belongs to another CT: "
                + "; ".join(problems)
                + f". Load the CT this plan was made on (source_path {self.case.source_path!r}"
                + (f", SeriesInstanceUID {self.case.series_uid}" if self.case.series_uid else "")
                + ") or make a new plan (Plan.new)."
            )

    def to_json(self) -> str:
        """The plan as indented JSON text.

        Raises
        ------
        ValueError
            If a value (typically in ``provenance.parameters`` or ``trajectories``)
            cannot be written as JSON.
        """
        try:
            return self.model_dump_json(indent=2) + "\n"
        except PydanticSerializationError as err:
            raise ValueError(
                f"plan cannot be written as JSON: {err}. Store only JSON types in "
                "parameters and trajectories (convert NumPy values with .tolist() or .item())."
            ) from err

    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the plan as JSON; the file appears whole or not at all.

        Parameters
        ----------
        path : str or PathLike
            Output file, conventionally ``plan.json``.
        force : bool
            Replace an existing file.

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``force`` is False.
        ValueError
            If the plan holds a value that is not JSON-serialisable (nothing is written).
        """
        target = Path(path)
        with atomic_path(target, force=force) as tmp:
            tmp.write_text(self.to_json(), encoding="utf-8")
        logger.debug("wrote plan %s", target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], volume: Volume | None = None) -> Plan:
        """Read a plan; with ``volume``, also check that it belongs to that CT.

        Parameters
        ----------
        path : str or PathLike
            A file written by :meth:`save`.
        volume : Volume, optional
            The CT the caller means to use the plan with.

        Returns
        -------
        Plan

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        PlanFileError
            If the file is not valid JSON, not a plan, or of an unsupported schema version.
        PlanCaseMismatchError
            If ``volume`` is given and is not the plan's CT.
        """
        source = Path(path)
        text = source.read_text(encoding="utf-8")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise PlanFileError(
                f"{source} is not valid JSON ({err.msg} at line {err.lineno}, column "
                f"{err.colno}); it is damaged or not a Seldinger plan. Restore it or make a "
                "new plan."
            ) from err
        if not isinstance(document, dict) or "schema_version" not in document:
            raise PlanFileError(
                f"{source} is not a Seldinger plan (a JSON object with 'schema_version' "
                f"is needed; got {type(document).__name__}"
                + (f" with keys {sorted(document)[:8]}" if isinstance(document, dict) else "")
                + "). Pass a plan.json written by Plan.save."
            )
        version = document["schema_version"]
        if version != SCHEMA_VERSION:
            raise PlanFileError(
                f"{source} has schema_version {version!r}; Seldinger {seldinger.__version__} "
                f"reads only {SCHEMA_VERSION!r}. Use the Seldinger version that wrote it, or "
                "make a new plan."
            )
        try:
            plan = cls.model_validate(document)
        except ValidationError as err:
            problems = [
                f"{'.'.join(str(part) for part in error['loc']) or '(document)'}: {error['msg']}"
                for error in err.errors()
            ]
            shown = "; ".join(problems[:10]) + ("; …" if len(problems) > 10 else "")
            raise PlanFileError(
                f"{source} is not a valid plan (schema_version {SCHEMA_VERSION!r}): "
                f"{len(problems)} problem(s): {shown}. Fix or remove the fields named, or make "
                "a new plan."
            ) from err
        if volume is not None:
            plan.check_case(volume)
        return plan
