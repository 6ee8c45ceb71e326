"""Stent sizing from a catalogue: diameter oversized on the reference, length beyond the lesion.

Rules (the issue's, after the interventional-pulmonology practice summarised in [1]_, [2]_):

- airway: diameter :data:`AIRWAY_OVERSIZE_PERCENT` (10-20 %) above the reference (healthy)
  diameter of the airway at the lesion, so the stent anchors without eroding; length = the
  lesion plus :data:`AIRWAY_MARGIN_MM` (5-10 mm) at each end;
- oesophagus: length = the stricture plus :data:`OESOPHAGUS_MARGIN_MM` (20 mm) at each end;
  the body diameter the smallest the catalogue offers at or above the reference, 18 mm at
  least (the usual adult body);
- warnings: a stent covering a lobar orifice (its distal end beyond its bronchus's
  division), a tracheal stent within :data:`VOCAL_CORD_CLEARANCE_MM` of the upper end of
  the trachea or within :data:`CARINA_CLEARANCE_MM` of the carina (or across it: a Y stent
  is then offered).

The catalogue (``stents/data/stent_catalogue.json``) names its source and a confidence tag
per product.

References
----------
.. [1] Folch E, Keyes C. Airway stents. Ann Cardiothorac Surg 7(2):273-283, 2018
   (oversizing by 10-20 %, a margin beyond the lesion at both ends).
.. [2] Spaander MCW et al. Esophageal stenting for benign and malignant disease: ESGE
   Clinical Guideline. Endoscopy 48:939-948, 2016 (the stent 2 cm longer than the stricture
   at each end).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from seldinger.errors import BadInputError
from seldinger.stents.lumen import LumenSurvey, Stenosis

__all__ = [
    "AIRWAY_MARGIN_MM",
    "AIRWAY_OVERSIZE_PERCENT",
    "CatalogueStent",
    "StenosisSizing",
    "StentChoice",
    "load_catalogue",
    "size_stents",
]

#: Diameter oversize over the reference, % (low, high).
AIRWAY_OVERSIZE_PERCENT = (10.0, 20.0)
#: Length beyond the lesion at each end, mm (low, high).
AIRWAY_MARGIN_MM = (5.0, 10.0)
#: Oesophageal stent beyond the stricture at each end, mm.
OESOPHAGUS_MARGIN_MM = 20.0
#: Smallest oesophageal body diameter offered, mm.
OESOPHAGUS_MIN_BODY_MM = 18.0
#: A tracheal stent should end this far below the upper end of the trachea, mm (the vocal
#: cords lie about 2 cm above the cricoid; the CT may not show them).
VOCAL_CORD_CLEARANCE_MM = 20.0
#: A straight tracheal stent should end this far above the carina, mm.
CARINA_CLEARANCE_MM = 10.0
#: Nominal sizes are rounded: a size this far above the wanted range still counts, mm.
_SIZE_TOLERANCE_MM = 0.25
#: A tracheal lesion this close to the carina is also offered a Y stent, mm.
Y_STENT_CARINA_MM = 20.0


@dataclass(frozen=True)
class CatalogueStent:
    """One product line of the catalogue (sizes in mm)."""

    id: str
    name: str
    maker: str
    organ: str
    kind: str
    sites: tuple[str, ...]
    diameters_mm: tuple[float, ...]
    lengths_mm: tuple[float, ...]
    wall_mm: float
    source: str
    confidence: str
    flare_diameters_mm: tuple[float, ...] = ()
    bronchus_diameters_mm: tuple[float, ...] = ()
    bronchus_lengths_mm: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogueStent:
        """The entry as stored in the JSON catalogue."""

        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in data.get(key, ()))

        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            maker=str(data["maker"]),
            organ=str(data["organ"]),
            kind=str(data["kind"]),
            sites=tuple(str(s) for s in data["sites"]),
            diameters_mm=floats("diameters_mm"),
            lengths_mm=floats("lengths_mm"),
            wall_mm=float(data["wall_mm"]),
            source=str(data["source"]),
            confidence=str(data["confidence"]),
            flare_diameters_mm=floats("flare_diameters_mm"),
            bronchus_diameters_mm=floats("bronchus_diameters_mm"),
            bronchus_lengths_mm=floats("bronchus_lengths_mm"),
        )


@cache
def load_catalogue() -> tuple[CatalogueStent, ...]:
    """The packaged catalogue (``stents/data/stent_catalogue.json``).

    Examples
    --------
    >>> sorted({s.kind for s in load_catalogue()})[:3]
    ['oesophageal_sems', 'sems_covered', 'sems_uncovered']
    """
    text = resources.files("seldinger.stents").joinpath("data/stent_catalogue.json").read_text()
    return tuple(CatalogueStent.from_dict(entry) for entry in json.loads(text)["stents"])


@dataclass(frozen=True)
class StentChoice:
    """One catalogue stent sized for a lesion, with where it would sit."""

    stent_id: str
    name: str
    kind: str
    diameter_mm: float
    length_mm: float
    oversize_percent: float
    proximal_path_mm: float
    distal_path_mm: float
    confidence: str
    flare_diameter_mm: float | None = None
    bronchus_diameters_mm: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = {
            "stent_id": self.stent_id,
            "name": self.name,
            "kind": self.kind,
            "diameter_mm": self.diameter_mm,
            "length_mm": self.length_mm,
            "oversize_percent": round(self.oversize_percent, 1),
            "proximal_path_mm": round(self.proximal_path_mm, 1),
            "distal_path_mm": round(self.distal_path_mm, 1),
            "confidence": self.confidence,
            "warnings": list(self.warnings),
        }
        if self.flare_diameter_mm is not None:
            out["flare_diameter_mm"] = self.flare_diameter_mm
        if self.bronchus_diameters_mm is not None:
            out["bronchus_diameters_mm"] = list(self.bronchus_diameters_mm)
        return out


@dataclass(frozen=True)
class StenosisSizing:
    """The stents offered for one stenosis (best first) and what no product could meet."""

    stenosis: Stenosis
    wanted_diameter_mm: tuple[float, float]
    wanted_length_mm: tuple[float, float]
    choices: tuple[StentChoice, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "stenosis": self.stenosis.to_dict(),
            "wanted_diameter_mm": [round(v, 1) for v in self.wanted_diameter_mm],
            "wanted_length_mm": [round(v, 1) for v in self.wanted_length_mm],
            "choices": [c.to_dict() for c in self.choices],
            "notes": list(self.notes),
        }


def _pick(values: tuple[float, ...], low: float, high: float) -> tuple[float, bool]:
    """The smallest value in [low, high]; else the smallest above ``low`` (or the largest)."""
    arr = np.asarray(values, dtype=np.float64)
    inside = arr[(arr >= low - 1e-9) & (arr <= high + _SIZE_TOLERANCE_MM)]
    if len(inside):
        return float(inside.min()), True
    above = arr[arr >= low]
    return (float(above.min()) if len(above) else float(arr.max())), False


def _site(stenosis: Stenosis, survey: LumenSurvey) -> str:
    if stenosis.label == "trachea" and stenosis.distance_from_carina_mm is not None:
        return "carina" if stenosis.distance_from_carina_mm < Y_STENT_CARINA_MM else "trachea"
    return stenosis.label


def _fits(stent: CatalogueStent, site: str, organ: str) -> bool:
    if organ != "airway":
        return True
    if stent.kind == "silicone_y":
        return site == "carina"
    if site == "carina":
        return "trachea" in stent.sites
    return site in stent.sites


def _warnings(
    survey: LumenSurvey, stenosis: Stenosis, kind: str, proximal: float, distal: float
) -> list[str]:
    out: list[str] = []
    carina = survey.carina_path_mm
    if survey.organ != "airway":
        return out
    if stenosis.label == "trachea":
        if proximal < VOCAL_CORD_CLEARANCE_MM:
            out.append(
                f"the proximal end lies {proximal:.0f} mm below the upper end of the trachea "
                f"(< {VOCAL_CORD_CLEARANCE_MM:.0f} mm): too close to the vocal cords"
            )
        if carina is not None and kind != "silicone_y":
            if distal > carina:
                out.append("the stent crosses the carina: use a Y stent or a shorter stent")
            elif carina - distal < CARINA_CLEARANCE_MM:
                out.append(
                    f"the distal end lies {carina - distal:.0f} mm above the carina "
                    f"(< {CARINA_CLEARANCE_MM:.0f} mm)"
                )
    else:
        profile = survey.profile(stenosis.label)
        branch_end = profile.path_offset_mm + profile.centreline.length_mm
        if distal > branch_end:
            out.append(
                f"the distal end passes the end of the {stenosis.label.replace('_', ' ')} by "
                f"{distal - branch_end:.0f} mm: it covers a lobar orifice"
            )
        if carina is not None and proximal < carina:
            out.append("the proximal end reaches into the trachea across the carina")
    return out


def size_stents(
    survey: LumenSurvey,
    *,
    catalogue: tuple[CatalogueStent, ...] | None = None,
) -> list[StenosisSizing]:
    """Catalogue stents for every stenosis of a survey.

    Parameters
    ----------
    survey : LumenSurvey
        From :func:`~seldinger.stents.lumen.measure_airway` or
        :func:`~seldinger.stents.lumen.measure_tube` (``organ`` ``"oesophagus"``).
    catalogue : tuple of CatalogueStent, optional
        Default :func:`load_catalogue`.

    Returns
    -------
    list of StenosisSizing
        One per stenosis, in the survey's order.

    Raises
    ------
    BadInputError
        The catalogue holds nothing for the organ.
    """
    stents = load_catalogue() if catalogue is None else catalogue
    organ = "oesophagus" if survey.organ != "airway" else "airway"
    offered = [s for s in stents if s.organ == organ]
    if not offered:
        raise BadInputError(f"the stent catalogue has no {organ} stents; add some to size.")
    result = []
    for stenosis in survey.stenoses:
        result.append(_size_one(survey, stenosis, offered, organ))
    return result


def _size_one(
    survey: LumenSurvey, stenosis: Stenosis, offered: list[CatalogueStent], organ: str
) -> StenosisSizing:
    ref = stenosis.reference_diameter_mm
    lesion = stenosis.length_mm
    if organ == "airway":
        lo_pct, hi_pct = AIRWAY_OVERSIZE_PERCENT
        wanted_d = (ref * (1 + lo_pct / 100), ref * (1 + hi_pct / 100))
        wanted_l = (lesion + 2 * AIRWAY_MARGIN_MM[0], lesion + 2 * AIRWAY_MARGIN_MM[1])
    else:
        wanted_d = (max(ref, OESOPHAGUS_MIN_BODY_MM), max(ref, OESOPHAGUS_MIN_BODY_MM) + 5.0)
        wanted_l = (lesion + 2 * OESOPHAGUS_MARGIN_MM, lesion + 2 * OESOPHAGUS_MARGIN_MM + 30.0)
    site = _site(stenosis, survey)
    choices = []
    notes = []
    for stent in offered:
        is_y = stent.kind == "silicone_y"
        if not _fits(stent, site, organ):
            continue
        diameter, d_ok = _pick(stent.diameters_mm, *wanted_d)
        length, l_ok = _pick(stent.lengths_mm, *wanted_l)
        warnings = []
        if not d_ok:
            warnings.append(
                f"no {stent.name} diameter within {wanted_d[0]:.1f}-{wanted_d[1]:.1f} mm; "
                f"{diameter:g} mm is {100 * (diameter / ref - 1):+.0f} % of the reference"
            )
        if not l_ok:
            warnings.append(
                f"no {stent.name} length within {wanted_l[0]:.0f}-{wanted_l[1]:.0f} mm; "
                f"{length:g} mm chosen"
            )
        centre = 0.5 * (stenosis.start_path_mm + stenosis.end_path_mm)
        proximal, distal = centre - length / 2, centre + length / 2
        bronchi = None
        if is_y:
            proximal = (survey.carina_path_mm or stenosis.end_path_mm) - length
            distal = survey.carina_path_mm or stenosis.end_path_mm
            bronchi = _y_limbs(survey, stent)
        warnings += _warnings(survey, stenosis, stent.kind, proximal, distal)
        flare = None
        if stent.flare_diameters_mm:
            flare = stent.flare_diameters_mm[stent.diameters_mm.index(diameter)]
        choices.append(
            StentChoice(
                stent_id=stent.id,
                name=stent.name,
                kind=stent.kind,
                diameter_mm=diameter,
                length_mm=length,
                oversize_percent=100 * (diameter / ref - 1),
                proximal_path_mm=proximal,
                distal_path_mm=distal,
                confidence=stent.confidence,
                flare_diameter_mm=flare,
                bronchus_diameters_mm=bronchi,
                warnings=tuple(warnings),
            )
        )
    if not choices:
        notes.append(f"no catalogue stent is made for the {stenosis.label.replace('_', ' ')}")
    choices.sort(key=lambda c: (len(c.warnings), abs(c.oversize_percent - 15.0)))
    return StenosisSizing(stenosis, wanted_d, wanted_l, tuple(choices), tuple(notes))


def _y_limbs(survey: LumenSurvey, stent: CatalogueStent) -> tuple[float, float] | None:
    """(right, left) bronchial limb diameters for the main bronchi's median size + 10-20 %."""
    limbs = []
    for label in ("main_bronchus_right", "main_bronchus_left"):
        try:
            profile = survey.profile(label)
        except KeyError:
            return None
        ok = (profile.sections.status == "ok") & ~profile.junction
        if not ok.any():
            return None
        ref = float(np.median(profile.sections.equivalent_diameter_mm[ok]))
        lo, hi = AIRWAY_OVERSIZE_PERCENT
        limbs.append(
            _pick(stent.bronchus_diameters_mm, ref * (1 + lo / 100), ref * (1 + hi / 100))[0]
        )
    return limbs[0], limbs[1]
