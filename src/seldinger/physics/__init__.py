"""Physics: ablation-zone models (and, later, dosimetry, IRE fields, bioheat)."""

from seldinger.physics import ablation, tg43

__all__ = ["ablation", "tg43"]
