"""`samstudio auto-segment` end to end with a geometric fake model (no weights needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from amg_scenes import ShapeSegmenter, make_scene
from PIL import Image
from pycocotools.coco import COCO

from samstudio.cli.main import main
from samstudio.core.formats.sa1b import import_sa1b
from samstudio.core.masks import decode_rle, mask_iou


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> ShapeSegmenter:
    """`open_model` returns one shared ShapeSegmenter (counts its calls)."""
    seg = ShapeSegmenter(image_size=256, low_res=64)
    opened: list[object] = []

    def open_model(spec: object = None, device: object = None) -> ShapeSegmenter:
        opened.append(spec)
        return seg

    monkeypatch.setattr("samstudio.inference.loader.open_model", open_model)
    seg.opened = opened  # type: ignore[attr-defined]
    return seg


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, list]:
    folder = tmp_path / "photos"
    folder.mkdir()
    scenes = []
    for i in range(3):
        scene = make_scene(height=120, width=160, n_objects=3, seed=10 + i)
        Image.fromarray(scene.image).save(folder / f"scene{i}.png")
        scenes.append(scene)
    return folder, scenes


def run_cli(*args: str) -> int:
    return main(["auto-segment", *args])


def test_writes_sa1b_per_image_and_a_coco_file_pycocotools_loads(fake_model, images, tmp_path):
    folder, scenes = images
    out = tmp_path / "out"
    coco_path = tmp_path / "all.json"
    rc = run_cli(
        str(folder),
        "--out",
        str(out),
        "--points-per-side",
        "8",
        "--coco",
        str(coco_path),
        "--quiet",
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["scene0.json", "scene1.json", "scene2.json"]
    for i, scene in enumerate(scenes):
        doc = json.loads((out / f"scene{i}.json").read_text())
        assert doc["image"]["file_name"] == f"scene{i}.png"
        assert (doc["image"]["height"], doc["image"]["width"]) == (120, 160)
        masks = [decode_rle(a["segmentation"]) for a in doc["annotations"]]
        for obj in scene.objects:
            assert max(mask_iou(obj, m) for m in masks) > 0.95
        for ann in doc["annotations"]:
            assert set(ann) >= {
                "id",
                "segmentation",
                "bbox",
                "area",
                "predicted_iou",
                "stability_score",
                "point_coords",
                "crop_box",
            }
    dataset, report = import_sa1b(out)  # our own SA-1B reader accepts them
    assert len(dataset.images) == 3 and not report.errors
    coco = COCO(str(coco_path))
    assert len(coco.getImgIds()) == 3
    total = 0
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        total += len(anns)
        for ann in anns:
            m = coco.annToMask(ann)
            assert m.shape == (120, 160) and int(m.sum()) == ann["area"]
    assert total == sum(len(json.loads(p.read_text())["annotations"]) for p in out.iterdir())
    assert len({a["id"] for a in coco.dataset["annotations"]}) == total  # ids are unique


def test_resume_skips_images_already_done(fake_model, images, tmp_path, capsys):
    folder, _ = images
    out = tmp_path / "out"
    assert run_cli(str(folder), "--out", str(out), "--points-per-side", "6", "--quiet") == 0
    first = fake_model.decoded_points
    assert first == 3 * 36
    before = (out / "scene1.json").read_text()
    (out / "scene0.json").unlink()  # as if the run had been stopped before this image
    (out / "scene2.json").write_text("{not json")  # a broken file is redone too
    capsys.readouterr()
    assert run_cli(str(folder), "--out", str(out), "--points-per-side", "6", "--quiet") == 0
    assert fake_model.decoded_points == first + 2 * 36
    assert (out / "scene1.json").read_text() == before
    assert "1 of 3 images already done" in capsys.readouterr().err
    json.loads((out / "scene2.json").read_text())
    # everything done: the model is not even opened
    opened = len(fake_model.opened)
    assert run_cli(str(folder), "--out", str(out), "--quiet") == 0
    assert len(fake_model.opened) == opened


def test_a_bad_image_is_reported_and_skipped(fake_model, images, tmp_path, capsys):
    folder, _ = images
    bad = folder / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG")
    out = tmp_path / "out"
    rc = run_cli(
        str(folder),
        str(tmp_path / "missing.png"),
        "--out",
        str(out),
        "--points-per-side",
        "4",
        "--quiet",
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert f"skipped {bad}" in err
    assert "missing.png: no such file or folder" in err
    assert sorted(p.name for p in out.iterdir()) == ["scene0.json", "scene1.json", "scene2.json"]


def test_progress_bars_on_stderr(fake_model, images, tmp_path, capsys):
    folder, _ = images
    rc = run_cli(str(folder / "scene0.png"), "--out", str(tmp_path / "o"), "--points-per-side", "4")
    assert rc == 0
    err = capsys.readouterr().err
    assert "images" in err and "1/1" in err


def test_parameters_reach_the_pipeline_and_bad_ones_are_named(fake_model, images, tmp_path, capsys):
    folder, _ = images
    out = tmp_path / "o"
    rc = run_cli(
        str(folder / "scene0.png"),
        "--out",
        str(out),
        "--points-per-side",
        "5",
        "--crop-n-layers",
        "1",
        "--quiet",
    )
    assert rc == 0
    assert len(fake_model.encoded) == 5  # whole image + 2x2 crops
    crop_boxes = {
        tuple(a["crop_box"]) for a in json.loads((out / "scene0.json").read_text())["annotations"]
    }
    assert crop_boxes  # every annotation names its crop
    assert run_cli(str(folder), "--out", str(out), "--pred-iou-thresh", "2", "--quiet") == 2
    assert "pred_iou_thresh must be in [0.0, 1.0], got 2.0" in capsys.readouterr().err
    assert run_cli(str(tmp_path / "nothing"), "--out", str(out), "--quiet") == 2


def test_adaptive_flag_decodes_fewer_points(fake_model, images, tmp_path):
    folder, _ = images
    assert (
        run_cli(
            str(folder / "scene0.png"),
            "--out",
            str(tmp_path / "a"),
            "--points-per-side",
            "16",
            "--quiet",
        )
        == 0
    )
    full = fake_model.decoded_points
    assert (
        run_cli(
            str(folder / "scene0.png"),
            "--out",
            str(tmp_path / "b"),
            "--points-per-side",
            "16",
            "--adaptive",
            "--quiet",
        )
        == 0
    )
    assert fake_model.decoded_points - full < full / 2
    a = json.loads((tmp_path / "a" / "scene0.json").read_text())["annotations"]
    b = json.loads((tmp_path / "b" / "scene0.json").read_text())["annotations"]
    assert len(a) == len(b)
