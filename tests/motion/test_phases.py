"""Phases of one 4-D series: count, names, patient, frame of reference, field of view."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.errors import BadInputError, ExitCode, exit_code_of
from seldinger.imaging import Volume
from seldinger.motion import Phase, PhaseError, check_phases, phases_from_cts


def _ct(shape: tuple[int, int, int] = (4, 4, 3), origin_z_mm: float = 0.0) -> Volume:
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[2, 3] = origin_z_mm
    return Volume(np.zeros(shape, np.int16), affine)


def test_two_phases_of_one_patient_and_frame_pass() -> None:
    phases = [
        Phase("inspiration", _ct(), "LIDC-IDRI-0001", "1.2.3"),
        Phase("expiration", _ct(), "LIDC-IDRI-0001", "1.2.3"),
    ]
    assert [p.name for p in check_phases(phases)] == ["inspiration", "expiration"]


def test_unknown_patient_or_frame_is_not_compared() -> None:
    phases = [Phase("in", _ct(), None, None), Phase("ex", _ct(), "P1", "1.2.3")]
    assert len(check_phases(phases)) == 2


def test_a_single_phase_is_refused() -> None:
    with pytest.raises(PhaseError, match=r"at least 2 respiratory phases; got 1 \('in'\)") as err:
        check_phases([Phase("in", _ct())])
    assert err.value.rule == "count"
    assert isinstance(err.value, BadInputError) and isinstance(err.value, ValueError)
    assert exit_code_of(err.value) is ExitCode.BAD_INPUT
    assert "\n" not in str(err.value)


def test_no_phase_is_refused() -> None:
    with pytest.raises(PhaseError, match="got 0 \\(none\\)"):
        check_phases([])


def test_phases_of_different_patients_are_refused() -> None:
    phases = [Phase("in", _ct(), "PAT-A"), Phase("ex", _ct(), "PAT-B")]
    with pytest.raises(PhaseError, match=r"PatientID 'PAT-B'.*'PAT-A'.*different patients") as err:
        check_phases(phases)
    assert err.value.details() == {"rule": "patient"}
    assert "\n" not in str(err.value)


def test_phases_of_different_frames_of_reference_are_refused() -> None:
    phases = [Phase("in", _ct(), "P", "1.2.3"), Phase("ex", _ct(), "P", "1.2.4")]
    with pytest.raises(
        PhaseError, match=r"FrameOfReferenceUID.*different frames of reference"
    ) as err:
        check_phases(phases)
    assert err.value.rule == "frame_of_reference"
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "other", [_ct(shape=(4, 4, 4)), _ct(origin_z_mm=-2.5)], ids=["shape", "origin"]
)
def test_a_phase_with_another_field_of_view_is_refused(other: Volume) -> None:
    with pytest.raises(
        PhaseError, match="phase 'ex' has another field of view than phase 'in'"
    ) as err:
        check_phases([Phase("in", _ct()), Phase("ex", other)])
    assert err.value.rule == "field_of_view"
    assert "\n" not in str(err.value)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(PhaseError, match="'in' is empty or given twice"):
        check_phases([Phase("in", _ct()), Phase("in", _ct())])


class _Meta:
    def __init__(self, patient_id: str | None, frame: str | None) -> None:
        self.patient_id = patient_id
        self.frame_of_reference_uid = frame
        self.study_uid = "1.9"


class _Ct:
    def __init__(self, volume: Volume, meta: _Meta) -> None:
        self.volume = volume
        self.meta = meta


def test_phases_from_cts_reads_patient_and_frame_from_meta() -> None:
    cts = [("in", _Ct(_ct(), _Meta("P", "1.2"))), ("ex", _Ct(_ct(), _Meta("Q", "1.2")))]
    with pytest.raises(PhaseError, match="different patients"):
        phases_from_cts(cts)


def test_phases_from_cts_accepts_the_readers_ct(lidc_ct) -> None:  # type: ignore[no-untyped-def]
    phases = phases_from_cts([("in", lidc_ct), ("ex", lidc_ct)])
    assert phases[1].volume is lidc_ct.volume
