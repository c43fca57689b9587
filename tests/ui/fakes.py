"""A FakeSegmenter with geometric masks, so that UI tests run without weights.

- One point (ambiguous): three squares centred on it, half sizes 12, 30 and 60 px,
  predicted IoUs 0.93, 0.81, 0.64 (best first), so the smallest is preselected.
- Several points and/or a box: one mask: the box filled, plus a 30 px square around
  each foreground point, minus a 12 px square around each background point.
- low_res_logits of candidate i are filled with the number 10*request + i, so a test
  can tell which candidate's logits came back as the next mask input (§A loop).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from samstudio.inference.preprocess import Preprocessing, resized_shape
from samstudio.inference.types import (
    BatchPrediction,
    ImageEmbedding,
    ModelInfo,
    Prediction,
    Prompts,
)

HALF_SIZES = (12, 30, 60)
IOUS = (0.93, 0.81, 0.64)
STABILITY = (0.97, 0.95, 0.90)


@dataclass(frozen=True, eq=False)
class FakePrediction(Prediction):
    """A Prediction whose masks are exact (no low-res upscaling)."""

    exact: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), bool))

    @property  # type: ignore[override]
    def masks(self) -> np.ndarray:
        return self.exact

    def mask(self, index: int = 0) -> np.ndarray:
        return self.exact[index]


def square(shape: tuple[int, int], x: float, y: float, half: int) -> np.ndarray:
    h, w = shape
    m = np.zeros(shape, bool)
    m[
        max(0, int(y) - half) : min(h, int(y) + half), max(0, int(x) - half) : min(w, int(x) + half)
    ] = True
    return m


class FakeSegmenter:
    """Implements the Segmenter protocol with fixed geometry and optional delays."""

    def __init__(
        self, encode_seconds: float = 0.0, decode_seconds: float = 0.0, model_id: str = "fake"
    ) -> None:
        self.encode_seconds = encode_seconds
        self.decode_seconds = decode_seconds
        self._info = ModelInfo(model_id, "fake", "fake", "cpu", 1024, Preprocessing().id, "tests")
        self.encoded: list[tuple[int, int]] = []
        self.decoded: list[Prompts] = []
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self._info

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        if self.encode_seconds:
            time.sleep(self.encode_seconds)  # sleeps release the GIL, like a real encoder
        h, w = image.shape[:2]
        with self._lock:
            self.encoded.append((h, w))
        return ImageEmbedding(
            features=np.full((4, 8, 8), float(image.mean()), np.float32),
            original_size=(h, w),
            input_size=resized_shape(h, w, 1024),
            model_id=self._info.model_id,
            preprocessing_id=self._info.preprocessing_id,
        )

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        if self.decode_seconds:
            time.sleep(self.decode_seconds)
        with self._lock:
            self.decoded.append(prompts)
            n_call = len(self.decoded)
        shape = embedding.original_size
        if prompts.is_ambiguous and multimask:
            x, y = prompts.points[0]
            masks = np.stack([square(shape, x, y, h) for h in HALF_SIZES])
            ious, stab = np.asarray(IOUS, np.float32), np.asarray(STABILITY, np.float32)
        else:
            m = np.zeros(shape, bool)
            if prompts.box is not None:
                x0, y0, x1, y1 = prompts.box.astype(int)
                m[y0:y1, x0:x1] = True
            for (x, y), label in zip(prompts.points, prompts.labels):
                if label == 1:
                    m |= square(shape, x, y, 30)
            for (x, y), label in zip(prompts.points, prompts.labels):
                if label == 0:
                    m &= ~square(shape, x, y, 12)
            masks = m[None]
            ious, stab = np.asarray([0.9], np.float32), np.asarray([0.96], np.float32)
        n = len(masks)
        logits = np.stack([np.full((256, 256), 10.0 * n_call + i, np.float32) for i in range(n)])
        return FakePrediction(
            low_res_logits=logits,
            iou_predictions=ious,
            stability_scores=stab,
            original_size=shape,
            input_size=embedding.input_size,
            image_size=1024,
            exact=masks,
        )

    def decode_points_batch(
        self, embedding: ImageEmbedding, points: np.ndarray, multimask: bool = True
    ) -> BatchPrediction:
        b = len(points)
        m = 3 if multimask else 1
        return BatchPrediction(
            points=np.asarray(points, np.float32),
            low_res_logits=np.zeros((b, m, 256, 256), np.float32),
            iou_predictions=np.zeros((b, m), np.float32),
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=1024,
        )


class BrokenSegmenterFactory:
    """A model factory that fails the way a bad checkpoint does."""

    def __init__(
        self, message: str = "model.pth: not a SAM checkpoint (no image_encoder keys)"
    ) -> None:
        self.message = message

    def __call__(self) -> FakeSegmenter:
        from samstudio.inference.errors import ModelLoadError

        raise ModelLoadError(self.message)


class GatedSegmenter(FakeSegmenter):
    """A FakeSegmenter whose decode waits until the test opens `gate`, so a test can hold
    a decode in flight while it acts in the window (races made deterministic).

    `entered` is set when a decode starts; `predictions` are the results it returned, so
    a test can tell which model a candidate set came from. `gate` starts open unless
    `held`; a decode waits at most `max_wait_s` (a failing test must not hang the run).
    """

    def __init__(self, model_id: str, held: bool = True, max_wait_s: float = 30.0) -> None:
        super().__init__(model_id=model_id)
        self.gate = threading.Event()
        if not held:
            self.gate.set()
        self.entered = threading.Event()
        self.max_wait_s = max_wait_s
        self.predictions: list[Prediction] = []

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        self.entered.set()
        self.gate.wait(self.max_wait_s)
        pred = super().decode(embedding, prompts, multimask)
        with self._lock:
            self.predictions.append(pred)
        return pred
