"""Rich tables and text lines that the ``plan`` commands print (no logic beyond layout)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:  # the CLI starts without the figure and planning stacks (imported on use)
    from seldinger.plan import AblationSection, SeedSection
    from seldinger.planning import MarginReport

__all__ = [
    "applicators_table",
    "blocked_table",
    "devices_table",
    "heat_sink_lines",
    "lps",
    "margin_lines",
    "paths_table",
    "seed_tables",
]


def lps(point: Any) -> str:
    """A point as ``x, y, z`` with one decimal."""
    return ", ".join(f"{v:.1f}" for v in point)


def _mm(value: float | None) -> str:
    """A distance; None is "far" (beyond the planner's 100 mm cap)."""
    return "> 100" if value is None else f"{value:.1f}"


def paths_table(summary: Mapping[str, Any]) -> Table:
    """The ranked paths of ``plan trajectory``'s summary."""
    target = lps(summary["target_lps_mm"])
    table = Table(
        title=f"Best {len(summary['trajectories'])} of {summary['n_safe']} safe paths "
        f"({summary['n_candidates']} skin candidates) to ({target}) LPS mm",
        # Ten columns fit 80 characters only with the padding between columns shared.
        collapse_padding=True,
    )
    # A liver target's paths say how much normal liver they cross before the lesion.
    liver = any(p.get("liver_parenchyma_mm") is not None for p in summary["trajectories"])
    columns = (
        "rank",
        "length\nmm",
        "lung\nmm",
        "pleural/\nfissure\ncrossings",
        "vessel\nmm",
        "rib\nmm",
        *(("liver\nmm",) if liver else ()),
        "axial\nangle °",
        "risk",
        "pareto",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "pareto" else "right")
    for path in summary["trajectories"]:
        distance = path["min_distance_mm"]
        table.add_row(
            str(path["rank"]),
            f"{path['length_mm']:.1f}",
            f"{path['lung_length_mm']:.1f}",
            f"{path['pleural_crossings']}/{_count(path.get('fissure_crossings'))}",
            _mm(distance["vessels"]) if "vessels" in distance else "—",
            _mm(path.get("rib_margin_mm")),
            *((_mm(path.get("liver_parenchyma_mm")),) if liver else ()),
            f"{path['axial_angle_deg']:.1f}",
            f"{path['risk_score']:.3f}",
            "yes" if path["pareto"] else "",
        )
    return table


def drawn_table(drawn: Mapping[str, Any]) -> Table:
    """One drawn path's metrics, the rules it breaks and how it compares (``--entry-lps-mm``)."""
    path = drawn["path"]
    safe = "safe" if path["safe"] else "UNSAFE"
    table = Table(title=f"Drawn path ({safe}) from ({lps(path['entry_lps_mm'])}) LPS mm")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("length mm", f"{path['length_mm']:.1f}"),
        ("to the lesion's far side mm", f"{path['depth_to_far_side_mm']:.1f}"),
        ("aerated lung mm", f"{path['lung_length_mm']:.1f}"),
        ("pleural crossings", str(path["pleural_crossings"])),
        ("fissure crossings", _count(path.get("fissure_crossings"))),
        ("rib margin mm", _mm(path.get("rib_margin_mm"))),
        *(
            (("normal liver before the lesion mm", _mm(path["liver_parenchyma_mm"])),)
            if path.get("liver_parenchyma_mm") is not None
            else ()
        ),
        ("axial angle °", f"{path['axial_angle_deg']:.1f}"),
        ("angle to pleura °", _number(path["pleura_angle_deg"])),
        ("risk score", f"{path['risk_score']:.3f}"),
    ]
    rows += [(f"closest {name} mm", _mm(v)) for name, v in path["min_distance_mm"].items()]
    if drawn["rank_among_safe"] is not None:
        rows.append(("would rank among the safe paths", str(drawn["rank_among_safe"])))
    rows.append(("best planned path's risk", f"{drawn['best_risk_score']:.3f}"))
    rows += [("BREAKS", rule) for rule in drawn["broken_rules"]]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def blocked_table(blocked_by: Mapping[str, int], n_candidates: int) -> Table:
    """Refused skin candidates per reason."""
    table = Table(title="Refused skin candidates")
    table.add_column("reason")
    table.add_column(f"candidates (of {n_candidates})", justify="right")
    for reason, count in sorted(blocked_by.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, str(count))
    return table


def applicators_table(section: AblationSection) -> Table:
    """The applicators of an ablation section."""
    rows = section.applicators
    clusters = any(len(row.probes_tip_lps_mm) > 1 for row in rows)
    table = Table(
        title=f"{section.device} ({section.modality}): {len(rows)} applicator(s) for "
        f"{section.target} + {section.margin_mm:g} mm"
    )
    for column in ("#", "setting", "tip\nLPS mm", "entry\nLPS mm", "depth\nmm", "zone\nmm"):
        table.add_column(column, justify="right" if column in ("#", "depth\nmm") else "left")
    if clusters:
        table.add_column("probes", justify="right")
    table.add_column("coverage\nalone %", justify="right")
    # A liver target's applicators say how much normal liver their tract crosses (rule: 10).
    liver = any(row.path.liver_parenchyma_mm is not None for row in rows)
    if liver:
        table.add_column("liver\nmm", justify="right")
    for n, row in enumerate(rows, 1):
        cells = [
            str(n),
            row.setting,
            lps(row.tip_lps_mm),
            lps(row.entry_lps_mm),
            f"{row.insertion_depth_mm:.1f}",
            "×".join(f"{2 * r:.0f}" for r in row.zone_radii_mm),
            f"{row.coverage_percent_alone:.1f}",
        ]
        if clusters:
            cells.insert(6, str(len(row.probes_tip_lps_mm)))
        if liver:
            cells.append(_mm(row.path.liver_parenchyma_mm))
        table.add_row(*cells)
    return table


def heat_sink_lines(section: AblationSection) -> list[str]:
    """Heat-sink flags of an ablation section, one line each."""
    from seldinger.planning.ablation import HEAT_SINK_CALIBRE_MM, HEAT_SINK_DISTANCE_MM

    if section.modality == "ire":
        return ["heat sinks: not applicable (IRE is non-thermal)"]
    if not section.heat_sinks:
        return [
            f"heat sinks: none (no vessel >= {HEAT_SINK_CALIBRE_MM:g} mm wide within "
            f"{HEAT_SINK_DISTANCE_MM:g} mm of the zone, among the vessel masks checked: the "
            "anatomy's pulmonary vessels and any given with --vessel; the liver's vessels "
            "only when given)"
        ]
    return [
        f"heat sink: {sink.vessel} {sink.diameter_mm:.1f} mm wide "
        + (
            "running through the zone"
            if sink.distance_mm <= 0
            else f"{sink.distance_mm:.1f} mm from the zone"
        )
        + f" at LPS ({lps(sink.closest_lps_mm)}) mm: blood flow shrinks the zone there"
        for sink in section.heat_sinks
    ]


def margin_lines(report: MarginReport) -> list[str]:
    """The margin in a few lines of text (mm and percentages)."""
    lo_mm, hi_mm = report.thresholds_mm
    lines = [
        f"min_margin_mm: {report.min_margin_mm:.2f}"
        + ("  (tumour outside the zone)" if report.min_margin_mm < lo_mm else ""),
        f"coverage_percent: {report.coverage_percent:.2f}  (of the tumour volume)",
        f"surface_below_{lo_mm:g}_percent: {report.surface_below_0_percent:.2f}  (non-ablated)",
        f"surface_{lo_mm:g}_to_{hi_mm:g}_percent: {report.surface_0_to_5_percent:.2f}"
        "  (insufficient)",
        f"surface_at_least_{hi_mm:g}_percent: {report.surface_at_least_5_percent:.2f}  (complete)",
        f"mean / median margin: {report.mean_margin_mm:.2f} / {report.median_margin_mm:.2f} mm",
    ]
    if report.surface_excluded_percent:
        lines.append(f"surface excluded: {report.surface_excluded_percent:.2f} %")
    return lines


def margin_shortfall(report: MarginReport, asked_mm: float) -> str | None:
    """A sentence when the planned zone leaves less margin than asked somewhere, else None.

    The placement covers a share of lesion + margin by volume: the zone can still run
    closer than the margin to the tumour over much of its surface.
    """
    if report.min_margin_mm >= asked_mm:
        return None
    hi_mm = report.thresholds_mm[1]
    return (
        f"the minimal margin is {report.min_margin_mm:.1f} mm, under the {asked_mm:g} mm asked: "
        f"{report.surface_0_to_5_percent + report.surface_below_0_percent:.1f} % of the tumour "
        f"surface has less than {hi_mm:g} mm (the placement covers lesion + margin by volume). "
        "Check the margin map; a larger setting or another applicator widens it."
    )


def devices_table(rows: list[dict[str, Any]]) -> Table:
    """The ablation devices of the catalogue."""
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
    return table


def seed_tables(section: SeedSection) -> tuple[Table, Table]:
    """The needles (entry, seeds, depths) and the dose metrics of a seed section."""
    needles = Table(
        title=f"{section.n_needles} needle(s), {section.n_seeds} seeds ({section.template}; Rx "
        f"{section.goals.prescription_gy:g} Gy, PTV = lesion + {section.margin_mm:g} mm)"
    )
    needles.add_column("#", justify="right")
    needles.add_column("entry\nLPS mm")
    needles.add_column("seeds", justify="right")
    needles.add_column("depths\nmm")
    for n, needle in enumerate(section.needles, 1):
        needles.add_row(
            str(n),
            lps(needle.entry_lps_mm),
            str(needle.n_seeds),
            ", ".join(f"{d:.0f}" for d in needle.depths_mm),
        )
    metrics = Table(title="PTV dose metrics")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    from seldinger.export.report_sections import seed_metric_rows

    for name, value in seed_metric_rows(section).items():
        metrics.add_row(name, f"{value:.2f}")
    return needles, metrics
