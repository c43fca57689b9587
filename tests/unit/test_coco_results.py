"""COCO results against a reference: image ids matched by file name, categories by name."""

from __future__ import annotations

import numpy as np

from samstudio.core.formats.coco_results import match_images, results_document
from samstudio.core.formats.records import Annotation, Category, Dataset, ImageRecord


def _reference(*names: str) -> Dataset:
    return Dataset(images=[ImageRecord(10 * (i + 1), n, 8, 6) for i, n in enumerate(names)])


def test_images_match_by_the_longest_common_end_of_their_paths() -> None:
    reference = _reference("val2017/a.jpg", "b/x.png", "c/x.png", "d.png")
    names = {
        1: "/data/images/a.jpg",  # only the file name in common
        2: "/data/b/x.png",  # b/x.png rather than c/x.png
        3: "/data/e/x.png",  # x.png in b and c alike: ambiguous
        4: "missing.png",
        5: "d.png",
        6: "other/d.png",  # d.png taken by image 5
    }
    mapping, report = match_images(names, reference, "gt.json")
    assert mapping == {1: 10, 2: 20, 5: 40}
    assert [(i.code, i.image_id) for i in report.errors] == [
        ("ambiguous_image", 3),
        ("unknown_image", 4),
        ("duplicate_id", 6),
    ]
    assert all(i.file == "gt.json" for i in report.issues)
    assert "[20, 30]" in str(report.errors[0]) and "'d.png'" in str(report.errors[2])


def test_results_use_the_reference_ids_categories_and_sizes() -> None:
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:5] = True
    ours = Dataset(
        images=[ImageRecord(1, "a.jpg", 8, 6), ImageRecord(2, "small.jpg", 4, 3)],
        categories=[Category(1, "dog"), Category(2, "cat")],
    )
    ours.annotations = [
        Annotation.from_mask(1, 1, None, mask, predicted_iou=0.8),
        Annotation.from_mask(2, 1, 1, mask, score=0.6, predicted_iou=0.9),
        Annotation.from_mask(3, 1, 2, mask),
        Annotation.from_mask(4, 2, None, np.zeros((3, 4), bool), predicted_iou=0.5),
    ]
    reference = _reference("x/a.jpg", "small.jpg")
    reference.categories = [Category(5, "dog"), Category(9, "object")]
    doc, report = results_document(ours, reference, reference_name="gt.json")
    assert [(r["image_id"], r["category_id"], r["score"]) for r in doc] == [
        (10, 9, 0.8),  # no category: the reference's "object"; score: predicted IoU
        (10, 5, 0.6),  # "dog" is 5 there; a score beats the predicted IoU
        (10, 9, 1.0),  # "cat" is not in the reference; nothing to rank by
    ]
    assert all("bbox" not in r and "area" not in r for r in doc)
    assert sorted(report.codes()) == ["no_score", "size_mismatch", "unknown_category"]
    assert "4x3 (width x height) but its reference image 20 is 8x6" in str(report)
