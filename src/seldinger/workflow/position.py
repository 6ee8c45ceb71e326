"""How the patient lay, hence which side of the body no needle enters from.

The planner refuses entries from the table side by default (round 1's top paths entered
from below the patient). The position comes, in this order, from ``--position``, from the
CT's DICOM ``PatientPosition``, from the table seen in the image
(:func:`seldinger.anatomy.table.detect_table`), and otherwise supine is assumed and said
so. A table seen on another side than the position says is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seldinger.anatomy.table import (
    TABLE_SIDE_OF_POSITION,
    Position,
    TableSide,
    detect_table,
    position_from_dicom,
)
from seldinger.imaging import Volume
from seldinger.io import Ct

__all__ = ["PatientSetup", "TableSideChoice", "resolve_position"]

#: What ``--table-side`` takes: a side, or ``none`` to refuse no side.
TableSideChoice = Literal["posterior", "anterior", "left", "right", "none"]


@dataclass(frozen=True)
class PatientSetup:
    """The position used, the side refused, where they came from, and what to tell."""

    position: Position | None
    table_side: TableSide | None
    source: str  # "--position", "DICOM PatientPosition", "CT table", "assumed", "--table-side"
    notes: tuple[str, ...] = ()


def resolve_position(
    ct: Ct,
    body: Volume,
    position: Position | None = None,
    table_side: TableSideChoice | None = None,
) -> PatientSetup:
    """The patient's position and the table side to refuse.

    Parameters
    ----------
    ct : Ct
        The CT (its DICOM ``PatientPosition``, and its voxels to find the table).
    body : Volume
        Its body mask.
    position : optional
        Given by the user (``--position``): wins over the file.
    table_side : optional
        Given by the user (``--table-side``): the side to refuse whatever the position, or
        ``"none"`` to refuse no side.
    """
    notes: list[str] = []
    found = detect_table(ct.volume, body)
    dicom = position_from_dicom(ct.meta.patient_position)
    if position is not None:
        source = "--position"
    elif dicom is not None:
        position, source = dicom, "DICOM PatientPosition"
    elif found.position is not None:
        position, source = found.position, "CT table"
        notes.append(
            f"patient position not recorded in {ct.meta.format}: the table lies "
            f"{found.side} of the body in the image, so {found.position} is used (pass "
            "--position to say otherwise)."
        )
    else:
        position, source = "supine", "assumed"
        notes.append(
            "patient position unknown (not in the file, no table seen in the image): supine "
            "assumed, entries from the back refused. Pass --position "
            "supine|prone|decubitus-left|decubitus-right."
        )
    side: TableSide | None = TABLE_SIDE_OF_POSITION[position]
    if found.side is not None and found.side != side and source != "CT table":
        notes.append(
            f"the position is {position} ({source}) but the table lies {found.side} of the "
            "body in the image: check the position (--position)."
        )
    if table_side is not None:
        side = None if table_side == "none" else table_side
        source = "--table-side"
    if side is None:
        notes.append("no table side refused (--table-side none): paths may enter from below.")
    return PatientSetup(position, side, source, tuple(notes))
