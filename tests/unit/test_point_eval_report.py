"""NoC@85 / NoC@90, left-out counts and per-mask rows of the §D.1 evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from test_point_eval import RegionSegmenter

from samstudio.core import point_eval
from samstudio.core.point_eval_report import (
    check_per_mask_path,
    clicks_to_reach,
    per_mask_rows,
    write_per_mask,
)


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.zeros((40, 60), np.int32)
    labels[5:25, 5:30] = 1  # 500 px
    labels[10:35, 35:55] = 2  # 500 px
    masks = np.stack([labels == 1, labels == 2, np.zeros_like(labels, bool)])
    return np.zeros((40, 60, 3), np.uint8), masks, labels


def test_clicks_to_reach_counts_from_one_and_caps() -> None:
    assert clicks_to_reach([0.5, 0.86, 0.95], 0.85, 3) == 2
    assert clicks_to_reach([0.5, 0.86, 0.95], 0.90, 3) == 3
    assert clicks_to_reach([0.5, 0.6, 0.7], 0.85, 3) == 3  # never reached: the cap
    assert clicks_to_reach([0.5, 0.6, 0.99], 0.85, 2) == 2  # clicks past the cap ignored


def test_noc_of_a_model_that_needs_a_second_click() -> None:
    image, masks, labels = _scene()
    # the whole image ranks first: IoU after one click is 500/2400; the second click
    # (background, on the false positives) leaves exactly the object
    seg = RegionSegmenter(labels, rank=(1, 0, 2))
    sample = point_eval.EvalSample(image, masks, "scene.png", (11, 12, 13))
    report = point_eval.evaluate(seg, [sample], points=(1, 2, 3))
    assert [r.ious[0] for r in report.results] == pytest.approx([500 / 2400] * 2)
    assert report.noc == {0.85: 2.0, 0.90: 2.0}
    assert report.noc_failed == {0.85: 0, 0.90: 0}
    assert report.left_out == {"empty": 1}
    data = json.loads(json.dumps(report.to_json()))
    assert data["noc"] == {"85": 2.0, "90": 2.0} and data["noc_max_clicks"] == 3
    assert data["left_out"]["empty"] == 1 and data["left_out"]["crowd"] == 0
    table = report.table()
    assert "NoC@85     2.00  (clicks to IoU 0.85, capped at 3; 0 mask(s)" in table
    assert "left out: 1 annotation(s): 1 empty mask" in table


def test_noc_counts_masks_that_never_reach_the_threshold_as_the_cap() -> None:
    image, masks, labels = _scene()
    report = point_eval.evaluate(
        RegionSegmenter(labels, rank=(1, 0, 2)), [(image, masks)], points=(1,)
    )
    assert report.noc == {0.85: 1.0, 0.90: 1.0}  # capped at the 1 click made
    assert report.noc_failed == {0.85: 2, 0.90: 2}
    assert "2 mask(s) never reached it" in report.table()


def test_per_mask_rows_name_each_mask_in_order(tmp_path: Path) -> None:
    image, masks, labels = _scene()
    sample = point_eval.EvalSample(image, masks, "scene.png", (11, 12, 13))
    report = point_eval.evaluate(RegionSegmenter(labels), [sample], points=(1, 3))
    rows = per_mask_rows(report)
    assert [(r["image"], r["annotation_id"], r["area"]) for r in rows] == [
        ("scene.png", 11, 500),
        ("scene.png", 12, 500),
    ]  # the empty mask 13 is left out
    assert list(rows[0]) == [
        "image",
        "annotation_id",
        "area",
        "iou_1",
        "iou_2",
        "iou_3",
        "oracle_iou_1",
        "noc_85",
        "noc_90",
    ]
    write_per_mask(report, tmp_path / "rows.csv")
    with open(tmp_path / "rows.csv", newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [w["annotation_id"] for w in written] == ["11", "12"]
    assert float(written[0]["iou_3"]) == rows[0]["iou_3"]
    write_per_mask(report, tmp_path / "rows.jsonl")
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert [json.loads(ln) for ln in lines] == rows


def test_plain_pairs_number_their_masks_from_one() -> None:
    image, masks, labels = _scene()
    report = point_eval.evaluate(RegionSegmenter(labels), [(image, masks[:2])], points=(1,))
    assert [(r.image, r.annotation_id) for r in report.results] == [("", 1), ("", 2)]
    assert report.left_out == {}


def test_per_mask_path_is_checked_before_a_run(tmp_path: Path) -> None:
    assert check_per_mask_path(tmp_path / "m.csv") is None
    assert check_per_mask_path(tmp_path / "m.jsonl") is None
    assert "must end in .csv or .jsonl" in (check_per_mask_path(tmp_path / "m.txt") or "")
    assert "does not exist" in (check_per_mask_path(tmp_path / "no" / "m.csv") or "")
