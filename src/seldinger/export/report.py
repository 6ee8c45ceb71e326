"""A self-contained HTML report: one folder holding ``index.html`` and its PNG images.

The :class:`Report` builder is generic: planning steps add sections, images
(e.g. from :func:`seldinger.export.views.render_views`) and tables, and
:meth:`Report.write` produces the folder atomically. All text is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import seldinger
from seldinger.errors import BadInputError, OutputExistsError
from seldinger.files import atomic_dir

__all__ = ["DISCLAIMER", "Report", "replaceable_report_folder"]

logger = logging.getLogger(__name__)

#: Shown in every report's footer.
DISCLAIMER = "research software, not a certified medical device"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GENERATOR = "Seldinger report"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1600px; padding: 0 1em; color: #1c1c1e; }
h1 { margin-bottom: 0.1em; }
.subtitle { color: #555; margin-top: 0; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ccc; }
figcaption, caption { color: #444; font-size: 0.92em; margin: 0.4em 0; text-align: left; }
table { border-collapse: collapse; margin: 1.5em 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
th { background: #f2f2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 3em; padding-top: 0.8em; border-top: 1px solid #ccc; color: #666;
         font-size: 0.9em; }
""".strip()


@dataclass
class _Text:
    text: str


@dataclass
class _Heading:
    title: str


@dataclass
class _Image:
    data: bytes
    caption: str


@dataclass
class _Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str


_Block = _Text | _Heading | _Image | _Table


class Report:
    """Builder for an HTML report folder.

    Parameters
    ----------
    title : str
        Heading and HTML title.
    subtitle : str, optional
        Line under the heading (e.g. the case and date).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> report = Report("Plan for case 1")
    >>> _ = report.add_section("Target", "Nodule in the left upper lobe.")
    >>> _ = report.add_table({"volume_ml": 7.76, "centroid_lps_mm": "(56.4, 86.3, -116.0)"},
    ...                      caption="Target summary")
    >>> out = report.write(pathlib.Path(tempfile.mkdtemp()) / "report")
    >>> out.name
    'index.html'
    """

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = _require_text(title, "title")
        self.subtitle = None if subtitle is None else _require_text(subtitle, "subtitle")
        self._blocks: list[_Block] = []

    def add_section(self, title: str, text: str | None = None) -> Report:
        """Start a section; later images and tables belong to it.

        Parameters
        ----------
        title : str
            Section heading.
        text : str, optional
            Body text; blank lines separate paragraphs.

        Returns
        -------
        Report
            ``self``, for chaining.
        """
        self._blocks.append(_Heading(_require_text(title, "title")))
        if text:
            self._blocks.append(_Text(_require_text(text, "text")))
        return self

    def add_text(self, text: str) -> Report:
        """Add paragraphs of text (blank lines separate paragraphs); returns ``self``."""
        self._blocks.append(_Text(_require_text(text, "text")))
        return self

    def add_image(self, image: bytes | str | os.PathLike[str], caption: str) -> Report:
        """Add a PNG image with a caption.

        Parameters
        ----------
        image : bytes or str or PathLike
            PNG file contents, or the path of a PNG file (read now).
        caption : str
            Shown under the image; also its alt text.

        Returns
        -------
        Report
            ``self``, for chaining.

        Raises
        ------
        FileNotFoundError
            If ``image`` is a path that does not exist.
        ValueError
            If the data is not a PNG.
        """
        if isinstance(image, bytes | bytearray):
            data, origin = bytes(image), "image bytes"
        elif isinstance(image, str | os.PathLike):
            data, origin = Path(image).read_bytes(), str(image)
        else:
            raise TypeError(
                f"image must be PNG bytes or the path of a PNG file; got {type(image).__name__}."
            )
        if not data.startswith(_PNG_SIGNATURE):
            raise BadInputError(
                f"image must be a PNG (signature {_PNG_SIGNATURE!r}); {origin} starts with "
                f"{data[:8]!r}. Save the figure as PNG (e.g. render_views(...).png)."
            )
        self._blocks.append(_Image(data, _require_text(caption, "caption")))
        return self

    def add_table(
        self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], caption: str
    ) -> Report:
        """Add a table.

        Parameters
        ----------
        rows : list of dict, or dict
            A list of rows (column name → value; columns in order of first
            appearance, missing cells left blank), or one mapping shown as two
            columns "Item" and "Value".
        caption : str
            Shown above the table.

        Returns
        -------
        Report
            ``self``, for chaining.
        """
        if isinstance(rows, Mapping):
            columns = ["Item", "Value"]
            cells = [[str(key), value] for key, value in rows.items()]
        elif isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
            columns = []
            for n, row in enumerate(rows):
                if not isinstance(row, Mapping):
                    raise TypeError(
                        f"rows[{n}] must be a dict of column name to value; got "
                        f"{type(row).__name__}. Pass a list of dicts or a single dict."
                    )
                columns.extend(str(key) for key in row if str(key) not in columns)
            cells = [[_lookup(row, column) for column in columns] for row in rows]
        else:
            raise TypeError(f"rows must be a list of dicts or a dict; got {type(rows).__name__}.")
        self._blocks.append(_Table(columns, cells, _require_text(caption, "caption")))
        return self

    def to_html(self, image_names: Sequence[str] | None = None) -> str:
        """The page as HTML; images link to ``image_names`` (default ``image_01.png``, …)."""
        images = [b for b in self._blocks if isinstance(b, _Image)]
        names = list(image_names) if image_names is not None else _image_names(len(images))
        if len(names) != len(images):
            raise BadInputError(
                f"image_names must name each of the {len(images)} images; got {len(names)}."
            )
        version = html.escape(seldinger.__version__)
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta name="generator" content="{_GENERATOR} {version}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(self.title)}</title>",
            f"<style>\n{_CSS}\n</style>",
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{_esc(self.title)}</h1>",
        ]
        if self.subtitle:
            parts.append(f'<p class="subtitle">{_esc(self.subtitle)}</p>')
        parts.append("</header>")
        parts.append("<main>")
        in_section = False
        image_number = 0
        for block in self._blocks:
            if isinstance(block, _Heading):
                if in_section:
                    parts.append("</section>")
                parts.append(f"<section>\n<h2>{_esc(block.title)}</h2>")
                in_section = True
            elif isinstance(block, _Text):
                parts.extend(f"<p>{_esc(p)}</p>" for p in _paragraphs(block.text))
            elif isinstance(block, _Image):
                name = html.escape(names[image_number], quote=True)
                image_number += 1
                caption = _esc(block.caption)
                parts.append(
                    f'<figure>\n<img src="{name}" alt="{html.escape(block.caption, quote=True)}">'
                    f"\n<figcaption>{caption}</figcaption>\n</figure>"
                )
            else:
                parts.append(_table_html(block))
        if in_section:
            parts.append("</section>")
        parts.append("</main>")
        parts.append(f"<footer>Seldinger {version} — {_esc(DISCLAIMER)}</footer>")
        parts.extend(["</body>", "</html>", ""])
        return "\n".join(parts)

    def write(self, out_dir: str | os.PathLike[str], force: bool = False) -> Path:
        """Write ``out_dir/index.html`` and its PNGs; the folder appears whole or not at all.

        Parameters
        ----------
        out_dir : str or PathLike
            Folder to create. Links inside are relative, so it can be moved or zipped.
        force : bool
            Replace an existing report folder (only one written by this class, or an
            empty folder: any other folder is refused so that no user files are lost).

        Returns
        -------
        Path
            ``out_dir/index.html``.

        Raises
        ------
        FileExistsError
            If ``out_dir`` exists and ``force`` is False, or it exists and is not a
            report folder or empty folder.
        """
        target = Path(out_dir)
        if force and target.exists() and not replaceable_report_folder(target):
            raise OutputExistsError(
                f"out_dir {target} exists and is not a Seldinger report folder; replacing it "
                "would delete its contents. Choose a new folder or remove it yourself."
            )
        with atomic_dir(target, force=force) as tmp:
            self.write_into(tmp)
        logger.debug("wrote report %s", target)
        return target / "index.html"

    def write_into(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``index.html`` and its PNGs into an existing (new, empty) folder.

        For callers that stage the folder themselves (e.g. to add a PDF before it appears);
        :meth:`write` is the atomic form.
        """
        out = Path(folder)
        images = [b for b in self._blocks if isinstance(b, _Image)]
        names = _image_names(len(images))
        page = self.to_html(names)
        for name, image in zip(names, images, strict=True):
            (out / name).write_bytes(image.data)
        (out / "index.html").write_text(page, encoding="utf-8")
        return out / "index.html"


def _require_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str; got {type(value).__name__} ({value!r}).")
    return value


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def _image_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"image_{n:0{width}d}.png" for n in range(1, count + 1)]


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    for key, value in row.items():
        if str(key) == column:
            return value
    return ""


def _format_cell(value: Any) -> tuple[str, bool]:
    """(text, is_number) of a table cell."""
    if value is None:
        return "—", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, numbers.Integral):
        return str(int(value)), True
    if isinstance(value, numbers.Real):
        return _format_real(float(value)), True
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_format_cell(v)[0] for v in value) + ")", False
    return str(value), False


def _format_real(value: float) -> str:
    """Four significant digits, without an exponent between 1e-3 and 1e6."""
    magnitude = abs(value)
    if value == 0.0 or not math.isfinite(value):
        return str(value)
    if not 1e-3 <= magnitude < 1e6:
        return f"{value:.4g}"
    decimals = max(0, 3 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _table_html(table: _Table) -> str:
    lines = ["<table>", f"<caption>{_esc(table.caption)}</caption>", "<thead><tr>"]
    lines.extend(f"<th>{_esc(column)}</th>" for column in table.columns)
    lines.append("</tr></thead>")
    lines.append("<tbody>")
    if not table.rows:
        lines.append(f'<tr><td colspan="{max(1, len(table.columns))}">(none)</td></tr>')
    for row in table.rows:
        cells = []
        for value in row:
            text, is_number = _format_cell(value)
            css = ' class="num"' if is_number else ""
            cells.append(f"<td{css}>{_esc(text)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody>")
    lines.append("</table>")
    return "\n".join(lines)


def replaceable_report_folder(path: Path) -> bool:
    """True for an empty folder or one holding a report written by :class:`Report`."""
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    index = path / "index.html"
    if not index.is_file():
        return False
    with index.open(encoding="utf-8", errors="replace") as handle:
        head = handle.read(2048)
    return f'<meta name="generator" content="{_GENERATOR} ' in head
