"""Pulmonary vessels: a synthetic lung with tubes of known radius, and lidc-idri-0001."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage as ndi
from scipy.special import erfc

from seldinger.anatomy.errors import AnatomyError
from seldinger.anatomy.vessels import (
    PulmonaryVessels,
    hessian_eigenvalues,
    segment_pulmonary_vessels,
    tube_radius_mm,
)
from seldinger.imaging import Volume

SPACING_MM = (0.703125, 0.703125, 2.5)
SHAPE = (220, 220, 56)
LUNG_HU = -850.0
TISSUE_HU = 40.0  # unenhanced blood and bronchial wall
NOISE_HU = 25.0
PSF_SIGMA_MM = 0.4  # in-plane blur of a sharp lung kernel
RADII_MM = (1.0, 2.0, 3.0, 5.0)
TUBE_STARTS_J_MM = (20.0, 50.0, 80.0, 115.0)
BLOB_RADIUS_MM = 5.0  # a 10 mm nodule


@dataclass(frozen=True)
class Tube:
    name: str
    start_mm: tuple[float, float, float]
    direction: tuple[float, float, float]
    length_mm: float
    radius_mm: float


def _tubes() -> list[Tube]:
    tubes = []
    oblique = np.array([1.0, 0.3, 1.0]) / np.linalg.norm([1.0, 0.3, 1.0])
    for radius, j_mm in zip(RADII_MM, TUBE_STARTS_J_MM, strict=True):
        # through the slices (along k), lying in an axial slice (along i), and oblique
        tubes.append(Tube(f"through r={radius}", (20.0, j_mm, 15.0), (0, 0, 1), 110.0, radius))
        tubes.append(Tube(f"in-plane r={radius}", (40.0, j_mm, 30.0), (1, 0, 0), 100.0, radius))
        tubes.append(Tube(f"oblique r={radius}", (55.0, j_mm, 60.0), tuple(oblique), 70.0, radius))
    return tubes


def _edge(distance_outside_mm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Fraction of tissue at a signed distance outside a smooth edge, blurred by the PSF."""
    return np.asarray(0.5 * erfc(distance_outside_mm / (np.sqrt(2.0) * PSF_SIGMA_MM)))


def _tube_coordinates(
    points: npt.NDArray[np.float64], tube: Tube
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Distance (mm) of points from the tube's axis, and their position along it."""
    rel = points - np.asarray(tube.start_mm)
    u = np.asarray(tube.direction, float)
    along = rel @ u
    radial = np.linalg.norm(rel - along[..., None] * u, axis=-1)
    return radial, along


def _plate_coordinates(
    points: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Distance (mm) of points from the plate's mid-plane, and from its centre's normal."""
    rel = points - np.asarray(PLATE_CENTRE_MM)
    normal = np.asarray(PLATE_NORMAL) / np.linalg.norm(PLATE_NORMAL)
    across = rel @ normal
    return np.abs(across), np.linalg.norm(rel - across[..., None] * normal, axis=-1)


def _objects() -> list[tuple[str, npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """(name, lo_mm, hi_mm): each object of the phantom and a box (mm) that holds it."""
    out = []
    for tube in _tubes():
        a = np.asarray(tube.start_mm)
        b = a + tube.length_mm * np.asarray(tube.direction)
        out.append((tube.name, np.minimum(a, b) - tube.radius_mm - 3, np.maximum(a, b) + tube.radius_mm + 3))
    c = np.asarray(BLOB_CENTRE_MM)
    out.append(("blob", c - BLOB_RADIUS_MM - 3, c + BLOB_RADIUS_MM + 3))
    c = np.asarray(PLATE_CENTRE_MM)
    out.append(("plate", c - PLATE_RADIUS_MM - 3, c + PLATE_RADIUS_MM + 3))
    return out


def _outside_mm(name: str, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Signed distance (mm, > 0 outside) of points from object ``name``'s surface (approx.)."""
    if name == "blob":
        return np.linalg.norm(points - np.asarray(BLOB_CENTRE_MM), axis=-1) - BLOB_RADIUS_MM
    if name == "plate":
        across, lateral = _plate_coordinates(points)
        return np.maximum(across - PLATE_THICKNESS_MM / 2, lateral - PLATE_RADIUS_MM)
    tube = next(t for t in _tubes() if t.name == name)
    radial, along = _tube_coordinates(points, tube)
    return np.maximum(radial - tube.radius_mm, np.maximum(-along, along - tube.length_mm))


def _phantom(seed: int = 20240611) -> tuple[Volume, npt.NDArray[np.bool_], dict[str, object]]:
    """Lung at -850 HU with tubes, a bright plate and a round blob; slices 2.5 mm thick.

    Each voxel averages its 2.5 mm slice (5 samples along k) of objects blurred in-plane
    by the PSF; white noise on top. ``truth`` holds the voxels whose centre is inside each
    object (tubes: away from their rounded ends).
    """
    rng = np.random.default_rng(seed)
    spacing = np.asarray(SPACING_MM)
    tissue = np.zeros(SHAPE, np.float32)
    truth: dict[str, object] = {}
    for name, lo_mm, hi_mm in _objects():
        lo = np.maximum(np.floor(lo_mm / spacing).astype(int), 0)
        hi = np.minimum(np.ceil(hi_mm / spacing).astype(int) + 1, SHAPE)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        axes = [np.arange(a, b) * s for a, b, s in zip(lo, hi, spacing, strict=True)]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        fraction = np.zeros(points.shape[:3])
        for dk in (np.arange(5) - 2) * spacing[2] / 5:
            fraction += _edge(_outside_mm(name, points + [0.0, 0.0, dk])) / 5
        tissue[box] = np.maximum(tissue[box], fraction)
        inside = np.zeros(SHAPE, bool)
        inside[box] = _outside_mm(name, points) <= 0
        if name not in ("blob", "plate"):
            tube = next(t for t in _tubes() if t.name == name)
            _, along = _tube_coordinates(points, tube)
            inside[box] &= (along > 5.0) & (along < tube.length_mm - 5.0)
        truth[name] = inside
    hu = LUNG_HU + (TISSUE_HU - LUNG_HU) * tissue + rng.normal(0.0, NOISE_HU, SHAPE)
    ct = Volume(np.round(hu).astype(np.int16), np.diag([*SPACING_MM, 1.0]))
    return ct, np.ones(SHAPE, bool), truth


BLOB_CENTRE_MM = (130.0, 140.0, 40.0)
PLATE_CENTRE_MM = (130.0, 135.0, 100.0)
PLATE_NORMAL = (1.0, 0.0, 0.5)
PLATE_THICKNESS_MM = 1.5
PLATE_RADIUS_MM = 15.0


@pytest.fixture(scope="module")
def phantom():  # type: ignore[no-untyped-def]
    ct, lungs, truth = _phantom()
    return ct, lungs, truth, segment_pulmonary_vessels(ct, lungs)


def test_eigenvalues_match_numpy() -> None:
    rng = np.random.default_rng(20240611)
    a = rng.normal(size=(500, 3, 3))
    sym = (a + a.transpose(0, 2, 1)) / 2
    sym[0] = np.diag([1.0, 1.0, 1.0])  # EDGECASE: all equal, p = 0
    sym[1] = np.diag([2.0, -1.0, -1.0])  # two equal
    entries = [sym[:, 0, 0], sym[:, 1, 1], sym[:, 2, 2], sym[:, 0, 1], sym[:, 0, 2], sym[:, 1, 2]]
    got = np.stack(hessian_eigenvalues(*(e.astype(np.float32) for e in entries)), axis=1)
    np.testing.assert_allclose(got, np.linalg.eigvalsh(sym), atol=2e-4)
