"""``stent measure / size / design`` as library steps: files in, results and files out.

The lumen comes from an anatomy folder (``seldinger segment CT --out DIR``: the ``airways``
mask with its ``airway_graph.json``, or the ``esophagus`` mask with its centreline) or from
a lumen mask the user drew (``--lumen-mask``); the CT gives the sub-voxel edge. Outputs
(figure, STL, 3MF, the mould's parts and a rendering) are written together or not at all
(:func:`seldinger.files.staged_outputs`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seldinger.anatomy import AnatomyError, load_anatomy
from seldinger.errors import BadInputError
from seldinger.files import check_outputs, staged_outputs
from seldinger.imaging import Volume, reorient
from seldinger.io import read_ct
from seldinger.stents import LumenSurvey, measure_airway, measure_tube
from seldinger.stents.design import (
    StentDesign,
    StentOptions,
    airway_fit,
    design_stent,
    uncovered_stenoses,
)
from seldinger.stents.meshes import write_3mf, write_stl
from seldinger.stents.mould import Mould, make_mould
from seldinger.stents.sizing import StenosisSizing, size_stents
from seldinger.workflow.case import on_grid, read_mask

__all__ = [
    "LumenSource",
    "StentDesignOutcome",
    "design_file",
    "measure_file",
    "measure_lumen",
    "size_file",
]

Organ = Literal["airway", "oesophagus"]


@dataclass(frozen=True)
class LumenSource:
    """Where the lumen comes from: an anatomy folder and an organ, or a lumen mask."""

    anatomy_dir: Path | None = None
    organ: Organ = "airway"
    lumen_mask: Path | None = None
    min_stenosis_percent: float = 20.0

    def __post_init__(self) -> None:
        if (self.anatomy_dir is None) == (self.lumen_mask is None):
            raise BadInputError(
                "give either an anatomy folder (--anatomy DIR --organ airway|oesophagus) or a "
                "lumen mask (--lumen-mask MASK), not both and not neither."
            )
        if self.organ not in ("airway", "oesophagus"):
            raise BadInputError(f"organ must be 'airway' or 'oesophagus'; got {self.organ!r}.")


def measure_lumen(ct: Volume, source: LumenSource) -> tuple[LumenSurvey, Volume | None]:
    """Measure the lumen of an LPS-ordered CT; returns the survey and the lumen mask used.

    Raises
    ------
    BadInputError
        No airway (or oesophagus) mask in the anatomy folder, an empty mask, a mask the
        centreline cannot be traced in, or no trachea.
    """
    from seldinger.anatomy.airway_graph import airway_graph

    fix = "segment the CT again (`seldinger segment CT --out DIR`) or give --lumen-mask."
    if source.lumen_mask is not None:
        mask = read_mask(source.lumen_mask, ct, "the lumen", fix)
        if not np.asarray(mask.array).any():
            raise BadInputError(f"the lumen mask {source.lumen_mask} is empty; {fix}")
        if source.organ == "oesophagus":
            return _measure_oesophagus(ct, mask, None, source), mask
        graph = airway_graph(ct, np.asarray(mask.array, dtype=bool))
        return measure_airway(
            ct, graph, mask, min_stenosis_percent=source.min_stenosis_percent
        ), mask
    if source.anatomy_dir is None:  # LumenSource allows one or the other
        raise BadInputError("give --anatomy DIR or --lumen-mask MASK.")
    anatomy = load_anatomy(source.anatomy_dir)
    if source.organ == "oesophagus":
        if "esophagus" not in anatomy:
            raise BadInputError(f"{source.anatomy_dir} has no esophagus mask; {fix}")
        mask = on_grid(anatomy["esophagus"], ct, "the esophagus mask", fix)
        return _measure_oesophagus(ct, mask, anatomy.esophagus_centreline, source), mask
    if "airways" not in anatomy:
        raise BadInputError(
            f"{source.anatomy_dir} has no airway mask (airways.nii.gz); segment the airways "
            "(`seldinger segment CT --out DIR`) or give --lumen-mask."
        )
    mask = on_grid(anatomy["airways"], ct, "the airway mask", fix)
    mask = mask.with_array(np.asarray(mask.array, dtype=bool))
    graph = anatomy.airway_graph or airway_graph(ct, np.asarray(mask.array, dtype=bool))
    return measure_airway(ct, graph, mask, min_stenosis_percent=source.min_stenosis_percent), mask


def _measure_oesophagus(
    ct: Volume, mask: Volume, centreline: Any, source: LumenSource
) -> LumenSurvey:
    if centreline is not None:
        points = np.asarray(centreline["points_lps_mm"], dtype=np.float64)
        radius = float(np.median(centreline.get("radius_mm", [10.0])))
    else:  # the centroid of the mask in every axial slice, top first
        arr = np.asarray(mask.array, dtype=bool)
        ks = [k for k in range(arr.shape[2]) if arr[:, :, k].any()]
        if len(ks) < 2:
            raise BadInputError("the oesophagus mask spans fewer than two slices; check it.")
        ijk = [(*np.argwhere(arr[:, :, k]).mean(axis=0), k) for k in ks]
        points = ct.index_to_lps(np.asarray(ijk, dtype=np.float64))
        points = points[np.argsort(-points[:, 2])]
        radius = 10.0
    return measure_tube(
        mask.with_array(np.asarray(mask.array, dtype=np.float32)),
        points,
        label="oesophagus",
        radius_mm=max(radius, 5.0),
        min_stenosis_percent=source.min_stenosis_percent,
    )


def _read(ct_path: str | os.PathLike[str]) -> Volume:
    return reorient(read_ct(Path(ct_path)).volume, "LPS")


def measure_file(
    ct_path: str | os.PathLike[str],
    source: LumenSource,
    *,
    figure: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> tuple[LumenSurvey, list[Path]]:
    """Read a CT, measure its lumen, write the area-vs-distance figure if asked."""
    from seldinger.export.stent_figures import lumen_profile_figure

    check_outputs([figure], force)
    ct = _read(ct_path)
    try:
        survey, _ = measure_lumen(ct, source)
    except AnatomyError as err:
        raise BadInputError(f"the lumen cannot be traced: {err}") from err
    written: list[Path] = []
    if figure is not None:
        with staged_outputs(force) as stage:
            lumen_profile_figure(survey, stage.path(figure), force=True, title=Path(ct_path).name)
        written.append(Path(figure))
    return survey, written


def size_file(
    ct_path: str | os.PathLike[str], source: LumenSource
) -> tuple[LumenSurvey, list[StenosisSizing]]:
    """Measure, then size catalogue stents for every stenosis."""
    survey, _ = measure_file(ct_path, source)
    return survey, size_stents(survey)


@dataclass(frozen=True, eq=False)
class StentDesignOutcome:
    """A designed stent with its checks, its mould (if asked) and the files written."""

    survey: LumenSurvey
    design: StentDesign
    mould: Mould | None
    written: list[Path] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """The survey's notes, and the stenoses this stent leaves (partly) open."""
        return [*self.survey.notes, *uncovered_stenoses(self.design, self.survey)]

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        out = {
            "stent": self.design.summary(),
            "stenoses": [s.to_dict() for s in self.survey.stenoses],
            "notes": self.notes,
            "written": [str(p) for p in self.written],
        }
        if self.mould is not None:
            out["mould"] = self.mould.summary()
        return out


def design_file(
    ct_path: str | os.PathLike[str],
    source: LumenSource,
    out: str | os.PathLike[str],
    options: StentOptions,
    *,
    mould_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> StentDesignOutcome:
    """Measure the airway, design the stent, check it, write STL + 3MF (+ the mould).

    ``out`` is the STL; the 3MF and a PNG rendering are written beside it
    (``STENT.3mf``, ``STENT.png``); with ``mould_dir``, ``half_a.stl``, ``half_b.stl`` and
    ``core.stl`` go there.
    """
    from seldinger.export.stent_figures import stent_rendering

    stl = Path(out)
    if stl.suffix.lower() != ".stl":
        raise BadInputError(f"--out must name an .stl file; got {stl}.")
    finals = [stl, stl.with_suffix(".3mf"), stl.with_suffix(".png")]
    parts = ("half_a", "half_b", "core")
    if mould_dir is not None:
        finals += [Path(mould_dir) / f"{name}.stl" for name in parts]
    check_outputs(finals, force)
    ct = _read(ct_path)
    if source.organ != "airway":
        raise BadInputError("stents are designed for the airway (--organ airway).")
    try:
        survey, mask = measure_lumen(ct, source)
    except AnatomyError as err:
        raise BadInputError(f"the lumen cannot be traced: {err}") from err
    design = design_stent(survey, options, ct=ct, lumen=mask)
    design = replace(design, check=airway_fit(design, ct, survey, lumen=mask))
    mould = make_mould(design) if mould_dir is not None else None
    with staged_outputs(force) as stage:
        write_stl(design.mesh, stage.path(finals[0]), force=True)
        write_3mf(design.mesh, stage.path(finals[1]), name=stl.stem, force=True)
        stent_rendering(
            design.mesh.vertices_lps_mm,
            design.mesh.faces,
            stage.path(finals[2]),
            force=True,
            title=f"{options.kind} stent, {options.wall_mm:g} mm wall (LPS mm)",
        )
        if mould is not None:
            for name, path in zip(parts, finals[3:], strict=True):
                write_stl(getattr(mould, name), stage.path(path), force=True)
    return StentDesignOutcome(survey, design, mould, finals)
