"""TG-43U1 seed data: dosimetry parameters of one interstitial seed model, and their loader.

The schema is that of ``seldinger/data/files/tg43_6711.json`` (the AAPM TG-43U1
consensus data of the Amersham/Oncura/GE OncoSeed 6711, I-125); ``docs/tg43.md``
describes each field. Any file of the same schema loads, whatever its table grids.

References
----------
.. [1] Rivard MJ et al. Update of AAPM Task Group No. 43 Report: A revised AAPM protocol
   for brachytherapy dose calculations. Med Phys 31:633-674 (2004).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, MissingFileError

__all__ = [
    "BUILTIN_SEEDS",
    "DEFAULT_CAPSULE_DIAMETER_CM",
    "DEFAULT_CAPSULE_LENGTH_PER_L",
    "U_PER_MCI",
    "SeedData",
    "load_seed_data",
    "mci_to_u",
    "u_to_mci",
]

logger = logging.getLogger(__name__)

#: Built-in seed models: name -> package data file under ``seldinger/data/files``.
BUILTIN_SEEDS = {"6711": "tg43_6711.json"}

#: Air-kerma strength per apparent activity of I-125, U/mCi (AAPM TG-43, Nath et al.
#: Med Phys 22:209 (1995) p. 218: "Sk --> 1.270 U/mCi"). TG-43U1 discourages apparent
#: activity; it is kept because prescriptions are still written in mCi.
U_PER_MCI = 1.270

#: When a file gives no capsule: its length is this multiple of the active length L
#: (0.45 cm for L = 0.3 cm, the 6711 capsule) ...
DEFAULT_CAPSULE_LENGTH_PER_L = 1.5
#: ... and its outer diameter this, cm (0.8 mm, the usual I-125 seed diameter).
DEFAULT_CAPSULE_DIAMETER_CM = 0.08


@dataclass(frozen=True, eq=False)
class SeedData:
    """TG-43U1 dosimetry parameters of one seed model (cm, degrees, U, cGy/h).

    Parameters
    ----------
    name : str
        Seed model, e.g. "Amersham/Oncura/GE OncoSeed model 6711 (I-125)".
    source : str
        Where the numbers come from (publication, data set).
    dose_rate_constant_cgy_per_h_per_u : float
        Λ, dose rate in water at (r0, θ0) per unit air-kerma strength, cGy h⁻¹ U⁻¹.
    length_cm : float
        Active length L of the line source used in the geometry function G_L, cm.
    r0_cm, theta0_deg : float
        Reference point (1 cm, 90° in TG-43U1).
    half_life_days : float
        Half-life of the radionuclide, days (59.40 d for I-125).
    radial_r_cm, radial_g : ndarray, shape (n_g,)
        Radial dose function g_L(r) of the line-source formalism; r strictly increasing.
    anisotropy_r_cm : ndarray, shape (n_r,)
        Radial grid of F(r, θ), cm, strictly increasing.
    anisotropy_theta_deg : ndarray, shape (n_θ,)
        Polar grid of F(r, θ), degrees, strictly increasing from 0 to 90 (the seed is
        taken as symmetric about its mid-plane: F(r, 180° − θ) = F(r, θ)) or to 180.
    anisotropy_f : ndarray, shape (n_θ, n_r)
        F(r, θ); rows follow θ, columns follow r.
    phi_an_r_cm, phi_an : ndarray, shape (n_φ,), or None
        1-D anisotropy function φ_an(r), when the data give it; otherwise the 1-D models
        integrate F over solid angle (:func:`seldinger.physics.tg43.phi_an_from_f`).
    capsule_length_cm, capsule_diameter_cm : float
        Outer size of the seed capsule (a cylinder about the seed centre along its axis);
        dose is not evaluated inside it (see :func:`seldinger.physics.tg43.dose_rate_cgy_per_h`).
    u_per_mci : float
        Air-kerma strength per apparent activity, U/mCi (1.270 for I-125).
    """

    name: str
    source: str
    dose_rate_constant_cgy_per_h_per_u: float
    length_cm: float
    r0_cm: float
    theta0_deg: float
    half_life_days: float
    radial_r_cm: npt.NDArray[np.float64]
    radial_g: npt.NDArray[np.float64]
    anisotropy_r_cm: npt.NDArray[np.float64]
    anisotropy_theta_deg: npt.NDArray[np.float64]
    anisotropy_f: npt.NDArray[np.float64]
    phi_an_r_cm: npt.NDArray[np.float64] | None = None
    phi_an: npt.NDArray[np.float64] | None = None
    capsule_length_cm: float = 0.45
    capsule_diameter_cm: float = DEFAULT_CAPSULE_DIAMETER_CM
    u_per_mci: float = U_PER_MCI

    @property
    def mean_life_h(self) -> float:
        """τ = T½ / ln 2, hours (2056.7 h for I-125)."""
        return self.half_life_days * 24.0 / math.log(2.0)

    @property
    def theta_symmetric(self) -> bool:
        """True when F is tabulated on 0-90° and mirrored about the mid-plane."""
        return bool(self.anisotropy_theta_deg[-1] == 90.0)

    def __repr__(self) -> str:
        return (
            f"SeedData({self.name!r}, Λ={self.dose_rate_constant_cgy_per_h_per_u} cGy/h/U, "
            f"L={self.length_cm} cm, g_L {len(self.radial_r_cm)} r, F {self.anisotropy_f.shape} "
            f"(θ x r), φ_an {'table' if self.phi_an is not None else 'from F'})"
        )


class _Reader:
    """Reads fields of one JSON document; every failure names the file and the field."""

    def __init__(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict):
            raise BadInputError(
                f"{where}: expected a JSON object at the top level; got {doc!r:.80}."
            )
        self.doc = doc
        self.where = where

    def fail(self, field: str, expected: str, got: Any) -> ValueError:
        return ValueError(
            f"{self.where}: field {field!r} must be {expected}; got {got!r:.200}. "
            "See docs/tg43.md for the seed data schema (seldinger/data/files/tg43_6711.json "
            "is an example)."
        )

    def get(self, field: str, default: Any = ...) -> Any:
        node: Any = self.doc
        for part in field.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise self.fail(field, "present", "nothing (missing)")
            node = node[part]
        return node

    def text(self, field: str, default: Any = ...) -> str:
        value = self.get(field, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "a non-empty string", value)
        return value

    def positive(self, field: str, default: Any = ..., upper: float = math.inf) -> float:
        value = self.get(field, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 < value <= upper
        ):
            bound = "" if upper == math.inf else f" and at most {upper:g}"
            raise self.fail(field, f"a finite number greater than 0{bound}", value)
        return float(value)

    def numbers(self, field: str, value: Any = ..., minimum: int = 2) -> npt.NDArray[np.float64]:
        raw = self.get(field) if value is ... else value
        ok = isinstance(raw, list) and len(raw) >= minimum
        ok = ok and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in raw
        )
        if not ok:
            raise self.fail(field, f"a list of at least {minimum} finite numbers", raw)
        return np.asarray(raw, dtype=np.float64)

    def grid(self, field: str, minimum: int = 2) -> npt.NDArray[np.float64]:
        values = self.numbers(field, minimum=minimum)
        if values[0] <= 0 or np.any(np.diff(values) <= 0):
            raise self.fail(field, "a strictly increasing list of positive radii in cm", values)
        return values


def _parse(doc: Any, where: str) -> SeedData:
    read = _Reader(doc, where)
    length_cm = read.positive("L_cm")
    radial_r = read.grid("gL.r_cm")
    radial_g = read.numbers("gL.value")
    if radial_g.shape != radial_r.shape or np.any(radial_g <= 0):
        raise read.fail(
            "gL.value", f"{len(radial_r)} positive numbers (one per gL.r_cm)", radial_g.tolist()
        )
    f_r = read.grid("F.r_cm", minimum=1)
    theta = read.numbers("F.theta_deg")
    if theta[0] != 0.0 or theta[-1] not in (90.0, 180.0) or np.any(np.diff(theta) <= 0):
        raise read.fail(
            "F.theta_deg",
            "a strictly increasing list of angles in degrees from 0 to 90 (symmetric seed) "
            "or from 0 to 180",
            theta.tolist(),
        )
    rows = read.get("F.table_rows_theta")
    if not isinstance(rows, list) or len(rows) != len(theta):
        raise read.fail(
            "F.table_rows_theta",
            f"a list of {len(theta)} rows (one per F.theta_deg) of {len(f_r)} numbers "
            "(one per F.r_cm)",
            rows,
        )
    table_rows = [
        read.numbers(f"F.table_rows_theta[{i}]", row, minimum=1) for i, row in enumerate(rows)
    ]
    if any(row.shape != f_r.shape for row in table_rows) or np.any(np.stack(table_rows) <= 0):
        raise read.fail(
            "F.table_rows_theta",
            f"{len(theta)} rows of {len(f_r)} positive numbers (rows follow F.theta_deg, "
            "columns F.r_cm)",
            rows,
        )
    phi_r = phi = None
    if read.get("phi_an", None) is not None:
        phi_r = read.grid("phi_an.r_cm", minimum=1)
        phi = read.numbers("phi_an.value", minimum=1)
        if phi.shape != phi_r.shape or np.any(phi <= 0):
            raise read.fail(
                "phi_an.value", f"{len(phi_r)} positive numbers (one per phi_an.r_cm)", phi.tolist()
            )
    return SeedData(
        name=read.text("seed"),
        source=read.text("source"),
        dose_rate_constant_cgy_per_h_per_u=read.positive("dose_rate_constant_cGy_per_h_per_U"),
        length_cm=length_cm,
        r0_cm=read.positive("r0_cm"),
        theta0_deg=read.positive("theta0_deg", upper=90.0),
        half_life_days=read.positive("half_life_days"),
        radial_r_cm=radial_r,
        radial_g=radial_g,
        anisotropy_r_cm=f_r,
        anisotropy_theta_deg=theta,
        anisotropy_f=np.stack(table_rows),
        phi_an_r_cm=phi_r,
        phi_an=phi,
        capsule_length_cm=read.positive(
            "capsule_length_cm", DEFAULT_CAPSULE_LENGTH_PER_L * length_cm
        ),
        capsule_diameter_cm=read.positive("capsule_diameter_cm", DEFAULT_CAPSULE_DIAMETER_CM),
        u_per_mci=read.positive("apparent_activity_conversion_U_per_mCi", U_PER_MCI),
    )


def load_seed_data(path_or_name: str | os.PathLike[str]) -> SeedData:
    """Read TG-43U1 seed data: a built-in model by name (``"6711"``) or a JSON file.

    Parameters
    ----------
    path_or_name : str or path
        A name in :data:`BUILTIN_SEEDS` or the path of a JSON file of the schema of
        ``seldinger/data/files/tg43_6711.json`` (documented in ``docs/tg43.md``).

    Returns
    -------
    SeedData

    Raises
    ------
    ValueError
        When the file is not JSON or a field is missing or malformed; the message names
        the file, the field and what is expected.
    FileNotFoundError
        When ``path_or_name`` is neither a built-in name nor an existing file.

    Examples
    --------
    >>> data = load_seed_data("6711")
    >>> data.dose_rate_constant_cgy_per_h_per_u, data.length_cm
    (0.965, 0.3)
    """
    name = os.fspath(path_or_name)
    if name in BUILTIN_SEEDS:
        resource = resources.files("seldinger").joinpath("data", "files", BUILTIN_SEEDS[name])
        where = f"built-in seed data {name!r} ({BUILTIN_SEEDS[name]})"
        text = resource.read_text(encoding="utf-8")
    else:
        path = Path(name)
        if not path.is_file():
            raise MissingFileError(
                f"seed data {name!r} is neither a built-in model ({', '.join(BUILTIN_SEEDS)}) "
                "nor an existing JSON file; pass one of those names or the path of a file of "
                "the schema in docs/tg43.md."
            )
        where = str(path)
        text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInputError(f"{where}: not valid JSON ({err}).") from err
    data = _parse(doc, where)
    logger.debug("loaded %r from %s", data, where)
    return data


def mci_to_u(activity_mci: npt.ArrayLike, u_per_mci: float = U_PER_MCI) -> Any:
    """Apparent activity (mCi) to air-kerma strength (U); 1 mCi = 1.270 U for I-125.

    Raises
    ------
    ValueError
        For a negative or non-finite activity.

    Examples
    --------
    >>> round(mci_to_u(0.5), 4)
    0.635
    """
    value = np.asarray(activity_mci, dtype=np.float64)
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise BadInputError(
            f"activity_mci must be finite and not negative (mCi); got {activity_mci!r}."
        )
    out = value * u_per_mci
    return float(out) if out.ndim == 0 else out


def u_to_mci(sk_u: npt.ArrayLike, u_per_mci: float = U_PER_MCI) -> Any:
    """Air-kerma strength (U) to apparent activity (mCi); the inverse of :func:`mci_to_u`.

    Examples
    --------
    >>> round(u_to_mci(1.27), 6)
    1.0
    """
    value = np.asarray(sk_u, dtype=np.float64)
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise BadInputError(f"sk_u must be finite and not negative (U); got {sk_u!r}.")
    out = value / u_per_mci
    return float(out) if out.ndim == 0 else out
