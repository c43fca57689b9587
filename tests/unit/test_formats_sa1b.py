"""SA-1B per-image JSON: export, re-read by pycocotools and by us, and its checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from test_formats_coco import make_dataset

from samstudio.core.formats.detect import export_annotations, import_annotations
from samstudio.core.formats.records import Annotation
from samstudio.core.formats.sa1b import export_sa1b, import_sa1b, read_sa1b
from samstudio.core.masks import encode_rle


def test_export_layout_and_pycocotools_decode(tmp_path: Path) -> None:
    ds = make_dataset(seed=4)
    ds.annotations.append(Annotation(999, 10, 3, None, bbox=[1.0, 1.0, 2.0, 2.0]))
    files, report = export_sa1b(ds, tmp_path / "sa1b")
    assert [f.name for f in files] == ["img_0.json", "img_1.json", "img_2.json"]
    assert [i.code for i in report.issues] == ["bbox_only"] and report.issues[
        0
    ].annotation_id == 999
    for f, image in zip(files, ds.images):
        doc = json.loads(f.read_text())
        assert doc["image"] == {
            "license": 1,
            "image_id": image.id,
            "width": image.width,
            "height": image.height,
            "file_name": image.file_name,
        }
        src = [a for a in ds.annotations_of(image.id) if a.segmentation is not None]
        assert [a["id"] for a in doc["annotations"]] == [a.id for a in src]
        for raw, a in zip(doc["annotations"], src):
            assert set(raw) >= {
                "id",
                "segmentation",
                "bbox",
                "area",
                "predicted_iou",
                "stability_score",
                "crop_box",
                "point_coords",
            }
            assert isinstance(raw["segmentation"]["counts"], str)
            decoded = mask_utils.decode(
                {
                    "size": raw["segmentation"]["size"],
                    "counts": raw["segmentation"]["counts"].encode(),
                }
            )
            np.testing.assert_array_equal(decoded.astype(bool), a.mask)
            assert raw["area"] == int(a.mask.sum())
            assert raw["bbox"] == a.computed_bbox()


def test_round_trip_through_folder(tmp_path: Path) -> None:
    ds = make_dataset(seed=5)
    export_annotations(ds, "sa1b", tmp_path / "out")
    back, report, kind = import_annotations(tmp_path / "out")
    assert kind == "sa1b" and report.issues == []
    assert [(i.id, i.file_name, i.width, i.height) for i in back.images] == [
        (i.id, i.file_name, i.width, i.height) for i in ds.images
    ]
    for a, b in zip(ds.annotations, back.annotations):
        assert a.id == b.id and a.segmentation == b.segmentation
        assert (a.predicted_iou, a.stability_score, a.point_coords, a.crop_box) == (
            b.predicted_iou,
            b.stability_score,
            b.point_coords,
            b.crop_box,
        )
        assert b.category_id == a.category_id  # kept in an extra key for our own round trip


def test_sa1b_to_coco_gives_default_category(tmp_path: Path) -> None:
    m = np.zeros((5, 6), bool)
    m[1:3, 1:4] = True
    doc = {
        "image": {"image_id": 3, "width": 6, "height": 5, "file_name": "x.jpg"},
        "annotations": [
            {
                "id": 1,
                "segmentation": encode_rle(m),
                "bbox": [1, 1, 3, 2],
                "area": 6,
                "predicted_iou": 0.9,
                "stability_score": 0.95,
                "crop_box": [0, 0, 6, 5],
                "point_coords": [[2, 2]],
            }
        ],
    }
    ds, report = read_sa1b(doc, "x.json")
    assert report.issues == []
    (coco_path,), _ = export_annotations(ds, "coco-rle", tmp_path / "c.json")
    coco = json.loads(coco_path.read_text())
    assert coco["categories"] == [{"id": 1, "name": "object", "supercategory": ""}]
    assert (
        coco["annotations"][0]["category_id"] == 1
        and coco["annotations"][0]["predicted_iou"] == 0.9
    )


def test_bad_sa1b_documents(tmp_path: Path) -> None:
    doc = {
        "image": {"image_id": 1, "width": 0, "height": 5, "file_name": "x.jpg"},
        "annotations": [{"id": 1}],
    }
    ds, report = read_sa1b(doc, "x.json")
    assert report.errors[0].code == "bad_image" and ds.annotations == []
    doc = {
        "image": {"image_id": 1, "width": 4, "height": 4, "file_name": "x.jpg"},
        "annotations": [{"id": 1, "segmentation": []}, "junk"],
    }
    ds, report = read_sa1b(doc, "x.json")
    assert [i.code for i in report.errors] == ["bad_segmentation", "bad_annotation"]
    (tmp_path / "empty").mkdir()
    try:
        import_sa1b(tmp_path / "empty")
    except Exception as exc:  # FormatError naming the folder
        assert "empty" in str(exc) and "no .json" in str(exc)
    else:
        raise AssertionError("an empty folder must be an error")


def test_coco_to_sa1b_and_back_keeps_iscrowd_and_score(tmp_path: Path) -> None:
    """Found by review: COCO -> SA-1B -> COCO turned crowd regions into ordinary
    instances and lost detection scores; both travel as our extension keys now."""
    ds = make_dataset()
    ds.annotations[0].iscrowd = True
    ds.annotations[-1].score = 0.75
    export_sa1b(ds, tmp_path / "sa1b")
    back, report = import_sa1b(tmp_path / "sa1b")
    by_id = {a.id: a for a in back.annotations}
    first, last = ds.annotations[0], ds.annotations[-1]
    assert by_id[first.id].iscrowd is True and by_id[last.id].score == 0.75
    with_masks = [a for a in ds.annotations if a.segmentation is not None]
    assert {a.id: (a.iscrowd, a.score) for a in with_masks} == {
        a.id: (a.iscrowd, a.score) for a in back.annotations
    }
    assert "iscrowd" not in by_id[first.id].extra  # read as fields, not as unknown keys
