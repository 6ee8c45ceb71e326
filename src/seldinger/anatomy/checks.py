"""Input checks before segmentation: a CT in Hounsfield units, in the canonical orientation."""

from __future__ import annotations

import numpy as np

from seldinger.anatomy.errors import AnatomyError
from seldinger.imaging import Volume

#: Orientation every anatomy algorithm works in: i → patient Left, j → Posterior,
#: k → Superior (the LIDC order). ``segment`` reorients other CTs exactly and back.
CANONICAL = "LPS"

# Air reads -1000 HU; scanners clip at -1024 (or -2048/-3024 outside the reconstruction
# circle). A CT without any voxel below -900 HU contains no air, so it is either not
# calibrated to HU (raw MR, PET, a rescaled picture) or cropped to solid tissue.
_AIR_MAX_HU = -900.0
_MIN_AIR_FRACTION = 0.001


def require_canonical(ct: Volume) -> None:
    """Raise unless ``ct`` is in the canonical LPS index order the algorithms assume."""
    if ct.orientation != CANONICAL:
        raise AnatomyError(
            f"anatomy functions work on {CANONICAL}-ordered CTs; this one is {ct.orientation}. "
            "Use seldinger.anatomy.segment (reorients for you) or "
            f"seldinger.imaging.reorient(ct, {CANONICAL!r})."
        )


def require_hu(ct: Volume, modality: str | None = None) -> None:
    """Raise AnatomyError unless ``ct`` looks like a CT in Hounsfield units.

    Parameters
    ----------
    ct : Volume
        The image.
    modality : str, optional
        DICOM Modality when known; anything but ``CT`` is refused.
    """
    if modality not in (None, "", "CT"):
        raise AnatomyError(
            f"the image is {modality}, not CT: anatomy segmentation needs a CT in Hounsfield "
            "units. Pass the CT series (seldinger info DIR lists the series)."
        )
    a = ct.array
    sample = a[::4, ::4, ::2]
    air = float(np.mean(sample < _AIR_MAX_HU))
    hi = float(np.percentile(sample, 99.9))
    if air < _MIN_AIR_FRACTION or hi > 40000 or float(sample.min()) > -500:
        raise AnatomyError(
            "the image does not look like a CT in Hounsfield units (air at -1000 HU: "
            f"{100 * air:.2f} % of voxels below {_AIR_MAX_HU:.0f} HU, minimum "
            f"{float(sample.min()):.0f}, 99.9th percentile {hi:.0f}). Check that the "
            "RescaleSlope/Intercept were applied (seldinger reads DICOM with them) and that "
            "the image is a CT, not MR or a rendered picture."
        )
