"""Export: reports with pictures (and later NIfTI masks, DICOM SEG/RT, STL meshes)."""

from seldinger.export.report import DISCLAIMER, Report
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
    "POINT_COLOURS",
    "VIEW_NAMES",
    "WINDOW_PRESETS_HU",
    "RenderedViews",
    "Report",
    "render_views",
    "window_hu",
]
