"""PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile): action per attribute.

The table itself (655 attributes of DICOM 2026c, with the standard's action codes) comes
from the maintained ``dicom-anonymizer`` package (KitwareMedical, BSD-3-Clause), which
regenerates it from the standard's XML at each release. We use its *table only*: its
engine keeps a process-wide dictionary of random replacement UIDs (not reproducible from
one push to the next, so a CT and its SEG pushed on different days would not reference each
other), prints from library code, and writes ``00010101`` for removed dates. The actions
are applied by :mod:`seldinger.pacs.deid`.

Other packages looked at: ``dicognito`` (maintained, but its own recipe rather than the
Basic profile: random fake names, shifted dates, MD5-salted UIDs, no profile codes),
``deid`` (a recipe engine, Basic profile only as a user recipe, pulls in matplotlib),
``idiscore`` (Basic profile, but pins Pillow < 11, which conflicts with ours).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

__all__ = ["ANNEX_E_EDITION", "Code", "action_codes"]

#: Edition of PS3.15 whose Table E.1-1 we apply (a module of dicom-anonymizer >= 2.1).
ANNEX_E_EDITION = "2026c"

#: dicom-anonymizer's category name -> the action code printed in Table E.1-1.
_CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}


class Code(StrEnum):
    """Action codes of PS3.15 Table E.1-1 (E.3.1: D dummy, Z empty, X remove, U new UID)."""

    D = "D"
    Z = "Z"
    X = "X"
    U = "U"
    Z_D = "Z/D"
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"


@cache
def action_codes() -> tuple[dict[int, Code], tuple[tuple[int, int, int, int, Code], ...]]:
    """The table: exact tags -> code, and masked repeating-group entries.

    Returns
    -------
    exact : dict of int to Code
        Tag (``0xggggeeee``) -> action code.
    masked : tuple of (group, element, group_mask, element_mask, Code)
        Repeating groups (curves 50xx, overlays 60xx): a tag matches when
        ``tag_group & group_mask == group & group_mask`` and likewise for the element.
    """
    from dicomanonymizer.dicomfields_selector import (  # type: ignore[import-untyped]
        dicom_anonymization_database_selector,
    )

    table = dicom_anonymization_database_selector(f"dicomfields_{ANNEX_E_EDITION}")
    exact: dict[int, Code] = {}
    masked: list[tuple[int, int, int, int, Code]] = []
    for category, code in _CATEGORIES.items():
        for entry in table[category]:
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = Code(code)
            else:
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, Code(code)))
    return exact, tuple(masked)
