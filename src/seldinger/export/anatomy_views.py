"""The anatomy pictures of a report: three views through the target in the window that suits
it first (lung for a lung target, soft tissue for a liver or mediastinal one), then the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.export.views import picture_window, render_views
from seldinger.imaging import Volume

__all__ = ["ANATOMY_WINDOW_MASKS", "anatomy_figure_name", "render_anatomy_views"]

#: Structures outlined in each window's picture (those the anatomy has and the slices cut).
ANATOMY_WINDOW_MASKS: dict[str, tuple[str, ...]] = {
    "lung": ("lung_left", "lung_right", "airways", "vessels", "emphysema"),
    "soft_tissue": ("bones", "mediastinum", "liver", "vessels"),
}


def anatomy_figure_name(window: str) -> str:
    """File name of the anatomy picture drawn in ``window`` (``anatomy_lung.png`` …)."""
    return f"anatomy_{window}.png"


def render_anatomy_views(
    ct: Volume,
    anatomy: Mapping[str, Volume] | Any | None,
    lesion: Volume | None,
    centre_lps_mm: npt.ArrayLike,
    folder: Path,
    points: Mapping[str, npt.ArrayLike] | None = None,
) -> dict[str, Path]:
    """Draw the anatomy through the target, the target's own window first.

    :func:`~seldinger.export.views.picture_window` picks the first window from the lesion's
    surroundings (else the HU around ``centre_lps_mm``); the second picture is the other
    window. Each outlines :data:`ANATOMY_WINDOW_MASKS` of its window that the anatomy has,
    and the lesion; the legend names only those the slices cut. Titles name the window.

    Returns
    -------
    dict of str to Path
        File name to PNG, in display order (insertion order).
    """
    centre = np.asarray(centre_lps_mm, dtype=np.float64)
    first = picture_window(ct, lesion, centre)
    order = [first, *(w for w in ANATOMY_WINDOW_MASKS if w != first)]
    with_lesion = {} if lesion is None else {"lesion": lesion}
    figures: dict[str, Path] = {}
    for window in order:
        names = ANATOMY_WINDOW_MASKS[window]
        masks = {} if anatomy is None else {n: anatomy[n] for n in names if n in anatomy}
        png = folder / anatomy_figure_name(window)
        render_views(
            ct,
            centre,
            masks={**masks, **with_lesion},
            points=points,
            window=window,
            out_png=png,
            title=f"Anatomy through the target ({window.replace('_', ' ')} window)",
            outlined=("lesion",),
            force=True,
        )
        figures[png.name] = png
    return figures
