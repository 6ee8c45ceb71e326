"""Physics: ablation-zone models (and, later, dosimetry, IRE fields, bioheat)."""

from seldinger.physics import ablation

__all__ = ["ablation"]
