"""The PyTorch backend: Meta's `segment_anything` modules behind the `Segmenter` protocol.

`TorchSegmenter` reproduces `segment_anything.SamPredictor` (same preprocessing,
same prompt encoding, same mask decoder) but keeps no per-image state: `encode`
returns an `ImageEmbedding` value and `decode` is a function of (embedding, prompts).

Speed (a click should cost one decoder pass, not four full-size upscales):
- only the returned candidates are kept, and `Prediction.mask(i)` upscales one mask;
- the dense positional encoding of the image grid is computed once per model;
- the work of the decoder's first layer that depends only on the image (the key and
  value projections of the image tokens, and the query projection of the image tokens
  in the image-to-token attention) is computed once per embedding and reused by every
  prompt without a mask input. These are the same operations on the same numbers as
  Meta's decoder, so results match it to float rounding.

Threads: PyTorch's default intra-op thread count (one per physical core) is kept;
it is the fastest setting measured for both the encoder and the decoder here, and
changing it is a process-wide side effect a library should not have.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from samstudio.inference.errors import InferenceError
from samstudio.inference.preprocess import (
    Preprocessing,
    prepare_input,
    stability_scores,
    transform_boxes,
    transform_coords,
)
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


@dataclass
class _ImageState:
    """What the decoder reuses for one embedding: its features on the device and the
    prompt-independent projections of the first decoder layer (filled lazily)."""

    features: torch.Tensor  # (1, C, h, w)
    image_tokens: torch.Tensor  # (1, h*w, C): features flattened, + no-mask dense embedding
    layer0_k: torch.Tensor | None = None  # (1, heads, h*w, c) token->image keys
    layer0_v: torch.Tensor | None = None  # (1, heads, h*w, c) token->image values
    layer0_q: torch.Tensor | None = None  # (1, heads, h*w, c) image->token queries


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C / heads)."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, c) -> (B, N, heads * c)."""
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention on split heads, as `segment_anything.modeling.transformer.Attention`."""
    import torch

    attn = q @ k.transpose(-2, -1)
    attn = attn / math.sqrt(q.shape[-1])
    return torch.softmax(attn, dim=-1) @ v


def _project(layer: Any, x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.linear(x, layer.weight, layer.bias)


def _attention(
    module: Any,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    q_heads: torch.Tensor | None = None,
    k_heads: torch.Tensor | None = None,
    v_heads: torch.Tensor | None = None,
) -> torch.Tensor:
    """Meta's `Attention.forward`, taking already projected heads where they are cached.

    A cached head tensor of batch 1 is broadcast over the prompts' batch.
    """
    n = module.num_heads
    qh = q_heads if q_heads is not None else _heads(_project(module.q_proj, q), n)
    kh = k_heads if k_heads is not None else _heads(_project(module.k_proj, k), n)
    vh = v_heads if v_heads is not None else _heads(_project(module.v_proj, v), n)
    batch = max(qh.shape[0], kh.shape[0], vh.shape[0])
    qh, kh, vh = (t.expand(batch, -1, -1, -1) for t in (qh, kh, vh))
    return _project(module.out_proj, _merge_heads(_attend(qh, kh, vh)))


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

        self._torch_device = torch.device(device or default_device())
        self._sam = sam.to(self._torch_device).eval()
        self._prep = _preprocessing_of(sam)
        self._encode_lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[ImageEmbedding, _ImageState] = (
            weakref.WeakKeyDictionary()
        )
        self._states_lock = threading.Lock()
        prompt_encoder = sam.prompt_encoder
        with torch.inference_mode():
            dense_pe = prompt_encoder.get_dense_pe()  # (1, C, h, w), prompt-independent
            self._image_pe = dense_pe.flatten(2).permute(0, 2, 1).contiguous()  # (1, h*w, C)
            self._no_mask_dense = prompt_encoder.no_mask_embed.weight.reshape(1, 1, -1)
        self._embedding_hw = tuple(int(s) for s in prompt_encoder.image_embedding_size)
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
            features = self._sam.image_encoder(torch.from_numpy(x).to(self._torch_device))
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
        """
        import torch

        state = self._state(embedding)
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
            stability_scores=self._stability(
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

    def _state(self, embedding: ImageEmbedding) -> _ImageState:
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
                features = features[None].to(self._torch_device)
                if tuple(features.shape[-2:]) != self._embedding_hw:
                    raise InferenceError(
                        f"embedding features have shape {tuple(embedding.features.shape)}, "
                        f"the model expects (C, {self._embedding_hw[0]}, {self._embedding_hw[1]})"
                    )
                with torch.inference_mode():
                    tokens = features.flatten(2).permute(0, 2, 1) + self._no_mask_dense
                state = _ImageState(features=features, image_tokens=tokens)
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
        state: _ImageState,
        coords: torch.Tensor | None,
        labels: torch.Tensor | None,
        box: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        tokens: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder. Returns (B, len(tokens), 4h, 4w) logits and
        (B, len(tokens)) IoU predictions for the requested output tokens."""
        import torch

        sam = self._sam
        points = (coords, labels) if coords is not None and labels is not None else None
        sparse, dense = sam.prompt_encoder(points=points, boxes=box, masks=mask_input)
        decoder = sam.mask_decoder
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        batch = sparse.shape[0]
        query_tokens = torch.cat(
            (output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse), dim=1
        )  # (B, T, C)
        if mask_input is None:
            image_tokens = state.image_tokens  # (1, h*w, C), shared by the whole batch
        else:
            image_tokens = (state.features + dense).flatten(2).permute(0, 2, 1)
        queries, keys = self._transformer(state, image_tokens, query_tokens, mask_input is None)

        h, w = self._embedding_hw
        src = keys.transpose(1, 2).reshape(keys.shape[0], -1, h, w)
        upscaled = decoder.output_upscaling(src)  # (B', C/8, 4h, 4w)
        hyper = torch.stack(
            [decoder.output_hypernetworks_mlps[t](queries[:, 1 + t, :]) for t in tokens], dim=1
        )  # (B, M, C/8)
        b, c, uh, uw = upscaled.shape
        masks = (hyper @ upscaled.reshape(b, c, uh * uw)).reshape(batch, len(tokens), uh, uw)
        iou = decoder.iou_prediction_head(queries[:, 0, :])[:, list(tokens)]
        return masks, iou

    def _transformer(
        self,
        state: _ImageState,
        image_tokens: torch.Tensor,
        query_tokens: torch.Tensor,
        cacheable: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta's `TwoWayTransformer.forward` on (B', h*w, C) image tokens and (B, T, C)
        prompt tokens, reusing the first layer's image-only projections when `cacheable`
        (no mask input: the image tokens are then the same for every prompt)."""
        transformer = self._sam.mask_decoder.transformer
        image_pe = self._image_pe
        queries, keys = query_tokens, image_tokens
        for index, layer in enumerate(transformer.layers):
            # Self-attention of the prompt tokens (no positional term in the first layer).
            if layer.skip_first_layer_pe:
                queries = _attention(layer.self_attn, queries, queries, queries)
            else:
                q = queries + query_tokens
                queries = queries + _attention(layer.self_attn, q, q, queries)
            queries = layer.norm1(queries)

            # Prompt tokens attend to the image.
            q = queries + query_tokens
            k_heads = v_heads = q_img_heads = None
            if index == 0 and cacheable:
                k_heads, v_heads, q_img_heads = self._layer0_projections(state)
                k_img = keys  # not used: its projections are cached
            else:
                k_img = keys + image_pe
            attn = layer.cross_attn_token_to_image
            queries = queries + _attention(attn, q, k_img, keys, k_heads=k_heads, v_heads=v_heads)
            queries = layer.norm2(queries)
            queries = layer.norm3(queries + layer.mlp(queries))

            # The image attends to the prompt tokens.
            q = queries + query_tokens
            attn = layer.cross_attn_image_to_token
            keys = keys + _attention(attn, k_img, q, queries, q_heads=q_img_heads)
            keys = layer.norm4(keys)

        q = queries + query_tokens
        k = keys + image_pe
        queries = queries + _attention(transformer.final_attn_token_to_image, q, k, keys)
        queries = transformer.norm_final_attn(queries)
        return queries, keys

    def _layer0_projections(
        self, state: _ImageState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """First-layer projections of the image tokens (same for every prompt)."""
        if state.layer0_k is None or state.layer0_v is None or state.layer0_q is None:
            layer = self._sam.mask_decoder.transformer.layers[0]
            keys = state.image_tokens
            k = keys + self._image_pe
            t2i = layer.cross_attn_token_to_image
            i2t = layer.cross_attn_image_to_token
            state.layer0_k = _heads(_project(t2i.k_proj, k), t2i.num_heads)
            state.layer0_v = _heads(_project(t2i.v_proj, keys), t2i.num_heads)
            state.layer0_q = _heads(_project(i2t.q_proj, k), i2t.num_heads)
        return state.layer0_k, state.layer0_v, state.layer0_q

    @staticmethod
    def _stability(low_res: np.ndarray, input_size: tuple[int, int], image_size: int) -> np.ndarray:
        """Stability scores on the cells of (N, s, s) low-res logits that cover the image
        (the rest is padding of the square model input)."""
        s = low_res.shape[-1]
        h = max(1, min(s, math.ceil(input_size[0] * s / image_size)))
        w = max(1, min(s, math.ceil(input_size[1] * s / image_size)))
        return stability_scores(low_res[:, :h, :w])
