"""Atomic file writes: write a temporary file beside the target, fsync, rename.

A reader never sees a half-written file, and a failed write (disk full, read-only
folder) leaves the previous file untouched. Errors are `OSError`s whose message
names the target file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call `write(fileobj)` on a temp file in the target's folder, then rename it over `path`.

    Like a plain `open(path, "wb")`: a symbolic link is followed (the file it points to is
    replaced, the link stays), an existing file keeps its permission bits, and a new file
    gets 0666 minus the umask. The folder is synced after the rename where the system
    allows it, so the new file survives a power cut."""
    given = Path(path)
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {given}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            _copy_mode(fh.fileno(), target)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _sync_folder(folder)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not str(exc).startswith("cannot write"):
            raise OSError(exc.errno, f"cannot write {given}: {exc.strerror or exc}") from exc
        raise
    return given


def _copy_mode(fd: int, target: Path) -> None:
    """mkstemp makes 0600 files: give the temp file the target's permission bits, or those
    a plain open() would give a new file. Filesystems that refuse chmod (FAT, some network
    shares) keep their own."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_UMASK
    try:
        os.fchmod(fd, mode)
    except (OSError, AttributeError):  # no fchmod on Windows
        pass


def _sync_folder(folder: Path) -> None:
    """fsync the folder so the rename itself is durable; skipped where folders cannot be
    opened (Windows)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# read once at import: os.umask is process-wide, so reading it later could race with
# other threads creating files
_UMASK = _read_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False))
