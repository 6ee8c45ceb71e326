"""``seldinger report``: the HTML (and PDF) report of any saved plan.

The report holds the sections the plan holds — case, target and anatomy, needle paths,
ablation, seed implant, navigation — each with figures drawn now from the plan, its CT and
its masks, so a plan made by the command-line steps alone reports as fully as the demo's.
The case header is de-identified unless asked. The PDF is printed by headless Chromium.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seldinger.errors import OutputExistsError, SeldingerIOError
from seldinger.export import (
    FIGURE_MASKS,
    Report,
    render_needle_views,
    render_paths_axial,
)
from seldinger.export.ablation_figures import write_ablation_figures
from seldinger.export.anatomy3d import render_airways_3d
from seldinger.export.anatomy_views import render_anatomy_views
from seldinger.export.report import replaceable_report_folder
from seldinger.export.report_robot import robot_section
from seldinger.export.report_sections import (
    ablation_section,
    case_section,
    motion_section,
    navigation_record_section,
    seed_section,
    target_section,
    trajectory_section,
)
from seldinger.export.seed_figures import write_seed_figures
from seldinger.export.views import picture_window
from seldinger.files import atomic_dir
from seldinger.imaging import Volume
from seldinger.physics.ablation import Ellipsoid, zone_mask
from seldinger.physics.tg43 import load_seed_data
from seldinger.planning import assess_margin
from seldinger.workflow.case import PlanCase, load_plan_case, read_mask

__all__ = ["PDF_TIMEOUT_S", "ReportFiles", "ReportRequest", "build_report", "build_report_files"]

#: Longest a PDF print may take, seconds.
PDF_TIMEOUT_S = 180.0
#: Chromium's names on Debian and elsewhere.
_CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Adds a section to the report (the demo adds its simulated navigation).
SectionHook = Callable[[Report], None]


@dataclass(frozen=True)
class ReportRequest:
    """What ``seldinger report`` was asked (see its ``--help``)."""

    plan_path: Path
    out: Path
    pdf: bool = False
    identified: bool = False
    ct_path: Path | None = None
    force: bool = False
    title: str = "Seldinger plan report"
    subtitle: str | None = None
    extra_sections: Sequence[SectionHook] = ()
    target_extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ReportFiles:
    """The report written: its page, the PDF (or None) and notes."""

    html: Path
    pdf: Path | None
    notes: list[str]


def build_report(request: ReportRequest, case: PlanCase | None = None) -> tuple[Report, list[str]]:
    """The report of a plan (figures drawn now) and notes on what could not be drawn."""
    case = case or load_plan_case(request.plan_path, request.ct_path)
    plan, ct = case.plan, case.volume
    notes: list[str] = []
    subtitle = request.subtitle or f"{len(plan.targets)} target(s); plan {request.plan_path.name}"
    report = Report(request.title, subtitle=subtitle)
    case_section(report, plan, case.ct.summary(), request.identified)
    with tempfile.TemporaryDirectory(prefix="seldinger-report-") as scratch:
        folder = Path(scratch)
        anatomy = case.anatomy() if "body" in plan.structures else None
        target = plan.targets[0] if plan.targets else None
        lesion = case.target_mask(target) if target is not None and target.mask_path else None
        figures = _anatomy_figures(ct, anatomy, lesion, target, folder)
        if target is not None:
            target_section(report, target, figures, request.target_extra)
        if plan.trajectories is not None:
            figures = _trajectory_figures(ct, plan.trajectories, anatomy, lesion, folder)
            figures.update(_step_figures(case, "trajectory", ("skin_risk_map.png",)))
            trajectory_section(report, plan.trajectories, figures)
        if plan.ablation is not None:
            figures = _ablation_figures(case, anatomy, folder, notes)
            ablation_section(report, plan.ablation, figures)
        if plan.seeds is not None:
            figures = _seed_figures(case, folder, notes)
            seed_section(report, plan.seeds, figures)
        if plan.navigation is not None:
            navigation_record_section(report, plan.navigation)
        if plan.motion is not None:
            motion_section(report, plan.motion)
        if plan.robot is not None:
            robot_section(report, plan.robot)
        for hook in request.extra_sections:
            hook(report)
    return report, notes


def build_report_files(request: ReportRequest, case: PlanCase | None = None) -> ReportFiles:
    """Write the report folder (``index.html``, PNGs, ``report.pdf`` with ``pdf``) atomically.

    Raises
    ------
    OutputExistsError
        The folder exists and ``force`` is not set, or it is not a report folder.
    SeldingerIOError
        The PDF cannot be printed (no Chromium; the message names the package).
    """
    out = request.out
    if out.exists() and request.force and not replaceable_report_folder(out):
        raise OutputExistsError(
            f"{out} exists and is not a Seldinger report folder; replacing it would delete its "
            "contents. Choose a new folder or remove it yourself."
        )
    browser = _chromium() if request.pdf else None
    report, notes = build_report(request, case)
    with atomic_dir(out, force=request.force) as tmp:
        page = report.write_into(tmp)
        if browser is not None:
            _print_pdf(browser, page, tmp / "report.pdf")
    return ReportFiles(out / "index.html", out / "report.pdf" if request.pdf else None, notes)


def _chromium() -> str:
    for name in _CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    raise SeldingerIOError(
        "the PDF is printed by headless Chromium, which is not installed; install it "
        "(Debian: `apt-get install chromium`) or leave out --pdf (the HTML report needs nothing)."
    )


def _print_pdf(browser: str, page: Path, pdf: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="seldinger-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise SeldingerIOError(
                f"Chromium did not print the PDF within {PDF_TIMEOUT_S:g} s."
            ) from err
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = " ".join((done.stderr or "").split())[-300:]
        raise SeldingerIOError(f"Chromium could not print the PDF (exit {done.returncode}): {tail}")


def _step_figures(case: PlanCase, step: str, names: Sequence[str]) -> dict[str, Path]:
    """Figures a step drew that need more than the plan holds (the skin risk map needs every
    skin candidate of the search): used when still in the folder the step recorded."""
    record = case.plan.provenance.last(step)
    folder = None if record is None else record.parameters.get("figures")
    if not isinstance(folder, str):
        return {}
    base = Path(folder) if Path(folder).is_absolute() else case.plan_path.parent / folder
    return {name: base / name for name in names if (base / name).is_file()}


def _masks(anatomy: Any, names: Sequence[str]) -> dict[str, Volume]:
    return {} if anatomy is None else {n: anatomy[n] for n in names if n in anatomy}


def _anatomy_figures(
    ct: Volume, anatomy: Any, lesion: Volume | None, target: Any, folder: Path
) -> dict[str, Path]:
    if anatomy is None and lesion is None:
        return {}
    centre = (
        np.asarray(target.centroid_lps_mm)
        if target is not None
        else ct.index_to_lps(np.array(ct.shape) / 2)
    )
    points = (
        {}
        if target is None or target.seed_lps_mm is None
        else {"seed": np.asarray(target.seed_lps_mm)}
    )
    # The target's own window first (soft tissue for a liver target, lung for a nodule).
    figures = render_anatomy_views(ct, anatomy, lesion, centre, folder, points=points)
    if anatomy is not None and "airways" in anatomy and anatomy.airway_graph is not None:
        png = folder / "airways_3d.png"
        png.write_bytes(
            render_airways_3d(
                anatomy["airways"],
                anatomy.airway_graph,
                {} if lesion is None else {"lesion": (lesion, "red")},
                title="Airway tree and lesion",
            )
        )
        figures[png.name] = png
    return figures


def _trajectory_figures(
    ct: Volume, section: Any, anatomy: Any, lesion: Volume | None, folder: Path
) -> dict[str, Path]:
    if not section.paths:
        return {}
    masks = {**_masks(anatomy, FIGURE_MASKS), **({} if lesion is None else {"lesion": lesion})}
    entries = np.array([p.entry_lps_mm for p in section.paths])
    targets = np.array([p.target_lps_mm for p in section.paths])
    window = picture_window(ct, lesion, targets[0])  # lung for a lung target
    axial = render_paths_axial(
        ct, entries, targets, folder / "paths_axial.png", masks=masks, window=window
    )
    best = section.paths[0]
    needle = render_needle_views(
        ct,
        best.entry_lps_mm,
        best.target_lps_mm,
        folder / "needle_1.png",
        masks=masks,
        safety_radius_mm=section.rules.vessel_distance_mm,
        window=window,
    )
    return {axial.name: axial, needle.name: needle}


def _ablation_figures(
    case: PlanCase, anatomy: Any, folder: Path, notes: list[str]
) -> dict[str, Path]:
    section = case.plan.ablation
    assert section is not None  # the caller checked
    lesion = case.target_mask(case.plan.target(section.target))
    zone_file = (
        None if section.zone_mask_path is None else case.plan_path.parent / section.zone_mask_path
    )
    if zone_file is not None and zone_file.is_file():
        zone = read_mask(zone_file, case.volume, "the ablation zone", "Plan the ablation again.")
    else:
        notes.append(
            "the ablation zone mask is missing beside the plan; the zone was rebuilt "
            "from the applicators' ellipsoids."
        )
        zones = [_ellipsoid(a) for a in section.applicators]
        zone = zone_mask(lesion, zones)
    margin = assess_margin(lesion, zone)
    masks = _masks(anatomy, ("vessels",))
    drawn = write_ablation_figures(
        case.volume, section, zone, margin, lesion, folder / "ablation", masks
    )
    return {p.name: p for p in drawn}


def _ellipsoid(applicator: Any) -> Ellipsoid:
    """The zone of a stored applicator (its axes, or any frame around its direction)."""
    if applicator.zone_axes_lps is not None:
        axes = np.asarray(applicator.zone_axes_lps, dtype=np.float64)
    else:  # a migrated v1 plan: across the probe the zone is round, so any frame will do
        along = np.asarray(applicator.direction_lps, dtype=np.float64)
        helper = np.eye(3)[int(np.argmin(np.abs(along)))]
        across = np.cross(along, helper)
        across /= np.linalg.norm(across)
        axes = np.stack([along, across, np.cross(along, across)])
    return Ellipsoid(
        np.asarray(applicator.zone_centre_lps_mm), axes, np.asarray(applicator.zone_radii_mm)
    )


def _seed_figures(case: PlanCase, folder: Path, notes: list[str]) -> dict[str, Path]:
    section = case.plan.seeds
    assert section is not None  # the caller checked
    try:
        data = load_seed_data(section.seed_data)
    except (OSError, ValueError) as err:
        notes.append(
            f"the seed data {section.seed_data!r} cannot be read ({err}); the dose "
            "figures are left out."
        )
        return {}
    lesion = case.target_mask(case.plan.target(section.target))
    drawn = write_seed_figures(case.volume, section, lesion, data, folder / "seeds")
    return {p.name: p for p in drawn}
