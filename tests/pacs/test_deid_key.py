"""Where the de-identification key comes from: the environment, else a key file made once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from seldinger.pacs import DEID_KEY_ENV, PacsInputError, default_key_path, load_deid_key


def test_the_environment_variable_wins(tmp_path: Path) -> None:
    env = {
        DEID_KEY_ENV: "  a key from the environment, long enough  ",
        "SELDINGER_CONFIG_DIR": str(tmp_path),
    }
    key, source = load_deid_key(environ=env)
    assert key.secret == b"a key from the environment, long enough"
    assert source == "$SELDINGER_DEID_KEY"
    assert list(tmp_path.iterdir()) == []  # no file made


def test_a_short_variable_names_itself() -> None:
    with pytest.raises(PacsInputError, match=r"^\$SELDINGER_DEID_KEY: .*at least 16 bytes"):
        load_deid_key(environ={DEID_KEY_ENV: "too short"})


def test_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    env = {"SELDINGER_CONFIG_DIR": str(tmp_path / "config")}
    first, source = load_deid_key(environ=env)
    path = tmp_path / "config" / "deid-key"
    assert source == str(path) and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64  # 256 bits in hex
    again, _ = load_deid_key(environ=env)
    assert again == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["deid-key"]  # no temporary left


def test_key_file_location_follows_xdg(tmp_path: Path) -> None:
    assert (
        default_key_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "seldinger" / "deid-key"
    )
    assert (
        default_key_path({"XDG_CONFIG_HOME": "relative/ignored", "HOME": str(tmp_path)}).name
        == "deid-key"
    )
    assert default_key_path({"SELDINGER_CONFIG_DIR": str(tmp_path)}) == tmp_path / "deid-key"


def test_missing_or_damaged_key_file(tmp_path: Path) -> None:
    path = tmp_path / "deid-key"
    with pytest.raises(PacsInputError, match="no de-identification key"):
        load_deid_key(environ={}, path=path, create=False)
    path.write_text("short\n")
    with pytest.raises(PacsInputError, match=f"^{path}: .*at least 16 bytes"):
        load_deid_key(environ={}, path=path)
