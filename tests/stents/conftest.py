"""Phantoms and the lidc airway for the stent tests (built once per session)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tube_phantom():  # type: ignore[no-untyped-def]
    """The issue's tube: 18 mm, 50 % area stenosis over 20 mm, tilted 20°, 0.7x0.7x2.5 mm."""
    from seldinger.stents.phantoms import stenosed_tube

    return stenosed_tube()


@pytest.fixture(scope="session")
def tube_survey(tube_phantom):  # type: ignore[no-untyped-def]
    from seldinger.anatomy.airway_graph import airway_graph
    from seldinger.stents import measure_airway

    ct, _ = tube_phantom
    mask = ct.with_array(np.asarray(ct.array) < -500)
    return measure_airway(ct, airway_graph(ct, np.asarray(mask.array)), mask)


@pytest.fixture(scope="session")
def y_phantom():  # type: ignore[no-untyped-def]
    from seldinger.stents.phantoms import y_airway

    return y_airway(spacing_mm=(0.8, 0.8, 1.5))


@pytest.fixture(scope="session")
def y_survey(y_phantom):  # type: ignore[no-untyped-def]
    from seldinger.anatomy.airway_graph import airway_graph
    from seldinger.stents import measure_airway

    ct, _ = y_phantom
    mask = ct.with_array(np.asarray(ct.array) < -500)
    return measure_airway(ct, airway_graph(ct, np.asarray(mask.array)), mask)
