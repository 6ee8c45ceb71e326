"""A tool's poses from a recorded session log, optionally relative to a reference tool."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, MissingFileError
from seldinger.navigation.recording import pose_series, read_session_log
from seldinger.navigation.transforms import invert_rigid

__all__ = ["tool_poses"]


def tool_poses(
    log: str | os.PathLike[str],
    tool: str,
    reference: str | None = None,
    *,
    skip_invalid: bool = False,
) -> npt.NDArray[np.float64]:
    """The poses of ``tool`` in a session log, shape (n, 4, 4).

    Parameters
    ----------
    log : str or PathLike
        A session log written by ``seldinger navigate record``.
    tool : str
        Device (TRANSFORM/POSITION) or TDATA tool name.
    reference : str, optional
        A reference tool: the poses are then ``ReferenceToTracker⁻¹ · ToolToTracker``,
        paired by timestamp.
    skip_invalid : bool
        Skip malformed lines instead of refusing the log.

    Raises
    ------
    SeldingerIOError
        If the log does not exist.
    SessionLogError, BadInputError
        If the log is malformed, the tool is absent or no reference pose pairs up.
    """
    path = Path(log)
    if not path.is_file():
        raise MissingFileError(
            f"the log {path} does not exist; record one with `seldinger navigate record`."
        )
    records = read_session_log(path, skip_invalid=skip_invalid).records
    times, poses = pose_series(records, tool)
    if reference is None:
        return poses
    ref_times, ref_poses = pose_series(records, reference)
    by_time = {round(float(t), 6): m for t, m in zip(ref_times, ref_poses, strict=True)}
    paired = [
        (by_time[round(float(t), 6)], m)
        for t, m in zip(times, poses, strict=True)
        if round(float(t), 6) in by_time
    ]
    if not paired:
        raise BadInputError(
            f"{path}: no pose of {reference!r} shares a timestamp with one of {tool!r}; record "
            "both tools from the same tracker, or leave out the reference."
        )
    return np.stack([invert_rigid(ref) @ m for ref, m in paired])
