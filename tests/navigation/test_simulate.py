"""Tests of the EM tracker simulator (seldinger.navigation.simulate and .motion)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from seldinger.navigation.motion import (
    BreathingModel,
    BreathingTrace,
    NeedleInsertion,
    PivotMotion,
    SpinMotion,
    rotation_from_rotvec,
)
from seldinger.navigation.simulate import (
    REFERENCE_NAME,
    TOOL_NAME,
    WORKING_VOLUME_CENTRE_TRACKER_MM,
    DistortionField,
    DistortionModel,
    DropoutModel,
    NoiseModel,
    TrackerSimConfig,
    TrackerSimulator,
    default_ct_to_tracker,
)

SEED = 20240611
ENTRY = (-80.0, -60.0, -150.0)
TARGET = (-40.0, 0.0, -160.0)
NO_NOISE = NoiseModel(0.0, 0.0)
REGULAR = BreathingModel(shape_n=1, period_variation=0.0, amplitude_variation=0.0)


def insertion(**kwargs: float) -> NeedleInsertion:
    return NeedleInsertion(ENTRY, TARGET, **kwargs)


def angle_deg(rotations: np.ndarray) -> np.ndarray:
    cos = (np.trace(rotations, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_rotation_from_rotvec_matches_hand_computed_quarter_turns() -> None:
    r = rotation_from_rotvec([[0.0, 0.0, np.pi / 2], [np.pi / 2, 0.0, 0.0], [0.0, 0.0, 1e-9]])
    np.testing.assert_allclose(r[0] @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r[1] @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(r[2], np.eye(3), atol=1e-8)


def test_noise_rms_matches_configured_3d_rms() -> None:
    config = TrackerSimConfig(
        insertion(), rate_hz=1000.0, noise=NoiseModel(0.5, 0.3), breathing=None
    )
    series = TrackerSimulator(config, rng=SEED).simulate(5.0)
    for name, true in (
        (TOOL_NAME, series.truth.tool_to_tracker),
        (REFERENCE_NAME, series.truth.reference_to_tracker),
    ):
        measured = series.measured[name]
        error_mm = np.linalg.norm(measured[:, :3, 3] - true[:, :3, 3], axis=1)
        rms_mm = math.sqrt(float(np.mean(error_mm**2)))
        assert rms_mm == pytest.approx(0.5, rel=0.04)
        relative = np.swapaxes(true[:, :3, :3], 1, 2) @ measured[:, :3, :3]
        rms_deg = math.sqrt(float(np.mean(angle_deg(relative) ** 2)))
        assert rms_deg == pytest.approx(0.3, rel=0.04)
        # isotropic: each axis carries a third of the variance
        per_axis = np.mean((measured[:, :3, 3] - true[:, :3, 3]) ** 2, axis=0)
        np.testing.assert_allclose(per_axis, 0.25 / 3, rtol=0.1)


def test_noise_free_measurement_is_ct_to_tracker_of_truth() -> None:
    config = TrackerSimConfig(insertion(), noise=NO_NOISE, tip_offset_mm=7.5)
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(8.0)
    tool = series.measured[TOOL_NAME]
    np.testing.assert_allclose(tool, sim.ct_to_tracker @ series.truth.tool_to_ct, atol=1e-9)
    np.testing.assert_allclose(
        series.measured[REFERENCE_NAME],
        sim.ct_to_tracker @ series.truth.reference_to_ct,
        atol=1e-9,
    )
    tip_tracker = tool @ np.array([0.0, 0.0, 7.5, 1.0])
    np.testing.assert_allclose(tip_tracker[:, :3], series.truth.tip_tracker_mm, atol=1e-9)
    tip_back = (
        np.linalg.inv(sim.ct_to_tracker)
        @ np.c_[series.truth.tip_tracker_mm, np.ones(len(series))].T
    )
    np.testing.assert_allclose(tip_back[:3].T, series.truth.tip_lps_mm, atol=1e-9)


def test_default_placement_puts_path_mid_volume_and_frames_differ() -> None:
    sim = TrackerSimulator(TrackerSimConfig(insertion()), rng=SEED)
    middle = (np.asarray(ENTRY) + np.asarray(TARGET)) / 2
    np.testing.assert_allclose(
        (sim.ct_to_tracker @ [*middle, 1.0])[:3], WORKING_VOLUME_CENTRE_TRACKER_MM, atol=1e-9
    )
    assert angle_deg(sim.ct_to_tracker[:3, :3]) > 60.0
    # anterior (LPS −y) is the generator's +Z
    np.testing.assert_allclose(sim.ct_to_tracker[:3, :3] @ [0.0, -1.0, 0.0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(default_ct_to_tracker(middle), sim.ct_to_tracker)


def test_insertion_tip_reaches_target_and_moves_with_it() -> None:
    motion = insertion(approach_s=1.0, pause_s=0.5, insertion_speed_mm_per_s=20.0)
    config = TrackerSimConfig(motion, rate_hz=100.0, noise=NO_NOISE)  # default breathing
    series = TrackerSimulator(config, rng=SEED).simulate(motion.duration_s + 2.0)
    truth = series.truth
    stages = [s for i, s in enumerate(truth.stage) if i == 0 or truth.stage[i - 1] != s]
    assert stages == [0, 1, 2, 3]  # approach, pause, insertion, hold
    held = truth.stage == 3
    assert held.sum() >= 190
    # in tissue at full depth the tip moves with the target: it stays on it
    np.testing.assert_allclose(truth.tip_lps_mm[held], truth.target_lps_mm[held], atol=1e-9)
    np.testing.assert_allclose(
        truth.tip_lps_mm[held] - truth.target_displacement_lps_mm[held],
        np.broadcast_to(TARGET, (held.sum(), 3)),
        atol=1e-9,
    )
    assert truth.insertion_depth_mm[-1] == pytest.approx(motion.planned_depth_mm)
    assert np.ptp(truth.target_displacement_lps_mm[held, 2]) > 5.0  # it did breathe
    # the tool's +Z points along the shaft toward the tip
    direction = (np.asarray(TARGET) - ENTRY) / motion.planned_depth_mm
    np.testing.assert_allclose(truth.tool_to_ct[-1, :3, 2], direction, atol=1e-12)


def test_deliberate_errors_miss_the_target_by_the_expected_distance() -> None:
    depth = float(np.linalg.norm(np.subtract(TARGET, ENTRY)))
    for kwargs, miss_mm in (
        ({"lateral_error_mm": 4.0, "error_azimuth_deg": 30.0}, 4.0),
        (
            {"angle_error_deg": 5.0, "error_azimuth_deg": 200.0},
            2 * depth * math.sin(math.radians(2.5)),
        ),
    ):
        motion = insertion(approach_s=0.0, pause_s=0.0, insertion_speed_mm_per_s=50.0, **kwargs)
        config = TrackerSimConfig(motion, rate_hz=50.0, noise=NO_NOISE, breathing=None)
        last = TrackerSimulator(config, rng=SEED).frame(200).truth
        assert last is not None
        assert np.linalg.norm(last.tip_lps_mm - last.target_lps_mm) == pytest.approx(miss_mm)
        entry, _ = motion.actual_path()
        assert np.linalg.norm(last.tip_lps_mm - entry) == pytest.approx(depth)


def test_same_seed_same_frames_other_seed_differs() -> None:
    config = TrackerSimConfig(insertion(), dropout=DropoutModel(0.1, 0.2, 0.3))
    a = TrackerSimulator(config, rng=SEED).simulate(30.0)
    b = TrackerSimulator(config, rng=SEED).simulate(30.0)
    c = TrackerSimulator(config, rng=SEED + 1).simulate(30.0)
    for name in (TOOL_NAME, REFERENCE_NAME):
        np.testing.assert_array_equal(a.measured[name], b.measured[name])
        np.testing.assert_array_equal(a.visible[name], b.visible[name])
        assert not np.array_equal(a.visible[name], c.visible[name])
    np.testing.assert_array_equal(a.truth.breathing_signal, b.truth.breathing_signal)
    assert not np.allclose(a.truth.breathing_signal, c.truth.breathing_signal)
    generator = TrackerSimulator(config, rng=np.random.default_rng(SEED)).simulate(1.0)
    again = TrackerSimulator(config, rng=np.random.default_rng(SEED)).simulate(1.0)
    np.testing.assert_array_equal(generator.measured[TOOL_NAME], again.measured[TOOL_NAME])


def test_frame_series_and_iterator_agree_whatever_the_order() -> None:
    config = TrackerSimConfig(insertion(), rate_hz=500.0, dropout=DropoutModel(0.05, 1.0, 0.2))
    late = TrackerSimulator(config, rng=SEED).frame(2500)  # breathing drawn out of order
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(6.0)
    frames = list(sim.frames(6.0))
    assert len(frames) == len(series) == 3000
    for i in (0, 1023, 1024, 2500, 2999):
        expected = series.frame(i)
        for frame in (frames[i], sim.frame(i)):
            assert frame.index == i and frame.timestamp_s == expected.timestamp_s
            assert frame.transforms.keys() == expected.transforms.keys()
            for name, matrix in frame.transforms.items():
                np.testing.assert_array_equal(matrix, expected.transforms[name])
    assert sim.frame_at(5.0).index == 2500 and sim.frame_at(5.0019).index == 2500
    endless = list(itertools.islice(sim.frames(), 1030))  # no duration: runs on
    np.testing.assert_array_equal(
        endless[1029].transforms[TOOL_NAME], frames[1029].transforms[TOOL_NAME]
    )
    assert late.truth is not None and frames[2500].truth is not None
    assert late.truth.breathing_signal == frames[2500].truth.breathing_signal
    np.testing.assert_array_equal(late.transforms[TOOL_NAME], frames[2500].transforms[TOOL_NAME])


def test_dropout_rate_near_probability_and_dropped_tools_absent() -> None:
    config = TrackerSimConfig(insertion(), rate_hz=1000.0, dropout=DropoutModel(probability=0.2))
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(20.0)
    for name in (TOOL_NAME, REFERENCE_NAME):
        assert 1.0 - series.visible[name].mean() == pytest.approx(0.2, abs=0.01)
        assert np.isnan(series.measured[name][~series.visible[name]]).all()
    # the two tools drop independently
    both = (~series.visible[TOOL_NAME] & ~series.visible[REFERENCE_NAME]).mean()
    assert both == pytest.approx(0.04, abs=0.006)
    frame = next(f for f in series.frames() if not series.visible[TOOL_NAME][f.index])
    assert TOOL_NAME not in frame.transforms


def test_dropout_bursts_last_the_configured_time() -> None:
    dropout = DropoutModel(probability=0.0, burst_rate_hz=0.5, burst_duration_s=0.4)
    config = TrackerSimConfig(insertion(), rate_hz=100.0, dropout=dropout)
    visible = TrackerSimulator(config, rng=SEED).simulate(200.0).visible[TOOL_NAME]
    edges = np.flatnonzero(np.diff(np.r_[1, visible.astype(int), 1]))
    lengths_s = (edges[1::2] - edges[::2]) / 100.0
    assert 60 <= lengths_s.size <= 140  # ~100 bursts
    assert lengths_s.min() >= 0.19  # durations 0.4 × U(0.5, 1.5), merged when overlapping
    assert float(np.median(lengths_s)) == pytest.approx(0.4, abs=0.06)
    expected_dropped = 1.0 - math.exp(-0.5 * 0.4)  # Poisson coverage
    assert 1.0 - visible.mean() == pytest.approx(expected_dropped, abs=0.04)


def test_breathing_period_and_amplitude_recovered_from_reference_sensor() -> None:
    config = TrackerSimConfig(insertion(), breathing=REGULAR)  # 4 s, 5 mm AP chest, 0.5 mm noise
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(60.0)  # 15 whole cycles at 40 Hz
    reference_ct = np.linalg.inv(sim.ct_to_tracker) @ series.measured[REFERENCE_NAME]
    ap_mm = reference_ct[:, 1, 3]
    spectrum = np.abs(np.fft.rfft(ap_mm - ap_mm.mean()))
    frequencies = np.fft.rfftfreq(ap_mm.size, d=1.0 / 40.0)
    peak = int(np.argmax(spectrum))
    assert frequencies[peak] == pytest.approx(0.25)
    # n = 1: b cos² = b/2 (1 + cos): the fundamental's amplitude is half the peak-to-peak
    assert 4.0 * spectrum[peak] / ap_mm.size == pytest.approx(5.0, rel=0.05)
    # moves anterior (−y) at inhale, from the exhale position
    np.testing.assert_allclose(
        series.truth.chest_displacement_lps_mm[:, 1], -5.0 * series.truth.breathing_signal
    )
    assert np.ptp(series.truth.target_displacement_lps_mm[:, 2]) == pytest.approx(10.0, rel=1e-3)


def test_breathing_shape_phase_and_irregularity() -> None:
    model = BreathingModel(shape_n=3, period_variation=0.15, amplitude_variation=0.2)
    trace = BreathingTrace(model, np.random.default_rng(SEED))
    t = np.arange(0.0, 400.0, 0.01)
    phase, signal = trace.state(t)
    # Lujan: signal = a_k cos^{2n}(π phase); phase 0 end-inhale, 0.5 end-exhale
    exhales = np.flatnonzero((phase[:-1] < 0.5) & (phase[1:] >= 0.5))  # cycle boundaries
    cycles_s = np.diff(t[exhales])
    assert cycles_s.mean() == pytest.approx(4.0, rel=0.05)
    assert cycles_s.std() / cycles_s.mean() == pytest.approx(0.15, abs=0.03)
    assert signal[np.abs(phase - 0.5) < 0.01].max() < 1e-6
    ratio = signal / np.cos(np.pi * phase) ** 6
    ok = np.cos(np.pi * phase) ** 6 > 0.2
    amplitudes = ratio[ok]
    assert amplitudes.std() == pytest.approx(0.2, abs=0.07) and amplitudes.mean() == pytest.approx(
        1.0, abs=0.1
    )
    # the signal is continuous (cycles change amplitude at exhale, where it is 0)
    assert np.abs(np.diff(signal)).max() < 0.05
    drift = BreathingTrace(
        BreathingModel(baseline_drift_mm_per_min=2.0, start_phase=0.5), np.random.default_rng(1)
    )
    _, drifting = drift.state(np.array([0.0, 60.0]))
    assert drifting[1] - drifting[0] == pytest.approx(0.2, abs=0.2)  # 2 mm / 10 mm ± a cycle


def test_pivot_mode_keeps_the_tip_on_the_pivot() -> None:
    pivot = np.array([30.0, 50.0, -120.0])
    motion = PivotMotion(pivot, axis_lps=[0.0, 1.0, 0.2])
    config = TrackerSimConfig(motion, rate_hz=50.0, tip_offset_mm=12.0, noise=NO_NOISE)
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(20.0)
    poses = series.measured[TOOL_NAME]
    tip_tool = np.array([0.0, 0.0, 12.0])
    pivot_tracker = (sim.ct_to_tracker @ [*pivot, 1.0])[:3]
    reconstructed = poses[:, :3, :3] @ tip_tool + poses[:, :3, 3]  # R_i p_tip + t_i
    np.testing.assert_allclose(
        reconstructed, np.broadcast_to(pivot_tracker, reconstructed.shape), atol=1e-9
    )
    axis = np.array([0.0, 1.0, 0.2]) / np.linalg.norm([0.0, 1.0, 0.2])
    tilt_deg = np.degrees(np.arccos(series.truth.tool_to_ct[:, :3, 2] @ axis))
    assert tilt_deg.min() >= 10.0 - 1e-6 and tilt_deg.max() <= 30.0 + 1e-6
    assert tilt_deg.max() > 29.0 and tilt_deg.min() < 11.0
    # on a still phantom: the reference does not breathe, ToolToReference pivots too
    assert np.ptp(series.truth.tip_lps_mm, axis=0).max() == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(series.truth.breathing_phase).all()
    tool_to_reference = np.linalg.inv(series.measured[REFERENCE_NAME]) @ poses
    tips = tool_to_reference[:, :3, :3] @ tip_tool + tool_to_reference[:, :3, 3]
    np.testing.assert_allclose(tips, np.broadcast_to(tips[0], tips.shape), atol=1e-9)


def test_spin_mode_rotates_about_the_shaft() -> None:
    motion = SpinMotion([0.0, 0.0, 0.0], axis_lps=[1.0, 1.0, 0.0], spin_rate_deg_per_s=90.0)
    config = TrackerSimConfig(motion, rate_hz=20.0, noise=NO_NOISE)
    poses = TrackerSimulator(config, rng=SEED).simulate(4.0).measured[TOOL_NAME]
    relative = np.swapaxes(poses[0, :3, :3], 0, 1) @ poses[:, :3, :3]  # R_0ᵀ R_i, tool frame
    np.testing.assert_allclose(
        relative @ [0.0, 0.0, 1.0], np.broadcast_to([0, 0, 1], (80, 3)), atol=1e-12
    )
    assert angle_deg(relative[10]) == pytest.approx(45.0)
    np.testing.assert_allclose(
        poses[:, :3, 3], np.broadcast_to(poses[0, :3, 3], (80, 3)), atol=1e-9
    )


def test_distortion_field_is_smooth_bounded_and_its_rotation_is_half_the_curl() -> None:
    field = DistortionField(DistortionModel(3.0, 200.0), np.random.default_rng(SEED))
    centre = np.asarray(WORKING_VOLUME_CENTRE_TRACKER_MM)
    rng = np.random.default_rng(1)
    directions = rng.standard_normal((5000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    edge = field.displacement_mm(centre + 200.0 * directions)
    assert np.linalg.norm(edge, axis=1).max() == pytest.approx(3.0, rel=0.02)
    half = field.displacement_mm(centre + 100.0 * directions)
    np.testing.assert_allclose(half, edge / 4.0, atol=1e-12)  # quadratic about the centre
    np.testing.assert_allclose(field.displacement_mm(centre[None]), 0.0, atol=1e-15)
    # ω = ½ ∇×d by central differences
    p = centre + np.array([[80.0, -40.0, 120.0]])
    h = 1e-3
    jac = np.stack(
        [
            (field.displacement_mm(p + h * e) - field.displacement_mm(p - h * e))[0] / (2 * h)
            for e in np.eye(3)
        ],
        axis=1,
    )
    curl = [jac[2, 1] - jac[1, 2], jac[0, 2] - jac[2, 0], jac[1, 0] - jac[0, 1]]
    np.testing.assert_allclose(field.rotation_rad(p)[0], 0.5 * np.asarray(curl), atol=1e-9)


def test_simulator_applies_distortion_at_the_true_position() -> None:
    config = TrackerSimConfig(insertion(), noise=NO_NOISE, distortion=DistortionModel(4.0))
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(5.0)
    assert sim.distortion is not None
    true = series.truth.tool_to_tracker[:, :3, 3]
    error = series.measured[TOOL_NAME][:, :3, 3] - true
    np.testing.assert_allclose(error, sim.distortion.displacement_mm(true), atol=1e-12)
    assert 0.0 < np.linalg.norm(error, axis=1).max() < 4.0
    off = TrackerSimulator(TrackerSimConfig(insertion(), noise=NO_NOISE), rng=SEED)
    assert off.distortion is None


def test_ten_seconds_at_1000_hz_give_ten_thousand_frames() -> None:
    config = TrackerSimConfig(
        insertion(),
        rate_hz=1000.0,
        dropout=DropoutModel(0.01, 0.1, 0.5),
        distortion=DistortionModel(2.0),
    )
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(10.0)
    assert len(series) == 10_000  # speed: benchmarks/bench_igtl.py


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate_hz": 0.0}, r"rate_hz must lie in \(0, 1000\]"),
        ({"rate_hz": 1001.0}, r"rate_hz .* got 1001"),
        ({"tip_offset_mm": -1.0}, "tip_offset_mm must be a finite number ≥ 0"),
        ({"ct_to_tracker": np.diag([1.0, 1.0, -1.0, 1.0])}, "ct_to_tracker must be a 4x4 rigid"),
        ({"tool_name": "x" * 21}, "1-20 printable ASCII"),
        ({"reference_name": TOOL_NAME}, "must differ"),
    ],
)
def test_config_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrackerSimConfig(insertion(), **kwargs)  # type: ignore[arg-type]


def test_model_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"probability must lie in \[0, 1\].*1.5"):
        DropoutModel(probability=1.5)
    with pytest.raises(ValueError, match="translation_rms_mm must be a finite number ≥ 0"):
        NoiseModel(translation_rms_mm=-0.1)
    with pytest.raises(ValueError, match="rotation_rms_deg"):
        NoiseModel(rotation_rms_deg=math.nan)
    with pytest.raises(ValueError, match="target_lps_mm must lie at least 1 mm"):
        NeedleInsertion(ENTRY, ENTRY)
    with pytest.raises(ValueError, match="insertion_speed_mm_per_s must be positive"):
        insertion(insertion_speed_mm_per_s=0.0)
    with pytest.raises(ValueError, match=r"period_s must be at least 0\.5 s"):
        BreathingModel(period_s=0.1)
    with pytest.raises(ValueError, match="period_variation must lie in"):
        BreathingModel(period_variation=-0.1)
    with pytest.raises(ValueError, match="max_angle_deg < 90"):
        PivotMotion([0.0, 0.0, 0.0], max_angle_deg=95.0)
    with pytest.raises(ValueError, match="axis_lps must be a non-zero"):
        SpinMotion([0.0, 0.0, 0.0], axis_lps=[0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="non-negative int seed"):
        TrackerSimulator(TrackerSimConfig(insertion()), rng=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="motion must be"):
        TrackerSimConfig("pivot")  # type: ignore[arg-type]


def test_patient_motion_hook_moves_target_skin_and_reference_by_its_field() -> None:
    """A motion given from outside (a field over space and time) replaces the breathing."""
    calls = []

    def field(t_s: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        calls.append(points.copy())
        signal = 0.5 - 0.5 * np.cos(2.0 * np.pi * t_s / 4.0)
        gain = np.array([[0.0, 0.0, -10.0], [0.0, -4.0, 0.0], [0.0, -5.0, 0.0]])
        return (t_s / 4.0) % 1.0, signal, signal[:, None, None] * gain[None]

    config = TrackerSimConfig(insertion(), noise=NO_NOISE, patient_motion=field)
    sim = TrackerSimulator(config, rng=SEED)
    series = sim.simulate(30.0)
    target, skin, reference = calls[0]
    np.testing.assert_allclose([target, skin], [TARGET, ENTRY])
    np.testing.assert_allclose(reference, sim.reference_to_ct[:3, 3])
    signal = series.truth.breathing_signal
    np.testing.assert_allclose(
        series.truth.target_lps_mm[:, 2], TARGET[2] - 10.0 * signal, atol=1e-12
    )
    np.testing.assert_allclose(
        series.truth.reference_to_ct[:, 1, 3], reference[1] - 5.0 * signal, atol=1e-12
    )
    hold = series.truth.stage == 3  # the needle rests in the target: it moves with it
    assert hold.sum() > 10
    np.testing.assert_allclose(
        series.truth.tip_lps_mm[hold], series.truth.target_lps_mm[hold], atol=1e-9
    )
