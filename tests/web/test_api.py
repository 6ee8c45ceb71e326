"""`seldinger serve`'s HTTP API through httpx: the token, the security headers, the volumes,
re-scoring, the Pareto set, moving an applicator and approving the plan."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from seldinger.app.cli import main
from seldinger.app.web.server import check_bind
from seldinger.errors import BadInputError
from seldinger.io import read_volume
from seldinger.plan import Plan
from web.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/overlays",
        "/api/volumes/ct.nii",
        "/api/preview.png",
        "/static/app.js",
        "/api/pareto",
    ],
)
def test_every_request_needs_the_token(client, path: str) -> None:  # type: ignore[no-untyped-def]
    refused = client.get(path)
    assert refused.status_code == 401
    assert "default-src 'self'" in refused.headers["content-security-policy"]
    assert (
        client.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code
        == 401
    )
    assert client.get(path, params={"token": TOKEN[:-1]}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200


def test_the_url_token_sets_a_strict_cookie_that_then_suffices(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/", params={"token": TOKEN})
    assert page.status_code == 200 and "niivue.umd.js" in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    headers = page.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    assert client.get("/api/overlays").status_code == 200  # the cookie the client kept


def test_the_websocket_needs_the_token_and_our_origin(served: str) -> None:
    url = served.replace("http://", "ws://") + "/api/live"
    with pytest.raises(InvalidStatus), connect(url, open_timeout=10):
        pass
    cookie = {"cookie": f"seldinger_token={TOKEN}"}
    evil = {**cookie, "origin": "http://evil.example"}
    with pytest.raises(InvalidStatus), connect(url, additional_headers=evil, open_timeout=10):
        pass
    with connect(url, additional_headers=cookie, open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=10))["error"].startswith("no tracker")


def test_a_non_loopback_address_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    with pytest.raises(BadInputError, match="--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(BadInputError, match="--token"):
        check_bind("192.168.1.20", None)
    with pytest.raises(BadInputError, match="16 characters"):
        check_bind("0.0.0.0", "short")
    check_bind("0.0.0.0", TOKEN)


def test_serve_refuses_a_public_address_without_a_token(chest_plan: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["serve", str(chest_plan), "--host", "0.0.0.0", "--port", "0"]) == 3
    assert "--token" in capsys.readouterr().err


def test_overlays_hold_the_plan_and_no_file_paths(client, workstation) -> None:  # type: ignore[no-untyped-def]
    overlays = client.get("/api/overlays", headers=AUTH).json()
    plan = workstation.case.plan
    assert overlays["volumes"] == ["ct", "labels", "zone", "dose"]
    seeds = [p for n in plan.seeds.needles for p in n.seeds_lps_mm]
    assert overlays["seeds"]["positions_lps_mm"] == [list(p) for p in seeds]
    assert len(overlays["trajectories"]) == len(plan.trajectories.paths) > 0
    assert overlays["selected"]["entry_lps_mm"] == list(plan.trajectories.paths[0].entry_lps_mm)
    assert len(overlays["applicators"]) == len(plan.ablation.applicators)
    assert set(overlays["window_presets_hu"]) >= {"lung", "mediastinum", "bone"}
    assert overlays["scoring"]["ready"] is True
    text = json.dumps(overlays)
    assert str(workstation.case.plan_path.parent) not in text and "nii" not in text


def test_the_volumes_are_the_ct_and_masks_in_place(client, workstation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name, filename in (("ct", "ct.nii"), ("labels", "labels.nii.gz"), ("zone", "zone.nii.gz")):
        response = client.get(f"/api/volumes/{filename}", headers=AUTH)
        assert response.status_code == 200
        (tmp_path / filename).write_bytes(response.content)
        served = read_volume(tmp_path / filename)
        if name != "zone":
            assert np.allclose(served.affine, workstation.volume.affine)
        if name == "ct":
            assert np.array_equal(served.array, workstation.volume.array)
        if name == "labels":  # the lesion label (last) sits at the lesion's centroid
            centre = served.lps_to_index(workstation.target.centroid_lps_mm).round().astype(int)
            assert served.array[tuple(centre)] == 9
        if name == "zone":  # the first applicator's zone centre is inside the zone mask
            centre = workstation.applicators[0].zone_centre_lps_mm
            assert served.array[tuple(served.lps_to_index(centre).round().astype(int))] == 1
    (tmp_path / "dose.nii.gz").write_bytes(
        client.get("/api/volumes/dose.nii.gz", headers=AUTH).content
    )
    dose = read_volume(tmp_path / "dose.nii.gz")  # isodose bands: >= 200 % at a seed
    seed = workstation.case.plan.seeds.needles[0].seeds_lps_mm[0]
    assert dose.array[tuple(dose.lps_to_index(seed).round().astype(int))] == 4
    assert set(np.unique(dose.array)) == {0, 1, 2, 3, 4}
    preview = client.get("/api/preview.png", headers=AUTH)
    assert preview.headers["content-type"] == "image/png"
    assert preview.content.startswith(b"\x89PNG\r\n\x1a\n") and len(preview.content) > 1000
    half = client.get("/api/volumes/ct.nii", params={"step": 2}, headers=AUTH)
    assert half.status_code == 200
    quarter = client.get("/api/volumes/ct.nii", params={"step": 4}, headers=AUTH)
    assert quarter.status_code == 200  # the page's first upload (1 mm voxels: not coarsened)
    refused = client.get("/api/volumes/labels.nii.gz", params={"step": 4}, headers=AUTH)
    assert refused.status_code == 422  # step 4 is for the CT only
    assert client.get("/api/volumes/plan.json", headers=AUTH).status_code == 422


def test_a_clicked_entry_is_rescored_fast(client, workstation) -> None:  # type: ignore[no-untyped-def]
    before = workstation.selected
    entry = np.asarray(before.entry_lps_mm) + np.array([0.0, 0.0, 6.0])
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        result = client.post(
            "/api/rescore", json={"entry_lps_mm": entry.tolist()}, headers=AUTH
        ).json()
        timings.append(time.perf_counter() - started)
    assert result["path"]["entry_lps_mm"] == pytest.approx(entry.tolist(), abs=0.01)
    assert result["path"]["target_lps_mm"] == pytest.approx(before.target_lps_mm, abs=0.01)
    assert result["path"]["length_mm"] != pytest.approx(before.length_mm, abs=1e-3)
    assert result["seconds"] < 0.2 and min(timings) < 0.2
    assert workstation.selected.entry_lps_mm == pytest.approx(tuple(entry), abs=0.01)


def test_a_path_through_a_rib_is_refused_with_its_reasons(client, workstation) -> None:  # type: ignore[no-untyped-def]
    # entering at the level of a rib (k % 12 < 8 is bone), straight lateral to the lesion
    result = client.post(
        "/api/rescore", json={"entry_lps_mm": [44.0, 0.0, 0.0]}, headers=AUTH
    ).json()
    assert result["safe"] is False and any("bones" in r for r in result["broken_rules"])
    assert result["rank_among_safe"] is None


def test_a_clicked_target_moves_the_path_end(client, workstation) -> None:  # type: ignore[no-untyped-def]
    target = np.asarray(workstation.selected.target_lps_mm) + np.array([1.0, 1.0, 0.0])
    result = client.post(
        "/api/rescore", json={"target_lps_mm": target.tolist()}, headers=AUTH
    ).json()
    assert result["path"]["target_lps_mm"] == pytest.approx(target.tolist(), abs=0.01)


def test_a_path_is_chosen_within_the_pareto_set(client, workstation) -> None:  # type: ignore[no-untyped-def]
    pareto = client.get("/api/pareto", headers=AUTH).json()
    assert pareto and all(p["pareto"] and p["safe"] for p in pareto)
    chosen = pareto[-1]
    answer = client.post("/api/choose", json={"entry_lps_mm": chosen["entry_lps_mm"]}, headers=AUTH)
    assert answer.status_code == 200
    assert workstation.selected.entry_lps_mm == pytest.approx(tuple(chosen["entry_lps_mm"]))
    unknown = client.post("/api/choose", json={"entry_lps_mm": [0.0, 0.0, 0.0]}, headers=AUTH)
    assert unknown.status_code == 422 and "Pareto" in unknown.json()["error"]


def test_moving_an_applicator_updates_coverage_and_margin(client, workstation) -> None:  # type: ignore[no-untyped-def]
    plan = workstation.case.plan
    tip = np.asarray(workstation.applicators[0].tip_lps_mm)
    same = client.post("/api/applicators/0", json={"tip_lps_mm": tip.tolist()}, headers=AUTH).json()
    assert same["target_coverage_percent"] == pytest.approx(
        plan.ablation.target_coverage_percent, abs=2.0
    )
    away = (tip + np.array([0.0, 0.0, 12.0])).tolist()
    moved = client.post("/api/applicators/0", json={"tip_lps_mm": away}, headers=AUTH).json()
    assert moved["target_coverage_percent"] < same["target_coverage_percent"] - 5
    assert moved["margin"]["min_margin_mm"] < same["margin"]["min_margin_mm"]
    assert moved["applicators"][0]["tip_lps_mm"] == pytest.approx(away, abs=0.01)
    assert (
        client.post("/api/applicators/7", json={"tip_lps_mm": away}, headers=AUTH).status_code
        == 422
    )


def test_approve_writes_the_plan_atomically_with_provenance(client, workstation) -> None:  # type: ignore[no-untyped-def]
    plan_path = workstation.case.plan_path
    folder_before = {p.name for p in plan_path.parent.iterdir()}
    pareto = client.get("/api/pareto", headers=AUTH).json()
    client.post("/api/choose", json={"entry_lps_mm": pareto[-1]["entry_lps_mm"]}, headers=AUTH)
    tip = np.asarray(workstation.applicators[0].tip_lps_mm) + np.array([0.0, 0.0, 3.0])
    client.post("/api/applicators/0", json={"tip_lps_mm": tip.tolist()}, headers=AUTH)
    answer = client.post("/api/approve", headers=AUTH)
    assert answer.status_code == 200 and answer.json()["written"] == "plan.json"
    saved = Plan.load(plan_path, volume=workstation.volume)
    assert saved.trajectories.paths[0].entry_lps_mm == pytest.approx(
        tuple(pareto[-1]["entry_lps_mm"])
    )
    assert [p.rank for p in saved.trajectories.paths] == list(
        range(1, len(saved.trajectories.paths) + 1)
    )
    assert saved.ablation.applicators[0].tip_lps_mm == pytest.approx(tuple(tip), abs=0.01)
    step = saved.provenance.last("workstation")
    assert step is not None and step.command == "seldinger serve"
    assert "applicator 1 moved" in step.parameters["changes"]
    zone = read_volume(plan_path.parent / saved.ablation.zone_mask_path)
    assert zone.array[
        tuple(
            zone.lps_to_index(saved.ablation.applicators[0].zone_centre_lps_mm).round().astype(int)
        )
    ]
    assert {p.name for p in plan_path.parent.iterdir()} == folder_before  # no leftovers


def test_serve_prints_the_url_with_its_token(chest_plan: Path) -> None:
    command = [sys.executable, "-m", "seldinger.app.cli", "serve", str(chest_plan), "--port", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]{40,})", line)
            assert match, line
            base = f"http://127.0.0.1:{match.group(1)}"
            assert httpx.get(f"{base}/api/overlays", timeout=30).status_code == 401
            page = httpx.get(f"{base}/?token={match.group(2)}", timeout=30)
            assert page.status_code == 200 and "seldinger_token=" in page.headers["set-cookie"]
        finally:
            process.terminate()
            process.wait(20)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("step", [2, 4])
def test_coarser_takes_block_means_and_maxima(order: str, step: int) -> None:
    from seldinger.imaging import Volume
    from seldinger.workflow.workstation import coarser

    rng = np.random.default_rng(step)
    values = rng.integers(-1024, 2000, size=(13, 10, 3)).astype(np.int16)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    volume = Volume(np.array(values, order=order), affine)
    n0, n1 = 13 // step * step, 10 // step * step  # a trailing partial block is dropped
    blocks = values[:n0, :n1].reshape(n0 // step, step, n1 // step, step, 3)
    mean = coarser(volume, step)
    expected = np.rint(blocks.sum(axis=(1, 3), dtype=np.int32) / step**2).astype(np.int16)
    assert mean.array.dtype == np.int16 and np.array_equal(mean.array, expected)
    assert np.array_equal(coarser(volume, step, "max").array, blocks.max(axis=(1, 3)))
    # the block's centre keeps its place: voxel (0, 0, 0) of the coarse grid
    assert mean.index_to_lps(np.zeros(3)) == pytest.approx([(step - 1) * 0.35] * 2 + [0.0])
