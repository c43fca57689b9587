"""Image and coordinate transforms of SAM, in numpy (no torch needed).

Matches Meta's `ResizeLongestSide` and `Sam.preprocess` / `Sam.postprocess_masks`:
the image is resized with PIL bilinear so that its long side equals the model's
input size, normalised with ImageNet mean/std (0-255 scale), and zero-padded at the
bottom and right to a square. Point and box coordinates are scaled by the same
factors. This module is the one owner of those transforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from samstudio.inference.errors import InferenceError, PromptError

if TYPE_CHECKING:
    from samstudio.inference.types import Prompts

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes model input. `id` goes into embedding cache keys."""

    image_size: int = 1024
    pixel_mean: tuple[float, float, float] = PIXEL_MEAN
    pixel_std: tuple[float, float, float] = PIXEL_STD

    @property
    def id(self) -> str:
        imagenet = self.pixel_mean == PIXEL_MEAN and self.pixel_std == PIXEL_STD
        norm = (
            "imagenet" if imagenet else "custom" + str(abs(hash((self.pixel_mean, self.pixel_std))))
        )
        return f"rls{self.image_size}-pilbilinear-{norm}-padbr"


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling so that max(h, w) == long_side (Meta's rounding)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_image(image: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 with PIL bilinear, as ResizeLongestSide does."""
    h, w = resized_shape(image.shape[0], image.shape[1], long_side)
    if (h, w) == image.shape[:2]:
        return np.ascontiguousarray(image)
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def prepare_input(image: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W, 3) uint8 RGB -> ((1, 3, S, S) float32 normalised padded input, (h, w))."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if min(resized_shape(image.shape[0], image.shape[1], prep.image_size)) < 1:
        raise InferenceError(
            f"a {image.shape[1]}x{image.shape[0]} image is too thin for this model: scaled "
            f"to a long side of {prep.image_size} pixels its short side would be 0 pixels"
        )
    resized = resize_image(image, prep.image_size)
    h, w = resized.shape[:2]
    x = (resized.astype(np.float32) - np.asarray(prep.pixel_mean, np.float32)) / np.asarray(
        prep.pixel_std, np.float32
    )
    out = np.zeros((1, 3, prep.image_size, prep.image_size), np.float32)
    out[0, :, :h, :w] = x.transpose(2, 0, 1)
    return out, (h, w)


def check_prompts_on_image(prompts: Prompts, original_size: tuple[int, int]) -> None:
    """PromptError naming the image size unless every point lies on the image and the
    box, if any, overlaps it.

    original_size: (H, W) of the image as displayed. Points (x, y) are pixels of that
    frame and must lie in [0, W] x [0, H] (the edges included). A box (XYXY) may reach
    past the image, as one dragged over its edge does, but must overlap it: a box beside
    the image, or one that only touches its edge, encloses no pixel of it. A mask input
    alone has no coordinates to check. Meta's predictor decodes such prompts into empty
    masks without a word; `decode` of every backend calls this first (automatic mask
    generation, `decode_points_batch`, does not: its grid is made on the image).
    """
    h, w = original_size
    image = f"the image ({w}x{h} pixels: X from 0 to {w}, Y from 0 to {h})"
    points = prompts.points
    if len(points):
        x, y = points[:, 0], points[:, 1]
        outside = (x < 0) | (x > w) | (y < 0) | (y > h)
        if outside.any():
            px, py = points[outside][0]
            others = int(outside.sum()) - 1
            more = f" (and {others} more)" if others else ""
            raise PromptError(f"point {px:g},{py:g}{more} is outside {image}")
    if prompts.box is not None:
        x0, y0, x1, y1 = (float(v) for v in prompts.box)
        if x0 >= w or x1 <= 0 or y0 >= h or y1 <= 0:
            raise PromptError(f"box {x0:g},{y0:g},{x1:g},{y1:g} has no part on {image}")


def transform_coords(
    coords: np.ndarray, original_size: tuple[int, int], long_side: int
) -> np.ndarray:
    """(..., 2) XY in the original frame -> XY in the resized model-input frame."""
    old_h, old_w = original_size
    new_h, new_w = resized_shape(old_h, old_w, long_side)
    out = np.array(coords, dtype=np.float32, copy=True)
    out[..., 0] = out[..., 0] * (new_w / old_w)
    out[..., 1] = out[..., 1] * (new_h / old_h)
    return out


def transform_boxes(
    boxes: np.ndarray, original_size: tuple[int, int], long_side: int
) -> np.ndarray:
    """(..., 4) XYXY original frame -> model-input frame."""
    b = np.asarray(boxes, dtype=np.float32)
    return transform_coords(b.reshape(-1, 2, 2), original_size, long_side).reshape(b.shape)


def upscale_logits(
    low_res: np.ndarray,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    image_size: int,
) -> np.ndarray:
    """(N, s, s) low-res logits -> (N, H, W) float32 logits in the original frame.

    As `Sam.postprocess_masks`: bilinear (half-pixel centres) to the padded square
    input, crop the padding, bilinear to the original size. OpenCV's INTER_LINEAR
    uses the same sampling as torch's `interpolate(..., align_corners=False)` for
    upscaling; differences are float rounding only.

    The full-size result is written by OpenCV straight into the output array: a
    separate result copied into place cost 4x the resize itself (2250x1500 image).
    """
    h_in, w_in = input_size
    h, w = original_size
    out = np.empty((low_res.shape[0], h, w), np.float32)
    for i, lr in enumerate(np.asarray(low_res, np.float32)):
        square = cv2.resize(lr, (image_size, image_size), interpolation=cv2.INTER_LINEAR)
        cropped = square[:h_in, :w_in]
        written = cv2.resize(cropped, (w, h), dst=out[i], interpolation=cv2.INTER_LINEAR)
        if not np.shares_memory(written, out):  # OpenCV chose to allocate: copy
            out[i] = written
    return out


def stability_scores(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> np.ndarray:
    """Paper §B: IoU of the masks thresholded at threshold+offset and threshold-offset.

    logits: (N, ...) float. Returns (N,) float32. Two empty masks have IoU 1 by
    definition here (Meta's code divides by zero and gives NaN).
    """
    flat = np.asarray(logits).reshape(len(logits), -1)
    inter = (flat > threshold + offset).sum(axis=1).astype(np.float64)
    union = (flat > threshold - offset).sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return scores.astype(np.float32)


def image_stability_scores(
    low_res: np.ndarray,
    input_size: tuple[int, int],
    image_size: int,
    threshold: float = 0.0,
    offset: float = 1.0,
) -> np.ndarray:
    """Stability scores of (N, s, s) low-res logits over the cells that cover the image,
    not the zero padding of the square model input (input_size: resized (h, w);
    image_size: the model's square input side). Returns (N,) float32."""
    s = low_res.shape[-1]
    h = max(1, min(s, math.ceil(input_size[0] * s / image_size)))
    w = max(1, min(s, math.ceil(input_size[1] * s / image_size)))
    return stability_scores(low_res[:, :h, :w], threshold, offset)
