"""The Plan document: typed sections (schema v2), load/save with validation, migration.

Quick start::

    from seldinger.plan import Plan
    plan = Plan.load("plan.json")              # validated; a v1 plan says how to migrate
    plan.trajectories.paths[0].entry_lps_mm    # typed sections, units in the names
    plan.save("plan.json", force=True)         # validated again, written atomically
"""

from seldinger.plan.ablation import (
    AblationSection,
    ApplicatorRecord,
    HeatSinkRecord,
    MarginMetrics,
)
from seldinger.plan.case import AFFINE_ATOL_MM, CaseIdentity, voxel_sha256
from seldinger.plan.document import (
    POINT_PAD_MM,
    SCHEMA_VERSION,
    Plan,
    describe_validation_error,
)
from seldinger.plan.errors import (
    PlanCaseMismatchError,
    PlanContentError,
    PlanFileError,
    PlanVersionError,
)
from seldinger.plan.fields import (
    Direction,
    Matrix4,
    PlanModel,
    Point3,
    RigidMatrix,
    rigid_error,
)
from seldinger.plan.migrate import migrate_document, migrate_file
from seldinger.plan.motion import (
    MotionSection,
    PhaseRecord,
    TargetMotion,
    TargetPhaseDisplacement,
    TrajectoryMotion,
)
from seldinger.plan.navigation import (
    CalibrationRecord,
    NavigationSection,
    PivotCalibrationRecord,
    RegistrationRecord,
    SpinCalibrationRecord,
)
from seldinger.plan.provenance import Provenance, StepRecord
from seldinger.plan.robot import (
    NeedlePlacementRecord,
    PathReachRecord,
    ReplanRecord,
    RobotSection,
    RobotSessionRecord,
)
from seldinger.plan.seeds import (
    U_PER_MCI_I125,
    SeedDoseMetrics,
    SeedGoalsRecord,
    SeedNeedleRecord,
    SeedSection,
)
from seldinger.plan.targets import StructureRef, Target
from seldinger.plan.trajectories import TrajectoryRecord, TrajectoryRules, TrajectorySection

__all__ = [
    "AFFINE_ATOL_MM",
    "POINT_PAD_MM",
    "SCHEMA_VERSION",
    "U_PER_MCI_I125",
    "AblationSection",
    "ApplicatorRecord",
    "CalibrationRecord",
    "CaseIdentity",
    "Direction",
    "HeatSinkRecord",
    "MarginMetrics",
    "Matrix4",
    "MotionSection",
    "NavigationSection",
    "NeedlePlacementRecord",
    "PathReachRecord",
    "PhaseRecord",
    "PivotCalibrationRecord",
    "Plan",
    "PlanCaseMismatchError",
    "PlanContentError",
    "PlanFileError",
    "PlanModel",
    "PlanVersionError",
    "Point3",
    "Provenance",
    "RegistrationRecord",
    "ReplanRecord",
    "RigidMatrix",
    "RobotSection",
    "RobotSessionRecord",
    "SeedDoseMetrics",
    "SeedGoalsRecord",
    "SeedNeedleRecord",
    "SeedSection",
    "SpinCalibrationRecord",
    "StepRecord",
    "StructureRef",
    "Target",
    "TargetMotion",
    "TargetPhaseDisplacement",
    "TrajectoryMotion",
    "TrajectoryRecord",
    "TrajectoryRules",
    "TrajectorySection",
    "describe_validation_error",
    "migrate_document",
    "migrate_file",
    "rigid_error",
    "voxel_sha256",
]
