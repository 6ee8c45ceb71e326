"""Respiratory phases: two or more CTs of one patient, one frame of reference, one grid.

A 4-D CT (or an inspiration/expiration pair) is handed over as named phases. Before any
registration they are checked: at least two, distinct names, the same patient, the same
DICOM frame of reference, and the same field of view (voxel grid). Each broken rule
raises :class:`~seldinger.motion.errors.PhaseError` with one line naming the phase, the
rule, the values and the fix. Geometry follows ``docs/conventions.md`` (LPS, mm).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from seldinger.imaging import Volume
from seldinger.motion.errors import PhaseError

__all__ = ["Phase", "check_phases", "phases_from_cts"]

#: Largest difference between two phases' affines (mm) that still counts as one grid.
GRID_TOLERANCE_MM = 1e-3


@dataclass(frozen=True, eq=False)
class Phase:
    """One respiratory phase: a CT (HU, LPS mm) and what identifies its patient and frame.

    Parameters
    ----------
    name : str
        Phase name, e.g. ``"inspiration"``, ``"expiration"`` or ``"50%"``.
    volume : Volume
        The CT in HU.
    patient_id : str, optional
        DICOM PatientID (0010,0020); ``None`` when the format has none (NIfTI): not checked.
    frame_of_reference_uid : str, optional
        DICOM FrameOfReferenceUID (0020,0052); ``None`` when unknown: not checked.
    study_uid : str, optional
        StudyInstanceUID, kept for the record (phases may come from one study or several).
    """

    name: str
    volume: Volume
    patient_id: str | None = None
    frame_of_reference_uid: str | None = None
    study_uid: str | None = None


class _CtLike(Protocol):
    @property
    def volume(self) -> Volume: ...  # pragma: no cover - protocol

    @property
    def meta(self) -> object: ...  # pragma: no cover - protocol


def phases_from_cts(named_cts: Iterable[tuple[str, _CtLike]]) -> tuple[Phase, ...]:
    """Checked phases from ``(name, Ct)`` pairs as :func:`seldinger.io.read_ct` returns them.

    The patient and frame of reference are taken from each CT's ``meta`` where it has them
    (``patient_id``, ``frame_of_reference_uid``; DICOM only), the study from ``study_uid``.

    Raises
    ------
    PhaseError
        As :func:`check_phases`.
    """
    phases = []
    for name, ct in named_cts:
        meta = ct.meta
        phases.append(
            Phase(
                name=name,
                volume=ct.volume,
                patient_id=getattr(meta, "patient_id", None),
                frame_of_reference_uid=getattr(meta, "frame_of_reference_uid", None),
                study_uid=getattr(meta, "study_uid", None),
            )
        )
    return check_phases(phases)


def check_phases(phases: Sequence[Phase]) -> tuple[Phase, ...]:
    """Check that ``phases`` form one 4-D series; return them as a tuple.

    Rules, in this order: at least two phases; distinct names; one patient; one frame of
    reference; one voxel grid (shape and affine within :data:`GRID_TOLERANCE_MM`). A
    patient or frame that is unknown (``None``) in a phase is not compared.

    Raises
    ------
    PhaseError
        With ``rule`` set to the first rule broken.

    Examples
    --------
    >>> ct = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4))
    >>> [p.name for p in check_phases([Phase("in", ct), Phase("ex", ct)])]
    ['in', 'ex']
    >>> check_phases([Phase("in", ct)])
    Traceback (most recent call last):
    ...
    seldinger.motion.errors.PhaseError: phases: 4-D motion needs at least 2 respiratory phases; got 1 ('in'). Give the other phase as well (e.g. --phase expiration=CT).
    """
    phases = tuple(phases)
    if len(phases) < 2:
        names = ", ".join(repr(p.name) for p in phases) or "none"
        raise PhaseError(
            f"phases: 4-D motion needs at least 2 respiratory phases; got {len(phases)} "
            f"({names}). Give the other phase as well (e.g. --phase expiration=CT).",
            rule="count",
        )
    seen: set[str] = set()
    for phase in phases:
        if not phase.name or phase.name in seen:
            raise PhaseError(
                f"phase name {phase.name!r} is empty or given twice; each phase needs its own "
                "name (e.g. inspiration, expiration).",
                rule="name",
            )
        seen.add(phase.name)
    first = phases[0]
    _same_label(phases, "patient_id", "patient", "Give phases of one patient only.")
    _same_label(
        phases,
        "frame_of_reference_uid",
        "frame_of_reference",
        "Phases must come from one acquisition with the patient unmoved; register the scans "
        "rigidly first or pick series of the same 4-D CT.",
    )
    for phase in phases[1:]:
        if not phase.volume.geometry.same_as(first.volume.geometry, atol_mm=GRID_TOLERANCE_MM):
            raise PhaseError(
                f"phase {phase.name!r} has another field of view than phase {first.name!r}: "
                f"{_grid(phase.volume)} vs {_grid(first.volume)}. The phases must share one "
                "voxel grid; reconstruct them with the same field of view, or resample "
                f"{phase.name!r} onto {first.name!r}'s grid first.",
                rule="field_of_view",
            )
    return phases


_LABELS = {"patient_id": "PatientID", "frame_of_reference_uid": "FrameOfReferenceUID"}


def _same_label(phases: Sequence[Phase], attribute: str, rule: str, fix: str) -> None:
    known = [(p.name, getattr(p, attribute)) for p in phases if getattr(p, attribute)]
    for name, value in known[1:]:
        if value != known[0][1]:
            label = _LABELS[attribute]
            raise PhaseError(
                f"phase {name!r} has {label} {value!r} but phase {known[0][0]!r} has "
                f"{known[0][1]!r}: the phases are of different "
                f"{'patients' if rule == 'patient' else 'frames of reference'}. {fix}",
                rule=rule,
            )


def _grid(volume: Volume) -> str:
    spacing = ", ".join(f"{s:.4g}" for s in volume.spacing_mm)
    origin = ", ".join(f"{c:.1f}" for c in np.asarray(volume.origin_lps_mm))
    return f"shape {volume.shape}, spacing ({spacing}) mm, origin LPS ({origin}) mm"
