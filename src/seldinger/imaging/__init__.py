"""Imaging: the Volume type (voxels + affine in LPS mm), grids, resampling."""

from seldinger.imaging.resample import INTERPOLATIONS, reorient, resample
from seldinger.imaging.reslice import (
    NEEDLE_VIEW_NAMES,
    ObliquePlane,
    needle_frame,
    needle_view_planes,
    oblique_plane,
    skin_azimuth_deg,
)
from seldinger.imaging.volume import (
    GeometryError,
    Volume,
    VolumeGeometry,
    orientation_code,
    require_same_geometry,
)

__all__ = [
    "INTERPOLATIONS",
    "NEEDLE_VIEW_NAMES",
    "GeometryError",
    "ObliquePlane",
    "Volume",
    "VolumeGeometry",
    "needle_frame",
    "needle_view_planes",
    "oblique_plane",
    "orientation_code",
    "reorient",
    "require_same_geometry",
    "resample",
    "skin_azimuth_deg",
]
