"""A SAM Studio project: a folder of images plus one project file (SQLite).

Every mutating method is one SQLite transaction, committed (durably, WAL with
synchronous=FULL) before it returns; if it raises, nothing of it was saved. Edits of
annotations are undoable per image (see history.py); image status, notes and
categories are not part of the undo history.

Masks given to and returned by a project are (H, W) bool arrays in the displayed frame
of their image (EXIF orientation applied), H and W as in `ImageRecord`.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from samstudio.core.document import history
from samstudio.core.document.records import (
    IMAGE_STATUSES,
    SOURCES,
    Annotation,
    Category,
    ImageRecord,
)
from samstudio.core.mask_diff import MaskDiff
from samstudio.core.store import Check, ProjectError, Store

PROJECT_FILE_NAME = "project.samstudio"
PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#ffe119",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#46f0f0",
    "#f032e6",
    "#bcf60c",
    "#fabebe",
    "#008080",
    "#e6beff",
    "#9a6324",
    "#fffac8",
    "#800000",
    "#aaffc3",
)
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ANNOTATION_COLUMNS = (
    "id, image_id, category_id, height, width, counts, bbox_x, bbox_y, bbox_w, bbox_h, area, "
    "source, predicted_iou, stability_score, prompts, author, created, modified"
)


class EditError(ProjectError):
    """An edit that cannot be made: unknown id, wrong mask shape, bad value."""


def probe_image(path: Path) -> tuple[int, int, str, str | None]:
    """(height, width, content hash, error or None) of one image file."""
    from samstudio.core import images

    try:
        height, width = images.image_size(path)
        return int(height), int(width), str(images.content_hash(path)), None
    except images.ImageLoadError as exc:
        return 0, 0, "", str(exc)


def scan_images(folder: Path, skip: Sequence[Path] = ()) -> list[Path]:
    """Image files under `folder` (recursive, hidden entries skipped), sorted, as relative paths."""
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
    return sorted(found, key=lambda p: p.as_posix())


class Project:
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

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, project_file: Path | None = None) -> Project:
        """Create the project file for a folder of images and scan the images into it."""
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise ProjectError(folder, "is not a folder of images")
        path = Path(project_file) if project_file is not None else folder / PROJECT_FILE_NAME
        path = path.resolve()
        if path.exists():
            raise ProjectError(path, "a project file already exists here; open it instead")
        store = Store(path, create=True)
        try:
            rel_root = os.path.relpath(folder, path.parent)
        except ValueError:  # another drive on Windows
            rel_root = str(folder)
        try:
            with store.transaction("creating the project") as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('root', ?)", (rel_root,))
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('created', ?)", (str(time.time()),)
                )
            project = cls(store)
            project.rescan()
        except BaseException:
            store.close()
            raise
        return project

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
        return cls(Store(path.resolve(), read_only=read_only, check=check))

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
        rows = []
        for rel in new:
            height, width, digest, error = probe_image(self.root / rel)
            rows.append((rel.as_posix(), width, height, digest, error))
        if rows:
            with self.store.transaction("adding images") as conn:
                conn.executemany(
                    "INSERT INTO images (path, width, height, content_hash, error) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        return len(rows)

    def images(self, status: str | None = None) -> list[ImageRecord]:
        """Images in path order, optionally only those with `status`."""
        sql = "SELECT id, path, width, height, content_hash, status, note, error FROM images"
        args: tuple[Any, ...] = ()
        if status is not None:
            _check_status(self.path, status)
            sql += " WHERE status = ?"
            args = (status,)
        with self.store.reading() as conn:
            return [ImageRecord(*row) for row in conn.execute(sql + " ORDER BY path", args)]

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
        _check_status(self.path, status)
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

    # -- categories ----------------------------------------------------------------------

    def categories(self) -> list[Category]:
        with self.store.reading() as conn:
            rows = conn.execute("SELECT id, name, color, supercategory FROM categories ORDER BY id")
            return [Category(*row) for row in rows]

    def add_category(
        self, name: str, color: str | None = None, supercategory: str = ""
    ) -> Category:
        name = name.strip()
        if not name:
            raise EditError(self.path, "a category needs a name")
        with self.store.transaction(f"adding category {name!r}") as conn:
            if conn.execute("SELECT 1 FROM categories WHERE name = ?", (name,)).fetchone():
                raise EditError(self.path, f"a category named {name!r} already exists")
            if color is None:
                n = conn.execute("SELECT count(*) FROM categories").fetchone()[0]
                color = PALETTE[n % len(PALETTE)]
            _check_color(self.path, color)
            cur = conn.execute(
                "INSERT INTO categories (name, color, supercategory) VALUES (?, ?, ?)",
                (name, color.lower(), supercategory),
            )
            return Category(int(cur.lastrowid or 0), name, color.lower(), supercategory)

    def rename_category(self, category_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise EditError(self.path, "a category needs a name")
        with self.store.transaction(f"renaming category {category_id}") as conn:
            self._require_category(conn, category_id)
            clash = conn.execute(
                "SELECT id FROM categories WHERE name = ? AND id != ?", (name, category_id)
            ).fetchone()
            if clash:
                raise EditError(self.path, f"a category named {name!r} already exists")
            conn.execute("UPDATE categories SET name = ? WHERE id = ?", (name, category_id))

    def recolor_category(self, category_id: int, color: str) -> None:
        _check_color(self.path, color)
        with self.store.transaction(f"recolouring category {category_id}") as conn:
            self._require_category(conn, category_id)
            conn.execute(
                "UPDATE categories SET color = ? WHERE id = ?", (color.lower(), category_id)
            )

    # -- reading annotations -------------------------------------------------------------

    def annotations(self, image_id: int) -> list[Annotation]:
        """The annotations of one image, oldest first."""
        with self.store.reading() as conn:
            rows = conn.execute(
                f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE image_id = ? AND alive = 1 ORDER BY id",
                (image_id,),
            ).fetchall()
        return [_annotation(row) for row in rows]

    def annotation(self, annotation_id: int) -> Annotation:
        with self.store.reading() as conn:
            return _annotation(self._alive_row(conn, annotation_id))

    def iter_annotations(self) -> Iterator[Annotation]:
        """Every annotation of the project, by image then id (streamed, for export)."""
        with self.store.reading("exporting annotations") as conn:
            rows = conn.execute(
                f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE alive = 1 ORDER BY image_id, id"
            )
            for row in rows:
                yield _annotation(row)

    def salvage_annotations(self, chunk: int = 1000) -> tuple[list[Annotation], list[str]]:
        """Every annotation that can still be read, for exporting from a damaged file.

        Reads by id range through the table itself (not the indexes) and falls back to
        one row at a time inside a range that fails. Returns (annotations, problems),
        problems naming the ids that could not be read.
        """
        conn = self.store._open_conn("salvaging annotations")
        out: list[Annotation] = []
        problems: list[str] = []
        sql = f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE id BETWEEN ? AND ? AND alive = 1 ORDER BY id"
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
                    out.append(_annotation(row))
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

    # -- editing annotations (each call is one transaction and one undo step) ------------

    def add_annotation(
        self,
        image_id: int,
        mask: np.ndarray,
        category_id: int | None,
        source: str = "manual",
        *,
        predicted_iou: float | None = None,
        stability_score: float | None = None,
        prompts: dict[str, Any] | None = None,
    ) -> Annotation:
        """Add one mask ((H, W) bool, the image's displayed frame) as a new annotation."""
        return self.add_annotations(
            image_id,
            [mask],
            category_id,
            source,
            predicted_ious=[predicted_iou],
            stability_scores=[stability_score],
            prompts=[prompts],
            label="Add annotation",
        )[0]

    def add_annotations(
        self,
        image_id: int,
        masks: Sequence[np.ndarray],
        category_id: int | None = None,
        source: str = "proposal",
        *,
        predicted_ious: Sequence[float | None] | None = None,
        stability_scores: Sequence[float | None] | None = None,
        prompts: Sequence[dict[str, Any] | None] | None = None,
        label: str | None = None,
    ) -> list[Annotation]:
        """Add many masks as one operation (one transaction, one undo step)."""
        _check_source(self.path, source)
        n = len(masks)
        ious = list(predicted_ious) if predicted_ious is not None else [None] * n
        stabs = list(stability_scores) if stability_scores is not None else [None] * n
        prom = list(prompts) if prompts is not None else [None] * n
        if not (len(ious) == len(stabs) == len(prom) == n):
            raise EditError(
                self.path, "masks, predicted_ious, stability_scores and prompts differ in length"
            )
        if n == 0:
            return []
        now = time.time()
        op = history.Operation(label or (f"Add {n} annotations" if n > 1 else "Add annotation"))
        with self.store.transaction("adding annotations") as conn:
            height, width = self._image_frame(conn, image_id)
            if category_id is not None:
                self._require_category(conn, category_id)
            ids = []
            for mask, iou, stab, pr in zip(masks, ious, stabs, prom):
                m = self._check_mask(mask, height, width)
                counts, bbox, area = history.encode_mask_columns(m)
                cur = conn.execute(
                    "INSERT INTO annotations (image_id, category_id, height, width, counts, bbox_x, "
                    "bbox_y, bbox_w, bbox_h, area, source, predicted_iou, stability_score, prompts, "
                    "author, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id,
                        category_id,
                        height,
                        width,
                        counts,
                        *bbox,
                        area,
                        source,
                        _opt_float(iou),
                        _opt_float(stab),
                        None if pr is None else json.dumps(pr),
                        self.author,
                        now,
                        now,
                    ),
                )
                aid = int(cur.lastrowid or 0)
                op.alive(aid, True)
                ids.append(aid)
            self._touch_image(conn, image_id)
            history.record(conn, image_id, op)
            rows = conn.execute(
                f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE id IN ({','.join('?' * n)}) ORDER BY id",
                ids,
            ).fetchall()
        return [_annotation(row) for row in rows]

    def delete_annotation(self, annotation_id: int) -> None:
        self.delete_annotations([annotation_id])

    def delete_annotations(self, annotation_ids: Sequence[int]) -> None:
        """Delete annotations of one image as one undo step."""
        if not annotation_ids:
            return
        op = history.Operation(
            "Delete annotation"
            if len(annotation_ids) == 1
            else f"Delete {len(annotation_ids)} annotations"
        )
        with self.store.transaction("deleting annotations") as conn:
            image_id = self._same_image(conn, annotation_ids)
            for aid in annotation_ids:
                op.alive(aid, False)
            self._commit_op(conn, image_id, op)

    def edit_mask(self, annotation_id: int, new_mask: np.ndarray) -> None:
        """Replace an annotation's mask; only the diff is stored. No change, no undo step."""
        with self.store.transaction("editing a mask") as conn:
            row = self._alive_row(conn, annotation_id)
            new = np.array(self._check_mask(new_mask, row[3], row[4]), order="F")
            old = self._masks.take(row[0], row[3], row[4], row[5])
            self._mask_op(conn, row, MaskDiff.between(old, new), new, "Edit mask")

    def paint(self, annotation_id: int, stroke_mask: np.ndarray, value: bool) -> None:
        """Paint one brush (value=True) or eraser (False) stroke: one undo step, diff only.

        `stroke_mask` is (H, W) bool, True under the stroke. A stroke that changes no
        pixel records nothing.
        """
        with self.store.transaction("painting a stroke") as conn:
            row = self._alive_row(conn, annotation_id)
            stroke = self._check_mask(stroke_mask, row[3], row[4])
            old = self._masks.take(row[0], row[3], row[4], row[5])
            diff = MaskDiff.from_stroke(old, stroke, value)
            if diff.is_empty:
                self._masks.put(row[0], row[5], old)
            label = "Brush stroke" if value else "Eraser stroke"
            self._mask_op(
                conn, row, diff, None if diff.is_empty else diff.apply(old, in_place=True), label
            )

    def set_category(self, annotation_id: int, category_id: int | None) -> None:
        with self.store.transaction("changing the category") as conn:
            row = self._alive_row(conn, annotation_id)
            if category_id is not None:
                self._require_category(conn, category_id)
            if row[2] == category_id:
                return
            op = history.Operation("Change category")
            op.set(annotation_id, "category_id", row[2], category_id)
            op.set(annotation_id, "modified", row[17], time.time())
            self._commit_op(conn, row[1], op)

    def set_source(self, annotation_id: int, source: str) -> None:
        """Change the source, e.g. accept a proposal (source 'proposal' -> 'auto')."""
        _check_source(self.path, source)
        with self.store.transaction("changing the source") as conn:
            row = self._alive_row(conn, annotation_id)
            if row[11] == source:
                return
            accepting = row[11] == "proposal"
            op = history.Operation("Accept proposal" if accepting else "Change source")
            op.set(annotation_id, "source", row[11], source)
            op.set(annotation_id, "modified", row[17], time.time())
            self._commit_op(conn, row[1], op)

    def merge(self, annotation_ids: list[int]) -> Annotation:
        """Merge annotations of one image into a new one (union of masks, first one's category)."""
        if len(set(annotation_ids)) < 2:
            raise EditError(self.path, "merging needs at least two different annotations")
        with self.store.transaction("merging annotations") as conn:
            rows = [self._alive_row(conn, aid) for aid in annotation_ids]
            image_id = self._same_image(conn, annotation_ids)
            union = np.zeros((rows[0][3], rows[0][4]), bool)
            for row in rows:
                union |= history.decode_mask_columns(row[3], row[4], row[5])
            sources = {row[11] for row in rows}
            source = "manual" if sources == {"manual"} else "edited"
            op = history.Operation("Merge annotations")
            new_id = self._insert_derived(conn, rows[0], union, source)
            op.alive(new_id, True)
            for aid in annotation_ids:
                op.alive(aid, False)
            self._commit_op(conn, image_id, op)
            return _annotation(self._alive_row(conn, new_id))

    def split(self, annotation_id: int) -> list[Annotation]:
        """Split an annotation into one per connected component (8-connected).

        A mask with one component is returned unchanged and records nothing.
        """
        import cv2

        with self.store.transaction("splitting an annotation") as conn:
            row = self._alive_row(conn, annotation_id)
            mask = history.decode_mask_columns(row[3], row[4], row[5])
            n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
            if n <= 2:
                return [_annotation(row)]
            source = "manual" if row[11] == "manual" else "edited"
            op = history.Operation("Split annotation")
            new_ids = [self._insert_derived(conn, row, labels == k, source) for k in range(1, n)]
            for aid in new_ids:
                op.alive(aid, True)
            op.alive(annotation_id, False)
            self._commit_op(conn, row[1], op)
            return [_annotation(self._alive_row(conn, aid)) for aid in new_ids]

    # -- undo ----------------------------------------------------------------------------

    def undo(self, image_id: int) -> bool:
        """Undo the image's newest operation; False when there is nothing to undo."""
        with self.store.transaction("undoing") as conn:
            return history.step(conn, image_id, undo=True, cache=self._masks)

    def redo(self, image_id: int) -> bool:
        with self.store.transaction("redoing") as conn:
            return history.step(conn, image_id, undo=False, cache=self._masks)

    def can_undo(self, image_id: int) -> bool:
        return self.undo_label(image_id) is not None

    def can_redo(self, image_id: int) -> bool:
        return self.redo_label(image_id) is not None

    def undo_label(self, image_id: int) -> str | None:
        """What undo would take back, e.g. "Add annotation" (None when nothing)."""
        with self.store.reading() as conn:
            return history.label(conn, image_id, undo=True)

    def redo_label(self, image_id: int) -> str | None:
        with self.store.reading() as conn:
            return history.label(conn, image_id, undo=False)

    def clear_history(self, image_id: int | None = None) -> None:
        """Forget the undo history of one image, or of every image when None."""
        with self.store.transaction("clearing the undo history") as conn:
            history.clear(conn, image_id)

    # -- helpers -------------------------------------------------------------------------

    def _mask_op(
        self,
        conn: sqlite3.Connection,
        row: tuple,
        diff: MaskDiff,
        new: np.ndarray | None,
        label: str,
    ) -> None:
        if diff.is_empty:
            return
        op = history.Operation(label)
        op.mask(row[0], diff, new)
        if row[11] in ("auto", "imported"):
            op.set(row[0], "source", row[11], "edited")
        op.set(row[0], "modified", row[17], time.time())
        self._commit_op(conn, row[1], op)

    def _commit_op(self, conn: sqlite3.Connection, image_id: int, op: history.Operation) -> None:
        """Apply the op's atoms forward and record it, inside the open transaction."""
        history.apply_atoms(
            conn, op.atoms, op.blob, forward=True, known_masks=op.known_masks, cache=self._masks
        )
        self._touch_image(conn, image_id)
        history.record(conn, image_id, op)

    def _insert_derived(
        self, conn: sqlite3.Connection, row: tuple, mask: np.ndarray, source: str
    ) -> int:
        counts, bbox, area = history.encode_mask_columns(mask)
        now = time.time()
        cur = conn.execute(
            "INSERT INTO annotations (image_id, category_id, height, width, counts, bbox_x, bbox_y, "
            "bbox_w, bbox_h, area, source, author, created, modified, alive) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (row[1], row[2], row[3], row[4], counts, *bbox, area, source, self.author, now, now),
        )
        return int(cur.lastrowid or 0)

    def _touch_image(self, conn: sqlite3.Connection, image_id: int) -> None:
        conn.execute(
            "UPDATE images SET status = 'in_progress' WHERE id = ? AND status = 'new'", (image_id,)
        )

    def _alive_row(self, conn: sqlite3.Connection, annotation_id: int) -> tuple:
        row = conn.execute(
            f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE id = ? AND alive = 1",
            (annotation_id,),
        ).fetchone()
        if row is None:
            raise EditError(self.path, f"no annotation with id {annotation_id}")
        return tuple(row)

    def _same_image(self, conn: sqlite3.Connection, annotation_ids: Sequence[int]) -> int:
        images = {self._alive_row(conn, aid)[1] for aid in annotation_ids}
        if len(images) != 1:
            raise EditError(
                self.path, f"annotations {list(annotation_ids)} belong to different images"
            )
        return int(images.pop())

    def _require_image(self, conn: sqlite3.Connection, image_id: int) -> tuple[int, int]:
        row = conn.execute("SELECT height, width FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise EditError(self.path, f"no image with id {image_id}")
        return int(row[0]), int(row[1])

    def _image_frame(self, conn: sqlite3.Connection, image_id: int) -> tuple[int, int]:
        height, width = self._require_image(conn, image_id)
        if height <= 0 or width <= 0:
            raise EditError(
                self.path, f"image {image_id} could not be read, so it cannot be annotated"
            )
        return height, width

    def _require_category(self, conn: sqlite3.Connection, category_id: int) -> None:
        if conn.execute("SELECT 1 FROM categories WHERE id = ?", (category_id,)).fetchone() is None:
            raise EditError(self.path, f"no category with id {category_id}")

    def _check_mask(self, mask: np.ndarray, height: int, width: int) -> np.ndarray:
        arr = np.asarray(mask)
        if arr.shape != (height, width):
            raise EditError(
                self.path,
                f"mask shape {arr.shape} does not match the image frame (H, W) = {(height, width)}",
            )
        return arr if arr.dtype == bool else arr.astype(bool)


def _annotation(row: Sequence[Any]) -> Annotation:
    (
        aid,
        image_id,
        category_id,
        height,
        width,
        counts,
        bx,
        by,
        bw,
        bh,
        area,
        source,
        iou,
        stab,
        prompts,
        author,
        created,
        modified,
    ) = row
    return Annotation(
        id=aid,
        image_id=image_id,
        category_id=category_id,
        rle={"size": [height, width], "counts": bytes(counts).decode("ascii")},
        bbox=(bx, by, bw, bh),
        area=area,
        source=source,
        predicted_iou=iou,
        stability_score=stab,
        prompts=None if prompts is None else json.loads(prompts),
        author=author,
        created=created,
        modified=modified,
    )


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _check_status(path: Path, status: str) -> None:
    if status not in IMAGE_STATUSES:
        raise EditError(path, f"image status must be one of {IMAGE_STATUSES}, not {status!r}")


def _check_source(path: Path, source: str) -> None:
    if source not in SOURCES:
        raise EditError(path, f"annotation source must be one of {SOURCES}, not {source!r}")


def _check_color(path: Path, color: str) -> None:
    if not isinstance(color, str) or not _COLOR.match(color):
        raise EditError(path, f"a colour is '#rrggbb', not {color!r}")


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return ""
