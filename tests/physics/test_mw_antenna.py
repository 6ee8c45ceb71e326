"""Verification of the axisymmetric Maxwell solver of MW antennas (seldinger.physics.mw_antenna)
and of its mapping onto the voxel grid (heat_sources.mw_antenna_heat_w)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.imaging import VolumeGeometry
from seldinger.physics.electrodes import Electrode
from seldinger.physics.heat_sources import attenuation_np_per_m, mw_antenna_heat_w
from seldinger.physics.mw_antenna import (
    LIVER_2450MHZ,
    SAITO_SLOT_ANTENNA,
    AntennaSar,
    CoaxialSlotAntenna,
    antenna_sar,
    coax_line_mesh,
    complex_wavenumber_per_m,
    solve_axisymmetric,
)

F_HZ = 2.45e9
CHOKED = CoaxialSlotAntenna(name="saito-slot-choked", choke_mm=(15.0, 19.0))


def _line(sar: AntennaSar, r_mm: float, z_mm: np.ndarray) -> np.ndarray:
    points = np.stack([np.full(z_mm.size, r_mm), z_mm], axis=1)
    return np.asarray(sar.interpolator()(points))


def test_matched_coax_line_carries_a_pure_tem_wave() -> None:
    mesh = coax_line_mesh(0.145, 0.47, 40.0, 2.03)
    solution = solve_axisymmetric(mesh, F_HZ)
    r_h = np.abs(solution.h_field) * mesh.r_m[:, None]
    assert abs(solution.s11) < 1e-3  # no reflection from the matched end
    assert r_h.min() / r_h.max() > 0.999  # |H_φ| ∝ 1/r, constant along the lossless line
    assert solution.leaving_w == pytest.approx(1.0, abs=1e-3)  # all of 1 W passes through
    # the incident amplitude gives 1 W: P = π Z |A|² ln(b/a)
    z_ohm = math.sqrt(4e-7 * math.pi / (8.8541878128e-12 * 2.03))
    assert math.pi * z_ohm * float(r_h.mean()) ** 2 * math.log(0.47 / 0.145) == pytest.approx(
        1.0, rel=1e-3
    )


def test_lossy_line_attenuates_as_the_analytic_complex_wavenumber() -> None:
    length_mm = 30.0
    mesh = coax_line_mesh(0.145, 0.47, length_mm, 43.03, 1.69, cell_z_mm=0.25)
    solution = solve_axisymmetric(mesh, F_HZ)
    alpha = attenuation_np_per_m(F_HZ, 43.03, 1.69)
    assert -complex_wavenumber_per_m(F_HZ, 43.03, 1.69).imag == pytest.approx(alpha, rel=1e-9)
    magnitude = np.abs(solution.h_field[mesh.r_m.size // 2])
    slope = np.polyfit(mesh.z_m, np.log(magnitude), 1)[0]
    assert -slope == pytest.approx(alpha, rel=0.02)
    transmitted = solution.leaving_w / (1.0 - abs(solution.s11) ** 2)
    assert transmitted == pytest.approx(math.exp(-2 * alpha * length_mm / 1e3), rel=0.02)
    assert abs(solution.balance_error) < 1e-3


@pytest.mark.parametrize("antenna", [SAITO_SLOT_ANTENNA, CHOKED], ids=["slot", "choked"])
def test_power_balance_of_the_antennas(antenna: CoaxialSlotAntenna) -> None:
    sar = antenna_sar(antenna, LIVER_2450MHZ)
    reflected = abs(sar.s11) ** 2
    assert 0 < sar.absorbed_fraction < 1 - reflected
    assert abs(sar.balance_error) < 0.01  # incident = reflected + absorbed + leaving
    assert sar.solve_s < 5.0


def test_slot_antenna_in_liver_has_the_published_pattern_features() -> None:
    sar = antenna_sar(SAITO_SLOT_ANTENNA, LIVER_2450MHZ)
    slot_z = -SAITO_SLOT_ANTENNA.slot_centre_from_tip_mm
    z = np.linspace(-40.0, 8.0, 481)
    along = _line(sar, 2.0, z)
    # the SAR peaks at the slot (COMSOL model / Saito et al.: hot spot around the slot)
    assert abs(z[np.argmax(along)] - slot_z) < 1.5
    # almost nothing beyond the tip, and the unchoked antenna heats back along its shaft
    assert _line(sar, 2.0, np.array([6.0]))[0] < 0.05 * along.max()
    assert _line(sar, 2.0, np.array([-20.0]))[0] > 0.2 * along.max()
    # radial fall-off near the antenna: faster than 1/r (near field) times e^{−2αr}
    radial = sar.interpolator()([[2.0, slot_z], [5.0, slot_z], [10.0, slot_z]])
    assert radial[0] > radial[1] > radial[2] > 0
    assert radial[1] / radial[0] < (2.0 / 5.0) * math.exp(-2 * 48.0 * 3e-3)
    # a useful radiator: most of the power leaves the feed (|S11| below −10 dB)
    assert -25.0 < sar.s11_db < -10.0
    # the SAR at 10 W input 2 mm from the slot is of the order of 10³ W/kg (COMSOL figure)
    peak_sar = sar.sar_w_per_kg(1079.0, 10.0)
    assert 1e3 < float(np.max(peak_sar[np.searchsorted(sar.r_mm, 2.0)])) < 2e4


def test_the_choke_suppresses_the_backward_heating() -> None:
    plain = antenna_sar(SAITO_SLOT_ANTENNA, LIVER_2450MHZ)
    choked = antenna_sar(CHOKED, LIVER_2450MHZ)
    z = np.linspace(-40.0, 8.0, 481)
    tail = z < -25.0
    plain_line, choked_line = _line(plain, 2.0, z), _line(choked, 2.0, z)
    assert choked_line[tail].max() / choked_line.max() < 0.05
    assert plain_line[tail].max() / plain_line.max() > 0.1


@pytest.mark.parametrize("antenna", [SAITO_SLOT_ANTENNA, CHOKED], ids=["slot", "choked"])
def test_mesh_convergence(antenna: CoaxialSlotAntenna) -> None:
    coarse = antenna_sar(antenna, LIVER_2450MHZ, 1.0)
    fine = antenna_sar(antenna, LIVER_2450MHZ, 2.0)
    assert abs(fine.s11 - coarse.s11) / abs(fine.s11) < 0.03
    assert fine.absorbed_fraction == pytest.approx(coarse.absorbed_fraction, rel=0.01)
    slot_z = -antenna.slot_centre_from_tip_mm
    points = [[2.0, slot_z], [5.0, slot_z], [3.0, slot_z - 4.0], [3.0, 0.0]]
    q_coarse, q_fine = coarse.interpolator()(points), fine.interpolator()(points)
    np.testing.assert_allclose(q_coarse, q_fine, rtol=0.03)


def test_antenna_design_is_validated() -> None:
    with pytest.raises(BadInputError, match="radii"):
        CoaxialSlotAntenna(inner_radius_mm=0.5)
    with pytest.raises(BadInputError, match="choke"):
        CoaxialSlotAntenna(choke_mm=(10.0, 19.0), choke_radii_mm=(0.5, 0.8))
    with pytest.raises(BadInputError, match="slots"):
        CoaxialSlotAntenna(slots_mm=())
    with pytest.raises(BadInputError, match="conductivity"):
        antenna_sar(SAITO_SLOT_ANTENNA, LIVER_2450MHZ.__class__(43.0, 0.0))


def test_heat_on_the_voxel_grid_sums_to_the_power_and_peaks_at_the_slot() -> None:
    geometry = VolumeGeometry.from_spacing((41, 41, 61), (1.0, 1.0, 1.0), (-20.0, -20.0, -40.0))
    antenna = Electrode((0.0, 0.0, 10.0), (0.0, 0.0, 1.0), 40.0, 0.9)
    heat = mw_antenna_heat_w(geometry, antenna, 30.0)
    assert heat.sum() == pytest.approx(30.0, rel=1e-9)
    assert (heat >= 0).all()
    peak = geometry.index_to_lps(np.argwhere(heat == heat.max()))
    slot_z = 10.0 - SAITO_SLOT_ANTENNA.slot_centre_from_tip_mm
    assert np.abs(peak[:, 2] - slot_z).min() <= 1.5
    assert np.abs(peak[:, :2]).max() <= 1.0  # on or next to the axis
    # rotational symmetry about the antenna (the grid is symmetric about it)
    np.testing.assert_allclose(heat, heat[::-1, :, :], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(heat, heat.transpose(1, 0, 2), rtol=1e-9, atol=1e-15)
    with pytest.raises(BadInputError, match="power_w"):
        mw_antenna_heat_w(geometry, antenna, 0.0)
    far = Electrode((500.0, 0.0, 0.0), (0.0, 0.0, 1.0), 40.0, 0.9)
    with pytest.raises(BadInputError, match="outside the grid"):
        mw_antenna_heat_w(geometry, far, 10.0)


def test_catalogue_mw_devices_name_their_antenna_designs() -> None:
    from seldinger.physics.thermal_devices import load_thermal_devices

    models = load_thermal_devices()
    emprint, neuwave = models["emprint"].antenna, models["neuwave-kidney"].antenna
    assert emprint is not None and emprint.choke_mm is not None
    assert neuwave == SAITO_SLOT_ANTENNA  # the published slot antenna as it is
    assert hash(emprint) != hash(neuwave)  # hashable: the solutions are cached per design
    sar = antenna_sar(emprint, LIVER_2450MHZ)
    assert sar.s11_db < -10.0 and abs(sar.balance_error) < 0.01
