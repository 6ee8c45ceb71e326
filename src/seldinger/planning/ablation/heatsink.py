"""Heat-sink risk: large vessels running close to a thermal ablation zone.

Blood flow carries heat away from (or, for cryo, into) tissue next to a vessel, leaving
viable tumour along it (Lu et al., Radiology 2002;225:81: vessels >= 3 mm within 10 mm
of the zone; Huang, Dodd et al., Acad Radiol 2012: the RF short axis shrinks 4.4 mm per
+10 mL/min/100 g of flow). A zone is flagged when a vessel at least
:data:`HEAT_SINK_CALIBRE_MM` wide comes within :data:`HEAT_SINK_DISTANCE_MM` of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.vessels import tube_radius_mm
from seldinger.imaging import Volume, require_same_geometry
from seldinger.plan import HeatSinkRecord

__all__ = ["HEAT_SINK_CALIBRE_MM", "HEAT_SINK_DISTANCE_MM", "HeatSink", "heat_sinks"]

#: Vessels at least this wide (diameter) cool a thermal zone measurably.
HEAT_SINK_CALIBRE_MM = 3.0
#: ... when they run within this distance of it.
HEAT_SINK_DISTANCE_MM = 10.0


@dataclass(frozen=True)
class HeatSink:
    """One vessel close to the zone."""

    vessel: str
    distance_mm: float  # closest distance between the zone and the vessel (0: through it)
    diameter_mm: float  # widest calibre of the vessel within reach of the zone
    closest_lps_mm: tuple[float, float, float]  # the vessel point closest to the zone

    def to_record(self) -> HeatSinkRecord:
        """The plan's record (mm to 0.01)."""
        return HeatSinkRecord(
            vessel=self.vessel,
            distance_mm=round(self.distance_mm, 2),
            diameter_mm=round(self.diameter_mm, 2),
            closest_lps_mm=(
                round(self.closest_lps_mm[0], 2),
                round(self.closest_lps_mm[1], 2),
                round(self.closest_lps_mm[2], 2),
            ),
        )


def heat_sinks(
    zone: Volume,
    vessels: Mapping[str, Volume],
    radius_mm: Mapping[str, Volume] | None = None,
    calibre_mm: float = HEAT_SINK_CALIBRE_MM,
    distance_mm: float = HEAT_SINK_DISTANCE_MM,
) -> list[HeatSink]:
    """Vessels at least ``calibre_mm`` wide within ``distance_mm`` of the zone mask.

    Parameters
    ----------
    zone : Volume
        The ablation zone (bool), on the CT grid.
    vessels : mapping of str to Volume
        Vessel masks on the same grid (pulmonary vessels, a portal vein label …).
    radius_mm : mapping of str to Volume, optional
        Radius per vessel voxel for some of them (the anatomy's vessel radius map); the
        others are measured here (:func:`seldinger.anatomy.vessels.tube_radius_mm`).
    calibre_mm, distance_mm : float
        The rule's calibre and distance.

    Returns
    -------
    list of HeatSink, closest first (empty when no vessel qualifies).
    """
    if not np.asarray(zone.array).any():
        return []
    zone_arr = np.asarray(zone.array, dtype=bool)
    spacing = zone.spacing_mm
    reach = [int(np.ceil((distance_mm + calibre_mm) / s)) + 1 for s in spacing]
    nz = np.nonzero(zone_arr)
    box = tuple(
        slice(max(int(idx.min()) - r, 0), min(int(idx.max()) + r + 1, n))
        for idx, r, n in zip(nz, reach, zone_arr.shape, strict=True)
    )
    to_zone = ndi.distance_transform_edt(~zone_arr[box], sampling=spacing)
    out = []
    for name, vessel in vessels.items():
        require_same_geometry(zone, vessel)
        mask = np.asarray(vessel.array[box], dtype=bool)
        if not mask.any():
            continue
        if radius_mm is not None and name in radius_mm:
            require_same_geometry(zone, radius_mm[name])
            radius = np.asarray(radius_mm[name].array[box], dtype=np.float64)
        else:
            radius = _radius(np.asarray(vessel.array, dtype=bool), box, spacing)
        near = mask & (to_zone <= distance_mm) & (2.0 * radius >= calibre_mm)
        if not near.any():
            continue
        where = np.argwhere(near)
        d = to_zone[near]
        k = int(np.argmin(d))
        ijk = where[k] + np.array([s.start for s in box])
        out.append(
            HeatSink(
                vessel=name,
                distance_mm=float(d[k]),
                diameter_mm=float(2.0 * radius[near].max()),
                closest_lps_mm=tuple(float(v) for v in zone.index_to_lps(ijk)),  # type: ignore[arg-type]
            )
        )
    return sorted(out, key=lambda h: h.distance_mm)


def _radius(
    mask: npt.NDArray[np.bool_], box: tuple[slice, ...], spacing: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """Tube radius of the vessel voxels in ``box`` (measured with a margin around it)."""
    pad = [int(np.ceil(15.0 / s)) for s in spacing]
    big = tuple(
        slice(max(b.start - p, 0), min(b.stop + p, n))
        for b, p, n in zip(box, pad, mask.shape, strict=True)
    )
    radius = tube_radius_mm(mask[big], spacing)
    inner = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, big, strict=True))
    return np.asarray(radius[inner], dtype=np.float64)
