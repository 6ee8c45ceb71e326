"""A cache of the trajectory planner's precomputed maps beside the anatomy they come from.

Building :class:`~seldinger.planning.trajectory.maps.RiskMaps` for a chest CT takes 10-20 s
(one exact distance transform per structure); the search itself takes well under a second.
A clinician replans many times on one anatomy (another lesion, another rule, a drawn path),
so what depends only on the masks is kept in ``<anatomy folder>/cache``:

- ``base-<key>``: the crop box, the body/lung/emphysema/liver labels, the pleural field and the
  skin entry candidates;
- ``dist-<structure>-<key>``: each structure's distance map on the crop;
- ``lesion-<structure>-<key>``: that map with the last lesion planned to taken out of the
  structure (only for structures reaching into the lesion);
- ``final-<key>``: the finished labels and stacked distance maps of the last run (key: the
  base, the lesion, the rules that change the maps and every structure's key). Run again
  on the same lesion and rules — another drawn path, another output — the planner maps
  them read-only and does no work at all.

One entry per map is kept: writing a new one deletes the one it replaces.

The key is a BLAKE2b of the content digests of the files the array came from (set by
:func:`seldinger.anatomy.load_anatomy`), the rules it depends on, and :data:`VERSION`.
A changed mask changes its digest, so a stale entry is never read; it is simply left to be
overwritten or deleted with the folder. Arrays are uncompressed ``.npy`` (reading a 100 MB
map is ~30 ms; compressing would cost seconds) written atomically; a read that fails for
any reason (a partial copy, another NumPy) is a miss, and a write that fails (read-only
folder, full disk) leaves the planner working without a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.anatomy import Anatomy
from seldinger.files import atomic_path
from seldinger.imaging import Volume, reorient

__all__ = ["VERSION", "MapCache"]

logger = logging.getLogger(__name__)

#: Bumped whenever what the maps hold or how they are computed changes.
VERSION = 4
#: Folder of the cache inside the anatomy folder.
CACHE_FOLDER = "cache"

Box = tuple[slice, slice, slice]


class MapCache:
    """Arrays keyed by what they were computed from, in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def for_anatomy(cls, anatomy: Anatomy) -> MapCache | None:
        """The cache of an anatomy read from a folder; None for one made in memory."""
        if anatomy.folder is None or not anatomy.fingerprints:
            return None
        return cls(Path(anatomy.folder) / CACHE_FOLDER)

    @staticmethod
    def key(kind: str, parts: Sequence[str | None]) -> str | None:
        """Digest of what an entry depends on; None if any part is unknown."""
        if any(p is None for p in parts):
            return None
        digest = hashlib.blake2b(digest_size=12)
        digest.update(f"seldinger-maps v{VERSION} {kind}".encode())
        for part in parts:
            digest.update(b"\0" + str(part).encode())
        return digest.hexdigest()

    def _path(self, prefix: str, key: str, suffix: str = ".npy") -> Path:
        return self.folder / f"{prefix}-{key}{suffix}"

    def load(self, prefix: str, key_parts: Sequence[str | None]) -> npt.NDArray[Any] | None:
        """The array saved under ``prefix`` and these key parts, or None."""
        key = self.key(prefix, key_parts)
        if key is None:
            return None
        return self._read(self._path(prefix, key), mmap=True)

    def save(self, prefix: str, key_parts: Sequence[str | None], array: npt.NDArray[Any]) -> None:
        """Keep ``array`` under ``prefix`` and these key parts (silently not, if unwritable)."""
        key = self.key(prefix, key_parts)
        if key is not None:
            self._write(self._path(prefix, key), array)

    def load_box(self, key: str) -> Box | None:
        """The crop box of the base maps saved under ``key`` (their manifest), or None."""
        try:
            box_list = json.loads(self._path("base", key, ".json").read_text())["box"]
            return tuple(slice(int(a), int(b)) for a, b in box_list)  # type: ignore[return-value]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load_base(
        self, key: str, body_full: Volume
    ) -> (
        tuple[
            Box,
            Volume,
            npt.NDArray[np.uint32],
            npt.NDArray[np.float32],
            npt.NDArray[np.float64],
        ]
        | None
    ):
        """The base maps saved under ``key``: (box, body crop, labels, pleura, candidates).

        ``body_full`` is the anatomy's body mask: the crop is remade from it and the box, so
        the grid never comes from the cache. The labels are a fresh array (the planner marks
        them); the pleural field is mapped read-only.
        """
        box = self.load_box(key)
        if box is None:
            return None
        labels16 = self._read(self._path("base-labels", key), mmap=True)
        pleura = self._read(self._path("base-pleura", key), mmap=True)
        candidates = self._read(self._path("base-candidates", key))
        if labels16 is None or pleura is None or candidates is None:
            return None
        body = reorient(body_full, "LPS").crop_index(box)
        if labels16.shape != body.shape or pleura.shape != body.shape or candidates.ndim != 2:
            return None
        return box, body, labels16.astype(np.uint32), pleura, candidates

    def save_base(
        self,
        key: str,
        box: Box,
        labels: npt.NDArray[np.uint32],
        pleura: npt.NDArray[np.float32],
        candidates: npt.NDArray[np.float64],
    ) -> None:
        """Keep the base maps under ``key`` (the manifest last: it marks the entry whole).

        The labels are kept as uint16 (the base has only bits 0-9).
        """
        if labels.max(initial=0) > 0xFFFF:
            raise ValueError("base labels beyond bit 15")  # a planner bug
        arrays: tuple[npt.NDArray[Any], ...] = (labels.astype(np.uint16), pleura, candidates)
        for name, array in zip(_BASE_ARRAYS, arrays, strict=True):
            if not self._write(self._path(f"base-{name}", key), array):
                return
        text = json.dumps({"version": VERSION, "box": [[s.start, s.stop] for s in box]})
        self._write_text(self._path("base", key, ".json"), text)

    def load_final(
        self, key_parts: Sequence[str]
    ) -> (
        tuple[
            npt.NDArray[np.uint32],
            npt.NDArray[np.uint16],
            npt.NDArray[np.float32],
            npt.NDArray[np.float64],
            dict[str, Any],
        ]
        | None
    ):
        """Finished maps saved by :meth:`save_final` (labels and distances mapped read-only,
        with the base's pleural field and candidates), or None."""
        key = self.key("final", key_parts)
        if key is None:
            return None
        try:
            manifest = json.loads(self._path("final", key, ".json").read_text())
            base_key = str(manifest["base"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        labels = self._read(self._path("final-labels", key), mmap=True)
        distances = self._read(self._path("final-distances", key), mmap=True)
        pleura = self._read(self._path("base-pleura", base_key), mmap=True)
        candidates = self._read(self._path("base-candidates", base_key))
        if labels is None or distances is None or pleura is None or candidates is None:
            return None
        if distances.shape[:3] != labels.shape or pleura.shape != labels.shape:
            return None
        return labels, distances, pleura, candidates, manifest

    def save_final(
        self,
        key_parts: Sequence[str],
        labels: npt.NDArray[np.uint32],
        distances: npt.NDArray[np.uint16],
        manifest: dict[str, Any],
    ) -> None:
        """Keep finished maps (one entry: each replaces the last). ``key_parts[0]`` is the
        base maps' key (their pleural field and candidates are shared)."""
        key = self.key("final", key_parts)
        if key is None:
            return
        if not self._write(self._path("final-labels", key), labels):
            return
        if not self._write(self._path("final-distances", key), distances):
            return
        text = json.dumps({"version": VERSION, "base": key_parts[0], **manifest})
        self._write_text(self._path("final", key, ".json"), text)

    def _write_text(self, path: Path, text: str) -> None:
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
        except OSError as exc:
            logger.info("map cache not written (%s): planning goes on without it", exc)
            return
        self._drop_older(path)

    def _read(self, path: Path, mmap: bool = False) -> npt.NDArray[Any] | None:
        """The array in ``path`` (read-only and memory-mapped with ``mmap``: the planner
        copies it once, from the page cache), or None."""
        try:
            return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.info("map cache entry %s unreadable (%s): recomputed", path.name, exc)
            return None

    def _write(self, path: Path, array: npt.NDArray[Any]) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, tmp.open("wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        except OSError as exc:
            logger.info("map cache not written (%s): planning goes on without it", exc)
            return False
        self._drop_older(path)
        return True

    def _drop_older(self, path: Path) -> None:
        """Delete the entries ``path`` replaces (same prefix, another key): one entry per
        map is kept, so the cache does not grow with every edit of a mask."""
        prefix = path.name[: -len(path.suffix)].rsplit("-", 1)[0]
        for other in self.folder.glob(f"{prefix}-*{path.suffix}"):
            if other != path and other.name[len(prefix) + 1 :].count("-") == 0:
                other.unlink(missing_ok=True)


_BASE_ARRAYS = ("labels", "pleura", "candidates")
