"""Tissue properties for the ablation physics, with their sources, and label maps of them.

The shipped table (``physics/data/tissues.json``) holds liver (physics.md §2.2, [S]), tumour,
lung, blood, fat, muscle and bone (IT'IS database ranges, [U]). A user file of the same shape
(``{"tissues": {name: {...}}}`` or just ``{name: {...}}``) overrides or adds tissues::

    tissues = load_tissues("my_tissues.json")
    tissues["liver"].perfusion_per_s
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, MissingFileError

__all__ = [
    "ARTERIAL_TEMPERATURE_C",
    "BLOOD_DENSITY_KG_PER_M3",
    "BLOOD_SPECIFIC_HEAT_J_PER_KG_K",
    "TISSUE_FIELDS",
    "PropertyMaps",
    "TissueProperties",
    "load_tissues",
    "property_maps",
]

#: Arterial blood temperature (°C), the T_a of Pennes' equation.
ARTERIAL_TEMPERATURE_C = 37.0
#: Blood density and specific heat of the COMSOL MWA model (physics.md §2.2, [S]).
BLOOD_DENSITY_KG_PER_M3 = 1000.0
BLOOD_SPECIFIC_HEAT_J_PER_KG_K = 3639.0

#: The fields every tissue of a ``--tissue-file`` must give.
TISSUE_FIELDS = (
    "thermal_conductivity_w_per_m_k",
    "density_kg_per_m3",
    "specific_heat_j_per_kg_k",
    "perfusion_per_s",
    "electrical_conductivity_s_per_m",
)


@dataclass(frozen=True)
class TissueProperties:
    """Thermal and electrical properties of one tissue at 37 °C (SI units, named).

    ``perfusion_per_s`` is the volumetric blood perfusion ω_b (m³ blood per m³ tissue per s);
    the Pennes sink is ω_b ρ_b c_b (T − T_a) with the blood constants of this module.
    """

    name: str
    thermal_conductivity_w_per_m_k: float
    density_kg_per_m3: float
    specific_heat_j_per_kg_k: float
    perfusion_per_s: float
    electrical_conductivity_s_per_m: float
    source: str = ""

    def __post_init__(self) -> None:
        for field in TISSUE_FIELDS:
            value = getattr(self, field)
            positive = field != "perfusion_per_s"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or (positive and value == 0)
            ):
                rule = "a positive" if positive else "a non-negative"
                raise BadInputError(
                    f"Tissue {self.name!r}: {field} must be {rule} finite number; got {value!r}. "
                    "Fix the tissue file."
                )

    @property
    def heat_capacity_j_per_m3_k(self) -> float:
        """Volumetric heat capacity ρc (J m⁻³ K⁻¹)."""
        return self.density_kg_per_m3 * self.specific_heat_j_per_kg_k

    @property
    def perfusion_w_per_m3_k(self) -> float:
        """Pennes sink coefficient ω_b ρ_b c_b (W m⁻³ K⁻¹)."""
        return self.perfusion_per_s * BLOOD_DENSITY_KG_PER_M3 * BLOOD_SPECIFIC_HEAT_J_PER_KG_K

    @property
    def perfusion_length_m(self) -> float:
        """L = √(k / (ω_b ρ_b c_b)) in metres (infinite without perfusion)."""
        sink = self.perfusion_w_per_m3_k
        return math.inf if sink == 0 else math.sqrt(self.thermal_conductivity_w_per_m_k / sink)

    def with_values(self, **values: float) -> TissueProperties:
        """A copy with some fields replaced (e.g. ``perfusion_per_s=0.0`` for ex vivo)."""
        data = {f: getattr(self, f) for f in TISSUE_FIELDS}
        data.update(values)
        return TissueProperties(name=self.name, source=self.source, **data)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the five fields and the source."""
        return {
            "name": self.name,
            **{f: getattr(self, f) for f in TISSUE_FIELDS},
            "source": self.source,
        }


def _parse(document: Any, label: str) -> dict[str, TissueProperties]:
    if isinstance(document, dict) and isinstance(document.get("tissues"), dict):
        document = document["tissues"]
    if not isinstance(document, dict) or not document:
        raise BadInputError(
            f"Tissue file {label}: expected a JSON object of tissues "
            '({"liver": {"thermal_conductivity_w_per_m_k": ...}, ...}); got '
            f"{type(document).__name__}."
        )
    tissues: dict[str, TissueProperties] = {}
    for name, raw in document.items():
        if not isinstance(raw, dict):
            raise BadInputError(f"Tissue file {label}: tissue {name!r} must be an object.")
        missing = [f for f in TISSUE_FIELDS if f not in raw]
        unknown = sorted(set(raw) - set(TISSUE_FIELDS) - {"source"})
        if missing or unknown:
            raise BadInputError(
                f"Tissue file {label}: tissue {name!r} "
                + (f"lacks {missing}" if missing else f"has unknown field(s) {unknown}")
                + f"; each tissue needs exactly {list(TISSUE_FIELDS)} (and may give 'source')."
            )
        values = {f: raw[f] for f in TISSUE_FIELDS}
        tissues[str(name).lower()] = TissueProperties(
            name=str(name).lower(), source=str(raw.get("source", label)), **values
        )
    return tissues


def load_tissues(path: str | os.PathLike[str] | None = None) -> dict[str, TissueProperties]:
    """The shipped tissue table, with the tissues of ``path`` (if given) replacing or adding.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist.
    BadInputError
        If the file is not JSON or a tissue lacks a field or has a bad value.

    Examples
    --------
    >>> round(load_tissues()["liver"].perfusion_length_m * 1000, 3)
    6.3
    """
    text = resources.files("seldinger.physics").joinpath("data", "tissues.json").read_text("utf-8")
    tissues = _parse(json.loads(text), "(shipped)")
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise MissingFileError(
                f"--tissue-file {str(file)!r} does not exist; give a JSON object of tissues."
            )
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise BadInputError(f"Tissue file {str(file)!r} is not valid JSON: {err}.") from err
        tissues.update(_parse(document, repr(str(file))))
    return tissues


@dataclass(frozen=True, eq=False)
class PropertyMaps:
    """Per-voxel property arrays (SI) for a label map; float64, shape (I, J, K)."""

    thermal_conductivity_w_per_m_k: npt.NDArray[np.float64]
    heat_capacity_j_per_m3_k: npt.NDArray[np.float64]
    perfusion_w_per_m3_k: npt.NDArray[np.float64]
    electrical_conductivity_s_per_m: npt.NDArray[np.float64]


def property_maps(
    labels: npt.NDArray[np.integer[Any]], tissues: Sequence[TissueProperties]
) -> PropertyMaps:
    """Look up each voxel's tissue: ``labels[i, j, k]`` indexes ``tissues``.

    Examples
    --------
    >>> t = load_tissues()
    >>> maps = property_maps(np.zeros((2, 2, 2), np.uint8), [t["liver"]])
    >>> float(maps.electrical_conductivity_s_per_m[0, 0, 0])
    0.12
    """
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(tissues)):
        raise BadInputError(
            f"labels must index the {len(tissues)} tissues given; got values "
            f"{int(labels.min())}..{int(labels.max())}."
        )

    def table(values: Mapping[int, float] | list[float]) -> npt.NDArray[np.float64]:
        return np.asarray(values, dtype=np.float64)[labels]

    return PropertyMaps(
        thermal_conductivity_w_per_m_k=table([t.thermal_conductivity_w_per_m_k for t in tissues]),
        heat_capacity_j_per_m3_k=table([t.heat_capacity_j_per_m3_k for t in tissues]),
        perfusion_w_per_m3_k=table([t.perfusion_w_per_m3_k for t in tissues]),
        electrical_conductivity_s_per_m=table([t.electrical_conductivity_s_per_m for t in tissues]),
    )
