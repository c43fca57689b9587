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
  in a channels-last layout, split by kernel row so that columns come out in raster
  order; the per-pixel dot product with the hypernetwork outputs happens before the
  rows are interleaved, so only the (B, 4, 4h, 4w) logits are rearranged.
- Without a mask prompt the dense prompt embedding is the constant `no_mask_embed`, so
  the first layer's projections of the image tokens (token-to-image keys and values,
  image-to-token queries) depend on the image alone: `PrepareGraph` computes them once
  per embedding and `PreparedDecoderGraph` takes them as inputs.

Every rearrangement is exact algebra; the results differ from Meta's by float32
rounding only (the tests measure it).
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import nn

from samstudio.inference.torch_encoder import fast_encoder


class EncoderGraph(nn.Module):
    """(1, 3, S, S) normalised, padded image -> (1, C, h, w) image embedding.

    Meta's ViT encoder with its global attention in query-row chunks
    (`torch_encoder.FastImageEncoder`: the same function, the chunks unrolled into the
    graph); other encoders as they are."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.image_encoder = fast_encoder(sam.image_encoder)

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

    def forward_projected(
        self, tokens_q: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """The same attention on image tokens projected beforehand (`project_image`):
        keys_t (1, H, d, HW), values (1, H, HW, d). Returns (B, N, C)."""
        b, n, _ = tokens_q.shape
        q = self.q_proj(tokens_q).reshape(b, n, self.num_heads, -1).transpose(1, 2)
        attn = torch.softmax(q @ keys_t, dim=-1)  # (B, H, N, HW)
        out = (attn @ values).transpose(1, 2).reshape(b, n, -1)  # (B, N, H*d)
        return self.out_proj(out)


def project_image(
    attn: Any, image_k: torch.Tensor, image_v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta's key and value projections of the image tokens for `Attention(q=tokens,
    k=image_k, v=image_v)`, laid out for `TokenToImageAttention.forward_projected`.

    image_k, image_v: (1, HW, C). Returns keys_t (1, H, d, HW), scaled by 1/sqrt(d) as
    Meta's scores are, and values (1, H, HW, d).
    """
    h = int(attn.num_heads)
    k = attn.k_proj(image_k)  # (1, HW, H*d)
    hw, d = k.shape[1], k.shape[2] // h
    keys_t = (k * (1.0 / math.sqrt(d))).reshape(1, hw, h, d).permute(0, 2, 3, 1)
    values = attn.v_proj(image_v).reshape(1, hw, h, d).transpose(1, 2)
    return keys_t.contiguous(), values.contiguous()


def project_image_queries(attn: Any, image_q: torch.Tensor) -> torch.Tensor:
    """Meta's query projection of the image tokens for `Attention(q=image_q, k=tokens,
    v=tokens)`, scaled by 1/sqrt(d): (1, HW, C) -> (1, HW, H*d), heads outer."""
    q = attn.q_proj(image_q)
    d = q.shape[2] // int(attn.num_heads)
    return q * (1.0 / math.sqrt(d))


class ImageToTokenAttention(nn.Module):
    """Meta's `Attention(q=image + pe, k=tokens + pe, v=tokens)` folded onto the tokens.

    image_q: (Bi, HW, C) queries before projection; tokens_k, tokens_v: (B, N, C).
    Returns the attention output (B, HW, C) (after `out_proj`).
    """

    wq_t: torch.Tensor
    bq: torch.Tensor
    wo_t: torch.Tensor
    bo: torch.Tensor
    head_blocks: torch.Tensor

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
        # Each head's softmax row sums to 1, so the H heads' weights of one image
        # token sum to H: adding bo/H to every value row adds bo to the output.
        self.register_buffer("bo", attn.out_proj.bias.detach().clone() / self.num_heads)
        # (H, 1, H, 1) identity that spreads per-head keys onto a block diagonal.
        eye = torch.eye(self.num_heads, dtype=torch.float32)
        self.register_buffer("head_blocks", eye.reshape(self.num_heads, 1, self.num_heads, 1))

    def _attend(self, scores: torch.Tensor, tokens_v: torch.Tensor) -> torch.Tensor:
        """scores (B, HW, H*N) -> softmax over each head's N tokens, weighted values
        (after `out_proj`): (B, HW, C)."""
        b, n, _ = tokens_v.shape
        h = self.num_heads
        v = self.v_proj(tokens_v).reshape(b, n, h, -1).transpose(1, 2)  # (B, H, N, d)
        hw = scores.shape[1]
        attn = torch.softmax(scores.reshape(b, hw, h, n), dim=-1).reshape(b, hw, h * n)
        values = (v @ self.wo_t + self.bo).reshape(b, h * n, -1)  # (B, H*N, C)
        return attn @ values

    def forward_projected(
        self, image_q: torch.Tensor, tokens_k: torch.Tensor, tokens_v: torch.Tensor
    ) -> torch.Tensor:
        """The same attention on image queries projected beforehand
        (`project_image_queries`, (1, HW, H*d)). Returns (B, HW, C)."""
        b, n, _ = tokens_k.shape
        h = self.num_heads
        k_t = self.k_proj(tokens_k).reshape(b, n, h, -1).permute(0, 2, 3, 1)  # (B, H, d, N)
        d = k_t.shape[2]
        blocks = (k_t.unsqueeze(3) * self.head_blocks).reshape(b, h * d, h * n)
        return self._attend(image_q @ blocks, tokens_v)

    def forward(
        self, image_q: torch.Tensor, tokens_k: torch.Tensor, tokens_v: torch.Tensor
    ) -> torch.Tensor:
        b, n, _ = tokens_k.shape
        h = self.num_heads
        k_t = self.k_proj(tokens_k).reshape(b, n, h, -1).permute(0, 2, 3, 1)  # (B, H, d, N)
        fold = self.wq_t.unsqueeze(0) @ k_t  # (B, H, C, N)
        fold = fold.transpose(1, 2).reshape(b, -1, h * n)  # (B, C, H*N)
        bias = (self.bq.unsqueeze(0) @ k_t).reshape(b, 1, h * n)  # (B, 1, H*N)
        return self._attend(image_q @ fold + bias, tokens_v)


class BlockedUpscaling(nn.Module):
    """SAM's output upscaling (ConvT 2x2/2, LayerNorm2d, act, ConvT 2x2/2, act) and the
    hypernetwork dot product as channels-last matrix products.

    Each transposed convolution is split by the row offset of its 2x2 kernel (di for
    the first, ei for the second): the product for one offset gives the output pixels
    of one row phase with their columns already in raster order. The four (di, ei)
    products end in logits for rows 4i + 2di + ei, and one concatenation of those
    (B, h, 1, 4w, T) pieces interleaves the rows; only the logits are transposed
    (a plain 2-D transpose per prompt) at the end. Biases are added by the matrix
    products (ONNX Gemm).

    keys: (B, h*w, C) image tokens in raster order; hyper: (B, T, C/8).
    Returns logits (B, T, 4h, 4w).
    """

    norm_w: torch.Tensor
    norm_b: torch.Tensor
    w1_top: torch.Tensor
    w1_bottom: torch.Tensor
    b1: torch.Tensor
    w2_top: torch.Tensor
    w2_bottom: torch.Tensor
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
        # ConvTranspose weight (Cin, Cout, 2, 2) -> per row offset: (Cin, 2 * Cout),
        # columns (column offset, o); the bias repeated for the two column offsets.
        for name, conv in (("w1", conv1), ("w2", conv2)):
            weight = conv.weight.detach()
            cout = int(conv.out_channels)
            for di, half in ((0, "top"), (1, "bottom")):
                w = weight[:, :, di, :].permute(0, 2, 1).reshape(-1, 2 * cout)
                self.register_buffer(f"{name}_{half}", w.contiguous())
        self.register_buffer("b1", conv1.bias.detach().repeat(2))
        self.register_buffer("b2", conv2.bias.detach().repeat(2))

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
        t = hyper.shape[1]
        flat = keys.reshape(-1, keys.shape[2])  # (B*h*w, C)
        hyper_t = hyper.transpose(1, 2)  # (B, c2, T)
        pieces = []
        for w1 in (self.w1_top, self.w1_bottom):
            # Rows (b, i, j, dj) = (b, i, 2j + dj): one row phase of the 2h x 2w grid.
            y = torch.addmm(self.b1, flat, w1).reshape(-1, self.c1)
            y = self.act1(F.layer_norm(y, (self.c1,), self.norm_w, self.norm_b, self.norm_eps))
            for w2 in (self.w2_top, self.w2_bottom):
                z = self.act2(torch.addmm(self.b2, y, w2).reshape(b, 4 * h * w, self.c2))
                pieces.append((z @ hyper_t).reshape(b, h, 1, 4 * w, t))  # rows 4i + 2di + ei
        logits = torch.cat(pieces, dim=2).reshape(b, 16 * h * w, t)
        return logits.transpose(1, 2).reshape(b, t, 4 * h, 4 * w)


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
        self,
        keys: torch.Tensor,
        tokens: torch.Tensor,
        first_layer: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta's TwoWayTransformer. keys (1, HW, C) image tokens, tokens (B, N, C).

        first_layer: the first layer's image projections computed beforehand
        (`PrepareGraph`: keys_t, values, queries), or None to compute from `keys`.
        """
        image_pe: torch.Tensor = self.image_pe
        queries = tokens
        for i, layer in enumerate(self.layers):
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + tokens
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)
            if i == 0 and first_layer is not None:
                keys_t, values, image_q = first_layer
                t2i = cast(TokenToImageAttention, self.t2i[0])
                i2t = cast(ImageToTokenAttention, self.i2t[0])
                attn = t2i.forward_projected(queries + tokens, keys_t, values)
                queries = layer.norm2(queries + attn)
                queries = layer.norm3(queries + layer.mlp(queries))
                update = i2t.forward_projected(image_q, queries + tokens, queries)
            else:
                keys_pe = keys + image_pe
                queries = layer.norm2(queries + self.t2i[i](queries + tokens, keys_pe, keys))
                queries = layer.norm3(queries + layer.mlp(queries))
                update = self.i2t[i](keys_pe, queries + tokens, queries)
            keys = layer.norm4(keys + update)
        attn = self.final_t2i(queries + tokens, keys + image_pe, keys)
        return self.norm_final(queries + attn), keys

    def prompt_tokens(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 2), (B, N) -> (B, T + N, C): the output tokens then the point embeddings."""
        sparse = self.embed_points(point_coords, point_labels)
        batch = sparse.shape[0]
        return torch.cat([self.output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)

    def heads(
        self, hs: torch.Tensor, keys: torch.Tensor, h: int, w: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transformer outputs -> (low-res logits (B, T, 4h, 4w), IoU (B, T))."""
        batch = hs.shape[0]
        mask_tokens = hs[:, 1 : 1 + self.num_mask_tokens, :]
        hyper = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.hypernetworks)], dim=1
        )
        # keys already has the B prompts: the first layer's residual broadcasts them.
        if self.upscaling is not None:
            logits = self.upscaling(keys, hyper, h, w)
        else:
            c = keys.shape[2]
            grid = keys.transpose(1, 2).reshape(batch, c, h, w)
            upscaled = self.output_upscaling(grid)
            _, c_up, h_up, w_up = upscaled.shape
            logits = (hyper @ upscaled.reshape(batch, c_up, h_up * w_up)).reshape(
                batch, self.num_mask_tokens, h_up, w_up
            )
        return logits, self.iou_head(hs[:, 0, :])

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.prompt_tokens(point_coords, point_labels)
        has_mask = has_mask_input.reshape(1, 1, 1, 1)
        dense = has_mask * self.mask_downscaling(mask_input) + (1.0 - has_mask) * self.no_mask
        src = image_embeddings + dense  # (1, C, h, w): broadcast over the B prompts
        _, _, h, w = src.shape
        hs, keys = self.transformer(src.flatten(2).transpose(1, 2), tokens)
        return self.heads(hs, keys, h, w)


class PrepareGraph(nn.Module):
    """What the decoder computes from the image alone when no mask prompt is given
    (the dense prompt embedding is then the constant `no_mask_embed`): run once per
    embedding, its outputs feed `PreparedDecoderGraph` for every click.

    image_embeddings (1, C, h, w) -> image_tokens (1, hw, C) (embedding + no_mask_embed,
    raster order); t2i_keys (1, H, d, hw) and t2i_values (1, H, hw, d): the first
    layer's token-to-image key and value projections; i2t_queries (1, hw, H*d): its
    image-to-token query projection (keys and queries scaled by 1/sqrt(d)).
    """

    image_pe: torch.Tensor
    no_mask: torch.Tensor

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        layer = sam.mask_decoder.transformer.layers[0]
        self.t2i = layer.cross_attn_token_to_image
        self.i2t = layer.cross_attn_image_to_token
        with torch.no_grad():
            dense_pe = sam.prompt_encoder.get_dense_pe().detach()
            self.register_buffer("image_pe", dense_pe.flatten(2).transpose(1, 2).contiguous())
            no_mask = sam.prompt_encoder.no_mask_embed.weight.detach().reshape(1, -1, 1, 1)
            self.register_buffer("no_mask", no_mask.clone())

    def forward(
        self, image_embeddings: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        keys = (image_embeddings + self.no_mask).flatten(2).transpose(1, 2)  # (1, hw, C)
        keys_pe = keys + self.image_pe
        keys_t, values = project_image(self.t2i, keys_pe, keys)
        return keys, keys_t, values, project_image_queries(self.i2t, keys_pe)


class PreparedDecoderGraph(DecoderGraph):
    """`DecoderGraph` without a mask prompt, on `PrepareGraph`'s outputs.

    Inputs: image_tokens (1, hw, C), t2i_keys (1, H, d, hw), t2i_values (1, H, hw, d),
    i2t_queries (1, hw, H*d), point_coords (B, N, 2), point_labels (B, N).
    Outputs as `DecoderGraph`'s.
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__(sam)
        self.grid = tuple(int(v) for v in sam.prompt_encoder.image_embedding_size)

    def forward(  # type: ignore[override]
        self,
        image_tokens: torch.Tensor,
        t2i_keys: torch.Tensor,
        t2i_values: torch.Tensor,
        i2t_queries: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.prompt_tokens(point_coords, point_labels)
        hs, keys = self.transformer(
            image_tokens, tokens, first_layer=(t2i_keys, t2i_values, i2t_queries)
        )
        return self.heads(hs, keys, self.grid[0], self.grid[1])
