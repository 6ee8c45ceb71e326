"""Robots that hold the needle: models as data, kinematics and reachability."""

from seldinger.robot.kinematics import (
    IkResult,
    axis_errors,
    forward,
    frame_from_axis,
    inverse,
    inverse_guide_many,
)
from seldinger.robot.models import (
    CT_BORE_DIAMETER_MM,
    JointLimit,
    MountSide,
    RobotKind,
    RobotModel,
    list_models,
    load_model,
    model_from_dict,
    mount_to_ct,
)
from seldinger.robot.reach import (
    DEFAULT_TRE_MM,
    NEEDLE_DEFLECTION_MM_PER_100MM,
    PathReach,
    bore_axis_lps_mm,
    mount_side_for,
    predicted_error_mm,
    reach_paths,
    summarise,
)

__all__ = [
    "CT_BORE_DIAMETER_MM",
    "DEFAULT_TRE_MM",
    "NEEDLE_DEFLECTION_MM_PER_100MM",
    "IkResult",
    "JointLimit",
    "MountSide",
    "PathReach",
    "RobotKind",
    "RobotModel",
    "axis_errors",
    "bore_axis_lps_mm",
    "forward",
    "frame_from_axis",
    "inverse",
    "inverse_guide_many",
    "list_models",
    "load_model",
    "model_from_dict",
    "mount_side_for",
    "mount_to_ct",
    "predicted_error_mm",
    "reach_paths",
    "summarise",
]
