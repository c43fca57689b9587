"""Editing annotations: every method is one transaction and one undo step (see history.py).

Masks are (H, W) bool arrays in the displayed frame of their image; `add_annotations`
also takes `EncodedMask`s (masks already run-length encoded, added without decoding).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.document import history
from samstudio.core.document.records import Annotation
from samstudio.core.document.rows import (
    ANNOTATION_COLUMNS,
    DamagedRowError,
    EditError,
    EncodedMask,
    annotation_from_row,
    check_source,
    damaged_row,
    opt_float,
    prompts_json,
)
from samstudio.core.mask_diff import MaskDiff
from samstudio.core.store import CorruptProjectError, Store

# Sources that become "edited" when a mask edit or a brush / eraser stroke changes the
# pixels of the annotation (a proposal stays a proposal until it is reviewed).
EDITABLE_SOURCES = ("manual", "auto", "imported")


class AnnotationEditing:
    """The annotation edits and undo/redo of a `Project` (a mixin over its store)."""

    store: Store
    path: Path
    author: str
    _masks: history.MaskCache
    # (image id, operation) while an `operation` block is open: edits add to it.
    _group: tuple[int, history.Operation] | None = None

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
        masks: Sequence[np.ndarray | EncodedMask],
        category_id: int | None = None,
        source: str = "proposal",
        *,
        predicted_ious: Sequence[float | None] | None = None,
        stability_scores: Sequence[float | None] | None = None,
        prompts: Sequence[dict[str, Any] | None] | None = None,
        label: str | None = None,
    ) -> list[Annotation]:
        """Add many masks as one operation (one transaction, one undo step).

        masks: (H, W) bool arrays, or `EncodedMask`s of the same frame (stored as they
        are: the cheap way to add many generated masks, prepared in any thread).
        """
        check_source(self.path, source)
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
                counts, bbox, area = self._mask_columns(mask, height, width)
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
                        opt_float(iou),
                        opt_float(stab),
                        prompts_json(self.path, pr),
                        self.author,
                        now,
                        now,
                    ),
                )
                aid = int(cur.lastrowid or 0)
                op.alive(aid, True)
                ids.append(aid)
            self._touch_image(conn, image_id)
            self._record(conn, image_id, op)
            rows = conn.execute(  # rowids given in one transaction are consecutive
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id BETWEEN ? AND ? ORDER BY id",
                (ids[0], ids[-1]),
            ).fetchall()
        return [self._annotation_of(row) for row in rows]

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
        """Replace an annotation's mask; only the diff is stored. No change, no undo step.

        The source becomes "edited" as for `paint`."""
        with self.store.transaction("editing a mask") as conn:
            row = self._alive_row(conn, annotation_id)
            new = np.array(self._check_mask(new_mask, row[3], row[4]), order="F")
            old = self._masks.take(row[0], row[3], row[4], row[5])
            self._mask_op(conn, row, MaskDiff.between(old, new), new, "Edit mask")

    def paint(self, annotation_id: int, stroke_mask: np.ndarray, value: bool) -> None:
        """Paint one brush (value=True) or eraser (False) stroke: one undo step, diff only.

        `stroke_mask` is (H, W) bool, True under the stroke. A stroke that changes no
        pixel records nothing. A stroke that changes pixels of a manual, auto or imported
        annotation makes its source "edited", in the same undo step.
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

    def set_prompts(
        self,
        annotation_id: int,
        prompts: dict[str, Any] | None,
        predicted_iou: float | None = None,
        stability_score: float | None = None,
    ) -> None:
        """Record the prompts (JSON-able dict) a mask was made from, with the model's
        scores for it, e.g. after it was refined with clicks. One undo step (none when
        nothing changes); joined to the mask's edit by the caller's outer transaction."""
        text = prompts_json(self.path, prompts)
        with self.store.transaction("saving the prompts") as conn:
            row = self._alive_row(conn, annotation_id)
            op = history.Operation("Change prompts")
            op.set(annotation_id, "prompts", row[14], text)
            op.set(annotation_id, "predicted_iou", row[12], opt_float(predicted_iou))
            op.set(annotation_id, "stability_score", row[13], opt_float(stability_score))
            if not op.atoms:
                return
            op.set(annotation_id, "modified", row[17], time.time())
            self._commit_op(conn, row[1], op)

    def set_source(self, annotation_id: int, source: str) -> None:
        """Change the source, e.g. accept a proposal (source 'proposal' -> 'auto')."""
        check_source(self.path, source)
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
        """Merge annotations of one image into a new one (union of masks, first one's
        category and crowd flag)."""
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
            return self._annotation_of(self._alive_row(conn, new_id))

    def split(self, annotation_id: int) -> list[Annotation]:
        """Split an annotation into one per connected component (8-connected), each with
        its category and crowd flag.

        A mask with one component is returned unchanged and records nothing.
        """
        import cv2

        with self.store.transaction("splitting an annotation") as conn:
            row = self._alive_row(conn, annotation_id)
            mask = history.decode_mask_columns(row[3], row[4], row[5])
            n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
            if n <= 2:
                return [self._annotation_of(row)]
            source = "manual" if row[11] == "manual" else "edited"
            op = history.Operation("Split annotation")
            new_ids = [self._insert_derived(conn, row, labels == k, source) for k in range(1, n)]
            for aid in new_ids:
                op.alive(aid, True)
            op.alive(annotation_id, False)
            self._commit_op(conn, row[1], op)
            return [self._annotation_of(self._alive_row(conn, aid)) for aid in new_ids]

    @contextmanager
    def operation(self, image_id: int, label: str) -> Iterator[history.Operation]:
        """Make every edit of `image_id` inside the block ONE operation: one transaction,
        one history row labelled `label`, so one undo (now or after reopening) takes
        all of it back and one redo does all of it again.

        If the block raises, nothing of it is saved. The yielded operation holds the
        atoms recorded so far; when it is empty at the end (no edit changed anything)
        no history row is written. Edits of another image inside the block raise
        EditError. Blocks do not nest.
        """
        if self._group is not None:
            raise EditError(self.path, "an operation is already open; operations do not nest")
        op = history.Operation(label)
        with self.store.transaction(label[:1].lower() + label[1:]) as conn:
            self._group = (image_id, op)
            try:
                yield op
            finally:
                self._group = None
            history.record(conn, image_id, op)

    # -- undo ----------------------------------------------------------------------------

    def undo(self, image_id: int) -> bool:
        """Undo the image's newest operation; False when there is nothing to undo."""
        return self._step(image_id, undo=True)

    def redo(self, image_id: int) -> bool:
        """Redo the image's oldest undone operation; False when there is nothing to redo."""
        return self._step(image_id, undo=False)

    def _step(self, image_id: int, undo: bool) -> bool:
        doing = "undoing" if undo else "redoing"
        try:
            with self.store.transaction(doing) as conn:
                return history.step(conn, image_id, undo=undo, cache=self._masks)
        except (ValueError, KeyError) as exc:  # MaskDiffError, damaged atoms: rolled back
            raise CorruptProjectError(
                self.path,
                f"{doing} failed: the undo history of image {image_id} does not fit its "
                f"annotations ({exc}); nothing was changed; clear that image's history",
            ) from exc

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
        if row[11] in EDITABLE_SOURCES:  # in the same op: one undo restores both
            op.set(row[0], "source", row[11], "edited")
        op.set(row[0], "modified", row[17], time.time())
        self._commit_op(conn, row[1], op)

    def _commit_op(self, conn: sqlite3.Connection, image_id: int, op: history.Operation) -> None:
        """Apply the op's atoms forward and record it, inside the open transaction."""
        history.apply_atoms(
            conn, op.atoms, op.blob, forward=True, known_masks=op.known_masks, cache=self._masks
        )
        self._touch_image(conn, image_id)
        self._record(conn, image_id, op)

    def _record(self, conn: sqlite3.Connection, image_id: int, op: history.Operation) -> None:
        """Record `op` as its own undo step, or as part of the open `operation` block."""
        group = self._group
        if group is None:
            history.record(conn, image_id, op)
            return
        if image_id != group[0]:
            raise EditError(
                self.path,
                f"{group[1].label!r} is an operation on image {group[0]}; "
                f"it cannot change image {image_id}",
            )
        group[1].extend(op)

    def _insert_derived(
        self, conn: sqlite3.Connection, row: tuple, mask: np.ndarray, source: str
    ) -> int:
        """A new (not yet alive) annotation of `mask` with `row`'s image, category and
        crowd flag."""
        counts, bbox, area = history.encode_mask_columns(mask)
        now = time.time()
        cur = conn.execute(
            "INSERT INTO annotations (image_id, category_id, height, width, counts, bbox_x, bbox_y, "
            "bbox_w, bbox_h, area, source, author, created, modified, iscrowd, alive) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                row[1],
                row[2],
                row[3],
                row[4],
                counts,
                *bbox,
                area,
                source,
                self.author,
                now,
                now,
                row[18],
            ),
        )
        return int(cur.lastrowid or 0)

    def _touch_image(self, conn: sqlite3.Connection, image_id: int) -> None:
        conn.execute(
            "UPDATE images SET status = 'in_progress' WHERE id = ? AND status = 'new'", (image_id,)
        )

    def _annotation_of(self, row: Sequence[Any]) -> Annotation:
        """The record of an annotation row; CorruptProjectError naming the file and the
        row when a cell of it is damaged."""
        try:
            return annotation_from_row(row)
        except DamagedRowError as exc:
            raise damaged_row(self.path, exc) from exc

    def _alive_row(self, conn: sqlite3.Connection, annotation_id: int) -> tuple:
        row = conn.execute(
            f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id = ? AND alive = 1",
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

    def _mask_columns(
        self, mask: np.ndarray | EncodedMask, height: int, width: int
    ) -> tuple[bytes, tuple[int, int, int, int], int]:
        """(counts, bbox XYWH, area) to store for a mask or an encoded mask of the frame."""
        if not isinstance(mask, EncodedMask):
            return history.encode_mask_columns(self._check_mask(mask, height, width))
        if (mask.height, mask.width) != (height, width):
            raise EditError(
                self.path,
                f"mask size {(mask.height, mask.width)} does not match the image frame "
                f"(H, W) = {(height, width)}",
            )
        return mask.counts, mask.bbox, mask.area

    def _check_mask(self, mask: np.ndarray, height: int, width: int) -> np.ndarray:
        arr = np.asarray(mask)
        if arr.shape != (height, width):
            raise EditError(
                self.path,
                f"mask shape {arr.shape} does not match the image frame (H, W) = {(height, width)}",
            )
        return arr if arr.dtype == bool else arr.astype(bool)
