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
    assert sorted(p.name for p in out.iterdir()) == [
        "scene0.png.json",
        "scene1.png.json",
        "scene2.png.json",
    ]
    for i, scene in enumerate(scenes):
        doc = json.loads((out / f"scene{i}.png.json").read_text())
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
    before = (out / "scene1.png.json").read_text()
    (out / "scene0.png.json").unlink()  # as if the run had been stopped before this image
    capsys.readouterr()
    assert run_cli(str(folder), "--out", str(out), "--points-per-side", "6", "--quiet") == 0
    assert fake_model.decoded_points == first + 36
    assert (out / "scene1.png.json").read_text() == before
    assert "2 of 3 images already done" in capsys.readouterr().err
    json.loads((out / "scene0.png.json").read_text())
    # everything done: the model is not even opened
    opened = len(fake_model.opened)
    assert run_cli(str(folder), "--out", str(out), "--points-per-side", "6", "--quiet") == 0
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
    assert sorted(p.name for p in out.iterdir()) == [
        "scene0.png.json",
        "scene1.png.json",
        "scene2.png.json",
    ]


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
        tuple(a["crop_box"])
        for a in json.loads((out / "scene0.png.json").read_text())["annotations"]
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
    assert fake_model.decoded_points - full <= full / 2  # at most half the grid
    a = json.loads((tmp_path / "a" / "scene0.png.json").read_text())["annotations"]
    b = json.loads((tmp_path / "b" / "scene0.png.json").read_text())["annotations"]
    assert len(a) == len(b)


# --- found by review: naming, resume and write errors -------------------------------


def _save_scene(path: Path, height: int, width: int, seed: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_scene(height=height, width=width, n_objects=2, seed=seed).image).save(path)


def _coco_sizes(coco_path: Path) -> dict[str, tuple[int, int]]:
    doc = json.loads(coco_path.read_text())
    return {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]}


def test_equal_stems_and_a_stem_with_suffix_get_their_own_outputs(fake_model, tmp_path):
    # a.jpg, a.png and a_2.png: the old `_2` suffix for the second `a` was a_2.png's name
    folder = tmp_path / "in"
    _save_scene(folder / "a.jpg", 64, 80)
    _save_scene(folder / "a.png", 64, 96)
    _save_scene(folder / "a_2.png", 70, 80)
    out, coco_path = tmp_path / "out", tmp_path / "coco.json"
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    assert run_cli(*argv, "--coco", str(coco_path)) == 0
    assert len(list(out.iterdir())) == 3
    sizes = {"a.jpg": (80, 64), "a.png": (96, 64), "a_2.png": (80, 70)}
    for path in out.iterdir():
        image = json.loads(path.read_text())["image"]
        assert (image["width"], image["height"]) == sizes[image["file_name"]]
    assert _coco_sizes(coco_path) == sizes


def test_resume_with_other_inputs_never_reuses_another_images_result(fake_model, tmp_path):
    _save_scene(tmp_path / "a" / "x.png", 64, 96)
    _save_scene(tmp_path / "b" / "x.png", 70, 80)
    out, coco_path = tmp_path / "out", tmp_path / "coco.json"
    opts = ["--out", str(out), "--points-per-side", "4", "--quiet"]
    assert run_cli(str(tmp_path / "b"), *opts) == 0
    assert run_cli(str(tmp_path / "a"), str(tmp_path / "b"), *opts, "--coco", str(coco_path)) == 0
    assert _coco_sizes(coco_path) == {"a/x.png": (96, 64), "b/x.png": (80, 70)}
    # a alone, then b alone, into one folder: both are 'x.png' relative to their root
    out2 = tmp_path / "out2"
    opts2 = ["--out", str(out2), "--points-per-side", "4", "--quiet"]
    assert run_cli(str(tmp_path / "a"), *opts2) == 0
    decoded = fake_model.decoded_points
    assert run_cli(str(tmp_path / "b"), *opts2, "--coco", str(coco_path)) == 0
    assert fake_model.decoded_points > decoded  # recomputed, not a's result
    # the COCO file holds every output in the folder made with these settings: a's too
    assert _coco_sizes(coco_path) == {"a/x.png": (96, 64), "b/x.png": (80, 70)}


def test_a_resume_on_fewer_inputs_finds_the_earlier_outputs(fake_model, tmp_path, capsys):
    """Output names depend on the file, not on what else the run was given: after a run
    on a/ and b/, a run on a/ alone finds a/'s outputs (names shared by both folders too)
    and writes nothing new."""
    _save_scene(tmp_path / "a" / "dog.png", 64, 96)
    _save_scene(tmp_path / "a" / "x.png", 60, 90)
    _save_scene(tmp_path / "b" / "cat.png", 70, 80)
    _save_scene(tmp_path / "b" / "x.png", 66, 88)
    out = tmp_path / "out"
    opts = ["--out", str(out), "--points-per-side", "4", "--quiet"]
    assert run_cli(str(tmp_path / "a"), str(tmp_path / "b"), *opts) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 4 and "dog.png.json" in written and "cat.png.json" in written
    capsys.readouterr()
    decoded = fake_model.decoded_points
    assert run_cli(str(tmp_path / "a"), *opts) == 0
    assert fake_model.decoded_points == decoded  # nothing recomputed
    assert "2 of 2 images already done" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == written


def test_resume_redoes_outputs_of_other_parameters_or_another_model(fake_model, tmp_path):
    folder = tmp_path / "in"
    _save_scene(folder / "x.png", 64, 80)
    out = tmp_path / "out"
    base = [str(folder), "--out", str(out), "--quiet"]
    assert run_cli(*base, "--points-per-side", "6") == 0
    decoded = fake_model.decoded_points
    assert run_cli(*base, "--points-per-side", "4") == 0
    assert fake_model.decoded_points == decoded + 16
    image = json.loads((out / "x.png.json").read_text())["image"]
    assert image["samstudio_auto_segment"]["params"]["points_per_side"] == 4
    assert image["samstudio_auto_segment"]["model"] == "demo"
    assert run_cli(*base, "--points-per-side", "4") == 0  # same: reused
    assert fake_model.decoded_points == decoded + 16
    assert run_cli(*base, "--points-per-side", "4", "--model", "sam_vit_b") == 0
    assert fake_model.decoded_points == decoded + 32
    image = json.loads((out / "x.png.json").read_text())["image"]
    assert image["samstudio_auto_segment"]["model"] == "sam_vit_b"


def test_files_this_tool_did_not_write_are_never_overwritten(fake_model, tmp_path, capsys):
    folder = tmp_path / "in"
    _save_scene(folder / "x.png", 64, 80)
    _save_scene(folder / "y.png", 64, 80)
    labelme = '{"version": "5.4.1", "shapes": [], "imagePath": "x.png"}'
    (folder / "x.json").write_text(labelme)  # labelme keeps x.json beside x.png
    (folder / "y.png.json").write_text('{"shapes": []}')  # foreign, under our very name
    argv = [str(folder), "--out", str(folder), "--points-per-side", "4", "--quiet"]
    assert run_cli(*argv) == 1
    err = capsys.readouterr().err
    assert "y.png.json exists and was not written by samstudio auto-segment" in err
    assert (folder / "x.json").read_text() == labelme
    assert (folder / "y.png.json").read_text() == '{"shapes": []}'
    assert "samstudio_auto_segment" in json.loads((folder / "x.png.json").read_text())["image"]


def test_an_output_that_cannot_be_written_skips_only_that_image(
    fake_model, tmp_path, capsys, monkeypatch
):
    folder = tmp_path / "in"
    _save_scene(folder / ("l" * 245 + ".png"), 64, 80)  # legal name, too long with a suffix
    _save_scene(folder / "zz_after.png", 64, 80)
    out = tmp_path / "out"
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    assert run_cli(*argv) == 0
    assert len(list(out.iterdir())) == 2
    assert all(len(p.name) <= 200 for p in out.iterdir())
    # a full disk (or no permission) for one image: reported, the others still written
    from samstudio.core import atomic

    real = atomic.atomic_write_json

    def failing(target, doc, *a, **k):  # type: ignore[no-untyped-def]
        if Path(target).name.startswith("l"):
            raise OSError(28, "No space left on device")
        return real(target, doc, *a, **k)

    out2 = tmp_path / "out2"
    monkeypatch.setattr(atomic, "atomic_write_json", failing)
    rc = run_cli(str(folder), "--out", str(out2), "--points-per-side", "4", "--quiet")
    assert rc == 1
    assert "No space left on device" in capsys.readouterr().err
    assert [p.name for p in out2.iterdir()] == ["zz_after.png.json"]


def test_coco_file_beside_the_outputs_and_stale_files(fake_model, tmp_path, capsys):
    folder = tmp_path / "in"
    _save_scene(folder / "coco.png", 64, 80)
    out = tmp_path / "out"
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    for _ in range(2):  # the second run resumes
        assert run_cli(*argv, "--coco", str(out / "coco.json")) == 0
    assert len(COCO(str(out / "coco.json")).getImgIds()) == 1
    sa1b = json.loads((out / "coco.png.json").read_text())
    assert sa1b["image"]["file_name"] == "coco.png"
    # a --coco path that is an image's output is refused before anything is written
    assert run_cli(*argv, "--coco", str(out / "coco.png.json")) == 2
    assert "is the output file of an image" in capsys.readouterr().err
    assert json.loads((out / "coco.png.json").read_text()) == sa1b
    # a stale truncated JSON for an image that is unreadable this run: no traceback
    folder2, out2 = tmp_path / "in2", tmp_path / "out2"
    folder2.mkdir()
    out2.mkdir()
    (folder2 / "y.png").write_text("not an image")
    for name in ("y.json", "y.png.json"):
        (out2 / name).write_text('{"image": {"image_id": 1, "wid')
    rc = run_cli(str(folder2), "--out", str(out2), "--coco", str(tmp_path / "c2.json"), "--quiet")
    assert rc == 1
    err = capsys.readouterr().err
    assert "y.png.json exists and was not written" in err and "Traceback" not in err
    assert (out2 / "y.png.json").read_text() == '{"image": {"image_id": 1, "wid'


def test_fast_preset_follows_a_small_points_per_side(fake_model, images, tmp_path):
    folder, _ = images
    out = tmp_path / "out"
    argv = [str(folder / "scene0.png"), "--out", str(out), "--preset", "fast", "--quiet"]
    assert run_cli(*argv, "--points-per-side", "8") == 0
    params = json.loads((out / "scene0.png.json").read_text())["image"]["samstudio_auto_segment"]
    assert params["params"]["adaptive"] is True and params["params"]["points_per_side"] == 8
    assert fake_model.decoded_points < 64  # adaptive: a coarse 4x4 grid first


# --- found by review: the source image and the model are identified by content -------


def _save_uncompressed(path: Path, seed: int) -> list:
    """A PNG whose byte size depends only on its size (zlib level 0): two different
    scenes of one size have files of equal length."""
    scene = make_scene(height=64, width=80, n_objects=2, seed=seed)
    Image.fromarray(scene.image).save(path, compress_level=0)
    return scene.objects


def _best_ious(output: Path, objects: list) -> list[float]:
    masks = [decode_rle(a["segmentation"]) for a in json.loads(output.read_text())["annotations"]]
    return [max(mask_iou(obj, m) for m in masks) for obj in objects]


def test_an_image_rewritten_with_the_same_byte_size_is_segmented_again(fake_model, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    image = folder / "x.png"
    _save_uncompressed(image, seed=1)
    size = image.stat().st_size
    argv = [str(folder), "--out", str(out), "--points-per-side", "6", "--quiet"]
    assert run_cli(*argv) == 0
    decoded = fake_model.decoded_points
    assert run_cli(*argv) == 0  # unchanged: reused
    assert fake_model.decoded_points == decoded
    image.write_bytes(image.read_bytes())  # rewritten with the same bytes: still reused
    assert run_cli(*argv) == 0
    assert fake_model.decoded_points == decoded
    objects = _save_uncompressed(image, seed=2)  # other pixels, same file length
    assert image.stat().st_size == size
    assert run_cli(*argv) == 0
    assert fake_model.decoded_points == decoded + 36  # segmented again
    assert min(_best_ious(out / "x.png.json", objects)) > 0.95  # masks of the new picture


def test_outputs_of_the_previous_version_without_hashes_are_redone(fake_model, tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    objects = _save_uncompressed(folder / "x.png", seed=3)
    argv = [str(folder), "--out", str(out), "--points-per-side", "6", "--quiet"]
    assert run_cli(*argv) == 0
    target = out / "x.png.json"
    doc = json.loads(target.read_text())
    mark = doc["image"]["samstudio_auto_segment"]
    assert {"source_sha256", "model_sha256"} <= set(mark)
    for key in ("source_sha256", "model_sha256"):  # as the previous version wrote it
        del mark[key]
    doc["annotations"] = []
    target.write_text(json.dumps(doc))
    decoded = fake_model.decoded_points
    capsys.readouterr()
    assert run_cli(*argv) == 0  # ours, so redone and overwritten: no crash, no refusal
    assert fake_model.decoded_points == decoded + 36
    assert "1 output in" in capsys.readouterr().err  # and the user is told why
    assert min(_best_ious(target, objects)) > 0.95


def test_a_checkpoint_replaced_at_the_same_path_redoes_the_outputs(fake_model, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    _save_scene(folder / "x.png", 64, 80)
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"A" * 1000)
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    assert run_cli(*argv, "--model", str(weights)) == 0
    assert fake_model.opened == [str(weights)]
    decoded = fake_model.decoded_points
    weights.write_bytes(b"A" * 1000)  # written again, same content: reused
    assert run_cli(*argv, "--model", str(weights)) == 0
    assert fake_model.decoded_points == decoded
    weights.write_bytes(b"B" * 1000)  # other weights, same path and size
    assert run_cli(*argv, "--model", str(weights)) == 0
    assert fake_model.decoded_points == decoded + 16


def test_an_onnx_folder_with_a_replaced_graph_redoes_the_outputs(fake_model, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    _save_scene(folder / "x.png", 64, 80)
    export = tmp_path / "export"
    export.mkdir()
    files = {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "weights": "enc.data"}
    manifest = {
        "model_id": "custom-0123456789ab",
        "files": {
            "encoder": {"path": files["encoder"], "data": {"path": files["weights"]}},
            "decoder": {"path": files["decoder"]},
        },
    }
    (export / "manifest.json").write_text(json.dumps(manifest))
    for name in files.values():
        (export / name).write_bytes(b"A" * 100)
    (export / "notes.txt").write_text("not part of the model")
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    argv += ["--model", str(export)]
    assert run_cli(*argv) == 0
    decoded = fake_model.decoded_points
    (export / "notes.txt").write_text("edited")  # a file the manifest does not name
    assert run_cli(*argv) == 0
    assert fake_model.decoded_points == decoded
    for step, name in enumerate(files.values(), start=1):  # each named file counts
        (export / name).write_bytes(b"B" * 100)  # same manifest, other graph or weights
        assert run_cli(*argv) == 0
        assert fake_model.decoded_points == decoded + 16 * step


def test_the_demo_model_and_imported_names_resume_and_follow_their_files(fake_model, tmp_path):
    from samstudio.inference import registry

    folder, out = tmp_path / "in", tmp_path / "out"
    _save_scene(folder / "x.png", 64, 80)
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    for model in ([], ["--model", "demo"]):  # the shipped demo model, by default or name
        assert run_cli(*argv, *model) == 0
        decoded, opened = fake_model.decoded_points, len(fake_model.opened)
        assert run_cli(*argv, *model) == 0  # reused, the model not even opened
        assert (fake_model.decoded_points, len(fake_model.opened)) == (decoded, opened)
    mark = json.loads((out / "x.png.json").read_text())["image"]["samstudio_auto_segment"]
    assert mark["model"] == "demo" and len(mark["model_sha256"]) == 64
    # a name of the registry of imported models: its folder's content counts
    export = tmp_path / "export"
    export.mkdir()
    graph = {"path": "encoder.onnx", "bytes": 100}
    (export / "manifest.json").write_text(json.dumps({"files": {"encoder": graph}}))
    (export / "encoder.onnx").write_bytes(b"A" * 100)
    registry.import_model(export, name="autoseg_test_model")
    try:
        named = [*argv, "--model", "autoseg_test_model"]
        assert run_cli(*named) == 0
        decoded = fake_model.decoded_points
        assert run_cli(*named) == 0
        assert fake_model.decoded_points == decoded
        (export / "encoder.onnx").write_bytes(b"B" * 100)
        assert run_cli(*named) == 0
        assert fake_model.decoded_points == decoded + 16
    finally:
        registry.unregister("autoseg_test_model")


def test_an_onnx_folder_without_its_optional_prepared_pair_still_resumes(
    fake_model, tmp_path, capsys
):
    """The prepared pair is optional (the model loads without it, found by review): a
    manifest naming a missing prepare.onnx must not make every run redo everything."""
    folder, out = tmp_path / "in", tmp_path / "out"
    _save_scene(folder / "x.png", 64, 80)
    export = tmp_path / "export"
    export.mkdir()
    manifest = {
        "model_id": "custom-0123456789ab",
        "files": {
            "encoder": {"path": "encoder.onnx"},
            "decoder": {"path": "decoder.onnx"},
            "prepare": {"path": "prepare.onnx"},
            "decoder_prepared": {"path": "decoder_prepared.onnx"},
        },
    }
    (export / "manifest.json").write_text(json.dumps(manifest))
    for name in ("encoder.onnx", "decoder.onnx", "decoder_prepared.onnx"):
        (export / name).write_bytes(b"A" * 100)  # prepare.onnx is missing
    argv = [str(folder), "--out", str(out), "--points-per-side", "4", "--quiet"]
    argv += ["--model", str(export)]
    assert run_cli(*argv) == 0
    decoded = fake_model.decoded_points
    capsys.readouterr()
    assert run_cli(*argv) == 0
    assert fake_model.decoded_points == decoded
    assert "1 of 1 images already done" in capsys.readouterr().err
    (export / "encoder.onnx").unlink()  # a required file gone: nothing counts as done
    assert run_cli(*argv) == 0
    assert "could not be read to identify it" in capsys.readouterr().err


def test_a_no_op_resume_reads_no_image_again(fake_model, images, tmp_path, monkeypatch, capsys):
    """An image whose size and (settled) modification time are those its output recorded
    keeps its recorded SHA-256: a resume over a large folder does not read every image.
    A fresh file is hashed every time until its time has settled; a touched file (the same
    bytes, a new time) is hashed again and still counts as done."""
    import os
    import time

    import samstudio.cli.autoseg_cmd as autoseg

    folder, _ = images
    out = tmp_path / "out"
    argv = [str(folder), "--out", str(out), "--points-per-side", "6", "--quiet"]
    pictures = sorted(folder.glob("*.png"))
    hashed: list[str] = []
    real = autoseg._file_sha256

    def counting(path: Path) -> str:
        if Path(path).suffix == ".png":
            hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(autoseg, "_file_sha256", counting)

    # written a moment ago: their times are not trusted yet
    assert run_cli(*argv) == 0
    marks = [json.loads((out / f"{p.name}.json").read_text()) for p in pictures]
    assert all(m["image"]["samstudio_auto_segment"]["source_mtime_ns"] is None for m in marks)
    hashed.clear()
    assert run_cli(*argv) == 0
    assert sorted(hashed) == [p.name for p in pictures]  # hashed again, still done
    decoded = fake_model.decoded_points

    # photos of an hour ago, as a user's folder: recorded once, then never read on resume
    hour_ago = time.time_ns() - 3600 * 10**9
    for p in pictures:
        os.utime(p, ns=(hour_ago, hour_ago))
    # outputs that recorded no time, images now settled: done, and in the COCO file
    early = tmp_path / "early.json"
    assert run_cli(*argv, "--coco", str(early)) == 0
    assert fake_model.decoded_points == decoded
    assert len(json.loads(early.read_text())["images"]) == 3
    for p in pictures:
        (out / f"{p.name}.json").unlink()
    assert run_cli(*argv) == 0
    recorded = json.loads((out / "scene1.png.json").read_text())["image"]
    assert recorded["samstudio_auto_segment"]["source_mtime_ns"] == hour_ago
    decoded = fake_model.decoded_points
    hashed.clear()
    capsys.readouterr()
    coco = tmp_path / "all.json"
    assert run_cli(*argv, "--coco", str(coco)) == 0
    assert hashed == []
    assert fake_model.decoded_points == decoded
    assert "3 of 3 images already done" in capsys.readouterr().err
    assert len(json.loads(coco.read_text())["images"]) == 3  # reused outputs are in it

    # touched (same bytes, new time): hashed again, not segmented again, still exported
    os.utime(pictures[1])
    coco.unlink()
    assert run_cli(*argv, "--coco", str(coco)) == 0
    assert hashed == ["scene1.png"]
    assert fake_model.decoded_points == decoded
    assert len(json.loads(coco.read_text())["images"]) == 3

    # other pixels with an old time again, but not the recorded one: read, and redone
    before = (out / "scene2.png.json").read_text()
    other = make_scene(height=120, width=160, n_objects=3, seed=99)
    Image.fromarray(other.image).save(pictures[2])
    os.utime(pictures[2], ns=(hour_ago - 10**9, hour_ago - 10**9))
    hashed.clear()
    assert run_cli(*argv) == 0
    assert hashed == ["scene1.png", "scene2.png"]
    assert fake_model.decoded_points == decoded + 36
    assert (out / "scene2.png.json").read_text() != before
