"""A synthetic chest with a plan made by `plan trajectory` (for the plan ablation/seeds tests).

The chest: a body cylinder (radius 45 mm) around a bony shell with 4 mm intercostal gaps
(radius 30-34 mm), two lungs, and a 5 mm lesion in the left lung, on 1 mm voxels.
"""

from __future__ import annotations

from pathlib import Path

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
LESION_RADIUS_MM = 5.0


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Case folder with ct.nii.gz, lesion.nii.gz, anatomy/ and plan.json (copy to change)."""
    root = tmp_path_factory.mktemp("planned") / "case"
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    r = np.hypot(i - 50, j - 50)
    body = r <= 45
    bones = (r >= 30) & (r <= 34) & ((k % 12) < 8)
    lungs = (r < 28) & (np.abs(i - 50) > 4) & (k > 5) & (k < 55)
    lesion = np.hypot(np.hypot(i - 62, j - 50), k - 30) <= LESION_RADIUS_MM
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
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", root / "plan.json", "--top", "3"]
    assert main([str(a) for a in args]) == 0
    return root


@pytest.fixture
def case(planned: Path, tmp_path: Path) -> Path:
    """A copy of the planned case (the plan records the original CT's absolute path)."""
    return copy_case(planned, tmp_path / "case")
