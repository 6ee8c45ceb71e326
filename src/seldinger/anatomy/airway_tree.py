"""The airway tree as data: branches with generation, label, centreline and lumen radius.

Built by :func:`seldinger.anatomy.airway_graph.airway_graph`; positions are LPS mm.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = ["MAIN_BRONCHUS_LEFT", "MAIN_BRONCHUS_RIGHT", "TRACHEA", "AirwayBranch", "AirwayGraph"]

FloatArray = npt.NDArray[np.float64]

TRACHEA = "trachea"
MAIN_BRONCHUS_LEFT = "main_bronchus_left"
MAIN_BRONCHUS_RIGHT = "main_bronchus_right"


@dataclass(frozen=True, eq=False)
class AirwayBranch:
    """One airway segment between two branch points (or a branch point and a tip).

    Parameters
    ----------
    id : int
        Index of the branch in :attr:`AirwayGraph.branches`.
    parent : int or None
        Id of the branch it leaves; None for the trachea (the root).
    generation : int
        Depth in the tree: trachea 0, main bronchi 1, lobar 2, segmental 3 …
    label : str
        ``"trachea"``, ``"main_bronchus_left"``, ``"main_bronchus_right"``, a lobar name
        (``"upper_lobe_bronchus_right"``, ``"bronchus_intermedius"``,
        ``"middle_lobe_bronchus"``, ``"lower_lobe_bronchus_right"``,
        ``"upper_lobe_bronchus_left"``, ``"lower_lobe_bronchus_left"``), or ``""``.
    points_lps_mm : ndarray, shape (N, 3)
        Centreline from the proximal branch point to the distal end, LPS mm.
    radius_mm : ndarray, shape (N,)
        Lumen radius at each point: of the circle with the area of the lumen's cross-section
        normal to the centreline, mm (it flares where the branch meets its neighbours).
    length_mm : float
        Length of the centreline polyline, mm.
    """

    id: int
    parent: int | None
    generation: int
    label: str
    points_lps_mm: FloatArray
    radius_mm: FloatArray
    length_mm: float

    @property
    def mean_radius_mm(self) -> float:
        """Median lumen radius over the middle half of the branch, mm.

        The quarters at either end are left out: there the cross-section flares into the
        branch point (and the neighbouring branch).
        """
        n = len(self.radius_mm)
        middle = self.radius_mm[n // 4 : n - n // 4] if n >= 4 else self.radius_mm
        return float(np.median(middle))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (lists of floats rounded to 0.01 mm)."""
        return {
            "id": self.id,
            "parent": self.parent,
            "generation": self.generation,
            "label": self.label,
            "length_mm": round(self.length_mm, 2),
            "points_lps_mm": np.round(self.points_lps_mm, 2).tolist(),
            "radius_mm": np.round(self.radius_mm, 2).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AirwayBranch:
        """The branch :meth:`to_dict` wrote."""
        return cls(
            id=int(data["id"]),
            parent=None if data["parent"] is None else int(data["parent"]),
            generation=int(data["generation"]),
            label=str(data["label"]),
            points_lps_mm=np.asarray(data["points_lps_mm"], dtype=np.float64).reshape(-1, 3),
            radius_mm=np.asarray(data["radius_mm"], dtype=np.float64),
            length_mm=float(data["length_mm"]),
        )


@dataclass(frozen=True, eq=False)
class AirwayGraph:
    """The airway tree: branches in breadth-first order from the trachea (id 0).

    Parameters
    ----------
    branches : tuple of AirwayBranch
        ``branches[i].id == i``; every parent precedes its children.
    branch_points_lps_mm : ndarray, shape (M, 3)
        Positions of the branch points (bifurcations and the odd trifurcation), LPS mm.
    """

    branches: tuple[AirwayBranch, ...]
    branch_points_lps_mm: FloatArray

    def __post_init__(self) -> None:
        for index, b in enumerate(self.branches):
            if b.id != index or (b.parent is not None and not 0 <= b.parent < index):
                raise BadInputError(
                    f"AirwayGraph.branches must be in tree order with branches[i].id == i and "
                    f"each parent before its children; branch {index} has id {b.id} and "
                    f"parent {b.parent}. Build graphs with airway_graph()."
                )

    def __iter__(self) -> Iterator[AirwayBranch]:
        return iter(self.branches)

    def __len__(self) -> int:
        return len(self.branches)

    @property
    def root(self) -> AirwayBranch:
        """The trachea."""
        return self.branches[0]

    def children(self, branch_id: int) -> tuple[AirwayBranch, ...]:
        """Branches leaving the distal end of branch ``branch_id``."""
        return tuple(b for b in self.branches if b.parent == branch_id)

    def by_label(self, label: str) -> AirwayBranch:
        """The branch labelled ``label``; KeyError naming the labels present when absent."""
        for b in self.branches:
            if b.label == label:
                return b
        present = sorted({b.label for b in self.branches if b.label})
        raise KeyError(
            f"no airway branch labelled {label!r}; this graph has {present}. The tree may "
            "stop above that airway (check the segmentation) or the label may be misspelt."
        )

    def subtree(self, branch_id: int) -> tuple[AirwayBranch, ...]:
        """Branch ``branch_id`` and all its descendants."""
        keep = {branch_id}
        out = []
        for b in self.branches:  # parents precede children
            if b.id == branch_id or b.parent in keep:
                keep.add(b.id)
                out.append(b)
        return tuple(out)

    def max_generation(self, side: Literal["left", "right"]) -> int:
        """Deepest generation reached in the ``side`` lung (0 when its main bronchus is absent).

        Parameters
        ----------
        side : {"left", "right"}
            The patient's side (LPS +x is left).
        """
        if side not in ("left", "right"):
            raise BadInputError(f"side must be 'left' or 'right'; got {side!r}.")
        label = MAIN_BRONCHUS_LEFT if side == "left" else MAIN_BRONCHUS_RIGHT
        try:
            main = self.by_label(label)
        except KeyError:
            return 0
        return max(b.generation for b in self.subtree(main.id))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: the branches and the branch points."""
        return {
            "branches": [b.to_dict() for b in self.branches],
            "branch_points_lps_mm": np.round(self.branch_points_lps_mm, 2).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AirwayGraph:
        """The graph :meth:`to_dict` wrote (``airway_graph.json`` of an anatomy folder)."""
        return cls(
            branches=tuple(AirwayBranch.from_dict(b) for b in data["branches"]),
            branch_points_lps_mm=np.asarray(data["branch_points_lps_mm"], dtype=np.float64).reshape(
                -1, 3
            ),
        )
