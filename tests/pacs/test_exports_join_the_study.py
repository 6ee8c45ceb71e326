"""A plan's exports pushed after its CT land in the CT's (de-identified) study in the PACS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pacs.helpers import TEST_KEY as KEY
from pacs.helpers import node_of
from pacs.orthanc_server import OrthancServer
from seldinger.io import read_ct, read_volume, write_volume
from seldinger.pacs import find, push
from seldinger.plan import NavigationSection, Plan, RegistrationRecord
from seldinger.workflow.export import ExportRequest, export_plan
from seldinger.workflow.trajectory import lesion_target
from shared_paths import LIDC


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_exports_join_the_ct_study(
    orthanc: OrthancServer, lidc_dicom: Path, protocol: str, tmp_path: Path
) -> None:
    ct = read_ct(lidc_dicom)
    nodule = read_volume(LIDC / "nodule_consensus.nii.gz")
    nodule = nodule.resample_to(ct.volume, interpolation="nearest")
    nodule = nodule.with_array(nodule.array > 0)
    write_volume(nodule, tmp_path / "nodule.nii.gz")
    plan = Plan.for_ct(ct)
    plan.targets.append(lesion_target("nodule", nodule, "nodule.nii.gz"))
    plan.navigation = NavigationSection(
        registrations=[
            RegistrationRecord(
                id="registration-1", moving_to_fixed=np.eye(4).tolist(), n_fiducials=4, fre_mm=0.3
            )
        ]
    )
    plan.save(tmp_path / "plan.json")
    exported = export_plan(ExportRequest(tmp_path / "plan.json", tmp_path / "export", ("dicom",)))
    assert {p.name for p in exported.files} == {"seg.dcm", "rtstruct.dcm", "registration-1.dcm"}

    node = node_of(orthanc, protocol)
    ct_push = push(node, [lidc_dicom], deid_key=KEY, timeout_s=20.0)
    exports_push = push(node, [tmp_path / "export" / "dicom"], deid_key=KEY, timeout_s=20.0)
    [study] = set(ct_push.study_uids.values())
    assert set(exports_push.study_uids.values()) == {study}
    series = find(node, study_uid=study)
    assert sorted(s.modality for s in series) == ["CT", "REG", "RTSTRUCT", "SEG"]
    assert orthanc.instance_count() == 16 + 3
