"""Seeded mutations of real CT files, for ``test_fuzz.py`` and ``fuzz_campaign.py``.

Bases (all from LIDC-IDRI-0001, CC BY 3.0, ``../shared/README.md``):

- ``dicom``: one real slice as archived (512 x 512, explicit VR little endian, 526 kB);
- ``dicom-crop``: the same slice cropped to 64 x 64 (geometry kept), 10 kB;
- ``dicom-folder``: three consecutive cropped slices; one of them is mutated;
- ``dicom-rle`` / ``dicom-j2k``: the cropped slice RLE / JPEG 2000 lossless compressed;
- ``dicom-multiframe``: three cropped slices as one Legacy Converted Enhanced CT (highdicom);
- ``nifti`` / ``nifti-gz``: a 64 x 64 x 20 crop of ``ct.nii.gz`` (int16), .nii and .nii.gz;
- ``nrrd`` / ``mha`` (raw) and ``nrrd-z`` / ``mha-z`` (gzip / zlib): the same crop.

Mutations: bit flips, byte overwrites with boundary values, byte insertion and deletion,
chunk splices, truncation, and field edits (DICOM elements rewritten byte for byte with a
chosen VR, value or length; NIfTI header fields through nibabel's header class; NRRD and
MetaImage header lines). Everything random comes from the ``rng`` passed in.

:func:`read_outcome` reads one input with a time limit and says what came out: ``ok``,
``project`` (a :class:`~seldinger.errors.SeldingerError`), ``foreign`` (anything else,
warnings included when they are errors) or ``hang``.
"""

from __future__ import annotations

import gzip
import io
import signal
import struct
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pydicom

from seldinger.errors import SeldingerError

__all__ = [
    "KINDS",
    "SEED",
    "Base",
    "Case",
    "Outcome",
    "build_bases",
    "mutate",
    "read_outcome",
    "write_case",
]

SEED = 20240611
KINDS = (
    "dicom",
    "dicom-crop",
    "dicom-folder",
    "dicom-rle",
    "dicom-j2k",
    "dicom-multiframe",
    "nifti",
    "nifti-gz",
    "nrrd",
    "nrrd-z",
    "mha",
    "mha-z",
)

# --------------------------------------------------------------------------- value pools

US_VALUES = (0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 512, 32768, 65535)
TEXT_VALUES = (
    "", " ", "0", "-0", "1", "-1", "2", "0.5", "-0.7", "1e308", "-1e308", "1e-320", "1e400",
    "nan", "NaN", "inf", "-inf", "Infinity", "abc", "1_0", "0x10", "1.2.3", "1\\2", "1\\2\\3",
    "\\", "\\nan", "1\\0\\0\\0\\1\\0", "0\\0\\0\\0\\0\\0", "1\\0\\0\\0\\0\\1", "2\\0\\0\\0\\2\\0",
    "0.7\\0.7\\0\\0\\1\\0", "-166\\-171.7\\-100", "1e7\\0\\0", "0\\0", "0.7\\-0.7", "0\\0.7",
    "9" * 17, "9" * 400, "1" + "0" * 5000, "\x00", "\x00\x00\x00\x00", "\xff\xfe", "é",
    "MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", "CT", "MR", "OT", "ISO_IR 100",
    "ISO_IR 192", "ISO 2022 IR 87", "\\ISO 2022 IR 13", "GB18030", "bogus\x00", "LOCALIZER",
    "ORIGINAL\\PRIMARY\\LOCALIZER", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.1.98", "01.2..3",
)  # fmt: skip
VRS = ("US", "SS", "UL", "DS", "IS", "CS", "UI", "LO", "SH", "OB", "OW", "SQ", "UN", "FD", "XX")
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}  # fmt: skip
FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, -0.7, 2.5, 1e-30, 1e30, -1e30, 3.4e38, 1e7, np.nan, np.inf, -np.inf)  # fmt: skip


@dataclass(frozen=True)
class Base:
    """An unmutated input: its files (name → bytes), the one to mutate and what to read."""

    kind: str
    files: dict[str, bytes]
    target: str  # the file mutations apply to
    read: str  # the path given to read_ct, relative to the case folder ("." = the folder)
    header_bytes: int  # mutations of the header region aim below this offset


@dataclass(frozen=True)
class Case:
    """A mutated input."""

    kind: str
    mutation: str
    files: dict[str, bytes]
    target: str
    read: str


@dataclass(frozen=True)
class Outcome:
    """What reading an input gave."""

    status: str  # "ok", "project", "foreign" or "hang"
    error: str = ""  # exception type
    message: str = ""
    where: str = ""  # file:line of the innermost frame, for foreign errors
    seconds: float = 0.0
    names_input: bool = True  # a project error's message names the file or folder
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- bases


def _crop(ds: pydicom.Dataset, size: int = 64, row0: int = 224, col0: int = 224) -> None:
    pixels = ds.pixel_array[row0 : row0 + size, col0 : col0 + size].copy()
    row, col = (
        np.asarray(ds.ImageOrientationPatient[:3], float),
        np.asarray(ds.ImageOrientationPatient[3:], float),
    )
    dy, dx = (float(v) for v in ds.PixelSpacing)
    ipp = np.asarray(ds.ImagePositionPatient, float) + col0 * dx * row + row0 * dy * col
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ds.Rows = ds.Columns = size
    ds.PixelData = pixels.tobytes()


def _dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _pixel_value_offset(data: bytes) -> int:
    for offset, tag, _vr, _length, _header in _elements(data):
        if tag == 0x7FE00010:
            return offset
    return len(data)


def build_bases(lidc_dicom: Path, lidc_nifti: Path, scratch: Path) -> dict[str, Base]:
    """The unmutated inputs of every kind in :data:`KINDS` (``scratch`` for ITK writing)."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage
    from pydicom.uid import JPEG2000Lossless, RLELossless

    from seldinger.io import read_nifti, write_volume

    paths = sorted(lidc_dicom.glob("*.dcm"))
    slices = sorted(
        (pydicom.dcmread(p) for p in paths), key=lambda d: float(d.ImagePositionPatient[2])
    )
    bases: dict[str, Base] = {}
    raw = paths[0].read_bytes()
    bases["dicom"] = Base(
        "dicom", {"slice.dcm": raw}, "slice.dcm", "slice.dcm", _pixel_value_offset(raw)
    )
    cropped = []
    for ds in slices[6:9]:
        ds = pydicom.dcmread(io.BytesIO(_dicom_bytes(ds)))
        _crop(ds)
        cropped.append(ds)
    crop = _dicom_bytes(cropped[1])
    head = _pixel_value_offset(crop)
    bases["dicom-crop"] = Base("dicom-crop", {"slice.dcm": crop}, "slice.dcm", "slice.dcm", head)
    folder = {f"s{n}.dcm": _dicom_bytes(ds) for n, ds in enumerate(cropped)}
    bases["dicom-folder"] = Base("dicom-folder", folder, "s1.dcm", ".", head)
    for kind, uid in (("dicom-rle", RLELossless), ("dicom-j2k", JPEG2000Lossless)):
        ds = pydicom.dcmread(io.BytesIO(crop))
        ds.compress(uid)
        data = _dicom_bytes(ds)
        bases[kind] = Base(
            kind, {"slice.dcm": data}, "slice.dcm", "slice.dcm", _pixel_value_offset(data)
        )
    multi = LegacyConvertedEnhancedCTImage(
        cropped,
        series_instance_uid=pydicom.uid.generate_uid(entropy_srcs=["seldinger-fuzz-series"]),
        series_number=99,
        sop_instance_uid=pydicom.uid.generate_uid(entropy_srcs=["seldinger-fuzz-sop"]),
        instance_number=1,
    )
    data = _dicom_bytes(multi)
    bases["dicom-multiframe"] = Base(
        "dicom-multiframe", {"multi.dcm": data}, "multi.dcm", "multi.dcm", _pixel_value_offset(data)
    )
    volume = read_nifti(lidc_nifti)
    small = volume.crop_lps(*_crop_box(volume))
    scratch.mkdir(parents=True, exist_ok=True)
    nii = scratch / "crop.nii"
    write_volume(small, nii, force=True)
    nii_bytes = nii.read_bytes()
    bases["nifti"] = Base("nifti", {"ct.nii": nii_bytes}, "ct.nii", "ct.nii", 352)
    bases["nifti-gz"] = Base(
        "nifti-gz", {"ct.nii.gz": gzip.compress(nii_bytes, mtime=0)}, "ct.nii.gz", "ct.nii.gz", 352
    )
    for kind, suffix in (("nrrd", ".nrrd"), ("mha", ".mha")):
        path = write_volume(small, scratch / f"crop{suffix}", force=True)
        packed = path.read_bytes()
        raw_itk = _itk_uncompressed(packed, small, suffix, scratch)
        name = f"ct{suffix}"
        bases[kind] = Base(kind, {name: raw_itk}, name, name, _itk_header_end(raw_itk))
        bases[f"{kind}-z"] = Base(f"{kind}-z", {name: packed}, name, name, _itk_header_end(packed))
    return bases


def _crop_box(volume: Any) -> tuple[list[float], list[float]]:
    """An LPS box of about 64 x 64 x 20 voxels in the LIDC chest (where the nodule is)."""
    centre = np.asarray([56.4, 86.3, -116.0])
    half = np.asarray(volume.spacing_mm) * np.asarray([32, 32, 10]) - 1e-3
    return list(centre - half), list(centre + half - np.asarray(volume.spacing_mm))


def _itk_uncompressed(packed: bytes, volume: Any, suffix: str, scratch: Path) -> bytes:
    import SimpleITK as sitk

    path = scratch / f"raw{suffix}"
    image = sitk.GetImageFromArray(
        np.ascontiguousarray(np.asarray(volume.array).transpose(2, 1, 0))
    )
    image.SetSpacing(volume.spacing_mm)
    image.SetOrigin(tuple(float(x) for x in volume.origin_lps_mm))
    image.SetDirection(tuple(float(x) for x in volume.direction.ravel()))
    sitk.WriteImage(image, str(path), useCompression=False)
    return path.read_bytes()


def _itk_header_end(data: bytes) -> int:
    if data.startswith(b"NRRD"):
        end = data.find(b"\n\n")
        return end + 2 if end >= 0 else len(data)
    end = data.find(b"ElementDataFile")
    return data.find(b"\n", end) + 1 if end >= 0 else len(data)


# --------------------------------------------------------------------------- DICOM elements


def _elements(data: bytes) -> list[tuple[int, int, bytes, int, int]]:
    """Top-level (offset, tag, VR, value length, header length) of an explicit VR LE file."""
    out = []
    pos = 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(data):
                break
            length = struct.unpack_from("<I", data, pos + 8)[0]
            header = 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            header = 8
        tag = group << 16 | elem
        out.append((pos, tag, vr, length, header))
        if length == 0xFFFFFFFF:
            end = _undefined_end(data, pos + header)
            if end is None:
                break
            pos = end
        else:
            pos += header + length
    return out


def _undefined_end(data: bytes, pos: int) -> int | None:
    """Offset after the sequence delimiter closing an undefined-length value at ``pos``."""
    depth = 1
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:  # sequence delimitation
            depth -= 1
            pos += 8
            if depth == 0:
                return pos
            continue
        if tag in (0xFFFEE000, 0xFFFEE00D):  # item, item delimitation
            pos += 8 + (0 if length == 0xFFFFFFFF or tag == 0xFFFEE00D else length)
            continue
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            length = struct.unpack_from("<I", data, pos + 8)[0]
            if length == 0xFFFFFFFF:
                depth += 1
                pos += 12
                continue
            pos += 12 + length
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return None


def _element_bytes(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr in (b"UI", b"OB", b"UN") else b" "
    n = len(value) if length is None else length
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in _LONG_VRS:
        return head + b"\x00\x00" + struct.pack("<I", n & 0xFFFFFFFF) + value
    return head + struct.pack("<H", n & 0xFFFF) + value


def _value(rng: np.random.Generator, vr: bytes) -> bytes:
    if vr in (b"US", b"SS") and rng.random() < 0.8:
        return struct.pack("<H", int(rng.choice(US_VALUES)))
    if vr in (b"UL", b"SL") and rng.random() < 0.8:
        return struct.pack(
            "<I", int(rng.choice(US_VALUES)) * int(rng.choice((1, 65536, 99991))) & 0xFFFFFFFF
        )
    if vr in (b"FD",):
        return struct.pack("<d", float(rng.choice(FLOATS)))
    if rng.random() < 0.1:
        return rng.bytes(int(rng.integers(0, 9)))
    return str(rng.choice(TEXT_VALUES)).encode("latin-1", errors="replace")


def _dicom_field_edit(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    elements = [e for e in _elements(data) if e[1] != 0x7FE00010 or rng.random() < 0.3]
    if not elements:
        return data, "field:none"
    offset, tag, vr, length, header = elements[int(rng.integers(len(elements)))]
    end = offset + header + (0 if length == 0xFFFFFFFF else length)
    op = rng.choice(("value", "vr", "delete", "length", "duplicate"))
    label = f"field:{op}:({tag >> 16:04X},{tag & 0xFFFF:04X})"
    if op == "delete" or length == 0xFFFFFFFF:
        return data[:offset] + data[end:], f"field:delete:({tag >> 16:04X},{tag & 0xFFFF:04X})"
    if op == "value":
        new = _element_bytes(tag, vr, _value(rng, vr))
    elif op == "vr":
        new_vr = str(rng.choice(VRS)).encode()
        new = _element_bytes(tag, new_vr, _value(rng, new_vr))
        label += f"->{new_vr.decode()}"
    elif op == "length":
        lie = int(rng.choice((-2, -1, 1, 2, 3, 1000, 2**15, 2**16 - 1, 2**31, 2**32 - 2)))
        new = _element_bytes(tag, vr, data[offset + header : end], max(length + lie, 0))
        label += f"{lie:+d}"
    else:
        new = data[offset:end] * 2
    return data[:offset] + new + data[end:], label


# --------------------------------------------------------------------------- NIfTI fields

_NIFTI_FIELDS: dict[str, tuple[Any, ...]] = {
    "sizeof_hdr": (0, 347, 349, 540, -348, 1543569408),
    "datatype": (0, 1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 255, 32767),
    "bitpix": (0, 1, 8, 16, 24, 32, 64, 128, -16, 255),
    "vox_offset": (0, 1, 347, 348, 351, 352, 353, 354, 356, 1e9, -352, np.nan, np.inf, 352.5, 164192),
    "scl_slope": (0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, -1e38, np.nan, np.inf, -np.inf, 3.4e38),
    "scl_inter": (0.0, -1024.0, 1e30, -1e38, np.nan, np.inf, 0.5),
    "qform_code": (-1, 0, 1, 2, 4, 5, 255, 32767),
    "sform_code": (-1, 0, 1, 2, 4, 5, 255, 32767),
    "quatern_b": (0.0, 1.0, -1.0, 0.5, 1.0000001, 2.0, 1e30, -1e30, np.nan, np.inf),
    "quatern_c": (0.0, 1.0, -1.0, 0.5, 1.0000001, 2.0, 1e30, np.nan),
    "quatern_d": (0.0, 1.0, -1.0, 0.5, 1.0000001, 2.0, 1e30, np.nan),
    "qoffset_x": (0.0, 1e30, np.nan, np.inf, -np.inf, 1e6, 1e7),
    "qoffset_z": (0.0, 1e30, np.nan, np.inf, 1e7),
    "xyzt_units": (0, 1, 2, 3, 8, 255),
    "intent_code": (0, 1, 1007, 2001, 32767),
    "magic": (b"n+1", b"ni1", b"n+2", b"\x00\x00\x00", b"xyz"),
}  # fmt: skip
_DIMS = (-1, 0, 1, 2, 3, 4, 7, 8, 19, 20, 21, 63, 64, 65, 1000, 2048, 32767, -32768)


def _nifti_field_edit(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    header = nibabel.Nifti1Header(data[:348], check=False)
    op = str(rng.choice(("dim", "pixdim", "srow", "ext", "huge", *_NIFTI_FIELDS)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if op == "dim":
            i = int(rng.integers(0, 8))
            header["dim"][i] = int(rng.choice(_DIMS))
            label = f"nifti:dim[{i}]={int(header['dim'][i])}"
        elif op == "pixdim":
            i = int(rng.integers(0, 8))
            header["pixdim"][i] = float(rng.choice(FLOATS))
            label = f"nifti:pixdim[{i}]={float(header['pixdim'][i])!r}"
        elif op == "srow":
            row, i = str(rng.choice(("x", "y", "z"))), int(rng.integers(0, 4))
            header[f"srow_{row}"][i] = float(rng.choice(FLOATS))
            label = f"nifti:srow_{row}[{i}]"
        elif op == "ext":  # an extension flag and a random extension header
            esize = int(rng.choice((0, 8, 16, 24, 1 << 20, 2**31 - 1, -16)))
            body = data[348:]
            extra = b"\x01\x00\x00\x00" + struct.pack("<ii", esize, 6) + body[12:]
            return header.binaryblock + extra, f"nifti:extension esize={esize}"
        elif op == "huge":
            dims = [(2048, 2048, 512), (32767, 32767, 32767), (64, 64, 2000)][int(rng.integers(3))]
            header["dim"][0] = 3
            header["dim"][1:4] = dims
            label = f"nifti:dims={dims}"
        else:
            value = rng.choice(np.asarray(_NIFTI_FIELDS[op], dtype=object))
            header[op] = value
            label = f"nifti:{op}={value!r}"
    return header.binaryblock + data[348:], label


# --------------------------------------------------------------------------- ITK header lines

_ITK_VALUES = (
    "64 64 20", "64 64 2000", "0 64 20", "-1 64 20", "64 64", "64 64 20 2", "2048 2048 512",
    "99999999999 1 1", "-0.7 0.7 2.5", "0 0.7 2.5", "nan 0.7 2.5", "inf 1 1", "1e300 1 1",
    "(0.7,0,0) (0,0.7,0) (0,0,2.5)", "(-0.7,0,0) (0,0,0) (0,0,2.5)", "(nan,0,0) (0,1,0) (0,0,1)",
    "(1,0) (0,1)", "short", "double", "block", "MET_UCHAR", "MET_DOUBLE", "MET_FOO", "raw", "gzip",
    "bzip2", "ascii", "hex", "zstd", "little", "big", "LOCAL", "missing.raw", "%d.raw", "LIST",
    "True", "False", "1", "3", "-1", "0", "", "1 0 0 0 1 0 0 0 1", "0 0 0 0 0 0 0 0 0",
    "1 0 0 0 0 0 0 0 1", "1e308 0 0", "left-posterior-superior", "right-anterior-superior", "scanner-xyz",
)  # fmt: skip


def _itk_field_edit(data: bytes, base: Base, rng: np.random.Generator) -> tuple[bytes, str]:
    head, body = data[: base.header_bytes], data[base.header_bytes :]
    lines = head.split(b"\n")
    candidates = [i for i, line in enumerate(lines) if line.strip() and not line.startswith(b"#")]
    i = int(rng.choice(candidates))
    sep = b":" if data.startswith(b"NRRD") else b"="
    key = lines[i].split(sep, 1)[0]
    op = rng.choice(("value", "value", "value", "delete", "duplicate"))
    if op == "delete" and i > 0:
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif sep in lines[i]:
        value = str(rng.choice(_ITK_VALUES))
        lines[i] = key + sep + b" " + value.encode()
    return b"\n".join(lines) + body, f"itk:{op}:{key.decode('latin-1').strip()}"


# --------------------------------------------------------------------------- byte mutations

_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x20, 0x5C, 0x2E, 0x2D, 0x30, 0x39, 0x65)


def _region(rng: np.random.Generator, size: int, header: int) -> int:
    if size == 0:
        return 0
    if rng.random() < 0.85:
        return int(rng.integers(0, max(1, min(header, size))))
    return int(rng.integers(0, size))


def _byte_mutation(data: bytes, header: int, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    op = rng.choice(("bitflip", "overwrite", "insert", "delete", "splice", "truncate"))
    n = int(rng.integers(1, 7))
    if op == "truncate" or not buf:
        cut = (
            _region(rng, len(buf), header + 16)
            if rng.random() < 0.7
            else int(rng.integers(0, len(buf) + 1))
        )
        return bytes(buf[:cut]), f"truncate:{cut}"
    positions = sorted(_region(rng, len(buf), header) for _ in range(n))
    if op == "bitflip":
        for p in positions:
            buf[p] ^= 1 << int(rng.integers(8))
    elif op == "overwrite":
        for p in positions:
            buf[p] = int(rng.choice(_BYTES)) if rng.random() < 0.7 else int(rng.integers(256))
    elif op == "insert":
        for p in reversed(positions):
            buf[p:p] = rng.bytes(int(rng.integers(1, 5)))
    elif op == "delete":
        for p in reversed(positions):
            del buf[p : p + int(rng.integers(1, 5))]
    else:
        src, dst, k = (
            _region(rng, len(buf), header),
            _region(rng, len(buf), header),
            int(rng.integers(1, 64)),
        )
        chunk = buf[src : src + k]
        buf[dst : dst + len(chunk)] = chunk
        positions = [src, dst]
    return bytes(buf), f"{op}:{positions}"


def mutate(base: Base, rng: np.random.Generator) -> Case:
    """One mutated input from ``base`` (one to three mutations, format-aware or bytewise)."""
    data = base.files[base.target]
    labels = []
    gz = base.kind == "nifti-gz"
    if gz and rng.random() < 0.6:
        data = gzip.decompress(data)
    for _ in range(int(rng.choice((1, 1, 1, 2, 3)))):
        if rng.random() < 0.5 and len(data) > 16:
            if base.kind.startswith("dicom"):
                data, label = _dicom_field_edit(data, rng)
            elif base.kind.startswith("nifti") and len(data) >= 348 and data[:2] != b"\x1f\x8b":
                data, label = _nifti_field_edit(data, rng)
            elif base.kind.startswith(("nrrd", "mha")):
                data, label = _itk_field_edit(data, base, rng)
            else:
                data, label = _byte_mutation(data, base.header_bytes, rng)
        else:
            header = 64 if data[:2] == b"\x1f\x8b" else base.header_bytes
            data, label = _byte_mutation(data, header, rng)
        labels.append(label)
    if gz and data[:2] != b"\x1f\x8b":
        data = gzip.compress(data, mtime=0)
        labels.append("gzip")
    files = dict(base.files)
    files[base.target] = data
    return Case(base.kind, "; ".join(labels), files, base.target, base.read)


# --------------------------------------------------------------------------- running


def write_case(case: Case, folder: Path) -> Path:
    """Write the case's files into ``folder`` (created); returns the path to read."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    return folder if case.read == "." else folder / case.read


class Hang(BaseException):
    """Raised by the alarm when one read runs past its time limit."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def read_outcome(path: Path, time_limit_s: float, names: tuple[str, ...] = ()) -> Outcome:
    """Read ``path`` with :func:`seldinger.io.read_ct`, stopped after ``time_limit_s``.

    ``names`` are strings of which a project error's message must contain one (the file or
    folder); ``Outcome.names_input`` says whether it did.
    """
    from seldinger.io import read_ct

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit_s)
    start = time.perf_counter()
    try:
        read_ct(path)
        return Outcome("ok", seconds=time.perf_counter() - start)
    except Hang:
        return Outcome(
            "hang", "Hang", f"over {time_limit_s} s", seconds=time.perf_counter() - start
        )
    except SeldingerError as err:
        message = str(err)
        named = not names or any(n in message for n in names)
        return Outcome(
            "project",
            type(err).__name__,
            message,
            seconds=time.perf_counter() - start,
            names_input=named,
        )
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        frames = traceback.extract_tb(err.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        return Outcome(
            "foreign",
            f"{type(err).__module__}.{type(err).__qualname__}",
            str(err)[:300],
            where,
            time.perf_counter() - start,
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
