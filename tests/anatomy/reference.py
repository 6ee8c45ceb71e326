"""Reference labels of the real CTs (a model's output: judged at organ level) and Dice."""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt

from shared_paths import ABDOMEN, LIDC

BONE_PREFIXES = (
    "rib_",
    "vertebrae_",
    "sacrum",
    "sternum",
    "scapula_",
    "clavicula_",
    "costal_cartilages",
    "humerus_",
    "hip_",
    "femur_",
    "skull",
)
LUNG_LOBES = (
    "lung_upper_lobe_left",
    "lung_lower_lobe_left",
    "lung_upper_lobe_right",
    "lung_middle_lobe_right",
    "lung_lower_lobe_right",
)


@cache
def _labels(case_dir: Path) -> tuple[npt.NDArray[np.uint8], dict[str, int]]:
    # Both cases' model_labels share the CT's affine and array order (checked in
    # test_reference_labels_share_ct_grid), so the raw array indexes like the Volume's.
    array = np.asarray(nib.load(case_dir / "model_labels.nii.gz").dataobj, dtype=np.uint8)
    if (case_dir / "model_labels.csv").is_file():
        with (case_dir / "model_labels.csv").open() as f:
            ids = {row["structure"]: int(row["id"]) for row in csv.DictReader(f)}
    else:
        ids = {
            v: int(k) for k, v in json.loads((case_dir / "model_labels.json").read_text()).items()
        }
    array.setflags(write=False)
    return array, ids


def reference_mask(case_dir: Path, *names_or_prefixes: str) -> npt.NDArray[np.bool_]:
    """Union of the labels whose name equals or starts with any of ``names_or_prefixes``.

    The array is in the index order of ``read_ct(case_dir / "ct.nii.gz").volume.array``
    (seldinger keeps the stored array order and expresses orientation in the affine).
    """
    array, ids = _labels(case_dir)
    wanted = [i for name, i in ids.items() if any(name.startswith(p) for p in names_or_prefixes)]
    return np.isin(array, wanted)


def reference_volume(case_dir: Path, *names_or_prefixes: str):  # type: ignore[no-untyped-def]
    """The reference mask as a seldinger Volume (LPS frame, same geometry as read_ct)."""
    from seldinger.io import read_volume

    labels = read_volume(case_dir / "model_labels.nii.gz")
    _, ids = _labels(case_dir)
    wanted = [i for name, i in ids.items() if any(name.startswith(p) for p in names_or_prefixes)]
    return labels.with_array(np.isin(labels.array, wanted))


def dice(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 1.0


__all__ = [
    "ABDOMEN",
    "BONE_PREFIXES",
    "LIDC",
    "LUNG_LOBES",
    "dice",
    "reference_mask",
    "reference_volume",
]
