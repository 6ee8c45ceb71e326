"""DICOM Spatial Registration of a tracker frame to the CT: the rigid ``tracker_to_ct``.

Direction (PS3.3 C.20.2.1.1, PS3.17 O.1): the Frame of Reference module of a Spatial
Registration instance establishes the **Registered RCS**; each Registration Sequence item
names, by its FrameOfReferenceUID, a **Source RCS**, and its Frame of Reference
Transformation Matrix ``ᴬM_B`` "describes how to transform a point (Bx, By, Bz) with respect
to RCS_B into (Ax, Ay, Az) with respect to RCS_A", A the registered and B the source RCS.
Here the registered RCS is the CT's Frame of Reference and the source RCS the tracker's,
so the matrix stored is exactly ``tracker_to_ct`` (maps tracker points into CT LPS mm),
row-major. A first item gives the CT's own frame the identity and references its images
(the Common Instance Reference module lists them too).

Modules (PS3.3 A.39.1 Spatial Registration IOD): Patient, General Study (the CT's), General
Series, Spatial Registration Series (Modality REG), Frame of Reference (the CT's), General
Equipment, Spatial Registration (C.20.2), Common Instance Reference (C.12.2), SOP Common.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import SpatialRegistrationStorage, generate_uid

from seldinger.export.dicom.common import ds_texts, frame_of_reference, new_instance, save_dataset
from seldinger.export.dicom.errors import DicomExportError
from seldinger.export.dicom.source import SourceSeries

__all__ = ["RIGID_TOLERANCE", "FrameRegistration", "read_registration", "write_registration"]

logger = logging.getLogger(__name__)

#: |RᵀR − I| and |det R − 1| must stay below this for a RIGID matrix (a fit in float64
#: meets it by orders of magnitude; a float32 round trip or a scaled matrix does not).
RIGID_TOLERANCE = 1e-6
#: A DICOM UID (PS3.5 9.1): numeric components without leading zeros, joined by dots.
_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


@dataclass(frozen=True, eq=False)
class FrameRegistration:
    """One registration read back: points of ``source_frame_uid`` into the registered frame."""

    source_frame_uid: str
    registered_frame_uid: str
    source_to_registered: npt.NDArray[np.float64]


def _checked_rigid(tracker_to_ct: npt.ArrayLike) -> npt.NDArray[np.float64]:
    matrix = np.asarray(tracker_to_ct, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise DicomExportError(
            f"tracker_to_ct must be a finite 4x4 matrix; got shape {matrix.shape}."
        )
    rotation = matrix[:3, :3]
    orthonormal_error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    det = float(np.linalg.det(rotation))
    if (
        not np.array_equal(matrix[3], [0.0, 0.0, 0.0, 1.0])
        or orthonormal_error > RIGID_TOLERANCE
        or abs(det - 1.0) > RIGID_TOLERANCE
    ):
        raise DicomExportError(
            "tracker_to_ct is not rigid (rotation + translation): |RᵀR − I| = "
            f"{orthonormal_error:.2e}, det R = {det:.6f}, last row {matrix[3].tolist()} "
            f"(need < {RIGID_TOLERANCE:g}, 1, [0, 0, 0, 1]). A Spatial Registration of type "
            "RIGID holds no scaling, shear or reflection: fit a rigid transform "
            "(seldinger.navigation.registration) or orthonormalise the rotation."
        )
    return matrix


def _matrix_item(matrix: npt.NDArray[np.float64], comment: str) -> Dataset:
    transform = Dataset()
    transform.FrameOfReferenceTransformationMatrix = ds_texts(matrix.ravel())  # row-major
    transform.FrameOfReferenceTransformationMatrixType = "RIGID"
    registration = Dataset()
    registration.FrameOfReferenceTransformationComment = comment
    registration.RegistrationTypeCodeSequence = []
    registration.MatrixSequence = [transform]
    return registration


def write_registration(
    tracker_to_ct: npt.ArrayLike,
    series: SourceSeries,
    path: str | os.PathLike[str],
    *,
    tracker_frame_uid: str | None = None,
    description: str = "Tracker to CT (rigid)",
    series_description: str = "Registration (Seldinger)",
    series_number: int = 304,
    moment: datetime | None = None,
    force: bool = False,
) -> Path:
    """Write a rigid tracker → CT transform as a DICOM Spatial Registration, atomically.

    Parameters
    ----------
    tracker_to_ct : array_like, shape (4, 4)
        Maps tracker points (mm) into CT LPS mm: ``p_ct = tracker_to_ct @ p_tracker``.
    series : SourceSeries
        The CT (its Frame of Reference is the registered frame).
    path : str or PathLike
        Output file.
    tracker_frame_uid : str, optional
        FrameOfReferenceUID of the tracker frame (default: a new one; read it back with
        :func:`read_registration`).
    description : str
        ContentDescription and the matrix's FrameOfReferenceTransformationComment.
    series_description, series_number : str, int
        Of the new REG series.
    moment : datetime, optional
        Content date/time (default: now).
    force : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DicomExportError
        If the matrix is not a finite rigid transform (nothing is written).
    """
    matrix = _checked_rigid(tracker_to_ct)
    if tracker_frame_uid is not None and not (
        len(tracker_frame_uid) <= 64 and _UID_PATTERN.fullmatch(tracker_frame_uid)
    ):
        raise DicomExportError(
            f"tracker_frame_uid {tracker_frame_uid!r} is not a valid DICOM UID (digits and "
            "dots, at most 64 characters); leave it out to get a new one."
        )
    ds = new_instance(
        series.reference,
        SpatialRegistrationStorage,
        "REG",
        series_description,
        series_number,
        moment,
    )
    frame_of_reference(ds, series)
    # General Series Laterality is Type 2C (paired body part): the CT's, else empty (unknown)
    ds.Laterality = series.reference.get("Laterality", None)
    ds.ContentLabel = "TRACKER_TO_CT"
    ds.ContentDescription = description[:64]
    ds.ContentCreatorName = None
    images = []
    for slice_ds in series.datasets:
        ref = Dataset()
        ref.ReferencedSOPClassUID = slice_ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = slice_ds.SOPInstanceUID
        images.append(ref)
    ct_item = Dataset()
    ct_item.FrameOfReferenceUID = series.frame_of_reference_uid
    ct_item.ReferencedImageSequence = images
    ct_item.MatrixRegistrationSequence = [_matrix_item(np.eye(4), "CT frame (identity)")]
    tracker_item = Dataset()
    tracker_item.FrameOfReferenceUID = tracker_frame_uid or generate_uid()
    tracker_item.MatrixRegistrationSequence = [_matrix_item(matrix, description[:64])]
    ds.RegistrationSequence = [ct_item, tracker_item]
    # Common Instance Reference (C.12.2): the CT images referenced above
    instances = []
    for slice_ds in series.datasets:
        ref = Dataset()
        ref.ReferencedSOPClassUID = slice_ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = slice_ds.SOPInstanceUID
        instances.append(ref)
    referenced_series = Dataset()
    referenced_series.SeriesInstanceUID = series.series_uid
    referenced_series.ReferencedInstanceSequence = instances
    ds.ReferencedSeriesSequence = [referenced_series]
    target = save_dataset(ds, path, force=force)
    logger.info(
        "wrote Spatial Registration (tracker %s) to %s", tracker_item.FrameOfReferenceUID, target
    )
    return target


def read_registration(path: str | os.PathLike[str]) -> list[FrameRegistration]:
    """Every registration item of a Spatial Registration file (matrices composed in order).

    Raises
    ------
    DicomExportError
        If the file is not a Spatial Registration.
    """
    ds = pydicom.dcmread(path)
    if ds.get("SOPClassUID") != SpatialRegistrationStorage:
        raise DicomExportError(f"{path} is not a Spatial Registration.")
    out = []
    for item in ds.RegistrationSequence:
        matrix = np.eye(4)
        # Equation C.20.2-2: M = M1 · M2 · … (items in multiplication order)
        for transform in item.MatrixRegistrationSequence[0].MatrixSequence:
            values = [float(v) for v in transform.FrameOfReferenceTransformationMatrix]
            matrix = matrix @ np.array(values).reshape(4, 4)
        out.append(
            FrameRegistration(str(item.FrameOfReferenceUID), str(ds.FrameOfReferenceUID), matrix)
        )
    return out
