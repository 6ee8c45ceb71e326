"""DICOM Segmentation (SEG) of structure masks on the CT they were drawn on (highdicom).

One binary segment per structure, labelled and coded as in
:mod:`seldinger.export.dicom.codes`; one frame per CT slice that the segment touches
(empty frames are omitted), each frame referencing its CT slice (PS3.3 A.51 Segmentation
IOD, C.8.20 Segmentation Image module).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
from highdicom.sr.coding import CodedConcept
from pydicom.sr.codedict import codes as dicom_codes
from pydicom.sr.coding import Code

import seldinger
from seldinger.export.dicom.codes import StructureCode
from seldinger.export.dicom.common import (
    DEVICE_SERIAL_NUMBER,
    MANUFACTURER,
    MODEL_NAME,
    dicom_date_time,
)
from seldinger.export.dicom.source import SourceSeries
from seldinger.export.dicom.structures import Structure, checked_structures
from seldinger.files import atomic_path
from seldinger.imaging import Volume

__all__ = ["ALGORITHM_FAMILY", "ALGORITHM_NAME", "write_seg"]

logger = logging.getLogger(__name__)

#: Segment Algorithm Name of every segment (PS3.3 C.8.20.2: Type 1C for AUTOMATIC).
ALGORITHM_NAME = "Seldinger"
#: Default Algorithm Family (CID 7162 "Surface Processing Algorithm Families").
ALGORITHM_FAMILY: Code = dicom_codes.cid7162.MorphologicalOperations


def _description(number: int, structure: Structure, family: Code) -> hd.seg.SegmentDescription:
    code = structure.code
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, version=seldinger.__version__, family=family
    )
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=structure.label,
        segmented_property_category=code.category,
        segmented_property_type=code.property_type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=hd.UID(),
        tracking_id=structure.name[:64],
        display_color=hd.color.CIELabColor.from_rgb(*code.colour_rgb),
    )
    if code.modifier is not None:
        type_item = description.SegmentedPropertyTypeCodeSequence[0]
        type_item.SegmentedPropertyTypeModifierCodeSequence = [
            CodedConcept(
                code.modifier.value, code.modifier.scheme_designator, code.modifier.meaning
            )
        ]
    return description


def _overlap(a: Structure, b: Structure) -> bool:
    """Whether two structures share a voxel (tested on their boxes' intersection only)."""
    box = tuple(
        slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a.box, b.box, strict=True)
    )
    if any(s.stop <= s.start for s in box):
        return False
    return bool(np.any(a.mask[box] & b.mask[box]))


def _frames(structures: list[Structure]) -> tuple[range, npt.NDArray[Any]]:
    """The run of k-planes from the first to the last that holds a structure, and the
    frames for highdicom on them.

    highdicom takes (frames, rows, columns): rows run along j, columns along i, so each
    mask is transposed, on its bounding box only. Empty frames inside the run are
    omitted by highdicom. Without overlaps the frames are one label map (segment n =
    value n): 1/S the memory of a stack of S binary planes and only a max() to check.
    With overlaps (a lesion inside its organ) they are that stack, (frames, rows, columns,
    S) booleans, laid out segment-major in memory (a view of an (S, frames, rows, columns)
    array): each segment's frame is contiguous, and highdicom's overlap test, a sum over
    the segment axis, adds S contiguous blocks instead of reducing 10⁸ runs of length S.
    """
    k0 = min(s.box[2].start for s in structures)
    k1 = max(s.box[2].stop for s in structures)
    ni, nj = structures[0].mask.shape[:2]
    overlapping = any(_overlap(a, b) for n, a in enumerate(structures) for b in structures[n + 1 :])
    dtype = np.uint8 if len(structures) < 256 else np.uint16
    shape = (k1 - k0, nj, ni)
    out = np.zeros(
        (len(structures), *shape) if overlapping else shape, dtype=bool if overlapping else dtype
    )
    for n, s in enumerate(structures):
        bi, bj, bk = s.box
        frames = (slice(bk.start - k0, bk.stop - k0), bj, bi)
        sub = s.mask[s.box].transpose(2, 1, 0)
        if overlapping:
            out[n][frames] = sub
        else:
            np.copyto(out[frames], dtype(n + 1), where=sub)
    return range(k0, k1), (np.moveaxis(out, 0, -1) if overlapping else out)


def write_seg(
    masks: Mapping[str, Volume],
    series: SourceSeries,
    path: str | os.PathLike[str],
    *,
    codes: Mapping[str, StructureCode] | None = None,
    algorithm_family: Code = ALGORITHM_FAMILY,
    series_description: str = "Segmentation (Seldinger)",
    series_number: int = 300,
    moment: datetime | None = None,
    force: bool = False,
) -> Path:
    """Write structure masks as one DICOM SEG file referencing the CT series, atomically.

    Parameters
    ----------
    masks : mapping of str to Volume
        Structure name → mask (non-zero inside) on the CT grid of ``series``.
    series : SourceSeries
        The CT (:func:`read_source_series` or :func:`write_ct_series`).
    path : str or PathLike
        Output file (``.dcm``).
    codes : mapping of str to StructureCode, optional
        Codes for names that :func:`structure_code` does not know, or to override it.
    algorithm_family : Code
        How the masks were made (CID 7162): by default Seldinger's own segmentation
        (thresholds and morphology); ``codes.cid7162.ArtificialIntelligence`` for model
        output, ``ManualProcessing`` for hand-drawn masks.
    series_description, series_number : str, int
        Of the new SEG series.
    moment : datetime, optional
        Content date and time (default: now).
    force : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DicomExportError
        If a mask is empty or not on the series grid (nothing is written).
    """
    structures = checked_structures(masks, series, codes)
    planes, labels = _frames(structures)
    plane_positions = [
        hd.PlanePositionSequence(
            hd.CoordinateSystemNames.PATIENT,
            [float(v) for v in series.datasets[k].ImagePositionPatient],
        )
        for k in planes
    ]
    descriptions = [_description(n + 1, s, algorithm_family) for n, s in enumerate(structures)]
    seg = hd.seg.Segmentation(
        source_images=list(series.datasets),
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL_NAME,
        software_versions=seldinger.__version__,
        device_serial_number=DEVICE_SERIAL_NUMBER,
        series_description=series_description,
        plane_positions=plane_positions,
        omit_empty_frames=True,
    )
    if moment is not None:  # highdicom stamps "now"; a given moment replaces it
        date, time = dicom_date_time(moment)
        for keyword, value in (
            ("ContentDate", date),
            ("ContentTime", time),
            ("SeriesDate", date),
            ("SeriesTime", time),
        ):
            setattr(seg, keyword, value)
    target = Path(path)
    with atomic_path(target, force=force) as tmp:
        seg.save_as(tmp)
    logger.info("wrote SEG with %d segments to %s", len(structures), target)
    return target
