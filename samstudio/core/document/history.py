"""Undo history as reversible diffs, stored per image in the project file.

An operation is a list of *atoms*, each a small reversible change to one annotation:

- `{"t": "alive", "id": A, "new": 0|1}`: annotation A removed (0) or present (1).
  Removed annotations stay in the table with alive = 0 while some history row can
  still bring them back, so undoing a delete or redoing an add is exact and cheap.
- `{"t": "set", "id": A, "f": FIELD, "old": X, "new": Y}`: one column changed
  (category_id, source, modified).
- `{"t": "mask", "id": A, "off": O, "len": N}`: the mask changed by the `MaskDiff`
  stored in the row's blob at [O, O + N) (bounding-box slice, changed pixels, their old
  values); bbox and area follow the mask.

Redo applies the atoms in order, undo applies their inverses in reverse order. The
functions here run inside the caller's transaction (`Store.transaction`), so an
operation, its history row and its effect on the annotations commit together or not
at all.

Limits: each image keeps at least `HISTORY_LIMIT` operations; when it holds more than
`HISTORY_LIMIT + HISTORY_SLACK`, the oldest are dropped down to `HISTORY_LIMIT`.
Recording a new operation drops the redo stack. Annotations that were kept only for a
dropped history row are purged in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from samstudio.core.mask_diff import MaskDiff

HISTORY_LIMIT = 100
HISTORY_SLACK = 20
SETTABLE_FIELDS = (
    "category_id",
    "source",
    "modified",
    "prompts",
    "predicted_iou",
    "stability_score",
)


@dataclass
class Operation:
    """An operation being built: atoms plus the mask-diff bytes they point into."""

    label: str
    atoms: list[dict[str, Any]] = field(default_factory=list)
    blob: bytearray = field(default_factory=bytearray)
    # Masks already decoded or computed by the caller: id -> (H, W) bool after the op.
    known_masks: dict[int, np.ndarray] = field(default_factory=dict)

    def alive(self, annotation_id: int, new: bool) -> None:
        self.atoms.append({"t": "alive", "id": annotation_id, "new": int(new)})

    def set(self, annotation_id: int, column: str, old: Any, new: Any) -> None:
        if column not in SETTABLE_FIELDS:
            raise ValueError(f"{column} is not a settable annotation field")
        if old != new:
            self.atoms.append(
                {"t": "set", "id": annotation_id, "f": column, "old": old, "new": new}
            )

    def mask(self, annotation_id: int, diff: MaskDiff, new_mask: np.ndarray | None = None) -> None:
        data = diff.to_bytes()
        self.atoms.append(
            {"t": "mask", "id": annotation_id, "off": len(self.blob), "len": len(data)}
        )
        self.blob.extend(data)
        if new_mask is not None:
            self.known_masks[annotation_id] = new_mask

    def extend(self, other: Operation) -> None:
        """Append `other`'s atoms (after this op's own), so both undo as one step."""
        for atom in other.atoms:
            if atom["t"] == "mask":
                atom = {**atom, "off": int(atom["off"]) + len(self.blob)}
            self.atoms.append(atom)
        self.blob.extend(other.blob)
        self.known_masks.update(other.known_masks)

    @property
    def annotation_ids(self) -> list[int]:
        return sorted({int(a["id"]) for a in self.atoms})


def encode_mask_columns(mask: np.ndarray) -> tuple[bytes, tuple[int, int, int, int], int]:
    """(H, W) bool -> (compressed RLE counts bytes, bbox XYWH ints, area).

    A column-major (Fortran-order) bool mask, as `decode_mask_columns` returns, is
    encoded without any copy; a row-major one costs one transposing copy.
    """
    as_bytes = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
    rle = mask_utils.encode(np.asfortranarray(as_bytes))
    x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
    return bytes(rle["counts"]), (x, y, w, h), int(mask_utils.area(rle))


def decode_mask_columns(height: int, width: int, counts: bytes) -> np.ndarray:
    """Stored RLE counts -> (H, W) bool, column-major (Fortran order), a fresh array."""
    decoded = mask_utils.decode({"size": [height, width], "counts": bytes(counts)})
    return decoded.view(bool)  # pycocotools writes 0/1 uint8, column-major


class MaskCache:
    """A few recently used decoded masks, keyed by annotation id, validated by RLE counts.

    Painting several strokes on one annotation (and undoing them) then decodes its mask
    once. An entry is only used when the stored counts equal the cached ones, so a
    rolled-back transaction or any other change can never serve a stale mask. `take`
    hands the array over to the caller (who may change it in place); `put` gives it back.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[int, tuple[bytes, np.ndarray]] = OrderedDict()

    def take(self, annotation_id: int, height: int, width: int, counts: bytes) -> np.ndarray:
        """The (H, W) bool mask, column-major, now owned by the caller."""
        item = self._items.pop(annotation_id, None)
        if item is not None and item[0] == bytes(counts):
            return item[1]
        return decode_mask_columns(height, width, counts)

    def put(self, annotation_id: int, counts: bytes, mask: np.ndarray) -> None:
        """Keep `mask` (which the cache now owns) as the decoding of `counts`."""
        self._items[annotation_id] = (bytes(counts), mask)
        self._items.move_to_end(annotation_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def apply_atoms(
    conn: sqlite3.Connection,
    atoms: list[dict[str, Any]],
    blob: bytes | bytearray | None,
    forward: bool,
    known_masks: dict[int, np.ndarray] | None = None,
    cache: MaskCache | None = None,
) -> None:
    """Apply (redo, forward=True) or reverse (undo) a list of atoms."""
    for atom in atoms if forward else reversed(atoms):
        aid = int(atom["id"])
        kind = atom["t"]
        if kind == "alive":
            value = int(atom["new"]) if forward else 1 - int(atom["new"])
            conn.execute("UPDATE annotations SET alive = ? WHERE id = ?", (value, aid))
        elif kind == "set":
            column = atom["f"]
            if column not in SETTABLE_FIELDS:
                raise ValueError(f"history names an unknown field {column!r}")
            value = atom["new"] if forward else atom["old"]
            conn.execute(f"UPDATE annotations SET {column} = ? WHERE id = ?", (value, aid))
        elif kind == "mask":
            if blob is None:
                raise ValueError("history row has a mask atom but no diff bytes")
            off, length = int(atom["off"]), int(atom["len"])
            diff = MaskDiff.from_bytes(bytes(blob[off : off + length]))
            new_mask = (known_masks or {}).get(aid) if forward else None
            if new_mask is None:
                row = conn.execute(
                    "SELECT height, width, counts FROM annotations WHERE id = ?", (aid,)
                ).fetchone()
                if row is None:
                    raise ValueError(f"history names annotation {aid}, which is gone")
                if cache is not None:
                    current = cache.take(aid, row[0], row[1], row[2])
                else:
                    current = decode_mask_columns(row[0], row[1], row[2])
                new_mask = diff.apply(current, True) if forward else diff.revert(current, True)
            counts, bbox, area = encode_mask_columns(new_mask)
            if cache is not None:
                cache.put(aid, counts, new_mask)
            conn.execute(
                "UPDATE annotations SET counts = ?, bbox_x = ?, bbox_y = ?, bbox_w = ?, "
                "bbox_h = ?, area = ? WHERE id = ?",
                (counts, *bbox, area, aid),
            )
        else:
            raise ValueError(f"history holds an unknown atom kind {kind!r}")


def record(conn: sqlite3.Connection, image_id: int, op: Operation) -> None:
    """Store `op` as the newest history row of `image_id`; drop the redo stack; trim."""
    if not op.atoms:
        return
    dropped = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM history WHERE image_id = ? AND undone = 1", (image_id,)
        )
    ]
    _drop_rows(conn, dropped)
    seq = conn.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM history WHERE image_id = ?", (image_id,)
    ).fetchone()[0]
    cur = conn.execute(
        "INSERT INTO history (image_id, seq, label, atoms, blob, undone, created) "
        "VALUES (?, ?, ?, ?, ?, 0, ?)",
        (
            image_id,
            seq,
            op.label,
            json.dumps(op.atoms, separators=(",", ":")),
            bytes(op.blob) if op.blob else None,
            time.time(),
        ),
    )
    hid = cur.lastrowid
    conn.executemany(
        "INSERT INTO history_refs (history_id, annotation_id) VALUES (?, ?)",
        [(hid, aid) for aid in op.annotation_ids],
    )
    count = conn.execute("SELECT count(*) FROM history WHERE image_id = ?", (image_id,)).fetchone()[
        0
    ]
    if count > HISTORY_LIMIT + HISTORY_SLACK:
        oldest = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM history WHERE image_id = ? ORDER BY seq LIMIT ?",
                (image_id, count - HISTORY_LIMIT),
            )
        ]
        _drop_rows(conn, oldest)


def step(
    conn: sqlite3.Connection, image_id: int, undo: bool, cache: MaskCache | None = None
) -> bool:
    """Undo the newest done operation (or redo the oldest undone one) of `image_id`."""
    if undo:
        sql = "SELECT id, atoms, blob FROM history WHERE image_id = ? AND undone = 0 ORDER BY seq DESC LIMIT 1"
    else:
        sql = "SELECT id, atoms, blob FROM history WHERE image_id = ? AND undone = 1 ORDER BY seq LIMIT 1"
    row = conn.execute(sql, (image_id,)).fetchone()
    if row is None:
        return False
    hid, atoms, blob = row
    apply_atoms(conn, json.loads(atoms), blob, forward=not undo, cache=cache)
    conn.execute("UPDATE history SET undone = ? WHERE id = ?", (1 if undo else 0, hid))
    return True


def label(conn: sqlite3.Connection, image_id: int, undo: bool) -> str | None:
    """The label of what undo (or redo) would do next, or None."""
    if undo:
        sql = (
            "SELECT label FROM history WHERE image_id = ? AND undone = 0 ORDER BY seq DESC LIMIT 1"
        )
    else:
        sql = "SELECT label FROM history WHERE image_id = ? AND undone = 1 ORDER BY seq LIMIT 1"
    row = conn.execute(sql, (image_id,)).fetchone()
    return None if row is None else str(row[0])


def clear(conn: sqlite3.Connection, image_id: int | None) -> None:
    """Forget the history of one image (or of all images) and purge what only it kept."""
    if image_id is None:
        conn.execute("DELETE FROM history_refs")
        conn.execute("DELETE FROM history")
        conn.execute("DELETE FROM annotations WHERE alive = 0")
        return
    ids = [r[0] for r in conn.execute("SELECT id FROM history WHERE image_id = ?", (image_id,))]
    _drop_rows(conn, ids)
    conn.execute("DELETE FROM annotations WHERE image_id = ? AND alive = 0", (image_id,))


def _drop_rows(conn: sqlite3.Connection, history_ids: list[int]) -> None:
    if not history_ids:
        return
    marks = ",".join("?" * len(history_ids))
    candidates = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT annotation_id FROM history_refs WHERE history_id IN ({marks})",
            history_ids,
        )
    ]
    conn.execute(f"DELETE FROM history_refs WHERE history_id IN ({marks})", history_ids)
    conn.execute(f"DELETE FROM history WHERE id IN ({marks})", history_ids)
    if candidates:
        cmarks = ",".join("?" * len(candidates))
        conn.execute(
            f"DELETE FROM annotations WHERE id IN ({cmarks}) AND alive = 0 AND NOT EXISTS "
            "(SELECT 1 FROM history_refs r WHERE r.annotation_id = annotations.id)",
            candidates,
        )
