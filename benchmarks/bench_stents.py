"""Stents: the whole central airway measured, and a stent with its mould, against baselines.

Timed, best of ``--repeat`` runs:

- ``measure_airway`` on lidc-idri-0001 (../shared/data; the synthetic Y phantom when it is
  absent): trachea, main and lobar bronchi, a cross-section every millimetre on the
  sub-voxel -500 HU isocontour, twice (the second pass on the first's centroids). Goal
  <= 5 s. Beside it, the baseline in the same run: voxel counting (the lumen voxels whose
  centres lie within half a station of each plane, times the voxel volume over the station
  step) on the 20°-tilted 18 mm tube phantom with its 50 % stenosis, whose analytic area
  both are compared with: the time and the error of each;
- ``design_stent`` + ``make_mould`` for a Y stent on the Y phantom (swept, and fitted to
  the phantom's CT), a tracheal stent with studs on the tube phantom, and a Y stent fitted
  to lidc-idri-0001 when it is present (mesh sweep, the airway cut on a 0.3 mm grid,
  manifold3d booleans, print checks, the two-part mould with its core). Goal <= 20 s.

Run from the project root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_stents.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GOAL_MEASURE_S = 5.0
GOAL_DESIGN_S = 20.0
LIDC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lidc-idri-0001"


def _best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = np.inf, None
    for _ in range(repeat):
        clock = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - clock)
    return best, result


def _voxel_count_areas(ct: Any, mask: np.ndarray, survey: Any) -> np.ndarray:
    """Baseline: lumen voxels in a slab one station thick around each plane, per mm."""
    profile = survey.profile("trachea")
    ijk = np.argwhere(mask)
    lps = ct.index_to_lps(ijk.astype(np.float64))
    voxel_mm3 = float(np.prod(ct.spacing_mm))
    areas = []
    for p, t in zip(profile.centreline.points_lps_mm, profile.centreline.tangents, strict=True):
        along = (lps - p) @ t
        radial = np.linalg.norm((lps - p) - along[:, None] * t, axis=1)
        inside = (np.abs(along) <= 0.5) & (radial < 15.0)
        areas.append(inside.sum() * voxel_mm3 / 1.0)
    return np.asarray(areas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from seldinger.anatomy.airway_graph import airway_graph
    from seldinger.stents import measure_airway
    from seldinger.stents.design import StentOptions, design_stent
    from seldinger.stents.mould import make_mould
    from seldinger.stents.phantoms import stenosed_tube, y_airway

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")

    # --- the whole central airway ------------------------------------------------------
    if (LIDC / "ct.nii.gz").is_file():
        from seldinger.anatomy import segment
        from seldinger.imaging import reorient
        from seldinger.io import read_ct

        ct = reorient(read_ct(LIDC / "ct.nii.gz").volume, "LPS")
        anatomy = segment(ct, ["body", "airways"])
        graph, mask, case = anatomy.airway_graph, anatomy["airways"], "lidc-idri-0001"
    else:
        ct, _ = y_airway()
        mask = ct.with_array(np.asarray(ct.array) < -500)
        graph, case = airway_graph(ct, np.asarray(mask.array)), "Y phantom (no ../shared)"
    assert graph is not None
    measure_airway(ct, graph, mask)  # warm-up (imports, caches)
    seconds, survey = _best_of(args.repeat, lambda: measure_airway(ct, graph, mask))
    stations = sum(len(p.centreline) for p in survey.profiles)
    print(
        f"measure {case}: {len(survey.profiles)} branches, {stations} cross-sections: "
        f"{seconds:.2f} s (goal <= {GOAL_MEASURE_S:g} s) "
        f"{'OK' if seconds <= GOAL_MEASURE_S else 'SLOW'}"
    )

    # --- sub-voxel isocontour vs voxel counting on the tilted tube ------------------------
    tube_ct, _ = stenosed_tube()
    tube_mask = np.asarray(tube_ct.array) < -500
    tube_graph = airway_graph(tube_ct, tube_mask)
    sub_s, tube_survey = _best_of(
        args.repeat, lambda: measure_airway(tube_ct, tube_graph, tube_ct.with_array(tube_mask))
    )
    count_s, counted = _best_of(
        args.repeat, lambda: _voxel_count_areas(tube_ct, tube_mask, tube_survey)
    )
    profile = tube_survey.profile("trachea")
    centre = profile.path_mm.mean()
    healthy = (np.abs(profile.path_mm - centre) > 20) & (profile.sections.status == "ok")
    healthy &= np.abs(profile.path_mm - centre) < 35
    truth = np.pi * 9.0**2
    sub_err = 100 * (np.median(profile.sections.area_mm2[healthy]) / truth - 1)
    count_err = 100 * (np.median(counted[healthy]) / truth - 1)
    sub_sd = 100 * np.std(profile.sections.area_mm2[healthy]) / truth
    count_sd = 100 * np.std(counted[healthy]) / truth
    (stenosis,) = tube_survey.stenoses
    print(
        f"tube (18 mm, tilted 20°, 0.7x0.7x2.5 mm): sub-voxel isocontour {sub_s:.2f} s, area "
        f"error {sub_err:+.2f} % (sd {sub_sd:.2f} %), stenosis "
        f"{stenosis.stenosis_area_percent:.1f} % over {stenosis.length_mm:.1f} mm (truth 50 % "
        f"over 20 mm)\n  baseline voxel counting {count_s:.2f} s, area error "
        f"{count_err:+.2f} % (sd {count_sd:.2f} %)"
    )

    # --- stent + mould ------------------------------------------------------------------
    y_ct, _ = y_airway()
    y_mask = np.asarray(y_ct.array) < -500
    y_survey = measure_airway(y_ct, airway_graph(y_ct, y_mask), y_ct.with_array(y_mask))
    cases: list[tuple[str, Any, StentOptions, Any, Any]] = [
        ("Y stent", y_survey, StentOptions(kind="y"), None, None),
        ("Y stent fitted to the phantom CT", y_survey, StentOptions(kind="y"), y_ct,
         y_ct.with_array(y_mask)),
        ("tracheal stent with studs", tube_survey, StentOptions(studs=True), None, None),
    ]  # fmt: skip
    if case == "lidc-idri-0001":
        cases.append(("Y stent fitted to lidc-idri-0001", survey, StentOptions(kind="y"), ct, mask))
    for name, survey_, options, ct_, mask_ in cases:

        def build(s: Any = survey_, o: StentOptions = options, c: Any = ct_, m: Any = mask_) -> Any:
            design = design_stent(s, o, ct=c, lumen=m)
            return design, make_mould(design)

        seconds, (design, mould) = _best_of(args.repeat, build)
        check = design.check
        print(
            f"{name} + mould: {seconds:.2f} s (goal <= {GOAL_DESIGN_S:g} s) "
            f"{'OK' if seconds <= GOAL_DESIGN_S else 'SLOW'}; {len(design.mesh.faces)} "
            f"triangles, watertight {check.watertight}, thinnest wall {check.min_wall_mm:.2f} mm, "
            f"{check.volume_mm3 / 1000:.2f} mL; mould watertight {mould.watertight}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
