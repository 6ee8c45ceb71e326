"""``seldinger plan …``: the planning steps that write and extend a plan (plan.json).

Each command parses its options, calls one step of :mod:`seldinger.workflow` and prints.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from seldinger.app.common import (
    CtArgument,
    ForceOption,
    JsonOption,
    PlanArgument,
    PlanCtOption,
    ResampleOption,
    SeriesOption,
    command_line,
    err_console,
    name_paths,
    out_console,
    parse_lps,
    print_json,
    print_notes,
    print_written,
    stages,
)
from seldinger.app.plan_tables import (
    applicators_table,
    blocked_table,
    devices_table,
    drawn_table,
    heat_sink_lines,
    margin_lines,
    margin_shortfall,
    paths_table,
    seed_tables,
)

__all__ = ["TableSide", "plan_app"]

plan_app = typer.Typer(
    rich_markup_mode="markdown",
    name="plan",
    help=(
        "Planning steps that write and extend a plan (plan.json: the typed hand-over between "
        "steps, the viewer, the report and the exports).\n\n"
        "`plan trajectory` finds every safe needle path to a target; `plan ablation` places "
        "ablation applicators; `plan seeds` plans an I-125 implant; `plan devices` lists the "
        "ablation devices; `plan schema` prints the plan's JSON Schema; `plan migrate` "
        "upgrades a plan of an earlier Seldinger.\n\n"
        "Example: `seldinger segment ct.nii.gz --out anatomy && seldinger plan trajectory "
        "ct.nii.gz --anatomy anatomy --lesion nodule.nii.gz --out plan.json && seldinger plan "
        "ablation plan.json --device emprint`."
    ),
    no_args_is_help=True,
)


class TableSide(StrEnum):
    """Side of the patient lying on the table (none: refuse no side)."""

    posterior = "posterior"
    anterior = "anterior"
    left = "left"
    right = "right"
    none = "none"


class PatientPosition(StrEnum):
    """How the patient lay on the table."""

    supine = "supine"
    prone = "prone"
    decubitus_left = "decubitus-left"
    decubitus_right = "decubitus-right"


class SeedTemplate(StrEnum):
    """Needle arrangement of a seed implant."""

    coplanar = "coplanar"
    free = "free"


def _option(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, show_default=kwargs.pop("show_default", False), **kwargs)


AnatomyOption = Annotated[
    Path,
    _option(
        "--anatomy", help="Anatomy folder of this CT, written by `seldinger segment CT --out DIR`."
    ),
]
PlanOutOption = Annotated[
    Path,
    _option(
        "--out",
        help="Plan to write (plan.json). With --force, an existing plan of the same CT keeps its structures and targets and gets the new trajectories.",
    ),
]
TargetPointOption = Annotated[
    str | None,
    _option(
        "--target-lps-mm",
        help="Where the needle tip aims: X,Y,Z in DICOM patient LPS mm (or give --lesion).",
    ),
]
LesionOption = Annotated[
    Path | None,
    _option(
        "--lesion",
        help="Lesion mask on this CT's grid (e.g. from `seldinger lesion`): the target is its centroid and the needle must reach its far side. Added to the plan's targets.",
    ),
]
NeedleLengthOption = Annotated[
    float,
    _option(
        "--needle-length-mm",
        min=1.0,
        help="Usable needle length in mm: skin to tip (to the lesion's far side with --lesion).",
        show_default=True,
    ),
]
AxialAngleOption = Annotated[
    float | None,
    _option(
        "--max-axial-angle-deg",
        min=0.0,
        max=90.0,
        help="Largest angle between the needle and the axial plane, degrees (in-plane CT guidance keeps it small); default: no limit.",
    ),
]
TopOption = Annotated[
    int,
    _option(
        "--top",
        min=1,
        help="How many distinct paths (entries >= 10 mm apart) to keep.",
        show_default=True,
    ),
]
CalibreOption = Annotated[
    float,
    _option(
        "--vessel-calibre-mm",
        min=0.0,
        help="Vessels at least this wide (diameter, mm) are kept at --vessel-distance-mm.",
        show_default=True,
    ),
]
VesselDistanceOption = Annotated[
    float,
    _option(
        "--vessel-distance-mm",
        min=0.0,
        help="Closest allowed distance from the needle to such a vessel, mm.",
        show_default=True,
    ),
]
ForbidOption = Annotated[
    list[str] | None,
    _option(
        "--forbid",
        help="Another structure of the anatomy no path may cross, besides bones, mediastinum, trachea and main bronchi (repeat it or separate names by commas: --forbid liver); `plan ablation` keeps its zones out of it too. A structure not segmented (gallbladder, bowel) is first added with `seldinger segment CT --out ANATOMY --add NAME=MASK`.",
    ),
]
TableSideOption = Annotated[
    TableSide | None,
    _option(
        "--table-side",
        help="Refuse entries from this side instead of the table side of the position: posterior, anterior, left, right, or none (refuse no side).",
    ),
]
PositionOption = Annotated[
    PatientPosition | None,
    _option(
        "--position",
        help="How the patient lay: supine, prone, decubitus-left (on the left side) or decubitus-right. Default: DICOM PatientPosition, else the table seen in the CT, else supine (said so). Entries from the table side are refused.",
    ),
]
EntryOption = Annotated[
    str | None,
    _option(
        "--entry-lps-mm",
        metavar="X,Y,Z",
        help="Score a path you drew instead of searching: the skin entry (LPS mm) to the target. Prints every metric and names each rule it breaks (status 4, nothing written); a safe one is written as the plan's path.",
    ),
]
ProbeLengthOption = Annotated[
    float | None,
    _option(
        "--ablation-probe-length-mm",
        min=1.0,
        help="Usable length (mm) of an ablation probe meant to share the biopsy tract; each path then says whether it serves both (dual_use).",
    ),
]
TrajectoryFiguresOption = Annotated[
    Path | None,
    _option(
        "--figures",
        help="Folder for pictures: paths_axial.png (the ranked paths), needle_1.png … (views along the 3 best needles) and skin_risk_map.png.",
    ),
]
DeviceOption = Annotated[
    str,
    _option(
        "--device",
        help="Ablation device of the catalogue, e.g. emprint, cooltip-rf, cryo-littrup-2.4mm, nanoknife (`seldinger plan devices` lists them).",
    ),
]
SettingOption = Annotated[
    list[str] | None,
    _option(
        "--setting",
        help="A setting the planner may use (repeat it; default: every setting of the device), e.g. --setting 150W-10min.",
    ),
]
AblationMarginOption = Annotated[
    float,
    _option(
        "--margin-mm",
        min=0.0,
        max=30.0,
        help="Ablative margin around the lesion that the zones must cover, mm.",
        show_default=True,
    ),
]
MaxProbesOption = Annotated[
    int,
    _option(
        "--max-probes",
        min=1,
        max=4,  # planning.ablation.placement.MAX_PROBES (not imported: it loads Numba)
        help="Most applicators (a cryo or IRE cluster counts as one) to place.",
        show_default=True,
    ),
]
TargetNameOption = Annotated[
    str | None,
    _option("--target", help="Name of the plan's target (default: the first with a mask)."),
]
VesselOption = Annotated[
    list[str] | None,
    _option(
        "--vessel",
        help="Another vessel mask checked for heat sink, NAME=MASK on the CT's grid (repeat it), e.g. --vessel portal_vein=portal.nii.gz.",
    ),
]
AblationFiguresOption = Annotated[
    Path | None,
    _option(
        "--figures",
        help="Folder for pictures: ablation_zones.png, ablation_probe_1.png … (the CT along each applicator) and margin_map.png.",
    ),
]
RxOption = Annotated[
    float,
    _option(
        "--rx-gy",
        min=1.0,
        max=400.0,
        help="Prescription dose (Gy, total decay).",
        show_default=True,
    ),
]
PtvMarginOption = Annotated[
    float,
    _option(
        "--margin-mm",
        min=0.0,
        max=20.0,
        help="PTV margin around the lesion, mm.",
        show_default=True,
    ),
]
TemplateOption = Annotated[
    SeedTemplate,
    _option(
        "--template",
        help="coplanar: parallel needles through a 5 mm template grid; free: individually angled needles.",
        show_default=True,
    ),
]
SeedDataOption = Annotated[
    str,
    _option(
        "--seed-data",
        help="TG-43 seed data: a built-in model (6711) or a JSON file (docs/tg43.md).",
        show_default=True,
    ),
]
StrengthOption = Annotated[
    str | None,
    _option(
        "--strength-mci",
        help="Seed strengths to try, mCi, comma-separated (default 0.4,0.5,0.6,0.7,0.8).",
    ),
]
SeedFiguresOption = Annotated[
    Path | None,
    _option(
        "--figures",
        help="Folder for pictures: seed_dose.png (lesion, 100/150/200 % isodoses, seeds), seed_dvh.png (the PTV's DVH) and seed_needles.png.",
    ),
]
StlOption = Annotated[
    Path | None,
    _option(
        "--stl",
        help="Write a printable coplanar template plate (STL, LPS mm) here (--template coplanar only).",
    ),
]


@plan_app.command("trajectory")
def plan_trajectory(
    ct: CtArgument,
    anatomy_dir: AnatomyOption,
    out: PlanOutOption,
    target_lps_mm: TargetPointOption = None,
    lesion: LesionOption = None,
    needle_length_mm: NeedleLengthOption = 150.0,
    max_axial_angle_deg: AxialAngleOption = None,
    top: TopOption = 5,
    vessel_calibre_mm: CalibreOption = 3.0,
    vessel_distance_mm: VesselDistanceOption = 3.0,
    forbid: ForbidOption = None,
    position: PositionOption = None,
    table_side: TableSideOption = None,
    entry_lps_mm: EntryOption = None,
    ablation_probe_length_mm: ProbeLengthOption = None,
    figures: TrajectoryFiguresOption = None,
    series: SeriesOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Find every safe straight needle path from the skin to a target; rank them by risk.

    Every skin point within the needle's reach is tried. Paths through bone, mediastinum,
    trachea or main bronchi (or a --forbid structure), near a large vessel, leaving and
    re-entering the body, entering from the table side (from --position, DICOM
    PatientPosition or the table in the image) or breaking --max-axial-angle-deg are
    refused. With --entry-lps-mm only the path you drew is scored.
    The safe ones are ranked by a risk score: the log odds of pneumothorax from published
    odds ratios (bulla or emphysema crossed, more than one pleural puncture, depth >= 3 cm),
    with needle length, lung length, pleural angle and vessel margin as tie-breakers. The
    best --top distinct paths go into the plan with all their metrics (LPS mm).

    Exit status: 0 with safe paths; 4 when no path is safe (nothing is written, the
    structures blocking the way are listed); 3 for unusable input (target outside the body
    or in bone, anatomy of another CT …); 5 for files (missing, or existing without --force);
    2 for usage errors.

    Example: `seldinger plan trajectory ct.nii.gz --anatomy anatomy --lesion nodule.nii.gz
    --out plan.json --figures figures`.
    """
    from seldinger.plan import TrajectoryRules
    from seldinger.workflow.trajectory import TrajectoryRequest

    if (target_lps_mm is None) == (lesion is None):
        raise typer.BadParameter(
            "give exactly one of --target-lps-mm X,Y,Z (a point, LPS mm) or --lesion MASK (a "
            f"lesion mask); got {'both' if lesion is not None else 'neither'}.",
            param_hint="'--target-lps-mm' / '--lesion'",
        )
    rules = TrajectoryRules(
        needle_length_mm=needle_length_mm,
        vessel_calibre_mm=vessel_calibre_mm,
        vessel_distance_mm=vessel_distance_mm,
        forbidden=[n for n in dict.fromkeys(_names(forbid)) if n],
        max_axial_angle_deg=max_axial_angle_deg,
        ablation_probe_length_mm=ablation_probe_length_mm,
    )
    target = None if target_lps_mm is None else parse_lps(target_lps_mm, "--target-lps-mm")
    request = TrajectoryRequest(
        ct, anatomy_dir, out, target, lesion, rules, top, figures, series, resample, force,
        command_line(),
        position=None if position is None else position.value,
        table_side=None if table_side is None else table_side.value,
        entry_lps_mm=None if entry_lps_mm is None else parse_lps(entry_lps_mm, "--entry-lps-mm"),
    )  # fmt: skip
    _run_trajectory(request, as_json)


def _run_trajectory(request: Any, as_json: bool) -> None:
    """Run the step and print its paths (or why none is safe) for ``plan trajectory``."""
    from seldinger.planning.trajectory import NoSafePathError
    from seldinger.planning.trajectory.drawn import UnsafeDrawnPathError
    from seldinger.workflow.trajectory import plan_trajectory_step

    try:
        outcome = plan_trajectory_step(request, stages(not as_json))
    except NoSafePathError as err:
        if not as_json:
            err_console.print(blocked_table(err.blocked_by, err.n_candidates))
        raise
    except UnsafeDrawnPathError as err:
        if not as_json:
            err_console.print(drawn_table(err.drawn.to_dict()))
        raise
    summary = {**outcome.summary(), "plan": str(request.out)}
    if as_json:
        print_json(summary)
        return
    print_notes(outcome.notes)
    if outcome.drawn is not None:
        out_console.print(drawn_table(summary["drawn"]))
    else:
        out_console.print(paths_table(summary))
        out_console.print(blocked_table(summary["blocked_by"], summary["n_candidates"]))
    print_written([request.out, *outcome.figures])


PhysicsOption = Annotated[
    bool,
    typer.Option(
        "--physics",
        help="Simulate the zone on the CT (bioheat with heat sinks, IRE field, cryo) and use it "
        "for coverage and margin; the heat-sink shrinkage goes into the plan and the report.",
    ),
]


@plan_app.command("ablation")
def plan_ablation(
    plan_path: PlanArgument,
    device: DeviceOption,
    setting: SettingOption = None,
    margin_mm: AblationMarginOption = 5.0,
    max_probes: MaxProbesOption = 3,
    target: TargetNameOption = None,
    vessel: VesselOption = None,
    figures: AblationFiguresOption = None,
    ct_path: PlanCtOption = None,
    resample: ResampleOption = False,
    physics: PhysicsOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Place ablation applicators whose predicted zones cover a lesion and its margin.

    Needs a plan from `seldinger plan trajectory ... --lesion MASK`. The planner picks the
    fewest applicators (then the least healthy tissue) whose zones (the device's published
    ellipsoids) cover 99 % of the lesion plus --margin-mm, each probe path keeping the
    plan's trajectory rules with the device's usable length, and no zone reaching the
    mediastinum or central airways. It then measures the minimal ablative margin, the
    tumour surface by margin (< 0, 0-5, >= 5 mm) and vessels >= 3 mm within 10 mm of a
    thermal zone (heat sink).

    Writes the plan's `ablation` section (--force replaces it) and ablation_zone.nii.gz
    beside the plan (`<name>.ablation_zone.nii.gz` for a plan not named plan.json).

    Exit status: 0 done; 4 when no placement reaches the goal (nothing is written; the
    message says what to change); 3 unusable input (unknown device or setting, a plan
    without a lesion target); 5 files (the CT moved: --ct; existing output: --force).

    Example: `seldinger plan ablation plan.json --device emprint --setting 150W-10min
    --figures figures`.
    """
    from seldinger.workflow.ablation import AblationRequest, plan_ablation_step

    request = AblationRequest(
        plan_path=plan_path,
        device=device,
        settings=tuple(setting or ()),
        margin_mm=margin_mm,
        max_probes=max_probes,
        target=target,
        vessels=name_paths(vessel or [], "--vessel"),
        figures_dir=figures,
        ct_path=ct_path,
        resample=resample,
        force=force,
        command=command_line(),
        physics=physics,
    )
    outcome = plan_ablation_step(request, stages(not as_json))
    if as_json:
        print_json({**outcome.summary(), "plan": str(plan_path)})
        return
    print_notes(outcome.notes)
    section, dev = outcome.section, outcome.device
    out_console.print(applicators_table(section))
    out_console.print(
        f"lesion + {section.margin_mm:g} mm covered: {section.target_coverage_percent:.1f} % "
        f"(lesion {section.lesion_coverage_percent:.1f} %); zone {section.zone_volume_ml:.1f} "
        f"mL, healthy tissue ablated {section.healthy_ablated_ml:.1f} mL",
        highlight=False,
    )
    for line in [*margin_lines(outcome.result.margin), *heat_sink_lines(section)]:
        out_console.print(line, highlight=False)
    short = margin_shortfall(outcome.result.margin, section.margin_mm)
    for warning in [*([short] if short else []), *outcome.warnings]:
        out_console.print(f"warning: {warning}", highlight=False)
    out_console.print(
        f"device: {dev.name} ({dev.modality}); zone sizes: {dev.provenance} (confidence "
        f"{dev.confidence}); source: {' '.join(dev.source.split())}",
        highlight=False,
    )
    print_written([plan_path, outcome.zone_path, *outcome.figures])


@plan_app.command("devices")
def plan_devices(as_json: JsonOption = False) -> None:
    """List the ablation devices of the catalogue: name, modality, settings, provenance, source.

    The names and settings are what `seldinger plan ablation --device NAME --setting S`
    takes. Add devices with a JSON file in the catalogue schema (docs/ablation_devices.md)
    named in the SELDINGER_DEVICE_CATALOGUE environment variable.
    """
    from seldinger.physics.ablation import load_catalogue

    rows = [device.summary() for device in load_catalogue()]
    if as_json:
        print_json({"devices": rows})
        return
    out_console.print(devices_table(rows))
    for row in rows:
        out_console.print(f"{row['name']}: {' '.join(row['source'].split())}", highlight=False)
    out_console.print(
        "Vendor charts come from normal animal liver and over-predict clinical zones "
        "(Ruiter et al., Eur Radiol 2019;29:4026).",
        highlight=False,
    )


@plan_app.command("seeds")
def plan_seeds(
    plan_path: PlanArgument,
    rx_gy: RxOption = 120.0,
    margin_mm: PtvMarginOption = 5.0,
    template: TemplateOption = SeedTemplate.coplanar,
    seed_data: SeedDataOption = "6711",
    strength_mci: StrengthOption = None,
    target: TargetNameOption = None,
    figures: SeedFiguresOption = None,
    stl: StlOption = None,
    ct_path: PlanCtOption = None,
    resample: ResampleOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Plan a permanent I-125 seed implant for a lesion: needles, seeds and one seed strength.

    Needs a plan from `seldinger plan trajectory ... --lesion MASK`. The PTV is the lesion
    plus --margin-mm. Needles keep the plan's trajectory rules; seeds sit every 5 mm along
    them inside the PTV. TG-43 dose (2-D line source, complete decay) decides the loading
    (greedy start, then simulated annealing, for each strength tried): D90 >= the
    prescription and V100 >= 95 %, then V150 <= 60 %, then the fewest seeds and needles; a
    goal it cannot reach is named in the notes.

    Writes the plan's `seeds` section (--force replaces it).

    Exit status: 0 done; 4 when no loading can be made (nothing is written); 3 unusable
    input; 5 files (the CT moved: --ct; existing output: --force).

    Example: `seldinger plan seeds plan.json --rx-gy 120 --figures figures --stl plate.stl`.
    """
    from seldinger.planning.seeds import STRENGTHS_MCI
    from seldinger.workflow.seeds import SeedRequest, plan_seeds_step

    request = SeedRequest(
        plan_path=plan_path,
        prescription_gy=rx_gy,
        margin_mm=margin_mm,
        templates=(template.value,),
        seed_data=seed_data,
        strengths_mci=STRENGTHS_MCI if strength_mci is None else _numbers(strength_mci),
        target=target,
        figures_dir=figures,
        stl_path=stl,
        ct_path=ct_path,
        resample=resample,
        force=force,
        command=command_line(),
    )
    outcome = plan_seeds_step(request, stages(not as_json))
    if as_json:
        print_json({**outcome.summary(), "plan": str(plan_path)})
        return
    print_notes(outcome.notes)
    section = outcome.section
    needles, metrics = seed_tables(section)
    out_console.print(needles)
    out_console.print(
        f"{section.n_seeds} seeds of {section.seed_model}: {section.strength_u:.3f} U "
        f"({section.strength_mci:.3f} mCi) each, total {section.total_u:.2f} U "
        f"({section.strength_mci * section.n_seeds:.2f} mCi)",
        highlight=False,
    )
    out_console.print(metrics)
    print_written([plan_path, outcome.stl, *outcome.figures])


@plan_app.command("schema")
def plan_schema() -> None:
    """Print the plan's JSON Schema (schema v2): every section, field, unit and rule.

    Example: `seldinger plan schema > plan.schema.json`.
    """
    from seldinger.plan import Plan

    print_json(Plan.model_json_schema())


@plan_app.command("migrate")
def plan_migrate(
    old: Annotated[
        Path, typer.Argument(help="A plan of an earlier schema (v1).", show_default=False)
    ],
    new: Annotated[
        Path, typer.Argument(help="Where to write the upgraded plan (v2).", show_default=False)
    ],
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Upgrade a plan written by an earlier Seldinger (schema v1) to the current schema (v2).

    Every section is converted to its typed form and the result is validated; values a v1
    plan did not record stay empty. NEW may equal OLD with --force.

    Example: `seldinger plan migrate plan.json plan.json --force`.
    """
    from seldinger.plan import migrate_file

    plan = migrate_file(old, new, force=force)
    sections = [s for s in ("trajectories", "ablation", "seeds", "navigation") if getattr(plan, s)]
    if as_json:
        print_json({"plan": str(new), "schema_version": plan.schema_version, "sections": sections})
        return
    out_console.print(
        f"migrated {old} to schema v{plan.schema_version} ({', '.join(sections) or 'no sections'})",
        highlight=False,
    )
    print_written([new])


def _names(items: list[str] | None) -> list[str]:
    """Names given as repeated options and/or comma-separated."""
    return [name.strip() for item in items or () for name in item.split(",")]


def _numbers(text: str) -> tuple[float, ...]:
    """``0.4,0.5`` as positive numbers; a usage error otherwise."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(not (v > 0 and v < float("inf")) for v in values):
        raise typer.BadParameter(
            f"expected positive mCi values separated by commas (e.g. 0.4,0.5); got {text!r}.",
            param_hint="'--strength-mci'",
        )
    return values
