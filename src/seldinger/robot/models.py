"""Robot models as data: kinematics, joint limits, repeatability and where the robot stands.

A model is a JSON file in ``seldinger/robot/data/`` (one per robot). Frames follow
docs/conventions.md: CT LPS millimetres, transforms named ``a_to_b``. A robot's base is
given in its **mount frame**: origin on the bore axis (the body's centre line, along LPS z)
at the target's slice, with LPS axes turned about z toward the side the robot stands on
(anterior: unturned, the robot above a supine patient). :func:`mount_to_ct` places that
frame in a CT.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = [
    "CT_BORE_DIAMETER_MM",
    "JointLimit",
    "MountSide",
    "RobotKind",
    "RobotModel",
    "list_models",
    "load_model",
    "model_from_dict",
    "mount_to_ct",
]

#: Diameter of the CT gantry bore, mm (common wide-bore scanners are 70-80 cm; issue 18).
CT_BORE_DIAMETER_MM = 700.0

Matrix44 = npt.NDArray[np.float64]


class RobotKind(StrEnum):
    """The kinematic families Seldinger knows."""

    NEEDLE_GUIDE_5DOF = "needle_guide_5dof"
    SERIAL_ARM_GUIDE = "serial_arm_guide"


class MountSide(StrEnum):
    """Side of the patient the robot stands on (turns the mount frame about LPS z)."""

    ANTERIOR = "anterior"
    POSTERIOR = "posterior"
    LEFT = "left"
    RIGHT = "right"


#: Turn of the mount frame about LPS z, degrees: it takes the anterior direction (-y) to the
#: side's direction (posterior +y, patient left +x, patient right -x).
_MOUNT_TURN_DEG = {
    MountSide.ANTERIOR: 0.0,
    MountSide.POSTERIOR: 180.0,
    MountSide.LEFT: 90.0,
    MountSide.RIGHT: -90.0,
}


@dataclass(frozen=True)
class JointLimit:
    """One joint: ``type`` "prismatic" (limits in mm) or "revolute" (limits in degrees)."""

    name: str
    type: str
    lower: float
    upper: float


@dataclass(frozen=True, eq=False)
class RobotModel:
    """A robot as read from its JSON file.

    Attributes
    ----------
    name, kind, description : str
    joints : tuple of JointLimit
        In kinematic order; prismatic in mm, revolute in degrees.
    repeatability_mm : float
        Positioning repeatability (manufacturer figure), mm.
    in_bore : bool
        True: the robot works inside the CT gantry, so all of it must stay within the
        bore (:data:`CT_BORE_DIAMETER_MM`); False: it works with the table out of the gantry.
    guide_length_mm : float
        Length of the needle guide along the needle axis, outward from its tip.
    standoff_mm : float
        Gap between the guide's tip and the skin entry along the needle axis.
    base_to_mount : ndarray, shape (4, 4)
        The robot base in the mount frame, mm.
    rtb_model : str or None
        Name of roboticstoolbox's DH model (``rtb.models.DH.<name>``) for an arm.
    tool_to_flange : ndarray, shape (4, 4)
        The guide (tool z = needle axis, origin at the guide's tip) on the arm's flange, mm.
    """

    name: str
    kind: RobotKind
    description: str
    joints: tuple[JointLimit, ...]
    repeatability_mm: float
    in_bore: bool
    guide_length_mm: float
    standoff_mm: float
    base_to_mount: Matrix44
    rtb_model: str | None = None
    tool_to_flange: Matrix44 | None = None

    @property
    def lower(self) -> npt.NDArray[np.float64]:
        """Lower joint limits (mm / degrees)."""
        return np.array([j.lower for j in self.joints])

    @property
    def upper(self) -> npt.NDArray[np.float64]:
        """Upper joint limits (mm / degrees)."""
        return np.array([j.upper for j in self.joints])


def _matrix(value: Any, what: str, name: str) -> Matrix44:
    matrix = np.asarray(value, dtype=float)
    if matrix.shape != (4, 4) or not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise BadInputError(
            f"robot model {name!r}: {what} must be a 4x4 rigid transform with last row "
            f"[0, 0, 0, 1]; got {matrix.tolist()}. Fix the model file."
        )
    rotation = matrix[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
        raise BadInputError(
            f"robot model {name!r}: {what} must have a proper rotation (orthonormal, det +1); "
            f"got {rotation.tolist()}. Fix the model file."
        )
    return matrix


def model_from_dict(data: dict[str, Any]) -> RobotModel:
    """A :class:`RobotModel` from the parsed JSON of a model file.

    Raises
    ------
    BadInputError
        If a field is missing or invalid (the message names it).
    """
    name = str(data.get("name", "?"))
    try:
        kind = RobotKind(data["kind"])
        joints = tuple(
            JointLimit(str(j["name"]), str(j["type"]), float(j["lower"]), float(j["upper"]))
            for j in data["joints"]
        )
        model = RobotModel(
            name=name,
            kind=kind,
            description=str(data.get("description", "")),
            joints=joints,
            repeatability_mm=float(data["repeatability_mm"]),
            in_bore=bool(data["in_bore"]),
            guide_length_mm=float(data["guide_length_mm"]),
            standoff_mm=float(data.get("standoff_mm", 0.0)),
            base_to_mount=_matrix(data["base_to_mount"], "base_to_mount", name),
            rtb_model=data.get("rtb_model"),
            tool_to_flange=(
                None
                if data.get("tool_to_flange") is None
                else _matrix(data["tool_to_flange"], "tool_to_flange", name)
            ),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, BadInputError):
            raise
        raise BadInputError(
            f"robot model {name!r} is invalid ({type(err).__name__}: {err}); it needs name, "
            "kind, joints (name, type, lower, upper), repeatability_mm, in_bore, "
            "guide_length_mm and base_to_mount."
        ) from err
    expected = 5 if kind is RobotKind.NEEDLE_GUIDE_5DOF else 6
    if len(joints) != expected or any(j.lower > j.upper for j in joints):
        raise BadInputError(
            f"robot model {name!r} of kind {kind.value} needs {expected} joints with "
            f"lower <= upper; got {[(j.name, j.lower, j.upper) for j in joints]}."
        )
    if kind is RobotKind.SERIAL_ARM_GUIDE and (
        model.rtb_model is None or model.tool_to_flange is None
    ):
        raise BadInputError(
            f"robot model {name!r} is a serial arm: it needs rtb_model (a roboticstoolbox DH "
            "model name such as 'UR5') and tool_to_flange."
        )
    return model


def list_models() -> list[str]:
    """Names of the robot models shipped with Seldinger, sorted."""
    folder = resources.files("seldinger.robot") / "data"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_model(name: str) -> RobotModel:
    """The shipped robot model ``name`` (see :func:`list_models`).

    Raises
    ------
    BadInputError
        If there is no such model.

    Examples
    --------
    >>> load_model("guide_5dof").kind.value
    'needle_guide_5dof'
    """
    known = list_models()
    if name not in known:
        raise BadInputError(f"robot {name!r} is not known; choose one of {known}.")
    text = (resources.files("seldinger.robot") / "data" / f"{name}.json").read_text("utf-8")
    return model_from_dict(json.loads(text))


def mount_to_ct(origin_lps_mm: npt.ArrayLike, side: MountSide | str) -> Matrix44:
    """The mount frame in the CT: origin on the bore axis, turned about z toward ``side``.

    Parameters
    ----------
    origin_lps_mm : array-like, shape (3,)
        A point on the bore axis (the body's centre line) at the target's slice, LPS mm.
    side : MountSide or str

    Examples
    --------
    >>> m = mount_to_ct([0.0, 0.0, 0.0], "left")
    >>> (np.round(m[:3, :3] @ [0.0, -1.0, 0.0], 6) + 0.0).tolist()  # anterior to patient left
    [1.0, 0.0, 0.0]
    """
    turn = math.radians(_MOUNT_TURN_DEG[MountSide(side)])
    c, s = math.cos(turn), math.sin(turn)
    transform = np.eye(4)
    transform[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    transform[:3, 3] = np.asarray(origin_lps_mm, dtype=float)
    return transform
