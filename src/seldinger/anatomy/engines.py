"""Segmentation back-ends: the classical pipeline (default) and optional AI engines.

An engine turns a CT into an :class:`~seldinger.anatomy.result.Anatomy`. AI engines run
only with software and weights the user installed; nothing is ever downloaded. Structures
an AI model does not provide come from the classical steps, given the AI masks as inputs.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from seldinger.anatomy.errors import AnatomyError, EngineUnavailableError
from seldinger.anatomy.lobes import LOBE_NAMES
from seldinger.anatomy.mediastinal_organs import MEDIASTINAL_ORGANS
from seldinger.anatomy.morphology import BoolArray
from seldinger.anatomy.pipeline import ProgressCallback, run_pipeline
from seldinger.anatomy.result import Anatomy
from seldinger.imaging import Volume

__all__ = [
    "ENGINES",
    "TOTALSEGMENTATOR_MAP",
    "ClassicalEngine",
    "Engine",
    "TotalSegmentatorEngine",
    "get_engine",
]


class Engine(Protocol):
    """What a segmentation back-end provides."""

    name: str

    def check_available(self) -> None:
        """Raise :class:`EngineUnavailableError` saying what to install when unusable."""

    def segment(
        self,
        ct: Volume,
        structures: Iterable[str] | None = None,
        *,
        modality: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Anatomy:
        """Segment ``structures`` (default: all) of ``ct``."""
        ...


class ClassicalEngine:
    """Thresholds, region growing, morphology and Hessian filters: no model, no weights."""

    name = "classical"

    def check_available(self) -> None:
        """Always available."""

    def segment(
        self,
        ct: Volume,
        structures: Iterable[str] | None = None,
        *,
        modality: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Anatomy:
        """Segment with :func:`~seldinger.anatomy.pipeline.run_pipeline`."""
        return run_pipeline(ct, structures, modality=modality, progress=progress)


#: TotalSegmentator ("total" task) class names that make up each of our structures. The
#: body, pulmonary vessels inside the lungs and emphysema are not in that task: they come
#: from the classical steps. Airways are only the trachea there (the "lung_vessels" task
#: has the bronchi): our airway tree is classical too, and the model's trachea is unused.
TOTALSEGMENTATOR_MAP: Mapping[str, tuple[str, ...]] = {
    "lung_left": ("lung_upper_lobe_left", "lung_lower_lobe_left"),
    "lung_right": ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"),
    "bones": (
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
    ),
    "mediastinum": (
        "heart",
        "aorta",
        "pulmonary_vein",
        "pulmonary_artery",
        "superior_vena_cava",
        "brachiocephalic_",
        "atrial_appendage_left",
        "esophagus",
        "common_carotid_artery_",
        "subclavian_artery_",
    ),
    "liver": ("liver",),
    **{lobe: (lobe,) for lobe in LOBE_NAMES},
    **{organ: (organ,) for organ in MEDIASTINAL_ORGANS},
}


def _weights_dir() -> Path:
    # TotalSegmentator's own lookup (totalsegmentator/config.py): TOTALSEG_WEIGHTS_PATH,
    # else TOTALSEG_HOME_DIR/nnunet/results, else ~/.totalsegmentator/nnunet/results.
    if os.environ.get("TOTALSEG_WEIGHTS_PATH"):
        return Path(os.environ["TOTALSEG_WEIGHTS_PATH"])
    home = Path(os.environ.get("TOTALSEG_HOME_DIR", Path.home() / ".totalsegmentator"))
    return home / "nnunet" / "results"


class TotalSegmentatorEngine:
    """TotalSegmentator (Wasserthal et al., Radiol Artif Intell 2023), "total" task.

    Needs ``pip install TotalSegmentator`` and its weights already on disk (run
    ``totalseg_download_weights -t total`` once while online); seldinger refuses to start
    it when the weights are absent, because TotalSegmentator would download them.
    """

    name = "totalsegmentator"

    def __init__(self, fast: bool = False) -> None:
        self.fast = fast

    def check_available(self) -> None:
        """Raise EngineUnavailableError unless the package and the task's weights exist."""
        if importlib.util.find_spec("totalsegmentator") is None:
            raise EngineUnavailableError(
                "the totalsegmentator engine needs the TotalSegmentator package: "
                "`pip install TotalSegmentator` (with PyTorch), then "
                "`totalseg_download_weights -t total` once while online. Or use the default "
                "engine: --engine classical."
            )
        weights = _weights_dir()
        if not weights.is_dir() or not any(weights.glob("Dataset*")):
            raise EngineUnavailableError(
                f"TotalSegmentator is installed but its weights are not in {weights}; "
                "seldinger never downloads weights. Run `totalseg_download_weights -t total` "
                "while online (or set TOTALSEG_HOME_DIR / TOTALSEG_WEIGHTS_PATH to where they "
                "are), or use --engine classical."
            )

    def _labels(self, ct: Volume) -> tuple[np.ndarray, Mapping[int, str]]:
        from seldinger.io import read_volume, write_volume

        api = importlib.import_module("totalsegmentator.python_api")
        class_map = importlib.import_module("totalsegmentator.map_to_binary").class_map["total"]
        with tempfile.TemporaryDirectory(prefix="seldinger-ts-") as tmp:
            src, dst = Path(tmp) / "ct.nii.gz", Path(tmp) / "labels.nii.gz"
            write_volume(ct, src)
            api.totalsegmentator(src, dst, ml=True, task="total", fast=self.fast, quiet=True)
            labels = read_volume(dst)
        if not labels.geometry.same_as(ct.geometry, atol_mm=1e-3):
            raise AnatomyError(
                "TotalSegmentator returned labels on another grid than the CT; this version "
                "of TotalSegmentator is not supported."
            )
        return np.asarray(labels.array), {int(k): str(v) for k, v in class_map.items()}

    def segment(
        self,
        ct: Volume,
        structures: Iterable[str] | None = None,
        *,
        modality: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Anatomy:
        """Run TotalSegmentator, map its classes, and compute the rest classically."""
        self.check_available()
        if progress is not None:
            progress("totalsegmentator", 0, 1)
        labels, class_map = self._labels(ct)
        given: dict[str, BoolArray] = {}
        for name, prefixes in TOTALSEGMENTATOR_MAP.items():
            ids = [i for i, cls in class_map.items() if cls.startswith(prefixes)]
            mask = np.isin(labels, ids)
            if mask.any():
                given[name] = mask
        result = run_pipeline(
            ct, structures, given=given, modality=modality, engine=self.name, progress=progress
        )
        from_model = sorted(n for n in given if n in result.masks)
        note = f"from TotalSegmentator: {', '.join(from_model)}; the rest classical"
        return replace(result, notes=(note, *result.notes))


#: Engines by the name used on the command line.
ENGINES: Mapping[str, type[ClassicalEngine] | type[TotalSegmentatorEngine]] = {
    "classical": ClassicalEngine,
    "totalsegmentator": TotalSegmentatorEngine,
}


def get_engine(name: str) -> ClassicalEngine | TotalSegmentatorEngine:
    """The engine called ``name``; AnatomyError listing the known ones otherwise."""
    try:
        return ENGINES[name]()
    except KeyError:
        raise AnatomyError(
            f"unknown segmentation engine {name!r}; choose from {', '.join(ENGINES)}."
        ) from None
