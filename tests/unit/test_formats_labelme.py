"""labelme import: shapes to masks, images found or embedded, labels, problems reported."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samstudio.core.formats.detect import import_annotations
from samstudio.core.formats.labelme import import_labelme, read_labelme


def _png_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _shape(label: str, kind: str, points: list[list[float]], **kw: Any) -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "shape_type": kind,
        "flags": {},
        **kw,
    }


def _doc(
    shapes: list[dict[str, Any]], image_path: str = "pic.png", w: int = 40, h: int = 30, **kw: Any
) -> dict[str, Any]:
    return {
        "version": "5.7.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": h,
        "imageWidth": w,
        **kw,
    }


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    Image.new("RGB", (40, 30)).save(tmp_path / "pic.png")
    return tmp_path


def _read(folder: Path, doc: dict[str, Any], name: str = "pic.json") -> tuple[Any, Any]:
    p = folder / name
    p.write_text(json.dumps(doc))
    return import_labelme(p)


def test_area_shapes_become_masks(folder: Path) -> None:
    patch = np.zeros((4, 5), np.uint8)
    patch[1:3, 1:4] = 255
    shapes = [
        _shape("box", "rectangle", [[12, 8], [2, 3]]),  # corners in any order
        _shape("ring", "circle", [[30, 15], [30, 20]]),
        _shape("tri", "polygon", [[0, 29], [10, 29], [0, 19]]),
        _shape("blob", "mask", [[20, 2], [24, 5]], mask=_png_b64(patch)),
    ]
    ds, report = _read(folder, _doc(shapes))
    assert report.issues == []
    box, ring, tri, blob = ds.annotations
    assert box.computed_bbox() == [2.0, 3.0, 11.0, 6.0]  # Pillow fills the edge pixels too
    assert box.area == 11 * 6
    assert ring.mask[15, 30] and ring.mask[15, 25] and not ring.mask[15, 24]
    assert tri.mask[28, 1] and not tri.mask[20, 9]
    np.testing.assert_array_equal(blob.mask[2:6, 20:25], patch > 0)
    assert blob.area == 6
    assert [c.name for c in ds.categories] == ["box", "ring", "tri", "blob"]


def test_non_area_shapes_are_skipped_with_warnings(folder: Path) -> None:
    shapes = [
        _shape("p", "point", [[5, 5]]),
        _shape("l", "line", [[1, 1], [9, 9]]),
        _shape("s", "linestrip", [[1, 1], [9, 9], [3, 7]]),
        _shape("weird", "spline", [[1, 1], [9, 9], [3, 7]]),
        _shape("__ignore__", "polygon", [[1, 1], [9, 1], [9, 9]]),
        _shape("ok", "polygon", [[1, 1], [9, 1], [9, 9]]),
    ]
    ds, report = _read(folder, _doc(shapes))
    assert len(ds.annotations) == 1
    assert [i.code for i in report.issues] == ["skipped_shape"] * 5
    assert all(i.severity == "warning" and i.file.endswith("pic.json") for i in report.issues)
    assert "shape #1 (l)" in str(report.issues[1])


def test_group_id_merges_shapes_into_one_instance(folder: Path) -> None:
    shapes = [
        _shape("person", "polygon", [[1, 1], [5, 1], [5, 5]], group_id=0),
        _shape("person", "polygon", [[20, 20], [25, 20], [25, 25]], group_id=0),
        _shape("person", "polygon", [[30, 1], [35, 1], [35, 5]]),
    ]
    ds, _ = _read(folder, _doc(shapes))
    assert len(ds.annotations) == 2
    merged = ds.annotations[0]
    assert merged.mask[2, 4] and merged.mask[21, 24] and merged.extra["labelme_shapes"] == [0, 1]


def test_embedded_image_and_path_resolution(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(buf, format="JPEG")
    doc = _doc(
        [_shape("a", "polygon", [[1, 1], [9, 1], [9, 9]])],
        image_path="shot.json",
        imageData=base64.b64encode(buf.getvalue()).decode(),
    )
    p = tmp_path / "shot.json"
    p.write_text(json.dumps(doc))
    ds, report = import_labelme(p)
    image = ds.images[0]
    assert image.image_bytes == buf.getvalue() and image.path is None
    assert image.file_name == "shot.jpg" and (image.height, image.width) == (30, 40)
    assert report.issues == []
    # The same JSON with an image beside it named after the JSON: found, with a warning.
    Image.new("RGB", (40, 30)).save(tmp_path / "shot.png")
    ds, report = import_labelme(p)
    assert ds.images[0].path == str(tmp_path / "shot.png") and ds.images[0].image_bytes is None
    assert [i.code for i in report.issues] == ["image_path_resolved"]


def test_missing_image_uses_json_size_and_mismatch_is_error(tmp_path: Path) -> None:
    doc = _doc([_shape("a", "polygon", [[1, 1], [9, 1], [9, 9]])], image_path="gone.png")
    ds, report = _read(tmp_path, doc, "x.json")
    assert [i.code for i in report.issues] == ["image_missing"] and len(ds.annotations) == 1
    Image.new("RGB", (30, 40)).save(tmp_path / "gone.png")  # width and height swapped
    ds, report = _read(tmp_path, doc, "x.json")
    assert [i.code for i in report.errors] == ["size_transposed"] and ds.annotations == []


def test_labels_fix_category_ids(folder: Path) -> None:
    shapes = [
        _shape("cat", "polygon", [[1, 1], [9, 1], [9, 9]]),
        _shape("zebra", "polygon", [[1, 1], [9, 1], [9, 9]]),
    ]
    (folder / "pic.json").write_text(json.dumps(_doc(shapes)))
    ds, report = import_labelme(
        folder / "pic.json", labels=["__ignore__", "_background_", "dog", "cat"]
    )
    assert [(c.id, c.name) for c in ds.categories] == [(0, "_background_"), (1, "dog"), (2, "cat")]
    assert [a.category_id for a in ds.annotations] == [2]
    assert [i.code for i in report.errors] == ["unknown_category"]


def test_bad_shapes_are_errors_not_crashes(folder: Path) -> None:
    shapes = [
        "junk",
        {"label": None, "points": []},
        _shape("a", "polygon", [[1, 1], [2, 2]]),
        _shape("b", "rectangle", [[1, "x"], [2, 2]]),
        _shape("c", "mask", [[1, 1], [3, 3]], mask="!!!not base64 png"),
        _shape("d", "polygon", [[1e12, 1], [2, 2], [3, 3]]),
    ]
    ds, report = _read(folder, _doc(shapes))
    assert ds.annotations == []
    assert [i.severity for i in report.issues] == ["error"] * 6
    with pytest.raises(Exception, match="not a labelme file"):
        read_labelme({"shapes": "nope"}, folder / "pic.json")


def test_detect_reads_labelme_folder(folder: Path) -> None:
    (folder / "pic.json").write_text(
        json.dumps(_doc([_shape("a", "polygon", [[1, 1], [9, 1], [9, 9]])]))
    )
    ds, report, kind = import_annotations(folder)
    assert kind == "labelme" and len(ds.annotations) == 1 and report.issues == []
