"""The classical segmentation pipeline: each structure from the CT and the ones before it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seldinger.anatomy.airway_graph import airway_graph
from seldinger.anatomy.airway_tree import AirwayGraph
from seldinger.anatomy.airways import segment_airways
from seldinger.anatomy.body import segment_body
from seldinger.anatomy.bones import segment_bones
from seldinger.anatomy.checks import CANONICAL, require_canonical, require_hu
from seldinger.anatomy.emphysema import segment_emphysema
from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.fissures import FISSURE_NAMES, fissure_masks
from seldinger.anatomy.liver import segment_liver
from seldinger.anatomy.lobes import LOBE_NAMES, lobe_labels, segment_lobes
from seldinger.anatomy.lungs import segment_lungs
from seldinger.anatomy.mediastinal_organs import MEDIASTINAL_ORGANS, segment_mediastinal_organs
from seldinger.anatomy.mediastinum import segment_mediastinum
from seldinger.anatomy.morphology import BoolArray, bounding_slices
from seldinger.anatomy.result import RADIUS, STRUCTURES, Anatomy
from seldinger.anatomy.spinal_canal import segment_spinal_canal
from seldinger.anatomy.vessels import segment_pulmonary_vessels
from seldinger.imaging import Volume, reorient

__all__ = ["DEPENDS_ON", "PIPELINE_ORDER", "ProgressCallback", "run_pipeline", "with_prerequisites"]

#: ``progress(structure, done, total)`` is called before each step.
ProgressCallback = Callable[[str, int, int], None]

#: The structures each one is computed from (the pipeline adds them when asked for it).
DEPENDS_ON: Mapping[str, tuple[str, ...]] = {
    "body": (),
    "airways": ("body",),
    "lung_left": ("body", "airways"),
    "lung_right": ("lung_left",),  # both lungs come from one step
    "bones": ("body",),
    "liver": ("body", "lung_left", "lung_right", "bones"),
    "mediastinum": ("lung_left", "lung_right", "bones", "liver"),
    "vessels": ("lung_left", "lung_right"),
    "emphysema": ("lung_left", "lung_right", "airways"),
    # The five lobes and three fissures come from one step (as both lungs do).
    "lung_upper_lobe_left": ("lung_left", "lung_right", "airways", "vessels"),
    **{name: ("lung_upper_lobe_left",) for name in (*LOBE_NAMES[1:], *FISSURE_NAMES)},
    # The mediastinal organs come from one step too (each placed relative to the others).
    "aorta": ("body", "airways", "lung_left", "lung_right", "bones", "liver"),
    **{name: ("aorta",) for name in MEDIASTINAL_ORGANS if name not in ("aorta", "spinal_cord")},
    "spinal_cord": ("body", "bones"),
}
#: Order of the steps (each after what it depends on).
PIPELINE_ORDER: tuple[str, ...] = (
    "body",
    "airways",
    "lung_left",
    "lung_right",
    "bones",
    "liver",
    "mediastinum",
    "vessels",
    *LOBE_NAMES,
    *FISSURE_NAMES,
    "emphysema",
    "aorta",
    *(name for name in MEDIASTINAL_ORGANS if name != "aorta"),
)
# Volume of the body bounding box margin kept around the crop (voxels).
_CROP_PAD = 2
# The region between the lungs is defined only when both lungs are well in view (a lung
# base at the top of an abdominal CT is not enough: totalseg-abdomen shows 43 and 74 mL).
_MIN_LUNG_FOR_MEDIASTINUM_ML = 150.0
# Largest angle between an index axis and its patient axis that still counts as axial.
_MAX_OBLIQUE_DEG = 5.0


def with_prerequisites(structures: Iterable[str]) -> list[str]:
    """``structures`` and everything they are computed from, in pipeline order.

    >>> with_prerequisites(["lung_right"])
    ['body', 'airways', 'lung_left', 'lung_right']
    """
    wanted = set()
    stack = list(structures)
    while stack:
        name = stack.pop()
        if name not in DEPENDS_ON:
            raise AnatomyError(f"unknown structure {name!r}; choose from {', '.join(STRUCTURES)}.")
        if name not in wanted:
            wanted.add(name)
            stack.extend(DEPENDS_ON[name])
    return [name for name in PIPELINE_ORDER if name in wanted]


#: Slices thicker than this (mm) lose small vessels and the fissures (a note says so).
THICK_SLICE_MM = 3.0


def _require_axial(ct: Volume) -> None:
    cosines = np.abs(ct.direction).max(axis=0)
    worst_deg = float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))
    if worst_deg > _MAX_OBLIQUE_DEG:
        raise AnatomyError(
            f"the CT grid is oblique ({worst_deg:.1f}° from the patient axes): anatomy works "
            "slice by slice on axial grids. Resample it onto an axis-aligned grid first "
            "(seldinger.imaging.resample with VolumeGeometry.from_spacing)."
        )


@dataclass
class _Run:
    """State of one pipeline run on the canonical, body-cropped CT."""

    ct: Volume
    given: Mapping[str, BoolArray]
    masks: dict[str, BoolArray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    graph: AirwayGraph | None = None
    radius_mm: np.ndarray | None = None
    laa_percent: float | None = None
    esophagus_centreline: dict[str, Any] | None = None
    organs_done: bool = False

    def lungs(self) -> BoolArray:
        return np.asarray(self.masks["lung_left"] | self.masks["lung_right"])


def _step(run: _Run, name: str) -> None:
    ct, m = run.ct, run.masks
    if name in run.given and name not in LOBE_NAMES and name != "aorta":  # see _lobes, _organs
        m[name] = run.given[name]
        if name == "airways" and run.graph is None and m[name].any():
            run.graph = _graph_or_note(run)  # the lobes need the lobar bronchi
        return
    if name == "airways":
        try:
            m["airways"] = segment_airways(ct, m["body"])
        except AnatomyError as err:
            # An abdominal CT has no trachea: the other structures still make sense.
            run.notes.append(f"airways: none segmented ({err})")
            m["airways"] = np.zeros(ct.shape, dtype=bool)
            return
        run.graph = airway_graph(ct, m["airways"])
    elif name == "lung_left":
        lungs = segment_lungs(ct, m["body"], m["airways"])
        m["lung_left"], m["lung_right"] = lungs.left, lungs.right
        run.notes.extend(lungs.notes)
    elif name == "lung_right":
        # Computed with lung_left; only a given lung_left without a right lung lands here.
        m.setdefault("lung_right", np.zeros_like(m["lung_left"]))
    elif name == "bones":
        m["bones"] = segment_bones(ct, m["body"])
    elif name == "liver":
        liver = segment_liver(ct, m["body"], lungs=run.lungs(), bones=m["bones"])
        if liver is None:
            lung_ml = float(run.lungs().sum()) * float(np.prod(ct.spacing_mm)) / 1000.0
            run.notes.append(
                "liver: not found (it is looked for under the right lung base; this CT shows "
                f"{lung_ml:.0f} mL of lung). A CT without the lung bases needs a liver mask "
                "from elsewhere (--engine totalsegmentator) to plan in the liver."
                if lung_ml < 50.0
                else "liver: not in the CT's field of view"
            )
        else:
            m["liver"] = liver
    elif name == "mediastinum":
        voxel_ml = float(np.prod(ct.spacing_mm)) / 1000.0
        smaller_ml = min(int(m["lung_left"].sum()), int(m["lung_right"].sum())) * voxel_ml
        if smaller_ml < _MIN_LUNG_FOR_MEDIASTINUM_ML:
            run.notes.append(
                f"mediastinum: not segmented, the CT shows only {smaller_ml:.0f} mL of one lung "
                "(the region between the lungs needs the chest in view)"
            )
            return
        m["mediastinum"] = segment_mediastinum(
            ct, m["lung_left"], m["lung_right"], m["bones"], liver=m.get("liver")
        )
    elif name == "vessels":
        if not run.lungs().any():
            # An abdominal CT: the pulmonary vessels are found inside the lungs only.
            run.notes.append(
                "vessels: none segmented (no lung in view; abdominal vessels are not segmented)"
            )
            m["vessels"] = np.zeros(ct.shape, dtype=bool)
            run.radius_mm = np.zeros(ct.shape, dtype=np.float32)
            return
        vessels = segment_pulmonary_vessels(ct, run.lungs())
        m["vessels"], run.radius_mm = vessels.mask, vessels.radius_mm
    elif name == "lung_upper_lobe_left":
        _lobes(run)
    elif name in LOBE_NAMES or name in FISSURE_NAMES:
        pass  # made with lung_upper_lobe_left (absent when the lungs are not in view)
    elif name == "aorta":
        _organs(run)
    elif name == "spinal_cord" and not run.organs_done:
        m["spinal_cord"] = segment_spinal_canal(ct, m["body"], m["bones"])
    elif name in MEDIASTINAL_ORGANS:
        pass  # made with the aorta (absent, with a note, when the CT does not show it)
    elif name == "emphysema":
        emphysema = segment_emphysema(ct, run.lungs(), m["airways"])
        m["emphysema"], run.laa_percent = emphysema.mask, emphysema.laa_percent
    elif name == "body":
        raise AssertionError("body is segmented before the crop")


def _graph_or_note(run: _Run) -> AirwayGraph | None:
    try:
        return airway_graph(run.ct, run.masks["airways"])
    except AnatomyError as err:
        run.notes.append(f"airway graph: not built from the given airways ({err})")
        return None


def _lobes(run: _Run) -> None:
    """The five lobes and three fissures, from a model when it gave all five lobes."""
    m = run.masks
    if all(name in run.given for name in LOBE_NAMES):
        for name in LOBE_NAMES:
            m[name] = run.given[name]
        m.update(fissure_masks(lobe_labels({n: m[n] for n in LOBE_NAMES})))
        return
    if not run.lungs().any():
        run.notes.append("lobes: no lung in view")
        return
    lobes = segment_lobes(
        run.ct, m["lung_left"], m["lung_right"], m["airways"], run.graph, m.get("vessels")
    )
    m.update(lobes.masks)
    m.update(lobes.fissures)
    run.notes.extend(n if n.startswith("lobes: ") else f"lobes: {n}" for n in lobes.notes)


def _organs(run: _Run) -> None:
    """Heart, great vessels, oesophagus (with its centreline) and spinal canal; a model's
    masks, when it gave them, are kept over the classical ones."""
    m = run.masks
    organs = segment_mediastinal_organs(
        run.ct,
        m["body"],
        m["lung_left"],
        m["lung_right"],
        m["bones"],
        airways=m["airways"],
        airway_graph=run.graph,
        liver=m.get("liver"),
    )
    m.update(organs.masks)
    m.update({name: run.given[name] for name in MEDIASTINAL_ORGANS if name in run.given})
    run.notes.extend(organs.notes)
    run.organs_done = True
    if organs.esophagus_centreline is not None and "esophagus" not in run.given:
        run.esophagus_centreline = organs.esophagus_centreline.to_dict()


def run_pipeline(
    ct: Volume,
    structures: Iterable[str] | None = None,
    *,
    given: Mapping[str, BoolArray] | None = None,
    modality: str | None = None,
    engine: str = "classical",
    progress: ProgressCallback | None = None,
) -> Anatomy:
    """Segment ``structures`` (default: all) of ``ct`` with the classical methods.

    The CT is reoriented exactly to LPS order and cropped to the body; masks come back in
    the CT's own geometry. Structures needed by the requested ones are computed too but
    only the requested ones are returned.

    Parameters
    ----------
    ct : Volume
        CT in HU, any axis-aligned orientation.
    structures : iterable of str, optional
        Names from :data:`~seldinger.anatomy.result.STRUCTURES`.
    given : mapping of str to ndarray of bool, optional
        Masks already known (in ``ct``'s array order), used instead of computing them: how
        an AI engine hands its structures to the classical steps for the rest.
    modality : str, optional
        DICOM modality when known (anything but CT is refused).
    engine : str
        Name recorded in the result.
    progress : callable, optional
        ``progress(structure, done, total)`` before each step.
    """
    requested = list(STRUCTURES) if structures is None else list(dict.fromkeys(structures))
    order = with_prerequisites(requested)
    require_hu(ct, modality)
    _require_axial(ct)
    original = ct.orientation
    canonical = reorient(ct, CANONICAL)
    require_canonical(canonical)
    given_c = {
        name: reorient(ct.with_array(mask), CANONICAL).array for name, mask in (given or {}).items()
    }
    total = len(order)
    seconds: dict[str, float] = {}
    if progress is not None:
        progress("body", 0, total)
    t0 = time.perf_counter()
    body = given_c["body"] if "body" in given_c else segment_body(canonical)
    seconds["body"] = time.perf_counter() - t0
    if not body.any():
        raise AnatomyError(
            "no body found in the image (nothing above -300 HU that forms a patient): "
            "check that this is a CT of a patient in HU."
        )
    box = bounding_slices(body, pad=_CROP_PAD)
    # A contiguous copy: every step sweeps the cropped CT many times.
    cropped = canonical.crop_index(box)
    run = _Run(
        ct=cropped.with_array(np.ascontiguousarray(cropped.array)),
        given={name: mask[box] for name, mask in given_c.items()},
    )
    run.masks["body"] = body[box]
    slice_mm = float(canonical.spacing_mm[2])
    if slice_mm > THICK_SLICE_MM and any(n in order for n in ("vessels", *FISSURE_NAMES)):
        run.notes.append(
            f"slices of {slice_mm:g} mm: small vessels and the fissures are partly lost between "
            f"them, so vessel distances and fissure crossings are less reliable than on slices "
            f"of {THICK_SLICE_MM:g} mm or thinner; reconstruct thinner slices if the scanner "
            "kept the raw data."
        )
    for done, name in enumerate(order[1:], start=1):
        if progress is not None:
            progress(name, done, total)
        t0 = time.perf_counter()
        _step(run, name)
        seconds[name] = time.perf_counter() - t0
    seconds["lung_left"] = seconds["lung_right"] = seconds.get("lung_left", 0.0) / 2.0
    if progress is not None:
        progress("done", total, total)

    def back(array: np.ndarray[Any, Any], fill: Any = False) -> Volume:
        full = np.full(canonical.shape, fill, dtype=array.dtype)
        full[box] = array
        out = reorient(canonical.with_array(full), original)
        return ct.with_array(out.array)

    masks = {name: back(run.masks[name]) for name in requested if name in run.masks}
    radius = None
    if run.radius_mm is not None and "vessels" in masks:
        radius = back(run.radius_mm.astype(np.float32), fill=np.float32(0.0))
    return Anatomy(
        masks=masks,
        seconds={name: seconds.get(name, 0.0) for name in masks},
        engine=engine,
        notes=tuple(run.notes),
        airway_graph=run.graph if "airways" in masks else None,
        volumes={} if radius is None else {RADIUS: radius},
        laa_percent=run.laa_percent if "emphysema" in masks else None,
        esophagus_centreline=run.esophagus_centreline if "esophagus" in masks else None,
    )
