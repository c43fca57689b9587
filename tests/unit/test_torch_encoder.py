"""The chunked global attention of `torch_encoder` against Meta's encoder.

vit_b itself is compared bit for bit in test_torch_backend (features identical to
SamPredictor's) and in test_onnx_backend (the exported graph); these cases use small
encoders so that chunk sizes which do not divide the grid, several global blocks,
encoders without relative positions and batches are covered in a second.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")

from model_fixtures import build_tiny_vit_encoder  # noqa: E402

from samstudio.inference.torch_encoder import (  # noqa: E402
    FastImageEncoder,
    chunked_global_attention,
    fast_encoder,
)


def _encoder(img_size: int, use_rel_pos: bool, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    enc = build_tiny_vit_encoder(
        img_size,
        embed_dim=48,
        depth=3,
        num_heads=3,
        out_chans=16,
        use_rel_pos=use_rel_pos,
        global_attn_indexes=(0, 2),
    ).eval()
    if use_rel_pos:  # Meta initialises them to zero: give them values that matter
        with torch.no_grad():
            for blk in enc.blocks:
                blk.attn.rel_pos_h.normal_(0, 0.5)
                blk.attn.rel_pos_w.normal_(0, 0.5)
    return enc


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("use_rel_pos", [True, False])
def test_encoder_equals_metas(chunk_rows: int, use_rel_pos: bool) -> None:
    enc = _encoder(240, use_rel_pos)  # a 15 x 15 grid: most chunk sizes leave a remainder
    x = torch.randn(2, 3, 240, 240, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = enc(x)
        ours = FastImageEncoder(enc, chunk_rows=chunk_rows)(x)
    assert ours.shape == ref.shape == (2, 16, 15, 15)
    assert float(ref.abs().max()) > 0.1
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_global_attention_block_equals_metas() -> None:
    """One global attention with relative positions that change the scores a lot."""
    attn = _encoder(256, True).blocks[0].attn
    x = torch.randn(1, 16, 16, 48, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = attn(x)
        ours = chunked_global_attention(attn, x, chunk_rows=3)
        without_rel = attn.use_rel_pos
        attn.use_rel_pos = False
        plain = attn(x)
        attn.use_rel_pos = without_rel
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-5)
    assert float((ref - plain).abs().max()) > 1e-2  # the relative positions mattered


def test_other_encoders_are_left_as_they_are() -> None:
    conv = torch.nn.Conv2d(3, 8, 3)
    assert fast_encoder(conv) is conv
    enc = _encoder(64, True)
    assert isinstance(fast_encoder(enc), FastImageEncoder)
