"""Automatic mask generation at the edges of its input range: tiny and thin images, and
the memory of the small-region cleaning step."""

from __future__ import annotations

import numpy as np
import pytest
from amg_scenes import ShapeSegmenter

from samstudio.core.amg import AmgParams, generate_masks
from samstudio.core.amg_grid import crop_boxes
from samstudio.core.masks import decode_rle


def _image(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with one bright rectangle covering its middle third (in x)."""
    image = np.full((height, width, 3), 30, np.uint8)
    obj = np.zeros((height, width), bool)
    obj[:, width // 3 : 2 * width // 3] = True
    image[obj] = (220, 200, 40)
    return image, obj


@pytest.mark.parametrize(
    ("height", "width", "n_layers"),
    [(20, 20, 3), (6, 1000, 2), (1000, 6, 2), (3, 3, 2)],
)
def test_crop_boxes_leave_out_empty_windows(height, width, n_layers):
    boxes = crop_boxes((height, width), n_layers, 512 / 1500)
    assert boxes[0].xyxy == (0, 0, width, height)
    for b in boxes:
        assert 0 <= b.x0 < b.x1 <= width and 0 <= b.y0 < b.y1 <= height
    # every layer still covers the whole image
    for layer in range(1, n_layers + 1):
        covered = np.zeros((height, width), bool)
        for b in boxes:
            if b.layer == layer:
                covered[b.y0 : b.y1, b.x0 : b.x1] = True
        assert covered.all()


def test_crop_boxes_unchanged_for_ordinary_sizes():
    """Meta's generate_crop_boxes lists 1 + 4 + 16 + 64 windows for 3 layers: no window
    is left out once both sides are at least 8 * 7 pixels."""
    for size in [(56, 56), (57, 300), (480, 640), (3000, 4000)]:
        assert len(crop_boxes(size, 3, 512 / 1500)) == 1 + 4 + 16 + 64


def test_small_image_with_deep_crop_layers_gets_masks():
    """Once failed with 'cannot encode an empty image': layer 3's last windows of a
    20x20 image were empty."""
    image, obj = _image(20, 20)
    params = AmgParams(
        points_per_side=4, crop_n_layers=3, pred_iou_thresh=0.5, stability_score_thresh=0.8
    )
    records = generate_masks(ShapeSegmenter(image_size=256, low_res=64), image, params)
    assert records
    ious = [np.count_nonzero(m & obj) / np.count_nonzero(m | obj) for m in _masks(records)]
    assert max(ious) > 0.8


def test_thin_strip_with_the_paper_preset_runs():
    """A 1000x6 strip with the paper's 2 crop layers: once failed on empty windows."""
    image, _ = _image(6, 1000)
    params = AmgParams.paper(points_per_side=4, pred_iou_thresh=0.5, stability_score_thresh=0.8)
    records = generate_masks(ShapeSegmenter(image_size=256, low_res=64), image, params)
    assert all(m.shape == (6, 1000) for m in _masks(records))


def _masks(records: list) -> list[np.ndarray]:
    return [decode_rle(r.segmentation) for r in records]


def test_too_thin_image_gets_a_clear_error():
    image = np.full((1, 3000, 3), 30, np.uint8)
    with pytest.raises(ValueError, match=r"3000x1 image is too thin"):
        generate_masks(ShapeSegmenter(image_size=1024, low_res=256), image, AmgParams())
