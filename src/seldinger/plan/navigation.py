"""The navigation section: tool calibrations and tracker-to-CT registrations with their errors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from seldinger.plan.fields import Matrix4, NonNegativeFloat, PlanModel, Point3, rigid_error

__all__ = [
    "CalibrationRecord",
    "NavigationSection",
    "PivotCalibrationRecord",
    "RegistrationRecord",
    "SpinCalibrationRecord",
]


class PivotCalibrationRecord(PlanModel):
    """A pivot calibration: the tool tip in the tool's frame (mm) and its residuals."""

    method: Literal["pivot_algebraic_one_step"] = "pivot_algebraic_one_step"
    id: str | None = None
    name: str | None = None
    time_utc: AwareDatetime | None = None
    tool: str | None = None
    reference: str | None = None
    source: str | None = None
    tip_offset_mm: Point3
    pivot_point_mm: Point3
    rms_mm: NonNegativeFloat
    mean_mm: NonNegativeFloat
    max_mm: NonNegativeFloat
    n_poses: int = Field(ge=1)
    n_used: int = Field(ge=1)
    rejected: list[int] = Field(default_factory=list)
    threshold_mm: NonNegativeFloat
    spread_deg: NonNegativeFloat
    residuals_mm: list[NonNegativeFloat] = Field(default_factory=list)
    tool_tip_to_tool: Matrix4

    @model_validator(mode="after")
    def _rigid(self) -> PivotCalibrationRecord:
        _require_rigid(self.tool_tip_to_tool, 1.0, "tool_tip_to_tool")
        return self


class SpinCalibrationRecord(PlanModel):
    """A spin calibration: the needle's shaft axis in the tool's frame."""

    method: Literal["spin_igsio"] = "spin_igsio"
    id: str | None = None
    name: str | None = None
    time_utc: AwareDatetime | None = None
    tool: str | None = None
    reference: str | None = None
    source: str | None = None
    axis_tool: Point3
    error: NonNegativeFloat
    error_deg: NonNegativeFloat
    rotation_range_deg: NonNegativeFloat
    n_poses: int = Field(ge=2)
    tool_tip_to_tool: Matrix4 | None = None

    @model_validator(mode="after")
    def _rigid(self) -> SpinCalibrationRecord:
        if self.tool_tip_to_tool is not None:
            _require_rigid(self.tool_tip_to_tool, 1.0, "tool_tip_to_tool")
        return self


#: A calibration of either kind, told apart by ``method``.
CalibrationRecord = Annotated[
    PivotCalibrationRecord | SpinCalibrationRecord, Field(discriminator="method")
]


def _require_rigid(matrix: list[list[float]], scale: float, name: str) -> None:
    problem = rigid_error(matrix, scale)
    if problem is not None:
        raise ValueError(f"{name} must be a rigid transform: {problem}.")


class RegistrationRecord(PlanModel):
    """A paired-point registration of a tracker (or reference-sensor) frame to the CT.

    Parameters
    ----------
    id, name : str
        ``registration-N`` and a label.
    time_utc : datetime
    method : {"paired_point_rigid", "paired_point_similarity"}
    fixed_frame : "ct"
        The frame points are mapped into: the CT's LPS mm.
    moving_frame : {"tracker", "reference"}
        What the tracked points were measured in.
    moving_to_fixed : 4x4
        Maps moving points into CT LPS mm; rigid (``scale`` 1) or a similarity of ``scale``.
    n_fiducials : int
    fre_mm, residuals_mm, fle_mm, predicted_fre_mm, predicted_tre_mm : float
        Fitzpatrick's errors (RMS, mm); FLE estimated from FRE when ``fle_estimated``.
    target_lps_mm : point, optional
        The target the TRE was predicted at.
    calibration : PivotCalibrationRecord, optional
        The tool calibration used with this registration.
    """

    id: str = Field(min_length=1)
    name: str | None = None
    time_utc: AwareDatetime | None = None
    method: Literal["paired_point_rigid", "paired_point_similarity"] = "paired_point_rigid"
    fixed_frame: Literal["ct"] = "ct"
    moving_frame: Literal["tracker", "reference"] = "tracker"
    moving_to_fixed: Matrix4
    scale: float = Field(default=1.0, gt=0.0)
    n_fiducials: int = Field(ge=3)
    fre_mm: NonNegativeFloat
    residuals_mm: list[NonNegativeFloat] = Field(default_factory=list)
    fle_mm: NonNegativeFloat | None = None
    fle_estimated: bool = False
    predicted_fre_mm: NonNegativeFloat | None = None
    target_lps_mm: Point3 | None = None
    target_source: str | None = None
    predicted_tre_mm: NonNegativeFloat | None = None
    source: str | None = None
    calibration: PivotCalibrationRecord | None = None

    @model_validator(mode="after")
    def _rigid(self) -> RegistrationRecord:
        if self.method == "paired_point_rigid" and self.scale != 1.0:
            raise ValueError(
                f"a paired_point_rigid registration has scale 1; got {self.scale}. Use method "
                "paired_point_similarity for a scaled fit."
            )
        _require_rigid(self.moving_to_fixed, self.scale, "moving_to_fixed")
        if self.residuals_mm and len(self.residuals_mm) != self.n_fiducials:
            raise ValueError(
                f"residuals_mm holds {len(self.residuals_mm)} values for n_fiducials "
                f"{self.n_fiducials}."
            )
        return self


class NavigationSection(PlanModel):
    """Registrations and calibrations, in the order they were made (ids are unique)."""

    registrations: list[RegistrationRecord] = Field(default_factory=list)
    calibrations: list[CalibrationRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> NavigationSection:
        ids = [r.id for r in self.registrations] + [c.id for c in self.calibrations if c.id]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"ids must be unique; {repeated} appear more than once.")
        return self

    def registration(self, name_or_id: str | None = None) -> RegistrationRecord | None:
        """The registration of that name or id (default or ``"latest"``: the latest), or None."""
        for record in reversed(self.registrations):
            if name_or_id in (None, "latest") or name_or_id in (record.id, record.name):
                return record
        return None

    def calibration(
        self, name_or_id: str | None = None, tool: str | None = None
    ) -> PivotCalibrationRecord | SpinCalibrationRecord | None:
        """The calibration of that name or id, or the latest (of ``tool``, when given)."""
        for record in reversed(self.calibrations):
            if name_or_id in (None, "latest"):
                if tool is None or record.tool == tool:
                    return record
            elif name_or_id in (record.id, record.name):
                return record
        return None

    def next_id(self, kind: Literal["registration", "calibration"]) -> str:
        """``registration-N`` / ``calibration-N`` with N one more than the highest so far."""
        records = self.registrations if kind == "registration" else self.calibrations
        numbers = [
            int(tail)
            for record in records
            if record.id and (tail := record.id.rpartition("-")[2]).isdigit()
        ]
        return f"{kind}-{max(numbers, default=0) + 1}"

    def holds_name(self, kind: Literal["registration", "calibration"], name: str) -> bool:
        """Whether a record of that kind is named ``name``."""
        records = self.registrations if kind == "registration" else self.calibrations
        return any(record.name == name for record in records)

    def store_registration(self, record: RegistrationRecord) -> None:
        """Add a registration, replacing one of the same name."""
        kept = [r for r in self.registrations if record.name is None or r.name != record.name]
        self.registrations = [*kept, record]

    def store_calibration(self, record: PivotCalibrationRecord | SpinCalibrationRecord) -> None:
        """Add a calibration, replacing one of the same name."""
        kept = [c for c in self.calibrations if record.name is None or c.name != record.name]
        self.calibrations = [*kept, record]
