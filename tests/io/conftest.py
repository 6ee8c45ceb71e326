"""Fixtures for the io tests: the shared real-data folder and the 16 LIDC DICOM slices."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/io is not a package: make its helper module ``dicom_cases`` importable by name.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from shared_paths import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the project root; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def lidc_dicom_dir(shared_data: Path) -> Path:
    """The folder of the 16 real LIDC-IDRI-0001 CT slices; skips when they are absent."""
    folder = shared_data / "lidc-idri-0001" / "dicom"
    if len(list(folder.glob("*.dcm"))) != 16:
        pytest.skip(f"the 16 LIDC-IDRI-0001 DICOM slices are not in {folder}")
    return folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a -m expression, fuzz tests are skipped (the default run stays short)."""
    if config.option.markexpr:
        return  # "-m fuzz" runs them, "-m 'not fuzz'" deselects them
    skip = pytest.mark.skip(reason="long fuzz run; select it with -m fuzz")
    for item in items:
        if item.get_closest_marker("fuzz") is not None:
            item.add_marker(skip)
