"""Anatomy: segmentation of body, lungs, airways, bones, vessels, organs and lesions.

>>> from seldinger.anatomy import STRUCTURES
>>> STRUCTURES[:3]
('body', 'lung_left', 'lung_right')
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from seldinger.anatomy.airway_tree import AirwayBranch, AirwayGraph
from seldinger.anatomy.errors import AnatomyError, EngineUnavailableError
from seldinger.anatomy.result import (
    ANATOMY_JSON,
    STRUCTURES,
    Anatomy,
    LazyMasks,
    add_structures,
    check_added_name,
    load_anatomy,
    map_masks,
)
from seldinger.imaging import Volume

if TYPE_CHECKING:
    from seldinger.anatomy.engines import (
        ENGINES,
        ClassicalEngine,
        Engine,
        TotalSegmentatorEngine,
        get_engine,
    )
    from seldinger.anatomy.lesion import Lesion, LesionError, lesion_measurements, segment_lesion
    from seldinger.anatomy.pipeline import ProgressCallback

#: Names read from their module on first use: reading a saved anatomy (``load_anatomy``)
#: must not import every segmentation method (a second of imports for a planner that
#: only reads masks).
_LAZY = {
    "ENGINES": "engines",
    "ClassicalEngine": "engines",
    "Engine": "engines",
    "TotalSegmentatorEngine": "engines",
    "get_engine": "engines",
    "Lesion": "lesion",
    "LesionError": "lesion",
    "lesion_measurements": "lesion",
    "segment_lesion": "lesion",
    "ProgressCallback": "pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"seldinger.anatomy.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seldinger.anatomy' has no attribute {name!r}")


__all__ = [
    "ANATOMY_JSON",
    "ENGINES",
    "STRUCTURES",
    "AirwayBranch",
    "AirwayGraph",
    "Anatomy",
    "AnatomyError",
    "ClassicalEngine",
    "Engine",
    "EngineUnavailableError",
    "LazyMasks",
    "Lesion",
    "LesionError",
    "TotalSegmentatorEngine",
    "add_structures",
    "check_added_name",
    "get_engine",
    "lesion_measurements",
    "load_anatomy",
    "map_masks",
    "segment",
    "segment_lesion",
]


def segment(
    ct: Volume,
    structures: Iterable[str] | None = None,
    *,
    engine: str = "classical",
    modality: str | None = None,
    progress: ProgressCallback | None = None,
) -> Anatomy:
    """Segment the anatomy of a CT: the one call a notebook user needs.

    Parameters
    ----------
    ct : Volume
        CT in Hounsfield units (``seldinger.io.read_ct(path).volume``), any axis-aligned
        orientation; the masks come back in its geometry.
    structures : iterable of str, optional
        Names from :data:`STRUCTURES`; default all.
    engine : str
        ``"classical"`` (default, no model) or ``"totalsegmentator"`` (needs the package and
        its weights installed locally).
    modality : str, optional
        DICOM modality when known (``ct.meta.modality``); anything but CT is refused.
    progress : callable, optional
        ``progress(structure, done, total)`` before each step.

    Returns
    -------
    Anatomy
        Masks, timings, notes, airway graph and vessel radii; ``.save(folder)`` writes them.
    """
    from seldinger.anatomy.engines import get_engine

    chosen = get_engine(engine)
    chosen.check_available()
    return chosen.segment(ct, structures, modality=modality, progress=progress)
