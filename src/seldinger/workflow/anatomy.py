"""``segment`` and ``lesion`` as library steps: a CT file in, masks written beside it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seldinger.anatomy import Anatomy, Lesion, segment, segment_lesion
from seldinger.anatomy.checks import require_hu
from seldinger.anatomy.lesion import DEFAULT_MAX_DIAMETER_MM
from seldinger.files import check_overwrite
from seldinger.io import Ct, read_ct, write_volume
from seldinger.workflow.case import ProgressCallback

__all__ = ["LesionRefinement", "segment_files", "segment_lesion_file"]


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
) -> tuple[Ct, Anatomy]:
    """Read a CT, segment its anatomy, write the anatomy folder (atomically).

    Returns the CT and the anatomy; ``progress(done, total)`` is called per structure.
    """
    out = Path(out_dir)
    check_overwrite(out, force)
    loaded = read_ct(Path(ct_path), series_uid=series_uid, resample=resample)

    def each(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)

    anatomy = segment(
        loaded.volume, structures, engine=engine, modality=loaded.meta.modality, progress=each
    )
    anatomy.save(out, force=force)
    return loaded, anatomy


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
