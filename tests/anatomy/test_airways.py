"""Airway lumen segmentation and its centreline tree: phantoms, then lidc-idri-0001."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from reference import LUNG_LOBES, dice, reference_mask
from seldinger.anatomy.airway_graph import (
    AirwayGraph,
    airway_graph,
    label_airway_voxels,
    skeleton_graph,
)
from seldinger.anatomy.airways import find_trachea, segment_airways
from seldinger.anatomy.errors import AnatomyError
from seldinger.imaging import Volume
from shared_paths import LIDC

# --------------------------------------------------------------------------- phantom

SPACING_MM = (0.7, 0.7, 2.5)  # the anisotropy of lidc-idri-0001
SHAPE = (200, 160, 64)  # 140 x 112 x 160 mm
TISSUE_HU, AIR_HU, LUNG_HU = 40, -1000, -850

# Y phantom in LPS mm (the affine is diag(spacing), origin 0): trachea straight down the
# midline, main bronchi 40 degrees off vertical to patient left (+x) and right (-x).
CARINA_LPS_MM = np.array([70.0, 56.0, 90.0])
TOP_LPS_MM = np.array([70.0, 56.0, 170.0])  # beyond the top slice: open trachea
TRACHEA_RADIUS_MM = 7.0
BRONCHUS_RADIUS_MM = 4.0
BRONCHUS_LENGTH_MM = 50.0
_ANGLE = np.deg2rad(40.0)
LEFT_END_LPS_MM = CARINA_LPS_MM + BRONCHUS_LENGTH_MM * np.array(
    [np.sin(_ANGLE), 0, -np.cos(_ANGLE)]
)
RIGHT_END_LPS_MM = CARINA_LPS_MM + BRONCHUS_LENGTH_MM * np.array(
    [-np.sin(_ANGLE), 0, -np.cos(_ANGLE)]
)


def _capsule(points: np.ndarray, a: np.ndarray, b: np.ndarray, radius_mm: float) -> np.ndarray:
    """Points (…, 3) within radius_mm of the segment a-b."""
    ab = b - a
    t = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[..., None] * ab), axis=-1) <= radius_mm


def _grid_lps() -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1)
    return idx * np.array(SPACING_MM)


def _y_lumen() -> np.ndarray:
    p = _grid_lps()
    return (
        _capsule(p, TOP_LPS_MM, CARINA_LPS_MM, TRACHEA_RADIUS_MM)
        | _capsule(p, CARINA_LPS_MM, LEFT_END_LPS_MM, BRONCHUS_RADIUS_MM)
        | _capsule(p, CARINA_LPS_MM, RIGHT_END_LPS_MM, BRONCHUS_RADIUS_MM)
    )


def _phantom_ct(lumen: np.ndarray, lung: np.ndarray | None = None, seed: int = 20240611) -> Volume:
    """Soft-tissue block with the air lumen (and optional lung) and a little noise."""
    rng = np.random.default_rng(seed)
    hu = np.full(SHAPE, TISSUE_HU, dtype=np.float64)
    if lung is not None:
        hu[lung] = LUNG_HU
    hu[lumen] = AIR_HU
    hu += rng.normal(0.0, 15.0, SHAPE)
    return Volume(np.round(hu).astype(np.int16), np.diag([*SPACING_MM, 1.0]))


@pytest.fixture(scope="module")
def y_lumen() -> np.ndarray:
    return _y_lumen()


@pytest.fixture(scope="module")
def y_graph(y_lumen: np.ndarray) -> AirwayGraph:
    return airway_graph(_phantom_ct(y_lumen), y_lumen)


def test_skeleton_graph_reads_a_t_junction() -> None:
    sk = np.zeros((9, 3, 9), dtype=bool)
    sk[4, 1, 0:5] = True  # stem up to the junction at (4, 1, 4)
    sk[0:9, 1, 5] = True  # crossbar just above it
    nodes, edges = skeleton_graph(sk)
    ends = {tuple(np.rint(nodes[a]).astype(int)) for a, b, p in edges for a in (a, b)}
    assert (4, 1, 0) in ends and (0, 1, 5) in ends and (8, 1, 5) in ends
    assert len(edges) == 3


def test_phantom_graph_branch_point_radii_generations(y_graph: AirwayGraph) -> None:
    g = y_graph
    assert len(g.branches) == 3
    trachea = g.root
    assert trachea.label == "trachea" and trachea.generation == 0 and trachea.parent is None
    left, right = g.by_label("main_bronchus_left"), g.by_label("main_bronchus_right")
    assert {left.parent, right.parent} == {0} and left.generation == right.generation == 1
    # left is +x (patient left in LPS)
    assert left.points_lps_mm[-1, 0] > CARINA_LPS_MM[0] > right.points_lps_mm[-1, 0]
    # one branch point, at the carina
    assert g.branch_points_lps_mm.shape == (1, 3)
    assert np.linalg.norm(g.branch_points_lps_mm[0] - CARINA_LPS_MM) < 1.5
    # proximal -> distal: the trachea runs down to the carina, bronchi away from it
    assert trachea.points_lps_mm[0, 2] > trachea.points_lps_mm[-1, 2]
    assert np.linalg.norm(left.points_lps_mm[-1] - LEFT_END_LPS_MM) < 5.0

    # radii (median over the middle half: away from the ends and the branch point)
    assert abs(trachea.mean_radius_mm - TRACHEA_RADIUS_MM) < 0.5
    for b in (left, right):
        assert abs(b.mean_radius_mm - BRONCHUS_RADIUS_MM) < 0.5
        # length to the rounded tip: carina -> end + radius, less the skeleton's end erosion
        assert BRONCHUS_LENGTH_MM - 3 < b.length_mm < BRONCHUS_LENGTH_MM + BRONCHUS_RADIUS_MM + 1
    assert g.max_generation("left") == g.max_generation("right") == 1
    with pytest.raises(ValueError, match="side must be"):
        g.max_generation("up")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no airway branch labelled 'bronchus_intermedius'"):
        g.by_label("bronchus_intermedius")


def test_graph_refuses_branches_out_of_tree_order(y_graph: AirwayGraph) -> None:
    with pytest.raises(ValueError, match="tree order"):
        AirwayGraph(y_graph.branches[::-1], y_graph.branch_points_lps_mm)


def test_phantom_graph_to_dict_is_json(y_graph: AirwayGraph) -> None:
    d = json.loads(json.dumps(y_graph.to_dict()))
    assert d["branches"][0]["label"] == "trachea"
    assert len(d["branches"][1]["points_lps_mm"][0]) == 3
    assert len(d["branch_points_lps_mm"]) == 1


def test_phantom_label_voxels_split_at_the_carina(
    y_lumen: np.ndarray, y_graph: AirwayGraph
) -> None:
    ct = _phantom_ct(y_lumen)
    parts = label_airway_voxels(y_lumen, y_graph, ct)
    trachea = parts["trachea"]
    z_mm = np.arange(SHAPE[2]) * SPACING_MM[2]
    assert not (trachea & (z_mm < CARINA_LPS_MM[2] - 8.0)).any()
    assert (trachea | parts["left"] | parts["right"]).sum() == y_lumen.sum()
    x_mm = np.arange(SHAPE[0])[:, None, None] * SPACING_MM[0]
    assert (parts["left"] & (x_mm > CARINA_LPS_MM[0])).sum() > 0.95 * parts["left"].sum()


def _lung_with_a_wall_gap(lumen: np.ndarray) -> np.ndarray:
    """Lung (-850 HU) around the distal 40 % of each bronchus, which keeps a 2 mm wall but
    for a 5 mm gap below it at 80 % of its length, where lung touches the lumen."""
    p = _grid_lps()
    lung = np.zeros(SHAPE, dtype=bool)
    for end in (LEFT_END_LPS_MM, RIGHT_END_LPS_MM):
        direction = (end - CARINA_LPS_MM) / BRONCHUS_LENGTH_MM
        start = CARINA_LPS_MM + 0.6 * BRONCHUS_LENGTH_MM * direction
        lung |= _capsule(p, start + 12.0 * direction, end + 15.0 * direction, 12.0)
        lung &= ~_capsule(p, CARINA_LPS_MM, end, BRONCHUS_RADIUS_MM + 2.0)
        gap = CARINA_LPS_MM + 0.8 * BRONCHUS_LENGTH_MM * direction + [0, 0, -BRONCHUS_RADIUS_MM]
        lung |= _capsule(p, gap, gap + np.array([0.0, 0.0, -4.0]), 2.5) & ~lumen
    return lung


def test_segment_phantom_finds_the_lumen_and_stays_out_of_lung() -> None:
    lumen = _y_lumen()
    lung = _lung_with_a_wall_gap(lumen)
    ct = _phantom_ct(lumen, lung)
    body = np.ones(SHAPE, dtype=bool)
    airways = segment_airways(ct, body)
    assert dice(airways, lumen) > 0.9
    assert not (airways & lung).sum() > 0.01 * lung.sum()
    g = airway_graph(ct, airways)
    assert g.max_generation("left") == g.max_generation("right") == 1


def test_no_trachea_in_an_abdomen_ct(abdomen_volume, abdomen_body) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnatomyError, match=r"no trachea found.*chest CT"):
        segment_airways(abdomen_volume, abdomen_body)


def test_no_trachea_in_solid_tissue() -> None:
    ct = _phantom_ct(np.zeros(SHAPE, dtype=bool))
    with pytest.raises(AnatomyError, match="no trachea found"):
        find_trachea(ct, np.ones(SHAPE, dtype=bool))


def test_graph_refuses_an_empty_mask() -> None:
    ct = _phantom_ct(np.zeros(SHAPE, dtype=bool))
    with pytest.raises(AnatomyError, match="empty"):
        airway_graph(ct, np.zeros(SHAPE, dtype=bool))


# ------------------------------------------------------------------------ lidc-idri-0001


@pytest.fixture(scope="module")
def lidc_airways(lidc_volume, lidc_body):  # type: ignore[no-untyped-def]
    return segment_airways(lidc_volume, lidc_body)


@pytest.fixture(scope="module")
def lidc_graph(lidc_volume, lidc_airways):  # type: ignore[no-untyped-def]
    return airway_graph(lidc_volume, lidc_airways)


def test_lidc_airway_volume_and_place(lidc_volume, lidc_body, lidc_airways) -> None:  # type: ignore[no-untyped-def]
    airways = lidc_airways
    volume_ml = airways.sum() * np.prod(lidc_volume.spacing_mm) / 1000.0
    assert 15.0 < volume_ml < 250.0  # trachea alone is ~20 mL; a leak makes litres
    assert not (airways & ~lidc_body).any()
    # Outside the lung parenchyma except the intrapulmonary bronchi: the model's lung lobes
    # contain the bronchi beyond the hilum, so some overlap is expected, but no lung mass.
    lungs = reference_mask(LIDC, *LUNG_LOBES)
    inside = (airways & lungs).sum() * np.prod(lidc_volume.spacing_mm) / 1000.0
    assert inside < 0.5 * volume_ml
    assert inside < 0.01 * lungs.sum() * np.prod(lidc_volume.spacing_mm) / 1000.0


def test_lidc_trachea_matches_the_reference(lidc_volume, lidc_airways, lidc_graph) -> None:  # type: ignore[no-untyped-def]
    airways = lidc_airways
    graph = lidc_graph
    parts = label_airway_voxels(airways, graph, lidc_volume)
    reference = reference_mask(LIDC, "trachea")
    # The model's "trachea" runs on 30 mm into both main bronchi below our branch point (9
    # of its 25 mL) and stops 12 mm below the top of the air column; our trachea runs from
    # the top of the air column to the branch point. Compare over the slices both call
    # trachea: from the branch point to the top of the reference label.
    carina_k = lidc_volume.lps_to_index(graph.root.points_lps_mm[-1])[2]
    k = np.arange(lidc_volume.shape[2])[None, None, :]
    top_k = np.flatnonzero(reference.any(axis=(0, 1)))[-1]
    both = (k >= np.ceil(carina_k)) & (k <= top_k)
    assert dice(parts["trachea"] & both, reference & both) >= 0.85
    # The central airways (trachea + main bronchi) against the whole reference label
    central = parts["trachea"] | parts["main_bronchus_left"] | parts["main_bronchus_right"]
    assert dice(central & (k <= top_k), reference) >= 0.8


def test_lidc_graph_anatomy(lidc_graph) -> None:  # type: ignore[no-untyped-def]
    g = lidc_graph
    assert g.root.label == "trachea" and g.root.parent is None
    children = g.children(0)
    assert {"main_bronchus_left", "main_bronchus_right"} <= {c.label for c in children}
    left, right = g.by_label("main_bronchus_left"), g.by_label("main_bronchus_right")
    assert left.points_lps_mm[-1, 0] > right.points_lps_mm[-1, 0]  # LPS +x is left
    assert left.length_mm > right.length_mm  # the left main bronchus is about twice as long
    assert 6.0 <= g.root.mean_radius_mm <= 13.0
    assert g.max_generation("left") >= 3 and g.max_generation("right") >= 3
    # calibre falls with generation (on average)
    by_gen = {}
    for b in g.branches:
        by_gen.setdefault(min(b.generation, 4), []).append(b.mean_radius_mm)
    means = [np.mean(by_gen[gen]) for gen in sorted(by_gen)]
    assert all(a > b for a, b in itertools.pairwise(means))


def test_lidc_trachea_seed_is_in_the_reference_trachea(lidc_volume, lidc_body) -> None:  # type: ignore[no-untyped-def]
    ijk = find_trachea(lidc_volume, lidc_body)
    reference = reference_mask(LIDC, "trachea")
    assert reference[ijk[:, 0], ijk[:, 1], ijk[:, 2]].mean() > 0.7  # the rest: bronchus, top
