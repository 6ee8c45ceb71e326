"""A one-voxel-thin 3-D skeleton read as a graph of nodes (ends, branch points) and paths."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from seldinger.anatomy.morphology import BoolArray

__all__ = ["skeleton_graph"]

FloatArray = npt.NDArray[np.float64]


def skeleton_graph(
    skeleton: BoolArray,
) -> tuple[FloatArray, list[tuple[int, int, FloatArray]]]:
    """Read a one-voxel-thin 3-D skeleton as a graph.

    Ends (one neighbour) and branch points (three or more; adjacent branch-point voxels form
    one node) are nodes; chains of two-neighbour voxels between them are edges
    (26-connectivity). Closed loops without any node are dropped.

    Parameters
    ----------
    skeleton : ndarray of bool, shape (I, J, K)
        The skeleton.

    Returns
    -------
    nodes : ndarray, shape (M, 3)
        Node positions (mean voxel index of the node's voxels).
    edges : list of (a, b, path)
        Node ids and the (n, 3) voxel positions from node ``a`` to node ``b``. A path
        starts and ends at its nodes' positions, so that paths through a branch point made
        of several voxels meet.

    Examples
    --------
    >>> sk = np.zeros((7, 3, 7), dtype=bool)
    >>> sk[3, 1, 0:4] = True          # stem
    >>> sk[[2, 1], 1, [4, 5]] = True  # left arm
    >>> sk[[4, 5], 1, [4, 5]] = True  # right arm
    >>> nodes, edges = skeleton_graph(sk)
    >>> len(nodes), sorted(len(p) for _, _, p in edges)
    (4, [3, 3, 4])
    """
    # The walk is written by hand: a skeleton has a few thousand voxels, so a Python walk
    # over a voxel -> neighbours table costs milliseconds, and it needs no graph library.
    padded = np.pad(skeleton, 1)
    coords = np.argwhere(padded)
    n = len(coords)
    if n == 0:
        return np.zeros((0, 3)), []
    index = np.full(padded.shape, -1, dtype=np.int64)
    index[tuple(coords.T)] = np.arange(n)
    offsets = np.array([d for d in np.ndindex(3, 3, 3) if d != (1, 1, 1)]) - 1
    nbr = index[tuple((coords[:, None, :] + offsets[None, :, :]).transpose(2, 0, 1))]
    degree = (nbr >= 0).sum(axis=1)

    node_of = np.full(n, -1, dtype=np.int64)
    junction = np.zeros(padded.shape, dtype=bool)
    junction[tuple(coords[degree >= 3].T)] = True
    labels, n_junctions = ndi.label(junction, structure=np.ones((3, 3, 3)))
    is_j = degree >= 3
    node_of[is_j] = labels[tuple(coords[is_j].T)] - 1
    ends = np.flatnonzero(degree <= 1)
    node_of[ends] = n_junctions + np.arange(len(ends))
    n_nodes = n_junctions + len(ends)
    nodes = np.zeros((n_nodes, 3))
    np.add.at(nodes, node_of[node_of >= 0], coords[node_of >= 0])
    nodes /= np.maximum(np.bincount(node_of[node_of >= 0], minlength=n_nodes), 1)[:, None]

    def through(a_node: int, voxels: list[int], b_node: int) -> FloatArray:
        """Node a's position, the voxels, node b's position (no repeated points), unpadded."""
        pts = [nodes[a_node], *coords[voxels].astype(np.float64), nodes[b_node]]
        keep = [pts[0]]
        for q in pts[1:]:
            if not np.array_equal(q, keep[-1]):
                keep.append(q)
        return np.asarray(keep, dtype=np.float64) - 1.0

    edges: list[tuple[int, int, FloatArray]] = []
    used = np.zeros(n, dtype=bool)  # chain voxels already on an edge
    seen_direct: set[tuple[int, int]] = set()
    neighbours: list[list[int]] = [row[row >= 0].tolist() for row in nbr]
    for start in np.flatnonzero(node_of >= 0).tolist():
        for first in neighbours[start]:
            if node_of[first] == node_of[start]:
                continue
            if node_of[first] >= 0:  # two nodes touching: a one-step edge
                key = (min(start, first), max(start, first))
                if key not in seen_direct:
                    seen_direct.add(key)
                    a_node, b_node = int(node_of[start]), int(node_of[first])
                    edges.append((a_node, b_node, through(a_node, [start, first], b_node)))
                continue
            if used[first]:
                continue
            path = [start, first]
            prev, cur = start, first
            while node_of[cur] < 0:
                used[cur] = True
                nxt = [v for v in neighbours[cur] if v != prev and v not in path[-3:]]
                if not nxt:
                    break
                # prefer a node neighbour (ends the chain), else the unused chain voxel
                nxt.sort(key=lambda v: (node_of[v] < 0, used[v]))
                prev, cur = cur, nxt[0]
                path.append(cur)
            if node_of[cur] < 0:
                continue  # ran into a dead end without a node (should not happen)
            a_node, b_node = int(node_of[start]), int(node_of[cur])
            edges.append((a_node, b_node, through(a_node, path, b_node)))
    return nodes - 1, edges
