"""Rich tables that ``info`` and ``segment`` print (layout only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

__all__ = ["info_table", "series_table", "structures_table"]


def series_table(folder: Path, rows: list[dict[str, Any]]) -> Table:
    """The series of a DICOM folder."""
    table = Table(title=f"Series in {folder}")
    columns = ("series_uid", "modality", "images", "axial", "description")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    return table


def info_table(title: str, summary: Mapping[str, Any]) -> Table:
    """A CT's geometry and intensity summary, one row per field (the affine as a matrix)."""
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if key == "notes" or value is None:
            continue
        if key == "affine":
            value = "\n".join("  ".join(f"{x:10.4f}" for x in row) for row in value)
        table.add_row(key, str(value))
    return table


def structures_table(title: str, structures: Mapping[str, Mapping[str, Any]]) -> Table:
    """Structures with their volume (mL) and time (s)."""
    table = Table(title=title)
    for column in ("structure", "volume (mL)", "time (s)"):
        table.add_column(column)
    for name, info in structures.items():
        table.add_row(name, f"{info['volume_ml']:.1f}", f"{info['seconds']:.2f}")
    return table
