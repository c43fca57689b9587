"""Annotation ids never name a second annotation within a project.

Ids are handed out: to the window (its selection and its set of hidden masks), in
exported files (COCO `id`), in undo history. When the annotation with the highest id
is purged (its add undone and the redo stack dropped, or its history cleared), an
`INTEGER PRIMARY KEY` without AUTOINCREMENT gives the next annotation that same id:
a mask the user hid and undid made the next new mask hidden, and two exports of one
project used one id for two different masks.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.core import schema
from samstudio.core.document import Project
from samstudio.core.document.exchange import export_project

H, W = 32, 40


def _rect(y0: int, x0: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0 : y0 + 6, x0 : x0 + 8] = True
    return m


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(2):
        Image.fromarray(np.full((H, W, 3), 30 * i, np.uint8)).save(root / f"im{i}.png")
    return root


def _exported_ids(project: Project, out: Path) -> dict[int, dict]:
    export_project(project, "coco-rle", out)
    data = json.loads(out.read_text())
    return {int(a["id"]): a["segmentation"] for a in data["annotations"]}


def test_an_undone_annotation_id_is_not_given_to_the_next_one(folder: Path, tmp_path: Path) -> None:
    with Project.create(folder) as project:
        img = project.images()[0].id
        first = project.add_annotation(img, _rect(0, 0), None)
        second = project.add_annotation(img, _rect(10, 10), None)
        earlier = _exported_ids(project, tmp_path / "before.json")
        assert second.id in earlier
        assert project.undo(img)  # takes the second mask back ...
        cat = project.add_category("leaf")
        project.set_category(first.id, cat.id)  # ... a new edit drops it from redo (purged)
        third = project.add_annotation(img, _rect(20, 25), None)
        assert third.id != second.id, (
            f"the new annotation got id {third.id}, the id of the annotation undone before"
        )
        later = _exported_ids(project, tmp_path / "after.json")
        reused = {i for i in set(earlier) & set(later) if earlier[i] != later[i]}
        assert not reused, f"exports name different masks with the same ids {sorted(reused)}"


def test_ids_stay_unique_after_clearing_the_history_and_reopening(folder: Path) -> None:
    with Project.create(folder) as project:
        img = project.images()[0].id
        project.add_annotation(img, _rect(0, 0), None)
        last = project.add_annotation(img, _rect(10, 10), None)
        project.delete_annotation(last.id)
        project.clear_history(img)  # the deleted annotation is purged
        path = project.path
    with Project.open(path) as project:
        img2 = project.images()[1].id
        new = project.add_annotations(img2, [_rect(1, 1), _rect(2, 2)], None, "manual")
        assert all(ann.id > last.id for ann in new), [ann.id for ann in new]
        assert [ann.id for ann in new] == [new[0].id, new[0].id + 1]


def _version_2_file(path: Path) -> list[tuple]:
    """A schema-2 project with two annotations (one deleted, undoable) and its history;
    returns its annotation rows."""
    from samstudio.core.document import history

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    schema.create(conn, upto=2)
    conn.execute("INSERT INTO meta VALUES ('root', '.')")
    conn.execute("INSERT INTO images (id, path, width, height) VALUES (1, 'im0.png', ?, ?)", (W, H))
    for aid, alive, (y, x) in ((4, 1, (0, 0)), (9, 0, (10, 10))):
        counts, bbox, area = history.encode_mask_columns(_rect(y, x))
        conn.execute(
            "INSERT INTO annotations (id, image_id, height, width, counts, bbox_x, bbox_y, "
            "bbox_w, bbox_h, area, source, prompts, author, created, modified, alive) "
            "VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, 'manual', '{\"points\": [[1, 2]]}', 'me', "
            "1.5, 2.5, ?)",
            (aid, H, W, counts, *bbox, area, alive),
        )
    for seq, atoms in (
        (1, [{"t": "alive", "id": 4, "new": 1}]),
        (2, [{"t": "alive", "id": 9, "new": 0}]),
    ):
        cur = conn.execute(
            "INSERT INTO history (image_id, seq, label, atoms, created) VALUES (1, ?, ?, ?, 0)",
            (seq, f"step {seq}", json.dumps(atoms)),
        )
        conn.execute(
            "INSERT INTO history_refs (history_id, annotation_id) VALUES (?, ?)",
            (cur.lastrowid, atoms[0]["id"]),
        )
    conn.execute("COMMIT")
    rows = conn.execute("SELECT * FROM annotations ORDER BY id").fetchall()
    conn.close()
    return rows


def test_a_version_2_file_migrates_and_keeps_its_annotations_and_history(
    folder: Path,
) -> None:
    path = folder / "project.samstudio"
    rows = _version_2_file(path)
    with Project.open(path, read_only=True) as reader:  # migrates a copy in memory only
        assert [a.id for a in reader.annotations(1)] == [4]
        assert reader.undo_label(1) == "step 2"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # the file is untouched
    conn.close()
    with Project.open(path) as project:
        conn = project.store.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        # every cell kept; version 4 added iscrowd (0) after them
        assert conn.execute("SELECT * FROM annotations ORDER BY id").fetchall() == [
            (*row, 0) for row in rows
        ]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(annotations)")}
        assert "annotations_image" in indexes
        assert project.undo(1) and [a.id for a in project.annotations(1)] == [4, 9]
        assert project.redo(1) and [a.id for a in project.annotations(1)] == [4]
        assert project.undo(1)  # 9 is back; now make the highest id go away for good
        project.delete_annotation(9)
        project.clear_history(1)
        new = project.add_annotation(1, _rect(20, 20), None)
        assert new.id > 9


def test_a_damaged_version_2_file_still_opens_read_only_to_salvage(folder: Path) -> None:
    from samstudio.core.document import history

    path = folder / "project.samstudio"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    schema.create(conn, upto=2)
    conn.execute("INSERT INTO meta VALUES ('root', '.')")
    conn.execute("INSERT INTO images (id, path, width, height) VALUES (1, 'im0.png', ?, ?)", (W, H))
    noise = np.random.default_rng(0)
    for _ in range(300):
        counts, bbox, area = history.encode_mask_columns(noise.random((H, W)) < 0.5)
        conn.execute(
            "INSERT INTO annotations (image_id, height, width, counts, bbox_x, bbox_y, bbox_w, "
            "bbox_h, area, source, created, modified) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, 'manual', 0, 0)",
            (H, W, counts, *bbox, area),
        )
    conn.execute("COMMIT")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    n_pages = len(data) // page
    for p in range(n_pages - 3, n_pages - 1):  # trash two pages of annotations
        data[p * page + 8 : (p + 1) * page] = np.random.default_rng(1).bytes(page - 8)
    path.write_bytes(bytes(data))
    with Project.open(path, read_only=True) as project:
        assert project.problems
        salvaged, _ = project.salvage_annotations()
        assert 0 < len(salvaged) < 300
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # the file is untouched
    conn.close()


def test_a_version_2_file_with_an_annotation_of_a_deleted_category_migrates(
    folder: Path,
) -> None:
    """An annotation whose category row is gone (deleted with the sqlite3 shell, where
    foreign keys are off) opened for writing in version 2; it must still after the
    migration, the annotation kept without a category (found by review)."""
    path = folder / "project.samstudio"
    _version_2_file(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE annotations SET category_id = 77 WHERE id = 4")  # no category 77
    conn.commit()
    conn.close()
    with Project.open(path) as project:
        (ann,) = project.annotations(1)
        assert ann.id == 4 and ann.category_id is None
        assert project.store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
