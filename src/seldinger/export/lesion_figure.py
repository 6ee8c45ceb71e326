"""A segmented lesion's outline on the CT: axial, coronal and sagittal views through it."""

from __future__ import annotations

import os

import numpy as np

from seldinger.anatomy import Lesion
from seldinger.export.views import RenderedViews, render_views
from seldinger.imaging import Volume

__all__ = ["LESION_VIEW_MIN_MM", "LESION_VIEW_PAD_MM", "lesion_figure"]

#: The views show the lesion with this much CT around it (mm), and at least this wide.
LESION_VIEW_PAD_MM = 20.0
LESION_VIEW_MIN_MM = 80.0


def lesion_figure(
    ct: Volume,
    lesion: Lesion,
    out_png: str | os.PathLike[str],
    *,
    window: str | tuple[float, float] | None = None,
    attribution: str | None = None,
    force: bool = False,
) -> RenderedViews:
    """Draw a lesion's outline on three views of its CT, through the lesion, to a PNG.

    The views pass through the lesion voxel nearest its centroid (a lobulated lesion's
    centroid can lie outside it), cropped to the lesion with
    :data:`LESION_VIEW_PAD_MM` around it (at least :data:`LESION_VIEW_MIN_MM` wide); the
    seed is marked; the title gives the volume, the diameters and the boundary contrast
    (the confidence figure).

    Parameters
    ----------
    ct : Volume
        The CT the lesion was segmented on (HU).
    lesion : Lesion
        :func:`seldinger.anatomy.segment_lesion`'s result; its mask is on ``ct``'s grid.
    out_png : str or PathLike
        The PNG to write (atomically).
    window : str or (float, float), optional
        Display window; default ``"lung"`` for a lesion in lung, else ``"soft_tissue"``.
    attribution : str, optional
        Caption under the views (e.g. the data's licence).
    force : bool
        Replace an existing ``out_png``.

    Returns
    -------
    RenderedViews
    """
    mask = np.asarray(lesion.mask.array, dtype=bool)
    inside = np.argwhere(mask)
    centre_index = ct.lps_to_index(np.asarray(lesion.centroid_lps_mm))
    nearest = inside[np.argmin(((inside - centre_index) ** 2).sum(axis=1))]
    spacing = np.asarray(ct.spacing_mm)
    middle = (inside.min(axis=0) + inside.max(axis=0)) / 2.0
    half = np.maximum(
        (inside.max(axis=0) - inside.min(axis=0)) / 2.0 + LESION_VIEW_PAD_MM / spacing,
        LESION_VIEW_MIN_MM / 2.0 / spacing,
    )
    lo = np.clip(np.floor(middle - half).astype(int), 0, None)
    hi = np.minimum(np.ceil(middle + half).astype(int) + 1, ct.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    title = (
        f"Lesion ({lesion.tissue.replace('_', ' ')}): {lesion.volume_ml:.1f} mL, RECIST "
        f"{lesion.recist_diameter_mm:.0f} mm, longest {lesion.max_diameter_mm:.0f} mm; "
        f"{lesion.confidence()}"
    )
    return render_views(
        ct.crop_index(box),
        ct.index_to_lps(nearest.astype(np.float64)),
        masks={"lesion": lesion.mask.crop_index(box)},
        points={"seed": lesion.seed_lps_mm},
        window=window or ("lung" if lesion.tissue == "lung" else "soft_tissue"),
        out_png=out_png,
        attribution=attribution,
        title=title,
        size_px=(1500, 640),
        force=force,
    )
