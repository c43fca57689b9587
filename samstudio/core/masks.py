"""Binary masks, their COCO run-length encoding, and the paper's §B mask operations.

Masks are (H, W) bool arrays in the displayed image frame (row = y, column = x).
RLEs are COCO's compressed form: ``{"size": [H, W], "counts": str}``, column-major as
pycocotools writes them; "uncompressed" RLE has ``counts`` as a list of run lengths.

Boxes use pixel-edge coordinates, like COCO: a mask whose pixels span columns x0..x1
and rows y0..y1 (inclusive) has XYWH ``[x0, y0, x1 - x0 + 1, y1 - y0 + 1]`` (what
pycocotools' ``toBbox`` returns) and XYXY ``[x0, y0, x1 + 1, y1 + 1]``. An empty mask has
the box ``[0, 0, 0, 0]``.

Polygon conversion lives in ``samstudio.core.polygons`` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]


class RLEError(ValueError):
    """An RLE dict is malformed (missing keys, bad size, counts that do not fit)."""


def encode_rle(mask: np.ndarray) -> RLE:
    """(H, W) bool -> compressed RLE with `counts` as a str (JSON-ready)."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {m.shape}")
    rle = mask_utils.encode(m)
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": rle["counts"].decode("ascii"),
    }


def decode_rle(rle: RLE) -> np.ndarray:
    """RLE -> (H, W) bool. Accepts compressed (counts str/bytes) and uncompressed (list)."""
    return mask_utils.decode(_coco_rle(rle)).astype(bool)


def decode_rle_window(rle: RLE) -> tuple[np.ndarray, int, int]:
    """RLE -> (window, x0, y0): the (h, w) bool crop of the mask to its box, and the box's
    top-left pixel. Only the box's columns are expanded (the counts are column-major),
    so a small mask on a large image costs little; an empty mask gives a (0, 0) window
    at (0, 0). ``decode_rle(rle)[y0:y0 + h, x0:x0 + w]`` equals the window."""
    coco, runs = _coco_rle_and_runs(rle)
    height = int(coco["size"][0])
    x0, y0, bw, bh = (int(v) for v in mask_utils.toBbox(coco))
    if bw == 0 or bh == 0:
        return np.zeros((0, 0), dtype=bool), 0, 0
    ends = np.cumsum(runs)
    lo, hi = x0 * height, (x0 + bw) * height
    # each run clipped to the box's columns; runs alternate background / foreground
    lengths = np.clip(ends, lo, hi) - np.clip(ends - runs, lo, hi)
    foreground = np.arange(runs.size) % 2 == 1
    columns = np.repeat(foreground, lengths).reshape(bw, height)
    return np.ascontiguousarray(columns.T[y0 : y0 + bh]), x0, y0


def encode_rles(masks: np.ndarray | Sequence[np.ndarray]) -> list[RLE]:
    """(N, H, W) bool -> N compressed RLEs (one pycocotools call)."""
    arr = np.asarray(masks, dtype=np.uint8)
    if arr.ndim != 3:
        raise ValueError(f"masks are (N, H, W), got shape {arr.shape}")
    if arr.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(arr.transpose(1, 2, 0)))
    return [
        {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
        for r in rles
    ]


def compress_rle(rle: RLE) -> RLE:
    """Any valid RLE (compressed or uncompressed) -> compressed RLE with str counts.

    Raises ``RLEError`` when the RLE is malformed: size not two non-negative ints,
    counts neither a str nor a list of non-negative ints, or runs that do not add up to
    height * width.
    """
    coco = _coco_rle(rle)
    return {
        "size": [int(coco["size"][0]), int(coco["size"][1])],
        "counts": coco["counts"].decode("ascii"),
    }


def rle_area(rle: RLE) -> int:
    """Number of foreground pixels."""
    return int(mask_utils.area(_coco_rle(rle)))


def rle_bbox(rle: RLE) -> list[float]:
    """XYWH box in pixel-edge coordinates (pycocotools ``toBbox``); zeros when empty."""
    return [float(v) for v in mask_utils.toBbox(_coco_rle(rle))]


def rle_area_bbox(rle: RLE) -> tuple[int, list[float]]:
    """(area, XYWH box) with one validation of the RLE (cheaper than both calls)."""
    coco = _coco_rle(rle)
    return int(mask_utils.area(coco)), [float(v) for v in mask_utils.toBbox(coco)]


def rle_iou(
    a: Sequence[RLE], b: Sequence[RLE], iscrowd: Sequence[bool] | None = None
) -> np.ndarray:
    """IoU between every mask of `a` and every mask of `b`: (len(a), len(b)) float64.

    ``iscrowd[j]`` true uses COCO's crowd rule for ``b[j]`` (intersection over the area of
    ``a[i]``). Two empty masks have IoU 0 (pycocotools' convention).
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    crowd = [int(bool(c)) for c in iscrowd] if iscrowd is not None else [0] * len(b)
    out = mask_utils.iou([_coco_rle(r) for r in a], [_coco_rle(r) for r in b], crowd)
    return np.asarray(out, dtype=np.float64).reshape(len(a), len(b))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; 1.0 when both are empty (they agree exactly)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


def stability_score(
    logits: np.ndarray, mask_threshold: float = 0.0, offset: float = 1.0
) -> np.ndarray:
    """Paper §B stability: IoU of (logits > t + offset) and (logits > t - offset).

    logits: (..., H, W) float mask logits (any leading batch dimensions).
    Returns float32 of shape ``logits.shape[:-2]`` (a 0-d array for one mask). The first
    mask is a subset of the second, so the IoU is count(high) / count(low); a mask empty at
    both thresholds scores 1.0.
    """
    arr = np.asarray(logits)
    if arr.ndim < 2:
        raise ValueError(f"logits are (..., H, W), got shape {arr.shape}")
    high = np.count_nonzero(arr > mask_threshold + offset, axis=(-2, -1))
    low = np.count_nonzero(arr > mask_threshold - offset, axis=(-2, -1))
    score = np.divide(high, low, out=np.ones(np.shape(low), dtype=np.float64), where=low > 0)
    return np.asarray(score, dtype=np.float32)


def remove_small_regions(
    mask: np.ndarray,
    area_thresh: int,
    mode: Literal["islands", "holes", "both"] = "both",
) -> np.ndarray:
    """Paper §B post-processing: drop small parts and fill small holes.

    mask: (H, W) bool. ``islands`` removes 8-connected foreground components with fewer
    than ``area_thresh`` pixels; ``holes`` fills 8-connected background components with
    fewer than ``area_thresh`` pixels (as Meta's ``remove_small_regions`` does, a small
    background region at the image border counts as a hole too); ``both`` does holes
    first, then islands. When every part is small, the largest part is kept rather than
    emptying the mask. Returns a new (H, W) bool array.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {m.shape}")
    if area_thresh <= 0:
        return m.copy()
    if mode in ("holes", "both"):
        m = ~_drop_small_components(~m, area_thresh, keep_largest=False)
    if mode in ("islands", "both"):
        m = _drop_small_components(m, area_thresh, keep_largest=True)
    if mode not in ("holes", "islands", "both"):
        raise ValueError(f"mode is 'islands', 'holes' or 'both', got {mode!r}")
    return m


def _drop_small_components(m: np.ndarray, area_thresh: int, keep_largest: bool) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        return m.copy()
    sizes = stats[1:, cv2.CC_STAT_AREA]
    keep = np.concatenate([[False], sizes >= area_thresh])
    if keep_largest and not keep.any():
        keep[1 + int(np.argmax(sizes))] = True
    return keep[labels]


def mask_to_box(mask: np.ndarray, fmt: Literal["xyxy", "xywh"] = "xyxy") -> list[int]:
    """Box of a (H, W) mask in pixel-edge coordinates (see module docstring).

    ``xyxy``: [x0, y0, x1, y1] with x1, y1 exclusive; ``xywh``: [x0, y0, w, h], equal to
    pycocotools' ``toBbox``. Empty mask: [0, 0, 0, 0].
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {m.shape}")
    cols = np.flatnonzero(m.any(axis=0))
    if cols.size == 0:
        return [0, 0, 0, 0]
    rows = np.flatnonzero(m.any(axis=1))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    if fmt == "xyxy":
        return [x0, y0, x1, y1]
    if fmt == "xywh":
        return [x0, y0, x1 - x0, y1 - y0]
    raise ValueError(f"fmt is 'xyxy' or 'xywh', got {fmt!r}")


def masks_to_boxes(masks: np.ndarray, fmt: Literal["xyxy", "xywh"] = "xyxy") -> np.ndarray:
    """(N, H, W) bool -> (N, 4) int64 boxes, as ``mask_to_box`` for each mask."""
    arr = np.asarray(masks, dtype=bool)
    if arr.ndim != 3:
        raise ValueError(f"masks are (N, H, W), got shape {arr.shape}")
    return np.array([mask_to_box(m, fmt) for m in arr], dtype=np.int64).reshape(-1, 4)


def _coco_rle(rle: Any) -> dict[str, Any]:
    """Validate an RLE dict and return pycocotools' compressed form (counts as bytes)."""
    return _coco_rle_and_runs(rle)[0]


def _coco_rle_and_runs(rle: Any) -> tuple[dict[str, Any], np.ndarray]:
    """`_coco_rle` and the run lengths its validation decoded (int64)."""
    if not isinstance(rle, dict):
        raise RLEError(f"an RLE is a dict with 'size' and 'counts', got {type(rle).__name__}")
    size = rle.get("size")
    counts = rle.get("counts")
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise RLEError(f"RLE 'size' must be [height, width] (two non-negative ints), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if isinstance(counts, str):
        counts = counts.encode("ascii", errors="replace")
    if isinstance(counts, bytes):
        coco = {"size": [h, w], "counts": counts}
        return coco, _check_compressed(coco, h, w)
    if isinstance(counts, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            raise RLEError("uncompressed RLE 'counts' must be a list of non-negative ints")
        if sum(counts) != h * w:
            raise RLEError(
                f"uncompressed RLE runs add up to {sum(counts)} pixels, but size {h}x{w} "
                f"has {h * w}"
            )
        if any(v > 0xFFFFFFFF for v in counts):
            raise RLEError("uncompressed RLE run longer than 2**32 - 1")
        out = mask_utils.frPyObjects({"size": [h, w], "counts": list(counts)}, h, w)
        return {"size": [h, w], "counts": out["counts"]}, np.asarray(counts, dtype=np.int64)
    raise RLEError(f"RLE 'counts' must be a str or a list of ints, got {type(counts).__name__}")


def _check_compressed(coco: dict[str, Any], h: int, w: int) -> np.ndarray:
    """Compressed counts must decode to runs that add up to exactly h * w pixels; returns
    the runs.

    pycocotools trusts the runs and would write past its buffer otherwise.
    """
    try:
        runs = _decode_counts(coco["counts"])
    except ValueError as exc:
        raise RLEError(f"RLE counts string is not valid: {exc}") from None
    total = int(runs.sum())
    if total != h * w:
        raise RLEError(f"RLE counts add up to {total} pixels, but size {h}x{w} has {h * w}")
    return runs


def _decode_counts(counts: bytes) -> np.ndarray:
    """Run lengths of COCO's compressed counts string (int64), as pycocotools' rleFrString.

    Each number is 5-bit groups (char - 48), low group first, 0x20 = "more follows",
    0x10 in the last group = negative; from the fourth number on, each is stored as the
    difference to the number two places before it.
    """
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = (c < 0) | (c > 63)
    if bad.any():
        p = int(np.argmax(bad))
        raise ValueError(f"byte {counts[p : p + 1]!r} at {p} is outside the RLE alphabet")
    more = (c & 0x20) != 0
    if more[-1]:
        raise ValueError("counts string ends in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if int(lengths.max()) > 7:
        raise ValueError("a run length has more than 7 digits (over 2**32)")
    k = np.arange(c.size) - np.repeat(starts, lengths)
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    negative = (c[ends] & 0x10) != 0
    x = np.where(negative, x | np.left_shift(np.int64(-1), 5 * lengths), x)
    runs = x.copy()
    if runs.size > 3:
        runs[2::2] = np.cumsum(x[2::2])
        runs[3::2] = x[1] + np.cumsum(x[3::2])
    if (runs < 0).any() or (runs > 0xFFFFFFFF).any():
        raise ValueError("a run length is negative or over 2**32 - 1")
    return runs


from samstudio.core.polygons import (  # noqa: E402  (re-export; polygons does not import us)
    mask_to_polygons,
    masks_to_polygons,
    polygons_to_mask,
)

__all__ = [
    "RLE",
    "RLEError",
    "compress_rle",
    "decode_rle",
    "encode_rle",
    "encode_rles",
    "mask_iou",
    "mask_to_box",
    "mask_to_polygons",
    "masks_to_boxes",
    "masks_to_polygons",
    "polygons_to_mask",
    "remove_small_regions",
    "rle_area",
    "rle_area_bbox",
    "rle_bbox",
    "rle_iou",
    "stability_score",
]
