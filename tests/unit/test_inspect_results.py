"""`samstudio inspect compare` on a model's COCO results against ground truth: images paired
by id, crowd regions, `--by-category`, COCO mask AP (pycocotools' COCOeval), and the
problems `inspect` reports (import errors listed, `--images` checked, no data)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from samstudio.cli.main import main
from samstudio.core.inspect import ImageMasks, compare_sets
from samstudio.core.masks import encode_rle

RESULTS = "coco_instance_seg/cocoapi_results/instances_val2014_fakesegm100_results.json"
LABELME_COCO = "coco_instance_seg/labelme2coco_output/annotations.json"


def _square(x: int, y: int, side: int = 10, h: int = 40, w: int = 60) -> dict:
    m = np.zeros((h, w), dtype=bool)
    m[y : y + side, x : x + side] = True
    return encode_rle(m)


def _ground_truth_of(results: Path, out: Path, shift_every: int = 0, crowd_every: int = 0) -> None:
    """A COCO instances file with the results' masks, under COCO val2014 file names; with
    `shift_every`, every n-th mask moved 6 px right, with `crowd_every` every n-th one a
    crowd region; every 5th mask left out when either is given."""
    anns = json.loads(results.read_text())
    images: dict[int, dict] = {}
    out_anns = []
    for n, r in enumerate(anns):
        h, w = r["segmentation"]["size"]
        images[r["image_id"]] = {
            "id": r["image_id"],
            "file_name": f"COCO_val2014_{r['image_id']:012d}.jpg",
            "height": h,
            "width": w,
        }
        if (shift_every or crowd_every) and n % 5 == 4:
            continue
        rle = dict(r["segmentation"])
        if shift_every and n % shift_every == 0:
            mask = np.roll(mask_utils.decode(rle), 6, axis=1)
            mask[:, :6] = 0
            rle = encode_rle(mask.astype(bool))
        crowd = int(bool(crowd_every) and n % crowd_every == 1)
        area = float(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}))
        out_anns.append(
            {
                "id": n + 1,
                "image_id": r["image_id"],
                "category_id": r["category_id"],
                "segmentation": rle,
                "area": area,
                "bbox": [
                    float(v)
                    for v in mask_utils.toBbox(
                        {"size": rle["size"], "counts": rle["counts"].encode()}
                    )
                ],
                "iscrowd": crowd,
            }
        )
    cats = sorted({r["category_id"] for r in anns})
    doc = {
        "images": list(images.values()),
        "categories": [{"id": c, "name": f"thing {c}"} for c in cats],
        "annotations": out_anns,
    }
    out.write_text(json.dumps(doc))


def test_results_list_against_its_ground_truth_pairs_images_by_id(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, gt = shared_data / RESULTS, tmp_path / "gt.json"
    _ground_truth_of(results, gt)
    out = tmp_path / "cmp.json"
    rc = main(["inspect", "compare", str(results), str(gt), "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "images paired by  image id (a is a COCO results list, which names no files" in printed
    assert "images compared   99 (only in a: 0, only in b: 0" in printed
    assert "matched pairs     734 (unmatched: a 0, b 0), regardless of category" in printed
    assert "mask AP           AP 1.000, AP50 1.000, AP75 1.000" in printed
    doc = json.loads(out.read_text())
    assert doc["images_paired_by"] == "image id" and doc["mask_ap"]["AP"] == 1.0
    # the reference first works the same way round
    back = compare_sets(gt, results)
    assert back.pairing == "image id" and len(back.pairs) == 734 and back.mask_ap is None


def _cocoeval(gt: Path, results: Path, use_cats: bool) -> list[float]:
    """AP, AP50, AP75 of pycocotools' COCOeval run on the two files directly."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        evaluation = COCOeval(coco_gt, coco_gt.loadRes(str(results)), iouType="segm")
        evaluation.params.useCats = int(use_cats)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [float(v) for v in evaluation.stats[:3]]


def test_mask_ap_is_pycocotools_own_on_the_same_files(shared_data: Path, tmp_path: Path) -> None:
    results, gt = shared_data / RESULTS, tmp_path / "gt.json"
    _ground_truth_of(results, gt, shift_every=3, crowd_every=7)
    expected = _cocoeval(gt, results, use_cats=True)
    assert 0.2 < expected[0] < 0.95  # the shifts and left-out masks cost something

    result = compare_sets(results, gt, by_category=True)
    assert result.mask_ap is not None and result.mask_ap.by_category
    got = [result.mask_ap.ap, result.mask_ap.ap50, result.mask_ap.ap75]
    assert got == pytest.approx(expected, abs=1e-9)
    assert result.crowd_b > 0 and result.crowd_a == 0
    assert result.n_b == sum(
        1 for a in json.loads(gt.read_text())["annotations"] if not a["iscrowd"]
    )
    agnostic = compare_sets(results, gt)
    assert agnostic.mask_ap is not None and not agnostic.mask_ap.by_category
    got = [agnostic.mask_ap.ap, agnostic.mask_ap.ap50, agnostic.mask_ap.ap75]
    assert got == pytest.approx(_cocoeval(gt, results, use_cats=False), abs=1e-9)
    assert got != pytest.approx(expected, abs=1e-3)


def test_crowd_region_is_not_an_object_and_a_mask_over_it_no_false_positive() -> None:
    crowd_region = _square(30, 10, side=20)
    a = [ImageMasks("x.jpg", 40, 60, (_square(0, 0), _square(32, 12, side=8)), ids=(1, 2))]

    def reference(crowd: bool) -> list[ImageMasks]:
        return [
            ImageMasks("x.jpg", 40, 60, (_square(0, 0), crowd_region), (5, 6), crowd=(False, crowd))
        ]

    plain = compare_sets(a, reference(False))
    assert (plain.n_b, plain.crowd_b) == (2, 0)
    assert plain.precision_recall(0.5) == (0.5, 0.5)

    result = compare_sets(a, reference(True))
    assert (result.n_a, result.n_b, result.crowd_b) == (2, 1, 1)
    assert result.unmatched_b == 0 and [p.id_b for p in result.pairs] == [5]
    assert result.over_crowd_at(0.5) == 1
    assert result.precision_recall(0.5) == (1.0, 1.0)
    table = result.table()
    assert "crowd regions     a 0, b 1: not objects" in table
    assert "no false positive (as in COCO)" in table
    assert "(1 of a over crowd regions not counted)" in table


def test_by_category_pairs_masks_only_within_one_category() -> None:
    a = [ImageMasks("x.jpg", 40, 60, (_square(0, 0), _square(30, 0)), categories=("cat", "dog"))]
    b = [ImageMasks("x.jpg", 40, 60, (_square(2, 0), _square(30, 2)), categories=("dog", "dog"))]
    anything = compare_sets(a, b)
    assert len(anything.pairs) == 2 and "regardless of category" in anything.table()
    within = compare_sets(a, b, by_category=True)
    assert len(within.pairs) == 1 and within.pairs[0].iou == pytest.approx(0.8 / 1.2)
    assert (within.unmatched_a, within.unmatched_b) == (1, 1)
    assert "within each category" in within.table()


def test_scores_order_the_masks_for_mask_ap() -> None:
    gt = [ImageMasks("x.jpg", 40, 60, (_square(0, 0),), image_id=1)]

    def scored(hit: float, miss: float | None) -> list[ImageMasks]:
        masks = (_square(0, 0), _square(40, 20))
        return [ImageMasks("x.jpg", 40, 60, masks, scores=(hit, miss), image_id=1)]

    first = compare_sets(scored(0.9, 0.1), gt).mask_ap
    assert first is not None and first.ap50 == pytest.approx(1.0)
    last = compare_sets(scored(0.1, 0.9), gt).mask_ap
    assert last is not None and last.ap50 == pytest.approx(0.5)  # 101-point interpolation
    partly = compare_sets(scored(0.9, None), gt)
    assert partly.mask_ap is None
    assert "mask AP not computed: 1 of the 2 masks of a have no score" in partly.table()
    unscored = compare_sets(gt, gt)
    assert unscored.mask_ap is None and "mask AP" not in unscored.table()


def test_results_list_against_images_without_ids_says_why(shared_data: Path) -> None:
    project = [ImageMasks("photo.jpg", 478, 640, (_square(0, 0, h=478, w=640),))]
    with pytest.raises(ValueError, match="COCO results list, which names no files.*no image ids"):
        compare_sets(project, shared_data / RESULTS)


def _coco_with_bad_annotations(path: Path, bad: int) -> None:
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _square(0, 0)}]
    anns += [
        {"id": k + 2, "image_id": 99, "category_id": 1, "segmentation": _square(0, 0)}
        for k in range(bad)
    ]
    doc = {
        "images": [{"id": 1, "file_name": "x.jpg", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": anns,
    }
    path.write_text(json.dumps(doc))


def test_stats_lists_the_first_ten_import_problems_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "some_bad.json"
    _coco_with_bad_annotations(path, bad=12)
    out = tmp_path / "stats.json"
    rc = main(["inspect", "stats", str(path), "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    listed = [ln for ln in captured.out.splitlines() if ln.strip().startswith("error: ")]
    assert len(listed) == 10
    assert f"{path}, image 99, annotation 2: image_id 99 is not an image" in listed[0]
    assert "… and 2 more" in captured.out
    assert "12 annotation(s) could not be read" in captured.err
    doc = json.loads(out.read_text())
    assert doc["datasets"][0]["masks"] == 1 and len(doc["datasets"][0]["import_problems"]) == 12


def test_compare_lists_import_problems_of_either_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    _coco_with_bad_annotations(bad, bad=2)
    _coco_with_bad_annotations(good, bad=0)
    assert main(["inspect", "compare", str(good), str(bad)]) == 1
    printed = capsys.readouterr().out
    assert "import problems b 2 annotation(s) not read" in printed
    assert f"error: {bad}, image 99, annotation 3" in printed
    assert main(["inspect", "compare", str(good), str(good)]) == 0


def test_every_annotation_invalid_is_no_masks_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all_bad.json"
    _coco_with_bad_annotations(path, bad=3)
    doc = json.loads(path.read_text())
    doc["annotations"] = doc["annotations"][1:]
    path.write_text(json.dumps(doc))
    out = tmp_path / "stats.json"
    rc = main(["inspect", "stats", str(path), "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    assert "masks          none: no masks to describe" in captured.out
    assert "mean 0.000" not in captured.out
    assert f"error: no masks in {path}: nothing to describe" in captured.err
    assert not out.exists()
    good = tmp_path / "good.json"
    _coco_with_bad_annotations(good, bad=0)
    assert main(["inspect", "compare", str(path), str(good)]) == 2
    assert f"error: no masks in {path}" in capsys.readouterr().err


def test_compare_without_images_in_common_exits_2(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.json"
    _coco_with_bad_annotations(other, bad=0)
    out = tmp_path / "cmp.json"
    rc = main(
        ["inspect", "compare", str(shared_data / LABELME_COCO), str(other), "--json", str(out)]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "no images in common" in err and "(paired by file name)" in err
    assert not out.exists()


def test_images_folder_is_checked(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = str(shared_data / LABELME_COCO)
    missing = tmp_path / "nonexistent"
    assert main(["inspect", "stats", coco, "--images", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: --images {missing}: no such folder\n"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["inspect", "compare", coco, coco, "--images", str(a_file)]) == 2
    assert capsys.readouterr().err == f"error: --images {a_file}: not a folder\n"
    images = shared_data / "coco_instance_seg/labelme2coco_output"
    assert main(["inspect", "stats", coco, "--images", str(images)]) == 0


def test_cli_by_category(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = str(shared_data / LABELME_COCO)
    assert main(["inspect", "compare", coco, coco, "--by-category"]) == 0
    printed = capsys.readouterr().out
    assert "matched pairs     12 (unmatched: a 0, b 0), within each category" in printed
