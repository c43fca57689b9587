"""`samstudio auto-segment` output a researcher can score and merge: stable, folder-wide ids,
`score` on every COCO annotation, `--coco-results` (and `convert --to coco-results`) that
pycocotools' `COCO(gt).loadRes` and `COCOeval` accept, with a geometric fake model."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from amg_scenes import make_scene
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from test_autoseg_cli import fake_model, run_cli  # noqa: F401  (fake_model: a fixture)

from samstudio.cli.main import main

NAMES = ("img1.png", "img2.png", "img10.png")  # natural order: 1, 2, 10


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Three scenes named so that natural and plain text order differ; their objects."""
    folder = tmp_path / "photos"
    folder.mkdir()
    objects = {}
    for seed, name in enumerate(NAMES):
        scene = make_scene(height=64, width=80, n_objects=2, seed=20 + seed)
        Image.fromarray(scene.image).save(folder / name)
        objects[name] = scene.objects
    return folder, objects


def _quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _evaluate(gt: COCO, results: Path, use_cats: bool = True) -> np.ndarray:
    """COCOeval segm stats of a results file against `gt` (printing silenced)."""
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(str(results))
        ev = COCOeval(gt, dt, "segm")
        ev.params.useCats = int(use_cats)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def _sa1b_ids(out: Path) -> dict[str, tuple[int, list[int]]]:
    """file name -> (image id, annotation ids) of every SA-1B JSON in `out`."""
    found = {}
    for path in out.glob("*.png.json"):
        doc = json.loads(path.read_text())
        found[doc["image"]["file_name"]] = (
            doc["image"]["image_id"],
            [a["id"] for a in doc["annotations"]],
        )
    return found


def _write_ground_truth(path: Path, objects: dict[str, np.ndarray], ids: dict[str, int]) -> None:
    """A COCO instances file of the scenes' objects: file names under 'val/', the given
    image ids, one category (id 7)."""
    images, annotations = [], []
    for name, masks in objects.items():
        h, w = masks.shape[1:]
        images.append({"id": ids[name], "file_name": f"val/{name}", "width": w, "height": h})
        for mask in masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": ids[name],
                    "category_id": 7,
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
                    "area": int(mask.sum()),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
    doc = {"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "x"}]}
    path.write_text(json.dumps(doc))


@pytest.mark.usefixtures("fake_model")
def test_two_runs_into_one_folder_number_it_as_one_run_in_any_order(photos, tmp_path, capsys):
    folder, _ = photos
    out, merged = tmp_path / "out", tmp_path / "all.json"
    opts = ["--points-per-side", "4", "--quiet"]
    # first run: two images, given out of order; the second adds the third, resuming
    assert (
        run_cli(str(folder / "img10.png"), str(folder / "img1.png"), "--out", str(out), *opts) == 0
    )
    assert run_cli(str(folder), "--out", str(out), *opts, "--coco", str(merged)) == 0
    ids = _sa1b_ids(out)
    assert {name: ids[name][0] for name in NAMES} == {"img1.png": 1, "img2.png": 2, "img10.png": 3}
    annotation_ids = [i for name in NAMES for i in ids[name][1]]
    assert annotation_ids == list(range(1, len(annotation_ids) + 1))  # unique in the folder
    # the folder converts as one dataset: nothing renumbered, so --strict passes
    capsys.readouterr()
    rc = main(
        ["convert", str(out), "--to", "coco-rle", "--out", str(tmp_path / "c.json"), "--strict"]
    )
    assert rc == 0, capsys.readouterr().err
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out

    coco = _quiet_coco(merged)
    assert {im["file_name"]: im["id"] for im in coco.dataset["images"]} == {
        name: ids[name][0] for name in NAMES
    }
    for ann in coco.dataset["annotations"]:
        assert ann["score"] == ann["predicted_iou"] and "stability_score" in ann
        assert ann["id"] in ids[coco.imgs[ann["image_id"]]["file_name"]][1]

    # one run over the same images in yet another order, into a fresh folder: same ids
    fresh, again = tmp_path / "fresh", tmp_path / "again.json"
    inputs = [str(folder / n) for n in ("img2.png", "img10.png", "img1.png")]
    assert run_cli(*inputs, "--out", str(fresh), *opts, "--coco", str(again)) == 0
    assert _sa1b_ids(fresh) == ids
    assert json.loads(again.read_text()) == json.loads(merged.read_text())


@pytest.mark.usefixtures("fake_model")
def test_coco_results_score_against_a_ground_truth_with_its_own_ids(photos, tmp_path, capsys):
    folder, objects = photos
    gt_path = tmp_path / "gt.json"
    gt_ids = {"img1.png": 101, "img2.png": 17, "img10.png": 205}
    _write_ground_truth(gt_path, objects, gt_ids)
    out, results = tmp_path / "out", tmp_path / "results.json"
    argv = [str(folder), "--out", str(out), "--points-per-side", "8", "--quiet"]
    assert run_cli(*argv, "--coco-results", str(results), "--reference", str(gt_path)) == 0
    assert f"wrote {results} (3 images, image ids of {gt_path})" in capsys.readouterr().err
    doc = json.loads(results.read_text())
    assert {r["image_id"] for r in doc} == set(gt_ids.values())
    for r in doc:  # the mask is measured by loadRes: no box, whose area it would take
        assert "bbox" not in r and "area" not in r
        assert r["score"] == r["predicted_iou"] and r["category_id"] == 7
    gt = _quiet_coco(gt_path)
    stats = _evaluate(gt, results)
    # the objects are found on the right images (an 8x8 grid misses one small one; a
    # wrong image id would find none)
    assert stats[8] == pytest.approx(5 / 6)  # AR, 100 detections, IoU 0.5:0.95
    assert stats[1] > 0.5  # AP at IoU 0.5: the background mask ties with the objects

    # without --reference, the ids are those of the COCO file: it scores against itself
    own, own_results = tmp_path / "own.json", tmp_path / "own_results.json"
    assert run_cli(*argv, "--coco", str(own), "--coco-results", str(own_results)) == 0
    stats = _evaluate(_quiet_coco(own), own_results)
    assert stats[0] == pytest.approx(1.0)


@pytest.mark.usefixtures("fake_model")
def test_results_options_that_cannot_work_are_refused_with_the_reason(photos, tmp_path, capsys):
    folder, objects = photos
    argv = [str(folder), "--out", str(tmp_path / "out"), "--points-per-side", "4", "--quiet"]
    assert run_cli(*argv, "--reference", str(tmp_path / "gt.json")) == 2
    assert "add --coco-results FILE" in capsys.readouterr().err
    listing = tmp_path / "res.json"
    listing.write_text("[]")
    assert (
        run_cli(*argv, "--coco-results", str(tmp_path / "r.json"), "--reference", str(listing)) == 2
    )
    err = capsys.readouterr().err
    assert str(listing) in err and "COCO results file" in err
    assert not (tmp_path / "out").exists()  # refused before anything was segmented
    same = str(tmp_path / "both.json")
    assert run_cli(*argv, "--coco", same, "--coco-results", same) == 2
    assert "both name" in capsys.readouterr().err

    # a ground truth that lacks one image: the others are written, the run says which not
    gt_path = tmp_path / "gt.json"
    _write_ground_truth(
        gt_path,
        {k: v for k, v in objects.items() if k != "img2.png"},
        {"img1.png": 1, "img10.png": 2},
    )
    results = tmp_path / "r.json"
    assert run_cli(*argv, "--coco-results", str(results), "--reference", str(gt_path)) == 1
    err = capsys.readouterr().err
    assert f"error: {gt_path}" in err and "no image named like" in err and "img2.png" in err
    assert {r["image_id"] for r in json.loads(results.read_text())} == {1, 2}
    _evaluate(_quiet_coco(gt_path), results)  # loadRes accepts it


@pytest.mark.usefixtures("fake_model")
def test_convert_to_coco_results_needs_ids_a_ground_truth_shares(photos, tmp_path, capsys):
    folder, objects = photos
    out = tmp_path / "out"
    assert run_cli(str(folder), "--out", str(out), "--points-per-side", "8", "--quiet") == 0
    gt_path = tmp_path / "gt.json"
    _write_ground_truth(gt_path, objects, {"img1.png": 3, "img2.png": 1, "img10.png": 2})
    results = tmp_path / "results.json"
    convert = ["convert", str(out), "--to", "coco-results", "--out", str(results)]
    assert main(convert) == 2  # an SA-1B folder's ids are its own
    assert "give --reference GT.json" in capsys.readouterr().err
    assert not results.exists()
    assert main([*convert, "--reference", str(gt_path)]) == 0
    stats = _evaluate(_quiet_coco(gt_path), results)
    assert stats[8] == pytest.approx(5 / 6)
    scores = [r["score"] for r in json.loads(results.read_text())]
    ious = [
        a["predicted_iou"]
        for p in out.glob("*.png.json")
        for a in json.loads(p.read_text())["annotations"]
    ]
    assert sorted(scores) == sorted(ious) and 1.0 not in scores  # the predicted IoUs

    # a COCO instances file is its own reference; --reference belongs to coco-results only
    instances = tmp_path / "inst.json"
    assert main(["convert", str(out), "--to", "coco-rle", "--out", str(instances)]) == 0
    own = tmp_path / "own.json"
    assert main(["convert", str(instances), "--to", "coco-results", "--out", str(own)]) == 0
    assert _evaluate(_quiet_coco(instances), own)[0] == pytest.approx(1.0)
    rc = main(
        [
            "convert",
            str(instances),
            "--to",
            "sa1b",
            "--out",
            str(tmp_path / "s"),
            "--reference",
            str(gt_path),
        ]
    )
    assert rc == 2 and "--reference is for --to coco-results" in capsys.readouterr().err
