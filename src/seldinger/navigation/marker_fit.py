"""Sub-voxel centre of a CT-visible spherical marker (:mod:`seldinger.navigation.fiducials`).

Steps 4–5 of the fiducials module docstring: a partial-volume-weighted centroid, with the
background around the marker fitted as two phases (air | skin) on either side of a plane,
each averaged over the voxel's box, so a marker resting on or half-embedded in the skin
is not pulled toward it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_CONTRAST_HU", "localise"]

FloatArray = npt.NDArray[np.float64]

#: Partial-volume weights are summed this far (mm) beyond the nominal radius: room for
#: the scanner's blur and for a centre that is off by a voxel at the first iteration.
_WEIGHT_MARGIN_MM = 1.0
_ITERATIONS = 3
#: The background is fitted on the voxels this far (mm) beyond the weighting sphere.
_RING_MM = 3.0
#: A neighbourhood whose 5th–95th percentile span is below this (HU) is one tissue.
_UNIFORM_HU = 200.0
#: Evaluations allowed to the background fit (it needs 10–30; a sharp edge can use more).
_MAX_FIT_EVALUATIONS = 60
#: m − b is at least this (HU) so that a dense background cannot divide by ~0.
MIN_CONTRAST_HU = 100.0


def localise(
    hu: npt.NDArray[Any],
    spacing: FloatArray,
    start_ijk: FloatArray,
    radius_mm: float,
    marker_hu: float,
) -> _Fit | None:
    """Partial-volume-weighted centre of a marker (module docstring, steps 4–5).

    None when the neighbourhood leaves the array or holds no marker.
    """
    reach_mm = radius_mm + _WEIGHT_MARGIN_MM
    half = np.ceil((reach_mm + _RING_MM) / spacing).astype(int) + 1
    start = np.asarray(start_ijk, dtype=np.float64)
    centre = start
    shape = np.asarray(hu.shape)
    background: _Background | None = None
    weights: FloatArray = np.zeros(0)
    offsets: FloatArray = np.zeros((0, 3))
    peak = -math.inf
    for _ in range(_ITERATIONS):
        origin = np.rint(centre).astype(int) - half
        stop = origin + 2 * half + 1
        if np.any(origin < 0) or np.any(stop > shape):
            return None
        box = tuple(slice(int(a), int(b)) for a, b in zip(origin, stop, strict=True))
        values = hu[box].astype(np.float64)
        index = np.stack(
            np.meshgrid(*[np.arange(n, dtype=np.float64) for n in values.shape], indexing="ij"),
            axis=-1,
        )
        offset = index + origin - centre  # voxel centre − marker centre, index units
        # Distance (mm) from the centre to each voxel's box.
        gap = np.maximum(np.abs(offset) * spacing - spacing / 2.0, 0.0)
        near = np.sum(gap**2, axis=-1) <= reach_mm**2
        from_start_mm = (index + origin - start) * spacing
        if background is None:
            ring = ~near & (np.linalg.norm(offset * spacing, axis=-1) <= reach_mm + _RING_MM)
            background = _fit_background(from_start_mm[ring], values[ring], spacing)
        b = background.at(from_start_mm[near])
        inner = values[near]
        peak = float(inner.max())
        contrast = np.maximum(max(marker_hu, peak) - b, MIN_CONTRAST_HU)
        weights = np.clip((inner - b) / contrast, 0.0, 1.0)
        total = float(weights.sum())
        if total <= 0.0:
            return None
        offsets = offset[near]
        centre = centre + (offsets * weights[:, None]).sum(axis=0) / total
    if background is None:  # pragma: no cover - the loop runs at least once
        return None
    offsets = offsets - (offsets * weights[:, None]).sum(axis=0) / weights.sum()
    mm = offsets * spacing
    cov = (mm * weights[:, None]).T @ mm / weights.sum() - np.diag(spacing**2 / 12.0)
    eig = np.clip(np.linalg.eigvalsh(cov), 1e-9, None)
    return _Fit(
        centre_ijk=centre,
        weight_sum=float(weights.sum()),
        peak_hu=peak,
        sphericity=float(math.sqrt(eig[0] / eig[-1])),
        background_rms_hu=background.rms_hu,
    )


@dataclass(frozen=True)
class _Fit:
    centre_ijk: FloatArray
    weight_sum: float
    peak_hu: float
    sphericity: float
    background_rms_hu: float


@dataclass(frozen=True)
class _Background:
    """Two-phase background: ``low_hu`` below a plane, ``high_hu`` above, blurred edge.

    Positions are mm along the index axes from a fixed point; values are voxel averages
    (``sub_mm``: sub-voxel offsets), like the CT's partial-volume voxels.
    """

    normal: FloatArray
    offset_mm: float
    low_hu: float
    high_hu: float
    blur_mm: float
    sub_mm: FloatArray
    rms_hu: float

    def at(self, points_mm: FloatArray) -> FloatArray:
        """Voxel-averaged background HU at voxel centres, shape (n, 3) → (n,)."""
        if self.high_hu == self.low_hu:
            return np.full(len(points_mm), self.low_hu)
        return _two_phase(
            points_mm,
            self.sub_mm,
            self.normal,
            self.offset_mm,
            self.blur_mm,
            self.low_hu,
            self.high_hu,
        )


def _two_phase(
    points_mm: FloatArray,
    sub_mm: FloatArray,
    normal: FloatArray,
    offset_mm: float,
    blur_mm: float,
    low_hu: float,
    high_hu: float,
) -> FloatArray:
    z = (points_mm @ normal)[:, None] + (sub_mm @ normal)[None, :] - offset_mm
    step = 0.5 * (1.0 + np.tanh(z / (2.0 * blur_mm)))  # logistic of scale blur_mm
    return np.asarray(low_hu + (high_hu - low_hu) * step.mean(axis=1), dtype=np.float64)


def _fit_background(points_mm: FloatArray, values: FloatArray, spacing: FloatArray) -> _Background:
    """Fit :class:`_Background` to the voxels around a marker (air | skin, or uniform).

    A uniform neighbourhood (5th–95th percentile within :data:`_UNIFORM_HU`) gets its
    median. Otherwise the plane starts between the means of the bright and the dark
    voxels and is refined by robust least squares (soft-L1, scale 50 HU).
    """
    from scipy.optimize import least_squares  # local: only needed when markers are found

    counts = np.full(3, 3)
    counts[int(np.argmax(spacing))] = 7  # the thick slab mixes the most
    axes = [((np.arange(n) + 0.5) / n - 0.5) * s for n, s in zip(counts, spacing, strict=True)]
    sub = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    lo, hi = np.percentile(values, [5.0, 95.0])
    median = float(np.median(values))
    uniform = _Background(
        normal=np.array([0.0, 0.0, 1.0]),
        offset_mm=0.0,
        low_hu=median,
        high_hu=median,
        blur_mm=1.0,
        sub_mm=sub,
        rms_hu=float(np.sqrt(np.mean((values - median) ** 2))),
    )
    if hi - lo < _UNIFORM_HU:
        return uniform
    bright = values > 0.5 * (lo + hi)
    normal = points_mm[bright].mean(axis=0) - points_mm[~bright].mean(axis=0)
    normal /= np.linalg.norm(normal)
    offset = float(
        normal @ (0.5 * (points_mm[bright].mean(axis=0) + points_mm[~bright].mean(axis=0)))
    )
    theta, phi = math.acos(float(np.clip(normal[2], -1.0, 1.0))), math.atan2(normal[1], normal[0])

    def unit(theta: float, phi: float) -> FloatArray:
        return np.array(
            [math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)]
        )

    def residual(p: FloatArray) -> FloatArray:
        n = unit(p[0], p[1])
        return _two_phase(points_mm, sub, n, p[2], p[5], p[3], p[4]) - values

    p0 = np.array([theta, phi, offset, lo, hi, 0.3])
    lower = [-np.inf, -np.inf, -np.inf, -np.inf, -np.inf, 0.05]
    upper = [np.inf, np.inf, np.inf, np.inf, np.inf, 3.0]
    fit = least_squares(
        residual,
        p0,
        bounds=(lower, upper),
        loss="soft_l1",
        f_scale=50.0,
        max_nfev=_MAX_FIT_EVALUATIONS,
    )
    rms_hu = float(np.sqrt(np.mean(fit.fun**2)))
    # An unfinished fit (evaluations used up on a sharp edge) still counts if it beats
    # the uniform model; a fit that made things worse does not.
    if fit.status < 0 or not rms_hu < uniform.rms_hu:
        return uniform
    p = fit.x
    return _Background(
        normal=unit(p[0], p[1]),
        offset_mm=float(p[2]),
        low_hu=float(p[3]),
        high_hu=float(p[4]),
        blur_mm=float(p[5]),
        sub_mm=sub,
        rms_hu=rms_hu,
    )
