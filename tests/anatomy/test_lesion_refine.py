"""Refinements of a lesion: include and exclude points, a box; their argument checks.

The cases are spheres inserted into the liver of the abdomen CT (3 mm, stored RAS): two
hypodense lesions that touch (one click finds both; an exclude point or a box separates
them), and two joined by a thin bridge (the opening cuts the second off; an include point
keeps it).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from reference import dice, reference_mask
from seldinger.anatomy.lesion import LesionError, segment_lesion
from seldinger.imaging import Volume
from shared_paths import ABDOMEN, requires_shared

pytestmark = requires_shared

#: Direction from the first lesion to the second (LPS, unit).
AXIS = np.array([1.0, 0.3, 0.2]) / np.linalg.norm([1.0, 0.3, 0.2])


@pytest.fixture(scope="module")
def abdomen():
    """The abdomen CT and the deepest point of its liver (LPS mm)."""
    from seldinger.io import read_ct

    ct = read_ct(ABDOMEN / "ct.nii.gz").volume
    liver = reference_mask(ABDOMEN, "liver")
    depth = ndi.distance_transform_edt(np.pad(liver, 1), sampling=ct.spacing_mm)[1:-1, 1:-1, 1:-1]
    centre = np.unravel_index(int(np.argmax(depth)), liver.shape)
    return ct, ct.index_to_lps(np.array(centre, dtype=float))


def _lps_grid(ct: Volume) -> np.ndarray:
    index = np.stack(np.meshgrid(*map(np.arange, ct.shape), indexing="ij"), axis=-1)
    return ct.index_to_lps(index.astype(float))


def _insert(ct: Volume, inside: np.ndarray, distance_mm: np.ndarray, contrast_hu: float):
    """Add ``contrast_hu`` with a one-voxel partial-volume ramp at the shape's surface."""
    weight = np.clip(0.5 - distance_mm / max(ct.spacing_mm), 0.0, 1.0)
    return ct.with_array(np.rint(ct.array + contrast_hu * weight).astype(ct.array.dtype))


def _spheres(ct: Volume, centres, radii_mm, bridge_mm: float = 0.0):
    """Signed distance (mm) to a union of spheres, optionally joined by a tube."""
    lps = _lps_grid(ct)
    signed = np.min(
        [np.linalg.norm(lps - c, axis=-1) - r for c, r in zip(centres, radii_mm, strict=True)],
        axis=0,
    )
    if bridge_mm:
        start, stop = centres[0], centres[1]
        length = np.linalg.norm(stop - start)
        t = np.clip((lps - start) @ (stop - start) / length**2, 0.0, 1.0)
        tube = np.linalg.norm(lps - (start + t[..., None] * (stop - start)), axis=-1) - bridge_mm
        signed = np.minimum(signed, tube)
    return signed


@pytest.fixture(scope="module")
def touching(abdomen):
    """Two 12 mm (radius) hypodense lesions whose centres are 22 mm apart."""
    ct, first = abdomen
    second = first + 22.0 * AXIS
    signed = _spheres(ct, [first, second], [12.0, 12.0])
    lps = _lps_grid(ct)
    truth_first = np.linalg.norm(lps - first, axis=-1) <= 12.0
    return _insert(ct, signed <= 0, signed, -40.0), truth_first, signed <= 0, first, second


def test_touching_lesions_are_found_together_and_split_by_an_exclude_point(touching):
    ct, truth_first, truth_both, first, second = touching
    both = segment_lesion(ct, first)
    assert dice(both.mask.array, truth_both) >= 0.9
    # An exclude point in the second lesion (its centre, or beyond): split at the neck.
    for exclude in (second, [first + 27.0 * AXIS, first + 20.0 * AXIS + [0.0, 0.0, 3.0]]):
        alone = segment_lesion(ct, first, exclude_lps_mm=exclude)
        assert dice(alone.mask.array, truth_first) >= 0.9
        assert not alone.mask.array[tuple(np.rint(ct.lps_to_index(second)).astype(int))]


def test_touching_lesions_split_by_a_box(touching):
    ct, truth_first, _, first, _ = touching
    corner = np.array([14.0, 14.0, 14.0])
    alone = segment_lesion(ct, first, box_lps_mm=(*(first + corner), *(first - corner)))
    assert dice(alone.mask.array, truth_first) >= 0.85
    lo, hi = first - corner, first + corner
    inside = alone.mask.index_to_lps(np.argwhere(alone.mask.array) * 1.0)
    assert np.all(inside >= lo - 1e-6) and np.all(inside <= hi + 1e-6)


def test_an_include_point_keeps_a_lesion_joined_by_a_thin_bridge(abdomen):
    ct, first = abdomen
    second = first + 32.0 * AXIS
    signed = _spheres(ct, [first, second], [12.0, 10.0], bridge_mm=2.5)
    ct = _insert(ct, signed <= 0, signed, -40.0)
    lps = _lps_grid(ct)
    in_first = np.linalg.norm(lps - first, axis=-1) <= 12.0
    one = segment_lesion(ct, first)
    assert dice(one.mask.array, in_first) >= 0.9  # the opening cut the bridge
    both = segment_lesion(ct, first, include_lps_mm=second)
    assert dice(both.mask.array, signed <= 0) >= 0.9


# --- argument checks: one line each, naming the fix -------------------------------------------


def _refused(ct, seed, match, **kwargs):
    with pytest.raises(LesionError, match=match) as caught:
        segment_lesion(ct, seed, **kwargs)
    assert "\n" not in str(caught.value)


def test_bad_boxes_are_refused(abdomen):
    ct, first = abdomen
    x, y, z = first
    # Corners in any order are fine; a box without depth, or without the seed, is not.
    _refused(
        ct,
        first,
        r"box_lps_mm .* is empty: it has no depth along z \(0 mm\); give two opposite corners",
        box_lps_mm=(x - 20, y - 20, z, x + 20, y + 20, z),
    )
    _refused(
        ct,
        first,
        r"the seed .* lies outside box_lps_mm .*draw the box around the lesion",
        box_lps_mm=(x + 5, y - 20, z - 20, x + 40, y + 20, z + 20),
    )
    _refused(ct, first, r"box_lps_mm must be 6 finite numbers", box_lps_mm=(x, y, z, x + 1, y + 1))
    _refused(ct, first, r"box_lps_mm must be 6 finite numbers", box_lps_mm=(x, y, z, np.nan, 1, 1))


def test_bad_points_are_refused(abdomen):
    ct, first = abdomen
    _refused(
        ct,
        first,
        r"exclude_lps_mm\[0\] .* within 3 mm of the seed; put exclude points",
        exclude_lps_mm=first + 1.0,
    )
    _refused(
        ct,
        first,
        r"include_lps_mm\[1\] .* lies outside the image",
        include_lps_mm=[first, (0.0, 0.0, 900.0)],
    )
    _refused(ct, first, r"include_lps_mm must be LPS points in mm", include_lps_mm=[1.0, 2.0])
    _refused(
        ct,
        first,
        r"include_lps_mm\[0\] .* lies outside box_lps_mm",
        include_lps_mm=first + 30.0,
        box_lps_mm=(*(first - 20.0), *(first + 20.0)),
    )
