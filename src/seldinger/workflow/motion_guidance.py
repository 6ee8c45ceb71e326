"""Motion-compensated live guidance (``seldinger navigate guide --motion MODEL``).

The correspondence model travels as a small JSON file (:data:`MODEL_FORMAT`), written by
``navigate simulate --motion-si-mm … --write-model`` (or any step that fits one); the
guide reads it, checks it, and follows the target it predicts from the chest reference
sensor (:class:`seldinger.motion.live_guidance.MotionGuide`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from seldinger.errors import BadInputError, MissingFileError, SeldingerIOError
from seldinger.files import atomic_path, check_overwrite
from seldinger.motion.correspondence import CorrespondenceModel, GatingWindow
from seldinger.motion.live_guidance import MotionGuide
from seldinger.workflow.navigation import GuidanceRequest, GuidanceSetup, setup_guidance

__all__ = [
    "MODEL_FORMAT",
    "MotionModelFileError",
    "parse_gate_window",
    "read_motion_model",
    "setup_motion_guidance",
    "write_motion_model",
]

#: ``format`` of a saved correspondence model (with ``version`` and ``model``).
MODEL_FORMAT = "seldinger.correspondence_model"
_MODEL_VERSION = 1
_HOW_TO_MAKE = (
    "write one with `seldinger navigate simulate --plan PLAN --motion-si-mm 15 --write-model "
    "MODEL.json`"
)


class MotionModelFileError(BadInputError):
    """A file given as a correspondence model is not one (or not a readable one)."""


def write_motion_model(
    path: Path, model: CorrespondenceModel, provenance: Mapping[str, Any], force: bool = False
) -> None:
    """Save ``model`` as JSON (:data:`MODEL_FORMAT`), atomically; refuses to overwrite
    without ``force``."""
    check_overwrite(path, force)
    document = {
        "format": MODEL_FORMAT,
        "version": _MODEL_VERSION,
        "model": model.to_dict(),
        "target_motion_mm": model.target_motion_mm,
        "surrogate_amplitude_mm": model.amplitude_mm,
        "provenance": dict(provenance),
    }
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_motion_model(path: Path) -> CorrespondenceModel:
    """The correspondence model saved by :func:`write_motion_model`.

    Raises
    ------
    MissingFileError
        No such file.
    SeldingerIOError
        The file cannot be read.
    MotionModelFileError
        It is not JSON, not a correspondence model, of a newer version, or malformed.
    """
    if not path.is_file():
        raise MissingFileError(f"--motion {path}: no such file; {_HOW_TO_MAKE}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SeldingerIOError(f"--motion {path} cannot be read ({err}).") from err
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise MotionModelFileError(
            f"--motion {path} is not JSON ({err.msg} at line {err.lineno}); it must be a "
            f"correspondence model: {_HOW_TO_MAKE}."
        ) from err
    if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
        raise MotionModelFileError(
            f"--motion {path} is not a correspondence model (its 'format' must be "
            f"{MODEL_FORMAT!r}); {_HOW_TO_MAKE}."
        )
    if document.get("version") != _MODEL_VERSION:
        raise MotionModelFileError(
            f"--motion {path} has version {document.get('version')!r}; this Seldinger reads "
            f"version {_MODEL_VERSION}. Refit the model with this version."
        )
    try:
        return CorrespondenceModel.from_dict(document.get("model") or {})
    except BadInputError as err:
        raise MotionModelFileError(f"--motion {path}: {err}") from err


def parse_gate_window(text: str) -> GatingWindow:
    """``LOW,HIGH`` fractions of the breathing amplitude (0 expiration, 1 inspiration).

    Raises
    ------
    BadInputError
        Not two numbers, or not ``0 ≤ LOW < HIGH ≤ 1``.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        low = high = math.nan
    if not (0.0 <= low < high <= 1.0):
        raise BadInputError(
            f"--gate-window must be LOW,HIGH with 0 <= LOW < HIGH <= 1 (fractions of the "
            f"breathing amplitude, 0 end-expiration, 1 end-inspiration); got {text!r}. "
            "End-expiration gating is 0,0.25."
        )
    return GatingWindow(low, high)


def setup_motion_guidance(
    request: GuidanceRequest, model_path: Path, gate_window: str = "0,0.25"
) -> GuidanceSetup:
    """:func:`setup_guidance`, with a :class:`MotionGuide` following the model's target.

    Raises
    ------
    BadInputError
        A bad window or model file, or a registration relative to the reference sensor
        (the model reads the reference sensor's own motion in the CT frame).
    MissingFileError
        No model file.
    """
    gating = parse_gate_window(gate_window)
    model = read_motion_model(model_path)
    setup = setup_guidance(request, partial(MotionGuide, model=model, gating=gating))
    motion = {
        "model": str(model_path),
        "gate_window": [gating.lower_fraction, gating.upper_fraction],
        "target_motion_mm": model.target_motion_mm,
        "surrogate_amplitude_mm": model.amplitude_mm,
        "residual_rms_mm": model.residual_rms_mm,
        "hysteresis": model.hysteresis,
        "n_phases": model.n_phases,
    }
    info = {**setup.info, "reference": request.reference, "motion": motion}
    return replace(setup, info=info)
