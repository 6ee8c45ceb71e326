"""Points and seeds from CSV files with a header row (``x_mm,y_mm,z_mm`` …).

Errors name the file, the line and the column, and what was expected.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError, MissingFileError

__all__ = [
    "POINT_COLUMNS",
    "SEED_COLUMNS",
    "PointsFileError",
    "read_columns_csv",
    "read_points_csv",
    "read_seeds_csv",
]

#: Columns of a points file (LPS mm for CT points, tracker mm for tracker points).
POINT_COLUMNS = ("x_mm", "y_mm", "z_mm")
#: Columns of a seeds file: centre (LPS mm) and the long axis (any length).
SEED_COLUMNS = ("x_mm", "y_mm", "z_mm", "ax", "ay", "az")


class PointsFileError(BadInputError):
    """A points CSV that cannot be read as numbers: the file, line and column are named."""


def read_columns_csv(
    path: str | os.PathLike[str], columns: tuple[str, ...], what: str | None = None
) -> npt.NDArray[np.float64]:
    """The named columns of a CSV as finite floats, shape (rows, len(columns)).

    Other columns are ignored; blank lines are skipped; a UTF-8 byte-order mark is allowed.

    Parameters
    ----------
    path : str or PathLike
        The file.
    columns : tuple of str
        Header names to read, in this order.
    what : str, optional
        How messages name the file (e.g. ``"--fixed ct.csv"``); default its path.

    Raises
    ------
    SeldingerIOError
        If the file does not exist.
    PointsFileError
        For a missing column, a value that is not a finite number, or no data row.
    """
    file = Path(path)
    label = what or str(file)
    if not file.is_file():
        raise MissingFileError(f"{label} does not exist.")
    rows, _ = _read_rows(file, columns, label)
    return rows


def _read_rows(
    file: Path, columns: tuple[str, ...], label: str
) -> tuple[npt.NDArray[np.float64], list[int]]:
    """The rows as floats and the file line each came from."""
    rows: list[list[float]] = []
    lines: list[int] = []
    header: list[str] | None = None
    where: dict[str, int] = {}
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                missing = [c for c in columns if c not in header]
                if missing:
                    raise PointsFileError(
                        f"{label}, line {line}: missing column(s) {', '.join(missing)}; the "
                        f"header must name {','.join(columns)}; got {','.join(header)!r}."
                    )
                where = {c: header.index(c) for c in columns}
                continue
            values = []
            for column in columns:
                text = row[where[column]].strip() if where[column] < len(row) else ""
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise PointsFileError(
                        f"{label}, line {line}, column {column}: expected a finite number; got "
                        f"{text!r}."
                    )
                values.append(value)
            rows.append(values)
            lines.append(line)
    if header is None:
        raise PointsFileError(
            f"{label} is empty; it needs a header {','.join(columns)} and one row per point."
        )
    if not rows:
        raise PointsFileError(f"{label}: no data rows under the header {','.join(columns)}.")
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(columns)), lines


def read_points_csv(
    path: str | os.PathLike[str], what: str | None = None
) -> npt.NDArray[np.float64]:
    """Points (N, 3) in mm from a CSV whose header names ``x_mm,y_mm,z_mm``."""
    return read_columns_csv(path, POINT_COLUMNS, what)


def read_seeds_csv(
    path: str | os.PathLike[str], what: str | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Seed centres (N, 3; LPS mm) and unit axes (N, 3) from ``x_mm,y_mm,z_mm,ax,ay,az``.

    Raises
    ------
    PointsFileError
        Also for a zero axis (the line is named).
    """
    file = Path(path)
    if not file.is_file():
        raise MissingFileError(f"{what or file} does not exist.")
    rows, lines = _read_rows(file, SEED_COLUMNS, what or str(file))
    norms = np.linalg.norm(rows[:, 3:], axis=1)
    zero = np.flatnonzero(norms < 1e-9)
    if zero.size:
        raise PointsFileError(
            f"{what or path}, line {lines[int(zero[0])]}, columns ax,ay,az: the seed axis is "
            "zero; give the direction of the seed's long axis (e.g. the needle direction)."
        )
    return rows[:, :3], rows[:, 3:] / norms[:, None]
