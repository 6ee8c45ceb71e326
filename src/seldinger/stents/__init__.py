"""Airway and oesophageal stents: lumen along the centreline, stenosis, sizing, designed
stents and moulds (issue 20).

>>> from seldinger.stents import find_lesions
>>> import numpy as np
>>> s = np.arange(81.0); area = np.where((s >= 30) & (s < 50), 127.2, 254.5)
>>> round(find_lesions(s, area)[0].stenosis_area_percent, 1)
50.0
"""

from seldinger.stents.centreline import Centreline, centreline_from_points
from seldinger.stents.lumen import (
    CENTRAL_AIRWAYS,
    LumenProfile,
    LumenSurvey,
    Stenosis,
    measure_airway,
    measure_tube,
)
from seldinger.stents.sections import CrossSections, measure_cross_sections
from seldinger.stents.stenosis import Lesion, find_lesions

__all__ = [
    "CENTRAL_AIRWAYS",
    "Centreline",
    "CrossSections",
    "Lesion",
    "LumenProfile",
    "LumenSurvey",
    "Stenosis",
    "centreline_from_points",
    "find_lesions",
    "measure_airway",
    "measure_cross_sections",
    "measure_tube",
]
