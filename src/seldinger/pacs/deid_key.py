"""Where the de-identification key comes from: ``SELDINGER_DEID_KEY``, else a key file.

The key file is made once, with 256 random bits, readable by its owner only, at
``$SELDINGER_CONFIG_DIR/deid-key``, else ``$XDG_CONFIG_HOME/seldinger/deid-key``, else
``~/.config/seldinger/deid-key``. It lives in the *config* folder, not the cache: deleting
it means later pushes no longer land in the de-identified studies of earlier ones.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from seldinger.errors import SeldingerIOError

from .deid import DeidKey
from .errors import PacsInputError

__all__ = ["DEID_KEY_ENV", "default_key_path", "load_deid_key"]

#: Environment variable that holds the key itself (at least 16 characters).
DEID_KEY_ENV = "SELDINGER_DEID_KEY"
_KEY_FILE_NAME = "deid-key"
_NEW_KEY_BYTES = 32


def default_key_path(environ: Mapping[str, str] | None = None) -> Path:
    """The key file's path (not created here); see the module notes for the order."""
    env = os.environ if environ is None else environ
    explicit = env.get("SELDINGER_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser() / _KEY_FILE_NAME
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg and Path(xdg).is_absolute():  # XDG spec: ignore relative paths
        return Path(xdg) / "seldinger" / _KEY_FILE_NAME
    return Path.home() / ".config" / "seldinger" / _KEY_FILE_NAME


def load_deid_key(
    *, environ: Mapping[str, str] | None = None, path: Path | None = None, create: bool = True
) -> tuple[DeidKey, str]:
    """The de-identification key and where it came from.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read ``SELDINGER_DEID_KEY`` and the config folders from
        (default ``os.environ``).
    path : Path, optional
        Key file to use instead of :func:`default_key_path`.
    create : bool
        Make the key file (random, mode 0600) when it does not exist.

    Returns
    -------
    key : DeidKey
    source : str
        ``"$SELDINGER_DEID_KEY"`` or the key file's path.

    Raises
    ------
    PacsInputError
        If the variable or file holds fewer than 16 characters, or the file is missing
        and ``create`` is false.
    SeldingerIOError
        If the key file cannot be read or made.
    """
    env = os.environ if environ is None else environ
    text = env.get(DEID_KEY_ENV)
    if text:
        try:
            return DeidKey.from_text(text), f"${DEID_KEY_ENV}"
        except PacsInputError as err:
            raise PacsInputError(f"${DEID_KEY_ENV}: {err}") from err
    key_path = default_key_path(env) if path is None else path
    if not key_path.exists():
        if not create:
            raise PacsInputError(
                f"no de-identification key: ${DEID_KEY_ENV} is unset and {key_path} does not "
                f"exist. Set ${DEID_KEY_ENV} or let Seldinger create the file."
            )
        _create_key_file(key_path)
    try:
        text = key_path.read_text(encoding="utf-8")
    except OSError as err:
        raise SeldingerIOError(
            f"cannot read the de-identification key {key_path}: {err.strerror}. Fix its "
            f"permissions or set ${DEID_KEY_ENV}."
        ) from err
    try:
        return DeidKey.from_text(text), str(key_path)
    except PacsInputError as err:
        raise PacsInputError(f"{key_path}: {err}") from err


def _create_key_file(key_path: Path) -> None:
    """Write a random key to a temporary file, then hard-link it into place.

    The link is atomic and fails if the file exists: when two processes race, one key
    wins whole and both read it (never a half-written file).
    """
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{key_path.name}.", dir=key_path.parent)  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(_NEW_KEY_BYTES) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(name, key_path)
        finally:
            os.unlink(name)
    except OSError as err:
        raise SeldingerIOError(
            f"cannot create the de-identification key {key_path}: {err.strerror}. Set "
            f"${DEID_KEY_ENV} or SELDINGER_CONFIG_DIR to a writable folder."
        ) from err
