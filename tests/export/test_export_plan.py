"""`seldinger export` of whole plans on lidc-idri-0001: from DICOM and from NIfTI input.

Each plan holds the anatomy (model labels), the nodule as target, a seed implant, and a
tracker registration; the export must validate (dciodvfy: no error; dcmdump reads) and
round-trip: SEG Dice >= 0.99, RTSTRUCT Dice >= 0.97 with centroids within 0.5 mm, RT Plan
seed positions equal the plan's to 0.01 mm, RT Dose equal the TG-43 grid to 0.1 %, the
registration matrix to 1e-6. Objects join the CT's study and Frame of Reference.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from seldinger.app.cli import main
from seldinger.errors import ExitCode
from seldinger.export.dicom import (
    normalise_name,
    read_brachy_plan,
    read_registration,
    read_rtdose,
    read_rtstruct,
    read_source_series,
)
from seldinger.export.seed_figures import seed_dose_grid
from seldinger.io import read_ct, write_volume
from seldinger.physics.tg43 import load_seed_data
from seldinger.plan import (
    NavigationSection,
    Plan,
    RegistrationRecord,
    SeedDoseMetrics,
    SeedGoalsRecord,
    SeedNeedleRecord,
    SeedSection,
    StructureRef,
)
from seldinger.workflow.trajectory import lesion_target

#: A known tracker_to_ct: 20° about z and a translation (rigid).
_ANGLE = np.radians(20.0)
TRACKER_TO_CT = np.array(
    [[np.cos(_ANGLE), -np.sin(_ANGLE), 0.0, 12.5], [np.sin(_ANGLE), np.cos(_ANGLE), 0.0, -40.25],
     [0.0, 0.0, 1.0, 230.0], [0.0, 0.0, 0.0, 1.0]]
)  # fmt: skip


def _seed_section(centre: np.ndarray, strength_u: float) -> SeedSection:
    """Two parallel needles along +y (posterior) through the nodule, seeds every 5 mm."""
    needles = []
    for dx in (-3.0, 3.0):
        seeds = [tuple(np.round(centre + np.array([dx, dy, 0.0]), 2)) for dy in (5.0, 0.0, -5.0)]
        entry = np.round(centre + np.array([dx, -40.0, 0.0]), 2)
        needles.append(
            SeedNeedleRecord(
                entry_lps_mm=tuple(entry), direction_lps=(0.0, 1.0, 0.0), seeds_lps_mm=seeds,
                depths_mm=[round(float(np.linalg.norm(np.subtract(s, entry))), 1) for s in seeds],
            )
        )  # fmt: skip
    metrics = SeedDoseMetrics(d90_gy=130.0, d100_gy=90.0, v100_percent=96.0, v150_percent=55.0,
                              v200_percent=30.0, conformity_index=0.7, external_index=0.3,
                              homogeneity_index=0.4)  # fmt: skip
    return SeedSection(target="nodule", seed_data="6711", seed_model="6711", template="free",
                       strength_u=strength_u, strength_mci=round(strength_u / 1.270, 4),
                       goals=SeedGoalsRecord(prescription_gy=120.0), margin_mm=5.0,
                       needles=needles, metrics=metrics)  # fmt: skip


def _plan(
    case,
    folder: Path,
    ct_source: Path,
    source_format: str,
    series_uid: str | None,
    strength_u: float,
) -> Path:  # type: ignore[no-untyped-def]
    """A plan of ``case`` with masks beside it (written by hand: the planners are tested elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = Plan.new(case.ct, ct_source, series_uid, source_format=source_format)
    for name, mask in case.masks.items():
        write_volume(mask, folder / f"{name}.nii.gz")
        if name != "nodule":
            volume_ml = float(mask.array.sum()) * float(np.prod(mask.spacing_mm)) / 1000.0
            plan.structures[name] = StructureRef(mask_path=f"{name}.nii.gz", volume_ml=volume_ml)
    plan.targets.append(lesion_target("nodule", case.masks["nodule"], "nodule.nii.gz"))
    plan.seeds = _seed_section(np.asarray(plan.targets[0].centroid_lps_mm), strength_u)
    plan.navigation = NavigationSection(registrations=[RegistrationRecord(
        id="registration-1", name="markers", moving_to_fixed=TRACKER_TO_CT.tolist(), n_fiducials=5, fre_mm=0.4,
    )])  # fmt: skip
    return plan.save(folder / "plan.json")


@pytest.fixture(scope="module")
def exports(dicom_case, nifti_case, tmp_path_factory) -> dict[str, tuple[Path, Path]]:  # type: ignore[no-untyped-def]
    """(plan, export folder) for the DICOM-input and the NIfTI-input plan."""
    root = tmp_path_factory.mktemp("export_plan")
    write_volume(nifti_case.ct, root / "ct.nii.gz")
    plans = {
        # the DICOM case's strength is below 1 U, the NIfTI case's above: both encodings
        "dicom": _plan(dicom_case, root / "dicom_plan", dicom_case.folder, "dicom",
                       str(dicom_case.series.datasets[0].SeriesInstanceUID), 0.6),
        "nifti": _plan(nifti_case, root / "nifti_plan", root / "ct.nii.gz", "nifti", None, 1.016),
    }  # fmt: skip
    out = {}
    for name, plan in plans.items():
        folder = root / f"{name}_export"
        assert main(["export", str(plan), "--out", str(folder), "--format", "dicom,stl,nifti"]) == 0
        out[name] = (plan, folder)
    return out


@pytest.mark.parametrize("source", ["dicom", "nifti"])
def test_every_exported_object_validates(exports, source, dciodvfy_errors, dcmdump_reads) -> None:  # type: ignore[no-untyped-def]
    _, folder = exports[source]
    objects = sorted((folder / "dicom").glob("*.dcm"))
    assert {p.name for p in objects} == {
        "seg.dcm",
        "rtstruct.dcm",
        "rtplan.dcm",
        "rtdose.dcm",
        "registration-1.dcm",
    }
    cts = sorted((folder / "dicom" / "ct").glob("*.dcm"))
    assert bool(cts) == (source == "nifti")  # a DICOM CT is referenced where it is
    for path in [*objects, *cts[:1], *cts[-1:]]:
        assert dciodvfy_errors(path) == [], path.name
        assert dcmdump_reads(path), path.name


@pytest.mark.parametrize("source", ["dicom", "nifti"])
def test_round_trips(exports, source, request) -> None:  # type: ignore[no-untyped-def]
    plan_path, folder = exports[source]
    plan = Plan.load(plan_path)
    case = request.getfixturevalue(f"{source}_case")
    dicom = folder / "dicom"
    if source == "dicom":
        series = case.series
    else:
        uid = pydicom.dcmread(next((dicom / "ct").glob("*.dcm")), stop_before_pixels=True)
        series = read_source_series(dicom / "ct", str(uid.SeriesInstanceUID), case.ct)
    study = series.datasets[0].StudyInstanceUID
    frame = series.datasets[0].FrameOfReferenceUID
    for name in ("seg", "rtstruct", "rtplan", "rtdose"):
        ds = pydicom.dcmread(dicom / f"{name}.dcm", stop_before_pixels=True)
        assert ds.StudyInstanceUID == study, name
    # SEG and RTSTRUCT
    seg = hd.seg.segread(dicom / "seg.dcm")
    numbers = list(seg.segment_numbers)
    stack = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=list(series.sop_instance_uids),
        segment_numbers=numbers,
        combine_segments=False,
    )  # (k, rows = j, columns = i, segment)
    segments = {
        normalise_name(seg.get_segment_description(n).SegmentLabel): stack[..., m].transpose(
            2, 1, 0
        )
        > 0
        for m, n in enumerate(numbers)
    }
    contours = {
        normalise_name(k): v for k, v in read_rtstruct(dicom / "rtstruct.dcm", series).items()
    }
    for name, mask in case.masks.items():
        truth = np.asarray(mask.array, bool)
        assert _dice(segments[name], truth) >= 0.99, name
        back = contours[name].array.astype(bool)
        assert _dice(back, truth) >= 0.97, name
        np.testing.assert_allclose(_centroid(contours[name]), _centroid(mask), atol=0.5)
    nodule = case.masks["nodule"]
    # RT Plan: seed positions as in the plan
    seeds = read_brachy_plan(dicom / "rtplan.dcm")
    positions = np.concatenate([np.asarray(n, float) for n in seeds.needles_lps_mm])
    np.testing.assert_allclose(positions, np.asarray(plan.seeds.seeds_lps_mm), atol=0.01)  # type: ignore[union-attr]
    assert seeds.strength_u == pytest.approx(plan.seeds.strength_u, abs=1e-6)  # type: ignore[union-attr]
    # RT Dose: the TG-43 grid of the plan's seeds
    expected, _ = seed_dose_grid(nodule, plan.seeds, load_seed_data("6711"))  # type: ignore[arg-type]
    dose = read_rtdose(dicom / "rtdose.dcm")
    assert dose.geometry.same_as(expected.geometry, atol_mm=1e-3)
    assert np.abs(dose.array - expected.array).max() <= 1e-3 * float(expected.array.max())
    # Spatial Registration: the matrix, tracker -> CT, in the CT's frame
    (registration,) = [
        r for r in read_registration(dicom / "registration-1.dcm") if r.source_frame_uid != frame
    ]
    assert registration.registered_frame_uid == frame
    np.testing.assert_allclose(registration.source_to_registered, TRACKER_TO_CT, atol=1e-6)
    # meshes and NIfTI
    assert (folder / "meshes" / "nodule.stl").stat().st_size > 1000
    assert (folder / "nifti" / "seed_dose_gy.nii.gz").is_file()


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.count_nonzero(a & b)) / float(np.count_nonzero(a) + np.count_nonzero(b))


def _centroid(mask) -> np.ndarray:  # type: ignore[no-untyped-def]
    return mask.index_to_lps(np.argwhere(np.asarray(mask.array, bool)).mean(axis=0))


def test_export_refuses_and_leaves_nothing(exports, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plan_path, _ = exports["nifti"]
    out = tmp_path / "out"
    # a format name that does not exist is a usage error (exit 2), said before any reading
    assert main(["export", str(plan_path), "--out", str(out), "--format", "dicom,pdf"]) == 2
    err = capsys.readouterr().err
    assert "--format" in err and "pdf is not a format" in err and not out.exists()
    # names in capitals are the same formats (a tester's DICOM,STL was refused)
    assert (
        main(["export", str(plan_path), "--out", str(tmp_path / "caps"), "--format", "NIfTI"]) == 0
    )
    assert any((tmp_path / "caps").rglob("*.nii.gz"))
    # an empty target mask is refused, naming the target
    folder = tmp_path / "broken"
    folder.mkdir()
    plan = Plan.load(plan_path)
    empty = read_ct(plan_path.parent / "nodule.nii.gz").volume
    write_volume(empty.with_array(np.zeros(empty.shape, np.uint8)), folder / "nodule.nii.gz")
    for name in plan.structures:
        (folder / f"{name}.nii.gz").symlink_to(plan_path.parent / f"{name}.nii.gz")
    moved = plan.model_copy(
        update={
            "case": plan.case.model_copy(
                update={"source_path": str(plan_path.parent.parent / "ct.nii.gz")}
            )
        }
    )
    moved.save(folder / "plan.json")
    code = main(["export", str(folder / "plan.json"), "--out", str(out), "--json"])
    assert code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "nodule" in err and "empty" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    # the plan's CT is gone
    gone = moved.model_copy(
        update={"case": moved.case.model_copy(update={"source_path": "gone.nii.gz"})}
    )
    gone.save(folder / "plan.json", force=True)
    assert main(["export", str(folder / "plan.json"), "--out", str(out)]) == ExitCode.IO
    assert "--ct" in capsys.readouterr().err and not out.exists()


def test_every_export_of_a_nifti_ct_is_one_study(exports, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan_path, first = exports["nifti"]
    again = tmp_path / "again"
    assert main(["export", str(plan_path), "--out", str(again), "--format", "dicom"]) == 0
    for name in ("ct/CT0001.dcm", "ct/CT0010.dcm"):
        a, b = (
            pydicom.dcmread(f / "dicom" / name, stop_before_pixels=True) for f in (first, again)
        )
        assert (a.StudyInstanceUID, a.SeriesInstanceUID, a.SOPInstanceUID) == (
            b.StudyInstanceUID, b.SeriesInstanceUID, b.SOPInstanceUID
        )  # fmt: skip
        assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    seg_a, seg_b = (
        pydicom.dcmread(f / "dicom" / "seg.dcm", stop_before_pixels=True) for f in (first, again)
    )
    assert seg_a.StudyInstanceUID == seg_b.StudyInstanceUID
    assert seg_a.SOPInstanceUID != seg_b.SOPInstanceUID  # a new object each time


def test_the_parsers_formats_are_the_exporters() -> None:
    from seldinger.app.cli import EXPORT_FORMATS
    from seldinger.workflow.export import FORMATS

    assert EXPORT_FORMATS == FORMATS
