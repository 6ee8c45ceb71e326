"""Decoding DICOM pixel data to stored values, one file at a time.

Uncompressed little-endian data is viewed straight from the file's bytes (the
fast path: no intermediate copies). Everything else goes through pydicom's
pixel handlers, which use the installed pylibjpeg plugins (JPEG baseline and
lossless, JPEG-LS, JPEG 2000, RLE) and, if they cannot, through SimpleITK's
GDCM. A file that no decoder reads gives a :class:`DicomReadError` naming the
file, its transfer syntax and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from seldinger.io.dicom_header import (
    DAMAGED_FIX,
    HeaderNotes,
    PixelLayout,
    header_number,
    pixel_layout,
    pydicom_calls,
    read_dataset,
)
from seldinger.io.errors import DicomReadError
from seldinger.io.limits import reason
from seldinger.io.native import is_decoder_failure, last_line, native_stderr

__all__ = ["read_stored_pixels"]

logger = logging.getLogger(__name__)

_LITTLE_ENDIAN_NATIVE = {
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
}


def _fast_native(data: bytes, layout: PixelLayout) -> npt.NDArray[Any]:
    """View native little-endian data without copying (the length was checked)."""
    bits_allocated = layout.bits_allocated
    dtype = np.dtype(f"<{'i' if layout.signed else 'u'}{bits_allocated // 8}")
    count = layout.rows * layout.columns * layout.n_frames
    pixels = np.frombuffer(data, dtype=dtype, count=count)
    pixels = pixels.reshape(layout.n_frames, layout.rows, layout.columns)
    if layout.bits_stored < bits_allocated:
        # PS3.5 8.1.1: bits above BitsStored are not part of the value (may hold overlays)
        shift = bits_allocated - layout.bits_stored
        if layout.signed:
            pixels = (pixels << shift) >> shift  # sign-extend from BitsStored
        else:
            pixels = pixels & dtype.type((1 << layout.bits_stored) - 1)
    return pixels


def read_stored_pixels(path: Path, n_frames: int = 1) -> npt.NDArray[Any]:
    """Stored pixel values of a file, shape (frames, rows, columns), before rescaling.

    Raises
    ------
    DicomReadError
        If the file is damaged or truncated, its header does not describe a grayscale
        image of ``n_frames`` frames, or no installed decoder supports its transfer syntax.
    """
    notes = HeaderNotes()
    with pydicom_calls(str(path), notes):
        ds = read_dataset(path, stop_before_pixels=False)
        layout = pixel_layout(ds, str(path), path.stat().st_size)
        if layout.n_frames != n_frames:
            raise DicomReadError(
                f"{path}: NumberOfFrames is {layout.n_frames}, but {n_frames} when the folder was "
                "scanned; the file changed while it was read. Read it again."
            )
        if "PixelData" not in ds:
            raise DicomReadError(
                f"{path}: has no pixel data (truncated or not an image). {DAMAGED_FIX}"
            )
        data = ds.PixelData
        if str(layout.transfer_syntax) in _LITTLE_ENDIAN_NATIVE:
            if not isinstance(data, bytes) or len(data) < layout.pixel_bytes:
                size = len(data) if isinstance(data, bytes) else 0
                raise DicomReadError(
                    f"{path}: pixel data truncated ({size} of {layout.pixel_bytes} bytes). The "
                    "file is damaged; copy it again from the archive or remove the slice and use "
                    "--resample."
                )
            return _fast_native(data, layout)
        pixels = _decoded_pixels(ds, path, layout)
    for note in notes.as_notes():
        logger.info("%s", note)
    return pixels


def _decoded_pixels(ds: Dataset, path: Path, layout: PixelLayout) -> npt.NDArray[Any]:
    """Pixels through pydicom's handlers, else SimpleITK/GDCM (call inside pydicom_calls).

    The decoders are native code (Rust, C, C++): their stderr is captured and a Rust panic
    counts as a decoding failure (:mod:`seldinger.io.native`).
    """
    syntax = layout.transfer_syntax
    gdcm_err: BaseException | None = None
    with native_stderr() as noise:
        pixels, err = _attempt(lambda: ds.pixel_array)
        if err is not None:
            logger.debug("pydicom could not decode %s (%s); trying GDCM", path, err)
            pixels, gdcm_err = _attempt(lambda: _gdcm_stored(path, ds))
    if err is not None and gdcm_err is not None:
        name = getattr(syntax, "name", str(syntax))
        gdcm_said = last_line(str(gdcm_err).splitlines()) or last_line(noise) or "nothing"
        raise DicomReadError(
            f"{path}: cannot decode transfer syntax {syntax} ({name}): pydicom said "
            f"{reason(err):.120}; GDCM said {gdcm_said:.120}. The file is damaged, or install "
            "the matching plugin (pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle) or "
            "convert the files to an uncompressed syntax, e.g. `gdcmconv --raw IN OUT` or "
            "`dcmdjpeg IN OUT`."
        ) from err
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.shape != (layout.n_frames, layout.rows, layout.columns):
        raise DicomReadError(
            f"{path}: decoded pixel data has shape {pixels.shape}, expected "
            f"({layout.n_frames}, {layout.rows}, {layout.columns}); the file is damaged or not "
            "grayscale."
        )
    if pixels.dtype.kind not in "iu":
        raise DicomReadError(
            f"{path}: decoded pixel data is {pixels.dtype}, not integers; the file is damaged."
        )
    return pixels


def _attempt(
    decode: Callable[[], npt.NDArray[Any]],
) -> tuple[npt.NDArray[Any] | None, BaseException | None]:
    """(pixels, None) or (None, the decoder's failure); interrupts propagate."""
    try:
        return decode(), None
    except BaseException as err:
        if not is_decoder_failure(err):
            raise
        return None, err


def _gdcm_stored(path: Path, ds: Dataset) -> npt.NDArray[Any]:
    """Stored values through SimpleITK/GDCM (it returns rescaled values; undo the rescale)."""
    import SimpleITK as sitk  # local: only when pydicom's plugins fail

    slope = header_number(ds, "RescaleSlope", str(path), 1.0, nonzero=True) or 1.0
    intercept = header_number(ds, "RescaleIntercept", str(path), 0.0) or 0.0
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    image = reader.Execute()
    rescaled = sitk.GetArrayFromImage(image).astype(np.float64)
    rescaled = rescaled.reshape(-1, image.GetHeight(), image.GetWidth())
    return np.rint((rescaled - intercept) / slope).astype(np.int32)
