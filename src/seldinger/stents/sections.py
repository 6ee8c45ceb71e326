"""Cross-sections of a lumen normal to its centreline, measured on a sub-voxel isocontour.

At every station of a :class:`~seldinger.stents.centreline.Centreline` the image is
resampled (trilinear) on a square grid in the plane normal to the centreline, and the lumen
is the closed isocontour (marching squares, ``skimage.measure.find_contours``, linear
interpolation between samples) that encloses the station, or, when the station itself lies
in the wall, the nearest closed lumen contour. Its area (shoelace), equivalent diameter,
smallest and largest caliper (Feret) diameters, centroid and polar outline are returned.
Counting voxels instead would quantise the area by whole voxels (0.7 x 2.5 mm on a chest CT)
and miss the partial-volume edge; the isocontour places the edge between samples.

For a CT the lumen is air, darker than the wall: the edge is the half-way level
:data:`seldinger.anatomy.airways.LUMEN_EDGE_HU` (-500 HU). For a mask (an oesophagus drawn
as its outer wall, a lumen mask given by the user) the field is the mask as 0/1 and the
lumen is where the interpolated mask exceeds 0.5.

Frame and units follow ``docs/conventions.md``: LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from skimage.measure import find_contours, points_in_poly

from seldinger.imaging import Volume
from seldinger.stents.centreline import Centreline

__all__ = [
    "RAYS",
    "CrossSections",
    "Ownership",
    "measure_cross_sections",
    "polygon_measures",
    "sample_planes",
]

FloatArray = npt.NDArray[np.float64]

#: Samples per side of each cross-section image.
PIXELS = 129
#: Directions of the polar outline (``CrossSections.radius_mm``), evenly spaced from u.
RAYS = 64
#: Directions over which the smallest caliper diameter is searched (every 2 degrees).
_CALIPER_DIRECTIONS = 90


@dataclass(frozen=True, eq=False)
class CrossSections:
    """The lumen measured at every station of a centreline (NaN where not measurable).

    Parameters
    ----------
    area_mm2 : ndarray, shape (N,)
        Lumen area in the normal plane, mm² (0 where the lumen is occluded).
    min_diameter_mm, max_diameter_mm : ndarray, shape (N,)
        Smallest and largest caliper (Feret) diameters of the outline, mm.
    centroid_lps_mm : ndarray, shape (N, 3)
        Centroid of the outline, LPS mm (the station where occluded).
    radius_mm : ndarray, shape (N, RAYS)
        Distance from the centroid to the outline along each direction
        ``cos(a) u + sin(a) v``, ``a = 2 pi k / RAYS``, mm.
    occluded : ndarray of bool, shape (N,)
        No lumen in the plane near the station.
    status : ndarray of str, shape (N,)
        ``"ok"``, ``"occluded"``, ``"open"`` (the outline leaves the sampled square: the
        plane cuts into a neighbouring airway or the lumen flares at a junction),
        ``"foreign"`` (the station lies in a neighbouring tube's territory) or
        ``"outside"`` (the plane leaves the image).
    """

    area_mm2: FloatArray
    min_diameter_mm: FloatArray
    max_diameter_mm: FloatArray
    centroid_lps_mm: FloatArray
    radius_mm: FloatArray
    occluded: npt.NDArray[np.bool_]
    status: npt.NDArray[np.str_]

    @property
    def equivalent_diameter_mm(self) -> FloatArray:
        """Diameter of the circle with the lumen's area, mm."""
        return np.asarray(2.0 * np.sqrt(self.area_mm2 / np.pi), dtype=np.float64)


def polygon_measures(xy_mm: FloatArray) -> tuple[float, float, float, FloatArray]:
    """Area, smallest and largest caliper diameter and centroid of a closed polygon.

    Parameters
    ----------
    xy_mm : ndarray, shape (M, 2)
        Vertices in order (the last may repeat the first), mm.

    Returns
    -------
    area_mm2, min_diameter_mm, max_diameter_mm : float
    centroid_mm : ndarray, shape (2,)

    Examples
    --------
    >>> square = np.array([[0, 0], [4, 0], [4, 2], [0, 2]], dtype=float)
    >>> a, dmin, dmax, c = polygon_measures(square)
    >>> a, round(dmin, 6), round(dmax, 2), c.tolist()
    (8.0, 2.0, 4.47, [2.0, 1.0])
    """
    x, y = xy_mm[:, 0], xy_mm[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = 0.5 * float(cross.sum())
    if abs(area) < 1e-12:
        return 0.0, 0.0, 0.0, xy_mm.mean(axis=0)
    cx = float(((x + xn) * cross).sum()) / (6.0 * area)
    cy = float(((y + yn) * cross).sum()) / (6.0 * area)
    theta = np.linspace(0.0, np.pi, _CALIPER_DIRECTIONS, endpoint=False)
    projected = xy_mm @ np.stack([np.cos(theta), np.sin(theta)])
    widths = projected.max(axis=0) - projected.min(axis=0)
    # the largest caliper over 2-degree steps is within 0.02 % of the true maximum
    return abs(area), float(widths.min()), float(widths.max()), np.array([cx, cy])


def _polar_radius(xy_mm: FloatArray, centre: FloatArray) -> FloatArray:
    """Outline radius along :data:`RAYS` directions from ``centre`` (largest crossing)."""
    d = xy_mm - centre
    angle = np.arctan2(d[:, 1], d[:, 0])
    radius = np.hypot(d[:, 0], d[:, 1])
    order = np.argsort(angle)
    a, r = angle[order], radius[order]
    a = np.concatenate([a[-1:] - 2 * np.pi, a, a[:1] + 2 * np.pi])
    r = np.concatenate([r[-1:], r, r[:1]])
    wanted = np.linspace(0.0, 2 * np.pi, RAYS, endpoint=False)
    wanted = np.where(wanted > np.pi, wanted - 2 * np.pi, wanted)
    return np.asarray(np.interp(wanted, a, r), dtype=np.float64)


def sample_planes(
    image: Volume, centreline: Centreline, half_width_mm: float, pixels: int = PIXELS
) -> tuple[npt.NDArray[np.float32], FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """Trilinear samples of ``image`` on the normal plane at every station.

    Returns the images (N, pixels, pixels) indexed (along u, along v), the offsets (mm) of
    the samples along u (= along v), which samples fall outside the image grid (beyond its
    first or last voxel centre), and the samples' voxel indices (3, N, pixels, pixels).
    """
    offsets = np.linspace(-half_width_mm, half_width_mm, pixels)
    index_from_lps = np.linalg.inv(image.affine)
    centre = centreline.points_lps_mm @ index_from_lps[:3, :3].T + index_from_lps[:3, 3]
    du = centreline.u @ index_from_lps[:3, :3].T
    dv = centreline.v @ index_from_lps[:3, :3].T
    ijk = np.empty((3, len(centreline), pixels, pixels), dtype=np.float64)
    outside = np.zeros(ijk.shape[1:], dtype=bool)
    for d in range(3):
        ijk[d] = (
            centre[:, d, None, None]
            + offsets[None, :, None] * du[:, d, None, None]
            + offsets[None, None, :] * dv[:, d, None, None]
        )
        outside |= (ijk[d] < 0.0) | (ijk[d] > image.shape[d] - 1.0)
    values = ndi.map_coordinates(
        image.array,
        ijk.reshape(3, -1),
        order=1,
        mode="nearest",
        output=np.float32,
        prefilter=False,
    )
    return values.reshape(outside.shape), offsets, outside, ijk


#: Grid spacing of the ownership map, mm.
OWNERSHIP_GRID_MM = 1.5
#: Lumen samples farther than this from the lumen mask are wall (see Ownership), mm: the
#: -500 HU edge lies within a voxel of the segmented lumen; the grid adds its own step.
LUMEN_SLACK_MM = 2.5
_OWNERSHIP_MARGIN_MM = 30.0


@dataclass(frozen=True, eq=False)
class Ownership:
    """The lumen split between tubes by the nearest centreline (a Voronoi partition).

    Near a bifurcation the plane normal to one branch also cuts its neighbour; samples
    nearer another tube's centreline are read as wall, as ``label_airway_voxels`` splits
    the airway mask between branches. The partition is tabulated once on a
    :data:`OWNERSHIP_GRID_MM` grid (Euclidean distance transform with indices) and looked up
    per sample.

    Parameters
    ----------
    labels : ndarray of int, shape (I, J, K)
        Tube id of the nearest centreline at each grid node.
    index_from_lps : ndarray, shape (4, 4)
        Maps LPS mm to grid indices.
    outside_label : int
        Label beyond the grid: -1 (no tube: the measured tube's own) or -2 (not lumen).
    """

    labels: npt.NDArray[np.int32]
    index_from_lps: FloatArray
    outside_label: int = -1

    @classmethod
    def from_centrelines(
        cls, points_lps_mm: FloatArray, owner: npt.ArrayLike, lumen: Volume | None = None
    ) -> Ownership:
        """Tabulate the partition of the centreline points (M, 3) with tube ids (M,).

        With a ``lumen`` mask (bool Volume), grid nodes farther than
        :data:`LUMEN_SLACK_MM` from it belong to no tube (label -2): a lung or an oesophagus
        whose air touches the airway through a wall thinner than the CT resolves is then
        not read as lumen.
        """
        lo = points_lps_mm.min(axis=0) - _OWNERSHIP_MARGIN_MM
        hi = points_lps_mm.max(axis=0) + _OWNERSHIP_MARGIN_MM
        h = OWNERSHIP_GRID_MM
        shape = tuple(int(np.ceil((b - a) / h)) + 1 for a, b in zip(lo, hi, strict=True))
        seeds = np.zeros(shape, dtype=np.int32)
        ijk = np.rint((points_lps_mm - lo) / h).astype(np.intp)
        seeds[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = np.asarray(owner, dtype=np.int32) + 1
        nearest = ndi.distance_transform_edt(
            seeds == 0, return_distances=False, return_indices=True
        )
        labels = seeds[tuple(nearest)] - 1
        index_from_lps = np.diag([1 / h, 1 / h, 1 / h, 1.0])
        index_from_lps[:3, 3] = -lo / h
        outside_label = -1  # beyond the grid: nobody's, read as the measured tube's
        if lumen is not None:
            grid_to_ct = np.linalg.inv(lumen.affine) @ np.linalg.inv(index_from_lps)
            axes = [np.arange(n, dtype=np.float64) for n in shape]
            ct_ijk = [
                grid_to_ct[d, 0] * axes[0][:, None, None]
                + grid_to_ct[d, 1] * axes[1][None, :, None]
                + grid_to_ct[d, 2] * axes[2][None, None, :]
                + grid_to_ct[d, 3]
                for d in range(3)
            ]
            on_grid = ndi.map_coordinates(
                lumen.array.astype(np.uint8), ct_ijk, order=0, mode="constant", cval=0
            )
            far = ndi.distance_transform_edt(on_grid == 0, sampling=h) > LUMEN_SLACK_MM
            labels[far] = -2
            outside_label = -2
        return cls(labels, index_from_lps, outside_label)

    def foreign(self, ct_ijk: FloatArray, ct_affine: FloatArray, own: int) -> npt.NDArray[np.bool_]:
        """Whether each point (CT voxel indices, shape (3, M)) is not tube ``own``'s lumen:
        nearer another tube's centreline, or far from the lumen mask."""
        m = self.index_from_lps @ ct_affine
        shape = self.labels.shape
        idx = []
        inside = np.ones(ct_ijk.shape[1], dtype=bool)
        for d in range(3):
            g = np.rint(m[d, 0] * ct_ijk[0] + m[d, 1] * ct_ijk[1] + m[d, 2] * ct_ijk[2] + m[d, 3])
            gi = g.astype(np.intp)
            inside &= (gi >= 0) & (gi < shape[d])
            idx.append(np.clip(gi, 0, shape[d] - 1))
        label = np.where(inside, self.labels[idx[0], idx[1], idx[2]], self.outside_label)
        return np.asarray((label != own) & (label != -1))


_CHUNK = 48  # stations sampled at a time (bounded memory: 48 x 129 x 129 x 3 doubles)


def measure_cross_sections(
    image: Volume,
    centreline: Centreline,
    *,
    edge_level: float,
    lumen_below: bool,
    half_width_mm: float,
    search_radius_mm: float,
    ownership: Ownership | None = None,
    own: int = 0,
) -> CrossSections:
    """Measure the lumen in the plane normal to the centreline at every station.

    Parameters
    ----------
    image : Volume
        CT in HU, or a mask as 0/1 values.
    centreline : Centreline
        Stations and frames.
    edge_level : float
        Isocontour level of the lumen edge (-500 HU on a CT, 0.5 on a mask).
    lumen_below : bool
        The lumen reads below ``edge_level`` (air on a CT) rather than above (a mask).
    half_width_mm : float
        Half the side of the sampled square, mm: larger than the widest lumen expected.
    search_radius_mm : float
        When the station is not in the lumen, a closed lumen outline whose centroid lies
        within this distance is taken (an eccentric residual lumen); else occluded.
    ownership : Ownership, optional
        Lumen samples that belong to another tube than ``own`` are read as wall.
    own : int
        Id of the measured tube in ``ownership``.

    Returns
    -------
    CrossSections
    """
    n = len(centreline)
    area = np.full(n, np.nan)
    dmin = np.full(n, np.nan)
    dmax = np.full(n, np.nan)
    centroid = centreline.points_lps_mm.copy()
    radius = np.full((n, RAYS), np.nan)
    occluded = np.zeros(n, dtype=bool)
    status = np.full(n, "ok", dtype="<U8")
    sign = -1.0 if lumen_below else 1.0
    level = sign * edge_level
    centre_px = (PIXELS - 1) / 2.0
    for lo in range(0, n, _CHUNK):
        part = _slice_centreline(centreline, lo, min(n, lo + _CHUNK))
        images, offsets, outside, ijk = sample_planes(image, part, half_width_mm)
        fields = sign * images  # the lumen is above ``level`` in ``fields``
        pixel_mm = float(offsets[1] - offsets[0])
        if ownership is not None:
            check = fields > level
            other = np.zeros_like(check)
            other[check] = ownership.foreign(ijk[:, check], image.affine, own)
            fields[other] = level - abs(level) - 1.0
            c = round(centre_px)
            foreign_centre = other[:, c, c]
        else:
            foreign_centre = np.zeros(len(part), dtype=bool)
        for j in range(len(part)):
            k = lo + j
            chosen = _lumen_contour(fields[j], level, centre_px, search_radius_mm / pixel_mm)
            if chosen is None and foreign_centre[j]:
                status[k] = "foreign"  # the station lies in a neighbour's territory
                continue
            if chosen is None:
                if _centre_value(fields[j], centre_px) > level:
                    status[k] = "open"  # lumen at the station but its outline is not closed
                else:
                    occluded[k] = True
                    status[k] = "occluded"
                    area[k] = dmin[k] = dmax[k] = 0.0
                    radius[k] = 0.0
                continue
            rows = np.clip(np.rint(chosen).astype(np.intp), 0, PIXELS - 1)
            if outside[j][rows[:, 0], rows[:, 1]].any():
                status[k] = "outside"
                continue
            xy = (chosen - centre_px) * pixel_mm
            area[k], dmin[k], dmax[k], middle = polygon_measures(xy)
            centroid[k] = (
                centreline.points_lps_mm[k]
                + middle[0] * centreline.u[k]
                + middle[1] * centreline.v[k]
            )
            radius[k] = _polar_radius(xy, middle)
    return CrossSections(area, dmin, dmax, centroid, radius, occluded, status)


def _slice_centreline(line: Centreline, lo: int, hi: int) -> Centreline:
    return Centreline(
        line.points_lps_mm[lo:hi],
        line.tangents[lo:hi],
        line.u[lo:hi],
        line.v[lo:hi],
        line.s_mm[lo:hi],
    )


def _centre_value(field: npt.NDArray[np.float32], centre_px: float) -> float:
    c = round(centre_px)
    return float(field[c, c])


def _lumen_contour(
    field: npt.NDArray[np.float32], level: float, centre_px: float, search_px: float
) -> FloatArray | None:
    """The closed contour around the centre (smallest such), else the nearest closed one."""
    contours = [
        c
        for c in find_contours(field, level)
        if len(c) >= 4 and np.allclose(c[0], c[-1]) and not _touches_border(c)
    ]
    inside_centre = _centre_value(field, centre_px) > level
    centre = np.array([[centre_px, centre_px]])
    best: FloatArray | None = None
    best_key = np.inf
    for c in contours:
        area2 = abs(float(np.sum(c[:-1, 0] * c[1:, 1] - c[1:, 0] * c[:-1, 1])))
        if inside_centre:
            if points_in_poly(centre, c)[0] and area2 < best_key:
                best, best_key = c, area2
        else:
            distance = float(np.linalg.norm(c.mean(axis=0) - centre[0]))
            # the lumen side of a contour: the field is above the level at its centroid
            if distance < search_px and distance < best_key:
                mid = np.clip(np.rint(c.mean(axis=0)).astype(int), 0, field.shape[0] - 1)
                if field[mid[0], mid[1]] > level:
                    best, best_key = c, distance
    if best is not None and inside_centre and not points_in_poly(centre, best)[0]:
        return None
    return best


def _touches_border(contour: FloatArray) -> bool:
    return bool((contour.min() <= 0.0) or (contour.max() >= PIXELS - 1))
