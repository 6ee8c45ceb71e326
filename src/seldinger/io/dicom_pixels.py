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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from seldinger.io.errors import DicomReadError

__all__ = ["read_stored_pixels"]

logger = logging.getLogger(__name__)

_NATIVE_LITTLE_ENDIAN = {
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
}


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(uid)) if uid else UID("1.2.840.10008.1.2")


def _fast_native(ds: Dataset, path: Path, n_frames: int) -> npt.NDArray[Any] | None:
    """View native little-endian data without copying; None when the layout needs pydicom."""
    bits_allocated = int(ds.BitsAllocated)
    if int(ds.get("SamplesPerPixel", 1)) != 1 or bits_allocated not in (8, 16, 32):
        return None
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    expected = rows * cols * n_frames * dtype.itemsize
    data = ds.PixelData
    if len(data) < expected:
        raise DicomReadError(
            f"{path}: pixel data truncated ({len(data)} of {expected} bytes). The file is "
            "damaged; copy it again from the archive or remove the slice and use --resample."
        )
    pixels = np.frombuffer(data, dtype=dtype, count=rows * cols * n_frames)
    pixels = pixels.reshape(n_frames, rows, cols)
    bits_stored = int(ds.get("BitsStored", bits_allocated))
    if bits_stored < bits_allocated:
        # PS3.5 8.1.1: bits above BitsStored are not part of the value (may hold overlays)
        shift = bits_allocated - bits_stored
        if signed:
            pixels = (pixels << shift) >> shift  # sign-extend from BitsStored
        else:
            pixels = pixels & dtype.type((1 << bits_stored) - 1)
    return pixels


def read_stored_pixels(path: Path, n_frames: int = 1) -> npt.NDArray[Any]:
    """Stored pixel values of a file, shape (frames, rows, columns), before rescaling.

    Raises
    ------
    DicomReadError
        If the file is truncated or no installed decoder supports its transfer syntax.
    """
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # pydicom raises many types for damaged files
        raise DicomReadError(
            f"{path}: cannot be read as DICOM ({err}). The file is damaged."
        ) from err
    if "PixelData" not in ds:
        raise DicomReadError(f"{path}: has no pixel data (truncated or not an image).")
    syntax = _transfer_syntax(ds)
    if syntax in _NATIVE_LITTLE_ENDIAN:
        fast = _fast_native(ds, path, n_frames)
        if fast is not None:
            return fast
    try:
        pixels = ds.pixel_array
    except Exception as err:  # plugins raise RuntimeError, ValueError, NotImplementedError …
        logger.debug("pydicom could not decode %s (%s); trying GDCM", path, err)
        try:
            pixels = _gdcm_stored(path, ds)
        except Exception as gdcm_err:
            name = getattr(syntax, "name", str(syntax))
            raise DicomReadError(
                f"{path}: cannot decode transfer syntax {syntax} ({name}): pydicom said "
                f"{err!s:.120}; GDCM said {gdcm_err!s:.120}. Install the matching plugin "
                "(pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle) or convert the files to "
                "an uncompressed syntax, e.g. `gdcmconv --raw IN OUT` or `dcmdjpeg IN OUT`."
            ) from err
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.shape != (n_frames, int(ds.Rows), int(ds.Columns)):
        raise DicomReadError(
            f"{path}: decoded pixel data has shape {pixels.shape}, expected "
            f"({n_frames}, {ds.Rows}, {ds.Columns}); the file is damaged or not grayscale."
        )
    return pixels


def _gdcm_stored(path: Path, ds: Dataset) -> npt.NDArray[Any]:
    """Stored values through SimpleITK/GDCM (it returns rescaled values; undo the rescale)."""
    import SimpleITK as sitk  # local: only when pydicom's plugins fail

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    image = reader.Execute()
    rescaled = sitk.GetArrayFromImage(image).astype(np.float64)
    rescaled = rescaled.reshape(-1, image.GetHeight(), image.GetWidth())
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return np.rint((rescaled - intercept) / slope)
