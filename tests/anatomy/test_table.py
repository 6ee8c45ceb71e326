"""Patient position from DICOM PatientPosition and from the CT table, on both real CTs."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.anatomy.body import segment_body
from seldinger.anatomy.table import detect_table, position_from_dicom
from seldinger.errors import BadInputError
from seldinger.imaging import Volume, reorient
from shared_paths import ABDOMEN, LIDC, requires_shared


@pytest.mark.parametrize(
    ("code", "position"),
    [
        ("HFS", "supine"),
        ("FFS", "supine"),
        ("HFP", "prone"),
        ("FFP", "prone"),
        ("HFDL", "decubitus-left"),
        ("FFDR", "decubitus-right"),
        (" hfs ", "supine"),
        (None, None),
        ("", None),
    ],
)
def test_dicom_patient_position(code: str | None, position: str | None) -> None:
    assert position_from_dicom(code) == position


def test_an_unknown_patient_position_names_the_fix() -> None:
    with pytest.raises(BadInputError, match="--position"):
        position_from_dicom("SITTING")


def _case(case) -> tuple[Volume, Volume, str]:  # type: ignore[no-untyped-def]
    from seldinger.io import read_ct

    ct = read_ct(case / "dicom")
    volume = reorient(ct.volume, "LPS")
    return volume, volume.with_array(segment_body(volume)), ct.meta.patient_position


def _turned(volume: Volume, array_op) -> Volume:  # type: ignore[no-untyped-def]
    return volume.with_array(np.ascontiguousarray(array_op(np.asarray(volume.array))))


@requires_shared
@pytest.mark.parametrize("case", [LIDC, ABDOMEN], ids=["lidc", "abdomen"])
def test_the_table_gives_the_position(case) -> None:  # type: ignore[no-untyped-def]
    ct, body, dicom = _case(case)
    assert position_from_dicom(dicom) == "supine"  # both were scanned supine
    assert detect_table(ct, body).position == "supine"
    # The same patient turned over (prone) and on the side: the table moves with the turn.
    flip = lambda a: a[::-1, ::-1]  # noqa: E731 - 180 degrees about the body axis
    assert detect_table(_turned(ct, flip), _turned(body, flip)).side == "anterior"
    turn = lambda a: np.rot90(a, 1, axes=(0, 1))  # noqa: E731 - back to the patient's right
    assert detect_table(_turned(ct, turn), _turned(body, turn)).side == "right"
    turn_back = lambda a: np.rot90(a, -1, axes=(0, 1))  # noqa: E731
    assert detect_table(_turned(ct, turn_back), _turned(body, turn_back)).side == "left"
    # Without a table in the image (air outside the body) nothing is claimed. The abdomen's
    # arms lie outside its body mask: they must not pass for a table either.
    bare = ct.with_array(np.where(np.asarray(body.array), np.asarray(ct.array), -1000))
    assert detect_table(bare, body).side is None
