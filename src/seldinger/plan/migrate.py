"""Upgrade plans written by earlier Seldinger versions to the current schema.

Schema v1 (round 1) stored trajectories, ablation, seeds and navigation as untyped
dictionaries and step settings in ``provenance.parameters``. :func:`migrate_document` maps
each onto its v2 section; values a v1 plan did not record (e.g. how many skin candidates
the trajectory search tried) become ``null``. Keys that v2 computes instead of storing
(``n_seeds``, ``total_u`` …) are dropped; nothing else is.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seldinger.errors import SeldingerIOError
from seldinger.files import atomic_path
from seldinger.plan.document import SCHEMA_VERSION, Plan, describe_validation_error
from seldinger.plan.errors import PlanFileError, PlanVersionError

__all__ = ["migrate_document", "migrate_file"]

#: Keys of v1 sections that v2 derives from other fields instead of storing.
_DERIVED_V1 = {
    "ablation": ("n_applicators",),
    "seeds": ("n_seeds", "n_needles", "total_u", "total_mci", "prescription_gy"),
    "needle": ("n_seeds",),
}
_RULE_KEYS = (
    "needle_length_mm",
    "vessel_calibre_mm",
    "vessel_distance_mm",
    "forbidden",
    "max_axial_angle_deg",
    "table_side",
    "ablation_probe_length_mm",
)


def migrate_document(document: dict[str, Any]) -> dict[str, Any]:
    """A v1 plan's JSON object as a v2 one (a v2 object is returned unchanged).

    Raises
    ------
    PlanVersionError
        If the object is of a version this code cannot upgrade.
    """
    version = str(document.get("schema_version"))
    if version == SCHEMA_VERSION:
        return document
    if version != "1":
        raise PlanVersionError(
            f"schema_version {document.get('schema_version')!r} cannot be migrated; this "
            f"Seldinger upgrades v1 plans to v{SCHEMA_VERSION}."
        )
    old = copy.deepcopy(document)
    provenance = old.get("provenance") or {}
    parameters = provenance.get("parameters") or {}
    created = provenance.get("created_utc")
    version_written = provenance.get("software_version", "0.1.0")
    steps = []
    loose = {k: v for k, v in parameters.items() if not isinstance(v, dict)}
    if loose:
        steps.append(_step("created", loose, created, version_written, provenance.get("command")))
    for name, values in parameters.items():
        if isinstance(values, dict):
            steps.append(_step(name, values, created, version_written, None))
    trajectory_rules = _rules(parameters.get("trajectory") or {})
    targets = old.get("targets") or []
    new: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "case": old.get("case"),
        "provenance": {
            "software_version": version_written,
            "created_utc": created,
            "command": provenance.get("command"),
            "steps": steps,
            "migrated_from": "1",
        },
        "structures": old.get("structures") or {},
        "targets": targets,
        "trajectories": _trajectories(old.get("trajectories") or [], trajectory_rules, targets),
        "ablation": _ablation(old.get("ablation"), trajectory_rules, parameters),
        "seeds": _seeds(old.get("seeds"), trajectory_rules, parameters),
        "navigation": _navigation(old.get("navigation")),
        "notes": old.get("notes") or [],
    }
    return new


def _step(
    name: str, values: dict[str, Any], time: Any, version: str, command: str | None
) -> dict[str, Any]:
    return {
        "step": name,
        "software_version": version,
        "time_utc": time,
        "command": command,
        "parameters": values,
    }


def _rules(values: dict[str, Any]) -> dict[str, Any]:
    rules = {key: values[key] for key in _RULE_KEYS if values.get(key) is not None}
    if "forbidden" in rules:
        rules["forbidden"] = list(rules["forbidden"])
    return rules


def _trajectories(
    paths: list[dict[str, Any]], rules: dict[str, Any], targets: list[dict[str, Any]]
) -> dict[str, Any] | None:
    if not paths:
        return None
    aim = paths[0].get("target_lps_mm")
    named = [t["name"] for t in targets if _close(t.get("centroid_lps_mm"), aim)]
    return {
        "target": named[0] if len(named) == 1 else None,
        "target_lps_mm": aim,
        "rules": rules,
        "n_candidates": None,
        "n_safe": None,
        "blocked_by": {},
        "paths": paths,
    }


def _close(a: Any, b: Any, tolerance_mm: float = 0.05) -> bool:
    try:
        return all(abs(float(x) - float(y)) <= tolerance_mm for x, y in zip(a, b, strict=True))
    except (TypeError, ValueError):
        return False


def _ablation(
    section: dict[str, Any] | None, trajectory_rules: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, Any] | None:
    if not section:
        return None
    out = {k: v for k, v in section.items() if k not in _DERIVED_V1["ablation"]}
    rules = dict(trajectory_rules)
    length = (parameters.get("ablation") or {}).get("needle_length_mm")
    if length is not None:
        rules["needle_length_mm"] = length
    out["rules"] = rules
    return out


def _seeds(
    section: dict[str, Any] | None, trajectory_rules: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, Any] | None:
    if not section:
        return None
    out = {k: v for k, v in section.items() if k not in _DERIVED_V1["seeds"]}
    out["needles"] = [
        {k: v for k, v in needle.items() if k not in _DERIVED_V1["needle"]}
        for needle in section.get("needles") or []
    ]
    metrics = dict(section.get("metrics") or {})
    organs = {k.removesuffix("_max_gy"): v for k, v in metrics.items() if k.endswith("_max_gy")}
    out["metrics"] = {k: v for k, v in metrics.items() if not k.endswith("_max_gy")}
    out["metrics"]["organ_max_gy"] = organs
    out["goals"] = {"prescription_gy": section.get("prescription_gy")}
    rules = dict(trajectory_rules)
    length = (parameters.get("seeds") or {}).get("needle_length_mm")
    if length is not None:
        rules["needle_length_mm"] = length
    out["rules"] = rules
    return out


def _navigation(section: dict[str, Any] | None) -> dict[str, Any] | None:
    if not section:
        return None
    registrations = []
    for entry in section.get("registrations") or []:
        record = dict(entry)
        record.pop("plan", None)
        if "target_mm" in record:  # v1: the target in the fixed frame, which is the CT's
            record["target_lps_mm"] = record.pop("target_mm")
        record["source"] = _source_text(record.get("source"))
        if isinstance(record.get("calibration"), dict):
            record["calibration"] = _calibration(record["calibration"])
        registrations.append(record)
    calibrations = [_calibration(dict(entry)) for entry in section.get("calibrations") or []]
    return {"registrations": registrations, "calibrations": calibrations}


def _calibration(record: dict[str, Any]) -> dict[str, Any]:
    record.pop("plan", None)
    record["source"] = _source_text(record.get("source"))
    return record


def _source_text(source: Any) -> str | None:
    """v1 stored a navigation record's source as a dict ({"fixed": …, "moving": …})."""
    if isinstance(source, dict):
        return "; ".join(f"{key} {value}" for key, value in source.items())
    return None if source is None else str(source)


def migrate_file(
    old_path: str | os.PathLike[str], new_path: str | os.PathLike[str], force: bool = False
) -> Plan:
    """Read a plan of an earlier schema, upgrade it and write it (validated) to ``new_path``.

    ``new_path`` may equal ``old_path`` with ``force``; the file is replaced atomically.

    Raises
    ------
    SeldingerIOError
        If ``old_path`` cannot be read.
    PlanFileError
        If it is not a plan, or the upgraded plan breaks the v2 schema (field named).
    OutputExistsError
        If ``new_path`` exists and ``force`` is False.
    """
    source = Path(old_path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise SeldingerIOError(f"cannot read the plan {source}: {err}.") from err
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanFileError(
            f"{source} is not valid JSON ({err.msg} at line {err.lineno}); it is damaged or "
            "not a Seldinger plan."
        ) from err
    if not isinstance(document, dict) or "schema_version" not in document:
        raise PlanFileError(f"{source} is not a Seldinger plan (no schema_version).")
    upgraded = migrate_document(document)
    try:
        plan = Plan.model_validate(upgraded)
    except ValidationError as err:
        raise PlanFileError(
            f"{source} could not be migrated: {describe_validation_error(err)}. Fix the field "
            "named in the v1 file, or make a new plan."
        ) from err
    text = plan.to_json()
    with atomic_path(Path(new_path), force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return plan
