"""Body: everything inside the skin, with the table, pads, blankets and cables removed."""

from __future__ import annotations

from scipy import ndimage as ndi

from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.morphology import (
    BoolArray,
    ellipsoid,
    fill_holes_per_slice,
    largest_component,
    repeat_in_plane,
)
from seldinger.imaging import Volume

__all__ = ["BODY_THRESHOLD_HU", "segment_body"]

#: Soft tissue and fat (> -150 HU) stay above it; foam pads, blankets and the thin air gap
#: under the back fall below, so a pad separates from the skin (seen on lidc-idri-0001,
#: where -500 HU bridged the pad to the back).
BODY_THRESHOLD_HU = -300.0

# Opening radius that detaches ECG leads, tubes and pad contacts (a few mm thick).
_OPENING_MM = 3.0
# Work at about this in-plane spacing: the opening and the 3-D labelling dominate the cost.
_COARSE_MM = 1.4


def segment_body(ct: Volume) -> BoolArray:
    """Segment the patient's body (skin surface and everything inside it).

    Threshold at :data:`BODY_THRESHOLD_HU`, an in-plane opening of 3 mm on a grid coarsened
    to about 1.4 mm in-plane (cables and table contacts break), the largest 3-D component,
    dilated back and limited to the threshold at full resolution, holes filled slice by slice
    (lungs, airways and bowel gas are inside the body).

    Parameters
    ----------
    ct : Volume
        CT in HU, LPS-ordered (see :func:`seldinger.anatomy.checks.require_canonical`).

    Returns
    -------
    ndarray of bool, the CT's shape.
    """
    require_canonical(ct)
    a = ct.array
    dense = a > BODY_THRESHOLD_HU
    step = [max(1, round(_COARSE_MM / s)) for s in ct.spacing_mm[:2]]
    coarse = dense[:: step[0], :: step[1], :]
    coarse_spacing = (ct.spacing_mm[0] * step[0], ct.spacing_mm[1] * step[1], ct.spacing_mm[2])
    element = ellipsoid(_OPENING_MM, coarse_spacing, in_plane=True)
    core = largest_component(ndi.binary_opening(coarse, element))
    # Grow back what the opening shaved off the skin (one element, in-plane; a pad further than
    # 3 mm from the opened body stays out) and go back to
    # full resolution; the threshold at full resolution restores the exact skin edge.
    core = ndi.binary_dilation(core, element)
    full = repeat_in_plane(core, step, a.shape)
    # The coarse core is one component; at full resolution the threshold only trims its
    # edge, so no second labelling is needed (it cost a third of the time).
    return fill_holes_per_slice(dense & full)
