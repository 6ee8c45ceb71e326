"""Reading a CT-sized DICOM series: seldinger.io.read_ct beside SimpleITK and a pydicom loop.

Builds a 512×512×N (default 300) uncompressed CT series in a temporary folder, then reads
it with each reader in its own fresh Python process and prints, side by side, the best
wall time of ``--repeat`` runs, the peak resident memory the read added, and whether all
readers agree on the geometry (origin, spacing, direction to 1e-4) and on every HU value.

Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_read_dicom.py [--slices 300] [--repeat 3]

Source of the voxels (``--source auto``, first that works): the sample CT that
``seldinger.data.fetch_sample_ct`` has already cached (no download), then
``../shared/data/lidc-idri-0001/ct.nii.gz``, then a seeded synthetic phantom. The
real CT's 133 slices (2.5 mm) are interpolated to N slices 1.1 mm apart.

Peak memory is the high-water mark of the child's resident set size (``VmHWM``, reset
before each run through ``/proc/self/clear_refs``) minus its RSS just before the read,
after imports and one untimed warm-up read. It counts C allocations (GDCM, pixel
decoders) that ``tracemalloc`` would miss. Elsewhere than Linux, ``ru_maxrss`` stands in.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_CT = ROOT.parent / "shared" / "data" / "lidc-idri-0001" / "ct.nii.gz"
SEED = 20240611

#: Targets for seldinger.io.read_ct, printed beside the figures.
GOAL_TIME_VS_SITK = 1.2
GOAL_PEAK_VS_VOXELS = 2.5
GEOMETRY_ATOL = 1e-4  # mm for origin and spacing; unitless for direction cosines

READERS = ("seldinger", "simpleitk", "pydicom")
LABELS = {
    "seldinger": "seldinger.io.read_ct",
    "simpleitk": "SimpleITK ImageSeriesReader",
    "pydicom": "pydicom loop",
}


@dataclass
class Read:
    """What a reader returns: HU indexed (i, j, k) and the grid, in LPS mm."""

    array_ijk_hu: np.ndarray
    origin_lps_mm: np.ndarray
    spacing_mm: np.ndarray
    direction: np.ndarray  # 3×3, columns = unit vectors of the i, j, k axes
    owner: Any = None  # keeps alive whatever array_ijk_hu is a view into


# --------------------------------------------------------------------------- readers


def _seldinger_reader() -> Callable[[Path], Read]:
    from seldinger.io import read_ct

    def read(folder: Path) -> Read:
        volume = read_ct(folder).volume
        affine = np.asarray(volume.affine, dtype=np.float64)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        return Read(volume.array, affine[:3, 3], spacing, affine[:3, :3] / spacing)

    return read


def _simpleitk_reader() -> Callable[[Path], Read]:
    import SimpleITK as sitk

    def read(folder: Path) -> Read:
        names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(names)
        image = reader.Execute()
        # The fastest SimpleITK route: a (k, j, i) view on the image's buffer, no copy.
        view = sitk.GetArrayViewFromImage(image).transpose(2, 1, 0)
        direction = np.array(image.GetDirection()).reshape(3, 3)  # columns: i, j, k axes
        origin, spacing = np.array(image.GetOrigin()), np.array(image.GetSpacing())
        return Read(view, origin, spacing, direction, owner=image)

    return read


def _pydicom_reader() -> Callable[[Path], Read]:
    import pydicom

    def read(folder: Path) -> Read:
        datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
        iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
        row_dir, col_dir = iop[:3], iop[3:]
        normal = np.cross(row_dir, col_dir)

        def along_normal(ds: Any) -> float:
            return float(normal @ np.array([float(v) for v in ds.ImagePositionPatient]))

        datasets.sort(key=along_normal)
        stored = np.stack([ds.pixel_array for ds in datasets])  # (k, row = j, column = i)
        slope = float(datasets[0].get("RescaleSlope", 1.0))
        intercept = float(datasets[0].get("RescaleIntercept", 0.0))
        lo, hi = int(stored.min()) + intercept, int(stored.max()) + intercept
        if slope == 1.0 and intercept.is_integer() and lo >= -32768 and hi <= 32767:
            hu = stored.astype(np.int16, copy=False)
            hu += np.int16(intercept)  # in place: integer HU stay int16
        else:
            hu = stored * np.float32(slope) + np.float32(intercept)
        spacing_rc = [float(v) for v in datasets[0].PixelSpacing]  # [between rows, columns]
        spacing_k = along_normal(datasets[1]) - along_normal(datasets[0])
        origin = np.array([float(v) for v in datasets[0].ImagePositionPatient])
        spacing = np.array([spacing_rc[1], spacing_rc[0], spacing_k])
        direction = np.column_stack([row_dir, col_dir, normal])
        return Read(hu.transpose(2, 1, 0), origin, spacing, direction)

    return read


FACTORIES = {
    "seldinger": _seldinger_reader,
    "simpleitk": _simpleitk_reader,
    "pydicom": _pydicom_reader,
}


# --------------------------------------------------------------------------- memory


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def _maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS: bytes


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _current_rss() -> int:
    rss = _proc_status_bytes("VmRSS")
    return _maxrss_bytes() if rss is None else rss


def _peak_rss() -> int:
    hwm = _proc_status_bytes("VmHWM")
    return _maxrss_bytes() if hwm is None else hwm


# --------------------------------------------------------------------------- child


def run_child(reader: str, folder: Path, repeat: int, out: Path) -> dict[str, Any]:
    """Time and measure one reader in this (fresh) process; save its last result to out."""
    try:
        read = FACTORIES[reader]()
    except ImportError as err:
        return {"unavailable": f"{LABELS[reader]} not available ({type(err).__name__}: {err})"}
    read(folder)  # warm-up: page cache, lazily imported decoders; not timed
    gc.collect()
    times_s, peaks = [], []
    resettable = True
    for run in range(repeat):
        gc.collect()
        resettable = _reset_peak() and resettable
        base = _current_rss()
        start = time.perf_counter()
        result = read(folder)
        times_s.append(time.perf_counter() - start)
        peaks.append(_peak_rss() - base)
        if run < repeat - 1:
            del result  # free before the next run so runs do not stack up
    np.save(out, np.ascontiguousarray(result.array_ijk_hu))
    return {
        "times_s": times_s,
        "peak_bytes": max(peaks),
        "peak_exact": resettable,
        "shape": list(result.array_ijk_hu.shape),
        "dtype": str(result.array_ijk_hu.dtype),
        "origin": [float(v) for v in result.origin_lps_mm],
        "spacing": [float(v) for v in result.spacing_mm],
        "direction": np.asarray(result.direction, dtype=float).tolist(),
    }


# --------------------------------------------------------------------------- parent


def _as_int16_hu(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.int16:
        return array
    rounded = np.rint(array)
    if not np.array_equal(rounded, array):
        raise ValueError(f"the source CT has non-integer HU (dtype {array.dtype}).")
    return rounded.astype(np.int16)


def load_source(source: str) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """HU array (i, j, k), its LPS affine, and where they came from; (None, None, why) if none."""
    tried = []
    if source in ("auto", "sample"):
        try:
            from seldinger.data import cache_dir, fetch_sample_ct
            from seldinger.io import read_ct

            cached = cache_dir() / "lidc-idri-0001_ct.nii.gz"
            if source == "sample" or cached.exists():
                volume = read_ct(fetch_sample_ct()).volume
                return (
                    _as_int16_hu(np.asarray(volume.array)),
                    np.asarray(volume.affine, dtype=np.float64),
                    "seldinger.data.fetch_sample_ct (LIDC-IDRI-0001)",
                )
            tried.append(f"sample CT not cached at {cached}")
        except Exception as err:  # any failure here just moves on to the next source
            if source == "sample":
                raise
            tried.append(f"seldinger.data: {type(err).__name__}: {err}")
    if source in ("auto", "shared") and SHARED_CT.exists():
        import nibabel

        lps_from_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
        image = nibabel.load(SHARED_CT)
        array = _as_int16_hu(np.asanyarray(image.dataobj))
        return array, lps_from_ras @ image.affine, f"{SHARED_CT} ({'; '.join(tried) or 'direct'})"
    if source == "shared":
        raise FileNotFoundError(f"{SHARED_CT} does not exist; use --source synthetic.")
    tried.append(f"{SHARED_CT} absent")
    return None, None, "synthetic phantom (" + "; ".join(tried) + ")"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="number of slices (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per reader (best kept)")
    parser.add_argument(
        "--source",
        choices=("auto", "sample", "shared", "synthetic"),
        default="auto",
        help="voxels to write: cached sample CT, ../shared CT, synthetic phantom (default auto)",
    )
    parser.add_argument("--workdir", type=Path, help="write the series here and keep it")
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.folder, args.repeat, args.out)))
        return 0
    if args.repeat < 1 or args.slices < 2:
        parser.error("--repeat must be ≥ 1 and --slices ≥ 2")

    sys.path.insert(0, str(ROOT / "tests" / "io"))
    import dicom_cases

    if args.source == "synthetic":
        source_array, source_affine, origin_note = None, None, "synthetic phantom"
    else:
        source_array, source_affine, origin_note = load_source(args.source)
    if source_array is None or source_affine is None:
        rng = np.random.default_rng(SEED)
        array, affine = dicom_cases.synthetic_ct((512, 512, args.slices), rng=rng)
    else:
        # A standard axial stack (IOP [1,0,0, 0,1,0], k towards +S) whatever the source layout.
        lps_array, lps_affine = dicom_cases.to_lps_order(source_array, source_affine)
        array, affine = dicom_cases.stretch_along_k(lps_array, lps_affine, args.slices)
        del lps_array
        origin_note += f", {source_array.shape[2]} slices interpolated to {args.slices}"
    del source_array
    voxel_bytes = array.size * 2  # int16 HU

    with tempfile.TemporaryDirectory(prefix="bench_read_dicom_") as scratch:
        folder = args.workdir or Path(scratch) / "series"
        start = time.perf_counter()
        dicom_cases.write_ct_series(folder, array, affine, rng=np.random.default_rng(SEED))
        write_s = time.perf_counter() - start
        print(f"voxels: {origin_note}")
        print(
            f"series: {array.shape[0]}×{array.shape[1]}×{array.shape[2]} int16 HU, spacing "
            f"{np.round(np.linalg.norm(affine[:3, :3], axis=0), 4).tolist()} mm, uncompressed "
            f"explicit VR LE, written in {write_s:.1f} s to {folder}"
        )
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}; best of {args.repeat} after one warm-up read"
        )
        results: dict[str, dict[str, Any]] = {}
        for reader in READERS:
            out = Path(scratch) / f"{reader}.npy"
            command = [sys.executable, __file__, "--child", reader, "--folder", str(folder)]
            command += ["--repeat", str(args.repeat), "--out", str(out)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                results[reader] = {"unavailable": f"{LABELS[reader]} failed: {done.stderr[-800:]}"}
            else:
                results[reader] = json.loads(lines[-1])
                results[reader]["npy"] = out
        _report(results, array, affine, voxel_bytes)
    return 0


def _same_geometry(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(
        np.allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=0, atol=GEOMETRY_ATOL)
        for key in ("origin", "spacing", "direction")
    )


def _same_hu(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("same" if ok else "DIFFERS")


def _report(
    results: dict[str, dict[str, Any]], truth: np.ndarray, affine: np.ndarray, voxel_bytes: int
) -> None:
    """Print the table; 'vs SimpleITK' columns compare geometry (1e-4) and every HU value."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    written = {"origin": affine[:3, 3], "spacing": spacing, "direction": affine[:3, :3] / spacing}
    sitk = results["simpleitk"]
    sitk_ok = "times_s" in sitk
    sitk_best = min(sitk["times_s"]) if sitk_ok else None
    sitk_hu = np.load(sitk["npy"], mmap_mode="r") if sitk_ok else None
    header = (
        f"{'reader':<28} {'best s':>7} {'÷ SimpleITK':>11} {'peak MB':>8} {'peak ÷ voxels':>13} "
        f"{'dtype':>6}  {'geometry vs SimpleITK':<21}  {'HU vs SimpleITK':<15}  both vs written"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for reader in READERS:
        r = results[reader]
        if "unavailable" in r:
            print(f"{LABELS[reader]:<28} {r['unavailable']}")
            continue
        best = min(r["times_s"])
        ratio = best / sitk_best if sitk_best else None
        hu = np.load(r["npy"], mmap_mode="r")
        geometry_ok = _same_geometry(r, sitk) if sitk_ok else None
        hu_ok = _same_hu(hu, sitk_hu) if sitk_hu is not None else None
        written_ok = _same_geometry(r, written) and _same_hu(hu, truth)
        r.update(best=best, ratio=ratio, geometry_ok=geometry_ok, hu_ok=hu_ok)
        print(
            f"{LABELS[reader]:<28} {best:>7.3f} {_fmt_ratio(ratio):>11} "
            f"{r['peak_bytes'] / 2**20:>8.0f} {r['peak_bytes'] / voxel_bytes:>12.2f}× "
            f"{r['dtype']:>6}  {_verdict(geometry_ok):<21}  {_verdict(hu_ok):<15}  "
            f"{_verdict(written_ok)}"
        )
    print(
        f"\nvoxel bytes = {truth.shape[0]}·{truth.shape[1]}·{truth.shape[2]}·2 = "
        f"{voxel_bytes / 2**20:.0f} MB; arrays compared in (i, j, k) order (SimpleITK's (k, j, i) "
        f"transposed); geometry = origin, spacing, direction to {GEOMETRY_ATOL:g} mm."
    )
    if not all(r.get("peak_exact", True) for r in results.values()):
        print("note: VmHWM could not be reset; peaks include the warm-up read.")
    mine = results["seldinger"]
    if "unavailable" in mine:
        print("seldinger.io.read_ct not available: goals not checked; baselines above.")
        return
    time_ok = mine["ratio"] is not None and mine["ratio"] <= GOAL_TIME_VS_SITK
    peak_ratio = mine["peak_bytes"] / voxel_bytes
    print(
        f"goals for seldinger.io.read_ct: time ≤ {GOAL_TIME_VS_SITK}× SimpleITK: "
        f"{_fmt_ratio(mine['ratio'])} {'met' if time_ok else 'MISSED'}; "
        f"peak ≤ {GOAL_PEAK_VS_VOXELS}× voxel bytes: {peak_ratio:.2f}× "
        f"{'met' if peak_ratio <= GOAL_PEAK_VS_VOXELS else 'MISSED'}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
