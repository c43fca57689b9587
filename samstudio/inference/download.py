"""Resumable, verified downloads (standard library only: urllib).

`download` writes to `DEST.part`, resumes a partial file with an HTTP Range request
(and starts over cleanly when the server ignores Range), checks the size and SHA-256,
and only then renames the file into place. Beside the partial file, `DEST.part.json`
remembers where it came from (URL, total size, ETag / Last-Modified of the first
response): a resume sends `If-Range` and appends only when the server confirms it is
still the same file, else the download starts over, so that a file changed on the
server is never spliced onto the old one's prefix. Nothing half-downloaded is ever at DEST.
The same function serves the CLI (a tqdm bar through `progress`) and the GUI
(`progress` callback from a worker thread, `cancel` event from the Cancel button).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from samstudio.inference.catalog import CatalogEntry
from samstudio.inference.errors import DownloadError

ProgressCallback = Callable[[int, "int | None"], None]
"""progress(bytes_done, bytes_total_or_None), called after every chunk (and once at start)."""

USER_AGENT = "samstudio-model-download/1"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadCancelled(DownloadError):
    """The download was cancelled; the partial file is kept so that it can resume."""


def partial_path(dest: Path) -> Path:
    """The file a download of `dest` writes to until it is verified: DEST.part."""
    return dest.with_name(dest.name + ".part")


@dataclass(frozen=True)
class _Origin:
    """What the response that started DEST.part said about the file."""

    url: str
    total: int | None
    etag: str | None
    last_modified: str | None

    @property
    def if_range(self) -> str | None:
        """The validator to send as If-Range: a strong ETag, else Last-Modified (a weak
        ETag is not allowed in If-Range)."""
        if self.etag is not None and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def _sidecar(part: Path) -> Path:
    """The record of where DEST.part came from: DEST.part.json."""
    return part.with_name(part.name + ".json")


def _read_origin(part: Path) -> _Origin | None:
    """The sidecar's record, or None when there is none or it cannot be read."""
    try:
        raw = json.loads(_sidecar(part).read_bytes())
        origin = _Origin(
            url=raw["url"],
            total=raw["total"],
            etag=raw["etag"],
            last_modified=raw["last_modified"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = (
        isinstance(origin.url, str)
        and (origin.total is None or (isinstance(origin.total, int) and origin.total >= 0))
        and (origin.etag is None or isinstance(origin.etag, str))
        and (origin.last_modified is None or isinstance(origin.last_modified, str))
    )
    return origin if ok else None


def _write_origin(part: Path, origin: _Origin) -> None:
    """Write the sidecar atomically (temporary file, fsync, rename)."""
    sidecar = _sidecar(part)
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    data = json.dumps(asdict(origin)).encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, sidecar)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno == errno.ENOSPC:
            raise _disk_full(exc, sidecar) from exc
        raise DownloadError(f"cannot write {sidecar}: {exc}") from exc


def _discard(part: Path) -> None:
    """Delete the partial file and its sidecar."""
    part.unlink(missing_ok=True)
    _sidecar(part).unlink(missing_ok=True)


def _resumable(
    origin: _Origin | None, url: str, offset: int, size: int | None, expected: str | None
) -> bool:
    """Whether a partial file of `offset` bytes may be resumed at all (the server's answer
    is checked again by `_same_file`)."""
    if origin is None:
        # A part file from an older version, without a sidecar: only the expected size
        # can tell whether the server still has the file it came from.
        return size is not None and (offset < size or expected is not None)
    if origin.url != url:
        return False
    if size is not None and origin.total is not None and origin.total != size:
        return False
    return origin.total is not None or origin.etag is not None or origin.last_modified is not None


def _same_file(
    response: http.client.HTTPResponse, origin: _Origin | None, size: int | None
) -> bool:
    """Whether a 206 answer to a resume comes from the file the partial file came from."""
    m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    total = int(m.group(3)) if m is not None and m.group(3) != "*" else None
    if origin is None:
        return total is not None and total == size
    if origin.total is not None and total != origin.total:
        return False
    if origin.etag is not None:
        return response.headers.get("ETag") == origin.etag
    if origin.last_modified is not None:
        return response.headers.get("Last-Modified") == origin.last_modified
    return True


def _hash_file(path: Path, h: hashlib._Hash, chunk_size: int) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)


def _disk_full(exc: OSError, where: Path) -> DownloadError:
    return DownloadError(
        f"the disk is full: cannot write {where} ({exc.strerror or exc}); free some space "
        "and run the download again to resume"
    )


def _open(
    url: str, offset: int, timeout: float, if_range: str | None = None
) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if if_range is not None:
            headers["If-Range"] = if_range
    request = urllib.request.Request(url, headers=headers)
    response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
    return response  # type: ignore[no-any-return]


def download(
    source: CatalogEntry | str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
    allow_unverified: bool = False,
) -> Path:
    """Download `source` (a catalog entry or a URL) to `dest` and return `dest`.

    sha256 / size: expected lowercase hex digest and byte count; for a catalog entry they
    default to the entry's values. Without a checksum the download refuses to start unless
    `allow_unverified=True`. If `dest` already exists with the right checksum it is
    returned at once. A partial `dest.part` from an earlier attempt is resumed.

    Raises DownloadError (message names the URL or file and the problem) on HTTP errors,
    network errors, a size or checksum mismatch (the partial file is then deleted) or a full
    disk; DownloadCancelled when `cancel` is set (the partial file is kept for resume).
    """
    if isinstance(source, CatalogEntry):
        if source.url is None:
            raise DownloadError(f"model '{source.name}' is shipped, not downloadable")
        url = source.url
        sha256 = sha256 if sha256 is not None else source.sha256
        size = size if size is not None else source.size
    else:
        url = source
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http:// and https:// URLs can be downloaded")
    if sha256 is None and not allow_unverified:
        raise DownloadError(
            f"{url}: no SHA-256 is known for this file, so it cannot be verified; pass "
            "allow_unverified=True (CLI: --allow-unverified) to download it anyway"
        )
    expected = sha256.lower() if sha256 else None
    target = Path(dest)
    part = partial_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _disk_full(exc, target.parent) from exc
        raise DownloadError(f"cannot create {target.parent}: {exc}") from exc

    checked = _check_existing(target, expected, chunk_size)
    if checked is True:
        return _done(target, progress)

    with _exclusive(target):
        if target.is_file() and expected is not None:
            # another process may have finished it while we waited; a file that fails its
            # checksum is removed, so that nothing uses it if this download fails too
            again = (
                checked
                if checked == _stamp(target)
                else _check_existing(target, expected, chunk_size)
            )
            if again is True:
                return _done(target, progress)
            target.unlink(missing_ok=True)
        return _fetch(url, part, target, expected, size, progress, cancel, chunk_size, timeout)


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _check_existing(
    target: Path, expected: str | None, chunk_size: int
) -> bool | tuple[int, int, int] | None:
    """True when `target` exists with the expected SHA-256; the file's stamp (inode,
    size, mtime) when it exists with another; None when there is nothing to check."""
    if expected is None or not target.is_file():
        return None
    stamp = _stamp(target)
    h = hashlib.sha256()
    _hash_file(target, h, chunk_size)
    return True if h.hexdigest() == expected else stamp


def _done(target: Path, progress: ProgressCallback | None) -> Path:
    if progress is not None:
        n = target.stat().st_size
        progress(n, n)
    return target


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold an advisory lock on `target`'s download (POSIX flock on DEST.lock), so that two
    processes never append to the same partial file. Where flock is unavailable (Windows)
    this is a no-op."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock = target.with_name(target.name + ".lock")
    busy = DownloadError(f"{target}: another download of this file is already running")
    for _attempt in range(3):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, lock) from exc
            raise DownloadError(f"cannot create {lock}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy from None
        # The holder before us deletes the lock file when it is done: if the file we
        # locked is no longer the one at `lock`, our lock guards nothing; try again.
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            continue
        try:
            yield
        finally:
            try:
                os.unlink(lock)  # still ours: nobody else can hold it now
            except OSError:
                pass
            os.close(fd)
        return
    raise busy


def _fetch(
    url: str,
    part: Path,
    target: Path,
    expected: str | None,
    size: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    chunk_size: int,
    timeout: float,
) -> Path:
    """Resume or start the transfer into `part`, then verify and move it to `target`."""
    restarted = False
    while True:
        offset = part.stat().st_size if part.is_file() else 0
        origin = _read_origin(part) if offset else None
        if offset and not _resumable(origin, url, offset, size, expected):
            _discard(part)  # nothing says it is a prefix of the file the server has now
            offset, origin = 0, None
        if size is not None and offset > size:
            _discard(part)
            offset, origin = 0, None
        if size is not None and offset == size:
            if progress is not None:
                progress(offset, size)
            break  # complete from an earlier attempt: only verification is left
        try:
            response = _open(url, offset, timeout, origin.if_range if origin else None)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset and not restarted:
                # Our partial file does not fit the server's: start over once.
                _discard(part)
                restarted = True
                continue
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"{url}: cannot connect ({reason})") from exc
        with response:
            if offset and response.status == 206 and not _same_file(response, origin, size):
                # The file changed on the server since the partial file was started (or
                # nothing proves it did not): never append to the old prefix.
                _discard(part)
                restarted = True
                continue
            _receive(response, url, part, offset, size, progress, cancel, chunk_size)
        break

    return _verify_and_move(part, target, url, expected, size, chunk_size)


def _receive(
    response: http.client.HTTPResponse,
    url: str,
    part: Path,
    offset: int,
    size: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    chunk_size: int,
) -> None:
    """Stream the response body into `part`, appending at `offset` when the server
    honoured our Range request, else from the start."""
    status = response.status
    if offset and status == 206:
        m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if m is None or int(m.group(1)) != offset:
            raise DownloadError(
                f"{url}: the server resumed at the wrong place "
                f"(Content-Range {response.headers.get('Content-Range')!r}, wanted {offset})"
            )
        mode = "ab"
    else:
        offset = 0  # 200: the server ignored Range (or we asked for none): start over
        mode = "wb"
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length is not None and length.isdigit() else size
    if size is not None and total is not None and total != size:
        raise DownloadError(f"{url}: the server sends {total} bytes but {size} were expected")

    done = offset
    if progress is not None:
        progress(done, total)
    if mode == "wb":
        _sidecar(part).unlink(missing_ok=True)  # the old record no longer describes part
    fh: IO[bytes]
    try:
        fh = open(part, mode)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _disk_full(exc, part) from exc
        raise DownloadError(f"cannot write {part}: {exc}") from exc
    if mode == "wb":
        try:
            _write_origin(
                part,
                _Origin(
                    url=url,
                    total=total if length is not None and length.isdigit() else None,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                ),
            )
        except BaseException:
            fh.close()
            raise
    with fh:
        while True:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(
                    f"download of {url} cancelled after {done} bytes; the partial file "
                    f"{part} is kept and the next download resumes it"
                )
            try:
                chunk = response.read(chunk_size)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"{url}: the connection was lost after {done} of "
                    f"{total if total is not None else '?'} bytes ({exc!r}); run the "
                    f"download again to resume from {part}"
                ) from exc
            if not chunk:
                break
            try:
                fh.write(chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise _disk_full(exc, part) from exc
                raise DownloadError(f"cannot write {part}: {exc}") from exc
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        try:
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, part) from exc
            raise DownloadError(f"cannot write {part}: {exc}") from exc
    if total is not None and done < total:
        raise DownloadError(
            f"{url}: the connection was closed after {done} of {total} bytes; run the "
            f"download again to resume from {part}"
        )


def _verify_and_move(
    part: Path, target: Path, url: str, expected: str | None, size: int | None, chunk_size: int
) -> Path:
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        _discard(part)
        raise DownloadError(
            f"{target.name}: downloaded {actual_size} bytes from {url} but {size} were "
            "expected; the partial file was deleted"
        )
    if expected is not None:
        h = hashlib.sha256()
        _hash_file(part, h, chunk_size)
        actual = h.hexdigest()
        if actual != expected:
            _discard(part)
            raise DownloadError(
                f"{target.name}: checksum mismatch for {url}: expected SHA-256 {expected}, "
                f"got {actual}; the downloaded file was deleted"
            )
    os.replace(part, target)
    _sidecar(part).unlink(missing_ok=True)
    return target
