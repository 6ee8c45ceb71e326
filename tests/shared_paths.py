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
