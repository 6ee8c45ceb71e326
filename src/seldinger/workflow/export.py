"""``seldinger export``: a saved plan in the files PACS, 3D Slicer and planning systems open.

- ``dicom``: the CT series the objects reference (a NIfTI/NRRD/MHA CT is written as a
  DICOM CT series in a study of its own, whose UIDs derive from the CT's voxel hash so that
  every export of the same CT lands in the same study; a DICOM CT is referenced where it
  is, its headers read from its folder), a SEG and an RTSTRUCT of the plan's structures, targets and ablation zone,
  for a seed implant an RT Plan (I-125 LDR) and an RT Dose (the TG-43 grid), and a Spatial
  Registration for each stored tracker (or reference) to CT registration.
- ``stl`` / ``ply``: a surface mesh (LPS mm) of each mask, and the seed template plate.
- ``nifti``: each mask, and the seed dose (Gy), on the CT's grid.
- ``markups``: the needle paths, applicator probes, seeds and target as 3D Slicer markups
  (``.mrk.json``, LPS mm): the plan's points, which the other formats do not carry.

The output folder appears whole or not at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seldinger.errors import BadInputError
from seldinger.export.dicom import (
    SourceSeries,
    read_source_series,
    write_brachy_plan,
    write_ct_series,
    write_registration,
    write_rtdose,
    write_rtstruct,
    write_seg,
)
from seldinger.export.markups import plan_markups
from seldinger.export.meshes import write_mask_mesh, write_mesh
from seldinger.export.seed_figures import seed_dose_grid
from seldinger.export.template import seed_template_plate
from seldinger.files import atomic_dir
from seldinger.imaging import Volume
from seldinger.io import write_volume
from seldinger.physics.tg43 import load_seed_data
from seldinger.workflow.case import PlanCase, Stages, load_plan_case, quiet_stages, read_mask

__all__ = ["FORMATS", "ExportRequest", "ExportResult", "export_plan", "plan_masks"]

#: What ``--format`` takes (seldinger.app.cli.EXPORT_FORMATS repeats it for the parser).
FORMATS = ("dicom", "stl", "ply", "nifti", "markups")


@dataclass(frozen=True)
class ExportRequest:
    """What ``seldinger export`` was asked (see its ``--help``)."""

    plan_path: Path
    out: Path
    formats: Sequence[str] = ("dicom", "stl", "nifti", "markups")
    ct_path: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise BadInputError(
                f"--format takes a comma-separated subset of {', '.join(FORMATS)}; got "
                f"{', '.join(self.formats) or 'nothing'}."
            )


@dataclass
class ExportResult:
    """The files written, by kind, and notes."""

    out: Path
    kinds: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """Every file, kind by kind."""
        return [p for paths in self.kinds.values() for p in paths]

    def by_kind(self) -> dict[str, list[Path]]:
        """Files per kind (``ct``, ``seg``, ``rtstruct``, ``rtplan``, ``rtdose``, ``reg``,
        ``mesh``, ``nifti``, ``markups``)."""
        return dict(self.kinds)

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "out": str(self.out),
            "files": {kind: [str(p) for p in paths] for kind, paths in self.kinds.items()},
            "notes": self.notes,
        }

    def _add(self, kind: str, path: Path) -> None:
        self.kinds.setdefault(kind, []).append(path)


def _file_name(name: str) -> str:
    """A structure name as a file name: letters, digits, ``_``, ``-`` and ``.`` only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "structure"


def plan_masks(case: PlanCase) -> dict[str, Volume]:
    """The plan's masks on the CT's grid: structures, targets (by name) and the ablation zone."""
    masks = {name: case.structure_mask(name) for name in case.plan.structures}
    for target in case.plan.targets:
        if target.mask_path is not None:
            masks[target.name] = case.target_mask(target)
            if not masks[target.name].array.any():
                raise BadInputError(
                    f"the mask of target {target.name!r} ({target.mask_path}) is empty; segment "
                    "the lesion again (`seldinger lesion`) and plan again."
                )
    ablation = case.plan.ablation
    if ablation is not None and ablation.zone_mask_path is not None:
        zone_file = case.plan_path.parent / ablation.zone_mask_path
        if zone_file.is_file():
            fix = "Plan the ablation again (`seldinger plan ablation … --force`)."
            masks["ablation zone"] = read_mask(zone_file, case.volume, "the ablation zone", fix)
    return {name: mask for name, mask in masks.items() if mask.array.any()}


def export_plan(
    request: ExportRequest, stages: Stages = quiet_stages, *, case: PlanCase | None = None
) -> ExportResult:
    """Write the plan's exports into ``request.out`` (see the module docstring).

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``force`` is not set.
    DicomExportError, MeshError, BadInputError
        A mask or value cannot be exported (named); nothing is written.
    """
    case = case or load_plan_case(request.plan_path, request.ct_path, stages=stages)
    with stages("reading the masks"):
        masks = plan_masks(case)
    dose = _seed_dose(case)
    result = ExportResult(request.out)
    with atomic_dir(request.out, force=request.force) as tmp:
        if "dicom" in request.formats:
            with stages("writing DICOM objects"):
                _dicom(case, masks, dose, tmp / "dicom", result, request.out)
        for kind in ("stl", "ply"):
            if kind in request.formats:
                with stages(f"writing {kind.upper()} meshes"):
                    _meshes(case, masks, kind, tmp / "meshes", result, request.out)
        if "nifti" in request.formats:
            folder = tmp / "nifti"
            folder.mkdir()
            for name, mask in masks.items():
                write_volume(mask, folder / f"{_file_name(name)}.nii.gz")
                result._add("nifti", request.out / "nifti" / f"{_file_name(name)}.nii.gz")
            if dose is not None:
                write_volume(dose, folder / "seed_dose_gy.nii.gz")
                result._add("nifti", request.out / "nifti" / "seed_dose_gy.nii.gz")
        if "markups" in request.formats:
            folder = tmp / "markups"
            folder.mkdir()
            for name, document in plan_markups(case.plan).items():
                (folder / name).write_text(json.dumps(document, indent=2) + "\n")
                result._add("markups", request.out / "markups" / name)
    if not masks:
        result.notes.append("the plan holds no non-empty mask: no SEG, RTSTRUCT or meshes.")
    return result


def _seed_dose(case: PlanCase) -> Volume | None:
    seeds = case.plan.seeds
    if seeds is None:
        return None
    lesion = case.target_mask(case.plan.target(seeds.target))
    dose, _ = seed_dose_grid(lesion, seeds, load_seed_data(seeds.seed_data))
    return dose


def _series(case: PlanCase, folder: Path, result: ExportResult, final: Path) -> SourceSeries:
    """The CT's DICOM series: its own headers (DICOM input), or the CT written as one."""
    if case.plan.case.source_format == "dicom":
        uid = case.plan.case.series_uid
        if uid is None:
            raise BadInputError(
                f"{case.plan_path}: the plan's CT came from DICOM but its SeriesInstanceUID is "
                "not recorded (case.series_uid); plan again on the DICOM folder."
            )
        return read_source_series(case.ct_path, uid, case.volume)
    # UIDs from the voxel hash: every export of this CT is one study (objects join it in a PACS)
    series = write_ct_series(
        case.volume,
        folder / "ct",
        study_description="Seldinger plan",
        uid_seed=f"seldinger CT {case.plan.case.voxel_sha256}",
    )
    for n in range(len(series.datasets)):
        result._add("ct", final / "dicom" / "ct" / f"CT{n + 1:04d}.dcm")
    return series


def _dicom(
    case: PlanCase,
    masks: dict[str, Volume],
    dose: Volume | None,
    folder: Path,
    result: ExportResult,
    out: Path,
) -> None:
    folder.mkdir()
    series = _series(case, folder, result, out)
    final = out / "dicom"
    if masks:
        write_seg(masks, series, folder / "seg.dcm")
        write_rtstruct(masks, series, folder / "rtstruct.dcm")
        result._add("seg", final / "seg.dcm")
        result._add("rtstruct", final / "rtstruct.dcm")
    seeds = case.plan.seeds
    if seeds is not None and dose is not None:
        write_brachy_plan(
            [n.seeds_lps_mm for n in seeds.needles],
            series,
            folder / "rtplan.dcm",
            strength_u=seeds.strength_u,
            prescription_dose_gy=seeds.goals.prescription_gy,
            seed_model=seeds.seed_data if len(seeds.seed_data) <= 16 else seeds.seed_model,
            seed_manufacturer=seeds.seed_model,
            structure_set=folder / "rtstruct.dcm" if masks else None,
        )
        write_rtdose(dose, series, folder / "rtdose.dcm", plan=folder / "rtplan.dcm")
        result._add("rtplan", final / "rtplan.dcm")
        result._add("rtdose", final / "rtdose.dcm")
    navigation = case.plan.navigation
    for record in [] if navigation is None else navigation.registrations:
        if record.scale != 1.0:
            result.notes.append(f"{record.id} scales; a Spatial Registration is rigid: left out.")
            continue
        name = f"{_file_name(record.id)}.dcm"
        write_registration(
            _orthonormal(record.moving_to_fixed),
            series,
            folder / name,
            description=f"{record.moving_frame} to CT ({record.id}"
            + (f", {record.name}" if record.name else "")
            + f"; FRE {record.fre_mm:.2f} mm)",
        )
        result._add("reg", final / name)


def _orthonormal(matrix: list[list[float]]) -> np.ndarray[Any, Any]:
    """The nearest rigid transform (SVD) of a stored one: the plan keeps 6 decimals, which
    leave its rotation orthonormal only to ~1e-6; the change is below that."""
    m = np.asarray(matrix, dtype=np.float64)
    u, _, vt = np.linalg.svd(m[:3, :3])
    out = m.copy()
    out[:3, :3] = u @ vt
    return out


def _meshes(
    case: PlanCase,
    masks: dict[str, Volume],
    kind: str,
    folder: Path,
    result: ExportResult,
    out: Path,
) -> None:
    folder.mkdir(exist_ok=True)
    for name, mask in masks.items():
        file = f"{_file_name(name)}.{kind}"
        write_mask_mesh(mask, folder / file, name=name)
        result._add("mesh", out / "meshes" / file)
    seeds = case.plan.seeds
    if seeds is not None and seeds.template == "coplanar":
        file = f"seed_template_plate.{kind}"
        write_mesh(seed_template_plate(seeds), folder / file)
        result._add("mesh", out / "meshes" / file)
