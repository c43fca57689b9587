"""COCO crowd regions (`iscrowd`) survive a project: import, edits, undo, export, migration.

Found by review: a project had no place for `iscrowd`, so COCO -> project -> COCO
turned every crowd region into an ordinary instance (which COCOeval then scores as a
missed object instead of ignoring). Schema version 4 keeps the flag.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from rle_runs import uncompressed_counts

from samstudio.core import schema
from samstudio.core.document import Project
from samstudio.core.document.exchange import export_project, import_file

H, W = 40, 60


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


# The crowd region has two separate parts (a group of people far apart), the person one.
CROWD = _rect(2, 12, 2, 20) | _rect(25, 38, 35, 58)
PERSON = _rect(15, 30, 10, 25)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(root / "a.png")
    return root


def _coco_file(path: Path) -> Path:
    """A COCO instances file as COCO itself writes one: the crowd region as uncompressed
    RLE (column-major run lengths) with iscrowd 1, the person as a polygon."""
    runs = uncompressed_counts(CROWD)
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
        "categories": [{"id": 1, "name": "person", "supercategory": "human"}],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [H, W], "counts": runs},
                "area": int(CROWD.sum()),
                "bbox": [2, 2, 56, 36],
                "iscrowd": 1,
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[10, 15, 25, 15, 25, 30, 10, 30]],
                "area": 225,
                "bbox": [10, 15, 15, 15],
                "iscrowd": 0,
            },
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def _imported(folder: Path, tmp_path: Path) -> Project:
    project = Project.create(folder)
    summary = import_file(project, _coco_file(tmp_path / "gt.json"))
    assert summary.annotations_added == 2
    assert summary.conflicts == [], summary.conflicts  # iscrowd is no longer dropped
    return project


def _crowd_and_person(project: Project) -> tuple[int, int]:
    anns = project.annotations(1)
    crowd = [a.id for a in anns if a.iscrowd]
    person = [a.id for a in anns if not a.iscrowd]
    assert len(crowd) == 1 and len(person) == 1, [(a.id, a.iscrowd) for a in anns]
    assert np.array_equal(project.mask(crowd[0]), CROWD)
    return crowd[0], person[0]


@pytest.mark.parametrize("style", ["coco-rle", "coco-polygon"])
def test_coco_crowd_regions_come_back_from_a_project_as_crowd_rle(
    folder: Path, tmp_path: Path, style: str
) -> None:
    with _imported(folder, tmp_path) as project:
        path = project.path
    with Project.open(path) as project:  # kept in the file, not only in memory
        crowd_id, person_id = _crowd_and_person(project)
        out = tmp_path / "out.json"
        _, problems = export_project(project, style, out)
    assert problems == []
    coco = COCO(str(out))
    # the file's own ids come back (schema version 6, external_ids.py), not the project's
    assert (crowd_id, person_id) != (10, 11)
    crowd, person = coco.loadAnns([10, 11])
    assert crowd["iscrowd"] == 1 and person["iscrowd"] == 0
    assert isinstance(crowd["segmentation"], dict)  # RLE, never polygons
    assert set(crowd["segmentation"]) == {"size", "counts"}
    assert np.array_equal(coco.annToMask(crowd).astype(bool), CROWD)
    assert isinstance(person["segmentation"], list if style == "coco-polygon" else dict)
    # pycocotools' own crowd index: COCOeval ignores this region rather than scoring it
    assert coco.getAnnIds(imgIds=[1], iscrowd=False) == [11]


def test_sa1b_export_of_a_project_marks_the_crowd_region(folder: Path, tmp_path: Path) -> None:
    from samstudio.core.formats.detect import import_annotations

    with _imported(folder, tmp_path) as project:
        _crowd_and_person(project)
        out = tmp_path / "sa1b"
        export_project(project, "sa1b", out)
    crowd_id, person_id = 10, 11  # the COCO file's ids come back (external_ids.py)
    (file,) = out.glob("*.json")
    by_id = {a["id"]: a for a in json.loads(file.read_text())["annotations"]}
    assert by_id[crowd_id]["iscrowd"] == 1
    assert "iscrowd" not in by_id[person_id]  # written only when true
    back, _, _ = import_annotations(out)
    assert {a.id: a.iscrowd for a in back.annotations} == {crowd_id: True, person_id: False}


def test_edits_and_their_undo_and_redo_keep_a_crowd_region_a_crowd_region(
    folder: Path, tmp_path: Path
) -> None:
    with _imported(folder, tmp_path) as project:
        crowd_id, _ = _crowd_and_person(project)
        people = project.add_category("people")

        project.set_category(crowd_id, people.id)
        assert project.annotation(crowd_id).iscrowd
        assert project.undo(1) and project.annotation(crowd_id).category_id != people.id
        assert project.annotation(crowd_id).iscrowd
        assert project.redo(1) and project.annotation(crowd_id).category_id == people.id
        assert project.annotation(crowd_id).iscrowd

        project.paint(crowd_id, _rect(0, 2, 0, 10), True)  # a brush stroke edits the mask
        assert project.annotation(crowd_id).source == "edited"
        assert project.annotation(crowd_id).iscrowd
        assert project.undo(1) and project.annotation(crowd_id).iscrowd

        parts = project.split(crowd_id)  # its two parts stay crowd regions
        assert len(parts) == 2 and all(p.iscrowd for p in parts)
        assert project.undo(1)
        assert project.annotation(crowd_id).iscrowd
        assert project.redo(1)
        assert sorted(a.iscrowd for a in project.annotations(1)) == [False, True, True]

        merged = project.merge([parts[0].id, parts[1].id])
        assert merged.iscrowd and np.array_equal(project.mask(merged.id), CROWD)
        fresh = project.add_annotation(1, _rect(0, 5, 50, 60), people.id)
        assert fresh.iscrowd is False  # a new mask is an ordinary instance


def _version_3_file(path: Path) -> list[tuple]:
    """A schema-3 project with an annotation (prompts, author, scores) and one undo
    step that deleted a second one; returns its annotation rows."""
    from samstudio.core.document import history

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    schema.create(conn, upto=3)
    conn.execute("INSERT INTO meta VALUES ('root', '.')")
    conn.execute("INSERT INTO images (id, path, width, height) VALUES (1, 'a.png', ?, ?)", (W, H))
    conn.execute("INSERT INTO categories (id, name, color) VALUES (3, 'person', '#ff0000')")
    for aid, alive, mask in ((4, 1, PERSON), (9, 0, CROWD)):
        counts, bbox, area = history.encode_mask_columns(mask)
        conn.execute(
            "INSERT INTO annotations (id, image_id, category_id, height, width, counts, bbox_x, "
            "bbox_y, bbox_w, bbox_h, area, source, predicted_iou, stability_score, prompts, "
            "author, created, modified, alive) VALUES (?, 1, 3, ?, ?, ?, ?, ?, ?, ?, ?, "
            "'manual', 0.9, 0.95, '{\"points\": [[1, 2]]}', 'me', 1.5, 2.5, ?)",
            (aid, H, W, counts, *bbox, area, alive),
        )
    cur = conn.execute(
        "INSERT INTO history (image_id, seq, label, atoms, created) VALUES (1, 1, 'Delete', ?, 0)",
        (json.dumps([{"t": "alive", "id": 9, "new": 0}]),),
    )
    conn.execute(
        "INSERT INTO history_refs (history_id, annotation_id) VALUES (?, 9)", (cur.lastrowid,)
    )
    conn.execute("COMMIT")
    rows = conn.execute("SELECT * FROM annotations ORDER BY id").fetchall()
    conn.close()
    return rows


def test_a_version_3_file_opens_with_no_crowd_regions_and_keeps_everything_else(
    folder: Path, tmp_path: Path
) -> None:
    path = folder / "project.samstudio"
    rows = _version_3_file(path)
    with Project.open(path, read_only=True) as reader:  # migrates a copy in memory only
        (ann,) = reader.annotations(1)
        assert (ann.id, ann.iscrowd, ann.author, ann.prompts) == (
            4,
            False,
            "me",
            {"points": [[1, 2]]},
        )
        assert reader.undo_label(1) == "Delete"
        _, problems = export_project(reader, "coco-rle", tmp_path / "read_only.json")
        assert problems == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3  # the file is untouched
    conn.close()
    with Project.open(path) as project:
        conn = project.store.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION >= 4
        assert conn.execute("SELECT * FROM annotations ORDER BY id").fetchall() == [
            (*row, 0)
            for row in rows  # every cell kept, iscrowd 0 added
        ]
        assert project.undo(1) and [a.iscrowd for a in project.annotations(1)] == [False, False]
        new = project.add_annotation(1, CROWD, None)
        assert new.id > 9  # the id counter of version 3 is kept
    doc = json.loads((tmp_path / "read_only.json").read_text())
    assert [(a["id"], a["iscrowd"]) for a in doc["annotations"]] == [(4, 0)]
