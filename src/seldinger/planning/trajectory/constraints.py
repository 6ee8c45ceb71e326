"""What makes a needle path unsafe (hard constraints) and the reasons a candidate is refused."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError
from seldinger.plan import TrajectoryRules

__all__ = [
    "DEFAULT_HARD",
    "REASONS",
    "TABLE_DIRECTION_LPS",
    "ReachableFn",
    "TrajectoryConstraints",
]

#: Structures no needle may cross, by default (names of :data:`seldinger.anatomy.STRUCTURES`;
#: ``central_airways`` is the trachea and both main bronchi, taken from the airway graph).
#: The mediastinal organs at risk are named one by one as well as within the mediastinum,
#: so that a refusal and a path's closest approach name the organ (heart, aorta …); one the
#: anatomy lacks is skipped with a note.
DEFAULT_HARD: tuple[str, ...] = (
    "bones",
    "mediastinum",
    "central_airways",
    "heart",
    "aorta",
    "pulmonary_artery",
    "superior_vena_cava",
    "esophagus",
    "spinal_cord",
)

#: Why a candidate is refused, in the order they are tested and reported. A candidate
#: refused for several reasons counts under each.
REASONS: tuple[str, ...] = (
    "too_long",  # insertion depth beyond the needle's usable length
    "outside_body",  # the straight line leaves the body and re-enters it (an arm, a skin fold)
    "vessel",  # closer than the safety distance to a vessel above the calibre
    "table_side",  # entry from the side the patient lies on
    "axial_angle",  # more oblique to the axial plane than allowed
    "unreachable",  # outside the robot's workspace (user hook)
)

#: Direction from the patient towards the table (LPS) for each side a patient can lie on:
#: supine lies on the back (posterior), prone on the front (anterior), left lateral
#: decubitus on the left side.
TABLE_DIRECTION_LPS: dict[str, tuple[float, float, float]] = {
    "posterior": (0.0, 1.0, 0.0),
    "anterior": (0.0, -1.0, 0.0),
    "left": (1.0, 0.0, 0.0),
    "right": (-1.0, 0.0, 0.0),
}

#: ``reachable(entries_lps_mm (n, 3), targets_lps_mm (n, 3)) -> bool array (n,)``: whether a
#: robot (or any device) can hold a needle along each path. A hook for robot kinematics.
ReachableFn = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class TrajectoryConstraints:
    """Rules a safe straight needle path must keep.

    Parameters
    ----------
    needle_length_mm : float
        Usable length of the needle (or coaxial introducer): skin to tip, far side of the
        lesion included when planning to a lesion.
    vessel_calibre_mm : float
        Vessels at least this wide (diameter) are kept at a distance.
    vessel_distance_mm : float
        Closest allowed distance between the path and such a vessel (voxel centres).
    hard : tuple of str
        Structures no path may cross (:data:`DEFAULT_HARD`).
    forbidden : tuple of str
        More structures to avoid (spinal cord, oesophagus, kidney, bowel, liver … when the
        anatomy has them); they count as hard.
    max_axial_angle_deg : float, optional
        Largest angle between the needle and the axial plane (in-plane CT guidance keeps it
        near 0); None: no limit.
    table_direction_lps : tuple of 3 float, optional
        Direction from the patient towards the table (``(0, 1, 0)``, posterior, for a
        supine patient; ``(0, -1, 0)`` prone). When given, entries whose needle comes from
        within :attr:`table_cone_deg` of it are refused.
    table_cone_deg : float
        Half-angle of the cone of needle directions counted as "from the table side".
    reachable : callable, optional
        Robot-workspace hook (:data:`ReachableFn`).
    ablation_probe_length_mm : float, optional
        Usable length of an ablation probe meant to share the biopsy tract; with it, each
        path says whether it serves both (``dual_use``).
    ablation_vessel_distance_mm : float
        Closest distance to a vessel above the calibre that the ablation probe keeps.
    """

    needle_length_mm: float = 150.0
    vessel_calibre_mm: float = 3.0
    vessel_distance_mm: float = 3.0
    hard: tuple[str, ...] = DEFAULT_HARD
    forbidden: tuple[str, ...] = ()
    max_axial_angle_deg: float | None = None
    table_direction_lps: tuple[float, float, float] | None = None
    table_cone_deg: float = 60.0
    reachable: ReachableFn | None = None
    ablation_probe_length_mm: float | None = None
    ablation_vessel_distance_mm: float = 5.0

    def __post_init__(self) -> None:
        for name in ("needle_length_mm", "vessel_calibre_mm", "vessel_distance_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise BadInputError(f"{name} must be a finite number >= 0 (mm); got {value}.")
        if self.needle_length_mm <= 0:
            raise BadInputError(
                f"needle_length_mm must be > 0 (the needle's usable length in mm); "
                f"got {self.needle_length_mm}."
            )
        if self.max_axial_angle_deg is not None and not 0 <= self.max_axial_angle_deg <= 90:
            raise BadInputError(
                "max_axial_angle_deg must lie in [0, 90] degrees (or be None for no limit); "
                f"got {self.max_axial_angle_deg}."
            )
        if not 0 < self.table_cone_deg <= 90:
            raise BadInputError(f"table_cone_deg must lie in (0, 90]; got {self.table_cone_deg}.")
        if self.table_direction_lps is not None:
            direction = np.asarray(self.table_direction_lps, dtype=float)
            if direction.shape != (3,) or not np.all(np.isfinite(direction)) or not direction.any():
                raise BadInputError(
                    "table_direction_lps must be a non-zero LPS vector such as (0, 1, 0) for a "
                    f"supine patient; got {self.table_direction_lps}."
                )
        if self.ablation_probe_length_mm is not None and not self.ablation_probe_length_mm > 0:
            raise BadInputError(
                f"ablation_probe_length_mm must be > 0 mm; got {self.ablation_probe_length_mm}."
            )
        if len(self.all_hard) > _MAX_HARD:
            raise BadInputError(
                f"at most {_MAX_HARD} hard or forbidden structures are supported; got "
                f"{len(self.all_hard)}: {', '.join(self.all_hard)}."
            )

    @classmethod
    def from_rules(
        cls, rules: TrajectoryRules, needle_length_mm: float | None = None
    ) -> TrajectoryConstraints:
        """Constraints from a plan's rules; ``needle_length_mm`` overrides the rules' length
        (an ablation applicator's usable length, say)."""
        return cls(
            needle_length_mm=needle_length_mm or rules.needle_length_mm,
            vessel_calibre_mm=rules.vessel_calibre_mm,
            vessel_distance_mm=rules.vessel_distance_mm,
            forbidden=tuple(rules.forbidden),
            max_axial_angle_deg=rules.max_axial_angle_deg,
            table_direction_lps=None
            if rules.table_side is None
            else TABLE_DIRECTION_LPS[rules.table_side],
            ablation_probe_length_mm=rules.ablation_probe_length_mm,
        )

    def to_rules(self) -> TrajectoryRules:
        """The plan's record of these constraints.

        Raises
        ------
        BadInputError
            If a robot hook or a table direction other than straight posterior/anterior is
            set: the plan cannot record those.
        """
        side = None
        if self.table_direction_lps is not None:
            direction = np.asarray(self.table_direction_lps, dtype=float)
            direction = direction / np.linalg.norm(direction)
            for name, value in TABLE_DIRECTION_LPS.items():
                if np.allclose(direction, value, atol=1e-9):
                    side = name
            if side is None:
                raise BadInputError(
                    f"table_direction_lps {self.table_direction_lps} is none of posterior "
                    "(0, 1, 0), anterior (0, -1, 0), left (1, 0, 0) or right (-1, 0, 0); a plan "
                    "records only those table sides."
                )
        return TrajectoryRules(
            needle_length_mm=self.needle_length_mm,
            vessel_calibre_mm=self.vessel_calibre_mm,
            vessel_distance_mm=self.vessel_distance_mm,
            forbidden=list(self.forbidden),
            max_axial_angle_deg=self.max_axial_angle_deg,
            table_side=side,  # type: ignore[arg-type]
            ablation_probe_length_mm=self.ablation_probe_length_mm,
        )

    @property
    def all_hard(self) -> tuple[str, ...]:
        """Hard and forbidden structures, each once, in order."""
        return tuple(dict.fromkeys(self.hard + self.forbidden))


#: Label bits free for hard structures in the planner's 32-bit voxel labels (12 to 31).
_MAX_HARD = 20
