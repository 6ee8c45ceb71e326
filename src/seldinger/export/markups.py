"""A plan's needle paths, applicators and seeds as 3D Slicer markups (``.mrk.json``).

The masks of a plan travel as NIfTI, DICOM SEG/RTSTRUCT and meshes; its points did not:
the entry and target of each ranked path, each applicator's probes and the seeds existed
only in ``plan.json``. 3D Slicer reads its markups JSON (schema ``markups-schema-v1.0.3``)
by drag and drop: a Line per path or probe (entry to tip, the length measured), a
point list of the seeds and of the targets. Coordinates are LPS mm, and said so in each
file (``coordinateSystem``), so Slicer places them without guessing.

Written by hand: the format is a small JSON document and no maintained Python package
writes it outside Slicer itself.
"""

from __future__ import annotations

from typing import Any

from seldinger.plan import Plan

__all__ = ["MARKUPS_SCHEMA", "plan_markups"]

#: The schema reference as 3D Slicer 5 writes it in its own markups files.
MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
    "Schema/markups-schema-v1.0.3.json#"
)
_IDENTITY = [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]  # as Slicer writes for LPS files


def plan_markups(plan: Plan) -> dict[str, dict[str, Any]]:
    """The plan's points as markups documents, by file name (empty when it holds none).

    - ``path_<rank>.mrk.json``: each ranked needle path, a Line from entry to target;
    - ``applicator_<n>[_<probe>].mrk.json``: each ablation probe, a Line from its skin entry
      to its tip;
    - ``seeds.mrk.json``: every planned seed, a point list (needle n, seed k);
    - ``targets.mrk.json``: the trajectory target, a point list.
    """
    out: dict[str, dict[str, Any]] = {}
    if plan.trajectories is not None:
        section = plan.trajectories
        for path in section.paths:
            name = f"path {path.rank}"
            out[f"path_{path.rank}.mrk.json"] = _document(
                "Line", name, [("entry", path.entry_lps_mm), ("target", path.target_lps_mm)]
            )
        target = section.target or "target"
        out["targets.mrk.json"] = _document(
            "Fiducial", "targets", [(target, section.target_lps_mm)]
        )
    if plan.ablation is not None:
        for n, applicator in enumerate(plan.ablation.applicators, 1):
            tips = applicator.probes_tip_lps_mm or [applicator.tip_lps_mm]
            entries = applicator.probes_entry_lps_mm or [applicator.entry_lps_mm]
            for k, (entry, tip) in enumerate(zip(entries, tips, strict=True), 1):
                suffix = f"_{k}" if len(tips) > 1 else ""
                name = f"applicator {n}{suffix.replace('_', ' probe ')}"
                out[f"applicator_{n}{suffix}.mrk.json"] = _document(
                    "Line", name, [("entry", entry), ("tip", tip)]
                )
    if plan.seeds is not None:
        points = [
            (f"needle {n} seed {k}", seed)
            for n, needle in enumerate(plan.seeds.needles, 1)
            for k, seed in enumerate(needle.seeds_lps_mm, 1)
        ]
        out["seeds.mrk.json"] = _document("Fiducial", "seeds", points)
    return out


def _document(
    kind: str, name: str, points: list[tuple[str, tuple[float, float, float]]]
) -> dict[str, Any]:
    """One markups node of ``kind`` (Line or Fiducial) in a document of its own."""
    control = [
        {
            "id": str(n),
            "label": label,
            "position": [round(float(v), 3) for v in position],
            "orientation": _IDENTITY,
            "selected": True,
            "locked": True,
            "visibility": True,
            "positionStatus": "defined",
        }
        for n, (label, position) in enumerate(points, 1)
    ]
    markup: dict[str, Any] = {
        "type": kind,
        "name": name,
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": True,
        "labelFormat": "%N-%d",
        "controlPoints": control,
    }
    if kind == "Line":
        markup["measurements"] = [{"name": "length", "enabled": True, "units": "mm"}]
    return {"@schema": MARKUPS_SCHEMA, "markups": [markup]}
