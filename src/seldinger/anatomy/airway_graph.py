"""Airway centreline graph: branches from the trachea down, with calibre and generation.

The airway lumen mask (:func:`seldinger.anatomy.airways.segment_airways`) is resampled to an
isotropic grid around the tree, thinned to a one-voxel skeleton (Lee's 3-D thinning,
``skimage.morphology.skeletonize``), and the skeleton is read as a graph: branch points and
ends are nodes, the voxel paths between them are branches. Short spurs that thinning grows on
bumpy walls are pruned, the tree is rooted at the top of the trachea, and each branch gets its
generation (tree depth: trachea 0, main bronchi 1, lobar 2, segmental 3 …), its lumen radius
along it (from the cross-section area), and an anatomical label where geometry tells it.

Generations count every division the CT resolves, as in Weibel's dichotomous model [2]_: a
small side branch that leaves a bronchus makes the bronchus beyond it one generation deeper,
so the counts run ahead of the named (segmental, subsegmental) generations.

Frame and units follow ``docs/conventions.md``: points are LPS millimetres.

References
----------
.. [1] Lee TC, Kashyap RL, Chu CN. Building skeleton models via 3-D medial surface/axis
   thinning algorithms. CVGIP: Graphical Models and Image Processing 56(6):462-478, 1994.
.. [2] Weibel ER. Morphometry of the Human Lung. Springer, 1963 (generations of the
   conducting airways; left main bronchus about twice as long as the right).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from seldinger.anatomy.airway_tree import (
    MAIN_BRONCHUS_LEFT,
    MAIN_BRONCHUS_RIGHT,
    TRACHEA,
    AirwayBranch,
    AirwayGraph,
)
from seldinger.anatomy.airways import resample_linear
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.morphology import BoolArray, bounding_slices, largest_component
from seldinger.anatomy.skeleton import skeleton_graph
from seldinger.imaging import Volume

__all__ = [
    "AirwayBranch",
    "AirwayGraph",
    "airway_graph",
    "label_airway_voxels",
    "skeleton_graph",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Grid spacing (mm) the mask is resampled to before thinning: isotropic, so the skeleton
#: does not favour the fine in-plane axes of a 0.7 x 0.7 x 2.5 mm CT.
GRAPH_SPACING_MM = 0.8

#: A terminal branch is a spur (removed) when it reaches less than this far beyond the wall
#: of the airway it leaves, or less than its own radius: thinning grows such stubs on wall
#: bumps and at the flat top of the trachea.
MIN_SPUR_MM = 3.0

# Level of the resampled mask that is thinned (see airway_graph).
_ISO_LEVEL = 0.3
# Rays and samples per ray of the cross-section radius.
_RAYS = 16
_RAY_SAMPLES = 16

# ----------------------------------------------------------------------------- the tree


@dataclass
class _Segment:
    """A graph edge during pruning: node ids at both ends and the path a -> b (grid units)."""

    a: int
    b: int
    path: FloatArray
    alive: bool = True


def airway_graph(ct: Volume, airways: BoolArray) -> AirwayGraph:
    """Centreline tree of an airway lumen mask, rooted at the top of the trachea.

    The mask is resampled (trilinear) to an isotropic :data:`GRAPH_SPACING_MM` grid around
    it, its largest 26-connected part thinned (Lee's 3-D thinning), and the skeleton read
    as a graph (:func:`skeleton_graph`). Terminal branches reaching less than
    max(:data:`MIN_SPUR_MM`, their own radius) beyond the wall of the airway they leave are
    pruned, repeatedly, and chains through two-way nodes joined. The tree is rooted at the
    highest end (the top of the trachea: LPS +z is superior), cycles (touching bronchi) are
    cut breadth-first, and each branch gets its generation (depth), its lumen radius (of
    the circle with the area of the lumen's cross-section normal to the centreline, edge
    where the resampled mask crosses 0.5), and a label: the root is the trachea; of its
    children, the two carrying the largest subtrees (length x radius^2) are the main
    bronchi, the left one lying at larger LPS x. Lobar bronchi are named when the main
    bronchi divide as usual: the upper lobe bronchus is the more superior subtree, and on
    the right the bronchus intermedius divides into the middle lobe bronchus (anterior,
    smaller LPS y) and the lower lobe bronchus.

    Parameters
    ----------
    ct : Volume
        The CT the mask was segmented from (LPS-ordered): gives the grid geometry.
    airways : ndarray of bool, the CT's shape
        Airway lumen (:func:`seldinger.anatomy.airways.segment_airways`).

    Returns
    -------
    AirwayGraph

    Raises
    ------
    AnatomyError
        The mask is empty, of the wrong shape, or too thin to thin into a centreline.
    """
    require_canonical(ct)
    if airways.shape != ct.shape:
        raise AnatomyError(
            f"airway mask shape {airways.shape} differs from the CT's {ct.shape}; pass the "
            "mask segment_airways returned for this CT."
        )
    if not airways.any():
        raise AnatomyError("the airway mask is empty: segment_airways found no lumen to trace.")
    spacing = np.asarray(ct.spacing_mm, dtype=np.float64)
    h = GRAPH_SPACING_MM
    box = bounding_slices(airways, pad=2)
    lo = np.array([s.start for s in box], dtype=np.float64)
    crop = airways[box]
    step = h / spacing
    shape = tuple(int(np.floor((n - 1) / s)) + 1 for n, s in zip(crop.shape, step, strict=True))
    field = np.pad(resample_linear(crop.astype(np.float32), step.tolist(), shape), 1)
    # Interpolation at 0.5 would cut the thin diagonal links of small bronchi on thick
    # slices; 0.3 keeps them (the radius is measured on the 0.5 edge of ``field`` anyway).
    iso = largest_component(field >= _ISO_LEVEL, structure=np.ones((3, 3, 3)))
    skeleton = skeletonize(iso)
    if skeleton.sum() < 2:
        raise AnatomyError(
            "the airway mask is too small to thin into a centreline "
            f"({int(airways.sum())} voxels); check the segmentation."
        )
    radius_of = _inscribed_radius(iso, h)
    nodes, raw_edges = skeleton_graph(skeleton)
    # A self-loop (a little ring where thinning met itself, e.g. at the cut top of the
    # trachea) carries no branch.
    segments = [_Segment(a, b, p) for a, b, p in raw_edges if a != b]
    _prune_spurs(nodes, segments, radius_of, h)
    _cut_cycles(nodes, segments)
    _join_two_way(segments, len(nodes))
    _prune_spurs(nodes, segments, radius_of, h)
    tree = _orient(nodes, segments)

    def to_lps(path: npt.NDArray[np.float64]) -> FloatArray:
        ijk = lo + (path - 1.0) * step  # undo the padding, then iso -> CT index
        return np.asarray(ct.index_to_lps(ijk), dtype=np.float64)

    branches: list[AirwayBranch] = []
    branch_points: list[FloatArray] = []
    for new_id, (parent, generation, path) in enumerate(tree):
        smooth = _smooth(path)
        radius = _cross_section_radius(field, smooth, radius_of(path), h)
        points = to_lps(smooth)
        branches.append(
            AirwayBranch(
                id=new_id,
                parent=parent,
                generation=generation,
                label="",
                points_lps_mm=points,
                radius_mm=radius,
                length_mm=float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()),
            )
        )
    for b in branches:
        if any(c.parent == b.id for c in branches):
            branch_points.append(b.points_lps_mm[-1])
    graph = AirwayGraph(
        branches=tuple(branches),
        branch_points_lps_mm=np.array(branch_points, dtype=np.float64).reshape(-1, 3),
    )
    return _label(graph)


def _inscribed_radius(iso: BoolArray, h: float) -> Callable[[FloatArray], FloatArray]:
    """Distance (mm) from points (grid coordinates) to the nearest voxel outside ``iso``, less h/2.

    At a voxel centre this is the distance transform, which reaches the nearest outside
    voxel *centre*; the lumen edge lies half a voxel nearer. A k-d tree over the outside
    voxels touching the mask answers the few thousand centreline queries without
    transforming the whole box.
    """
    outside = ndi.binary_dilation(iso, structure=ndi.generate_binary_structure(3, 1)) & ~iso
    tree = cKDTree(np.argwhere(outside))

    def radius(points: FloatArray) -> FloatArray:
        distance, _ = tree.query(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        return np.asarray(np.maximum(distance * h - 0.5 * h, 0.5 * h), dtype=np.float64)

    return radius


def _cross_section_radius(
    field: npt.NDArray[np.float32], path: FloatArray, inscribed_mm: FloatArray, h: float
) -> FloatArray:
    """Radius of the circle with the lumen's cross-section area at each centreline point.

    Rays in the plane normal to the centreline are sampled (trilinear) in the resampled
    mask ``field`` until it drops below 0.5, the edge located between samples; the area of
    that star-shaped outline gives ``sqrt(area / pi)``. Unlike the inscribed radius, this
    is the calibre of an oval trachea; rays are capped at 2.5 x the inscribed radius + 2
    voxels, so a neighbouring branch at a bifurcation adds little.
    """
    n = len(path)
    if n == 0:
        return np.zeros(0)
    tangent = np.gradient(path, axis=0) if n > 1 else np.array([[0.0, 0.0, 1.0]])
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    helper = np.where(np.abs(tangent[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(tangent, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(tangent, u)
    theta = np.linspace(0.0, 2.0 * np.pi, _RAYS, endpoint=False)
    rho = np.linspace(0.0, 1.0, _RAY_SAMPLES)
    reach = 2.5 * inscribed_mm / h + 2.0  # voxels
    direction = (
        np.cos(theta)[None, :, None] * u[:, None, :] + np.sin(theta)[None, :, None] * v[:, None, :]
    )
    coords = (
        path[:, None, None, :]
        + (reach[:, None, None, None] * rho[None, None, :, None]) * direction[:, :, None, :]
    )
    values = ndi.map_coordinates(field, coords.reshape(-1, 3).T, order=1, mode="constant")
    values = values.reshape(n, _RAYS, _RAY_SAMPLES)
    outside = values < 0.5
    outside[:, :, -1] = True
    first = outside.argmax(axis=2)  # first sample outside (>= 1 unless the centre is out)
    prev = np.maximum(first - 1, 0)
    v0 = np.take_along_axis(values, prev[..., None], axis=2)[..., 0]
    v1 = np.take_along_axis(values, first[..., None], axis=2)[..., 0]
    frac = np.clip((v0 - 0.5) / np.maximum(v0 - v1, 1e-6), 0.0, 1.0)
    edge = (prev + np.where(first > 0, frac, 0.0)) / (_RAY_SAMPLES - 1) * reach[:, None]
    radius = np.sqrt(np.mean(edge**2, axis=1)) * h
    return np.asarray(np.maximum(radius, 0.5 * h), dtype=np.float64)


def _smooth(path: FloatArray, window: int = 5) -> FloatArray:
    """Moving average along a voxel path (ends kept): takes the staircase out of lengths."""
    n = len(path)
    if n <= 2:
        return path
    w = min(window, n if n % 2 else n - 1)
    half = w // 2
    padded = np.concatenate([np.repeat(path[:1], half, 0), path, np.repeat(path[-1:], half, 0)])
    kernel = np.ones(w) / w
    out = np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(3)], axis=1)
    out[0], out[-1] = path[0], path[-1]
    return out


def _degree(segments: list[_Segment], n_nodes: int) -> npt.NDArray[np.intp]:
    deg = np.zeros(n_nodes, dtype=np.intp)
    for s in segments:
        if s.alive:
            deg[s.a] += 1
            deg[s.b] += 1
    return deg


def _prune_spurs(
    nodes: FloatArray,
    segments: list[_Segment],
    radius_of: Callable[[FloatArray], FloatArray],
    h: float,
) -> None:
    """Remove spurs (shortest first at each branch point) and join two-way nodes, in place."""
    while True:
        deg = _degree(segments, len(nodes))
        best: dict[int, tuple[float, int]] = {}
        for idx, s in enumerate(segments):
            if not s.alive:
                continue
            if deg[s.a] == 1 and deg[s.b] >= 3:
                junction, path = s.b, s.path[::-1]
            elif deg[s.b] == 1 and deg[s.a] >= 3:
                junction, path = s.a, s.path
            else:
                continue
            length_mm = _path_length_mm(path, h)
            r_junction = float(radius_of(path[:1])[0])
            radius = radius_of(path)
            beyond = np.linalg.norm((path - path[0]) * h, axis=1) > r_junction
            own_mm = float(np.median(radius[beyond])) if beyond.any() else 0.0
            spur = length_mm - r_junction < max(MIN_SPUR_MM, own_mm)
            if spur and (junction not in best or length_mm < best[junction][0]):
                best[junction] = (length_mm, idx)
        if not best:
            break
        for _, idx in best.values():
            segments[idx].alive = False
        _join_two_way(segments, len(nodes))


def _join_two_way(segments: list[_Segment], n_nodes: int) -> None:
    """Join the two segments meeting at every node of degree 2 (in place)."""
    while True:
        deg = _degree(segments, n_nodes)
        two = np.flatnonzero(deg == 2)
        joined = False
        for node in two:
            pair = [s for s in segments if s.alive and node in (s.a, s.b)]
            if len(pair) != 2 or pair[0] is pair[1]:
                continue
            s, t = pair
            if s.a == s.b or t.a == t.b:
                continue
            p = s.path if s.b == node else s.path[::-1]
            q = t.path if t.a == node else t.path[::-1]
            start = s.a if s.b == node else s.b
            end = t.b if t.a == node else t.a
            s.a, s.b, s.path = start, end, np.concatenate([p, q[1:]])
            t.alive = False
            joined = True
        if not joined:
            return


def _path_length_mm(path: FloatArray, h: float) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum() * h)


def _cut_cycles(nodes: FloatArray, segments: list[_Segment]) -> None:
    """Drop the segments that close cycles, breadth-first from the highest node (in place).

    Cycles appear where two bronchi touch, or where thinning leaves a small ring.
    """
    alive = [s for s in segments if s.alive]
    if not alive:
        return
    incident: dict[int, list[_Segment]] = {}
    for s in alive:
        incident.setdefault(s.a, []).append(s)
        incident.setdefault(s.b, []).append(s)
    start = max(incident, key=lambda n: nodes[n][2])
    seen = {start}
    used: set[int] = set()
    queue = [start]
    while queue:
        node = queue.pop(0)
        for s in incident[node]:
            if id(s) in used:
                continue
            used.add(id(s))
            other = s.b if s.a == node else s.a
            if other in seen:
                s.alive = False
                continue
            seen.add(other)
            queue.append(other)


def _orient(
    nodes: FloatArray, segments: list[_Segment]
) -> list[tuple[int | None, int, FloatArray]]:
    """Breadth-first tree from the highest end: (parent index, generation, path) per branch.

    Paths run from the proximal to the distal node. A segment reaching a node already in the
    tree (a cycle where bronchi touch) is dropped; a node left with one child is joined
    through, so every branch point has two or more children.
    """
    alive = [s for s in segments if s.alive]
    deg = _degree(alive, len(nodes))
    ends = [n for n in range(len(nodes)) if deg[n] == 1]
    if not alive:
        return []
    root = max(ends, key=lambda n: nodes[n][2]) if ends else alive[0].a
    incident: dict[int, list[_Segment]] = {}
    for s in alive:
        incident.setdefault(s.a, []).append(s)
        incident.setdefault(s.b, []).append(s)
    # First pass: oriented paths and their parent segments.
    out: list[tuple[int | None, FloatArray, int]] = []  # (parent, path, end node)
    seen_nodes = {root}
    used: set[int] = set()
    queue: list[tuple[int, int | None]] = [(root, None)]
    while queue:
        node, parent = queue.pop(0)
        for s in incident.get(node, []):
            if id(s) in used:
                continue
            used.add(id(s))
            other = s.b if s.a == node else s.a
            if other in seen_nodes:
                continue  # closes a cycle
            seen_nodes.add(other)
            path = s.path if s.a == node else s.path[::-1]
            out.append((parent, path, other))
            queue.append((other, len(out) - 1))
    # Join through nodes with a single child (left by cut cycles).
    children: dict[int, list[int]] = {}
    for idx, (parent, _, _) in enumerate(out):
        if parent is not None:
            children.setdefault(parent, []).append(idx)
    merged_into = list(range(len(out)))
    paths = [p for _, p, _ in out]
    for idx in range(len(out)):
        kids = children.get(idx, [])
        if len(kids) == 1:
            (kid,) = kids
            target = merged_into[idx]
            paths[target] = np.concatenate([paths[target], paths[kid][1:]])
            merged_into[kid] = target
    keep = [i for i in range(len(out)) if merged_into[i] == i]
    new_index = {old: new for new, old in enumerate(keep)}
    result: list[tuple[int | None, int, FloatArray]] = []
    generation: dict[int, int] = {}
    for old in keep:
        parent = out[old][0]
        new_parent = None if parent is None else new_index[merged_into[parent]]
        gen = 0 if new_parent is None else generation[new_parent] + 1
        generation[new_index[old]] = gen
        result.append((new_parent, gen, paths[old]))
    return result


_LOBAR = {
    MAIN_BRONCHUS_RIGHT: ("upper_lobe_bronchus_right", "bronchus_intermedius"),
    MAIN_BRONCHUS_LEFT: ("upper_lobe_bronchus_left", "lower_lobe_bronchus_left"),
    "bronchus_intermedius": ("middle_lobe_bronchus", "lower_lobe_bronchus_right"),
}


def _label(graph: AirwayGraph) -> AirwayGraph:
    """Name the trachea, main bronchi and (when they divide as usual) the lobar bronchi."""
    if not graph.branches:
        return graph
    labels = {0: TRACHEA}

    def weight(branch_id: int) -> float:
        return float(
            sum(b.length_mm * float(np.median(b.radius_mm)) ** 2 for b in graph.subtree(branch_id))
        )

    def centroid(branch_id: int) -> FloatArray:
        pts = np.concatenate([b.points_lps_mm for b in graph.subtree(branch_id)])
        return np.asarray(pts.mean(axis=0), dtype=np.float64)

    def two_largest(branch_id: int) -> list[int]:
        kids = [b.id for b in graph.children(branch_id)]
        return sorted(kids, key=weight, reverse=True)[:2] if len(kids) >= 2 else []

    mains = two_largest(0)
    if mains:
        left, right = sorted(mains, key=lambda i: -centroid(i)[0])  # LPS +x is left
        labels[left] = MAIN_BRONCHUS_LEFT
        labels[right] = MAIN_BRONCHUS_RIGHT
        for main in (right, left):
            kids = two_largest(main)
            if kids:
                # upper lobe bronchus: the more superior subtree (LPS +z)
                upper, other = sorted(kids, key=lambda i: -centroid(i)[2])
                labels[upper], labels[other] = _LOBAR[labels[main]]
        if "bronchus_intermedius" in labels.values():
            bi = next(i for i, lab in labels.items() if lab == "bronchus_intermedius")
            kids = two_largest(bi)
            if kids:
                # middle lobe bronchus: the more anterior subtree (smaller LPS y)
                middle, lower = sorted(kids, key=lambda i: centroid(i)[1])
                labels[middle], labels[lower] = _LOBAR["bronchus_intermedius"]
    branches = tuple(replace(b, label=labels.get(b.id, "")) for b in graph.branches)
    return AirwayGraph(branches=branches, branch_points_lps_mm=graph.branch_points_lps_mm)


def label_airway_voxels(airways: BoolArray, graph: AirwayGraph, ct: Volume) -> dict[str, BoolArray]:
    """Split the airway mask by branch: every voxel goes to the nearest centreline point.

    Parameters
    ----------
    airways : ndarray of bool, the CT's shape
        Airway lumen mask.
    graph : AirwayGraph
        Its centreline tree (:func:`airway_graph`).
    ct : Volume
        The CT (grid geometry).

    Returns
    -------
    dict of str to ndarray of bool (the CT's shape)
        One mask per labelled branch (``"trachea"``, ``"main_bronchus_left"`` …; the
        trachea runs from its top to the carina, the main bronchi from the carina to their
        first division), plus ``"left"`` and ``"right"``: the whole bronchial tree of each
        lung, main bronchus included.
    """
    require_canonical(ct)
    if airways.shape != ct.shape:
        raise AnatomyError(f"airway mask shape {airways.shape} differs from the CT's {ct.shape}.")
    box = bounding_slices(airways, pad=1)
    lo = np.array([s.start for s in box])
    crop = airways[box]
    seeds = np.zeros(crop.shape, dtype=np.int32)
    for b in graph.branches:
        ijk = np.rint(ct.lps_to_index(b.points_lps_mm)).astype(np.intp) - lo
        ijk = np.clip(ijk, 0, np.array(crop.shape) - 1)
        seeds[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = b.id + 1
    nearest = ndi.distance_transform_edt(
        seeds == 0, sampling=ct.spacing_mm, return_distances=False, return_indices=True
    )
    owner = seeds[tuple(nearest)] - 1
    owner[~crop] = -1

    def full(mask: BoolArray) -> BoolArray:
        out = np.zeros(ct.shape, dtype=bool)
        out[box] = mask
        return out

    result: dict[str, BoolArray] = {}
    for b in graph.branches:
        if b.label:
            result[b.label] = full(owner == b.id)
    for side, label in (("left", MAIN_BRONCHUS_LEFT), ("right", MAIN_BRONCHUS_RIGHT)):
        try:
            main = graph.by_label(label)
        except KeyError:
            continue
        ids = np.array([b.id for b in graph.subtree(main.id)])
        result[side] = full(np.isin(owner, ids))
    return result
