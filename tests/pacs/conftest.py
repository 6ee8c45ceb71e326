"""Fixtures of the PACS tests: one real Orthanc per session, emptied before each test that
needs it; the real CT slices of ../shared/data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacs.orthanc_server import OrthancServer, orthanc_missing, remove, start_orthanc
from shared_paths import ABDOMEN, LIDC


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """Orthanc with DICOMweb on 127.0.0.1 (see pacs/orthanc_server.py for its settings)."""
    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    remove(server)


@pytest.fixture
def orthanc(orthanc_server: OrthancServer) -> OrthancServer:
    """The session's Orthanc, holding no instance."""
    orthanc_server.clear()
    assert orthanc_server.instance_count() == 0
    return orthanc_server


@pytest.fixture(scope="session")
def lidc_dicom() -> Path:
    """The 16 real LIDC-IDRI-0001 slices (GE, explicit VR little endian)."""
    folder = LIDC / "dicom"
    if not folder.is_dir():
        pytest.skip("../shared/data is absent")
    return folder


@pytest.fixture(scope="session")
def abdomen_dicom() -> Path:
    """The 20 real totalseg-abdomen slices (Siemens, JPEG 2000 lossless, UIDs emptied)."""
    folder = ABDOMEN / "dicom"
    if not folder.is_dir():
        pytest.skip("../shared/data is absent")
    return folder


@pytest.fixture
def lidc_copy(lidc_dicom: Path, tmp_path: Path) -> Path:
    """A writable copy of the LIDC slices, named 00.dcm … 15.dcm (sorted by file name)."""
    folder = tmp_path / "lidc"
    folder.mkdir()
    for index, path in enumerate(sorted(lidc_dicom.iterdir())):
        shutil.copy(path, folder / f"{index:02d}.dcm")
    return folder
