"""Categories of a project: add, rename, recolour, and the clean-ups an annotator needs,
deleting a category and merging one into another.

Every method is one SQLite transaction. Categories are project-wide while the undo
history is per image (history.py), so deleting or merging a category is not one undo
step. What it does to annotations stays safe instead:

- moved annotations (merge, or delete "moving them to" another category) take the
  other category; older undo steps and the annotations kept for them that name the
  deleted category are pointed at that one too, so undoing them later never brings a
  deleted category back (the move itself is not an undo step: its inverse would need
  the deleted category);
- deleted annotations (delete "with its annotations") are one undo step of each image
  they were on; that undo brings them back without a category (the category is gone),
  and older undo steps naming it restore "no category" as well.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from samstudio.core.document import history
from samstudio.core.document.records import Category
from samstudio.core.document.rows import EditError, check_color
from samstudio.core.store import Store

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


@dataclass(frozen=True)
class CategoryUsage:
    """How many (alive) annotations have a category, and on how many images."""

    annotations: int
    images: int


@dataclass(frozen=True)
class CategoryRemoval:
    """What deleting a category did: its name, the target's name when its annotations
    were moved (None when they were deleted), how many annotations on how many images."""

    name: str
    into: str | None
    annotations: int
    images: int


class CategoryEditing:
    """The category methods of a `Project` (a mixin over its store)."""

    store: Store
    path: Path
    # (image id, operation) while `AnnotationEditing.operation` is open
    _group: tuple[int, history.Operation] | None

    def categories(self) -> list[Category]:
        """Every category, oldest first (the order of the Ctrl+1..9 keys)."""
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
            check_color(self.path, color)
            cur = conn.execute(
                "INSERT INTO categories (name, color, supercategory) VALUES (?, ?, ?)",
                (name, color.lower(), supercategory),
            )
            return Category(int(cur.lastrowid or 0), name, color.lower(), supercategory)

    def category_named(self, name: str) -> Category | None:
        """The category called exactly `name` (surrounding blanks ignored), or None."""
        return next((c for c in self.categories() if c.name == name.strip()), None)

    def rename_category(self, category_id: int, name: str) -> None:
        """Rename; EditError when another category has the name (merge into it instead,
        `merge_category`)."""
        name = name.strip()
        if not name:
            raise EditError(self.path, "a category needs a name")
        with self.store.transaction(f"renaming category {category_id}") as conn:
            self._category_name(conn, category_id)
            clash = conn.execute(
                "SELECT id FROM categories WHERE name = ? AND id != ?", (name, category_id)
            ).fetchone()
            if clash:
                raise EditError(self.path, f"a category named {name!r} already exists")
            conn.execute("UPDATE categories SET name = ? WHERE id = ?", (name, category_id))

    def recolor_category(self, category_id: int, color: str) -> None:
        check_color(self.path, color)
        with self.store.transaction(f"recolouring category {category_id}") as conn:
            self._category_name(conn, category_id)
            conn.execute(
                "UPDATE categories SET color = ? WHERE id = ?", (color.lower(), category_id)
            )

    def category_usage(self, category_id: int) -> CategoryUsage:
        """How many annotations have the category, on how many images."""
        with self.store.reading() as conn:
            n, images = conn.execute(
                "SELECT count(*), count(DISTINCT image_id) FROM annotations"
                " WHERE category_id = ? AND alive = 1",
                (category_id,),
            ).fetchone()
        return CategoryUsage(int(n), int(images))

    def merge_category(self, category_id: int, into: int) -> CategoryRemoval:
        """Move every annotation of `category_id` to `into` and delete `category_id`."""
        return self.delete_category(category_id, move_to=into)

    def delete_category(self, category_id: int, move_to: int | None = None) -> CategoryRemoval:
        """Delete a category. Its annotations move to `move_to`, or, when None, are
        deleted (one undo step per image; see the module's docstring).

        EditError when it is the project's last category (new masks need one), when
        `move_to` is the category itself or does not exist, or while an `operation`
        block is open. One transaction: on any error nothing changed.
        """
        if self._group is not None:
            raise EditError(self.path, "a category cannot be deleted inside an operation")
        with self.store.transaction(f"deleting category {category_id}") as conn:
            name = self._category_name(conn, category_id)
            into = None if move_to is None else self._category_name(conn, move_to)
            if move_to == category_id:
                raise EditError(self.path, f"category {name!r} cannot be merged into itself")
            if conn.execute("SELECT count(*) FROM categories").fetchone()[0] <= 1:
                raise EditError(
                    self.path,
                    f"{name!r} is the only category and new masks need one: "
                    "add another category first",
                )
            rows = conn.execute(
                "SELECT id, image_id FROM annotations WHERE category_id = ? AND alive = 1"
                " ORDER BY image_id, id",
                (category_id,),
            ).fetchall()
            if move_to is not None:
                conn.execute(
                    "UPDATE annotations SET category_id = ?, modified = ?"
                    " WHERE category_id = ? AND alive = 1",
                    (move_to, time.time(), category_id),
                )
            else:
                self._delete_per_image(conn, name, rows)
            # annotations kept only for undo, and the undo steps, that name it
            conn.execute(
                "UPDATE annotations SET category_id = ? WHERE category_id = ?",
                (move_to, category_id),
            )
            retarget_history(conn, category_id, move_to)
            conn.execute("DELETE FROM categories WHERE id = ?", (category_id,))
        return CategoryRemoval(name, into, len(rows), len({r[1] for r in rows}))

    def _delete_per_image(
        self, conn: sqlite3.Connection, name: str, rows: Iterable[tuple[int, int]]
    ) -> None:
        """Delete annotations (id, image id) as one undo step per image; their category
        is cleared first, so that undo brings them back without it."""
        by_image: dict[int, list[int]] = {}
        for aid, image_id in rows:
            by_image.setdefault(int(image_id), []).append(int(aid))
        for image_id, ids in by_image.items():
            conn.executemany(
                "UPDATE annotations SET category_id = NULL WHERE id = ?", [(a,) for a in ids]
            )
            what = "annotation" if len(ids) == 1 else f"{len(ids)} annotations"
            op = history.Operation(f"Delete {what} of deleted category {name!r}")
            for aid in ids:
                op.alive(aid, False)
            history.apply_atoms(conn, op.atoms, None, forward=True)
            history.record(conn, image_id, op)

    def _category_name(self, conn: sqlite3.Connection, category_id: int) -> str:
        row = conn.execute("SELECT name FROM categories WHERE id = ?", (category_id,)).fetchone()
        if row is None:
            raise EditError(self.path, f"no category with id {category_id}")
        return str(row[0])


def retarget_history(conn: sqlite3.Connection, old: int, new: int | None) -> int:
    """Point every category change in the undo history (done and undone steps) that
    names category `old` at `new` (None: no category). Returns how many history rows
    changed. A row whose atoms do not parse is left as it is (undoing it already fails
    with a message that names the image)."""
    changed = []
    rows = conn.execute("SELECT id, atoms FROM history WHERE atoms LIKE '%\"category_id\"%'")
    for hid, text in rows.fetchall():
        try:
            atoms = json.loads(text)
            hits = [
                (atom, key)
                for atom in atoms
                if atom.get("t") == "set" and atom.get("f") == "category_id"
                for key in ("old", "new")
                if atom.get(key) == old
            ]
        except (ValueError, TypeError, AttributeError, RecursionError):
            continue
        for atom, key in hits:
            atom[key] = new
        if hits:
            changed.append((json.dumps(atoms, separators=(",", ":")), hid))
    conn.executemany("UPDATE history SET atoms = ? WHERE id = ?", changed)
    return len(changed)
