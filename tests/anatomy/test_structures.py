"""Body, lungs, mediastinum and emphysema on the synthetic thorax and on synthetic lesions;
orientation independence of the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from reference import dice
from seldinger.anatomy import AnatomyError, segment
from seldinger.anatomy.checks import require_canonical
from seldinger.anatomy.emphysema import segment_emphysema
from seldinger.data.phantom import thorax_phantom
from seldinger.imaging import Volume, VolumeGeometry, reorient
from shared_paths import ABDOMEN, requires_shared


@pytest.fixture(scope="module")
def phantom():  # type: ignore[no-untyped-def]
    return thorax_phantom()


@pytest.fixture(scope="module")
def phantom_anatomy(phantom):  # type: ignore[no-untyped-def]
    return segment(phantom.ct.volume, ["body", "lung_left", "lung_right", "airways"])


def test_phantom_body_excludes_the_table(phantom, phantom_anatomy) -> None:
    body = phantom_anatomy["body"].array
    assert dice(body, phantom.labels["body"].array) > 0.99
    assert not np.any(body & phantom.labels["table"].array)


def test_phantom_lungs_left_and_right(phantom, phantom_anatomy) -> None:
    for side in ("lung_left", "lung_right"):
        assert dice(phantom_anatomy[side].array, phantom.labels[side].array) > 0.98, side
    # the airway is not lung
    airway = phantom.labels["airway"].array
    lungs = phantom_anatomy["lung_left"].array | phantom_anatomy["lung_right"].array
    assert lungs[airway].mean() < 0.1


def test_lungs_touching_at_the_midline_are_split(phantom) -> None:
    """Fill the mediastinum of the phantom with lung: one air region across the midline."""
    ct = phantom.ct.volume
    hu = np.array(ct.array)
    labels = phantom.labels
    # a lung-density bridge 2 cm high in front of the spine joins the two lungs
    left = np.argwhere(labels["lung_left"].array)
    right = np.argwhere(labels["lung_right"].array)
    k_mid = int(np.median(left[:, 2]))
    j_mid = int(np.median(left[:, 1]))
    i_lo, i_hi = int(right[:, 0].max()) - 2, int(left[:, 0].min()) + 3
    bridge = np.zeros(ct.shape, dtype=bool)
    bridge[i_lo:i_hi, j_mid - 6 : j_mid + 6, k_mid - 4 : k_mid + 4] = True
    bridge &= ~labels["airway"].array & labels["body"].array
    hu[bridge] = -850
    anatomy = segment(ct.with_array(hu), ["lung_left", "lung_right"])
    left_mask, right_mask = anatomy["lung_left"].array, anatomy["lung_right"].array
    assert not np.any(left_mask & right_mask)
    assert dice(left_mask, labels["lung_left"].array) > 0.95
    assert dice(right_mask, labels["lung_right"].array) > 0.95
    # the bridge is shared out by side of the midline, not all given to one lung
    assert left_mask[bridge].any() and right_mask[bridge].any()


def _lung_block(hu_lung: float, seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    geometry = VolumeGeometry.from_spacing((80, 80, 30), (0.7, 0.7, 2.5))
    hu = rng.normal(hu_lung, 25.0, geometry.shape).astype(np.int16)
    return Volume(hu, geometry.affine)


def test_emphysema_finds_a_bulla_and_not_noise() -> None:
    ct = _lung_block(-860.0)
    lungs = np.ones(ct.shape, dtype=bool)
    clean = segment_emphysema(ct, lungs)
    assert clean.laa_percent < 0.5
    assert not clean.mask.any()
    # a 15 mm bulla of air
    ijk = np.indices(ct.shape).reshape(3, -1).T
    centre = ct.index_to_lps([40, 40, 15])
    bulla = (np.linalg.norm(ct.index_to_lps(ijk) - centre, axis=1) <= 7.5).reshape(ct.shape)
    hu = np.array(ct.array)
    hu[bulla] = -990
    found = segment_emphysema(ct.with_array(hu), lungs)
    assert dice(found.mask, bulla) > 0.9
    expected = 100.0 * bulla.sum() / bulla.size
    assert found.laa_percent == pytest.approx(expected, rel=0.1)


def test_algorithms_refuse_other_orientations() -> None:
    ct = reorient(_lung_block(-860.0), "RAS")
    with pytest.raises(AnatomyError, match="LPS-ordered"):
        require_canonical(ct)


@requires_shared
def test_pipeline_gives_the_same_masks_in_any_storage_order() -> None:
    from seldinger.io import read_ct

    ras = read_ct(ABDOMEN / "ct.nii.gz").volume
    pir = reorient(ras, "PIR")
    a = segment(ras, ["body", "bones", "lung_left", "lung_right"])
    b = segment(pir, ["body", "bones", "lung_left", "lung_right"])
    for name in a.masks:
        back = reorient(b[name], "RAS")
        assert back.geometry.same_as(a[name].geometry)
        assert np.array_equal(back.array, a[name].array), name
