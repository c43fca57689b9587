"""Deleting and merging categories in the store: annotations moved or deleted in one
transaction, the undo history kept consistent, exports without the deleted category,
and a later COCO import still merging by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.core.document import EditError, Project
from samstudio.core.document.categories import CategoryUsage
from samstudio.core.document.exchange import export_project, import_file

H, W = 40, 60


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """(H, W) bool, True on rows y0..y1-1 and columns x0..x1-1."""
    yy, xx = np.mgrid[:H, :W]
    return (y0 <= yy) & (yy < y1) & (x0 <= xx) & (xx < x1)


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(folder / f"img_{i}.png")
    p = Project.create(folder)
    yield p
    p.close()


def _setup(project: Project) -> tuple[list[int], int, int, int]:
    """Images, categories dog / Dog / cat; Dog used twice on image 0 and once on image 1."""
    ids = [img.id for img in project.images()]
    dog = project.add_category("dog").id
    typo = project.add_category("Dog").id
    cat = project.add_category("cat").id
    project.add_annotation(ids[0], _rect(0, 10, 0, 10), dog)
    project.add_annotation(ids[0], _rect(10, 20, 0, 10), typo)
    project.add_annotation(ids[0], _rect(20, 30, 0, 10), typo)
    project.add_annotation(ids[1], _rect(0, 10, 20, 30), typo)
    project.add_annotation(ids[2], _rect(0, 10, 20, 30), cat)
    return ids, dog, typo, cat


def _cats_of(project: Project, image_id: int) -> list[int | None]:
    return [a.category_id for a in project.annotations(image_id)]


def test_usage_counts_annotations_and_images(project: Project) -> None:
    _ids, dog, typo, _cat = _setup(project)
    assert project.category_usage(typo) == CategoryUsage(annotations=3, images=2)
    assert project.category_usage(dog) == CategoryUsage(1, 1)
    unused = project.add_category("unused").id
    assert project.category_usage(unused) == CategoryUsage(0, 0)


def test_deleting_an_unused_category_changes_nothing_else(project: Project) -> None:
    ids, dog, typo, cat = _setup(project)
    unused = project.add_category("test").id
    removal = project.delete_category(unused)
    assert (removal.name, removal.annotations, removal.images) == ("test", 0, 0)
    assert [c.id for c in project.categories()] == [dog, typo, cat]
    assert _cats_of(project, ids[0]) == [dog, typo, typo]
    assert project.undo_label(ids[0]) == "Add annotation"


def test_merge_moves_every_annotation_and_deletes_the_category(project: Project) -> None:
    ids, dog, typo, cat = _setup(project)
    removal = project.merge_category(typo, into=dog)
    assert (removal.name, removal.into, removal.annotations, removal.images) == (
        "Dog",
        "dog",
        3,
        2,
    )
    assert [c.name for c in project.categories()] == ["dog", "cat"]
    assert _cats_of(project, ids[0]) == [dog, dog, dog]
    assert _cats_of(project, ids[1]) == [dog]
    assert _cats_of(project, ids[2]) == [cat]
    assert project.counts()["categories"] == {"dog": 4, "cat": 1}


def test_delete_with_annotations_is_an_undo_step_per_image(project: Project) -> None:
    ids, dog, typo, _cat = _setup(project)
    removal = project.delete_category(typo)
    assert (removal.into, removal.annotations, removal.images) == (None, 3, 2)
    assert _cats_of(project, ids[0]) == [dog]
    assert _cats_of(project, ids[1]) == []
    assert project.undo_label(ids[0]) == "Delete 2 annotations of deleted category 'Dog'"
    assert project.undo_label(ids[1]) == "Delete annotation of deleted category 'Dog'"
    # Undo brings the masks back, without the category that is gone.
    assert project.undo(ids[0])
    assert _cats_of(project, ids[0]) == [dog, None, None]
    assert project.redo(ids[0])
    assert _cats_of(project, ids[0]) == [dog]


def test_older_undo_steps_never_bring_a_deleted_category_back(project: Project) -> None:
    ids, dog, typo, cat = _setup(project)
    first = project.annotations(ids[2])[0].id
    project.set_category(first, typo)  # an undo step naming Dog (old cat, new Dog)
    gone = project.annotations(ids[0])[1].id
    project.delete_annotation(gone)  # kept for undo, with category Dog
    project.merge_category(typo, into=dog)
    assert _cats_of(project, ids[2]) == [dog]
    assert project.undo(ids[0])  # the delete: it comes back in dog
    assert project.annotation(gone).category_id == dog
    assert project.undo(ids[2]) and _cats_of(project, ids[2]) == [cat]
    assert project.redo(ids[2]) and _cats_of(project, ids[2]) == [dog]
    # Deleting with the annotations: older steps restore "no category".
    project.set_category(first, cat)
    project.set_category(first, dog)
    project.delete_category(dog)
    assert project.undo(ids[2])  # the delete of the category's annotation
    assert project.undo(ids[2]) and _cats_of(project, ids[2]) == [cat]
    assert project.redo(ids[2]) and _cats_of(project, ids[2]) == [None]


def test_refusals_change_nothing(project: Project) -> None:
    ids, dog, typo, cat = _setup(project)
    with pytest.raises(EditError, match="itself"):
        project.merge_category(typo, into=typo)
    with pytest.raises(EditError, match="no category with id 99"):
        project.merge_category(typo, into=99)
    with pytest.raises(EditError, match="no category with id 99"):
        project.delete_category(99)
    project.delete_category(typo)
    project.delete_category(cat)
    with pytest.raises(EditError, match="'dog' is the only category.*add another category"):
        project.delete_category(dog)
    with project.operation(ids[0], "Group"), pytest.raises(EditError, match="operation"):
        project.delete_category(dog)
    assert [c.name for c in project.categories()] == ["dog"]
    assert _cats_of(project, ids[0]) == [dog]
    assert str(project.path) in str(pytest.raises(EditError, project.delete_category, dog).value)


def test_export_leaves_deleted_categories_out_and_import_merges_by_name(
    project: Project, tmp_path: Path
) -> None:
    ids, dog, typo, cat = _setup(project)
    out = tmp_path / "before.json"
    export_project(project, "coco-rle", out)
    project.merge_category(typo, into=dog)
    project.delete_category(cat)
    after = tmp_path / "after.json"
    export_project(project, "coco-rle", after)
    doc = json.loads(after.read_text())
    assert [c["name"] for c in doc["categories"]] == ["dog"]
    assert {a["category_id"] for a in doc["annotations"]} == {dog}
    assert len(doc["annotations"]) == 4
    # The file written before the clean-up names Dog and cat again: importing it makes
    # them anew (by name) and reuses dog; identical masks are not imported twice.
    summary = import_file(project, out)
    assert "dog" in summary.categories_merged
    assert sorted(summary.categories_added) == ["Dog", "cat"]
    names = {c.id: c.name for c in project.categories()}
    assert sorted(names.values()) == ["Dog", "cat", "dog"]
    assert [names[c] for c in _cats_of(project, ids[1]) if c is not None] == ["dog", "Dog"]


def test_deleting_survives_reopening(project: Project) -> None:
    ids, dog, typo, _cat = _setup(project)
    project.delete_category(typo)
    path = project.path
    project.close()
    with Project.open(path) as again:
        assert [c.name for c in again.categories()] == ["dog", "cat"]
        assert again.undo(ids[1])
        assert [a.category_id for a in again.annotations(ids[1])] == [None]
