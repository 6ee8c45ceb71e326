"""Shared fixtures: the real CTs in ../shared/data (tests skip when they are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LIDC = SHARED_DATA / "lidc-idri-0001"
ABDOMEN = SHARED_DATA / "totalseg-abdomen"

#: LPS centroid of the LIDC-IDRI-0001 consensus nodule (../shared/README.md), mm.
NODULE_CENTROID_LPS_MM = (56.4, 86.3, -116.0)

requires_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


@pytest.fixture(scope="session")
def lidc_ct():  # type: ignore[no-untyped-def]
    """The whole LIDC-IDRI-0001 CT read from NIfTI (session-wide: 70 MB)."""
    if not LIDC.is_dir():
        pytest.skip("../shared/data is absent")
    from seldinger.io import read_ct

    return read_ct(LIDC / "ct.nii.gz")
