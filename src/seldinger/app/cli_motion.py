"""``seldinger motion …``: breathing motion between CT phases, and the plan under it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seldinger.app.common import (
    ForceOption,
    JsonOption,
    PlanArgument,
    PlanCtOption,
    command_line,
    out_console,
    print_json,
    print_notes,
    print_written,
    stages,
)

__all__ = ["motion_app"]

motion_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Respiratory motion: deformable registration between breathing phases (elastix, "
    "lung-tuned B-spline), warping a CT with a field, and the plan under breathing (target "
    "motion, paths re-checked in every phase, P(hit)).",
    no_args_is_help=True,
)


class MethodName(StrEnum):
    """Registration methods (seldinger.motion.RegistrationMethod, without importing elastix)."""

    lung = "lung"
    affine = "affine"
    elastix_default = "elastix-default"


MethodOption = Annotated[
    MethodName,
    typer.Option(
        "--method",
        help="lung (affine then lung-tuned B-spline, default), affine (baseline) or "
        "elastix-default (elastix's default B-spline).",
    ),
]


def _phase(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise typer.BadParameter(
            f"--phase must be NAME=CT (e.g. inspiration=insp.nii.gz); got {text!r}."
        )
    return name.strip(), Path(path.strip())


def _window(text: str) -> tuple[float, float]:
    from seldinger.errors import BadInputError
    from seldinger.workflow.motion_guidance import parse_gate_window  # `navigate guide`'s

    try:
        window = parse_gate_window(text)
    except BadInputError as err:  # an option value: a usage error (status 2)
        raise typer.BadParameter(str(err)) from None
    return window.lower_fraction, window.upper_fraction


@motion_app.command("register")
def register(
    fixed: Annotated[
        Path, typer.Argument(help="FIXED phase CT (file or DICOM folder).", show_default=False)
    ],
    moving: Annotated[Path, typer.Argument(help="MOVING phase CT.", show_default=False)],
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for the field and its Jacobian.", show_default=False),
    ],
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            help="Lungs on FIXED's grid: only they drive the registration.",
            show_default=False,
        ),
    ] = None,
    method: MethodOption = MethodName.lung,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Register FIXED to MOVING; write `displacement_lps_mm.nii.gz` and `jacobian.nii.gz`.

    The field holds, at each FIXED voxel centre, the vector (LPS mm) to where that point lies
    in MOVING. A folding field (Jacobian ≤ 0 in the lungs) is refused.

    Example: `seldinger motion register exp.nii.gz insp.nii.gz --mask lungs.nii.gz --out reg/`.
    """
    from seldinger.workflow.motion import register_files

    result, written = register_files(
        fixed, moving, out, mask, method=method.value, force=force, stages=stages(not as_json)
    )
    if as_json:
        print_json({**result.summary(), "written": [str(p) for p in written]})
        return
    summary = result.summary()
    out_console.print(
        f"{summary['method']}: mean {summary['mean_displacement_mm']} mm, max "
        f"{summary['max_displacement_mm']} mm, min Jacobian {summary['min_jacobian']}, "
        f"{summary['seconds']} s",
        highlight=False,
    )
    print_written(written)


@motion_app.command("warp")
def warp(
    ct: Annotated[Path, typer.Argument(help="CT to warp (the MOVING phase).", show_default=False)],
    field: Annotated[
        Path,
        typer.Argument(
            help="displacement_lps_mm.nii.gz from `motion register`.", show_default=False
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Warped CT (on the field's grid).", show_default=False)
    ],
    force: ForceOption = False,
) -> None:
    """Apply a displacement field to a CT: output(x) = CT(x + u(x)) on the field's grid.

    With the field of `motion register FIXED MOVING`, warping MOVING brings it onto FIXED.
    """
    from seldinger.workflow.motion import warp_file

    warp_file(ct, field, out, force=force)
    print_written([out])


PhaseOption = Annotated[
    list[str] | None,
    typer.Option(
        "--phase",
        help="Another phase as NAME=CT (repeat); the plan's CT is the reference phase.",
        show_default=False,
    ),
]
StudyOption = Annotated[
    Path | None,
    typer.Option(
        "--study",
        help="A DICOM folder whose CT series are the phases (named from their descriptions).",
        show_default=False,
    ),
]
ReferenceOption = Annotated[str, typer.Option("--reference", help="Name of the plan CT's phase.")]
PlanOutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Write the plan here (default: in place).", show_default=False),
]
GateWindowOption = Annotated[
    str,
    typer.Option(
        "--gate-window",
        help="Gating window LOW,HIGH as fractions of the amplitude (end-expiration: 0,0.25).",
    ),
]
TreOption = Annotated[
    float | None,
    typer.Option(
        "--tre-mm",
        help="Registration TRE (mm); default: the plan's predicted TRE, else 3 mm.",
        show_default=False,
    ),
]
DeflectionOption = Annotated[
    float,
    typer.Option(
        "--deflection-mm-per-100mm", min=0.0, help="Needle deflection, RMS mm per 100 mm of depth."
    ),
]
SamplesOption = Annotated[
    int, typer.Option("--samples", min=100, help="Monte Carlo samples of P(hit).")
]
ModelOutOption = Annotated[
    Path | None,
    typer.Option(
        "--write-model",
        help="Fit the chest-marker → target model from the skin markers every phase shows and "
        "write it here (for `navigate guide --motion`).",
        show_default=False,
    ),
]
RankOption = Annotated[
    bool,
    typer.Option(
        "--rank-by-p-hit", help="Re-rank paths: safe in every phase first, then by P(hit)."
    ),
]


@motion_app.command("plan")
def plan(
    plan_path: PlanArgument,
    phase: PhaseOption = None,
    study: StudyOption = None,
    reference: ReferenceOption = "reference",
    out: PlanOutOption = None,
    ct: PlanCtOption = None,
    gate_window: GateWindowOption = "0,0.25",
    tre_mm: TreOption = None,
    deflection: DeflectionOption = 1.5,
    samples: SamplesOption = 20_000,
    rank_by_p_hit: RankOption = False,
    write_model: ModelOutOption = None,
    method: MethodOption = MethodName.lung,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Follow the plan through the breathing phases; add a `motion` section to the plan.

    Registers the plan's CT to each phase, then reports each target's displacement and
    amplitude (TG-76: > 5 mm → motion management), each path's lateral deviation and
    whether it stays safe in every phase, and P(hit) (TRE ⊕ residual motion at the gate ⊕
    needle deflection, seeded Monte Carlo).

    Example: `seldinger motion plan plan.json --reference expiration --phase inspiration=insp/`.
    """
    from seldinger.workflow.motion import MotionPlanRequest, plan_motion

    request = MotionPlanRequest(
        plan_path=plan_path,
        phases=[_phase(p) for p in phase or []],
        study=study,
        reference_name=reference,
        out=out,
        ct_path=ct,
        gate_window=_window(gate_window),
        tre_mm=tre_mm,
        deflection_mm_per_100mm=deflection,
        n_samples=samples,
        rank_by_p_hit=rank_by_p_hit,
        method=method.value,
        model_out=write_model,
        force=force,
        command=command_line(),
    )
    outcome = plan_motion(request, stages(not as_json))
    if as_json:
        print_json(
            {
                **outcome.section.model_dump(mode="json"),
                "written": [str(p) for p in outcome.written],
            }
        )
        return
    print_notes(outcome.notes)
    out_console.print(_motion_table(outcome.section))
    for line in _target_lines(outcome.section):
        out_console.print(line, highlight=False)
    print_written(outcome.written)


def _motion_table(section: object) -> Table:
    from seldinger.plan import MotionSection

    assert isinstance(section, MotionSection)
    table = Table(title=f"Paths under breathing (reference phase {section.reference_phase})")
    for column in (
        "rank",
        "lateral dev. mm",
        "tip motion mm",
        "safe in all phases",
        "P(hit)",
        "error RMS mm",
    ):
        table.add_column(column, justify="right")
    for t in section.trajectories:
        unsafe = (
            "yes"
            if t.safe_in_all_phases
            else "no: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in t.unsafe_phases.items())
        )
        p = "—" if t.p_hit is None else f"{100 * t.p_hit:.1f} %"
        table.add_row(
            str(t.rank),
            f"{t.max_lateral_deviation_mm:.1f}",
            f"{t.tip_motion_mm:.1f}",
            unsafe,
            p,
            f"{t.placement_rms_mm:.2f}",
        )
    return table


def _target_lines(section: object) -> list[str]:
    from seldinger.plan import MotionSection

    assert isinstance(section, MotionSection)
    lines = []
    for target in section.targets:
        advice = (
            "motion management recommended (TG-76)"
            if target.motion_management_recommended
            else "below TG-76's 5 mm"
        )
        lines.append(
            f"target {target.target}: amplitude {target.amplitude_mm:.1f} mm (SI "
            f"{target.peak_to_peak_si_mm:.1f}, AP {target.peak_to_peak_ap_mm:.1f}, LR "
            f"{target.peak_to_peak_lr_mm:.1f}); {advice}"
        )
    return lines
