"""Navigation: OpenIGTLink, tracker simulation, calibration, registration and guidance.

The OpenIGTLink layer is the subpackage :mod:`seldinger.navigation.igtl`; the rest is
re-exported here.
"""

from seldinger.navigation.calibration import (
    CalibrationError,
    PivotCalibration,
    SpinCalibration,
    pivot_calibration,
    spin_calibration,
    tool_tip_to_tool,
)
from seldinger.navigation.fiducials import (
    MarkerDetection,
    SkinMarker,
    detect_skin_markers,
    insert_spherical_markers,
)
from seldinger.navigation.guidance import (
    GuidanceError,
    GuidanceState,
    Guide,
    PlannedPath,
    Watchdog,
    critical_distance_map,
    guidance_state,
)
from seldinger.navigation.icp import IcpResult, icp, surface_points_from_mask
from seldinger.navigation.motion import BreathingModel, NeedleInsertion, PivotMotion, SpinMotion
from seldinger.navigation.pairing import PairingError, PointPairing, pair_points
from seldinger.navigation.recording import (
    SessionLogError,
    SessionLogWriter,
    read_pose_series,
    read_session_log,
    write_session_log,
)
from seldinger.navigation.registration import (
    PointRegistration,
    RegistrationError,
    predicted_tre_mm,
    register_points,
)
from seldinger.navigation.simulate import (
    DistortionModel,
    DropoutModel,
    NoiseModel,
    TrackerFrame,
    TrackerSimConfig,
    TrackerSimulator,
)
from seldinger.navigation.transforms import TransformError, invert_rigid, validate_rigid

__all__ = [
    "BreathingModel",
    "CalibrationError",
    "DistortionModel",
    "DropoutModel",
    "GuidanceError",
    "GuidanceState",
    "Guide",
    "IcpResult",
    "MarkerDetection",
    "NeedleInsertion",
    "NoiseModel",
    "PairingError",
    "PivotCalibration",
    "PivotMotion",
    "PlannedPath",
    "PointPairing",
    "PointRegistration",
    "RegistrationError",
    "SessionLogError",
    "SessionLogWriter",
    "SkinMarker",
    "SpinCalibration",
    "SpinMotion",
    "TrackerFrame",
    "TrackerSimConfig",
    "TrackerSimulator",
    "TransformError",
    "Watchdog",
    "critical_distance_map",
    "detect_skin_markers",
    "guidance_state",
    "icp",
    "insert_spherical_markers",
    "invert_rigid",
    "pair_points",
    "pivot_calibration",
    "predicted_tre_mm",
    "read_pose_series",
    "read_session_log",
    "register_points",
    "spin_calibration",
    "surface_points_from_mask",
    "tool_tip_to_tool",
    "validate_rigid",
    "write_session_log",
]
