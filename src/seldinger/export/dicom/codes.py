"""Names, SNOMED CT codes, RT ROI types and colours of the structures Seldinger exports.

Every code comes from pydicom's dictionaries (``pydicom.sr.codedict.codes.SCT``), i.e. from
the DICOM standard's PS3.16 code tables. Segment categories follow CID 7150 "Segmentation
Property Categories" (Anatomical Structure, Morphologically Abnormal Structure, Spatial and
Relational Concept). Laterality is post-coordinated, as PS3.3 C.8.20.2 allows: "Lung" with
the modifier "Left" or "Right" (SNOMED's pre-coordinated left/right lung concepts are not in
the DICOM code tables); so are the upper and lower lobes, and the kidneys. Abdominal
organs a user adds to the anatomy (``segment --add``: gallbladder, bowel, portal vein …) are
coded too. The ablation zone has no concept of its own: it is coded as the
coagulation necrosis it is meant to produce (SCT 6574001 "Necrosis"). A structure whose
name is not known gets the generic category and type "Anatomical Structure"
(SCT 91723000) and an empty RT ROI Interpreted Type (Type 2: unknown).

RT ROI Interpreted Types are the Defined Terms of PS3.3 C.8.8.8 (RT ROI Observations):
the body is ``EXTERNAL``; the lesion ``GTV``; ``CTV``/``PTV`` themselves; the ablation zone
``TREATED_VOLUME``; structures a needle must not cross (bones, vessels) ``AVOIDANCE``;
other organs ``ORGAN``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

__all__ = ["KNOWN_STRUCTURES", "StructureCode", "normalise_name", "structure_code"]


@dataclass(frozen=True)
class StructureCode:
    """How one structure is labelled in SEG and RTSTRUCT.

    Parameters
    ----------
    label : str
        Segment label and ROI name (at most 64 characters).
    category : Code
        Segmented Property Category (CID 7150).
    property_type : Code
        Segmented Property Type (also the RT ROI Identification Code).
    rt_roi_type : str
        RT ROI Interpreted Type (PS3.3 C.8.8.8), ``""`` when unknown.
    colour_rgb : tuple of int
        Display colour, 0–255 per channel.
    modifier : Code, optional
        Segmented Property Type Modifier (laterality).
    """

    label: str
    category: Code
    property_type: Code
    rt_roi_type: str
    colour_rgb: tuple[int, int, int]
    modifier: Code | None = None


_ANATOMY = codes.SCT.AnatomicalStructure
_ABNORMAL = codes.SCT.MorphologicallyAbnormalStructure
_SPATIAL = codes.SCT.SpatialAndRelationalConcept

_BODY = StructureCode("Body", _ANATOMY, codes.SCT.EntireBody, "EXTERNAL", (177, 122, 101))
_LUNG_LEFT = StructureCode(
    "Lung, left", _ANATOMY, codes.SCT.Lung, "ORGAN", (128, 174, 128), codes.SCT.Left
)
_LUNG_RIGHT = StructureCode(
    "Lung, right", _ANATOMY, codes.SCT.Lung, "ORGAN", (111, 184, 210), codes.SCT.Right
)
_LUNGS = StructureCode("Lungs", _ANATOMY, codes.SCT.Lung, "ORGAN", (197, 165, 145))
_AIRWAYS = StructureCode("Airways", _ANATOMY, codes.SCT.AirwayStructure, "ORGAN", (182, 228, 255))
_TRACHEA = StructureCode("Trachea", _ANATOMY, codes.SCT.Trachea, "ORGAN", (182, 228, 255))
_BONES = StructureCode("Bones", _ANATOMY, codes.SCT.Bone, "AVOIDANCE", (241, 214, 145))
_RIBS = StructureCode("Ribs", _ANATOMY, codes.SCT.Rib, "AVOIDANCE", (241, 214, 145))
_VERTEBRAE = StructureCode(
    "Vertebrae", _ANATOMY, codes.SCT.StructureOfVertebralColumn, "AVOIDANCE", (230, 220, 170)
)
_MEDIASTINUM = StructureCode(
    "Mediastinum", _ANATOMY, codes.SCT.Mediastinum, "ORGAN", (255, 192, 128)
)
_VESSELS = StructureCode("Vessels", _ANATOMY, codes.SCT.BloodVessel, "AVOIDANCE", (216, 101, 79))
_AORTA = StructureCode("Aorta", _ANATOMY, codes.SCT.Aorta, "AVOIDANCE", (224, 97, 76))
_HEART = StructureCode("Heart", _ANATOMY, codes.SCT.Heart, "ORGAN", (206, 110, 84))
_LIVER = StructureCode("Liver", _ANATOMY, codes.SCT.Liver, "ORGAN", (221, 130, 101))
_SPINAL_CORD = StructureCode("Spinal cord", _ANATOMY, codes.SCT.SpinalCord, "ORGAN", (244, 214, 49))
_ESOPHAGUS = StructureCode("Esophagus", _ANATOMY, codes.SCT.Esophagus, "ORGAN", (211, 171, 143))
# The lobes (``segment``'s lobe masks): upper and lower lobe with laterality, as the code
# tables hold them; the middle lobe is the right lung's own concept.
_LOBES = {
    "lung_upper_lobe_left": StructureCode(
        "Lung, upper lobe, left", _ANATOMY, codes.SCT.UpperLobeOfLung, "ORGAN", (128, 174, 128),
        codes.SCT.Left,
    ),
    "lung_lower_lobe_left": StructureCode(
        "Lung, lower lobe, left", _ANATOMY, codes.SCT.LowerLobeOfLung, "ORGAN", (101, 146, 101),
        codes.SCT.Left,
    ),
    "lung_upper_lobe_right": StructureCode(
        "Lung, upper lobe, right", _ANATOMY, codes.SCT.UpperLobeOfLung, "ORGAN", (111, 184, 210),
        codes.SCT.Right,
    ),
    "lung_middle_lobe_right": StructureCode(
        "Lung, middle lobe, right", _ANATOMY, codes.SCT.MiddleLobeOfRightLung, "ORGAN",
        (90, 160, 190),
    ),
    "lung_lower_lobe_right": StructureCode(
        "Lung, lower lobe, right", _ANATOMY, codes.SCT.LowerLobeOfLung, "ORGAN", (70, 140, 175),
        codes.SCT.Right,
    ),
}  # fmt: skip
# Abdominal organs a user adds (``segment --add``) and forbids: named and coded in the
# exports like the segmented ones.
_ABDOMEN = {
    "gallbladder": StructureCode(
        "Gallbladder", _ANATOMY, codes.SCT.Gallbladder, "ORGAN", (139, 150, 98)
    ),
    "kidney_left": StructureCode(
        "Kidney, left", _ANATOMY, codes.SCT.Kidney, "ORGAN", (185, 102, 83), codes.SCT.Left
    ),
    "kidney_right": StructureCode(
        "Kidney, right", _ANATOMY, codes.SCT.Kidney, "ORGAN", (185, 102, 83), codes.SCT.Right
    ),
    "stomach": StructureCode("Stomach", _ANATOMY, codes.SCT.Stomach, "ORGAN", (216, 132, 105)),
    "duodenum": StructureCode("Duodenum", _ANATOMY, codes.SCT.Duodenum, "ORGAN", (255, 253, 229)),
    "small_bowel": StructureCode(
        "Small bowel", _ANATOMY, codes.SCT.SmallIntestine, "ORGAN", (205, 167, 142)
    ),
    "colon": StructureCode("Colon", _ANATOMY, codes.SCT.Colon, "ORGAN", (204, 168, 143)),
    "pancreas": StructureCode("Pancreas", _ANATOMY, codes.SCT.Pancreas, "ORGAN", (249, 180, 111)),
    "spleen": StructureCode("Spleen", _ANATOMY, codes.SCT.Spleen, "ORGAN", (157, 108, 162)),
    "portal_vein": StructureCode(
        "Portal vein", _ANATOMY, codes.SCT.PortalVein, "AVOIDANCE", (0, 151, 206)
    ),
    "inferior_vena_cava": StructureCode(
        "Inferior vena cava", _ANATOMY, codes.SCT.InferiorVenaCava, "AVOIDANCE", (0, 122, 171)
    ),
}
_LESION = StructureCode("Lesion", _ABNORMAL, codes.SCT.Neoplasm, "GTV", (255, 0, 0))
_NODULE = StructureCode("Nodule", _ABNORMAL, codes.SCT.Nodule, "GTV", (255, 0, 0))
_ABLATION = StructureCode(
    "Ablation zone", _ABNORMAL, codes.SCT.Necrosis, "TREATED_VOLUME", (255, 159, 10)
)
_GTV = StructureCode("GTV", _SPATIAL, codes.SCT.GrossTumorVolume, "GTV", (255, 0, 0))
_CTV = StructureCode("CTV", _SPATIAL, codes.SCT.ClinicalTargetVolume, "CTV", (255, 128, 0))
_PTV = StructureCode("PTV", _SPATIAL, codes.SCT.PlanningTargetVolume, "PTV", (255, 0, 255))

#: Known structure names (after :func:`normalise_name`) and their codes.
KNOWN_STRUCTURES: dict[str, StructureCode] = {
    "body": _BODY,
    "external": _BODY,
    "lung_left": _LUNG_LEFT,
    "left_lung": _LUNG_LEFT,
    "lung_right": _LUNG_RIGHT,
    "right_lung": _LUNG_RIGHT,
    "lungs": _LUNGS,
    "lung": _LUNGS,
    "airways": _AIRWAYS,
    "airway": _AIRWAYS,
    "trachea": _TRACHEA,
    "bones": _BONES,
    "bone": _BONES,
    "ribs": _RIBS,
    "vertebrae": _VERTEBRAE,
    "spine": _VERTEBRAE,
    "mediastinum": _MEDIASTINUM,
    "vessels": _VESSELS,
    "vessel": _VESSELS,
    "aorta": _AORTA,
    "heart": _HEART,
    "liver": _LIVER,
    "spinal_cord": _SPINAL_CORD,
    "esophagus": _ESOPHAGUS,
    "oesophagus": _ESOPHAGUS,
    "lesion": _LESION,
    "tumour": _LESION,
    "tumor": _LESION,
    "neoplasm": _LESION,
    "nodule": _NODULE,
    "gtv": _GTV,
    "ctv": _CTV,
    "ptv": _PTV,
    "ablation_zone": _ABLATION,
    "ablation": _ABLATION,
    "zone": _ABLATION,
    **_LOBES,
    **_ABDOMEN,
    "small_intestine": _ABDOMEN["small_bowel"],
    "ivc": _ABDOMEN["inferior_vena_cava"],
}

#: Colours given in turn to structures without a known code.
_GENERIC_COLOURS = ((0, 199, 190), (191, 90, 242), (255, 214, 10), (52, 199, 89), (10, 132, 255))


def normalise_name(name: str) -> str:
    """Lower case, words joined by ``_``: ``"Lung, left"`` → ``"lung_left"``."""
    words = "".join(c if c.isalnum() else " " for c in name.lower()).split()
    return "_".join(words)


def structure_code(name: str, index: int = 0) -> StructureCode:
    """The code of a structure by name; the generic code for unknown names.

    Parameters
    ----------
    name : str
        Structure name, any case and separators (``"lung_left"``, ``"Lung left"``).
    index : int
        Position of the structure among those exported (picks a distinct colour for
        unknown names).

    Returns
    -------
    StructureCode
        For an unknown name: label ``name`` (cut to 64 characters), category and type
        "Anatomical Structure" (SCT 91723000), RT ROI type ``""``.

    Examples
    --------
    >>> structure_code("Lung left").property_type.meaning, structure_code("Lung left").modifier.meaning
    ('Lung', 'Left')
    >>> structure_code("kidney_cyst").property_type.value
    '91723000'
    """
    key = normalise_name(name)
    known = KNOWN_STRUCTURES.get(key)
    if known is not None:
        return known
    colour = _GENERIC_COLOURS[index % len(_GENERIC_COLOURS)]
    return StructureCode(name[:64], _ANATOMY, _ANATOMY, "", colour)
