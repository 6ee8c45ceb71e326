"""``seldinger pacs …`` through its Typer app, against the real Orthanc."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from unittest import mock

import pytest

from pacs.orthanc_server import OrthancServer, free_port
from seldinger.app.cli import main
from seldinger.errors import ExitCode

KEY_ENV = {"SELDINGER_DEID_KEY": "seldinger-tests: a fixed key, not a secret one"}


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``seldinger pacs ARGS`` through ``main``: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, env or {}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(["pacs", *(str(a) for a in args)])
    return int(code), out.getvalue(), err.getvalue()


def test_help_has_an_example() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "Example" in out and "--dimse" in out
    for command in ("echo", "find", "pull", "push"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Example" in out, command


def test_echo_json_over_both_protocols(orthanc: OrthancServer) -> None:
    for option, node, protocol in (
        ("--dimse", orthanc.dimse, "dimse"),
        ("--dicomweb", orthanc.dicomweb, "dicomweb"),
    ):
        code, out, _ = run("echo", option, node, "--json")
        assert code == ExitCode.OK
        answer = json.loads(out)
        assert answer["protocol"] == protocol and answer["round_trip_ms"] > 0


def test_a_pacs_that_is_down_exits_with_peer(tmp_path: Path) -> None:
    port = free_port()
    code, out, err = run("echo", "--dimse", f"ORTHANC@127.0.0.1:{port}", "--timeout-s", "2")
    assert code == ExitCode.PEER and out == ""
    assert err.strip() == (
        f"error: no DICOM association with ORTHANC@127.0.0.1:{port}: connection refused. Is "
        "the PACS running, and are host, port and AE title right?"
    )
    code, out, _ = run("echo", "--dicomweb", f"http://127.0.0.1:{port}/dicom-web", "--json")
    assert code == ExitCode.PEER
    assert json.loads(out) == {
        "error": json.loads(out)["error"],
        "exit_code": 6,
        "stored_sop_instance_uids": [],
    }
    assert "connection refused" in json.loads(out)["error"]


def test_usage_and_bad_input_exit_codes(tmp_path: Path) -> None:
    code, _, err = run("echo")
    assert code == ExitCode.USAGE and "exactly one PACS" in err
    code, _, _ = run("echo", "--dimse", "A@h:1", "--dicomweb", "http://h/x")
    assert code == ExitCode.USAGE
    code, _, err = run("echo", "--dimse", "ORTHANC@127.0.0.1")
    assert code == ExitCode.BAD_INPUT and "cannot read the PACS node" in err
    (tmp_path / "a.txt").write_text("x")
    code, _, err = run("push", tmp_path, "--dimse", f"ORTHANC@127.0.0.1:{free_port()}", env=KEY_ENV)
    assert code == ExitCode.BAD_INPUT and "no DICOM Part-10 file" in err


def test_push_find_pull_through_the_command_line(
    orthanc: OrthancServer, lidc_dicom: Path, tmp_path: Path
) -> None:
    code, out, _ = run("push", lidc_dicom, "--dimse", orthanc.dimse, "--json", env=KEY_ENV)
    assert code == ExitCode.OK
    pushed = json.loads(out)
    assert pushed["stored"] == len(pushed["stored_sop_instance_uids"]) == 16
    assert pushed["deidentified"] is True
    assert pushed["deid_key_source"] == "$SELDINGER_DEID_KEY"
    [series] = pushed["series_uids"].values()

    code, out, _ = run("find", "--dicomweb", orthanc.dicomweb, "--modality", "CT", "--json")
    assert code == ExitCode.OK
    [found] = json.loads(out)["series"]
    assert found["series_uid"] == series and found["number_of_instances"] == 16

    code, out, _ = run("find", "--dimse", orthanc.dimse)
    assert code == ExitCode.OK and "1 series on" in out

    target = tmp_path / "ct"
    code, out, _ = run("pull", series, target, "--dimse", orthanc.dimse, "--json")
    assert code == ExitCode.OK and json.loads(out)["files"] == 16
    code, _, err = run("pull", series, target, "--dicomweb", orthanc.dicomweb)
    assert code == ExitCode.IO and "--force" in err
    code, out, _ = run("pull", series, target, "--dicomweb", orthanc.dicomweb, "--force")
    assert code == ExitCode.OK and "wrote 16 files" in out
    code, _, err = run("pull", "1.2.3", tmp_path / "none", "--dimse", orthanc.dimse)
    assert code == ExitCode.BAD_INPUT and "holds no series 1.2.3" in err


def test_push_makes_its_key_file_once(
    orthanc: OrthancServer, lidc_dicom: Path, tmp_path: Path
) -> None:
    env = {"SELDINGER_CONFIG_DIR": str(tmp_path / "config"), "SELDINGER_DEID_KEY": ""}
    first = run("push", lidc_dicom, "--dicomweb", orthanc.dicomweb, "--json", env=env)
    second = run("push", lidc_dicom, "--dicomweb", orthanc.dicomweb, "--json", env=env)
    assert first[0] == second[0] == ExitCode.OK
    assert json.loads(first[1])["deid_key_source"] == str(tmp_path / "config" / "deid-key")
    assert json.loads(first[1])["series_uids"] == json.loads(second[1])["series_uids"]


def test_push_without_deidentification(orthanc: OrthancServer, lidc_dicom: Path) -> None:
    code, out, _ = run("push", lidc_dicom, "--dimse", orthanc.dimse, "--no-deidentify")
    assert code == ExitCode.OK and "as they were" in out
    code, out, _ = run("find", "--dimse", orthanc.dimse, "--patient-id", "LIDC-*", "--json")
    assert [s["patient_id"] for s in json.loads(out)["series"]] == ["LIDC-IDRI-0001"]


@pytest.mark.parametrize("calling", ["INTRUDER"])
def test_a_refused_association_exits_with_peer(orthanc: OrthancServer, calling: str) -> None:
    code, _, err = run("find", "--dimse", orthanc.dimse, "--calling-aet", calling)
    assert code == ExitCode.PEER
    assert "calling ae title not recognised" in err and "--calling-aet" in err
    assert len(err.strip().splitlines()) == 1
