"""Masks: RLE (pycocotools as oracle), stability, small regions, boxes, polygons."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from rle_runs import uncompressed_counts

from samstudio.core.masks import (
    RLEError,
    compress_rle,
    decode_rle,
    encode_rle,
    encode_rles,
    mask_iou,
    mask_to_box,
    mask_to_polygons,
    masks_to_boxes,
    polygons_to_mask,
    remove_small_regions,
    rle_area,
    rle_bbox,
    rle_iou,
    stability_score,
)
from samstudio.core.polygons import geometry_to_rings, mask_to_geometry, polygons_iou

# --------------------------------------------------------------------------- strategies


@st.composite
def blob_masks(draw: st.DrawFn, max_side: int = 96) -> np.ndarray:
    """Masks made of 1-4 ellipses/rectangles, with 0-3 holes cut into them."""
    h = draw(st.integers(8, max_side))
    w = draw(st.integers(8, max_side))
    m = np.zeros((h, w), np.uint8)
    for _ in range(draw(st.integers(1, 4))):
        cx, cy = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        rx, ry = draw(st.integers(3, max(3, w // 2))), draw(st.integers(3, max(3, h // 2)))
        if draw(st.booleans()):
            cv2.ellipse(m, (cx, cy), (rx, ry), draw(st.integers(0, 179)), 0, 360, 1, -1)
        else:
            cv2.rectangle(m, (cx - rx, cy - ry), (cx + rx, cy + ry), 1, -1)
    for _ in range(draw(st.integers(0, 3))):
        cx, cy = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        r = draw(st.integers(1, max(1, min(h, w) // 6)))
        cv2.circle(m, (cx, cy), r, 0, -1)
    return m.astype(bool)


@st.composite
def noise_masks(draw: st.DrawFn) -> np.ndarray:
    """Arbitrary small masks: every pixel independent (diagonal contacts, 1-px holes)."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    bits = draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    return np.array(bits, dtype=bool).reshape(h, w)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------- RLE


@FAST
@given(st.one_of(blob_masks(), noise_masks()))
def test_rle_round_trip_is_exact_and_agrees_with_pycocotools(mask: np.ndarray) -> None:
    rle = encode_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    oracle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert rle["counts"].encode() == oracle["counts"]
    assert rle_area(rle) == int(mask.sum()) == int(mask_utils.area(oracle))
    assert rle_bbox(rle) == [float(v) for v in mask_utils.toBbox(oracle)]
    assert rle_bbox(rle) == [float(v) for v in mask_to_box(mask, "xywh")]


def test_uncompressed_rle_and_batch_encode() -> None:
    m = np.zeros((4, 5), bool)
    m[1:3, 2:4] = True
    unc = {"size": [4, 5], "counts": uncompressed_counts(m)}
    np.testing.assert_array_equal(decode_rle(unc), m)
    assert compress_rle(unc) == encode_rle(m)
    rles = encode_rles(np.stack([m, ~m]))
    assert [rle_area(r) for r in rles] == [4, 16]
    assert encode_rles(np.zeros((0, 4, 5), bool)) == []


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"size": [4, 5]}, "counts"),
        ({"size": [4], "counts": "0"}, "size"),
        ({"size": [4, -5], "counts": "0"}, "size"),
        ({"size": [4, 5], "counts": [3, 4]}, "add up to 7"),
        ({"size": [4, 5], "counts": [3, -1, 18]}, "non-negative"),
        ({"size": [4, 5], "counts": "zzzz"}, "alphabet"),
        ({"size": [2, 2], "counts": "5"}, "add up to 5"),
        ({"size": [100, 100], "counts": "0`"}, "middle of a number"),
        ("not a dict", "dict"),
    ],
)
def test_malformed_rle_is_a_clear_error(bad: object, match: str) -> None:
    with pytest.raises(RLEError, match=match):
        compress_rle(bad)  # type: ignore[arg-type]


def test_rle_iou_matches_dense_iou_and_crowd_rule() -> None:
    a = np.zeros((20, 20), bool)
    a[2:10, 2:10] = True
    b = np.zeros((20, 20), bool)
    b[5:15, 5:15] = True
    iou = rle_iou([encode_rle(a)], [encode_rle(b), encode_rle(a)])
    assert iou.shape == (1, 2)
    assert iou[0, 0] == pytest.approx(mask_iou(a, b))
    assert iou[0, 1] == pytest.approx(1.0)
    crowd = rle_iou([encode_rle(a)], [encode_rle(b)], iscrowd=[True])
    assert crowd[0, 0] == pytest.approx((a & b).sum() / a.sum())
    assert rle_iou([], [encode_rle(a)]).shape == (0, 1)


# ------------------------------------------------------------------------ §B operations


def test_stability_score_is_iou_of_offset_thresholds() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(3, 32, 32)).astype(np.float32)
    scores = stability_score(logits, 0.0, 1.0)
    assert scores.shape == (3,) and scores.dtype == np.float32
    for k in range(3):
        hi, lo = logits[k] > 1.0, logits[k] > -1.0
        assert scores[k] == pytest.approx(mask_iou(hi, lo), rel=1e-6)
    assert stability_score(np.full((8, 8), -5.0)) == 1.0  # empty at both thresholds
    assert stability_score(np.full((8, 8), 5.0)) == 1.0  # certain everywhere
    assert stability_score(logits[0]).shape == ()


def test_remove_small_regions_islands_and_holes() -> None:
    m = np.zeros((40, 40), bool)
    m[5:30, 5:30] = True  # big part
    m[12:14, 12:14] = False  # 4-px hole
    m[15:25, 15:25] = False  # 100-px hole
    m[35:37, 35:37] = True  # 4-px island
    out = remove_small_regions(m, 10, "islands")
    assert not out[35:37, 35:37].any() and not out[12:14, 12:14].any()
    out = remove_small_regions(m, 10, "holes")
    assert out[12:14, 12:14].all() and out[35:37, 35:37].all() and not out[15:25, 15:25].any()
    out = remove_small_regions(m, 10)
    assert out[12:14, 12:14].all() and not out[35:37, 35:37].any()
    assert not out[15:25, 15:25].any()
    only_small = np.zeros((10, 10), bool)
    only_small[1, 1] = only_small[5:7, 5:7] = True
    kept = remove_small_regions(only_small, 50, "islands")
    assert kept.sum() == 4  # the largest part survives instead of an empty mask
    np.testing.assert_array_equal(remove_small_regions(m, 0), m)
    with pytest.raises(ValueError):
        remove_small_regions(m, 5, "bogus")  # type: ignore[arg-type]


def test_mask_to_box_formats() -> None:
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert mask_to_box(m) == [3, 2, 9, 5]
    assert mask_to_box(m, "xywh") == [3, 2, 6, 3]
    assert mask_to_box(np.zeros((4, 4), bool)) == [0, 0, 0, 0]
    boxes = masks_to_boxes(np.stack([m, np.zeros_like(m)]), "xyxy")
    assert boxes.tolist() == [[3, 2, 9, 5], [0, 0, 0, 0]]


# ---------------------------------------------------------------------------- polygons


@FAST
@given(st.one_of(blob_masks(), noise_masks()))
def test_exact_outline_rasterises_back_to_the_same_mask(mask: np.ndarray) -> None:
    geom = mask_to_geometry(mask)
    assert geom.is_valid
    assert geom.area == pytest.approx(mask.sum())
    rings = geometry_to_rings(geom, decimals=6)
    np.testing.assert_array_equal(polygons_to_mask(rings, *mask.shape), mask)


@FAST
@given(blob_masks(max_side=160))
def test_simplified_polygons_keep_iou_098(mask: np.ndarray) -> None:
    rings = mask_to_polygons(mask, tolerance=2.0)
    if not mask.any():
        assert rings == []
        return
    assert all(len(r) >= 6 and len(r) % 2 == 0 for r in rings)
    assert polygons_iou(rings, mask) >= 0.98
    # pycocotools reads them the way COCO readers do
    rle = mask_utils.merge(mask_utils.frPyObjects(rings, *mask.shape))
    assert (
        mask_utils.iou([rle], [mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))], [0])[
            0
        ][0]
        >= 0.98
    )


def test_polygons_keep_holes_and_parts() -> None:
    m = np.zeros((60, 80), np.uint8)
    cv2.circle(m, (20, 30), 15, 1, -1)
    cv2.circle(m, (20, 30), 6, 0, -1)  # a hole
    cv2.rectangle(m, (50, 10), (75, 50), 1, -1)  # a second part
    cv2.rectangle(m, (58, 20), (66, 40), 0, -1)  # with a hole
    mask = m.astype(bool)
    geom = mask_to_geometry(mask)
    assert len(geom.geoms) == 2 and sum(len(p.interiors) for p in geom.geoms) == 2
    rings = mask_to_polygons(mask)
    assert len(rings) == 2
    back = polygons_to_mask(rings, 60, 80)
    assert not back[30, 20] and not back[30, 62]  # holes stay empty
    assert mask_iou(back, mask) >= 0.98


def test_empty_mask_and_bad_polygons() -> None:
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []
    assert not polygons_to_mask([], 5, 5).any()
    assert not polygons_to_mask([[1.0, 1.0, 2.0, 2.0]], 5, 5).any()  # < 3 points: ignored
    with pytest.raises(ValueError):
        polygons_to_mask([[0, 0, 1, 0, 1, 1]], 0, 5)


@given(st.one_of(blob_masks(), noise_masks()), st.integers(0, 40), st.integers(0, 40))
@settings(max_examples=150, deadline=None)
def test_rle_window_is_the_mask_cropped_to_its_box(mask: np.ndarray, top: int, left: int) -> None:
    from samstudio.core.masks import decode_rle_window

    placed = np.pad(mask, ((top, 7), (left, 3)))  # the mask somewhere in a larger image
    rle = encode_rle(placed)
    window, x0, y0 = decode_rle_window(rle)
    ys, xs = np.nonzero(placed)
    if len(ys) == 0:
        assert window.shape == (0, 0) and (x0, y0) == (0, 0)
        return
    assert (x0, y0) == (xs.min(), ys.min())
    assert window.shape == (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    assert np.array_equal(window, placed[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]])
    # an uncompressed RLE (run lengths, column-major, background first) gives the same
    flat = placed.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change])).tolist()
    uncompressed = {"size": list(placed.shape), "counts": counts}
    assert np.array_equal(decode_rle(uncompressed), placed)
    again, ax, ay = decode_rle_window(uncompressed)
    assert (ax, ay) == (x0, y0) and np.array_equal(again, window)


@given(blob_masks(max_side=120), st.integers(0, 60), st.integers(0, 60))
@settings(max_examples=40, deadline=None)
def test_polygon_export_traced_in_the_box_equals_the_full_image_trace(
    mask: np.ndarray, top: int, left: int
) -> None:
    """COCO polygon export traces only the mask's box: the same rings as tracing the
    whole image."""
    from samstudio.core.formats.coco import annotation_json
    from samstudio.core.formats.records import Annotation

    placed = np.pad(mask, ((top, 5), (left, 9)))
    ann = Annotation(id=1, image_id=1, category_id=1, segmentation=encode_rle(placed))
    out = annotation_json(ann, "polygon")
    if not placed.any():
        return
    assert out["segmentation"] == mask_to_polygons(placed)
