"""Motion-compensated guidance (seldinger.motion.live_guidance) on the breathing-field
simulator of seldinger.workflow.motion_simulation, without a network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seldinger.errors import BadInputError, MissingFileError
from seldinger.motion.correspondence import (
    CorrespondenceModel,
    GatingWindow,
    fit_correspondence,
)
from seldinger.motion.live_guidance import MotionGuide
from seldinger.navigation.calibration import tool_tip_to_tool
from seldinger.navigation.guidance import GuidanceError, PlannedPath
from seldinger.navigation.motion import NeedleInsertion
from seldinger.navigation.simulate import NoiseModel, TrackerSimConfig, TrackerSimulator
from seldinger.navigation.transforms import invert_rigid
from seldinger.workflow.motion_guidance import (
    parse_gate_window,
    read_motion_model,
    write_motion_model,
)
from seldinger.workflow.motion_simulation import (
    BreathingFieldRequest,
    FieldBreathing,
    breathing_sim_config,
    check_compensation,
    fit_simulated_model,
    thorax_around,
)

SEED = 20240611
ENTRY = np.array([44.0, 0.0, 3.0])
TARGET = np.array([12.0, 0.0, 0.0])


def _simulator(
    si_mm: float = 15.0, noise_mm: float = 0.5
) -> tuple[TrackerSimulator, CorrespondenceModel]:
    thorax, reference = thorax_around(TARGET, ENTRY)
    config = breathing_sim_config(BreathingFieldRequest(si_mm), thorax)
    model = fit_simulated_model(config, TARGET, reference, np.random.default_rng(SEED))
    reference_to_ct = np.eye(4)
    reference_to_ct[:3, 3] = reference
    sim = TrackerSimulator(
        TrackerSimConfig(
            NeedleInsertion(ENTRY, TARGET),
            noise=NoiseModel(noise_mm, 0.3 if noise_mm else 0.0),
            patient_motion=FieldBreathing(config, np.random.default_rng(SEED + 1)),
            reference_to_ct=reference_to_ct,
        ),
        rng=SEED,
    )
    return sim, model


@pytest.mark.parametrize("window", [(0.0, 0.25), (0.25, 0.75), (0.5, 1.0)])
def test_compensation_of_15_mm_breathing_and_the_gating_duty_cycle(window) -> None:  # type: ignore[no-untyped-def]
    sim, model = _simulator()
    check = check_compensation(sim, model, 40.0, GatingWindow(*window))
    assert check.compensated_rms_mm <= 2.0 and check.uncompensated_rms_mm > 5.0
    assert check.uncompensated_max_mm > 14.0  # the whole 15 mm of motion
    assert abs(check.duty_cycle - check.true_duty_cycle) <= 0.05
    assert check.gate_agreement > 0.9


def test_without_noise_the_model_follows_the_target_within_its_hysteresis_residual() -> None:
    sim, model = _simulator(noise_mm=0.0)
    check = check_compensation(sim, model, 40.0)
    assert check.compensated_rms_mm < 0.5 and check.gate_agreement == 1.0


def test_motion_guide_measures_the_needle_against_the_moving_target() -> None:
    sim, model = _simulator(noise_mm=0.0)
    tip = tool_tip_to_tool([0.0, 0.0, sim.config.tip_offset_mm], [0.0, 0.0, 1.0])
    tracker_to_ct = invert_rigid(sim.ct_to_tracker)
    guide = MotionGuide(
        PlannedPath(tuple(ENTRY), tuple(TARGET)),
        tip,
        tracker_to_ct=tracker_to_ct,
        model=model,
    )
    series = sim.simulate(30.0)
    errors, shifts, gates = [], [], []
    for frame in series.frames():
        state = guide.update(
            frame.transforms["ToolToTracker"],
            frame.transforms["ReferenceToTracker"],
            timestamp_s=frame.timestamp_s,
            tracker_timestamp_s=frame.timestamp_s,
        )
        assert frame.truth is not None
        truth = frame.truth.tip_lps_mm - frame.truth.target_lps_mm
        errors.append(state.tip_to_target_mm - np.linalg.norm(truth))
        shifts.append(state.target_shift_mm)
        gates.append(state.gate_on)
        assert state.to_dict()["phase"] in ("inhale", "exhale")
    assert np.sqrt(np.mean(np.square(errors))) < 0.5
    assert max(shifts) > 12.0 and 0.2 < np.mean(gates) < 0.8
    assert state.tip_to_target_mm < 1.0  # at the end the needle sits in the moving target
    with pytest.raises(GuidanceError, match="reference sensor"):
        guide.update(frame.transforms["ToolToTracker"])


def test_motion_guide_refuses_a_reference_registration_and_many_sensors() -> None:
    _, model = _simulator(noise_mm=0.0)
    path = PlannedPath(tuple(ENTRY), tuple(TARGET))
    with pytest.raises(GuidanceError, match="tracker-to-CT"):
        MotionGuide(path, np.eye(4), reference_to_ct=np.eye(4), model=model)
    u = np.array([0.0, 2.0, 4.0])
    two = np.stack([np.c_[np.zeros(3), -u, np.zeros(3)], np.c_[np.ones(3), -u, np.zeros(3)]], 1)
    model2 = fit_correspondence(two, np.c_[np.zeros(3), np.zeros(3), -3.0 * u])
    with pytest.raises(BadInputError, match="2 reference sensors"):
        MotionGuide(path, np.eye(4), tracker_to_ct=np.eye(4), model=model2)


def test_model_file_round_trip_and_refusals(tmp_path: Path) -> None:
    _, model = _simulator(noise_mm=0.0)
    path = tmp_path / "model.json"
    write_motion_model(path, model, {"seed": SEED})
    back = read_motion_model(path)
    np.testing.assert_array_equal(back.coef_amplitude, model.coef_amplitude)
    with pytest.raises(FileExistsError):
        write_motion_model(path, model, {})
    with pytest.raises(MissingFileError):
        read_motion_model(tmp_path / "absent.json")
    for text, words in [
        ("not json", "is not JSON"),
        ("[1, 2]", "is not a correspondence model"),
        (json.dumps({"format": "seldinger.correspondence_model", "version": 9}), "version 9"),
    ]:
        path.write_text(text)
        with pytest.raises(BadInputError, match=words):
            read_motion_model(path)


def test_gate_window_parsing() -> None:
    assert parse_gate_window(" 0.1 , 0.4") == GatingWindow(0.1, 0.4)
    for text in ("0.4,0.1", "0.2,0.2", "-0.1,0.3", "0,1.5", "0.1", "a,b", "0,0.2,0.4"):
        with pytest.raises(BadInputError, match="LOW,HIGH"):
            parse_gate_window(text)
