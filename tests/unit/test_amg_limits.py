"""Automatic mask generation at the edges of its input range: tiny and thin images, and
the memory of the small-region cleaning step."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from amg_scenes import ShapeSegmenter

from samstudio.core.amg import (
    AmgParams,
    _Candidate,
    _clean_small_regions,
    _clean_window,
    _encode_window,
    generate_masks,
)
from samstudio.core.amg_grid import CropBox, crop_boxes
from samstudio.core.amg_nms import mask_box
from samstudio.core.masks import decode_rle, remove_small_regions


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


# ---------------------------------------------------------------- small-region cleaning


def _candidate(mask: np.ndarray, image_size: tuple[int, int]) -> _Candidate:
    """A kept candidate whose full-frame mask is `mask`."""
    x0, y0, x1, y1 = mask_box(mask)
    window = _encode_window(np.ascontiguousarray(mask[y0 : y1 + 1, x0 : x1 + 1]))
    crop = CropBox(0, 0, image_size[1], image_size[0], 0)
    return _Candidate((x0, y0, x1, y1), 0.9, 0.9, (x0 + 0.5, y0 + 0.5), window, y0, x0, crop)


def test_cleaning_many_small_masks_keeps_memory_bounded():
    """100 masks of 20x20 pixels on a 1500x1500 image: the cleaning once kept a
    full-frame mask per kept mask (peak 239 MB, ~106 frames); now only windows are kept
    and one full-frame mask at a time is built for its record (~7 MB)."""
    height = width = 1500
    candidates = []
    for i in range(100):
        mask = np.zeros((height, width), bool)
        y, x = (i // 10) * 150 + 3, (i % 10) * 150 + 3
        mask[y : y + 20, x : x + 20] = True
        mask[y + 5, x + 5] = False  # a one-pixel hole, filled by the cleaning
        candidates.append(_candidate(mask, (height, width)))
    tracemalloc.start()
    try:
        records = _clean_small_regions(
            candidates, AmgParams(min_mask_region_area=10), (height, width)
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(records) == 100
    assert all(r.area == 400 for r in records)
    assert peak < 8 * height * width, f"peak {peak / 1e6:.0f} MB"


def test_windowed_cleaning_equals_full_frame_cleaning():
    """Random masks, many touching the image border or spanning its width or height,
    some covering nearly all of it: the windowed cleaning gives Meta's full-frame
    result and the same changed flag."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(3000):
        height, width = (int(v) for v in rng.integers(1, 24, 2))
        mask = np.zeros((height, width), bool)
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        y1, x1 = int(rng.integers(y0, height)) + 1, int(rng.integers(x0, width)) + 1
        kind = int(rng.integers(0, 4))
        if kind == 1:
            y0, y1 = 0, height
        elif kind == 2:
            x0, x1 = 0, width
        elif kind == 3:
            y0, x0, y1, x1 = 0, 0, height, width
        mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < rng.uniform(0.2, 0.97)
        if not mask.any():
            continue
        area = int(rng.integers(1, 40))
        window, wy, wx, changed = _clean_window(
            _candidate(mask, (height, width)), area, (height, width)
        )
        got = np.zeros((height, width), bool)
        got[wy : wy + window.shape[0], wx : wx + window.shape[1]] = window
        want = remove_small_regions(mask, area, mode="both")
        assert np.array_equal(got, want)
        assert changed == (not np.array_equal(want, mask))
        checked += 1
    assert checked > 2500
