"""Imaging: the Volume type (voxels + affine in LPS mm), grids, resampling."""

from seldinger.imaging.resample import INTERPOLATIONS, reorient, resample
from seldinger.imaging.volume import (
    GeometryError,
    Volume,
    VolumeGeometry,
    orientation_code,
    require_same_geometry,
)

__all__ = [
    "INTERPOLATIONS",
    "GeometryError",
    "Volume",
    "VolumeGeometry",
    "orientation_code",
    "reorient",
    "require_same_geometry",
    "resample",
]
