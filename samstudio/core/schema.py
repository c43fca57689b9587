"""The SQL schema of a SAM Studio project file, its version, and forward migrations.

The schema version lives in `PRAGMA user_version`. A new file is built by running the
version-1 DDL and then every migration in order, so the migration path is exercised
every time a project is created. Migrations only ever go forward; a file with a
version newer than `SCHEMA_VERSION` is refused (see `store.ProjectVersionError`).

Tables (version 6):
- images: one row per image file; `path` is relative to the project root (POSIX
  separators); `width`/`height` are the displayed frame (EXIF orientation applied);
  `content_hash` is the SHA-256 of the file's bytes; `error` is set when the file could
  not be read. `file_size` and `file_mtime_ns` (added in version 5, NULL until known) are
  the file's size and modification time when `content_hash` was taken: a file whose stamp
  differs is hashed again to see whether it was replaced (document/image_files.py).
- categories: `color` is '#rrggbb'.
- annotations: `id` is AUTOINCREMENT (since version 3): an id is never given to a
  second annotation of the project, even after the one holding it is purged (ids are
  exported, and the window keeps them). `counts` holds the COCO compressed RLE counts
  (ASCII bytes) of the full (height, width) mask, column-major as pycocotools writes
  them; bbox is XYWH pixels; `iscrowd` (added in version 4) = 1 marks a COCO crowd
  region (exported as RLE with iscrowd 1; 0 for every annotation of an older file);
  `alive` = 0 marks an annotation removed by an operation that may still be undone.
  Index (image_id, alive) serves "list one image's annotations".
- history: one row per undoable operation, per image, ordered by `seq`; `undone` = 1
  rows form the redo stack. `atoms` is JSON (see document/history.py) and `blob` holds
  the concatenated mask diffs the atoms point into. Index (image_id, seq).
- history_refs (added in version 2): which annotations each history row touches, so
  that annotations kept only for undo can be purged when their history goes away.
- external_ids (added in version 6): the ids a COCO file gave the images, categories
  and annotations it was imported into (`kind` 'image', 'category' or 'annotation',
  `local_id` the row's id here, `external_id` the file's), and `fields`, a JSON object
  of the item's other keys that the project has no column for (an annotation's
  `attributes`, an image's `license` ...), so that an export can write them back
  (document/external_ids.py). Kept apart from the rows they describe, so nothing that
  reads those rows changes. Triggers drop an item's entry when its row is deleted
  (a purged annotation, a deleted or merged category): a category id can be given
  again, and must not inherit the deleted one's. The COCO `info` and `licenses` of the
  first import are in meta (keys 'coco_info', 'coco_licenses', JSON).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 6
APPLICATION_ID = 0x53414D53  # "SAMS": marks the file as a SAM Studio project

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'in_progress', 'done')),
    note TEXT NOT NULL DEFAULT '',
    error TEXT
);
CREATE INDEX images_hash ON images (content_hash);
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL,
    supercategory TEXT NOT NULL DEFAULT ''
);
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images (id),
    category_id INTEGER REFERENCES categories (id),
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    counts BLOB NOT NULL,
    bbox_x INTEGER NOT NULL,
    bbox_y INTEGER NOT NULL,
    bbox_w INTEGER NOT NULL,
    bbox_h INTEGER NOT NULL,
    area INTEGER NOT NULL,
    source TEXT NOT NULL,
    predicted_iou REAL,
    stability_score REAL,
    prompts TEXT,
    author TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    modified REAL NOT NULL,
    alive INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX annotations_image ON annotations (image_id, alive);
CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images (id),
    seq INTEGER NOT NULL,
    label TEXT NOT NULL,
    atoms TEXT NOT NULL,
    blob BLOB,
    undone INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE UNIQUE INDEX history_image_seq ON history (image_id, seq);
"""


class MigrationError(ValueError):
    """The file's contents do not fit the migration (damaged rows it cannot skip)."""


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Add history_refs and fill it from the annotation ids named in each row's atoms.

    When a history row's atoms do not parse, that image's undo history is dropped
    (history is only undo data: older rows would not fit without the damaged one);
    its annotations are untouched.
    """
    conn.execute(
        "CREATE TABLE history_refs ("
        " history_id INTEGER NOT NULL REFERENCES history (id),"
        " annotation_id INTEGER NOT NULL)"
    )
    conn.execute("CREATE INDEX history_refs_history ON history_refs (history_id)")
    conn.execute("CREATE INDEX history_refs_annotation ON history_refs (annotation_id)")
    rows = conn.execute("SELECT id, image_id, atoms FROM history").fetchall()
    refs: list[tuple[int, int, int]] = []
    damaged: set[int] = set()
    for hid, image_id, atoms in rows:
        try:
            ids = sorted({int(atom["id"]) for atom in json.loads(atoms)})
        except (ValueError, TypeError, KeyError, RecursionError):
            damaged.add(image_id)
            continue
        refs.extend((image_id, hid, aid) for aid in ids)
    for image_id in sorted(damaged):
        conn.execute("DELETE FROM history WHERE image_id = ?", (image_id,))
        conn.execute("DELETE FROM annotations WHERE image_id = ? AND alive = 0", (image_id,))
    refs = [ref for ref in refs if ref[0] not in damaged]
    conn.executemany(
        "INSERT INTO history_refs (history_id, annotation_id) VALUES (?, ?)",
        [(hid, aid) for _, hid, aid in refs],
    )


_ANNOTATIONS_V3 = """
CREATE TABLE annotations_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images (id),
    category_id INTEGER REFERENCES categories (id),
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    counts BLOB NOT NULL,
    bbox_x INTEGER NOT NULL,
    bbox_y INTEGER NOT NULL,
    bbox_w INTEGER NOT NULL,
    bbox_h INTEGER NOT NULL,
    area INTEGER NOT NULL,
    source TEXT NOT NULL,
    predicted_iou REAL,
    stability_score REAL,
    prompts TEXT,
    author TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    modified REAL NOT NULL,
    alive INTEGER NOT NULL DEFAULT 1
)
"""


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Rebuild `annotations` with AUTOINCREMENT ids, so that purging the annotation with
    the highest id no longer hands its id to the next one.

    SQLite cannot add AUTOINCREMENT to a table: the rows are copied, ids and columns
    unchanged, into a new table that then takes the old one's name and index (its
    documented way to change a table). The id counter starts above every id the file
    still knows, the annotations' own and those its undo history names.
    """
    columns = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(annotations)"))
    # An annotation whose category row is gone (deleted outside SAM Studio, with foreign
    # keys off) opened fine in version 2; the copy below checks foreign keys, so such an
    # annotation is kept without a category (as the app treats one with no usable
    # category) instead of refusing the file.
    conn.execute(
        "UPDATE annotations SET category_id = NULL WHERE category_id IS NOT NULL"
        " AND category_id NOT IN (SELECT id FROM categories)"
    )
    conn.execute(_ANNOTATIONS_V3)
    try:
        conn.execute(f"INSERT INTO annotations_v3 ({columns}) SELECT {columns} FROM annotations")
    except sqlite3.IntegrityError as exc:  # a row the same constraints once let in: damage
        raise MigrationError(f"schema 2 -> 3: an annotation row is damaged ({exc})") from exc
    conn.execute("DROP TABLE annotations")
    conn.execute("ALTER TABLE annotations_v3 RENAME TO annotations")
    conn.execute("CREATE INDEX annotations_image ON annotations (image_id, alive)")
    top = conn.execute(
        "SELECT max(coalesce((SELECT max(id) FROM annotations), 0),"
        " coalesce((SELECT max(annotation_id) FROM history_refs), 0))"
    ).fetchone()[0]
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'annotations'")
    conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('annotations', ?)", (top,))


def _v3_to_v4(conn: sqlite3.Connection) -> None:
    """Add `annotations.iscrowd` (COCO's crowd flag), 0 for every existing annotation.

    `ADD COLUMN` changes only the table's schema entry: rows written before keep their
    bytes and read the default, so this costs no pass over the table and works on a
    damaged file too (a read-only open runs it on its in-memory copy, where the column
    must exist for reading).
    """
    conn.execute("ALTER TABLE annotations ADD COLUMN iscrowd INTEGER NOT NULL DEFAULT 0")


def _v4_to_v5(conn: sqlite3.Connection) -> None:
    """Add `images.file_size` and `images.file_mtime_ns`, NULL (not known yet) for every
    existing image: the first check of each file hashes it once and records them. Like
    3 -> 4, only the schema entry changes (no pass over the table)."""
    conn.execute("ALTER TABLE images ADD COLUMN file_size INTEGER")
    conn.execute("ALTER TABLE images ADD COLUMN file_mtime_ns INTEGER")


_EXTERNAL_IDS = """
CREATE TABLE external_ids (
    kind TEXT NOT NULL CHECK (kind IN ('image', 'category', 'annotation')),
    local_id INTEGER NOT NULL,
    external_id INTEGER NOT NULL,
    fields TEXT,
    PRIMARY KEY (kind, local_id)
) WITHOUT ROWID
"""
# kind -> the table whose deleted rows take their remembered ids with them
_REMEMBERED_OF = {"image": "images", "category": "categories", "annotation": "annotations"}


def _v5_to_v6(conn: sqlite3.Connection) -> None:
    """Add `external_ids` (empty: an older file remembers no imported ids and exports
    with its own ids, as before) and the triggers that drop an entry with its row. A
    read-only open runs it on its in-memory copy too: exports read the table."""
    conn.execute(_EXTERNAL_IDS)
    for kind, table in _REMEMBERED_OF.items():
        conn.execute(
            f"CREATE TRIGGER external_ids_{kind}_gone AFTER DELETE ON {table} BEGIN"
            f" DELETE FROM external_ids WHERE kind = '{kind}' AND local_id = OLD.id; END"
        )


def _create_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)


# MIGRATIONS[n] turns a version-n file into a version-(n + 1) file.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}
# Migrations that change only how later writes behave, not what is read (2 -> 3: ids).
# A read-only open migrates a copy in memory and skips these: they cost a pass over
# the table and would fail on a damaged file that can still be read and exported.
# (3 -> 4 and 4 -> 5 add columns that reads need, and 5 -> 6 a table that exports
# read, so they run on the copy too.)
FOR_WRITING_ONLY = frozenset({2})


def create(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> None:
    """Build the schema in an empty database, inside the caller's transaction.

    `upto` < SCHEMA_VERSION builds an older file (used to test migrations).
    """
    _create_v1(conn)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    migrate(conn, 1, upto)


def migrate(
    conn: sqlite3.Connection,
    from_version: int,
    to_version: int = SCHEMA_VERSION,
    *,
    reading: bool = False,
) -> None:
    """Run the forward migrations from `from_version` to `to_version`, inside the caller's
    transaction, and stamp the new version. Raises MigrationError when the contents
    do not fit (the caller rolls back).

    `reading`: the database is a copy that will only be read; FOR_WRITING_ONLY
    migrations are skipped (the version is stamped all the same)."""
    for version in range(from_version, to_version):
        try:
            if not (reading and version in FOR_WRITING_ONLY):
                MIGRATIONS[version](conn)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            if isinstance(exc, MigrationError):
                raise
            raise MigrationError(f"schema {version} -> {version + 1}: {exc}") from exc
        conn.execute(f"PRAGMA user_version = {version + 1}")
