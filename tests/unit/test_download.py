"""Downloads against a local HTTP server on 127.0.0.1 that supports Range requests.

The server can cut a response midway (closing the connection), ignore Range headers,
or answer 404, so every failure a user meets on a real network is reproduced offline.
"""

from __future__ import annotations

import errno
import hashlib
import http.server
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from samstudio.inference import download as download_mod
from samstudio.inference.catalog import CatalogEntry
from samstudio.inference.download import DownloadCancelled, download, partial_path
from samstudio.inference.errors import DownloadError

PAYLOAD_SIZE = 3 * (1 << 20) + 12345  # not a multiple of the chunk size


class RangeServer:
    """A tiny file server: `files` maps URL paths to bytes. `cut_after` (one-shot) closes
    the connection after that many body bytes; `ignore_range` answers 200 to Range
    requests; `requests` logs (path, Range header) of every GET."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.ignore_range = False
        self.etags: dict[str, str] = {}  # path -> ETag header sent with the file
        self.last_modified: dict[str, str] = {}  # path -> Last-Modified header
        self.honour_if_range = True  # False: a server that ignores If-Range
        self.requests: list[tuple[str, str | None]] = []
        self.if_ranges: list[str | None] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                owner.requests.append((self.path, rng))
                if_range = self.headers.get("If-Range")
                owner.if_ranges.append(if_range)
                etag = owner.etags.get(self.path)
                modified = owner.last_modified.get(self.path)
                data = owner.files.get(self.path)
                if data is None:
                    body = b"not found"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                stale = (
                    if_range is not None
                    and owner.honour_if_range
                    and if_range not in (etag, modified)
                )
                if m and not owner.ignore_range and not stale:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                if etag is not None:
                    self.send_header("ETag", etag)
                if modified is not None:
                    self.send_header("Last-Modified", modified)
                self.end_headers()
                cut, owner.cut_after = owner.cut_after, None
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                try:
                    self.wfile.write(body)
                except ConnectionError:  # the client hung up (it is restarting)
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[RangeServer]:
    srv = RangeServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return bytes(range(256)) * (PAYLOAD_SIZE // 256) + b"\x07" * (PAYLOAD_SIZE % 256)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_normal_download_reports_progress_and_lands_verified(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/model.pth"] = payload
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "models" / "model.pth"
    out = download(
        server.url("/model.pth"),
        dest,
        sha256=sha(payload),
        size=len(payload),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert out == dest
    assert dest.read_bytes() == payload
    assert not partial_path(dest).exists()
    assert seen[0] == (0, len(payload))
    assert seen[-1] == (len(payload), len(payload))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert server.requests == [("/model.pth", None)]


def test_catalog_entry_supplies_url_size_and_checksum(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/e.pth"] = payload
    entry = CatalogEntry(
        "test", "vit_b", server.url("/e.pth"), "e.pth", len(payload), sha(payload), "", "MIT"
    )
    dest = download(entry, tmp_path / "e.pth")
    assert dest.read_bytes() == payload
    # Already present and verified: returned without asking the server again.
    download(entry, tmp_path / "e.pth")
    assert len(server.requests) == 1


def test_interrupted_download_resumes_with_range(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    server.cut_after = 1_000_000
    with pytest.raises(DownloadError, match="connection was (lost|closed)"):
        download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    part = partial_path(dest)
    assert not dest.exists(), "nothing half-downloaded may be at the final path"
    kept = part.stat().st_size
    assert 0 < kept <= 1_000_000
    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert dest.read_bytes() == payload
    assert server.requests[-1] == ("/m.pth", f"bytes={kept}-")
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    server.cut_after = 700_000
    with pytest.raises(DownloadError):
        download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert partial_path(dest).stat().st_size > 0
    server.ignore_range = True
    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert server.requests[-1][1] is not None  # we asked for a range, got the whole file
    assert dest.read_bytes() == payload  # not the old prefix followed by the whole file


def test_wrong_checksum_deletes_the_partial_file(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    wrong = "ab" * 32
    with pytest.raises(DownloadError) as err:
        download(server.url("/m.pth"), dest, sha256=wrong, size=len(payload))
    msg = str(err.value)
    assert "m.pth" in msg and wrong in msg and sha(payload) in msg
    assert not dest.exists() and not partial_path(dest).exists()


def test_404_names_the_url_and_status(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:
        download(server.url("/missing.pth"), tmp_path / "x.pth", sha256="0" * 64)
    assert "404" in str(err.value) and server.url("/missing.pth") in str(err.value)
    assert not (tmp_path / "x.pth").exists()


def test_unreachable_server_is_a_download_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/m.pth", tmp_path / "m.pth", sha256="0" * 64)


def test_cancel_keeps_the_partial_file_and_resume_finishes(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    cancel = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= 3 * 65536:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download(
            server.url("/m.pth"),
            dest,
            sha256=sha(payload),
            size=len(payload),
            progress=progress,
            cancel=cancel,
            chunk_size=65536,
        )
    kept = partial_path(dest).stat().st_size
    assert kept == 3 * 65536
    assert not dest.exists()
    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert dest.read_bytes() == payload
    assert server.requests[-1][1] == f"bytes={kept}-"


def test_disk_full_is_reported_with_the_place(
    server: RangeServer, payload: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    real_open = open

    class FullDisk:
        def __init__(self, fh: Any) -> None:
            self.fh, self.written = fh, 0

        def write(self, data: bytes) -> int:
            if self.written + len(data) > 1_500_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return int(self.fh.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    monkeypatch.setattr(
        download_mod, "open", lambda p, mode="r": FullDisk(real_open(p, mode)), raising=False
    )
    with pytest.raises(DownloadError) as err:
        download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert "disk is full" in str(err.value) and str(partial_path(dest)) in str(err.value)
    assert not dest.exists()
    monkeypatch.undo()
    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert dest.read_bytes() == payload


def test_refuses_to_download_without_a_checksum_unless_allowed(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    with pytest.raises(DownloadError, match="allow_unverified"):
        download(server.url("/m.pth"), tmp_path / "m.pth")
    assert server.requests == []
    out = download(server.url("/m.pth"), tmp_path / "m.pth", allow_unverified=True)
    assert out.read_bytes() == payload


def test_stale_partial_longer_than_the_file_is_discarded(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    partial_path(dest).write_bytes(b"x" * (len(payload) + 10))
    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert dest.read_bytes() == payload
    assert server.requests == [("/m.pth", None)]


def test_corrupt_partial_prefix_is_caught_by_the_checksum(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    partial_path(dest).write_bytes(b"\xff" * 1000)  # garbage an earlier run left behind
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert not partial_path(dest).exists() and not dest.exists()
    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert dest.read_bytes() == payload


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the download lock uses POSIX flock")
def test_a_second_download_of_the_same_file_is_refused_while_one_runs(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    second: list[BaseException] = []

    def progress(done: int, total: int | None) -> None:
        if done and not second:
            try:
                download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
            except DownloadError as exc:
                second.append(exc)

    download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload), progress=progress)
    assert len(second) == 1 and "already running" in str(second[0])
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


def test_a_file_that_fails_its_checksum_is_never_used_again(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    """A damaged model file at the destination is removed when a download starts, so a
    failed or cancelled download cannot leave it in place for the app to load."""
    dest = tmp_path / "m.pth"
    dest.write_bytes(b"\0" * len(payload))  # right size, wrong content
    with pytest.raises(DownloadError, match="404"):
        download(server.url("/missing.pth"), dest, sha256=sha(payload), size=len(payload))
    assert not dest.exists()
    server.files["/m.pth"] = payload
    assert download(server.url("/m.pth"), dest, sha256=sha(payload)).read_bytes() == payload


def test_the_lock_of_a_finished_download_admits_one_next_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B opens the lock file while A holds it, A finishes (and removes the file), then B
    locks the removed file: B must not count that as the lock, or B and a third download
    C would both write the same partial file."""
    import fcntl

    dest = tmp_path / "m.pth"
    a = download_mod._exclusive(dest)
    a.__enter__()
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock_after_a_finishes(fd: int, op: int) -> None:
        if not calls:
            a.__exit__(None, None, None)
        calls.append(fd)
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_finishes)
    b = download_mod._exclusive(dest)
    b.__enter__()
    monkeypatch.setattr(fcntl, "flock", real_flock)
    try:
        assert len(calls) == 2  # B saw its first lock was on a removed file and retried
        with pytest.raises(DownloadError, match="already running"):
            with download_mod._exclusive(dest):
                pass
    finally:
        b.__exit__(None, None, None)
    with download_mod._exclusive(dest):  # free again once B is done
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verified", [True, False], ids=["sha256", "allow_unverified"])
@pytest.mark.parametrize(
    "validators",
    ["none", "etag", "last_modified", "etag_if_range_ignored"],
)
def test_a_file_changed_on_the_server_between_attempts_is_fetched_anew(
    server: RangeServer, payload: bytes, tmp_path: Path, verified: bool, validators: str
) -> None:
    """The partial file came from the old version: resuming must not append the new
    version's tail to the old prefix (with a checksum that would fail and throw the
    download away; without one the mixed file would be used)."""
    old = payload
    new = bytes(reversed(payload)) + b"new version" * 1000  # another total size
    if validators != "none":
        new = new[: len(old)]  # same size: only the validator tells them apart
    server.files["/m.pth"] = old
    if validators.startswith("etag"):
        server.etags["/m.pth"] = '"v1"'
    if validators == "last_modified":
        server.last_modified["/m.pth"] = "Mon, 01 Jan 2024 00:00:00 GMT"
    server.honour_if_range = validators != "etag_if_range_ignored"
    dest = tmp_path / "m.pth"
    checks: dict[str, Any] = {"allow_unverified": True}
    server.cut_after = 1_000_000
    with pytest.raises(DownloadError, match="connection was (lost|closed)"):
        download(server.url("/m.pth"), dest, **checks)
    kept = partial_path(dest).stat().st_size
    assert 0 < kept <= 1_000_000

    server.files["/m.pth"] = new
    if validators.startswith("etag"):
        server.etags["/m.pth"] = '"v2"'
    if validators == "last_modified":
        server.last_modified["/m.pth"] = "Tue, 02 Jan 2024 00:00:00 GMT"
    if verified:
        checks = {"sha256": sha(new)}
    out = download(server.url("/m.pth"), dest, **checks)
    assert out.read_bytes() == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]
    assert server.requests[1] == ("/m.pth", f"bytes={kept}-")  # it did try to resume
    if validators.startswith("etag"):
        assert server.if_ranges[1] == '"v1"'
    elif validators == "last_modified":
        assert server.if_ranges[1] == "Mon, 01 Jan 2024 00:00:00 GMT"


@pytest.mark.parametrize("validators", ["none", "etag", "last_modified"])
def test_an_unchanged_file_still_resumes_with_its_validator(
    server: RangeServer, payload: bytes, tmp_path: Path, validators: str
) -> None:
    server.files["/m.pth"] = payload
    if validators == "etag":
        server.etags["/m.pth"] = '"v1"'
    if validators == "last_modified":
        server.last_modified["/m.pth"] = "Mon, 01 Jan 2024 00:00:00 GMT"
    dest = tmp_path / "m.pth"
    server.cut_after = 1_000_000
    with pytest.raises(DownloadError):
        download(server.url("/m.pth"), dest, allow_unverified=True)
    kept = partial_path(dest).stat().st_size
    out = download(server.url("/m.pth"), dest, allow_unverified=True)
    assert out.read_bytes() == payload
    assert server.requests == [("/m.pth", None), ("/m.pth", f"bytes={kept}-")]
    assert (
        server.if_ranges[1]
        == {
            "none": None,
            "etag": '"v1"',
            "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
        }[validators]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


def test_a_partial_file_without_a_record_of_its_origin_is_restarted_when_unverifiable(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    """A `.part` left by an older version (no sidecar): with no expected size to compare
    the server's total with, nothing says it belongs to this file, so start over."""
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    partial_path(dest).write_bytes(b"\xff" * 1000)
    out = download(server.url("/m.pth"), dest, allow_unverified=True)
    assert out.read_bytes() == payload
    assert server.requests == [("/m.pth", None)]


def test_a_partial_file_without_a_record_resumes_when_the_size_matches(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    partial_path(dest).write_bytes(payload[:5000])
    out = download(server.url("/m.pth"), dest, sha256=sha(payload), size=len(payload))
    assert out.read_bytes() == payload
    assert server.requests == [("/m.pth", "bytes=5000-")]


def test_a_partial_file_without_a_record_restarts_when_the_size_differs(
    server: RangeServer, payload: bytes, tmp_path: Path
) -> None:
    """The server's total is not the expected size: the old prefix is not appended to,
    and the size mismatch of the full file is reported."""
    server.files["/m.pth"] = payload
    dest = tmp_path / "m.pth"
    partial_path(dest).write_bytes(payload[:5000])
    with pytest.raises(DownloadError, match="expected"):
        download(server.url("/m.pth"), dest, allow_unverified=True, size=len(payload) + 1)
    assert server.requests[0] == ("/m.pth", "bytes=5000-")
    assert server.requests[-1] == ("/m.pth", None)
