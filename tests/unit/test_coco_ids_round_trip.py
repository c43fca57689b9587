"""A COCO file imported into a project and exported again keeps its ids, its
annotations' extra fields (`attributes`), `info` and `licenses` (schema version 6,
document/external_ids.py), so the export can still be scored against the original
ground truth: pycocotools matches results by image id and category id.

Found by a researcher: `samstudio import` then `samstudio export` renumbered category
`c` 4 -> 3, image 40 -> 2 and every annotation, and dropped `attributes`."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from samstudio.cli.main import main
from samstudio.core import schema
from samstudio.core.document import Project
from samstudio.core.document.exchange import export_project, import_file
from samstudio.core.masks import encode_rle

INFO = {"description": "field survey", "year": 2023, "version": "1.2"}
LICENSES = [{"id": 3, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}]


def _box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


# file image id -> (file name, height, width); annotation id -> (image, category, mask, extra)
IMAGES = {40: ("x.png", 40, 60), 7: ("y.png", 30, 50)}
ANNOTATIONS: dict[int, tuple[int, int, np.ndarray, dict[str, Any]]] = {
    101: (40, 4, _box(40, 60, 5, 20, 10, 30), {"attributes": {"occluded": True, "note": "ß"}}),
    55: (7, 9, _box(30, 50, 2, 12, 4, 40), {"attributes": {"occluded": False}}),
    80: (40, 9, _box(40, 60, 22, 38, 35, 58), {"attributes": {}, "source_tool": "cvat"}),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(1)
    for name, h, w in IMAGES.values():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / name)
    return root


@pytest.fixture
def gt_file(tmp_path: Path) -> Path:
    """The COCO file of IMAGES and ANNOTATIONS, with INFO and LICENSES."""
    return _coco(tmp_path / "gt.json")


def _coco(
    path: Path,
    annotations: dict[int, tuple[int, int, np.ndarray, dict[str, Any]]] = ANNOTATIONS,
    images: dict[int, tuple[str, int, int]] = IMAGES,
    categories: tuple[tuple[int, str], ...] = ((4, "cat"), (9, "dog")),
    top: dict[str, Any] | None = None,
) -> Path:
    """A COCO instances file with the file's own (non-consecutive) ids."""
    doc = {
        **({"info": INFO, "licenses": LICENSES} if top is None else top),
        "images": [
            {
                "id": i,
                "file_name": n,
                "height": h,
                "width": w,
                "license": 3,
                "coco_url": f"http://x/{n}",
            }
            for i, (n, h, w) in images.items()
        ],
        "categories": [{"id": i, "name": n, "supercategory": "animal"} for i, n in categories],
        "annotations": [
            {
                **extra,
                "id": aid,
                "image_id": image,
                "category_id": cat,
                "segmentation": encode_rle(mask),
                "area": int(mask.sum()),
                "bbox": [0, 0, 1, 1],
                "iscrowd": 0,
            }
            for aid, (image, cat, mask, extra) in annotations.items()
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def _exported(
    project: Project, out: Path, to: str = "coco-rle"
) -> tuple[dict[str, Any], list[str]]:
    result = export_project(project, to, out)
    assert result.problems == []
    return json.loads(out.read_text()), result.notes()


@pytest.mark.parametrize("style", ["coco-rle", "coco-polygon"])
def test_ids_attributes_info_and_licenses_come_back(
    folder: Path, gt_file: Path, tmp_path: Path, style: str
) -> None:
    with Project.create(folder) as project:
        summary = import_file(project, gt_file)
        assert summary.annotations_added == 3 and summary.conflicts == []
        # the project numbers things its own way ...
        assert sorted(c.id for c in project.categories()) == [1, 2]
        doc, notes = _exported(project, tmp_path / "out.json", style)
    # ... and the export writes the file's ids back
    assert notes == []
    assert {i["id"]: i["file_name"] for i in doc["images"]} == {40: "x.png", 7: "y.png"}
    assert all(i["license"] == 3 and i["coco_url"].endswith(i["file_name"]) for i in doc["images"])
    assert {c["id"]: c["name"] for c in doc["categories"]} == {4: "cat", 9: "dog"}
    got = {a["id"]: a for a in doc["annotations"]}
    assert set(got) == set(ANNOTATIONS)
    for aid, (image, cat, _, extra) in ANNOTATIONS.items():
        assert (got[aid]["image_id"], got[aid]["category_id"]) == (image, cat)
        assert {k: got[aid].get(k) for k in extra} == extra
    assert doc["info"] == INFO and doc["licenses"] == LICENSES
    # pycocotools reads it, and each mask is the file's own
    coco, truth = COCO(str(tmp_path / "out.json")), COCO(str(gt_file))
    for aid in ANNOTATIONS:
        iou = _iou(coco.annToMask(coco.anns[aid]), truth.annToMask(truth.anns[aid]))
        assert iou == 1.0 if style == "coco-rle" else iou > 0.9


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _average_precision(gt_file: Path, exported: dict[str, Any]) -> float:
    """COCO segm AP of the exported annotations as results against the original file."""
    truth = COCO(str(gt_file))
    results = [{**a, "score": 1.0} for a in exported["annotations"]]
    evaluation = COCOeval(truth, truth.loadRes(results), "segm")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def test_the_export_scores_ap_1_against_the_original_ground_truth(
    folder: Path, gt_file: Path, tmp_path: Path
) -> None:
    with Project.create(folder) as project:
        import_file(project, gt_file)
        doc, _ = _exported(project, tmp_path / "out.json")
    assert _average_precision(gt_file, doc) == pytest.approx(1.0)


def test_the_researchers_commands_keep_the_datumaro_files_ids(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`samstudio project init; import; export --format coco-rle` on the file with
    category `c` id 4, image 40 and `attributes` that the researcher reported."""
    source = shared_data / "coco_instance_seg" / "datumaro_coco_instances"
    gt_file = source / "annotations" / "instances_val.json"
    project = tmp_path / "proj1"
    project.mkdir()
    (project / "b.jpg").write_bytes((source / "images" / "val" / "b.jpg").read_bytes())
    out = tmp_path / "x.json"
    for argv in (
        ["project", "init", str(project)],
        ["import", str(project), str(gt_file)],
        ["export", str(project), "--format", "coco-rle", "--out", str(out)],
    ):
        assert main(argv) == 0, capsys.readouterr()
    original, doc = json.loads(gt_file.read_text()), json.loads(out.read_text())
    assert [i["id"] for i in doc["images"]] == [40]
    assert {c["id"]: c["name"] for c in doc["categories"]} == {1: "a", 2: "b", 4: "c"}
    assert {a["id"]: (a["category_id"], a.get("attributes")) for a in doc["annotations"]} == {
        a["id"]: (a["category_id"], a.get("attributes")) for a in original["annotations"]
    }
    assert doc["info"] == original["info"] and doc["licenses"] == original["licenses"]
    assert _average_precision(gt_file, doc) == pytest.approx(1.0)


def test_what_is_made_in_the_app_gets_ids_no_imported_item_has(
    folder: Path, tmp_path: Path
) -> None:
    with Project.create(folder) as project:
        import_file(project, _coco(tmp_path / "gt.json"))
        x = next(img.id for img in project.images() if img.path == "x.png")
        bird = project.add_category("bird")
        made = project.add_annotation(x, _box(40, 60, 0, 4, 0, 4), bird.id)
        assert made.id == 4  # the project's own id, next to the imported ones' 1, 2, 3
        doc, notes = _exported(project, tmp_path / "out.json")
    categories = {c["name"]: c["id"] for c in doc["categories"]}
    assert categories == {"cat": 4, "dog": 9, "bird": 10}
    ids = [a["id"] for a in doc["annotations"]]
    assert len(ids) == len(set(ids)) == 4
    new = next(a for a in doc["annotations"] if a["samstudio_source"] == "manual")
    assert new["id"] == 102 and new["category_id"] == 10 and new["image_id"] == 40
    assert "attributes" not in new
    assert sorted(i for i in ids if i != 102) == [55, 80, 101]
    assert any(
        "1 category(s) not from an imported COCO file got new ids from 10" in n for n in notes
    )
    assert any(
        "1 annotation(s) not from an imported COCO file got new ids from 102" in n for n in notes
    )


def test_a_later_import_wins_for_what_it_touches_and_clashing_ids_are_renumbered(
    folder: Path, tmp_path: Path
) -> None:
    """A second file names y.png 3 and dog 2, and numbers its annotation 101 too."""
    second = _coco(
        tmp_path / "second.json",
        annotations={101: (3, 2, _box(30, 50, 20, 28, 0, 10), {"attributes": {"by": "b"}})},
        images={3: ("y.png", 30, 50)},
        categories=((2, "dog"),),
        top={"info": {"description": "second"}},
    )
    with Project.create(folder) as project:
        import_file(project, _coco(tmp_path / "gt.json"))
        assert import_file(project, second).annotations_added == 1
        doc, notes = _exported(project, tmp_path / "out.json")
        own = {a.id for img in project.images() for a in project.annotations(img.id)}
    assert {i["file_name"]: i["id"] for i in doc["images"]} == {"x.png": 40, "y.png": 3}
    assert {c["name"]: c["id"] for c in doc["categories"]} == {"cat": 4, "dog": 2}
    # two annotations remember 101: the project's own annotation ids go out instead
    assert {a["id"] for a in doc["annotations"]} == own
    assert [n for n in notes if n.startswith("annotation ids")] == [
        "annotation ids: 1 imported annotation(s) have an id that another exported "
        "annotation has too (from another imported file), so the project's own annotation "
        "ids were written, not the imported files'"
    ]
    # the attributes still come back, and the first import's info stays
    by_attr = sorted(json.dumps(a.get("attributes"), sort_keys=True) for a in doc["annotations"])
    assert '{"by": "b"}' in by_attr and '{"note": "\\u00df", "occluded": true}' in by_attr
    assert doc["info"] == INFO


def test_importing_the_same_file_twice_keeps_the_ids(
    folder: Path, gt_file: Path, tmp_path: Path
) -> None:
    with Project.create(folder) as project:
        import_file(project, gt_file)
        assert import_file(project, gt_file).annotations_skipped == 3
        doc, notes = _exported(project, tmp_path / "out.json")
    assert sorted(a["id"] for a in doc["annotations"]) == [55, 80, 101] and notes == []


def _remembered(project: Project, kind: str) -> dict[int, int]:
    with project.store.reading() as conn:
        rows = conn.execute(
            "SELECT local_id, external_id FROM external_ids WHERE kind = ?", (kind,)
        ).fetchall()
    return dict(rows)


def test_a_deleted_category_leaves_no_id_for_the_next_one(folder: Path, tmp_path: Path) -> None:
    """SQLite gives a deleted category's id to the next one: it must not inherit the
    deleted one's file id (dog 9), nor collide with cat 4."""
    with Project.create(folder) as project:
        import_file(project, _coco(tmp_path / "gt.json"))
        cat, dog = (project.category_named(n) for n in ("cat", "dog"))
        assert cat is not None and dog is not None
        project.delete_category(dog.id)  # with its annotations
        horse = project.add_category("horse")
        assert horse.id == dog.id  # the id SQLite gives again
        assert _remembered(project, "category") == {cat.id: 4}
        x = next(img.id for img in project.images() if img.path == "x.png")
        project.add_annotation(x, _box(40, 60, 0, 5, 0, 5), horse.id)
        doc, _ = _exported(project, tmp_path / "out.json")
        # merging cat into horse: cat's file id goes with it
        project.merge_category(cat.id, horse.id)
        assert _remembered(project, "category") == {}
    assert {c["name"]: c["id"] for c in doc["categories"]} == {"cat": 4, "horse": 5}
    assert {a["category_id"] for a in doc["annotations"]} == {4, 5}
    assert sorted(a["id"] for a in doc["annotations"]) == [101, 102]


def test_a_deleted_annotation_keeps_its_id_for_undo_and_a_purge_drops_it(
    folder: Path, gt_file: Path, tmp_path: Path
) -> None:
    with Project.create(folder) as project:
        import_file(project, gt_file)
        first = {v: k for k, v in _remembered(project, "annotation").items()}[101]
        image = project.annotation(first).image_id
        project.delete_annotation(first)
        doc, _ = _exported(project, tmp_path / "deleted.json")
        assert sorted(a["id"] for a in doc["annotations"]) == [55, 80]
        assert import_file(project, gt_file).annotations_added == 1  # 101 comes again
        doc, notes = _exported(project, tmp_path / "again.json")
        assert sorted(a["id"] for a in doc["annotations"]) == [55, 80, 101] and notes == []
        assert project.undo(image) and project.undo(image)  # the first 101 is back
        doc, notes = _exported(project, tmp_path / "undone.json")
        assert sorted(a["id"] for a in doc["annotations"]) == [55, 80, 101] and notes == []
        assert next(a for a in doc["annotations"] if a["id"] == 101)["samstudio_source"]
        assert list(_remembered(project, "annotation").values()).count(101) == 2
        project.clear_history()  # the second 101, kept only for redo, is purged
        remembered = _remembered(project, "annotation")
    assert sorted(remembered.values()) == [55, 80, 101] and remembered[first] == 101


def _version_5_file(path: Path) -> None:
    """A project file as SAM Studio wrote it before it remembered imported ids: image 5,
    category 3, annotation 8."""
    from samstudio.core.document import history

    counts, bbox, area = history.encode_mask_columns(_box(40, 60, 0, 4, 0, 4))
    conn = sqlite3.connect(path, isolation_level=None)
    schema.create(conn, upto=5)
    for sql, args in (
        ("INSERT INTO meta VALUES ('root', '.')", ()),
        ("INSERT INTO images (id, path, width, height) VALUES (5, 'x.png', 60, 40)", ()),
        ("INSERT INTO categories (id, name, color) VALUES (3, 'cat', '#ff0000')", ()),
        (
            "INSERT INTO annotations (id, image_id, category_id, height, width, counts, bbox_x,"
            " bbox_y, bbox_w, bbox_h, area, source, author, created, modified)"
            " VALUES (8, 5, 3, 40, 60, ?, ?, ?, ?, ?, ?, 'manual', 'me', 1, 2)",
            (counts, *bbox, area),
        ),
    ):
        conn.execute(sql, args)
    conn.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_version_5_file_opens_and_exports_with_its_own_ids(
    folder: Path, tmp_path: Path, read_only: bool
) -> None:
    path = folder / "project.samstudio"
    _version_5_file(path)
    with Project.open(path, read_only=read_only) as project:
        doc, notes = _exported(project, tmp_path / "out.json")
    assert ([i["id"] for i in doc["images"]], [c["id"] for c in doc["categories"]]) == ([5], [3])
    assert [a["id"] for a in doc["annotations"]] == [8] and notes == []
    assert doc["info"] == {"description": "SAM Studio project project.samstudio"}
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert schema.SCHEMA_VERSION == 6 and version == (5 if read_only else 6)
    if not read_only:  # the migrated file remembers the next import's ids
        with Project.open(path) as project:
            import_file(
                project,
                _coco(
                    tmp_path / "gt.json",
                    images={40: IMAGES[40]},
                    annotations={101: ANNOTATIONS[101]},
                ),
            )
            doc, _ = _exported(project, tmp_path / "after.json")
        assert [i["id"] for i in doc["images"]] == [40]
        # cat merged by name, dog added (the file's label set): both with the file's ids
        assert {c["name"]: c["id"] for c in doc["categories"]} == {"cat": 4, "dog": 9}
        # annotation 8, made before, gets an id above the imported 101
        assert sorted(a["id"] for a in doc["annotations"]) == [101, 102]


def test_only_the_annotated_images_go_out_with_their_file_ids(folder: Path, tmp_path: Path) -> None:
    from samstudio.core.document.exchange import ExportScope

    gt_file = _coco(tmp_path / "gt.json", annotations={55: ANNOTATIONS[55]})
    with Project.create(folder) as project:
        import_file(project, gt_file)
        result = export_project(
            project, "coco-rle", tmp_path / "out.json", scope=ExportScope("annotated")
        )
    doc = json.loads((tmp_path / "out.json").read_text())
    assert [(i["id"], i["file_name"]) for i in doc["images"]] == [(7, "y.png")]
    assert [(a["id"], a["image_id"]) for a in doc["annotations"]] == [(55, 7)]
    assert result.images_left_out == 1
