"""Fixtures of the workstation tests: a synthetic chest planned with paths and an ablation,
the workstation on it, and the server (in-process, or on a thread for the browser).

The chest is that of tests/app/conftest.py (body cylinder, ribs with gaps, two lungs, a 5 mm
lesion in the left lung, 1 mm voxels), planned by the real commands.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from case_copy import copy_case
from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.imaging import Volume
from seldinger.io import write_volume

SHAPE = (100, 100, 60)
#: Index (50, 50, 30) is LPS (0, 0, 0); 1 mm voxels.
AFFINE = np.array([[1.0, 0, 0, -50.0], [0, 1.0, 0, -50.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1.0]])
TOKEN = "test-token-0123456789abcdef"


def build_chest(root: Path) -> Path:
    """Write the synthetic chest, its anatomy and lesion; plan paths, an ablation and seeds."""
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    r = np.hypot(i - 50, j - 50)
    body = r <= 45
    bones = (r >= 30) & (r <= 34) & ((k % 12) < 8)
    lungs = (r < 28) & (np.abs(i - 50) > 4) & (k > 5) & (k < 55)
    lesion = np.hypot(np.hypot(i - 62, j - 50), k - 30) <= 5.0
    ct = np.where(body, 40, -1000).astype(np.int16)
    ct[bones] = 700
    ct[lungs] = -850
    ct[lesion] = 30
    root.mkdir(parents=True)
    write_volume(Volume(ct, AFFINE.copy()), root / "ct.nii.gz")
    write_volume(Volume(lesion.astype(np.uint8), AFFINE.copy()), root / "lesion.nii.gz")
    masks = {
        "body": body,
        "bones": bones,
        "lung_left": lungs & (i > 50),
        "lung_right": lungs & (i < 50),
    }
    Anatomy(masks={n: Volume(m, AFFINE.copy()) for n, m in masks.items()}).save(root / "anatomy")
    plan = root / "plan.json"
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", plan, "--top", "3"]
    assert main([str(a) for a in args]) == 0
    assert main(["plan", "ablation", str(plan), "--device", "emprint"]) == 0
    assert main(["plan", "seeds", str(plan)]) == 0
    return plan


@pytest.fixture(scope="session")
def planned_chest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planned chest's plan.json (copy the folder to change it)."""
    return build_chest(tmp_path_factory.mktemp("web") / "chest")


@pytest.fixture
def chest_plan(planned_chest: Path, tmp_path: Path) -> Path:
    """A private copy of the planned chest; its plan.json."""
    return copy_case(planned_chest.parent, tmp_path / "chest") / "plan.json"


@pytest.fixture
def workstation(chest_plan: Path):  # type: ignore[no-untyped-def]
    """The workstation on the chest, risk maps built."""
    from seldinger.workflow.workstation import open_workstation

    ws = open_workstation(chest_plan, score=False)
    ws.prepare_scoring()
    return ws


@pytest.fixture
def client(served: str) -> Iterator[httpx.Client]:
    """An httpx client of the served app, without credentials (it keeps cookies)."""
    with httpx.Client(base_url=served, timeout=30.0) as http:
        yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(workstation) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app served on a loopback port by a thread; its base URL."""
    from seldinger.app.web.server import create_app, listening_socket
    from seldinger.app.web.serving import BackgroundServer

    with BackgroundServer(create_app(workstation, TOKEN), listening_socket("127.0.0.1", 0)) as s:
        yield s.url
