"""Pulling a 133-slice CT series from a real PACS: our pull over DICOMweb and DIMSE C-GET
beside dicomweb-client alone.

Starts a throw-away Orthanc (with its DICOMweb plugin) on 127.0.0.1 as the tests do
(``tests/pacs/orthanc_server.py``), writes the whole LIDC-IDRI-0001 CT
(``../shared/data/lidc-idri-0001/ct.nii.gz``, 512x512x133 int16 HU) as a DICOM CT series,
pushes it once, then times in the same run, ``--repeat`` times each (median printed):

1. ``seldinger.pacs.pull`` over DICOMweb (QIDO-RS to find the study, WADO-RS, files
   written into a temporary folder renamed at the end);
2. the baseline: ``dicomweb-client`` alone, ``retrieve_series`` then ``dcmwrite`` of each
   instance into a folder (no query, no atomic folder);
3. ``seldinger.pacs.pull`` over DIMSE (C-FIND, then C-GET on one association).

MB/s counts the bytes of the files written. Loopback only: the figures measure the
client and the server's CPU, not a network. Run from the project root::

    .venv/bin/python benchmarks/bench_pacs.py [--repeat 3] [--workdir DIR]

The series writer below takes one real header of ``lidc-idri-0001/dicom/`` as a template
(new UIDs, per-slice ImagePositionPatient); it stays here until ``seldinger.export`` has a
CT series writer.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LIDC = ROOT.parent / "shared" / "data" / "lidc-idri-0001"
#: Stored value = HU - intercept (the template's RescaleIntercept, slope 1).
TEMPLATE_INTERCEPT_HU = -1024


def write_ct_series(ct_path: Path, template_path: Path, out_dir: Path) -> int:
    """Write ``ct_path`` (any format read_ct takes) as a DICOM CT series; returns slices.

    Each slice is a copy of the template's header with new Study/Series/SOP Instance and
    Frame of Reference UIDs, ImageOrientationPatient from the affine's i and j axes,
    ImagePositionPatient of voxel (0, 0, k), and the pixels of plane k as stored values
    (HU minus the intercept). Private tags are dropped.
    """
    import pydicom
    from pydicom.uid import generate_uid

    from seldinger.io import read_ct

    volume = read_ct(ct_path).volume
    array_hu = np.asarray(volume.array)
    affine = volume.affine
    spacing_mm = np.linalg.norm(affine[:3, :3], axis=0)
    row_dir, col_dir = affine[:3, 0] / spacing_mm[0], affine[:3, 1] / spacing_mm[1]
    template = pydicom.dcmread(template_path)
    template.remove_private_tags()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    stored = (array_hu.astype(np.int32) - TEMPLATE_INTERCEPT_HU).astype(np.int16)
    out_dir.mkdir(parents=True, exist_ok=True)
    for k in range(array_hu.shape[2]):
        ds = template.copy()
        ds.file_meta = template.file_meta.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        position = affine[:3, 3] + k * affine[:3, 2]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f"{spacing_mm[1]:.6f}", f"{spacing_mm[0]:.6f}"]  # row, column
        ds.SliceThickness = f"{spacing_mm[2]:.6f}"
        ds.SliceLocation = f"{position[2]:.6f}"
        ds.InstanceNumber = k + 1
        ds.RescaleIntercept, ds.RescaleSlope = str(TEMPLATE_INTERCEPT_HU), "1"
        plane = np.ascontiguousarray(stored[:, :, k].T)  # DICOM rows run along j
        ds.Rows, ds.Columns = plane.shape
        ds.PixelData = plane.tobytes()
        ds.save_as(out_dir / f"{k:04d}.dcm", enforce_file_format=True)
    return int(array_hu.shape[2])


def baseline_retrieve(url: str, study_uid: str, series_uid: str, out_dir: Path) -> int:
    """dicomweb-client alone: retrieve_series, then write each instance; returns bytes."""
    from dicomweb_client.api import DICOMwebClient
    from pydicom import dcmwrite

    client = DICOMwebClient(url)
    out_dir.mkdir()
    total = 0
    for dataset in client.retrieve_series(
        study_uid, series_uid, media_types=(("application/dicom", "*"),)
    ):
        path = out_dir / f"{dataset.SOPInstanceUID}.dcm"
        dcmwrite(path, dataset, enforce_file_format=True)
        total += path.stat().st_size
    return total


def timed(run: Callable[[Path], int], scratch: Path, repeat: int) -> tuple[float, int]:
    """Median seconds of ``repeat`` runs (each into a fresh folder) and the bytes written."""
    seconds, size = [], 0
    for attempt in range(repeat):
        out = scratch / f"run{attempt}"
        start = time.perf_counter()
        size = run(out)
        seconds.append(time.perf_counter() - start)
        shutil.rmtree(out)
    return statistics.median(seconds), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed pulls per way (median)")
    parser.add_argument("--workdir", type=Path, help="keep the series and Orthanc here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import dicomweb_client
    import pynetdicom

    from pacs.orthanc_server import orthanc_missing, remove, start_orthanc
    from seldinger.io import read_ct
    from seldinger.pacs import PacsNode, find, pull, push

    missing = orthanc_missing()
    if missing or not LIDC.is_dir():
        print(f"cannot run: {missing or f'{LIDC} is absent'}")
        return 1
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pacs."))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}; "
        f"pynetdicom {pynetdicom.__version__}, dicomweb-client {dicomweb_client.__version__}; "
        f"Orthanc on loopback; load average {os.getloadavg()[0]:.2f}"
    )
    series_dir = work / "series"
    template = sorted((LIDC / "dicom").iterdir())[0]
    slices = write_ct_series(LIDC / "ct.nii.gz", template, series_dir)
    reread = read_ct(series_dir).volume
    assert np.array_equal(reread.array, read_ct(LIDC / "ct.nii.gz").volume.array)
    server = start_orthanc(work / "orthanc")
    try:
        dimse = PacsNode.parse(server.dimse)
        web = PacsNode.parse(server.dicomweb)
        clock = time.perf_counter()
        pushed = push(dimse, [series_dir], deidentify=False, timeout_s=60.0)
        push_s = time.perf_counter() - clock
        [series_uid] = pushed.series_uids.values()
        [study_uid] = pushed.study_uids.values()
        assert find(web, series_uid=series_uid)[0].number_of_instances == slices
        print(f"pushed {slices} slices (C-STORE, not de-identified) in {push_s:.2f} s")
        scratch = work / "pulls"
        scratch.mkdir(exist_ok=True)
        ways: dict[str, Callable[[Path], int]] = {
            "seldinger pull, DICOMweb (WADO-RS)": lambda out: (
                pull(web, series_uid, out, timeout_s=60.0).total_bytes
            ),
            "dicomweb-client retrieve_series + write": lambda out: baseline_retrieve(
                server.dicomweb, study_uid, series_uid, out
            ),
            "seldinger pull, DIMSE (C-GET)": lambda out: (
                pull(dimse, series_uid, out, timeout_s=60.0).total_bytes
            ),
        }
        results = {}
        for name, run in ways.items():
            run(scratch / "warm-up")  # caches of Orthanc and of the page cache; not timed
            shutil.rmtree(scratch / "warm-up")
            results[name] = timed(run, scratch, args.repeat)
        baseline_s = results["dicomweb-client retrieve_series + write"][0]
        print(
            f"{'pull of ' + str(slices) + ' slices':<42}{'median s':>10}{'MB/s':>9}{'MB':>8}{'vs baseline':>13}"
        )
        for name, (seconds, size) in results.items():
            print(
                f"{name:<42}{seconds:>10.3f}{size / 1e6 / seconds:>9.1f}{size / 1e6:>8.1f}{baseline_s / seconds:>12.2f}x"
            )
        print(f"(median of {args.repeat} after one warm-up each; MB = 10^6 bytes written)")
    finally:
        remove(server)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
