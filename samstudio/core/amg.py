"""Automatic mask generation ("segment everything", paper §4 and §B), without torch or Qt.

The pipeline, for each crop (the whole image, then the zoomed-in crops of each layer):
encode the crop once, prompt it with a regular grid of single foreground points in
batches (3 masks per point), keep the confident and stable masks that do not touch the
crop's inner edges or cover almost the whole image, and de-duplicate them with box NMS
ranked by predicted IoU. Across crops, NMS prefers the more zoomed-in crop. Optionally,
small islands and holes are cleaned and NMS runs again.

It runs on any `Segmenter` (PyTorch or ONNX Runtime). The decoder's low-resolution
logits are filtered before anything is upscaled: the stability score, mask and box of a
candidate come from an exact full-resolution *window* of its logits (see
`amg_upscale`), so the decisions equal those of Meta's `SamAutomaticMaskGenerator`,
which upscales every candidate first. Only candidates that pass the filters are kept,
as run-length encoded windows, so memory stays bounded by the masks kept, never by the
grid.

`iter_masks` is a generator that yields an `AmgProgress` after encoding each crop and
after each decoder batch, and stops cleanly when `cancel()` turns true; `generate_masks`
runs it to the end. Records carry the SA-1B annotation fields.

Adaptive mode (SAM Studio, not in the paper): each crop is first prompted with a coarse
subset of its grid, then in passes only with those points of the full grid that a
decoded neighbour asks about and that are not settled yet (see `amg_adaptive`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from samstudio.core.amg_adaptive import NEAR_MISS_MARGIN, RefinementPlan
from samstudio.core.amg_grid import CropBox, crop_boxes, crop_points, point_grid
from samstudio.core.amg_nms import box_nms, mask_box, near_crop_edge
from samstudio.core.amg_params import AmgParams, AmgParamsError
from samstudio.core.amg_upscale import LogitUpscaler
from samstudio.core.masks import (
    RLE,
    decode_rle,
    encode_rle,
    remove_small_regions,
    rle_area,
    rle_bbox,
)
from samstudio.inference.preprocess import resized_shape
from samstudio.inference.types import ImageEmbedding, Segmenter

__all__ = [
    "AmgCancelled",
    "AmgParams",
    "AmgParamsError",
    "AmgProgress",
    "MaskRecord",
    "generate_masks",
    "iter_masks",
]

Stage = Literal["encode", "decode", "postprocess", "done", "cancelled"]


class AmgCancelled(Exception):
    """Automatic mask generation was cancelled before it finished."""


@dataclass(frozen=True)
class MaskRecord:
    """One generated mask with the SA-1B annotation fields.

    segmentation: compressed COCO RLE (counts str) in the original image frame.
    bbox: XYWH in pixel-edge coordinates (pycocotools' `toBbox`: width = columns spanned).
    area: foreground pixels. predicted_iou, stability_score: the model's quality scores.
    point_coords: the prompt point(s), XY pixels of the original frame.
    crop_box: XYWH of the crop whose embedding produced the mask.
    """

    segmentation: RLE
    bbox: tuple[float, float, float, float]
    area: int
    predicted_iou: float
    stability_score: float
    point_coords: tuple[tuple[float, float], ...]
    crop_box: tuple[int, int, int, int]

    def mask(self) -> np.ndarray:
        """(H, W) bool mask in the original frame."""
        return decode_rle(self.segmentation)

    def to_sa1b(self, annotation_id: int) -> dict[str, Any]:
        """The SA-1B per-image JSON annotation dict for this mask."""
        return {
            "id": int(annotation_id),
            "segmentation": dict(self.segmentation),
            "bbox": [float(v) for v in self.bbox],
            "area": int(self.area),
            "predicted_iou": float(self.predicted_iou),
            "stability_score": float(self.stability_score),
            "point_coords": [[float(x), float(y)] for x, y in self.point_coords],
            "crop_box": [float(v) for v in self.crop_box],
        }


@dataclass(frozen=True)
class AmgProgress:
    """Where a run stands; yielded after each crop encoding and each decoder batch.

    stage: "encode" (a crop was encoded), "decode" (a batch was decoded),
    "postprocess" (cleaning small regions), "done" (masks holds the result) or
    "cancelled" (the run stopped early; masks is empty).
    points_done / points_total: prompts decoded / planned so far over all crops
    (in adaptive mode the plan starts with the coarse grid and grows with each pass).
    crop_index / crop_count: the crop being processed (0 is the whole image).
    candidates: masks that passed the filters so far (before cross-crop NMS).
    """

    stage: Stage
    points_done: int
    points_total: int
    crop_index: int
    crop_count: int
    candidates: int = 0
    masks: tuple[MaskRecord, ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.stage in ("done", "cancelled")

    @property
    def fraction(self) -> float:
        """Share of the planned prompts decoded, in [0, 1] (1 when done)."""
        if self.stage == "done":
            return 1.0
        return min(1.0, self.points_done / self.points_total) if self.points_total else 0.0


@dataclass
class _Candidate:
    """A mask that passed the filters: its window RLE and what NMS and records need.

    box: inclusive XYXY in the original frame (Meta's NMS convention).
    window: pycocotools RLE (bytes counts) of the *transposed* mask inside its window
    (a C-ordered (h, w) array transposed is the Fortran-ordered array pycocotools reads,
    so no copy is made), whose top-left is (y0, x0) in the original frame.
    """

    box: tuple[int, int, int, int]
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]
    window: dict[str, Any]
    y0: int
    x0: int
    crop: CropBox

    def window_mask(self) -> np.ndarray:
        return mask_utils.decode(self.window).T.astype(bool)

    def full_mask(self, image_size: tuple[int, int]) -> np.ndarray:
        out = np.zeros(image_size, dtype=bool)
        win = self.window_mask()
        out[self.y0 : self.y0 + win.shape[0], self.x0 : self.x0 + win.shape[1]] = win
        return out


def generate_masks(
    segmenter: Segmenter,
    image: np.ndarray,
    params: AmgParams | None = None,
    *,
    embedding: ImageEmbedding | None = None,
    on_progress: Callable[[AmgProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[MaskRecord]:
    """All masks of `image` (see `iter_masks`). Raises AmgCancelled if `cancel()` turned true."""
    for progress in iter_masks(segmenter, image, params, embedding=embedding, cancel=cancel):
        if on_progress is not None:
            on_progress(progress)
        if progress.stage == "done":
            return list(progress.masks)
        if progress.stage == "cancelled":
            raise AmgCancelled("automatic mask generation was cancelled")
    raise AmgCancelled("automatic mask generation stopped before it finished")


def iter_masks(
    segmenter: Segmenter,
    image: np.ndarray,
    params: AmgParams | None = None,
    *,
    embedding: ImageEmbedding | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Iterator[AmgProgress]:
    """Run automatic mask generation step by step.

    image: (H, W, 3) uint8 RGB as displayed. embedding: optional, the segmenter's
    embedding of the whole `image` when the caller has it already (saves one encoder
    pass). cancel: polled before each encoder and decoder call; when it returns True the
    generator yields a "cancelled" progress and ends. The last progress of a complete
    run has stage "done" and carries the masks, best-ranked first.
    """
    params = params or AmgParams()
    image = _check_image(image)
    height, width = image.shape[:2]
    if embedding is not None and tuple(embedding.original_size) != (height, width):
        raise ValueError(
            f"the embedding is of a {embedding.original_size[1]}x{embedding.original_size[0]} "
            f"image but the image is {width}x{height}"
        )
    long_side = segmenter.info.image_size
    if min(resized_shape(height, width, long_side)) < 1:
        raise ValueError(
            f"a {width}x{height} image is too thin for automatic mask generation: scaled to "
            f"a long side of {long_side} pixels, its short side would be 0 pixels"
        )
    crops = [
        crop
        for crop in crop_boxes((height, width), params.crop_n_layers, params.crop_overlap_ratio)
        if min(resized_shape(crop.height, crop.width, long_side)) >= 1
    ]
    plan = [_initial_points(params, crop.layer) for crop in crops]
    run = _Run(params, (height, width), len(crops), sum(plan))
    kept: list[_Candidate] = []
    for index, crop in enumerate(crops):
        if cancel is not None and cancel():
            yield run.progress("cancelled", index)
            return
        if index == 0 and embedding is not None:
            crop_embedding = embedding
        else:
            crop_image = np.ascontiguousarray(image[crop.y0 : crop.y1, crop.x0 : crop.x1])
            crop_embedding = segmenter.encode(crop_image)
        yield run.progress("encode", index)
        crop_kept: list[_Candidate] = []
        for step in _process_crop(run, segmenter, crop_embedding, crop, index, cancel, crop_kept):
            yield step
            if step.stage == "cancelled":
                return
        kept.extend(crop_kept)
    if len(crops) > 1 and kept:
        areas = np.array([c.crop.area for c in kept], dtype=np.float32)
        order = box_nms(_boxes(kept), np.float32(1.0) / areas, params.crop_nms_thresh)
        kept = [kept[i] for i in order]
    if params.min_mask_region_area > 0 and kept:
        yield run.progress("postprocess", len(crops) - 1)
        records = _clean_small_regions(kept, params, (height, width))
    else:
        records = [_record(c, c.full_mask((height, width))) for c in kept]
    yield run.progress("done", len(crops) - 1, tuple(records))


class _Run:
    """Counters shared by the steps of one run (for progress reports)."""

    def __init__(
        self, params: AmgParams, image_size: tuple[int, int], crop_count: int, planned: int
    ) -> None:
        self.params = params
        self.image_size = image_size
        self.crop_count = crop_count
        self.points_total = planned
        self.points_done = 0
        self.candidates = 0

    def progress(
        self, stage: Stage, crop_index: int, masks: tuple[MaskRecord, ...] = ()
    ) -> AmgProgress:
        return AmgProgress(
            stage=stage,
            points_done=self.points_done,
            points_total=self.points_total,
            crop_index=crop_index,
            crop_count=self.crop_count,
            candidates=self.candidates,
            masks=masks,
        )


def _initial_points(params: AmgParams, layer: int) -> int:
    n = (
        params.coarse_points_per_side(layer)
        if params.adaptive
        else params.layer_points_per_side(layer)
    )
    return n * n


def _process_crop(
    run: _Run,
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    crop: CropBox,
    crop_index: int,
    cancel: Callable[[], bool] | None,
    kept: list[_Candidate],
) -> Iterator[AmgProgress]:
    """Decode the crop's grid in batches, filter, NMS within the crop; fill `kept`.

    In adaptive mode the grid is decoded in passes planned by `RefinementPlan`."""
    params = run.params
    full_n = params.layer_points_per_side(crop.layer)
    points = crop_points(crop, point_grid(full_n))
    candidates: list[_Candidate] = []
    upscaler: list[LogitUpscaler] = []
    if not params.adaptive:
        for step in _decode_points(
            run, segmenter, embedding, crop, crop_index, points, cancel, candidates, upscaler
        ):
            yield step
            if step.stage == "cancelled":
                return
        kept.extend(_nms_in_crop(candidates, params))
        return
    plan = RefinementPlan(
        points,
        full_n,
        params.coarse_points_per_side(crop.layer),
        (crop.height, crop.width),
        (crop.x0, crop.y0),
    )
    # Each pass's last, partial batch waits for the next pass's points, so that a few
    # stragglers do not cost a decoder call of their own; when nothing else is left, a
    # refinement batch is filled with the points the next passes would most likely ask
    # about (`RefinementPlan.fill`; the coarse grid is never padded with guesses).
    queue = plan.first()
    while len(queue):
        full = len(queue) - len(queue) % params.points_per_batch
        if full:
            now, tail = queue[:full], queue[full:]
        else:
            coarse_left = np.isin(queue, plan.coarse).any()
            extra = plan.fill(queue, 0 if coarse_left else params.points_per_batch - len(queue))
            run.points_total += len(extra)
            now, tail = np.concatenate([queue, extra]), queue[:0]
        for step in _decode_points(
            run,
            segmenter,
            embedding,
            crop,
            crop_index,
            points[now],
            cancel,
            candidates,
            upscaler,
            plan=plan,
            indices=now,
        ):
            yield step
            if step.stage == "cancelled":
                return
        added = plan.next()
        while not len(added) and not len(tail) and plan.promoted:
            added = plan.next()  # points decoded ahead were asked about: they ask now
        run.points_total += len(added)
        queue = np.concatenate([tail, added])
    kept.extend(_nms_in_crop(candidates, params))


def _decode_points(
    run: _Run,
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    crop: CropBox,
    crop_index: int,
    points: np.ndarray,
    cancel: Callable[[], bool] | None,
    out: list[_Candidate],
    upscaler: list[LogitUpscaler],
    *,
    plan: RefinementPlan | None = None,
    indices: np.ndarray | None = None,
) -> Iterator[AmgProgress]:
    """Decode `points` (crop frame) in batches; candidates go to `out`. With a `plan`,
    each point's outcome is recorded under its grid index from `indices`."""
    batch = run.params.points_per_batch
    for start in range(0, len(points), batch):
        if cancel is not None and cancel():
            yield run.progress("cancelled", crop_index)
            return
        chunk = points[start : start + batch]
        prediction = segmenter.decode_points_batch(embedding, chunk, multimask=True)
        if not upscaler:
            upscaler.append(
                LogitUpscaler(
                    prediction.input_size,
                    prediction.original_size,
                    prediction.image_size,
                    low_res=prediction.low_res_logits.shape[-1],
                )
            )
        found, owners = _filter_batch(
            run, prediction.low_res_logits, prediction.iou_predictions, chunk, crop, upscaler[0]
        )
        if plan is not None and indices is not None:
            _record_outcomes(
                plan,
                indices[start : start + batch],
                found,
                owners,
                _near_misses(run.params, prediction.low_res_logits, prediction.iou_predictions),
            )
        out.extend(found)
        run.points_done += len(chunk)
        run.candidates += len(found)
        yield run.progress("decode", crop_index)


def _record_outcomes(
    plan: RefinementPlan,
    indices: np.ndarray,
    found: list[_Candidate],
    owners: list[int],
    near: np.ndarray,
) -> None:
    """Tell the plan, for each decoded point, whether it asks for refinement and which
    of its kept masks is the finest (smallest area)."""
    finest: dict[int, tuple[int, _Candidate]] = {}
    for cand, owner in zip(found, owners, strict=True):
        area = int(mask_utils.area(cand.window))
        if owner not in finest or area < finest[owner][0]:
            finest[owner] = (area, cand)
    for local, index in enumerate(indices):
        best = finest.get(local)
        plan.record(int(index), bool(near[local]), None if best is None else best[1])


def _near_misses(params: AmgParams, low_res: np.ndarray, iou_predictions: np.ndarray) -> np.ndarray:
    """(B,) bool: points with a mask whose predicted IoU and low-resolution stability
    score are within `NEAR_MISS_MARGIN` of the filters' thresholds."""
    margin = NEAR_MISS_MARGIN
    close = iou_predictions.astype(np.float32) > np.float32(params.pred_iou_thresh - margin)
    threshold, offset = params.mask_threshold, params.stability_score_offset
    if params.stability_score_thresh > 0:
        union = np.count_nonzero(low_res > threshold - offset, axis=(-2, -1))
        inter = np.count_nonzero(low_res > threshold + offset, axis=(-2, -1))
        stability = inter / np.maximum(union, 1)
        close &= (union > 0) & (stability >= params.stability_score_thresh - margin)
    return np.asarray(close.any(axis=1))


def _filter_batch(
    run: _Run,
    low_res: np.ndarray,
    iou_predictions: np.ndarray,
    points: np.ndarray,
    crop: CropBox,
    upscaler: LogitUpscaler,
) -> tuple[list[_Candidate], list[int]]:
    """The paper's filters on one batch (B, M, s, s) of logits; survivors as candidates,
    and for each the index of its point in the batch.

    Order and comparisons as Meta's generator: predicted IoU > threshold, stability >=
    threshold (both in float32), non-empty mask, not near the crop's inner edges; then
    the paper's whole-image filter.
    """
    params = run.params
    n_points, n_masks = iou_predictions.shape[:2]
    logits = low_res.reshape(n_points * n_masks, *low_res.shape[-2:])
    ious = iou_predictions.reshape(-1).astype(np.float32)
    keep = np.ones(len(ious), dtype=bool)
    if params.pred_iou_thresh > 0:
        keep &= ious > np.float32(params.pred_iou_thresh)
    threshold = params.mask_threshold
    offset = params.stability_score_offset
    height, width = run.image_size
    max_area = (
        None
        if params.max_mask_area_fraction is None
        else params.max_mask_area_fraction * height * width
    )
    found: list[_Candidate] = []
    owners: list[int] = []
    stability_floor = float(params.stability_score_thresh) - 1e-6
    for k in np.flatnonzero(keep):
        if (
            params.stability_score_thresh > 0
            and upscaler.is_large(logits[k], threshold - offset)
            and upscaler.stability_upper_bound(logits[k], threshold, offset) < stability_floor
        ):
            continue  # surely unstable: skip the full-resolution upscale
        window = upscaler.window(logits[k], threshold - offset)
        if window is None:
            continue  # empty at the low threshold: Meta's score is 0/0 (NaN), dropped
        values = window.logits
        union = np.count_nonzero(values > threshold - offset)
        if union == 0:
            continue  # empty at full resolution: Meta's score is 0/0 (NaN), dropped
        inter = np.count_nonzero(values > threshold + offset)
        stability = np.float32(inter) / np.float32(union)
        if params.stability_score_thresh > 0 and not stability >= np.float32(
            params.stability_score_thresh
        ):
            continue
        mask = values > threshold
        box = mask_box(mask)
        if box is None:
            continue
        bx0, by0, bx1, by1 = box
        x_off, y_off = crop.x0 + window.x0, crop.y0 + window.y0
        full_box = (bx0 + x_off, by0 + y_off, bx1 + x_off, by1 + y_off)
        if near_crop_edge(full_box, crop.xyxy, run.image_size):
            continue
        sub = mask[by0 : by1 + 1, bx0 : bx1 + 1]
        if max_area is not None and np.count_nonzero(sub) >= max_area:
            continue
        point = points[k // n_masks]
        found.append(
            _Candidate(
                box=full_box,
                predicted_iou=float(ious[k]),
                stability_score=float(stability),
                point=(float(point[0]) + crop.x0, float(point[1]) + crop.y0),
                window=_encode_window(sub),
                y0=by0 + y_off,
                x0=bx0 + x_off,
                crop=crop,
            )
        )
        owners.append(int(k // n_masks))
    return found, owners


def _encode_window(mask: np.ndarray) -> dict[str, Any]:
    """RLE of an (h, w) bool mask's transpose, without copying the pixels."""
    transposed = np.ascontiguousarray(mask).view(np.uint8).T
    return mask_utils.encode(transposed)


def _boxes(candidates: list[_Candidate]) -> np.ndarray:
    return np.array([c.box for c in candidates], dtype=np.float32).reshape(-1, 4)


def _nms_in_crop(candidates: list[_Candidate], params: AmgParams) -> list[_Candidate]:
    """Box NMS ranked by predicted IoU; survivors best first."""
    if not candidates:
        return []
    scores = np.array([c.predicted_iou for c in candidates], dtype=np.float32)
    return [candidates[i] for i in box_nms(_boxes(candidates), scores, params.box_nms_thresh)]


def _record(cand: _Candidate, mask: np.ndarray) -> MaskRecord:
    rle = encode_rle(mask)
    x, y, w, h = rle_bbox(rle)
    return MaskRecord(
        segmentation=rle,
        bbox=(x, y, w, h),
        area=rle_area(rle),
        predicted_iou=cand.predicted_iou,
        stability_score=cand.stability_score,
        point_coords=(cand.point,),
        crop_box=cand.crop.xywh,
    )


def _clean_small_regions(
    kept: list[_Candidate], params: AmgParams, image_size: tuple[int, int]
) -> list[MaskRecord]:
    """Fill holes and remove islands under min_mask_region_area, then NMS again,
    preferring masks the cleaning left unchanged (as Meta's generator does).

    Each mask is cleaned inside its window padded by one pixel and kept as a window RLE
    (see `_clean_window`), so memory stays bounded by the windows, never by
    (masks kept) x (image size); full-frame masks are built one at a time for the records.
    """
    area = params.min_mask_region_area
    cleaned: list[_Candidate] = []
    unchanged: list[float] = []
    for cand in kept:
        window, y0, x0, changed = _clean_window(cand, area, image_size)
        box = mask_box(window)
        full_box = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0) if box else (0, 0, 0, 0)
        cleaned.append(replace(cand, box=full_box, window=_encode_window(window), y0=y0, x0=x0))
        unchanged.append(float(not changed))
    order = box_nms(
        _boxes(cleaned),
        np.array(unchanged, dtype=np.float32),
        max(params.box_nms_thresh, params.crop_nms_thresh),
    )
    return [_record(cleaned[i], cleaned[i].full_mask(image_size)) for i in order]


def _clean_window(
    cand: _Candidate, area: int, image_size: tuple[int, int]
) -> tuple[np.ndarray, int, int, bool]:
    """`remove_small_regions(full mask, area, "both")` computed in the candidate's window.

    Returns (window, y0, x0, changed): the cleaned mask equals the window placed at
    (y0, x0) in an empty frame. Islands lie inside the window. Holes are the background
    components of the window padded by one pixel where the image goes on (the padding
    is background, so each background part outside the window touches it); a component
    touching the padding gets the size of the outside pixels it joins added. Outside
    the window the background is one region, or two when the window spans the image's
    width or height. Only when such an outside-joined component is small enough to be
    filled (a mask covering nearly the whole image) is the full frame cleaned instead.
    """
    height, width = image_size
    win = cand.window_mask()
    h, w = win.shape
    # one pixel of padding where the image goes on, one more to start at an even row
    # and column: OpenCV labels in 2x2 blocks, so the labels keep the full frame's
    # order and ties between equal islands resolve the same way
    top = 0 if cand.y0 == 0 else 2 - cand.y0 % 2
    left = 0 if cand.x0 == 0 else 2 - cand.x0 % 2
    bottom, right = int(cand.y0 + h < height), int(cand.x0 + w < width)
    padded = np.zeros((h + top + bottom, w + left + right), dtype=bool)
    padded[top : top + h, left : left + w] = win
    ph, pw = padded.shape
    py0, px0 = cand.y0 - top, cand.x0 - left
    # (pixel of the padding in that outside part, outside pixels not in the padded window)
    parts: list[tuple[tuple[int, int], int]] = []
    if w == width and h == height:
        pass
    elif w == width:
        if top:
            parts.append(((0, 0), py0 * width))
        if bottom:
            parts.append(((ph - 1, 0), (height - py0 - ph) * width))
    elif h == height:
        if left:
            parts.append(((0, 0), px0 * height))
        if right:
            parts.append(((0, pw - 1), (width - px0 - pw) * height))
    else:
        # the padding is one connected band; (0, 0) is in it unless only the
        # bottom and/or right sides are padded
        ring = (0, 0) if top or left else ((ph - 1, 0) if bottom else (0, pw - 1))
        parts.append((ring, height * width - ph * pw))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (~padded).astype(np.uint8), connectivity=8
    )
    out = padded
    if n > 1:
        sizes = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
        joined = np.zeros(n, dtype=bool)
        for (r, c), outside in parts:
            label = labels[r, c]
            sizes[label] += outside
            joined[label] |= outside > 0
        fill = sizes < area
        fill[0] = False
        if (fill & joined).any():
            original = cand.full_mask(image_size)
            full = remove_small_regions(original, area, mode="both")
            return full, 0, 0, not np.array_equal(full, original)
        out = padded | fill[labels]
    out = remove_small_regions(out, area, mode="islands")
    return out, py0, px0, not np.array_equal(out, padded)


def _check_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"automatic mask generation needs an (H, W, 3) uint8 RGB image, got shape "
            f"{arr.shape} and dtype {arr.dtype}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"the image is empty: shape {arr.shape}")
    return arr
