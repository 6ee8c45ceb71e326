"""Fixtures of the DICOM export tests: the two lidc-idri-0001 cases and the validators.

- DICOM input: the 16 real slices (``../shared/data/lidc-idri-0001/dicom``) read with
  ``read_ct`` and referenced as they are; masks are the model labels and the consensus
  nodule resampled (nearest) onto those 16 slices.
- NIfTI input: ``ct.nii.gz`` cropped to a 80 x 80 x 40 mm box around the nodule (kept
  small for speed), written as a new CT series; masks cropped the same way.

``dciodvfy`` (dicom3tools) and ``dcmdump`` (dcmtk) are Debian packages; tests that need
them skip with the reason when they are absent (CI installs them).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from shared_paths import LIDC, NODULE_CENTROID_LPS_MM

DCIODVFY = shutil.which("dciodvfy")
DCMDUMP = shutil.which("dcmdump")

#: model_labels.csv ids of the structures the tests export.
LUNG_LEFT_IDS = (10, 11)
LUNG_RIGHT_IDS = (12, 13, 14)
HEART_ID = 51
AORTA_ID = 52


@dataclass
class Case:
    """A CT ready to export onto: its series, its Volume and masks on its grid."""

    series: object  # SourceSeries
    ct: object  # Volume
    masks: dict[str, object]  # name -> boolean Volume on the CT grid
    folder: Path | None  # the written CT series (NIfTI input) or the source folder


def _require_lidc() -> None:
    if not LIDC.is_dir():
        pytest.skip("../shared/data/lidc-idri-0001 is absent")


@pytest.fixture(scope="session")
def lidc_labels():  # type: ignore[no-untyped-def]
    """(model labels, consensus nodule) of lidc-idri-0001 as Volumes."""
    _require_lidc()
    from seldinger.io import read_volume

    return read_volume(LIDC / "model_labels.nii.gz"), read_volume(LIDC / "nodule_consensus.nii.gz")


def _masks(labels, nodule):  # type: ignore[no-untyped-def]
    array = labels.array
    return {
        "lung_left": labels.with_array(np.isin(array, LUNG_LEFT_IDS)),
        "lung_right": labels.with_array(np.isin(array, LUNG_RIGHT_IDS)),
        "heart": labels.with_array(array == HEART_ID),
        "nodule": nodule.with_array(nodule.array > 0),
    }


@pytest.fixture(scope="session")
def dicom_case(lidc_labels) -> Case:  # type: ignore[no-untyped-def]
    """The 16 real DICOM slices as the referenced series, with masks on them."""
    folder = LIDC / "dicom"
    if len(list(folder.glob("*.dcm"))) != 16:
        pytest.skip(f"the 16 LIDC-IDRI-0001 DICOM slices are not in {folder}")
    from seldinger.export.dicom import read_source_series
    from seldinger.io import read_ct

    ct = read_ct(folder)
    series = read_source_series(folder, str(ct.meta.series_uid), ct.volume)
    labels, nodule = lidc_labels
    on_grid = [v.resample_to(ct.volume, interpolation="nearest") for v in (labels, nodule)]
    return Case(series, ct.volume, _masks(*on_grid), folder)


@pytest.fixture(scope="session")
def nifti_case(lidc_ct, lidc_labels, tmp_path_factory) -> Case:  # type: ignore[no-untyped-def]
    """ct.nii.gz cropped around the nodule and written as a new CT series."""
    from seldinger.export.dicom import write_ct_series

    centre = np.asarray(NODULE_CENTROID_LPS_MM)
    half = np.array([40.0, 40.0, 20.0])
    ct = lidc_ct.volume.crop_lps(centre - half, centre + half)
    labels, nodule = (v.crop_lps(centre - half, centre + half) for v in lidc_labels)
    folder = tmp_path_factory.mktemp("nifti_case") / "ct"
    series = write_ct_series(ct, folder)
    masks = {name: m for name, m in _masks(labels, nodule).items() if m.array.any()}
    assert {"lung_left", "nodule"} <= set(masks)  # the right lung is outside the box
    return Case(series, ct, masks, folder)


def _dciodvfy_lines(path: Path) -> str:
    run = subprocess.run(
        [str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    return run.stdout + run.stderr


@pytest.fixture(scope="session")
def dciodvfy_errors(tmp_path_factory) -> Callable[[Path], list[str]]:  # type: ignore[no-untyped-def]
    """``errors(path)``: the lines of dciodvfy's report that start with "Error".

    dicom3tools 1.00~20220618 aborts on 32-bit pixel data (assertion
    ``bitsallocated <= bytesinword*8`` in ``attrothr.cc``), which every RT Dose has. For
    such a file the IOD is verified on a copy whose pixel data is declared 16-bit (same
    attributes otherwise, half the bytes): every module and attribute is still checked;
    the dose values themselves are checked by the round-trip tests.
    """
    if DCIODVFY is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    scratch = tmp_path_factory.mktemp("dciodvfy")

    def errors(path: Path) -> list[str]:
        report = _dciodvfy_lines(path)
        if "Assertion" in report and "bitsallocated" in report:
            ds = pydicom.dcmread(path)
            assert int(ds.BitsAllocated) == 32, report
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
            copy = scratch / f"16bit_{Path(path).name}"
            ds.save_as(copy, enforce_file_format=True)
            report = _dciodvfy_lines(copy)
        return [line for line in report.splitlines() if line.startswith("Error")]

    return errors


@pytest.fixture(scope="session")
def dcmdump_reads() -> Callable[[Path], bool]:
    """``reads(path)``: dcmtk's dcmdump parses the file without an error."""
    if DCMDUMP is None:
        pytest.skip("dcmdump (Debian package dcmtk) is not installed")

    def reads(path: Path) -> bool:
        run = subprocess.run(
            [str(DCMDUMP), "-q", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return run.returncode == 0 and "E:" not in run.stderr

    return reads
