"""TG-43U1 dosimetry of interstitial seeds (I-125 model 6711 built in): dose rate and dose.

Quick start::

    from seldinger.physics.tg43 import load_seed_data, dose_rate_cgy_per_h, total_dose_gy
    data = load_seed_data("6711")
    rate = dose_rate_cgy_per_h(points_lps_mm, seeds_lps_mm, axes, sk_u=0.635, data=data)
    dose_gy = total_dose_gy(rate)  # permanent implant, complete decay
"""

from seldinger.physics.tg43.data import (
    BUILTIN_SEEDS,
    U_PER_MCI,
    SeedData,
    load_seed_data,
    mci_to_u,
    u_to_mci,
)
from seldinger.physics.tg43.dose import (
    I125_HALF_LIFE_DAYS,
    DoseModel,
    dose_on_grid,
    dose_rate_cgy_per_h,
    dose_rate_matrix_per_u,
    dose_rate_reference_cgy_per_h,
    points_inside_seeds,
    seed_dose_rate_per_u,
    total_dose_gy,
)
from seldinger.physics.tg43.tables import (
    anisotropy_function,
    geometry_line_per_cm2,
    phi_an_from_f,
    phi_an_function,
    radial_dose_function,
)

__all__ = [
    "BUILTIN_SEEDS",
    "I125_HALF_LIFE_DAYS",
    "U_PER_MCI",
    "DoseModel",
    "SeedData",
    "anisotropy_function",
    "dose_on_grid",
    "dose_rate_cgy_per_h",
    "dose_rate_matrix_per_u",
    "dose_rate_reference_cgy_per_h",
    "geometry_line_per_cm2",
    "load_seed_data",
    "mci_to_u",
    "phi_an_from_f",
    "phi_an_function",
    "points_inside_seeds",
    "radial_dose_function",
    "seed_dose_rate_per_u",
    "total_dose_gy",
    "u_to_mci",
]
