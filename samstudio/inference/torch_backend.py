"""The PyTorch backend: Meta's `segment_anything` modules behind the `Segmenter` protocol.

`TorchSegmenter` reproduces `segment_anything.SamPredictor` (same preprocessing,
same prompt encoding, same mask decoder) but keeps no per-image state: `encode`
returns an `ImageEmbedding` value and `decode` is a function of (embedding, prompts).

Speed (a click should cost one decoder pass, not four full-size upscales): only the
returned candidates are kept and `Prediction.mask(i)` upscales one mask; the decoder
itself is `torch_decoder.FastMaskDecoder`, the same function as Meta's mask decoder
with the prompt-independent work cached per embedding and the attention projections
folded onto the few prompt tokens (results equal Meta's to float rounding).

Threads: PyTorch's default intra-op thread count (one per physical core) is kept. It
is what the reference gets too, and changing it would be a process-wide side effect
of merely creating a model; set `torch.set_num_threads` in the application if needed.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from samstudio.inference.errors import InferenceError
from samstudio.inference.preprocess import (
    Preprocessing,
    check_prompts_on_image,
    image_stability_scores,
    prepare_input,
    transform_boxes,
    transform_coords,
)
from samstudio.inference.torch_decoder import FastMaskDecoder, ImageState
from samstudio.inference.types import (
    BatchPrediction,
    ImageEmbedding,
    ModelInfo,
    Prediction,
    Prompts,
)

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam


def default_device() -> str:
    """ "cuda" when a CUDA device is usable, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _preprocessing_of(sam: Sam) -> Preprocessing:
    """The numpy preprocessing equivalent to `sam.preprocess` after `ResizeLongestSide`."""
    mean = tuple(round(float(v), 4) for v in sam.pixel_mean.flatten().tolist())
    std = tuple(round(float(v), 4) for v in sam.pixel_std.flatten().tolist())
    if len(mean) != 3 or len(std) != 3:
        raise InferenceError(f"model has {len(mean)} pixel means; SAM expects RGB (3)")
    return Preprocessing(
        image_size=int(sam.image_encoder.img_size),
        pixel_mean=(mean[0], mean[1], mean[2]),
        pixel_std=(std[0], std[1], std[2]),
    )


class TorchSegmenter:
    """A SAM model run with PyTorch (CPU or CUDA). Implements `Segmenter`.

    sam: a `segment_anything` `Sam` module (any image size; moved to `device`, eval mode).
    model_id: identifies the weights (goes into embedding cache keys).
    source: the file the model came from (shown to users).
    device: "cpu", "cuda", "cuda:1"...; None picks CUDA when available, else CPU.
    """

    def __init__(
        self,
        sam: Sam,
        model_id: str,
        source: str = "",
        device: str | None = None,
        architecture: str = "",
    ) -> None:
        import torch

        from samstudio.inference.torch_encoder import fast_encoder

        self._torch_device = torch.device(device or default_device())
        self._sam = sam.to(self._torch_device).eval()
        self._prep = _preprocessing_of(sam)
        self._encode_lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[ImageEmbedding, ImageState] = (
            weakref.WeakKeyDictionary()
        )
        self._states_lock = threading.Lock()
        self._decoder = FastMaskDecoder(self._sam)
        # On the CPU, global attention in chunks (`torch_encoder`, same bits, ~1.8x
        # faster for vit_b here); on CUDA Meta's encoder as it is (measured there).
        self._image_encoder = (
            fast_encoder(self._sam.image_encoder)
            if self._torch_device.type == "cpu"
            else self._sam.image_encoder
        )
        self._embedding_hw = self._decoder.embedding_hw
        self._info = ModelInfo(
            model_id=model_id,
            architecture=architecture or model_id,
            backend="torch",
            device=str(self._torch_device),
            image_size=self._prep.image_size,
            preprocessing_id=self._prep.id,
            source=source,
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        architecture: str | None = None,
        device: str | None = None,
    ) -> TorchSegmenter:
        """Load a `.pth` checkpoint (see `checkpoints.load_sam_checkpoint`).

        model_id is "<architecture>-<first 12 hex of the file's SHA-256>", with "sam_"
        before official architectures, e.g. "sam_vit_b-01ec64d29a2f".
        Raises ModelLoadError naming the file when it cannot be used.
        """
        from samstudio.inference.checkpoints import (
            ARCHITECTURE_NAMES,
            file_sha256,
            load_sam_checkpoint,
        )

        sam, arch = load_sam_checkpoint(path, architecture)
        digest = file_sha256(path)[:12]
        prefix = f"sam_{arch}" if arch in ARCHITECTURE_NAMES else arch
        return cls(
            sam, f"{prefix}-{digest}", source=str(Path(path)), device=device, architecture=arch
        )

    # ------------------------------------------------------------------ protocol

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def preprocessing(self) -> Preprocessing:
        return self._prep

    @property
    def sam(self) -> Sam:
        """The underlying `segment_anything` module (for export and tests)."""
        return self._sam

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """image: (H, W, 3) uint8 RGB as displayed -> ImageEmbedding with (256, 64, 64)
        float32 features for official SAM. Preprocessing is numpy (PIL bilinear resize
        of the long side, ImageNet normalisation, zero padding bottom/right)."""
        import torch

        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InferenceError(
                f"encode expects an (H, W, 3) uint8 RGB image, got shape {image.shape} "
                f"dtype {image.dtype}"
            )
        x, input_size = prepare_input(image, self._prep)
        with self._encode_lock, torch.inference_mode():
            features = self._image_encoder(torch.from_numpy(x).to(self._torch_device))
            features_np = features[0].float().cpu().numpy()
        return ImageEmbedding(
            features=features_np,
            original_size=(int(image.shape[0]), int(image.shape[1])),
            input_size=input_size,
            model_id=self._info.model_id,
            preprocessing_id=self._prep.id,
        )

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        """Masks for `prompts` on `embedding` (see the `Segmenter` protocol).

        With `multimask` and a single point (prompts.is_ambiguous), the 3 multimask
        outputs (tokens 1..3) ranked by predicted IoU, best first; otherwise the single
        output of token 0. The logits of each candidate equal those SamPredictor.predict
        gives for the same prompts (to float rounding).

        stability_scores are computed on the low-res logits inside the un-padded region
        (paper §B, offset 1.0), not on the full-size masks as Meta's automatic mask
        generator does: that would need every candidate upscaled. The two agree to
        within the resampling of the mask boundary.

        Raises PromptError, naming the image size, for a point outside the image or a
        box with no part on it (`preprocess.check_prompts_on_image`).
        """
        import torch

        state = self._state(embedding)
        check_prompts_on_image(prompts, embedding.original_size)
        coords, labels, box, mask_input = self._prompt_tensors(embedding, prompts)
        tokens = (1, 2, 3) if (multimask and prompts.is_ambiguous) else (0,)
        with torch.inference_mode():
            low_res, iou = self._decode_tensors(state, coords, labels, box, mask_input, tokens)
        low_res_np = low_res[0].float().cpu().numpy()
        iou_np = iou[0].float().cpu().numpy()
        if len(tokens) > 1:
            order = np.argsort(-iou_np, kind="stable")
            low_res_np, iou_np = low_res_np[order], iou_np[order]
        return Prediction(
            low_res_logits=np.ascontiguousarray(low_res_np, dtype=np.float32),
            iou_predictions=iou_np.astype(np.float32),
            stability_scores=image_stability_scores(
                low_res_np, embedding.input_size, self._prep.image_size
            ),
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=self._prep.image_size,
            mask_threshold=float(self._sam.mask_threshold),
        )

    def decode_points_batch(
        self,
        embedding: ImageEmbedding,
        points: np.ndarray,
        multimask: bool = True,
        batch_size: int = 64,
    ) -> BatchPrediction:
        """One foreground point per prompt, decoded `batch_size` prompts at a time.

        points: (B, 2) XY original frame. Returns low_res_logits (B, M, 256, 256) and
        iou_predictions (B, M) with M = 3 (tokens 1..3 in token order, as Meta's
        automatic mask generator uses them) when multimask, else M = 1 (token 0).
        """
        import torch

        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        if not np.isfinite(pts).all():
            raise InferenceError("batch points must be finite numbers")
        if batch_size < 1:
            raise InferenceError(f"batch_size must be at least 1, got {batch_size}")
        state = self._state(embedding)
        tokens = (1, 2, 3) if multimask else (0,)
        size = self._prep.image_size
        low_res_parts: list[np.ndarray] = []
        iou_parts: list[np.ndarray] = []
        for start in range(0, len(pts), batch_size):
            chunk = transform_coords(pts[start : start + batch_size], embedding.original_size, size)
            coords = torch.from_numpy(chunk[:, None, :]).to(self._torch_device)
            labels = torch.ones((len(chunk), 1), dtype=torch.int, device=self._torch_device)
            with torch.inference_mode():
                low_res, iou = self._decode_tensors(state, coords, labels, None, None, tokens)
            low_res_parts.append(low_res.float().cpu().numpy())
            iou_parts.append(iou.float().cpu().numpy())
        m = len(tokens)
        h, w = (self._embedding_hw[0] * 4, self._embedding_hw[1] * 4)
        return BatchPrediction(
            points=pts,
            low_res_logits=(
                np.concatenate(low_res_parts)
                if low_res_parts
                else np.zeros((0, m, h, w), np.float32)
            ),
            iou_predictions=(
                np.concatenate(iou_parts) if iou_parts else np.zeros((0, m), np.float32)
            ),
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=size,
        )

    # ------------------------------------------------------------------ internals

    def _state(self, embedding: ImageEmbedding) -> ImageState:
        """The per-embedding decoder state, created on first use (weakly keyed)."""
        import torch

        if embedding.model_id != self._info.model_id:
            raise InferenceError(
                f"this embedding was computed by model {embedding.model_id!r}; "
                f"it cannot be decoded by {self._info.model_id!r}"
            )
        if embedding.preprocessing_id != self._prep.id:
            raise InferenceError(
                f"this embedding used preprocessing {embedding.preprocessing_id!r}, "
                f"the model expects {self._prep.id!r}"
            )
        with self._states_lock:
            state = self._states.get(embedding)
            if state is None:
                features = torch.from_numpy(np.ascontiguousarray(embedding.features, np.float32))
                with torch.inference_mode():
                    state = self._decoder.image_state(features[None].to(self._torch_device))
                self._states[embedding] = state
        return state

    def _prompt_tensors(
        self, embedding: ImageEmbedding, prompts: Prompts
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Prompts -> (coords (1,N,2), labels (1,N), box (1,4), mask (1,1,s,s)) in the
        model-input frame, as SamPredictor.predict builds them."""
        import torch

        dev = self._torch_device
        size = self._prep.image_size
        coords = labels = box = mask = None
        if len(prompts.points):
            xy = transform_coords(prompts.points, embedding.original_size, size)
            coords = torch.as_tensor(xy, dtype=torch.float, device=dev)[None]
            labels = torch.as_tensor(prompts.labels, dtype=torch.int, device=dev)[None]
        if prompts.box is not None:
            b = transform_boxes(prompts.box, embedding.original_size, size)
            box = torch.as_tensor(b, dtype=torch.float, device=dev)[None]
        if prompts.mask_input is not None:
            expected = tuple(4 * s for s in self._embedding_hw)
            if prompts.mask_input.shape != expected:
                from samstudio.inference.errors import PromptError

                raise PromptError(
                    f"mask input must be {expected[0]}x{expected[1]} low-res logits, "
                    f"got {prompts.mask_input.shape}"
                )
            mask = torch.as_tensor(prompts.mask_input, dtype=torch.float, device=dev)[None, None]
        return coords, labels, box, mask

    def _decode_tensors(
        self,
        state: ImageState,
        coords: torch.Tensor | None,
        labels: torch.Tensor | None,
        box: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        tokens: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder. Returns (B, len(tokens), 4h, 4w) logits and
        (B, len(tokens)) IoU predictions for the requested output tokens."""
        points = (coords, labels) if coords is not None and labels is not None else None
        return self._decoder.run(state, points, box, mask_input, tokens)
