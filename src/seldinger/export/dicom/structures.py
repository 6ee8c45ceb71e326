"""Checked structure masks on the CT grid, with their codes (shared by SEG and RTSTRUCT)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.export.dicom.codes import StructureCode, structure_code
from seldinger.export.dicom.errors import DicomExportError
from seldinger.export.dicom.source import SourceSeries
from seldinger.imaging import Volume

__all__ = ["Box", "Structure", "bounding_box", "checked_structures"]


Box = tuple[slice, slice, slice]


@dataclass(frozen=True, eq=False)
class Structure:
    """One mask on the series grid, its unique label, its code and its bounding box."""

    name: str
    label: str
    code: StructureCode
    mask: npt.NDArray[np.bool_]  # (i, j, k) on the series grid
    box: Box  # index ranges (i, j, k) holding every voxel of the mask

    @property
    def start(self) -> tuple[int, int, int]:
        """Index (i, j, k) of the box's first voxel."""
        return (self.box[0].start, self.box[1].start, self.box[2].start)


def bounding_box(mask: npt.NDArray[np.bool_]) -> Box:
    """The smallest index box holding every set voxel (the mask is not empty).

    Two reductions of the whole array (along k, which is contiguous, then in-plane on
    the box) instead of three full ones.
    """
    ij = np.asarray(mask.any(axis=2))
    i = np.flatnonzero(ij.any(axis=1))
    j = np.flatnonzero(ij.any(axis=0))
    k = np.flatnonzero(mask[i[0] : i[-1] + 1, j[0] : j[-1] + 1].any(axis=(0, 1)))
    return (
        slice(int(i[0]), int(i[-1]) + 1),
        slice(int(j[0]), int(j[-1]) + 1),
        slice(int(k[0]), int(k[-1]) + 1),
    )


def checked_structures(
    masks: Mapping[str, Volume],
    series: SourceSeries,
    codes: Mapping[str, StructureCode] | None = None,
) -> list[Structure]:
    """Every mask checked (non-empty, on the series grid) before anything is written.

    Raises
    ------
    DicomExportError
        If ``masks`` is empty, a mask is empty or on another grid.
    """
    if not masks:
        raise DicomExportError(
            "masks is empty; give at least one structure as {name: boolean mask Volume}."
        )
    given = dict(codes or {})
    out: list[Structure] = []
    used: set[str] = set()
    for index, (name, volume) in enumerate(masks.items()):
        code = given.get(name) or structure_code(name, index)
        label = code.label if code.label.lower() not in used else name[:64]
        if label.lower() in used:
            raise DicomExportError(
                f"two structures would both be labelled {label!r}; give them distinct names."
            )
        used.add(label.lower())
        mask = series.mask_array(volume, name)
        out.append(Structure(name, label, code, mask, bounding_box(mask)))
    return out
