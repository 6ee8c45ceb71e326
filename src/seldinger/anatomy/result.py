"""The result of segmentation: masks in the CT's geometry, timings, notes; saved as a folder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seldinger import __version__
from seldinger.anatomy.airway_tree import AirwayGraph
from seldinger.anatomy.errors import AnatomyError
from seldinger.files import atomic_dir
from seldinger.imaging import Volume

__all__ = ["ANATOMY_JSON", "STRUCTURES", "Anatomy", "load_anatomy"]

#: Every structure the anatomy step knows, in the order they are reported.
STRUCTURES: tuple[str, ...] = (
    "body",
    "lung_left",
    "lung_right",
    "airways",
    "bones",
    "mediastinum",
    "vessels",
    "emphysema",
    "liver",
)
#: Name of the summary file in an anatomy folder.
ANATOMY_JSON = "anatomy.json"
_GRAPH_JSON = "airway_graph.json"
_RADIUS_FILE = "vessel_radius_mm.nii.gz"


@dataclass(frozen=True)
class Anatomy:
    """Segmented structures of one CT.

    Attributes
    ----------
    masks : mapping of str to Volume
        Bool masks in the CT's geometry, keyed by structure name (:data:`STRUCTURES`).
        A structure the CT does not show (the liver on a chest CT that stops above it) is
        absent, with a note.
    seconds : mapping of str to float
        Wall time spent on each structure.
    engine : str
        Back-end that produced the masks (``classical``, ``totalsegmentator``).
    notes : tuple of str
        What the user should know (anatomy out of view, fallbacks taken).
    airway_graph : AirwayGraph, optional
        Centreline graph of the airway tree (LPS mm).
    vessel_radius_mm : Volume, optional
        Estimated pulmonary vessel radius per voxel (0 outside vessels).
    laa_percent : float, optional
        Emphysema index: percentage of lung below -950 HU.
    """

    masks: Mapping[str, Volume]
    seconds: Mapping[str, float] = field(default_factory=dict)
    engine: str = "classical"
    notes: tuple[str, ...] = ()
    airway_graph: AirwayGraph | None = None
    vessel_radius_mm: Volume | None = None
    laa_percent: float | None = None

    def __getitem__(self, name: str) -> Volume:
        try:
            return self.masks[name]
        except KeyError:
            raise KeyError(
                f"no {name!r} in this anatomy; it has {', '.join(self.masks) or 'nothing'}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.masks

    def volume_ml(self, name: str) -> float:
        """Volume of a structure in millilitres."""
        mask = self[name]
        return float(np.count_nonzero(mask.array)) * float(np.prod(mask.spacing_mm)) / 1000.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (the content of ``anatomy.json`` without file names)."""
        structures = {
            name: {
                "volume_ml": round(self.volume_ml(name), 2),
                "seconds": round(float(self.seconds.get(name, 0.0)), 3),
            }
            for name in STRUCTURES
            if name in self.masks
        }
        out: dict[str, Any] = {
            "engine": self.engine,
            "seldinger_version": __version__,
            "structures": structures,
            "total_seconds": round(float(sum(self.seconds.values())), 3),
            "notes": list(self.notes),
        }
        if self.laa_percent is not None:
            out["laa_percent"] = round(self.laa_percent, 2)
        if self.airway_graph is not None:
            out["airway_generations"] = {
                side: self.airway_graph.max_generation(side) for side in ("left", "right")
            }
        return out

    def save(self, out_dir: str | Path, force: bool = False) -> Path:
        """Write one NIfTI per structure, ``anatomy.json`` and extras into ``out_dir``.

        The folder is written atomically: on any error nothing is left behind, and an
        existing folder is replaced only with ``force``.
        """
        from seldinger.io import write_volume

        out_dir = Path(out_dir)
        summary = self.summary()
        with atomic_dir(out_dir, force=force) as tmp:
            for name in summary["structures"]:
                write_volume(self.masks[name], tmp / f"{name}.nii.gz")
                summary["structures"][name]["file"] = f"{name}.nii.gz"
            if self.airway_graph is not None:
                (tmp / _GRAPH_JSON).write_text(json.dumps(self.airway_graph.to_dict()))
                summary["airway_graph"] = _GRAPH_JSON
            if self.vessel_radius_mm is not None:
                write_volume(self.vessel_radius_mm, tmp / _RADIUS_FILE)
                summary["vessel_radius"] = _RADIUS_FILE
            (tmp / ANATOMY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
        return out_dir


def load_anatomy(folder: str | Path) -> Anatomy:
    """Read an anatomy folder written by :meth:`Anatomy.save` (masks as bool Volumes)."""
    from seldinger.io import read_volume

    folder = Path(folder)
    path = folder / ANATOMY_JSON
    if not path.is_file():
        raise AnatomyError(
            f"{folder} is not an anatomy folder (no {ANATOMY_JSON}); create one with "
            "`seldinger segment CT --out DIR`."
        )
    summary = json.loads(path.read_text())
    masks = {}
    for name, info in summary["structures"].items():
        vol = read_volume(folder / info["file"])
        masks[name] = vol.with_array(vol.array.astype(bool))
    graph = None
    if "airway_graph" in summary:
        graph = AirwayGraph.from_dict(json.loads((folder / summary["airway_graph"]).read_text()))
    radius = None
    if "vessel_radius" in summary:
        radius = read_volume(folder / summary["vessel_radius"])
    return Anatomy(
        masks=masks,
        seconds={
            name: float(info.get("seconds", 0.0)) for name, info in summary["structures"].items()
        },
        engine=str(summary.get("engine", "classical")),
        notes=tuple(summary.get("notes", ())),
        airway_graph=graph,
        vessel_radius_mm=radius,
        laa_percent=summary.get("laa_percent"),
    )
