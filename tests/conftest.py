"""Shared fixtures: the real CTs in ../shared/data (tests skip when they are absent)."""

from __future__ import annotations

import pytest

from shared_paths import LIDC, canonical_ct


@pytest.fixture(scope="session")
def lidc_ct():  # type: ignore[no-untyped-def]
    """The whole LIDC-IDRI-0001 CT read from NIfTI (session-wide: 70 MB)."""
    if not LIDC.is_dir():
        pytest.skip("../shared/data is absent")
    from seldinger.io import read_ct

    return read_ct(LIDC / "ct.nii.gz")


@pytest.fixture(scope="session")
def lidc_volume():  # type: ignore[no-untyped-def]
    """lidc-idri-0001 CT as a Volume in LPS order (it is stored so: arrays match the labels)."""
    return canonical_ct(LIDC)


@pytest.fixture(scope="session")
def lidc_anatomy(lidc_volume):  # type: ignore[no-untyped-def]
    """All structures of lidc-idri-0001 by the classical pipeline (once per session)."""
    from seldinger.anatomy import segment

    return segment(lidc_volume)
