"""Needle entry candidates: the skin surface sampled on an isotropic grid."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.errors import BadInputError
from seldinger.imaging import Volume

__all__ = ["SKIN_STEP_MM", "skin_candidates"]

#: Grid step of the skin samples. Neighbouring surface samples of a grid of step h lie h
#: (face) to h*sqrt(2) (edge) apart: 1.4 mm keeps them <= 2 mm apart.
SKIN_STEP_MM = 1.4


def skin_candidates(body: Volume, step_mm: float = SKIN_STEP_MM) -> npt.NDArray[np.float64]:
    """Points on the skin (LPS mm), about ``step_mm`` apart, over the whole body surface.

    The body mask is resampled (linear interpolation of the mask, level 0.5) to an isotropic
    grid of ``step_mm``; its voxels with a face on the outside are the samples. The ends of
    the scan (first and last slices) are cuts, not skin: they give no samples, and nor does
    the body where it touches the edge of the image.

    Parameters
    ----------
    body : Volume
        Body mask, canonical LPS order.
    step_mm : float
        Sampling step.

    Returns
    -------
    ndarray (n, 3)
        LPS positions of the samples (voxel centres of the isotropic grid).
    """
    if not step_mm > 0:
        raise BadInputError(f"step_mm must be > 0; got {step_mm}.")
    mask = np.asarray(body.array, dtype=np.float32)
    spacing = np.asarray(body.spacing_mm, dtype=np.float64)
    in_shape = np.asarray(mask.shape)
    out_shape = np.maximum(np.rint(in_shape * spacing / step_mm).astype(int), 1)
    iso = ndi.zoom(mask, out_shape / in_shape, order=1, mode="nearest", grid_mode=True) > 0.5
    # Scan ends are not skin: repeat the end slices before eroding; the image's in-plane
    # edge counts as inside (border_value=1), so a body cut by the field of view gives no
    # samples along the cut.
    padded = np.pad(iso, ((0, 0), (0, 0), (1, 1)), mode="edge")
    cross = ndi.generate_binary_structure(3, 1)
    inner = ndi.binary_erosion(padded, cross, border_value=1)[:, :, 1:-1]
    surface = iso & ~inner
    out_idx = np.argwhere(surface).astype(np.float64)
    # grid_mode=True: output voxel o covers input [o*f, (o+1)*f) with f = in/out.
    ct_idx = (out_idx + 0.5) * (in_shape / out_shape) - 0.5
    return np.asarray(body.index_to_lps(ct_idx), dtype=np.float64)
