"""Export: reports with pictures (and later NIfTI masks, DICOM SEG/RT, STL meshes)."""

from seldinger.export.report import DISCLAIMER, Report
from seldinger.export.trajectory_views import (
    NEEDLE_VIEW_NAMES,
    ObliquePlane,
    needle_frame,
    needle_view_planes,
    oblique_plane,
    render_needle_views,
    render_paths_axial,
    render_skin_risk_map,
    skin_azimuth_deg,
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
    "MASK_COLOURS",
    "NEEDLE_VIEW_NAMES",
    "POINT_COLOURS",
    "VIEW_NAMES",
    "WINDOW_PRESETS_HU",
    "ObliquePlane",
    "RenderedViews",
    "Report",
    "needle_frame",
    "needle_view_planes",
    "oblique_plane",
    "render_needle_views",
    "render_paths_axial",
    "render_skin_risk_map",
    "render_views",
    "skin_azimuth_deg",
    "window_hu",
]
