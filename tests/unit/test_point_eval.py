"""The §D.1 point evaluation, driven with small stand-in segmenters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samstudio.core import point_eval
from samstudio.inference.types import (
    BatchPrediction,
    ImageEmbedding,
    ModelInfo,
    Prediction,
    Prompts,
)


class RegionSegmenter:
    """Stand-in model for a label image: a click selects the labelled region under
    it. With one point it offers 3 candidates: the region, the whole image and an
    empty mask, ranked as `rank` says. With several points it returns the union of
    the foreground points' regions minus the background points' regions, so
    corrective clicks fix mistakes. Records every call's prompts."""

    def __init__(self, labels: np.ndarray, rank: tuple[int, int, int] = (0, 1, 2)) -> None:
        self.labels = labels
        self.rank = rank
        self.calls: list[Prompts] = []

    @property
    def info(self) -> ModelInfo:
        h, w = self.labels.shape
        return ModelInfo("region", "region", "test", "cpu", max(h, w), "none")

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        h, w = image.shape[:2]
        return ImageEmbedding(np.zeros((1, 1, 1), np.float32), (h, w), (h, w), "region", "none")

    def _prediction(self, masks: list[np.ndarray]) -> Prediction:
        h, w = self.labels.shape
        size = max(h, w)
        low = np.full((len(masks), size, size), -10.0, np.float32)
        for i, m in enumerate(masks):
            low[i, :h, :w] = np.where(m, 10.0, -10.0)
        return Prediction(
            low_res_logits=low,
            iou_predictions=np.linspace(0.9, 0.5, len(masks)).astype(np.float32),
            stability_scores=np.ones(len(masks), np.float32),
            original_size=(h, w),
            input_size=(h, w),
            image_size=size,
        )

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        self.calls.append(prompts)
        region = np.zeros(self.labels.shape, bool)
        for (x, y), lab in zip(prompts.points.astype(int), prompts.labels, strict=True):
            hit = self.labels == self.labels[y, x]
            region = region | hit if lab == 1 else region & ~hit
        if multimask and prompts.is_ambiguous:
            options = [region, np.ones_like(region), np.zeros_like(region)]
            return self._prediction([options[i] for i in self.rank])
        return self._prediction([region])

    def decode_points_batch(
        self, embedding: ImageEmbedding, points: np.ndarray, multimask: bool = True
    ) -> BatchPrediction:
        raise NotImplementedError


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.zeros((40, 60), np.int32)
    labels[5:25, 5:30] = 1
    labels[10:35, 35:55] = 2
    masks = np.stack([labels == 1, labels == 2])
    image = np.zeros((40, 60, 3), np.uint8)
    return image, masks, labels


def test_farthest_from_boundary_is_the_centre_of_a_rectangle() -> None:
    m = np.zeros((30, 40), bool)
    m[10:21, 5:16] = True  # 11x11 square centred at (10, 15)
    assert point_eval.farthest_from_boundary(m) == (10, 15)


def test_image_border_counts_as_boundary() -> None:
    m = np.zeros((20, 20), bool)
    m[:, :9] = True  # touches the left border: centre column is 4
    x, _y = point_eval.farthest_from_boundary(m)
    assert x == 4


def test_next_point_labels_false_negatives_and_false_positives() -> None:
    gt = np.zeros((20, 20), bool)
    gt[2:18, 2:18] = True
    under = np.zeros_like(gt)
    x, y, label = point_eval.next_point(gt, under)
    assert label == 1 and gt[y, x]
    over = np.ones_like(gt)
    x, y, label = point_eval.next_point(gt, over)
    assert label == 0 and not gt[y, x]
    assert point_eval.next_point(gt, gt.copy()) is None


def test_perfect_model_scores_one_and_uses_center_points() -> None:
    image, masks, labels = _scene()
    seg = RegionSegmenter(labels)
    report = point_eval.evaluate(seg, [(image, masks)], points=(1, 3, 5))
    assert report.miou == {1: 1.0, 3: 1.0, 5: 1.0}
    assert report.oracle_miou_1 == 1.0
    assert report.n_masks == 2 and report.n_images == 1
    # exact after one click: no further prompts were needed
    assert len(seg.calls) == 2
    x, y = seg.calls[0].points[0]
    assert (x, y) == point_eval.farthest_from_boundary(masks[0])


def test_oracle_takes_best_candidate_and_corrective_clicks_fix_a_wrong_first_choice() -> None:
    image, masks, labels = _scene()
    seg = RegionSegmenter(labels, rank=(1, 0, 2))  # ranks the whole image first
    report = point_eval.evaluate(seg, [(image, masks)], points=(1, 2, 3))
    assert report.oracle_miou_1 == 1.0
    whole = np.ones(labels.shape, bool)
    expected_1 = np.mean([point_eval.iou(whole, m) for m in masks])
    assert report.miou[1] == pytest.approx(expected_1)
    # second click: a background point in the false-positive region; the region
    # under it is removed, so IoU rises
    second = seg.calls[1]
    assert second.labels.tolist() == [1, 0]
    assert second.mask_input is not None
    assert report.miou[2] > report.miou[1]
    assert report.miou[3] >= report.miou[2]


def test_random_first_point_is_inside_the_mask_and_seeded() -> None:
    image, masks, labels = _scene()
    seg_a, seg_b = RegionSegmenter(labels), RegionSegmenter(labels)
    point_eval.evaluate(seg_a, [(image, masks)], points=(1,), first="random", seed=3)
    point_eval.evaluate(seg_b, [(image, masks)], points=(1,), first="random", seed=3)
    for call_a, call_b, m in zip(seg_a.calls, seg_b.calls, masks, strict=True):
        x, y = call_a.points[0].astype(int)
        assert m[y, x]
        assert np.array_equal(call_a.points, call_b.points)


def test_report_json_and_table() -> None:
    image, masks, labels = _scene()
    report = point_eval.evaluate(RegionSegmenter(labels), [(image, masks)])
    data = json.loads(json.dumps(report.to_json()))
    assert set(data["miou"]) == {"1", "2", "3", "5", "9"}
    assert data["oracle_miou_1"] == 1.0
    assert data["counts"] == {"masks": 2, "images": 1}
    assert "oracle@1" in report.table()


def test_bad_first_mode_and_empty_points_are_rejected() -> None:
    image, masks, labels = _scene()
    with pytest.raises(ValueError, match="center"):
        point_eval.evaluate(RegionSegmenter(labels), [(image, masks)], first="middle")
    with pytest.raises(ValueError, match=">= 1"):
        point_eval.evaluate(RegionSegmenter(labels), [(image, masks)], points=(0,))


def test_coco_samples_reads_masks(shared_data: Path) -> None:
    root = shared_data / "coco_instance_seg" / "pycococreator_example"
    dataset = point_eval.coco_samples(
        str(root / "annotations" / "coco_example.json"), str(root / "images")
    )
    samples = list(dataset)
    assert len(samples) == 1
    sample = samples[0]
    assert sample.image.shape == (256, 256, 3)
    assert sample.name == "100.jpg"
    assert len(sample.masks) == 2  # the crowd annotation is left out, and counted
    assert dataset.left_out == {"crowd": 1}
    assert all(m.any() for m in sample.masks)
