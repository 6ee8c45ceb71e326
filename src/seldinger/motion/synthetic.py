"""A smooth analytic breathing motion with sliding at the chest wall (known truth for tests).

Used to check registration on a real CT (issue 17's acceptance) and to simulate a second
phase from one CT: the FIXED phase is made as ``warp(ct, field)`` so that the field is,
by construction, the FIXED → MOVING displacement that registration must recover.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from seldinger.imaging import VolumeGeometry
from seldinger.motion.errors import MotionError
from seldinger.motion.field import DisplacementField

__all__ = ["breathing_field"]


def _closed_slice(
    lung: npt.NDArray[np.bool_], spacing_mm: npt.NDArray[np.float64], radius_mm: float
) -> npt.NDArray[np.bool_]:
    """Morphological closing by a disk (exact, by distance transforms) with holes filled."""
    if not lung.any():
        return lung
    pad = int(np.ceil(radius_mm / spacing_mm.min())) + 1
    padded = np.pad(lung, pad)
    grown = ndimage.distance_transform_edt(~padded, sampling=spacing_mm) <= radius_mm
    closed = ndimage.distance_transform_edt(grown, sampling=spacing_mm) > radius_mm
    return np.asarray(ndimage.binary_fill_holes(closed[pad:-pad, pad:-pad] | lung))


def breathing_field(
    geometry: VolumeGeometry,
    lungs: npt.NDArray[np.bool_],
    si_amplitude_mm: float = 15.0,
    ap_amplitude_mm: float = 5.0,
    chest_wall_closing_mm: float = 25.0,
    sliding_width_mm: float = 4.0,
) -> DisplacementField:
    """FIXED → MOVING displacement of an expiration → inspiration breath (LPS mm).

    Inside the thoracic cavity (the lungs and what lies between them, closed per axial
    slice with a disk of ``chest_wall_closing_mm``; below the widest slice it does not
    narrow and goes on caudally, so that the liver and diaphragm move with the lung
    bases) the tissue moves

    - inferiorly by ``si_amplitude_mm`` · w(z) (the diaphragm descends), with
      w = (z_top − z) / (z_top − z_base) clipped to [0, 1]: full at the lung base,
      fading linearly to 0 at the apex;
    - anteriorly by ``ap_amplitude_mm`` · w(z) · a(y), a = 1 at the most anterior lung
      voxel, 0 at the most posterior (the anterior chest expands, the back stays).

    Outside the cavity (chest wall, ribs, spine, skin) nothing moves. The step between the
    two is smoothed by a Gaussian of σ = ``sliding_width_mm`` in-plane (2σ along z), so the
    lungs slide along a still chest wall without the field folding.

    Parameters
    ----------
    geometry : VolumeGeometry
        The grid of the CT (axis-aligned LPS order expected: ``reorient(ct, "LPS")``).
    lungs : ndarray of bool, shape (I, J, K)
        Both lungs on that grid.

    Returns
    -------
    DisplacementField
        On ``geometry``; float32.
    """
    lungs = np.asarray(lungs, dtype=bool)
    if lungs.shape != geometry.shape or not lungs.any():
        raise MotionError(
            f"lungs must be a non-empty mask of shape {geometry.shape}; got shape {lungs.shape}."
        )
    if geometry.orientation != "LPS":
        raise MotionError(
            f"breathing_field needs an LPS-ordered grid; got {geometry.orientation}. Reorient "
            "the CT first (seldinger.imaging.reorient(ct, 'LPS'))."
        )
    spacing = np.asarray(geometry.spacing_mm)
    k_slices = np.flatnonzero(lungs.any(axis=(0, 1)))
    k_base, k_top = int(k_slices.min()), int(k_slices.max())
    cavity = np.zeros(geometry.shape, np.float32)
    for k in range(k_base, k_top + 1):
        cavity[:, :, k] = _closed_slice(lungs[:, :, k], spacing[:2], chest_wall_closing_mm)
    # Below the widest slice the cavity does not narrow (the chest wall is about a cylinder
    # there, and the liver under the diaphragm moves with the lung bases).
    widest = int(np.argmax(cavity.sum(axis=(0, 1))))
    for k in range(widest - 1, -1, -1):
        cavity[:, :, k] = np.maximum(cavity[:, :, k], cavity[:, :, k + 1])
    sigma = (
        sliding_width_mm / spacing[0],
        sliding_width_mm / spacing[1],
        2 * sliding_width_mm / spacing[2],
    )
    inside = ndimage.gaussian_filter(cavity, sigma, mode="nearest")

    k_index = np.arange(geometry.shape[2], dtype=np.float64)
    w = np.clip((k_top - k_index) / max(k_top - k_base, 1), 0.0, 1.0)
    j_lung = np.flatnonzero(lungs.any(axis=(0, 2)))
    y_of_j = geometry.index_to_lps(np.stack([np.zeros_like(j_lung), j_lung, 0 * j_lung], -1))[:, 1]
    j = np.arange(geometry.shape[1])
    y = geometry.index_to_lps(np.stack([np.zeros_like(j), j, 0 * j], -1))[:, 1]
    a = np.clip((y_of_j.max() - y) / max(np.ptp(y_of_j), 1.0), 0.0, 1.0)

    vectors = np.zeros((*geometry.shape, 3), np.float32)
    vectors[..., 2] = -si_amplitude_mm * inside * w[None, None, :].astype(np.float32)
    vectors[..., 1] = -ap_amplitude_mm * inside * (a[None, :, None] * w[None, None, :])
    return DisplacementField(geometry, vectors)
