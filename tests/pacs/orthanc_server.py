"""A throw-away Orthanc PACS for the tests and the benchmark (Debian packages orthanc and
orthanc-dicomweb). No pytest in here, so that ``benchmarks/bench_pacs.py`` can use it.

What it is configured for, and why:

- HTTP (REST, DICOMweb) and DICOM ports chosen free by binding port 0 first; storage and
  index in a temporary folder; no jobs saved.
- ``RemoteAccessAllowed: false``: the HTTP server answers loopback clients only, so no
  login is needed (``AuthenticationEnabled: false``) and the client under test needs no
  credentials. Orthanc 1.10 has no bind-address option: its DICOM port listens on every
  interface, so DICOM access is closed to everyone except AE titles listed in
  ``DicomModalities`` *and* connecting from 127.0.0.1 (``DicomCheckModalityHost``), and
  the called AE title is checked (``DicomCheckCalledAet``): a wrong one is refused.
- AE ``SELDINGER`` may echo, find, get (C-GET) and store; AE ``READONLY`` may do all but
  store (to provoke a storage refusal).
- The C-STORE SCP refuses Deflated Explicit VR Little Endian (to provoke a presentation
  context the PACS does not accept).
- A Lua ``ReceivedInstanceFilter`` refuses instances of patient ``MIDWAY-FAIL`` whose
  ImageComments is ``REJECT`` (to provoke a store that fails mid-way).
- ``TCP_NODELAY=1`` in Orthanc's environment: DCMTK, inside Orthanc, otherwise leaves
  Nagle's algorithm on, and every DIMSE answer then waits ~40 ms for a delayed ACK.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL_HINT = "apt-get install orthanc orthanc-dicomweb"
ORTHANC_AET = "ORTHANC"
CLIENT_AET = "SELDINGER"
READONLY_AET = "READONLY"
REJECT_PATIENT_ID = "MIDWAY-FAIL"
REJECT_COMMENT = "REJECT"

_LUA_FILTER = f"""
function ReceivedInstanceFilter(dicom, origin, info)
  -- tests/pacs: refuse one chosen instance so that a push fails part-way
  if dicom.PatientID == '{REJECT_PATIENT_ID}' and dicom.ImageComments == '{REJECT_COMMENT}' then
    error('refused by the test filter')
  end
  return true
end
"""


def orthanc_missing() -> str | None:
    """Why Orthanc cannot run here (None when it can)."""
    if not ORTHANC.is_file() or not DICOMWEB_PLUGIN.is_file():
        return f"Orthanc with its DICOMweb plugin is not installed ({INSTALL_HINT})"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OrthancServer:
    """A running Orthanc; ``stop()`` ends it."""

    process: subprocess.Popen[bytes]
    workdir: Path
    http_port: int
    dicom_port: int

    @property
    def dimse(self) -> str:
        return f"{ORTHANC_AET}@127.0.0.1:{self.dicom_port}"

    @property
    def dicomweb(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    @property
    def log(self) -> str:
        path = self.workdir / "orthanc.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def rest(self, path: str, method: str = "GET", timeout_s: float = 10.0) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def instance_count(self) -> int:
        return len(self.rest("/instances"))

    def clear(self) -> None:
        """Delete every patient (and so every instance)."""
        for patient in self.rest("/patients"):
            self.rest(f"/patients/{patient}", method="DELETE")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)


def _config(workdir: Path, http_port: int, dicom_port: int) -> dict[str, Any]:
    def modality(aet: str, store: bool) -> dict[str, Any]:
        return {
            "AET": aet,
            "Host": "127.0.0.1",
            "Port": 104,  # unused: C-GET answers on our own association
            "AllowEcho": True,
            "AllowFind": True,
            "AllowGet": True,
            "AllowMove": False,
            "AllowStore": store,
        }

    lua = workdir / "filter.lua"
    lua.write_text(_LUA_FILTER)
    return {
        "Name": "seldinger-tests",
        "StorageDirectory": str(workdir / "db"),
        "IndexDirectory": str(workdir / "db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomModalities": {
            "seldinger": modality(CLIENT_AET, store=True),
            "readonly": modality(READONLY_AET, store=False),
        },
        "LuaScripts": [str(lua)],
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 8,
        "DicomThreadsCount": 2,
        "HttpCompressionEnabled": False,
        "StorageCompression": False,
        "WebDavEnabled": False,
        "DeflatedTransferSyntaxAccepted": False,
    }


def _answers(server: OrthancServer) -> bool:
    try:
        server.rest("/system", timeout_s=1.0)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    try:
        with socket.create_connection(("127.0.0.1", server.dicom_port), timeout=1.0):
            return True
    except OSError:
        return False


def start_orthanc(workdir: Path, *, timeout_s: float = 30.0) -> OrthancServer:
    """Start Orthanc in ``workdir`` and return once its HTTP and DICOM ports answer.

    Raises
    ------
    RuntimeError
        Orthanc is missing, exits, or does not answer within ``timeout_s`` (its log is in
        the message).
    """
    missing = orthanc_missing()
    if missing:
        raise RuntimeError(missing)
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    config = workdir / "orthanc.json"
    config.write_text(json.dumps(_config(workdir, http_port, dicom_port), indent=2))
    log = (workdir / "orthanc.log").open("wb")
    env = {**os.environ, "TCP_NODELAY": "1"}
    process = subprocess.Popen(
        [str(ORTHANC), str(config)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir
    )
    log.close()
    server = OrthancServer(process, workdir, http_port, dicom_port)
    deadline = time.monotonic() + timeout_s
    while not _answers(server):
        try:
            # waits for Orthanc to exit (a bad config), at most 50 ms, then polls again
            code = process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"Orthanc did not start (exit code {code}, ports {http_port}/{dicom_port}):\n"
                + server.log[-3000:]
            )
    return server


def remove(server: OrthancServer) -> None:
    """Stop the server and delete its folder."""
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)
