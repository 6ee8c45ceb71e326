"""What every image reader checks before it trusts a header: size budgets and clean errors.

A header states how many voxels follow; a damaged one can claim terabytes. The readers
compare that claim with the bytes the file really holds, and with :data:`MAX_VOXELS`,
*before* anything is allocated (see ``docs/robustness.md``). This module holds the shared
limit, the one-line reason of a foreign exception and the construction of the final
:class:`~seldinger.imaging.Volume`, whose errors are turned into an
:class:`~seldinger.io.errors.ImageReadError` naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.imaging import GeometryError, Volume
from seldinger.io.errors import ImageReadError

__all__ = [
    "MAX_ABS_POSITION_MM",
    "MAX_SPACING_MM",
    "MAX_VOXELS",
    "REASON_CHARS",
    "build_volume",
    "check_voxel_count",
    "reason",
]

#: Largest image any reader accepts, in voxels: 2**31, e.g. 2048 × 2048 × 512 or
#: 1024 × 1024 × 2048 (4 GiB as int16). A whole-body CT at 0.5 mm is about a quarter of
#: this; a larger claim comes from a damaged header, not from a scanner.
MAX_VOXELS = 2**31

#: Plausibility bounds of geometry values in any header: a position beyond a kilometre or
#: a voxel larger than a metre is damage, and refusing it keeps the arithmetic finite.
MAX_ABS_POSITION_MM = 1e6
MAX_SPACING_MM = 1e3

#: A foreign error's text is cut to this many characters in our one-line messages.
REASON_CHARS = 160


def reason(err: BaseException) -> str:
    """One line saying what a foreign error said; its type name when it said nothing.

    Examples
    --------
    >>> reason(MemoryError())
    'MemoryError'
    >>> reason(ValueError("could not convert\\nstring to float: 'x'"))
    "could not convert string to float: 'x'"
    """
    text = " ".join(str(err).split())
    if not text:
        return type(err).__name__
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def check_voxel_count(shape: Sequence[int], where: str) -> int:
    """Number of voxels of ``shape``; ImageReadError if any size is < 1 or the total exceeds
    :data:`MAX_VOXELS`. Computed with Python integers, so it cannot overflow."""
    sizes = [int(n) for n in shape]
    if any(n < 1 for n in sizes):
        raise ImageReadError(
            f"{where}: the header declares an image of {' x '.join(map(str, sizes))} voxels; "
            "every size must be at least 1. The header is damaged; export the image again."
        )
    total = prod(sizes)
    if total > MAX_VOXELS:
        raise ImageReadError(
            f"{where}: the header declares {' x '.join(map(str, sizes))} = {total} voxels, more "
            f"than the {MAX_VOXELS} this reader accepts. The header is damaged, or the image is "
            "not a CT; export the CT again (or crop it)."
        )
    return total


def build_volume(array: npt.NDArray[Any], affine: npt.NDArray[np.float64], where: str) -> Volume:
    """A :class:`Volume`, with its construction errors reworded to name the file.

    Raises
    ------
    ImageReadError
        Empty or non-numeric voxels, NaN or infinite values, or an invalid affine.
    """
    if array.dtype.kind not in "biuf":
        raise ImageReadError(
            f"{where}: voxels of type {array.dtype} are not scalar numbers (a colour or complex "
            "image?). Seldinger reads scalar CT values; export the CT as integers or floats."
        )
    if array.dtype.kind == "f":
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ImageReadError(
                f"{where}: {bad} of {array.size} voxels are NaN or infinite; a CT holds finite "
                "HU. The file is damaged, or replace those voxels (e.g. with -1024) and save it "
                "again."
            )
    try:
        return Volume(array, affine)
    except GeometryError as err:
        raise ImageReadError(
            f"{where}: invalid geometry ({reason(err)}) Fix the header's orientation and "
            "spacing, or resample the image onto an orthogonal grid."
        ) from err
    except (BadInputError, TypeError) as err:
        raise ImageReadError(f"{where}: the voxels cannot be used ({reason(err)})") from err
