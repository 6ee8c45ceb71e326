"""Catalogue of ablation devices: applicators, settings and their published zones.

The shipped catalogue (``seldinger/data/files/ablation_devices.json``) holds each value
of ``/work/shared/reference/physics.md`` §2.5 and §3.3 with its citation; see
``docs/ablation_devices.md`` for the table and for how to add a device of your own.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from seldinger.errors import BadInputError, MissingFileError

__all__ = [
    "CATALOGUE_ENV_VAR",
    "CONFIDENCES",
    "PROVENANCES",
    "Catalogue",
    "Device",
    "Modality",
    "Setting",
    "UnknownDeviceError",
    "UnknownSettingError",
    "ZoneSpec",
    "load_catalogue",
]

logger = logging.getLogger(__name__)

#: Environment variable naming extra catalogue JSON files (``os.pathsep``-separated).
CATALOGUE_ENV_VAR = "SELDINGER_DEVICE_CATALOGUE"

#: Where a device's zone sizes come from.
PROVENANCES = ("manufacturer chart", "published ex vivo", "published in vivo", "phantom")

#: Confidence tags of ``physics.md``: S = source seen (single source, quoted as found),
#: U = unverified (from memory; check before relying on it).
CONFIDENCES = ("S", "U")

_SHIPPED_FILE = "ablation_devices.json"
_SCHEMA_VERSION = 1


class Modality(StrEnum):
    """Ablation modality; accepts its string value (``Modality("cryo")``)."""

    MICROWAVE = "microwave"
    RADIOFREQUENCY = "radiofrequency"
    CRYO = "cryo"
    IRE = "ire"


class UnknownDeviceError(BadInputError):
    """A device name that is not in the catalogue."""


class UnknownSettingError(BadInputError):
    """A setting name that the device does not have."""


def _positive(owner: str, name: str, value: float | None) -> None:
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{owner}.{name} must be a positive finite number (mm); got {value!r}.")


@dataclass(frozen=True)
class ZoneSpec:
    """Size and position of a predicted ablation zone, relative to its applicator.

    Parameters
    ----------
    length_mm : float
        Zone extent along the applicator axis (the long axis of a microwave zone).
    width_mm : float
        Extent across the axis (short-axis diameter). For a probe pair or cluster:
        the extent along the line of the probes.
    depth_mm : float or None
        Third extent, across the axis and perpendicular to the width. ``None``: equal
        to ``width_mm`` (an ellipsoid of revolution).
    centre_offset_mm : float
        Signed distance from the tip (of the cluster's axis) to the zone centre, along
        the applicator direction entry → tip. Negative: the centre lies behind the tip,
        towards the entry (Emprint 100 W 10 min: -11.6 mm).
    """

    length_mm: float
    width_mm: float
    depth_mm: float | None = None
    centre_offset_mm: float = 0.0

    def __post_init__(self) -> None:
        _positive("ZoneSpec", "length_mm", self.length_mm)
        _positive("ZoneSpec", "width_mm", self.width_mm)
        if self.depth_mm is not None:
            _positive("ZoneSpec", "depth_mm", self.depth_mm)
        if isinstance(self.centre_offset_mm, bool) or not math.isfinite(self.centre_offset_mm):
            raise BadInputError(
                f"ZoneSpec.centre_offset_mm must be a finite number (mm); "
                f"got {self.centre_offset_mm!r}."
            )

    @property
    def diameters_mm(self) -> tuple[float, float, float]:
        """(length, width, depth) in mm, with ``depth`` filled in from ``width``."""
        depth = self.width_mm if self.depth_mm is None else self.depth_mm
        return (self.length_mm, self.width_mm, depth)


@dataclass(frozen=True)
class Setting:
    """One way of running a device (power and time, probe count, voltage) and its zone.

    Parameters
    ----------
    name : str
        Setting name within its device, e.g. ``"100W-10min"``, ``"2probes-20mm"``.
    zone : ZoneSpec
        The published zone. For ``n_probes > 1`` it is the zone of the whole cluster.
    parameters : dict of str to float
        Delivery parameters with units in the keys (``power_w``, ``time_min``,
        ``voltage_v``, ``exposure_mm``, ``spacing_mm`` ...).
    n_probes : int
        Number of parallel probes placed together (cryo cluster, IRE pair).
    probe_spacing_mm : float or None
        Centre-to-centre distance of neighbouring probes; required when
        ``n_probes > 1`` (see :func:`~seldinger.physics.ablation.cluster_offsets_mm`).
    source : str
        Citation of this row when it differs from the device's.
    note : str
        Free text: conditions of the measurement, and how assumed values were chosen.
    assumed : tuple of str
        Names of the ``zone`` fields that are *not* published but assumed
        (e.g. ``("length_mm",)``); ``note`` says how. Empty: every value is sourced.
    provenance : str or None
        One of :data:`PROVENANCES` when this row's provenance differs from the
        device's (an in vivo row of a mostly ex vivo study); ``None``: the device's.
    """

    name: str
    zone: ZoneSpec
    parameters: dict[str, float] = field(default_factory=dict)
    n_probes: int = 1
    probe_spacing_mm: float | None = None
    source: str = ""
    note: str = ""
    assumed: tuple[str, ...] = ()
    provenance: str | None = None

    def __post_init__(self) -> None:
        if self.provenance is not None and self.provenance not in PROVENANCES:
            raise BadInputError(
                f"Setting.provenance must be None (the device's) or one of {list(PROVENANCES)}; "
                f"got {self.provenance!r}."
            )
        if not isinstance(self.name, str) or not self.name.strip():
            raise BadInputError(f"Setting.name must be a non-empty string; got {self.name!r}.")
        if isinstance(self.n_probes, bool) or not isinstance(self.n_probes, int):
            raise BadInputError(f"Setting.n_probes must be an integer; got {self.n_probes!r}.")
        if not 1 <= self.n_probes <= 6:
            raise BadInputError(
                f"Setting.n_probes must be 1 to 6 (parallel probes); got {self.n_probes}."
            )
        if self.n_probes > 1 or self.probe_spacing_mm is not None:
            _positive("Setting", "probe_spacing_mm", self.probe_spacing_mm)
        unknown = set(self.assumed) - {"length_mm", "width_mm", "depth_mm", "centre_offset_mm"}
        if unknown:
            raise BadInputError(
                f"Setting.assumed may name only ZoneSpec fields (length_mm, width_mm, "
                f"depth_mm, centre_offset_mm); got {sorted(unknown)}."
            )
        for key, value in self.parameters.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadInputError(f"Setting.parameters[{key!r}] must be a number; got {value!r}.")
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "assumed", tuple(self.assumed))


@dataclass(frozen=True)
class Device:
    """An ablation applicator (or probe type) with its settings and published zones.

    Parameters
    ----------
    name : str
        Catalogue key, e.g. ``"emprint"``, ``"nanoknife"`` (looked up case-insensitively).
    modality : Modality
    manufacturer : str
    provenance : str
        One of :data:`PROVENANCES`: where the zone sizes come from.
    confidence : str
        ``"S"`` (source seen) or ``"U"`` (unverified), as marked in physics.md.
    source : str
        Citation for the device's values.
    settings : mapping of str to Setting
        Keyed by setting name.
    applicator_gauge : str or None
        E.g. ``"17G"``, when known.
    usable_length_mm : float or None
        Insertable length of the applicator, when known.
    note : str
        Free text (what the source measured, caveats).
    """

    name: str
    modality: Modality
    manufacturer: str
    provenance: str
    confidence: str
    source: str
    settings: Mapping[str, Setting]
    applicator_gauge: str | None = None
    usable_length_mm: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise BadInputError(f"Device.name must be a non-empty string; got {self.name!r}.")
        try:
            object.__setattr__(self, "modality", Modality(self.modality))
        except ValueError as err:
            raise BadInputError(
                f"Device.modality must be one of {[m.value for m in Modality]}; "
                f"got {self.modality!r}."
            ) from err
        if self.provenance not in PROVENANCES:
            raise BadInputError(
                f"Device.provenance must be one of {list(PROVENANCES)}; got {self.provenance!r}."
            )
        if self.confidence not in CONFIDENCES:
            raise BadInputError(
                f"Device.confidence must be 'S' (source seen) or 'U' (unverified); "
                f"got {self.confidence!r}."
            )
        if not isinstance(self.source, str) or not self.source.strip():
            raise BadInputError(
                f"Device.source must cite where the values come from; got {self.source!r}."
            )
        if not self.settings:
            raise BadInputError(f"Device {self.name!r} needs at least one setting.")
        for key, setting in self.settings.items():
            if key != setting.name:
                raise BadInputError(
                    f"Device.settings key {key!r} differs from its Setting.name {setting.name!r}."
                )
        lowered = [key.lower() for key in self.settings]
        if len(set(lowered)) != len(lowered):
            raise BadInputError(
                f"Device {self.name!r} has setting names that differ only in case: "
                f"{list(self.settings)}."
            )

    def summary(self) -> dict[str, Any]:
        """JSON-ready: name, modality, manufacturer, settings, provenance, length, source."""
        return {
            "name": self.name,
            "modality": str(self.modality),
            "manufacturer": self.manufacturer,
            "settings": list(self.settings),
            "provenance": self.provenance,
            "confidence": self.confidence,
            "usable_length_mm": self.usable_length_mm,
            "source": self.source,
        }
        if self.usable_length_mm is not None:
            _positive("Device", "usable_length_mm", self.usable_length_mm)
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    @property
    def thermal(self) -> bool:
        """True for heat and cold (MW, RF, cryo); False for IRE (non-thermal)."""
        return self.modality is not Modality.IRE

    def setting(self, name: str) -> Setting:
        """The setting called ``name`` (case-insensitive).

        Raises
        ------
        UnknownSettingError
            Naming the settings this device has.
        """
        found = self.settings.get(name)
        if found is not None:
            return found
        for key, setting in self.settings.items():
            if key.lower() == str(name).lower():
                return setting
        close = difflib.get_close_matches(str(name), list(self.settings), 1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownSettingError(
            f"Device {self.name!r} has no setting {name!r}; its settings are "
            f"{list(self.settings)}.{guess}"
        )


@dataclass(frozen=True)
class Catalogue:
    """Devices by name; iterating yields the :class:`Device` objects.

    Examples
    --------
    >>> catalogue = load_catalogue()
    >>> catalogue.device("Emprint").setting("100W-10min").zone.width_mm
    36.0
    """

    devices: Mapping[str, Device]

    def __post_init__(self) -> None:
        lowered = [key.lower() for key in self.devices]
        if len(set(lowered)) != len(lowered):
            raise BadInputError(
                f"Catalogue device names must differ in more than case; got {list(self.devices)}."
            )
        object.__setattr__(self, "devices", MappingProxyType(dict(self.devices)))

    def device(self, name: str) -> Device:
        """The device called ``name`` (case-insensitive).

        Raises
        ------
        UnknownDeviceError
            Listing the catalogue's devices and how to add one.
        """
        found = self.devices.get(name)
        if found is not None:
            return found
        for key, device in self.devices.items():
            if key.lower() == str(name).lower():
                return device
        close = difflib.get_close_matches(str(name).lower(), [n.lower() for n in self.names()], 1)
        guess = (
            f"Did you mean {next(n for n in self.names() if n.lower() == close[0])!r}? "
            if close
            else ""
        )
        raise UnknownDeviceError(
            f"No ablation device {name!r} in the catalogue. {guess}Known devices are "
            f"{self.names()} (`seldinger plan devices` lists their settings). To add one, "
            f"write a JSON file in the catalogue schema (docs/ablation_devices.md) and name it "
            f"in the {CATALOGUE_ENV_VAR} environment variable (or pass it to "
            "load_catalogue(path) in Python)."
        )

    def names(self) -> list[str]:
        """Device names, in catalogue order."""
        return list(self.devices)

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices.values())

    def __len__(self) -> int:
        return len(self.devices)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in {k.lower() for k in self.devices}


# --- JSON ----------------------------------------------------------------------------

_DEVICE_KEYS = {
    "name",
    "modality",
    "manufacturer",
    "provenance",
    "confidence",
    "source",
    "settings",
    "applicator_gauge",
    "usable_length_mm",
    "note",
}
_DEVICE_REQUIRED = {"name", "modality", "manufacturer", "provenance", "confidence", "source"}
_SETTING_KEYS = {
    "name",
    "zone",
    "parameters",
    "n_probes",
    "probe_spacing_mm",
    "source",
    "note",
    "assumed",
    "provenance",
}
_ZONE_KEYS = {"length_mm", "width_mm", "depth_mm", "centre_offset_mm"}


class _SchemaError(BadInputError):
    """Internal: a schema rule broken at ``where`` (completed with the file name)."""


def _check_keys(obj: Any, allowed: set[str], required: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _SchemaError(f"{where}: expected a JSON object; got {type(obj).__name__}.")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _SchemaError(
            f"{where}: unknown field(s) {unknown}; allowed fields are {sorted(allowed)}."
        )
    missing = sorted(required - set(obj))
    if missing:
        raise _SchemaError(f"{where}: missing required field(s) {missing}.")
    return obj


def _number(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _SchemaError(f"{where}, field {key!r}: expected a number; got {value!r}.")
    return float(value)


def _string(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _SchemaError(f"{where}, field {key!r}: expected a string; got {value!r}.")
    return value


def _parse_setting(obj: Any, where: str) -> Setting:
    raw = _check_keys(obj, _SETTING_KEYS, {"name", "zone"}, where)
    name = _string(raw, "name", where)
    where = f"{where} {name!r}"
    zone_raw = _check_keys(raw["zone"], _ZONE_KEYS, {"length_mm", "width_mm"}, f"{where}, zone")
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _SchemaError(f"{where}, field 'parameters': expected an object of numbers.")
    assumed = raw.get("assumed", [])
    if not isinstance(assumed, list) or not all(isinstance(a, str) for a in assumed):
        raise _SchemaError(f"{where}, field 'assumed': expected a list of zone field names.")
    n_probes = raw.get("n_probes", 1)
    if isinstance(n_probes, bool) or not isinstance(n_probes, int):
        raise _SchemaError(f"{where}, field 'n_probes': expected an integer; got {n_probes!r}.")
    try:
        zone = ZoneSpec(
            length_mm=_number(zone_raw, "length_mm", f"{where}, zone"),
            width_mm=_number(zone_raw, "width_mm", f"{where}, zone"),
            depth_mm=_number(zone_raw, "depth_mm", f"{where}, zone", optional=True),
            centre_offset_mm=_number(zone_raw, "centre_offset_mm", f"{where}, zone", optional=True)
            or 0.0,
        )
        return Setting(
            name=name,
            zone=zone,
            parameters={str(k): v for k, v in parameters.items()},
            n_probes=n_probes,
            probe_spacing_mm=_number(raw, "probe_spacing_mm", where, optional=True),
            source=_string(raw, "source", where, optional=True) or "",
            note=_string(raw, "note", where, optional=True) or "",
            assumed=tuple(assumed),
            provenance=_string(raw, "provenance", where, optional=True),
        )
    except _SchemaError:
        raise
    except ValueError as err:
        raise _SchemaError(f"{where}: {err}") from err


def _parse_device(obj: Any, index: int) -> Device:
    where = f"device #{index}"
    if isinstance(obj, dict) and isinstance(obj.get("name"), str):
        where = f"device {obj['name']!r}"
    raw = _check_keys(obj, _DEVICE_KEYS, _DEVICE_REQUIRED | {"settings"}, where)
    settings_raw = raw["settings"]
    if not isinstance(settings_raw, list) or not settings_raw:
        raise _SchemaError(f"{where}, field 'settings': expected a non-empty list of settings.")
    settings: dict[str, Setting] = {}
    for number, item in enumerate(settings_raw):
        setting = _parse_setting(item, f"{where}, setting #{number}")
        if setting.name in settings:
            raise _SchemaError(f"{where}: setting {setting.name!r} appears twice.")
        settings[setting.name] = setting
    try:
        modality = _string(raw, "modality", where)
        if modality not in {m.value for m in Modality}:
            raise _SchemaError(
                f"{where}, field 'modality': expected one of {[m.value for m in Modality]}; "
                f"got {modality!r}."
            )
        return Device(
            name=_string(raw, "name", where),
            modality=Modality(modality),
            manufacturer=_string(raw, "manufacturer", where),
            provenance=_string(raw, "provenance", where),
            confidence=_string(raw, "confidence", where),
            source=_string(raw, "source", where),
            settings=settings,
            applicator_gauge=_string(raw, "applicator_gauge", where, optional=True),
            usable_length_mm=_number(raw, "usable_length_mm", where, optional=True),
            note=_string(raw, "note", where, optional=True) or "",
        )
    except _SchemaError:
        raise
    except ValueError as err:
        raise _SchemaError(f"{where}: {err}") from err


def _parse_document(text: str, label: str) -> list[Device]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInputError(
            f"Ablation device catalogue {label} is not valid JSON: {err}. Fix the file "
            "(docs/ablation_devices.md shows the schema)."
        ) from err
    try:
        raw = _check_keys(document, {"schema_version", "devices"}, {"devices"}, "top level")
        version = raw.get("schema_version", _SCHEMA_VERSION)
        if version != _SCHEMA_VERSION:
            raise _SchemaError(
                f"top level, field 'schema_version': this Seldinger reads version "
                f"{_SCHEMA_VERSION}; got {version!r}."
            )
        if not isinstance(raw["devices"], list):
            raise _SchemaError("top level, field 'devices': expected a list of devices.")
        devices = [_parse_device(item, n) for n, item in enumerate(raw["devices"])]
        names = [d.name.lower() for d in devices]
        for name in names:
            if names.count(name) > 1:
                raise _SchemaError(f"device {name!r} appears more than once.")
    except _SchemaError as err:
        raise BadInputError(
            f"Ablation device catalogue {label}: {err} See docs/ablation_devices.md for the schema."
        ) from err
    return devices


def _shipped_text() -> str:
    # seldinger.data's __init__ imports the I/O stack; read the file by path from the root.
    resource = resources.files("seldinger").joinpath("data", "files", _SHIPPED_FILE)
    return resource.read_text(encoding="utf-8")


def load_catalogue(*extra_paths: str | os.PathLike[str]) -> Catalogue:
    """The shipped device catalogue, extended or overridden by user JSON files.

    Files are read in this order: the shipped catalogue, then each path listed in the
    environment variable ``SELDINGER_DEVICE_CATALOGUE`` (separated by ``os.pathsep``,
    ``:`` on Linux and macOS, ``;`` on Windows), then ``extra_paths``. A device whose
    name (case-insensitive) is already loaded **replaces** the earlier entry as a
    whole (all its settings); a new name is added. The schema is described in
    ``docs/ablation_devices.md``.

    Parameters
    ----------
    *extra_paths : str or os.PathLike
        User catalogue files in the same JSON schema.

    Returns
    -------
    Catalogue

    Raises
    ------
    FileNotFoundError
        If a listed file does not exist.
    ValueError
        If a file is not valid JSON or breaks the schema; the message names the file,
        the device, the setting and the field.
    """
    devices: dict[str, Device] = {}
    env_paths = [p for p in os.environ.get(CATALOGUE_ENV_VAR, "").split(os.pathsep) if p]
    sources: list[tuple[str, str]] = [(f"(shipped: {_SHIPPED_FILE})", _shipped_text())]
    for origin, paths in (
        (f"listed in {CATALOGUE_ENV_VAR}", env_paths),
        ("passed to load_catalogue", list(extra_paths)),
    ):
        for entry in paths:
            path = Path(entry)
            if not path.is_file():
                raise MissingFileError(
                    f"Ablation device catalogue {str(path)!r} ({origin}) does not exist or is "
                    "not a file; correct the path or remove it."
                )
            sources.append((str(path), path.read_text(encoding="utf-8")))
    for label, text in sources:
        for device in _parse_document(text, label):
            for key in [k for k in devices if k.lower() == device.name.lower()]:
                logger.info("Device %r from %s replaces the earlier entry.", device.name, label)
                del devices[key]
            devices[device.name] = device
    return Catalogue(devices)
