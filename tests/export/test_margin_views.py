"""Margin picture: written whole, refuses to overwrite, nothing left behind on error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seldinger.export.margin_views import margin_colormap, render_margin_map
from seldinger.imaging import Volume
from seldinger.planning.margin import MarginReport, assess_margin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def case() -> tuple[Volume, Volume, MarginReport]:
    spacing = (0.7, 0.7, 2.5)
    shape = (50, 50, 16)
    grid = Volume(np.zeros(shape, bool), np.diag([*spacing, 1.0]))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    lps = grid.index_to_lps(ijk)
    centre = np.array([17.6, 17.3, 19.1])
    tumour = grid.with_array(np.linalg.norm(lps - centre, axis=-1) <= 7.0)
    zone = grid.with_array(np.linalg.norm(lps - centre - (3.0, 0.0, 2.0), axis=-1) <= 9.0)
    exclude = grid.with_array(lps[..., 1] < centre[1] - 10.0)
    return tumour, zone, assess_margin(tumour, zone, exclude=exclude, exclusion_mm=5.0)


def test_writes_a_png(case: tuple[Volume, Volume, MarginReport], tmp_path: Path) -> None:
    tumour, zone, report = case
    out = render_margin_map(tumour, report, tmp_path / "margin.png", zone=zone)
    assert out == tmp_path / "margin.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["margin.png"]


def test_refuses_to_overwrite(case: tuple[Volume, Volume, MarginReport], tmp_path: Path) -> None:
    tumour, _, report = case
    out = tmp_path / "margin.png"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="force=True"):
        render_margin_map(tumour, report, out)
    assert out.read_bytes() == b"keep"
    render_margin_map(tumour, report, out, force=True)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_no_partial_file_on_error(
    case: tuple[Volume, Volume, MarginReport], tmp_path: Path
) -> None:
    tumour, zone, report = case
    affine = zone.affine.copy()
    affine[2, 3] += 2.5
    with pytest.raises(ValueError, match="zone is on another grid"):
        render_margin_map(tumour, report, tmp_path / "m.png", zone=Volume(zone.array, affine))
    assert list(tmp_path.iterdir()) == []


def test_colormap_categories() -> None:
    cmap = margin_colormap((0.0, 5.0), -5.0, 15.0)
    red, amber, green = (cmap((mm + 5.0) / 20.0) for mm in (-1.0, 2.5, 7.0))
    assert red[0] > 0.5 > red[1]  # red
    assert amber[0] > 0.9 and 0.5 < amber[1] < 0.9 and amber[2] < 0.2  # amber
    assert green[1] > green[0] and green[1] > green[2]  # green
