"""`seldinger segment` and `seldinger lesion`: outputs, the --json contract, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.io import read_ct, read_volume, write_volume
from shared_paths import ABDOMEN, LIDC, NODULE_CENTROID_LPS_MM, requires_shared

pytestmark = requires_shared


def _run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_segment_writes_masks_in_the_ct_geometry(capsys, tmp_path) -> None:
    out = tmp_path / "anatomy"
    code, stdout, err = _run(
        capsys,
        "segment",
        ABDOMEN / "ct.nii.gz",
        "--out",
        out,
        "--structures",
        "body,bones,liver",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert list(summary["structures"]) == ["body", "bones", "liver"]
    for name, info in summary["structures"].items():
        assert info["volume_ml"] > 0 and info["seconds"] >= 0
        assert (out / f"{name}.nii.gz").is_file()
    assert json.loads((out / "anatomy.json").read_text())["engine"] == "classical"
    ct = read_ct(ABDOMEN / "ct.nii.gz").volume
    liver = read_volume(out / "liver.nii.gz")
    assert liver.geometry.same_as(ct.geometry)
    # refuses to overwrite, then replaces with --force
    code, _, err = _run(
        capsys, "segment", ABDOMEN / "ct.nii.gz", "--out", out, "--structures", "body"
    )
    assert code == ExitCode.IO and "exists" in err
    code, _, err = _run(
        capsys, "segment", ABDOMEN / "ct.nii.gz", "--out", out, "--structures", "body", "--force"
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["anatomy.json", "body.nii.gz"]


def test_segment_refuses_an_image_not_in_hu(capsys, tmp_path) -> None:
    ct = read_ct(ABDOMEN / "ct.nii.gz").volume
    scaled = ct.with_array(((ct.array + 1024).clip(0) / 4).astype(np.int16))  # 0 … 1100
    src = tmp_path / "scaled.nii.gz"
    write_volume(scaled, src)
    out = tmp_path / "anatomy"
    code, _, err = _run(capsys, "segment", src, "--out", out)
    assert code == ExitCode.BAD_INPUT
    assert "Hounsfield" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaled.nii.gz"]


def test_segment_unknown_structure_and_missing_engine(capsys, tmp_path) -> None:
    code, _, err = _run(
        capsys, "segment", ABDOMEN / "ct.nii.gz", "--out", tmp_path / "a", "--structures", "kidney"
    )
    assert code == ExitCode.BAD_INPUT and "unknown structure 'kidney'" in err
    code, _, err = _run(
        capsys, "segment", ABDOMEN / "ct.nii.gz", "--out", tmp_path / "b", "--engine", "nnunet"
    )
    assert code == ExitCode.BAD_INPUT and "unknown segmentation engine" in err
    assert list(tmp_path.iterdir()) == []


def test_lesion_json_contract(capsys, tmp_path) -> None:
    out = tmp_path / "nodule.nii.gz"
    seed = ",".join(str(v) for v in NODULE_CENTROID_LPS_MM)
    code, stdout, err = _run(
        capsys, "lesion", LIDC / "ct.nii.gz", "--seed-lps-mm", seed, "--out", out, "--json"
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert 5.0 <= result["volume_ml"] <= 10.6
    assert np.allclose(result["centroid_lps_mm"], NODULE_CENTROID_LPS_MM, atol=3.0)
    assert 15.0 < result["recist_diameter_mm"] <= result["max_diameter_mm"] < 45.0
    mask = read_volume(out)
    voxel_ml = float(np.prod(mask.spacing_mm)) / 1000.0
    assert np.count_nonzero(mask.array) * voxel_ml == pytest.approx(result["volume_ml"], rel=1e-3)


def test_lesion_refinement_options_and_figure(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed = ",".join(str(v) for v in NODULE_CENTROID_LPS_MM)
    out, figure = tmp_path / "nodule.nii.gz", tmp_path / "nodule.png"
    code, stdout, err = _run(
        capsys,
        "lesion", LIDC / "ct.nii.gz", "--seed-lps-mm", seed, "--out", out, "--json",
        "--figure", figure, "--max-diameter-mm", "60",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    assert out.is_file() and figure.is_file() and result["figure"] == str(figure)
    assert result["boundary_contrast_hu"] > 100 and 0 < result["edge_fraction"] <= 1
    # A box one slice thin (zero depth in z) holds no lesion: one line, nothing written.
    flat = tmp_path / "flat.nii.gz"
    code, _, err = _run(
        capsys,
        "lesion", LIDC / "ct.nii.gz", "--seed-lps-mm", seed, "--out", flat,
        "--box-lps-mm", "40,70,-116,75,105,-116",
    )  # fmt: skip
    assert code == 3 and "box" in err and not flat.exists()
    code, _, err = _run(
        capsys,
        "lesion", LIDC / "ct.nii.gz", "--seed-lps-mm", seed, "--out", flat,
        "--box-lps-mm", "40,70,-116",
    )  # fmt: skip
    assert code == 2 and "--box-lps-mm" in err
    # Too small a --max-diameter-mm: the message names the command's options, not the
    # library's arguments, and nothing is written.
    code, _, err = _run(
        capsys,
        "lesion", LIDC / "ct.nii.gz", "--seed-lps-mm", seed, "--out", flat,
        "--max-diameter-mm", "12",
    )  # fmt: skip
    message = " ".join(err.split())
    assert code == 3 and "--max-diameter-mm 12" in message and "--box-lps-mm" in message
    assert "max_diameter_mm" not in message and "box_lps_mm" not in message
    assert not flat.exists()


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("0,170,-116", "outside the body"),  # under the table, in air
        ("0,0,0,1", "three numbers"),
        ("900,0,0", "outside the image"),
        # in aerated lung 2 mm from a small vessel: the message says where the click was
        ("80,40,-116", "the click itself is in aerated lung, -905 HU"),
    ],
)
def test_lesion_bad_seed_leaves_nothing(capsys, tmp_path, seed, message) -> None:
    out = tmp_path / "lesion.nii.gz"
    code, _, err = _run(capsys, "lesion", LIDC / "ct.nii.gz", "--seed-lps-mm", seed, "--out", out)
    assert code != 0
    assert message in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []


@requires_shared
def test_a_liver_target_is_told_that_its_vessels_are_not_avoided(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The vessel mask is the lungs' own: for a target in the liver the planner says that
    # the liver's vessels are neither avoided nor measured, instead of "vessel > 100 mm".
    out = tmp_path / "anatomy"
    code, _, err = _run(capsys, "segment", ABDOMEN / "ct.nii.gz", "--out", out)
    assert code == 0, err
    liver = read_volume(out / "liver.nii.gz")
    depth = ndi.distance_transform_edt(np.asarray(liver.array, bool), sampling=liver.spacing_mm)
    inside = np.unravel_index(int(np.argmax(depth)), depth.shape)
    target = ",".join(f"{v:.1f}" for v in liver.index_to_lps(np.array(inside, float)))
    code, stdout, err = _run(
        capsys,
        "plan", "trajectory", ABDOMEN / "ct.nii.gz", "--anatomy", out, "--out",
        tmp_path / "plan.json", f"--target-lps-mm={target}", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    notes = " ".join(summary["notes"])
    assert (
        "the target lies outside the lungs: the vessel mask holds pulmonary vessels only" in notes
    )
    # A point in the liver is a liver target: each path says how much normal liver it
    # crosses (the deepest point: the best paths cross at least 10 mm).
    paths = summary["trajectories"]
    assert all(p["liver_parenchyma_mm"] is not None for p in paths)
    assert paths[0]["liver_parenchyma_mm"] >= 9.9
    assert paths[0]["risk_terms"]["liver_capsule"] <= 0.02
