"""The crash-safe SQLite store under a project: opening, locking, checking, transactions.

- SQLite through the standard library, WAL journal, `synchronous=FULL`: a transaction
  is durable once `transaction()` returns, and a process killed at any moment (SIGKILL,
  power loss) leaves the file holding every committed transaction and no part of an
  uncommitted one.
- One writer per project: a writable open takes an exclusive OS lock (flock / msvcrt) on
  `<project file>.lock`. The OS drops it when the process dies, so a crash never leaves a
  stale lock. A second writable open gets `ProjectLockedError`; read-only opens take no
  lock and can run beside the writer (WAL readers see the last committed state).
- `PRAGMA integrity_check` on open (`check="quick"` runs `quick_check`). A failing check
  raises `CorruptProjectError` for writable opens; a read-only open goes on and records
  the problems in `Store.problems`, so what can still be read can be exported.
- Schema version in `PRAGMA user_version`, forward migrations in `schema.py`. A
  read-only open of an older file migrates an in-memory copy and leaves the file alone.
- A read-only open of a project whose folder cannot be written, with a `-wal` left by
  a crash (changes committed but not yet checkpointed into the main file) and no
  `-shm` index, reads a private copy of the file and its WAL into memory (SQLite cannot
  build the index beside them; the copy is deleted at once), so those changes are seen; when no copy can be made, it reads
  the main file alone and says in `Store.problems` that recent changes may be missing.

Every error is a `ProjectError` whose message names the project file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

from samstudio.core import schema

Check = Literal["full", "quick", "none"]


class ProjectError(Exception):
    """A problem with a project file; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")


class ReadOnlyProjectError(ProjectError):
    """The project is open read-only, or its file or folder cannot be written."""


class ProjectLockedError(ProjectError):
    """Another SAM Studio process has the project open for writing."""


class CorruptProjectError(ProjectError):
    """The file is not a SAM Studio project, or SQLite found it damaged."""


class ProjectFullError(ProjectError):
    """The disk is full (or the file reached its size limit); the change was not saved."""


class ProjectVersionError(ProjectError):
    """The file was written by a newer SAM Studio, with a schema this one does not know."""


_SQLITE_HEADER = b"SQLite format 3\x00"


def translate_error(path: Path, exc: sqlite3.Error, doing: str) -> ProjectError:
    """Map a sqlite3 error to the ProjectError a user can act on."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name == "SQLITE_FULL" or "disk is full" in text:
        return ProjectFullError(
            path,
            f"{doing} failed: the disk is full; nothing was saved, the last saved state is intact",
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return ReadOnlyProjectError(
            path, f"{doing} failed: the project file cannot be written ({text})"
        )
    if (
        name in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        or "malformed" in text
        or "not a database" in text
        or "could not decode" in text.lower()  # a TEXT cell that is not UTF-8
    ):
        return CorruptProjectError(
            path,
            f"{doing} failed: the project file is damaged ({text}); open it read-only and export what can be read",
        )
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in text:
        return ProjectLockedError(
            path, f"{doing} failed: the project file is busy in another process ({text})"
        )
    if name.startswith("SQLITE_IOERR") or name == "SQLITE_CANTOPEN":
        return ProjectError(path, f"{doing} failed: input/output error ({text})")
    return ProjectError(path, f"{doing} failed: {text}")


class _FileLock:
    """An exclusive, non-blocking OS lock on a side file; released when the process dies."""

    def __init__(self, path: Path, project: Path) -> None:
        self.path = path
        try:
            self._fh: IO[str] | None = open(path, "a+", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ReadOnlyProjectError(
                project,
                f"cannot open for writing: the folder is not writable ({exc.strerror}); "
                "open it read-only instead",
            ) from exc
        try:
            self._lock()
        except OSError as exc:
            holder = ""
            try:
                self._fh.seek(0)
                holder = self._fh.read().strip()
            except OSError:
                pass
            self._fh.close()
            self._fh = None
            who = f" (process {holder})" if holder else ""
            raise ProjectLockedError(
                project,
                f"the project is already open in another SAM Studio window or process{who}; "
                "close it there, or open this one read-only",
            ) from exc
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(f"{os.getpid()}\n")
            self._fh.flush()
        except OSError:
            pass  # the pid is only a courtesy for the message above

    def _lock(self) -> None:
        assert self._fh is not None
        if sys.platform == "win32":
            import msvcrt

            self._fh.seek(0)
            msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        else:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        """Unlock and close (the side file stays: deleting it would race a new opener)."""
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
        except OSError:
            pass
        self._fh.close()  # closing the descriptor drops flock / msvcrt locks
        self._fh = None


class Store:
    """One open project file.

    Args:
        path: the project file (SQLite).
        read_only: open without a lock and refuse every write.
        create: build the schema when the file does not exist yet.
        check: "full" runs PRAGMA integrity_check on open, "quick" quick_check, "none" skips.
    """

    def __init__(
        self, path: Path, *, read_only: bool = False, create: bool = False, check: Check = "full"
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.problems: list[str] = []
        self._mutex = threading.RLock()
        self._write_depth = 0
        self._lock: _FileLock | None = None
        self._private_copy: Path | None = None  # folder of the copy a read-only open reads
        exists = self.path.exists()
        if not exists and (read_only or not create):
            raise ProjectError(self.path, "no such project file")
        if exists:
            _check_header(self.path)
        if not read_only:
            if exists and not os.access(self.path, os.W_OK):
                raise ReadOnlyProjectError(
                    self.path, "the project file is read-only; open it read-only instead"
                )
            self._lock = _FileLock(self.path.with_name(self.path.name + ".lock"), self.path)
        try:
            self.conn = self._connect()
            self._check(check)
            self._ensure_schema(creating=not exists)
        except UnicodeDecodeError as exc:  # SQLite's message quotes damaged schema bytes
            self.close()
            raise CorruptProjectError(
                self.path,
                f"the project file is damaged (its schema cannot be read: {exc}); "
                "restore it from a backup",
            ) from exc
        except BaseException:
            self.close()
            raise

    # -- opening -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.read_only:
                conn = self._connect_read_only()
            else:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.close()
                    raise ProjectError(self.path, f"cannot switch the journal to WAL (got {mode})")
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 5000")
            return conn
        except sqlite3.Error as exc:
            raise translate_error(self.path, exc, "opening the project") from exc

    def _connect_read_only(self) -> sqlite3.Connection:
        try:
            conn = _open_read_only(self.path, "mode=ro")
        except sqlite3.OperationalError:
            # SQLite cannot create the -shm index of a WAL file in a folder it cannot
            # write (SQLITE_CANTOPEN, "unable to open database file").
            conn = self._connect_without_shared_memory()
        conn.execute("PRAGMA query_only = 1")
        return conn

    def _connect_without_shared_memory(self) -> sqlite3.Connection:
        """Read a project that `mode=ro` cannot open in place.

        Without a WAL, the main file holds every committed transaction and is read as
        it is (`immutable`). A WAL with frames holds transactions committed after the
        last checkpoint (a crash or kill before it): the file and its WAL are copied to
        a private temporary folder, read from there into memory (costs the file's size in
        memory for the session) and the folder is removed at once, so nothing committed
        is hidden (it is a snapshot: commits of a writer still running after the open
        are not seen). When no copy can be made,
        the main file is read alone and `problems` says what may be missing.
        """
        wal = self.path.with_name(self.path.name + "-wal")
        if _has_frames(wal):
            try:
                copy = self._copy_to_private_folder(wal)
                try:
                    return _into_memory(_open_read_only(copy, "mode=ro"))
                finally:  # read into memory: nothing is left behind, even by a crash later
                    self._remove_private_copy()
            except (OSError, sqlite3.Error) as exc:
                if _has_frames(wal):  # else the writer checkpointed it meanwhile
                    self.problems.append(
                        f"{wal}: the changes saved last are in this write-ahead log, which "
                        "cannot be read in place (its folder cannot be written) nor copied "
                        f"to be read ({exc}); what is shown may be missing them: open the "
                        "project where its folder can be written to see them"
                    )
        return _open_read_only(self.path, "immutable=1")

    def _copy_to_private_folder(self, wal: Path) -> Path:
        """Copy the project file and its WAL (not the -shm) into a new private folder."""
        folder = Path(tempfile.mkdtemp(prefix="samstudio-readonly-"))
        self._private_copy = folder
        copy = folder / self.path.name
        try:
            for _ in range(3):  # a writer still running may checkpoint while we copy
                before = (_stamp(self.path), _stamp(wal))
                shutil.copyfile(self.path, copy)
                shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
                if (_stamp(self.path), _stamp(wal)) == before:
                    return copy
            raise OSError("the project file kept changing while it was copied")
        except BaseException:
            self._remove_private_copy()
            raise

    def _remove_private_copy(self) -> None:
        if self._private_copy is not None:
            shutil.rmtree(self._private_copy, ignore_errors=True)
            self._private_copy = None

    def _check(self, check: Check) -> None:
        if check == "none":
            return
        pragma = "integrity_check" if check == "full" else "quick_check"
        try:
            rows = [str(r[0]) for r in self.conn.execute(f"PRAGMA {pragma}(20)").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows == ["ok"]:
            return
        lines = [line.strip() for row in rows for line in row.splitlines()]
        self.problems = [line for line in lines if line and not line.startswith("***")]
        rows = self.problems
        if not self.read_only:
            detail = "; ".join(rows[:3])
            raise CorruptProjectError(
                self.path,
                f"integrity check failed ({detail}); open it read-only to export what can be read",
            )

    def _ensure_schema(self, creating: bool) -> None:
        try:
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            app_id = int(self.conn.execute("PRAGMA application_id").fetchone()[0])
            n_tables = int(self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise translate_error(self.path, exc, "reading the schema version") from exc
        if n_tables == 0 and version == 0:
            if not creating:  # an existing file without tables: truncated, or not ours
                raise CorruptProjectError(
                    self.path,
                    "the project file is empty (truncated?); restore it from a backup, or "
                    "move it away and open the folder to create a new project",
                )
            with self.transaction("creating the project"):
                schema.create(self.conn)
            return
        if app_id != schema.APPLICATION_ID:
            raise CorruptProjectError(self.path, "this SQLite file is not a SAM Studio project")
        if version > schema.SCHEMA_VERSION:
            raise ProjectVersionError(
                self.path,
                f"written by a newer SAM Studio (schema {version}, this one knows up to "
                f"{schema.SCHEMA_VERSION}); update SAM Studio to open it",
            )
        if version < schema.SCHEMA_VERSION:
            if self.read_only:
                self._migrate_in_memory(version)
            else:
                doing = f"migrating the project from schema {version}"
                try:
                    with self.transaction(doing):
                        schema.migrate(self.conn, version)
                except schema.MigrationError as exc:
                    raise self._migration_failed(version, exc) from exc

    def _migrate_in_memory(self, version: int) -> None:
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            self.conn.backup(memory)
        except sqlite3.Error as exc:
            memory.close()
            raise translate_error(self.path, exc, "reading the project to migrate it") from exc
        self.conn.close()
        self.conn = memory
        try:
            memory.execute("BEGIN")
            schema.migrate(memory, version, reading=True)
            memory.execute("COMMIT")
        except (sqlite3.Error, schema.MigrationError) as exc:
            _rollback(memory)
            raise self._migration_failed(version, exc) from exc
        memory.execute("PRAGMA query_only = 1")

    def _migration_failed(self, version: int, exc: Exception) -> ProjectError:
        if isinstance(exc, sqlite3.Error):
            return translate_error(self.path, exc, f"migrating the project from schema {version}")
        return CorruptProjectError(
            self.path,
            f"migrating the project from schema {version} failed: the file is damaged ({exc}); "
            "nothing was changed",
        )

    # -- use ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT); committed when the block exits.

        Inside another `transaction` of the same thread it is a savepoint of that one:
        nothing is committed until the outermost block exits, so several edits made in
        one outer transaction are saved together or not at all.

        Any exception inside rolls everything back. sqlite3 errors become ProjectErrors
        naming the file and `doing` (the user's action, e.g. "adding an annotation").
        """
        if self.read_only:
            raise ReadOnlyProjectError(
                self.path, f"{doing} is not possible: the project is open read-only"
            )
        with self._mutex:
            conn = self._open_conn(doing)
            if self._write_depth:
                yield from self._nested(conn, doing)
                return
            self._write_depth += 1
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise translate_error(self.path, exc, doing) from exc
            except BaseException:
                _rollback(conn)
                raise
            finally:
                self._write_depth -= 1

    def _nested(self, conn: sqlite3.Connection, doing: str) -> Iterator[sqlite3.Connection]:
        """A transaction inside another (same thread): a savepoint, committed by the outer one.

        If the block raises, only its own changes are rolled back and the error goes on.
        """
        name = f"nested_{self._write_depth}"
        self._write_depth += 1
        try:
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
        except sqlite3.Error as exc:
            raise translate_error(self.path, exc, doing) from exc
        finally:
            self._write_depth -= 1

    @contextmanager
    def reading(self, doing: str = "reading the project") -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs; sqlite3 errors become ProjectErrors."""
        with self._mutex:
            conn = self._open_conn(doing)
            nested = conn.in_transaction
            try:
                if not nested:
                    conn.execute("BEGIN")
                yield conn
                if not nested:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if not nested:
                    _rollback(conn)
                raise translate_error(self.path, exc, doing) from exc
            except UnicodeDecodeError as exc:  # a damaged text cell or schema entry
                if not nested:
                    _rollback(conn)
                raise CorruptProjectError(
                    self.path, f"{doing} failed: the file holds damaged text ({exc.reason})"
                ) from exc
            except BaseException:
                if not nested:
                    _rollback(conn)
                raise

    def _open_conn(self, doing: str) -> sqlite3.Connection:
        conn = getattr(self, "conn", None)
        if conn is None:
            raise ProjectError(self.path, f"{doing} is not possible: the project is closed")
        return conn

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL) and release the lock."""
        conn = getattr(self, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
            self.conn = None  # type: ignore[assignment]
        self._remove_private_copy()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def closed(self) -> bool:
        return getattr(self, "conn", None) is None


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _into_memory(conn: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory copy of the database `conn` reads (committed WAL content included);
    `conn` is closed."""
    memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        conn.backup(memory)
    except BaseException:
        memory.close()
        raise
    finally:
        conn.close()
    return memory


def _open_read_only(path: Path, parameter: str) -> sqlite3.Connection:
    """A read-only connection (`parameter`: "mode=ro" or "immutable=1") that has read the
    schema, so a file it cannot open fails here; closed again when it fails."""
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?{parameter}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


_WAL_HEADER_SIZE = 32


def _has_frames(wal: Path) -> bool:
    """Whether a WAL file exists and is longer than its header (it may hold commits)."""
    try:
        return wal.stat().st_size > _WAL_HEADER_SIZE
    except OSError:
        return False


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ProjectError(path, f"cannot read the project file ({exc.strerror})") from exc
    if not head:
        raise CorruptProjectError(
            path,
            "the project file is empty (truncated?); restore it from a backup, or move it "
            "away and open the folder to create a new project",
        )
    if head != _SQLITE_HEADER:
        raise CorruptProjectError(path, "not a SAM Studio project file (not an SQLite database)")
