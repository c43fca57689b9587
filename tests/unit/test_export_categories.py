"""Project export: an annotation without a category never lands in a real category."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samstudio.core.document import Project
from samstudio.core.document.exchange import export_project


def test_uncategorised_annotations_are_exported_as_object_not_as_category_1(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(folder / "a.png")
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:30] = True
    with Project.create(folder) as project:
        first = project.add_category("person")  # category 1 is a real class
        assert first.id == 1
        image = project.images()[0]
        person = project.add_annotation(image.id, mask, first.id).id
        loose = project.add_annotation(image.id, mask, None).id
        out = tmp_path / "out.json"
        export_project(project, "coco-rle", out)
    doc = json.loads(out.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    by_id = {a["id"]: a["category_id"] for a in doc["annotations"]}
    assert names[by_id[person]] == "person"
    assert names[by_id[loose]] == "object" and by_id[loose] != by_id[person]
    assert len(set(names)) == len(doc["categories"])  # no id written twice


def test_sa1b_export_keeps_category_names_and_one_file_per_image(tmp_path: Path) -> None:
    """Found by review: project export to SA-1B wrote no category names (a re-import
    made "category N"), and images whose stems collide after the _<id> suffix (a/x,
    a/x_3 and b/x, ids 1-3: b/x became x_3 too) overwrote each other's file."""
    from samstudio.core.formats.detect import import_annotations

    folder = tmp_path / "images"
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True)
    pixels = np.full((40, 60, 3), 90, np.uint8)
    for name in ("a/x.png", "a/x_3.png", "b/x.png"):
        Image.fromarray(pixels).save(folder / name)
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:30] = True
    with Project.create(folder) as project:
        fraise = project.add_category("fraise 🍓")
        images = project.images()
        assert [im.path for im in images] == ["a/x.png", "a/x_3.png", "b/x.png"]
        assert [im.id for im in images] == [1, 2, 3]
        for image in images:
            project.add_annotation(image.id, mask, fraise.id)
        out = tmp_path / "sa1b"
        export_project(project, "sa1b", out)
    files = sorted(out.glob("*.json"))
    assert len(files) == len(images) == 3
    for file in files:
        (ann,) = json.loads(file.read_text(encoding="utf-8"))["annotations"]
        assert ann["category_name"] == "fraise 🍓"
    back, _, _ = import_annotations(out)
    assert len(back.images) == 3 and [c.name for c in back.categories] == ["fraise 🍓"]


def _one_image_and_its_rle(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A folder with one 60 x 40 image a.png, and a COCO RLE segmentation on it."""
    from pycocotools import mask as mask_utils

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(folder / "a.png")
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:30] = True
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return folder, {"size": [40, 60], "counts": rle["counts"].decode("ascii")}


def test_import_says_which_fields_the_project_cannot_keep(tmp_path: Path) -> None:
    """Found by review: importing a COCO file dropped iscrowd, score and extra fields
    with 'conflicts: 0', so a crowd region came back as an ordinary instance. Since
    schema version 4 the project keeps iscrowd, and since version 6 a COCO annotation's
    extra fields (external_ids.py), so neither is reported."""
    from samstudio.core.document.exchange import import_file

    folder, seg = _one_image_and_its_rle(tmp_path)
    base = {
        "image_id": 1,
        "category_id": 1,
        "segmentation": seg,
        "area": 300,
        "bbox": [10, 5, 20, 15],
        "height": 40,
        "width": 60,
    }
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {**base, "id": 1, "iscrowd": 0},
            {**base, "id": 2, "iscrowd": 1},
            {**base, "id": 3, "iscrowd": 0, "attributes": {"occluded": True}},
        ],
    }
    file = tmp_path / "gt.json"
    file.write_text(json.dumps(doc))
    with Project.create(folder) as project:
        summary = import_file(project, file)
    assert summary.annotations_added == 3
    text = "\n".join(summary.conflicts)
    assert "iscrowd" not in text and "crowd" not in text  # kept, so not reported
    assert "attributes" not in text  # kept, so not reported
    assert "'height'" not in text and "'width'" not in text  # the mask keeps those
    assert summary.conflicts == []


def test_import_brings_the_files_whole_label_set(tmp_path: Path) -> None:
    """Found by review: only categories that an imported annotation used were added, so
    COCO's unused categories (a label set to annotate with) were lost. They come in
    the file's order, each name once; a name the project has is reused; not blank or
    labelme-reserved names, nor a category used only on an image not in the project
    (also not the one the reader makes up for an unknown category_id); a file that
    matches none of the project's images adds nothing."""
    from samstudio.core.document.exchange import import_file

    folder, seg = _one_image_and_its_rle(tmp_path)
    categories = [
        {"id": 7, "name": "zebra", "supercategory": "animal"},
        {"id": 3, "name": "person", "supercategory": "person"},
        {"id": 9, "name": "kite", "supercategory": "sports"},
        {"id": 10, "name": "zebra", "supercategory": "animal"},
        {"id": 11, "name": "  "},
        {"id": 0, "name": "_background_"},
        {"id": 12, "name": "boat"},  # used only on the image the project lacks
    ]
    ann = {"segmentation": seg, "iscrowd": 0, "area": 300, "bbox": [10, 5, 20, 15]}
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 40, "width": 60},
            {"id": 2, "file_name": "elsewhere.png", "height": 40, "width": 60},
        ],
        "categories": categories,
        "annotations": [
            {**ann, "id": 1, "image_id": 1, "category_id": 3},
            {**ann, "id": 2, "image_id": 2, "category_id": 12},
            {**ann, "id": 3, "image_id": 2, "category_id": 42},  # not in categories
        ],
    }
    file = tmp_path / "gt.json"
    file.write_text(json.dumps(doc))
    elsewhere = tmp_path / "other.json"
    elsewhere.write_text(json.dumps({**doc, "images": doc["images"][1:]}))
    with Project.create(folder) as project:
        project.add_category("kite")
        summary = import_file(project, elsewhere)
        assert [c.name for c in project.categories()] == ["kite"]
        assert summary.categories_added == [] and summary.annotations_added == 0
        summary = import_file(project, file)
        assert summary.annotations_added == 1
        assert summary.categories_added == ["zebra", "person"]
        assert summary.categories_merged == ["kite"]
        cats = {c.name: c for c in project.categories()}
        assert list(cats) == ["kite", "zebra", "person"]
        assert cats["zebra"].supercategory == "animal"
        assert len({c.color for c in cats.values()}) == 3
        (imported,) = project.annotations(project.images()[0].id)
        assert imported.category_id == cats["person"].id
