"""Where each lobe is known to be: its lobar bronchus subtree and the vessels that follow it.

Every lobe is ventilated by its own lobar bronchus and supplied by the pulmonary artery
branch running beside it; neither crosses a complete fissure. The airway tree alone marks
only a few branches per lobe on a 2.5 mm CT (lidc-idri-0001: the middle lobe bronchus is
an 18 mm stub at the hilum), but the vessel tree reaches the periphery. Cut at the hilum,
the pulmonary vessels inside the lungs fall apart into components ("atoms") that each lie
within one lobe: with the lungs eroded by 2 mm, every one of the 40 largest vessel
components of lidc-idri-0001 lies in a single lobe of the reference labels (the largest
mixed one holds 20 voxels of another). Each atom takes the lobe of the lobar airway
centreline nearest to it (39 of those 40 right), which spreads the lobe seeds from a few
bronchi over the whole vascular tree, as in the vessel-based lobe territories of Kuhnigk
et al. (2005) and Lassen et al. (2013).

Geometry follows ``docs/conventions.md``: LPS-ordered arrays, positions in LPS mm.

References
----------
.. [1] Kuhnigk JM, Dicken V, Zidowitz S, et al. Informatics in radiology (infoRAD): new
   tools for computer assistance in thoracic CT. Part 1. Functional analysis of lungs, lung
   lobes, and bronchopulmonary segments. RadioGraphics 25(2):525-536, 2005.
.. [2] Lassen B, van Rikxoort EM, Schmidt M, Kerkstra S, van Ginneken B, Kuhnigk JM.
   Automatic segmentation of the pulmonary lobes from chest CT scans based on fissures,
   vessels, and bronchi. IEEE Trans Med Imaging 32(2):210-222, 2013.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from seldinger.anatomy.airway_tree import AirwayGraph
from seldinger.anatomy.morphology import BoolArray, bounding_slices, ellipsoid
from seldinger.anatomy.vesselness import upsample_k
from seldinger.imaging import Volume

__all__ = [
    "ATOM_EROSION_MM",
    "LOBAR_BRONCHI",
    "WorkGrid",
    "bronchus_seeds",
    "lobar_centrelines",
    "vessel_atoms",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

#: The airway branch label (``airway_graph``) whose subtree ventilates each lobe code
#: (1 upper left, 2 lower left, 3 upper right, 4 middle, 5 lower right).
LOBAR_BRONCHI: Mapping[int, str] = {
    1: "upper_lobe_bronchus_left",
    2: "lower_lobe_bronchus_left",
    3: "upper_lobe_bronchus_right",
    4: "middle_lobe_bronchus",
    5: "lower_lobe_bronchus_right",
}

# Target spacing of the working grid (mm): 2 x 2 in-plane blocks of a 0.7 mm CT, 2.5 mm
# slices split in two. The lobes are 0.2-1 L; nothing in them needs finer steps.
_WORK_MM = 1.3
#: Depths (mm) under the pleura at which the vessel tree is cut into atoms, tried in turn
#: until every seeded lobe has an atom: the cut separates the lobar trees where they enter
#: the lung at the hilum (see the module docstring). At 1.45 mm the middle-lobe tree of
#: lidc-idri-0001 still joins the upper lobe's (and the middle lobe is lost); at 2-3 mm
#: every large atom lies in one lobe.
ATOM_EROSION_MM = (2.0, 3.0, 4.0)
# Bronchus seeds: lumen voxels this close to a lobe's centreline are its bronchi, and the
# lung this close to them is the lobe (mm).
_LUMEN_REACH_MM = 4.0
_BRONCHUS_SEED_MM = 3.0
# A lobe has atoms of its own when they hold at least this many working voxels (about
# 60 mm^3, a 4 mm vessel 5 mm long).
_MIN_ATOM_VOXELS = 25
# An atom farther than this from every lobar airway centreline stays unlabelled (lidc:
# the one mislabelled atom of the 40 largest lies 34 mm from the nearest one).
_ATOM_MAX_DISTANCE_MM = 20.0


@dataclass(frozen=True)
class WorkGrid:
    """The coarser, near-isotropic grid of the lobe computation, over the lungs' box.

    Working voxel (a, b, c) covers CT voxels (a step .. a step + step - 1, b step .. b step
    + step - 1) of CT slice c / up, counted from the ``box`` corner: ``step`` CT voxels per
    in-plane side, ``up`` working slices per CT slice (linear interpolation between
    slices). lidc-idri-0001: step 2, up 2, 1.41 x 1.41 x 1.25 mm.
    """

    box: tuple[slice, ...]
    step: int
    up: int
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]

    @classmethod
    def around(cls, lungs: BoolArray, ct: Volume) -> WorkGrid:
        """The grid over the bounding box of ``lungs`` (a 2-voxel margin) on ``ct``."""
        si, sj, sk = ct.spacing_mm
        step = max(1, round(_WORK_MM / min(si, sj)))
        up = max(1, round(sk / _WORK_MM))
        box = bounding_slices(lungs, pad=(2 * step, 2 * step, 1))
        n = [s.stop - s.start for s in box]
        shape = (max(n[0] // step, 1), max(n[1] // step, 1), (n[2] - 1) * up + 1)
        return cls(box, step, up, shape, (si * step, sj * step, sk / up))

    def mask(self, mask: BoolArray, fraction: float = 0.5) -> BoolArray:
        """Working voxels of which more than ``fraction`` is inside ``mask``."""
        # block counts in uint8 (a reshape, no float copy of the CT-sized crop)
        crop = np.asarray(mask[self.box], dtype=bool)
        s, (ni, nj, _) = self.step, self.shape
        blocks = crop[: ni * s, : nj * s].view(np.uint8).reshape(ni, s, nj, s, -1)
        share = blocks.sum(axis=(1, 3), dtype=np.uint8).astype(np.float32) / np.float32(s * s)
        return np.asarray(upsample_k(share, self.up) > fraction)

    def index_of_lps(self, ct: Volume, points_lps_mm: FloatArray) -> FloatArray:
        """Continuous working-grid indices of LPS points (mm)."""
        ijk = np.asarray(ct.lps_to_index(points_lps_mm), dtype=np.float64).reshape(-1, 3)
        lo = np.array([s.start for s in self.box], dtype=np.float64)
        half = (self.step - 1) / 2.0
        out = ijk - lo
        out[:, :2] = (out[:, :2] - half) / self.step
        out[:, 2] *= self.up
        return out


def lobar_centrelines(graph: AirwayGraph | None) -> dict[int, FloatArray]:
    """Centreline points (LPS mm) of each lobar bronchus and its subtree, by lobe code.

    Lobes whose bronchus the graph does not label are absent.
    """
    out: dict[int, FloatArray] = {}
    if graph is None:
        return out
    for code, label in LOBAR_BRONCHI.items():
        try:
            root = graph.by_label(label)
        except KeyError:
            continue
        out[code] = np.concatenate([b.points_lps_mm for b in graph.subtree(root.id)])
    return out


def vessel_atoms(
    vessels: BoolArray,
    lung: BoolArray,
    seeds_ijk: FloatArray,
    seed_codes: Sequence[int],
    spacing_mm: Sequence[float],
) -> tuple[IntArray, float]:
    """Vessel components inside the lung, each labelled with the lobe of its nearest seed.

    The vessels are cut :data:`ATOM_EROSION_MM` (2 mm) under the pleura. When a lobe with
    seeds then has no atom of its own (its tree still joins a neighbour's at the hilum,
    and the nearer lobe took the joint atom), the cut is made deeper, 1 mm at a time up
    to 4 mm, until every seeded lobe has one.

    Parameters
    ----------
    vessels, lung : ndarray of bool, shape (I, J, K)
        Vessel mask and lung mask on one grid.
    seeds_ijk : ndarray, shape (N, 3)
        Lobar airway centreline points as (continuous) indices of that grid.
    seed_codes : sequence of int, length N
        Lobe code of each seed point.
    spacing_mm : sequence of 3 floats
        Grid spacing.

    Returns
    -------
    atoms : ndarray of int32, shape (I, J, K)
        Lobe code of each labelled atom voxel, 0 elsewhere (and for atoms farther than
        20 mm from every seed).
    depth_mm : float
        The depth of the cut that was used.
    """
    codes = np.asarray(seed_codes, dtype=np.int32)
    out = np.zeros(vessels.shape, np.int32)
    if len(seeds_ijk) == 0:
        return out, ATOM_EROSION_MM[0]
    tree = cKDTree(np.asarray(seeds_ijk, dtype=np.float64) * np.asarray(spacing_mm))
    wanted = set(codes.tolist())
    depth_mm = ATOM_EROSION_MM[0]
    for depth_mm in ATOM_EROSION_MM:
        out = _atoms_at_depth(vessels, lung, tree, codes, spacing_mm, depth_mm)
        found = np.bincount(out.ravel(), minlength=int(codes.max()) + 1)
        if all(found[c] >= _MIN_ATOM_VOXELS for c in wanted):
            break
    return out, depth_mm


def _atoms_at_depth(
    vessels: BoolArray,
    lung: BoolArray,
    tree: cKDTree,
    codes: IntArray,
    spacing_mm: Sequence[float],
    depth_mm: float,
) -> IntArray:
    """Atoms of the vessels ``depth_mm`` under the pleura, labelled by nearest seed."""
    out = np.zeros(vessels.shape, np.int32)
    inner = ndi.binary_erosion(lung, ellipsoid(depth_mm, spacing_mm))
    atoms, n = ndi.label(vessels & inner, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return out
    idx = np.flatnonzero(atoms)
    points_mm = np.column_stack(np.unravel_index(idx, atoms.shape)) * np.asarray(spacing_mm)
    distance_mm, nearest = tree.query(points_mm)
    atom_of = atoms.ravel()[idx]
    # the voxel of each atom closest to any seed decides the atom
    order = np.lexsort((distance_mm, atom_of))
    first = order[np.unique(atom_of[order], return_index=True)[1]]
    near = first[distance_mm[first] <= _ATOM_MAX_DISTANCE_MM]
    code_of_atom = np.zeros(n + 1, np.int32)
    code_of_atom[atom_of[near]] = codes[nearest[near]]
    out.ravel()[idx] = code_of_atom[atom_of]
    return out


def bronchus_seeds(
    airway: BoolArray, lung: BoolArray, points_ijk: FloatArray, spacing_mm: Sequence[float]
) -> BoolArray:
    """Lung voxels beside one lobe's bronchi: seeds for a lobe with no vessel atom.

    The airway lumen voxels within 4 mm of the lobe's centreline points are its bronchi;
    the lung within 3 mm of them belongs to the lobe (the lumen itself is usually not in
    the lung mask).

    Parameters
    ----------
    airway, lung : ndarray of bool, shape (I, J, K)
        Airway lumen and lung on one grid.
    points_ijk : ndarray, shape (N, 3)
        The lobe's centreline points as (continuous) indices of that grid.
    spacing_mm : sequence of 3 floats
        Grid spacing.
    """
    out = np.zeros(lung.shape, bool)
    lumen = np.argwhere(airway)
    if len(points_ijk) == 0 or len(lumen) == 0:
        return out
    scale = np.asarray(spacing_mm, dtype=np.float64)
    distance_mm, _ = cKDTree(np.asarray(points_ijk) * scale).query(lumen * scale)
    near = lumen[distance_mm <= _LUMEN_REACH_MM]
    out[tuple(near.T)] = True
    grown = ndi.binary_dilation(out, ellipsoid(_BRONCHUS_SEED_MM, spacing_mm))
    return np.asarray(grown & lung)
