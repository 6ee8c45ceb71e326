"""The Plan document (schema v2): the one typed hand-over between steps, CLI, viewer and files.

A plan belongs to one CT (:class:`~seldinger.plan.case.CaseIdentity`); every section is a
typed model with units in its field names (``docs/plan.md`` lists them, ``seldinger plan
schema`` prints the JSON Schema). A plan is validated whole on load **and** on save: NaN or
infinite numbers, unknown keys, non-rigid transforms and ``*_lps_mm`` points outside the
CT are refused with the field named, so a plan that loads can always be written back.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

import seldinger
from seldinger.files import atomic_path
from seldinger.imaging import Volume
from seldinger.plan.ablation import AblationSection
from seldinger.plan.case import CaseIdentity
from seldinger.plan.errors import (
    PlanCaseMismatchError,
    PlanContentError,
    PlanFileError,
    PlanVersionError,
)
from seldinger.plan.fields import PlanModel
from seldinger.plan.motion import MotionSection
from seldinger.plan.navigation import NavigationSection
from seldinger.plan.provenance import Provenance
from seldinger.plan.robot import RobotSection
from seldinger.plan.seeds import SeedSection
from seldinger.plan.targets import StructureRef, Target
from seldinger.plan.trajectories import TrajectorySection

if TYPE_CHECKING:
    from seldinger.io import Ct

__all__ = ["POINT_PAD_MM", "SCHEMA_VERSION", "Plan", "describe_validation_error"]

logger = logging.getLogger(__name__)

#: Version of the JSON layout written by this code; bump it on any incompatible change and
#: add the step to :mod:`seldinger.plan.migrate`.
SCHEMA_VERSION: Literal["2"] = "2"
#: How far (mm) beyond the CT's outer voxel faces a ``*_lps_mm`` point may lie: a skin
#: marker or an entry on the skin sits inside the scanned box; more is a wrong frame or unit.
POINT_PAD_MM = 1.0
#: Problems named in one error message (the rest are counted).
_SHOWN_PROBLEMS = 3


class Plan(PlanModel):
    """A treatment plan for one CT, saved as human-readable JSON (schema v2).

    Parameters
    ----------
    schema_version : "2"
    case : CaseIdentity
        The CT this plan belongs to.
    provenance : Provenance
        Software version, creation time and every step that wrote into the plan.
    structures : dict of str to StructureRef
        Segmented structures by name (mask files beside the plan).
    targets : list of Target
        Lesions (unique names).
    trajectories : TrajectorySection or None
        Rules and ranked needle paths (``seldinger plan trajectory``).
    ablation : AblationSection or None
        Applicators, zones, coverage, margin, heat sinks (``seldinger plan ablation``).
    seeds : SeedSection or None
        I-125 implant: needles, seeds, strength, dose metrics (``seldinger plan seeds``).
    navigation : NavigationSection or None
        Calibrations and registrations (``seldinger navigate``).
    motion : MotionSection or None
        Respiratory phases, target and path motion, P(hit) (``seldinger motion plan``).
    robot : RobotSection or None
        Reachability by a robot and the robot sessions (``seldinger robot reach|run``).
    notes : list of str

    Examples
    --------
    >>> ct = Volume(np.zeros((4, 4, 2), np.int16), np.diag([0.7, 0.7, 2.5, 1.0]))
    >>> plan = Plan.new(ct, "ct.nii.gz")
    >>> plan.case.shape, plan.schema_version
    ((4, 4, 2), '2')
    >>> plan.check_case(ct)  # same CT: no error
    """

    schema_version: Literal["2"] = SCHEMA_VERSION
    case: CaseIdentity
    provenance: Provenance
    structures: dict[str, StructureRef] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)
    trajectories: TrajectorySection | None = None
    ablation: AblationSection | None = None
    seeds: SeedSection | None = None
    navigation: NavigationSection | None = None
    motion: MotionSection | None = None
    robot: RobotSection | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        names = [t.name for t in self.targets]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"targets: names must be unique; {repeated} appear more than once.")
        for section in ("trajectories", "ablation", "seeds"):
            value = getattr(self, section)
            target = None if value is None else value.target
            if target is not None and target not in names:
                raise ValueError(
                    f"{section}.target {target!r} is not one of the plan's targets {names}; "
                    "add the target or correct the name."
                )
        outside = self.points_outside_ct()
        if outside:
            shown = "; ".join(outside[:_SHOWN_PROBLEMS])
            more = len(outside) - _SHOWN_PROBLEMS
            raise ValueError(
                f"points outside the CT (LPS box {self._box_text()} mm): {shown}"
                + (f"; and {more} more" if more > 0 else "")
                + ". Points are DICOM patient LPS millimetres of this plan's CT."
            )
        return self

    # --- construction ---------------------------------------------------------------

    @classmethod
    def new(
        cls,
        volume: Volume,
        source_path: str | os.PathLike[str],
        series_uid: str | None = None,
        *,
        study_uid: str | None = None,
        source_format: str | None = None,
        command: str | None = None,
    ) -> Plan:
        """An empty plan for ``volume``, stamped with the software version and UTC time.

        Parameters
        ----------
        volume : Volume
            The CT (HU).
        source_path : str or PathLike
            Where the CT was read from.
        series_uid, study_uid : str, optional
            DICOM SeriesInstanceUID and StudyInstanceUID.
        source_format : str, optional
            ``"dicom"``, ``"nifti"``, ``"nrrd"`` or ``"metaimage"``.
        command : str, optional
            Command line that made the plan.
        """
        return cls(
            case=CaseIdentity.from_volume(
                volume, source_path, series_uid, study_uid=study_uid, source_format=source_format
            ),
            provenance=Provenance(
                software_version=seldinger.__version__,
                created_utc=datetime.now(UTC),
                command=command,
            ),
        )

    @classmethod
    def for_ct(cls, ct: Ct, command: str | None = None) -> Plan:
        """An empty plan for a CT read by :func:`seldinger.io.read_ct` (its path, made
        absolute so that later steps run from another folder find it, and UIDs)."""
        meta = ct.meta
        return cls.new(
            ct.volume,
            os.path.abspath(meta.source_path),
            meta.series_uid,
            study_uid=meta.study_uid,
            source_format=meta.format,
            command=command,
        )

    # --- content ----------------------------------------------------------------------

    def target(self, name: str | None = None, *, with_mask: bool = False) -> Target:
        """The target named ``name`` (default: the first one, with a mask if asked).

        Raises
        ------
        PlanContentError
            If there is no such target (the message lists the targets and the fix).
        """
        pool = [t for t in self.targets if t.mask_path or not with_mask]
        for candidate in pool:
            if name is None or candidate.name == name:
                return candidate
        known = [t.name for t in self.targets]
        if name is not None and name in known:
            raise PlanContentError(
                f"target {name!r} has no lesion mask; plan the trajectory with --lesion MASK "
                "to add one."
            )
        raise PlanContentError(
            (
                f"the plan has no target {name!r}; its targets are {known}."
                if name is not None
                else "the plan has no target" + (" with a lesion mask" if with_mask else "") + "."
            )
            + " Run `seldinger plan trajectory CT --anatomy DIR --lesion MASK --out PLAN` to "
            "add one."
        )

    def points_outside_ct(self, pad_mm: float = POINT_PAD_MM) -> list[str]:
        """``"field: point"`` for every ``*_lps_mm`` point outside the CT's box (+ ``pad_mm``)."""
        low, high = self.case.lps_bounds_mm(pad_mm)
        found: list[str] = []
        data = self.model_dump(mode="python", exclude={"case", "provenance"})
        _walk_points(data, "", low, high, found)
        return found

    def _box_text(self) -> str:
        low, high = self.case.lps_bounds_mm(0.0)
        return " to ".join(
            "(" + ", ".join(f"{v:.1f}" for v in corner) + ")" for corner in (low, high)
        )

    def check_case(self, volume: Volume) -> None:
        """Raise unless ``volume`` is the CT this plan was made on.

        Raises
        ------
        PlanCaseMismatchError
            If shape, affine or voxel hash differ; the message names each difference.
        """
        problems = self.case.mismatches(volume)
        if problems:
            raise PlanCaseMismatchError(
                "this plan belongs to another CT: "
                + "; ".join(problems)
                + f". Load the CT this plan was made on (source_path {self.case.source_path!r}"
                + (f", SeriesInstanceUID {self.case.series_uid}" if self.case.series_uid else "")
                + ") or make a new plan."
            )

    # --- file -------------------------------------------------------------------------

    def to_json(self) -> str:
        """The plan as indented JSON text, after validating it whole.

        Raises
        ------
        PlanContentError
            If any field breaks the schema (NaN, a point outside the CT, …); names the field.
        """
        try:
            checked = type(self).model_validate(self.model_dump(mode="python"))
        except ValidationError as err:
            raise PlanContentError(
                f"the plan was not written: {describe_validation_error(err)}. A step stored a "
                "value the plan cannot hold; correct it (this is a bug if no input caused it)."
            ) from err
        return checked.model_dump_json(indent=2) + "\n"

    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Validate the plan and write it as JSON; the file appears whole or not at all.

        Parameters
        ----------
        path : str or PathLike
            Output file, conventionally ``plan.json``.
        force : bool
            Replace an existing file.

        Raises
        ------
        OutputExistsError
            If ``path`` exists and ``force`` is False.
        PlanContentError
            If the plan breaks the schema (nothing is written).
        """
        text = self.to_json()
        target = Path(path)
        with atomic_path(target, force=force) as tmp:
            tmp.write_text(text, encoding="utf-8")
        logger.debug("wrote plan %s", target)
        return target

    @classmethod
    def from_json(cls, text: str, source: str = "the plan") -> Plan:
        """Parse and validate plan JSON text (see :meth:`load`)."""
        try:
            document = json.loads(text, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, ValueError) as err:
            where = (
                f" ({err.msg} at line {err.lineno}, column {err.colno})"
                if isinstance(err, json.JSONDecodeError)
                else f" ({err})"
            )
            raise PlanFileError(
                f"{source} is not valid JSON{where}; it is damaged or not a Seldinger plan. "
                "Restore it or make a new plan."
            ) from err
        if not isinstance(document, dict) or "schema_version" not in document:
            raise PlanFileError(
                f"{source} is not a Seldinger plan (a JSON object with 'schema_version' is "
                f"needed; got {type(document).__name__}"
                + (f" with keys {sorted(document)[:8]}" if isinstance(document, dict) else "")
                + "). Pass a plan.json written by Seldinger."
            )
        version = str(document["schema_version"])
        if version == "1":
            raise PlanVersionError(
                f"{source} is a schema v1 plan (Seldinger 0.1 round 1); this Seldinger reads "
                f"v{SCHEMA_VERSION}. Upgrade it once: `seldinger plan migrate {source} NEW.json`."
            )
        if version != SCHEMA_VERSION:
            raise PlanVersionError(
                f"{source} has schema_version {document['schema_version']!r}; Seldinger "
                f"{seldinger.__version__} reads only {SCHEMA_VERSION!r}. Use the Seldinger "
                "version that wrote it."
            )
        try:
            return cls.model_validate(document)
        except ValidationError as err:
            raise PlanFileError(
                f"{source} is not a valid plan: {describe_validation_error(err)}. Fix the field "
                "named, or make a new plan."
            ) from err

    @classmethod
    def load(cls, path: str | os.PathLike[str], volume: Volume | None = None) -> Plan:
        """Read a plan; with ``volume``, also check that it belongs to that CT.

        Raises
        ------
        SeldingerIOError
            If ``path`` does not exist or cannot be read.
        PlanVersionError
            For a v1 plan (the message says to run ``seldinger plan migrate``) or a newer one.
        PlanFileError
            If the file is not valid JSON, not a plan, or breaks the schema (field named).
        PlanCaseMismatchError
            If ``volume`` is given and is not the plan's CT.
        """
        from seldinger.errors import MissingFileError, SeldingerIOError

        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError as err:
            raise MissingFileError(
                f"no plan at {source}; make one with `seldinger plan trajectory CT --anatomy "
                f"DIR --lesion MASK --out {source}`."
            ) from err
        except UnicodeDecodeError as err:
            raise PlanFileError(
                f"{source} is not UTF-8 text (byte {err.start}); it is damaged or not a "
                "Seldinger plan. Restore it or make a new plan."
            ) from err
        except OSError as err:
            raise SeldingerIOError(
                f"cannot read the plan {source}: {err.strerror or err}."
            ) from err
        plan = cls.from_json(text, str(source))
        if volume is not None:
            plan.check_case(volume)
        return plan


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows (a NaN or infinity was written)")


def _walk_points(
    value: Any, path: str, low: np.ndarray[Any, Any], high: np.ndarray[Any, Any], found: list[str]
) -> None:
    """Collect ``*_lps_mm`` points of a dumped model that lie outside [low, high]."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).endswith("_lps_mm") and item is not None:
                points = np.asarray(item, dtype=np.float64).reshape(-1, 3)
                for n, point in enumerate(points):
                    if np.any(point < low) or np.any(point > high):
                        index = f"[{n}]" if points.shape[0] > 1 or np.ndim(item) > 1 else ""
                        found.append(f"{where}{index} = {np.round(point, 2).tolist()}")
            else:
                _walk_points(item, where, low, high, found)
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            _walk_points(item, f"{path}[{n}]", low, high, found)


def describe_validation_error(err: ValidationError) -> str:
    """One line naming each broken field (``trajectories.paths[0].entry_lps_mm: …``)."""
    problems = []
    for error in err.errors():
        location = ""
        for part in error["loc"]:
            location += (
                f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
            )
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field" + _unit_hint(str(error["loc"][-1]))
        problems.append(f"{location or '(document)'}: {message}")
    shown = "; ".join(problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    return shown + (f" (and {more} more problem(s))" if more > 0 else "")


#: Unit suffixes a hand-edited key might carry instead of the schema's.
_UNIT_SUFFIXES = (
    "_mm",
    "_cm",
    "_m",
    "_in",
    "_ml",
    "_l",
    "_cc",
    "_gy",
    "_cgy",
    "_u",
    "_mci",
    "_deg",
    "_rad",
    "_s",
    "_ms",
    "_percent",
    "_fraction",
)


def _unit_hint(key: str) -> str:
    """`` (units are in the names: did you mean 'x_mm'?)`` for a key with another unit."""
    for suffix in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            stem = key[: -len(suffix)]
            return (
                f" (units are part of the names; {key!r} is not a field: a length is stored in "
                f"mm as {stem + '_mm'!r}, a dose in Gy, a strength in U, an angle in degrees)"
            )
    return ""
