"""Deformable registration between respiratory phases with elastix (itk-elastix).

FIXED → MOVING: the result is the displacement that moves each FIXED voxel centre to its
MOVING position (:class:`~seldinger.motion.field.DisplacementField`, LPS mm). The lung
preset is an affine stage followed by a multi-resolution cubic B-spline with normalized
correlation and a bending-energy penalty, after the elastix model zoo's **Par0011**
(Staring et al., EMPIRE10 lung CT challenge: ``Parameters.Par0011.affine.txt`` and
``Parameters.Par0011.bspline1_s.txt``); what is adapted, and why, is listed beside
:func:`lung_parameter_maps`. The Jacobian determinant of the result is checked: a field
that folds is refused (:class:`~seldinger.motion.errors.FoldingError`).

References
----------
.. [1] Klein S, Staring M, Murphy K, Viergever MA, Pluim JPW. elastix: a toolbox for
   intensity-based medical image registration. IEEE TMI 29(1):196-205, 2010.
.. [2] Murphy K, van Ginneken B, Reinhardt JM, et al. Evaluation of registration methods on
   thoracic CT: the EMPIRE10 challenge. IEEE TMI 30(11):1901-1920, 2011 (Par0011's use).
.. [3] Elastix model zoo, Par0011: https://github.com/SuperElastix/ElastixModelZoo
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from seldinger.imaging import Volume
from seldinger.motion.errors import MotionError, RegistrationError
from seldinger.motion.field import DisplacementField, check_no_folding, jacobian_determinant

__all__ = [
    "Registration",
    "RegistrationMethod",
    "RegistrationSettings",
    "default_bspline_parameter_maps",
    "lung_parameter_maps",
    "register",
]

logger = logging.getLogger(__name__)

#: A parameter map as elastix takes it: name → tuple of string values.
ParameterMap = dict[str, tuple[str, ...]]


class RegistrationMethod(StrEnum):
    """Which parameter maps :func:`register` runs."""

    #: Affine then lung-tuned B-spline (Par0011-derived, :func:`lung_parameter_maps`).
    LUNG = "lung"
    #: The affine stage of LUNG alone (the baseline a deformable method must beat).
    AFFINE = "affine"
    #: elastix's ``GetDefaultParameterMap("bspline")`` unchanged (the benchmark baseline).
    ELASTIX_DEFAULT = "elastix-default"


@dataclass(frozen=True)
class RegistrationSettings:
    """Settings of :func:`register`; the defaults are the lung preset.

    Parameters
    ----------
    threads : int, optional
        elastix worker threads; default: the CPUs this process may run on.
    mask_dilation_mm : float
        The fixed mask (e.g. the lungs) is dilated by this much so that the lung
        surface, where sliding happens, is sampled as well.
    final_grid_spacing_mm : float
        B-spline control-point spacing at the finest level (Par0011: 10 mm).
    bending_weight : float
        Relative weight of the bending-energy penalty (Par0011: 0.05; 0.2 here, as 0.05
        folded the field at the lung surface of the sliding test case).
    affine_iterations : int
        Optimizer iterations per affine level (Par0011: 1000).
    bspline_iterations : int
        Optimizer iterations per B-spline level (Par0011: 1000).
    samples : int
        Random samples per iteration (Par0011: 2000).
    random_seed : int
        Seed of elastix's sampler, so that a run repeats exactly.
    log_dir : str, optional
        Folder that keeps elastix's log (``elastix.log``); default: a temporary one.
    field_step : int
        The field is evaluated by ITK at every ``field_step``-th voxel in-plane and filled
        in linearly (2: a quarter of the evaluations, < 0.05 mm difference for a 10 mm
        B-spline grid on 0.7 mm voxels); 1 evaluates every voxel.
    refuse_folding : bool
        Raise :class:`~seldinger.motion.errors.FoldingError` when the field folds (default);
        False returns it anyway, with ``min_jacobian`` ≤ 0 (to study a baseline).
    """

    threads: int | None = None
    mask_dilation_mm: float = 5.0
    final_grid_spacing_mm: float = 10.0
    bending_weight: float = 0.2
    affine_iterations: int = 200
    bspline_iterations: int = 200
    samples: int = 2000
    random_seed: int = 20261207
    log_dir: str | None = None
    field_step: int = 2
    refuse_folding: bool = True

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise MotionError(f"threads must be ≥ 1; got {self.threads}.")
        for name in ("mask_dilation_mm", "bending_weight"):
            if getattr(self, name) < 0:
                raise MotionError(f"{name} must be ≥ 0; got {getattr(self, name)}.")
        for name in (
            "final_grid_spacing_mm",
            "affine_iterations",
            "bspline_iterations",
            "samples",
            "field_step",
        ):
            if getattr(self, name) <= 0:
                raise MotionError(f"{name} must be > 0; got {getattr(self, name)}.")


@dataclass(frozen=True, eq=False)
class Registration:
    """Result of :func:`register` (FIXED → MOVING).

    Attributes
    ----------
    field : DisplacementField
        On the FIXED grid: ``x_moving = x + u(x)``, LPS mm.
    jacobian : Volume
        det(I + ∂u/∂x) on the FIXED grid (float32).
    min_jacobian : float
        Smallest determinant in the checked region (the dilated mask, else the whole grid).
    mean_displacement_mm, max_displacement_mm : float
        |u| over the mask as given (else the whole grid).
    seconds : float
        Wall time of the whole call; ``registration_s`` of elastix's optimisation alone,
        ``field_s`` of the field on the whole FIXED grid and its Jacobian.
    method : str
        The :class:`RegistrationMethod` value.
    parameter_maps : tuple of dict
        The elastix parameter maps that ran, for the record.
    """

    field: DisplacementField
    jacobian: Volume
    min_jacobian: float
    mean_displacement_mm: float
    max_displacement_mm: float
    seconds: float
    registration_s: float
    field_s: float
    method: str
    parameter_maps: tuple[ParameterMap, ...] = dataclasses.field(repr=False)

    def summary(self) -> dict[str, float | str]:
        """JSON-ready figures (what ``seldinger motion register`` prints)."""
        return {
            "method": self.method,
            "mean_displacement_mm": round(self.mean_displacement_mm, 3),
            "max_displacement_mm": round(self.max_displacement_mm, 3),
            "min_jacobian": round(self.min_jacobian, 4),
            "seconds": round(self.seconds, 2),
            "registration_s": round(self.registration_s, 2),
            "field_s": round(self.field_s, 2),
        }


def _pyramid(spacing_mm: tuple[float, float, float], levels: int) -> tuple[str, ...]:
    """ImagePyramidSchedule that brings anisotropic voxels towards cubes at coarse levels.

    Par0011 shrinks all axes alike (16 8 4 2 1) for ~0.7 mm cubes; CT for navigation has
    thick slices (e.g. 0.7 × 0.7 × 2.5 mm), so an axis is shrunk by the level's factor
    times the finest spacing divided by its own spacing (at least 1).
    """
    finest = min(spacing_mm)
    schedule: list[str] = []
    for level in range(levels):
        factor = 2 ** (levels - 1 - level)
        schedule += [str(max(1, round(factor * finest / s))) for s in spacing_mm]
    return tuple(schedule)


def lung_parameter_maps(
    spacing_mm: tuple[float, float, float], settings: RegistrationSettings | None = None
) -> tuple[ParameterMap, ParameterMap]:
    """The affine and B-spline parameter maps of the lung preset.

    Follows elastix model zoo Par0011 (EMPIRE10 lung CT) with these adaptations, all for
    a registration of a 512 × 512 × 133 pair within 60 s on 2 cores and 4 GB:

    - iterations per level 200 (affine and B-spline) instead of 1000;
    - bending-energy weight 0.2 instead of 0.05: with 0.05 the field folded (det down to
      −0.05 … −1.3) where the lungs slide along the chest wall in the acceptance case;
    - 3 affine and 4 B-spline levels instead of 5 and 5, the B-spline grid schedule
      8 4 2 1 × 10 mm (Par0011: 8 8 4 2 1 × 10 mm);
    - the pyramid schedule adapted to thick slices (:func:`_pyramid`), recursive pyramids
      as in Par0011;
    - linear interpolation during optimisation (``LinearInterpolator``; Par0011 uses
      ``BSplineInterpolator`` of order 1, the same values with a double-precision
      coefficient image per level) and no result image (only the field is needed);
    - a fixed random seed.

    Kept from Par0011: ``AdvancedNormalizedCorrelation`` + ``TransformBendingEnergyPenalty``
    with relative weights (1 : 0.2 here), adaptive stochastic gradient descent with automatic
    parameter estimation, 2000 random-coordinate samples renewed every iteration, a 10 mm
    final grid, automatic affine initialisation and scales.
    """
    s = settings or RegistrationSettings()
    common: ParameterMap = {
        "FixedInternalImagePixelType": ("float",),
        "MovingInternalImagePixelType": ("float",),
        "FixedImagePyramid": ("FixedRecursiveImagePyramid",),
        "MovingImagePyramid": ("MovingRecursiveImagePyramid",),
        "Interpolator": ("LinearInterpolator",),
        "Optimizer": ("AdaptiveStochasticGradientDescent",),
        "AutomaticParameterEstimation": ("true",),
        "UseAdaptiveStepSizes": ("true",),
        "ImageSampler": ("RandomCoordinate",),
        "NumberOfSpatialSamples": (str(s.samples),),
        "NewSamplesEveryIteration": ("true",),
        "MaximumNumberOfSamplingAttempts": ("50",),
        "RandomSeed": (str(s.random_seed),),
        "ResampleInterpolator": ("FinalBSplineInterpolator",),
        "FinalBSplineInterpolationOrder": ("1",),
        "Resampler": ("DefaultResampler",),
        "DefaultPixelValue": ("-1024",),
        "HowToCombineTransforms": ("Compose",),
        "ErodeMask": ("false",),
        "UseDirectionCosines": ("true",),
        "WriteResultImage": ("false",),
        "ResultImageFormat": ("nii",),
    }
    affine: ParameterMap = {
        **common,
        "Registration": ("MultiResolutionRegistration",),
        "Metric": ("AdvancedNormalizedCorrelation",),
        "Transform": ("AffineTransform",),
        "AutomaticScalesEstimation": ("true",),
        # Phases of one 4-D CT share the scanner's frame: identity is the right start.
        # Automatic initialisation aligns the centres of the (masked) fixed image and the
        # whole moving one: with a one-lung mask that starts 22 mm off and ends in the other
        # lung (measured on the synthetic chest of tests/app/conftest.py).
        "AutomaticTransformInitialization": ("false",),
        "NumberOfResolutions": ("3",),
        "ImagePyramidSchedule": _pyramid(spacing_mm, 3),
        "MaximumNumberOfIterations": (str(s.affine_iterations),),
    }
    bspline: ParameterMap = {
        **common,
        "Registration": ("MultiMetricMultiResolutionRegistration",),
        "Metric": ("AdvancedNormalizedCorrelation", "TransformBendingEnergyPenalty"),
        "UseRelativeWeights": ("true",),
        "Metric0RelativeWeight": ("1.0",),
        "Metric1RelativeWeight": (repr(float(s.bending_weight)),),
        "Transform": ("BSplineTransform",),
        "FinalGridSpacingInPhysicalUnits": (repr(float(s.final_grid_spacing_mm)),),
        "GridSpacingSchedule": ("8", "4", "2", "1"),
        "NumberOfResolutions": ("4",),
        "ImagePyramidSchedule": _pyramid(spacing_mm, 4),
        "MaximumNumberOfIterations": (str(s.bspline_iterations),),
    }
    return affine, bspline


def default_bspline_parameter_maps() -> tuple[ParameterMap, ...]:
    """elastix's own ``GetDefaultParameterMap("bspline")`` (the benchmark's baseline).

    Only the result image is switched off (it is not needed and costs a full resampling).
    """
    with _itk_loading() as itk:
        parameters = itk.ParameterObject.New()
        found = parameters.GetDefaultParameterMap("bspline")
    default = {k: tuple(v) for k, v in found.items()}
    default["WriteResultImage"] = ("false",)
    return (default,)


@contextmanager
def _itk_loading() -> Iterator[Any]:
    """``itk``, with DeprecationWarnings ignored while its SWIG modules load lazily.

    Loading an itk SWIG module emits a DeprecationWarning ("builtin type SwigPy… has no
    __module__ attribute"); under ``-W error`` (pytest's ``filterwarnings = error``) the
    module's initialisation is then aborted and the interpreter crashes (segfault).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import itk  # type: ignore[import-untyped]  # no stubs; see docs/motion.md

        yield itk


def _maps_for(
    method: RegistrationMethod, spacing_mm: tuple[float, float, float], s: RegistrationSettings
) -> tuple[ParameterMap, ...]:
    if method is RegistrationMethod.ELASTIX_DEFAULT:
        return default_bspline_parameter_maps()
    affine, bspline = lung_parameter_maps(spacing_mm, s)
    return (affine,) if method is RegistrationMethod.AFFINE else (affine, bspline)


def _threads(settings: RegistrationSettings) -> int:
    if settings.threads is not None:
        return settings.threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _to_itk(array: npt.NDArray[Any], volume: Volume, pixel: Any) -> Any:
    """An ITK image of ``array`` (indexed i, j, k) on ``volume``'s grid (LPS, as ITK's space)."""
    import itk

    image = itk.image_from_array(np.ascontiguousarray(array.transpose(2, 1, 0), dtype=pixel))
    image.SetOrigin([float(c) for c in volume.origin_lps_mm])
    image.SetSpacing([float(c) for c in volume.spacing_mm])
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(volume.direction)))
    return image


def _fixed_mask(mask: npt.NDArray[np.bool_], fixed: Volume, dilation_mm: float) -> npt.NDArray[Any]:
    if mask.shape != fixed.shape:
        raise MotionError(
            f"mask has shape {mask.shape} but the FIXED phase has {fixed.shape}; give a mask "
            "on the FIXED phase's grid (e.g. its lungs)."
        )
    if not mask.any():
        raise MotionError("mask is empty; give the FIXED phase's lungs (or leave the mask out).")
    if dilation_mm > 0:
        # Exact dilation by a distance transform, on the mask's bounding box plus the margin.
        lo, hi = _box(mask, fixed, dilation_mm + max(fixed.spacing_mm))
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        distance = ndimage.distance_transform_edt(~mask[box], sampling=fixed.spacing_mm)
        grown = np.zeros(mask.shape, bool)
        grown[box] = distance <= dilation_mm
        mask = grown
    return mask.astype(np.uint8)


#: Margin (mm) of the moving box around the fixed one: beyond the largest breathing motion
#: (lung tumours move up to 35 mm, ../shared/reference/navigation.md §2.7).
_MOVING_MARGIN_MM = 40.0


def _box(
    region: npt.NDArray[np.bool_], volume: Volume, margin_mm: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Index bounds [lo, hi) of ``region`` grown by ``margin_mm``, clipped to the grid."""
    where = np.argwhere(region)
    pad = np.ceil(margin_mm / np.asarray(volume.spacing_mm)).astype(np.int64)
    lo = np.maximum(where.min(axis=0) - pad, 0)
    hi = np.minimum(where.max(axis=0) + 1 + pad, np.asarray(volume.shape))
    return lo, hi


def _crop(volume: Volume, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> Volume:
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_lps(lo.astype(np.float64))
    return Volume(volume.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], affine)


def _lps_box(volume: Volume, margin_mm: float) -> tuple[npt.NDArray[np.float64], ...]:
    low, high = volume.geometry.bounds_lps_mm()
    return low - margin_mm, high + margin_mm


def _crop_to_lps(
    volume: Volume, low_lps_mm: npt.NDArray[np.float64], high_lps_mm: npt.NDArray[np.float64]
) -> Volume:
    """The part of ``volume`` inside an axis-aligned LPS box (all of it if the box covers it)."""
    corners = np.array(np.meshgrid(*zip(low_lps_mm, high_lps_mm, strict=True), indexing="ij"))
    ijk = volume.lps_to_index(corners.reshape(3, -1).T)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(np.int64), 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(np.int64) + 1, np.asarray(volume.shape))
    if np.any(hi <= lo):
        raise RegistrationError(
            "the MOVING phase does not overlap the FIXED phase's mask; give two phases of the "
            "same body region."
        )
    return _crop(volume, lo, hi)


def _displacement_array(transform: Any, fixed: Volume, step: int = 1) -> npt.NDArray[np.float32]:
    """``T(x) − x`` at every voxel centre of the whole FIXED grid, shape (I, J, K, 3), LPS mm.

    With ``step`` > 1 ITK evaluates the transform at every ``step``-th voxel along i and j
    (one more row past the end, where needed, so that every voxel lies between two samples)
    and the rest is filled in linearly; for a cubic B-spline with a 10 mm grid the
    difference is below 0.05 mm at ``step`` 2 (0.7 mm voxels), a quarter of the evaluations.
    """
    import itk

    n = np.asarray(fixed.shape)
    coarse = n.copy()
    coarse[:2] = (n[:2] - 1 + step - 1) // step + 1
    spacing = np.asarray(fixed.spacing_mm) * np.array([step, step, 1])
    direction = np.ascontiguousarray(fixed.direction)
    vector_image = itk.Image[itk.Vector[itk.F, 3], 3]
    to_field = itk.TransformToDisplacementFieldFilter[vector_image, itk.D].New()
    to_field.SetTransform(transform)
    to_field.SetSize([int(c) for c in coarse])
    to_field.SetOutputSpacing([float(c) for c in spacing])
    to_field.SetOutputOrigin([float(c) for c in fixed.origin_lps_mm])
    to_field.SetOutputDirection(itk.matrix_from_array(direction))
    to_field.UpdateLargestPossibleRegion()
    array = itk.array_from_image(to_field.GetOutput())  # a copy, indexed (k, j, i, c)
    samples = np.ascontiguousarray(array.transpose(2, 1, 0, 3), dtype=np.float32)
    del array, to_field
    for axis in (0, 1):
        samples = _upsample_linear(samples, axis, step, int(n[axis]))
    return samples


def _upsample_linear(
    samples: npt.NDArray[np.float32], axis: int, step: int, size: int
) -> npt.NDArray[np.float32]:
    """Linear interpolation along ``axis`` from every ``step``-th index to all ``size``."""
    if step == 1:
        return samples
    shape = list(samples.shape)
    shape[axis] = size
    out = np.empty(shape, np.float32)
    for offset in range(step):
        weight = np.float32(offset / step)
        count = len(range(offset, size, step))
        lower = np.take(samples, np.arange(count), axis=axis)
        target = [slice(None)] * samples.ndim
        target[axis] = slice(offset, size, step)
        if offset == 0:
            out[tuple(target)] = lower
        else:
            upper = np.take(samples, np.arange(1, count + 1), axis=axis)
            out[tuple(target)] = lower + weight * (upper - lower)
    return out


def _elastix_reason(log_dir: str, err: Exception) -> str:
    """The ``Description:`` line of elastix's log (the real cause), else the exception's last line."""
    log = Path(log_dir) / "elastix.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    found = [
        line.split("ERROR:", 1)[-1].strip() for line in text.splitlines() if "Description:" in line
    ]
    if found:
        return found[-1]
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def register(
    fixed: Volume,
    moving: Volume,
    mask: Volume | npt.NDArray[np.bool_] | None = None,
    *,
    method: RegistrationMethod | str = RegistrationMethod.LUNG,
    settings: RegistrationSettings | None = None,
) -> Registration:
    """Register FIXED to MOVING deformably; return the FIXED → MOVING displacement field.

    Parameters
    ----------
    fixed, moving : Volume
        Two respiratory phases of one patient (CT in HU), e.g. expiration and inspiration.
        Any grids; the field lies on ``fixed``'s.
    mask : Volume or ndarray of bool, optional
        Region of interest on the FIXED grid, usually both lungs; it is dilated by
        ``settings.mask_dilation_mm`` and only the image inside it drives the registration.
        The folding check and the displacement figures use it too.
    method : RegistrationMethod or str
        ``"lung"`` (default), ``"affine"`` (baseline) or ``"elastix-default"``.
    settings : RegistrationSettings, optional
        Threads, iterations, penalty weight …

    Returns
    -------
    Registration
        The field, its Jacobian determinant and the figures.

    Raises
    ------
    FoldingError
        If the field folds (Jacobian determinant ≤ 0) inside the checked region.
    RegistrationError
        If elastix fails (e.g. too few samples inside the mask, no overlap).
    """
    try:
        chosen = RegistrationMethod(method)
    except ValueError as err:
        names = ", ".join(repr(m.value) for m in RegistrationMethod)
        raise MotionError(f"method must be one of {names}; got {method!r}.") from err
    with _itk_loading() as itk:
        return _register(itk, fixed, moving, mask, chosen, settings)


def _register(
    itk: Any,
    fixed: Volume,
    moving: Volume,
    mask: Volume | npt.NDArray[np.bool_] | None,
    chosen: RegistrationMethod,
    settings: RegistrationSettings | None,
) -> Registration:
    start = time.perf_counter()
    s = settings or RegistrationSettings()
    threads = _threads(s)
    region: npt.NDArray[np.bool_] | None = None
    given: npt.NDArray[np.bool_] | None = None
    itk_mask = None
    fixed_roi, moving_roi = fixed, moving
    if mask is not None:
        given = np.asarray(mask.array if isinstance(mask, Volume) else mask, dtype=bool)
        dilated = _fixed_mask(given, fixed, s.mask_dilation_mm)
        region = dilated.astype(bool)
        # elastix lays its B-spline grid over the whole fixed image: registering the mask's
        # bounding box (plus one final grid spacing) instead of the whole CT halves the
        # control points and the pyramids. The moving box adds the largest expected motion.
        lo, hi = _box(region, fixed, s.final_grid_spacing_mm)
        fixed_roi = _crop(fixed, lo, hi)
        moving_roi = _crop_to_lps(moving, *_lps_box(fixed_roi, _MOVING_MARGIN_MM))
        itk_mask = _to_itk(
            dilated[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], fixed_roi, np.uint8
        )
    fixed_image = _to_itk(np.asarray(fixed_roi.array), fixed_roi, np.float32)
    moving_image = _to_itk(np.asarray(moving_roi.array), moving_roi, np.float32)
    maps = _maps_for(chosen, fixed.spacing_mm, s)
    parameters = itk.ParameterObject.New()
    for parameter_map in maps:
        parameters.AddParameterMap({k: list(v) for k, v in parameter_map.items()})

    # elastix takes its threads from ITK's global default; ElastixRegistrationMethod's own
    # SetNumberOfThreads crashes the B-spline stage in itk-elastix 0.25.4 (segfault while
    # ASGD samples gradients), so it is not used.
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(threads)
    method_filter = itk.ElastixRegistrationMethod.New(fixed_image, moving_image)
    method_filter.SetParameterObject(parameters)
    method_filter.SetLogToConsole(False)
    if itk_mask is not None:
        method_filter.SetFixedMask(itk_mask)
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seldinger-elastix-") as temporary:
        log_dir = s.log_dir or temporary
        method_filter.SetOutputDirectory(log_dir)
        method_filter.SetLogToFile(True)
        try:
            method_filter.UpdateLargestPossibleRegion()
        except RuntimeError as err:
            raise RegistrationError(
                f"elastix could not register the phases ({_elastix_reason(log_dir, err)}). "
                "Check that both phases show the same body region and that the mask covers "
                "the lungs."
            ) from err
        registration_s = time.perf_counter() - begin
    del fixed_image, moving_image
    # elastix's whole chain (affine ∘ B-spline) as an ITK transform, evaluated in memory
    # at every FIXED voxel centre (transformix would write the field to disk first).
    transform = method_filter.GetCombinationTransform()
    begin = time.perf_counter()
    vectors = _displacement_array(transform, fixed, s.field_step)
    del transform, method_filter
    field_ = DisplacementField(fixed.geometry, vectors)
    del vectors
    jacobian = jacobian_determinant(field_)
    field_s = time.perf_counter() - begin
    if s.refuse_folding:
        min_jacobian = check_no_folding(jacobian, region)
    else:
        min_jacobian = float(
            jacobian.array[region].min() if region is not None else jacobian.array.min()
        )
    magnitude = field_.magnitude_mm
    inside = magnitude[given] if given is not None else magnitude.ravel()
    seconds = time.perf_counter() - start
    logger.info(
        "%s registration: %.1f s (elastix %.1f s), min Jacobian %.3f",
        chosen.value,
        seconds,
        registration_s,
        min_jacobian,
    )
    return Registration(
        field=field_,
        jacobian=jacobian,
        min_jacobian=min_jacobian,
        mean_displacement_mm=float(inside.mean()),
        max_displacement_mm=float(inside.max()),
        seconds=seconds,
        registration_s=registration_s,
        field_s=field_s,
        method=chosen.value,
        parameter_maps=maps,
    )
