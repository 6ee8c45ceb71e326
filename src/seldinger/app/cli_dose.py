"""``seldinger dose tg43``: TG-43U1 dose rate (and implant dose) of seeds at points."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seldinger.app._cli_common import JsonOption, _notes, _out, _print_json

__all__ = ["dose_app", "read_points_csv", "read_seeds_csv"]

dose_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Dose calculation: TG-43U1 dose rate of interstitial seeds at points.",
    no_args_is_help=True,
)

_POINT_COLUMNS = ("x_mm", "y_mm", "z_mm")
_SEED_COLUMNS = ("x_mm", "y_mm", "z_mm", "ax", "ay", "az")


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[list[float]]:
    """Rows of ``columns`` as floats; errors name the file, row (1 = header) and column."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must name "
                f"{','.join(columns)} (got {','.join(header) or 'no header'})."
            )
        rows = []
        for number, raw in enumerate(reader, start=2):
            record = {(k or "").strip(): v for k, v in raw.items()}
            values = []
            for column in columns:
                text = (record.get(column) or "").strip()
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise ValueError(
                        f"{path}: row {number}, column {column}: expected a finite number; "
                        f"got {text!r}."
                    )
                values.append(value)
            rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no data rows under the header {','.join(columns)}.")
    return rows


def read_points_csv(path: Path) -> list[list[float]]:
    """Points (x_mm, y_mm, z_mm; LPS) from a CSV with a header row."""
    return _read_csv(path, _POINT_COLUMNS)


def read_seeds_csv(path: Path) -> tuple[list[list[float]], list[list[float]]]:
    """Seed centres (LPS mm) and unit axes from a CSV with x_mm,y_mm,z_mm,ax,ay,az."""
    rows = _read_csv(path, _SEED_COLUMNS)
    centres, axes = [], []
    for number, row in enumerate(rows, start=2):
        norm = math.sqrt(sum(v * v for v in row[3:]))
        if norm < 1e-9:
            raise ValueError(
                f"{path}: row {number}, columns ax,ay,az: the seed axis is zero; give the "
                "direction of the seed's long axis (e.g. the needle direction)."
            )
        centres.append(row[:3])
        axes.append([v / norm for v in row[3:]])
    return centres, axes


@dose_app.command("tg43")
def tg43(
    seeds: Annotated[
        Path,
        typer.Option(
            "--seeds",
            help="CSV of seeds: x_mm,y_mm,z_mm (centre, LPS mm),ax,ay,az (long axis; "
            "normalised here).",
            show_default=False,
        ),
    ],
    points: Annotated[
        Path,
        typer.Option("--points", help="CSV of points x_mm,y_mm,z_mm (LPS mm).", show_default=False),
    ],
    sk_u: Annotated[
        float,
        typer.Option(
            "--sk-u",
            help="Air-kerma strength of every seed, U (1 mCi = 1.270 U for I-125).",
            show_default=False,
        ),
    ],
    seed_data: Annotated[
        str,
        typer.Option("--seed-data", help="Built-in seed model (6711) or a seed data JSON file."),
    ] = "6711",
    model: Annotated[
        str, typer.Option("--model", help="TG-43U1 formalism: 2d, 1d-line or 1d-point.")
    ] = "2d",
    total: Annotated[
        bool,
        typer.Option("--total", help="Also print the permanent-implant dose (complete decay), Gy."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """TG-43U1 dose rate (cGy/h) of seeds at points; with --total the implant dose (Gy).

    Example: `seldinger dose tg43 --sk-u 0.635 --seeds seeds.csv --points points.csv --total`.
    """
    from seldinger.physics.tg43 import (
        DoseModel,
        dose_rate_cgy_per_h,
        load_seed_data,
        points_inside_seeds,
        total_dose_gy,
    )

    if model not in {m.value for m in DoseModel}:
        raise typer.BadParameter(
            f"expected one of {', '.join(m.value for m in DoseModel)}; got {model!r}.",
            param_hint="--model",
        )
    if not (math.isfinite(sk_u) and sk_u >= 0):
        raise typer.BadParameter(
            f"air-kerma strength must be a finite number >= 0 U; got {sk_u}.", param_hint="--sk-u"
        )
    data = load_seed_data(seed_data)
    centres, axes = read_seeds_csv(seeds)
    where = read_points_csv(points)
    rate = dose_rate_cgy_per_h(where, centres, axes, sk_u, data, model)
    dose = total_dose_gy(rate, data.half_life_days) if total else None
    inside = points_inside_seeds(where, centres, axes, data)
    notes = []
    if inside.any():
        rows = ", ".join(str(i + 2) for i in inside.nonzero()[0][:10])
        notes.append(
            f"{int(inside.sum())} point(s) lie inside a seed capsule (rows {rows}); their dose "
            "rate is the value on the capsule surface."
        )
    if as_json:
        payload: dict[str, object] = {
            "seed_data": data.name,
            "model": model,
            "sk_u": sk_u,
            "dose_rate_cgy_per_h": rate.tolist(),
        }
        if dose is not None:
            payload["total_dose_gy"] = dose.tolist()
        payload["inside_seed"] = inside.tolist()
        _print_json(payload)
        return
    _notes(notes)
    table = Table(title=f"TG-43U1 {model}, {data.name}, S_K {sk_u:g} U, {len(centres)} seed(s)")
    for column in ("x_mm", "y_mm", "z_mm", "dose rate (cGy/h)"):
        table.add_column(column, justify="right")
    if dose is not None:
        table.add_column("total dose (Gy)", justify="right")
    for n, (point, value) in enumerate(zip(where, rate, strict=True)):
        cells = [f"{c:.2f}" for c in point] + [f"{value:.5g}"]
        if dose is not None:
            cells.append(f"{dose[n]:.4g}")
        table.add_row(*cells)
    _out.print(table)


@dose_app.command("postimplant")
def postimplant(
    ct: Annotated[Path, typer.Argument(help="Post-implant CT (NIfTI, NRRD, MHA or DICOM).")],
    region: Annotated[
        Path,
        typer.Option(
            "--region",
            help="Mask (same grid) of where to look for seeds: the implanted organ or target "
            "with a few cm around it. Outside it, contrast, clips and dense bone can read as "
            "metal too.",
        ),
    ],
    sk_u: Annotated[float, typer.Option("--sk-u", help="Air-kerma strength per seed, U.")],
    out: Annotated[Path, typer.Option("--out", help="Total dose (Gy) as NIfTI, CT grid.")],
    seed_data: Annotated[
        str, typer.Option("--seed-data", help="Seed model: 6711 (built in) or a JSON path.")
    ] = "6711",
    target: Annotated[
        Path | None,
        typer.Option("--target", help="Target mask (same grid): report D90, V100, V150."),
    ] = None,
    rx_gy: Annotated[
        float, typer.Option("--rx-gy", help="Prescription for V100/V150 (Gy).")
    ] = 120.0,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output.")] = False,
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

    from seldinger._files import check_overwrite
    from seldinger.imaging import require_same_geometry
    from seldinger.io import read_ct, read_volume, write_volume
    from seldinger.physics.tg43 import dose_on_grid, load_seed_data, total_dose_gy
    from seldinger.planning.seeds import detect_seeds, implant_indices

    check_overwrite(out, force)
    if not sk_u > 0:
        raise typer.BadParameter(f"must be > 0 U; got {sk_u}.", param_hint="--sk-u")
    data = load_seed_data(seed_data)
    volume = read_ct(ct).volume
    region_mask = read_volume(region)
    require_same_geometry(volume, region_mask)
    region_mask = region_mask.with_array(region_mask.array > 0)
    found = detect_seeds(volume, region_mask)
    seeds = found.positions_lps_mm
    pad_mm = 50.0
    lo = np.floor(volume.lps_to_index(seeds).min(axis=0) - pad_mm / np.abs(volume.spacing_mm))
    hi = np.ceil(volume.lps_to_index(seeds).max(axis=0) + pad_mm / np.abs(volume.spacing_mm))
    box = tuple(
        slice(max(int(a), 0), min(int(b) + 1, n))
        for a, b, n in zip(np.minimum(lo, hi), np.maximum(lo, hi), volume.shape, strict=True)
    )
    crop = volume.crop_index(box)
    rate = dose_on_grid(crop, seeds, found.axes_lps, sk_u, data)
    dose = np.zeros(volume.shape, dtype=np.float32)
    dose[box] = total_dose_gy(np.asarray(rate.array, dtype=np.float64), data).astype(np.float32)
    write_volume(volume.with_array(dose), out)
    result: dict[str, object] = {
        "n_seeds": found.count,
        "clumps_split": found.clumps_split,
        "seeds_lps_mm": np.round(seeds, 2).tolist(),
        "dose": str(out),
    }
    if target is not None:
        tgt = read_volume(target)
        require_same_geometry(volume, tgt)
        result["metrics"] = {
            k: round(v, 3) for k, v in implant_indices(dose, tgt.array > 0, rx_gy).items()
        }
    notes = list(found.notes)
    if as_json:
        _print_json({**result, "notes": notes})
        return
    _notes(notes)
    _out.print(f"seeds found: {found.count} ({found.clumps_split} clumps split)", highlight=False)
    for key, value in dict(result.get("metrics") or {}).items():  # type: ignore[call-overload]
        _out.print(f"{key}: {value}", highlight=False)
    _out.print(f"wrote {out}", highlight=False)
