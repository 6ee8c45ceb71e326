"""`seldinger simulate ire|thermal|cryo`: phantom and plan modes, outputs, refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erfc

from case_copy import copy_case
from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.imaging import Volume
from seldinger.io import read_volume, write_volume


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


def _probes(
    path: Path, tips: list[tuple[float, float, float]], pairs: list[dict[str, float]]
) -> Path:
    document = {
        "probes": [
            {"tip_lps_mm": list(t), "direction": [0, 0, 1], "exposure_mm": 15.0, "radius_mm": 0.5}
            for t in tips
        ],
        "pairs": pairs,
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_ire_phantom_writes_field_zone_and_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    probes = _probes(
        tmp_path / "probes.json",
        [(-7.5, 0, 7.5), (7.5, 0, 7.5)],
        [{"anode": 0, "cathode": 1, "voltage_v": 2250}],
    )
    out = tmp_path / "ire"
    code, stdout, err = _run(
        capsys,
        "simulate",
        "ire",
        "--phantom-mm",
        60,
        "--tissue",
        "liver",
        "--probes",
        probes,
        "--spacing-mm",
        1.5,
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert {p.name for p in out.iterdir()} == {
        "field_v_per_cm.nii.gz",
        "zone.nii.gz",
        "summary.json",
    }
    assert (
        json.loads((out / "summary.json").read_text())["zone_volume_ml"]
        == summary["zone_volume_ml"]
    )
    assert summary["threshold_v_per_cm"] == pytest.approx(268.6, abs=0.1)
    assert 0 < summary["pairs"][0]["current_a"] < 50
    assert summary["tissues"][0]["name"] == "liver"
    field = read_volume(out / "field_v_per_cm.nii.gz")
    centre = field.value_at_lps([0.0, 0.0, 0.0])
    assert 700 < float(centre) < 1000  # ≈ 884 V/cm between long needles; less for 15 mm
    zone = read_volume(out / "zone.nii.gz")
    assert np.asarray(zone.array).sum() * 1.5**3 / 1000 == pytest.approx(
        summary["zone_volume_ml"], abs=1e-3
    )
    # again without --force: refused, exit 5
    code, _, err = _run(
        capsys, "simulate", "ire", "--phantom-mm", 60, "--probes", probes, "--out", out
    )
    assert code == ExitCode.IO


@pytest.mark.parametrize(
    ("tips", "pairs", "options", "message"),
    [
        (
            [(0, 0, 7.5), (0.4, 0, 7.5)],
            [{"anode": 0, "cathode": 1, "voltage_v": 1000}],
            [],
            "cross or touch",
        ),
        (
            [(-7.5, 0, 7.5), (7.5, 0, 200)],
            [{"anode": 0, "cathode": 1, "voltage_v": 1000}],
            [],
            "leaves the simulation grid",
        ),
        (
            [(-7.5, 0, 7.5), (7.5, 0, 7.5)],
            [{"anode": 0, "cathode": 1, "voltage_v": 3500}],
            [],
            "3000",
        ),
        (
            [(-7.5, 0, 7.5), (7.5, 0, 7.5)],
            [{"anode": 0, "cathode": 1, "voltage_v": 2000}],
            ["--spacing-mm", 0],
            "--spacing-mm",
        ),
    ],
)
def test_bad_ire_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tips: list[tuple[float, float, float]],
    pairs: list[dict[str, float]],
    options: list[object],
    message: str,
) -> None:
    probes = _probes(tmp_path / "probes.json", tips, pairs)
    code, _, err = _run(
        capsys,
        "simulate",
        "ire",
        "--phantom-mm",
        40,
        "--probes",
        probes,
        "--out",
        tmp_path / "o",
        *options,
    )
    assert code == ExitCode.BAD_INPUT
    assert message in err
    assert not (tmp_path / "o").exists()


def test_thermal_point_source_phantom(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "t"
    code, stdout, err = _run(
        capsys,
        "simulate",
        "thermal",
        "--phantom-mm",
        41,
        "--tissue",
        "liver",
        "--point-source-w",
        10,
        "--duration-s",
        120,
        "--linear",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert {p.name for p in out.iterdir()} == {
        "temperature_c.nii.gz",
        "damage_omega.nii.gz",
        "zone.nii.gz",
        "summary.json",
    }
    temperature = read_volume(out / "temperature_c.nii.gz")
    # the closed form of physics.md §2.4 at r = 10 mm, t = 120 s, 10 W in perfused liver
    k, rho_c, sink = 0.52, 1079 * 3540, 3.6e-3 * 1000 * 3639
    length, alpha, tau = math.sqrt(k / sink), k / rho_c, rho_c / sink
    u, v = 0.01 / (2 * math.sqrt(alpha * 120)), math.sqrt(120 / tau)
    theta = (
        10
        / (8 * math.pi * k * 0.01)
        * (math.exp(-0.01 / length) * erfc(u - v) + math.exp(0.01 / length) * erfc(u + v))
    )
    rise = float(temperature.value_at_lps([10.0, 0.0, 0.0])) - 37.0
    assert rise == pytest.approx(theta, rel=0.03)
    assert (
        summary["zone_volume_ml"] > 0 and summary["isotherm_60c_ml"] <= summary["isotherm_50c_ml"]
    )


def test_cryo_phantom_isotherms(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    probes = _probes(tmp_path / "probes.json", [(0, 0, 7.5)], [])
    code, stdout, err = _run(
        capsys,
        "simulate",
        "cryo",
        "--phantom-mm",
        31,
        "--probes",
        probes,
        "--duration-s",
        120,
        "--out",
        tmp_path / "c",
        "--json",
    )
    assert code == 0, err
    iso = json.loads(stdout)["isotherms"]
    assert (
        iso["-40c"]["zone_volume_ml"] < iso["-20c"]["zone_volume_ml"] < iso["0c"]["zone_volume_ml"]
    )


@pytest.fixture(scope="module")
def liver_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic abdomen: body, liver with a 6 mm vessel, a lesion; planned by the CLI."""
    root = tmp_path_factory.mktemp("liver") / "case"
    root.mkdir(parents=True)
    shape = (90, 90, 60)
    affine = np.array([[1.0, 0, 0, -45.0], [0, 1.0, 0, -45.0], [0, 0, 1.0, -30.0], [0, 0, 0, 1]])
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    x, y, z = i - 45, j - 45, k - 30
    body = np.hypot(x, y) <= 42
    liver = body & (np.hypot(x, y) <= 35)
    vessel = np.hypot(x - 10, y) <= 3  # along S, 10 mm to the left of the centre
    lesion = np.sqrt((x + 4) ** 2 + y**2 + z**2) <= 6
    ct = np.where(body, 40, -1000).astype(np.int16)
    ct[liver] = 60
    ct[vessel & body] = 150
    write_volume(Volume(ct, affine.copy()), root / "ct.nii.gz")
    write_volume(Volume(lesion.astype(np.uint8), affine.copy()), root / "lesion.nii.gz")
    masks = {"body": body, "liver": liver, "vessels": vessel & body}
    Anatomy(masks={n: Volume(m, affine.copy()) for n, m in masks.items()}).save(root / "anatomy")
    args = ["plan", "trajectory", root / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", root / "lesion.nii.gz", "--out", root / "plan.json", "--top", "2"]
    assert main([str(a) for a in args]) == 0
    return root


def test_thermal_on_a_plan_holds_vessels_at_blood_temperature(
    capsys: pytest.CaptureFixture[str], liver_plan: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rf"
    code, stdout, err = _run(
        capsys,
        "simulate",
        "thermal",
        liver_plan / "plan.json",
        "--device",
        "cooltip-rf",
        "--setting",
        "invivo-liver",
        "--tip-lps-mm",
        "-4,0,5",
        "--direction",
        "0,0,1",
        "--duration-s",
        240,
        "--spacing-mm",
        1.0,
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    names = {t["name"] for t in summary["tissues"]}
    assert {"liver", "blood", "tumour"} <= names
    temperature = read_volume(out / "temperature_c.nii.gz")
    assert float(temperature.value_at_lps([10.0, 0.0, 0.0])) == pytest.approx(37.0, abs=1e-6)
    assert float(temperature.value_at_lps([-4.0, 4.0, -2.0])) > 45.0
    zone = read_volume(out / "zone.nii.gz")
    assert float(zone.value_at_lps([10.0, 0.0, 0.0])) == 0


def test_ire_on_a_plan_refuses_probes_outside_the_body(
    capsys: pytest.CaptureFixture[str], liver_plan: Path, tmp_path: Path
) -> None:
    probes = _probes(
        tmp_path / "p.json",
        [(-38.0, 20, 7.5), (-38.0, 35, 7.5)],
        [{"anode": 0, "cathode": 1, "voltage_v": 2250}],
    )
    code, _, err = _run(
        capsys,
        "simulate",
        "ire",
        liver_plan / "plan.json",
        "--probes",
        probes,
        "--out",
        tmp_path / "o",
    )
    assert code == ExitCode.BAD_INPUT and "outside the body" in err


def test_thermal_on_a_plan_takes_its_first_applicator(
    capsys: pytest.CaptureFixture[str], liver_plan: Path, tmp_path: Path
) -> None:
    """Without --tip-lps-mm the simulation runs where the plan's applicator 1 stands; a plan
    with no ablation is refused in one line saying what to give."""
    case = copy_case(liver_plan, tmp_path / "case")
    args = ["simulate", "thermal", case / "plan.json", "--device", "cooltip-rf"]
    args += ["--setting", "invivo-liver", "--duration-s", 120, "--out", tmp_path / "rf"]
    code, _, err = _run(capsys, *args)
    assert code == 3 and "no ablation applicator" in err and "--tip-lps-mm" in err
    code, _, err = _run(
        capsys, "plan", "ablation", case / "plan.json", "--device", "cooltip-rf",
        "--setting", "invivo-liver", "--margin-mm", 2,
    )  # fmt: skip
    assert code == 0, err
    code, stdout, err = _run(capsys, *args, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    placed = summary["applicator"]
    assert placed["source"].startswith("applicator 1 of") and placed["source"].endswith("plan.json")
    zone = read_volume(tmp_path / "rf" / "zone.nii.gz")
    assert float(zone.value_at_lps(placed["tip_lps_mm"])) == 1
