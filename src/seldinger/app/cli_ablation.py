"""``seldinger plan ablation`` and ``seldinger plan devices``: ablation planning on a plan."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    _read_ct,
)

if TYPE_CHECKING:
    from seldinger.imaging import Volume
    from seldinger.planning import Plan, Target

from seldinger.app.cli_plan import TABLE_DIRECTION_LPS, TableSide, _on_grid

__all__ = ["ZONE_MASK_NAME", "plan_ablation_command", "plan_devices", "register"]


def register(app: typer.Typer) -> None:
    """Add ``ablation`` and ``devices`` to the ``plan`` command group."""
    app.command("ablation")(plan_ablation_command)
    app.command("devices")(plan_devices)


#: Name of the zone mask ``plan ablation`` writes beside the plan.
ZONE_MASK_NAME = "ablation_zone.nii.gz"


def plan_ablation_command(
    plan_path: Annotated[
        Path,
        typer.Argument(
            metavar="PLAN",
            help="Plan written by `seldinger plan trajectory` (its structures and lesion target "
            "are used; the ablation is added to it).",
            show_default=False,
        ),
    ],
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="Ablation device of the catalogue, e.g. emprint, cooltip-rf, "
            "cryo-littrup-2.4mm, nanoknife (`seldinger plan devices` lists them).",
            show_default=False,
        ),
    ],
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            help="A setting the planner may use (repeat it; default: every setting of the "
            "device), e.g. --setting 150W-10min.",
            show_default=False,
        ),
    ] = None,
    margin_mm: Annotated[
        float,
        typer.Option(
            "--margin-mm",
            min=0.0,
            max=30.0,
            help="Ablative margin around the lesion that the zones must cover, mm.",
        ),
    ] = 5.0,
    max_probes: Annotated[
        int,
        typer.Option(
            "--max-probes",
            min=1,
            max=4,
            help="Most applicators (a cryo or IRE cluster counts as one) to place.",
        ),
    ] = 3,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Name of the plan's target to ablate (default: the first with a mask).",
            show_default=False,
        ),
    ] = None,
    vessel: Annotated[
        list[str] | None,
        typer.Option(
            "--vessel",
            help="Another vessel mask checked for heat sink, NAME=MASK on the CT's grid "
            "(repeat it), e.g. --vessel portal_vein=portal.nii.gz.",
            show_default=False,
        ),
    ] = None,
    figures: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            help="Folder for pictures: ablation_zones.png (the zones over the CT), "
            "ablation_probe_1.png … (the CT along each applicator) and margin_map.png.",
            show_default=False,
        ),
    ] = None,
    ct_path: PlanCtOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Place ablation applicators whose predicted zones cover a lesion and its margin.

    Needs a plan from `seldinger plan trajectory ... --lesion MASK`: its CT, anatomy and
    lesion. The planner picks the fewest applicators (then the least healthy tissue) whose
    zones (the device's published ellipsoids) cover 99 % of the lesion plus --margin-mm,
    with every probe path obeying the plan's trajectory rules (no bone, mediastinum,
    central airways or large vessel; the device's usable length, else 150 mm) and no zone
    reaching the mediastinum or central airways. The result is checked: the minimal
    ablative margin, the tumour surface by margin (< 0, 0-5, >= 5 mm) and vessels at least
    3 mm wide within 10 mm of the zone (heat sink, thermal devices).

    Writes the result into PLAN (its `ablation` field; --force replaces an earlier one) and
    the zone mask beside it (ablation_zone.nii.gz, for `seldinger margin` or a viewer).
    `seldinger plan devices` lists the devices and their settings.

    Exit status: 0 on success; 1 when no placement reaches the goal (the message says what
    to change), for an unknown device or setting (the alternatives are listed) and for
    other errors (nothing is written); 2 for usage errors.

    Example: `seldinger plan ablation plan.json --device emprint --setting 150W-10min
    --figures figures`.
    """
    from seldinger._files import check_overwrite
    from seldinger.export.ablation_figures import ablation_figure_names, write_ablation_figures
    from seldinger.io import write_volume
    from seldinger.physics.ablation import load_catalogue
    from seldinger.planning import Plan
    from seldinger.planning.ablation import plan_ablation

    catalogue = load_catalogue()
    dev = catalogue.device(device)  # UnknownDeviceError lists the devices
    settings = [dev.setting(name).name for name in setting or ()]  # ... the device's settings
    extra_vessels = _vessel_options(vessel or [])

    plan = Plan.load(plan_path)
    if plan.ablation is not None and not force:
        raise FileExistsError(
            f"{plan_path} already holds an ablation plan ({plan.ablation.get('device')} "
            f"{', '.join(plan.ablation.get('settings', []))}); pass --force to replace it."
        )
    zone_path = plan_path.parent / ZONE_MASK_NAME
    check_overwrite(zone_path, force or plan.ablation is not None)
    if figures is not None:
        for name in ablation_figure_names():
            check_overwrite(figures / name, force)
    plan, loaded, ct, (anatomy, lesion), chosen = load_plan_case(
        plan, plan_path, target, ct_path, resample, show_progress=not as_json
    )
    vessels = {
        name: _read_mask(str(path), plan_path, ct, f"--vessel {name}", relative=False)
        for name, path in extra_vessels.items()
    }
    constraints = _ablation_constraints(plan, dev.usable_length_mm)
    with _progress(f"placing {dev.name} applicators", not as_json):
        result = plan_ablation(
            anatomy,
            lesion,
            dev.name,
            settings or None,
            margin_mm=margin_mm,
            max_probes=max_probes,
            constraints=constraints,
            vessels=vessels,
            catalogue=catalogue,
        )

    plan.ablation = {
        **result.to_dict(),
        "target": chosen.name,
        "zone_mask_path": ZONE_MASK_NAME,
    }
    plan.provenance.parameters["ablation"] = {
        "device": dev.name,
        "settings": settings or None,
        "margin_mm": margin_mm,
        "max_probes": max_probes,
        "target": chosen.name,
        "vessels": {name: str(path) for name, path in extra_vessels.items()},
        "needle_length_mm": constraints.needle_length_mm,
    }
    written: list[Path] = []
    # everything is drawn and written aside first: on an error, nothing has changed
    scratch = Path(tempfile.mkdtemp(prefix=".ablation.", suffix=".part", dir=plan_path.parent))
    try:
        write_volume(result.zone, scratch / ZONE_MASK_NAME)  # bool: stored as uint8
        drawn: list[Path] = []
        if figures is not None:
            with _progress("drawing figures", not as_json):
                context = {"vessels": anatomy["vessels"]} if "vessels" in anatomy else {}
                drawn = write_ablation_figures(ct, result, lesion, scratch / "figures", context)
            figures.mkdir(parents=True, exist_ok=True)
        plan.save(plan_path, force=True)
        os.replace(scratch / ZONE_MASK_NAME, zone_path)
        if figures is not None:
            for path in drawn:
                shutil.move(path, figures / path.name)
                written.append(figures / path.name)
            stale = set(ablation_figure_names()) - {path.name for path in drawn}
            for name in stale:  # probe views of an earlier run with more applicators
                (figures / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    notes = [*loaded.meta.notes, *result.placement.notes, *_ablation_caveats(dev.provenance)]
    if as_json:
        _print_json(
            {
                **result.to_dict(),
                "target": chosen.name,
                "plan": str(plan_path),
                "zone_mask": str(zone_path),
                "figures": [str(p) for p in written],
                "notes": notes,
            }
        )
        return
    _notes(notes)
    summary = result.to_dict()
    _out.print(_applicators_table(summary, chosen.name))
    from seldinger.app.cli_margin import margin_lines

    _out.print(
        f"lesion + {margin_mm:g} mm covered: {summary['target_coverage_percent']:.1f} % "
        f"(lesion {summary['lesion_coverage_percent']:.1f} %); zone "
        f"{summary['zone_volume_ml']:.1f} mL, healthy tissue ablated "
        f"{summary['healthy_ablated_ml']:.1f} mL",
        highlight=False,
    )
    for line in margin_lines(result.margin):
        _out.print(line, highlight=False)
    for line in _heat_sink_lines(result):
        _out.print(line, highlight=False)
    _out.print(
        f"device: {dev.name} ({dev.modality}); zone sizes: {dev.provenance} "
        f"(confidence {dev.confidence}); source: {' '.join(dev.source.split())}",
        highlight=False,
    )
    for path in [plan_path, zone_path, *written]:
        _out.print(f"wrote {path}", highlight=False)


def plan_devices(as_json: JsonOption = False) -> None:
    """List the ablation devices of the catalogue: name, modality, settings, provenance, source.

    The names and settings are what `seldinger plan ablation --device NAME --setting S`
    takes. Add devices with a JSON file in the catalogue schema (docs/ablation_devices.md)
    named in the SELDINGER_DEVICE_CATALOGUE environment variable.
    """
    from seldinger.physics.ablation import load_catalogue

    rows: list[dict[str, Any]] = [
        {
            "name": device.name,
            "modality": str(device.modality),
            "manufacturer": device.manufacturer,
            "settings": list(device.settings),
            "provenance": device.provenance,
            "confidence": device.confidence,
            "usable_length_mm": device.usable_length_mm,
            "source": device.source,
        }
        for device in load_catalogue()
    ]
    if as_json:
        _print_json({"devices": rows})
        return
    table = Table(title="Ablation devices (zones: ellipsoids from the cited source)")
    table.add_column("name", no_wrap=True)
    table.add_column("modality", no_wrap=True)
    table.add_column("settings")
    table.add_column("provenance")
    for row in rows:
        table.add_row(
            row["name"],
            row["modality"],
            ", ".join(row["settings"]),
            f"{row['provenance']} ({row['confidence']})",
        )
    _out.print(table)
    for row in rows:
        _out.print(f"{row['name']}: {' '.join(row['source'].split())}", highlight=False)
    _out.print(
        "Vendor charts come from normal animal liver and over-predict clinical zones "
        "(Ruiter et al., Eur Radiol 2019;29:4026).",
        highlight=False,
    )


def _vessel_options(items: list[str]) -> dict[str, Path]:
    """``NAME=MASK`` options as a mapping."""
    vessels: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise typer.BadParameter(
                f"expected NAME=MASK (e.g. portal_vein=portal.nii.gz); got {item!r}.",
                param_hint="'--vessel'",
            )
        vessels[name.strip()] = Path(path.strip())
    return vessels


def _plan_target(plan: Plan, plan_path: Path, name: str | None) -> Target:
    """The target to ablate: ``name``, or the first with a mask."""
    with_mask = [t for t in plan.targets if t.mask_path]
    if name is not None:
        for candidate in plan.targets:
            if candidate.name == name:
                if not candidate.mask_path:
                    raise ValueError(
                        f"target {name!r} of {plan_path} has no lesion mask; plan the "
                        "trajectory with --lesion MASK to add one."
                    )
                return candidate
        raise ValueError(
            f"{plan_path} has no target {name!r}; its targets are {[t.name for t in plan.targets]}."
        )
    if not with_mask:
        raise ValueError(
            f"{plan_path} has no target with a lesion mask; run `seldinger plan trajectory CT "
            f"--anatomy DIR --lesion MASK --out {plan_path} --force` first."
        )
    return with_mask[0]


def _plan_ct_path(plan: Plan, plan_path: Path, given: Path | None) -> Path:
    """Where the plan's CT is: ``given``, the recorded path, or that path beside the plan."""
    if given is not None:
        if not given.exists():
            raise FileNotFoundError(f"--ct {given} does not exist.")
        return given
    recorded = Path(plan.case.source_path)
    for candidate in (recorded, plan_path.parent / recorded):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"the plan's CT {plan.case.source_path} (case.source_path of {plan_path}) is not "
        "there any more; pass its new location with --ct PATH."
    )


def _read_mask(
    mask_path: str, plan_path: Path, ct: Volume, what: str, relative: bool = True
) -> Volume:
    """A bool mask on the CT's grid; ``mask_path`` relative to the plan's folder."""
    from seldinger.io import read_volume

    path = plan_path.parent / mask_path if relative else Path(mask_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"the mask of {what} is missing: {path}. Keep the masks where the plan points "
            "(paths relative to the plan file) or plan the trajectory again."
        )
    mask = _on_grid(
        read_volume(path), ct, f"the mask of {what} ({path})", "Use masks made on this CT."
    )
    return mask.with_array(mask.array > 0)


def _plan_anatomy(plan: Plan, plan_path: Path, ct: Volume) -> Any:
    """The plan's anatomy on the CT's grid (its folder's airway graph and vessel radii too)."""
    from seldinger.anatomy import ANATOMY_JSON, STRUCTURES, Anatomy, load_anatomy

    names = [name for name in plan.structures if name in STRUCTURES]
    folders = {(plan_path.parent / plan.structures[name].mask_path).parent for name in names}
    if len(folders) == 1 and (next(iter(folders)) / ANATOMY_JSON).is_file():
        folder = next(iter(folders))
        stored = load_anatomy(folder)
        masks = {
            name: _on_grid(mask, ct, f"the anatomy mask {folder / name}", "Segment this CT.")
            for name, mask in stored.masks.items()
        }
        radius = stored.vessel_radius_mm
        return Anatomy(
            masks=masks,
            engine=stored.engine,
            notes=stored.notes,
            airway_graph=stored.airway_graph,
            vessel_radius_mm=None
            if radius is None
            else _on_grid(radius, ct, f"the vessel radius map in {folder}", "Segment this CT."),
        )
    masks = {
        name: _read_mask(plan.structures[name].mask_path, plan_path, ct, f"structure {name!r}")
        for name in names
    }
    if "body" not in masks:
        raise ValueError(
            f"the structures of {plan_path} have no body mask; run `seldinger plan trajectory` "
            "first (with an anatomy folder from `seldinger segment`)."
        )
    return Anatomy(masks=masks)


def _ablation_constraints(plan: Plan, usable_length_mm: float | None) -> Any:
    """The plan's trajectory rules, with the ablation applicator's usable length."""
    from seldinger.planning.trajectory import TrajectoryConstraints

    rules = plan.provenance.parameters.get("trajectory") or {}
    side = rules.get("table_side")
    length_mm = (
        usable_length_mm
        or rules.get("ablation_probe_length_mm")
        or TrajectoryConstraints.needle_length_mm
    )
    return TrajectoryConstraints(
        needle_length_mm=float(length_mm),
        vessel_calibre_mm=float(rules.get("vessel_calibre_mm", 3.0)),
        vessel_distance_mm=float(rules.get("vessel_distance_mm", 3.0)),
        forbidden=tuple(rules.get("forbidden") or ()),
        max_axial_angle_deg=rules.get("max_axial_angle_deg"),
        table_direction_lps=None if side is None else TABLE_DIRECTION_LPS[TableSide(side)],
    )


def _ablation_caveats(provenance: str) -> list[str]:
    """What the user must know about zone sizes of this provenance."""
    if provenance in ("manufacturer chart", "published ex vivo"):
        return [
            f"zone sizes are a {provenance}: vendor charts come from normal animal liver and "
            "over-predict clinical zones, most near vessels and in perfused tissue (Ruiter et "
            "al., Eur Radiol 2019;29:4026). Treat the zone as an optimistic outline."
        ]
    return []


def _lps(point: Any) -> str:
    return ", ".join(f"{v:.1f}" for v in point)


def _applicators_table(summary: dict[str, Any], target: str) -> Table:
    rows = summary["applicators"]
    clusters = any(len(row["probes_tip_lps_mm"]) > 1 for row in rows)
    table = Table(
        title=f"{summary['device']} ({summary['modality']}): {summary['n_applicators']} "
        f"applicator(s) for {target} + {summary['margin_mm']:g} mm"
    )
    table.add_column("#", justify="right")
    table.add_column("setting", no_wrap=True)
    table.add_column("tip\nLPS mm")
    table.add_column("entry\nLPS mm")
    table.add_column("depth\nmm", justify="right")
    table.add_column("zone\nmm", justify="right")
    if clusters:
        table.add_column("probes", justify="right")
    table.add_column("coverage\nalone %", justify="right")
    for n, row in enumerate(rows, 1):
        cells = [
            str(n),
            row["setting"],
            _lps(row["tip_lps_mm"]),
            _lps(row["entry_lps_mm"]),
            f"{row['insertion_depth_mm']:.1f}",
            "×".join(f"{2 * r:.0f}" for r in row["zone_radii_mm"]),
            f"{row['coverage_percent_alone']:.1f}",
        ]
        if clusters:
            cells.insert(6, str(len(row["probes_tip_lps_mm"])))
        table.add_row(*cells)
    return table


def _heat_sink_lines(result: Any) -> list[str]:
    from seldinger.planning.ablation import HEAT_SINK_CALIBRE_MM, HEAT_SINK_DISTANCE_MM

    if result.modality == "ire":
        return ["heat sinks: not applicable (IRE is non-thermal)"]
    if not result.heat_sinks:
        return [
            f"heat sinks: none (no vessel >= {HEAT_SINK_CALIBRE_MM:g} mm wide within "
            f"{HEAT_SINK_DISTANCE_MM:g} mm of the zone)"
        ]
    return [
        f"heat sink: {sink.vessel} {sink.diameter_mm:.1f} mm wide "
        + (
            "running through the zone"
            if sink.distance_mm <= 0
            else f"{sink.distance_mm:.1f} mm from the zone"
        )
        + f" at LPS ({_lps(sink.closest_lps_mm)}) mm: blood flow shrinks the zone there"
        for sink in result.heat_sinks
    ]


def load_plan_case(
    plan: Plan,
    plan_path: Path,
    target: str | None,
    ct_path: Path | None,
    resample: bool,
    show_progress: bool,
) -> tuple[Plan, Any, Any, tuple[Any, Any], Target]:
    """The plan (re-read against its CT), the CT, its anatomy and the target lesion mask.

    Shared by ``plan ablation`` and ``plan seeds``: both read what ``plan trajectory``
    wrote. Errors name the fix (a moved CT: ``--ct``; no structures: run ``plan
    trajectory`` first).
    """
    from seldinger.planning import Plan, PlanCaseMismatchError

    chosen = _plan_target(plan, plan_path, target)
    if not plan.structures:
        raise ValueError(
            f"{plan_path} holds no anatomy structures; run `seldinger plan trajectory CT "
            f"--anatomy DIR --lesion MASK --out {plan_path}` first."
        )
    source = _plan_ct_path(plan, plan_path, ct_path)
    loaded = _read_ct(source, plan.case.series_uid, resample, show_progress=show_progress)
    ct = loaded.volume
    try:
        plan = Plan.load(plan_path, volume=ct)
    except PlanCaseMismatchError as err:
        raise PlanCaseMismatchError(
            f"{' '.join(str(err).split())} The CT at {source} has changed since the plan was "
            "made: pass the plan's CT with --ct PATH, or plan again on this CT."
        ) from err
    with _progress("reading the anatomy and lesion", show_progress):
        anatomy = _plan_anatomy(plan, plan_path, ct)
        lesion = _read_mask(chosen.mask_path or "", plan_path, ct, f"target {chosen.name!r}")
    return plan, loaded, ct, (anatomy, lesion), chosen
