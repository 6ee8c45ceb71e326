"""What every mediastinal organ step starts from: work grid, levels, masks, landmarks.

Built once per CT by :func:`mediastinal_context` and passed to :mod:`.great_vessels`,
:mod:`.heart`, :mod:`.oesophagus` and :mod:`.spinal_canal`, so the block averaging, the
level measurement and the spine search are done once. Positions inside are work-grid
millimetres (``index * spacing``, LPS order); :meth:`MediastinalContext.to_lps` converts them to
LPS millimetres (``docs/conventions.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.anatomy.airway_tree import TRACHEA, AirwayGraph
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.mediastinal_grid import (
    FloatArray,
    Levels,
    WorkGrid,
    checked_mask,
    measure_levels,
)
from seldinger.anatomy.morphology import BoolArray
from seldinger.anatomy.spinal_canal import Spine, find_spine
from seldinger.imaging import Volume

__all__ = ["MediastinalContext", "mediastinal_context"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class MediastinalContext:
    """The CT and its known structures on the work grid, with the scan's levels.

    Attributes
    ----------
    ct : Volume
        The CT (HU, LPS order) the context was built from.
    grid : WorkGrid
    hu : ndarray
        Smoothed, block-averaged CT (HU) on the work grid.
    levels : Levels
    body, lung_left, lung_right, bones, airways, liver : ndarray of bool
        The pipeline's masks on the work grid (``liver`` all False when not in view).
    spine : Spine
    trachea_mm : ndarray, shape (N, 3)
        Trachea centreline from its top to the carina (work-grid mm); empty without airways.
    """

    ct: Volume
    grid: WorkGrid
    hu: FloatArray
    levels: Levels
    body: BoolArray
    lung_left: BoolArray
    lung_right: BoolArray
    bones: BoolArray
    airways: BoolArray
    liver: BoolArray
    spine: Spine
    trachea_mm: F64

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.grid.spacing_mm

    @property
    def lungs(self) -> BoolArray:
        return np.asarray(self.lung_left | self.lung_right)

    @property
    def carina_mm(self) -> F64 | None:
        """The carina (distal end of the trachea), work-grid mm; None without airways."""
        return self.trachea_mm[-1] if len(self.trachea_mm) else None

    def to_lps(self, points_mm: npt.ArrayLike) -> F64:
        """Work-grid mm → LPS mm (the CT's affine at the work voxel's centre)."""
        pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
        f = np.asarray(self.grid.factors, dtype=np.float64)
        index = pts / np.asarray(self.spacing_mm) * f + (f - 1.0) / 2.0
        homogeneous = np.column_stack([index, np.ones(len(index))])
        return np.asarray((self.ct.affine @ homogeneous.T).T[:, :3])

    def from_lps(self, points_lps_mm: npt.ArrayLike) -> F64:
        """LPS mm → work-grid mm (inverse of :meth:`to_lps`)."""
        pts = np.atleast_2d(np.asarray(points_lps_mm, dtype=np.float64))
        homogeneous = np.column_stack([pts, np.ones(len(pts))])
        index = (np.linalg.inv(self.ct.affine) @ homogeneous.T).T[:, :3]
        f = np.asarray(self.grid.factors, dtype=np.float64)
        return np.asarray((index - (f - 1.0) / 2.0) / f * np.asarray(self.spacing_mm))


def mediastinal_context(
    ct: Volume,
    body: npt.ArrayLike,
    lung_left: npt.ArrayLike,
    lung_right: npt.ArrayLike,
    bones: npt.ArrayLike,
    *,
    airways: npt.ArrayLike | None = None,
    airway_graph: AirwayGraph | None = None,
    liver: npt.ArrayLike | None = None,
) -> MediastinalContext:
    """Build the shared inputs of the mediastinal organ steps (see the module docstring).

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (the pipeline's body-cropped CT).
    body, lung_left, lung_right, bones : array_like of bool, the CT's shape
        The pipeline's masks of this CT.
    airways : array_like of bool, optional
        Airway lumen; absent on CTs without a trachea.
    airway_graph : AirwayGraph, optional
        Its centreline graph (gives the trachea and carina).
    liver : array_like of bool, optional
        Liver when in view.
    """
    require_canonical(ct)
    shape = ct.shape
    masks = {
        "body": checked_mask("body", body, shape),
        "lung_left": checked_mask("lung_left", lung_left, shape),
        "lung_right": checked_mask("lung_right", lung_right, shape),
        "bones": checked_mask("bones", bones, shape),
        "airways": checked_mask("airways", airways, shape),
        "liver": checked_mask("liver", liver, shape),
    }
    grid = WorkGrid.for_ct(shape, ct.spacing_mm)
    hu = grid.smooth(grid.mean(ct.array))
    work = {name: grid.coarse(mask) for name, mask in masks.items()}
    levels = measure_levels(hu, work["body"])
    spine = find_spine(hu, work["body"], work["bones"], grid, levels.tissue_hu)
    trachea = np.zeros((0, 3))
    context = MediastinalContext(ct, grid, hu, levels, spine=spine, trachea_mm=trachea, **work)
    if airway_graph is not None and len(airway_graph) and airway_graph.root.label == TRACHEA:
        pts = context.from_lps(airway_graph.root.points_lps_mm)
        # Ordered from the top down to the carina.
        if pts[0, 2] < pts[-1, 2]:
            pts = pts[::-1]
        context = MediastinalContext(ct, grid, hu, levels, spine=spine, trachea_mm=pts, **work)
    return context
