"""The paper's §D.1 point-prompt evaluation, for any `Segmenter` (no Qt, no torch).

For each ground-truth mask: the first point is the interior point farthest from the
object boundary ("center", the maximum of the distance transform) or a uniformly
random interior point ("random"); each next point is the point of the error region
(false negatives and false positives of the previous prediction) farthest from that
region's boundary, labelled foreground on a false negative and background on a
false positive. The prediction after one point is the top-ranked of the 3 candidate
masks (the "oracle" takes the best of the 3); with several points it is the single
mask of SAM's 4th output token. By default the previous low-res logits are given
back as the mask prompt (the interactive loop of §A). mIoU is the mean over masks
of the IoU after N points, for each requested N.

Masks and points are in the image frame as displayed: masks (H, W) bool, points
(x, y) pixel coordinates of pixel centres.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from samstudio.core.point_eval_report import EvalReport, MaskResult, build_report
from samstudio.inference.types import ImageEmbedding, Prompts, Segmenter

if TYPE_CHECKING:
    from samstudio.core.eval_coco import CocoEvalSet

__all__ = ["EvalReport", "EvalSample", "MaskResult"]

DEFAULT_POINTS = (1, 2, 3, 5, 9)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; two empty masks have IoU 1."""
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def farthest_from_boundary(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of `region` ((H, W) bool, non-empty) farthest from its
    boundary, the image border counting as boundary. Ties go to the first pixel in
    row-major order."""
    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def first_point(mask: np.ndarray, mode: str, rng: np.random.Generator) -> tuple[int, int]:
    """The first click on `mask`: "center" (farthest from the boundary) or "random"
    (uniform over the mask's pixels)."""
    if mode == "center":
        return farthest_from_boundary(mask)
    if mode == "random":
        ys, xs = np.nonzero(mask)
        i = int(rng.integers(len(ys)))
        return int(xs[i]), int(ys[i])
    raise ValueError(f"first point mode must be 'center' or 'random', got {mode!r}")


def next_point(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int] | None:
    """Next corrective click (x, y, label) or None when the prediction is exact.

    The click goes to the error-region pixel farthest from the error region's
    boundary; label 1 (foreground) on a false negative, 0 on a false positive.
    """
    fn = gt & ~pred
    fp = pred & ~gt
    error = fn | fp
    if not error.any():
        return None
    x, y = farthest_from_boundary(error)
    return x, y, int(fn[y, x])


@dataclass(frozen=True, eq=False)
class EvalSample:
    """One image to evaluate on: image (H, W, 3) uint8 RGB, masks (N, H, W) bool; name
    (the image file) and mask_ids (one per mask, e.g. COCO annotation ids) name each
    mask in the per-mask rows. Plain (image, masks) pairs are accepted too."""

    image: np.ndarray
    masks: np.ndarray
    name: str = ""
    mask_ids: tuple[int | str, ...] = ()

    def __iter__(self) -> Iterator[np.ndarray]:
        """Unpacks as `image, masks`, as the plain pairs do."""
        return iter((self.image, self.masks))


@dataclass(frozen=True, eq=False)
class MaskClicks:
    """The clicks made so far on one ground-truth mask, as a plain value: all that the
    next click needs (`next_click`), so the protocol can stop after any click and go on
    later, elsewhere or never.

    points: (x, y) pixel of each click; labels: 1 foreground, 0 background; ious: the
    IoU with the ground truth after each click; oracle_iou_1: the best of the 3
    candidates after the first click; prediction: (H, W) bool mask after the last click;
    low_res_logits: (256, 256) float32, its logits (the next click's mask prompt).
    """

    points: tuple[tuple[int, int], ...]
    labels: tuple[int, ...]
    ious: tuple[float, ...]
    oracle_iou_1: float
    prediction: np.ndarray
    low_res_logits: np.ndarray

    def result(self) -> MaskResult:
        return MaskResult(list(self.ious), self.oracle_iou_1)


def first_click(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    gt: np.ndarray,
    first: str = "center",
    rng: np.random.Generator | None = None,
) -> MaskClicks:
    """The first click on `gt` ((H, W) bool, non-empty): one decoder call (3 candidates,
    the top-ranked one kept). `rng` is drawn from only when `first` is "random"."""
    if not gt.any():
        raise ValueError("cannot evaluate an empty ground-truth mask")
    rng = rng if rng is not None else np.random.default_rng(0)
    x, y = first_point(gt, first, rng)
    pred = segmenter.decode(embedding, Prompts(np.array([(x, y)], np.float32), np.array([1])))
    candidates = pred.masks
    oracle = max(iou(c, gt) for c in candidates)
    current = candidates[0]
    return MaskClicks(((x, y),), (1,), (iou(current, gt),), oracle, current, pred.low_res_logits[0])


def next_click(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    gt: np.ndarray,
    clicks: MaskClicks,
    mask_input: bool = True,
) -> MaskClicks:
    """One more corrective click on `gt` after `clicks`: at most one decoder call (none
    when the prediction is already exact: more clicks change nothing)."""
    click = next_point(gt, clicks.prediction)
    if click is None:
        return replace(clicks, ious=(*clicks.ious, clicks.ious[-1]))
    points = (*clicks.points, (click[0], click[1]))
    labels = (*clicks.labels, click[2])
    prompts = Prompts(
        np.array(points, np.float32),
        np.array(labels, np.int32),
        mask_input=clicks.low_res_logits if mask_input else None,
    )
    pred = segmenter.decode(embedding, prompts, multimask=False)
    current = pred.masks[0]
    return replace(
        clicks,
        points=points,
        labels=labels,
        ious=(*clicks.ious, iou(current, gt)),
        prediction=current,
        low_res_logits=pred.low_res_logits[0],
    )


def evaluate_mask(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    gt: np.ndarray,
    n_points: int,
    first: str = "center",
    rng: np.random.Generator | None = None,
    mask_input: bool = True,
) -> MaskResult:
    """Click on `gt` ((H, W) bool, non-empty) up to `n_points` times; IoU after each."""
    clicks = first_click(segmenter, embedding, gt, first, rng)
    while len(clicks.ious) < n_points:
        clicks = next_click(segmenter, embedding, gt, clicks, mask_input)
    return clicks.result()


@dataclass(frozen=True)
class EvalProgress:
    """One step of `iter_evaluate`: after each mask (with `each_click`, also after each
    image's encoder pass and each click).

    images: images finished so far (those with at least one non-empty mask; images
    without one are skipped and not counted). masks: masks evaluated so far.
    total_images: how many samples were given, when `samples` has a length, else None.
    image_done: this step finished an image. mask_done: this step finished a mask.
    clicks: clicks made on the mask in hand (0 after an encoder pass). report: the
    figures, on the last step of a complete run only (then images and masks are the
    report's counts).
    """

    images: int
    masks: int
    total_images: int | None
    image_done: bool = False
    report: EvalReport | None = None
    mask_done: bool = False
    clicks: int = 0


Sample = tuple[np.ndarray, np.ndarray] | EvalSample
"""(image, masks) or an `EvalSample` that also names the image and each mask."""


def iter_evaluate(
    segmenter: Segmenter,
    samples: Iterable[Sample],
    points: Iterable[int] = DEFAULT_POINTS,
    first: str = "center",
    seed: int = 0,
    mask_input: bool = True,
    cancel: Callable[[], bool] | None = None,
    encode: Callable[[np.ndarray], ImageEmbedding] | None = None,
    each_click: bool = False,
) -> Iterator[EvalProgress]:
    """§D.1 over `samples` step by step: pairs of (image (H, W, 3) uint8 RGB, masks
    (N, H, W) bool) or `EvalSample`s, read lazily, one at a time. Empty masks are left
    out and counted in the report's `left_out["empty"]`; when `samples` has a
    `left_out` dict (reason -> count, as `eval_coco.CocoEvalSet`), it is added in after
    the last sample was read.

    `encode(image)` gives an image's embedding for `segmenter` (default
    `segmenter.encode`; the window passes one that goes through its embedding cache).

    Yields an `EvalProgress` after each mask; the last step of a complete run carries the
    `EvalReport`. With `each_click`, it also yields after each image's encoder pass and
    after each click but a mask's last, so that one step is at most one decoder call (or
    one encoder pass): the same calls in the same order, the same figures. To stop early,
    stop iterating (or close the generator), or give `cancel`, polled before each
    image's encoder pass, before each mask and (with `each_click`) before each click:
    when it returns True the generator ends at once, without a report. Bad arguments
    raise ValueError here, before anything is read or encoded.
    """
    pts = tuple(sorted({int(p) for p in points}))
    if not pts or pts[0] < 1:
        raise ValueError(f"numbers of points must be >= 1, got {pts}")
    if first not in ("center", "random"):
        raise ValueError(f"first point mode must be 'center' or 'random', got {first!r}")
    total = len(samples) if isinstance(samples, Sized) else None
    encoder = encode if encode is not None else segmenter.encode
    return _steps(
        segmenter, encoder, samples, pts, first, seed, mask_input, cancel, total, each_click
    )


def _steps(
    segmenter: Segmenter,
    encode: Callable[[np.ndarray], ImageEmbedding],
    samples: Iterable[Sample],
    pts: tuple[int, ...],
    first: str,
    seed: int,
    mask_input: bool,
    cancel: Callable[[], bool] | None,
    total: int | None,
    each_click: bool,
) -> Iterator[EvalProgress]:
    stopped = cancel if cancel is not None else (lambda: False)
    rng = np.random.default_rng(seed)
    per_mask: list[MaskResult] = []
    n_images = n_empty = 0
    for sample in samples:
        if not isinstance(sample, EvalSample):
            sample = EvalSample(*sample)
        image, masks = sample.image, np.asarray(sample.masks, bool)
        ids = sample.mask_ids or tuple(range(1, len(masks) + 1))
        targets = [(m, mid) for m, mid in zip(masks, ids, strict=True) if m.any()]
        n_empty += len(masks) - len(targets)
        if not targets:
            continue
        if stopped():
            return
        emb = encode(image)
        if each_click:
            yield EvalProgress(n_images, len(per_mask), total)
        for i, (gt, mask_id) in enumerate(targets):
            if stopped():
                return
            clicks = first_click(segmenter, emb, gt, first, rng)
            while len(clicks.ious) < pts[-1]:
                if each_click:
                    yield EvalProgress(n_images, len(per_mask), total, clicks=len(clicks.ious))
                    if stopped():
                        return
                clicks = next_click(segmenter, emb, gt, clicks, mask_input)
            result = clicks.result()
            result.image, result.annotation_id = sample.name, mask_id
            result.area = int(gt.sum())
            per_mask.append(result)
            last = i == len(targets) - 1
            n_images += int(last)
            yield EvalProgress(
                n_images, len(per_mask), total, last, mask_done=True, clicks=len(clicks.ious)
            )
    left_out = {"empty": n_empty} if n_empty else {}
    for reason, n in getattr(samples, "left_out", {}).items():
        left_out[reason] = left_out.get(reason, 0) + n
    report = build_report(per_mask, pts, first, mask_input, n_images, left_out)
    yield EvalProgress(n_images, len(per_mask), total, report=report)


def evaluate(
    segmenter: Segmenter,
    samples: Iterable[Sample],
    points: Iterable[int] = DEFAULT_POINTS,
    first: str = "center",
    seed: int = 0,
    mask_input: bool = True,
    progress: Callable[[int, int], None] | None = None,
    encode: Callable[[np.ndarray], ImageEmbedding] | None = None,
) -> EvalReport:
    """§D.1 over `samples`: pairs of (image (H, W, 3) uint8 RGB, masks (N, H, W) bool)
    or `EvalSample`s.

    Each image is encoded once (by `encode`, default `segmenter.encode`); empty masks
    are skipped. `progress(images, masks)` is called after each image.
    (`iter_evaluate` is the same, step by step.)
    """
    steps = iter_evaluate(segmenter, samples, points, first, seed, mask_input, encode=encode)
    for step in steps:
        if step.report is not None:
            return step.report
        if progress is not None and step.image_done:
            progress(step.images, step.masks)
    raise AssertionError("iter_evaluate ended without a report")  # only a cancel does


def synthetic_samples(
    n_images: int, seed_base: int = 10_000_000, size: int = 256
) -> Iterator[EvalSample]:
    """Held-out synthetic scenes (seeds seed_base .. seed_base + n_images - 1), each
    named "synthetic-SEED", its masks numbered from 1."""
    from samstudio.training.synthetic import make_scene

    for i in range(n_images):
        scene = make_scene(seed_base + i, size=size)
        yield EvalSample(scene.image, scene.masks, f"synthetic-{seed_base + i}")


def coco_samples(annotations: str, images_dir: str, min_area: int = 1) -> CocoEvalSet:
    """The masks of a COCO instances file, read as `samstudio convert` reads it; see
    `eval_coco.open_coco_eval` (FormatError naming the file when it cannot be used)."""
    from samstudio.core.eval_coco import open_coco_eval

    return open_coco_eval(annotations, images_dir, min_area)
