"""Generated scenes and a geometric `ShapeSegmenter` for automatic mask generation tests.

A scene is a picture of solid-coloured shapes on a background. `ShapeSegmenter` reads
the colours back from the image it encodes (so crops work like a real model), and for a
point prompt returns three candidate masks as low-resolution logits, as SAM does:
0: the colour region under the point (predicted IoU 0.95),
1: that region grown by a few pixels (predicted IoU 0.60: dropped by the IoU filter),
2: the whole image (predicted IoU 0.92: dropped by the 95%-of-the-image filter).
Logits are +-20 with a soft edge, so stability scores are high. Needs no torch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from samstudio.inference.preprocess import Preprocessing, resized_shape
from samstudio.inference.types import BatchPrediction, ImageEmbedding, ModelInfo

BACKGROUND = (90, 90, 90)


@dataclass(frozen=True)
class Scene:
    """image: (H, W, 3) uint8; objects: (N, H, W) bool ground-truth masks."""

    image: np.ndarray
    objects: np.ndarray


def make_scene(height: int = 240, width: int = 320, n_objects: int = 6, seed: int = 0) -> Scene:
    """Non-overlapping discs and rectangles of distinct colours on a grey background."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    taken = np.zeros((height, width), bool)
    objects: list[np.ndarray] = []
    palette = [
        (220, 40, 30),
        (30, 200, 60),
        (40, 60, 220),
        (240, 220, 40),
        (200, 40, 200),
        (40, 210, 210),
        (250, 140, 20),
        (120, 60, 20),
        (250, 250, 250),
        (10, 10, 10),
    ]
    tries = 0
    short = min(height, width)
    while len(objects) < n_objects and tries < 500:
        tries += 1
        size = int(rng.integers(short // 10, short // 4))
        cx = int(rng.integers(size + 4, width - size - 4))
        cy = int(rng.integers(size + 4, height - size - 4))
        m = np.zeros((height, width), np.uint8)
        if rng.random() < 0.5:
            cv2.circle(m, (cx, cy), size, 1, -1)
        else:
            cv2.rectangle(m, (cx - size, cy - size // 2), (cx + size, cy + size // 2), 1, -1)
        mask = m.astype(bool)
        grown = cv2.dilate(m, np.ones((9, 9), np.uint8)).astype(bool)
        if (grown & taken).any():
            continue
        taken |= mask
        image[mask] = palette[len(objects) % len(palette)]
        objects.append(mask)
    return Scene(image=image, objects=np.array(objects, dtype=bool).reshape(-1, height, width))


class ShapeSegmenter:
    """Implements `Segmenter` with colour regions; counts encoder and decoder calls."""

    IOUS = (0.95, 0.60, 0.92)

    def __init__(self, image_size: int = 1024, low_res: int = 256) -> None:
        self.image_size = image_size
        self.low_res = low_res
        self._info = ModelInfo(
            "shapes", "shapes", "fake", "cpu", image_size, Preprocessing(image_size).id, "tests"
        )
        self.encoded: list[tuple[int, int]] = []
        self.decoded_points = 0
        self.decode_calls = 0
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self._info

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        h, w = image.shape[:2]
        with self._lock:
            self.encoded.append((h, w))
        codes = (
            image[..., 0].astype(np.int64) * 65536
            + image[..., 1].astype(np.int64) * 256
            + image[..., 2]
        )
        labels = np.zeros((h, w), np.int32)
        next_label = 1
        for code in np.unique(codes):
            n, comp = cv2.connectedComponents((codes == code).astype(np.uint8), connectivity=8)
            labels[comp > 0] = comp[comp > 0] + next_label - 1
            next_label += n - 1
        return ImageEmbedding(
            features=labels[None].astype(np.float32),
            original_size=(h, w),
            input_size=resized_shape(h, w, self.image_size),
            model_id="shapes",
            preprocessing_id=self._info.preprocessing_id,
        )

    def decode(self, embedding: ImageEmbedding, prompts: object, multimask: bool = True) -> object:
        raise NotImplementedError("automatic mask generation only uses decode_points_batch")

    def _logits(self, mask: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
        h_in, w_in = input_size
        square = np.zeros((self.image_size, self.image_size), np.float32)
        square[:h_in, :w_in] = cv2.resize(
            mask.astype(np.float32), (w_in, h_in), interpolation=cv2.INTER_LINEAR
        )
        small = cv2.resize(square, (self.low_res, self.low_res), interpolation=cv2.INTER_AREA)
        return (small - 0.5) * 40.0

    def decode_points_batch(
        self, embedding: ImageEmbedding, points: np.ndarray, multimask: bool = True
    ) -> BatchPrediction:
        labels = embedding.features[0].astype(np.int32)
        h, w = labels.shape
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        with self._lock:
            self.decoded_points += len(pts)
            self.decode_calls += 1
        out = np.empty((len(pts), 3, self.low_res, self.low_res), np.float32)
        for i, (x, y) in enumerate(pts):
            region = labels == labels[min(int(y), h - 1), min(int(x), w - 1)]
            grown = cv2.dilate(region.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
            whole = np.ones_like(region)
            for j, m in enumerate((region, grown, whole)):
                out[i, j] = self._logits(m, embedding.input_size)
        ious = np.tile(np.asarray(self.IOUS, np.float32), (len(pts), 1))
        return BatchPrediction(
            points=pts,
            low_res_logits=out,
            iou_predictions=ious,
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=self.image_size,
        )
