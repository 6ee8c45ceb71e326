"""Paths of the real CTs in ../shared/data and their reference facts (importable by tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LIDC = SHARED_DATA / "lidc-idri-0001"
ABDOMEN = SHARED_DATA / "totalseg-abdomen"

#: LPS centroid of the LIDC-IDRI-0001 consensus nodule (../shared/README.md), mm.
NODULE_CENTROID_LPS_MM = (56.4, 86.3, -116.0)

requires_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


def canonical_ct(case_dir: Path):  # type: ignore[no-untyped-def]
    """The case's CT as a Volume reoriented to LPS order (skips when the data is absent)."""
    if not case_dir.is_dir():
        pytest.skip("../shared/data is absent")
    from seldinger.imaging import reorient
    from seldinger.io import read_ct

    return reorient(read_ct(case_dir / "ct.nii.gz").volume, "LPS")
