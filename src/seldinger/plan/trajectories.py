"""The trajectory section: the rules every needle path obeys and the ranked safe paths."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from seldinger.plan.errors import PlanContentError
from seldinger.plan.fields import NonNegativeFloat, PlanModel, Point3

__all__ = ["TrajectoryRecord", "TrajectoryRules", "TrajectorySection"]


class TrajectoryRules(PlanModel):
    """Hard constraints of a needle path (``seldinger plan trajectory`` options).

    Parameters
    ----------
    needle_length_mm : float
        Usable needle length, skin to tip (to the lesion's far side with a lesion target).
    vessel_calibre_mm, vessel_distance_mm : float
        Vessels at least ``vessel_calibre_mm`` wide are kept ``vessel_distance_mm`` away.
    forbidden : list of str
        Structures no path may cross, besides bones, mediastinum, trachea and main bronchi.
    max_axial_angle_deg : float or None
        Largest angle between needle and axial plane (None: no limit).
    position : {"supine", "prone", "decubitus-left", "decubitus-right"} or None
        How the patient lay on the table (from DICOM PatientPosition, ``--position`` or the
        table seen in the CT); None: not known.
    table_side : {"posterior", "anterior", "left", "right"} or None
        Side the patient lies on; entries from it are refused (None: none refused).
    ablation_probe_length_mm : float or None
        Usable length of an ablation probe meant to share the tract.
    """

    needle_length_mm: float = Field(default=150.0, gt=0.0)
    vessel_calibre_mm: NonNegativeFloat = 3.0
    vessel_distance_mm: NonNegativeFloat = 3.0
    forbidden: list[str] = Field(default_factory=list)
    max_axial_angle_deg: float | None = Field(default=None, ge=0.0, le=90.0)
    position: Literal["supine", "prone", "decubitus-left", "decubitus-right"] | None = None
    table_side: Literal["posterior", "anterior", "left", "right"] | None = None
    ablation_probe_length_mm: float | None = Field(default=None, gt=0.0)


class TrajectoryRecord(PlanModel):
    """One straight needle path and every metric the planner computed for it.

    Distances are mm, angles degrees, points LPS mm. ``min_distance_mm`` maps a structure
    to the path's closest approach (None: farther than the planner's 100 mm cap).
    ``fissure_crossings`` counts interlobar fissures crossed (None: lobes not segmented);
    ``rib_margin_mm`` is the closest bone where the path crosses the chest wall (None: no
    bone within 100 mm, or no bone mask). ``liver_parenchyma_mm`` is the normal liver the
    path crosses before a liver target (None: the target is not in the liver, or no liver
    mask); less than 10 mm adds the ``liver_capsule`` term. ``risk_score`` is a log odds of
    pneumothorax plus that term (``risk_terms``: its parts). ``rank`` is the path's place
    among the ranked paths (1 = best; None for an applicator's own path).
    """

    rank: int | None = Field(default=None, ge=1)
    entry_lps_mm: Point3
    target_lps_mm: Point3
    far_side_lps_mm: Point3 | None = None
    length_mm: NonNegativeFloat
    depth_to_far_side_mm: NonNegativeFloat
    lung_length_mm: NonNegativeFloat
    pleural_crossings: int = Field(ge=0)
    fissure_crossings: int | None = Field(default=None, ge=0)
    rib_margin_mm: NonNegativeFloat | None = None
    liver_parenchyma_mm: NonNegativeFloat | None = None
    emphysema_length_mm: NonNegativeFloat = 0.0
    crosses_bulla: bool = False
    min_distance_mm: dict[str, NonNegativeFloat | None] = Field(default_factory=dict)
    axial_angle_deg: float = Field(ge=0.0, le=90.0)
    pleura_angle_deg: float | None = Field(default=None, ge=0.0, le=90.0)
    target_depth_mm: float | None = None
    risk_score: float
    risk_terms: dict[str, float] = Field(default_factory=dict)
    safe: bool = True
    blocked_by: list[str] = Field(default_factory=list)
    pareto: bool = False
    dual_use: bool | None = None


class TrajectorySection(PlanModel):
    """The trajectory step's result: the target, the rules, the search's counts, the paths.

    Parameters
    ----------
    target : str or None
        Name of the plan target aimed at (None: a point given by ``target_lps_mm``).
    target_lps_mm : tuple of float
        Where the needle tips aim.
    rules : TrajectoryRules
        The hard constraints every path obeys (later steps' probes and needles keep them).
    n_candidates, n_safe : int or None
        Skin candidates tried, and how many were safe (None: not recorded, a migrated plan).
    blocked_by : dict of str to int
        Candidates refused per reason (a candidate may count under several).
    paths : list of TrajectoryRecord
        The best distinct safe paths, rank 1 first.
    notes : list of str
        What the planner assumed or could not check (the patient position taken, structures
        the anatomy lacks, vessels not avoided, the liver rule unmet), as it printed them.
    """

    target: str | None = None
    target_lps_mm: Point3
    rules: TrajectoryRules = Field(default_factory=TrajectoryRules)
    n_candidates: int | None = Field(default=None, ge=0)
    n_safe: int | None = Field(default=None, ge=0)
    blocked_by: dict[str, int] = Field(default_factory=dict)
    paths: list[TrajectoryRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ranked(self) -> TrajectorySection:
        ranks = [p.rank for p in self.paths]
        if any(r is None for r in ranks) or len(set(ranks)) != len(ranks):
            raise ValueError(
                f"paths need distinct ranks (1 = best); got {ranks}. Store search.top(n)."
            )
        return self

    def path(self, rank: int) -> TrajectoryRecord:
        """The path of ``rank`` (1 = best).

        Raises
        ------
        PlanContentError
            If no path has that rank; the message lists the ranks there are.
        """
        for candidate in self.paths:
            if candidate.rank == rank:
                return candidate
        raise PlanContentError(
            f"no trajectory of rank {rank}; the plan holds ranks "
            f"{[p.rank for p in self.paths] or 'none'}."
        )
