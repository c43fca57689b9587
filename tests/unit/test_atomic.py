"""Atomic writes: all or nothing, ordinary permissions, errors that name the file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from samstudio.core import atomic
from samstudio.core.atomic import atomic_write, atomic_write_json, atomic_write_text


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text() == '{"a": 2}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_permissions_follow_the_umask_like_open(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert (target.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def fail(fh: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="keep.txt"):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_missing_folder_names_the_target(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="nowhere"):
        atomic_write_text(tmp_path / "nowhere" / "x.txt", "x")


def test_umask_is_read_once_at_import() -> None:
    assert atomic._UMASK == os.umask(atomic._UMASK)


def test_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    private = tmp_path / "settings.json"
    private.write_text("{}")
    private.chmod(0o600)
    atomic_write_json(private, {"a": 1})
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_text() == '{"a": 1}'


def test_a_symlink_is_followed_like_open_does(tmp_path: Path) -> None:
    """The file the link points to gets the new content; the link stays a link (a
    settings file kept in a dotfiles folder keeps working)."""
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "settings.json"
    link.symlink_to(real)
    assert atomic_write_json(link, {"b": 2}) == link
    assert link.is_symlink() and real.read_text() == '{"b": 2}'
    assert sorted(p.name for p in real.parent.iterdir()) == ["settings.json"]
