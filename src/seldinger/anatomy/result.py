"""The result of segmentation: masks in the CT's geometry, timings, notes; saved as a folder."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seldinger import __version__
from seldinger.anatomy.airway_tree import AirwayGraph
from seldinger.anatomy.errors import AnatomyError
from seldinger.files import atomic_dir
from seldinger.imaging import Volume

__all__ = [
    "ANATOMY_JSON",
    "RADIUS",
    "STRUCTURES",
    "Anatomy",
    "LazyMasks",
    "load_anatomy",
    "map_masks",
]

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
    # Named as TotalSegmentator names them, so that either engine fills the same files.
    "lung_upper_lobe_left",
    "lung_lower_lobe_left",
    "lung_upper_lobe_right",
    "lung_middle_lobe_right",
    "lung_lower_lobe_right",
    "fissure_left_oblique",
    "fissure_right_oblique",
    "fissure_right_horizontal",
    "heart",
    "aorta",
    "pulmonary_artery",
    "superior_vena_cava",
    "esophagus",
    "spinal_cord",
)
#: Name of the summary file in an anatomy folder.
ANATOMY_JSON = "anatomy.json"
_GRAPH_JSON = "airway_graph.json"
#: The key of the vessel radius map in :attr:`Anatomy.volumes`.
RADIUS = "vessel_radius_mm"
_RADIUS_FILE = f"{RADIUS}.nii.gz"
_OESOPHAGUS_JSON = "esophagus_centreline.json"


class LazyMasks(Mapping[str, Volume]):
    """Masks read from their files on first use, then kept.

    :func:`load_anatomy` returns one: a planner that finds its maps cached reads only the
    body mask, not the ten others (a second each on a chest CT).
    """

    def __init__(self, loaders: Mapping[str, Callable[[], Volume]]) -> None:
        self._loaders = dict(loaders)
        self._loaded: dict[str, Volume] = {}

    def __getitem__(self, name: str) -> Volume:
        if name not in self._loaded:
            self._loaded[name] = self._loaders[name]()
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:  # without reading (Mapping's would)
        return name in self._loaders

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def is_loaded(self, name: str) -> bool:
        """Whether ``name`` has been read."""
        return name in self._loaded

    def mapped(self, function: Callable[[str, Volume], Volume]) -> LazyMasks:
        """Masks that are ``function(name, mask)``, each made on first use."""

        def load(name: str) -> Volume:
            return function(name, self[name])

        return LazyMasks({name: partial(load, name) for name in self._loaders})


def map_masks(
    masks: Mapping[str, Volume], function: Callable[[str, Volume], Volume]
) -> Mapping[str, Volume]:
    """``function(name, mask)`` for every mask: lazily for :class:`LazyMasks`, else now."""
    if isinstance(masks, LazyMasks):
        return masks.mapped(function)
    return {name: function(name, mask) for name, mask in masks.items()}


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
    volumes : mapping of str to Volume
        Maps that are not masks, on the masks' grid, read on first use like them
        (:class:`LazyMasks`): ``vessel_radius_mm``, the estimated pulmonary vessel radius
        per voxel (0 outside vessels; :attr:`vessel_radius_mm`). A planner whose distance
        maps are cached never reads it (0.3 s of a float map on a chest CT).
    laa_percent : float, optional
        Emphysema index: percentage of lung below -950 HU.
    fingerprints : mapping of str to str
        A content digest per stored file (each mask, ``airway_graph``, ``vessel_radius``),
        set by :func:`load_anatomy`; caches of what is computed from the anatomy (the
        trajectory planner's distance maps) are keyed by them. Empty for an anatomy made in
        memory.
    folder : Path, optional
        The anatomy folder it was read from (where such caches live).
    voxel_counts : mapping of str to int
        Voxels per mask as recorded in ``anatomy.json``, for the masks whose files still
        have the recorded digest (:meth:`volume_ml` uses them without reading the mask).
    esophagus_centreline : mapping, optional
        The oesophagus's centreline from the thoracic inlet to the hiatus
        (:meth:`seldinger.anatomy.oesophagus.OesophagusCentreline.to_dict`: ``points_lps_mm``
        top to bottom, wall ``radius_mm``, ``lumen_radius_mm``, ``length_mm``); stents are
        sized on it. Saved as ``esophagus_centreline.json``.
    """

    masks: Mapping[str, Volume]
    seconds: Mapping[str, float] = field(default_factory=dict)
    engine: str = "classical"
    notes: tuple[str, ...] = ()
    airway_graph: AirwayGraph | None = None
    volumes: Mapping[str, Volume] = field(default_factory=dict)
    laa_percent: float | None = None
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    folder: Path | None = None
    voxel_counts: Mapping[str, int] = field(default_factory=dict)
    esophagus_centreline: Mapping[str, Any] | None = None

    def __getitem__(self, name: str) -> Volume:
        try:
            return self.masks[name]
        except KeyError:
            raise KeyError(
                f"no {name!r} in this anatomy; it has {', '.join(self.masks) or 'nothing'}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.masks

    @property
    def vessel_radius_mm(self) -> Volume | None:
        """The estimated pulmonary vessel radius per voxel, mm (0 outside vessels), if any."""
        return self.volumes.get(RADIUS)

    def volume_ml(self, name: str) -> float:
        """Volume of a structure in millilitres."""
        if name in self.voxel_counts and "body" in self.masks:
            voxel_ml = float(np.prod(self["body"].spacing_mm)) / 1000.0  # masks share one grid
            return self.voxel_counts[name] * voxel_ml
        mask = self[name]
        return float(np.count_nonzero(mask.array)) * float(np.prod(mask.spacing_mm)) / 1000.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (the content of ``anatomy.json`` without file names)."""
        structures = {
            name: {
                "volume_ml": round(self.volume_ml(name), 2),
                "seconds": round(float(self.seconds.get(name, 0.0)), 3),
            }
            for name in [*STRUCTURES, *sorted(set(self.masks) - set(STRUCTURES))]
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
            for name, info in summary["structures"].items():
                mask = self.masks[name]
                write_volume(mask, tmp / f"{name}.nii.gz")
                info["file"] = f"{name}.nii.gz"
                info["voxels"] = int(np.count_nonzero(mask.array))
                info["blake2b"] = _digest(tmp / f"{name}.nii.gz")
            if self.airway_graph is not None:
                (tmp / _GRAPH_JSON).write_text(json.dumps(self.airway_graph.to_dict()))
                summary["airway_graph"] = _GRAPH_JSON
            if self.vessel_radius_mm is not None:
                write_volume(self.vessel_radius_mm, tmp / _RADIUS_FILE)
                summary["vessel_radius"] = _RADIUS_FILE
            if self.esophagus_centreline is not None:
                (tmp / _OESOPHAGUS_JSON).write_text(json.dumps(self.esophagus_centreline))
                summary["esophagus_centreline"] = _OESOPHAGUS_JSON
            (tmp / ANATOMY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
        return out_dir


#: Names a mask added to an anatomy may take: lower case, digits and underscores.
_ADDED_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def check_added_name(name: str) -> str:
    """``name`` when it may name an added structure, else :class:`AnatomyError`."""
    if not _ADDED_NAME.fullmatch(name) or name == "body":
        raise AnatomyError(
            f"{name!r} cannot name an added structure: use lower case letters, digits "
            "and underscores, starting with a letter (e.g. gallbladder), and not 'body'."
        )
    return name


def add_structures(folder: str | Path, masks: Mapping[str, Volume], force: bool = False) -> Path:
    """Add masks made elsewhere (drawn in 3D Slicer, from a model) to an anatomy folder.

    Each becomes a structure like the segmented ones: ``plan trajectory --forbid NAME``
    keeps needles out of it, and an ablation zone out of what the plan forbids. The masks
    must lie on the anatomy's grid (its body mask's). Each file is written atomically and
    ``anatomy.json`` last, so an error leaves the folder as it was listed.

    Raises
    ------
    AnatomyError
        Not an anatomy folder, a bad name, a mask on another grid or empty, or a name the
        anatomy has already (without ``force``; the body never).
    """
    from seldinger.files import atomic_path
    from seldinger.imaging import require_same_geometry
    from seldinger.io import write_volume

    folder = Path(folder)
    anatomy = load_anatomy(folder)
    path = folder / ANATOMY_JSON
    summary = json.loads(path.read_text())
    for name, mask in masks.items():
        check_added_name(name)
        if name in summary["structures"] and not force:
            raise AnatomyError(
                f"{folder} has a {name} already; pass --force to replace it, or another name."
            )
        require_same_geometry(anatomy["body"], mask)
        if not np.asarray(mask.array).any():
            raise AnatomyError(f"the mask given for {name} is empty; nothing to add.")
    for name, mask in masks.items():
        file = folder / f"{name}.nii.gz"
        array = np.asarray(mask.array) != 0
        with atomic_path(file) as tmp:
            write_volume(mask.with_array(array.astype(np.uint8)), tmp, force=True)
        voxel_ml = float(np.prod(mask.spacing_mm)) / 1000.0
        summary["structures"][name] = {
            "volume_ml": round(float(np.count_nonzero(array)) * voxel_ml, 2),
            "seconds": 0.0,
            "file": file.name,
            "voxels": int(np.count_nonzero(array)),
            "blake2b": _digest(file),
            "added": True,
        }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return folder


def load_anatomy(folder: str | Path) -> Anatomy:
    """Read an anatomy folder written by :meth:`Anatomy.save` (masks as bool Volumes).

    The masks are read on first use (:class:`LazyMasks`); each file's digest is taken now
    (:attr:`Anatomy.fingerprints`), so a file changed later is not mistaken for the one read.

    Raises
    ------
    AnatomyError
        If the folder has no ``anatomy.json`` or a mask it lists is missing.
    """
    from seldinger.io import read_volume

    folder = Path(folder)
    path = folder / ANATOMY_JSON
    if not path.is_file():
        raise AnatomyError(
            f"{folder} is not an anatomy folder (no {ANATOMY_JSON}); create one with "
            "`seldinger segment CT --out DIR`."
        )
    summary = json.loads(path.read_text())
    loaders = {}
    fingerprints = {}
    counts = {}
    for name, info in summary["structures"].items():
        if not (folder / info["file"]).is_file():
            raise AnatomyError(
                f"{folder / info['file']} ({name}, listed in {path}) is missing; segment the CT "
                "again: `seldinger segment CT --out DIR --force`."
            )
        loaders[name] = partial(_read_mask, folder / info["file"])
        fingerprints[name] = _digest(folder / info["file"])
        if info.get("blake2b") == fingerprints[name] and "voxels" in info:
            counts[name] = int(info["voxels"])
    graph = None
    if "airway_graph" in summary:
        graph = AirwayGraph.from_dict(json.loads((folder / summary["airway_graph"]).read_text()))
        fingerprints["airway_graph"] = _digest(folder / summary["airway_graph"])
    centreline = None
    if "esophagus_centreline" in summary:
        centreline = json.loads((folder / summary["esophagus_centreline"]).read_text())
    volumes = {}
    if "vessel_radius" in summary:
        volumes[RADIUS] = partial(read_volume, folder / summary["vessel_radius"])
        fingerprints["vessel_radius"] = _digest(folder / summary["vessel_radius"])
    return Anatomy(
        masks=LazyMasks(loaders),
        seconds={
            name: float(info.get("seconds", 0.0)) for name, info in summary["structures"].items()
        },
        engine=str(summary.get("engine", "classical")),
        notes=tuple(summary.get("notes", ())),
        airway_graph=graph,
        volumes=LazyMasks(volumes),
        laa_percent=summary.get("laa_percent"),
        fingerprints=fingerprints,
        folder=folder,
        voxel_counts=counts,
        esophagus_centreline=centreline,
    )


def _read_mask(path: Path) -> Volume:
    from seldinger.io import read_volume

    volume = read_volume(path)
    return volume.with_array(volume.array.astype(bool))


def _digest(path: Path) -> str:
    """BLAKE2b of a file's bytes (a few MB of compressed mask: milliseconds)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
