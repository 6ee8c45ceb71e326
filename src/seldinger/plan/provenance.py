"""Who made a plan and each of its steps: software version, time, command, parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, Field, JsonValue, field_validator

import seldinger
from seldinger.plan.fields import PlanModel

__all__ = ["Provenance", "StepRecord"]


def _finite_json(value: Any, where: str = "parameters") -> Any:
    """Refuse NaN and infinity anywhere in a JSON value (JSON has no such numbers)."""
    if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        raise ValueError(f"{where} holds {value!r}; store only finite numbers (or null).")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _finite_json(item, f"{where}[{n}]")
    return value


class StepRecord(PlanModel):
    """One planning step that wrote into the plan.

    Parameters
    ----------
    step : str
        ``"trajectory"``, ``"ablation"``, ``"seeds"``, ``"navigation"``, ``"demo"`` …
    software_version : str
        ``seldinger.__version__`` of the writer.
    time_utc : datetime
        When the step ran (timezone-aware, ISO 8601 in the file).
    command : str or None
        The command line, when there was one.
    parameters : dict
        The settings as given (JSON values; units in the keys).
    """

    step: str = Field(min_length=1)
    software_version: str
    time_utc: AwareDatetime
    command: str | None = None
    parameters: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _finite(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        _finite_json(value)
        return value

    @classmethod
    def now(
        cls, step: str, parameters: dict[str, Any] | None = None, command: str | None = None
    ) -> StepRecord:
        """A record of ``step`` stamped with this software version and the UTC time."""
        return cls(
            step=step,
            software_version=seldinger.__version__,
            time_utc=datetime.now(UTC),
            command=command,
            parameters=dict(parameters or {}),
        )


class Provenance(PlanModel):
    """Who made a plan, when, and the steps that wrote into it since.

    Parameters
    ----------
    software_version : str
        ``seldinger.__version__`` of the writer that created the plan.
    created_utc : datetime
        Creation time, timezone-aware; stored as ISO 8601.
    command : str or None
        The command line that created the plan.
    steps : list of StepRecord
        Every step that wrote into the plan, oldest first (a repeated step appends).
    migrated_from : str or None
        Schema version the plan was migrated from (``seldinger plan migrate``).
    """

    software_version: str
    created_utc: AwareDatetime
    command: str | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    migrated_from: str | None = None

    def record(
        self, step: str, parameters: dict[str, Any] | None = None, command: str | None = None
    ) -> StepRecord:
        """Append a :class:`StepRecord` for ``step`` and return it."""
        entry = StepRecord.now(step, parameters, command)
        self.steps = [*self.steps, entry]
        return entry

    def last(self, step: str) -> StepRecord | None:
        """The most recent record of ``step``, or None."""
        return next((s for s in reversed(self.steps) if s.step == step), None)
