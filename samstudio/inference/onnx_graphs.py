"""The torch modules that `onnx_export` traces into ONNX graphs (torch-only module).

`DecoderGraph` computes exactly what SAM's prompt encoder + mask decoder compute
(Meta's `PromptEncoder`, `MaskDecoder`, `TwoWayTransformer`), reusing their weights,
but arranges the arithmetic for a CPU:

- Prompt-independent values are constants: the dense positional encoding of the
  embedding grid, the label embedding table, the output tokens.
- Attention between the few prompt tokens (N of them) and the h*w image tokens never
  projects the image tokens. For tokens attending to the image, the key projection is
  moved onto the queries (q Wk_h^T) and the value projection after the weighted sum
  (softmax rows sum to 1, so (A V_img) Wv^T + b = A (V_img Wv^T + b)); the key bias only
  shifts every score of a row and drops out of the softmax. For the image attending to
  the tokens, the query and output projections are folded into (C x H*N) matrices built
  from the tokens. Each attention then costs about 2*h*w*C*H*N multiply-adds instead of
  about 2*h*w*C*C/2: 0.12 G instead of 0.27 G for official SAM with one click.
- The two stride-2 transposed convolutions of the output upscaling are matrix products
  in a channels-last, sub-pixel-blocked layout; the per-pixel dot product with the
  hypernetwork outputs happens before the pixels are put back in raster order, so only
  the (B, 4, 4h, 4w) logits are rearranged.

Every rearrangement is exact algebra; the results differ from Meta's by float32
rounding only (the tests measure it).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import nn


class EncoderGraph(nn.Module):
    """(1, 3, S, S) normalised, padded image -> (1, C, h, w) image embedding."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


def _heads_of(linear: nn.Linear, num_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear weight (H*d, C) and bias (H*d,) -> (H, d, C) and (H, 1, d)."""
    out_dim, in_dim = linear.weight.shape
    d = out_dim // num_heads
    w = linear.weight.detach().reshape(num_heads, d, in_dim).clone()
    b = linear.bias.detach().reshape(num_heads, 1, d).clone()
    return w, b


class TokenToImageAttention(nn.Module):
    """Meta's `Attention(q=tokens, k=image + pe, v=image)` without projecting the image.

    tokens_q: (B, N, C) queries; image_k: (Bi, HW, C) keys before projection;
    image_v: (Bi, HW, C) values before projection (Bi is 1 or B). Returns (B, N, C).
    """

    wk: torch.Tensor
    wv_t: torch.Tensor
    bv: torch.Tensor

    def __init__(self, attn: Any) -> None:
        super().__init__()
        self.num_heads = int(attn.num_heads)
        self.q_proj = attn.q_proj
        self.out_proj = attn.out_proj
        wk, _ = _heads_of(attn.k_proj, self.num_heads)
        wv, bv = _heads_of(attn.v_proj, self.num_heads)
        d = wk.shape[1]
        # (H, d, C), scaled by 1/sqrt(d) as Meta's scores are.
        self.register_buffer("wk", wk / math.sqrt(d))
        self.register_buffer("wv_t", wv.transpose(1, 2).contiguous())  # (H, C, d)
        self.register_buffer("bv", bv)  # (H, 1, d)

    def forward(
        self, tokens_q: torch.Tensor, image_k: torch.Tensor, image_v: torch.Tensor
    ) -> torch.Tensor:
        b, n, _ = tokens_q.shape
        h = self.num_heads
        q = self.q_proj(tokens_q)  # (B, N, H*d)
        q = q.reshape(b, n, h, -1).transpose(1, 2)  # (B, H, N, d)
        q_img = q @ self.wk  # (B, H, N, C): queries in image-token space
        scores = q_img.reshape(b, h * n, -1) @ image_k.transpose(1, 2)  # (B, H*N, HW)
        attn = torch.softmax(scores, dim=-1)
        pooled = (attn @ image_v).reshape(b, h, n, -1)  # (B, H, N, C)
        out = pooled @ self.wv_t + self.bv  # (B, H, N, d)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.out_proj(out)


class ImageToTokenAttention(nn.Module):
    """Meta's `Attention(q=image + pe, k=tokens + pe, v=tokens)` folded onto the tokens.

    image_q: (Bi, HW, C) queries before projection; tokens_k, tokens_v: (B, N, C).
    Returns the attention output (B, HW, C) (after `out_proj`).
    """

    wq_t: torch.Tensor
    bq: torch.Tensor
    wo_t: torch.Tensor
    bo: torch.Tensor

    def __init__(self, attn: Any) -> None:
        super().__init__()
        self.num_heads = int(attn.num_heads)
        self.k_proj = attn.k_proj
        self.v_proj = attn.v_proj
        wq, bq = _heads_of(attn.q_proj, self.num_heads)
        d = wq.shape[1]
        scale = 1.0 / math.sqrt(d)
        self.register_buffer("wq_t", (wq * scale).transpose(1, 2).contiguous())  # (H, C, d)
        self.register_buffer("bq", bq * scale)  # (H, 1, d)
        wo = attn.out_proj.weight.detach()  # (C, H*d)
        c_out = wo.shape[0]
        self.register_buffer(
            "wo_t", wo.reshape(c_out, self.num_heads, d).permute(1, 2, 0).contiguous()
        )  # (H, d, C)
        self.register_buffer("bo", attn.out_proj.bias.detach().clone())

    def forward(
        self, image_q: torch.Tensor, tokens_k: torch.Tensor, tokens_v: torch.Tensor
    ) -> torch.Tensor:
        b, n, _ = tokens_k.shape
        h = self.num_heads
        k = self.k_proj(tokens_k).reshape(b, n, h, -1).transpose(1, 2)  # (B, H, N, d)
        v = self.v_proj(tokens_v).reshape(b, n, h, -1).transpose(1, 2)  # (B, H, N, d)
        k_t = k.transpose(2, 3)  # (B, H, d, N)
        fold = self.wq_t.unsqueeze(0) @ k_t  # (B, H, C, N)
        fold = fold.transpose(1, 2).reshape(b, -1, h * n)  # (B, C, H*N)
        bias = (self.bq.unsqueeze(0) @ k_t).reshape(b, 1, h * n)  # (B, 1, H*N)
        scores = image_q @ fold + bias  # (B, HW, H*N)
        hw = scores.shape[1]
        attn = torch.softmax(scores.reshape(b, hw, h, n), dim=-1).reshape(b, hw, h * n)
        values = (v @ self.wo_t).reshape(b, h * n, -1)  # (B, H*N, C)
        return attn @ values + self.bo


class BlockedUpscaling(nn.Module):
    """SAM's output upscaling (ConvT 2x2/2, LayerNorm2d, act, ConvT 2x2/2, act) and the
    hypernetwork dot product, in a channels-last sub-pixel-blocked layout.

    keys: (B, h*w, C) image tokens in raster order; hyper: (B, T, C/8).
    Returns logits (B, T, 4h, 4w).
    """

    norm_w: torch.Tensor
    norm_b: torch.Tensor
    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor

    def __init__(self, upscaling: nn.Sequential) -> None:
        super().__init__()
        layers: list[Any] = list(upscaling)
        conv1, norm, act1, conv2, act2 = layers
        self.act1 = act1
        self.act2 = act2
        self.norm_eps = float(norm.eps)
        self.register_buffer("norm_w", norm.weight.detach().clone())
        self.register_buffer("norm_b", norm.bias.detach().clone())
        self.c1 = int(conv1.out_channels)
        self.c2 = int(conv2.out_channels)
        # ConvTranspose weight (Cin, Cout, 2, 2) -> (Cin, 4 * Cout), columns (di, dj, o).
        self.register_buffer(
            "w1", conv1.weight.detach().permute(0, 2, 3, 1).reshape(-1, 4 * self.c1)
        )
        self.register_buffer("b1", conv1.bias.detach().clone())
        self.register_buffer(
            "w2", conv2.weight.detach().permute(0, 2, 3, 1).reshape(-1, 4 * self.c2)
        )
        self.register_buffer("b2", conv2.bias.detach().clone())

    @staticmethod
    def supports(upscaling: nn.Module) -> bool:
        """True for the layer sequence of official SAM's output upscaling."""
        from segment_anything.modeling.common import LayerNorm2d

        if not isinstance(upscaling, nn.Sequential) or len(upscaling) != 5:
            return False
        conv1, norm, _, conv2, _ = upscaling
        return all(
            isinstance(c, nn.ConvTranspose2d)
            and tuple(c.kernel_size) == (2, 2)
            and tuple(c.stride) == (2, 2)
            and tuple(c.padding) == (0, 0)
            and tuple(c.output_padding) == (0, 0)
            and c.groups == 1
            and tuple(c.dilation) == (1, 1)
            and c.bias is not None
            for c in (conv1, conv2)
        ) and isinstance(norm, LayerNorm2d)

    def forward(self, keys: torch.Tensor, hyper: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b = keys.shape[0]
        y = (keys @ self.w1).reshape(b, h * w * 4, self.c1) + self.b1
        y = F.layer_norm(y, (self.c1,), self.norm_w, self.norm_b, self.norm_eps)
        y = self.act1(y)
        y = (y @ self.w2).reshape(b, h * w * 16, self.c2) + self.b2
        y = self.act2(y)
        t = hyper.shape[1]
        logits = y @ hyper.transpose(1, 2)  # (B, h*w*16, T); rows (i, j, di, dj, ei, ej)
        logits = logits.reshape(b, h, w, 2, 2, 2, 2, t)
        logits = logits.permute(0, 7, 1, 3, 5, 2, 4, 6)  # (B, T, i, di, ei, j, dj, ej)
        return logits.reshape(b, t, 4 * h, 4 * w)


class DecoderGraph(nn.Module):
    """SAM's prompt encoder + mask decoder for B prompts on one image embedding.

    Inputs: image_embeddings (1, C, h, w); point_coords (B, N, 2) model-input frame;
    point_labels (B, N) float (-1 pad, 0, 1, 2 and 3 box corners); mask_input
    (1, 1, 4h, 4w); has_mask_input (1,). Outputs: low-res logits (B, T, 4h, 4w) and IoU
    predictions (B, T) for all T mask tokens (token 0 first).
    """

    image_pe: torch.Tensor
    gaussian: torch.Tensor
    label_table: torch.Tensor
    label_values: torch.Tensor
    no_mask: torch.Tensor
    output_tokens: torch.Tensor
    coord_scale: torch.Tensor

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        pe = sam.prompt_encoder
        md = sam.mask_decoder
        tr = md.transformer
        self.mask_downscaling = pe.mask_downscaling
        self.num_mask_tokens = int(md.num_mask_tokens)
        self.hypernetworks = md.output_hypernetworks_mlps
        self.iou_head = md.iou_prediction_head
        self.layers = tr.layers
        self.t2i = nn.ModuleList(
            TokenToImageAttention(layer.cross_attn_token_to_image) for layer in tr.layers
        )
        self.i2t = nn.ModuleList(
            ImageToTokenAttention(layer.cross_attn_image_to_token) for layer in tr.layers
        )
        self.final_t2i = TokenToImageAttention(tr.final_attn_token_to_image)
        self.norm_final = tr.norm_final_attn
        self.blocked = BlockedUpscaling.supports(md.output_upscaling)
        self.output_upscaling = md.output_upscaling
        self.upscaling = BlockedUpscaling(md.output_upscaling) if self.blocked else None
        with torch.no_grad():
            dense_pe = pe.get_dense_pe().detach()  # (1, C, h, w)
            self.register_buffer("image_pe", dense_pe.flatten(2).transpose(1, 2).contiguous())
            self.register_buffer(
                "gaussian", pe.pe_layer.positional_encoding_gaussian_matrix.detach().clone()
            )
            table = [pe.not_a_point_embed.weight] + [e.weight for e in pe.point_embeddings]
            self.register_buffer("label_table", torch.cat(table, dim=0).detach().clone())
            self.register_buffer(
                "label_values", torch.arange(-1, len(table) - 1, dtype=torch.float32)
            )
            self.register_buffer(
                "no_mask", pe.no_mask_embed.weight.detach().reshape(1, -1, 1, 1).clone()
            )
            output_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
            self.register_buffer("output_tokens", output_tokens.detach().clone())
            in_h, in_w = pe.input_image_size
            self.register_buffer(
                "coord_scale", torch.tensor([1.0 / in_w, 1.0 / in_h], dtype=torch.float32)
            )

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) input-frame XY, (B, N) labels -> (B, N, C) sparse embeddings."""
        unit = (coords + 0.5) * self.coord_scale
        proj = (2.0 * math.pi) * ((2.0 * unit - 1.0) @ self.gaussian)
        pos = torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)
        is_point = (labels != -1.0).to(pos.dtype).unsqueeze(-1)
        one_hot = (labels.unsqueeze(-1) == self.label_values).to(pos.dtype)
        return pos * is_point + one_hot @ self.label_table

    def transformer(
        self, keys: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta's TwoWayTransformer. keys (1, HW, C) image tokens, tokens (B, N, C)."""
        image_pe: torch.Tensor = self.image_pe
        queries = tokens
        for i, layer in enumerate(self.layers):
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + tokens
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)
            keys_pe = keys + image_pe
            queries = layer.norm2(queries + self.t2i[i](queries + tokens, keys_pe, keys))
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(keys + self.i2t[i](keys_pe, queries + tokens, queries))
        attn = self.final_t2i(queries + tokens, keys + image_pe, keys)
        return self.norm_final(queries + attn), keys

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sparse = self.embed_points(point_coords, point_labels)
        batch = sparse.shape[0]
        has_mask = has_mask_input.reshape(1, 1, 1, 1)
        dense = has_mask * self.mask_downscaling(mask_input) + (1.0 - has_mask) * self.no_mask
        tokens = torch.cat([self.output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)
        src = image_embeddings + dense  # (1, C, h, w): broadcast over the B prompts
        _, c, h, w = src.shape
        hs, keys = self.transformer(src.flatten(2).transpose(1, 2), tokens)
        mask_tokens = hs[:, 1 : 1 + self.num_mask_tokens, :]
        hyper = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.hypernetworks)], dim=1
        )
        keys = keys.expand(batch, -1, -1)
        if self.upscaling is not None:
            logits = self.upscaling(keys, hyper, h, w)
        else:
            grid = keys.transpose(1, 2).reshape(batch, c, h, w)
            upscaled = self.output_upscaling(grid)
            _, c_up, h_up, w_up = upscaled.shape
            logits = (hyper @ upscaled.reshape(batch, c_up, h_up * w_up)).reshape(
                batch, self.num_mask_tokens, h_up, w_up
            )
        return logits, self.iou_head(hs[:, 0, :])
