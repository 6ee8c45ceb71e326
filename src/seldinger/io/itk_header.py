"""Where the voxels of a NRRD or MetaImage file are, so that their size can be checked.

SimpleITK reads the header (sizes, pixel type) but allocates the image from the header
alone. Before it reads the voxels, :func:`check_data_size` compares the bytes the header
declares with the bytes the data file holds: raw data by file size, compressed data by
counting the decompressed stream (:mod:`seldinger.io.streams`), text by a lower bound of
two characters per value. Header formats: NRRD (teem ``format.html``, NRRD0001–0005) and
MetaImage (ITK MetaIO, ``ElementDataFile`` last).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seldinger.io.errors import ImageReadError
from seldinger.io.streams import DEFLATE_MAX_RATIO, Codec, StreamError, available_bytes

__all__ = ["DataLayout", "check_data_file", "check_data_size", "data_layout"]

#: A header longer than this is damaged (real ones are a few hundred bytes).
MAX_HEADER_BYTES = 1 << 20
#: Numbers in a header beyond this magnitude are damage.
MAX_HEADER_NUMBER = 1e12

_NRRD_CODECS: dict[str, Codec | str] = {
    "raw": "raw",
    "gz": "gzip",
    "gzip": "gzip",
    "bz2": "bzip2",
    "bzip2": "bzip2",
    "txt": "text",
    "text": "text",
    "ascii": "text",
    "hex": "hex",
}
_FIX = "Export the image again."


@dataclass(frozen=True)
class DataLayout:
    """The voxel data of an ITK-format file: which file, from where, how encoded."""

    data_path: Path | None  # None: a list or pattern of files (not checked here)
    offset: int | None  # start in data_path; None: the data ends the file (skip -1)
    encoding: str  # "raw", "gzip", "zlib", "bzip2", "text" or "hex"


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_HEADER_BYTES)


def _meta_layout(path: Path, head: bytes) -> DataLayout:
    fields: dict[str, str] = {}
    position = 0
    while True:
        end = head.find(b"\n", position)
        if end < 0:
            raise ImageReadError(
                f"{path}: the MetaImage header has no ElementDataFile line (truncated or damaged "
                f"header). {_FIX}"
            )
        line = head[position:end].decode("latin-1").rstrip("\r")
        position = end + 1
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isprintable() or not value.isprintable():
            raise ImageReadError(
                f"{path}: MetaImage header line {line[:40]!r} is not 'Key = Value'. The header "
                f"is damaged. {_FIX}"
            )
        if key in fields:
            raise ImageReadError(f"{path}: MetaImage field {key} is given twice. {_FIX}")
        fields[key] = value.strip()
        if key == "ElementDataFile":
            break
    _check_fields(path, fields, _META_RULES)
    name = fields["ElementDataFile"]
    compressed = fields.get("CompressedData", "False").lower() == "true"
    binary = fields.get("BinaryData", "True").lower() == "true"
    encoding = "zlib" if compressed else ("raw" if binary else "text")
    if name.upper() == "LOCAL":
        return DataLayout(path, position, encoding)
    if name.upper().startswith("LIST") or "%" in name or " " in name:
        return DataLayout(None, None, encoding)
    try:
        skip = int(fields.get("HeaderSize", "0"))
    except ValueError as err:
        raise ImageReadError(
            f"{path}: HeaderSize {fields['HeaderSize']!r} is not an integer. {_FIX}"
        ) from err
    return DataLayout(path.parent / name, None if skip < 0 else skip, encoding)


def _nrrd_layout(path: Path, head: bytes) -> DataLayout:
    end = head.find(b"\n\n")
    lines = (head if end < 0 else head[:end]).decode("latin-1").splitlines()
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not line.isprintable():
            raise ImageReadError(
                f"{path}: NRRD header line {line[:40]!r} is not 'field: value'. The header is "
                f"damaged. {_FIX}"
            )
        if value.startswith("="):  # "key:=value" lines are free key/value pairs
            continue
        field_name = key.strip().lower().replace(" ", "")
        if field_name in fields:
            raise ImageReadError(f"{path}: NRRD field {key.strip()!r} is given twice. {_FIX}")
        fields[field_name] = value.strip()
    _check_fields(path, fields, _NRRD_RULES)
    encoding = _NRRD_CODECS.get(fields.get("encoding", "").lower())
    if encoding is None:
        raise ImageReadError(
            f"{path}: NRRD encoding {fields.get('encoding')!r} is not one ITK reads (raw, gzip, "
            f"bzip2, ascii, hex). {_FIX}"
        )
    try:
        byte_skip = int(fields.get("byteskip", "0"))
        line_skip = int(fields.get("lineskip", "0"))
    except ValueError as err:
        raise ImageReadError(
            f"{path}: NRRD byte skip / line skip is not an integer. {_FIX}"
        ) from err
    name = fields.get("datafile")
    if name is None:
        if end < 0:
            raise ImageReadError(
                f"{path}: the NRRD header has no blank line before the data (truncated or "
                f"damaged header). {_FIX}"
            )
        data_path, offset = path, end + 2
    elif name.upper().startswith("LIST") or "%" in name or " " in name:
        return DataLayout(None, None, encoding)
    else:
        data_path, offset = path.parent / name, 0
    if line_skip > 0 or byte_skip < -1:
        return DataLayout(None, None, encoding)  # rare layouts: left to ITK's own checks
    if byte_skip == -1:
        return DataLayout(data_path, None, encoding)
    return DataLayout(data_path, offset + (byte_skip if encoding == "raw" else 0), encoding)


def _numbers(value: str, n: int, *, integer: bool = False, positive: bool = False) -> bool:
    parts = value.replace(",", " ").replace("(", " ").replace(")", " ").split()
    if len(parts) != n:
        return False
    try:
        numbers = [int(v) if integer else float(v) for v in parts]
    except ValueError:
        return False
    return all(abs(x) < MAX_HEADER_NUMBER and (not positive or x > 0) for x in numbers)


def _vectors(value: str) -> bool:
    """NRRD 'space directions' / 'space origin': (x,y,z) vectors or 'none'."""
    items = value.split()
    return len(items) in (1, 3) and all(
        item == "none" or (item.startswith("(") and item.endswith(")") and _numbers(item, 3))
        for item in items
    )


_META_TYPES = {
    f"MET_{t}" for t in ("CHAR", "UCHAR", "SHORT", "USHORT", "INT", "UINT", "LONG", "ULONG")
} | {"MET_LONG_LONG", "MET_ULONG_LONG", "MET_FLOAT", "MET_DOUBLE"}
_BOOL = {"True", "False", "true", "false", "TRUE", "FALSE", "1", "0"}
#: Field → rule for the MetaImage fields that decide how voxels are read (MetaIO).
_THREE_POSITIVE = "three positive numbers (mm); zero or negative spacing is refused"
_META_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "ObjectType": (lambda v: v == "Image", "Image"),
    "NDims": (lambda v: v == "3", "3 (a 3-D image)"),
    "DimSize": (lambda v: _numbers(v, 3, integer=True, positive=True), "three positive sizes"),
    "ElementType": (lambda v: v in _META_TYPES, "a scalar MET_ type"),
    "ElementNumberOfChannels": (lambda v: v == "1", "1 (a scalar image)"),
    "ElementSpacing": (lambda v: _numbers(v, 3, positive=True), _THREE_POSITIVE),
    "ElementSize": (lambda v: _numbers(v, 3, positive=True), _THREE_POSITIVE),
    "Offset": (lambda v: _numbers(v, 3), "three finite numbers"),
    "Position": (lambda v: _numbers(v, 3), "three finite numbers"),
    "Origin": (lambda v: _numbers(v, 3), "three finite numbers"),
    "CenterOfRotation": (lambda v: _numbers(v, 3), "three finite numbers"),
    "TransformMatrix": (lambda v: _numbers(v, 9), "nine finite numbers"),
    "Rotation": (lambda v: _numbers(v, 9), "nine finite numbers"),
    "Orientation": (lambda v: _numbers(v, 9), "nine finite numbers"),
    "BinaryData": (lambda v: v in _BOOL, "True or False"),
    "BinaryDataByteOrderMSB": (lambda v: v in _BOOL, "True or False"),
    "ElementByteOrderMSB": (lambda v: v in _BOOL, "True or False"),
    "CompressedData": (lambda v: v in _BOOL, "True or False"),
    "CompressedDataSize": (lambda v: _numbers(v, 1, integer=True) and int(v) >= 0, "a size"),
    "HeaderSize": (lambda v: _numbers(v, 1, integer=True) and int(v) >= -1, "-1 or a size"),
    "ElementDataFile": (lambda v: bool(v), "LOCAL or a file name"),
}
_NRRD_TYPES = {
    "signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t", "short",
    "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
    "unsigned short", "unsigned short int", "uint16", "uint16_t", "int", "signed int", "int32",
    "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "longlong", "long long",
    "long long int", "signed long long", "signed long long int", "int64", "int64_t",
    "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "float",
    "double",
}  # fmt: skip
#: Field (lower case, no spaces) → rule for the NRRD fields that decide how voxels are read.
_NRRD_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "dimension": (lambda v: v == "3", "3 (a 3-D image)"),
    "type": (lambda v: v in _NRRD_TYPES, "a scalar number type"),
    "sizes": (lambda v: _numbers(v, 3, integer=True, positive=True), "three positive sizes"),
    "spacings": (lambda v: _numbers(v, 3, positive=True), _THREE_POSITIVE),
    "spacedirections": (_vectors, "three (x,y,z) vectors of finite numbers"),
    "spaceorigin": (lambda v: v.startswith("(") and _numbers(v, 3), "an (x,y,z) vector"),
    "spacedimension": (lambda v: v == "3", "3"),
    "endian": (lambda v: v in ("little", "big"), "little or big"),
    "byteskip": (lambda v: _numbers(v, 1, integer=True), "an integer"),
    "lineskip": (lambda v: _numbers(v, 1, integer=True) and int(v) >= 0, "a count"),
}
_REQUIRED = {
    "metaimage": ("NDims", "DimSize", "ElementType"),
    "nrrd": ("dimension", "type", "sizes", "encoding"),
}


def _check_fields(
    path: Path, fields: dict[str, str], rules: dict[str, tuple[Callable[[str], bool], str]]
) -> None:
    """Refuse a header whose voxel-defining fields are missing or malformed, before ITK
    parses it (ITK's MetaIO crashes on some, e.g. ``NDims = -1``)."""
    kind = "nrrd" if rules is _NRRD_RULES else "metaimage"
    for key in _REQUIRED[kind]:
        if key not in fields:
            raise ImageReadError(
                f"{path}: the header has no {key} field. The header is damaged. {_FIX}"
            )
    for key, (rule, expected) in rules.items():
        if key in fields and not rule(fields[key]):
            raise ImageReadError(
                f"{path}: header field {key} is {fields[key][:60]!r}; it must be {expected}. "
                f"The header is damaged. {_FIX}"
            )


def data_layout(path: Path, fmt: str) -> DataLayout:
    """The data layout of a NRRD (``fmt`` "nrrd") or MetaImage ("metaimage") file."""
    head = _head(path)
    if fmt == "nrrd":
        if not head.startswith(b"NRRD000"):
            raise ImageReadError(f"{path}: not a NRRD file (no NRRD000x magic). {_FIX}")
        return _nrrd_layout(path, head)
    return _meta_layout(path, head)


def check_data_file(path: Path, layout: DataLayout) -> None:
    """Refuse a header whose data file is missing, before ITK tries to open it."""
    if layout.data_path is not None and not layout.data_path.is_file():
        raise ImageReadError(
            f"{path}: its data file {layout.data_path} does not exist. Keep the header and data "
            f"file together. {_FIX}"
        )


def check_data_size(path: Path, layout: DataLayout, needed: int) -> None:
    """Refuse a header that declares ``needed`` bytes of voxels the data file cannot hold."""
    if layout.data_path is None:
        return
    try:
        stored = layout.data_path.stat().st_size
    except OSError as err:
        raise ImageReadError(
            f"{path}: its data file {layout.data_path} cannot be read ({err.strerror}). Keep the "
            f"header and data file together. {_FIX}"
        ) from err
    start = 0 if layout.offset is None else layout.offset
    payload = max(stored - start, 0)
    if layout.encoding == "raw":
        held = payload
    elif layout.encoding == "text":
        # a value of at most 8 bytes takes at least 2 characters (digit and separator)
        held = needed if payload + 1 >= needed // 4 else payload * 4
    elif layout.encoding == "hex":
        held = payload // 2
    elif layout.encoding in ("gzip", "zlib") and needed > payload * DEFLATE_MAX_RATIO:
        held = -1
    else:
        try:
            with layout.data_path.open("rb") as handle:
                handle.seek(start)
                held = available_bytes(handle, layout.encoding, needed)  # type: ignore[arg-type]
        except StreamError as err:
            raise ImageReadError(
                f"{path}: damaged {layout.encoding} voxel data ({err}). {_FIX}"
            ) from err
    if held < needed:
        shown = "far fewer" if held < 0 else f"only {held}"
        raise ImageReadError(
            f"{path}: truncated or damaged: the header declares {needed} bytes of voxel data"
            f"{' (uncompressed)' if layout.encoding in ('gzip', 'zlib', 'bzip2') else ''}, but "
            f"{layout.data_path.name} holds {shown}. {_FIX}"
        )
