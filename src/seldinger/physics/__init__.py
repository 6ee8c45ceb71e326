"""Physics: TG-43 dosimetry (``tg43``), ablation-zone charts (``ablation``), and ablation
physics on the CT: tissue properties (``tissue``), the IRE electric field (``ire``),
RF/MW Pennes bioheat with Arrhenius damage (``bioheat``), cryo by the enthalpy method
(``cryo``), and their sparse solvers (``solvers``)."""

from seldinger.physics import ablation, tg43

__all__ = ["ablation", "tg43"]
