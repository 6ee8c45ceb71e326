"""Ablation probe placement: time to the fewest-probe plan, beside a brute-force search.

Cases (the anatomy and trajectory maps are built first and timed separately):

- lidc-idri-0001 consensus nodule (7.8 mL), Emprint 150 W 10 min and 100 W 10 min, up to
  3 probes;
- totalseg-abdomen: a synthetic 3 cm lesion in the liver 1-3 mm from the portal vein,
  Emprint 100 W 10 min, up to 3 probes;
- a small synthetic case (a 20 x 20 x 36 mm lesion in a body cylinder) where the
  brute-force baseline runs: every subset of 1, 2 and 3 of ALL candidate applicators,
  coverage by plain boolean OR, the same objective — against the planner's pruned,
  bit-packed search on the same candidates. Both must choose the same number of probes.

Goal: placement (candidates + search) <= 20 s for up to 3 probes. Run from the project
root (never collected by pytest)::

    .venv/bin/python benchmarks/bench_ablation.py
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _memory import reset_peak, rss_kb  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GOAL_PLACEMENT_S = 20.0


def _timed(label: str, fn):  # type: ignore[no-untyped-def]
    clock = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - clock
    return out, seconds


def lidc_case() -> None:
    from seldinger.anatomy import segment
    from seldinger.io import read_ct, read_volume
    from seldinger.physics.ablation import load_catalogue
    from seldinger.planning.ablation import place_applicators
    from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

    case = SHARED / "lidc-idri-0001"
    ct = read_ct(case / "ct.nii.gz").volume
    nodule = read_volume(case / "nodule_consensus.nii.gz")
    nodule = nodule.with_array(nodule.array > 0)
    anatomy, seg_s = _timed("segment", lambda: segment(ct))
    maps, maps_s = _timed("maps", lambda: RiskMaps.build(anatomy, TrajectoryConstraints(), nodule))
    print(f"lidc nodule: anatomy {seg_s:.1f} s, trajectory maps {maps_s:.1f} s (not in the goal)")
    emprint = load_catalogue().device("emprint")
    for setting in ("150W-10min", "100W-10min"):
        base = rss_kb("VmRSS")
        reset_peak()
        result, s = _timed(
            setting, lambda st=setting: place_applicators(maps, nodule, emprint, [st])
        )
        peak = (rss_kb("VmHWM") - base) / 1024
        parts = ", ".join(f"{k} {v:.2f}" for k, v in result.seconds.items() if k != "n_centres")
        print(
            f"  {setting:<12} {s:6.2f} s ({parts}; {int(result.seconds['n_centres'])} centres, "
            f"{result.n_candidates} candidates): {len(result.applicators)} probes, "
            f"target {result.target_coverage_percent:.1f} %, peak +{peak:.0f} MB  "
            f"{'ok' if s <= GOAL_PLACEMENT_S else 'MISSED'}"
        )


def abdomen_case() -> None:
    from scipy import ndimage as ndi

    from seldinger.anatomy import segment
    from seldinger.io import read_ct, read_volume
    from seldinger.physics.ablation import load_catalogue
    from seldinger.planning.ablation import place_applicators
    from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

    case = SHARED / "totalseg-abdomen"
    ct = read_ct(case / "ct.nii.gz").volume
    labels = read_volume(case / "model_labels.nii.gz")
    import json

    ids = {v: int(k) for k, v in json.loads((case / "model_labels.json").read_text()).items()}
    liver = np.asarray(labels.array) == ids["liver"]
    portal = np.asarray(labels.array) == ids["portal_vein_and_splenic_vein"]
    inside = ndi.distance_transform_edt(liver, sampling=ct.spacing_mm)
    to_vein = ndi.distance_transform_edt(~portal, sampling=ct.spacing_mm)
    where = np.argwhere((inside >= 16) & (to_vein >= 16) & (to_vein <= 18))
    centre = ct.index_to_lps(where[len(where) // 2])
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in ct.shape), indexing="ij"), -1)
    lesion = ct.with_array(np.linalg.norm(ct.index_to_lps(grid) - centre, axis=-1) <= 15.0)
    anatomy = segment(ct, structures=["body", "bones", "liver"])
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    emprint = load_catalogue().device("emprint")
    result, s = _timed("abd", lambda: place_applicators(maps, lesion, emprint, ["100W-10min"]))
    print(
        f"abdomen 3 cm lesion, 100W-10min: {s:.2f} s, {result.n_candidates} candidates, "
        f"{len(result.applicators)} probes, target {result.target_coverage_percent:.1f} %  "
        f"{'ok' if s <= GOAL_PLACEMENT_S else 'MISSED'}"
    )


def brute_force(covers, healthy, goal: float, max_probes: int):  # type: ignore[no-untyped-def]
    """Every subset of 1..max_probes candidates, plain boolean OR, same objective.

    ``covers``, ``healthy``: (candidates, points) membership of the target and healthy grid.
    """
    need = int(np.ceil(goal * covers.shape[1] - 1e-9))
    examined = 0
    for k in range(1, max_probes + 1):
        best, best_key = None, None
        for combo in itertools.combinations(range(len(covers)), k):
            examined += 1
            union = np.logical_or.reduce(covers[list(combo)])
            if union.sum() < need:
                continue
            key = int(np.logical_or.reduce(healthy[list(combo)]).sum())
            if best_key is None or key < best_key:
                best, best_key = combo, key
        if best is not None:
            return best, examined
    return None, examined


def _synthetic_body() -> tuple[Any, Any, Any, Any, Any]:
    """A 124 mm cylinder of body with a slab of bone behind (1 x 1 x 2.5 mm): the x, y, z
    coordinate grids (mm), the affine and the anatomy."""
    from seldinger.anatomy import Anatomy
    from seldinger.imaging import Volume

    spacing, shape = (1.0, 1.0, 2.5), (140, 140, 48)
    x, y, z = (
        i * s
        for i, s in zip(
            np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij"),
            spacing,
            strict=True,
        )
    )
    affine = np.diag([*spacing, 1.0])
    body = np.hypot(x - 70, y - 70) <= 62
    anatomy = Anatomy(
        masks={"body": Volume(body, affine), "bones": Volume(body & (y > 110), affine)}
    )
    return x, y, z, affine, anatomy


def small_case() -> None:
    from seldinger.imaging import Volume
    from seldinger.physics.ablation import load_catalogue
    from seldinger.planning.ablation.kernel import zone_members
    from seldinger.planning.ablation.placement import _gains, _placed, _prepare, _search
    from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

    x, y, z, affine, anatomy = _synthetic_body()
    lesion = Volume(np.sqrt((x - 70) ** 2 + (y - 70) ** 2 + ((z - 60) / 1.8) ** 2) <= 10, affine)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    device = load_catalogue().device("emprint")
    prepared, prep_s = _timed(
        "prep", lambda: _prepare(maps, lesion, device, ["100W-10min"], 5.0, ())
    )
    cands = prepared.cands
    placed = _placed(prepared, (), device.modality)
    gain = _gains(prepared, placed)
    fast, fast_s = _timed("search", lambda: _search(prepared, device, 3, 0.99, placed, gain))
    covers = zone_members(prepared.cells[0], cands.zones)
    healthy = zone_members(prepared.cells[1], cands.zones)
    (slow, examined), slow_s = _timed("brute", lambda: brute_force(covers, healthy, 0.99, 3))
    n = len(cands)
    print(
        f"small case: {n} candidates ({prep_s:.2f} s); pruned search {fast_s:.3f} s -> "
        f"{len(fast or ())} probes; brute force over {examined} subsets (all of size 1 and 2 "
        f"up to the first size that covers) {slow_s:.1f} s -> {len(slow or ())} probes; "
        f"{slow_s / max(fast_s, 1e-9):.0f}x; same number of probes: "
        f"{len(fast or ()) == len(slow or ())}"
    )


def large_case() -> None:
    """A 5 cm lesion (113 mL with its margin) in the synthetic body: beyond 3 Emprint zones.

    With one setting (75 W 5 min) the coverage bound refuses it before any set search; with
    all settings the search runs and fails. Both must answer in seconds, in well under 1 GB
    (the candidate x point matrices of the first version took minutes and several GB).
    """
    from seldinger.errors import InfeasiblePlanError
    from seldinger.imaging import Volume
    from seldinger.physics.ablation import load_catalogue
    from seldinger.planning.ablation import place_applicators
    from seldinger.planning.trajectory import RiskMaps, TrajectoryConstraints

    x, y, z, affine, anatomy = _synthetic_body()
    lesion = Volume(np.sqrt((x - 70) ** 2 + (y - 70) ** 2 + (z - 60) ** 2) <= 25, affine)
    maps = RiskMaps.build(anatomy, TrajectoryConstraints(), lesion)
    device = load_catalogue().device("emprint")
    for settings in (["75W-5min"], None):
        base = rss_kb("VmRSS")
        reset_peak()
        clock = time.perf_counter()
        try:
            place_applicators(maps, lesion, device, settings)
            outcome = "placed"
        except InfeasiblePlanError as error:
            outcome = str(error).split(". ")[0][:110]
        s = time.perf_counter() - clock
        peak = (rss_kb("VmHWM") - base) / 1024
        label = settings[0] if settings else "all settings"
        print(f"large 5 cm lesion, {label}: {s:.2f} s, peak +{peak:.0f} MB: {outcome}")


def main() -> int:
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    small_case()
    large_case()
    if not SHARED.is_dir():
        print(f"no data at {SHARED}; real cases skipped")
        return 0
    lidc_case()
    abdomen_case()
    return 0


if __name__ == "__main__":
    sys.exit(main())
