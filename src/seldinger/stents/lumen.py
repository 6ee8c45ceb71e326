"""The lumen along the central airways or the oesophagus: profiles and stenoses.

:func:`measure_airway` walks the labelled branches of an airway tree (trachea, main and
lobar bronchi), measures the cross-section every millimetre
(:func:`~seldinger.stents.sections.measure_cross_sections`, twice: the second pass follows
the centroids of the first, so the planes are normal to the lumen rather than to the
skeleton), and finds the stenoses (:func:`~seldinger.stents.stenosis.find_lesions`).
:func:`measure_tube` does the same along one centreline (the oesophagus, or a few clicks).

Positions along the tree are path lengths from the upper end of the trachea (as far as the
CT shows it); the carina is where the trachea's centreline ends.
Frame and units follow ``docs/conventions.md``: LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from seldinger.anatomy import AirwayBranch, AirwayGraph
from seldinger.anatomy.airways import LUMEN_EDGE_HU
from seldinger.errors import BadInputError
from seldinger.imaging import Volume
from seldinger.stents.centreline import Centreline, centreline_from_points
from seldinger.stents.sections import CrossSections, Ownership, measure_cross_sections
from seldinger.stents.stenosis import MIN_STENOSIS_PERCENT, Lesion, find_lesions
from seldinger.stents.tracking import track_lumen

__all__ = [
    "CENTRAL_AIRWAYS",
    "LumenProfile",
    "LumenSurvey",
    "Stenosis",
    "measure_airway",
    "measure_tube",
]

FloatArray = npt.NDArray[np.float64]

#: Branches measured by :func:`measure_airway`, as ``airway_graph`` labels them.
CENTRAL_AIRWAYS = (
    "trachea",
    "main_bronchus_right",
    "main_bronchus_left",
    "upper_lobe_bronchus_right",
    "bronchus_intermedius",
    "middle_lobe_bronchus",
    "lower_lobe_bronchus_right",
    "upper_lobe_bronchus_left",
    "lower_lobe_bronchus_left",
)
#: Stations this many local radii from a branch point are junction (flared, or cut by the
#: neighbouring branch): measured but neither a lesion nor a reference.
JUNCTION_RADII = 1.0


@dataclass(frozen=True, eq=False)
class LumenProfile:
    """One tube measured every millimetre.

    Parameters
    ----------
    label : str
        ``"trachea"``, a bronchus name, or ``"oesophagus"``.
    centreline : Centreline
        Stations (refined onto the lumen's centroids) and their frames.
    sections : CrossSections
        The measurements.
    path_offset_mm : float
        Path length from the upper end of the trachea to the first station, mm (0 for the
        trachea and the oesophagus).
    junction : ndarray of bool, shape (N,)
        Stations near a branch point, left out of the analysis.
    """

    label: str
    centreline: Centreline
    sections: CrossSections
    path_offset_mm: float = 0.0
    junction: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def path_mm(self) -> FloatArray:
        """Path length of each station from the upper end of the trachea, mm."""
        return np.asarray(self.centreline.s_mm + self.path_offset_mm, dtype=np.float64)

    @property
    def analysed_area_mm2(self) -> FloatArray:
        """Areas with junction stations as NaN."""
        area = self.sections.area_mm2.copy()
        if len(self.junction):
            area[self.junction] = np.nan
        return area

    def at(self, s_mm: float) -> FloatArray:
        """LPS point (mm) at arc length ``s_mm`` along this profile's centreline."""
        pts = self.centreline.points_lps_mm
        s = self.centreline.s_mm
        return np.array([np.interp(s_mm, s, pts[:, d]) for d in range(3)])


@dataclass(frozen=True)
class Stenosis:
    """A narrowing, located on the patient (the issue's ``stenoses`` record)."""

    label: str
    reference_diameter_mm: float
    reference_area_mm2: float
    min_area_mm2: float
    min_diameter_mm: float
    stenosis_area_percent: float
    stenosis_diameter_percent: float
    length_mm: float
    start_lps_mm: tuple[float, float, float]
    end_lps_mm: tuple[float, float, float]
    narrowest_lps_mm: tuple[float, float, float]
    start_path_mm: float
    end_path_mm: float
    occluded: bool
    distance_from_carina_mm: float | None
    distance_from_trachea_top_mm: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (0.01 mm, 0.1 %)."""

        def r(x: float | None, nd: int = 2) -> float | None:
            return None if x is None else round(float(x), nd)

        return {
            "label": self.label,
            "reference_diameter_mm": r(self.reference_diameter_mm),
            "reference_area_mm2": r(self.reference_area_mm2),
            "min_area_mm2": r(self.min_area_mm2),
            "min_diameter_mm": r(self.min_diameter_mm),
            "stenosis_area_percent": r(self.stenosis_area_percent, 1),
            "stenosis_diameter_percent": r(self.stenosis_diameter_percent, 1),
            "length_mm": r(self.length_mm),
            "start_lps_mm": [round(v, 2) for v in self.start_lps_mm],
            "end_lps_mm": [round(v, 2) for v in self.end_lps_mm],
            "narrowest_lps_mm": [round(v, 2) for v in self.narrowest_lps_mm],
            "occluded": self.occluded,
            "distance_from_carina_mm": r(self.distance_from_carina_mm),
            "distance_from_trachea_top_mm": r(self.distance_from_trachea_top_mm),
        }


@dataclass(frozen=True, eq=False)
class LumenSurvey:
    """Every profile measured and the stenoses found on them."""

    organ: str
    profiles: tuple[LumenProfile, ...]
    stenoses: tuple[Stenosis, ...]
    carina_path_mm: float | None
    carina_lps_mm: FloatArray | None
    notes: tuple[str, ...] = ()

    def profile(self, label: str) -> LumenProfile:
        """The profile of ``label``; KeyError naming those present."""
        for p in self.profiles:
            if p.label == label:
                return p
        raise KeyError(f"no profile {label!r}; measured {[p.label for p in self.profiles]}.")

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the stenoses and, per profile, its length and diameters."""
        branches = []
        for p in self.profiles:
            ok = p.sections.status == "ok"
            d = p.sections.equivalent_diameter_mm[ok & ~p.junction]
            branches.append(
                {
                    "label": p.label,
                    "length_mm": round(p.centreline.length_mm, 1),
                    "stations": len(p.centreline),
                    "measured_stations": int(ok.sum()),
                    "median_diameter_mm": round(float(np.median(d)), 2) if len(d) else None,
                    "min_diameter_mm": round(float(d.min()), 2) if len(d) else None,
                    "max_diameter_mm": round(float(d.max()), 2) if len(d) else None,
                }
            )
        return {
            "organ": self.organ,
            "stenoses": [s.to_dict() for s in self.stenoses],
            "branches": branches,
            "carina_lps_mm": None
            if self.carina_lps_mm is None
            else np.round(self.carina_lps_mm, 2).tolist(),
            "notes": list(self.notes),
        }


def _measure(
    image: Volume,
    points_lps_mm: FloatArray,
    *,
    radius_mm: float,
    edge_level: float,
    lumen_below: bool,
    what: str,
    ownership: Ownership | None = None,
    own: int = 0,
) -> tuple[Centreline, CrossSections]:
    """Two passes: on the given centreline, then on the smoothed centroids of the first."""
    half_width = 2.0 * radius_mm + 4.0
    search = max(0.6 * radius_mm, 2.0)
    line = centreline_from_points(points_lps_mm, what=what)
    sections = measure_cross_sections(
        image,
        line,
        edge_level=edge_level,
        lumen_below=lumen_below,
        half_width_mm=half_width,
        search_radius_mm=search,
        ownership=ownership,
        own=own,
    )
    ok = sections.status == "ok"
    if ok.sum() >= max(3, len(line) // 2):
        centres = line.points_lps_mm.copy()
        centres[ok] = sections.centroid_lps_mm[ok]
        # keep the ends on the given centreline so the branch still meets its neighbours
        centres[0], centres[-1] = line.points_lps_mm[0], line.points_lps_mm[-1]
        line = centreline_from_points(centres, what=what)
        sections = measure_cross_sections(
            image,
            line,
            edge_level=edge_level,
            lumen_below=lumen_below,
            half_width_mm=half_width,
            search_radius_mm=search,
            ownership=ownership,
            own=own,
        )
    return line, sections


def _junction(
    line: Centreline, start_radius_mm: float, end_radius_mm: float
) -> npt.NDArray[np.bool_]:
    s = line.s_mm
    near = np.zeros(len(s), dtype=bool)
    if start_radius_mm > 0:
        near |= s < JUNCTION_RADII * start_radius_mm
    if end_radius_mm > 0:
        near |= s > s[-1] - JUNCTION_RADII * end_radius_mm
    return near


def _triple(point: FloatArray) -> tuple[float, float, float]:
    return float(point[0]), float(point[1]), float(point[2])


def _stenosis(
    profile: LumenProfile,
    lesion: Lesion,
    carina_path_mm: float | None,
    is_airway: bool,
) -> Stenosis:
    s = profile.centreline.s_mm
    k = int(np.argmin(np.abs(s - lesion.min_at_mm)))
    start_path = lesion.start_mm + profile.path_offset_mm
    end_path = lesion.end_mm + profile.path_offset_mm
    to_carina: float | None = None
    if carina_path_mm is not None:
        if profile.label == "trachea":
            to_carina = carina_path_mm - end_path
        else:
            to_carina = start_path - carina_path_mm
    return Stenosis(
        label=profile.label,
        reference_diameter_mm=lesion.reference_diameter_mm,
        reference_area_mm2=lesion.reference_area_mm2,
        min_area_mm2=lesion.min_area_mm2,
        min_diameter_mm=float(profile.sections.min_diameter_mm[k]),
        stenosis_area_percent=lesion.stenosis_area_percent,
        stenosis_diameter_percent=lesion.stenosis_diameter_percent,
        length_mm=lesion.length_mm,
        start_lps_mm=_triple(profile.at(lesion.start_mm)),
        end_lps_mm=_triple(profile.at(lesion.end_mm)),
        narrowest_lps_mm=_triple(profile.at(lesion.min_at_mm)),
        start_path_mm=start_path,
        end_path_mm=end_path,
        occluded=lesion.occluded,
        distance_from_carina_mm=to_carina,
        distance_from_trachea_top_mm=start_path if is_airway else None,
    )


def measure_airway(
    ct: Volume,
    graph: AirwayGraph,
    airways: Volume | None = None,
    *,
    labels: tuple[str, ...] = CENTRAL_AIRWAYS,
    min_stenosis_percent: float = MIN_STENOSIS_PERCENT,
    edge_level_hu: float = LUMEN_EDGE_HU,
) -> LumenSurvey:
    """Lumen every millimetre along the central airways, and the stenoses on it.

    Parameters
    ----------
    ct : Volume
        The CT in HU (any axis-aligned or oblique grid).
    graph : AirwayGraph
        Its airway tree (:func:`seldinger.anatomy.airway_graph.airway_graph`), labelled.
    airways : Volume, optional
        The airway lumen mask (bool, any grid): air farther than
        :data:`~seldinger.stents.sections.LUMEN_SLACK_MM` from it (lung behind a thin
        wall) is not lumen.
    labels : tuple of str
        Branches to measure (those present in the graph are).
    min_stenosis_percent : float
        Smallest stenosis by area reported, %.
    edge_level_hu : float
        Lumen edge level, HU (half-way between air and the wall).

    Returns
    -------
    LumenSurvey

    Raises
    ------
    BadInputError
        The graph has no trachea (an empty or unlabelled tree).
    """
    if len(graph) == 0 or graph.root.label != "trachea":
        raise BadInputError(
            "the airway tree has no trachea to measure from; segment the airways first "
            "(`seldinger segment CT --out DIR`) or give a lumen mask that contains the trachea."
        )
    by_id = {b.id: b for b in graph.branches}
    path_start: dict[int, float] = {0: 0.0}
    for b in graph.branches:  # parents precede children
        if b.parent is not None:
            path_start[b.id] = path_start[b.parent] + by_id[b.parent].length_mm
    notes: list[str] = []
    graph, airways, tracked_carina = _extend_stopped_branches(
        ct, graph, airways, edge_level_hu, notes
    )
    ownership = _ownership(graph, airways) if len(graph) > 1 or airways is not None else None
    profiles = []
    for b in graph.branches:
        if b.label in labels:
            profiles.append(_branch_profile(ct, graph, b, 0.0, edge_level_hu, ownership))
    upper_mm = _upper_end_mm(profiles[0])
    if upper_mm > 0:
        notes.append(
            f"the first {upper_mm:.0f} mm of the imaged airway are narrower than the trachea "
            "below and open at the top of the CT (larynx, subglottis): not analysed; the "
            "upper end of the trachea is taken below them."
        )
        trachea_profile = profiles[0]
        profiles[0] = replace(
            trachea_profile,
            junction=trachea_profile.junction | (trachea_profile.centreline.s_mm < upper_mm),
        )
    profiles = [
        replace(p, path_offset_mm=path_start[graph.by_label(p.label).id] - upper_mm)
        for p in profiles
    ]
    trachea = graph.root
    has_carina = bool(graph.children(0)) or tracked_carina
    carina_path = trachea.length_mm - upper_mm if has_carina else None
    stenoses = []
    for p in profiles:
        for lesion in find_lesions(
            p.centreline.s_mm,
            p.analysed_area_mm2,
            min_stenosis_percent=min_stenosis_percent,
            fallback_reference_mm2=_fallback_reference(p),
        ):
            if lesion.bounded:
                stenoses.append(_stenosis(p, lesion, carina_path, True))
            else:
                notes.append(_unbounded_note(p, lesion))
    if not graph.children(0):
        notes.append(
            "the segmented airway tree has no bronchi: they are not measured"
            + ("; the carina is where the trachea was followed to." if has_carina else ".")
        )
    carina = trachea.points_lps_mm[-1] if carina_path is not None else None
    return LumenSurvey(
        "airway", tuple(profiles), tuple(stenoses), carina_path, carina, tuple(notes)
    )


#: Branches continued on the CT (:func:`~seldinger.stents.tracking.track_lumen`) when the
#: segmented tree ends with them.
TRACKED = ("trachea", "main_bronchus_right", "main_bronchus_left")


def _extend_stopped_branches(
    ct: Volume,
    graph: AirwayGraph,
    airways: Volume | None,
    level: float,
    notes: list[str],
) -> tuple[AirwayGraph, Volume | None, bool]:
    """The graph with central leaf branches continued on the CT, the lumen mask grown
    around what was tracked, and whether the trachea was followed to its bifurcation."""
    branches = list(graph.branches)
    carina_found = False
    tracked_points = []
    for index, b in enumerate(branches):
        if b.label not in TRACKED or graph.children(b.id) or len(b.points_lps_mm) < 3:
            continue
        reference = np.pi * float(np.median(b.radius_mm)) ** 2
        track = track_lumen(ct, b.points_lps_mm, reference_area_mm2=reference, edge_level_hu=level)
        if len(track.points_lps_mm) < 3:
            continue
        points = np.concatenate([b.points_lps_mm, track.points_lps_mm])
        radius = np.concatenate(
            [b.radius_mm, np.full(len(track.points_lps_mm), float(np.median(b.radius_mm)))]
        )
        length = float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
        branches[index] = replace(b, points_lps_mm=points, radius_mm=radius, length_mm=length)
        tracked_points.append((track.points_lps_mm, float(np.max(b.radius_mm))))
        carina_found |= b.label == "trachea" and track.reached == "bifurcation"
        end = np.round(b.points_lps_mm[-1], 1).tolist()
        notes.append(
            f"the segmented {b.label} stops at LPS {end} mm; its lumen was followed "
            f"{len(track.points_lps_mm):.0f} mm further on the CT (to a {track.reached})"
            + (
                f", across {track.crossed_occlusion_mm:.0f} mm without lumen"
                if track.crossed_occlusion_mm > 0
                else ""
            )
            + "."
        )
    if not tracked_points:
        return graph, airways, False
    new_graph = AirwayGraph(tuple(branches), graph.branch_points_lps_mm)
    if airways is None:
        return new_graph, None, carina_found
    return new_graph, _grow_mask(airways, tracked_points), carina_found


def _grow_mask(airways: Volume, tubes: list[tuple[FloatArray, float]]) -> Volume:
    """The mask with a tube of 1.5 radii around each tracked stretch added."""
    mask = np.asarray(airways.array, dtype=bool).copy()
    for points, radius in tubes:
        reach = 1.5 * radius
        corners = np.stack([points.min(axis=0) - reach, points.max(axis=0) + reach])
        ijk = airways.lps_to_index(
            np.array(np.meshgrid(*corners.T, indexing="ij")).reshape(3, -1).T
        )
        top = np.asarray(mask.shape) - 1
        lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, top)
        hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int), 0, top)
        box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
        grid = np.stack(np.meshgrid(*[np.arange(x.start, x.stop) for x in box], indexing="ij"), -1)
        lps = airways.index_to_lps(grid.reshape(-1, 3).astype(np.float64))
        distance, _ = cKDTree(points).query(lps)
        mask[box] |= (distance <= reach).reshape(grid.shape[:3])
    return airways.with_array(mask)


#: The upper end of the trachea is where the area first reaches this fraction of the
#: trachea's median area (from the top of the CT down).
UPPER_END_FRACTION = 0.75


def _upper_end_mm(profile: LumenProfile) -> float:
    """Arc length below which the trachea proper starts (0 if it starts at the top)."""
    area = profile.analysed_area_mm2
    ok = np.isfinite(area)
    if ok.sum() < 5:
        return 0.0
    reached = np.flatnonzero(ok & (area >= UPPER_END_FRACTION * np.median(area[ok])))
    if len(reached) == 0 or reached[0] == 0:
        return 0.0
    return float(profile.centreline.s_mm[reached[0]])


def _unbounded_note(profile: LumenProfile, lesion: Lesion) -> str:
    where = profile.at(lesion.min_at_mm)
    return (
        f"{profile.label}: a narrowing to {lesion.min_area_mm2:.0f} mm² near LPS "
        f"{np.round(where, 1).tolist()} mm runs into a branch point or the end of the "
        "measured lumen, so its healthy reference and its extent are not seen: not graded "
        "(check it on the CT)."
    )


def _fallback_reference(profile: LumenProfile) -> float | None:
    area = profile.analysed_area_mm2
    ok = np.isfinite(area) & (area > 0)
    return float(np.percentile(area[ok], 75)) if ok.sum() >= 3 else None


def _ownership(graph: AirwayGraph, airways: Volume | None) -> Ownership:
    """The lumen split between the graph's branches by their nearest centreline."""
    points = []
    ids = []
    for b in graph.branches:
        line = centreline_from_points(b.points_lps_mm, step_mm=0.5, smooth_sigma_mm=0.0)
        points.append(line.points_lps_mm)
        ids.append(np.full(len(line), b.id))
    return Ownership.from_centrelines(np.concatenate(points), np.concatenate(ids), airways)


def _branch_profile(
    ct: Volume,
    graph: AirwayGraph,
    branch: AirwayBranch,
    offset_mm: float,
    level: float,
    ownership: Ownership | None,
) -> LumenProfile:
    radius = float(np.max(branch.radius_mm)) if branch.label == "trachea" else branch.mean_radius_mm
    line, sections = _measure(
        ct,
        branch.points_lps_mm,
        radius_mm=max(radius, 2.0),
        edge_level=level,
        lumen_below=True,
        what=f"{branch.label} centreline",
        ownership=ownership,
        own=branch.id,
    )
    own_r = branch.mean_radius_mm
    start_r = 0.0
    if branch.parent is not None:
        start_r = max(graph.branches[branch.parent].mean_radius_mm, 1.5 * own_r)
    end_r = 1.5 * own_r if graph.children(branch.id) else 0.0
    junction = _junction(line, start_r, end_r)
    return LumenProfile(branch.label, line, sections, offset_mm, junction)


def measure_tube(
    image: Volume,
    points_lps_mm: npt.ArrayLike,
    *,
    label: str = "oesophagus",
    radius_mm: float = 10.0,
    edge_level: float = 0.5,
    lumen_below: bool = False,
    min_stenosis_percent: float = MIN_STENOSIS_PERCENT,
) -> LumenSurvey:
    """Lumen every millimetre along one centreline (the oesophagus, or clicked points).

    Parameters
    ----------
    image : Volume
        A mask as 0/1 (default: ``edge_level`` 0.5, lumen above it) or a CT in HU
        (``edge_level=-500, lumen_below=True``).
    points_lps_mm : array_like, shape (N, 3)
        The centreline, top first, LPS mm.
    label : str
        Name of the tube.
    radius_mm : float
        Expected radius, mm (sets the sampled square: 2.5 radii + 4 mm half-width).
    edge_level, lumen_below
        See :func:`~seldinger.stents.sections.measure_cross_sections`.
    min_stenosis_percent : float
        Smallest stenosis by area reported, %.

    Returns
    -------
    LumenSurvey
    """
    if image.array.dtype == bool:
        image = image.with_array(image.array.astype(np.float32))
    line, sections = _measure(
        image,
        np.asarray(points_lps_mm, dtype=np.float64),
        radius_mm=radius_mm,
        edge_level=edge_level,
        lumen_below=lumen_below,
        what=f"{label} centreline",
    )
    profile = LumenProfile(label, line, sections, 0.0, np.zeros(len(line), dtype=bool))
    stenoses = []
    notes = []
    for lesion in find_lesions(
        line.s_mm,
        profile.analysed_area_mm2,
        min_stenosis_percent=min_stenosis_percent,
        fallback_reference_mm2=_fallback_reference(profile),
    ):
        if lesion.bounded:
            stenoses.append(_stenosis(profile, lesion, None, False))
        else:
            notes.append(_unbounded_note(profile, lesion))
    return LumenSurvey(label, (profile,), tuple(stenoses), None, None, tuple(notes))
