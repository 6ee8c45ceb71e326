"""The robot protocol over OpenIGTLink: states, legal transitions, and the controller side.

Modelled on the open prostate-robot protocol used with 3D Slicer (Tokuda et al. [1]_;
the "ProstateBRP" module of SlicerIGT): the controller (Seldinger, as Slicer in the paper)
drives the robot through eight workphases; the robot acknowledges every message.

===========================  =================================================================
controller → robot           meaning
===========================  =================================================================
STRING ``CMD_<code>``         text is the state asked for (``"TARGETING"``); code is 4+ digits
TRANSFORM ``CLB_<code>``      calibration ``robot_to_ct`` (robot base → CT LPS, mm); only in
                              ``CALIBRATION``
TRANSFORM ``TGT_<code>``      target pose in CT LPS mm (needle tip at the translation, axis
                              along the third column); only in ``TARGETING``
===========================  =================================================================

===========================  =================================================================
robot → controller           meaning
===========================  =================================================================
STATUS ``ACK_<code>``         the answer to the message with that code: ``OK`` with the state
                              now in force as its text, or an error code (below) with the
                              reason; a refused command changes nothing
STATUS ``TARGET_REACHED``     a move ended at the target (text: the miss in mm)
STATUS ``MOTION_STOPPED``     a move was stopped early (STOP, EMERGENCY, MANUAL, lost link)
TRANSFORM ``CURRENT_POSITION``  the guide pose in CT LPS mm, streamed (robot frame until a
                              calibration has been received)
===========================  =================================================================

Error codes in an ``ACK_`` STATUS: ``NOT_READY`` with error name ``IllegalTransition``
(not allowed from the current state, see :data:`LEGAL_TRANSITIONS`), ``NoCalibration`` or
``NoTarget`` (a guard of the transition); ``CONFIG_ERROR`` / ``OutOfReach`` for a target
beyond the robot's reach; ``UNKNOWN_INSTRUCTION`` for an unknown state or message.

Differences from ProstateBRP, on purpose: acknowledgements are STATUS messages named after
the command's code (BRP echoes a STRING ``ACK_`` and then sends a STATUS named after the
state), so one reply answers one request even when several are in flight; calibration and
target are in CT LPS mm, not Slicer RAS (``docs/conventions.md``).

References
----------
.. [1] Tokuda J, Fischer GS, DiMaio SP, et al. Integrated navigation and control software
   system for MRI-guided robotic prostate interventions. Comput Med Imaging Graph.
   2010;34(1):3-8. The OpenIGTLink interface: Tokuda J et al., OpenIGTLink: an open network
   protocol for image-guided therapy environment. Int J Med Robot. 2009;5(4):423-434.
"""

from __future__ import annotations

import enum
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, PeerError
from seldinger.navigation.igtl import (
    DEFAULT_PORT,
    IgtlClient,
    StatusMessage,
    StringMessage,
    TransformMessage,
)

__all__ = [
    "ACK_PREFIX",
    "CALIBRATION_PREFIX",
    "COMMAND_PREFIX",
    "CURRENT_POSITION",
    "LEGAL_TRANSITIONS",
    "MOTION_STOPPED",
    "TARGET_PREFIX",
    "TARGET_REACHED",
    "RobotController",
    "RobotRefusedError",
    "RobotState",
    "RobotTimeoutError",
    "is_legal",
    "split_device_name",
]

logger = logging.getLogger(__name__)

COMMAND_PREFIX = "CMD_"
CALIBRATION_PREFIX = "CLB_"
TARGET_PREFIX = "TGT_"
ACK_PREFIX = "ACK_"
CURRENT_POSITION = "CURRENT_POSITION"
TARGET_REACHED = "TARGET_REACHED"
MOTION_STOPPED = "MOTION_STOPPED"

_DEVICE = re.compile(r"^(CMD_|CLB_|TGT_|ACK_)(\d{4,15})$")


class RobotState(enum.StrEnum):
    """The workphases of the prostate-robot protocol."""

    START_UP = "START_UP"
    PLANNING = "PLANNING"
    CALIBRATION = "CALIBRATION"
    TARGETING = "TARGETING"
    MOVE_TO_TARGET = "MOVE_TO_TARGET"
    MANUAL = "MANUAL"
    STOP = "STOP"
    EMERGENCY = "EMERGENCY"


_S = RobotState
_ALWAYS = frozenset({_S.STOP, _S.EMERGENCY})

#: State → the states a command may move it to. STOP and EMERGENCY are legal from every
#: state but EMERGENCY, which only START_UP (a restart) or EMERGENCY itself leaves: a
#: safety command is never refused, and an emergency is never left by accident.
LEGAL_TRANSITIONS: Mapping[RobotState, frozenset[RobotState]] = {
    _S.START_UP: frozenset({_S.START_UP, _S.PLANNING}) | _ALWAYS,
    _S.PLANNING: frozenset({_S.CALIBRATION, _S.MANUAL}) | _ALWAYS,
    _S.CALIBRATION: frozenset({_S.PLANNING, _S.TARGETING}) | _ALWAYS,
    _S.TARGETING: frozenset({_S.PLANNING, _S.CALIBRATION, _S.MOVE_TO_TARGET, _S.MANUAL}) | _ALWAYS,
    _S.MOVE_TO_TARGET: frozenset({_S.TARGETING, _S.MANUAL}) | _ALWAYS,
    _S.MANUAL: frozenset({_S.PLANNING, _S.TARGETING}) | _ALWAYS,
    _S.STOP: frozenset({_S.START_UP, _S.PLANNING, _S.MANUAL}) | _ALWAYS,
    _S.EMERGENCY: frozenset({_S.START_UP, _S.EMERGENCY}),
}


def is_legal(current: RobotState | str, requested: RobotState | str) -> bool:
    """True if a command may move the robot from ``current`` to ``requested``.

    >>> is_legal("TARGETING", "MOVE_TO_TARGET"), is_legal("PLANNING", "MOVE_TO_TARGET")
    (True, False)
    """
    return RobotState(requested) in LEGAL_TRANSITIONS[RobotState(current)]


def split_device_name(device_name: str) -> tuple[str, str] | None:
    """``("CMD_", "0001")`` for ``"CMD_0001"``; None for a name that is not a coded one.

    >>> split_device_name("TGT_0012"), split_device_name("CURRENT_POSITION")
    (('TGT_', '0012'), None)
    """
    match = _DEVICE.match(device_name)
    return None if match is None else (match.group(1), match.group(2))


class RobotRefusedError(PeerError):
    """The robot answered a command with an error STATUS (held in :attr:`status`)."""

    def __init__(self, message: str, status: StatusMessage) -> None:
        super().__init__(message)
        self.status = status


class RobotTimeoutError(PeerError, TimeoutError):
    """The robot did not answer within the time-out."""


class RobotController:
    """The controller side (Seldinger): send commands, calibration and targets; await acks.

    Single-threaded: each call sends one message and reads the link on the caller's thread
    until its acknowledgement arrives, keeping the newest ``CURRENT_POSITION`` and the
    other STATUS messages (:meth:`wait_for_status`) seen on the way.

    Parameters
    ----------
    host, port : str, int
        The robot's OpenIGTLink server.
    timeout_s : float
        Default wait for an acknowledgement, seconds.
    connect_timeout_s : float
        How long to try to connect.

    Raises
    ------
    PeerError
        If the robot does not accept the connection.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 2.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if not timeout_s > 0:
            raise BadInputError(f"timeout_s must be > 0 seconds; got {timeout_s!r}.")
        self._client = IgtlClient(host, port, connect_timeout_s=connect_timeout_s)
        self._timeout_s = timeout_s
        self._codes = itertools.count(1)
        # All owned by the caller's thread (the class is not thread-safe).
        self._pose_ct: npt.NDArray[np.float64] | None = None
        self._statuses: deque[StatusMessage] = deque(maxlen=256)

    @property
    def current_pose(self) -> npt.NDArray[np.float64] | None:
        """The newest ``CURRENT_POSITION`` read so far (4×4, CT LPS mm once calibrated)."""
        return self._pose_ct

    def command(
        self, state: RobotState | str, *, check: bool = True, timeout_s: float | None = None
    ) -> StatusMessage:
        """Ask the robot to enter ``state``; returns its acknowledgement.

        Raises
        ------
        BadInputError
            If ``state`` is not one of :class:`RobotState`.
        RobotRefusedError
            If ``check`` and the robot refused (the state is then unchanged).
        RobotTimeoutError
            If no acknowledgement arrived in time.
        """
        try:
            requested = RobotState(state)
        except ValueError as err:
            raise BadInputError(
                f"state must be one of {[s.value for s in RobotState]}; got {state!r}."
            ) from err
        code = self._next_code()
        self._client.send(StringMessage(device_name=COMMAND_PREFIX + code, text=requested.value))
        return self._await_ack(code, f"command {requested.value}", check, timeout_s)

    def send_calibration(
        self, robot_to_ct: npt.ArrayLike, *, check: bool = True, timeout_s: float | None = None
    ) -> StatusMessage:
        """Send the calibration ``robot_to_ct`` (4×4, mm); the robot must be in CALIBRATION."""
        code = self._next_code()
        self._client.send(
            TransformMessage(device_name=CALIBRATION_PREFIX + code, matrix=np.asarray(robot_to_ct))
        )
        return self._await_ack(code, "calibration", check, timeout_s)

    def send_target(
        self, target_to_ct: npt.ArrayLike, *, check: bool = True, timeout_s: float | None = None
    ) -> StatusMessage:
        """Send the target pose (4×4, CT LPS mm); the robot must be in TARGETING."""
        code = self._next_code()
        self._client.send(
            TransformMessage(device_name=TARGET_PREFIX + code, matrix=np.asarray(target_to_ct))
        )
        return self._await_ack(code, "target", check, timeout_s)

    def wait_for_status(self, device_name: str, timeout_s: float | None = None) -> StatusMessage:
        """The first STATUS named ``device_name`` (e.g. ``TARGET_REACHED``), seen or to come.

        Raises
        ------
        RobotTimeoutError
            If none arrives in time.
        """
        for status in list(self._statuses):
            if status.device_name == device_name:
                self._statuses.remove(status)
                return status
        status = self._read_until(device_name, timeout_s)
        return status

    def poll_status(self, device_name: str, timeout_s: float = 0.0) -> StatusMessage | None:
        """Like :meth:`wait_for_status` but None when none came within ``timeout_s``."""
        try:
            return self.wait_for_status(device_name, timeout_s=max(timeout_s, 1e-3))
        except RobotTimeoutError:
            return None

    def close(self) -> None:
        """Disconnect (idempotent); a robot that is moving stops (its watchdog)."""
        self._client.close()

    def __enter__(self) -> RobotController:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _next_code(self) -> str:
        return f"{next(self._codes):04d}"

    def _await_ack(
        self, code: str, what: str, check: bool, timeout_s: float | None
    ) -> StatusMessage:
        status = self._read_until(ACK_PREFIX + code, timeout_s)
        if check and not status.ok:
            raise RobotRefusedError(
                f"the robot refused the {what} ({status.code.name}, {status.error_name}): "
                f"{status.status_string}",
                status,
            )
        return status

    def _read_until(self, device_name: str, timeout_s: float | None) -> StatusMessage:
        wait_s = self._timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                frame = self._client.receive(timeout_s=remaining)
            except TimeoutError as err:
                raise RobotTimeoutError(
                    f"no {device_name} STATUS from the robot at {self._client.peer} within "
                    f"{wait_s} s. Check that the robot server runs, or raise timeout_s."
                ) from err
            if not frame.ok:
                logger.warning("damaged message from the robot: %s", frame.error)
                continue
            message = frame.message
            if isinstance(message, TransformMessage) and message.device_name == CURRENT_POSITION:
                self._pose_ct = message.matrix
            elif isinstance(message, StatusMessage):
                if message.device_name == device_name:
                    return message
                if not message.device_name.startswith(ACK_PREFIX):
                    self._statuses.append(message)
