"""Seldinger: planning and navigation of CT-guided minimally invasive interventions.

Research software, not a certified medical device. Quick start::

    from seldinger.io import read_ct
    ct = read_ct("path/to/dicom_folder")      # Ct: .volume (HU, LPS mm) and .meta
    print(ct.volume)                          # shape, spacing_mm, orientation
    ct.volume.index_to_lps([256, 256, 10])    # voxel index -> LPS millimetres
"""

import logging

__version__ = "0.1.0"
__all__ = ["__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
