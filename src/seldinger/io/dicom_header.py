"""Reading DICOM headers defensively: a damaged file gives a DicomReadError naming it.

pydicom parses lazily and, on damaged input, raises whatever the failing step raises
(``struct.error``, ``NotImplementedError``, ``KeyError``, ``MemoryError`` …) or warns and
goes on. Every pydicom call of the readers therefore runs inside :func:`pydicom_calls`,
which turns any such exception into a :class:`DicomReadError` naming the file, and
pydicom's warnings into notes. The files are read through a read-only memory map, so a
damaged element length can never make pydicom allocate more than the file holds
(``read(n)`` on a map returns at most the bytes that are there).

Values the reader relies on are converted by the ``header_*`` functions, which name the
attribute, the value found and the fix. Attributes we do not read are never decoded, so
damage there does not stop a read (PS3.5 deviations are common in real archives).
"""

from __future__ import annotations

import logging
import mmap
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from seldinger.io.errors import DicomReadError
from seldinger.io.limits import MAX_VOXELS, reason
from seldinger.io.native import is_decoder_failure

__all__ = [
    "DAMAGED_FIX",
    "HeaderNotes",
    "PixelLayout",
    "has_dicom_preamble",
    "header_integer",
    "header_number",
    "header_numbers",
    "header_text",
    "header_uid",
    "pixel_layout",
    "pydicom_calls",
    "read_dataset",
]

logger = logging.getLogger(__name__)

#: The fix for a file whose bytes are damaged.
DAMAGED_FIX = "Copy the file again from the archive, or remove it from the folder."

#: Transfer syntaxes whose pixel data is stored uncompressed (PS3.5 A.1, A.2, A.3).
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
#: Implicit VR Little Endian, the default when the file meta names no syntax (PS3.5 A.1).
DEFAULT_SYNTAX = "1.2.840.10008.1.2"

_UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
_MAX_NOTES = 3


@dataclass
class HeaderNotes:
    """pydicom's warnings while reading, grouped so that a 300-file series gives few notes."""

    messages: dict[str, list[str]] = field(default_factory=dict)  # message → files

    def add(self, where: str, message: str) -> None:
        self.messages.setdefault(" ".join(message.split()), []).append(where)

    def as_notes(self) -> list[str]:
        notes = []
        for message, places in list(self.messages.items())[:_MAX_NOTES]:
            more = f" (and {len(places) - 1} more file(s))" if len(places) > 1 else ""
            notes.append(f"pydicom on {Path(places[0]).name}{more}: {message}")
        if len(self.messages) > _MAX_NOTES:
            rest = sum(len(p) for p in list(self.messages.values())[_MAX_NOTES:])
            notes.append(
                f"… {len(self.messages) - _MAX_NOTES} other pydicom warning(s) in {rest} place(s)"
            )
        return notes


class _PydicomLogToDebug(logging.Filter):
    """pydicom logs each warning it issues; the notes carry them. While our calls run, its
    records are passed on at DEBUG under this module's logger instead (a command line that
    logs warnings would otherwise print them beside the one-line error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger.debug("pydicom said: %s", record.getMessage())
        return False


@contextmanager
def pydicom_calls(where: str, notes: HeaderNotes | None) -> Iterator[None]:
    """Run pydicom code on one file: warnings go to ``notes``, errors become DicomReadError.

    A :class:`DicomReadError` raised inside passes unchanged; any other exception (pydicom
    raises a dozen kinds on damaged input, ``MemoryError`` and ``RecursionError`` included)
    becomes a DicomReadError naming ``where``.
    """
    pydicom_log = logging.getLogger("pydicom")
    to_debug = _PydicomLogToDebug()
    pydicom_log.addFilter(to_debug)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except DicomReadError:
                raise
            except BaseException as err:
                if not is_decoder_failure(err):  # KeyboardInterrupt, SystemExit …
                    raise
                raise DicomReadError(
                    f"{where}: damaged DICOM header ({reason(err)}). {DAMAGED_FIX}"
                ) from err
            finally:
                for item in caught:
                    logger.debug("%s: %s", where, item.message)
                    if notes is not None:
                        notes.add(where, str(item.message))
    finally:
        pydicom_log.removeFilter(to_debug)


def has_dicom_preamble(path: Path) -> bool:
    """True when the file has the 128-byte preamble and ``DICM`` (PS3.10 7.1)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_dataset(path: Path, *, stop_before_pixels: bool) -> Dataset:
    """``pydicom.dcmread`` through a read-only memory map (call inside :func:`pydicom_calls`).

    Raises
    ------
    DicomReadError
        Empty, truncated or unreadable files, and files that are not DICOM.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size == 0:
                raise DicomReadError(f"{path}: the file is empty (0 bytes). {DAMAGED_FIX}")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                ds = pydicom.dcmread(cast(BinaryIO, mapped), stop_before_pixels=stop_before_pixels)
        _check_complete(ds, path, size)
        return ds
    except DicomReadError:
        raise
    except InvalidDicomError as err:
        raise DicomReadError(
            f"{path}: not a DICOM file ({reason(err)}). Remove it from the folder, or pass the "
            "folder with the CT's DICOM slices."
        ) from err
    except OSError as err:
        raise DicomReadError(f"{path}: cannot be read ({reason(err)}).") from err
    except (struct.error, EOFError) as err:  # the bytes stop inside an element
        raise DicomReadError(
            f"{path}: truncated DICOM file: it ends inside a header element after {size} bytes "
            f"({reason(err)}). {DAMAGED_FIX}"
        ) from err


def _check_complete(ds: Dataset, path: Path, size: int) -> None:
    """Refuse a file whose last element is cut short: pydicom stops quietly at the end of
    the bytes and keeps the shortened value (an ImagePositionPatient of ``-16`` for
    ``-166.0\\-171.7\\-100.0``)."""
    if not len(ds):
        return
    last = ds.get_item(max(ds.keys()))
    length, start = getattr(last, "length", None), getattr(last, "value_tell", None)
    if length is None or start is None or length == 0xFFFFFFFF:
        return
    if start + length > size:
        raise DicomReadError(
            f"{path}: truncated DICOM file: it ends after {size} bytes, inside {last.tag} "
            f"{keyword_for_tag(last.tag)} ({start + length - size} of its {length} bytes "
            f"missing). {DAMAGED_FIX}"
        )


def _decoded(ds: Dataset, keyword: str, where: str) -> Any:
    """The value of ``keyword``; None when absent or empty."""
    if keyword not in ds:
        return None
    try:
        value = ds[keyword].value
    except Exception as err:  # unknown VR, bad length, undecodable characters …
        raise DicomReadError(
            f"{where}: {keyword} cannot be decoded ({reason(err)}); the header is damaged. "
            f"{DAMAGED_FIX}"
        ) from err
    return None if value is None or value == "" else value


def _shown(value: Any) -> str:
    text = "\\".join(str(v) for v in value) if isinstance(value, MultiValue | list) else str(value)
    return repr(text if len(text) <= 60 else text[:59] + "…")


def _single(value: Any, keyword: str, where: str) -> Any:
    if isinstance(value, MultiValue | list | tuple):
        if len(value) != 1:
            raise DicomReadError(
                f"{where}: {keyword} must hold one value; got {_shown(value)}. The header is "
                f"damaged. {DAMAGED_FIX}"
            )
        return value[0]
    return value


def header_number(
    ds: Dataset,
    keyword: str,
    where: str,
    default: float | None = None,
    *,
    positive: bool = False,
    nonzero: bool = False,
) -> float | None:
    """A single finite number (DS/IS/FD …); ``default`` when absent or empty."""
    value = _decoded(ds, keyword, where)
    if value is None:
        return default
    value = _single(value, keyword, where)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise DicomReadError(
            f"{where}: {keyword} {_shown(value)} is not a number. The header is damaged. "
            f"{DAMAGED_FIX}"
        ) from err
    if number != number or number in (float("inf"), float("-inf")):
        raise DicomReadError(
            f"{where}: {keyword} is {_shown(value)}, not a finite number. The header is damaged. "
            f"{DAMAGED_FIX}"
        )
    if positive and number <= 0:
        raise DicomReadError(f"{where}: {keyword} {_shown(value)} must be positive.")
    if nonzero and number == 0:
        raise DicomReadError(f"{where}: {keyword} must not be 0. The header is damaged.")
    return number


def header_numbers(ds: Dataset, keyword: str, n: int, where: str) -> tuple[float, ...]:
    """Exactly ``n`` finite numbers (e.g. ImagePositionPatient, n = 3); required."""
    value = _decoded(ds, keyword, where)
    if value is None:
        raise DicomReadError(
            f"{where}: {keyword} is missing, so this slice's position in the patient is unknown. "
            "Seldinger never guesses geometry; export the series again with full headers."
        )
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    try:
        numbers = tuple(float(v) for v in items)
    except (TypeError, ValueError, OverflowError) as err:
        raise DicomReadError(
            f"{where}: {keyword} {_shown(value)} is not numeric. The header is damaged. "
            f"{DAMAGED_FIX}"
        ) from err
    if len(numbers) != n or not all(abs(x) < float("inf") for x in numbers):
        raise DicomReadError(
            f"{where}: {keyword} must hold {n} finite numbers; got {_shown(value)}. The header "
            f"is damaged. {DAMAGED_FIX}"
        )
    return numbers


def header_integer(
    ds: Dataset, keyword: str, where: str, default: int | None = None, *, low: int, high: int
) -> int | None:
    """A single integer from ``low`` to ``high`` (US/IS …); ``default`` when absent."""
    value = _decoded(ds, keyword, where)
    if value is None:
        return default
    value = _single(value, keyword, where)
    try:
        number = int(value) if isinstance(value, int) else int(str(value).strip())
    except (TypeError, ValueError) as err:
        raise DicomReadError(
            f"{where}: {keyword} {_shown(value)} is not an integer. The header is damaged. "
            f"{DAMAGED_FIX}"
        ) from err
    if not low <= number <= high:
        raise DicomReadError(
            f"{where}: {keyword} is {number}; it must be from {low} to {high}. The header is "
            f"damaged. {DAMAGED_FIX}"
        )
    return number


def header_uid(ds: Dataset, keyword: str, where: str) -> str | None:
    """A UID (PS3.5 9.1: digits and dots, at most 64 characters); None when absent."""
    value = _decoded(ds, keyword, where)
    if value is None:
        return None
    text = str(_single(value, keyword, where)).strip("\x00 ")
    if len(text) > 64 or not _UID_PATTERN.fullmatch(text):
        raise DicomReadError(
            f"{where}: {keyword} {_shown(text)} is not a valid UID (digits and dots, at most 64 "
            f"characters). The header is damaged. {DAMAGED_FIX}"
        )
    return text


def header_text(ds: Dataset, keyword: str, where: str) -> str | None:
    """A descriptive text (CS/LO/SH …, several values joined by ``\\``); None when absent."""
    value = _decoded(ds, keyword, where)
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class PixelLayout:
    """How a file's pixel data is stored (Image Pixel Module, PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    n_frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    transfer_syntax: UID

    @property
    def native(self) -> bool:
        """Uncompressed pixel data."""
        return str(self.transfer_syntax) in NATIVE_SYNTAXES

    @property
    def pixel_bytes(self) -> int:
        """Bytes of uncompressed pixel data the header declares."""
        return self.rows * self.columns * self.n_frames * self.bits_allocated // 8


def _transfer_syntax(ds: Dataset, where: str) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = header_uid(meta, "TransferSyntaxUID", where) if meta is not None else None
    if uid is None:
        return UID(DEFAULT_SYNTAX)
    syntax = UID(uid)
    if not syntax.is_transfer_syntax:
        raise DicomReadError(
            f"{where}: TransferSyntaxUID {uid} is not a DICOM transfer syntax, so the pixel data "
            f"cannot be decoded. The file meta is damaged. {DAMAGED_FIX}"
        )
    return syntax


def pixel_layout(ds: Dataset, where: str, file_bytes: int | None = None) -> PixelLayout:
    """Check the Image Pixel Module of a CT file before any pixel is read or allocated.

    Parameters
    ----------
    ds : Dataset
        The file's header (pixel data may be absent).
    where : str
        The file, for messages.
    file_bytes : int, optional
        The file's size. For uncompressed data, a file smaller than the pixel data its
        header declares is refused here, before anything is allocated.

    Raises
    ------
    DicomReadError
        Missing or impossible Rows, Columns, BitsAllocated, BitsStored,
        PixelRepresentation, SamplesPerPixel, NumberOfFrames; colour images; more voxels
        than :data:`~seldinger.io.limits.MAX_VOXELS`; truncated uncompressed data.
    """
    rows = header_integer(ds, "Rows", where, 0, low=0, high=65535) or 0
    columns = header_integer(ds, "Columns", where, 0, low=0, high=65535) or 0
    if rows < 1 or columns < 1:
        raise DicomReadError(
            f"{where}: Rows {rows} x Columns {columns}: an image needs at least one row and "
            f"column. The header is damaged. {DAMAGED_FIX}"
        )
    samples = header_integer(ds, "SamplesPerPixel", where, 1, low=0, high=65535)
    photometric = (header_text(ds, "PhotometricInterpretation", where) or "").strip()
    if samples != 1 or photometric not in ("", "MONOCHROME1", "MONOCHROME2"):
        raise DicomReadError(
            f"{where}: SamplesPerPixel {samples}, PhotometricInterpretation "
            f"{photometric or '(none)'}: a CT image is grayscale (1 sample, MONOCHROME2). The "
            f"header is damaged or this is not a CT image. {DAMAGED_FIX}"
        )
    bits_allocated = header_integer(ds, "BitsAllocated", where, low=0, high=65535)
    if bits_allocated is None:
        raise DicomReadError(
            f"{where}: BitsAllocated (0028,0100) is missing, so the pixel data cannot be "
            f"decoded. The header is damaged. {DAMAGED_FIX}"
        )
    if bits_allocated not in (8, 16, 32):
        raise DicomReadError(
            f"{where}: BitsAllocated {bits_allocated}; CT pixels are 8, 16 or 32 bits. The "
            f"header is damaged. {DAMAGED_FIX}"
        )
    bits_stored = (
        header_integer(ds, "BitsStored", where, low=1, high=bits_allocated) or bits_allocated
    )
    representation = header_integer(ds, "PixelRepresentation", where, 0, low=0, high=1)
    n_frames = header_integer(ds, "NumberOfFrames", where, low=1, high=2**31 - 1) or 1
    voxels = rows * columns * n_frames
    if voxels > MAX_VOXELS:
        raise DicomReadError(
            f"{where}: {n_frames} frame(s) of {rows} x {columns} pixels is {voxels} voxels, more "
            f"than the {MAX_VOXELS} this reader accepts. The header is damaged. {DAMAGED_FIX}"
        )
    layout = PixelLayout(
        rows,
        columns,
        n_frames,
        bits_allocated,
        bits_stored,
        representation == 1,
        _transfer_syntax(ds, where),
    )
    if layout.native and file_bytes is not None and file_bytes < layout.pixel_bytes:
        raise DicomReadError(
            f"{where}: pixel data truncated: {n_frames} frame(s) of {rows} x {columns} x "
            f"{bits_allocated} bits need {layout.pixel_bytes} bytes but the file holds only "
            f"{file_bytes}. The file is damaged; copy it again from the archive or remove the "
            "slice and use --resample."
        )
    return layout
