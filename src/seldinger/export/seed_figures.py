"""Pictures of a seed implant: dose views with isodoses, the PTV's DVH, the needles."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seldinger.export.trajectory_views import render_paths_axial
from seldinger.export.views import picture_window, render_views
from seldinger.files import atomic_path
from seldinger.imaging import Volume
from seldinger.physics.tg43 import SeedData, dose_on_grid, total_dose_gy
from seldinger.plan import SeedSection
from seldinger.planning.seeds import cumulative_dvh
from seldinger.planning.target import expand_target

__all__ = [
    "DOSE_PAD_MM",
    "ISODOSE_FRACTIONS",
    "SEED_FIGURES",
    "seed_dose_grid",
    "write_seed_figures",
]

#: Pictures :func:`write_seed_figures` writes: the dose views, the PTV's DVH, the needles.
SEED_FIGURES = ("seed_dose.png", "seed_dvh.png", "seed_needles.png")
#: Isodose levels drawn, as fractions of the prescription.
ISODOSE_FRACTIONS = (1.0, 1.5, 2.0)
#: Room (mm) kept around the PTV in the dose grid.
DOSE_PAD_MM = 10.0
_SEED_MARK_MM = 1.5


def seed_dose_grid(
    lesion: Volume, seeds: SeedSection, data: SeedData
) -> tuple[Volume, npt.NDArray[np.bool_]]:
    """Total dose (Gy, TG-43 2-D, complete decay) on a crop of the lesion's (the CT's) grid
    around the PTV, and the PTV on that crop.

    Parameters
    ----------
    lesion : Volume
        The target's lesion mask on the CT's grid.
    seeds : SeedSection
        The plan's implant (positions, needle directions, strength, margin).
    data : SeedData
        The implant's TG-43 seed data.
    """
    target = expand_target(lesion, seeds.margin_mm, pad_mm=DOSE_PAD_MM)
    crop = target.lesion
    positions = np.asarray(seeds.seeds_lps_mm, dtype=np.float64).reshape(-1, 3)
    axes = np.array(
        [n.direction_lps for n in seeds.needles for _ in n.seeds_lps_mm], dtype=np.float64
    ).reshape(-1, 3)
    rate = dose_on_grid(
        crop.with_array(np.zeros(crop.shape, np.float32)),
        positions,
        axes,
        np.full(len(positions), seeds.strength_u),
        data,
        "2d",
    )
    dose = rate.with_array(total_dose_gy(rate.array, data).astype(np.float32))
    return dose, target.ptv


def write_seed_figures(
    ct: Volume, seeds: SeedSection, lesion: Volume, data: SeedData, out_dir: Path
) -> list[Path]:
    """Draw :data:`SEED_FIGURES` into ``out_dir``: the dose views, the PTV's DVH and the
    needles (skin entry to deepest seed, numbered as in the plan's needle table, the legend
    giving each needle's seeds) on the axial slice through the lesion, all in the window
    :func:`~seldinger.export.views.picture_window` picks for the lesion.

    Parameters
    ----------
    ct : Volume
        The CT (HU).
    seeds : SeedSection
        The plan's implant.
    lesion : Volume
        The target's lesion mask on the CT's grid.
    data : SeedData
        The implant's TG-43 seed data.
    out_dir : Path
        Folder (created if needed); the files are replaced.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rx = seeds.goals.prescription_gy
    dose, ptv = seed_dose_grid(lesion, seeds, data)
    masks: dict[str, Volume] = {"lesion": lesion}
    for fraction in ISODOSE_FRACTIONS:
        masks[f"{100 * fraction:.0f} % ({fraction * rx:g} Gy)"] = dose.with_array(
            dose.array >= fraction * rx
        )
    positions = np.asarray(seeds.seeds_lps_mm, dtype=np.float64).reshape(-1, 3)
    points: dict[str, Any] = {}
    if len(positions) <= 5:
        points = {f"seed {k}": p for k, p in enumerate(positions, 1)}
    else:  # one legend entry: the seeds as small balls
        ijk = np.indices(dose.shape).reshape(3, -1).T
        lps = dose.index_to_lps(ijk)
        near = np.zeros(len(lps), dtype=bool)
        for seed in positions:
            near |= np.linalg.norm(lps - seed, axis=1) <= _SEED_MARK_MM
        masks[f"seeds ({len(positions)})"] = dose.with_array(near.reshape(dose.shape))
    centroid = lesion.index_to_lps(np.argwhere(np.asarray(lesion.array, bool))).mean(axis=0)
    # The window that suits the target: lung for a lung lesion, soft tissue for a liver one.
    window = picture_window(ct, lesion, centroid)
    dose_png = out_dir / SEED_FIGURES[0]
    render_views(
        ct,
        centroid,
        masks=masks,
        points=points,
        window=window,
        out_png=dose_png,
        title=f"Seed implant: {seeds.n_seeds} seeds, isodoses of Rx {rx:g} Gy "
        f"({window.replace('_', ' ')} window)",
        outlined=("lesion",),
        force=True,
    )

    voxel_ml = float(np.prod(dose.spacing_mm)) / 1000.0
    dvh = cumulative_dvh(dose.array, ptv, voxel_ml, name="PTV", max_gy=3.0 * rx)
    figure = Figure(figsize=(7.0, 4.5), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(
        dvh.dose_gy, dvh.volume_percent, color="#0a84ff", label=f"PTV ({dvh.volume_ml:.1f} mL)"
    )
    axes.axvline(rx, color="#ff3b30", linestyle="--", label=f"Rx {rx:g} Gy")
    d90 = seeds.metrics.d90_gy
    if d90 is not None:
        axes.plot(
            [d90], [90.0], marker="o", color="#34c759", linestyle="none", label=f"D90 {d90:.0f} Gy"
        )
    axes.set_xlabel("dose (Gy)")
    axes.set_ylabel("PTV volume receiving at least the dose (%)")
    axes.set_xlim(0, 3.0 * rx)
    axes.set_ylim(0, 105)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    axes.set_title("Cumulative DVH of the PTV (TG-43, complete decay)")
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    dvh_png = out_dir / SEED_FIGURES[1]
    with atomic_path(dvh_png, force=True) as tmp:
        tmp.write_bytes(buffer.getvalue())

    # Needles numbered 1..N as in the plan's needle table; the one with the most seeds is
    # drawn first so that the slice passes through the lesion's core.
    numbered = list(enumerate(seeds.needles, 1))
    order = sorted(numbered, key=lambda item: -len(item[1].seeds_lps_mm))
    needles_png = render_paths_axial(
        ct,
        [n.entry_lps_mm for _, n in order],
        [n.seeds_lps_mm[0] for _, n in order],
        out_dir / SEED_FIGURES[2],
        masks={"lesion": lesion, f"100 % ({rx:g} Gy)": dose.with_array(dose.array >= rx)},
        labels=[str(k) for k, _ in order],
        legend_labels=[
            f"needle {k}: {len(n.seeds_lps_mm)} seed{'s' if len(n.seeds_lps_mm) != 1 else ''}"
            for k, n in order
        ],
        emphasise_first=False,
        window=window,
        force=True,
        title=f"{len(order)} needles ({seeds.template}), skin entry to deepest seed, numbered "
        "as in the needle table",
    )
    return [dose_png, dvh_png, needles_png]
