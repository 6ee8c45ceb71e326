"""A CT as read from disk: voxels in HU on an LPS grid, plus what the header said."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from seldinger.imaging import Volume

__all__ = ["Ct", "CtMeta"]


@dataclass(frozen=True)
class CtMeta:
    """Identity and acquisition facts of a CT (None where the source does not say)."""

    source_path: str
    format: str  # "dicom", "nifti", "nrrd", "metaimage"
    modality: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    series_description: str | None = None
    kvp: float | None = None
    kernel: str | None = None
    slice_thickness_mm: float | None = None
    manufacturer: str | None = None
    model: str | None = None
    patient_position: str | None = None
    patient_id: str | None = None
    frame_of_reference_uid: str | None = None
    n_files: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (without the patient ID: it is compared, never printed)."""
        out = asdict(self)
        out.pop("patient_id")
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True, eq=False)
class Ct:
    """A CT: ``volume`` holds Hounsfield units on an LPS grid; ``meta`` what the header said."""

    volume: Volume
    meta: CtMeta

    def summary(self) -> dict[str, Any]:
        """Geometry and intensity summary (what ``seldinger info --json`` prints)."""
        v = self.volume
        array = v.array
        return {
            "source": self.meta.source_path,
            "format": self.meta.format,
            "shape": list(v.shape),
            "spacing_mm": [round(s, 6) for s in v.spacing_mm],
            "affine": [[float(x) for x in row] for row in v.affine],
            "orientation": v.orientation,
            "origin_lps_mm": [float(x) for x in v.origin_lps_mm],
            "dtype": str(array.dtype),
            "hu_min": float(np.min(array)),
            "hu_max": float(np.max(array)),
            **{
                k: val
                for k, val in self.meta.to_dict().items()
                if k not in ("source_path", "format")
            },
        }
