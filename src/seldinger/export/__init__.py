"""Export: reports with pictures (and later NIfTI masks, DICOM SEG/RT, STL meshes)."""

from seldinger.export.margin_views import EXCLUDED_COLOUR, margin_colormap, render_margin_map
from seldinger.export.report import DISCLAIMER, Report
from seldinger.export.trajectory_figures import (
    FIGURE_MASKS,
    NEEDLE_VIEWS,
    trajectory_figure_names,
    write_trajectory_figures,
)
from seldinger.export.trajectory_views import (
    render_needle_views,
    render_paths_axial,
    render_skin_risk_map,
)
from seldinger.export.views import (
    MASK_COLOURS,
    POINT_COLOURS,
    VIEW_NAMES,
    WINDOW_PRESETS_HU,
    RenderedViews,
    render_views,
    window_hu,
)

__all__ = [
    "DISCLAIMER",
    "EXCLUDED_COLOUR",
    "FIGURE_MASKS",
    "MASK_COLOURS",
    "NEEDLE_VIEWS",
    "POINT_COLOURS",
    "VIEW_NAMES",
    "WINDOW_PRESETS_HU",
    "RenderedViews",
    "Report",
    "margin_colormap",
    "render_margin_map",
    "render_needle_views",
    "render_paths_axial",
    "render_skin_risk_map",
    "render_views",
    "trajectory_figure_names",
    "window_hu",
    "write_trajectory_figures",
]
