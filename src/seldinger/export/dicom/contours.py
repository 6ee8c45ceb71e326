"""Planar contours of a mask on its slices, and the mask they enclose (even–odd rule).

A contour is traced by marching squares (``skimage.measure.find_contours``) at level 0.5 of
the slice's mask: it runs through the midpoints between inside and outside pixel centres,
i.e. around the pixels, not through the centres of the boundary pixels (which would shrink
every structure by half a pixel). Holes come out as contours of their own inside their
outer contour, islands as separate contours; the enclosed region is read back with the
even–odd rule (a pixel is inside when an odd number of the slice's contours encloses its
centre), which is how RT systems read nested contours of one ROI (PS3.3 C.8.8.6.3,
CLOSED_PLANAR). Vertices on straight runs are dropped (exactly collinear, so nothing
moves); every pixel centre stays at least 0.35 px (1/(2√2)) from its contour, so
mask → contours → mask is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from skimage.measure import find_contours

__all__ = ["plane_contours", "rasterise_contours"]


def _drop_collinear(closed: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The vertices of a closed polyline (first point repeated last) where it turns."""
    points = closed[:-1]
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    turn = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    return points[np.abs(turn) > 1e-9]


def plane_contours(plane: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.float64]]:
    """Closed contours of a 2-D mask, in fractional (i, j) pixel indices.

    Parameters
    ----------
    plane : ndarray of bool, shape (I, J)
        One slice of a mask.

    Returns
    -------
    list of ndarray, shape (n, 2)
        One array per closed contour (outer boundaries and holes alike); the first point
        is not repeated at the end.

    Examples
    --------
    >>> square = np.zeros((4, 4), bool); square[1:3, 1:3] = True
    >>> [c.tolist() for c in plane_contours(square)]
    [[[2.5, 2.0], [2.5, 1.0], [2.0, 0.5], [1.0, 0.5], [0.5, 1.0], [0.5, 2.0], [1.0, 2.5], [2.0, 2.5]]]
    """
    rows = np.flatnonzero(plane.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(plane.any(axis=0))
    offset = np.array([rows[0], cols[0]], dtype=np.float64) - 1.0  # the pad below
    box = plane[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    field = np.pad(box, 1).astype(np.float32)
    return [_drop_collinear(line) + offset for line in find_contours(field, 0.5)]


def rasterise_contours(
    contours: Sequence[npt.NDArray[np.float64]], shape: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """Pixels whose centre an odd number of contours encloses (even–odd rule).

    A scanline fill: each polygon edge crossing the line of pixel centres i = r at
    j = c toggles every pixel of that line with j > c; the parity of the toggles is the
    mask (edges count on the half-open interval [min i, max i) so a vertex is counted once).

    Parameters
    ----------
    contours : sequence of ndarray, shape (n, 2)
        Closed polygons in fractional (i, j) pixel indices.
    shape : tuple of int
        (I, J) of the slice.

    Returns
    -------
    ndarray of bool, shape (I, J)

    Examples
    --------
    >>> ring = [np.array([[0.5, 0.5], [4.5, 0.5], [4.5, 4.5], [0.5, 4.5]]),
    ...         np.array([[1.5, 1.5], [3.5, 1.5], [3.5, 3.5], [1.5, 3.5]])]
    >>> int(rasterise_contours(ring, (6, 6)).sum())  # 4x4 square less its 2x2 hole
    12
    """
    ni, nj = shape
    toggles = np.zeros((ni, nj + 1), dtype=np.int32)
    for contour in contours:
        start = np.asarray(contour, dtype=np.float64)
        end = np.roll(start, -1, axis=0)
        lo = np.minimum(start[:, 0], end[:, 0])
        hi = np.maximum(start[:, 0], end[:, 0])
        first = np.maximum(np.ceil(lo), 0).astype(np.int64)  # rows r with lo <= r < hi
        last = np.minimum(np.ceil(hi) - 1, ni - 1).astype(np.int64)
        count = np.maximum(last - first + 1, 0)
        edge = np.repeat(np.arange(len(start)), count)
        if edge.size == 0:
            continue
        row = first[edge] + (np.arange(edge.size) - np.repeat(np.cumsum(count) - count, count))
        a, b = start[edge], end[edge]
        col = a[:, 1] + (row - a[:, 0]) * (b[:, 1] - a[:, 1]) / (b[:, 0] - a[:, 0])
        first_col = np.clip(np.floor(col).astype(np.int64) + 1, 0, nj)  # centres j > col
        np.add.at(toggles, (row, first_col), 1)
    return (np.cumsum(toggles[:, :nj], axis=1) % 2).astype(bool)
