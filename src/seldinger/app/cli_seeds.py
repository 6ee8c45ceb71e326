"""``seldinger plan seeds``: an I-125 seed implant (TG-43 dosimetry) on a plan."""

from __future__ import annotations

import io
import math
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from seldinger.app._cli_common import (
    ForceOption,
    JsonOption,
    PlanCtOption,
    ResampleOption,
    _notes,
    _out,
    _print_json,
    _progress,
)
from seldinger.app.cli_ablation import (
    _ablation_constraints,
    _lps,
    load_plan_case,
)

if TYPE_CHECKING:
    from seldinger.imaging import Volume
    from seldinger.physics.tg43 import SeedData
    from seldinger.planning.seeds import SeedPlan

__all__ = [
    "SEED_FIGURES",
    "SeedTemplate",
    "plan_seeds_command",
    "register",
    "seed_tables",
    "write_seed_figures",
]

#: Pictures ``--figures`` writes: the dose views and the PTV's DVH.
SEED_FIGURES = ("seed_dose.png", "seed_dvh.png", "seed_needles.png")
#: Isodose levels drawn, as fractions of the prescription.
ISODOSE_FRACTIONS = (1.0, 1.5, 2.0)
_DOSE_PAD_MM = 10.0
_SEED_MARK_MM = 1.5


class SeedTemplate(StrEnum):
    """Needle arrangement."""

    coplanar = "coplanar"
    free = "free"


def register(app: typer.Typer) -> None:
    """Add ``seeds`` to the ``plan`` command group."""
    app.command("seeds")(plan_seeds_command)


def plan_seeds_command(
    plan_path: Annotated[
        Path,
        typer.Argument(
            metavar="PLAN",
            help="Plan written by `seldinger plan trajectory` (its structures and lesion target "
            "are used; the seed implant is added to it).",
            show_default=False,
        ),
    ],
    rx_gy: Annotated[
        float,
        typer.Option("--rx-gy", min=1.0, max=400.0, help="Prescription dose (Gy, total decay)."),
    ] = 120.0,
    margin_mm: Annotated[
        float,
        typer.Option("--margin-mm", min=0.0, max=20.0, help="PTV margin around the lesion, mm."),
    ] = 5.0,
    template: Annotated[
        SeedTemplate,
        typer.Option(
            "--template",
            help="coplanar: parallel needles through a 5 mm template grid; free: individually "
            "angled needles.",
        ),
    ] = SeedTemplate.coplanar,
    seed_data: Annotated[
        str,
        typer.Option(
            "--seed-data",
            help="TG-43 seed data: a built-in model (6711) or a JSON file (docs/tg43.md).",
        ),
    ] = "6711",
    strength_mci: Annotated[
        str | None,
        typer.Option(
            "--strength-mci",
            help="Seed strengths to try, mCi, comma-separated (default 0.4,0.5,0.6,0.7,0.8).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Name of the plan's target to implant (default: the first with a mask).",
            show_default=False,
        ),
    ] = None,
    figures: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            help="Folder for pictures: seed_dose.png (lesion, 100/150/200 % isodoses and the "
            "seeds over the CT) and seed_dvh.png (the PTV's cumulative DVH).",
            show_default=False,
        ),
    ] = None,
    stl: Annotated[
        Path | None,
        typer.Option(
            "--stl",
            help="Write a printable coplanar template plate (STL, LPS mm) here "
            "(--template coplanar only).",
            show_default=False,
        ),
    ] = None,
    ct_path: PlanCtOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Plan a permanent I-125 seed implant for a lesion: needles, seeds and one seed strength.

    Needs a plan from `seldinger plan trajectory ... --lesion MASK`: its CT, anatomy and
    lesion. The PTV is the lesion plus --margin-mm. Needles follow the plan's trajectory
    rules (no bone, mediastinum, central airways or large vessel on the way); seeds sit
    every 5 mm along them inside the PTV. TG-43 dose (2-D line source, complete decay)
    decides the loading (greedy start, then simulated annealing, for each strength tried):
    D90 >= the prescription and V100 >= 95 %, then V150 <= 60 %, then the fewest seeds and
    needles; a goal it cannot reach is named in the result's notes.

    Writes the result into PLAN (its `seeds` field; --force replaces an earlier one).

    Exit status: 0 on success; 1 when no loading meets the goals (the message says what to
    change) and for other errors (nothing is written); 2 for usage errors.

    Example: `seldinger plan seeds plan.json --rx-gy 120 --figures figures --stl plate.stl`.
    """
    from seldinger._files import check_overwrite
    from seldinger.physics.tg43 import load_seed_data
    from seldinger.planning import Plan
    from seldinger.planning.seeds import STRENGTHS_MCI, SeedGoals, plan_seeds
    from seldinger.planning.trajectory import RiskMaps

    strengths = _strengths(strength_mci) if strength_mci is not None else STRENGTHS_MCI
    if stl is not None and template is not SeedTemplate.coplanar:
        raise ValueError("--stl needs --template coplanar (a free implant has no template).")
    data = load_seed_data(seed_data)

    plan = Plan.load(plan_path)
    if plan.seeds is not None and not force:
        raise FileExistsError(
            f"{plan_path} already holds a seed implant ({plan.seeds.get('n_seeds')} seeds, "
            f"{plan.seeds.get('template')}); pass --force to replace it."
        )
    if stl is not None:
        check_overwrite(stl, force)
    if figures is not None:
        for name in SEED_FIGURES:
            check_overwrite(figures / name, force)
    plan, loaded, ct, (anatomy, lesion), chosen = load_plan_case(
        plan, plan_path, target, ct_path, resample, show_progress=not as_json
    )
    rules = plan.provenance.parameters.get("trajectory") or {}
    from seldinger.planning.trajectory import TrajectoryConstraints

    constraints = _ablation_constraints(
        plan, float(rules.get("needle_length_mm") or TrajectoryConstraints.needle_length_mm)
    )
    with _progress("building the risk maps", not as_json):
        maps = RiskMaps.build(anatomy, constraints, lesion)
    with _progress(f"loading seeds ({template.value} needles)", not as_json):
        result = plan_seeds(
            maps,
            lesion,
            data,
            margin_mm=margin_mm,
            goals=SeedGoals(prescription_gy=rx_gy),
            template=template.value,
            strengths_mci=strengths,
        )

    plan.seeds = {**result.to_dict(), "target": chosen.name, "seed_data": seed_data}
    plan.provenance.parameters["seeds"] = {
        "prescription_gy": rx_gy,
        "margin_mm": margin_mm,
        "template": template.value,
        "seed_data": seed_data,
        "strengths_mci": list(strengths),
        "target": chosen.name,
        "needle_length_mm": constraints.needle_length_mm,
    }
    written: list[Path] = []
    # everything is drawn and written aside first: on an error, nothing has changed
    scratch = Path(tempfile.mkdtemp(prefix=".seeds.", suffix=".part", dir=plan_path.parent))
    try:
        drawn: list[Path] = []
        if figures is not None:
            with _progress("drawing figures", not as_json):
                drawn = write_seed_figures(ct, result, lesion, data, scratch / "figures")
            figures.mkdir(parents=True, exist_ok=True)
        if stl is not None:
            from seldinger.export.template import template_plate, write_template_stl

            with _progress("making the template plate", not as_json):
                holes = [n.template_hole_mm for n in result.needles]
                if result.template_frame is None or any(h is None for h in holes):
                    raise ValueError("the implant has no template frame; no plate to print.")
                mesh = template_plate(
                    result.template_frame,
                    [h for h in holes if h is not None],
                    [n.entry_lps_mm for n in result.needles],
                )
                write_template_stl(scratch / "template.stl", mesh, force=True)
        plan.save(plan_path, force=True)
        if stl is not None:
            stl.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(scratch / "template.stl", stl)
            written.append(stl)
        if figures is not None:
            for path in drawn:
                shutil.move(path, figures / path.name)
                written.append(figures / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    notes = [*loaded.meta.notes, *result.notes]
    if as_json:
        _print_json(
            {
                **result.to_dict(),
                "target": chosen.name,
                "seed_data": seed_data,
                "plan": str(plan_path),
                "stl": None if stl is None else str(stl),
                "figures": [str(p) for p in written if p != stl],
                "notes": notes,
            }
        )
        return
    _notes(notes)
    needles, metrics = seed_tables(result)
    _out.print(needles)
    summary = result.to_dict()
    _out.print(
        f"{summary['n_seeds']} seeds of {result.seed_model}: {summary['strength_u']:.3f} U "
        f"({summary['strength_mci']:.3f} mCi) each, total {summary['total_u']:.2f} U "
        f"({summary['total_mci']:.2f} mCi)",
        highlight=False,
    )
    _out.print(metrics)
    for path in [plan_path, *written]:
        _out.print(f"wrote {path}", highlight=False)


def _strengths(text: str) -> tuple[float, ...]:
    """``0.4,0.5`` as mCi values."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
        raise typer.BadParameter(
            f"expected positive mCi values separated by commas (e.g. 0.4,0.5); got {text!r}.",
            param_hint="'--strength-mci'",
        )
    return values


def seed_tables(result: SeedPlan) -> tuple[Table, Table]:
    """Rich tables: the needles (entry, seeds, depths) and the dose metrics."""
    summary = result.to_dict()
    needles = Table(
        title=f"{summary['n_needles']} needle(s), {summary['n_seeds']} seeds "
        f"({summary['template']}; Rx {summary['prescription_gy']:g} Gy, "
        f"PTV = lesion + {summary['margin_mm']:g} mm)"
    )
    needles.add_column("#", justify="right")
    needles.add_column("entry\nLPS mm")
    needles.add_column("seeds", justify="right")
    needles.add_column("depths\nmm")
    for n, needle in enumerate(summary["needles"], 1):
        needles.add_row(
            str(n),
            _lps(needle["entry_lps_mm"]),
            str(needle["n_seeds"]),
            ", ".join(f"{d:.0f}" for d in needle["depths_mm"]),
        )
    metrics = Table(title="PTV dose metrics")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for name, value in metric_rows(result).items():
        metrics.add_row(name, f"{value:.2f}" if isinstance(value, float) else str(value))
    return needles, metrics


def metric_rows(result: SeedPlan) -> dict[str, float]:
    """The plan's dose metrics with readable names (Gy, %)."""
    labels = {
        "d90_gy": "D90 (Gy)",
        "d100_gy": "D100 (Gy)",
        "v100_percent": "V100 (%)",
        "v150_percent": "V150 (%)",
        "v200_percent": "V200 (%)",
        "conformity_index": "conformity index",
        "external_index": "external index",
        "homogeneity_index": "homogeneity index",
    }
    rows = {
        label: float(result.metrics[key]) for key, label in labels.items() if key in result.metrics
    }
    for key, value in result.metrics.items():
        if key not in labels:
            rows[key] = float(value)
    return rows


def _dose_grid(
    lesion: Volume, result: SeedPlan, data: SeedData
) -> tuple[Volume, np.ndarray[Any, Any]]:
    """Total dose (Gy) on a crop of the lesion's (the CT's) grid around the PTV, and the PTV on that crop."""
    from scipy import ndimage as ndi

    from seldinger.physics.tg43 import dose_on_grid, total_dose_gy

    arr = np.asarray(lesion.array, dtype=bool)
    nz = np.nonzero(arr)
    pad = result.margin_mm + _DOSE_PAD_MM
    box = tuple(
        slice(
            max(int(i.min()) - math.ceil(pad / s), 0), min(int(i.max()) + math.ceil(pad / s) + 1, n)
        )
        for i, s, n in zip(nz, lesion.spacing_mm, lesion.shape, strict=True)
    )
    crop = lesion.crop_index(box)
    dist = ndi.distance_transform_edt(~np.asarray(crop.array, bool), sampling=crop.spacing_mm)
    ptv = dist <= result.margin_mm + 1e-9
    n_seeds = result.n_seeds
    rate = dose_on_grid(
        crop.with_array(np.zeros(crop.shape, np.float32)),
        result.seeds_lps_mm,
        result.axes_lps,
        np.full(n_seeds, result.strength_u),
        data,
        "2d",
    )
    dose = rate.with_array(total_dose_gy(rate.array, data).astype(np.float32))
    return dose, ptv


def write_seed_figures(
    ct: Volume, result: SeedPlan, lesion: Volume, data: SeedData, out_dir: Path
) -> list[Path]:
    """Draw :data:`SEED_FIGURES` into ``out_dir``: the dose views, the PTV's DVH and the
    needles (skin entry to deepest seed, each labelled with its seed count) projected on
    the axial slice through the lesion."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from seldinger._files import atomic_path
    from seldinger.export import render_views
    from seldinger.planning.seeds import cumulative_dvh

    out_dir.mkdir(parents=True, exist_ok=True)
    rx = result.goals.prescription_gy
    dose, ptv = _dose_grid(lesion, result, data)
    masks: dict[str, Volume] = {"lesion": lesion}
    for fraction in ISODOSE_FRACTIONS:
        masks[f"{100 * fraction:.0f} % ({fraction * rx:g} Gy)"] = dose.with_array(
            dose.array >= fraction * rx
        )
    seeds = result.seeds_lps_mm
    points: dict[str, Any] = {}
    if len(seeds) <= 5:
        points = {f"seed {k}": p for k, p in enumerate(seeds, 1)}
    else:  # one legend entry: the seeds as small balls
        ijk = np.indices(dose.shape).reshape(3, -1).T
        lps = dose.index_to_lps(ijk)
        near = np.zeros(len(lps), dtype=bool)
        for seed in seeds:
            near |= np.linalg.norm(lps - seed, axis=1) <= _SEED_MARK_MM
        masks[f"seeds ({len(seeds)})"] = dose.with_array(near.reshape(dose.shape))
    centroid = lesion.index_to_lps(np.argwhere(np.asarray(lesion.array, bool))).mean(axis=0)
    dose_png = out_dir / SEED_FIGURES[0]
    render_views(
        ct,
        centroid,
        masks=masks,
        points=points,
        window="lung",
        out_png=dose_png,
        title=f"Seed implant: {result.n_seeds} seeds, isodoses of Rx {rx:g} Gy",
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
    d90 = result.metrics.get("d90_gy")
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

    from seldinger.export.trajectory_views import render_paths_axial

    # Deepest needle first so the slice passes through the lesion's core.
    order = sorted(result.needles, key=lambda n: -len(n.seeds_lps_mm))
    needles_png = render_paths_axial(
        ct,
        [n.entry_lps_mm for n in order],
        [n.seeds_lps_mm[0] for n in order],
        out_dir / SEED_FIGURES[2],
        masks={"lesion": lesion, f"100 % ({rx:g} Gy)": dose.with_array(dose.array >= rx)},
        labels=[f"{len(n.seeds_lps_mm)}" for n in order],
        force=True,
        title=f"{len(order)} needles ({result.template}), skin entry to deepest seed; "
        "label: seeds on the needle",
    )
    return [dose_png, dvh_png, needles_png]
