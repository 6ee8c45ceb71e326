"""The lesion figure: three views with the outline, through the lesion, as a PNG."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.anatomy import segment_lesion
from seldinger.export.lesion_figure import lesion_figure
from seldinger.imaging import Volume


def _phantom():
    """Lung (-850 HU) with a 9 mm nodule (35 HU) on a 0.7 x 0.7 x 2.5 mm grid."""
    rng = np.random.default_rng(3)
    shape = (96, 96, 28)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    lps = index * np.array([0.7, 0.7, 2.5])
    centre = np.array([48, 48, 14]) * np.array([0.7, 0.7, 2.5])
    nodule = ((lps - centre) ** 2).sum(-1) <= 9.0**2
    hu = np.where(nodule, 35.0, -850.0) + rng.normal(0.0, 20.0, shape)
    return Volume(np.rint(hu).astype(np.int16), affine), tuple(centre.tolist())


def test_lesion_figure_draws_the_outline(tmp_path):
    ct, centre = _phantom()
    lesion = segment_lesion(ct, centre, body=np.ones(ct.shape, bool))
    out = tmp_path / "lesion.png"
    rendered = lesion_figure(ct, lesion, out)
    assert out.read_bytes() == rendered.png and rendered.png.startswith(b"\x89PNG")
    # Through the lesion: the axial panel shows the outline's red somewhere.
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    left, top, right, bottom = rendered.panels_px["axial"]
    panel = pixels[top:bottom, left:right, :3]
    reddish = (panel[..., 0] > 0.8) & (panel[..., 1] < 0.4) & (panel[..., 2] < 0.4)
    assert reddish.sum() > 50
    with pytest.raises(FileExistsError):
        lesion_figure(ct, lesion, out)
