"""``seldinger dose …``: TG-43U1 dose of seeds at points, and the delivered dose of an implant."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seldinger.app.common import (
    CtArgument,
    ForceOption,
    JsonOption,
    out_console,
    print_json,
    print_notes,
    print_written,
)

__all__ = ["dose_app"]

dose_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Dose calculation: TG-43U1 dose of interstitial seeds at points, and the delivered "
    "dose of an implant found in a post-implant CT.",
    no_args_is_help=True,
)


class DoseModelName(StrEnum):
    """TG-43U1 formalisms."""

    two_d = "2d"
    line = "1d-line"
    point = "1d-point"


SeedsOption = Annotated[
    Path,
    typer.Option(
        "--seeds",
        help="CSV of seeds: x_mm,y_mm,z_mm (centre, LPS mm),ax,ay,az (long axis; normalised here).",
        show_default=False,
    ),
]
PointsOption = Annotated[
    Path,
    typer.Option("--points", help="CSV of points x_mm,y_mm,z_mm (LPS mm).", show_default=False),
]
StrengthOption = Annotated[
    float,
    typer.Option(
        "--sk-u",
        min=0.0,
        help="Air-kerma strength of every seed, U (1 mCi = 1.270 U for I-125).",
        show_default=False,
    ),
]
SeedDataOption = Annotated[
    str, typer.Option("--seed-data", help="Built-in seed model (6711) or a seed data JSON file.")
]
ModelOption = Annotated[
    DoseModelName, typer.Option("--model", help="TG-43U1 formalism: 2d, 1d-line or 1d-point.")
]
TotalOption = Annotated[
    bool,
    typer.Option("--total", help="Also print the permanent-implant dose (complete decay), Gy."),
]
RegionOption = Annotated[
    Path,
    typer.Option(
        "--region",
        help="Mask (same grid) of where to look for seeds: the implanted organ or target with a few cm around it. Outside it, contrast, clips and dense bone can read as metal too.",
        show_default=False,
    ),
]
DoseOutOption = Annotated[
    Path,
    typer.Option("--out", help="Total dose (Gy) as NIfTI, on the CT's grid.", show_default=False),
]
TargetMaskOption = Annotated[
    Path | None,
    typer.Option(
        "--target", help="Target mask (same grid): report D90, V100, V150.", show_default=False
    ),
]
RxOption = Annotated[
    float, typer.Option("--rx-gy", min=0.001, help="Prescription for V100/V150 (Gy).")
]


@dose_app.command("tg43")
def tg43(
    seeds: SeedsOption,
    points: PointsOption,
    sk_u: StrengthOption,
    seed_data: SeedDataOption = "6711",
    model: ModelOption = DoseModelName.two_d,
    total: TotalOption = False,
    as_json: JsonOption = False,
) -> None:
    """TG-43U1 dose rate (cGy/h) of seeds at points; with --total the implant dose (Gy).

    Example: `seldinger dose tg43 --sk-u 0.635 --seeds seeds.csv --points points.csv --total`.
    """
    from seldinger.io import read_points_csv, read_seeds_csv
    from seldinger.physics.tg43 import (
        dose_rate_cgy_per_h,
        load_seed_data,
        points_inside_seeds,
        total_dose_gy,
    )

    data = load_seed_data(seed_data)
    centres, axes = read_seeds_csv(seeds, f"--seeds {seeds}")
    where = read_points_csv(points, f"--points {points}")
    rate = dose_rate_cgy_per_h(where, centres, axes, sk_u, data, model.value)
    dose = total_dose_gy(rate, data.half_life_days) if total else None
    inside = points_inside_seeds(where, centres, axes, data)
    notes = []
    if inside.any():
        rows = ", ".join(str(i + 2) for i in inside.nonzero()[0][:10])
        notes.append(
            f"{int(inside.sum())} point(s) lie inside a seed capsule (rows {rows}); their "
            "dose rate is the value on the capsule surface."
        )
    if as_json:
        print_json(
            {
                "seed_data": data.name,
                "model": model.value,
                "sk_u": sk_u,
                "dose_rate_cgy_per_h": rate.tolist(),
                **({} if dose is None else {"total_dose_gy": dose.tolist()}),
                "inside_seed": inside.tolist(),
            }
        )
        return
    print_notes(notes)
    table = Table(
        title=f"TG-43U1 {model.value}, {data.name}, S_K {sk_u:g} U, {len(centres)} seed(s)"
    )
    for column in (
        "x_mm",
        "y_mm",
        "z_mm",
        "dose rate (cGy/h)",
        *(["total dose (Gy)"] if total else []),
    ):
        table.add_column(column, justify="right")
    for n, (point, value) in enumerate(zip(where, rate, strict=True)):
        extra = [] if dose is None else [f"{dose[n]:.4g}"]
        table.add_row(*(f"{c:.2f}" for c in point), f"{value:.5g}", *extra)
    out_console.print(table)


@dose_app.command("postimplant")
def postimplant(
    ct: CtArgument,
    region: RegionOption,
    sk_u: StrengthOption,
    out: DoseOutOption,
    seed_data: SeedDataOption = "6711",
    target: TargetMaskOption = None,
    rx_gy: RxOption = 120.0,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Find the implanted seeds in a post-implant CT and compute the delivered dose.

    Seeds: metal (> 2000 HU) components inside --region, touching seeds split by volume
    and shape; each seed's axis from its shape. Dose: TG-43U1 2-D line source, permanent
    implant (D = Ḋ0·τ), on the CT grid within 5 cm of the seeds (0 elsewhere).

    Example: `seldinger dose postimplant post.nii.gz --region lung.nii.gz --sk-u 0.76
    --target ptv.nii.gz --out dose.nii.gz`.
    """
    import numpy as np

    from seldinger.files import check_overwrite
    from seldinger.imaging import require_same_geometry
    from seldinger.io import read_ct, read_volume, write_volume
    from seldinger.physics.tg43 import load_seed_data
    from seldinger.planning.seeds import delivered_dose, implant_indices

    check_overwrite(out, force)
    data = load_seed_data(seed_data)
    volume = read_ct(ct).volume
    result = delivered_dose(volume, read_volume(region), sk_u, data)
    write_volume(result.dose_gy, out, force=force)
    found = result.seeds
    summary: dict[str, object] = {
        "n_seeds": found.count,
        "clumps_split": found.clumps_split,
        "seeds_lps_mm": np.round(found.positions_lps_mm, 2).tolist(),
        "dose": str(out),
    }
    if target is not None:
        tgt = read_volume(target)
        require_same_geometry(volume, tgt)
        indices = implant_indices(result.dose_gy.array, tgt.array > 0, rx_gy)
        summary["metrics"] = {k: round(v, 3) for k, v in indices.items()}
    if as_json:
        print_json({**summary, "notes": list(found.notes)})
        return
    print_notes(found.notes)
    out_console.print(
        f"seeds found: {found.count} ({found.clumps_split} clumps split)", highlight=False
    )
    for key, value in dict(summary.get("metrics") or {}).items():  # type: ignore[call-overload]
        out_console.print(f"{key}: {value}", highlight=False)
    print_written([out])
