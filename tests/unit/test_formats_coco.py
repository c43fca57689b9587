"""COCO export/import, checked by pycocotools (COCO, annToMask, maskUtils.decode, COCOeval)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from samstudio.core.formats.coco import (
    coco_results_document,
    export_coco,
    export_coco_results,
    import_coco,
    read_coco,
)
from samstudio.core.formats.records import Annotation, Category, Dataset, ImageRecord
from samstudio.core.masks import mask_iou


def _quiet() -> contextlib.redirect_stdout[io.StringIO]:
    return contextlib.redirect_stdout(io.StringIO())


def make_dataset(seed: int = 0, n_images: int = 3, per_image: int = 4) -> Dataset:
    """Random instance masks with holes and several parts, on images of different sizes."""
    rng = np.random.default_rng(seed)
    ds = Dataset(categories=[Category(3, "cat"), Category(7, "dog", "animal"), Category(42, "car")])
    ann_id = 100
    for i in range(n_images):
        h, w = int(rng.integers(60, 140)), int(rng.integers(60, 140))
        ds.images.append(ImageRecord(10 + i, f"sub/dir/img_{i}.jpg", w, h, {"license": 1}))
        for k in range(per_image):
            m = np.zeros((h, w), np.uint8)
            for _ in range(int(rng.integers(1, 3))):
                c = (int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10)))
                cv2.ellipse(
                    m, c, (int(rng.integers(5, 25)), int(rng.integers(5, 25))), 0, 0, 360, 1, -1
                )
            if k % 2 == 0:
                ys, xs = np.nonzero(m)
                j = int(rng.integers(0, len(xs)))
                cv2.circle(m, (int(xs[j]), int(ys[j])), 3, 0, -1)
            ann = Annotation.from_mask(
                ann_id,
                10 + i,
                [3, 7, 42][k % 3],
                m.astype(bool),
                iscrowd=(k == 3),
                predicted_iou=float(rng.uniform(0.5, 1)),
                stability_score=float(rng.uniform(0.5, 1)),
                point_coords=[[float(xs[0]) if k % 2 == 0 else 1.0, 2.0]],
                crop_box=[0.0, 0.0, float(w), float(h)],
                extra={"attributes": {"occluded": bool(k % 2)}},
            )
            ds.annotations.append(ann)
            ann_id += 3  # non-contiguous ids
    return ds


@pytest.mark.parametrize("style", ["rle", "polygon"])
def test_export_is_read_back_by_pycocotools(tmp_path: Path, style: str) -> None:
    ds = make_dataset()
    path = export_coco(ds, tmp_path / "out.json", style)  # type: ignore[arg-type]
    with _quiet():
        coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [10, 11, 12]
    assert sorted(coco.getCatIds()) == [3, 7, 42]
    for src in ds.annotations:
        ann = coco.anns[src.id]
        assert src.mask is not None
        back = coco.annToMask(ann).astype(bool)
        decoded = mask_utils.decode(coco.annToRLE(ann)).astype(bool)
        np.testing.assert_array_equal(back, decoded)
        if style == "rle" or src.iscrowd:
            np.testing.assert_array_equal(back, src.mask)
            assert isinstance(ann["segmentation"], dict)
        else:
            assert isinstance(ann["segmentation"], list)
            assert mask_iou(back, src.mask) >= 0.98
        # area and bbox describe the mask a reader gets (for polygons: their rasterisation)
        assert ann["area"] == int(back.sum())
        assert abs(ann["area"] - int(src.mask.sum())) <= 0.02 * src.mask.sum()
        assert ann["bbox"] == [
            float(v)
            for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(back.astype(np.uint8))))
        ]
        assert ann["iscrowd"] == int(src.iscrowd)
        assert (
            ann["predicted_iou"] == src.predicted_iou
            and ann["stability_score"] == src.stability_score
        )
        assert ann["attributes"] == src.extra["attributes"]


@pytest.mark.parametrize("style", ["rle", "polygon"])
def test_cocoeval_of_export_against_itself_gives_ap_1(tmp_path: Path, style: str) -> None:
    ds = make_dataset(seed=1)
    for a in ds.annotations:
        a.iscrowd = False  # crowd regions are ignored by COCOeval; test the instances
    gt_path = export_coco(ds, tmp_path / "gt.json", style)  # type: ignore[arg-type]
    res_path = export_coco_results(ds, tmp_path / "res.json", style)  # type: ignore[arg-type]
    with _quiet():
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(res_path))
        ev = COCOeval(gt, dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP @[.50:.95]
    assert ev.stats[1] == pytest.approx(1.0)  # AP @.50


def test_import_round_trip_keeps_everything(tmp_path: Path) -> None:
    ds = make_dataset(seed=2)
    path = export_coco(ds, tmp_path / "out.json", "rle")
    back, report = import_coco(path)
    assert report.issues == []
    assert [(im.id, im.file_name, im.width, im.height, im.extra) for im in back.images] == [
        (im.id, im.file_name, im.width, im.height, im.extra) for im in ds.images
    ]
    assert [(c.id, c.name, c.supercategory) for c in back.categories] == [
        (c.id, c.name, c.supercategory) for c in ds.categories
    ]
    for a, b in zip(ds.annotations, back.annotations):
        assert (a.id, a.image_id, a.category_id, a.iscrowd) == (
            b.id,
            b.image_id,
            b.category_id,
            b.iscrowd,
        )
        assert a.segmentation == b.segmentation
        assert (a.predicted_iou, a.stability_score, a.point_coords, a.crop_box) == (
            b.predicted_iou,
            b.stability_score,
            b.point_coords,
            b.crop_box,
        )
        assert b.extra == a.extra


def test_each_rle_is_validated_once_on_export_and_once_on_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samstudio.core import masks

    checks: list[int] = []
    real = masks._check_compressed

    def counted(coco, h, w):  # noqa: ANN001,ANN202
        checks.append(1)
        return real(coco, h, w)

    monkeypatch.setattr(masks, "_check_compressed", counted)
    ds = make_dataset(seed=4)
    n = len(ds.annotations)
    path = export_coco(ds, tmp_path / "out.json", "rle")
    assert len(checks) == n
    checks.clear()
    back, report = import_coco(path)  # the area and box checks reuse the validated RLE
    assert len(checks) == n and report.issues == [] and len(back.annotations) == n


def test_results_format_in_and_out(tmp_path: Path) -> None:
    ds = make_dataset(seed=3, n_images=2, per_image=3)
    for k, a in enumerate(ds.annotations):
        a.score = 0.1 * (k + 1)
    doc = coco_results_document(ds)
    assert all({"image_id", "category_id", "segmentation", "score"} <= set(d) for d in doc)
    path = tmp_path / "res.json"
    path.write_text(json.dumps(doc))
    gt_path = export_coco(ds, tmp_path / "gt.json")
    gt, _ = import_coco(gt_path)
    res, report = import_coco(path, ground_truth=gt)
    assert report.errors == []
    assert [a.score for a in res.annotations] == [a.score for a in ds.annotations]
    for a, b in zip(ds.annotations, res.annotations):
        np.testing.assert_array_equal(a.mask, b.mask)
    alone, report = import_coco(path)  # no ground truth: sizes from the RLEs
    assert len(alone.annotations) == len(ds.annotations)
    assert {i.code for i in report.issues} == {"unknown_category"}


def uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts: column-major runs, starting with a run of zeros."""
    flat = mask.flatten(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return ([0] if flat[0] else []) + runs


def test_bbox_only_polygon_and_uncompressed_rle_import() -> None:
    m = np.zeros((10, 12), bool)
    m[2:6, 3:9] = True
    unc = uncompressed_counts(m)
    assert sum(unc) == 120
    doc = {
        "images": [{"id": 1, "file_name": "a/b.jpg", "width": 12, "height": 10}],
        "categories": [{"id": 5, "name": "x"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "segmentation": [],
                "bbox": [1, 1, 3, 3],
                "area": 9,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 5,
                "segmentation": [[3, 2, 9, 2, 9, 6, 3, 6]],
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 1,
                "category_id": 5,
                "segmentation": {"size": [10, 12], "counts": unc},
                "iscrowd": 1,
            },
            {
                "id": 4,
                "image_id": 1,
                "category_id": 5,
                "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2], [10, 8, 12, 8, 12, 10, 10, 10]],
            },
        ],
    }
    ds, report = read_coco(doc, "mem.json")
    assert [i.code for i in report.issues] == ["bbox_only"]
    box_only, poly, crowd, two_parts = ds.annotations
    assert box_only.segmentation is None and box_only.bbox == [1.0, 1.0, 3.0, 3.0]
    np.testing.assert_array_equal(poly.mask, m)
    np.testing.assert_array_equal(crowd.mask, m)
    assert crowd.iscrowd
    assert two_parts.area == 8 and two_parts.mask[9, 11] and two_parts.mask[0, 0]
