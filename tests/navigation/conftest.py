"""Fixtures: OpenIGTLink peers (ours, pyigtl, the C++ reference library); the lidc CT with
six skin markers."""

from __future__ import annotations

import math
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage as ndi

from seldinger.imaging import Volume
from seldinger.navigation.fiducials import detect_skin_markers, insert_spherical_markers

CPP_SOURCES = Path(__file__).parent / "cpp"
#: Where Debian's libopenigtlink-dev (first) or a source build puts the CMake package.
IGTL_CMAKE_PATTERNS = [
    ("/usr/lib", "openigtlink/OpenIGTLinkConfig.cmake"),
    ("/usr/lib", "*/cmake/OpenIGTLink*/OpenIGTLinkConfig.cmake"),
    ("/usr/local/lib", "cmake/OpenIGTLink*/OpenIGTLinkConfig.cmake"),
    ("/usr/local/lib", "igtl/cmake/igtl*/OpenIGTLinkConfig.cmake"),
]
#: Debian's openigtlink-examples puts the library's example sources here.
IGTL_EXAMPLES = Path("/usr/share/doc/openigtlink-examples/examples")


def _eventually(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    wake = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        wake.wait(0.005)


@pytest.fixture
def eventually() -> Callable[..., None]:
    """``eventually(predicate, timeout_s=5.0)``: wait for a condition (checked every 5 ms)."""
    return _eventually


@pytest.fixture(scope="session")
def igtl_cpp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Test peers compiled against the OpenIGTLink C++ library: {"peer": ..., "ReceiveClient": ...}.

    Skips only when Debian's ``libopenigtlink-dev`` is not installed (``.ci/run`` installs
    it); a failing build fails the tests.
    """
    configs = (p for root, pattern in IGTL_CMAKE_PATTERNS for p in Path(root).glob(pattern))
    config = next((p for p in configs if p.is_file()), None)
    if config is None:
        pytest.skip(
            "the OpenIGTLink C++ library is absent (apt-get install libopenigtlink-dev "
            "openigtlink-examples cmake g++)"
        )
    cmake = shutil.which("cmake")
    assert cmake is not None, (
        "libopenigtlink-dev is installed but cmake is not (apt-get install cmake g++)"
    )
    build = tmp_path_factory.mktemp("igtl_cpp")
    configure = [
        cmake,
        "-S",
        str(CPP_SOURCES),
        "-B",
        str(build),
        f"-DOpenIGTLink_DIR={config.parent}",
        f"-DIGTL_EXAMPLES_DIR={IGTL_EXAMPLES}",
    ]
    for command in (configure, [cmake, "--build", str(build), "-j2"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    programs = {"peer": build / "igtl_peer"}
    if (build / "ReceiveClient").is_file():
        programs["ReceiveClient"] = build / "ReceiveClient"
    return programs


@pytest.fixture
def pyigtl_server() -> Iterator[Any]:
    """A pyigtl server on a free port, its serving thread ours (joined at the end).

    pyigtl's constructor installs SIGINT/SIGTERM handlers and its own status thread
    (which sleeps in 5 s steps); we restore the handlers and start only ``serve_forever``.
    """
    pyigtl = pytest.importorskip("pyigtl")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = pyigtl.OpenIGTLinkServer(port=0, start_now=False)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(5.0)


@pytest.fixture
def raw_socket() -> Iterator[Callable[[int], socket.socket]]:
    """Factory of plain TCP connections to 127.0.0.1:port (closed at the end)."""
    sockets: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        sockets.append(sock)
        return sock

    yield connect
    for sock in sockets:
        sock.close()


# --- The lidc-idri-0001 CT with six skin markers (fiducial detection, end to end) ---

#: (slice index, azimuth in degrees from anterior toward the patient's left): six points
#: of the anterior and lateral chest, on slice centres (.0), boundaries (.5) and between.
SKIN_SITES = [
    (45.0, -50.0),
    (52.5, -20.0),
    (60.25, 10.0),
    (68.5, 40.0),
    (75.0, -35.0),
    (82.75, 55.0),
]


def _skin_centres(ct: Volume, body: np.ndarray, gap_mm: float = 2.0) -> np.ndarray:
    """Marker centres ``gap_mm`` outside the skin at :data:`SKIN_SITES` (resting on it).

    Walks from the slice's body centroid along the azimuth until the in-plane distance to
    the body reaches ``gap_mm``; the point is then moved to the fractional slice.
    """
    centres = []
    for k_frac, azimuth_deg in SKIN_SITES:
        k = round(k_frac)
        plane = body[:, :, k]
        to_body_mm = ndi.distance_transform_edt(~plane, sampling=ct.spacing_mm[:2])
        start = ct.index_to_lps([*np.argwhere(plane).mean(axis=0), k])
        a = math.radians(azimuth_deg)
        direction = np.array([math.sin(a), -math.cos(a), 0.0])  # 0° = anterior (−P)
        for t_mm in np.arange(0.0, 300.0, 0.05):
            p = start + t_mm * direction
            ij = ct.lps_to_index(p)[:2]
            if ndi.map_coordinates(to_body_mm, ij[:, None], order=1)[0] >= gap_mm:
                break
        p[2] = ct.index_to_lps([0.0, 0.0, k_frac])[2]
        centres.append(p)
    return np.array(centres)


@pytest.fixture(scope="session")
def lidc_markers(lidc_volume, lidc_anatomy):
    """The LIDC CT with six 4 mm, 1500 HU markers on the chest, and their true centres."""
    body = np.asarray(lidc_anatomy["body"].array, dtype=bool)
    truth = _skin_centres(lidc_volume, body)
    return insert_spherical_markers(lidc_volume, truth, diameter_mm=4.0, hu=1500.0), truth


@pytest.fixture(scope="session")
def lidc_detection(lidc_markers):
    """Detection on the marked LIDC CT with the detector's own body mask."""
    return detect_skin_markers(lidc_markers[0])
