"""Planning: targets and margins, trajectories, ablation applicators, seed implants.

The plan document these steps fill is :mod:`seldinger.plan`.
"""

from seldinger.planning.margin import MarginReport, assess_margin, tumour_surface_mesh
from seldinger.planning.target import expand_target

__all__ = ["MarginReport", "assess_margin", "expand_target", "tumour_surface_mesh"]
