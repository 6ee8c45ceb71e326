"""The ablative margin of a zone mask around a tumour mask, both read from files."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from seldinger.errors import BadInputError
from seldinger.imaging import GeometryError, Volume, reorient
from seldinger.io import read_volume
from seldinger.planning import MarginReport, assess_margin

__all__ = ["margin_of_files"]


def margin_of_files(
    tumour_path: str | os.PathLike[str], zone_path: str | os.PathLike[str]
) -> tuple[Volume, Volume, MarginReport]:
    """Read a tumour and a zone mask (same grid, any axis order) and measure the margin.

    Returns
    -------
    tumour, zone : Volume
        The bool masks on the tumour's grid.
    MarginReport

    Raises
    ------
    GeometryError
        If the zone lies on another grid (the message says how to resample it).
    BadInputError
        If the tumour mask is empty.
    """
    tumour = read_volume(Path(tumour_path))
    zone = read_volume(Path(zone_path))
    if not tumour.geometry.same_as(zone.geometry):
        with contextlib.suppress(GeometryError):  # an oblique grid is refused below
            zone = reorient(zone, tumour.orientation)  # the same grid in another axis order
    if not tumour.geometry.same_as(zone.geometry):
        raise GeometryError(
            f"the zone mask {zone_path} is not on the tumour mask's grid: zone "
            f"{zone.geometry!r}, tumour {tumour.geometry!r}. Write both masks on the CT they "
            "were drawn on (`seldinger plan ablation` writes ablation_zone.nii.gz on the CT's "
            "grid), or resample the zone onto the tumour's grid with nearest-neighbour "
            "interpolation (seldinger.imaging.resample(zone, tumour, interpolation='nearest'))."
        )
    tumour = tumour.with_array(tumour.array > 0)
    zone = zone.with_array(zone.array > 0)
    if not tumour.array.any():
        raise BadInputError(
            f"the tumour mask {tumour_path} is empty (no voxel > 0); pass the segmented "
            "tumour (e.g. from `seldinger lesion CT --seed-lps-mm X,Y,Z --out MASK`)."
        )
    return tumour, zone, assess_margin(tumour, zone)
