"""``seldinger simulate …``: ablation physics on the CT or a phantom — IRE electric field,
RF/MW bioheat with cell death, cryo isotherms (issue 19)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from seldinger.app.common import (
    ForceOption,
    JsonOption,
    out_console,
    parse_lps,
    print_json,
    print_notes,
    print_written,
    stages,
)

__all__ = ["simulate_app"]

simulate_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Ablation physics: the IRE electric field between electrodes, RF/MW heating with "
    "Arrhenius cell death and heat sinks, cryo iceballs.",
    no_args_is_help=True,
)


class SigmaModel(StrEnum):
    """Conductivity models of ``simulate ire``."""

    constant = "constant"
    electroporation = "electroporation"


PlanOption = Annotated[
    Path | None,
    typer.Argument(
        help="A plan (its CT, anatomy and targets); or use --phantom-mm.", show_default=False
    ),
]
PhantomOption = Annotated[
    float | None,
    typer.Option(
        "--phantom-mm",
        help="Side of a cube phantom of one tissue, centred at LPS 0,0,0.",
        show_default=False,
    ),
]
TissueOption = Annotated[
    str,
    typer.Option(
        "--tissue", help="The phantom's tissue (liver, tumour, lung, blood, fat, muscle, bone)."
    ),
]
TissueFileOption = Annotated[
    Path | None,
    typer.Option(
        "--tissue-file",
        help="JSON object of tissues overriding the shipped properties.",
        show_default=False,
    ),
]
SpacingOption = Annotated[
    float, typer.Option("--spacing-mm", help="Grid spacing of the simulation (mm).")
]
OutOption = Annotated[Path, typer.Option("--out", help="Output folder.", show_default=False)]
ProbesOption = Annotated[
    Path,
    typer.Option(
        "--probes",
        help="PROBES.json: probes (tip_lps_mm, direction, exposure_mm, radius_mm) and pairs.",
        show_default=False,
    ),
]


def _report(summary: dict[str, Any], written: list[Path], as_json: bool, lines: list[str]) -> None:
    if as_json:
        print_json({**summary, "written": [str(p) for p in written]})
        return
    print_notes(summary.get("notes", []))
    for line in lines:
        out_console.print(line, highlight=False)
    print_written(written)


@simulate_app.command("ire")
def ire(
    probes: ProbesOption,
    out: OutOption,
    plan: PlanOption = None,
    phantom_mm: PhantomOption = None,
    tissue: TissueOption = "liver",
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold-v-per-cm",
            help="Lethal field; default Garcia's model for --pulses.",
            show_default=False,
        ),
    ] = None,
    sigma_model: Annotated[
        SigmaModel, typer.Option("--sigma-model", help="σ constant, or rising with |E| (Sel 2005).")
    ] = SigmaModel.constant,
    pulses: Annotated[
        int, typer.Option("--pulses", min=1, help="Pulses per pair (threshold, Joule heating).")
    ] = 90,
    spacing_mm: SpacingOption = 1.0,
    tissue_file: TissueFileOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """The IRE field of every electrode pair, the max over pairs and the lethal zone.

    Writes `field_v_per_cm.nii.gz`, `zone.nii.gz` and `summary.json` (zone volume and extents,
    current per pair, properties used). Example:
    `seldinger simulate ire --phantom-mm 80 --tissue liver --probes probes.json --out ire/`.
    """
    from seldinger.workflow.physics_sim import IreRequest, simulate_ire_files

    request = IreRequest(
        probes_path=probes,
        out=out,
        plan_path=plan,
        phantom_mm=phantom_mm,
        tissue=tissue,
        threshold_v_per_cm=threshold,
        sigma_model=sigma_model.value,
        spacing_mm=spacing_mm,
        n_pulses=pulses,
        tissue_file=tissue_file,
        force=force,
    )
    summary, written = simulate_ire_files(request, stages(not as_json))
    currents = ", ".join(
        f"{p['anode']}-{p['cathode']}: {p['current_a']:.1f} A" for p in summary["pairs"]
    )
    _report(
        summary,
        written,
        as_json,
        [
            f"zone {summary['zone_volume_ml']} mL at ≥ {summary['threshold_v_per_cm']:.1f} V/cm, "
            f"extents {summary['zone_extents_mm']} mm; currents {currents}",
        ],
    )


ThermalTipOption = Annotated[
    str | None,
    typer.Option(
        "--tip-lps-mm",
        help="Applicator tip X,Y,Z (LPS mm), along --direction. Default: applicator 1 of "
        "PLAN's ablation (its tip and direction); in phantom mode the catalogue zone centred "
        "on the phantom.",
        show_default=False,
    ),
]


@simulate_app.command("thermal")
def thermal(
    out: OutOption,
    plan: PlanOption = None,
    phantom_mm: PhantomOption = None,
    tissue: TissueOption = "liver",
    device: Annotated[
        str | None,
        typer.Option("--device", help="Catalogue device (RF or MW).", show_default=False),
    ] = None,
    setting: Annotated[
        str | None, typer.Option("--setting", help="The device's setting.", show_default=False)
    ] = None,
    point_source_w: Annotated[
        float | None,
        typer.Option(
            "--point-source-w",
            help="A point heat source (W) at the tip / phantom centre.",
            show_default=False,
        ),
    ] = None,
    duration_s: Annotated[
        float | None,
        typer.Option(
            "--duration-s", help="Heating time (s); default the setting's.", show_default=False
        ),
    ] = None,
    tip: ThermalTipOption = None,
    direction: Annotated[
        str, typer.Option("--direction", help="Insertion direction X,Y,Z (towards the tip).")
    ] = "0,0,1",
    linear: Annotated[
        bool, typer.Option("--linear", help="Constant properties, no perfusion shut-down.")
    ] = False,
    spacing_mm: SpacingOption = 1.0,
    tissue_file: TissueFileOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Pennes bioheat with Arrhenius damage: a catalogue RF/MW device or a point source.

    Writes `temperature_c.nii.gz`, `damage_omega.nii.gz`, `zone.nii.gz` (Ω ≥ 1) and
    `summary.json`. Large vessels of a plan's anatomy are held at 37 °C (heat sinks).
    Example: `seldinger simulate thermal --phantom-mm 80 --tissue liver --point-source-w 10
    --duration-s 600 --linear --out t/`.
    """
    from seldinger.workflow.physics_sim import ThermalRequest, simulate_thermal_files

    request = ThermalRequest(
        out=out,
        duration_s=duration_s,
        plan_path=plan,
        phantom_mm=phantom_mm,
        tissue=tissue,
        device=device,
        setting=setting,
        point_source_w=point_source_w,
        tip_lps_mm=None if tip is None else parse_lps(tip, "--tip-lps-mm"),
        direction=parse_lps(direction, "--direction"),
        linear=linear,
        spacing_mm=spacing_mm,
        tissue_file=tissue_file,
        force=force,
    )
    summary, written = simulate_thermal_files(request, stages(not as_json))
    _report(
        summary,
        written,
        as_json,
        [
            f"lethal zone (Ω ≥ 1) {summary['zone_volume_ml']} mL, extents {summary['zone_extents_mm']} mm; "
            f"≥ 50 °C {summary['isotherm_50c_ml']} mL, ≥ 60 °C {summary['isotherm_60c_ml']} mL; "
            f"max {summary['max_temperature_c']} °C",
        ],
    )


@simulate_app.command("cryo")
def cryo(
    probes: ProbesOption,
    out: OutOption,
    plan: PlanOption = None,
    duration_s: Annotated[float, typer.Option("--duration-s", help="Freezing time (s).")] = 600.0,
    phantom_mm: PhantomOption = None,
    tissue: TissueOption = "liver",
    probe_c: Annotated[float, typer.Option("--probe-c", help="Probe temperature (°C).")] = -140.0,
    isotherm_c: Annotated[
        float, typer.Option("--isotherm-c", help="Isotherm written as zone.nii.gz (°C).")
    ] = -40.0,
    spacing_mm: SpacingOption = 1.0,
    tissue_file: TissueFileOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Freezing by the enthalpy method (latent heat) around cryoprobes held cold.

    Writes `temperature_c.nii.gz`, `coldest_c.nii.gz`, `zone.nii.gz` (the isotherm) and
    `summary.json` with the 0 / −20 / −40 °C volumes. The probes come from PROBES.json
    (`pairs` are ignored).
    """
    from seldinger.workflow.physics_sim import CryoRequest, simulate_cryo_files

    request = CryoRequest(
        probes_path=probes,
        out=out,
        duration_s=duration_s,
        plan_path=plan,
        phantom_mm=phantom_mm,
        tissue=tissue,
        probe_c=probe_c,
        isotherm_c=isotherm_c,
        spacing_mm=spacing_mm,
        tissue_file=tissue_file,
        force=force,
    )
    summary, written = simulate_cryo_files(request, stages(not as_json))
    iso = ", ".join(f"{k}: {v['zone_volume_ml']} mL" for k, v in summary["isotherms"].items())
    _report(summary, written, as_json, [f"iceball {iso}; zone {summary['zone_extents_mm']} mm"])
