"""Patient position: from DICOM ``PatientPosition`` or from where the CT table lies.

A needle cannot enter from the side the patient lies on. DICOM says how the patient lay
(``PatientPosition``, C.7.3.1.1.2: HFS, FFP, HFDL …); a NIfTI file does not, but the table
itself is usually in the image: a long band of dense material (carbon fibre, foam,
cushions; above -500 HU) outside the body, along its whole length, on one side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import Volume, reorient, require_same_geometry

__all__ = [
    "POSITIONS",
    "TABLE_SIDE_OF_POSITION",
    "Position",
    "TableFinding",
    "TableSide",
    "detect_table",
    "position_from_dicom",
]

Position = Literal["supine", "prone", "decubitus-left", "decubitus-right"]
TableSide = Literal["posterior", "anterior", "left", "right"]

#: Positions a planner knows, in CLI order.
POSITIONS: tuple[Position, ...] = ("supine", "prone", "decubitus-left", "decubitus-right")
#: The side of the patient on the table for each position (decubitus-left: lying on the
#: left side).
TABLE_SIDE_OF_POSITION: dict[Position, TableSide] = {
    "supine": "posterior",
    "prone": "anterior",
    "decubitus-left": "left",
    "decubitus-right": "right",
}
_POSITION_OF_SIDE: dict[TableSide, Position] = {v: k for k, v in TABLE_SIDE_OF_POSITION.items()}
#: DICOM PatientPosition's last letters (after HF/FF) by position.
_DICOM_SUFFIX: dict[str, Position] = {
    "S": "supine",
    "P": "prone",
    "DL": "decubitus-left",
    "DR": "decubitus-right",
}
#: Material denser than this outside the body may be the table (carbon fibre and foam
#: tables, mattresses: -500 to +200 HU; air -1000).
_TABLE_MIN_HU = -500.0
#: The table is looked for this far beyond the body.
_SEARCH_MM = 80.0
#: A side is the table's when its dense band spans this share of the body's width there
#: (median over slices; the table is wider than the patient, an arm is not).
_MIN_SPAN_SHARE = 0.5
#: ... and spans this much more than on any other side.
_MIN_LEAD = 0.1


def position_from_dicom(value: str | None) -> Position | None:
    """The position a DICOM ``PatientPosition`` (HFS, FFP, HFDL …) names; None if absent.

    Raises
    ------
    BadInputError
        If the value is not one DICOM defines for a CT.
    """
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if code[:2] in ("HF", "FF") and code[2:] in _DICOM_SUFFIX:
        return _DICOM_SUFFIX[code[2:]]
    raise BadInputError(
        f"PatientPosition {value!r} is none of HFS, FFS, HFP, FFP, HFDL, FFDL, HFDR, FFDR; "
        "give the position with --position supine|prone|decubitus-left|decubitus-right."
    )


@dataclass(frozen=True)
class TableFinding:
    """Where the table was found.

    Attributes
    ----------
    side : TableSide or None
        The patient's side on the table; None when the image shows no table clearly.
    position : Position or None
        The position that side implies.
    share : float
        How much of the body's width the band on that side spans (median over slices).
    voxels : int
        Dense voxels found outside the body within the search distance.
    """

    side: TableSide | None
    position: Position | None
    share: float
    voxels: int


def detect_table(ct: Volume, body: Volume) -> TableFinding:
    """Find the CT table: dense material outside the body, along the body, on one side.

    Parameters
    ----------
    ct : Volume
        The CT (HU).
    body : Volume
        Its body mask (same grid).
    """
    require_same_geometry(ct, body)
    ct_lps = reorient(ct, "LPS")
    inside = np.asarray(reorient(body, "LPS").array, dtype=bool)
    if not inside.any():
        return TableFinding(None, None, 0.0, 0)
    spacing = np.asarray(ct_lps.spacing_mm)
    hu = np.asarray(ct_lps.array)
    reach = np.ceil(_SEARCH_MM / spacing).astype(int)
    spans: dict[TableSide, list[float]] = {s: [] for s in TABLE_SIDE_OF_POSITION.values()}
    total = 0
    for k in np.flatnonzero(inside.any(axis=(0, 1))):
        body_k = inside[:, :, k]
        dense = (hu[:, :, k] > _TABLE_MIN_HU) & ~body_k
        b_i = np.flatnonzero(body_k.any(axis=1))
        b_j = np.flatnonzero(body_k.any(axis=0))
        # One slab beyond the body in this slice on each side (LPS: +i left, +j posterior);
        # the share of the body's width (depth, for a lateral side) the dense band there
        # spans: a table is wider than the patient lying on it, an arm beside the body is not.
        slabs = {
            "posterior": dense[:, b_j[-1] + 1 : b_j[-1] + 1 + reach[1]].any(axis=1),
            "anterior": dense[:, max(b_j[0] - reach[1], 0) : b_j[0]].any(axis=1),
            "left": dense[b_i[-1] + 1 : b_i[-1] + 1 + reach[0], :].any(axis=0),
            "right": dense[max(b_i[0] - reach[0], 0) : b_i[0], :].any(axis=0),
        }
        for side, hits in slabs.items():
            width = b_i if side in ("posterior", "anterior") else b_j
            spans[side].append(_span(hits) / float(width[-1] - width[0] + 1))  # type: ignore[index]
        total += int(np.count_nonzero(dense))
    median = {side: float(np.median(v)) if v else 0.0 for side, v in spans.items()}
    ranked = sorted(median, key=lambda side: -median[side])
    side, runner_up = ranked[0], ranked[1]
    # The table's ends curve up beside the patient, next to the arms: a lateral band may
    # span much of the body's depth too, but less than the table spans its width.
    if median[side] < _MIN_SPAN_SHARE or median[side] - median[runner_up] < _MIN_LEAD:
        return TableFinding(None, None, median[side], total)
    return TableFinding(side, _POSITION_OF_SIDE[side], median[side], total)


def _span(hits: npt.NDArray[np.bool_]) -> float:
    """Length (voxels) from the first to the last hit."""
    where = np.flatnonzero(hits)
    return 0.0 if where.size == 0 else float(where[-1] - where[0] + 1)
