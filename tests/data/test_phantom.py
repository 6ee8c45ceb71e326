"""The synthetic thorax phantom: deterministic, anatomically consistent, LPS-correct."""

from __future__ import annotations

import time

import numpy as np
import pytest

from seldinger.data import SampleCase, load_sample, thorax_phantom
from seldinger.data.phantom import (
    PHANTOM_HU,
    PHANTOM_NODULE_CENTRE_LPS_MM,
    PHANTOM_NODULE_RADIUS_MM,
    PhantomGridError,
)
from seldinger.imaging import Volume

# Median HU of a structure's voxels must be within this of its nominal value; the
# noise (σ 10 HU) hardly moves a median, the slack covers partial mixing only.
HU_TOLERANCE = 15.0


@pytest.fixture(scope="module")
def case() -> SampleCase:
    return thorax_phantom()


def _centroid_lps_mm(mask: Volume) -> np.ndarray:
    return mask.index_to_lps(np.argwhere(mask.array)).mean(axis=0)


def test_phantom_is_deterministic(case: SampleCase) -> None:
    again = thorax_phantom()
    np.testing.assert_array_equal(case.ct.volume.array, again.ct.volume.array)
    np.testing.assert_array_equal(case.ct.volume.affine, again.ct.volume.affine)
    assert case.labels.keys() == again.labels.keys()
    for name, label in case.labels.items():
        np.testing.assert_array_equal(label.array, again.labels[name].array, err_msg=name)


def test_seed_changes_only_the_noise(case: SampleCase) -> None:
    other = thorax_phantom(seed=1)
    assert not np.array_equal(case.ct.volume.array, other.ct.volume.array)
    for name, label in case.labels.items():
        np.testing.assert_array_equal(label.array, other.labels[name].array, err_msg=name)


def test_phantom_grid_is_axial_lps_centred_on_origin(case: SampleCase) -> None:
    volume = case.ct.volume
    assert volume.array.dtype == np.int16
    assert volume.shape == (256, 256, 96)
    assert volume.spacing_mm == pytest.approx((1.2, 1.2, 2.5))
    assert volume.orientation == "LPS"
    lo, hi = volume.geometry.bounds_lps_mm()
    np.testing.assert_allclose((lo + hi) / 2.0, 0.0, atol=1e-9)
    assert case.is_phantom
    assert "synthetic" in case.attribution
    assert case.ct.meta.format == "synthetic"


def test_labels_are_boolean_on_the_ct_grid(case: SampleCase) -> None:
    expected = {"body", "lung_left", "lung_right", "airway", "ribs", "spine", "aorta", "nodule"}
    assert expected <= set(case.labels)
    for name, label in case.labels.items():
        assert label.array.dtype == bool, name
        assert label.geometry.same_as(case.ct.volume.geometry), name
        assert label.array.any(), f"{name} is empty"


def test_labels_are_mutually_consistent(case: SampleCase) -> None:
    m = {name: label.array for name, label in case.labels.items()}
    lungs = m["lung_left"] | m["lung_right"]
    for name in ("lung_left", "lung_right", "airway", "ribs", "spine", "aorta", "nodule"):
        assert not (m[name] & ~m["body"]).any(), f"{name} pokes out of the body"
    assert not (m["table"] & m["body"]).any()
    assert not (m["lung_left"] & m["lung_right"]).any()
    for name in ("airway", "ribs", "spine", "aorta"):
        assert not (m[name] & lungs).any(), f"{name} overlaps a lung"
    assert not (m["nodule"] & ~m["lung_left"]).any(), "nodule must lie inside lung_left"
    assert not (m["nodule"] & m["lung_right"]).any()


def test_left_lung_is_on_the_patients_left(case: SampleCase) -> None:
    left = _centroid_lps_mm(case.labels["lung_left"])
    right = _centroid_lps_mm(case.labels["lung_right"])
    # LPS: +x is the patient's left.
    assert left[0] > 40.0
    assert right[0] < -40.0
    aorta = _centroid_lps_mm(case.labels["aorta"])
    spine = _centroid_lps_mm(case.labels["spine"])
    assert aorta[0] > spine[0], "descending aorta lies left of the spine"
    assert spine[1] > _centroid_lps_mm(case.labels["airway"])[1], "spine is posterior"
    table = _centroid_lps_mm(case.labels["table"])
    assert table[1] > _centroid_lps_mm(case.labels["body"])[1], "table lies posterior (supine)"


def test_nodule_centroid_and_size(case: SampleCase) -> None:
    nodule = case.labels["nodule"]
    centroid = _centroid_lps_mm(nodule)
    np.testing.assert_allclose(case.nodule_centroid_lps_mm, centroid, atol=1e-9)
    np.testing.assert_allclose(centroid, PHANTOM_NODULE_CENTRE_LPS_MM, atol=0.5)
    volume_mm3 = nodule.array.sum() * np.prod(nodule.spacing_mm)
    sphere_mm3 = 4.0 / 3.0 * np.pi * PHANTOM_NODULE_RADIUS_MM**3
    assert volume_mm3 == pytest.approx(sphere_mm3, rel=0.05)
    assert nodule.value_at_lps(PHANTOM_NODULE_CENTRE_LPS_MM)


@pytest.mark.parametrize(
    ("label", "material"),
    [
        ("lung_right", "lung"),
        ("airway", "airway"),
        ("ribs", "rib"),
        ("nodule", "nodule"),
    ],
)
def test_structure_hu_near_nominal(case: SampleCase, label: str, material: str) -> None:
    hu = case.ct.volume.array[case.labels[label].array]
    assert np.median(hu) == pytest.approx(PHANTOM_HU[material], abs=HU_TOLERANCE)


def test_tissue_hu_and_noise(case: SampleCase) -> None:
    hu = case.ct.volume.array
    m = {name: label.array for name, label in case.labels.items()}
    lung_left_only = m["lung_left"] & ~m["nodule"]
    assert np.median(hu[lung_left_only]) == pytest.approx(PHANTOM_HU["lung"], abs=HU_TOLERANCE)
    assert np.std(hu[lung_left_only]) == pytest.approx(10.0, abs=1.0)
    assert np.median(hu[m["spine"]]) == pytest.approx(PHANTOM_HU["spine"], abs=HU_TOLERANCE)
    # The aorta is a 40 HU wall around a 200 HU contrast-filled lumen.
    aorta = hu[m["aorta"]]
    assert np.percentile(aorta, 90) == pytest.approx(PHANTOM_HU["aorta_lumen"], abs=HU_TOLERANCE)
    assert np.percentile(aorta, 2) < 100
    outside = ~(m["body"] | m["table"])
    assert np.median(hu[outside]) == pytest.approx(PHANTOM_HU["air"], abs=HU_TOLERANCE)
    table = hu[m["table"]]
    assert -130 <= np.median(table) <= 230


def test_fat_layer_and_soft_tissue_along_a_lateral_ray(case: SampleCase) -> None:
    volume = case.ct.volume
    # From the patient's left skin inward at y = 0, z = -100 (below the lungs, no rib).
    fat = volume.value_at_lps([135.0, 0.0, -100.0])
    tissue = volume.value_at_lps([100.0, 0.0, -100.0])
    assert fat == pytest.approx(PHANTOM_HU["fat"], abs=45)
    assert tissue == pytest.approx(PHANTOM_HU["soft_tissue"], abs=45)


def test_phantom_is_fast() -> None:
    start = time.perf_counter()
    thorax_phantom()
    assert time.perf_counter() - start < 3.0  # about 0.5 s on a laptop core


def test_phantom_on_another_grid_keeps_its_anatomy_in_mm() -> None:
    coarse = thorax_phantom(shape=(128, 128, 48), spacing_mm=(2.4, 2.4, 5.0))
    np.testing.assert_allclose(
        coarse.nodule_centroid_lps_mm, PHANTOM_NODULE_CENTRE_LPS_MM, atol=1.5
    )
    assert _centroid_lps_mm(coarse.labels["lung_left"])[0] > 40.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (256, 256)}, "shape must be three integers"),
        ({"spacing_mm": (1.0, -1.0, 2.0)}, "spacing_mm must be three positive"),
        ({"shape": (32, 32, 8)}, "does not hold the nodule"),
    ],
)
def test_bad_grid_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(PhantomGridError, match=match):
        thorax_phantom(**kwargs)  # type: ignore[arg-type]
    assert issubclass(PhantomGridError, ValueError)


def test_offline_sample_is_the_phantom_with_a_note() -> None:
    offline = load_sample(offline=True)
    assert offline.is_phantom
    assert any("using the synthetic thorax phantom" in note for note in offline.notes)
    assert any("offline=True" in note for note in offline.notes)
