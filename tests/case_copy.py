"""Copies of planned case folders for tests that change them, light on disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from seldinger.planning.trajectory.map_cache import CACHE_FOLDER


def _link_cache_files(source: str, target: str) -> str:
    """Hard-link a map-cache entry; copy every other file."""
    if Path(source).parent.name == CACHE_FOLDER:
        try:
            os.link(source, target)
            return target
        except OSError:  # another filesystem, or links not allowed: copy it
            pass
    return str(shutil.copy2(source, target))


def copy_case(source: Path, target: Path) -> Path:
    """Copy the case folder ``source`` to ``target`` (returned), linking its map caches.

    The trajectory planner's cache beside an anatomy (``anatomy/cache``) is about 1.5 GB for
    the lidc chest, and a dozen tests each copy such a case: copied, they filled the CI
    machine's disk. The cache is only ever replaced whole (written aside and renamed, by
    ``seldinger.files.atomic_path``) or deleted, never changed in place, so a hard link
    cannot pass a change from one copy to another. Every other file is copied, since tests
    damage files in place.
    """
    return Path(shutil.copytree(source, target, copy_function=_link_cache_files))
