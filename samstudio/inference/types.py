"""Values that cross the inference boundary: embeddings, prompts, predictions.

Coordinate conventions (as in Meta's segment-anything):
- Points are (x, y) in pixels of the image *as displayed* (EXIF orientation applied),
  the original-resolution frame. Boxes are XYXY in the same frame.
- Arrays of masks are (N, H, W) bool in the original frame; low-resolution logits
  are (N, 256, 256) float32 in the padded model-input frame (as SAM returns them).

An `ImageEmbedding` is a value: it carries everything `decode` needs, so decoding is
a stateless function of (embedding, prompts) and any thread may decode any embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np

from samstudio.inference.errors import PromptError


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is and where it runs (shown in the status bar)."""

    model_id: str  # e.g. "sam_vit_b" or "samstudio_demo_v1" or a checkpoint hash id
    architecture: str  # "vit_b", "vit_l", "vit_h", or the demo model's name
    backend: str  # "torch" or "onnxruntime"
    device: str  # "cpu", "cuda:0", "CPUExecutionProvider", "CUDAExecutionProvider"
    image_size: int  # the long side of the model input (1024 for official SAM)
    preprocessing_id: str
    source: str = ""  # file or directory the model came from
    # What the user should know about how the model was loaded, one sentence each,
    # e.g. an optional file of the export that is missing and was skipped.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """The image encoder's output for one image, with what is needed to decode it.

    features: (C, h, w) float32, C=256 and h=w=64 for official SAM.
    original_size: (H, W) of the image as displayed.
    input_size: (h, w) of the resized image before padding to the model's square input.
    """

    features: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_id: str
    preprocessing_id: str


@dataclass(frozen=True, eq=False)
class Prompts:
    """Any mix of points, one box and a previous low-resolution mask.

    points: (N, 2) float32 XY pixels, original frame; labels: (N,) int32, 1 foreground,
    0 background. box: (4,) float32 XYXY or None. mask_input: (256, 256) float32 low-res
    logits of a previous prediction (the interactive loop of the paper's §A) or None.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if len(points) != len(labels):
            raise PromptError(f"{len(points)} points but {len(labels)} labels")
        if not np.isin(labels, (0, 1)).all():
            raise PromptError(
                f"point labels must be 1 (foreground) or 0 (background), got {labels}"
            )
        if not np.isfinite(points).all():
            raise PromptError("point coordinates must be finite numbers")
        box = self.box
        if box is not None:
            box = np.asarray(box, dtype=np.float32).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all():
                raise PromptError(f"a box is 4 finite numbers X0,Y0,X1,Y1, got {self.box!r}")
            if box[2] < box[0] or box[3] < box[1]:
                raise PromptError(f"box corners must be top-left then bottom-right, got {box}")
        mask_input = self.mask_input
        if mask_input is not None:
            mask_input = np.asarray(mask_input, dtype=np.float32)
            if mask_input.ndim == 3 and mask_input.shape[0] == 1:
                mask_input = mask_input[0]
            if mask_input.ndim != 2 or mask_input.shape[0] != mask_input.shape[1]:
                raise PromptError(
                    f"mask input must be square low-res logits (256x256), got {mask_input.shape}"
                )
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "mask_input", mask_input)
        if len(points) == 0 and box is None and mask_input is None:
            raise PromptError("at least one point, a box or a mask input is needed")

    @property
    def is_ambiguous(self) -> bool:
        """True for a single point and nothing else: SAM then gives 3 candidate masks."""
        return len(self.points) == 1 and self.box is None

    @property
    def count(self) -> int:
        """Number of prompt elements (points plus the box)."""
        return len(self.points) + (0 if self.box is None else 1)


@dataclass(frozen=True, eq=False)
class Prediction:
    """Masks for one set of prompts, best first (ranked by predicted IoU).

    low_res_logits: (N, 256, 256) float32; iou_predictions: (N,) float32;
    stability_scores: (N,) float32 (paper §B, offset 1.0 on the logits).
    `masks` (N, H, W) bool in the original frame is computed on first access;
    `mask(i)` upscales only candidate i (what a click needs).
    """

    low_res_logits: np.ndarray
    iou_predictions: np.ndarray
    stability_scores: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    image_size: int
    mask_threshold: float = 0.0

    def mask_logits(self, index: int) -> np.ndarray:
        """(H, W) float32 logits of candidate `index` upscaled to the original frame."""
        from samstudio.inference.preprocess import upscale_logits

        return upscale_logits(
            self.low_res_logits[index : index + 1],
            self.input_size,
            self.original_size,
            self.image_size,
        )[0]

    def mask(self, index: int = 0) -> np.ndarray:
        """(H, W) bool mask of candidate `index` in the original frame."""
        return self.mask_logits(index) > self.mask_threshold

    @cached_property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool masks of all candidates in the original frame."""
        from samstudio.inference.preprocess import upscale_logits

        logits = upscale_logits(
            self.low_res_logits, self.input_size, self.original_size, self.image_size
        )
        return logits > self.mask_threshold

    def __len__(self) -> int:
        return int(self.iou_predictions.shape[0])


@dataclass(frozen=True, eq=False)
class BatchPrediction:
    """Decoder output for B single-point prompts on one embedding (for AMG).

    points: (B, 2) XY original frame; low_res_logits: (B, M, 256, 256) float32;
    iou_predictions: (B, M) float32, M = 3 with multimask output, else 1.
    Masks are *not* upscaled: automatic mask generation filters first.
    """

    points: np.ndarray
    low_res_logits: np.ndarray
    iou_predictions: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    image_size: int


@runtime_checkable
class Segmenter(Protocol):
    """A promptable segmentation model: encode once per image, decode per prompt.

    Implementations must be safe to call `decode` concurrently on different
    embeddings; `encode` may hold the model's own lock.
    """

    @property
    def info(self) -> ModelInfo: ...

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """image: (H, W, 3) uint8 RGB, as displayed. Returns the embedding value."""
        ...

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        """Masks for `prompts`. With multimask and a single ambiguous prompt, 3 masks
        ranked by predicted IoU; otherwise the single mask of SAM's 4th output token
        (paper §A). Raises PromptError for a point outside the image or a box with no
        part on it (`preprocess.check_prompts_on_image`, original_size of `embedding`)."""
        ...

    def decode_points_batch(
        self, embedding: ImageEmbedding, points: np.ndarray, multimask: bool = True
    ) -> BatchPrediction:
        """One foreground point per prompt, B prompts at once (automatic mask generation).
        points: (B, 2) float32 XY original frame."""
        ...
