"""Boxes of masks, greedy box NMS and the crop-edge filter of automatic mask generation.

Boxes here are XYXY with *inclusive* maxima (x1 is the last column of the mask), the
convention Meta's generator uses for its NMS and crop-edge decisions; keeping it makes
the same masks survive. Output records use COCO's XYWH (width = x1 - x0 + 1) instead.
"""

from __future__ import annotations

import cv2
import numpy as np


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(H, W) bool -> (x0, y0, x1, y1) inclusive pixel bounds, or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first (ties: lower index first).

    boxes: (N, 4) XYXY (inclusive maxima are fine: IoU uses (x1-x0)*(y1-y0) as
    torchvision does); scores: (N,) float. A box is dropped when its IoU with a kept,
    better-ranked box is > iou_threshold. Boxes of zero area overlap nothing: they are
    always kept and never suppress others (what torchvision's NaN IoU amounts to).
    OpenCV's `cv2.dnn.NMSBoxes` does the work; it wants positive scores, so scores are
    replaced by their dense ranks, which keeps order and ties.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    n = len(boxes)
    if n == 0:
        return np.zeros((0,), np.int64)
    _, inverse = np.unique(scores, return_inverse=True)
    ranks = inverse.astype(np.float64) + 1.0
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    solid = np.flatnonzero((widths > 0) & (heights > 0))
    kept = np.flatnonzero(~((widths > 0) & (heights > 0)))
    if solid.size:
        rects = np.stack([boxes[solid, 0], boxes[solid, 1], widths[solid], heights[solid]], 1)
        picked = cv2.dnn.NMSBoxes(rects.tolist(), ranks[solid].tolist(), 0.0, float(iou_threshold))
        kept = np.concatenate([kept, solid[np.asarray(picked, dtype=np.int64).reshape(-1)]])
    order = np.lexsort((kept, -scores[kept]))
    return kept[order].astype(np.int64)


def near_crop_edge(
    box: tuple[int, int, int, int],
    crop_xyxy: tuple[int, int, int, int],
    image_size: tuple[int, int],
    tolerance: float = 20.0,
) -> bool:
    """True if a mask's box (inclusive XYXY, original frame) lies within `tolerance`
    pixels of one of the crop's sides that is not also a side of the image: the paper's
    "masks that touch the inner boundaries of the crops" (§B)."""
    height, width = image_size
    image_box = (0, 0, width, height)
    for value, crop_side, image_side in zip(box, crop_xyxy, image_box):
        if abs(value - crop_side) <= tolerance and abs(value - image_side) > tolerance:
            return True
    return False
