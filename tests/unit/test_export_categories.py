"""Project export: an annotation without a category never lands in a real category."""

from __future__ import annotations

import json
from pathlib import Path

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
