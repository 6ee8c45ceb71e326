"""The seed section: an I-125 permanent implant's needles, seeds, strength and dose metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from seldinger.plan.fields import Direction, NonNegativeFloat, Percent, PlanModel, Point3
from seldinger.plan.trajectories import TrajectoryRules

__all__ = [
    "STRENGTH_RATIO_TOLERANCE",
    "U_PER_MCI_I125",
    "SeedDoseMetrics",
    "SeedGoalsRecord",
    "SeedNeedleRecord",
    "SeedSection",
]

#: Air-kerma strength per apparent activity of I-125 seeds, U/mCi (TG-43, Nath et al. 1995,
#: p. 218; the same value as ``seldinger.physics.tg43.U_PER_MCI``, checked by a test).
U_PER_MCI_I125 = 1.270
#: Relative disagreement allowed between ``strength_u`` and ``strength_mci`` × 1.270 (both
#: are stored to 4 decimals).
STRENGTH_RATIO_TOLERANCE = 1e-3


class SeedNeedleRecord(PlanModel):
    """One needle: skin entry, direction, the seeds it leaves (deepest first), their depths."""

    entry_lps_mm: Point3
    direction_lps: Direction
    seeds_lps_mm: list[Point3] = Field(min_length=1)
    depths_mm: list[NonNegativeFloat]
    template_hole_mm: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_depth_per_seed(self) -> SeedNeedleRecord:
        if len(self.depths_mm) != len(self.seeds_lps_mm):
            raise ValueError(
                f"depths_mm holds {len(self.depths_mm)} values for {len(self.seeds_lps_mm)} "
                "seeds; give one depth per seed."
            )
        return self

    @property
    def n_seeds(self) -> int:
        """Seeds on this needle."""
        return len(self.seeds_lps_mm)


class SeedDoseMetrics(PlanModel):
    """DVH indices of the PTV (TG-43, complete decay) and each organ's maximum dose."""

    d90_gy: NonNegativeFloat
    d100_gy: NonNegativeFloat
    v100_percent: Percent
    v150_percent: Percent
    v200_percent: Percent
    conformity_index: NonNegativeFloat
    external_index: NonNegativeFloat
    homogeneity_index: float
    ptv_volume_ml: NonNegativeFloat | None = None
    organ_max_gy: dict[str, NonNegativeFloat] = Field(default_factory=dict)


class SeedGoalsRecord(PlanModel):
    """The dose goals the loading was optimised for."""

    prescription_gy: float = Field(gt=0.0)
    v100_min_percent: Percent = 95.0
    v150_max_percent: Percent = 60.0
    d90_min_fraction: float = Field(default=1.0, gt=0.0)
    oar_max_gy: dict[str, NonNegativeFloat] = Field(default_factory=dict)


class SeedSection(PlanModel):
    """The seed step's result.

    Parameters
    ----------
    target : str
        Name of the plan target implanted.
    seed_data : str
        The TG-43 data used: a built-in model (``"6711"``) or the JSON file's path.
    seed_model : str
        Seed model name from that data.
    template : {"coplanar", "free"}
    strength_u, strength_mci : float
        Air-kerma strength of each seed (U = µGy m² h⁻¹) and its apparent activity.
    goals : SeedGoalsRecord
    margin_mm : float
        PTV = lesion + this margin.
    rules : TrajectoryRules or None
        Path rules every needle obeyed.
    needles : list of SeedNeedleRecord
    metrics : SeedDoseMetrics
    template_frame_lps : list of list of float, optional
        Rows: template origin (LPS mm), its x and y axes and the needle axis (unit vectors).
    n_candidates : int
        Candidate seed positions weighed.
    notes : list of str
        Goals not met and other remarks.
    seconds : dict of str to float
    """

    target: str = Field(min_length=1)
    seed_data: str = Field(min_length=1)
    seed_model: str = Field(min_length=1)
    template: Literal["coplanar", "free"]
    strength_u: float = Field(gt=0.0)
    strength_mci: float = Field(gt=0.0)
    goals: SeedGoalsRecord
    margin_mm: NonNegativeFloat
    rules: TrajectoryRules | None = None
    needles: list[SeedNeedleRecord] = Field(min_length=1)
    metrics: SeedDoseMetrics
    template_frame_lps: list[Point3] | None = Field(default=None, min_length=4, max_length=4)
    n_candidates: int = Field(default=0, ge=0)
    notes: list[str] = Field(default_factory=list)
    seconds: dict[str, NonNegativeFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _strengths_agree(self) -> SeedSection:
        expected_u = self.strength_mci * U_PER_MCI_I125
        if abs(self.strength_u - expected_u) > STRENGTH_RATIO_TOLERANCE * expected_u + 1e-4:
            raise ValueError(
                f"strength_u {self.strength_u} U and strength_mci {self.strength_mci} mCi "
                f"disagree (I-125: 1 mCi = {U_PER_MCI_I125} U, so {expected_u:.4f} U); correct "
                "one of them."
            )
        return self

    @property
    def n_seeds(self) -> int:
        """Seeds in the implant."""
        return sum(n.n_seeds for n in self.needles)

    @property
    def n_needles(self) -> int:
        """Needles of the implant."""
        return len(self.needles)

    @property
    def total_u(self) -> float:
        """Total air-kerma strength, U."""
        return self.strength_u * self.n_seeds

    @property
    def seeds_lps_mm(self) -> list[Point3]:
        """Every seed position, needle by needle."""
        return [s for n in self.needles for s in n.seeds_lps_mm]
