"""Bad values in annotation files: a clear message naming the file and the problem, never a
traceback, a silently wrong mask or a memory blow-up (the reviewer's reproductions)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samstudio.cli.main import main
from samstudio.core.formats.coco import (
    coco_document,
    coco_results_document,
    read_coco,
    read_coco_results,
)
from samstudio.core.formats.sa1b import read_sa1b
from samstudio.core.formats.validate import finite_number, int_id, polygon_budget, polygon_work


def small_coco(ann_extra: dict[str, Any] | None = None, img_extra: dict[str, Any] | None = None):
    im: dict[str, Any] = {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}
    im.update(img_extra or {})
    ann: dict[str, Any] = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]],
        "bbox": [1, 1, 4, 4],
        "area": 16,
        "iscrowd": 0,
    }
    ann.update(ann_extra or {})
    return {"images": [im], "categories": [{"id": 1, "name": "x"}], "annotations": [ann]}


def convert(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    rc = main(
        ["convert", str(path), "--to", "coco-rle", "--out", str(tmp_path / "out.json"), *extra]
    )
    return rc, capsys.readouterr().err


# ------------------------------------------------------------------ defect 3: tracebacks


def test_integer_literal_too_long_for_python_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "huge_int.json"
    f.write_text(json.dumps(small_coco()).replace('"area": 16', '"area": ' + "9" * 5000))
    rc, err = convert(f, tmp_path, capsys)  # was: ValueError traceback from json.loads
    assert rc == 2
    assert "huge_int.json" in err and "number too long" in err


@pytest.mark.parametrize(
    "text_old, text_new, code",
    [
        ("[[1, 1, 5, 1", "[[1" + "0" * 400 + ", 1, 5, 1", "bad_polygon"),  # polygon vertex
        ('"area": 16', '"area": 1' + "0" * 400, "area_mismatch"),
        ('"bbox": [1, 1, 4, 4]', '"bbox": [1' + "0" * 400 + ", 1, 4, 4]", "bbox_mismatch"),
        ('"iscrowd": 0', '"iscrowd": 0, "score": 1' + "0" * 400, "bad_field"),
        ('"iscrowd": 0', '"iscrowd": 0, "predicted_iou": 1' + "0" * 400, "bad_field"),
    ],
)
def test_integers_beyond_float_range_are_not_finite_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text_old: str, text_new: str, code: str
) -> None:
    f = tmp_path / "bigint.json"
    text = json.dumps(small_coco())
    assert text_old in text
    f.write_text(text.replace(text_old, text_new))
    rc, err = convert(f, tmp_path, capsys)  # was: OverflowError traceback from float(int)
    assert rc in (0, 1) and "Traceback" not in err
    assert "bigint.json" in err and "annotation 1" in err
    assert finite_number(10**400) is None and finite_number(-(10**400)) is None


def test_labelme_point_beyond_float_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lm = {
        "version": "5.0.0",
        "shapes": [
            {
                "label": "a",
                "shape_type": "polygon",
                "group_id": None,
                "points": [[1, 1], [5, 1], [5, 5]],
            }
        ],
        "imagePath": "x.jpg",
        "imageData": None,
        "imageHeight": 10,
        "imageWidth": 10,
    }
    f = tmp_path / "lm.json"
    f.write_text(json.dumps(lm).replace("[[1, 1]", "[[1" + "0" * 400 + ", 1]"))
    rc, err = convert(f, tmp_path, capsys)
    assert rc == 1 and "lm.json" in err and "shape #0" in err and "points" in err


@pytest.mark.parametrize("bad", ["--1", "\u00b2", "1\u00b2", "\u0661", "-", "", " 1 2"])
def test_int_id_accepts_only_ascii_integers(bad: str) -> None:
    assert int_id(bad) is None  # '--1', '²' passed isdigit() and then int() raised
    assert int_id(" -12 ") == -12 and int_id("7") == 7 and int_id(3.0) == 3


@pytest.mark.parametrize(
    "img_extra, ann_extra",
    [({"id": "--1"}, None), (None, {"category_id": "\u00b2"}), (None, {"image_id": "--1"})],
)
def test_id_strings_that_fooled_isdigit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    img_extra: dict[str, Any] | None,
    ann_extra: dict[str, Any] | None,
) -> None:
    f = tmp_path / "ids.json"
    f.write_text(json.dumps(small_coco(ann_extra, img_extra)))
    rc, err = convert(f, tmp_path, capsys)  # was: ValueError traceback from int()
    assert rc in (0, 1) and "Traceback" not in err and "ids.json" in err


def test_labels_file_not_utf8(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "labels.bin"
    bad.write_bytes(b"\xff\xfe\x00cat\n")
    src = shared_data / "labelme" / "video_annotation" / "00000100.json"
    rc, err = convert(src, tmp_path, capsys, "--labels", str(bad))  # was: UnicodeDecodeError
    assert rc == 2
    assert "labels.bin" in err and "not UTF-8" in err


# ------------------------------------------- defect 2: masks larger than an image may be

HUGE = 100_000  # 1e10 pixels: 25x images.MAX_PIXELS


def huge_rle() -> dict[str, Any]:
    return {"size": [HUGE, HUGE], "counts": [0, 4_000_000_000, 0, 4_000_000_000, 0, 2_000_000_000]}


def test_coco_image_over_max_pixels_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "images": [{"id": 1, "file_name": "big.jpg", "width": HUGE, "height": HUGE}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": huge_rle()}
        ],
    }
    f = tmp_path / "huge_rle.json"
    f.write_text(json.dumps(doc))
    t = time.perf_counter()
    rc = main(["convert", str(f), "--to", "coco-polygon", "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert time.perf_counter() - t < 10  # was: accepted, then > 10 GB allocated on export
    assert rc == 1
    assert "huge_rle.json" in err and "image 1" in err and "100000x100000" in err
    assert "400 megapixels" in err
    ds, rep = read_coco(doc, "huge_rle.json")
    assert ds.images == [] and ds.annotations == [] and "bad_image" in rep.codes()


def test_coco_results_rle_over_max_pixels_is_refused() -> None:
    results = [{"image_id": 3, "category_id": 1, "score": 0.5, "segmentation": huge_rle()}]
    ds, rep = read_coco_results(results, "res.json")
    assert ds.images == [] and ds.annotations == []
    errors = [i for i in rep.issues if i.code == "bad_image"]
    assert errors and "100000x100000" in errors[0].message and errors[0].image_id == 3


def test_sa1b_image_over_max_pixels_is_refused() -> None:
    doc = {
        "image": {"image_id": 1, "width": HUGE, "height": HUGE, "file_name": "big.jpg"},
        "annotations": [{"id": 1, "segmentation": huge_rle()}],
    }
    ds, rep = read_sa1b(doc, "sa_1.json")
    assert ds.images == [] and ds.annotations == []
    (issue,) = rep.issues
    assert issue.code == "bad_image" and "sa_1.json" in str(issue) and "100000x100000" in str(issue)
    # an image within the limit is still read
    ok = {"image": {"image_id": 1, "width": 20_000, "height": 20_000, "file_name": "ok.jpg"}}
    ds, rep = read_sa1b({**ok, "annotations": []}, "sa_2.json")
    assert len(ds.images) == 1 and not rep.issues


def test_convert_out_of_memory_is_one_clear_line(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import samstudio.core.formats.detect as detect

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    src = shared_data / "sa1b_format" / "datumaro_fixture" / "a.json"
    monkeypatch.setattr(detect, "export_annotations", boom)
    rc = main(["convert", str(src), "--to", "coco-rle", "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "out of memory" in err and "a.json" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(detect, "import_annotations", boom)
    rc = main(["convert", str(src), "--to", "coco-rle", "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "out of memory" in err and "a.json" in err


# ------------------------------- defect 6: no usable category must not become category 1


@pytest.mark.parametrize("bad", ["dog", None, 2.5, [2]])
def test_annotation_without_usable_category_does_not_join_category_1(bad: Any) -> None:
    doc = small_coco({"category_id": bad})
    doc["categories"] = [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]
    ds, rep = read_coco(doc, "in.json")
    assert "unknown_category" in rep.codes()
    out = coco_document(ds)
    cats = {c["id"]: c["name"] for c in out["categories"]}
    (a,) = out["annotations"]
    assert cats[a["category_id"]] == "object"  # was: 1 = "person"
    assert a["category_id"] == 3 and len(cats) == 3
    (r,) = coco_results_document(ds)
    assert r["category_id"] == 3


def test_annotation_without_category_reuses_a_category_named_object() -> None:
    doc = small_coco({"category_id": None})
    doc["categories"] = [{"id": 1, "name": "person"}, {"id": 5, "name": "object"}]
    ds, _ = read_coco(doc, "in.json")
    out = coco_document(ds)
    assert [c["id"] for c in out["categories"]] == [1, 5]
    assert out["annotations"][0]["category_id"] == 5
    # no categories at all (SA-1B, AMG): 1, named "object", as before
    ds.categories = []
    out = coco_document(ds)
    assert out["categories"][0]["id"] == 1 and out["categories"][0]["name"] == "object"
    assert out["annotations"][0]["category_id"] == 1


# ------------------------------------------ defect 7: box-only boxes outside the image


def box_only(*boxes: list[float]) -> dict[str, Any]:
    doc = small_coco()
    doc["annotations"] = [
        {"id": n + 1, "image_id": 1, "category_id": 1, "segmentation": [], "bbox": b}
        for n, b in enumerate(boxes)
    ]
    return doc


def test_box_only_annotation_outside_the_image_is_an_error() -> None:
    ds, rep = read_coco(box_only([-500, -40, 5, 5], [10, 2, 3, 3], [2, -9, 3, 9]), "in.json")
    assert ds.annotations == []  # was: imported unchanged, with only 'bbox_only'
    errors = [i for i in rep.issues if i.severity == "error"]
    assert [(i.code, i.annotation_id) for i in errors] == [
        ("bbox_outside", 1),
        ("bbox_outside", 2),
        ("bbox_outside", 3),
    ]
    assert "in.json" in str(errors[0]) and "[-500, -40, 5, 5]" in errors[0].message


def test_box_only_annotation_sticking_out_is_clipped_with_a_warning() -> None:
    ds, rep = read_coco(box_only([3, 3, 1e9, 0], [-2, 4, 5, 100], [1, 1, 4, 4]), "in.json")
    assert [a.bbox for a in ds.annotations] == [[3, 3, 7, 0], [0, 4, 3, 6], [1, 1, 4, 4]]
    outside = [i for i in rep.issues if i.code == "bbox_outside"]
    assert [(i.severity, i.annotation_id) for i in outside] == [("warning", 1), ("warning", 2)]
    assert "clipped to [3, 3, 7, 0]" in outside[0].message
    out = coco_document(ds)
    for a in out["annotations"]:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 10 and y + h <= 10
    assert [a["area"] for a in out["annotations"]] == [0.0, 18.0, 16.0]


# ----------------------------- defect 5: polygons whose rasterisation would take gigabytes


def far_zigzag(n: int, h: int = 1000, w: int = 1000) -> dict[str, Any]:
    far = 2 * (h + w) - 1  # inside the accepted "far" band
    ring: list[float] = []
    for i in range(n):
        ring += [(-far if i % 2 else far), (i % 3) * 10.0]
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": w, "height": h}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [
            {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [ring], "iscrowd": 0}
        ],
    }


@pytest.mark.parametrize("n", [2000, 16000])
def test_far_zigzag_polygon_is_refused_quickly(n: int) -> None:
    # was: frPyObjects took ~5 GB for n=16000 (190 KB of JSON), a segfault under 4 GB
    t = time.perf_counter()
    ds, rep = read_coco(far_zigzag(n), "far.json")
    assert time.perf_counter() - t < 5
    assert ds.annotations == []
    (issue,) = rep.issues
    assert issue.code == "polygon_too_complex" and issue.severity == "error"
    assert "far.json" in str(issue) and issue.annotation_id == 4 and "1000x1000" in issue.message


def test_polygon_budget_leaves_real_outlines_alone() -> None:
    # a detailed outline: 20000 vertices on a circle across a 4000x3000 image
    t = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    ring = np.column_stack([2000 + 1900 * np.cos(t), 1500 + 1400 * np.sin(t)]).ravel()
    assert polygon_work([ring.tolist()]) < polygon_budget(3000, 4000, 20000)
    # a star of 200 spikes across the whole image, sticking out a little
    star = []
    for k in range(400):
        r = 1600 if k % 2 else 50
        a = 2 * np.pi * k / 400
        star += [1500 + r * np.cos(a), 1500 + r * np.sin(a)]
    doc = far_zigzag(1, 3000, 3000)
    doc["annotations"][0]["segmentation"] = [star]
    ds, rep = read_coco(doc, "star.json")
    assert len(ds.annotations) == 1 and rep.codes() == ["polygon_outside"]
