"""The voxel grid of a stack of DICOM slices, checked so that geometry is never guessed.

Slices are ordered by ImagePositionPatient projected on the slice normal
(PS3.3 C.7.6.2.1.1), never by file name or InstanceNumber. The stack must be
one orientation, equally spaced, without duplicates or gaps, and not sheared
(gantry tilt); otherwise a :class:`DicomReadError` names the defect and the fix,
or — when the caller asks for it — the slices are resampled onto a uniform
orthogonal grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from seldinger.io.dicom_scan import DicomFrame
from seldinger.io.errors import DicomReadError

__all__ = ["StackGeometry", "resample_stack", "stack_geometry"]

#: Direction cosines of all slices must agree to this (DICOM decimal strings).
ORIENTATION_TOLERANCE = 1e-4
#: Two slices closer than this along the normal are at the same position.
DUPLICATE_TOLERANCE_MM = 1e-3
#: Slice spacing counts as uniform within max(this, SPACING_RELATIVE_TOLERANCE × spacing)
#: (IPP strings carry ~1e-3 mm of rounding; Slicer's DICOM loader uses a similar bound).
SPACING_TOLERANCE_MM = 1e-2
SPACING_RELATIVE_TOLERANCE = 1e-2
#: In-plane drift of IPP beyond this means a sheared (gantry-tilted) stack.
SHEAR_TOLERANCE_MM = 1e-2
#: Value for voxels outside every source slice when resampling (air).
RESAMPLE_FILL_HU = -1024.0


@dataclass(frozen=True)
class StackGeometry:
    """Sorted frames and the grid they are read onto."""

    frames: list[DicomFrame]  # sorted along the slice normal
    positions_mm: npt.NDArray[np.float64]  # each frame's IPP projected on the normal
    affine: npt.NDArray[np.float64]  # index (i, j, k) → LPS mm of the output grid
    shape: tuple[int, int, int]
    needs_resampling: bool
    notes: tuple[str, ...]


def _describe(frame: DicomFrame, position_mm: float) -> str:
    return f"{frame.label} (at {position_mm:.3f} mm)"


def stack_geometry(frames: list[DicomFrame], resample: bool = False) -> StackGeometry:
    """Sort slices, check them and build the output grid.

    Parameters
    ----------
    frames : list of DicomFrame
        The images of one series, in any order.
    resample : bool
        When the stack is unequally spaced, has gaps or is sheared, resample it
        onto a uniform orthogonal grid instead of raising.

    Raises
    ------
    DicomReadError
        Differing orientations, matrix sizes or pixel spacings; duplicate
        positions; and — unless ``resample`` — missing slices, uneven spacing,
        gantry tilt.
    """
    notes: list[str] = []
    first = frames[0]
    for name, attr in (("matrix size", "rows"), ("matrix size", "columns")):
        odd = [f for f in frames if getattr(f, attr) != getattr(first, attr)]
        if odd:
            raise DicomReadError(
                f"slices differ in {name}: {first.label} is {first.rows}x{first.columns}, "
                f"{odd[0].label} is {odd[0].rows}x{odd[0].columns}. They are not one volume; "
                "separate the series (or pick one with --series)."
            )
    iop0 = np.asarray(first.orientation)
    for f in frames:
        if np.abs(np.asarray(f.orientation) - iop0).max() > ORIENTATION_TOLERANCE:
            raise DicomReadError(
                f"slices with differing orientation: {first.label} has ImageOrientationPatient "
                f"{list(first.orientation)}, {f.label} has {list(f.orientation)}. They are not one "
                "stack; remove the odd slices or pick one series with --series."
            )
        if np.abs(np.asarray(f.pixel_spacing_mm) - first.pixel_spacing_mm).max() > 1e-4:
            raise DicomReadError(
                f"slices with differing PixelSpacing: {first.label} {list(first.pixel_spacing_mm)} "
                f"mm, {f.label} {list(f.pixel_spacing_mm)} mm. Pick one series with --series."
            )
    row = iop0[:3] / np.linalg.norm(iop0[:3])
    col = iop0[3:] / np.linalg.norm(iop0[3:])
    if (
        abs(float(row @ col)) > ORIENTATION_TOLERANCE
        or min(np.linalg.norm(iop0[:3]), np.linalg.norm(iop0[3:])) < 0.99
    ):
        raise DicomReadError(
            f"{first.label}: ImageOrientationPatient {list(first.orientation)} is not two "
            "orthogonal unit vectors; the header is corrupt."
        )
    normal = np.cross(row, col)
    ipp = np.array([f.position_lps_mm for f in frames], dtype=np.float64)
    s = ipp @ normal
    order = np.argsort(s, kind="stable")
    frames = [frames[n] for n in order]
    ipp, s = ipp[order], s[order]

    # identical SOP instances (the same file copied twice) are dropped; other duplicates are errors
    keep = [0]
    for n in range(1, len(frames)):
        if abs(s[n] - s[keep[-1]]) < DUPLICATE_TOLERANCE_MM:
            if frames[n].sop_instance_uid == frames[keep[-1]].sop_instance_uid:
                notes.append(f"ignored {frames[n].label}: a copy of {frames[keep[-1]].label}")
                continue
            raise DicomReadError(
                f"duplicate slice position: {frames[keep[-1]].label} and {frames[n].label} are both "
                f"at {s[n]:.3f} mm along the slice normal. Remove one of them (or the series mixed "
                "into this folder), or pick one series with --series."
            )
        keep.append(n)
    frames = [frames[n] for n in keep]
    ipp, s = ipp[keep], s[keep]

    dy, dx = first.pixel_spacing_mm  # PixelSpacing = (between rows, between columns)
    if min(dx, dy) <= 0:
        raise DicomReadError(f"{first.label}: PixelSpacing {[dy, dx]} must be positive.")
    shape_ij = (first.columns, first.rows)
    n_slices = len(frames)
    needs_resampling = False

    if n_slices == 1:
        thickness = _single_slice_spacing(frames[0])
        affine = _affine(row * dx, col * dy, normal * thickness, ipp[0])
        notes.append(f"single slice: slice spacing taken from SliceThickness ({thickness} mm)")
        return StackGeometry(frames, s, affine, (*shape_ij, 1), False, tuple(notes))

    steps = np.diff(s)
    spacing = float(np.median(steps))
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_RELATIVE_TOLERANCE * spacing)
    problems: list[str] = []
    uneven = np.abs(steps - spacing) > tolerance
    if uneven.any():
        for n in np.flatnonzero(uneven)[:3]:
            ratio = steps[n] / spacing
            if ratio > 1.5 and abs(ratio - round(ratio)) * spacing <= tolerance:
                problems.append(
                    f"missing slice(s): gap of {steps[n]:.2f} mm between "
                    f"{_describe(frames[n], s[n])} and {_describe(frames[n + 1], s[n + 1])} where "
                    f"the series spacing is {spacing:.2f} mm ({round(ratio) - 1} slice(s) missing)"
                )
            else:
                problems.append(
                    f"uneven slice spacing: {steps[n]:.3f} mm between "
                    f"{_describe(frames[n], s[n])} and {_describe(frames[n + 1], s[n + 1])}, "
                    f"{spacing:.3f} mm elsewhere"
                )
        if uneven.sum() > 3:
            problems.append(f"… {int(uneven.sum())} irregular steps in all")
    drift = ipp - ipp[0] - np.outer(s - s[0], normal)
    drift_mm = float(np.linalg.norm(drift, axis=1).max())
    tilt = max((abs(f.gantry_tilt_deg) for f in frames), default=0.0)
    if drift_mm > SHEAR_TOLERANCE_MM:
        problems.append(
            f"gantry tilt / sheared stack: slice positions drift {drift_mm:.2f} mm sideways over the "
            f"stack (GantryDetectorTilt {tilt:g}°), so the voxel grid is not orthogonal"
        )
    if problems:
        if not resample:
            raise DicomReadError(
                "; ".join(problems)
                + ". Add the missing files if they exist, or pass --resample (resample=True) to "
                "interpolate the slices onto a uniform orthogonal grid."
            )
        needs_resampling = True
        n_out = round((s[-1] - s[0]) / spacing) + 1
        spacing = float((s[-1] - s[0]) / (n_out - 1))
        notes.append(
            "resampled onto a uniform orthogonal grid (linear, "
            f"{n_out} slices {spacing:.3f} mm apart) because of: " + "; ".join(problems)
        )
        n_slices = n_out
    elif tilt > 0.0:
        notes.append(
            f"GantryDetectorTilt {tilt:g}° but the slice positions are not sheared; read as is"
        )
    else:
        spacing = float((s[-1] - s[0]) / (n_slices - 1))
    affine = _affine(row * dx, col * dy, normal * spacing, ipp[0])
    return StackGeometry(frames, s, affine, (*shape_ij, n_slices), needs_resampling, tuple(notes))


def _single_slice_spacing(frame: DicomFrame) -> float:
    thickness = frame.thickness_mm
    if thickness is None or thickness <= 0:
        raise DicomReadError(
            f"{frame.label} is a single slice without SliceThickness, so the voxel size along the "
            "slice normal is unknown. Load the whole series."
        )
    return thickness


def _affine(
    i_mm: npt.NDArray[np.float64],
    j_mm: npt.NDArray[np.float64],
    k_mm: npt.NDArray[np.float64],
    origin: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = i_mm, j_mm, k_mm, origin
    return affine


def resample_stack(
    slices_kji: npt.NDArray[np.float32], geometry: StackGeometry
) -> npt.NDArray[np.float32]:
    """Interpolate sorted source slices onto the uniform orthogonal grid of ``geometry``.

    Parameters
    ----------
    slices_kji : ndarray, shape (n_frames, rows, columns)
        HU of the sorted source frames (row index runs along j, column along i).
    geometry : StackGeometry
        From :func:`stack_geometry` with ``needs_resampling``.

    Returns
    -------
    ndarray, shape (K, rows, columns)
        Output slices, linear along the normal and in-plane; voxels outside every
        source slice get :data:`RESAMPLE_FILL_HU`.

    Notes
    -----
    The target slices are parallel to the source slices, so each target voxel lies
    on the line between two source slices; within each source slice the target
    point is a pure in-plane shift of the pixel grid. That reduces a 3-D resampling
    to two 2-D shifts and one blend per output slice.
    """
    affine = geometry.affine
    i_mm, j_mm, k_mm = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    dx, dy = np.linalg.norm(i_mm), np.linalg.norm(j_mm)
    row, col = i_mm / dx, j_mm / dy
    n_out = geometry.shape[2]
    s = geometry.positions_mm
    ipp = np.array([f.position_lps_mm for f in geometry.frames])
    out = np.empty((n_out, *slices_kji.shape[1:]), dtype=np.float32)
    for k in range(n_out):
        point0 = affine[:3, 3] + k * k_mm  # target voxel (0, 0, k)
        t = float(point0 @ np.cross(row, col))
        b = int(np.clip(np.searchsorted(s, t), 1, len(s) - 1))
        a = b - 1
        w = float(np.clip((t - s[a]) / (s[b] - s[a]), 0.0, 1.0))
        blend = np.zeros(slices_kji.shape[1:], dtype=np.float32)
        for index, weight in ((a, 1.0 - w), (b, w)):
            if weight == 0.0:
                continue
            offset = point0 - ipp[index]
            shift_rows = float(offset @ col) / dy  # along j (rows)
            shift_cols = float(offset @ row) / dx  # along i (columns)
            shifted = ndimage.shift(
                slices_kji[index],
                (-shift_rows, -shift_cols),
                order=1,
                mode="constant",
                cval=RESAMPLE_FILL_HU,
            )
            blend += np.float32(weight) * shifted
        out[k] = blend
    return out
