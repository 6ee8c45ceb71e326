"""Tests of seldinger.export: three-view rendering and the HTML report folder."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import matplotlib.image
import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.colors import to_rgb

import seldinger
from seldinger.export import (
    MASK_COLOURS,
    WINDOW_PRESETS_HU,
    RenderedViews,
    Report,
    render_views,
    window_hu,
)
from seldinger.imaging import Volume, reorient

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CASE_DIR = DATA_DIR / "lidc-idri-0001"
needs_shared_data = pytest.mark.skipif(
    not (CASE_DIR / "ct.nii.gz").is_file(), reason="../shared/data (LIDC-IDRI-0001) is absent"
)

#: Nodule centroid of LIDC-IDRI-0001 (consensus mask), LPS mm; left lung, posterior.
NODULE_CENTROID_LPS_MM = (56.4, 86.3, -116.0)
LIDC_ATTRIBUTION = (
    "CT: LIDC-IDRI-0001, The Cancer Imaging Archive (TCIA), licensed CC BY 3.0. "
    "Armato SG III et al., Med Phys 2011;38:915-931."
)


# --- helpers ----------------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _overlay_columns(
    rendered: RenderedViews, panel: str, colour: str, tol: float = 0.1
) -> npt.NDArray[np.float64]:
    """Columns (0 = left edge, 1 = right edge of the panel) of pixels drawn in ``colour``."""
    rgb = matplotlib.image.imread(io.BytesIO(rendered.png), format="png")[..., :3]
    left, top, right, bottom = rendered.panels_px[panel]
    crop = rgb[top:bottom, left:right]
    hit = np.all(np.abs(crop - np.asarray(to_rgb(colour))) < tol, axis=-1)
    _, cols = np.nonzero(hit)
    return cols / (right - left)


def _read_nifti_lps(path: Path) -> Volume:
    """Read a NIfTI file as an LPS Volume (test-only reader: RAS → LPS flips x and y)."""
    nibabel = pytest.importorskip("nibabel")
    image = nibabel.load(path)
    return Volume(np.asarray(image.dataobj), np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine)


def _phantom() -> tuple[Volume, Volume, tuple[float, float, float]]:
    """Air box with a soft-tissue ball in the patient's left-anterior-superior part.

    Returns the CT (HU, stored "RAI" so array order ≠ display order), the ball's
    mask on a different, coarser grid, and the ball centre (LPS mm).
    """
    shape = (60, 50, 20)
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [-30.0, -25.0, -30.0]  # centre of the box at LPS ≈ (0, 0, 0)
    ct = Volume(np.full(shape, -1000, dtype=np.int16), affine)
    centre_lps_mm = (15.0, -10.0, 9.0)  # left, anterior, superior
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    ball = np.linalg.norm(ct.index_to_lps(ijk) - centre_lps_mm, axis=-1) <= 6.0
    ct = ct.with_array(np.where(ball, 40, -1000).astype(np.int16))
    mask_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask_affine[:3, 3] = [0.0, -24.0, -6.0]
    mask_grid = Volume(np.zeros((15, 15, 15), np.uint8), mask_affine)
    ijk_m = np.stack(np.meshgrid(*[np.arange(15)] * 3, indexing="ij"), axis=-1)
    mask = np.linalg.norm(mask_grid.index_to_lps(ijk_m) - centre_lps_mm, axis=-1) <= 6.0
    return reorient(ct, "RAI"), mask_grid.with_array(mask.astype(np.uint8)), centre_lps_mm


# --- windows --------------------------------------------------------------------------


def test_window_presets() -> None:
    assert WINDOW_PRESETS_HU["lung"] == (-600, 1500)
    assert WINDOW_PRESETS_HU["mediastinum"] == (40, 400)
    assert window_hu("bone") == (400.0, 1800.0)
    assert window_hu((50, 350)) == (50.0, 350.0)
    with pytest.raises(ValueError, match=r"window must be one of .*'lung'.*got 'lungs'"):
        window_hu("lungs")
    with pytest.raises(ValueError, match="window width must be positive"):
        window_hu((40, 0))


# --- views on a phantom (always runs) -------------------------------------------------


def test_views_show_patient_left_on_image_right_and_superior_up(tmp_path: Path) -> None:
    ct, mask, centre_lps_mm = _phantom()
    rendered = render_views(
        ct,
        centre_lps_mm,
        masks={"ball": mask},
        points={"centre": centre_lps_mm},
        window="soft_tissue",
        out_png=tmp_path / "views.png",
        size_px=(900, 400),
    )
    assert (tmp_path / "views.png").read_bytes() == rendered.png
    assert _png_size(rendered.png) == rendered.size_px == (900, 400)
    colour = MASK_COLOURS[0]
    # The ball is at the patient's left (+x) and anterior (-y): axial image right, top.
    axial = _overlay_columns(rendered, "axial", colour)
    assert axial.size > 0 and axial.min() > 0.5
    coronal = _overlay_columns(rendered, "coronal", colour)
    assert coronal.size > 0 and coronal.min() > 0.5
    # Sagittal: anterior on the image left.
    sagittal = _overlay_columns(rendered, "sagittal", colour)
    assert sagittal.size > 0 and sagittal.max() < 0.5


def test_views_keep_physical_aspect_ratio() -> None:
    ct, _, centre_lps_mm = _phantom()
    rendered = render_views(ct, centre_lps_mm, size_px=(1200, 500))
    # Coronal field of view: 60 mm (x) by 20 slices × 3 mm = 60 mm (z): square on screen.
    left, top, right, bottom = rendered.panels_px["coronal"]
    assert abs((right - left) - (bottom - top)) <= 2
    # Axial: 60 mm by 50 mm.
    left, top, right, bottom = rendered.panels_px["axial"]
    assert (right - left) / (bottom - top) == pytest.approx(60 / 50, rel=0.02)


def test_views_reject_point_outside_ct() -> None:
    ct, _, _ = _phantom()
    with pytest.raises(ValueError, match=r"point_lps_mm \[500.0, 0.0, 0.0\] lies outside the CT"):
        render_views(ct, (500.0, 0.0, 0.0))


def test_views_reject_malformed_points() -> None:
    ct, _, centre_lps_mm = _phantom()
    with pytest.raises(ValueError, match=r"points\['tip'\] must be three finite LPS"):
        render_views(ct, centre_lps_mm, points={"tip": (1.0, 2.0)})


def test_views_refuse_to_overwrite_png(tmp_path: Path) -> None:
    ct, _, centre_lps_mm = _phantom()
    out = tmp_path / "views.png"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="force"):
        render_views(ct, centre_lps_mm, out_png=out)
    assert out.read_bytes() == b"keep"


# --- views on the real CT -------------------------------------------------------------


@needs_shared_data
def test_views_of_lidc_nodule_in_left_lung(tmp_path: Path) -> None:
    ct = _read_nifti_lps(CASE_DIR / "ct.nii.gz")
    nodule = _read_nifti_lps(CASE_DIR / "nodule_consensus.nii.gz")
    # Crop the mask so it sits on another grid than the CT (exercises resampling).
    centre = np.asarray(NODULE_CENTROID_LPS_MM)
    nodule = nodule.crop_lps(centre - 30.0, centre + 30.0)
    out = tmp_path / "nodule.png"
    rendered = render_views(
        ct,
        NODULE_CENTROID_LPS_MM,
        masks={"nodule (consensus)": nodule},
        window="lung",
        out_png=out,
        attribution=LIDC_ATTRIBUTION,
    )
    assert out.is_file()
    assert _png_size(out.read_bytes()) == (1500, 620)
    columns = _overlay_columns(rendered, "axial", MASK_COLOURS[0])
    # The nodule is in the patient's LEFT lung: radiological display puts it on the
    # image's RIGHT half. A left/right flip would put it on the left half.
    assert columns.size > 20
    assert columns.min() > 0.5


# --- the report folder ----------------------------------------------------------------


def _small_png() -> bytes:
    ct, _, centre_lps_mm = _phantom()
    return render_views(ct, centre_lps_mm, size_px=(300, 150)).png


def test_report_writes_self_contained_folder(tmp_path: Path) -> None:
    png = _small_png()
    (tmp_path / "given.png").write_bytes(png)
    report = Report("Plan <case 1>", subtitle="LIDC-IDRI-0001 & friends")
    report.add_section("Target", "First paragraph.\n\nSecond <b>paragraph</b>.")
    report.add_image(png, caption="Views through the nodule")
    report.add_image(tmp_path / "given.png", caption="From a file")
    report.add_table(
        {"volume_ml": 7.7612, "count": 3, "centroid_lps_mm": (56.4, 86.3, -116.0)}, caption="Target"
    )
    report.add_table(
        [{"name": "a", "length_mm": 48.25}, {"name": "b", "risk": None}], caption="Trajectories"
    )
    index = report.write(tmp_path / "report")

    assert index == tmp_path / "report" / "index.html"
    assert sorted(p.name for p in index.parent.iterdir()) == [
        "image_01.png",
        "image_02.png",
        "index.html",
    ]
    assert (index.parent / "image_01.png").read_bytes() == png
    page = index.read_text(encoding="utf-8")
    assert '<img src="image_01.png"' in page and '<img src="image_02.png"' in page
    assert str(tmp_path) not in page  # relative links only
    assert "<title>Plan &lt;case 1&gt;</title>" in page
    assert "LIDC-IDRI-0001 &amp; friends" in page
    assert "<p>Second &lt;b&gt;paragraph&lt;/b&gt;.</p>" in page
    assert "<b>" not in page
    assert '<td class="num">7.761</td>' in page
    assert "<td>(56.4, 86.3, -116)</td>" in page
    assert "<th>name</th>\n<th>length_mm</th>\n<th>risk</th>" in page
    assert (
        f"Seldinger {seldinger.__version__} — research software, not a certified medical device"
        in page
    )


def test_report_rejects_non_png() -> None:
    with pytest.raises(ValueError, match="image must be a PNG"):
        Report("r").add_image(b"GIF89a....", caption="not a png")
    with pytest.raises(TypeError, match="rows\\[1\\] must be a dict"):
        Report("r").add_table([{"a": 1}, 2], caption="bad")  # type: ignore[list-item]


def test_report_refuses_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "report"
    Report("first").write(out)
    with pytest.raises(FileExistsError, match="force"):
        Report("second").write(out)
    assert "first" in (out / "index.html").read_text(encoding="utf-8")
    Report("second").write(out, force=True)
    assert "second" in (out / "index.html").read_text(encoding="utf-8")


def test_report_never_replaces_a_foreign_folder(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a Seldinger report folder"):
        Report("r").write(precious, force=True)
    assert (precious / "thesis.tex").read_text(encoding="utf-8") == "years of work"


def test_the_risk_sentence_names_the_liver_rule_only_for_a_liver_target() -> None:
    from seldinger.export.report_sections import risk_score_sentence

    lung = risk_score_sentence(["fissure_crossed", "length", "rib_margin"])
    assert "Huo et al." in lung and "fissure crossed OR 3.75" in lung
    assert "liver" not in lung
    liver = risk_score_sentence(["length", "liver_capsule"])
    assert "practice rule" in liver and "10 mm of normal liver" in liver
