"""Organs Seldinger does not segment, added as masks made elsewhere, then forbidden.

On totalseg-abdomen: our segmentation, the reference gallbladder added with
`segment --add`, and a 2 cm liver lesion 3 mm from it (a tester's case): forbidden, the
gallbladder is crossed by no path and reached by no ablation zone; not forbidden, the zone
reaches it and the warning names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.imaging import Volume
from seldinger.io import read_volume, write_volume
from seldinger.plan import Plan
from shared_paths import ABDOMEN, requires_shared

pytestmark = requires_shared


def _run(capsys, *args):  # type: ignore[no-untyped-def]
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The abdomen segmented, the reference gallbladder and a lesion by it as files."""
    root = tmp_path_factory.mktemp("added")
    labels = read_volume(ABDOMEN / "model_labels.nii.gz")
    code = {v: int(k) for k, v in json.loads((ABDOMEN / "model_labels.json").read_text()).items()}
    array = np.asarray(labels.array)
    gallbladder = array == code["gallbladder"]
    liver = array == code["liver"]
    write_volume(labels.with_array(gallbladder.astype(np.uint8)), root / "gallbladder.nii.gz")
    spacing = labels.spacing_mm
    to_gb = ndi.distance_transform_edt(~gallbladder, sampling=spacing)
    depth = ndi.distance_transform_edt(liver, sampling=spacing)
    fits = liver & (np.abs(to_gb - 13.0) < 1.6) & (depth >= 11.0)
    centre = np.argwhere(fits)[np.argmax(depth[fits])]
    index = np.indices(labels.shape).reshape(3, -1).T
    dist = np.linalg.norm((index - centre) * spacing, axis=1).reshape(labels.shape)
    write_volume(labels.with_array((dist <= 10.0).astype(np.uint8)), root / "lesion.nii.gz")
    assert main(["segment", str(ABDOMEN / "ct.nii.gz"), "--out", str(root / "anatomy")]) == 0
    return root


def _zone_and_gallbladder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    zone = np.asarray(read_volume(root / "ablation_zone.nii.gz").array, dtype=bool)
    gallbladder = np.asarray(read_volume(root / "gallbladder.nii.gz").array, dtype=bool)
    return zone, gallbladder


def test_an_added_gallbladder_is_kept_out_of_paths_and_zones(capsys, case: Path) -> None:  # type: ignore[no-untyped-def]
    ct = ABDOMEN / "ct.nii.gz"
    anatomy = case / "anatomy"
    # Added into the existing folder: nothing segmented again, anatomy.json lists it.
    code, _, err = _run(capsys, "segment", ct, "--out", anatomy, "--add",
                        f"gallbladder={case / 'gallbladder.nii.gz'}")  # fmt: skip
    assert code == 0, err
    listed = json.loads((anatomy / "anatomy.json").read_text())["structures"]
    assert listed["gallbladder"]["added"] is True and listed["gallbladder"]["volume_ml"] > 5
    # Not forbidden: the zone reaches the gallbladder, and the warning names it.
    args = ["plan", "trajectory", ct, "--anatomy", anatomy, "--lesion", case / "lesion.nii.gz"]
    code, _, err = _run(capsys, *args, "--out", case / "plan.json")
    assert code == 0, err
    ablate = ["plan", "ablation", case / "plan.json", "--device", "emprint"]
    code, out, err = _run(capsys, *ablate, "--setting", "100W-10min")
    assert code == 0, err
    zone, gallbladder = _zone_and_gallbladder(case)
    assert (zone & gallbladder).any()
    assert "the zone reaches beyond the lesion's organ into: gallbladder" in " ".join(out.split())
    # Forbidden: no ranked path crosses it, and no zone reaches it.
    forbid = [*args, "--out", case / "plan.json", "--forbid", "gallbladder", "--force"]
    code, _, err = _run(capsys, *forbid, "--json")
    assert code == 0, err
    plan = Plan.load(case / "plan.json")
    assert plan.trajectories is not None and "gallbladder" in plan.trajectories.rules.forbidden
    for path in plan.trajectories.paths:
        assert path.min_distance_mm["gallbladder"] > 0
    code, out, err = _run(capsys, *ablate, "--setting", "100W-10min", "--force")
    assert code == 0, err
    zone, gallbladder = _zone_and_gallbladder(case)
    assert not (zone & gallbladder).any()
    assert "gallbladder" not in out
    # The applicators' tracts say how much normal liver they cross, in the plan and table.
    ablation = Plan.load(case / "plan.json").ablation
    assert ablation is not None
    assert all(a.path.liver_parenchyma_mm is not None for a in ablation.applicators)
    assert "liver" in out.split("applicator(s)")[1].split("covered")[0]


def test_bad_added_masks_are_refused_before_anything_is_written(
    capsys, case: Path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    ct = ABDOMEN / "ct.nii.gz"
    gallbladder = case / "gallbladder.nii.gz"
    # A name the anatomy has already: --force to replace it.
    code, _, err = _run(capsys, "segment", ct, "--out", case / "anatomy", "--add",
                        f"liver={gallbladder}")  # fmt: skip
    assert code == ExitCode.BAD_INPUT and "has a liver already" in err and "--force" in err
    # A mask on another grid, into a new folder: refused before segmenting, nothing left.
    other = read_volume(gallbladder)
    affine = np.array(other.affine, dtype=float)
    affine[:3, 3] += 7.0
    write_volume(Volume(np.asarray(other.array), affine), tmp_path / "moved.nii.gz")
    out = tmp_path / "new_anatomy"
    code, _, err = _run(capsys, "segment", ct, "--out", out, "--add",
                        f"gallbladder={tmp_path / 'moved.nii.gz'}")  # fmt: skip
    assert code == ExitCode.BAD_INPUT and "moved.nii.gz" in err
    assert not out.exists()
    # Not NAME=MASK, or a bad name.
    code, _, err = _run(capsys, "segment", ct, "--out", out, "--add", "gallbladder")
    assert code == ExitCode.USAGE and "NAME=MASK" in err
    code, _, err = _run(capsys, "segment", ct, "--out", case / "anatomy", "--add",
                        f"Gall Bladder={gallbladder}")  # fmt: skip
    assert code == ExitCode.BAD_INPUT and "lower case" in err
    # The same name into a new folder: refused before segmenting, nothing written.
    code, _, err = _run(capsys, "segment", ct, "--out", out, "--add",
                        f"Gall Bladder={gallbladder}")  # fmt: skip
    assert code == ExitCode.BAD_INPUT and "lower case" in err
    assert not out.exists()
