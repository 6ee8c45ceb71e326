"""Designed stents: watertight, wall >= 1 mm, inside the airway but for the oversize, volume."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from seldinger.stents.design import (
    FIT_TOLERANCE_MM,
    MIN_WALL_MM,
    StentOptions,
    airway_fit,
    design_stent,
)

WALL_MM = 1.5
OVERSIZE = 10.0


@pytest.fixture(scope="module")
def tube_stent(tube_survey):  # type: ignore[no-untyped-def]
    options = StentOptions(wall_mm=WALL_MM, oversize_percent=OVERSIZE,
                           proximal_path_mm=20.0, distal_path_mm=70.0)  # fmt: skip
    return design_stent(tube_survey, options)


def test_tube_stent_volume_is_the_analytic_one(tube_stent) -> None:  # type: ignore[no-untyped-def]
    outer = 9.0 * (1 + OVERSIZE / 100)  # the phantom's healthy radius, oversized
    inner = outer - WALL_MM
    analytic = np.pi * (outer**2 - inner**2) * 50.0
    assert tube_stent.check.volume_mm3 == pytest.approx(analytic, rel=0.02)
    assert tube_stent.mesh.volume_mm3 == pytest.approx(tube_stent.check.volume_mm3, rel=1e-6)


def test_tube_stent_is_printable_and_fits(tube_phantom, tube_survey, tube_stent) -> None:  # type: ignore[no-untyped-def]
    ct, _ = tube_phantom
    check = airway_fit(tube_stent, ct, tube_survey)
    assert check.watertight
    assert check.min_wall_mm >= MIN_WALL_MM
    assert check.min_wall_mm == pytest.approx(WALL_MM, abs=0.05)
    assert check.max_excess_mm is not None and check.max_excess_mm <= FIT_TOLERANCE_MM
    assert check.ok


def test_y_stent_is_printable_and_fits(y_phantom, y_survey) -> None:  # type: ignore[no-untyped-def]
    ct, _ = y_phantom
    design = design_stent(y_survey, StentOptions(kind="y", wall_mm=WALL_MM))
    check = airway_fit(design, ct, y_survey)
    assert check.watertight
    assert check.min_wall_mm >= MIN_WALL_MM
    assert check.max_excess_mm is not None and check.max_excess_mm <= FIT_TOLERANCE_MM
    assert check.ok
    labels = [limb[0] for limb in design.limbs]
    assert labels == ["trachea", "main_bronchus_right", "main_bronchus_left"]


def test_studs_and_the_mould(tube_survey, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import trimesh

    from seldinger.stents.meshes import write_3mf, write_stl
    from seldinger.stents.mould import make_mould

    plain = design_stent(tube_survey, StentOptions(proximal_path_mm=20.0, distal_path_mm=70.0))
    studded = design_stent(
        tube_survey, StentOptions(proximal_path_mm=20.0, distal_path_mm=70.0, studs=True)
    )
    assert studded.check.volume_mm3 > plain.check.volume_mm3
    assert studded.check.watertight and studded.check.min_wall_mm >= MIN_WALL_MM
    mould = make_mould(studded)
    assert mould.watertight
    # cast = cavity - core: the halves and the core leave the stent's volume (and the
    # sprue and vent channels)
    block = np.prod(
        np.ptp(np.concatenate([mould.half_a.vertices_lps_mm, mould.half_b.vertices_lps_mm]), 0)
    )
    parts = mould.half_a.volume_mm3 + mould.half_b.volume_mm3 + mould.core.volume_mm3
    cavity = block - parts - mould.channels_mm3
    assert cavity == pytest.approx(studded.check.volume_mm3, rel=0.01)
    stl = write_stl(studded.mesh, tmp_path / "stent.stl")
    back = trimesh.load(stl)
    assert back.is_watertight
    assert back.volume == pytest.approx(studded.check.volume_mm3, rel=1e-4)
    assert np.allclose(back.bounds, [studded.mesh.vertices_lps_mm.min(0),
                                     studded.mesh.vertices_lps_mm.max(0)], atol=1e-3)  # fmt: skip
    three = write_3mf(studded.mesh, tmp_path / "stent.3mf")
    with zipfile.ZipFile(three) as archive:
        model = archive.read("3D/3dmodel.model").decode()
    assert 'unit="millimeter"' in model
    assert model.count("<triangle ") == len(studded.mesh.faces)


def test_y_stent_fitted_to_the_phantom_ct(y_phantom, y_survey) -> None:  # type: ignore[no-untyped-def]
    """With the CT, the junction is cut to the airway: the crotch is checked like the rest."""
    ct, _ = y_phantom
    mask = ct.with_array(np.asarray(ct.array) < -500)
    design = design_stent(y_survey, StentOptions(kind="y", wall_mm=WALL_MM), ct=ct, lumen=mask)
    assert design.crotch is None
    check = airway_fit(design, ct, y_survey, lumen=mask)
    assert check.watertight and check.min_wall_mm >= MIN_WALL_MM
    assert check.max_excess_mm is not None and check.max_excess_mm <= FIT_TOLERANCE_MM
    solid = design.outer - design.inner
    assert len(solid.decompose()) == 1 and solid.genus() == 2
