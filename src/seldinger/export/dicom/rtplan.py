"""DICOM RT Plan of a permanent interstitial seed implant (I-125 LDR brachytherapy).

Modules (PS3.3 A.20 RT Plan IOD): Patient, General Study (the CT's), RT Series, Frame of
Reference (the CT's: seed positions are LPS mm in it), General Equipment, RT General Plan
(C.8.8.9), RT Prescription (C.8.8.10: the prescription dose), RT Fraction Scheme
(C.8.8.13: one fraction, one brachy application setup), RT Brachy Application Setups
(C.8.8.15), SOP Common.

Brachy model (C.8.8.15): BrachyTreatmentTechnique ``INTERSTITIAL`` and BrachyTreatmentType
``LDR`` (the Defined Terms are MANUAL, HDR, MDR, LDR, PDR: "permanent" is said by the
``FIXED`` sources and the full-decay times below); ApplicationSetupType ``INTERSTITIAL``
(none of the Defined Terms, which name gynaecological and other applicators, describes a
percutaneous needle implant; dciodvfy warns about it); one Source (the seed model: isotope, half-life, strength); one Application
Setup; **one Channel per needle**, its seeds ``FIXED`` (SourceMovementType), each seed two
Control Points at its position (ControlPoint3DPosition, LPS mm) whose Cumulative Time
Weight rises by 1, as example (b) of C.8.8.15.7 does for manually placed sources.

Strength and time (C.8.8.15): ReferenceAirKermaRate is the air kerma rate in air at 1 m
(µGy h⁻¹) at the Source Strength Reference Date/Time. Air-kerma strength S_K is
K̇(d)·d² (AAPM TG-43U1, Rivard et al. 2004, Med Phys 31:633, §II.A), in U = µGy m² h⁻¹;
at d = 1 m, K̇(1 m) [µGy h⁻¹] = S_K [µGy m² h⁻¹] / (1 m)²: the two numbers are equal, so
ReferenceAirKermaRate = strength_u. DICOM gives each Control Point a share of
ChannelTotalTime in proportion to its weight; a permanent seed irradiates until it has
decayed, and the dose of full decay is the initial dose rate times the mean life
τ = T½ / ln 2 (TG-43U1 eq. 12). So each seed gets τ: ChannelTotalTime = n_seeds · τ
(seconds), TotalReferenceAirKerma = N · S_K · τ (µGy at 1 m). I-125 T½ = 59.40 d
(TG-43U1 Table I; :data:`seldinger.physics.tg43.I125_HALF_LIFE_DAYS`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import RTPlanStorage, RTStructureSetStorage, generate_uid

from seldinger.export.dicom.common import (
    dicom_date_time,
    ds_text,
    ds_texts,
    frame_of_reference,
    new_instance,
    save_dataset,
)
from seldinger.export.dicom.errors import DicomExportError
from seldinger.export.dicom.source import SourceSeries
from seldinger.physics.tg43.dose import I125_HALF_LIFE_DAYS

__all__ = ["I125_ISOTOPE_NAME", "BrachyPlanSeeds", "read_brachy_plan", "write_brachy_plan"]

logger = logging.getLogger(__name__)

#: SourceIsotopeName of I-125 (PS3.3 C.8.8.15, the form RT systems use).
I125_ISOTOPE_NAME = "I-125"
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True, eq=False)
class BrachyPlanSeeds:
    """The seeds of a brachy RT Plan as read back.

    Attributes
    ----------
    needles_lps_mm : list of ndarray, shape (n, 3)
        Seed positions of each channel (needle), in Control Point order.
    strength_u : float
        ReferenceAirKermaRate of the source (= air-kerma strength in U).
    isotope : str
        SourceIsotopeName.
    half_life_days : float
        SourceIsotopeHalfLife.
    seed_model : str
        SourceModelID (empty if absent).
    prescription_dose_gy : float or None
        TargetPrescriptionDose of the first dose reference.
    """

    needles_lps_mm: list[npt.NDArray[np.float64]]
    strength_u: float
    isotope: str
    half_life_days: float
    seed_model: str
    prescription_dose_gy: float | None


def _checked_needles(needles_lps_mm: Sequence[npt.ArrayLike]) -> list[npt.NDArray[np.float64]]:
    if len(needles_lps_mm) == 0:
        raise DicomExportError(
            "needles_lps_mm is empty; an implant plan needs at least one needle with a seed."
        )
    out = []
    for n, needle in enumerate(needles_lps_mm):
        seeds = np.asarray(needle, dtype=np.float64)
        if seeds.ndim != 2 or seeds.shape[1] != 3 or len(seeds) == 0:
            raise DicomExportError(
                f"needles_lps_mm[{n}] must be an (n, 3) array of seed positions (LPS mm) with "
                f"n >= 1; got shape {seeds.shape}."
            )
        if not np.isfinite(seeds).all():
            raise DicomExportError(
                f"needles_lps_mm[{n}] holds NaN or infinite positions; give every seed's "
                "LPS position in mm."
            )
        out.append(seeds)
    return out


def _structure_set_reference(structure_set: str | os.PathLike[str] | Dataset) -> Dataset:
    header = (
        structure_set
        if isinstance(structure_set, Dataset)
        else pydicom.dcmread(structure_set, stop_before_pixels=True)
    )
    if header.get("SOPClassUID") != RTStructureSetStorage:
        raise DicomExportError(
            f"structure_set must be an RT Structure Set; got SOP Class "
            f"{header.get('SOPClassUID')!r}. Pass the file write_rtstruct wrote."
        )
    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return item


def write_brachy_plan(
    needles_lps_mm: Sequence[npt.ArrayLike],
    series: SourceSeries,
    path: str | os.PathLike[str],
    *,
    strength_u: float,
    prescription_dose_gy: float,
    seed_model: str,
    seed_manufacturer: str = "",
    half_life_days: float = I125_HALF_LIFE_DAYS,
    strength_date: datetime | None = None,
    structure_set: str | os.PathLike[str] | Dataset | None = None,
    plan_label: str = "Seed implant",
    series_description: str = "Seed plan (Seldinger)",
    series_number: int = 302,
    moment: datetime | None = None,
    force: bool = False,
) -> Path:
    """Write a permanent I-125 seed implant as a DICOM RT Plan (brachy), atomically.

    Parameters
    ----------
    needles_lps_mm : sequence of array_like, shape (n, 3)
        Seed positions (LPS mm, the CT's Frame of Reference) of each needle, deepest
        first; each needle becomes one Channel.
    series : SourceSeries
        The CT the plan was made on (patient, study, Frame of Reference).
    path : str or PathLike
        Output file.
    strength_u : float
        Air-kerma strength of every seed, U (µGy m² h⁻¹) = ReferenceAirKermaRate.
    prescription_dose_gy : float
        Prescribed (minimum peripheral) dose, Gy: TargetPrescriptionDose.
    seed_model : str
        Source model, e.g. ``"6711"`` (SourceModelID).
    seed_manufacturer : str
        SourceManufacturer.
    half_life_days : float
        Isotope half-life, days (default I-125, 59.40 d).
    strength_date : datetime, optional
        When the seeds had ``strength_u`` (default: ``moment``).
    structure_set : path or Dataset, optional
        The RT Structure Set of the plan: RTPlanGeometry PATIENT and a reference to it;
        without it the geometry is TREATMENT_DEVICE (PS3.3 C.8.8.9).
    plan_label : str
        RTPlanLabel (at most 16 characters).
    series_description, series_number : str, int
        Of the new RTPLAN series.
    moment : datetime, optional
        Plan and content date/time (default: now).
    force : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DicomExportError
        No needle, a needle without seeds or with non-finite positions, a strength,
        dose or half-life that is not positive and finite, or a structure set that is not
        an RTSTRUCT (nothing is written).
    """
    needles = _checked_needles(needles_lps_mm)
    for name, value in (
        ("strength_u", strength_u),
        ("prescription_dose_gy", prescription_dose_gy),
        ("half_life_days", half_life_days),
    ):
        if not (math.isfinite(value) and value > 0):
            raise DicomExportError(f"{name} must be a positive finite number; got {value!r}.")
    when = datetime.now() if moment is None else moment
    date, time = dicom_date_time(when)
    strength_date_, strength_time = dicom_date_time(strength_date or when)
    mean_life_s = half_life_days * _SECONDS_PER_DAY / math.log(2.0)
    n_seeds = sum(len(n) for n in needles)

    ds = new_instance(
        series.reference,
        RTPlanStorage,
        "RTPLAN",
        series_description,
        series_number,
        when,
        content_date_time=False,
    )
    frame_of_reference(ds, series)
    # RT General Plan (C.8.8.9)
    ds.RTPlanLabel = plan_label[:16]
    ds.RTPlanName = plan_label[:64]
    ds.RTPlanDate = date
    ds.RTPlanTime = time
    ds.PlanIntent = "CURATIVE"
    if structure_set is not None:
        ds.RTPlanGeometry = "PATIENT"
        ds.ReferencedStructureSetSequence = [_structure_set_reference(structure_set)]
    else:
        ds.RTPlanGeometry = "TREATMENT_DEVICE"
    # RT Prescription (C.8.8.10)
    dose_reference = Dataset()
    dose_reference.DoseReferenceNumber = 1
    dose_reference.DoseReferenceUID = generate_uid()
    dose_reference.DoseReferenceStructureType = "SITE"
    dose_reference.DoseReferenceDescription = "Minimum peripheral dose"
    dose_reference.DoseReferenceType = "TARGET"
    dose_reference.TargetPrescriptionDose = ds_text(prescription_dose_gy)
    ds.DoseReferenceSequence = [dose_reference]
    # RT Fraction Scheme (C.8.8.13)
    setup_ref = Dataset()
    setup_ref.ReferencedBrachyApplicationSetupNumber = 1
    fraction = Dataset()
    fraction.FractionGroupNumber = 1
    fraction.NumberOfFractionsPlanned = 1
    fraction.NumberOfBeams = 0
    fraction.NumberOfBrachyApplicationSetups = 1
    fraction.ReferencedBrachyApplicationSetupSequence = [setup_ref]
    ds.FractionGroupSequence = [fraction]
    # RT Brachy Application Setups (C.8.8.15)
    ds.BrachyTreatmentTechnique = "INTERSTITIAL"
    ds.BrachyTreatmentType = "LDR"
    machine = Dataset()
    machine.TreatmentMachineName = "SEED IMPLANT"  # SH: at most 16 characters
    ds.TreatmentMachineSequence = [machine]
    source = Dataset()
    source.SourceNumber = 1
    source.SourceType = "CYLINDER"
    source.SourceManufacturer = seed_manufacturer[:64]
    source.SourceModelID = seed_model[:16]
    source.SourceIsotopeName = I125_ISOTOPE_NAME
    source.SourceIsotopeHalfLife = ds_text(half_life_days)
    source.ReferenceAirKermaRate = ds_text(strength_u)  # µGy/h at 1 m = U (module docstring)
    # SourceStrengthUnits and SourceStrength are 1C, "required if the source is not a
    # gamma-emitting (photon) source; may be present otherwise" (PS3.3 C.8.8.15): I-125 is a
    # gamma emitter, so ReferenceAirKermaRate carries the strength. dicom3tools (2022-06-18)
    # instead requires them when ReferenceAirKermaRate "is zero" and forbids them otherwise,
    # reading the DS as an integer (0.6 counts as zero, 1.016 does not; checked by hand). Both
    # rules hold when they are written exactly for strengths below 1 U.
    if int(float(ds_text(strength_u))) == 0:
        source.SourceStrengthUnits = "AIR_KERMA_RATE"
        source.SourceStrength = ds_text(strength_u)
    source.SourceStrengthReferenceDate = strength_date_
    source.SourceStrengthReferenceTime = strength_time
    ds.SourceSequence = [source]
    channels = []
    for number, seeds in enumerate(needles, start=1):
        channel = Dataset()
        channel.ChannelNumber = number
        channel.ChannelTotalTime = ds_text(len(seeds) * mean_life_s)
        channel.SourceMovementType = "FIXED"
        channel.ReferencedSourceNumber = 1
        channel.NumberOfControlPoints = 2 * len(seeds)
        channel.ChannelLength = None
        channel.TransferTubeNumber = None  # Type 2: seeds need no transfer tube
        channel.FinalCumulativeTimeWeight = ds_text(len(seeds))
        points: list[Dataset] = []
        depth_mm = np.linalg.norm(seeds - seeds[0], axis=1)  # from the deepest seed
        for s, (position, relative_mm) in enumerate(zip(seeds, depth_mm, strict=True)):
            for weight in (s, s + 1):
                point = Dataset()
                point.ControlPointIndex = len(points)
                point.CumulativeTimeWeight = ds_text(weight)
                point.ControlPointRelativePosition = ds_text(relative_mm)
                point.ControlPoint3DPosition = ds_texts(position)
                points.append(point)
        channel.BrachyControlPointSequence = points
        channels.append(channel)
    setup = Dataset()
    setup.ApplicationSetupType = "INTERSTITIAL"
    setup.ApplicationSetupNumber = 1
    setup.ApplicationSetupName = plan_label[:64]
    # µGy at 1 m: N seeds × S_K (µGy/h at 1 m) × τ (h)
    setup.TotalReferenceAirKerma = ds_text(n_seeds * strength_u * mean_life_s / 3600.0)
    setup.ChannelSequence = channels
    ds.ApplicationSetupSequence = [setup]
    target = save_dataset(ds, path, force=force)
    logger.info("wrote RT Plan with %d seeds in %d needles to %s", n_seeds, len(needles), target)
    return target


def read_brachy_plan(path: str | os.PathLike[str]) -> BrachyPlanSeeds:
    """The seeds of a brachy RT Plan: one position per seed (every second Control Point).

    Raises
    ------
    DicomExportError
        If the file is not a brachy RT Plan with one source.
    """
    ds = pydicom.dcmread(path)
    if ds.get("SOPClassUID") != RTPlanStorage or "ApplicationSetupSequence" not in ds:
        raise DicomExportError(f"{path} is not a brachytherapy RT Plan.")
    source = ds.SourceSequence[0]
    needles = []
    for setup in ds.ApplicationSetupSequence:
        for channel in setup.ChannelSequence:
            points = np.array(
                [
                    [float(v) for v in p.ControlPoint3DPosition]
                    for p in channel.BrachyControlPointSequence
                ]
            )
            needles.append(points[::2].copy())
    prescription = None
    if "DoseReferenceSequence" in ds and "TargetPrescriptionDose" in ds.DoseReferenceSequence[0]:
        prescription = float(ds.DoseReferenceSequence[0].TargetPrescriptionDose)
    return BrachyPlanSeeds(
        needles_lps_mm=needles,
        strength_u=float(source.ReferenceAirKermaRate),
        isotope=str(source.SourceIsotopeName),
        half_life_days=float(source.SourceIsotopeHalfLife),
        seed_model=str(source.get("SourceModelID", "")),
        prescription_dose_gy=prescription,
    )
