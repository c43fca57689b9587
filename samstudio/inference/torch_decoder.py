"""SAM's mask decoder re-arranged for interactive speed (torch-only module).

`FastMaskDecoder` computes the same function as `segment_anything`'s
`MaskDecoder.predict_masks` with its `TwoWayTransformer`, from the same weights, but
does less arithmetic per prompt. Every change is an exact algebraic identity, so the
results differ from Meta's only by float rounding (measured ~3e-6 on logits of +-4;
the tests hold them to 1e-5):

1. Work that depends only on the image is done once per embedding (`ImageState`):
   with no mask prompt, the first layer's image tokens are the same for every prompt,
   so their key/value projections (token->image attention) and query projection
   (image->token attention) are cached. The dense positional encoding is computed
   once per model.
2. Attention between the few prompt tokens (T, about 7) and the 4096 image tokens is
   evaluated with the projections folded onto the prompt side. For token->image:
   softmax((q Wq) (K Wk + bk)^T) (V Wv + bv) = softmax((q Wq Wk^T) K^T) V Wv^T + bv
   (the bk term is constant along the softmax axis, and softmax rows sum to 1), which
   needs two (H*T x C x N) products instead of two (N x C x C/2) projections. The same
   folding applies to image->token attention. It is used when H*T < C/2, i.e. for up
   to about 15 prompt tokens with SAM's 8 heads.
3. The output upscaling (two 2x2 stride-2 transposed convolutions) runs as two matrix
   products in channels-last layout; masks are put in raster order only for the
   requested output tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from samstudio.inference.errors import InferenceError

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam


@dataclass
class ImageState:
    """What the decoder reuses for one embedding (filled lazily, on the model's device).

    features: (1, C, h, w); image_tokens: (1, h*w, C) = features + the no-mask dense
    embedding, channels last; the layer-0 tensors are per-head projections
    (1, heads, h*w, C/2/heads) of the image tokens.
    """

    features: torch.Tensor
    image_tokens: torch.Tensor
    layer0_k: torch.Tensor | None = None
    layer0_v: torch.Tensor | None = None
    layer0_q: torch.Tensor | None = None


def _linear(layer: Any, x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.linear(x, layer.weight, layer.bias)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, I) -> (B, heads, N, I / heads)."""
    b, n, i = x.shape
    return x.reshape(b, n, heads, i // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _attention(
    module: Any,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_heads: torch.Tensor | None = None,
    k_heads: torch.Tensor | None = None,
    v_heads: torch.Tensor | None = None,
) -> torch.Tensor:
    """Meta's `Attention.forward` (projections, softmax(q k^T / sqrt(d)) v, output
    projection), taking already projected heads where they are cached. Head tensors
    of batch 1 are broadcast over the batch."""
    import torch.nn.functional as F

    n = module.num_heads
    qh = q_heads if q_heads is not None else _split_heads(_linear(module.q_proj, q), n)
    kh = k_heads if k_heads is not None else _split_heads(_linear(module.k_proj, k), n)
    vh = v_heads if v_heads is not None else _split_heads(_linear(module.v_proj, v), n)
    batch = max(qh.shape[0], kh.shape[0], vh.shape[0])
    qh, kh, vh = (t.expand(batch, -1, -1, -1) for t in (qh, kh, vh))
    return _linear(module.out_proj, _merge_heads(F.scaled_dot_product_attention(qh, kh, vh)))


class _FoldedAttention:
    """One `Attention` module between T prompt tokens and N image tokens, with its
    projections folded onto the prompt side (see the module docstring)."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.heads = int(module.num_heads)
        internal = int(module.q_proj.weight.shape[0])
        self.d = internal // self.heads
        c = int(module.q_proj.weight.shape[1])
        h, d = self.heads, self.d
        # Per-head weights: Linear computes x W^T + b with W (internal, C).
        self.wq = module.q_proj.weight.detach().view(h, d, c)
        self.wk = module.k_proj.weight.detach().view(h, d, c)
        self.wv = module.v_proj.weight.detach().view(h, d, c)
        self.bq = module.q_proj.bias.detach().view(h, d)
        self.bv = module.v_proj.bias.detach().view(h, 1, d)
        # out_proj W (C, internal) -> (heads, d, C) so that out = sum_h x_h @ wo[h].
        self.wo = module.out_proj.weight.detach().t().reshape(h, d, c)
        self.bo = module.out_proj.bias.detach()
        self.scale = 1.0 / math.sqrt(d)
        self.internal = internal

    def worth_it(self, tokens: int) -> bool:
        """Folding costs 2 products of (heads*T x C x N); projecting costs 2 of (N x C x I)."""
        return self.heads * tokens < self.internal

    def token_to_image(
        self, q: torch.Tensor, k_img: torch.Tensor, v_img: torch.Tensor
    ) -> torch.Tensor:
        """q: (B, T, C) prompt tokens (with PE); k_img, v_img: (B' in {1, B}, N, C).
        Returns the attention output (B, T, C)."""
        import torch

        b, t, _ = q.shape
        qh = _split_heads(_linear(self.module.q_proj, q), self.heads)  # (B, H, T, d)
        q_fold = torch.einsum("bhtd,hdc->bhtc", qh, self.wk) * self.scale  # (B, H, T, C)
        scores = q_fold.reshape(b, self.heads * t, -1) @ k_img.transpose(1, 2)  # (B, HT, N)
        probs = torch.softmax(scores, dim=-1)
        pv = (probs @ v_img).view(b, self.heads, t, -1)  # (B, H, T, C)
        out_h = torch.einsum("bhtc,hdc->bhtd", pv, self.wv) + self.bv  # (B, H, T, d)
        return _linear(self.module.out_proj, _merge_heads(out_h))

    def image_to_token(
        self,
        q_img: torch.Tensor | None,
        k: torch.Tensor,
        v: torch.Tensor,
        q_heads: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """q_img: (B' in {1, B}, N, C) image tokens (with PE), or their projected heads
        q_heads (B', H, N, d); k, v: (B, T, C) prompt tokens. Returns (B, N, C)."""
        import torch

        b, t, _ = k.shape
        kh = _split_heads(_linear(self.module.k_proj, k), self.heads)  # (B, H, T, d)
        vh = _split_heads(_linear(self.module.v_proj, v), self.heads)  # (B, H, T, d)
        # Scores are laid out (B, H, T, N) so that the softmax over the T prompt tokens
        # runs along a long inner axis instead of over rows of length T.
        if q_heads is not None:
            scores = (kh * self.scale) @ q_heads.transpose(-1, -2)  # (B, H, T, N)
        else:
            assert q_img is not None
            # (q Wq_h^T + bq_h) . k_h = q . (Wq_h^T k_h) + bq_h . k_h
            k_fold = torch.einsum("bhtd,hdc->bhtc", kh, self.wq) * self.scale  # (B, H, T, C)
            k_bias = torch.einsum("bhtd,hd->bht", kh, self.bq) * self.scale  # (B, H, T)
            scores = k_fold.reshape(b, self.heads * t, -1) @ q_img.transpose(1, 2)  # (B, HT, N)
            scores = scores.view(b, self.heads, t, -1) + k_bias[..., None]
        probs = torch.softmax(scores, dim=2)  # over the T prompt tokens of each head
        v_fold = (vh @ self.wo).reshape(b, self.heads * t, -1)  # (B, HT, C)
        n = probs.shape[-1]
        return torch.baddbmm(
            self.bo.expand(b, 1, -1), probs.reshape(b, self.heads * t, n).transpose(1, 2), v_fold
        )


class MaskUpscaler:
    """The decoder's `output_upscaling` (ConvTranspose2d 2x2/2, LayerNorm2d, GELU,
    ConvTranspose2d 2x2/2, GELU) and the hypernetwork product, as matrix products.

    A 2x2 stride-2 transposed convolution maps each input pixel to its own 2x2 output
    block: one (C_in, 4 * C_out) matrix product per pixel, in channels-last layout.
    """

    def __init__(self, upscaling: Any, embedding_hw: tuple[int, int]) -> None:
        conv1, norm, _act1, conv2, _act2 = upscaling
        for conv in (conv1, conv2):
            if tuple(conv.kernel_size) != (2, 2) or tuple(conv.stride) != (2, 2):
                raise InferenceError("unexpected mask decoder: output upscaling is not 2x2/2")
        c_in, c_mid = conv1.weight.shape[:2]
        c_out = conv2.weight.shape[1]
        # (C_in, C_out, 2, 2) -> (C_in, [a, b, C_out]): a the row, b the column offset.
        self.w1 = conv1.weight.detach().permute(0, 2, 3, 1).reshape(c_in, 4 * c_mid).contiguous()
        self.b1 = conv1.bias.detach().repeat(4)
        self.w2 = conv2.weight.detach().permute(0, 2, 3, 1).reshape(c_mid, 4 * c_out).contiguous()
        self.b2 = conv2.bias.detach().repeat(4)
        self.norm_weight = norm.weight.detach()
        self.norm_bias = norm.bias.detach()
        self.norm_eps = float(norm.eps)
        self.c_mid, self.c_out = int(c_mid), int(c_out)
        self.hw = embedding_hw

    def masks(self, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """keys: (B' in {1, B}, h*w, C) decoder image tokens; hyper: (B, M, C/8).
        Returns (B, M, 4h, 4w) mask logits."""
        import torch
        import torch.nn.functional as F

        h, w = self.hw
        b = keys.shape[0]
        x = torch.addmm(self.b1, keys.reshape(-1, keys.shape[-1]), self.w1)  # (B'hw, 4*Cm)
        x = x.view(-1, self.c_mid)
        x = F.gelu(F.layer_norm(x, (self.c_mid,), self.norm_weight, self.norm_bias, self.norm_eps))
        x = F.gelu(torch.addmm(self.b2, x, self.w2))  # (B'hw*4, 4*Co)
        x = x.view(b, -1, self.c_out)  # (B', hw*16, Co), pixels ordered (i, j, a, b, a', b')
        logits = hyper @ x.transpose(1, 2)  # (B, M, hw*16)
        m = hyper.shape[1]
        logits = logits.view(-1, m, h, w, 2, 2, 2, 2).permute(0, 1, 2, 4, 6, 3, 5, 7)
        return logits.reshape(-1, m, 4 * h, 4 * w)


class FastMaskDecoder:
    """Prompt encoder + mask decoder of a `Sam`, with the speed-ups of the module doc.

    Create once per model; `image_state` once per embedding; `run` per prompt batch.
    Call under `torch.inference_mode()`.
    """

    def __init__(self, sam: Sam) -> None:
        import torch

        self.sam = sam
        pe = sam.prompt_encoder
        decoder = sam.mask_decoder
        self.embedding_hw = (int(pe.image_embedding_size[0]), int(pe.image_embedding_size[1]))
        with torch.inference_mode():
            dense_pe = pe.get_dense_pe()  # (1, C, h, w): the same for every prompt and image
            self.image_pe = dense_pe.flatten(2).permute(0, 2, 1).contiguous()  # (1, h*w, C)
            self.no_mask_dense = pe.no_mask_embed.weight.detach().reshape(1, 1, -1)
            self.output_tokens = torch.cat(
                [decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0
            ).detach()
            transformer = decoder.transformer
            self.folded = [
                (
                    _FoldedAttention(layer.cross_attn_token_to_image),
                    _FoldedAttention(layer.cross_attn_image_to_token),
                )
                for layer in transformer.layers
            ]
            self.final_folded = _FoldedAttention(transformer.final_attn_token_to_image)
            self.upscaler = MaskUpscaler(decoder.output_upscaling, self.embedding_hw)

    def image_state(self, features: torch.Tensor) -> ImageState:
        """features: (1, C, h, w) on the model's device."""
        if tuple(features.shape[-2:]) != self.embedding_hw:
            raise InferenceError(
                f"embedding features have shape {tuple(features.shape[1:])}, the model "
                f"expects (C, {self.embedding_hw[0]}, {self.embedding_hw[1]})"
            )
        tokens = features.flatten(2).permute(0, 2, 1) + self.no_mask_dense
        return ImageState(features=features, image_tokens=tokens.contiguous())

    def _layer0(self, state: ImageState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if state.layer0_k is None or state.layer0_v is None or state.layer0_q is None:
            layer = self.sam.mask_decoder.transformer.layers[0]
            keys = state.image_tokens
            k = keys + self.image_pe
            t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
            state.layer0_k = _split_heads(_linear(t2i.k_proj, k), t2i.num_heads).contiguous()
            state.layer0_v = _split_heads(_linear(t2i.v_proj, keys), t2i.num_heads).contiguous()
            state.layer0_q = _split_heads(_linear(i2t.q_proj, k), i2t.num_heads).contiguous()
        return state.layer0_k, state.layer0_v, state.layer0_q

    def run(
        self,
        state: ImageState,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        box: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        tokens: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts in the model-input frame (as SamPredictor.predict_torch takes them:
        points ((B, N, 2), (B, N)), box (B, 4), mask_input (B, 1, 4h, 4w)) -> mask logits
        (B, len(tokens), 4h, 4w) and IoU predictions (B, len(tokens)) of those tokens."""
        import torch

        sam = self.sam
        decoder = sam.mask_decoder
        sparse, dense = sam.prompt_encoder(points=points, boxes=box, masks=mask_input)
        batch = sparse.shape[0]
        prompt_tokens = torch.cat(
            (self.output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse), dim=1
        )  # (B, T, C)
        if mask_input is None:
            image_tokens = state.image_tokens  # (1, h*w, C), shared by the whole batch
        else:
            image_tokens = (state.features + dense).flatten(2).permute(0, 2, 1)
        queries, keys = self._transformer(state, image_tokens, prompt_tokens, mask_input is None)
        hyper = torch.stack(
            [decoder.output_hypernetworks_mlps[t](queries[:, 1 + t, :]) for t in tokens], dim=1
        )  # (B, M, C/8)
        masks = self.upscaler.masks(keys, hyper)
        iou = decoder.iou_prediction_head(queries[:, 0, :])[:, list(tokens)]
        return masks, iou

    def _transformer(
        self,
        state: ImageState,
        image_tokens: torch.Tensor,
        prompt_tokens: torch.Tensor,
        cacheable: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`TwoWayTransformer.forward` on (B', h*w, C) image tokens and (B, T, C) prompt
        tokens; uses the cached layer-0 projections when `cacheable` (no mask input)."""
        transformer = self.sam.mask_decoder.transformer
        image_pe = self.image_pe
        fold = self.final_folded.worth_it(prompt_tokens.shape[1])
        queries, keys = prompt_tokens, image_tokens
        for index, layer in enumerate(transformer.layers):
            t2i, i2t = self.folded[index]
            # Self-attention of the prompt tokens (no positional term in the first layer).
            if layer.skip_first_layer_pe:
                queries = _attention(layer.self_attn, queries, queries, queries)
            else:
                q = queries + prompt_tokens
                queries = queries + _attention(layer.self_attn, q, q, queries)
            queries = layer.norm1(queries)

            # Prompt tokens attend to the image.
            q = queries + prompt_tokens
            cached = index == 0 and cacheable
            if cached:
                k_heads, v_heads, q_img_heads = self._layer0(state)
                k_img = keys  # not used: its projections are cached
                attn = _attention(t2i.module, q, k_img, keys, k_heads=k_heads, v_heads=v_heads)
            else:
                k_img = keys + image_pe
                if fold:
                    attn = t2i.token_to_image(q, k_img, keys)
                else:
                    attn = _attention(t2i.module, q, k_img, keys)
            queries = layer.norm2(queries + attn)
            queries = layer.norm3(queries + layer.mlp(queries))

            # The image attends to the prompt tokens.
            q = queries + prompt_tokens
            if fold:
                attn = i2t.image_to_token(
                    None if cached else k_img, q, queries, q_heads=q_img_heads if cached else None
                )
            elif cached:
                attn = _attention(i2t.module, k_img, q, queries, q_heads=q_img_heads)
            else:
                attn = _attention(i2t.module, k_img, q, queries)
            keys = layer.norm4(keys + attn)

        q = queries + prompt_tokens
        k = keys + image_pe
        if fold:
            attn = self.final_folded.token_to_image(q, k, keys)
        else:
            attn = _attention(self.final_folded.module, q, k, keys)
        queries = transformer.norm_final_attn(queries + attn)
        return queries, keys
