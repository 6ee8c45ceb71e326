"""IRE field against the analytic two-cylinder oracle (physics.md §3.4) and Ben-David's pair."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seldinger.errors import BadInputError
from seldinger.imaging import VolumeGeometry
from seldinger.physics.electrodes import Electrode
from seldinger.physics.ire import (
    ElectrodePair,
    ElectroporationModel,
    garcia_threshold_v_per_cm,
    joule_heating_c,
    parallel_probes,
    solve_ire,
)

RADIUS_MM, HALF_SPACING_MM, VOLTAGE_V, SIGMA_S_PER_M = 0.5, 7.5, 2250.0, 0.2


def oracle_field_v_per_cm(x_mm: float, y_mm: float) -> float:
    """|E| of two parallel cylinders (physics.md §3.4): V b / (acosh(h/a) r1 r2)."""
    b = math.sqrt(HALF_SPACING_MM**2 - RADIUS_MM**2)
    r1 = math.hypot(x_mm - b, y_mm)
    r2 = math.hypot(x_mm + b, y_mm)
    return VOLTAGE_V * b / (math.acosh(HALF_SPACING_MM / RADIUS_MM) * r1 * r2) * 10.0


def conductance_per_m() -> float:
    """G′ = π σ / acosh(h/a), S per metre of electrode."""
    return math.pi * SIGMA_S_PER_M / math.acosh(HALF_SPACING_MM / RADIUS_MM)


def centred_grid(spacing_mm: float, half_mm: tuple[float, float, float]) -> VolumeGeometry:
    n = [2 * round(h / spacing_mm) + 1 for h in half_mm]
    origin = tuple(-(m // 2) * spacing_mm for m in n)
    return VolumeGeometry.from_spacing(tuple(n), (spacing_mm,) * 3, origin)  # type: ignore[arg-type]


def pair_of_needles(tip_z_mm: float, exposure_mm: float) -> list[Electrode]:
    return [
        Electrode((-HALF_SPACING_MM, 0.0, tip_z_mm), (0, 0, 1), exposure_mm, RADIUS_MM),
        Electrode((HALF_SPACING_MM, 0.0, tip_z_mm), (0, 0, 1), exposure_mm, RADIUS_MM),
    ]


def test_infinite_pair_matches_the_two_cylinder_oracle_in_the_mid_plane() -> None:
    # one layer of cells with insulated faces above and below = electrodes of infinite length
    spacing = 0.75
    geometry = VolumeGeometry.from_spacing((401, 401, 1), (spacing,) * 3, (-150.0, -150.0, 0.0))
    needles = pair_of_needles(0.3, 0.6)
    result = solve_ire(
        geometry, np.full(geometry.shape, SIGMA_S_PER_M), needles, [ElectrodePair(0, 1, VOLTAGE_V)]
    )
    field = result.max_field_v_per_cm[:, :, 0]
    c = 200
    midpoint = field[c, c]
    assert midpoint == pytest.approx(884.3, rel=0.02)
    assert midpoint == pytest.approx(oracle_field_v_per_cm(0, 0), rel=0.02)
    for j in range(1, 21):  # the mid-line x = 0, out to 15 mm
        y = j * spacing
        assert field[c, c + j] == pytest.approx(oracle_field_v_per_cm(0, y), rel=0.03), y
    expected_a = conductance_per_m() * VOLTAGE_V * spacing / 1000.0
    assert result.pairs[0].current_a == pytest.approx(expected_a, rel=0.03)


def test_long_pair_in_3d_matches_the_oracle_away_from_the_tips() -> None:
    spacing = 1.25
    geometry = centred_grid(spacing, (60.0, 45.0, 50.0))
    needles = pair_of_needles(30.0, 60.0)
    result = solve_ire(
        geometry, np.full(geometry.shape, SIGMA_S_PER_M), needles, [ElectrodePair(0, 1, VOLTAGE_V)]
    )
    field = result.max_field_v_per_cm
    ci, cj, ck = (n // 2 for n in geometry.shape)
    assert field[ci, cj, ck] == pytest.approx(884.3, rel=0.02)
    for dk in range(-8, 9):  # ± 10 mm along the needles, at the midpoint
        assert field[ci, cj, ck + dk] == pytest.approx(884.3, rel=0.03)
    # the current per unit length in the middle of the exposure; the total includes the ends
    pair = result.pairs[0]
    middle_a = float(pair.anode_current_a[:, :, ck].sum())
    assert middle_a == pytest.approx(conductance_per_m() * VOLTAGE_V * spacing / 1000, rel=0.03)
    total_expected = conductance_per_m() * VOLTAGE_V * 0.060
    assert total_expected < pair.current_a < 1.15 * total_expected


def ben_david_zone_mm(model: ElectroporationModel | None, n_pulses: int) -> np.ndarray:
    spacing = 1.25
    geometry = centred_grid(spacing, (40.0, 40.0, 35.0))
    needles = pair_of_needles(10.0, 20.0)
    result = solve_ire(
        geometry,
        np.full(geometry.shape, 0.12),
        needles,
        [ElectrodePair(0, 1, 2250.0)],
        model=model,
        threshold_v_per_cm=garcia_threshold_v_per_cm(n_pulses),
    )
    points = geometry.index_to_lps(np.argwhere(result.zone))
    return np.asarray(points.max(axis=0) - points.min(axis=0) + spacing)  # width, depth, height


def test_ben_david_pair_within_one_sd_with_constant_sigma_and_garcia_90_pulses() -> None:
    width, depth, height = ben_david_zone_mm(None, 90)
    # Ben-David et al. AJR 2012: 3.0 ± 0.4 × 1.7 ± 0.4 × 3.0 ± 0.6 cm (physics.md §3.3)
    assert 26.0 <= width <= 34.0
    assert 13.0 <= depth <= 21.0
    assert 24.0 <= height <= 36.0


@pytest.mark.slow
def test_ben_david_pair_within_one_sd_with_electroporation_and_70_pulses() -> None:
    width, depth, height = ben_david_zone_mm(ElectroporationModel(), 70)
    assert 26.0 <= width <= 34.0
    assert 13.0 <= depth <= 21.0
    assert 24.0 <= height <= 36.0


def test_electroporation_raises_sigma_near_the_needles_and_the_current() -> None:
    spacing = 0.75
    geometry = VolumeGeometry.from_spacing((161, 161, 1), (spacing,) * 3, (-60.0, -60.0, 0.0))
    needles = pair_of_needles(0.3, 0.6)
    sigma0 = np.full(geometry.shape, 0.12)
    pair = [ElectrodePair(0, 1, VOLTAGE_V)]
    constant = solve_ire(geometry, sigma0, needles, pair)
    model = ElectroporationModel()
    porated = solve_ire(geometry, sigma0, needles, pair, model=model, tolerance=1e-3)
    assert porated.pairs[0].iterations < 30 and not porated.notes
    ratio = porated.pairs[0].current_a / constant.pairs[0].current_a
    assert 1.5 < ratio < model.ratio
    sigma = porated.conductivity_s_per_m[:, :, 0]
    assert sigma[80 + 12, 80] == pytest.approx(0.12 * model.ratio, rel=0.05)  # 1.5 mm from a needle
    assert sigma[0, 0] == pytest.approx(0.12, rel=1e-6)
    # the converged state is a fixed point: σ agrees with σ(E) of its own field
    target = 0.12 * model.factor(porated.max_field_v_per_cm[:, :, 0])
    assert np.max(np.abs(sigma - target)) < 0.05 * 0.12 * model.ratio


def test_garcia_model_and_joule_heating() -> None:
    assert garcia_threshold_v_per_cm(90) == pytest.approx(268.6, abs=0.1)
    assert garcia_threshold_v_per_cm(70) == pytest.approx(489.3, abs=0.1)
    assert garcia_threshold_v_per_cm(50) == pytest.approx(891.6, abs=0.1)
    # 1000 V/cm, 0.2 S/m, 90 × 100 µs in ρc = 3.82e6: 0.2·1e10·9e-3/3.82e6 = 4.71 K
    rise = joule_heating_c(np.array([1000.0]), np.array([0.2]), 3.82e6, 90, 100e-6)
    assert rise[0] == pytest.approx(0.2 * 1e10 * 9e-3 / 3.82e6)


def test_parallel_probes_follow_the_protocol() -> None:
    probes, pairs = parallel_probes((10.0, 20.0, 30.0), (0, 0, -1), 25.0)
    assert len(probes) == 4
    tips = np.array([p.tip_lps_mm for p in probes])
    sides = [np.linalg.norm(tips[n] - tips[(n + 1) % 4]) for n in range(4)]
    assert np.allclose(sides, 18.75)
    assert all(15.0 <= s <= 20.0 for s in sides)
    for pair in pairs:
        gap_cm = np.linalg.norm(tips[pair.anode] - tips[pair.cathode]) / 10
        assert pair.voltage_v == pytest.approx(min(3000.0, 1500 * gap_cm), abs=0.1)
    assert probes[0].exposure_mm == 25.0
    mid = tips.mean(axis=0) - 12.5 * np.array([0, 0, -1])
    assert np.allclose(mid, (10.0, 20.0, 30.0))


def small_case() -> tuple[VolumeGeometry, np.ndarray]:
    geometry = centred_grid(1.5, (30.0, 30.0, 30.0))
    return geometry, np.full(geometry.shape, 0.12)


def test_bad_input_gives_one_clear_line_each() -> None:
    geometry, sigma = small_case()
    pair = [ElectrodePair(0, 1, 2250.0)]
    crossing = [
        Electrode((0, 0, 5), (1, 0, 1), 20, 0.5),
        Electrode((0, 0, 5), (-1, 0, 1), 20, 0.5),
    ]
    with pytest.raises(BadInputError, match="cross"):
        solve_ire(geometry, sigma, crossing, pair)
    outside = pair_of_needles(10.0, 20.0)
    outside[1] = Electrode((7.5, 0, 80.0), (0, 0, 1), 20, 0.5)
    with pytest.raises(BadInputError, match="leaves the simulation grid"):
        solve_ire(geometry, sigma, outside, pair)
    body = np.ones(geometry.shape, dtype=bool)
    body[: geometry.shape[0] // 2] = False  # the left half of the phantom is air
    with pytest.raises(BadInputError, match="outside the body"):
        solve_ire(geometry, sigma, pair_of_needles(10.0, 20.0), pair, active=body)
    with pytest.raises(BadInputError, match="3000"):
        ElectrodePair(0, 1, 3500.0)
    with pytest.raises(BadInputError, match="positive"):
        VolumeGeometry.from_spacing((10, 10, 10), (0.0, 1.0, 1.0))
    with pytest.raises(BadInputError, match="different probes"):
        ElectrodePair(1, 1, 1000.0)
    with pytest.raises(BadInputError, match="numbered"):
        solve_ire(geometry, sigma, pair_of_needles(10.0, 20.0), [ElectrodePair(0, 2, 1000.0)])
    for err in (BadInputError("x"),):
        assert "\n" not in str(err)


def test_current_above_the_generator_limit_is_noted() -> None:
    geometry, _ = small_case()
    sigma = np.full(geometry.shape, 5.0)  # saline-like: far too conductive
    result = solve_ire(geometry, sigma, pair_of_needles(10.0, 20.0), [ElectrodePair(0, 1, 3000.0)])
    assert result.pairs[0].current_a > 50.0
    assert any("exceeds the generator" in note for note in result.notes)
