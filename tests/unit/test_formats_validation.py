"""Validation: every problem is an error or a warning naming the file and the annotation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samstudio.core.formats.coco import import_coco, read_coco
from samstudio.core.formats.detect import import_annotations
from samstudio.core.formats.image_files import attach_images
from samstudio.core.formats.records import FormatError, ImportReport
from samstudio.core.masks import encode_rle

H, W = 10, 20


def base_doc() -> dict[str, Any]:
    m = np.zeros((H, W), bool)
    m[2:6, 4:10] = True
    return {
        "images": [{"id": 1, "file_name": "img.png", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "segmentation": encode_rle(m),
                "area": 24,
                "bbox": [4, 2, 6, 4],
            },
        ],
    }


def with_ann(**changes: Any) -> dict[str, Any]:
    doc = base_doc()
    doc["annotations"][0].update(changes)
    return doc


def transposed_rle() -> dict[str, Any]:
    return encode_rle(np.zeros((W, H), bool))


CASES = [
    # (document, code, severity, imported)
    (with_ann(segmentation=transposed_rle()), "size_transposed", "error", False),
    (
        with_ann(segmentation=encode_rle(np.zeros((H + 1, W), bool))),
        "size_mismatch",
        "error",
        False,
    ),
    (with_ann(segmentation=[[-5, -5, 8, -5, 8, 5, -5, 5]]), "polygon_outside", "warning", True),
    (with_ann(segmentation=[[1e9, 0, 1e9 + 5, 0, 1e9, 5]]), "polygon_outside", "error", False),
    (
        with_ann(segmentation=encode_rle(np.zeros((H, W), bool)), area=0, bbox=[0, 0, 0, 0]),
        "empty_mask",
        "warning",
        True,
    ),
    (with_ann(category_id=99), "unknown_category", "warning", True),
    (with_ann(area=200), "area_mismatch", "warning", True),
    (with_ann(bbox=[0, 0, 20, 10]), "bbox_mismatch", "warning", True),
    (with_ann(segmentation={"size": [H, W], "counts": "!!"}), "bad_segmentation", "error", False),
    (with_ann(segmentation=[[1, 2, 3]]), "bad_segmentation", "error", False),
    (with_ann(segmentation=42), "bad_segmentation", "error", False),
    (with_ann(image_id=5), "unknown_image", "error", False),
    (with_ann(segmentation=[], bbox=None), "bad_segmentation", "error", False),
    (with_ann(iscrowd=7), "bad_field", "warning", True),
    (with_ann(predicted_iou="high"), "bad_field", "warning", True),
    (with_ann(point_coords=[[1, "x"]]), "bad_field", "warning", True),
]


@pytest.mark.parametrize(
    "doc,code,severity,imported", CASES, ids=[c[1] + "-" + c[2] for c in CASES]
)
def test_each_problem_is_reported_with_file_and_annotation(
    doc: dict[str, Any], code: str, severity: str, imported: bool
) -> None:
    ds, report = read_coco(doc, "my/annotations.json")
    hits = [i for i in report.issues if i.code == code]
    assert hits, f"expected {code}, got {report}"
    issue = hits[0]
    assert issue.severity == severity
    assert issue.file == "my/annotations.json" and issue.annotation_id == 7
    assert "my/annotations.json" in str(issue) and "annotation 7" in str(issue)
    assert (len(ds.annotations) == 1) is imported
    if not imported:
        assert report.errors  # never a silent drop


def test_duplicate_ids() -> None:
    doc = base_doc()
    doc["annotations"].append(copy.deepcopy(doc["annotations"][0]))
    doc["images"].append(dict(doc["images"][0], file_name="other.png"))
    doc["categories"].append({"id": 1, "name": "again"})
    ds, report = read_coco(doc, "dup.json")
    codes = [(i.code, i.severity) for i in report.issues]
    assert codes.count(("duplicate_id", "warning")) == 2  # annotation renumbered, category merged
    assert ("duplicate_id", "error") in codes  # the second image is refused
    assert sorted(a.id for a in ds.annotations) == [7, 8]
    assert len(ds.images) == 1 and len(ds.categories) == 1


def test_unreadable_files_raise_format_error(tmp_path: Path) -> None:
    for content, match in [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'"text"', "not a COCO"),
    ]:
        p = tmp_path / "bad.json"
        p.write_bytes(content)
        with pytest.raises(FormatError, match=r"bad\.json"):
            import_annotations(p)
        with pytest.raises(FormatError, match=match):
            import_annotations(p)
    with pytest.raises(FormatError, match="no such file|No such file"):
        import_coco(tmp_path / "missing.json")
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"images": {"id": 1}, "annotations": []}))
    with pytest.raises(FormatError, match="'images' is a dict"):
        import_coco(p)


def test_image_files_checked_and_exif_stored_frame_reoriented(tmp_path: Path) -> None:
    # A 20x10 (WxH) stored image with EXIF orientation 6 displays as 10x20.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (W, H)).save(tmp_path / "img.png", exif=exif)
    doc = base_doc()  # annotations made on the stored 20x10 pixels
    ds, report = read_coco(doc, "a.json")
    stored_mask = ds.annotations[0].mask
    attach_images(ds, tmp_path, report, "a.json")
    assert [i.code for i in report.issues] == ["reoriented"]
    assert (ds.images[0].height, ds.images[0].width) == (W, H)
    np.testing.assert_array_equal(ds.annotations[0].mask, np.rot90(stored_mask, -1))
    # a size that no EXIF explains is an error, and nothing of that image is kept
    Image.new("RGB", (W + 1, H)).save(tmp_path / "img.png")
    ds, report = read_coco(base_doc(), "a.json")
    attach_images(ds, tmp_path, report, "a.json")
    assert report.errors[0].code == "image_size_mismatch" and "[7]" in report.errors[0].message
    assert ds.images == [] and ds.annotations == []
    ds, report = read_coco(base_doc(), "a.json")
    attach_images(ds, tmp_path / "nowhere", report, "a.json")
    assert [i.code for i in report.issues] == ["image_missing"] and len(ds.annotations) == 1


def test_report_summary_and_text() -> None:
    r = ImportReport()
    r.warn("x", "f.json", "careful", annotation_id=3, image_id=1)
    r.error("y", "f.json", "broken")
    assert r.summary() == "1 error(s), 1 warning(s)"
    assert str(r).splitlines() == [
        "warning: f.json, image 1, annotation 3: careful",
        "error: f.json: broken",
    ]


def test_items_that_are_not_objects_are_errors_not_fatal() -> None:
    doc = base_doc()
    doc["images"].insert(0, 17)
    doc["categories"].append("thing")
    doc["annotations"].append(None)
    ds, report = read_coco(doc, "mixed.json")
    assert [(i.code, i.severity) for i in report.issues] == [
        ("bad_image", "error"),
        ("bad_category", "error"),
        ("bad_annotation", "error"),
    ]
    assert "item #0" in report.issues[0].message and len(ds.annotations) == 1
