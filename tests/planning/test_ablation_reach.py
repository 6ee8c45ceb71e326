"""What an ablation zone reaches beyond the lesion's organ, and the end of the CT."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.anatomy import Anatomy
from seldinger.imaging import Volume, reorient
from seldinger.planning.ablation import zone_reach_notes
from shared_paths import ABDOMEN, canonical_ct


def _ball(shape, centre, radius):  # type: ignore[no-untyped-def]
    index = np.indices(shape).reshape(3, -1).T
    return (np.linalg.norm(index - np.asarray(centre), axis=1) <= radius).reshape(shape)


def test_a_zone_in_its_organ_says_nothing_and_one_beyond_it_names_what_it_reaches() -> None:
    shape, affine = (40, 40, 40), np.eye(4)
    liver = np.zeros(shape, bool)
    liver[:, :, :25] = True
    lung = np.zeros(shape, bool)
    lung[:, :, 27:] = True
    rib = np.zeros(shape, bool)
    rib[8:11, :, :] = True
    anatomy = Anatomy(
        masks={
            "body": Volume(np.ones(shape, bool), affine),
            "liver": Volume(liver, affine),
            "lung_right": Volume(lung, affine),
            "bones": Volume(rib, affine),
        }
    )
    lesion = Volume(_ball(shape, (20, 20, 17), 4), affine)
    inside = Volume(_ball(shape, (20, 20, 17), 6), affine)
    assert zone_reach_notes(inside, lesion, anatomy) == []
    # A larger zone burns 4 mm into the lung and 3 mm into the rib: both named, in mL;
    # the liver, the lesion's own organ, is not.
    wide = Volume(_ball(shape, (20, 20, 17), 13), affine)
    (note,) = zone_reach_notes(wide, lesion, anatomy)
    lung_ml = np.count_nonzero(wide.array & lung) / 1000
    rib_ml = np.count_nonzero(wide.array & rib) / 1000
    assert f"lung_right {lung_ml:.1f} mL" in note and f"bones {rib_ml:.1f} mL" in note
    assert "liver" not in note
    # A zone running off the grid's inferior face (LPS k = 0) says the CT ends there.
    low = Volume(_ball(shape, (20, 20, 3), 6), affine)
    notes = zone_reach_notes(low, Volume(_ball(shape, (20, 20, 3), 2), affine), anatomy)
    assert any("reaches the inferior end of the CT" in n for n in notes)


def test_on_the_abdomen_a_dome_zone_names_the_lung_and_a_lung_zone_does_not() -> None:
    """totalseg-abdomen with its reference liver and lungs: a liver lesion 14 mm under the
    right lung base whose zone reaches 6 mm past the diaphragm names the lung; a nodule in
    the lung base with a zone inside the lung names nothing."""
    ct = canonical_ct(ABDOMEN)
    from seldinger.io import read_volume

    labels = np.asarray(reorient(read_volume(ABDOMEN / "model_labels.nii.gz"), "LPS").array)
    code = {v: int(k) for k, v in json.loads((ABDOMEN / "model_labels.json").read_text()).items()}
    liver = labels == code["liver"]
    lung = np.isin(labels, [code[n] for n in code if n.startswith("lung_") and "right" in n])
    anatomy = Anatomy(
        masks={
            "body": ct.with_array(labels > 0),
            "liver": ct.with_array(liver),
            "lung_right": ct.with_array(lung),
        }
    )
    spacing = ct.spacing_mm
    to_lung = ndi.distance_transform_edt(~lung, sampling=spacing)
    depth = ndi.distance_transform_edt(liver, sampling=spacing)
    fits = liver & (np.abs(to_lung - 14.0) < 2.0) & (depth >= 10.0)
    centre = np.argwhere(fits)[np.argmax(depth[fits])]
    index = np.indices(ct.shape).reshape(3, -1).T
    dist = np.linalg.norm((index - centre) * spacing, axis=1).reshape(ct.shape)
    lesion = ct.with_array(dist <= 10.0)
    zone = ct.with_array(dist <= 20.0)
    expected = np.count_nonzero((dist <= 20.0) & lung) * np.prod(spacing) / 1000
    assert expected > 0.1
    (note,) = [n for n in zone_reach_notes(zone, lesion, anatomy) if "organ" in n]
    assert f"lung_right {expected:.1f} mL" in note and "liver" not in note
    # A nodule at the deepest point of the right lung base, its zone 8 mm around it: the
    # lung is its organ.
    lung_depth = ndi.distance_transform_edt(lung, sampling=spacing)
    spot = np.unravel_index(int(np.argmax(lung_depth)), lung_depth.shape)
    assert lung_depth[spot] >= 8.0
    dist = np.linalg.norm((index - spot) * spacing, axis=1).reshape(ct.shape)
    notes = zone_reach_notes(ct.with_array(dist <= 8.0), ct.with_array(dist <= 4.0), anatomy)
    assert not any("organ" in n for n in notes)


if not ABDOMEN.is_dir():  # pragma: no cover - the shared data is always there in CI
    pytestmark = pytest.mark.skip(reason="../shared/data is absent")
