"""The whole anatomy step on real CTs: organ-level agreement, geometry, files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from reference import LUNG_LOBES, dice, reference_mask
from seldinger.anatomy import STRUCTURES, AnatomyError, load_anatomy, segment
from seldinger.imaging import Volume
from shared_paths import ABDOMEN, LIDC, requires_shared

pytestmark = requires_shared

LEFT_LOBES = ("lung_upper_lobe_left", "lung_lower_lobe_left")
RIGHT_LOBES = ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right")


def _simple_body(ct: Volume) -> np.ndarray:
    """Independent body reference: largest component above -500 HU, holes filled per slice.

    (Our method differs: -300 HU, opening against pads and cables, coarse grid.)
    """
    labels, _ = ndi.label(ct.array > -500)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == sizes.argmax()
    return np.stack([ndi.binary_fill_holes(body[:, :, k]) for k in range(body.shape[2])], axis=2)


def test_lidc_lungs_match_the_lobes(lidc_anatomy) -> None:
    left = lidc_anatomy["lung_left"].array
    right = lidc_anatomy["lung_right"].array
    assert dice(left | right, reference_mask(LIDC, *LUNG_LOBES)) >= 0.96
    assert dice(left, reference_mask(LIDC, *LEFT_LOBES)) >= 0.95
    assert dice(right, reference_mask(LIDC, *RIGHT_LOBES)) >= 0.95
    assert not np.any(left & right)
    # trachea removed: at most a rim of it is left in the lungs
    trachea = reference_mask(LIDC, "trachea")
    assert (left | right)[trachea].mean() < 0.05


def test_lidc_body_contains_every_labelled_voxel(lidc_anatomy, lidc_volume) -> None:
    body = lidc_anatomy["body"].array
    assert not np.any(reference_mask(LIDC, "") & ~body)
    assert dice(body, _simple_body(lidc_volume)) >= 0.95
    # the table and the pad under the back are out: nothing far behind the muscles of the back
    back = np.flatnonzero(reference_mask(LIDC, "autochthon").any(axis=(0, 2))).max()
    body_back = np.flatnonzero(body.any(axis=(0, 2))).max()
    assert (body_back - back) * lidc_volume.spacing_mm[1] < 40.0


def test_lidc_mediastinum_holds_heart_and_great_vessels(lidc_anatomy) -> None:
    mediastinum = lidc_anatomy["mediastinum"].array
    assert mediastinum[reference_mask(LIDC, "heart")].mean() >= 0.75
    assert mediastinum[reference_mask(LIDC, "aorta")].mean() >= 0.7
    assert mediastinum[reference_mask(LIDC, "esophagus")].mean() >= 0.7
    # and not the spine, the back muscles, the liver or the lungs
    for outside in ("vertebrae_", "autochthon", "liver"):
        assert mediastinum[reference_mask(LIDC, outside)].mean() < 0.05, outside
    lungs = lidc_anatomy["lung_left"].array | lidc_anatomy["lung_right"].array
    assert not np.any(mediastinum & lungs)


def test_lidc_emphysema_is_low_attenuation_lung(lidc_anatomy, lidc_volume) -> None:
    emphysema = lidc_anatomy["emphysema"].array
    lungs = lidc_anatomy["lung_left"].array | lidc_anatomy["lung_right"].array
    assert np.all(lungs[emphysema])
    assert 0.0 < lidc_anatomy.laa_percent < 15.0
    # cluster voxels are mostly below -950 HU themselves (a median filter decides the rest)
    assert np.mean(lidc_volume.array[emphysema] < -950) > 0.6


def test_lidc_summary_and_round_trip(lidc_anatomy, tmp_path) -> None:
    summary = lidc_anatomy.summary()
    assert set(summary["structures"]) == set(STRUCTURES)
    assert summary["airway_generations"]["left"] >= 3
    assert summary["airway_generations"]["right"] >= 3
    out = lidc_anatomy.save(tmp_path / "anatomy")
    files = sorted(p.name for p in out.iterdir())
    assert "anatomy.json" in files and "airway_graph.json" in files
    assert "vessel_radius_mm.nii.gz" in files
    data = json.loads((out / "anatomy.json").read_text())
    assert data["structures"]["lung_left"]["file"] == "lung_left.nii.gz"
    loaded = load_anatomy(out)
    for name in STRUCTURES:
        assert np.array_equal(loaded[name].array, lidc_anatomy[name].array), name
        assert loaded[name].geometry.same_as(lidc_anatomy[name].geometry)
    graph, back = lidc_anatomy.airway_graph, loaded.airway_graph
    assert back is not None and len(back) == len(graph)
    assert [b.label for b in back] == [b.label for b in graph]
    assert np.allclose(back.root.points_lps_mm, graph.root.points_lps_mm, atol=0.01)
    with pytest.raises(FileExistsError):
        lidc_anatomy.save(out)


def test_abdomen_masks_come_back_in_the_ct_geometry(abdomen_anatomy) -> None:
    """totalseg-abdomen is stored RAS: the masks must index like its own arrays."""
    from seldinger.io import read_ct

    ct = read_ct(ABDOMEN / "ct.nii.gz").volume
    body = abdomen_anatomy["body"]
    assert body.geometry.same_as(ct.geometry)
    assert not np.any(reference_mask(ABDOMEN, "") & ~body.array)
    assert dice(body.array, _simple_body(ct)) >= 0.90
    lungs = abdomen_anatomy["lung_left"].array | abdomen_anatomy["lung_right"].array
    assert dice(lungs, reference_mask(ABDOMEN, *LUNG_LOBES)) >= 0.90
    assert any("top of the image" in note for note in abdomen_anatomy.notes)
    # no chest: no trachea and no mediastinum, each said in a note
    assert "mediastinum" not in abdomen_anatomy
    assert any(note.startswith("mediastinum: not segmented") for note in abdomen_anatomy.notes)
    assert any(note.startswith("airways: none segmented") for note in abdomen_anatomy.notes)
    assert dice(abdomen_anatomy["liver"].array, reference_mask(ABDOMEN, "liver")) >= 0.9


def test_structures_subset_computes_only_what_it_needs(lidc_volume) -> None:
    anatomy = segment(lidc_volume, ["body"])
    assert list(anatomy.masks) == ["body"]
    with pytest.raises(AnatomyError, match="unknown structure 'lung'"):
        segment(lidc_volume, ["lung"])


def test_not_hu_is_refused(lidc_volume) -> None:
    shifted = lidc_volume.with_array((lidc_volume.array.astype(np.int32) + 1024).clip(0))
    with pytest.raises(AnatomyError, match="Hounsfield"):
        segment(shifted, ["body"])
    with pytest.raises(AnatomyError, match="is MR, not CT"):
        segment(lidc_volume, ["body"], modality="MR")


@pytest.mark.parametrize(
    ("lo", "hi"),
    [((106, 0, 0), (405, 511, 132)), ((0, 150, 0), (511, 399, 132))],
    ids=["left-right", "front-back"],
)
def test_field_of_view_cutting_through_the_lungs_is_refused(lidc_volume, lo, hi, tmp_path) -> None:
    cropped = lidc_volume.crop_lps(lidc_volume.index_to_lps(lo), lidc_volume.index_to_lps(hi))
    with pytest.raises(AnatomyError, match="field of view cuts through the lungs"):
        segment(cropped, ["lung_left"])


@requires_shared
def test_an_upper_abdomen_stack_without_lungs_is_segmented_with_notes() -> None:
    """The 20 real Siemens slices of totalseg-abdomen (4 cm of upper abdomen, no lung):
    every structure that needs the lungs is left out with a note saying why, and the rest
    is segmented; nothing stops the run."""
    from seldinger.io import read_ct

    ct = read_ct(ABDOMEN / "dicom").volume
    anatomy = segment(ct)
    notes = " ".join(anatomy.notes)
    assert anatomy["body"].array.any() and anatomy["bones"].array.any()
    assert not anatomy["vessels"].array.any()
    assert "vessels: none segmented (no lung in view" in notes
    assert "liver: not found (it is looked for under the right lung base" in notes
    assert "liver" not in anatomy


@requires_shared
def test_thick_slices_are_noted(abdomen_volume) -> None:
    """totalseg-abdomen as 6 mm slices (pairs averaged): the vessel and fissure results
    come with a note on the slice thickness; at its own 3 mm, none."""
    ct = abdomen_volume
    k = ct.shape[2] // 2 * 2
    pairs = ct.array[:, :, :k].astype(np.float32).reshape(*ct.shape[:2], k // 2, 2).mean(axis=3)
    affine = ct.affine.copy()
    affine[:3, 2] *= 2.0
    affine[:3, 3] += 0.5 * ct.affine[:3, 2]  # the centre of each pair
    thick = Volume(np.rint(pairs).astype(np.int16), affine)
    note = "slices of 6 mm: small vessels and the fissures are partly lost"
    assert any(n.startswith(note) for n in segment(thick, ["vessels"]).notes)
    assert not any("slices of" in n for n in segment(ct, ["vessels"]).notes)
