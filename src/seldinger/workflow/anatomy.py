"""``segment`` and ``lesion`` as library steps: a CT file in, masks written beside it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from seldinger.anatomy import (
    Anatomy,
    Lesion,
    add_structures,
    check_added_name,
    load_anatomy,
    segment,
    segment_lesion,
)
from seldinger.anatomy.checks import require_hu
from seldinger.anatomy.lesion import DEFAULT_MAX_DIAMETER_MM
from seldinger.files import check_overwrite
from seldinger.imaging import Volume
from seldinger.io import Ct, read_ct, write_volume
from seldinger.workflow.case import ProgressCallback, on_grid, read_mask

__all__ = ["LesionRefinement", "add_structure_files", "segment_files", "segment_lesion_file"]


@dataclass(frozen=True)
class LesionRefinement:
    """The refinements of ``segment_lesion`` (see :func:`seldinger.anatomy.segment_lesion`)."""

    max_diameter_mm: float = DEFAULT_MAX_DIAMETER_MM
    include_lps_mm: Sequence[tuple[float, float, float]] = ()
    exclude_lps_mm: Sequence[tuple[float, float, float]] = ()
    box_lps_mm: tuple[float, float, float, float, float, float] | None = None


def segment_files(
    ct_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    structures: Sequence[str] | None = None,
    *,
    engine: str = "classical",
    series_uid: str | None = None,
    resample: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    added: Mapping[str, Path] | None = None,
) -> tuple[Ct, Anatomy]:
    """Read a CT, segment its anatomy, write the anatomy folder (atomically).

    Returns the CT and the anatomy; ``progress(done, total)`` is called per structure.
    ``added`` masks (name to file, made elsewhere) are read and checked on the CT's grid
    before anything is segmented, and written with the segmented ones.
    """
    out = Path(out_dir)
    check_overwrite(out, force)
    loaded = read_ct(Path(ct_path), series_uid=series_uid, resample=resample)
    extra = _added_masks(added or {}, loaded.volume)

    def each(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)

    anatomy = segment(
        loaded.volume, structures, engine=engine, modality=loaded.meta.modality, progress=each
    )
    if extra:
        anatomy = replace(anatomy, masks={**anatomy.masks, **extra})
    anatomy.save(out, force=force)
    return loaded, anatomy


def add_structure_files(
    ct_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    masks: Mapping[str, Path],
    *,
    series_uid: str | None = None,
    resample: bool = False,
    force: bool = False,
) -> tuple[Ct, Anatomy]:
    """Add mask files made elsewhere to the anatomy folder of this CT (nothing segmented).

    Each mask is put on the CT's grid (any axis order; another grid is refused, naming the
    file), the folder's body must lie on it too, and
    :func:`~seldinger.anatomy.add_structures` writes them.
    """
    out = Path(out_dir)
    loaded = read_ct(Path(ct_path), series_uid=series_uid, resample=resample)
    anatomy = load_anatomy(out)
    on_grid(anatomy["body"], loaded.volume, f"the anatomy in {out}", "Segment this CT into it.")
    add_structures(out, _added_masks(masks, loaded.volume), force=force)
    return loaded, load_anatomy(out)


def _added_masks(masks: Mapping[str, Path], ct: Volume) -> dict[str, Volume]:
    """Masks made elsewhere, by name (checked), read and put on the CT's grid."""
    fix = "Draw it on this CT, or resample it onto it."
    return {
        check_added_name(name): read_mask(path, ct, f"--add {name}", fix)
        for name, path in masks.items()
    }


def segment_lesion_file(
    ct_path: str | os.PathLike[str],
    seed_lps_mm: tuple[float, float, float],
    out: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    resample: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    anatomy: Anatomy | None = None,
    refinement: LesionRefinement | None = None,
    figure: str | os.PathLike[str] | None = None,
) -> tuple[Ct, Lesion]:
    """Read a CT, segment the lesion at ``seed_lps_mm``, write its mask (atomically).

    With the CT's ``anatomy``, the lesion is cut at the lungs', body's and bones' edges;
    ``refinement`` passes the include/exclude points, box and largest diameter; with
    ``figure``, a PNG of the outline on three views is written too.
    """
    check_overwrite(out, force)
    if figure is not None:
        check_overwrite(figure, force)
    loaded = read_ct(Path(ct_path), series_uid=series_uid, resample=resample, progress=progress)
    require_hu(loaded.volume, loaded.meta.modality)
    lungs = body = bones = None
    if anatomy is not None and {"lung_left", "lung_right", "body"} <= set(anatomy.masks):
        lungs = anatomy["lung_left"].array | anatomy["lung_right"].array
        body = anatomy["body"].array
    if anatomy is not None and "bones" in anatomy.masks:
        bones = anatomy["bones"].array
    refine = refinement or LesionRefinement()
    found = segment_lesion(
        loaded.volume,
        seed_lps_mm,
        lungs=lungs,
        body=body,
        bones=bones,
        max_diameter_mm=refine.max_diameter_mm,
        include_lps_mm=list(refine.include_lps_mm),
        exclude_lps_mm=list(refine.exclude_lps_mm),
        box_lps_mm=refine.box_lps_mm,
    )
    write_volume(found.mask, Path(out), force=force)
    if figure is not None:
        from seldinger.export.lesion_figure import lesion_figure

        lesion_figure(loaded.volume, found, figure, force=force)
    return loaded, found
