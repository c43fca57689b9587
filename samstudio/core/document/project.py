"""A SAM Studio project: a folder of images plus one project file (SQLite).

Every mutating method is one SQLite transaction, committed (durably, WAL with
synchronous=FULL) before it returns; if it raises, nothing of it was saved. Edits of
annotations are undoable per image (see history.py); image status, notes and
categories are not part of the undo history (categories.py says what deleting one does
to it).

Masks given to and returned by a project are (H, W) bool arrays in the displayed frame
of their image (EXIF orientation applied), H and W as in `ImageRecord`.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from samstudio.core.document import history
from samstudio.core.document.categories import PALETTE, CategoryEditing
from samstudio.core.document.edits import AnnotationEditing
from samstudio.core.document.records import IMAGE_STATUSES, Annotation, ImageRecord
from samstudio.core.document.rows import (
    ANNOTATION_COLUMNS,
    DamagedRowError,
    EditError,
    annotation_from_row,
    check_status,
)
from samstudio.core.natural_order import natural_key
from samstudio.core.store import Check, CorruptProjectError, ProjectError, Store

PROJECT_FILE_NAME = "project.samstudio"
__all__ = ["PALETTE", "PROJECT_FILE_NAME", "Project", "probe_image", "scan_images"]


def probe_image(path: Path) -> tuple[int, int, str, str | None]:
    """(height, width, content hash, error or None) of one image file."""
    from samstudio.core import images

    try:
        height, width = images.image_size(path)
        return int(height), int(width), str(images.content_hash(path)), None
    except images.ImageLoadError as exc:
        return 0, 0, "", str(exc)


def scan_images(folder: Path, skip: Sequence[Path] = ()) -> list[Path]:
    """Image files under `folder` (recursive, hidden entries skipped), as relative paths
    in natural order (see natural_order.py)."""
    from samstudio.core.images import SUPPORTED_SUFFIXES

    found = []
    skip_set = {p.resolve() for p in skip}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(tuple(SUPPORTED_SUFFIXES)):
                continue
            full = Path(dirpath) / name
            if full.resolve() not in skip_set:
                found.append(full.relative_to(folder))
    return sorted(found, key=lambda p: natural_key(p.as_posix()))


# (path, width, height, content hash, error, file size, file mtime in ns)
ImageRow = tuple[str, int, int, str, str | None, int | None, int | None]

# Annotations whose cells cannot be what `annotation_from_row` expects: a mask that is
# not ASCII bytes, a size, box or area that is not an integer, prompts that are not JSON,
# an iscrowd that is not 0 or 1.
_SUSPECT_ANNOTATIONS = (
    "SELECT id FROM annotations WHERE typeof(counts) != 'blob' OR NOT samstudio_ascii(counts)"
    " OR typeof(height) != 'integer' OR typeof(width) != 'integer'"
    " OR typeof(bbox_x) != 'integer' OR typeof(bbox_y) != 'integer'"
    " OR typeof(bbox_w) != 'integer' OR typeof(bbox_h) != 'integer'"
    " OR typeof(area) != 'integer' OR (prompts IS NOT NULL AND json_valid(prompts) = 0)"
    " OR iscrowd NOT IN (0, 1)"
)


def _is_ascii_bytes(value: object) -> bool:
    return isinstance(value, bytes) and value.isascii()


def _probe_rows(root: Path, relative: Sequence[Path]) -> list[ImageRow]:
    """(path, width, height, content hash, error, file size, mtime) of each image, ready
    for `_insert_images`. The stamp is taken before the file is read: a file changed
    while it is read gets a stamp that no longer matches, and is hashed again later."""
    from samstudio.core.images import file_stamp

    rows = []
    for rel in relative:
        stamp = file_stamp(root / rel)
        height, width, digest, error = probe_image(root / rel)
        size, mtime = stamp if stamp is not None and error is None else (None, None)
        rows.append((rel.as_posix(), width, height, digest, error, size, mtime))
    return rows


def _insert_images(conn: sqlite3.Connection, rows: Sequence[ImageRow]) -> None:
    conn.executemany(
        "INSERT INTO images (path, width, height, content_hash, error, file_size, file_mtime_ns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _remove_project_files(path: Path) -> None:
    """Delete a project file and its SQLite side files (journal, WAL, shared memory, lock)."""
    for suffix in ("", "-journal", "-wal", "-shm", ".lock"):
        try:
            Path(str(path) + suffix).unlink(missing_ok=True)
        except OSError:
            pass


class Project(AnnotationEditing, CategoryEditing):
    """An open project. Use `Project.create` or `Project.open`; close with `close()` or `with`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.path
        self.read_only = store.read_only
        self.author = os.environ.get("SAMSTUDIO_AUTHOR") or _user_name()
        self._masks = history.MaskCache()
        with store.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
        self.root = (self.path.parent / (row[0] if row else ".")).resolve()
        self._damaged: set[int] = set()
        # (image id, total_changes, data_version, damaged count) -> the image's annotations
        self._annotations_kept: tuple[tuple[int, int, int, int], list[Annotation]] | None = None

    def _check_contents(self) -> None:
        """Read every row once, as `open`'s check: damage inside cells (a mask that is not
        ASCII RLE, a text that is not UTF-8, prompts that are not JSON) passes SQLite's
        integrity check. Writable: CorruptProjectError naming the rows. Read-only: the
        rows go to `problems` and damaged annotations are left out of what is read."""
        found: list[str] = []
        conn = self.store._open_conn("checking the project")
        for table, sql in (
            ("images", "SELECT * FROM images"),
            ("categories", "SELECT * FROM categories"),
            ("meta", "SELECT * FROM meta"),
        ):
            try:
                conn.execute(sql).fetchall()
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                found.append(f"table {table} cannot be read ({exc})")
        try:
            # SQLite picks the suspects (a full read in Python cost ~12 s for a
            # million annotations, against a 2 s budget for opening); each is then read
            # as the app reads it. Text cells that are not UTF-8 fail when read later,
            # as a ProjectError naming the file.
            conn.create_function("samstudio_ascii", 1, _is_ascii_bytes, deterministic=True)
            suspects = [int(r[0]) for r in conn.execute(_SUSPECT_ANNOTATIONS)]
        except sqlite3.DatabaseError as exc:
            suspects = []
            found.append(f"table annotations cannot be read ({exc})")
        for aid in suspects:
            try:
                row = conn.execute(
                    f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id = ?", (aid,)
                ).fetchone()
                if row is None:  # the table scan found it, the lookup by id does not
                    raise DamagedRowError(f"annotation {aid} cannot be found by its id")
                annotation_from_row(row)
            except DamagedRowError as exc:
                self._damaged.add(aid)
                found.append(str(exc))
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                self._damaged.add(aid)
                found.append(f"annotation {aid} cannot be read ({exc})")
        if not found:
            return
        if not self.read_only:
            self.store.close()
            more = f" and {len(found) - 3} more" if len(found) > 3 else ""
            raise CorruptProjectError(
                self.path,
                f"the project file is damaged: {'; '.join(found[:3])}{more}; "
                "open it read-only to export what can be read",
            )
        self.store.problems.extend(found)

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, project_file: Path | None = None) -> Project:
        """Create the project file for a folder of images and scan the images into it.

        All or nothing: the images are scanned first, then the whole project (schema,
        meta and images) is written to a hidden file beside the project file in one
        transaction and renamed into place. A process killed at any moment leaves
        either no project file (create it again) or the complete one, never a project
        without its images.
        """
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise ProjectError(folder, "is not a folder of images")
        path = Path(project_file) if project_file is not None else folder / PROJECT_FILE_NAME
        path = path.resolve()
        if path.exists():
            raise ProjectError(path, "a project file already exists here; open it instead")
        try:
            rel_root = os.path.relpath(folder, path.parent)
        except ValueError:  # another drive on Windows
            rel_root = str(folder)
        temp = path.with_name(f".{path.name}.creating")
        _remove_project_files(temp)  # left by a process killed while creating
        rows = _probe_rows(folder, scan_images(folder, skip=[path, temp]))
        try:
            store = Store(temp, create=True)
            try:
                with store.transaction("creating the project") as conn:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('root', ?)", (rel_root,))
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('created', ?)", (str(time.time()),)
                    )
                    _insert_images(conn, rows)
            finally:
                store.close()
            if path.exists():
                raise ProjectError(path, "a project file already exists here; open it instead")
            try:
                os.replace(temp, path)
            except OSError as exc:
                raise ProjectError(
                    path, f"cannot create the project file ({exc.strerror})"
                ) from exc
        finally:
            _remove_project_files(temp)
        return cls.open(path)

    @classmethod
    def open(cls, path: Path, read_only: bool = False, check: Check = "full") -> Project:
        """Open a project file, or the `project.samstudio` inside a folder.

        Raises ProjectLockedError when another process has it open for writing (open
        with read_only=True instead), CorruptProjectError when the integrity check fails
        (read_only=True still opens it; see `problems`).
        """
        path = Path(path)
        if path.is_dir():
            path = path / PROJECT_FILE_NAME
        project = cls(Store(path.resolve(), read_only=read_only, check=check))
        if check != "none":
            project._check_contents()
        return project

    @property
    def problems(self) -> list[str]:
        """What the integrity check reported (empty when the file is sound)."""
        return list(self.store.problems)

    def close(self) -> None:
        """Close the file and release the lock; every committed change is already saved."""
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- images --------------------------------------------------------------------------

    def rescan(self) -> int:
        """Add image files under the root that the project does not hold yet; returns how many."""
        known = {img.path for img in self.images()}
        new = [p for p in scan_images(self.root, skip=[self.path]) if p.as_posix() not in known]
        rows = _probe_rows(self.root, new)
        if rows:
            with self.store.transaction("adding images") as conn:
                _insert_images(conn, rows)
        return len(rows)

    def images(self, status: str | None = None) -> list[ImageRecord]:
        """Images in natural path order (img_2 before img_10, case-insensitive; see
        natural_order.py), optionally only those with `status`."""
        sql = "SELECT id, path, width, height, content_hash, status, note, error FROM images"
        args: tuple[Any, ...] = ()
        if status is not None:
            check_status(self.path, status)
            sql += " WHERE status = ?"
            args = (status,)
        with self.store.reading() as conn:
            records = [ImageRecord(*row) for row in conn.execute(sql, args)]
        return sorted(records, key=lambda rec: natural_key(rec.path))

    def image(self, image_id: int) -> ImageRecord:
        with self.store.reading() as conn:
            row = conn.execute(
                "SELECT id, path, width, height, content_hash, status, note, error FROM images WHERE id = ?",
                (image_id,),
            ).fetchone()
        if row is None:
            raise EditError(self.path, f"no image with id {image_id}")
        return ImageRecord(*row)

    def image_path(self, image_id: int) -> Path:
        """Absolute path of an image file."""
        return self.root / self.image(image_id).path

    def set_image_status(self, image_id: int, status: str) -> None:
        check_status(self.path, status)
        with self.store.transaction("changing the image status") as conn:
            self._require_image(conn, image_id)
            conn.execute("UPDATE images SET status = ? WHERE id = ?", (status, image_id))

    def set_image_note(self, image_id: int, note: str) -> None:
        with self.store.transaction("changing the image note") as conn:
            self._require_image(conn, image_id)
            conn.execute("UPDATE images SET note = ? WHERE id = ?", (note, image_id))

    def relocate_images(self, new_folder: Path) -> int:
        """Point the project at the folder its images moved to, matching files by content hash.

        Every image whose content hash is found under `new_folder` gets that file's path
        (relative to the new root); the root becomes `new_folder`. Returns how many images
        were found there. Images not found keep their path (and stay missing).
        """
        new_folder = Path(new_folder).resolve()
        if not new_folder.is_dir():
            raise ProjectError(new_folder, "is not a folder")
        images = [img for img in self.images() if img.content_hash]
        wanted = {img.content_hash for img in images}
        by_hash: dict[str, str] = {}
        for rel in scan_images(new_folder, skip=[self.path]):
            if len(by_hash) == len(wanted):
                break
            digest = probe_image(new_folder / rel)[2]
            if digest in wanted:
                by_hash.setdefault(digest, rel.as_posix())
        updates = [
            (by_hash[img.content_hash], img.id) for img in images if img.content_hash in by_hash
        ]
        try:
            rel_root = os.path.relpath(new_folder, self.path.parent)
        except ValueError:
            rel_root = str(new_folder)
        with self.store.transaction("relocating the images") as conn:
            # Two passes so that swapped names never collide on the UNIQUE path.
            conn.executemany(
                "UPDATE images SET path = '//moving//' || path WHERE id = ?",
                [(i,) for _, i in updates],
            )
            conn.executemany("UPDATE images SET path = ? WHERE id = ?", updates)
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('root', ?)", (rel_root,))
        self.root = new_folder
        return len(updates)

    # -- reading annotations -------------------------------------------------------------

    def annotations(self, image_id: int) -> list[Annotation]:
        """The annotations of one image, oldest first.

        The last image's list is kept while nothing is written: the window asks for the
        same image's annotations several times per keystroke (review of hundreds of
        proposals), and parsing the rows is most of the cost. A write through this
        project's connection moves its `total_changes` (a rolled-back one too), a commit
        by another process (a read-only open beside the writer) SQLite's `data_version`,
        so a kept list is never stale; the records are frozen and shared (their `rle`
        and `prompts` dicts must not be changed in place)."""
        # inside a transaction a rollback could still undo what is read (and moves no
        # counter): no list is kept or served then
        in_transaction = bool(getattr(self.store.conn, "in_transaction", True))
        with self.store.reading() as conn:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            key = (image_id, conn.total_changes, version, len(self._damaged))
            kept = None if in_transaction else self._annotations_kept
            if kept is not None and kept[0] == key:
                return list(kept[1])
            rows = conn.execute(
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE image_id = ? AND alive = 1 ORDER BY id",
                (image_id,),
            ).fetchall()
            out = [self._annotation_of(row) for row in rows if row[0] not in self._damaged]
            key = (image_id, conn.total_changes, version, len(self._damaged))
            self._annotations_kept = None if in_transaction else (key, out)
        return list(out)

    def annotation(self, annotation_id: int) -> Annotation:
        with self.store.reading() as conn:
            return self._annotation_of(self._alive_row(conn, annotation_id))

    def iter_annotations(self) -> Iterator[Annotation]:
        """Every annotation of the project, by image then id (streamed, for export)."""
        with self.store.reading("exporting annotations") as conn:
            rows = conn.execute(
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE alive = 1 ORDER BY image_id, id"
            )
            for row in rows:
                if row[0] not in self._damaged:
                    yield self._annotation_of(row)

    def salvage_annotations(self, chunk: int = 1000) -> tuple[list[Annotation], list[str]]:
        """Every annotation that can still be read, for exporting from a damaged file.

        Reads by id range through the table itself (not the indexes) and falls back to
        one row at a time inside a range that fails. Returns (annotations, problems),
        problems naming the ids that could not be read.
        """
        conn = self.store._open_conn("salvaging annotations")
        out: list[Annotation] = []
        problems: list[str] = []
        sql = f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id BETWEEN ? AND ? AND alive = 1 ORDER BY id"
        try:
            max_id = int(conn.execute("SELECT max(id) FROM annotations").fetchone()[0] or 0)
        except sqlite3.DatabaseError as exc:
            problems.append(f"cannot read the highest annotation id ({exc}); probing ids")
            max_id = -1
        start, empty_run = 1, 0
        while (max_id >= 0 and start <= max_id) or (max_id < 0 and empty_run < 50):
            stop = start + chunk - 1
            try:
                rows = conn.execute(sql, (start, stop)).fetchall()
            except sqlite3.DatabaseError:
                rows = []
                bad = []
                for aid in range(start, stop + 1):
                    try:
                        rows += conn.execute(sql, (aid, aid)).fetchall()
                    except sqlite3.DatabaseError:
                        bad.append(aid)
                if bad:
                    problems.append(
                        f"annotations {bad[0]}..{bad[-1]}: {len(bad)} ids could not be read"
                    )
            for row in rows:
                try:
                    out.append(annotation_from_row(row))
                except (ValueError, UnicodeDecodeError) as exc:
                    problems.append(f"annotation {row[0]}: damaged ({exc})")
            empty_run = 0 if rows else empty_run + 1
            start = stop + 1
        return out, problems

    def mask(self, annotation_id: int) -> np.ndarray:
        """The (H, W) bool mask of an annotation."""
        with self.store.reading() as conn:
            row = self._alive_row(conn, annotation_id)
            mask = self._masks.take(row[0], row[3], row[4], row[5])
            self._masks.put(row[0], row[5], mask)
            return mask.copy(order="K")

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts for `project info`: images by status, annotations by category and source."""
        with self.store.reading() as conn:
            status = dict(
                conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall()
            )
            unreadable = conn.execute(
                "SELECT count(*) FROM images WHERE error IS NOT NULL"
            ).fetchone()[0]
            by_cat = conn.execute(
                "SELECT coalesce(c.name, '(none)'), count(*) FROM annotations a "
                "LEFT JOIN categories c ON c.id = a.category_id WHERE a.alive = 1 GROUP BY 1"
            ).fetchall()
            by_source = conn.execute(
                "SELECT source, count(*) FROM annotations WHERE alive = 1 GROUP BY source"
            ).fetchall()
        return {
            "images": {s: int(status.get(s, 0)) for s in IMAGE_STATUSES}
            | {"unreadable": int(unreadable)},
            "categories": {str(k): int(v) for k, v in by_cat},
            "sources": {str(k): int(v) for k, v in by_source},
        }


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return ""
