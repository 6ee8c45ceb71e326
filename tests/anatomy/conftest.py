"""Real CTs in the canonical LPS order, and the masks other structures build on (session-wide)."""

from __future__ import annotations

import numpy as np
import pytest

from shared_paths import ABDOMEN, canonical_ct

# lidc_volume and lidc_anatomy live in tests/conftest.py (trajectory planning uses them too).


@pytest.fixture(scope="session")
def abdomen_volume():  # type: ignore[no-untyped-def]
    """totalseg-abdomen CT reoriented from RAS to LPS (reference arrays need the same flip)."""
    return canonical_ct(ABDOMEN)


def to_lps_order(array: np.ndarray) -> np.ndarray:
    """Flip an array of totalseg-abdomen (stored RAS) into the LPS order of abdomen_volume."""
    return np.ascontiguousarray(array[::-1, ::-1, :])


@pytest.fixture(scope="session")
def lidc_body(lidc_volume):  # type: ignore[no-untyped-def]
    from seldinger.anatomy.body import segment_body

    return segment_body(lidc_volume)


@pytest.fixture(scope="session")
def abdomen_body(abdomen_volume):  # type: ignore[no-untyped-def]
    from seldinger.anatomy.body import segment_body

    return segment_body(abdomen_volume)


@pytest.fixture(scope="session")
def lidc_lungs(lidc_anatomy):  # type: ignore[no-untyped-def]
    """Both lungs of lidc-idri-0001 (bool array, LPS order, trachea and main bronchi removed)."""
    return lidc_anatomy["lung_left"].array | lidc_anatomy["lung_right"].array


@pytest.fixture(scope="session")
def abdomen_anatomy():  # type: ignore[no-untyped-def]
    """All structures of totalseg-abdomen, in its own (RAS-stored) geometry."""
    if not ABDOMEN.is_dir():
        pytest.skip("../shared/data is absent")
    from seldinger.anatomy import segment
    from seldinger.io import read_ct

    return segment(read_ct(ABDOMEN / "ct.nii.gz").volume)
