"""`seldinger serve` on the real lidc-idri-0001 plan, as a user starts it: the URL printed,
the viewer's own first slice drawn in headless Chromium, no console errors, a fast re-score."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from seldinger.app.web.server import STATIC
from web.cdp import CHROMIUM, Browser
from web.lidc_case import LIDC, build_lidc_case

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LIDC.is_dir(), reason="../shared/data is absent"),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine"),
    pytest.mark.skipif(
        not (STATIC / "vendor" / "niivue.umd.js").is_file(),
        reason="the NiiVue bundle is not built (cd web && npm ci && npm run build)",
    ),
]
#: The first slice (the viewer's own, or the axial preview if it came first), issue 21.
FIRST_SLICE_S = 3.0
#: The viewer's own first slice with SwiftShader (software WebGL, the CT at a quarter then
#: half in-plane resolution) on a shared 2-core machine: a loose bound, the timings are the
#: benchmark's (docs/workstation.md, "Measured": 1.4-2.3 s at load 2.5-3).
VIEWER_SLICE_SOFTWARE_S = 30.0
#: The server's share of that: from listening to the CT's bytes sent.
CT_SERVED_S = 3.0


@pytest.fixture(scope="module")
def lidc_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lidc_case(tmp_path_factory.mktemp("lidc") / "case")


@pytest.fixture
def server(lidc_plan: Path) -> Iterator[tuple[str, float]]:
    """``seldinger serve PLAN --port 0`` in a process; the printed URL and when it came."""
    command = [sys.executable, "-m", "seldinger.app.cli", "serve", str(lidc_plan), "--port", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            printed = time.monotonic()
            match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
            assert match, line
            yield match.group(1), printed
        finally:
            process.terminate()
            process.wait(20)


def test_the_lidc_plan_is_drawn_quickly_without_errors(
    server: tuple[str, float], tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    url, printed = server
    base, token = url.split("/?token=")
    ct = httpx.get(
        f"{base}/api/volumes/ct.nii",
        params={"step": 2},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    ct_served_s = time.monotonic() - printed
    assert ct.status_code == 200 and len(ct.content) > 17_000_000
    assert ct_served_s <= CT_SERVED_S
    with Browser() as browser:
        page = browser.page()
        page.goto(url)
        page.wait_for("document.body && document.body.dataset.state === 'ready'", 300, 0.1)
        page.screenshot(tmp_path / "lidc.png")
        first_slice_s = page.evaluate("window.seldinger.firstSliceMs") / 1000.0
        viewer_s = page.evaluate("window.seldinger.viewerSliceMs") / 1000.0
        half_s = page.evaluate("window.seldinger.ctReplacedMs") / 1000.0
        print(
            f"first slice {first_slice_s:.2f} s, the viewer's own {viewer_s:.2f} s (CT at half "
            f"resolution {half_s:.2f} s) after opening the URL"
        )
        record_property("viewer_first_slice_s", viewer_s)
        assert page.evaluate("window.seldinger.firstStep") == 4  # the quarter-resolution CT first
        assert first_slice_s <= FIRST_SLICE_S
        assert viewer_s <= half_s <= VIEWER_SLICE_SOFTWARE_S
        assert page.evaluate("window.seldinger.viewer().volumes.length") == 2  # CT and masks
        rows = page.evaluate("document.getElementById('metrics').innerText")
        assert "risk score" in rows
        page.pump(0.5)
        assert page.errors == []
    overlays = httpx.get(
        f"{base}/api/overlays", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    page_entry = overlays["selected"]["entry_lps_mm"]
    entry = [page_entry[0] + 4.0, page_entry[1], page_entry[2]]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the risk maps are built in the background
        answer = httpx.post(
            f"{base}/api/rescore",
            json={"entry_lps_mm": entry},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if answer.status_code != 503:
            break
        time.sleep(0.5)
    assert answer.status_code == 200 and answer.json()["seconds"] <= 0.2
