"""Damaged CT files end in one clear project error naming the file, never in anything else.

Three kinds of evidence (``docs/robustness.md``):

- regression cases: every file of ``../shared/data/fuzz-corpus`` (one of each kind of
  foreign exception a 67,059-input probe found) and of ``tests/io/fuzz_cases`` (what the
  campaign found since), through :func:`read_ct` and through ``seldinger info``;
- every truncation length of a real LIDC slice (a dense sample by default, all 526,464
  lengths under ``-m fuzz``);
- seeded mutations (:mod:`fuzz_mutate`) of DICOM, NIfTI, NRRD and MetaImage inputs: only
  success or a :class:`~seldinger.errors.SeldingerError` may come out, within a time
  limit per input, under a memory ceiling. A few thousand by default, 60,000 under
  ``-m fuzz``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fuzz_mutate as fm
import numpy as np
import pytest

from seldinger.app.cli import main
from seldinger.io import ImageReadError, read_ct
from shared_paths import LIDC, SHARED_DATA

CORPUS = SHARED_DATA / "fuzz-corpus"
OWN_CASES = Path(__file__).parent / "fuzz_cases"
#: A read that takes longer than this hangs (a real slice reads in about 3 ms).
TIME_LIMIT_S = 10.0
#: Memory a read may take beyond what the process holds (a damaged header must not reach it).
MEMORY_CEILING_BYTES = 2 << 30
#: Mutated inputs per kind of base (12 kinds).
DEFAULT_PER_KIND = 250
FUZZ_PER_KIND = 5000


def _corpus_files() -> list[Path]:
    files = sorted(CORPUS.glob("other_*")) if CORPUS.is_dir() else []
    return files + sorted(p for p in OWN_CASES.glob("*") if p.name != "README.md")


def _as_read(path: Path, tmp_path: Path) -> tuple[Path, str]:
    """The path to read (a ``*dcmdir*`` file is read as the only file of a folder) and the
    name its error message must contain."""
    if "dcmdir" in path.name:
        folder = tmp_path / "series"
        folder.mkdir()
        shutil.copy(path, folder / path.name)
        return folder, path.name
    return path, path.name


def _cli_one_line(capsys: pytest.CaptureFixture[str], path: Path, name: str) -> str:
    capsys.readouterr()
    code = main(["info", str(path)])
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert code != 0, f"seldinger info {path} succeeded"
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_file_gives_one_line_naming_the_file(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, name = _as_read(path, tmp_path)
    with pytest.raises(ImageReadError) as info:
        read_ct(target)
    message = str(info.value)
    assert name in message and "\n" not in message
    assert "()" not in message  # never an empty reason
    _cli_one_line(capsys, target, name)


def test_corpus_is_present() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is absent")
    assert len(list(CORPUS.glob("other_*"))) == 26


# --------------------------------------------------------------------------- truncation


@pytest.fixture(scope="module")
def slice_bytes() -> bytes:
    files = sorted((LIDC / "dicom").glob("*.dcm"))
    if not files:
        pytest.skip("the LIDC-IDRI-0001 DICOM slices are absent")
    return files[0].read_bytes()


def _boundaries(data: bytes) -> list[int]:
    """Offsets where an element starts, and where its value starts."""
    marks = set()
    for offset, _tag, _vr, _length, header in fm._elements(data):
        marks.update((offset, offset + header + 1))
    return sorted(m for m in marks if 0 <= m < len(data))


def _check_truncations(
    slice_bytes: bytes,
    tmp_path: Path,
    lengths: list[int],
    cli_lengths: set[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "slice.dcm"
    path.write_bytes(slice_bytes)
    foreign = []
    for n in sorted(set(lengths) | cli_lengths, reverse=True):  # shrink one file in place
        os.truncate(path, n)
        outcome = fm.read_outcome(path, TIME_LIMIT_S, (path.name,))
        if outcome.status != "project" or not outcome.names_input:
            foreign.append((n, outcome))
        if n in cli_lengths:
            _cli_one_line(capsys, path, path.name)
    assert not foreign, f"{len(foreign)} truncation lengths misbehaved, first: {foreign[:3]}"


def test_every_header_truncation_and_a_sample_of_the_rest(
    slice_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header_end = fm._pixel_value_offset(slice_bytes)
    full = len(slice_bytes)
    pixel_sample = [*range(header_end, full, 997), full - 2, full - 1]
    lengths = list(range(0, header_end + 64)) + pixel_sample
    cli = {n for n in _boundaries(slice_bytes) if n < header_end + 16}
    cli |= set(range(0, 132)[::7]) | set(pixel_sample[::100]) | {full - 1}
    _check_truncations(slice_bytes, tmp_path, lengths, cli, capsys)
    path = tmp_path / "slice.dcm"
    path.write_bytes(slice_bytes)
    assert read_ct(path).volume.shape == (512, 512, 1)  # the whole file still reads


@pytest.mark.fuzz
def test_every_truncation_length(
    slice_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All 526,464 lengths through read_ct; through the CLI every length of the header and
    every 61st of the pixel data (inside the pixel data each length takes one path: the
    file is shorter than Rows x Columns x BitsAllocated, refused before any allocation)."""
    header_end = fm._pixel_value_offset(slice_bytes)
    full = len(slice_bytes)
    cli = set(range(0, header_end + 64)) | set(range(header_end, full, 61))
    _check_truncations(slice_bytes, tmp_path, list(range(full)), cli, capsys)


# --------------------------------------------------------------------------- mutation


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fm.Base]:
    if not (LIDC / "ct.nii.gz").is_file() or not list((LIDC / "dicom").glob("*.dcm")):
        pytest.skip("the LIDC-IDRI-0001 data is absent")
    return fm.build_bases(LIDC / "dicom", LIDC / "ct.nii.gz", tmp_path_factory.mktemp("bases"))


def _vm_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextmanager
def memory_ceiling(extra_bytes: int) -> Iterator[None]:
    """Cap the address space at its current size plus ``extra_bytes`` (Linux), so that a
    reader trusting a damaged header's size gets a MemoryError, not the machine's RAM."""
    try:
        import resource
    except ImportError:
        yield
        return
    current = _vm_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if current is None:
        yield
        return
    limit = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _mutation_run(base: fm.Base, n: int, seed: int, work: Path) -> None:
    rng = np.random.default_rng([fm.SEED, seed])
    bad: list[tuple[str, fm.Outcome]] = []
    statuses: dict[str, int] = {}
    with memory_ceiling(MEMORY_CEILING_BYTES):
        for i in range(n):
            case = fm.mutate(base, rng)
            folder = work / f"case{i}"
            path = fm.write_case(case, folder)
            outcome = fm.read_outcome(path, TIME_LIMIT_S, (str(path), case.target))
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            if outcome.status in ("foreign", "hang") or not outcome.names_input:
                bad.append((case.mutation, outcome))  # the files stay in folder for a look
            else:
                shutil.rmtree(folder)
    assert not bad, (
        f"{len(bad)} of {n} mutated {base.kind} inputs misbehaved ({statuses}); first: "
        + "; ".join(
            f"[{m}] {o.status} {o.error} at {o.where}: {o.message[:120]}" for m, o in bad[:3]
        )
    )
    assert statuses.get("project", 0) > 0  # the mutations do damage


@pytest.mark.parametrize("kind", fm.KINDS)
def test_mutated_inputs_give_only_project_errors(
    bases: dict[str, fm.Base], kind: str, tmp_path: Path
) -> None:
    _mutation_run(bases[kind], DEFAULT_PER_KIND, fm.KINDS.index(kind), tmp_path)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", fm.KINDS)
def test_many_mutated_inputs_give_only_project_errors(
    bases: dict[str, fm.Base], kind: str, tmp_path: Path
) -> None:
    _mutation_run(bases[kind], FUZZ_PER_KIND, 1000 + fm.KINDS.index(kind), tmp_path)


# --------------------------------------------------------------------------- a real process


@pytest.mark.parametrize(
    "name", ["other_11_dcm.dcm", "ndims_negative.mha", "rle_decoder_panic.dcm"]
)
def test_real_command_prints_one_line(name: str, tmp_path: Path) -> None:
    """Through a real process, where native decoders (ITK, the Rust RLE plugin) and
    pydicom's logger reach file descriptor 2, stderr is still one line."""
    path = CORPUS / name if name.startswith("other_") else OWN_CASES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    done = subprocess.run(
        [sys.executable, "-m", "seldinger.app.cli", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "RUST_BACKTRACE": "1"},
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and name in lines[0], done.stderr
