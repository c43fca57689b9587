"""SAM's ViT image encoder with its global attention computed in chunks (torch-only).

Meta's `ImageEncoderViT` runs four (vit_b) to four-of-32 (vit_h) blocks of global
attention over all h*w = 4096 tokens. Its `Attention.forward` materialises the whole
(heads, 4096, 4096) score matrix, adds the decomposed relative positions to it in a
second full pass and takes the softmax in a third: 805 MB for vit_b, read and written
several times, so on a CPU these blocks are bound by memory traffic, not arithmetic
(measured on the 2-core development machine: 1.9-2.2 s per global attention against
about 0.5 s for its two matrix products).

`FastImageEncoder` computes the same function with the query rows of the grid taken a
few at a time (`chunk_rows` rows of w tokens): scores, relative positions and softmax of
a chunk stay in cache. The windowed blocks get the same treatment at a smaller scale:
Meta's own attention module is run on a few windows at a time, and the MLPs on a few
grid rows at a time (the 4x wider hidden layer then stays in cache too). A softmax row depends on its own query only, and each chunk does
the same operations in the same order as Meta's code, so the result is the same to the
last bit on the machines measured (tests compare against Meta's encoder). Everything
else is Meta's modules, unchanged.

Used by the PyTorch backend on the CPU and by the ONNX export (where the chunks are
unrolled into the graph); encoders other than `ImageEncoderViT` (the demo model's CNN)
are run as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from segment_anything.modeling.image_encoder import (
    Attention,
    ImageEncoderViT,
    get_rel_pos,
    window_partition,
    window_unpartition,
)
from torch import nn

# Query rows of the 64 x 64 grid per chunk: 2 rows = 128 queries, a (12, 128, 4096)
# float32 score block of 25 MB for vit_b. Measured per global attention of vit_b on 2
# threads: 1 row 0.84-1.4 s, 2 rows 0.67-0.86 s, 4 rows 0.69-1.15 s, Meta's 1.85-2.2 s.
CHUNK_ROWS = 2
# Windows per chunk in the windowed blocks (25 windows of 14 x 14 for a 64 x 64 grid):
# vit_b windowed attention on 2 threads, min of 4: all at once (Meta's) 0.323 s,
# 1 window 0.289 s, 2 windows 0.272 s, 5 windows 0.254 s; identical outputs.
WINDOWS_PER_CHUNK = 5
# Grid rows per chunk of the MLPs: vit_b encoder on 2 threads, chunked attention and
# buffers as here, 2 runs: MLP at once 10.0 / 10.4 s, 16 rows 7.8 / 8.7 s, 8 rows
# 9.0 / 9.4 s (Meta's whole encoder 17.6 s in the same process); identical outputs.
MLP_ROWS = 16


def chunked_global_attention(attn: Attention, x: torch.Tensor, chunk_rows: int) -> torch.Tensor:
    """Meta's `Attention.forward` on a (B, H, W, C) grid, query rows in chunks.

    Run eagerly without autograd (the backends' `inference_mode`), the chunks reuse two
    preallocated score buffers and write into one output: a fresh 25 MB tensor per
    chunk comes from mmap and costs its page faults every time (measured: 1.3 s per
    vit_b global attention instead of 0.9 s). Traced for ONNX export, or with autograd
    recording, the same operations without `out=`.
    """
    b, h, w, _ = x.shape
    heads = int(attn.num_heads)
    qkv = attn.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, b * heads, h * w, -1).unbind(0)
    dim = q.shape[-1]
    rel_h = rel_w = None
    if attn.use_rel_pos:
        r_q = q.reshape(b * heads, h, w, dim)
        rh = get_rel_pos(h, h, attn.rel_pos_h)  # (h, h, dim)
        rw = get_rel_pos(w, w, attn.rel_pos_w)  # (w, w, dim)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh).unsqueeze(-1)  # (BH, h, w, h, 1)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw).unsqueeze(-2)  # (BH, h, w, 1, w)
    q_scaled = q * attn.scale
    k_t = k.transpose(-2, -1)
    if _allocating():
        outs = []
        for r0 in range(0, h, chunk_rows):
            r1 = min(h, r0 + chunk_rows)
            scores = q_scaled[:, r0 * w : r1 * w] @ k_t  # (BH, rows*w, h*w)
            if rel_h is not None and rel_w is not None:
                grid = scores.view(b * heads, r1 - r0, w, h, w)
                scores = (grid + rel_h[:, r0:r1] + rel_w[:, r0:r1]).view(b * heads, -1, h * w)
            outs.append(scores.softmax(dim=-1) @ v)
        out = torch.cat(outs, dim=1)  # (BH, h*w, dim)
    else:
        out = torch.empty((b * heads, h * w, dim), dtype=q.dtype, device=q.device)
        rows = min(chunk_rows, h)
        # Flat storage so that the last, shorter chunk is a contiguous view too.
        buffer = torch.empty(b * heads * rows * w * h * w, dtype=q.dtype, device=q.device)
        probs = torch.empty_like(buffer)
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            size = b * heads * (r1 - r0) * w * h * w
            scores = buffer[:size].view(b * heads, (r1 - r0) * w, h * w)
            weights = probs[:size].view(b * heads, (r1 - r0) * w, h * w)
            torch.bmm(q_scaled[:, r0 * w : r1 * w], k_t, out=scores)
            if rel_h is not None and rel_w is not None:
                grid = scores.view(b * heads, r1 - r0, w, h, w)
                grid.add_(rel_h[:, r0:r1])
                grid.add_(rel_w[:, r0:r1])
            torch.ops.aten._softmax.out(scores, -1, False, out=weights)
            torch.bmm(weights, v, out=out[:, r0 * w : r1 * w])
    out = out.view(b, heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return attn.proj(out)


def chunked_mlp(mlp: nn.Module, x: torch.Tensor, rows: int) -> torch.Tensor:
    """`mlp(x)` on a (B, H, W, C) grid, `rows` grid rows at a time: the (B, rows, W,
    4C) hidden activations stay in cache (vit_b: 50 MB at once, 12.6 MB per 16 rows)."""
    if _allocating():
        return torch.cat([mlp(x[:, r : r + rows]) for r in range(0, x.shape[1], rows)], dim=1)
    out = torch.empty_like(x)
    for r in range(0, x.shape[1], rows):
        out[:, r : r + rows] = mlp(x[:, r : r + rows])
    return out


def _allocating() -> bool:
    """Chunks allocate their results (no `out=`): when traced for export, and when
    autograd records (out= tensors cannot be differentiated)."""
    return bool(torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.is_grad_enabled())


class FastImageEncoder(nn.Module):
    """`ImageEncoderViT.forward` with `chunked_global_attention` in its global blocks and
    the windows of the windowed blocks attended `windows_per_chunk` at a time:
    (B, 3, S, S) normalised, padded image -> (B, C, h, w) features."""

    def __init__(
        self,
        encoder: ImageEncoderViT,
        chunk_rows: int = CHUNK_ROWS,
        windows_per_chunk: int = WINDOWS_PER_CHUNK,
        mlp_rows: int = MLP_ROWS,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.chunk_rows = int(chunk_rows)
        self.windows_per_chunk = int(windows_per_chunk)
        self.mlp_rows = int(mlp_rows)

    @staticmethod
    def supports(encoder: Any) -> bool:
        """True for Meta's ViT image encoder (official SAM vit_b/l/h)."""
        return isinstance(encoder, ImageEncoderViT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        x = enc.patch_embed(x)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for blk in enc.blocks:
            shortcut = x
            x = blk.norm1(x)
            if blk.window_size > 0:
                size = (x.shape[1], x.shape[2])
                windows, pad_hw = window_partition(x, blk.window_size)
                step = self.windows_per_chunk
                parts = [blk.attn(windows[i : i + step]) for i in range(0, len(windows), step)]
                x = window_unpartition(torch.cat(parts), blk.window_size, pad_hw, size)
            else:
                x = chunked_global_attention(blk.attn, x, self.chunk_rows)
            x = shortcut + x
            x = x + chunked_mlp(blk.mlp, blk.norm2(x), self.mlp_rows)
        return enc.neck(x.permute(0, 3, 1, 2))


def fast_encoder(encoder: nn.Module) -> nn.Module:
    """`FastImageEncoder(encoder)` where supported, else the encoder itself."""
    if FastImageEncoder.supports(encoder):
        return FastImageEncoder(encoder)  # type: ignore[arg-type]
    return encoder
