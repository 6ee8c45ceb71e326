"""Ablation devices (catalogue of published zones) and zone geometry in LPS mm.

Quick start::

    from seldinger.physics.ablation import load_catalogue, zone_ellipsoid, zone_mask
    setting = load_catalogue().device("emprint").setting("100W-10min")
    zone = zone_ellipsoid(tip_lps_mm, entry_to_tip_lps, setting.zone)
    mask = zone_mask(ct, [zone])          # bool Volume on the CT grid
"""

from seldinger.physics.ablation.catalogue import (
    CATALOGUE_ENV_VAR,
    CONFIDENCES,
    PROVENANCES,
    Catalogue,
    Device,
    Modality,
    Setting,
    UnknownDeviceError,
    UnknownSettingError,
    ZoneSpec,
    load_catalogue,
)
from seldinger.physics.ablation.zones import (
    MAX_CLUSTER_PROBES,
    Ellipsoid,
    cluster_offsets_mm,
    probe_tips_lps_mm,
    zone_ellipsoid,
    zone_mask,
)

__all__ = [
    "CATALOGUE_ENV_VAR",
    "CONFIDENCES",
    "MAX_CLUSTER_PROBES",
    "PROVENANCES",
    "Catalogue",
    "Device",
    "Ellipsoid",
    "Modality",
    "Setting",
    "UnknownDeviceError",
    "UnknownSettingError",
    "ZoneSpec",
    "cluster_offsets_mm",
    "load_catalogue",
    "probe_tips_lps_mm",
    "zone_ellipsoid",
    "zone_mask",
]
