"""Every file in ../shared/data loads, or fails with the error its MANIFEST predicts.

Each quirk that MANIFEST.md lists has its own test below (``test_quirk_*``).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from samstudio.core.formats.coco import export_coco, import_coco
from samstudio.core.formats.detect import import_annotations
from samstudio.core.formats.labelme import import_labelme
from samstudio.core.formats.records import Annotation, Dataset, ImageRecord
from samstudio.core.formats.sa1b import import_sa1b
from samstudio.core.formats.sav import import_sav
from samstudio.core.images import ImageLoadError, image_size, load_image
from samstudio.core.masks import mask_iou

IMAGE_SUFFIXES = {".jpg", ".png", ".gif", ".tif", ".tiff"}
UNREADABLE = {
    "image_edge_cases/mmcv_uint16-5channel.tif": "not an image file in a format Pillow can read"
}

C = "coco_instance_seg/"
# annotation file -> (image folder or None, format, Counter of (issue code, severity))
ANNOTATIONS: dict[str, tuple[str | None, str, dict[tuple[str, str], int]]] = {
    C + "cocoapi_results/instances_val2014_fakesegm100_results.json": (
        None,
        "coco-results",
        {("unknown_category", "warning"): 75},
    ),
    C + "datumaro_coco_instances/annotations/instances_train.json": (
        C + "datumaro_coco_instances/images/train",
        "coco",
        {("bbox_only", "warning"): 1},
    ),
    C + "datumaro_coco_instances/annotations/instances_val.json": (
        C + "datumaro_coco_instances/images/val",
        "coco",
        {},
    ),
    C + "labelme2coco_output/annotations.json": (
        C + "labelme2coco_output",
        "coco",
        {
            ("area_mismatch", "warning"): 1,
            ("polygon_outside", "warning"): 1,
        },
    ),
    C + "pycococreator_example/annotations/coco_example.json": (
        C + "pycococreator_example/images",
        "coco",
        {("area_mismatch", "warning"): 1, ("bbox_mismatch", "warning"): 1},
    ),
    C + "sahi_terrain/terrain1_coco.json": (
        C + "sahi_terrain",
        "coco",
        {("area_mismatch", "warning"): 7},
    ),
    C + "sahi_terrain/terrain2_coco.json": (
        C + "sahi_terrain",
        "coco",
        {("area_mismatch", "warning"): 5},
    ),
    "labelme/instance_segmentation/data_annotated/2011_000003.json": (
        None,
        "labelme",
        {("skipped_shape", "warning"): 1},
    ),
    "labelme/instance_segmentation/data_annotated/2011_000006.json": (
        None,
        "labelme",
        {("polygon_outside", "warning"): 1, ("skipped_shape", "warning"): 1},
    ),
    "labelme/instance_segmentation/data_annotated/2011_000025.json": (None, "labelme", {}),
    "labelme/primitives/primitives.json": (None, "labelme", {("skipped_shape", "warning"): 3}),
    "labelme/sahi_terrain/terrain1.json": (
        C + "sahi_terrain",
        "labelme",
        {("image_path_resolved", "warning"): 1},
    ),
    "labelme/sahi_terrain/terrain2.json": (C + "sahi_terrain", "labelme", {}),
    "labelme/tutorial/apc2016_obj3.json": (
        None,
        "labelme",
        {("image_path_resolved", "warning"): 1},
    ),
    "labelme/video_annotation/00000100.json": (None, "labelme", {}),
    "labelme/video_annotation/00000101.json": (None, "labelme", {}),
    "sa1b_format/datumaro_fixture/a.json": ("sa1b_format/datumaro_fixture", "sa1b", {}),
    "sa1b_format/datumaro_fixture/b.json": (
        "sa1b_format/datumaro_fixture",
        "sa1b",
        {("size_transposed", "error"): 1},
    ),
    "sav_video_rle/sav_000001_auto.json": (None, "sav", {("empty_mask", "warning"): 76}),
    "sav_video_rle/sav_000001_manual.json": (None, "sav", {("empty_mask", "warning"): 113}),
}
OTHER = {"MANIFEST.md", "labelme/instance_segmentation/labels.txt"}


def _quiet() -> contextlib.redirect_stdout[io.StringIO]:
    return contextlib.redirect_stdout(io.StringIO())


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_every_shared_file_has_an_expected_outcome(shared_data: Path) -> None:
    images = {f for f in _files(shared_data) if Path(f).suffix.lower() in IMAGE_SUFFIXES}
    assert _files(shared_data) == images | set(ANNOTATIONS) | OTHER


def test_every_image_loads_or_fails_with_the_predicted_error(shared_data: Path) -> None:
    for rel in sorted(f for f in _files(shared_data) if Path(f).suffix.lower() in IMAGE_SUFFIXES):
        path = shared_data / rel
        if rel in UNREADABLE:
            with pytest.raises(ImageLoadError) as err:
                load_image(path)
            assert rel.split("/")[-1] in str(err.value) and UNREADABLE[rel] in str(err.value)
            continue
        h, w = image_size(path)
        small = load_image(path, max_side=64)
        assert small.dtype == np.uint8 and small.ndim == 3 and small.shape[2] == 3, rel
        assert max(small.shape[:2]) == min(64, max(h, w)), rel
        assert (small.shape[0] >= small.shape[1]) == (h >= w) or min(h, w) < 64, rel


@pytest.mark.parametrize("rel", sorted(ANNOTATIONS))
def test_every_annotation_file_imports_with_the_predicted_report(
    shared_data: Path, rel: str
) -> None:
    images, kind, issues = ANNOTATIONS[rel]
    ds, report, got_kind = import_annotations(
        shared_data / rel, images_dir=shared_data / images if images else None
    )
    assert got_kind == kind
    assert Counter((i.code, i.severity) for i in report.issues) == Counter(issues)
    assert all(i.file.endswith(Path(rel).name) for i in report.issues)
    sizes = {im.id: (im.height, im.width) for im in ds.images}
    for a in ds.annotations:
        if a.segmentation is not None:
            assert tuple(a.segmentation["size"]) == sizes[a.image_id]
    if images and kind != "coco-results":
        assert all(im.path is not None for im in ds.images)  # every image file was found


# ------------------------------------------------------------------ MANIFEST quirks


def test_quirk_sahi_area_equals_image_area(shared_data: Path) -> None:
    for name, image_area in [
        ("terrain1_coco.json", 2048 * 1365),
        ("terrain2_coco.json", 1024 * 682),
    ]:
        path = shared_data / C / "sahi_terrain" / name
        raw = json.loads(path.read_text())
        assert {a["area"] for a in raw["annotations"]} == {image_area}
        ds, report = import_coco(path)
        assert [i.code for i in report.issues] == ["area_mismatch"] * len(raw["annotations"])
        with _quiet():
            coco = COCO(str(path))
        for a in ds.annotations:
            assert a.area == int(coco.annToMask(coco.anns[a.id]).sum()) < image_area / 10
        assert f"stored area {image_area} disagrees" in report.issues[0].message


def test_quirk_sa1b_transposed_size_and_empty_mask(shared_data: Path) -> None:
    folder = shared_data / "sa1b_format" / "datumaro_fixture"
    ds, report = import_sa1b(folder / "b.json")
    (issue,) = report.issues
    assert (issue.code, issue.severity, issue.annotation_id) == ("size_transposed", "error", 1)
    assert (
        "b.json" in str(issue)
        and "[5, 10]" in issue.message
        and "10 high and 5 wide" in issue.message
    )
    assert ds.annotations == []
    raw = json.loads((folder / "b.json").read_text())["annotations"][0]
    assert (
        mask_utils.area(
            {"size": raw["segmentation"]["size"], "counts": raw["segmentation"]["counts"].encode()}
        )
        == 0
    )
    ds, report = import_sa1b(folder / "a.json")
    (a,) = ds.annotations
    assert report.issues == [] and a.area == 4 and a.bbox == [3.0, 1.0, 1.0, 4.0]
    assert a.point_coords == [[3.0, 4.0]] and a.crop_box == [3.0, 1.0, 2.0, 5.0]
    assert image_size(folder / "a.jpg") == (5, 10) and image_size(folder / "b.jpg") == (10, 5)


def test_quirk_bbox_only_annotation(shared_data: Path) -> None:
    ds, report = import_coco(
        shared_data / C / "datumaro_coco_instances/annotations/instances_train.json"
    )
    (a,) = ds.annotations
    assert a.segmentation is None and a.mask is None and a.bbox is not None
    assert report.issues[0].code == "bbox_only" and report.issues[0].annotation_id == a.id


def test_quirk_uncompressed_crowd_rle(shared_data: Path) -> None:
    for rel in [
        "datumaro_coco_instances/annotations/instances_val.json",
        "pycococreator_example/annotations/coco_example.json",
    ]:
        path = shared_data / C / rel
        raw = {a["id"]: a for a in json.loads(path.read_text())["annotations"]}
        ds, _ = import_coco(path)
        with _quiet():
            coco = COCO(str(path))
        crowd = [a for a in ds.annotations if a.iscrowd]
        assert crowd and all(isinstance(raw[a.id]["segmentation"]["counts"], list) for a in crowd)
        for a in ds.annotations:
            np.testing.assert_array_equal(a.mask, coco.annToMask(coco.anns[a.id]).astype(bool))
        assert {c.id for c in ds.categories} == ({1, 2, 4} if "datumaro" in rel else {1})
        if "datumaro" in rel:
            assert ds.annotations[0].extra["attributes"] == raw[ds.annotations[0].id]["attributes"]


def test_pycococreator_masks_are_the_ground_truth(shared_data: Path) -> None:
    """Not in MANIFEST: the object in 100_1/100_2.png is palette index 0 (white), in
    100_crowd_1.png index 1 (white); annotation 1 was made from 100_2.png, 2 from 100_1.png."""
    folder = shared_data / C / "pycococreator_example" / "annotations"
    ds, _ = import_coco(folder / "coco_example.json")
    truth = {
        n: np.asarray(Image.open(folder / n).convert("L")) > 127
        for n in ["100_1.png", "100_2.png", "100_crowd_1.png"]
    }
    by_id = {a.id: a.mask for a in ds.annotations}
    np.testing.assert_array_equal(by_id[3], truth["100_crowd_1.png"])  # RLE: exact
    assert mask_iou(by_id[1], truth["100_2.png"]) > 0.95  # polygons: approximate
    assert mask_iou(by_id[2], truth["100_1.png"]) > 0.95


def test_quirk_compressed_rle_everywhere(shared_data: Path) -> None:
    res, _ = import_coco(
        shared_data / C / "cocoapi_results/instances_val2014_fakesegm100_results.json"
    )
    raw = json.loads(
        (shared_data / C / "cocoapi_results/instances_val2014_fakesegm100_results.json").read_text()
    )
    assert len(res.annotations) == len(raw) == 734
    for a, r in zip(res.annotations, raw):
        seg = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
        assert a.area == int(mask_utils.area(seg)) and a.score == r["score"]
    for name in ["auto", "manual"]:
        ds, report = import_sav(shared_data / "sav_video_rle" / f"sav_000001_{name}.json")
        assert len(ds.images) == 121 and all(
            (im.height, im.width) == (848, 480) for im in ds.images
        )
        assert all(0 <= (a.stability_score or 0) <= 1 and a.area > 0 for a in ds.annotations)
        assert report.errors == []


def test_quirk_labelme2coco_subfolder_background_and_extra_keys(shared_data: Path) -> None:
    root = shared_data / C / "labelme2coco_output"
    ds, report, _ = import_annotations(root / "annotations.json", images_dir=root)
    assert all(
        im.file_name.startswith("JPEGImages/") and Path(im.path or "").is_file() for im in ds.images
    )
    assert ds.categories[0].id == 0 and ds.categories[0].name == "_background_"
    assert "type" in ds.info
    assert all(im.extra.get("url", "missing") is None for im in ds.images)
    assert not any(i.code == "image_missing" for i in report.issues)


def test_quirk_labelme_embedded_image_data(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "labelme" / "tutorial" / "apc2016_obj3.json"
    assert json.loads(src.read_text())["imagePath"] == "apc2016_obj3.json"
    shutil.copy(src, tmp_path / src.name)  # without the .jpg beside it
    ds, report = import_labelme(tmp_path / src.name)
    (image,) = ds.images
    assert report.issues == [] and image.path is None and image.image_bytes
    assert (image.height, image.width) == (907, 1210) and image.file_name == "apc2016_obj3.jpg"
    assert len(ds.annotations) == 4


def test_quirk_labelme_image_path_names_wrong_suffix(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "labelme" / "sahi_terrain" / "terrain1.json"
    assert json.loads(src.read_text())["imagePath"] == "terrain1.png"
    shutil.copy(src, tmp_path / "terrain1.json")
    shutil.copy(shared_data / C / "sahi_terrain" / "terrain1.jpg", tmp_path / "terrain1.jpg")
    ds, report = import_labelme(tmp_path / "terrain1.json")  # the image beside the JSON
    assert [i.code for i in report.issues] == ["image_path_resolved"]
    assert ds.images[0].path == str(tmp_path / "terrain1.jpg") and len(ds.annotations) == 7


def test_quirk_labelme_mask_and_non_area_shapes(shared_data: Path) -> None:
    ds, report = import_labelme(shared_data / "labelme" / "primitives" / "primitives.json")
    assert sorted(c.name for c in ds.categories) == ["circle", "octagon", "polygon", "rectangle"]
    skipped = {i.annotation_id for i in report.issues if i.code == "skipped_shape"}
    assert skipped == {"shape #4 (line)", "shape #5 (point)", "shape #6 (line_strip)"}
    octagon = next(
        a
        for a in ds.annotations
        if ds.categories[[c.id for c in ds.categories].index(a.category_id)].name == "octagon"
    )
    x, y, w, h = octagon.computed_bbox()
    assert (
        417 <= x and x + w <= 517 and 305 <= y and y + h <= 405 and octagon.area > 0.7 * 100 * 100
    )


def test_quirk_unreadable_five_band_tiff(shared_data: Path) -> None:
    path = shared_data / "image_edge_cases" / "mmcv_uint16-5channel.tif"
    with pytest.raises(ImageLoadError, match=r"mmcv_uint16-5channel\.tif: not an image file"):
        load_image(path)
    with pytest.raises(ImageLoadError):
        image_size(path)


def test_quirk_invalid_orientation_zero_is_as_stored(shared_data: Path) -> None:
    path = shared_data / "exif_orientation" / "Landscape_0.jpg"
    assert Image.open(path).getexif()[0x0112] == 0
    np.testing.assert_array_equal(load_image(path), np.asarray(Image.open(path).convert("RGB")))


def test_quirk_orientations_5_to_8_transpose_and_masks_use_displayed_frame(
    shared_data: Path, tmp_path: Path
) -> None:
    ref = load_image(shared_data / "exif_orientation" / "Landscape_1.jpg").astype(int)
    for n in range(1, 9):
        path = shared_data / "exif_orientation" / f"Landscape_{n}.jpg"
        img = load_image(path)
        assert img.shape == (1200, 1800, 3) and image_size(path) == (1200, 1800)
        assert np.abs(img.astype(int) - ref).mean() < 8  # same picture, upright
    for rel, stored in [
        ("image_edge_cases/mmcv_color_exif.jpg", (300, 400)),
        ("image_edge_cases/pillow_orientation_rectangle.jpg", (1, 2)),
    ]:
        assert image_size(shared_data / rel) == stored[::-1]
    # A mask drawn on the displayed frame exports with displayed width/height and reads back.
    path = shared_data / "exif_orientation" / "Landscape_6.jpg"
    h, w = image_size(path)
    mask = np.zeros((h, w), bool)
    mask[100:300, 50:400] = True
    ds = Dataset(images=[ImageRecord(1, path.name, w, h)])
    ds.annotations.append(Annotation.from_mask(1, 1, None, mask))
    out = export_coco(ds, tmp_path / "c.json")
    back, report, _ = import_annotations(out, images_dir=path.parent)
    assert report.issues == [] and (back.images[0].height, back.images[0].width) == (1200, 1800)
    np.testing.assert_array_equal(back.annotations[0].mask, mask)


def test_labelme_matches_its_own_renderings(shared_data: Path) -> None:
    """labelme's VOC instance PNGs were drawn from the same polygons: (almost) every pixel
    labelme gave an instance is in our mask (ours are larger only where a later instance
    covers an earlier one in the PNG), and labelme2coco's polygons agree with IoU > 0.9."""
    root = shared_data / "labelme" / "instance_segmentation"
    labels = (root / "labels.txt").read_text().splitlines()
    ds, _ = import_labelme(root / "data_annotated", labels=labels)
    with _quiet():
        coco = COCO(str(shared_data / C / "labelme2coco_output" / "annotations.json"))
    for image in ds.images:
        stem = Path(image.file_name).stem
        rendering = np.asarray(
            Image.open(root / "voc_masks" / "SegmentationObject" / f"{stem}.png")
        )
        ours = ds.annotations_of(image.id)
        for value in set(np.unique(rendering)) - {0, 255}:
            gt = rendering == value
            best = max(ours, key=lambda a: int((a.mask & gt).sum()))
            # (one pixel of 14002 differs in 2011_000006: Pillow's rasteriser changed a little)
            assert (gt & ~best.mask).sum() <= max(1, gt.sum() // 1000)
        # labelme2coco made COCO polygons from the same shapes: same instances, close masks
        coco_img = next(i for i in coco.imgs.values() if Path(i["file_name"]).stem == stem)
        theirs = coco.loadAnns(coco.getAnnIds(imgIds=[coco_img["id"]]))
        assert len(theirs) == len(ours)
        for a in ours:
            match = max(theirs, key=lambda t: mask_iou(a.mask, coco.annToMask(t).astype(bool)))
            assert match["category_id"] == a.category_id
            assert mask_iou(a.mask, coco.annToMask(match).astype(bool)) > 0.9


def test_edge_case_modes_convert_as_documented(shared_data: Path) -> None:
    d = shared_data / "image_edge_cases"
    la = Image.open(d / "mmcv_gray_alpha.png")
    assert la.mode == "LA"
    out = load_image(d / "mmcv_gray_alpha.png")  # alpha dropped, grey replicated
    for ch in range(3):
        np.testing.assert_array_equal(out[:, :, ch], np.asarray(la.getchannel("L")))
    rgba = Image.open(d / "pillow_transparent.png")
    np.testing.assert_array_equal(
        load_image(d / "pillow_transparent.png"), np.asarray(rgba)[:, :, :3]
    )
    for name in ["mmcv_palette.gif", "pillow_pil_sample_cmyk.jpg", "mmcv_grayscale.jpg"]:
        np.testing.assert_array_equal(
            load_image(d / name), np.asarray(Image.open(d / name).convert("RGB")), err_msg=name
        )
    # 16-bit: scaled by the real value range, where Pillow's own 8-bit view truncates
    for name in [
        "pillow_tiff_16bit_RGB.tiff",
        "pillow_tiff_16bit_RGBa.tiff",
        "pillow_16bit.cropped.tif",
    ]:
        out = load_image(d / name)
        assert out.min() == 0 and out.max() == 255, name
    # animated 16-bit PNG: the first frame (pure red), through Pillow's 8-bit view
    apng = load_image(d / "pillow_apng_mode_16bit.png")
    assert (apng.reshape(-1, 3) == [255, 0, 0]).all()
    assert np.asarray(Image.open(d / "pillow_tiff_16bit_RGB.tiff")).max() == 154  # Pillow alone
    grey16 = np.asarray(Image.open(d / "pillow_16bit.cropped.tif")).astype(float)
    expected = np.rint((grey16 - grey16.min()) * 255 / (grey16.max() - grey16.min()))
    np.testing.assert_array_equal(load_image(d / "pillow_16bit.cropped.tif")[:, :, 0], expected)
