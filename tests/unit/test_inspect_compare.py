"""IoU agreement of two annotation sets (SAM paper §5 "Mask quality") and
`samstudio inspect compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.cli.main import main
from samstudio.core.formats.detect import export_annotations, import_annotations
from samstudio.core.inspect import ImageMasks, compare_sets, match_masks
from samstudio.core.masks import encode_rle


def _square(x: int, y: int, side: int = 10, h: int = 40, w: int = 60) -> dict:
    m = np.zeros((h, w), dtype=bool)
    m[y : y + side, x : x + side] = True
    return encode_rle(m)


def test_shifted_square_has_its_exact_iou() -> None:
    # 10x10 squares shifted by 5 px: intersection 50, union 150
    a = [ImageMasks("img.jpg", 40, 60, (_square(0, 0),), ids=(7,))]
    b = [ImageMasks("img.jpg", 40, 60, (_square(5, 0),), ids=(9,))]
    result = compare_sets(a, b)
    assert len(result.pairs) == 1
    pair = result.pairs[0]
    assert (pair.image, pair.id_a, pair.id_b) == ("img.jpg", 7, 9)
    assert pair.iou == pytest.approx(1 / 3)
    assert result.share_at(0.3) == 1.0 and result.share_at(0.5) == 0.0


def test_matching_is_one_to_one_and_ignores_order() -> None:
    a = (_square(0, 0), _square(30, 20), _square(45, 0))
    b = (_square(30, 21), _square(1, 0))  # b[0] ~ a[1], b[1] ~ a[0]; a[2] has no partner
    pairs, free_a, free_b = match_masks(a, b)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 0)]
    assert free_a == [2] and free_b == []
    assert {round(v, 6) for _, _, v in pairs} == {round(90 / 110, 6)}


def test_one_big_mask_matches_only_one_of_two_halves() -> None:
    whole = np.zeros((20, 20), dtype=bool)
    whole[:, :10] = True
    left, right = whole.copy(), whole.copy()
    left[10:] = False
    right[:10] = False
    pairs, free_a, free_b = match_masks([encode_rle(whole)], [encode_rle(left), encode_rle(right)])
    assert len(pairs) == 1 and pairs[0][2] == pytest.approx(0.5)
    assert free_a == [] and len(free_b) == 1


def test_disjoint_masks_stay_unmatched() -> None:
    pairs, free_a, free_b = match_masks([_square(0, 0)], [_square(40, 20)])
    assert pairs == [] and free_a == [0] and free_b == [0]


def test_counts_precision_recall_and_images_in_one_set_only() -> None:
    a = [
        ImageMasks("dir/one.jpg", 40, 60, (_square(0, 0), _square(40, 20), _square(20, 25))),
        ImageMasks("only_a.jpg", 40, 60, (_square(0, 0),)),
        ImageMasks("sized.jpg", 40, 60, (_square(0, 0),)),
    ]
    b = [
        ImageMasks("one.jpg", 40, 60, (_square(0, 0), _square(45, 20))),  # found by base name
        ImageMasks("only_b.png", 40, 60, ()),
        ImageMasks("sized.jpg", 60, 40, (_square(0, 0, h=60, w=40),)),
    ]
    result = compare_sets(a, b, names=("auto", "manual"))
    assert result.only_in_a == ["only_a.jpg"] and result.only_in_b == ["only_b.png"]
    assert len(result.size_mismatch) == 1 and "sized.jpg" in result.size_mismatch[0]
    assert [im.file_name_b for im in result.images] == ["one.jpg"]
    assert (result.n_a, result.n_b) == (3, 2)
    assert sorted(result.ious.tolist()) == pytest.approx([1 / 3, 1.0])
    assert (result.unmatched_a, result.unmatched_b) == (1, 0)
    assert result.precision_recall(0.5) == pytest.approx((1 / 3, 1 / 2))
    assert result.precision_recall(0.3) == pytest.approx((2 / 3, 1.0))
    doc = result.to_json()
    assert doc["a"] == "auto" and doc["matched_pairs"] == 2
    assert doc["iou"]["share_at_least"]["0.9"] == 0.5
    assert doc["iou"]["mean"] == pytest.approx((1 + 1 / 3) / 2)
    assert doc["images"][0]["unmatched_a"] == [2]
    table = result.table()
    assert "only in a: 1" in table and "only_b.png" in table and "50.0% of pairs" in table


def test_empty_masks_are_skipped_and_bad_sizes_named() -> None:
    empty = encode_rle(np.zeros((40, 60), dtype=bool))
    a = [ImageMasks("x.jpg", 40, 60, (empty, _square(0, 0)), box_only=1)]
    result = compare_sets(a, a)
    assert result.skipped_a == 2 and len(result.pairs) == 1
    wrong = [ImageMasks("x.jpg", 40, 60, (_square(0, 0, h=60, w=40),), ids=(3,))]
    with pytest.raises(ValueError, match=r"image x\.jpg, annotation 3"):
        compare_sets(wrong, a)
    twice = [ImageMasks("x.jpg", 40, 60), ImageMasks("x.jpg", 40, 60)]
    with pytest.raises(ValueError, match="more than once"):
        compare_sets(twice, a)


def test_real_coco_file_against_itself_and_its_rle_export(
    shared_data: Path, tmp_path: Path
) -> None:
    coco = shared_data / "coco_instance_seg/labelme2coco_output/annotations.json"
    same = compare_sets(coco, coco)
    assert len(same.pairs) == 12 and np.all(same.ious == 1.0)
    assert same.unmatched_a == same.unmatched_b == 0
    assert all(p.id_a == p.id_b for p in same.pairs)

    dataset, _, _ = import_annotations(coco)
    export_annotations(dataset, "coco-rle", tmp_path / "rle.json")
    exported = compare_sets(coco, tmp_path / "rle.json")
    assert len(exported.pairs) == 12 and np.all(exported.ious == 1.0)


def test_real_coco_polygons_against_the_labelme_originals(shared_data: Path) -> None:
    # the COCO file was made from these labelme files; names differ by "JPEGImages/"
    coco = shared_data / "coco_instance_seg/labelme2coco_output/annotations.json"
    labelme = shared_data / "labelme/instance_segmentation/data_annotated"
    result = compare_sets(coco, labelme)
    assert len(result.images) == 3 and not result.only_in_a and not result.only_in_b
    assert len(result.pairs) == 12
    assert result.share_at(0.9) == 1.0 and result.ious.mean() < 1.0


def test_real_sav_automatic_against_manual_counts_add_up(shared_data: Path) -> None:
    folder = shared_data / "sav_video_rle"
    result = compare_sets(folder / "sav_000001_auto.json", folder / "sav_000001_manual.json")
    assert len(result.images) == 121
    assert len(result.pairs) + result.unmatched_a == result.n_a
    assert len(result.pairs) + result.unmatched_b == result.n_b
    assert np.all((result.ious > 0) & (result.ious <= 1))


def test_cli_compare_writes_json_and_plot(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = shared_data / "coco_instance_seg/labelme2coco_output/annotations.json"
    labelme = shared_data / "labelme/instance_segmentation/data_annotated"
    out, png = tmp_path / "cmp.json", tmp_path / "ious.png"
    rc = main(
        ["inspect", "compare", str(coco), str(labelme), "--json", str(out), "--plot", str(png)]
    )
    assert rc == 0
    assert "matched pairs     12" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["matched_pairs"] == 12 and len(doc["pairs"]) == 12
    with Image.open(png) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_cli_compare_truncated_file_is_an_error(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = shared_data / "coco_instance_seg/labelme2coco_output/annotations.json"
    cut = tmp_path / "cut.json"
    cut.write_bytes(coco.read_bytes()[:5000])
    rc = main(["inspect", "compare", str(coco), str(cut)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and str(cut) in err


def test_cli_compare_names_what_is_wrong_with_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty, images = tmp_path / "empty", tmp_path / "images"
    empty.mkdir()
    images.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        (images / name).write_bytes(b"")
    assert main(["inspect", "compare", str(empty), str(empty)]) == 2
    assert capsys.readouterr().err == f"error: cannot read {empty}: the folder is empty\n"
    assert main(["inspect", "compare", str(images), str(images)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read {images}: the folder holds no annotation files" in err
    assert "a.png, b.png, c.png, … (4 in all)" in err
