"""Property: every valid plan written is read back equal, and its text is stable."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seldinger.imaging import Volume
from seldinger.plan import (
    NavigationSection,
    Plan,
    RegistrationRecord,
    Target,
    TrajectoryRecord,
    TrajectoryRules,
    TrajectorySection,
)

#: The CT of every generated plan: 20 × 20 × 10 voxels of 2 mm at the origin (box 0-40-20 mm).
CT = Volume(np.zeros((20, 20, 10), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]))
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
length = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)
inside = st.tuples(
    st.floats(-1.0, 39.0), st.floats(-1.0, 39.0), st.floats(-1.0, 19.0)
)  # fmt: skip
names = st.text(alphabet="abcdefghij klmn_-0123456789", min_size=1, max_size=12)


@st.composite
def paths(draw: st.DrawFn, rank: int) -> TrajectoryRecord:
    return TrajectoryRecord(
        rank=rank,
        entry_lps_mm=draw(inside),
        target_lps_mm=draw(inside),
        length_mm=draw(length),
        depth_to_far_side_mm=draw(length),
        lung_length_mm=draw(length),
        pleural_crossings=draw(st.integers(0, 5)),
        min_distance_mm=draw(st.dictionaries(names, st.one_of(st.none(), length), max_size=3)),
        axial_angle_deg=draw(st.floats(0.0, 90.0)),
        risk_score=draw(finite),
        risk_terms=draw(st.dictionaries(names, finite, max_size=3)),
        pareto=draw(st.booleans()),
        dual_use=draw(st.one_of(st.none(), st.booleans())),
    )


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    plan = Plan.new(CT, "ct.nii.gz")
    target_names = draw(st.lists(names, unique=True, max_size=3))
    for name in target_names:
        plan.targets.append(Target(name=name, centroid_lps_mm=draw(inside), volume_ml=draw(length)))
    if draw(st.booleans()):
        n = draw(st.integers(0, 4))
        plan.trajectories = TrajectorySection(
            target=draw(st.sampled_from([None, *target_names])),
            target_lps_mm=draw(inside),
            rules=TrajectoryRules(
                needle_length_mm=draw(st.floats(1.0, 300.0)),
                max_axial_angle_deg=draw(st.one_of(st.none(), st.floats(0.0, 90.0))),
                table_side=draw(st.sampled_from([None, "posterior", "anterior"])),
            ),
            n_candidates=draw(st.one_of(st.none(), st.integers(0, 10**6))),
            paths=[draw(paths(rank)) for rank in range(1, n + 1)],
        )
    if draw(st.booleans()):
        angle = draw(st.floats(-np.pi, np.pi))
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])  # fmt: skip
        matrix = np.eye(4)
        matrix[:3, :3] = np.round(rotation, 6)
        matrix[:3, 3] = [draw(finite), draw(finite), draw(finite)]
        plan.navigation = NavigationSection(
            registrations=[RegistrationRecord(
                id="registration-1", moving_to_fixed=matrix.tolist(), n_fiducials=draw(st.integers(3, 9)),
                fre_mm=draw(length), target_lps_mm=draw(st.one_of(st.none(), inside)),
            )]
        )  # fmt: skip
    plan.notes = draw(st.lists(st.text(max_size=30), max_size=3))
    return plan


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_a_plan_round_trips_through_its_json(plan: Plan) -> None:
    text = plan.to_json()
    again = Plan.from_json(text, "generated")
    assert again == plan
    assert again.to_json() == text
