"""Cryo enthalpy method against the two-phase Neumann (Stefan) solution; isotherms of probes."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.physics.cryo import FreezingProperties, neumann_front_mm, simulate_cryo

RHO = 1000.0
FROZEN = (2.0, 1800.0)  # W/m/K, J/kg/K
UNFROZEN = (0.5, 3600.0)
LATENT_J_PER_KG = 250e3


def test_neumann_front_within_3_percent() -> None:
    spacing = 0.5
    n = 160
    shape = (n, 1, 1)
    probe = np.zeros(shape, dtype=bool)
    probe[0] = True  # the cell centred on x = 0 is the cold wall
    sharp = FreezingProperties(LATENT_J_PER_KG, FROZEN[0], FROZEN[1], 0.0, 0.0)
    for time_s in (150.0, 600.0):
        result = simulate_cryo(
            (spacing, 1.0, 1.0),
            np.full(shape, UNFROZEN[0]),
            np.full(shape, RHO),
            np.full(shape, UNFROZEN[1]),
            np.zeros(shape),
            probe,
            -100.0,
            time_s,
            freezing=sharp,
            initial_c=37.0,
        )
        profile = result.temperature_c[:, 0, 0]
        first_warm = int(np.argmax(profile > 0.0))
        x0 = (first_warm - 1) * spacing
        t0, t1 = profile[first_warm - 1], profile[first_warm]
        front_mm = x0 + (0.0 - t0) / (t1 - t0) * spacing
        expected = neumann_front_mm(
            time_s, -100.0, 37.0, 0.0, RHO, LATENT_J_PER_KG, FROZEN, UNFROZEN
        )
        assert front_mm == pytest.approx(expected, rel=0.03)
    assert 20.0 < expected < 25.0  # the oracle itself: 22.57 mm at 600 s


def test_probes_make_nested_isotherms_and_more_probes_more_ice() -> None:
    spacing = 1.0
    n = 31
    shape = (n, n, n)
    k = np.full(shape, 0.52)
    rho = np.full(shape, 1079.0)
    c = np.full(shape, 3540.0)
    perfusion = np.full(shape, 3.6e-3 * 1000 * 3639)
    one = np.zeros(shape, dtype=bool)
    one[15, 15, 5:20] = True
    two = one.copy()
    two[21, 15, 5:20] = True
    single = simulate_cryo((spacing,) * 3, k, rho, c, perfusion, one, -140.0, 180.0)
    double = simulate_cryo((spacing,) * 3, k, rho, c, perfusion, two, -140.0, 180.0)
    ice0, ice20, ice40 = (single.isotherm(t) for t in (0.0, -20.0, -40.0))
    assert ice40.sum() < ice20.sum() < ice0.sum()
    assert not (ice40 & ~ice20).any() and not (ice20 & ~ice0).any()
    assert double.isotherm(0.0).sum() > 1.5 * ice0.sum()
    radius_mm = ice0[15, 15:, 12].sum() * spacing - 0.5
    assert 4.0 < radius_mm < 12.0, radius_mm  # 3 min of a -140 °C probe: about a centimetre


def test_bad_cryo_input() -> None:
    shape = (5, 5, 5)
    ones = np.ones(shape)
    probe = np.zeros(shape, dtype=bool)
    probe[2, 2, 2] = True
    with pytest.raises(BadInputError, match="solidus"):
        simulate_cryo((1.0,) * 3, ones, ones, ones, 0 * ones, probe, 5.0, 10.0)
    with pytest.raises(BadInputError, match="positive"):
        simulate_cryo((0.0, 1.0, 1.0), ones, ones, ones, 0 * ones, probe, -100.0, 10.0)
