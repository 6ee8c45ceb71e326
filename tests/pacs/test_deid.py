"""De-identification: PS3.15 Basic profile actions, keyed stable UIDs, references kept."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SegmentationStorage

from pacs.helpers import TEST_KEY
from seldinger.errors import BadInputError
from seldinger.pacs import (
    BASIC_PROFILE_CODE,
    DeidKey,
    PacsInputError,
    deidentified_uid,
    deidentify,
    patient_pseudonym,
)

OTHER_KEY = DeidKey.from_text("another key, another set of UIDs")


def reference_uid(uid: str, secret: bytes) -> str:
    """The documented recipe, written out: HMAC-SHA-256, 128 bits, UUID version 8."""
    digest = hmac.new(secret, b"uid\x00" + uid.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    value &= ~(0xF << 76)  # version nibble (bits 76-79)
    value |= 0x8 << 76
    value &= ~(0x3 << 62)  # variant bits (62-63)
    value |= 0x2 << 62
    return f"2.25.{value}"


def test_uid_follows_the_documented_recipe() -> None:
    uid = "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192"
    new = deidentified_uid(uid, TEST_KEY)
    assert new == reference_uid(uid, TEST_KEY.secret)
    as_uuid = uuid.UUID(int=int(new.removeprefix("2.25.")))
    assert as_uuid.version == 8 and as_uuid.variant == uuid.RFC_4122
    assert len(new) <= 64


def test_uids_are_stable_per_key_and_differ_across_keys() -> None:
    uid = "1.2.840.113619.2.55.3.1234"
    assert deidentified_uid(uid, TEST_KEY) == deidentified_uid(uid + "\x00", TEST_KEY)
    assert deidentified_uid(uid, TEST_KEY) != deidentified_uid(uid, OTHER_KEY)
    assert deidentified_uid(uid, TEST_KEY) != deidentified_uid(uid + "5", TEST_KEY)
    # UIDs the standard defines (SOP classes, transfer syntaxes …) are not identifying
    assert deidentified_uid(CTImageStorage, TEST_KEY) == CTImageStorage


def test_key_must_be_long_and_stays_out_of_repr() -> None:
    with pytest.raises(PacsInputError, match="at least 16 bytes; got 5"):
        DeidKey.from_text("short")
    assert isinstance(PacsInputError("x"), BadInputError)
    assert "seldinger-tests" not in repr(TEST_KEY)


def test_pseudonym_depends_on_patient_id_and_key() -> None:
    a = patient_pseudonym("LIDC-IDRI-0001", TEST_KEY)
    assert a == patient_pseudonym(" LIDC-IDRI-0001 ", TEST_KEY)
    assert a != patient_pseudonym("LIDC-IDRI-0002", TEST_KEY)
    assert a != patient_pseudonym("LIDC-IDRI-0001", OTHER_KEY)
    assert a.startswith("SLD-") and len(a) == 20


def empty(value: object) -> bool:
    """Zero length, as pydicom holds it (None) or reads it back ("")."""
    return value in (None, "")


def private_tags(dataset: Dataset) -> list[str]:
    found: list[str] = []
    dataset.walk(
        lambda _, element: found.append(str(element.tag)) if element.tag.is_private else None
    )
    return found


def test_real_ct_slice_loses_identity_and_keeps_pixels(lidc_dicom: Path) -> None:
    original = pydicom.dcmread(sorted(lidc_dicom.iterdir())[0])
    before = original.to_json_dict()
    out = deidentify(original, TEST_KEY)
    assert original.to_json_dict() == before, "the input is not modified"
    assert out.PatientID == out.PatientName == patient_pseudonym("LIDC-IDRI-0001", TEST_KEY)
    assert empty(out.PatientBirthDate) and empty(out.PatientSex) and "PatientAge" not in out
    assert empty(out.AccessionNumber) and empty(out.StudyDate) and empty(out.StudyID)
    assert "LastMenstrualDate" not in out and "AdmittingDate" not in out
    assert out.ContentDate == "19000101"  # Z/D: the dummy keeps the IOD conformant
    assert out.SeriesDate == "19000101"  # X/D
    assert empty(out.AcquisitionDate)  # X/Z
    assert out.VerifyingObserverName == out.PersonName == "ANONYMIZED"  # D
    assert private_tags(original) and not private_tags(out)
    for keyword in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
        "ReferencedSOPInstanceUID",
    ):
        assert out[keyword].value == deidentified_uid(original[keyword].value, TEST_KEY)
    assert out.SOPClassUID == original.SOPClassUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in out.file_meta
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.PixelData == original.PixelData
    assert out.ImagePositionPatient == original.ImagePositionPatient
    assert out.ImageOrientationPatient == original.ImageOrientationPatient
    assert out.PixelSpacing == original.PixelSpacing
    assert out.PatientIdentityRemoved == "YES"
    # CTP had de-identified it before: its method is kept, ours appended
    methods = list(out.DeidentificationMethod)
    assert methods[0] == original.DeidentificationMethod
    assert "SELDINGER" in methods[-1]
    codes = [
        (c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning)
        for c in out.DeidentificationMethodCodeSequence
    ]
    assert codes == [BASIC_PROFILE_CODE]


def test_siemens_slice_loses_private_sequences_and_remaps_references(abdomen_dicom: Path) -> None:
    original = pydicom.dcmread(sorted(abdomen_dicom.iterdir())[0])
    out = deidentify(original, TEST_KEY)
    assert private_tags(original) and not private_tags(out)
    source = original.ReferencedImageSequence[0]
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == deidentified_uid(
        source.ReferencedSOPInstanceUID, TEST_KEY
    )
    assert out.ReferencedImageSequence[0].ReferencedSOPClassUID == source.ReferencedSOPClassUID
    assert out.IrradiationEventUID == deidentified_uid(original.IrradiationEventUID, TEST_KEY)
    assert "InstitutionName" not in original or out.InstitutionName in ("ANONYMIZED", "")
    assert out.PixelData == original.PixelData


def ct_slice(index: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.1.{index}"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.10"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.12"
    ds.PatientID = "PAT-1"
    ds.PatientName = "Doe^Jane"
    return ds


def seg_referencing(slices: list[Dataset]) -> Dataset:
    """A SEG-like dataset that references the slices the ways SEG and RTSTRUCT do."""
    seg = Dataset()
    seg.SOPClassUID = SegmentationStorage
    seg.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.99"
    seg.StudyInstanceUID = slices[0].StudyInstanceUID
    seg.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.98"
    seg.FrameOfReferenceUID = slices[0].FrameOfReferenceUID
    seg.PatientID = "PAT-1"
    series_item = Dataset()
    series_item.SeriesInstanceUID = slices[0].SeriesInstanceUID
    series_item.ReferencedInstanceSequence = Sequence([_ref(s) for s in slices])
    seg.ReferencedSeriesSequence = Sequence([series_item])
    frames = []
    for s in slices:
        derivation = Dataset()
        derivation.SourceImageSequence = Sequence([_ref(s)])
        frame = Dataset()
        frame.DerivationImageSequence = Sequence([derivation])
        frames.append(frame)
    seg.PerFrameFunctionalGroupsSequence = Sequence(frames)
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = slices[0].FrameOfReferenceUID
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
    study.ReferencedSOPInstanceUID = slices[0].StudyInstanceUID
    frame_ref.RTReferencedStudySequence = Sequence([study])
    seg.ReferencedFrameOfReferenceSequence = Sequence([frame_ref])
    return seg


def _ref(dataset: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = dataset.SOPClassUID
    item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    return item


def test_a_derived_object_pushed_later_still_references_the_ct() -> None:
    slices = [ct_slice(i) for i in range(3)]
    seg = seg_referencing(slices)
    new_slices = [deidentify(s, TEST_KEY) for s in slices]  # "today"
    new_seg = deidentify(seg, TEST_KEY)  # "next month": no shared state
    assert new_seg.StudyInstanceUID == new_slices[0].StudyInstanceUID
    assert new_seg.FrameOfReferenceUID == new_slices[0].FrameOfReferenceUID
    assert new_seg.PatientID == new_slices[0].PatientID
    series_item = new_seg.ReferencedSeriesSequence[0]
    assert series_item.SeriesInstanceUID == new_slices[0].SeriesInstanceUID
    assert [r.ReferencedSOPInstanceUID for r in series_item.ReferencedInstanceSequence] == [
        s.SOPInstanceUID for s in new_slices
    ]
    sources = [
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in new_seg.PerFrameFunctionalGroupsSequence
    ]
    assert sources == [s.SOPInstanceUID for s in new_slices]
    frame_ref = new_seg.ReferencedFrameOfReferenceSequence[0]
    assert frame_ref.FrameOfReferenceUID == new_slices[0].FrameOfReferenceUID
    study = frame_ref.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == new_slices[0].StudyInstanceUID
    assert study.ReferencedSOPClassUID == "1.2.840.10008.3.1.2.3.1"
    assert all(s.SOPInstanceUID.startswith("2.25.") for s in new_slices)


def test_in_place_changes_the_given_dataset() -> None:
    dataset = ct_slice(0)
    copied = deidentify(dataset, TEST_KEY)
    same = deidentify(dataset, TEST_KEY, in_place=True)
    assert same is dataset and same.SOPInstanceUID == copied.SOPInstanceUID
    assert same.PatientID == copied.PatientID != "PAT-1"


def test_table_actions_on_hand_made_attributes() -> None:
    ds = ct_slice(0)
    ds.PatientAge = "054Y"  # X
    ds.StudyDate = "20240611"  # Z
    ds.ContentDate = "20240611"  # Z/D -> D
    ds.AcquisitionTime = "101010"  # X/Z -> Z
    ds.SeriesTime = "101010"  # X/D -> D
    ds.InstitutionName = "General Hospital"  # X/Z/D -> D
    ds.StationName = "CT01"  # X/Z/D -> D
    ds.StudyDescription = "Chest CT for Jane"  # X
    ds.ImageComments = "call Jane back"  # X
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # Overlay Data (60xx,3000): X
    ds.add_new(0x50020010, "US", 4)  # Curve group (50xx,xxxx): X
    ds.Manufacturer = "GE MEDICAL SYSTEMS"  # not in the table: kept
    person = Dataset()
    person.CodeValue = "12345"
    person.CodingSchemeDesignator = "L"
    person.CodeMeaning = "Dr Who"
    ds.PersonIdentificationCodeSequence = Sequence([person])  # D on a sequence: dummy leaves
    ds.ReferencedStudySequence = Sequence([_ref(ds)])  # X/Z -> Z: no items
    out = deidentify(ds, TEST_KEY)
    assert "PatientAge" not in out and "StudyDescription" not in out
    assert "ImageComments" not in out
    assert 0x60003000 not in out and 0x50020010 not in out
    assert empty(out.StudyDate) and empty(out.AcquisitionTime)
    assert out.ContentDate == "19000101" and out.SeriesTime == "000000"
    assert out.InstitutionName == out.StationName == "ANONYMIZED"
    assert out.Manufacturer == "GE MEDICAL SYSTEMS"
    item = out.PersonIdentificationCodeSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == ("ANONYMIZED",) * 3
    assert len(out.ReferencedStudySequence) == 0
