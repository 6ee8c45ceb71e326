"""A planned LIDC-IDRI-0001 case for the workstation's timing test and benchmark.

The anatomy comes from the shared model labels (lung lobes, bones, heart and great vessels,
trachea) and a thresholded body; the lesion is the readers' consensus nodule (7.8 mL, too
large for three microwave zones with a margin, so no ablation); the paths are planned by
``plan trajectory`` (about a minute on a shared 2-core machine, mostly the risk maps).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import ndimage

from seldinger.anatomy import Anatomy
from seldinger.app.cli import main
from seldinger.imaging import Volume, reorient
from seldinger.io import read_volume

LIDC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lidc-idri-0001"
GROUPS = {
    "lung_upper_lobe_left": ("lung_upper_lobe_left",),
    "lung_lower_lobe_left": ("lung_lower_lobe_left",),
    "lung_upper_lobe_right": ("lung_upper_lobe_right",),
    "lung_middle_lobe_right": ("lung_middle_lobe_right",),
    "lung_lower_lobe_right": ("lung_lower_lobe_right",),
    "lung_left": ("lung_upper_lobe_left", "lung_lower_lobe_left"),
    "lung_right": ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"),
    "bones": ("rib_", "vertebrae_", "sternum", "scapula_", "clavicula_", "costal_cartilages"),
    "mediastinum": ("heart", "aorta", "esophagus", "superior_vena_cava", "pulmonary_vein",
                    "brachiocephalic_", "atrial_appendage_left"),
    "airways": ("trachea",),
}  # fmt: skip


def build_lidc_case(root: Path) -> Path:
    """Write anatomy/ and plan paths to the consensus nodule; the plan.json."""
    ct = reorient(read_volume(LIDC / "ct.nii.gz"), "LPS")
    labels = reorient(read_volume(LIDC / "model_labels.nii.gz"), "LPS")
    with (LIDC / "model_labels.csv").open(encoding="utf-8") as file:
        ids = {row["structure"]: int(row["id"]) for row in csv.DictReader(file)}
    values = np.asarray(labels.array)
    masks = {}
    for name, prefixes in GROUPS.items():
        wanted = [v for s, v in ids.items() if any(s.startswith(p) for p in prefixes)]
        masks[name] = np.isin(values, wanted)
    body = np.asarray(ct.array) > -500
    for k in range(body.shape[2]):
        body[..., k] = ndimage.binary_fill_holes(body[..., k])
    body |= masks["lung_left"] | masks["lung_right"]
    masks["body"] = body
    root.mkdir(parents=True, exist_ok=True)
    anatomy = Anatomy(masks={n: Volume(m, ct.affine.copy()) for n, m in masks.items()})
    anatomy.save(root / "anatomy")
    plan = root / "plan.json"
    args = ["plan", "trajectory", LIDC / "ct.nii.gz", "--anatomy", root / "anatomy"]
    args += ["--lesion", LIDC / "nodule_consensus.nii.gz", "--out", plan, "--force"]
    assert main([str(a) for a in args]) == 0
    return plan
