"""Atomic file output: a file appears whole or not at all (no partial output on error).

One output: :func:`atomic_path` (a file) and :func:`atomic_dir` (a folder). Several outputs
that belong together (a plan, the mask beside it, figures, an STL): :func:`staged_outputs`
writes each aside and commits them all only when every one was written.

Temporary files and folders live beside their target, named ``.<target>.<pid>.<random>.part``.
A run that was killed (``kill -9``, a power cut) leaves them behind; the next run writing
the same target removes those whose process is gone, and puts back an earlier folder that
was being replaced (``.<target>.old``) if the new one never arrived.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from seldinger.errors import OutputExistsError, SeldingerError, SeldingerIOError

__all__ = [
    "OutputLocationError",
    "StagedOutputs",
    "atomic_dir",
    "atomic_path",
    "check_outputs",
    "check_overwrite",
    "remove_leftovers",
    "staged_outputs",
]

#: Errors of the disk (not of the program): reported as "could not write PATH: reason".
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


class OutputLocationError(SeldingerIOError):
    """An output path that cannot be written: under a file, or in a folder not writable."""


def _writable_location(path: Path) -> None:
    """Refuse a path whose nearest existing ancestor is a file or not writable."""
    probe = path.absolute().parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputLocationError(
            f"{path} cannot be written: {probe} is a file, not a folder. Choose an output "
            "path in a folder."
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputLocationError(
            f"{path} cannot be written: no permission to write in {probe}. Choose a folder you "
            "can write in."
        )


def check_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Refuse to replace an existing ``path`` unless ``force`` is set, and refuse a path that
    cannot be written (under a file, or in a folder without write permission).

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``force`` is False.
    OutputLocationError
        If ``path`` cannot be written where it is.
    """
    target = Path(path)
    if target.exists() and not force:
        raise OutputExistsError(
            f"{path} already exists; pass --force (force=True in Python) to replace it, or choose "
            "another output path."
        )
    _writable_location(target)


def check_outputs(paths: Iterable[str | os.PathLike[str] | None], force: bool) -> None:
    """:func:`check_overwrite` for each path (None entries skipped), before any work starts."""
    for path in paths:
        if path is not None:
            check_overwrite(path, force)


def _umask_mode(base: int) -> int:
    """``base`` (0o666 files, 0o777 folders) less the process umask: what open() would give.

    mkstemp and mkdtemp create owner-only (0o600 / 0o700) entries; outputs are meant to be
    shared like any file the user writes (PACS import folders, a colleague's viewer).
    """
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed runs left beside ``target``; returns what was removed.

    Temporaries ``.<name>.<pid>.<random>.part…`` of processes that are gone (and of earlier
    Seldinger versions, which had no pid) are deleted. A ``.<name>.old`` folder (the previous
    output while it was being replaced) is put back when ``target`` is missing, else deleted.
    """
    path = Path(target)
    folder = path.parent
    if not folder.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.(?:(\d+)\.)?[A-Za-z0-9_]{{8}}\.part(?:\..*)?$"
    )
    removed = []
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match is None or (match.group(1) is not None and _alive(int(match.group(1)))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    old = folder / f".{path.name}.old"
    if old.exists():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)  # the replacement never arrived: the earlier output is back
        removed.append(old)
    return removed


@contextlib.contextmanager
def _disk_errors(target: Path) -> Iterator[None]:
    """Report a full disk, a read-only file system or a refused permission as one line."""
    try:
        yield
    except OSError as err:
        if isinstance(err, SeldingerError) or err.errno not in _DISK_ERRNOS:
            raise
        raise SeldingerIOError(
            f"could not write {target}: {err.strerror or err}. Free space or choose another "
            "folder; nothing was written."
        ) from err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    The temporary file keeps ``path``'s suffixes (so writers that dispatch on
    ``.nii.gz`` still work). On any exception it is removed and ``path`` is left
    as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> out.read_text()
    'whole'
    """
    target = Path(path)
    check_overwrite(target, force)
    with _disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target)
        suffix = "".join(target.suffixes)
        fd, name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=f".part{suffix}", dir=target.parent
        )
        os.close(fd)
    tmp = Path(name)
    try:
        with _disk_errors(target):
            yield tmp
            os.chmod(tmp, _umask_mode(0o666))
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; rename it to ``path`` on success.

    With ``force`` an existing ``path`` is replaced only after the new one is
    complete. On any exception the temporary directory is removed.
    """
    target = Path(path)
    check_overwrite(target, force)
    with _disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target)
        tmp = Path(
            tempfile.mkdtemp(
                prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent
            )
        )
    try:
        yield tmp
        with _disk_errors(target):
            os.chmod(tmp, _umask_mode(0o777))
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class StagedOutputs:
    """Outputs written aside and committed together (see :func:`staged_outputs`).

    :meth:`path` hands out a temporary path beside each final one (same folder, same
    suffixes, so writers that dispatch on ``.nii.gz`` work); :meth:`remove` marks a stale
    output to delete on commit. Nothing appears at the final paths until :meth:`commit`.
    """

    def __init__(self, force: bool = False) -> None:
        self.force = force
        self._staged: list[tuple[Path, Path]] = []  # (temporary, final), in claim order
        self._removals: list[Path] = []
        self._made_dirs: list[Path] = []
        self._scratch: list[Path] = []

    def path(self, final: str | os.PathLike[str], *, replace: bool | None = None) -> Path:
        """A temporary path to write ``final``'s content to; moved onto ``final`` at commit.

        Parameters
        ----------
        final : str or PathLike
            Where the output belongs.
        replace : bool, optional
            Whether an existing ``final`` may be replaced (default: ``force``).
        """
        target = Path(final)
        check_overwrite(target, self.force if replace is None else replace)
        self._make_parent(target.parent)
        remove_leftovers(target)
        fd, name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.",
            suffix=f".part{''.join(target.suffixes)}",
            dir=target.parent,
        )
        os.close(fd)
        staged = Path(name)
        self._staged.append((staged, target))
        return staged

    def scratch(self, near: str | os.PathLike[str]) -> Path:
        """A temporary folder inside ``near`` (created if needed) for writers that name their
        own files; hand each file over with :meth:`adopt`. Removed at commit or discard."""
        folder = Path(near)
        self._make_parent(folder)
        remove_leftovers(folder / "seldinger")
        scratch = Path(
            tempfile.mkdtemp(prefix=f".seldinger.{os.getpid()}.", suffix=".part", dir=folder)
        )
        self._scratch.append(scratch)
        return scratch

    def adopt(self, written: str | os.PathLike[str], final: str | os.PathLike[str]) -> Path:
        """Move ``written`` (a file in a :meth:`scratch` folder) onto ``final`` at commit."""
        target = Path(final)
        check_overwrite(target, self.force)
        self._make_parent(target.parent)
        self._staged.append((Path(written), target))
        return target

    def remove(self, final: str | os.PathLike[str]) -> None:
        """Delete ``final`` (if it exists) at commit: a stale output of an earlier run."""
        self._removals.append(Path(final))

    def commit(self) -> list[Path]:
        """Move every staged file onto its final path; return the final paths."""
        done = []
        for staged, final in self._staged:
            os.chmod(staged, _umask_mode(0o666))
            os.replace(staged, final)
            done.append(final)
        finals = set(done)
        for stale in self._removals:
            if stale not in finals:
                stale.unlink(missing_ok=True)
        self._staged.clear()
        self._drop_scratch()
        return done

    def discard(self) -> None:
        """Delete every staged file and the folders made for them (nothing else)."""
        for staged, _ in self._staged:
            staged.unlink(missing_ok=True)
        self._staged.clear()
        self._drop_scratch()
        for folder in reversed(self._made_dirs):
            with contextlib.suppress(OSError):  # not empty: something else lives there
                folder.rmdir()

    def _drop_scratch(self) -> None:
        for folder in self._scratch:
            shutil.rmtree(folder, ignore_errors=True)
        self._scratch.clear()

    def _make_parent(self, folder: Path) -> None:
        missing = []
        probe = folder.absolute()
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        folder.mkdir(parents=True, exist_ok=True)
        self._made_dirs.extend(reversed(missing))


@contextlib.contextmanager
def staged_outputs(force: bool = False) -> Iterator[StagedOutputs]:
    """Write several outputs aside; commit them all on success, none on error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with staged_outputs() as stage:
    ...     _ = stage.path(folder / "plan.json").write_text("{}")
    ...     _ = stage.path(folder / "figures" / "a.png").write_bytes(b"png")
    >>> sorted(p.name for p in folder.rglob("*"))
    ['a.png', 'figures', 'plan.json']
    >>> try:
    ...     with staged_outputs(force=True) as stage:
    ...         _ = stage.path(folder / "plan.json").write_text("half")
    ...         raise RuntimeError("a later step failed")
    ... except RuntimeError:
    ...     pass
    >>> (folder / "plan.json").read_text()
    '{}'
    """
    stage = StagedOutputs(force)
    try:
        yield stage
        stage.commit()
    except BaseException:
        stage.discard()
        raise
