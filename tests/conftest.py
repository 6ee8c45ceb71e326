"""Shared fixtures: the real CTs in ../shared/data (tests skip when they are absent)."""

from __future__ import annotations

import pytest

from shared_paths import LIDC


@pytest.fixture(scope="session")
def lidc_ct():  # type: ignore[no-untyped-def]
    """The whole LIDC-IDRI-0001 CT read from NIfTI (session-wide: 70 MB)."""
    if not LIDC.is_dir():
        pytest.skip("../shared/data is absent")
    from seldinger.io import read_ct

    return read_ct(LIDC / "ct.nii.gz")
